//! A loop of livechat-core SRTP protects or unprotects of 172-byte packets, for a profiler:
//!
//! `cargo bench -p livechat-srtp-bench --bench srtp_profile -- unprotect 5000000` runs it;
//! `perf record target/release/deps/srtp_profile-<hash> unprotect 5000000` profiles it.
//! (A bench target rather than an example, so that `cargo test` does not build it.)
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use livechat_core::srtp::{Context, MasterKey, Suite};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mode = args.next().unwrap_or_else(|| "protect".into());
    let n: usize = args.next().map_or(5_000_000, |a| a.parse().unwrap());
    let key = MasterKey::aes_cm([0x11; 16], [0x22; 14]);
    let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &key);
    let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &key);
    let mut plain = [0u8; 192];
    plain[0] = 0x80;
    plain[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    // 1000 packets in a ring: unprotect takes them in turn from a protected copy.
    let mut ring = vec![([0u8; 192], 0usize); 1000];
    let mut seq = 0u16;
    let t = std::time::Instant::now();
    for i in 0..n {
        let slot = i % ring.len();
        if mode == "protect" || slot == 0 {
            let fill = if mode == "protect" { 1 } else { ring.len() };
            for (buf, len) in &mut ring[slot..slot + fill] {
                *buf = plain;
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                seq = seq.wrapping_add(1);
                *len = tx.protect_rtp(buf, 172).unwrap();
            }
        }
        if mode == "unprotect" {
            let (buf, len) = &mut ring[slot];
            black_box(rx.unprotect_rtp(&mut buf[..*len]).unwrap());
        }
    }
    eprintln!(
        "{mode}: {:.0} ns/packet (unprotect includes refilling the ring)",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
