//! Tests of the RTP view and emitter: RFC 7714 and WebRTC packets, every error at its
//! boundary, and property tests that arbitrary bytes never panic and that emit then parse
//! round-trips.

use super::*;
use proptest::prelude::*;

/// RFC 7714 section 16.1 (the plaintext RTP packet of the AES-GCM vectors,
/// <https://www.rfc-editor.org/rfc/rfc7714#section-16.1>): header `8040f17b 8041f8d3
/// 5501a0b2`, payload "Gallia est omnis divisa in partes tres".
const RFC7714_RTP: [u8; 50] = [
    0x80, 0x40, 0xf1, 0x7b, 0x80, 0x41, 0xf8, 0xd3, 0x55, 0x01, 0xa0, 0xb2, 0x47, 0x61, 0x6c, 0x6c,
    0x69, 0x61, 0x20, 0x65, 0x73, 0x74, 0x20, 0x6f, 0x6d, 0x6e, 0x69, 0x73, 0x20, 0x64, 0x69, 0x76,
    0x69, 0x73, 0x61, 0x20, 0x69, 0x6e, 0x20, 0x70, 0x61, 0x72, 0x74, 0x65, 0x73, 0x20, 0x74, 0x72,
    0x65, 0x73,
];

/// An Opus packet laid out as libwebrtc sends the first packet of a talkspurt with the
/// RFC 8285 one-byte header extensions ssrc-audio-level (id 1) and transport-wide-cc
/// (id 3). Built byte by byte, not captured.
const WEBRTC_OPUS: [u8; 28] = [
    0x90, // V=2, P=0, X=1, CC=0
    0xef, // M=1 (start of talkspurt), PT=111 (Opus, as Chrome offers it)
    0x1a, 0x2b, // sequence number 6699
    0x00, 0x01, 0xe2, 0x40, // timestamp 123456 (48 kHz clock)
    0x3c, 0x5d, 0x7e, 0x9f, // SSRC
    0xbe, 0xde, // profile 0xBEDE: RFC 8285 one-byte elements
    0x00, 0x02, // length: 2 words of elements follow
    0x10, 0x9e, // id 1 len 1: voice activity set, level -30 dBov
    0x31, 0x00, 0x2a, // id 3 len 2 (L=1): transport-wide sequence number 42
    0x00, 0x00, 0x00, // zero padding to the word boundary
    0x78, 0x0b, 0xe4, 0xc1, // Opus: TOC byte 0x78 (config 15, mono, one frame), data
];

/// A mixer's packet: two CSRCs, payload, then 4 bytes of padding (count byte 4).
const MIXED_PADDED: [u8; 32] = [
    0xa2, // V=2, P=1, X=0, CC=2
    0x00, // M=0, PT=0 (PCMU)
    0x00, 0x07, // seq 7
    0x00, 0x00, 0x03, 0x20, // timestamp 800
    0xde, 0xad, 0xbe, 0xef, // SSRC
    0x11, 0x11, 0x11, 0x11, // CSRC 1
    0x22, 0x22, 0x22, 0x22, // CSRC 2
    0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, // 8 bytes of PCMU
    0x00, 0x00, 0x00, 0x04, // padding: 3 zeros and the count 4
];

#[test]
fn rfc7714_packet() {
    let p = Packet::new_checked(&RFC7714_RTP[..]).unwrap();
    assert_eq!(p.version(), 2);
    assert!(!p.has_padding());
    assert!(!p.has_extension());
    assert_eq!(p.csrc_count(), 0);
    assert!(!p.marker());
    assert_eq!(p.payload_type(), 0x40);
    assert_eq!(p.seq_number(), 0xf17b);
    assert_eq!(p.timestamp(), 0x8041_f8d3);
    assert_eq!(p.ssrc(), 0x5501_a0b2);
    assert_eq!(p.header_len(), 12);
    assert_eq!(p.extension(), None);
    assert_eq!(p.padding_len(), 0);
    assert_eq!(p.payload(), b"Gallia est omnis divisa in partes tres");
}

#[test]
fn webrtc_opus_with_one_byte_extension() {
    let p = Packet::new_checked(&WEBRTC_OPUS[..]).unwrap();
    assert!(p.marker());
    assert_eq!(p.payload_type(), 111);
    assert_eq!(p.seq_number(), 6699);
    assert_eq!(p.timestamp(), 123_456);
    assert_eq!(p.ssrc(), 0x3c5d_7e9f);
    assert!(p.has_extension());
    let ext = p.extension().unwrap();
    assert_eq!(ext.profile, 0xbede);
    assert_eq!(ext.data, &[0x10, 0x9e, 0x31, 0x00, 0x2a, 0, 0, 0]);
    assert_eq!(p.header_len(), 12 + 4 + 8);
    assert_eq!(p.payload(), &[0x78, 0x0b, 0xe4, 0xc1]);
}

#[test]
fn csrcs_and_padding() {
    let p = Packet::new_checked(&MIXED_PADDED[..]).unwrap();
    assert_eq!(p.csrc_count(), 2);
    assert_eq!(p.csrcs().len(), 2);
    assert_eq!(p.csrcs().collect::<Vec<_>>(), [0x1111_1111, 0x2222_2222]);
    assert_eq!(p.csrc(0), Some(0x1111_1111));
    assert_eq!(p.csrc(1), Some(0x2222_2222));
    assert_eq!(p.csrc(2), None);
    assert_eq!(p.header_len(), 20);
    assert!(p.has_padding());
    assert_eq!(p.padding_len(), 4);
    assert_eq!(
        p.payload(),
        &[0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8]
    );
}

#[test]
fn padding_may_fill_everything_after_the_header() {
    // A padding-only packet (as used for bandwidth probing): count = len - header.
    let mut buf = [0u8; 16];
    buf[..12].copy_from_slice(&RFC7714_RTP[..12]);
    buf[0] |= PADDING_BIT;
    buf[15] = 4;
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.padding_len(), 4);
    assert_eq!(p.payload(), &[] as &[u8]);
    // A header with nothing after it is fine too.
    let p = Packet::new_checked(&RFC7714_RTP[..12]).unwrap();
    assert_eq!(p.payload(), &[] as &[u8]);
}

#[test]
fn rejects_truncated() {
    assert_eq!(Packet::new_checked(&[][..]), Err(Error::Truncated));
    assert_eq!(
        Packet::new_checked(&RFC7714_RTP[..11]),
        Err(Error::Truncated)
    );
    // CC=2 but only one CSRC present.
    assert_eq!(
        Packet::new_checked(&MIXED_PADDED[..16]),
        Err(Error::Truncated)
    );
    // CC=15 needs 72 bytes.
    let mut buf = [0u8; 72];
    buf[0] = 0x8f;
    assert_eq!(Packet::new_checked(&buf[..71]), Err(Error::Truncated));
    assert_eq!(Packet::new_checked(&buf[..]).unwrap().csrcs().len(), 15);
}

#[test]
fn rejects_bad_version() {
    for v in [0u8, 1, 3] {
        let mut buf = RFC7714_RTP;
        buf[0] = (buf[0] & 0x3f) | (v << 6);
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadVersion));
        assert_eq!(Packet::new_checked_header(&buf[..]), Err(Error::BadVersion));
    }
}

#[test]
fn rejects_bad_extension() {
    // X set, but the packet ends before the 4-byte extension header.
    let mut buf = [0u8; 15];
    buf.copy_from_slice(&RFC7714_RTP[..15]);
    buf[0] |= EXTENSION_BIT;
    assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadExtension));
    // X set, extension length claims 3 words, 2 present.
    let mut buf = WEBRTC_OPUS;
    buf[15] = 3;
    assert_eq!(
        Packet::new_checked(&buf[..12 + 4 + 8]),
        Err(Error::BadExtension)
    );
    // The same packet with the payload present: 3 words now fit (the payload becomes
    // extension data), so the packet is well formed with an empty payload.
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.header_len(), 28);
    assert_eq!(p.payload(), &[] as &[u8]);
    // Length 0xffff on a small packet.
    let mut buf = WEBRTC_OPUS;
    buf[14] = 0xff;
    buf[15] = 0xff;
    assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadExtension));
}

#[test]
fn rejects_bad_padding() {
    // Count zero.
    let mut buf = MIXED_PADDED;
    buf[31] = 0;
    assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
    // Count reaching into the header: 12 bytes after a 20-byte header, count 13.
    let mut buf = MIXED_PADDED;
    buf[31] = 13;
    assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
    // Count exactly everything after the header is allowed.
    buf[31] = 12;
    assert_eq!(
        Packet::new_checked(&buf[..]).unwrap().payload(),
        &[] as &[u8]
    );
    // P set on a bare header: nothing can be padding.
    let mut buf = [0u8; 12];
    buf.copy_from_slice(&RFC7714_RTP[..12]);
    buf[0] |= PADDING_BIT;
    buf[11] = 1;
    assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
}

#[test]
fn header_only_check_for_srtp() {
    // P set and the last byte (here standing for an SRTP tag byte) is 0: the full check
    // rejects it, the header check reads the header.
    let mut buf = [0u8; 22];
    buf[..12].copy_from_slice(&RFC7714_RTP[..12]);
    buf[0] |= PADDING_BIT;
    assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
    let p = Packet::new_checked_header(&buf[..]).unwrap();
    assert_eq!(p.ssrc(), 0x5501_a0b2);
    assert_eq!(p.seq_number(), 0xf17b);
    assert_eq!(p.header_len(), 12);
    // Last byte 0xff: more than the packet; payload() clamps rather than panics.
    buf[21] = 0xff;
    let p = Packet::new_checked_header(&buf[..]).unwrap();
    assert_eq!(p.payload(), &[] as &[u8]);
}

#[test]
fn setters() {
    let mut buf = WEBRTC_OPUS;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    p.set_ssrc(0x0102_0304);
    p.set_seq_number(0xfffe);
    p.set_timestamp(0xdead_beef);
    p.set_marker(false);
    p.set_payload_type(0x80 | 96); // the high bit is ignored
    assert_eq!(p.ssrc(), 0x0102_0304);
    assert_eq!(p.seq_number(), 0xfffe);
    assert_eq!(p.timestamp(), 0xdead_beef);
    assert!(!p.marker());
    assert_eq!(p.payload_type(), 96);
    p.set_marker(true);
    assert!(p.marker());
    assert_eq!(p.payload_type(), 96);
    p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
    // Nothing else moved.
    assert!(p.has_extension());
    assert_eq!(p.header_len(), 24);
    assert_eq!(p.extension().unwrap().profile, 0xbede);
    assert_eq!(p.payload(), &[1, 2, 3, 4]);
    assert_eq!(
        &buf[2..12],
        &[0xff, 0xfe, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]
    );
    assert_eq!(buf[1], 0x80 | 96);
}

#[test]
fn payload_mut_skips_padding() {
    let mut buf = MIXED_PADDED;
    let mut p = Packet::new_checked(&mut buf[..]).unwrap();
    assert_eq!(p.payload_mut().len(), 8);
    p.payload_mut().fill(0x55);
    assert_eq!(&buf[20..28], &[0x55; 8]);
    assert_eq!(&buf[28..], &[0, 0, 0, 4]);
}

#[test]
fn emit_reproduces_rfc7714_header() {
    let header = Header {
        marker: false,
        payload_type: 0x40,
        seq_number: 0xf17b,
        timestamp: 0x8041_f8d3,
        ssrc: 0x5501_a0b2,
        csrcs: &[],
        extension: None,
    };
    let mut buf = [0u8; 64];
    assert_eq!(header.emit(&mut buf), Ok(12));
    assert_eq!(buf[..12], RFC7714_RTP[..12]);
    let n = header
        .emit_packet(b"Gallia est omnis divisa in partes tres", 0, &mut buf)
        .unwrap();
    assert_eq!(buf[..n], RFC7714_RTP[..]);
}

#[test]
fn emit_reproduces_captures_with_extension_and_padding() {
    let mut buf = [0u8; 64];
    let opus = Header {
        marker: true,
        payload_type: 111,
        seq_number: 6699,
        timestamp: 123_456,
        ssrc: 0x3c5d_7e9f,
        csrcs: &[],
        extension: Some(Extension {
            profile: 0xbede,
            data: &[0x10, 0x9e, 0x31, 0x00, 0x2a, 0, 0, 0],
        }),
    };
    let n = opus
        .emit_packet(&[0x78, 0x0b, 0xe4, 0xc1], 0, &mut buf)
        .unwrap();
    assert_eq!(buf[..n], WEBRTC_OPUS[..]);

    let mixed = Header {
        marker: false,
        payload_type: 0,
        seq_number: 7,
        timestamp: 800,
        ssrc: 0xdead_beef,
        csrcs: &[0x1111_1111, 0x2222_2222],
        extension: None,
    };
    let n = mixed
        .emit_packet(
            &[0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8],
            4,
            &mut buf,
        )
        .unwrap();
    assert_eq!(buf[..n], MIXED_PADDED[..]);
}

#[test]
fn emit_errors() {
    let mut header = Header {
        marker: false,
        payload_type: 0,
        seq_number: 0,
        timestamp: 0,
        ssrc: 0,
        csrcs: &[],
        extension: None,
    };
    let mut buf = [0u8; 11];
    assert_eq!(
        header.emit(&mut buf),
        Err(EmitError::BufferTooSmall { needed: 12 })
    );
    let mut buf = [0u8; 100];
    assert_eq!(
        header.emit_packet(&[0; 80], 9, &mut buf),
        Err(EmitError::BufferTooSmall { needed: 101 })
    );
    header.payload_type = 128;
    assert_eq!(header.emit(&mut buf), Err(EmitError::PayloadTypeOutOfRange));
    header.payload_type = 127;
    let csrcs = [0u32; 16];
    header.csrcs = &csrcs;
    assert_eq!(header.emit(&mut buf), Err(EmitError::TooManyCsrcs));
    header.csrcs = &csrcs[..15];
    assert_eq!(header.emit(&mut buf), Ok(72));
    header.extension = Some(Extension {
        profile: 0xbede,
        data: &[1, 2, 3],
    });
    assert_eq!(header.emit(&mut buf), Err(EmitError::BadExtensionLength));
}

#[test]
fn keepalive_is_an_unused_payload_type() {
    let p = Packet::new_checked(&WEBRTC_OPUS[..]).unwrap();
    assert!(!p.is_keepalive(&[111]));
    assert!(!p.is_keepalive(&[0, 8, 111]));
    assert!(p.is_keepalive(&[0, 8]));
    assert!(p.is_keepalive(&[]));
}

#[test]
fn debug_prints_no_payload_bytes() {
    let p = Packet::new_checked(&RFC7714_RTP[..]).unwrap();
    let s = format!("{p:?}");
    assert!(s.contains("payload_len: 38"), "{s}");
    assert!(s.contains("0x5501a0b2"), "{s}");
    // "Gallia" would show as 71 (0x47) and friends if bytes leaked.
    assert!(!s.contains("71, 97"), "{s}");
    let ext = format!("{:?}", Packet::new_checked(&WEBRTC_OPUS[..]).unwrap());
    assert!(ext.contains("data_len: 8"), "{ext}");
}

/// Reads every accessor; used by the no-panic property.
fn touch_all<T: AsRef<[u8]>>(p: &Packet<T>) {
    let _ = (
        p.version(),
        p.has_padding(),
        p.has_extension(),
        p.csrc_count(),
        p.marker(),
        p.payload_type(),
        p.seq_number(),
        p.timestamp(),
        p.ssrc(),
        p.csrc(3),
        p.csrcs().count(),
        p.extension(),
        p.header_len(),
        p.padding_len(),
        p.payload().len(),
        p.is_keepalive(&[0]),
    );
    let _ = format!("{p:?}");
}

fn arb_extension() -> impl Strategy<Value = Option<(u16, Vec<u8>)>> {
    proptest::option::of((
        any::<u16>(),
        (0usize..8).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 0..96)) {
        if let Ok(p) = Packet::new_checked(&buf[..]) {
            touch_all(&p);
            prop_assert!(p.header_len() + p.padding_len() <= buf.len());
            prop_assert_eq!(
                p.header_len() + p.payload().len() + p.padding_len(),
                buf.len()
            );
        }
        if let Ok(p) = Packet::new_checked_header(&buf[..]) {
            touch_all(&p);
            prop_assert!(p.header_len() <= buf.len());
        }
        // Biased toward version 2 so the deeper checks run too.
        if let Some(b) = buf.first_mut() {
            *b = (*b & 0x3f) | 0x80;
        }
        if let Ok(mut p) = Packet::new_checked(&mut buf[..]) {
            touch_all(&p);
            p.set_payload_type(0xff);
            p.set_marker(true);
            p.set_ssrc(1);
            p.payload_mut().fill(0);
            touch_all(&p);
        }
        if let Ok(p) = Packet::new_checked_header(&buf[..]) {
            touch_all(&p);
        }
    }

    #[test]
    fn emit_then_parse_round_trips(
        marker in any::<bool>(),
        payload_type in 0u8..=127,
        seq_number in any::<u16>(),
        timestamp in any::<u32>(),
        ssrc in any::<u32>(),
        csrcs in proptest::collection::vec(any::<u32>(), 0..=MAX_CSRCS),
        ext in arb_extension(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        padding in any::<u8>(),
    ) {
        let header = Header {
            marker,
            payload_type,
            seq_number,
            timestamp,
            ssrc,
            csrcs: &csrcs,
            extension: ext.as_ref().map(|(profile, data)| Extension { profile: *profile, data }),
        };
        let mut buf = [0u8; 512];
        let n = header.emit_packet(&payload, padding, &mut buf).unwrap();
        prop_assert_eq!(n, header.header_len() + payload.len() + usize::from(padding));
        let p = Packet::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(p.version(), 2);
        prop_assert_eq!(p.marker(), marker);
        prop_assert_eq!(p.payload_type(), payload_type);
        prop_assert_eq!(p.seq_number(), seq_number);
        prop_assert_eq!(p.timestamp(), timestamp);
        prop_assert_eq!(p.ssrc(), ssrc);
        prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs.clone());
        prop_assert_eq!(p.extension(), header.extension);
        prop_assert_eq!(p.header_len(), header.header_len());
        prop_assert_eq!(p.has_padding(), padding > 0);
        prop_assert_eq!(p.padding_len(), usize::from(padding));
        prop_assert_eq!(p.payload(), &payload[..]);

        // The header alone parses to the same header.
        let m = header.emit(&mut buf).unwrap();
        let h = Packet::new_checked(&buf[..m]).unwrap();
        prop_assert_eq!(h.header_len(), m);
        prop_assert_eq!(h.ssrc(), ssrc);
        prop_assert_eq!(h.payload(), &[] as &[u8]);
    }
}
