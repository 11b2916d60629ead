//! A media endpoint: one source of media the relay knows, with its SSRCs, keys, latched
//! address and counters.

use core::net::{IpAddr, SocketAddr};

use super::webrtc::{DtlsKeys, MediaId, Role, WebRtc};
use crate::config::{ENDPOINT_SSRCS, LATCH_IDLE};
use crate::gateway::ConnId;
use crate::srtp::Context;
use crate::time::Instant;

/// Whose media an endpoint carries.
///
/// A channel member's media session is the one kind today; a source that is not a session
/// (a camera pulled over RTSP) is another variant, and every place that needs a member's
/// connection destructures this and will say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A member of a channel: its gateway connection and the channel slot.
    Member {
        /// The member's connection.
        conn: ConnId,
        /// The channel slot it joined.
        channel: u32,
    },
}

/// How an endpoint's media is protected.
// Endpoints are fixed-size rows of a table and the core has no allocator to box into; the
// bytes a plain endpoint leaves unused are never written.
#[allow(clippy::large_enum_variant)]
pub enum Keys {
    /// Plain RTP: accepted only from the IP of the member's gateway connection.
    Plain,
    /// SRTP with SDES keys from CHANNEL_JOIN (PROTOCOL.md section 3).
    Sdes {
        /// Client -> server.
        inbound: Context,
        /// Server -> client.
        outbound: Context,
    },
    /// SRTP keyed by DTLS (WebRTC, PROTOCOL.md section 4), from the address ICE latched.
    WebRtc(DtlsKeys),
}

impl Keys {
    /// The admin API's `kind` (PROTOCOL.md section 6): `plain`, `sdes` or `webrtc`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Keys::Plain => "plain",
            Keys::Sdes { .. } => "sdes",
            Keys::WebRtc(_) => "webrtc",
        }
    }
}

/// Per-endpoint counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams accepted from the endpoint.
    pub packets_in: u64,
    /// Bytes accepted from the endpoint.
    pub bytes_in: u64,
    /// Datagrams sent to the endpoint.
    pub packets_out: u64,
    /// Bytes sent to the endpoint.
    pub bytes_out: u64,
    /// Datagrams from the endpoint's SSRCs that were dropped.
    pub dropped: u64,
}

/// One endpoint's media state.
pub struct Endpoint {
    /// Whose media it is.
    pub source: Source,
    /// Its SSRCs, each unique on the server (the index keys): a radio's audio SSRC of
    /// CHANNEL_JOIN; a WebRTC client's audio, video and RTX SSRCs under BUNDLE.
    pub ssrcs: heapless::Vec<u32, ENDPOINT_SSRCS>,
    /// The payload type of the channel's codec as this endpoint sends and receives it.
    pub audio_pt: u8,
    /// What the SDP answer accepted, for a WebRTC endpoint.
    pub webrtc: Option<WebRtc>,
    /// The IP of its gateway connection: plain RTP latches only from there.
    pub gateway_ip: IpAddr,
    /// Its keys.
    pub keys: Keys,
    /// Where its media goes, learnt from its authenticated packets.
    pub latched: Option<SocketAddr>,
    /// When it last sent an accepted packet.
    pub last_rx: Instant,
    /// Counters.
    pub stats: EndpointStats,
    /// The previous and next member of its channel (in join order), `NONE` at the ends.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// The next membership of the same session, `NONE` at the end.
    pub(crate) session_next: u32,
    /// Given by the relay when it adds the endpoint: half of its [`MediaId`].
    pub(crate) serial: u32,
    /// The SSRC the server's own RTCP to this endpoint carries as its sender (RFC 4585
    /// feedback, PROTOCOL.md section 4: one of its own per peer).
    pub(crate) server_ssrc: u32,
    /// The last FIR command sequence number sent to it (RFC 5104 section 4.3.1.1).
    pub(crate) fir_seq: u8,
    /// It was granted the floor and owes its viewers a key frame: a PLI goes to it with
    /// its next packet (the core sends datagrams only while handling one).
    pub(crate) pli_due: bool,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("source", &self.source)
            .field("ssrcs", &self.ssrcs)
            .field("kind", &self.keys.kind())
            .field("latched", &self.latched)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Endpoint {
    /// A channel member's endpoint, not yet in any table: no latch, no counters.
    pub fn member(
        conn: ConnId,
        channel: u32,
        gateway_ip: IpAddr,
        keys: Keys,
        audio_pt: u8,
    ) -> Endpoint {
        Endpoint {
            source: Source::Member { conn, channel },
            ssrcs: heapless::Vec::new(),
            audio_pt,
            webrtc: None,
            gateway_ip,
            keys,
            latched: None,
            last_rx: Instant::ZERO,
            stats: EndpointStats::default(),
            prev: super::NONE,
            next: super::NONE,
            session_next: super::NONE,
            serial: 0,
            server_ssrc: 0,
            fir_seq: 0,
            pli_due: false,
        }
    }

    /// Its id for the driver, once it is in slot `slot`.
    pub(crate) fn media_id(&self, slot: usize) -> MediaId {
        MediaId::new(slot as u32, self.serial)
    }

    /// The role of one of its SSRCs: a radio's only stream is audio.
    pub fn role(&self, ssrc: u32) -> Option<Role> {
        match &self.webrtc {
            Some(w) => w.role(ssrc),
            None => self.ssrcs.contains(&ssrc).then_some(Role::Audio),
        }
    }

    /// Whether it takes video: a WebRTC endpoint whose answer accepted video to receive.
    pub fn takes_video(&self) -> bool {
        self.webrtc.as_ref().is_some_and(WebRtc::takes_video)
    }

    /// The first SSRC (the audio SSRC given at CHANNEL_JOIN).
    pub fn ssrc(&self) -> u32 {
        self.ssrcs.first().copied().unwrap_or(0)
    }

    /// The member's connection.
    pub fn conn(&self) -> ConnId {
        let Source::Member { conn, .. } = self.source;
        conn
    }

    /// The channel slot of the member.
    pub fn channel(&self) -> u32 {
        let Source::Member { channel, .. } = self.source;
        channel
    }

    /// Whether its media is SRTP.
    pub fn is_srtp(&self) -> bool {
        matches!(self.keys, Keys::Sdes { .. } | Keys::WebRtc(_))
    }

    /// The address to send to, unless it is unknown or has gone idle.
    pub fn destination(&self, now: Instant) -> Option<SocketAddr> {
        self.latched
            .filter(|_| now.saturating_since(self.last_rx) < LATCH_IDLE)
    }
}

impl Endpoint {
    /// The kind of peer as the admin API names it (PROTOCOL.md section 6 `/peers`).
    pub fn kind(&self) -> &'static str {
        match self.keys {
            Keys::Plain => "plain",
            Keys::Sdes { .. } => "sdes",
            Keys::WebRtc(_) => "webrtc",
        }
    }
}
