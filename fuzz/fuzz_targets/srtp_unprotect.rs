//! SRTP and SRTCP unprotect with a real context, under each suite (AES-CM 80 and 32, AEAD
//! AES-128-GCM and AES-256-GCM). Structure-aware: packets protected by a sender sharing the
//! key, along a fuzzed sequence path, some tampered with, some replayed.
//! A tampered packet never authenticates; an accepted one is exactly what was sent; raw
//! bytes never panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::srtp::{Context, MasterKey, Suite};
use livechat_core::wire::rtcp;
use livechat_core::wire::rtp::{self, Header};

#[derive(Arbitrary, Debug)]
struct Step {
    seq_delta: i16,
    payload_len: u8,
    rtcp: bool,
    /// Byte to flip (index modulo the length) and with what.
    tamper: Option<(u16, u8)>,
    replay: bool,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// The suite, modulo 4: AES-CM 80 and 32 (0 and 1, as a `tag32` flag read the same byte
    /// in older corpus entries), AES-128-GCM, AES-256-GCM.
    suite: u8,
    ssrc: u32,
    steps: Vec<Step>,
    raw: &'a [u8],
}

fn key(suite: Suite) -> MasterKey {
    let k: [u8; 32] = core::array::from_fn(|i| i as u8 * 7 + 1);
    let s: [u8; 14] = core::array::from_fn(|i| i as u8 * 3 + 2);
    MasterKey::new(suite, &k[..suite.key_len()], &s[..suite.salt_len()]).unwrap()
}

fuzz_target!(|input: Input<'_>| {
    let suite = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ][usize::from(input.suite % 4)];
    let mut tx = Context::new(suite, &key(suite));
    let mut rx = Context::new(suite, &key(suite));
    // Raw bytes first, into both directions' parsers, by slice and through the views, each
    // way with a context of its own: both give the same result.
    let mut by_view = Context::new(suite, &key(suite));
    let mut raw = input.raw.to_vec();
    let slice_rtp = rx.unprotect_rtp(&mut raw);
    let mut raw = input.raw.to_vec();
    if let Ok(packet) = rtp::Packet::new_checked_header(&mut raw[..]) {
        let view_rtp = by_view.unprotect_rtp_packet(packet);
        assert_eq!(view_rtp.map(|p| p.as_bytes().len()), slice_rtp);
    }
    let mut raw = input.raw.to_vec();
    let slice_rtcp = rx.unprotect_rtcp(&mut raw);
    let mut raw = input.raw.to_vec();
    if let Ok(header) = rtcp::Header::new_checked(&mut raw[..]) {
        let view_rtcp = by_view.unprotect_rtcp_header(header);
        assert_eq!(view_rtcp.map(|p| p.len()), slice_rtcp);
    }

    let mut seq: u16 = 1000;
    let mut last: Option<(Vec<u8>, bool)> = None;
    for step in input.steps.iter().take(64) {
        let mut buf = vec![0u8; 400];
        let n = if step.rtcp {
            // An RTCP receiver report with no blocks.
            rtcp::emit_receiver_report(input.ssrc, &[], &mut buf).unwrap()
        } else {
            seq = seq.wrapping_add(step.seq_delta as u16);
            let h = Header {
                marker: false,
                payload_type: 0,
                seq_number: seq,
                timestamp: u32::from(seq) * 160,
                ssrc: input.ssrc,
                csrcs: &[],
                extension: None,
            };
            let payload = vec![0x55; usize::from(step.payload_len)];
            h.emit_packet(&payload, 0, &mut buf).unwrap()
        };
        let plain = buf[..n].to_vec();
        let protected = if step.rtcp {
            tx.protect_rtcp(&mut buf, n)
        } else {
            tx.protect_rtp(&mut buf, n)
        };
        let Ok(wire_len) = protected else { continue };
        let mut wire = buf[..wire_len].to_vec();
        let mut tampered = false;
        if let Some((at, x)) = step.tamper
            && x != 0
        {
            let i = usize::from(at) % wire.len();
            wire[i] ^= x;
            tampered = true;
        }
        let mut got = wire.clone();
        let r = if step.rtcp {
            rx.unprotect_rtcp(&mut got)
        } else {
            rx.unprotect_rtp(&mut got)
        };
        if tampered {
            assert!(r.is_err(), "a tampered packet authenticated");
        }
        if let Ok(len) = r {
            assert_eq!(&got[..len], &plain[..], "accepted but not what was sent");
        }
        if step.replay
            && let Some((prev, was_rtcp)) = &last
        {
            let mut again = prev.clone();
            let r = if *was_rtcp {
                rx.unprotect_rtcp(&mut again)
            } else {
                rx.unprotect_rtp(&mut again)
            };
            assert!(r.is_err(), "a replayed packet was accepted");
        }
        if !tampered && r.is_ok() {
            last = Some((wire, step.rtcp));
        }
    }
});
