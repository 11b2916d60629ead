//! CHANNEL_JOIN with `sdp_offer` (PROTOCOL.md section 4) and the calls through which the
//! driver's ICE and DTLS agent tells the core about a WebRTC endpoint.
//!
//! The core owns the endpoint (its slot, SSRCs, latch, keys, membership); the driver owns
//! SDP, ICE and DTLS. A join goes: the channel checks, the endpoint added (its [`MediaId`]
//! made), [`Driver::negotiate`] answering the offer for the channel's codecs, the offer's
//! SSRCs indexed, the ACK with the answer. From then on the driver reports
//! [`Gateway::media_checked`], [`Gateway::media_keys`] or [`Gateway::media_failed`], and
//! the core tells it [`Driver::media_ended`] when the endpoint goes.

use super::{Driver, Gateway, session_of};
use crate::codec::{Codec, VideoCodec};
use crate::config::{MAX_INBOUND_FRAME, MAX_JOINED_PER_SESSION, MAX_SDP_ANSWER};
use crate::error::{Error, ErrorCode};
use crate::gateway::ConnId;
use crate::protocol::json::{self, RawStr, UnescapeError};
use crate::relay::{DtlsKeys, Endpoint, JoinRefused, Keys, MediaId, Track, VideoTrack, WebRtc};
use crate::srtp;
use crate::time::Now;

/// A WebRTC client's offer, for [`Driver::negotiate`].
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    /// The joining connection.
    pub conn: ConnId,
    /// The endpoint the join made, whose ICE and DTLS state the driver keys by this id.
    pub media: MediaId,
    /// The channel.
    pub channel_id: &'a str,
    /// The channel's audio codec: the one the answer accepts.
    pub codec: Codec,
    /// The channel's video codec.
    pub video_codec: VideoCodec,
    /// The offer's SDP text, unescaped.
    pub sdp: &'a str,
}

/// What [`Driver::negotiate`] answered.
#[derive(Debug, Clone)]
pub struct Negotiated<'d> {
    /// The SDP answer's text (the core copies it into the ACK).
    pub answer: &'d str,
    /// The audio m-line the answer accepted.
    pub audio: Track,
    /// The video m-line, when the offer had one the answer accepted.
    pub video: Option<VideoTrack>,
}

/// Why an offer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferError {
    /// It does not parse (1004).
    Malformed(&'static str),
    /// It parses but lacks what the server needs; the reason names what (2008).
    Unacceptable(&'static str),
    /// The driver has no room for another peer (2006).
    Full,
}

impl From<OfferError> for Error {
    fn from(e: OfferError) -> Self {
        match e {
            OfferError::Malformed(reason) => Error::new(ErrorCode::Malformed, reason),
            OfferError::Unacceptable(reason) => Error::new(ErrorCode::NoAcceptableMedia, reason),
            OfferError::Full => Error::new(ErrorCode::Capacity, "WebRTC peer limit reached"),
        }
    }
}

/// The answer to an offer, as the core keeps it for the ACK: bounded by
/// [`MAX_SDP_ANSWER`] once escaped.
pub(super) struct Answer {
    text: heapless::String<MAX_SDP_ANSWER>,
    /// Its length as a JSON string's contents (RFC 8259 section 7 escapes).
    pub(super) escaped_len: usize,
}

impl Answer {
    fn new(text: &str) -> Result<Answer, Error> {
        let escaped_len = text.chars().map(escaped_len).sum();
        let too_long = Error::new(ErrorCode::Internal, "SDP answer too long");
        if escaped_len > MAX_SDP_ANSWER {
            return Err(too_long);
        }
        let mut t = heapless::String::new();
        t.push_str(text).map_err(|_| too_long)?;
        Ok(Answer {
            text: t,
            escaped_len,
        })
    }

    pub(super) fn as_str(&self) -> &str {
        &self.text
    }
}

/// Bytes `c` takes inside a JSON string as `serde-json-core` writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

impl Gateway<'_> {
    /// CHANNEL_JOIN with `sdp_offer`. The offer is unescaped first (1004, a field's value),
    /// then the channel and membership checks run as for a radio (2000, 2003, 2001, 2006,
    /// 2007 for a given `ssrc`), then the driver answers the offer (1004, 2008, 2006), then
    /// the offer's SSRCs must be free (2007). A refusal after the endpoint was made ends it
    /// with [`Driver::media_ended`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn channel_join_webrtc(
        &mut self,
        _now: Now,
        conn: ConnId,
        channel_id: &str,
        ssrc: Option<u32>,
        offer: RawStr<'_>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let mut sdp_buf = [0u8; MAX_INBOUND_FRAME];
        let n = json::unescape_into(offer.0, &mut sdp_buf).map_err(|e| match e {
            UnescapeError::TooLong => Error::new(ErrorCode::Malformed, "sdp_offer too long"),
            UnescapeError::Invalid => {
                Error::new(ErrorCode::Malformed, "invalid string escape in sdp_offer")
            }
        })?;
        let slot = self.find_channel(channel_id)?;
        if self.membership(conn, slot).is_some() {
            return Err(ErrorCode::AlreadyJoined.into());
        }
        let (codec, video_codec, full) = {
            let ch = self.channel(slot)?;
            (ch.codec, ch.video_codec, ch.members >= ch.capacity)
        };
        if full {
            return Err(ErrorCode::ChannelFull.into());
        }
        let joined_full = session_of(self.conns.as_slice(), conn)
            .is_none_or(|s| usize::from(s.joined) >= MAX_JOINED_PER_SESSION);
        if joined_full {
            return Err(Error::new(
                ErrorCode::Capacity,
                "joined-channel limit per session reached",
            ));
        }
        if ssrc.is_some_and(|s| self.relay.find(s).is_some()) {
            return Err(ErrorCode::SsrcInUse.into());
        }
        let peer = self
            .conn(conn)
            .map(|c| c.peer)
            .ok_or(Error::from(ErrorCode::Internal))?;
        let endpoint = Endpoint::member(
            conn,
            slot as u32,
            peer.ip,
            Keys::WebRtc(DtlsKeys::Pending),
            codec.radio_pt(),
        );
        let at = self.relay.add(endpoint).map_err(refused)?;
        let media = self
            .relay
            .media_id(at)
            .ok_or(Error::from(ErrorCode::Internal))?;
        let sdp = sdp_buf
            .get(..n)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or_default();
        let negotiated = drv
            .negotiate(&Offer {
                conn,
                media,
                channel_id,
                codec,
                video_codec,
                sdp,
            })
            .map_err(Error::from)
            .and_then(|n| Ok((Answer::new(n.answer)?, n.audio, n.video)));
        let (answer, mut audio, video) = match negotiated {
            Ok(n) => n,
            Err(e) => {
                self.relay.remove(at);
                drv.media_ended(media);
                return Err(e);
            }
        };
        if let Some(s) = ssrc {
            audio.ssrc = Some(s);
        }
        let wanted = [
            audio.ssrc,
            video.as_ref().and_then(|v| v.track.ssrc),
            video.as_ref().and_then(|v| v.rtx_ssrc),
        ];
        for s in wanted.into_iter().flatten() {
            if let Err(e) = self.relay.add_ssrc(at, s) {
                self.relay.remove(at);
                drv.media_ended(media);
                return Err(refused(e));
            }
        }
        let audio_ssrc = audio.ssrc;
        if let Some(e) = self.relay.get_mut(at) {
            e.audio_pt = audio.pt;
            e.webrtc = Some(WebRtc { audio, video });
        }
        self.admit(conn, slot, at);
        self.join_ack(conn, slot, None, Some(&answer), audio_ssrc, id, drv)
    }

    /// A valid ICE check for the WebRTC endpoint `media` came from `addr`: the endpoint is
    /// latched there (the latest check's address wins: the driver reports the first valid
    /// check, nominated ones and consent checks), and the check is activity that keeps the
    /// latch (PROTOCOL.md section 4). Unknown or stale ids are counted and ignored.
    pub fn media_checked(&mut self, now: Now, media: MediaId, addr: core::net::SocketAddr) {
        self.relay.checked(now, media, addr);
    }

    /// The DTLS handshake of `media` is done: `inbound` unprotects what the client sends
    /// (the client's write key), `outbound` protects what the server sends it (RFC 5764
    /// section 4.2). From then on its RTP and RTCP from the latched address authenticate
    /// with these. A viewer arriving mid-talk gets a key frame soon: the floor holder owes
    /// one (a PLI with its next packet).
    pub fn media_keys(
        &mut self,
        _now: Now,
        media: MediaId,
        inbound: srtp::Context,
        outbound: srtp::Context,
    ) {
        self.relay.keyed(media, inbound, outbound);
        let Some(e) = self.relay.resolve(media).and_then(|at| self.relay.get(at)) else {
            return;
        };
        if !e.takes_video() {
            return;
        }
        let slot = e.channel() as usize;
        let holder = self
            .channels
            .as_slice()
            .get(slot)
            .and_then(Option::as_ref)
            .and_then(|ch| ch.floor.holder());
        if let Some(at) = holder.and_then(|(h, _)| self.membership(h, slot)) {
            self.relay.want_key_frame(at);
        }
    }

    /// The handshake of `media` failed, or had not finished 10 s after the ACK: the
    /// endpoint sends and receives no more media (keys dropped, latch cleared); the session
    /// and its membership stay (PROTOCOL.md section 4), and a leave and a join make a new
    /// endpoint.
    pub fn media_failed(&mut self, _now: Now, media: MediaId) {
        self.relay.failed(media);
    }

    /// The id of the endpoint in `at` when it is a WebRTC one (to tell the driver it ended).
    pub(super) fn webrtc_media(&self, at: usize) -> Option<MediaId> {
        self.relay
            .get(at)
            .filter(|e| matches!(e.keys, Keys::WebRtc(_)))
            .and_then(|_| self.relay.media_id(at))
    }
}

/// A refusal to add an endpoint or an SSRC, as the protocol answers it.
pub(super) fn refused(e: JoinRefused) -> Error {
    match e {
        JoinRefused::SsrcInUse => Error::from(ErrorCode::SsrcInUse),
        JoinRefused::Full => Error::new(ErrorCode::Capacity, "media peer limit reached"),
    }
}
