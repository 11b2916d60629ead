//! Interoperability of `livechat_core::srtp` with libsrtp, both ways, byte for byte, for
//! the two AES-CM suites (RFC 3711) and the two AEAD AES-GCM suites (RFC 7714).
//!
//! libsrtp is driven through `srtp_interop/libsrtp_peer.py` (pylibsrtp, whose wheel bundles
//! libsrtp 2.7 built on OpenSSL). Install it with `.ci/deps-srtp.sh`. Without it these tests
//! fail; they never skip.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use livechat_core::srtp::{Context, Error, MAX_OVERHEAD, MasterKey, Suite};

const SUITES: [Suite; 4] = [
    Suite::AesCm128HmacSha1_80,
    Suite::AesCm128HmacSha1_32,
    Suite::AeadAes128Gcm,
    Suite::AeadAes256Gcm,
];
/// Key material: a suite's master key is its first `key_len` bytes, the salt the next
/// `salt_len` (the AES-CM suites take the RFC 3711 B.3 key and salt).
const MASTER: [u8; 46] = [
    0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39,
    0x0E, 0xC6, 0x75, 0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6, 0x5C, 0x21,
    0x9A, 0x37, 0x04, 0xF8, 0x6D, 0xB2, 0x13, 0xC0, 0x7E, 0x45, 0x98, 0x2F, 0xD1, 0x66,
];

/// The master key and salt of `suite`.
fn master(suite: Suite) -> (&'static [u8], &'static [u8]) {
    let (k, s) = (suite.key_len(), suite.salt_len());
    (&MASTER[..k], &MASTER[k..k + s])
}

/// A libsrtp process speaking the line protocol of `libsrtp_peer.py`.
struct Libsrtp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Libsrtp {
    fn start() -> Libsrtp {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/srtp_interop/libsrtp_peer.py"
        );
        let python = std::env::var("LIVECHAT_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run .ci/deps-srtp.sh"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Libsrtp {
            child,
            stdin,
            stdout,
        };
        let version = peer.call("version").expect("libsrtp version");
        assert!(version.starts_with("libsrtp2 2."), "{version}");
        peer
    }

    /// Sends one command line; `Ok(answer)` or `Err(libsrtp error text)`.
    fn call(&mut self, line: &str) -> Result<String, String> {
        const DIED: &str = "the libsrtp peer died (is pylibsrtp installed? run .ci/deps-srtp.sh)";
        writeln!(self.stdin, "{line}").expect(DIED);
        self.stdin.flush().expect(DIED);
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).expect(DIED);
        let answer = answer.trim_end();
        assert!(!answer.is_empty(), "{DIED}");
        match answer.split_once(' ') {
            Some(("ok", rest)) => Ok(rest.to_string()),
            None if answer == "ok" => Ok(String::new()),
            Some(("err", why)) => Err(why.to_string()),
            _ => panic!("bad answer {answer:?}"),
        }
    }

    fn session(&mut self, name: &str, inbound: bool, suite: Suite) {
        let dir = if inbound { "in" } else { "out" };
        let profile = match suite {
            Suite::AesCm128HmacSha1_80 => "80",
            Suite::AesCm128HmacSha1_32 => "32",
            Suite::AeadAes128Gcm => "gcm128",
            Suite::AeadAes256Gcm => "gcm256",
        };
        let (key, salt) = master(suite);
        let key = [key, salt].concat();
        self.call(&format!("new {name} {dir} {profile} {}", hex(&key)))
            .unwrap();
    }

    fn op(&mut self, op: &str, name: &str, packet: &[u8]) -> Result<Vec<u8>, String> {
        self.call(&format!("{op} {name} {}", hex(packet)))
            .map(|h| unhex(&h))
    }
}

impl Drop for Libsrtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn context(suite: Suite) -> Context {
    let (key, salt) = master(suite);
    Context::new(suite, &MasterKey::new(suite, key, salt).unwrap())
}

/// An RTP packet: `csrcs` CSRCs, an extension of `ext_words` words if `Some`, and a
/// payload of `payload` bytes derived from `seq`.
fn rtp(seq: u16, ssrc: u32, csrcs: u8, ext_words: Option<u16>, payload: usize) -> Vec<u8> {
    let x = if ext_words.is_some() { 0x10 } else { 0 };
    let mut p = vec![0x80 | x | csrcs, 0x60 | (seq as u8 & 0x80)];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..csrcs {
        p.extend_from_slice(&(0x1000 + u32::from(c)).to_be_bytes());
    }
    if let Some(words) = ext_words {
        p.extend_from_slice(&[0xBE, 0xDE]);
        p.extend_from_slice(&words.to_be_bytes());
        p.extend((0..words * 4).map(|i| i as u8));
    }
    p.extend((0..payload).map(|i| (i as u16 ^ seq.rotate_left(3)) as u8));
    p
}

/// A compound RTCP packet: a sender report for `ssrc` and an SDES CNAME, `n` in the
/// sender's packet count.
fn rtcp(ssrc: u32, n: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x11; 8]); // NTP timestamp
    p.extend_from_slice(&(n * 160).to_be_bytes());
    p.extend_from_slice(&n.to_be_bytes());
    p.extend_from_slice(&(n * 172).to_be_bytes());
    // SDES, one chunk: CNAME "radio-7", end, padding to a word.
    p.extend_from_slice(&[0x81, 202, 0, 4]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 7]);
    p.extend_from_slice(b"radio-7");
    p.extend_from_slice(&[0, 0, 0]);
    p
}

/// Ours: protect a copy of `packet`.
fn protect(ctx: &mut Context, packet: &[u8], rtcp: bool) -> Result<Vec<u8>, Error> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + MAX_OVERHEAD, 0);
    let n = if rtcp {
        ctx.protect_rtcp(&mut buf, packet.len())?
    } else {
        ctx.protect_rtp(&mut buf, packet.len())?
    };
    buf.truncate(n);
    Ok(buf)
}

/// Ours: unprotect a copy of `packet`.
fn unprotect(ctx: &mut Context, packet: &[u8], rtcp: bool) -> Result<Vec<u8>, Error> {
    let mut buf = packet.to_vec();
    let n = if rtcp {
        ctx.unprotect_rtcp(&mut buf)?
    } else {
        ctx.unprotect_rtp(&mut buf)?
    };
    buf.truncate(n);
    Ok(buf)
}

/// Sequence numbers across the 16-bit wrap, with several SSRCs, header shapes and lengths.
fn rtp_stream() -> Vec<Vec<u8>> {
    (0..120u16)
        .map(|i| {
            let seq = 65_480u16.wrapping_add(i);
            let ssrc = [0x1234_5678, 0x0BAD_CAFE, 42][usize::from(i % 3)];
            let csrcs = (i % 4) as u8;
            let ext = if i % 5 == 0 { Some(i % 3) } else { None };
            let payload = [160, 0, 1, 15, 16, 17, 255, 1000][usize::from(i % 8)];
            rtp(seq, ssrc, csrcs, ext, payload)
        })
        .collect()
}

/// Delivery order: mostly in order, with swaps and one packet 60 places late, the late one
/// and a swap straddling the sequence wrap.
fn reordered(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.swap(10, 11);
    order.swap(55, 58); // seq 65535 and 2 (ROC 0 and 1)
    let late = order.remove(40);
    order.insert(100, late);
    order
}

#[test]
fn srtp_interop_rtp_libsrtp_protects_we_unprotect() {
    let mut lib = Libsrtp::start();
    for suite in SUITES {
        lib.session("tx", false, suite);
        let plain = rtp_stream();
        let protected: Vec<_> = plain
            .iter()
            .map(|p| lib.op("p", "tx", p).unwrap())
            .collect();

        let mut rx = context(suite);
        for i in reordered(plain.len()) {
            let got = unprotect(&mut rx, &protected[i], false);
            assert_eq!(got.as_deref(), Ok(&plain[i][..]), "{suite:?} packet {i}");
        }
        assert_eq!(rx.stream_count(), 3);
        // Replayed, whatever the order.
        for i in [0, 56, 119] {
            assert_eq!(
                unprotect(&mut rx, &protected[i], false),
                Err(Error::Replayed)
            );
        }
        // Tampered: a flipped bit in the header, payload or tag.
        let next = lib
            .op(
                "p",
                "tx",
                &rtp(65_480u16.wrapping_add(120), 42, 0, None, 160),
            )
            .unwrap();
        for bit in [3 * 8, 12 * 8 + 1, 100 * 8 + 7, (next.len() - 1) * 8] {
            let mut bad = next.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                unprotect(&mut rx, &bad, false),
                Err(Error::AuthFailed),
                "bit {bit}"
            );
        }
        assert!(unprotect(&mut rx, &next, false).is_ok());
    }
}

#[test]
fn srtp_interop_rtp_we_protect_libsrtp_unprotects() {
    let mut lib = Libsrtp::start();
    for suite in SUITES {
        lib.session("tx", false, suite);
        lib.session("rx", true, suite);
        let plain = rtp_stream();
        let mut tx = context(suite);
        let ours: Vec<_> = plain
            .iter()
            .map(|p| protect(&mut tx, p, false).unwrap())
            .collect();
        // Byte for byte what libsrtp makes of the same packets.
        for (i, p) in plain.iter().enumerate() {
            assert_eq!(
                lib.op("p", "tx", p).unwrap(),
                ours[i],
                "{suite:?} packet {i}"
            );
        }
        assert_eq!(ours[0].len(), plain[0].len() + suite.rtp_tag_len());

        for i in reordered(plain.len()) {
            assert_eq!(
                lib.op("u", "rx", &ours[i]).unwrap(),
                plain[i],
                "{suite:?} packet {i}"
            );
        }
        for i in [0, 56, 119] {
            let err = lib.op("u", "rx", &ours[i]).unwrap_err();
            assert!(err.starts_with("replay check failed"), "{err}");
        }
        let next = protect(
            &mut tx,
            &rtp(65_480u16.wrapping_add(120), 42, 0, None, 160),
            false,
        )
        .unwrap();
        for bit in [3 * 8, 12 * 8 + 1, 100 * 8 + 7, (next.len() - 1) * 8] {
            let mut bad = next.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                lib.op("u", "rx", &bad).unwrap_err(),
                "authentication failure"
            );
        }
        assert!(lib.op("u", "rx", &next).is_ok());
    }
}

#[test]
fn srtp_interop_rtp_sender_refuses_to_reuse_an_index_like_libsrtp() {
    let mut lib = Libsrtp::start();
    for suite in SUITES {
        lib.session("tx", false, suite);
        let mut tx = context(suite);
        let p = rtp(7, 99, 0, None, 20);
        lib.op("p", "tx", &p).unwrap();
        protect(&mut tx, &p, false).unwrap();
        assert!(
            lib.op("p", "tx", &p)
                .unwrap_err()
                .starts_with("replay check failed")
        );
        assert_eq!(protect(&mut tx, &p, false), Err(Error::Replayed));
    }
}

#[test]
fn srtp_interop_rtcp_both_ways() {
    let mut lib = Libsrtp::start();
    for suite in SUITES {
        lib.session("tx", false, suite);
        lib.session("rx", true, suite);
        let ssrcs = [0x1234_5678u32, 0x0BAD_CAFE];
        let plain: Vec<_> = (0..40).map(|n| rtcp(ssrcs[n as usize % 2], n)).collect();

        // Delivery order: swaps, and packet 3 arriving last, 36 places late.
        let mut order: Vec<usize> = (0..plain.len()).collect();
        order.swap(10, 12);
        order.swap(20, 21);
        let late = order.remove(3);
        order.push(late);

        // libsrtp -> us, reordered, then replay and tamper.
        let theirs: Vec<_> = plain
            .iter()
            .map(|p| lib.op("pc", "tx", p).unwrap())
            .collect();
        // 80-bit tag for both AES-CM suites, 128-bit for AES-GCM; and the E flag and index.
        assert_eq!(theirs[0].len(), plain[0].len() + 4 + suite.rtcp_tag_len());
        let mut rx = context(suite);
        for &i in &order {
            assert_eq!(
                unprotect(&mut rx, &theirs[i], true).as_deref(),
                Ok(&plain[i][..])
            );
        }
        assert_eq!(unprotect(&mut rx, &theirs[5], true), Err(Error::Replayed));
        let next = lib.op("pc", "tx", &rtcp(ssrcs[0], 40)).unwrap();
        // The E flag and the tag's last byte: the trailer word follows the report (AES-CM)
        // or the tag (AES-GCM).
        let (e_flag, tag_end) = if suite.is_aead() {
            (next.len() - 4, next.len() - 5)
        } else {
            (next.len() - 14, next.len() - 1)
        };
        let tamper = [0, 9 * 8, e_flag * 8 + 7, tag_end * 8];
        for bit in tamper {
            let mut bad = next.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                unprotect(&mut rx, &bad, true),
                Err(Error::AuthFailed),
                "bit {bit}"
            );
        }
        assert!(unprotect(&mut rx, &next, true).is_ok());

        // us -> libsrtp. Our first SRTCP index is 0 (RFC 3711 section 3.4), libsrtp's is 1:
        // after one packet more per SSRC, ours are byte for byte libsrtp's.
        let mut tx = context(suite);
        protect(&mut tx, &rtcp(ssrcs[0], 999), true).unwrap();
        protect(&mut tx, &rtcp(ssrcs[1], 999), true).unwrap();
        let ours: Vec<_> = plain
            .iter()
            .map(|p| protect(&mut tx, p, true).unwrap())
            .collect();
        assert_eq!(ours, theirs, "{suite:?}");

        let mut tx = context(suite);
        let ours: Vec<_> = plain
            .iter()
            .map(|p| protect(&mut tx, p, true).unwrap())
            .collect();
        for &i in &order {
            assert_eq!(lib.op("uc", "rx", &ours[i]).unwrap(), plain[i]);
        }
        let err = lib.op("uc", "rx", &ours[5]).unwrap_err();
        assert!(err.starts_with("replay check failed"), "{err}");
        let next = protect(&mut tx, &rtcp(ssrcs[0], 40), true).unwrap();
        for bit in tamper {
            let mut bad = next.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            // A cleared E flag fails libsrtp's policy check before its MAC under AES-CM; under
            // AES-GCM it changes the AAD (RFC 7714 section 9.3), so the tag fails.
            let expect = if bit == tamper[2] && !suite.is_aead() {
                "unable to perform desired validation"
            } else {
                "authentication failure"
            };
            assert_eq!(lib.op("uc", "rx", &bad).unwrap_err(), expect, "bit {bit}");
        }
        assert!(lib.op("uc", "rx", &next).is_ok());
    }
}
