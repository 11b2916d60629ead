//! What the relay keeps for a WebRTC endpoint (PROTOCOL.md section 4): its id for the
//! driver, the tracks its SDP answer accepted, and its DTLS-SRTP keys.

use crate::srtp::Context;

/// A media endpoint's id as the driver knows it: the endpoint's slot and a serial number
/// the relay gives each endpoint it adds, so an id kept after the endpoint went never
/// reaches the endpoint that reuses its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaId {
    slot: u32,
    serial: u32,
}

impl MediaId {
    pub(crate) const fn new(slot: u32, serial: u32) -> Self {
        MediaId { slot, serial }
    }

    /// The id as one number (slot in the high 32 bits, serial in the low).
    pub const fn to_u64(self) -> u64 {
        ((self.slot as u64) << 32) | self.serial as u64
    }

    /// The id [`MediaId::to_u64`] gave.
    pub const fn from_u64(v: u64) -> Self {
        MediaId {
            slot: (v >> 32) as u32,
            serial: v as u32,
        }
    }

    /// The endpoint's slot.
    pub const fn slot(self) -> usize {
        self.slot as usize
    }

    pub(crate) const fn serial(self) -> u32 {
        self.serial
    }
}

/// One m-line the SDP answer accepted, as the relay uses it. `send` and `recv` are the
/// directions the answer gives the client: `recv` means the client receives this kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Track {
    /// The payload type the offer gave the channel's codec.
    pub pt: u8,
    /// The m-line's `a=mid`.
    pub mid: heapless::String<16>,
    /// The offer's extension id for `urn:ietf:params:rtp-hdrext:sdes:mid`.
    pub ext_mid: Option<u8>,
    /// The offer's extension id for `urn:ietf:params:rtp-hdrext:ssrc-audio-level`.
    pub ext_audio_level: Option<u8>,
    /// The client's SSRC for this m-line: from the offer's `a=ssrc`, or learned from its
    /// first authenticated RTP.
    pub ssrc: Option<u32>,
    /// The client sends this kind.
    pub send: bool,
    /// The client receives this kind.
    pub recv: bool,
}

/// The video m-line the answer accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoTrack {
    /// The video codec's payload type, mid, extensions, SSRC and directions.
    pub track: Track,
    /// The payload type of its RTX (RFC 4588), when the offer has one for the codec.
    pub rtx_pt: Option<u8>,
    /// The client's RTX SSRC (`a=ssrc-group:FID`, or learned).
    pub rtx_ssrc: Option<u32>,
    /// The client takes `nack` (RFC 4585).
    pub nack: bool,
    /// The client takes `nack pli`.
    pub pli: bool,
    /// The client takes `ccm fir` (RFC 5104).
    pub fir: bool,
}

/// A WebRTC endpoint's accepted tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRtc {
    /// Audio.
    pub audio: Track,
    /// Video, when the answer accepted it.
    pub video: Option<VideoTrack>,
}

/// Which of its endpoint's streams an SSRC is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The audio stream (a radio's one SSRC).
    Audio,
    /// The video stream.
    Video,
    /// The video's retransmissions (RFC 4588).
    Rtx,
}

impl WebRtc {
    /// The role of `ssrc`, one of the client's.
    pub fn role(&self, ssrc: u32) -> Option<Role> {
        let v = self.video.as_ref();
        if self.audio.ssrc == Some(ssrc) {
            Some(Role::Audio)
        } else if v.is_some_and(|v| v.track.ssrc == Some(ssrc)) {
            Some(Role::Video)
        } else if v.is_some_and(|v| v.rtx_ssrc == Some(ssrc)) {
            Some(Role::Rtx)
        } else {
            None
        }
    }

    /// The role a packet of payload type `pt` from a new SSRC would take: the stream of
    /// that payload type whose SSRC is not known yet, the client sending it.
    pub fn unlearned_role(&self, pt: u8) -> Option<Role> {
        let a = &self.audio;
        if a.pt == pt && a.send && a.ssrc.is_none() {
            return Some(Role::Audio);
        }
        let v = self.video.as_ref().filter(|v| v.track.send)?;
        if v.track.pt == pt && v.track.ssrc.is_none() {
            Some(Role::Video)
        } else if v.rtx_pt == Some(pt) && v.rtx_ssrc.is_none() {
            Some(Role::Rtx)
        } else {
            None
        }
    }

    /// Records `ssrc` as the stream of `role`.
    pub(crate) fn learn(&mut self, role: Role, ssrc: u32) {
        match (role, self.video.as_mut()) {
            (Role::Audio, _) => self.audio.ssrc = Some(ssrc),
            (Role::Video, Some(v)) => v.track.ssrc = Some(ssrc),
            (Role::Rtx, Some(v)) => v.rtx_ssrc = Some(ssrc),
            _ => {}
        }
    }

    /// Whether the client receives video.
    pub fn takes_video(&self) -> bool {
        self.video.as_ref().is_some_and(|v| v.track.recv)
    }
}

/// A WebRTC endpoint's keys, from the DTLS-SRTP handshake (RFC 5764 section 4.2).
// Endpoints are fixed-size rows of a table; see `Keys`.
#[allow(clippy::large_enum_variant)]
pub enum DtlsKeys {
    /// The handshake has not finished: no media either way.
    Pending,
    /// Done.
    Keyed {
        /// Unprotects what the client sends (its write key).
        inbound: Context,
        /// Protects what the server sends it.
        outbound: Context,
    },
    /// The handshake failed or did not finish in time: no media either way, until the
    /// client leaves and joins again.
    Failed,
}
