//! Protect and unprotect of 172-byte RTP packets (12-byte header, 160-byte payload: 20 ms of
//! G.711), AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM and AEAD_AES_256_GCM, one packet at a
//! time on one core: livechat-core against libsrtp (the pylibsrtp wheel's libsrtp 2.7 on
//! OpenSSL 3.5, see `src/lib.rs`; plus any libsrtp 2.x shared object named by `LIBSRTP_SO`)
//! and webrtc-srtp. `SRTP_BENCH_SUITES` (comma-separated SDES names) picks suites.
//!
//! `cargo bench -p livechat-srtp-bench --bench srtp` (after `.ci/deps-srtp.sh`).
//!
//! Criterion measures each implementation in turn. Since the machine's CPU is shared, the
//! closing table comes from a second, interleaved measurement: rounds of 1,000 packets per
//! implementation and direction, the implementations taking turns, keeping each one's best
//! round. Each round starts with the next implementation, so none always runs first, right
//! after the feeder (our own sender, which protects the round's packets for the receivers)
//! has warmed the caches with its code. Its ratio is to the fastest libsrtp.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use livechat_core::srtp::{Context, MasterKey, Suite};
use livechat_srtp_bench::{
    Libsrtp, PROFILE_80, PROFILE_AEAD_128_GCM, PROFILE_AEAD_256_GCM, Session,
};

const HEADER: usize = 12;
const PAYLOAD: usize = 160;
const LEN: usize = HEADER + PAYLOAD;
const BUF: usize = LEN + 20;
const SSRC: u32 = 0x1234_5678;
/// Key material: a suite's master key is its first `key_len` bytes, the salt the next
/// `salt_len`.
const MASTER: [u8; 46] = [
    0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39,
    0x0E, 0xC6, 0x75, 0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6, 0x5C, 0x21,
    0x9A, 0x37, 0x04, 0xF8, 0x6D, 0xB2, 0x13, 0xC0, 0x7E, 0x45, 0x98, 0x2F, 0xD1, 0x66,
];
const SUITES: [Suite; 3] = [
    Suite::AesCm128HmacSha1_80,
    Suite::AeadAes128Gcm,
    Suite::AeadAes256Gcm,
];

/// The master key then salt of `suite`.
fn master(suite: Suite) -> &'static [u8] {
    &MASTER[..suite.key_len() + suite.salt_len()]
}

/// libsrtp's profile for `suite`.
fn profile(suite: Suite) -> u32 {
    match suite {
        Suite::AeadAes128Gcm => PROFILE_AEAD_128_GCM,
        Suite::AeadAes256Gcm => PROFILE_AEAD_256_GCM,
        _ => PROFILE_80,
    }
}
/// Packets per round of the interleaved measurement.
const ROUND: usize = 1_000;
/// Rounds of the interleaved measurement.
const ROUNDS: usize = 200;

type Packet = [u8; BUF];

/// One SRTP implementation, one direction per value.
trait Srtp {
    /// Protects `buf[..LEN]` in place (or into its own buffer); the protected length.
    fn protect(&mut self, buf: &mut Packet) -> usize;
    /// Unprotects `buf[..n]`; the RTP length.
    fn unprotect(&mut self, buf: &mut Packet, n: usize) -> usize;
}

impl Srtp for Context {
    fn protect(&mut self, buf: &mut Packet) -> usize {
        self.protect_rtp(buf, LEN).unwrap()
    }
    fn unprotect(&mut self, buf: &mut Packet, n: usize) -> usize {
        self.unprotect_rtp(&mut buf[..n]).unwrap()
    }
}

impl Srtp for Session<'_> {
    fn protect(&mut self, buf: &mut Packet) -> usize {
        Session::protect(self, buf, LEN).unwrap()
    }
    fn unprotect(&mut self, buf: &mut Packet, n: usize) -> usize {
        Session::unprotect(self, &mut buf[..n]).unwrap()
    }
}

/// webrtc-srtp returns a new `Bytes` rather than working in place.
impl Srtp for webrtc_srtp::context::Context {
    fn protect(&mut self, buf: &mut Packet) -> usize {
        black_box(self.encrypt_rtp(&buf[..LEN]).unwrap()).len()
    }
    fn unprotect(&mut self, buf: &mut Packet, n: usize) -> usize {
        black_box(self.decrypt_rtp(&buf[..n]).unwrap()).len()
    }
}

/// An implementation under test: its name and a maker of senders (false) and receivers
/// (true), each receiver with a 128-packet replay window.
struct Impl<'a> {
    name: String,
    make: Box<dyn Fn(bool) -> Box<dyn Srtp + 'a> + 'a>,
}

fn ours(suite: Suite) -> Context {
    let (key, salt) = master(suite).split_at(suite.key_len());
    Context::new(suite, &MasterKey::new(suite, key, salt).unwrap())
}

fn webrtc(suite: Suite, replay: bool) -> webrtc_srtp::context::Context {
    use webrtc_srtp::protection_profile::ProtectionProfile;
    let opt = if replay {
        webrtc_srtp::option::srtp_replay_protection(128)
    } else {
        webrtc_srtp::option::srtp_no_replay_protection()
    };
    let profile = match suite {
        Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        Suite::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        _ => ProtectionProfile::Aes128CmHmacSha1_80,
    };
    let (key, salt) = master(suite).split_at(suite.key_len());
    webrtc_srtp::context::Context::new(key, salt, profile, Some(opt), None).unwrap()
}

fn plain(seq: u16) -> Packet {
    let mut p = [0u8; BUF];
    p[0] = 0x80;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p[8..12].copy_from_slice(&SSRC.to_be_bytes());
    for (i, b) in p[HEADER..LEN].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    p
}

/// Our sender's packets from `seq` on: byte for byte libsrtp's (checked in `main`), so every
/// receiver gets the same input.
struct Feed {
    tx: Context,
    seq: u16,
}

impl Feed {
    fn next(&mut self) -> (Packet, usize) {
        let mut buf = plain(self.seq);
        self.seq = self.seq.wrapping_add(1);
        let n = self.tx.protect_rtp(&mut buf, LEN).unwrap();
        (buf, n)
    }
}

fn criterion_runs(c: &mut Criterion, suite: Suite, impls: &[Impl<'_>]) {
    let mut g = c.benchmark_group(format!("protect {}", suite.as_str()));
    g.throughput(Throughput::Elements(1));
    for imp in impls {
        let mut tx = (imp.make)(false);
        let base = plain(0);
        let mut seq = 0u16;
        g.bench_function(&imp.name, |b| {
            b.iter(|| {
                let mut buf = base;
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                seq = seq.wrapping_add(1);
                black_box(tx.protect(&mut buf));
                black_box(&buf);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group(format!("unprotect {}", suite.as_str()));
    g.throughput(Throughput::Elements(1));
    for imp in impls {
        let mut rx = (imp.make)(true);
        let mut feed = Feed {
            tx: ours(suite),
            seq: 0,
        };
        g.bench_function(&imp.name, |b| {
            b.iter_batched_ref(
                || feed.next(),
                |(buf, n)| black_box(rx.unprotect(buf, *n)),
                // 1000 packets (200 kB) per batch: hot in L2, as a packet fresh from recv is.
                BatchSize::NumIterations(1000),
            )
        });
    }
    g.finish();
}

/// Best ns/packet over interleaved rounds: `[protect, unprotect]` per implementation.
fn interleaved(suite: Suite, impls: &[Impl<'_>]) -> Vec<[f64; 2]> {
    let mut txs: Vec<_> = impls.iter().map(|i| (i.make)(false)).collect();
    let mut rxs: Vec<_> = impls.iter().map(|i| (i.make)(true)).collect();
    let mut best = vec![[f64::INFINITY; 2]; impls.len()];
    let mut feed = Feed {
        tx: ours(suite),
        seq: 0,
    };
    let mut tx_seq = 0u16;
    let mut work = vec![([0u8; BUF], 0usize); ROUND];
    for round in 0..ROUNDS {
        let protected: Vec<_> = (0..ROUND).map(|_| feed.next()).collect();
        let seq0 = tx_seq;
        tx_seq = tx_seq.wrapping_add(ROUND as u16);
        for turn in 0..impls.len() {
            let i = (round + turn) % impls.len();
            let (tx, rx) = (&mut txs[i], &mut rxs[i]);
            for (k, w) in work.iter_mut().enumerate() {
                *w = (plain(seq0.wrapping_add(k as u16)), LEN);
            }
            let t = Instant::now();
            for (buf, _) in &mut work {
                black_box(tx.protect(buf));
            }
            best[i][0] = best[i][0].min(t.elapsed().as_nanos() as f64 / ROUND as f64);

            work.copy_from_slice(&protected);
            let t = Instant::now();
            for (buf, n) in &mut work {
                black_box(rx.unprotect(buf, *n));
            }
            best[i][1] = best[i][1].min(t.elapsed().as_nanos() as f64 / ROUND as f64);
        }
    }
    best
}

fn main() {
    let pylibsrtp = Libsrtp::load_pylibsrtp().unwrap_or_else(|e| panic!("libsrtp: {e}"));
    let other = std::env::var("LIBSRTP_SO")
        .ok()
        .map(|p| Libsrtp::load_path(&p).unwrap_or_else(|e| panic!("LIBSRTP_SO: {e}")));
    let libs: Vec<&Libsrtp> = std::iter::once(&pylibsrtp).chain(&other).collect();
    let suites: Vec<Suite> = match std::env::var("SRTP_BENCH_SUITES") {
        Ok(names) => names
            .split(',')
            .map(|n| Suite::from_name(n).unwrap_or_else(|| panic!("unknown suite {n}")))
            .collect(),
        Err(_) => SUITES.to_vec(),
    };

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut tables = Vec::new();
    for &suite in &suites {
        let impls = implementations(suite, &libs);
        criterion_runs(&mut c, suite, &impls);
        tables.push((suite, interleaved(suite, &impls), impls));
    }
    c.final_summary();

    for (suite, best, impls) in &tables {
        let lib_best = |d: usize| {
            impls
                .iter()
                .zip(best)
                .filter(|(i, _)| i.name.starts_with("libsrtp"))
                .map(|(_, b)| b[d])
                .fold(f64::INFINITY, f64::min)
        };
        println!();
        println!("SRTP {}, {LEN}-byte RTP packets, one core,", suite.as_str());
        println!(
            "best of {ROUNDS} interleaved rounds of {ROUND} packets; x lib = fastest libsrtp / this"
        );
        for lib in &libs {
            println!("  {}", lib.version);
        }
        println!(
            "{:<30} {:>10} {:>8} {:>6} {:>10} {:>8} {:>6}",
            "", "protect", "pkt/s", "x lib", "unprotect", "pkt/s", "x lib"
        );
        for (imp, b) in impls.iter().zip(best) {
            print!("{:<30}", imp.name);
            for (d, ns) in b.iter().enumerate() {
                print!(
                    " {ns:>7.0} ns {:>6.2} M {:>6.2}",
                    1e3 / ns,
                    lib_best(d) / ns
                );
            }
            println!();
        }
    }
}

/// The implementations of `suite`, each checked to protect a packet byte for byte as ours
/// does before anything is timed.
fn implementations<'a>(suite: Suite, libs: &[&'a Libsrtp]) -> Vec<Impl<'a>> {
    let mut impls = vec![Impl {
        name: "livechat-core".into(),
        make: Box::new(move |_| Box::new(ours(suite))),
    }];
    let mut reference = plain(7);
    let n = ours(suite).protect_rtp(&mut reference, LEN).unwrap();
    for &lib in libs {
        let mut buf = plain(7);
        let m = lib
            .session(profile(suite), false, master(suite))
            .protect(&mut buf, LEN)
            .unwrap();
        assert_eq!(
            reference[..n],
            buf[..m],
            "livechat-core and {} differ",
            lib.version
        );
        impls.push(Impl {
            // "libsrtp2 2.7.0, OpenSSL 3.5.4 30 Sep 2025" -> "libsrtp-2.7.0-openssl-3.5.4"
            name: lib
                .version
                .replace("libsrtp2 ", "libsrtp-")
                .replace(", OpenSSL ", "-openssl-")
                .split(' ')
                .next()
                .unwrap_or("libsrtp")
                .to_string(),
            make: Box::new(move |inbound| {
                Box::new(lib.session(profile(suite), inbound, master(suite)))
            }),
        });
    }
    let theirs = webrtc(suite, false).encrypt_rtp(&plain(7)[..LEN]).unwrap();
    assert_eq!(
        reference[..n],
        theirs[..],
        "livechat-core and webrtc-srtp differ"
    );
    impls.push(Impl {
        name: "webrtc-srtp-0.17".into(),
        make: Box::new(move |inbound| Box::new(webrtc(suite, inbound))),
    });
    impls
}
