//! A channel's codecs (PROTOCOL.md v2 section 1): one audio codec every member sends and
//! one video codec for the members that send video. The server never transcodes, so these
//! decide what a WebRTC answer accepts and which payload type a radio's packets carry.

/// A channel's audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Codec {
    /// G.711 mu-law (RFC 3551 section 4.5.14), static payload type 0.
    #[default]
    Pcmu,
    /// Opus (RFC 7587), 48 kHz, two channels in SDP; radios send it with payload type 111.
    Opus,
}

impl Codec {
    /// The codec named `name` on the wire (`PCMU` or `opus`, in any case: SDP encoding
    /// names are case-insensitive, RFC 4855 section 3).
    pub fn from_name(name: &str) -> Option<Codec> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Codec::Pcmu)
        } else if name.eq_ignore_ascii_case("opus") {
            Some(Codec::Opus)
        } else {
            None
        }
    }

    /// The name shown in channel fields and used in SDP.
    pub const fn as_str(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Opus => "opus",
        }
    }

    /// The payload type radios (SDES and plain RTP) send and receive: 0 for PCMU (static,
    /// RFC 3551), 111 for Opus (dynamic; the number WebRTC stacks use for it).
    pub const fn radio_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Opus => 111,
        }
    }
}

/// A channel's video codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    #[default]
    Vp8,
    /// H.264 with packetization-mode=1 (RFC 6184).
    H264,
}

impl VideoCodec {
    /// The codec named `name` on the wire (`VP8` or `H264`, in any case).
    pub fn from_name(name: &str) -> Option<VideoCodec> {
        if name.eq_ignore_ascii_case("VP8") {
            Some(VideoCodec::Vp8)
        } else if name.eq_ignore_ascii_case("H264") {
            Some(VideoCodec::H264)
        } else {
            None
        }
    }

    /// The name shown in channel fields and used in SDP.
    pub const fn as_str(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::H264 => "H264",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ignore_case() {
        for c in [Codec::Pcmu, Codec::Opus] {
            assert_eq!(Codec::from_name(c.as_str()), Some(c));
        }
        for v in [VideoCodec::Vp8, VideoCodec::H264] {
            assert_eq!(VideoCodec::from_name(v.as_str()), Some(v));
        }
        assert_eq!(Codec::from_name("pcmu"), Some(Codec::Pcmu));
        assert_eq!(Codec::from_name("OPUS"), Some(Codec::Opus));
        assert_eq!(VideoCodec::from_name("h264"), Some(VideoCodec::H264));
        for bad in ["", "PCMA", "G722", "opus/48000", " PCMU"] {
            assert_eq!(Codec::from_name(bad), None, "{bad}");
        }
        assert_eq!(VideoCodec::from_name("VP9"), None);
        assert_eq!((Codec::Pcmu.radio_pt(), Codec::Opus.radio_pt()), (0, 111));
    }
}
