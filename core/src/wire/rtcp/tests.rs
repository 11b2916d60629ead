//! Tests of the RTCP views and emitters: captures built byte by byte, every error at its
//! boundary, and property tests that arbitrary bytes never panic and that emit then parse
//! round-trips.

use super::*;
use proptest::prelude::*;

/// A sender report as libwebrtc sends it for an audio stream that is both sending and
/// receiving: one report block about the remote stream. Built byte by byte, not
/// captured.
const CHROME_SR: [u8; 52] = [
    0x81, 0xc8, 0x00, 0x0c, // V=2 P=0 RC=1, PT=200 (SR), length 12: 13 words, 52 bytes
    0x9a, 0x3f, 0x2c, 0x11, // SSRC of sender
    0xe9, 0xa1, 0x2b, 0x3c, // NTP seconds since 1900 (2024-03-17)
    0x80, 0x00, 0x00, 0x00, // NTP fraction: half a second
    0x00, 0x0f, 0x42, 0x40, // RTP timestamp 1_000_000 (48 kHz)
    0x00, 0x00, 0x01, 0xf4, // sender's packet count 500
    0x00, 0x00, 0x9c, 0x40, // sender's octet count 40_000
    0x5e, 0x11, 0xa7, 0x02, // report block 1: SSRC of the remote stream
    0x05, // fraction lost 5/256
    0x00, 0x00, 0x0c, // cumulative lost 12
    0x00, 0x01, 0x30, 0x39, // extended highest seq: 1 cycle, seq 12345
    0x00, 0x00, 0x00, 0x2a, // interarrival jitter 42
    0xa1, 0x2b, 0x3c, 0x00, // LSR: middle 32 bits of the last SR's NTP timestamp
    0x00, 0x00, 0x80, 0x00, // DLSR 0x8000/65536 s: half a second
];

/// The SDES that libwebrtc puts after every SR or RR: one chunk with the CNAME, a
/// 16-character random string.
const CHROME_SDES: [u8; 28] = [
    0x81, 0xca, 0x00, 0x06, // V=2 P=0 SC=1, PT=202 (SDES), length 6: 7 words, 28 bytes
    0x9a, 0x3f, 0x2c, 0x11, // chunk 1: SSRC
    0x01, 0x10, // item CNAME, 16 bytes
    b'X', b'q', b'3', b'f', b'9', b'Z', b't', b'H', // CNAME
    b'0', b'k', b'L', b'm', b'2', b'P', b'w', b'B', //
    0x00, 0x00, // null item, one null octet to the 32-bit boundary
];

/// A receive-only endpoint's RR (one report block), as the first packet of a compound.
const RECV_RR: [u8; 32] = [
    0x81, 0xc9, 0x00, 0x07, // V=2 P=0 RC=1, PT=201 (RR), length 7: 32 bytes
    0x12, 0x34, 0xab, 0xcd, // SSRC of packet sender
    0x9a, 0x3f, 0x2c, 0x11, // report block 1: SSRC of the source
    0x00, // fraction lost 0
    0xff, 0xff, 0xfe, // cumulative lost -2 (duplicates)
    0x00, 0x00, 0x10, 0x00, // extended highest seq 4096
    0x00, 0x00, 0x00, 0x07, // jitter 7
    0x00, 0x00, 0x00, 0x00, // LSR: no SR received yet
    0x00, 0x00, 0x00, 0x00, // DLSR
];

/// A generic NACK (RFC 4585 section 6.2.1), RTPFB with FMT 1.
const NACK: [u8; 16] = [
    0x81, 0xcd, 0x00, 0x03, // V=2 P=0 FMT=1, PT=205 (RTPFB), length 3: 16 bytes
    0x12, 0x34, 0xab, 0xcd, // SSRC of packet sender
    0x9a, 0x3f, 0x2c, 0x11, // SSRC of media source
    0x30, 0x39, 0x00, 0x05, // PID 12345, BLP: 12346 and 12348 lost too
];

/// RFC 7714 section 17 (<https://www.rfc-editor.org/rfc/rfc7714#section-17>): the SR
/// the SRTCP AES-GCM vectors protect, SSRC "Mars", report block about "Luna". Its
/// length field says 13 (14 words, 56 bytes) but 13 words (52 bytes) are given.
const RFC7714_SR: [u8; 52] = [
    0x81, 0xc8, 0x00, 0x0d, 0x4d, 0x61, 0x72, 0x73, 0x4e, 0x54, 0x50, 0x31, 0x4e, 0x54, 0x50, 0x32,
    0x52, 0x54, 0x50, 0x20, 0x00, 0x00, 0x04, 0x2a, 0x00, 0x00, 0xe9, 0x30, 0x4c, 0x75, 0x6e, 0x61,
    0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef,
    0xde, 0xad, 0xbe, 0xef,
];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn collect(buf: &[u8]) -> Vec<Result<Packet<'_>, Error>> {
    Compound::new(buf).collect()
}

/// The single error a compound walk ends in, or `None` if it is well formed.
fn walk_error(buf: &[u8]) -> Option<Error> {
    Compound::new(buf).find_map(Result::err)
}

#[test]
fn chrome_sr_sdes_compound() {
    let buf = cat(&[&CHROME_SR, &CHROME_SDES]);
    let packets = collect(&buf);
    assert_eq!(packets.len(), 2);

    let Ok(Packet::SenderReport(sr)) = packets[0] else {
        panic!("{:?}", packets[0]);
    };
    assert_eq!(sr.ssrc(), 0x9a3f_2c11);
    assert_eq!(sr.ntp_timestamp(), 0xe9a1_2b3c_8000_0000);
    assert_eq!(sr.rtp_timestamp(), 1_000_000);
    assert_eq!(sr.packet_count(), 500);
    assert_eq!(sr.octet_count(), 40_000);
    assert_eq!(sr.report_count(), 1);
    assert_eq!(sr.profile_extension(), &[] as &[u8]);
    let blocks: Vec<_> = sr.reports().collect();
    assert_eq!(
        blocks,
        [ReportBlock {
            ssrc: 0x5e11_a702,
            fraction_lost: 5,
            cumulative_lost: 12,
            highest_seq: 0x0001_3039,
            jitter: 42,
            last_sr: 0xa12b_3c00,
            delay_since_last_sr: 0x8000,
        }]
    );
    assert_eq!(sr.raw().as_bytes(), &CHROME_SR);
    assert_eq!(sr.raw().length(), 12);
    assert_eq!(sr.raw().version(), 2);
    assert!(!sr.raw().has_padding());

    let Ok(Packet::SourceDescription(sdes)) = packets[1] else {
        panic!("{:?}", packets[1]);
    };
    assert_eq!(sdes.chunk_count(), 1);
    let chunk = sdes.chunks().next().unwrap();
    assert_eq!(chunk.ssrc(), 0x9a3f_2c11);
    assert_eq!(chunk.cname(), Some(&b"Xq3f9ZtH0kLm2PwB"[..]));
    assert_eq!(sdes.cname(0x9a3f_2c11), Some(&b"Xq3f9ZtH0kLm2PwB"[..]));
    assert_eq!(sdes.cname(0x5e11_a702), None);
    let items: Vec<_> = chunk.items().collect();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].kind, sdes_item::CNAME);

    assert_eq!(first_ssrc(&buf), Ok(Some(0x9a3f_2c11)));
}

#[test]
fn receiver_compound_with_feedback() {
    let sdes = {
        let mut s = CHROME_SDES;
        s[4..8].copy_from_slice(&[0x12, 0x34, 0xab, 0xcd]);
        s
    };
    let buf = cat(&[&RECV_RR, &sdes, &NACK]);
    let packets = collect(&buf);
    assert_eq!(packets.len(), 3);
    let Ok(Packet::ReceiverReport(rr)) = packets[0] else {
        panic!("{:?}", packets[0]);
    };
    assert_eq!(rr.ssrc(), 0x1234_abcd);
    let block = rr.reports().next().unwrap();
    assert_eq!(block.ssrc, 0x9a3f_2c11);
    assert_eq!(block.cumulative_lost, -2);
    assert_eq!(block.highest_seq, 4096);
    assert_eq!(block.jitter, 7);
    assert_eq!(rr.reports().len(), 1);
    let Ok(Packet::Other(nack)) = packets[2] else {
        panic!("{:?}", packets[2]);
    };
    assert_eq!(nack.packet_type(), packet_type::RTPFB);
    assert_eq!(nack.count(), 1);
    assert_eq!(nack.body(), &NACK[4..]);
    assert_eq!(nack.as_bytes(), &NACK);
    assert_eq!(first_ssrc(&buf), Ok(Some(0x1234_abcd)));
    // Reduced-size RTCP (RFC 5506): a NACK alone is a valid compound.
    assert_eq!(first_ssrc(&NACK), Ok(Some(0x1234_abcd)));
}

#[test]
fn rfc7714_sr_length_is_inconsistent() {
    assert_eq!(collect(&RFC7714_SR), [Err(Error::Truncated)]);
    assert_eq!(first_ssrc(&RFC7714_SR), Err(Error::Truncated));
    // With the length field matching the bytes, it parses.
    let mut fixed = RFC7714_SR;
    fixed[3] = 0x0c;
    let packets = collect(&fixed);
    let Ok(Packet::SenderReport(sr)) = packets[0] else {
        panic!("{packets:?}");
    };
    assert_eq!(&sr.ssrc().to_be_bytes(), b"Mars");
    assert_eq!(&sr.ntp_timestamp().to_be_bytes(), b"NTP1NTP2");
    assert_eq!(&sr.rtp_timestamp().to_be_bytes(), b"RTP ");
    assert_eq!(sr.packet_count(), 0x42a);
    assert_eq!(sr.octet_count(), 0xe930);
    let block = sr.reports().next().unwrap();
    assert_eq!(&block.ssrc.to_be_bytes(), b"Luna");
    assert_eq!(block.fraction_lost, 0xde);
    // 0xadbeef has its sign bit set: a negative 24-bit count.
    assert_eq!(block.cumulative_lost, 0xadbeef - 0x100_0000);
    assert_eq!(block.highest_seq, 0xdead_beef);
    assert_eq!(block.delay_since_last_sr, 0xdead_beef);
}

#[test]
fn sdes_with_several_chunks_and_items() {
    let buf = [
        0x82, 0xca, 0x00, 0x0a, // SC=2, SDES, length 10: 44 bytes
        0x00, 0x00, 0x00, 0x01, // chunk 1: SSRC 1
        0x01, 0x03, b'a', b'@', b'b', // CNAME "a@b"
        0x02, 0x05, b'A', b'l', b'i', b'c', b'e', // NAME "Alice"
        0x06, 0x03, b'l', b'c', b'1', // TOOL "lc1"
        0x00, 0x00, 0x00, // null item and padding to the boundary (24 bytes)
        0x00, 0x00, 0x00, 0x02, // chunk 2: SSRC 2
        0x07, 0x00, // NOTE, empty
        0x01, 0x04, b'c', b'@', b'd', b'e', // CNAME "c@de"
        0x00, 0x00, 0x00, 0x00, // null item and 3 octets of padding
    ];
    let packets = collect(&buf);
    let Ok(Packet::SourceDescription(sdes)) = packets[0] else {
        panic!("{packets:?}");
    };
    let chunks: Vec<_> = sdes.chunks().collect();
    assert_eq!(chunks.len(), 2);
    let items: Vec<_> = chunks[0].items().map(|i| (i.kind, i.value)).collect();
    assert_eq!(
        items,
        [
            (sdes_item::CNAME, &b"a@b"[..]),
            (sdes_item::NAME, &b"Alice"[..]),
            (sdes_item::TOOL, &b"lc1"[..]),
        ]
    );
    assert_eq!(chunks[1].ssrc(), 2);
    assert_eq!(chunks[1].items().count(), 2);
    assert_eq!(sdes.cname(1), Some(&b"a@b"[..]));
    assert_eq!(sdes.cname(2), Some(&b"c@de"[..]));
    assert_eq!(sdes.cname(3), None);
    assert_eq!(first_ssrc(&buf), Ok(Some(1)));
}

#[test]
fn bye_and_app() {
    let bye = [
        0x82, 0xcb, 0x00, 0x04, // SC=2, BYE, length 4: 20 bytes
        0x00, 0x00, 0x00, 0x0a, // SSRC 10
        0x00, 0x00, 0x00, 0x0b, // SSRC 11
        0x05, b'l', b'e', b'a', b'v', b'e', 0x00, 0x00, // reason "leave", 2 null octets
    ];
    let app = [
        0x83, 0xcc, 0x00, 0x04, // subtype 3, APP, length 4: 20 bytes
        0x00, 0x00, 0x00, 0x0a, // SSRC 10
        b'L', b'C', b'H', b'T', // name
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // data
    ];
    let bare_bye = [0x81, 0xcb, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0c];
    let buf = cat(&[&bye, &app, &bare_bye]);
    let packets = collect(&buf);
    assert_eq!(packets.len(), 3);
    let Ok(Packet::Bye(b)) = packets[0] else {
        panic!("{packets:?}");
    };
    assert_eq!(b.ssrc_count(), 2);
    assert_eq!(b.ssrcs().collect::<Vec<_>>(), [10, 11]);
    assert_eq!(b.reason(), Some(&b"leave"[..]));
    let Ok(Packet::App(a)) = packets[1] else {
        panic!("{packets:?}");
    };
    assert_eq!(a.subtype(), 3);
    assert_eq!(a.ssrc(), 10);
    assert_eq!(&a.name(), b"LCHT");
    assert_eq!(a.data(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    let Ok(Packet::Bye(b)) = packets[2] else {
        panic!("{packets:?}");
    };
    assert_eq!(b.ssrcs().collect::<Vec<_>>(), [12]);
    assert_eq!(b.reason(), None);
    assert_eq!(first_ssrc(&buf), Ok(Some(10)));
    assert_eq!(first_ssrc(&app), Ok(Some(10)));
}

#[test]
fn padding_on_the_last_packet() {
    // The SDES grows by 8 bytes of padding; P set, length 8.
    let mut sdes = CHROME_SDES.to_vec();
    sdes[0] |= PADDING_BIT;
    sdes[3] = 8;
    sdes.extend([0, 0, 0, 0, 0, 0, 0, 8]);
    let buf = cat(&[&CHROME_SR, &sdes]);
    let packets = collect(&buf);
    let Ok(Packet::SourceDescription(s)) = packets[1] else {
        panic!("{packets:?}");
    };
    assert!(s.raw().has_padding());
    assert_eq!(s.raw().padding_len(), 8);
    assert_eq!(s.raw().as_bytes().len(), 36);
    assert_eq!(s.raw().body(), &CHROME_SDES[4..]);
    assert_eq!(s.cname(0x9a3f_2c11), Some(&b"Xq3f9ZtH0kLm2PwB"[..]));
    // Padding covering the whole body of an unknown type is fine.
    let buf = [0x80 | PADDING_BIT, 195, 0x00, 0x01, 0, 0, 0, 4];
    let packets = collect(&buf);
    let Ok(Packet::Other(raw)) = packets[0] else {
        panic!("{packets:?}");
    };
    assert_eq!(raw.body(), &[] as &[u8]);
    assert_eq!(first_ssrc(&buf), Ok(None));
}

#[test]
fn rejects_truncated() {
    assert_eq!(collect(&[]), [Err(Error::Truncated)]);
    assert_eq!(first_ssrc(&[]), Err(Error::Truncated));
    assert_eq!(collect(&CHROME_SR[..3]), [Err(Error::Truncated)]);
    // Length running past the datagram.
    assert_eq!(collect(&CHROME_SR[..48]), [Err(Error::Truncated)]);
    // 1 to 3 stray bytes after the last packet.
    for extra in 1..=3 {
        let buf = cat(&[&CHROME_SR, &CHROME_SDES[..extra]]);
        let packets = collect(&buf);
        assert!(packets[0].is_ok());
        assert_eq!(packets[1], Err(Error::Truncated));
        assert_eq!(packets.len(), 2);
    }
    // A good packet, then a header whose length runs past the end.
    let buf = cat(&[&CHROME_SR, &CHROME_SDES[..24]]);
    assert_eq!(walk_error(&buf), Some(Error::Truncated));
    assert_eq!(first_ssrc(&buf), Err(Error::Truncated));
}

#[test]
fn rejects_bad_version() {
    for v in [0u8, 1, 3] {
        let mut sr = CHROME_SR;
        sr[0] = (sr[0] & 0x3f) | (v << 6);
        assert_eq!(collect(&sr), [Err(Error::BadVersion)]);
        // In the second packet too.
        let mut sdes = CHROME_SDES;
        sdes[0] = (sdes[0] & 0x3f) | (v << 6);
        let buf = cat(&[&CHROME_SR, &sdes]);
        assert_eq!(walk_error(&buf), Some(Error::BadVersion));
        assert_eq!(first_ssrc(&buf), Err(Error::BadVersion));
    }
    // Version is checked before the length, so a 4-byte version-1 header is BadVersion.
    assert_eq!(collect(&[0x40, 0xc9, 0x00, 0x01]), [Err(Error::BadVersion)]);
}

#[test]
fn rejects_bad_padding() {
    // Padding bit on the first of two packets.
    let mut sr = CHROME_SR;
    sr[0] |= PADDING_BIT;
    let buf = cat(&[&sr, &CHROME_SDES]);
    assert_eq!(collect(&buf), [Err(Error::BadPadding)]);
    // Padding count zero.
    let mut rr = [0x80 | PADDING_BIT, 201, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(collect(&rr), [Err(Error::BadPadding)]);
    // Padding count larger than the packet after its header (8 bytes).
    rr[11] = 9;
    assert_eq!(collect(&rr), [Err(Error::BadPadding)]);
    // 8 is the whole body: then the RR lacks its SSRC.
    rr[11] = 8;
    assert_eq!(collect(&rr), [Err(Error::BadLength)]);
    // 4 leaves the SSRC.
    rr[11] = 4;
    assert!(collect(&rr)[0].is_ok());
}

#[test]
fn rejects_inconsistent_reports() {
    // SR shorter than its sender info.
    let short_sr = [
        0x80, 200, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(collect(&short_sr), [Err(Error::BadLength)]);
    // SR claiming two report blocks with room for one.
    let mut sr = CHROME_SR;
    sr[0] = 0x82;
    assert_eq!(collect(&sr), [Err(Error::BadCount)]);
    // RR of just a header.
    assert_eq!(collect(&[0x80, 201, 0x00, 0x00]), [Err(Error::BadLength)]);
    // RR with RC=31 and one block.
    let mut rr = RECV_RR;
    rr[0] = 0x80 | 31;
    assert_eq!(collect(&rr), [Err(Error::BadCount)]);
    // RR with RC=0 and a block's worth of bytes: profile-specific extension.
    rr[0] = 0x80;
    let packets = collect(&rr);
    let Ok(Packet::ReceiverReport(r)) = packets[0] else {
        panic!("{packets:?}");
    };
    assert_eq!(r.reports().count(), 0);
    assert_eq!(r.profile_extension().len(), 24);
}

#[test]
fn rejects_inconsistent_sdes() {
    // SC=2 but one chunk.
    let mut sdes = CHROME_SDES;
    sdes[0] = 0x82;
    assert_eq!(collect(&sdes), [Err(Error::BadCount)]);
    // SC=0 but a chunk present.
    sdes[0] = 0x80;
    assert_eq!(collect(&sdes), [Err(Error::BadCount)]);
    // SC=0 and nothing: fine, and names no SSRC.
    assert!(collect(&[0x80, 202, 0x00, 0x00])[0].is_ok());
    assert_eq!(first_ssrc(&[0x80, 202, 0x00, 0x00]), Ok(None));
    // Item length running past the packet.
    let mut sdes = CHROME_SDES;
    sdes[9] = 0x20;
    assert_eq!(collect(&sdes), [Err(Error::BadItem)]);
    // No null item: CNAME of 18 bytes fills the chunk exactly.
    let mut sdes = CHROME_SDES;
    sdes[9] = 18;
    sdes[26] = b'!';
    sdes[27] = b'!';
    assert_eq!(collect(&sdes), [Err(Error::BadItem)]);
    // A chunk that is only part of an SSRC.
    let buf = [0x81, 202, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00];
    assert!(collect(&buf)[0].is_err());
    // SSRC present but no item list at all.
    let buf = [0x81, 202, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01];
    assert_eq!(collect(&buf), [Err(Error::BadItem)]);
    // Padding that leaves the chunk misaligned: its null padding is cut off.
    let mut sdes = CHROME_SDES.to_vec();
    sdes[0] |= PADDING_BIT;
    sdes[3] = 7;
    sdes.extend([0, 0, 0, 5]);
    assert_eq!(collect(&sdes), [Err(Error::BadItem)]);
}

#[test]
fn rejects_inconsistent_bye_and_app() {
    // SC=3 with two SSRCs.
    let bye = [0x83, 203, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2];
    assert_eq!(collect(&bye), [Err(Error::BadCount)]);
    // Reason length past the packet.
    let bye = [0x81, 203, 0x00, 0x02, 0, 0, 0, 1, 0x08, b'b', b'y', b'e'];
    assert_eq!(collect(&bye), [Err(Error::BadItem)]);
    // A word of garbage after the reason and its padding.
    let bye = [
        0x81, 203, 0x00, 0x03, 0, 0, 0, 1, 0x03, b'b', b'y', b'e', 1, 2, 3, 4,
    ];
    assert_eq!(collect(&bye), [Err(Error::BadItem)]);
    // A reason that exactly fills its word.
    let bye = [0x81, 203, 0x00, 0x02, 0, 0, 0, 1, 0x03, b'b', b'y', b'e'];
    let packets = collect(&bye);
    let Ok(Packet::Bye(b)) = packets[0] else {
        panic!("{packets:?}");
    };
    assert_eq!(b.reason(), Some(&b"bye"[..]));
    // BYE with SC=0 names no SSRC.
    assert_eq!(first_ssrc(&[0x80, 203, 0x00, 0x00]), Ok(None));
    // APP without its name.
    let app = [0x80, 204, 0x00, 0x01, 0, 0, 0, 1];
    assert_eq!(collect(&app), [Err(Error::BadLength)]);
}

#[test]
fn walk_stops_at_the_first_error() {
    let mut bad = CHROME_SDES;
    bad[0] = 0x40;
    let buf = cat(&[&CHROME_SR, &bad, &CHROME_SDES]);
    let packets = collect(&buf);
    assert_eq!(packets.len(), 2);
    assert!(packets[0].is_ok());
    assert_eq!(packets[1], Err(Error::BadVersion));
    let mut walk = Compound::new(&buf);
    assert!(walk.nth(1).unwrap().is_err());
    assert!(walk.next().is_none());
    assert!(walk.next().is_none());
}

#[test]
fn unknown_types_pass_through() {
    // XR (207) with its sender SSRC, and a type RFC 3550 never defined.
    let xr = [0x80, 207, 0x00, 0x01, 0xaa, 0xbb, 0xcc, 0xdd];
    assert_eq!(first_ssrc(&xr), Ok(Some(0xaabb_ccdd)));
    let ij = [0x81, 195, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10];
    let packets = collect(&ij);
    let Ok(Packet::Other(raw)) = packets[0] else {
        panic!("{packets:?}");
    };
    assert_eq!(raw.packet_type(), 195);
    assert_eq!(raw.count(), 1);
    assert_eq!(first_ssrc(&ij), Ok(None));
    // PSFB with no room for its SSRC: passed through, no SSRC.
    assert_eq!(first_ssrc(&[0x81, 206, 0x00, 0x00]), Ok(None));
}

#[test]
fn emit_receiver_report_bytes() {
    let mut buf = [0u8; 64];
    assert_eq!(emit_receiver_report(0x1234_abcd, &[], &mut buf), Ok(8));
    assert_eq!(buf[..8], [0x80, 0xc9, 0x00, 0x01, 0x12, 0x34, 0xab, 0xcd]);
    // With the block of RECV_RR it reproduces RECV_RR.
    let block = ReportBlock {
        ssrc: 0x9a3f_2c11,
        fraction_lost: 0,
        cumulative_lost: -2,
        highest_seq: 4096,
        jitter: 7,
        last_sr: 0,
        delay_since_last_sr: 0,
    };
    assert_eq!(
        emit_receiver_report(0x1234_abcd, &[block], &mut buf),
        Ok(32)
    );
    assert_eq!(buf[..32], RECV_RR);
}

#[test]
fn emit_clamps_cumulative_lost() {
    let mut buf = [0u8; 32];
    for (lost, wire, back) in [
        (i32::MAX, [0x7f, 0xff, 0xff], 0x7f_ffff),
        (i32::MIN, [0x80, 0x00, 0x00], -0x80_0000),
        (-1, [0xff, 0xff, 0xff], -1),
    ] {
        let block = ReportBlock {
            cumulative_lost: lost,
            ..ReportBlock::default()
        };
        emit_receiver_report(1, &[block], &mut buf).unwrap();
        assert_eq!(buf[13..16], wire);
        let packets = collect(&buf);
        let Ok(Packet::ReceiverReport(rr)) = packets[0] else {
            panic!("{packets:?}");
        };
        assert_eq!(rr.reports().next().unwrap().cumulative_lost, back);
    }
}

#[test]
fn emit_sdes_cname_bytes() {
    let mut buf = [0u8; 64];
    assert_eq!(
        emit_sdes_cname(0x9a3f_2c11, b"Xq3f9ZtH0kLm2PwB", &mut buf),
        Ok(28)
    );
    assert_eq!(buf[..28], CHROME_SDES);
    // Every CNAME length gets at least one null octet and ends on a word.
    let mut buf = [0u8; 300];
    let name = [b'x'; MAX_ITEM_LEN];
    for len in 0..=MAX_ITEM_LEN {
        let n = emit_sdes_cname(7, &name[..len], &mut buf).unwrap();
        assert_eq!(n % 4, 0);
        assert!(n > 4 + 4 + 2 + len);
        let packets = collect(&buf[..n]);
        let Ok(Packet::SourceDescription(s)) = packets[0] else {
            panic!("{len}: {packets:?}");
        };
        assert_eq!(s.cname(7), Some(&name[..len]));
    }
}

#[test]
fn emitted_latch_compound() {
    // What a listening client sends at join: RR with no blocks, then its CNAME.
    let mut buf = [0u8; 64];
    let n = emit_receiver_report(0x0bad_cafe, &[], &mut buf).unwrap();
    let m = emit_sdes_cname(0x0bad_cafe, b"radio-7@gw", &mut buf[n..]).unwrap();
    let compound = &buf[..n + m];
    assert_eq!(first_ssrc(compound), Ok(Some(0x0bad_cafe)));
    let packets = collect(compound);
    assert_eq!(packets.len(), 2);
    let Ok(Packet::SourceDescription(s)) = packets[1] else {
        panic!("{packets:?}");
    };
    assert_eq!(s.cname(0x0bad_cafe), Some(&b"radio-7@gw"[..]));
}

#[test]
fn emit_errors() {
    let mut buf = [0u8; 8];
    assert_eq!(
        emit_receiver_report(1, &[ReportBlock::default()], &mut buf),
        Err(EmitError::BufferTooSmall { needed: 32 })
    );
    assert_eq!(
        emit_receiver_report(1, &[], &mut buf[..7]),
        Err(EmitError::BufferTooSmall { needed: 8 })
    );
    let mut big = [0u8; 1024];
    let blocks = [ReportBlock::default(); 32];
    assert_eq!(
        emit_receiver_report(1, &blocks, &mut big),
        Err(EmitError::TooManyReports)
    );
    assert_eq!(
        emit_receiver_report(1, &blocks[..31], &mut big),
        Ok(8 + 31 * 24)
    );
    assert_eq!(
        emit_sdes_cname(1, &[b'x'; 256], &mut big),
        Err(EmitError::CnameTooLong)
    );
    assert_eq!(
        emit_sdes_cname(1, b"abc", &mut buf),
        Err(EmitError::BufferTooSmall { needed: 16 })
    );
}

#[test]
fn debug_prints_no_bytes() {
    let buf = cat(&[&CHROME_SR, &CHROME_SDES]);
    let text = format!("{:?} {:?}", collect(&buf), Compound::new(&buf));
    // The CNAME's first bytes as decimal would read "88, 113".
    assert!(!text.contains("88, 113"), "{text}");
    assert!(text.contains("0x9a3f2c11"), "{text}");
}

#[test]
fn clear_header_of_srtcp() {
    // The SR's first 8 bytes, then ciphertext, E flag and index, and tag: only the header
    // is read.
    let mut srtcp = CHROME_SR[..8].to_vec();
    srtcp.extend_from_slice(&[0xff; 44 + 4 + 10]);
    let header = Header::new_checked(&srtcp[..]).unwrap();
    assert_eq!(header.version(), 2);
    assert_eq!(header.packet_type(), packet_type::SR);
    assert_eq!(header.count(), 1);
    assert_eq!(header.length(), 12);
    assert_eq!(header.ssrc(), 0x9a3f_2c11);
    // The walk over the whole, still protected, datagram refuses it.
    assert!(first_ssrc(&srtcp).is_err());
    // Exactly 8 bytes is enough; 7 is not, nor any version but 2.
    assert!(Header::new_checked(&CHROME_SR[..SSRC_HEADER_LEN]).is_ok());
    assert_eq!(
        Header::new_checked(&CHROME_SR[..SSRC_HEADER_LEN - 1]).unwrap_err(),
        Error::Truncated
    );
    assert_eq!(Header::new_checked(&[][..]).unwrap_err(), Error::Truncated);
    for version in [0u8, 1, 3] {
        let mut buf = CHROME_SR;
        buf[0] = (buf[0] & 0x3f) | (version << 6);
        assert_eq!(
            Header::new_checked(&buf[..]).unwrap_err(),
            Error::BadVersion
        );
    }
    let text = format!("{header:?}");
    assert!(text.contains("0x9a3f2c11"), "{text}");
    assert!(!text.contains("255"), "{text}");
}

// Property tests.

/// Reads everything the clear-header view offers, when it accepts `buf`.
fn touch_header(buf: &[u8]) {
    if let Ok(header) = Header::new_checked(buf) {
        let _ = (
            header.version(),
            header.packet_type(),
            header.count(),
            header.length(),
            header.ssrc(),
            format!("{header:?}"),
        );
    }
}

/// Reads everything a view offers; used by the no-panic properties.
fn touch(packet: &Packet<'_>) {
    let raw = packet.raw();
    let _ = (
        raw.version(),
        raw.has_padding(),
        raw.count(),
        raw.packet_type(),
        raw.length(),
        raw.as_bytes().len(),
        raw.body().len(),
        raw.padding_len(),
        packet.sender_ssrc(),
    );
    match packet {
        Packet::SenderReport(sr) => {
            let _ = (
                sr.ssrc(),
                sr.ntp_timestamp(),
                sr.rtp_timestamp(),
                sr.packet_count(),
                sr.octet_count(),
                sr.profile_extension().len(),
            );
            assert_eq!(sr.reports().count(), usize::from(sr.report_count()));
        }
        Packet::ReceiverReport(rr) => {
            let _ = (rr.ssrc(), rr.profile_extension().len());
            assert_eq!(rr.reports().count(), usize::from(rr.report_count()));
        }
        Packet::SourceDescription(sdes) => {
            let mut n = 0;
            for chunk in sdes.chunks() {
                n += 1;
                let _ = (chunk.ssrc(), chunk.cname(), sdes.cname(chunk.ssrc()));
                for item in chunk.items() {
                    assert_ne!(item.kind, sdes_item::END);
                }
            }
            assert_eq!(n, usize::from(sdes.chunk_count()));
        }
        Packet::Bye(bye) => {
            assert_eq!(bye.ssrcs().count(), usize::from(bye.ssrc_count()));
            let _ = bye.reason();
        }
        Packet::App(app) => {
            let _ = (app.subtype(), app.ssrc(), app.name(), app.data().len());
        }
        Packet::Other(_) => {}
    }
    let _ = format!("{packet:?}");
}

/// SDES chunks to build: SSRC and (type, value) items.
type SdesModel = Vec<(u32, Vec<(u8, Vec<u8>)>)>;

/// An individual packet to build, for the round-trip property.
#[derive(Debug, Clone)]
enum Model {
    Sr {
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
        packets: u32,
        octets: u32,
        reports: Vec<ReportBlock>,
        ext: Vec<u8>,
    },
    Rr {
        ssrc: u32,
        reports: Vec<ReportBlock>,
        ext: Vec<u8>,
    },
    Sdes(SdesModel),
    Bye {
        ssrcs: Vec<u32>,
        reason: Option<Vec<u8>>,
    },
    App {
        subtype: u8,
        ssrc: u32,
        name: [u8; 4],
        data: Vec<u8>,
    },
    Other {
        pt: u8,
        count: u8,
        body: Vec<u8>,
    },
}

fn pad_to_word(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends `model` to `out` with `padding` bytes of RTCP padding (0, 4 or 8).
fn build(model: &Model, padding: u8, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend([0; 4]);
    let (count, pt) = match model {
        Model::Sr {
            ssrc,
            ntp,
            rtp_ts,
            packets,
            octets,
            reports,
            ext,
        } => {
            out.extend(ssrc.to_be_bytes());
            out.extend(ntp.to_be_bytes());
            out.extend(rtp_ts.to_be_bytes());
            out.extend(packets.to_be_bytes());
            out.extend(octets.to_be_bytes());
            for r in reports {
                let mut b = [0u8; 24];
                let mut w = Writer::new(&mut b, 24).unwrap();
                r.write(&mut w);
                out.extend(b);
            }
            out.extend(ext);
            (reports.len(), packet_type::SR)
        }
        Model::Rr { ssrc, reports, ext } => {
            out.extend(ssrc.to_be_bytes());
            for r in reports {
                let mut b = [0u8; 24];
                let mut w = Writer::new(&mut b, 24).unwrap();
                r.write(&mut w);
                out.extend(b);
            }
            out.extend(ext);
            (reports.len(), packet_type::RR)
        }
        Model::Sdes(chunks) => {
            for (ssrc, items) in chunks {
                out.extend(ssrc.to_be_bytes());
                for (kind, value) in items {
                    out.push(*kind);
                    out.push(value.len() as u8);
                    out.extend(value);
                }
                out.push(0);
                pad_to_word(out, start);
            }
            (chunks.len(), packet_type::SDES)
        }
        Model::Bye { ssrcs, reason } => {
            for s in ssrcs {
                out.extend(s.to_be_bytes());
            }
            if let Some(r) = reason {
                out.push(r.len() as u8);
                out.extend(r);
                pad_to_word(out, start);
            }
            (ssrcs.len(), packet_type::BYE)
        }
        Model::App {
            subtype,
            ssrc,
            name,
            data,
        } => {
            out.extend(ssrc.to_be_bytes());
            out.extend(name);
            out.extend(data);
            (usize::from(*subtype), packet_type::APP)
        }
        Model::Other { pt, count, body } => {
            out.extend(body);
            (usize::from(*count), *pt)
        }
    };
    if padding > 0 {
        out.extend(std::iter::repeat_n(0, usize::from(padding) - 1));
        out.push(padding);
    }
    let len = out.len() - start;
    assert_eq!(len % 4, 0);
    out[start] = 0x80 | if padding > 0 { PADDING_BIT } else { 0 } | count as u8;
    out[start + 1] = pt;
    out[start + 2..start + 4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
}

/// Checks a parsed packet against the model it was built from.
fn matches(packet: &Packet<'_>, model: &Model, padding: u8) -> Result<(), TestCaseError> {
    prop_assert_eq!(packet.raw().padding_len(), usize::from(padding));
    match (packet, model) {
        (
            Packet::SenderReport(sr),
            Model::Sr {
                ssrc,
                ntp,
                rtp_ts,
                packets,
                octets,
                reports,
                ext,
            },
        ) => {
            prop_assert_eq!(sr.ssrc(), *ssrc);
            prop_assert_eq!(sr.ntp_timestamp(), *ntp);
            prop_assert_eq!(sr.rtp_timestamp(), *rtp_ts);
            prop_assert_eq!(sr.packet_count(), *packets);
            prop_assert_eq!(sr.octet_count(), *octets);
            prop_assert_eq!(&sr.reports().collect::<Vec<_>>(), reports);
            prop_assert_eq!(sr.profile_extension(), &ext[..]);
        }
        (Packet::ReceiverReport(rr), Model::Rr { ssrc, reports, ext }) => {
            prop_assert_eq!(rr.ssrc(), *ssrc);
            prop_assert_eq!(&rr.reports().collect::<Vec<_>>(), reports);
            prop_assert_eq!(rr.profile_extension(), &ext[..]);
        }
        (Packet::SourceDescription(sdes), Model::Sdes(chunks)) => {
            let got: SdesModel = sdes
                .chunks()
                .map(|c| {
                    (
                        c.ssrc(),
                        c.items().map(|i| (i.kind, i.value.to_vec())).collect(),
                    )
                })
                .collect();
            prop_assert_eq!(&got, chunks);
        }
        (Packet::Bye(bye), Model::Bye { ssrcs, reason }) => {
            prop_assert_eq!(&bye.ssrcs().collect::<Vec<_>>(), ssrcs);
            prop_assert_eq!(bye.reason(), reason.as_deref());
        }
        (
            Packet::App(app),
            Model::App {
                subtype,
                ssrc,
                name,
                data,
            },
        ) => {
            prop_assert_eq!(app.subtype(), *subtype);
            prop_assert_eq!(app.ssrc(), *ssrc);
            prop_assert_eq!(&app.name(), name);
            prop_assert_eq!(app.data(), &data[..]);
        }
        (Packet::Other(raw), Model::Other { pt, count, body }) => {
            prop_assert_eq!(raw.packet_type(), *pt);
            prop_assert_eq!(raw.count(), *count);
            prop_assert_eq!(raw.body(), &body[..]);
        }
        (packet, model) => prop_assert!(false, "{packet:?} parsed from {model:?}"),
    }
    Ok(())
}

fn words(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (0..=max).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 4))
}

fn report_block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..=0x7f_ffff,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ssrc, fraction_lost, cumulative_lost, highest_seq, jitter, last_sr, dlsr)| {
                ReportBlock {
                    ssrc,
                    fraction_lost,
                    cumulative_lost,
                    highest_seq,
                    jitter,
                    last_sr,
                    delay_since_last_sr: dlsr,
                }
            },
        )
}

fn model() -> impl Strategy<Value = Model> {
    let reports = || proptest::collection::vec(report_block(), 0..4);
    let text = || proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        (
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            reports(),
            words(2)
        )
            .prop_map(|(ssrc, ntp, rtp_ts, packets, octets, reports, ext)| {
                Model::Sr {
                    ssrc,
                    ntp,
                    rtp_ts,
                    packets,
                    octets,
                    reports,
                    ext,
                }
            }),
        (any::<u32>(), reports(), words(2)).prop_map(|(ssrc, reports, ext)| Model::Rr {
            ssrc,
            reports,
            ext
        }),
        proptest::collection::vec(
            (
                any::<u32>(),
                proptest::collection::vec((1u8..=255, text()), 0..4)
            ),
            0..4
        )
        .prop_map(Model::Sdes),
        (
            proptest::collection::vec(any::<u32>(), 0..5),
            proptest::option::of(text())
        )
            .prop_map(|(ssrcs, reason)| Model::Bye { ssrcs, reason }),
        (0u8..32, any::<u32>(), any::<[u8; 4]>(), words(4)).prop_map(
            |(subtype, ssrc, name, data)| Model::App {
                subtype,
                ssrc,
                name,
                data,
            }
        ),
        (prop_oneof![192u8..=199, 205u8..=223], 0u8..32, words(4))
            .prop_map(|(pt, count, body)| Model::Other { pt, count, body }),
    ]
}

fn compound() -> impl Strategy<Value = (Vec<Model>, u8)> {
    (
        proptest::collection::vec(model(), 1..5),
        prop_oneof![Just(0u8), Just(4u8), Just(8u8)],
    )
}

fn build_compound(models: &[Model], padding: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let last = i + 1 == models.len();
        build(m, if last { padding } else { 0 }, &mut out);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 0..160)) {
        for packet in Compound::new(&buf).flatten() {
            touch(&packet);
        }
        let _ = first_ssrc(&buf);
        touch_header(&buf);
        // Biased toward version 2 so the walk gets past the first header.
        if let Some(b) = buf.first_mut() {
            *b = (*b & 0x3f) | 0x80;
        }
        for packet in Compound::new(&buf).flatten() {
            touch(&packet);
        }
        let _ = first_ssrc(&buf);
        touch_header(&buf);
    }

    #[test]
    fn mutated_compounds_never_panic(
        (models, padding) in compound(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = build_compound(&models, padding);
        for (at, byte) in flips {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        for packet in Compound::new(&buf).flatten() {
            touch(&packet);
        }
        let end = cut.index(buf.len() + 1);
        for packet in Compound::new(&buf[..end]).flatten() {
            touch(&packet);
        }
        let _ = first_ssrc(&buf[..end]);
    }

    #[test]
    fn built_compounds_round_trip((models, padding) in compound()) {
        let buf = build_compound(&models, padding);
        let packets: Vec<_> = Compound::new(&buf).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(packets.len(), models.len());
        for (i, (packet, model)) in packets.iter().zip(&models).enumerate() {
            let last = i + 1 == models.len();
            matches(packet, model, if last { padding } else { 0 })?;
            touch(packet);
        }
        prop_assert_eq!(first_ssrc(&buf).unwrap(), packets[0].sender_ssrc());
        // The clear header agrees with the walk wherever the first packet has an SSRC.
        let raw = packets[0].raw();
        match Header::new_checked(&buf[..]) {
            Ok(header) => {
                prop_assert_eq!(header.packet_type(), raw.packet_type());
                prop_assert_eq!(header.count(), raw.count());
                prop_assert_eq!(header.length(), raw.length());
                if let Some(ssrc) = packets[0].sender_ssrc() {
                    prop_assert_eq!(header.ssrc(), ssrc);
                }
            }
            Err(e) => {
                prop_assert_eq!(e, Error::Truncated);
                prop_assert!(buf.len() < SSRC_HEADER_LEN);
            }
        }
    }

    #[test]
    fn emitted_rr_and_sdes_round_trip(
        ssrc in any::<u32>(),
        reports in proptest::collection::vec(report_block(), 0..=MAX_COUNT),
        cname in proptest::collection::vec(any::<u8>(), 0..=MAX_ITEM_LEN),
    ) {
        let mut buf = [0u8; 8 + MAX_COUNT * 24 + 4 + 4 + 2 + MAX_ITEM_LEN + 4];
        let n = emit_receiver_report(ssrc, &reports, &mut buf).unwrap();
        prop_assert_eq!(n, 8 + reports.len() * 24);
        let m = emit_sdes_cname(ssrc, &cname, &mut buf[n..]).unwrap();
        let compound = &buf[..n + m];
        prop_assert_eq!(first_ssrc(compound), Ok(Some(ssrc)));
        let packets: Vec<_> = Compound::new(compound).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(packets.len(), 2);
        matches(&packets[0], &Model::Rr { ssrc, reports, ext: Vec::new() }, 0)?;
        matches(&packets[1], &Model::Sdes(vec![(ssrc, vec![(sdes_item::CNAME, cname)])]), 0)?;
    }
}
