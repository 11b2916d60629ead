//! SDP offer -> answer for browsers (PROTOCOL.md section 4; RFC 8829 JSEP, RFC 8843 BUNDLE,
//! RFC 3264 offer/answer).
//!
//! [`Offer::parse`] reads the text with `sdp-types` (line structure, session and media
//! sections, attribute lists); an offer it refuses is error 1004. [`negotiate`] picks what
//! the server serves: the channel's audio codec on the first audio m-line, the channel's
//! video codec on the first video m-line when it can be bundled with the audio, nothing
//! else; an offer without what section 4 requires is error 2008 with the reason
//! ([`Unacceptable`]). [`answer`] writes the answer by hand: it is a fixed shape (ICE-lite,
//! one host candidate, `a=setup:passive`, only the lines the server serves), simpler to write
//! than to build through a generic model.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::cert::Fingerprint;

/// Most m-lines an offer may carry (a browser sends one per transceiver plus one for data
/// channels; 16 is far above what a push-to-talk client needs).
pub const MAX_MEDIA_SECTIONS: usize = 16;
/// Longest `a=mid` the server keeps (the core stores it in a `heapless::String<16>`).
pub const MAX_MID_LEN: usize = 16;

/// An offer that does not parse as SDP (error 1004). The reason is for the ERROR frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// An offer that parses but lacks what the server needs (error 2008); the reason names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unacceptable(pub &'static str);

/// The channel's audio codec (PROTOCOL.md section 1: `PCMU` or `opus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711 mu-law, 8 kHz (RFC 3551; static payload type 0).
    Pcmu,
    /// Opus, 48 kHz stereo signalling (RFC 7587).
    Opus,
}

/// The channel's video codec (PROTOCOL.md section 1: `VP8` or `H264`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// H.264 with packetization-mode=1 (RFC 6184).
    H264,
}

/// One accepted m-line, as the core's relay needs it. `send`/`recv` are the client's
/// directions under the answer: `recv` means the client receives media from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// The offer's payload type for the channel's codec.
    pub pt: u8,
    /// The m-line's `a=mid` (empty when the offer gave none).
    pub mid: heapless::String<MAX_MID_LEN>,
    /// The offer's ID for `urn:ietf:params:rtp-hdrext:sdes:mid` (RFC 8843 section 15.1).
    pub ext_mid: Option<u8>,
    /// The offer's ID for `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (RFC 6464); audio only.
    pub ext_audio_level: Option<u8>,
    /// The client's SSRC for this m-line from `a=ssrc` (the primary of an FID group).
    pub ssrc: Option<u32>,
    /// The client sends on this m-line.
    pub send: bool,
    /// The client receives on this m-line.
    pub recv: bool,
}

/// The accepted video m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// Payload type, mid, extension IDs, SSRC and directions.
    pub track: Track,
    /// The offer's RTX payload type for the chosen codec (RFC 4588 `apt`).
    pub rtx_pt: Option<u8>,
    /// The client's RTX SSRC (the second SSRC of `a=ssrc-group:FID`).
    pub rtx_ssrc: Option<u32>,
    /// `a=rtcp-fb:<pt> nack` offered (and answered).
    pub nack: bool,
    /// `a=rtcp-fb:<pt> nack pli` offered (and answered).
    pub pli: bool,
    /// `a=rtcp-fb:<pt> ccm fir` offered (and answered).
    pub fir: bool,
}

/// The client's ICE credentials and DTLS certificate fingerprint, from the offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIce {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
    /// The `a=fingerprint:sha-256` value.
    pub fingerprint: Fingerprint,
}

/// The server's side of the answer.
#[derive(Debug, Clone, Copy)]
pub struct Local<'a> {
    /// The peer's server-side `a=ice-ufrag` (from [`crate::Agent::add_peer`]).
    pub ufrag: &'a str,
    /// The peer's server-side `a=ice-pwd`.
    pub pwd: &'a str,
    /// The server certificate's SHA-256 fingerprint ([`crate::Certificate::fingerprint`]).
    pub fingerprint: &'a str,
    /// LIVECHAT_ADVERTISE_IP.
    pub ip: IpAddr,
    /// The media port.
    pub port: u16,
}

impl From<livechat_core::codec::Codec> for AudioCodec {
    fn from(c: livechat_core::codec::Codec) -> Self {
        match c {
            livechat_core::codec::Codec::Pcmu => AudioCodec::Pcmu,
            livechat_core::codec::Codec::Opus => AudioCodec::Opus,
        }
    }
}

impl From<livechat_core::codec::VideoCodec> for VideoCodec {
    fn from(c: livechat_core::codec::VideoCodec) -> Self {
        match c {
            livechat_core::codec::VideoCodec::Vp8 => VideoCodec::Vp8,
            livechat_core::codec::VideoCodec::H264 => VideoCodec::H264,
        }
    }
}

impl From<Track> for livechat_core::relay::Track {
    fn from(t: Track) -> Self {
        livechat_core::relay::Track {
            pt: t.pt,
            mid: t.mid,
            ext_mid: t.ext_mid,
            ext_audio_level: t.ext_audio_level,
            ssrc: t.ssrc,
            send: t.send,
            recv: t.recv,
        }
    }
}

impl From<VideoTrack> for livechat_core::relay::VideoTrack {
    fn from(v: VideoTrack) -> Self {
        livechat_core::relay::VideoTrack {
            track: v.track.into(),
            rtx_pt: v.rtx_pt,
            rtx_ssrc: v.rtx_ssrc,
            nack: v.nack,
            pli: v.pli,
            fir: v.fir,
        }
    }
}

/// A parsed offer.
#[derive(Debug, Clone)]
pub struct Offer {
    session: sdp_types::Session,
}

/// What the server serves of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    /// The audio m-line.
    pub audio: Track,
    /// The video m-line, when one was offered that the server can serve.
    pub video: Option<VideoTrack>,
    /// The client's ICE credentials and fingerprint.
    pub remote: RemoteIce,
    /// Per offered m-line, in offer order: what the answer says about it.
    lines: Vec<Served>,
    /// Whether the accepted m-lines are bundled (the offer has `a=group:BUNDLE`).
    bundle: bool,
}

/// The answer's verdict on one offered m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Served {
    /// Port 0.
    Rejected,
    /// The audio line: its `rtpmap` encoding (`PCMU/8000`, `opus/48000/2`) and `fmtp`.
    Audio {
        encoding: String,
        fmtp: Option<String>,
    },
    /// The video line: encoding, `fmtp`.
    Video {
        encoding: String,
        fmtp: Option<String>,
    },
}

impl Offer {
    /// Parses the offer's text (`\r\n` or `\n` line ends).
    pub fn parse(text: &str) -> Result<Offer, ParseError> {
        let session = sdp_types::Session::parse(text.as_bytes())
            .map_err(|_| ParseError("sdp_offer is not valid SDP"))?;
        if session.medias.len() > MAX_MEDIA_SECTIONS {
            return Err(ParseError("sdp_offer has more than 16 m-lines"));
        }
        for m in &session.medias {
            if m.fmt.split_ascii_whitespace().count() == 0 {
                return Err(ParseError("sdp_offer has an m-line without formats"));
            }
        }
        Ok(Offer { session })
    }

    /// The offered m-lines' media types in offer order (`audio`, `video`, `application`).
    pub fn media_kinds(&self) -> impl Iterator<Item = &str> {
        self.session.medias.iter().map(|m| m.media.as_str())
    }
}

/// Decides what the server serves of `offer` for a channel with these codecs.
pub fn negotiate(
    offer: &Offer,
    audio_codec: AudioCodec,
    video_codec: VideoCodec,
) -> Result<Negotiation, Unacceptable> {
    let session = &offer.session;
    let bundle_mids: Option<Vec<&str>> = attr_values(&session.attributes, "group")
        .filter_map(|v| {
            let mut words = v.split_ascii_whitespace();
            (words.next() == Some("BUNDLE")).then(|| words.collect::<Vec<_>>())
        })
        .next();
    let in_bundle = |m: &sdp_types::Media| match (&bundle_mids, mid_of(m)) {
        (None, _) => true,
        (Some(mids), Some(mid)) => mids.contains(&mid),
        (Some(_), None) => false,
    };

    // Audio: the first audio m-line that is not disabled.
    let audio_idx = session
        .medias
        .iter()
        .position(|m| m.media == "audio" && enabled(m))
        .ok_or(Unacceptable("no audio m-line"))?;
    let audio_m = &session.medias[audio_idx];
    if !dtls_srtp(audio_m) {
        return Err(Unacceptable("audio is not UDP/TLS/RTP/SAVPF (DTLS-SRTP)"));
    }
    if !in_bundle(audio_m) {
        return Err(Unacceptable("audio is not in the BUNDLE group"));
    }

    // Transport: the first BUNDLE mid's m-line (RFC 8843 section 7.2.1, the offerer-tagged
    // m-line), or the audio m-line without BUNDLE; credentials fall back to session level.
    let transport = bundle_mids
        .as_ref()
        .and_then(|mids| mids.first())
        .and_then(|first| session.medias.iter().find(|m| mid_of(m) == Some(first)))
        .unwrap_or(audio_m);
    let setup = attr(&transport.attributes, "setup").or(attr(&session.attributes, "setup"));
    if setup == Some("passive") {
        return Err(Unacceptable(
            "a=setup:passive: the server is the passive (DTLS server) side",
        ));
    }
    let fingerprint = fingerprint_of(&transport.attributes)
        .or_else(|| fingerprint_of(&session.attributes))
        .ok_or(Unacceptable("no DTLS fingerprint (a=fingerprint:sha-256)"))?;
    let ufrag = attr(&transport.attributes, "ice-ufrag").or(attr(&session.attributes, "ice-ufrag"));
    let pwd = attr(&transport.attributes, "ice-pwd").or(attr(&session.attributes, "ice-pwd"));
    let (ufrag, pwd) = match (ufrag, pwd) {
        // RFC 8839 section 5.4: ufrag 4..=256 characters, pwd 22..=256.
        (Some(u), Some(p))
            if (4..=256).contains(&u.len())
                && (22..=256).contains(&p.len())
                && u.bytes().chain(p.bytes()).all(ice_char) =>
        {
            (u.to_string(), p.to_string())
        }
        _ => return Err(Unacceptable("no ICE credentials (a=ice-ufrag, a=ice-pwd)")),
    };
    if !has_attr(&audio_m.attributes, "rtcp-mux") {
        return Err(Unacceptable("not rtcp-mux"));
    }

    let audio_mid = mid_string(audio_m).ok_or(Unacceptable("a=mid longer than 16 bytes"))?;
    let (audio_pt, encoding) = audio_format(audio_m, audio_codec).ok_or(match audio_codec {
        AudioCodec::Pcmu => Unacceptable("the channel's codec PCMU is not offered"),
        AudioCodec::Opus => Unacceptable("the channel's codec opus is not offered"),
    })?;
    let (send, recv) = directions(audio_m, session);
    let audio = Track {
        pt: audio_pt,
        mid: audio_mid,
        ext_mid: extmap_id(audio_m, EXT_MID),
        ext_audio_level: extmap_id(audio_m, EXT_AUDIO_LEVEL),
        ssrc: primary_ssrc(audio_m),
        send,
        recv,
    };

    let mut lines: Vec<Served> = session.medias.iter().map(|_| Served::Rejected).collect();
    lines[audio_idx] = Served::Audio {
        encoding,
        fmtp: fmtp_of(audio_m, audio_pt),
    };

    // Video: only bundled with the audio (one 5-tuple), so both need a mid.
    let bundle = bundle_mids.is_some() && !audio.mid.is_empty();
    let mut video = None;
    if bundle {
        let found = session.medias.iter().enumerate().find(|(_, m)| {
            m.media == "video"
                && enabled(m)
                && dtls_srtp(m)
                && in_bundle(m)
                && has_attr(&m.attributes, "rtcp-mux")
        });
        if let Some((idx, m)) = found
            && let Some(mid) = mid_string(m).filter(|mid| !mid.is_empty() && *mid != audio.mid)
            && let Some((pt, encoding)) = video_format(m, video_codec)
        {
            let (send, recv) = directions(m, session);
            let fid = fid_group(m);
            let feedback = |kind: &str| rtcp_fb(m, pt).any(|fb| fb == kind);
            video = Some(VideoTrack {
                track: Track {
                    pt,
                    mid,
                    ext_mid: extmap_id(m, EXT_MID),
                    ext_audio_level: None,
                    ssrc: fid.map(|(p, _)| p).or_else(|| primary_ssrc(m)),
                    send,
                    recv,
                },
                rtx_pt: rtx_for(m, pt),
                rtx_ssrc: fid.map(|(_, r)| r),
                nack: feedback("nack"),
                pli: feedback("nack pli"),
                fir: feedback("ccm fir"),
            });
            lines[idx] = Served::Video {
                encoding,
                fmtp: fmtp_of(m, pt),
            };
        }
    }

    Ok(Negotiation {
        audio,
        video,
        remote: RemoteIce {
            ufrag,
            pwd,
            fingerprint,
        },
        lines,
        bundle,
    })
}

/// Writes the answer (PROTOCOL.md section 4) for `negotiation` of `offer`.
pub fn answer(offer: &Offer, negotiation: &Negotiation, local: &Local<'_>) -> String {
    let mut s = String::with_capacity(1024);
    let ip_kind = if local.ip.is_ipv4() { "IP4" } else { "IP6" };
    // RFC 8866 section 5.2: any numeric session id unique to this answer; the per-peer ufrag
    // is, so derive the id from it (FNV-1a, 63 bits so it stays a positive integer).
    let sess_id = local.ufrag.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) >> 1;
    // Writing into a String cannot fail; the results are ignored below for that reason.
    let _ = write!(
        s,
        "v=0\r\no=livechatd {sess_id} 1 IN {ip_kind} {ip}\r\ns=-\r\nt=0 0\r\n",
        ip = local.ip
    );
    if negotiation.bundle {
        s.push_str("a=group:BUNDLE");
        for (m, served) in offer.session.medias.iter().zip(&negotiation.lines) {
            if *served != Served::Rejected
                && let Some(mid) = mid_of(m)
            {
                s.push(' ');
                s.push_str(mid);
            }
        }
        s.push_str("\r\n");
    }
    s.push_str("a=ice-lite\r\n");

    for (m, served) in offer.session.medias.iter().zip(&negotiation.lines) {
        let (track, encoding, fmtp) = match served {
            Served::Rejected => {
                let _ = write!(
                    s,
                    "m={} 0 {} {}\r\nc=IN {ip_kind} {}\r\n",
                    m.media,
                    m.proto,
                    m.fmt,
                    unspecified(local.ip)
                );
                if let Some(mid) = mid_of(m) {
                    let _ = write!(s, "a=mid:{mid}\r\n");
                }
                continue;
            }
            Served::Audio { encoding, fmtp } => (&negotiation.audio, encoding, fmtp),
            Served::Video { encoding, fmtp } => match &negotiation.video {
                Some(v) => (&v.track, encoding, fmtp),
                None => continue,
            },
        };
        let video = match served {
            Served::Video { .. } => negotiation.video.as_ref(),
            _ => None,
        };
        let rtx = video.and_then(|v| v.rtx_pt);
        let _ = write!(s, "m={} {} {} {}", m.media, local.port, m.proto, track.pt);
        if let Some(rtx) = rtx {
            let _ = write!(s, " {rtx}");
        }
        let _ = write!(s, "\r\nc=IN {ip_kind} {}\r\n", local.ip);
        if !track.mid.is_empty() {
            let _ = write!(s, "a=mid:{}\r\n", track.mid);
        }
        // RFC 3264 section 6.1: the answer reverses the offer's direction.
        let dir = match (track.send, track.recv) {
            (true, true) => "sendrecv",
            (true, false) => "recvonly",
            (false, true) => "sendonly",
            (false, false) => "inactive",
        };
        let _ = write!(
            s,
            "a={dir}\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\n\
             a=setup:passive\r\na=rtcp-mux\r\n",
            local.ufrag, local.pwd, local.fingerprint
        );
        if let Some(id) = track.ext_mid {
            let _ = write!(s, "a=extmap:{id} {EXT_MID}\r\n");
        }
        if let Some(id) = track.ext_audio_level {
            let _ = write!(s, "a=extmap:{id} {EXT_AUDIO_LEVEL}\r\n");
        }
        let _ = write!(s, "a=rtpmap:{} {encoding}\r\n", track.pt);
        if let Some(fmtp) = fmtp {
            let _ = write!(s, "a=fmtp:{} {fmtp}\r\n", track.pt);
        }
        if let Some(v) = video {
            for (on, fb) in [(v.nack, "nack"), (v.pli, "nack pli"), (v.fir, "ccm fir")] {
                if on {
                    let _ = write!(s, "a=rtcp-fb:{} {fb}\r\n", track.pt);
                }
            }
        }
        if let Some(rtx) = rtx {
            let _ = write!(
                s,
                "a=rtpmap:{rtx} rtx/90000\r\na=fmtp:{rtx} apt={}\r\n",
                track.pt
            );
        }
        // RFC 8445 section 5.1.2.1 priority for a host candidate: type preference 126,
        // local preference 65535, component 1.
        let _ = write!(
            s,
            "a=candidate:1 1 udp 2130706431 {} {} typ host\r\na=end-of-candidates\r\n",
            local.ip, local.port
        );
    }
    s
}

/// `urn:ietf:params:rtp-hdrext:sdes:mid` (RFC 8843 section 15.1).
const EXT_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// `urn:ietf:params:rtp-hdrext:ssrc-audio-level` (RFC 6464).
const EXT_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

fn attr_values<'a>(
    attrs: &'a [sdp_types::Attribute],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    attrs
        .iter()
        .filter(move |a| a.attribute.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or("").trim())
}

fn attr<'a>(attrs: &'a [sdp_types::Attribute], name: &'a str) -> Option<&'a str> {
    attr_values(attrs, name).next()
}

fn has_attr(attrs: &[sdp_types::Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.attribute.eq_ignore_ascii_case(name))
}

fn mid_of(m: &sdp_types::Media) -> Option<&str> {
    attr(&m.attributes, "mid").filter(|mid| !mid.is_empty())
}

/// The m-line's mid as the core keeps it; `None` when it is too long, empty when absent.
fn mid_string(m: &sdp_types::Media) -> Option<heapless::String<MAX_MID_LEN>> {
    heapless::String::try_from(mid_of(m).unwrap_or("")).ok()
}

/// Not disabled: a non-zero port, or port 0 with `a=bundle-only` (RFC 8843 section 6).
fn enabled(m: &sdp_types::Media) -> bool {
    m.port != 0 || has_attr(&m.attributes, "bundle-only")
}

/// The DTLS-SRTP profiles (RFC 5764 section 8).
fn dtls_srtp(m: &sdp_types::Media) -> bool {
    m.proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF")
        || m.proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVP")
}

/// RFC 8839 section 5.4 `ice-char`: ALPHA / DIGIT / "+" / "/".
fn ice_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn fingerprint_of(attrs: &[sdp_types::Attribute]) -> Option<Fingerprint> {
    attr_values(attrs, "fingerprint").find_map(|v| {
        let (hash, value) = v.split_once(' ')?;
        hash.eq_ignore_ascii_case("sha-256")
            .then(|| Fingerprint::parse(value.trim()))
            .flatten()
    })
}

/// Payload types in `m=` order.
fn formats(m: &sdp_types::Media) -> impl Iterator<Item = u8> + '_ {
    m.fmt
        .split_ascii_whitespace()
        .filter_map(|f| f.parse().ok())
}

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]` for `pt`: (name, clock, channels).
fn rtpmap(m: &sdp_types::Media, pt: u8) -> Option<(&str, u32, Option<&str>)> {
    attr_values(&m.attributes, "rtpmap").find_map(|v| {
        let (p, enc) = v.split_once(' ')?;
        if p.parse::<u8>().ok()? != pt {
            return None;
        }
        let mut parts = enc.trim().split('/');
        let name = parts.next()?;
        let clock = parts.next()?.parse().ok()?;
        Some((name, clock, parts.next()))
    })
}

fn fmtp_of(m: &sdp_types::Media, pt: u8) -> Option<String> {
    attr_values(&m.attributes, "fmtp").find_map(|v| {
        let (p, params) = v.split_once(' ')?;
        (p.parse::<u8>().ok()? == pt).then(|| params.trim().to_string())
    })
}

/// The channel's audio codec among the offered formats: payload type and encoding.
fn audio_format(m: &sdp_types::Media, codec: AudioCodec) -> Option<(u8, String)> {
    formats(m).find_map(|pt| match (codec, rtpmap(m, pt)) {
        (AudioCodec::Pcmu, Some((name, 8000, _))) if name.eq_ignore_ascii_case("PCMU") => {
            Some((pt, format!("{name}/8000")))
        }
        // RFC 3551 section 6: payload type 0 is PCMU without an rtpmap.
        (AudioCodec::Pcmu, None) if pt == 0 => Some((0, "PCMU/8000".to_string())),
        // RFC 7587 section 7: opus is always signalled as 48000/2.
        (AudioCodec::Opus, Some((name, 48000, Some("2")))) if name.eq_ignore_ascii_case("opus") => {
            Some((pt, format!("{name}/48000/2")))
        }
        _ => None,
    })
}

/// The channel's video codec among the offered formats: payload type and encoding.
fn video_format(m: &sdp_types::Media, codec: VideoCodec) -> Option<(u8, String)> {
    formats(m).find_map(|pt| {
        let (name, clock, _) = rtpmap(m, pt)?;
        if clock != 90000 {
            return None;
        }
        let ok = match codec {
            VideoCodec::Vp8 => name.eq_ignore_ascii_case("VP8"),
            VideoCodec::H264 => {
                name.eq_ignore_ascii_case("H264")
                    && fmtp_of(m, pt).is_some_and(|f| {
                        f.split(';')
                            .any(|p| p.trim().eq_ignore_ascii_case("packetization-mode=1"))
                    })
            }
        };
        ok.then(|| (pt, format!("{name}/90000")))
    })
}

/// The RTX payload type whose `apt` is `pt` (RFC 4588 section 8.6).
fn rtx_for(m: &sdp_types::Media, pt: u8) -> Option<u8> {
    formats(m).find(|&rtx| {
        rtpmap(m, rtx)
            .is_some_and(|(name, clock, _)| name.eq_ignore_ascii_case("rtx") && clock == 90000)
            && fmtp_of(m, rtx).is_some_and(|f| {
                f.split(';').any(|p| {
                    p.trim()
                        .strip_prefix("apt=")
                        .and_then(|a| a.parse::<u8>().ok())
                        == Some(pt)
                })
            })
    })
}

/// The feedback types offered for `pt` (or for `*`), e.g. `nack`, `nack pli`, `ccm fir`.
fn rtcp_fb(m: &sdp_types::Media, pt: u8) -> impl Iterator<Item = &str> + '_ {
    attr_values(&m.attributes, "rtcp-fb").filter_map(move |v| {
        let (p, fb) = v.split_once(' ')?;
        (p == "*" || p.parse::<u8>().ok() == Some(pt)).then(|| fb.trim())
    })
}

/// The ID the offer gives the header extension `uri` (`a=extmap:<id>[/<dir>] <uri>`).
fn extmap_id(m: &sdp_types::Media, uri: &str) -> Option<u8> {
    attr_values(&m.attributes, "extmap").find_map(|v| {
        let mut words = v.split_ascii_whitespace();
        let id = words.next()?.split('/').next()?.parse::<u8>().ok()?;
        (words.next()? == uri && id != 0).then_some(id)
    })
}

/// `a=ssrc-group:FID <primary> <rtx>` (RFC 4588 section 8.7).
fn fid_group(m: &sdp_types::Media) -> Option<(u32, u32)> {
    attr_values(&m.attributes, "ssrc-group").find_map(|v| {
        let mut words = v.split_ascii_whitespace();
        if words.next()? != "FID" {
            return None;
        }
        Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
    })
}

fn primary_ssrc(m: &sdp_types::Media) -> Option<u32> {
    fid_group(m).map(|(p, _)| p).or_else(|| {
        attr_values(&m.attributes, "ssrc")
            .find_map(|v| v.split_ascii_whitespace().next()?.parse().ok())
    })
}

/// The client's (send, recv) from the offer's direction (media level, else session level,
/// else `sendrecv`; RFC 3264 section 5.1).
fn directions(m: &sdp_types::Media, session: &sdp_types::Session) -> (bool, bool) {
    const DIRS: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
    let find = |attrs: &[sdp_types::Attribute]| {
        attrs.iter().find_map(|a| {
            DIRS.iter()
                .find(|d| a.attribute.eq_ignore_ascii_case(d))
                .copied()
        })
    };
    match find(&m.attributes).or_else(|| find(&session.attributes)) {
        Some("sendonly") => (true, false),
        Some("recvonly") => (false, true),
        Some("inactive") => (false, false),
        _ => (true, true),
    }
}

fn unspecified(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "0.0.0.0" } else { "::" }
}

#[cfg(test)]
mod tests;
