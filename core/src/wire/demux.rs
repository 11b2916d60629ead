//! RFC 7983 first-byte demultiplexing of the media port.
//!
//! Every protocol on the media port (PROTOCOL.md section 2) shares one UDP socket, so the
//! first byte of each datagram says what it is
//! ([RFC 7983 section 7](https://www.rfc-editor.org/rfc/rfc7983#section-7), which updates
//! [RFC 5764 section 5.1.2](https://www.rfc-editor.org/rfc/rfc5764#section-5.1.2)):
//!
//! ```text
//!                  +----------------+
//!                  |        [0..3] -+--> forward to STUN
//!                  |                |
//!                  |      [16..19] -+--> forward to ZRTP       (Unknown here)
//!                  |                |
//!      packet -->  |      [20..63] -+--> forward to DTLS
//!                  |                |
//!                  |      [64..79] -+--> forward to TURN Channel (Unknown here)
//!                  |                |
//!                  |    [128..191] -+--> forward to RTP/RTCP
//!                  +----------------+
//! ```
//!
//! RTP and RTCP are then told apart by the second byte
//! ([RFC 5761 section 4](https://www.rfc-editor.org/rfc/rfc5761#section-4)): RTCP packet
//! types 192..=223 sit where an RTP marker bit and payload type 64..=95 would, which is why
//! RTP must not use those payload types when multiplexed with RTCP.
//!
//! This is only a routing decision: each kind still goes through its own checked parser.

/// What a datagram on the media port is, from its first one or two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// STUN (first byte 0..=3): ICE connectivity checks.
    Stun,
    /// DTLS (first byte 20..=63): the DTLS-SRTP handshake.
    Dtls,
    /// RTP (first byte 128..=191, second byte outside 192..=223): media, plain or SRTP.
    Rtp,
    /// RTCP (first byte 128..=191, second byte 192..=223): control, plain or SRTCP.
    Rtcp,
    /// Anything else: empty, ZRTP, TURN channel data, an RTP-range byte with nothing after
    /// it, or a range RFC 7983 leaves unassigned. Dropped and counted.
    Unknown,
}

/// Classifies a datagram by its first byte (RFC 7983) and, in the RTP range, its second
/// (RFC 5761 section 4). Never panics; looks at no more than two bytes.
pub fn classify(buf: &[u8]) -> Kind {
    match buf {
        [0..=3, ..] => Kind::Stun,
        [20..=63, ..] => Kind::Dtls,
        // An RTP or RTCP header is at least 8 bytes, but one byte is all it takes to
        // be unusable: without the second byte we cannot even tell which parser to use.
        [128..=191, 192..=223, ..] => Kind::Rtcp,
        [128..=191, _, ..] => Kind::Rtp,
        _ => Kind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// First byte alone, with a second byte that is plain RTP (PT 0, no marker).
    fn first(b: u8) -> Kind {
        classify(&[b, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    #[test]
    fn stun_range_boundaries() {
        assert_eq!(first(0), Kind::Stun);
        assert_eq!(first(3), Kind::Stun);
        assert_eq!(first(4), Kind::Unknown);
        // A STUN Binding Request header (RFC 5389 section 6) starts 0x00 0x01.
        assert_eq!(
            classify(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]),
            Kind::Stun
        );
    }

    #[test]
    fn zrtp_is_unknown() {
        assert_eq!(first(15), Kind::Unknown);
        assert_eq!(first(16), Kind::Unknown);
        assert_eq!(first(19), Kind::Unknown);
    }

    #[test]
    fn dtls_range_boundaries() {
        assert_eq!(first(19), Kind::Unknown);
        assert_eq!(first(20), Kind::Dtls);
        assert_eq!(first(63), Kind::Dtls);
        assert_eq!(first(64), Kind::Unknown);
        // A DTLS 1.2 handshake record: content type 22, version 0xfefd.
        assert_eq!(classify(&[22, 0xfe, 0xfd, 0, 0]), Kind::Dtls);
    }

    #[test]
    fn turn_channel_and_gap_are_unknown() {
        assert_eq!(first(64), Kind::Unknown);
        assert_eq!(first(79), Kind::Unknown);
        assert_eq!(first(80), Kind::Unknown);
        assert_eq!(first(127), Kind::Unknown);
    }

    #[test]
    fn rtp_range_boundaries() {
        assert_eq!(first(127), Kind::Unknown);
        assert_eq!(first(128), Kind::Rtp);
        assert_eq!(first(191), Kind::Rtp);
        assert_eq!(first(192), Kind::Unknown);
        assert_eq!(first(255), Kind::Unknown);
    }

    #[test]
    fn rtcp_by_second_byte() {
        // 191: marker bit and PT 63, still RTP.
        assert_eq!(classify(&[0x80, 191]), Kind::Rtp);
        // 192: RTCP FIR (RFC 2032), the bottom of the RTCP range.
        assert_eq!(classify(&[0x80, 192]), Kind::Rtcp);
        // 200 SR, 201 RR: the usual first packet of a compound.
        assert_eq!(classify(&[0x80, 200]), Kind::Rtcp);
        assert_eq!(classify(&[0x81, 201]), Kind::Rtcp);
        // 223: the top of the range RFC 5761 reserves.
        assert_eq!(classify(&[0x80, 223]), Kind::Rtcp);
        // 224: marker bit and PT 96, the first dynamic payload type: RTP.
        assert_eq!(classify(&[0x80, 224]), Kind::Rtp);
        // Opus on PT 111 without and with the marker bit.
        assert_eq!(classify(&[0x80, 111]), Kind::Rtp);
        assert_eq!(classify(&[0x80, 0x80 | 111]), Kind::Rtp);
        // The RTCP decision holds across the whole first-byte range.
        assert_eq!(classify(&[191, 192]), Kind::Rtcp);
        assert_eq!(classify(&[128, 223]), Kind::Rtcp);
    }

    #[test]
    fn short_datagrams() {
        assert_eq!(classify(&[]), Kind::Unknown);
        // One byte in the RTP range cannot be told apart: Unknown.
        assert_eq!(classify(&[0x80]), Kind::Unknown);
        assert_eq!(classify(&[191]), Kind::Unknown);
        // One byte elsewhere is classified by that byte; its parser rejects it.
        assert_eq!(classify(&[0x00]), Kind::Stun);
        assert_eq!(classify(&[22]), Kind::Dtls);
        assert_eq!(classify(&[100]), Kind::Unknown);
    }

    /// The rule written out the long way, as a model for the property test.
    fn model(buf: &[u8]) -> Kind {
        let Some(&b0) = buf.first() else {
            return Kind::Unknown;
        };
        if b0 <= 3 {
            Kind::Stun
        } else if (20..=63).contains(&b0) {
            Kind::Dtls
        } else if (128..=191).contains(&b0) {
            match buf.get(1) {
                None => Kind::Unknown,
                Some(b1) if (192..=223).contains(b1) => Kind::Rtcp,
                Some(_) => Kind::Rtp,
            }
        } else {
            Kind::Unknown
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn classify_matches_model(buf in proptest::collection::vec(any::<u8>(), 0..16)) {
            prop_assert_eq!(classify(&buf), model(&buf));
        }
    }
}
