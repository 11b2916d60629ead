//! The media plane end to end (PROTOCOL.md sections 2 and 3): the reference radio
//! (`livechat-radio`) and an independent libsrtp peer (tests/py/srtp_peer.py, `pylibsrtp`)
//! against the real daemon over loopback UDP.
//!
//! Absence is checked after an ordering barrier, never by a bare sleep: UDP datagrams to the
//! daemon's one socket are handled in the order they were sent, so once a listener has
//! received the packets a talker sent *after* the ones that must be dropped, anything
//! wrongly relayed would already be in its queue. The short quiet period that follows only
//! catches stragglers. Loopback does not lose packets and the radio's socket buffers are
//! 1 MiB, so counts are exact.
//!
//! Needs python3 with `websockets` and `pylibsrtp` (.ci/deps-e2e.sh, .ci/deps-srtp.sh); the
//! interop tests fail, they do not skip, when those are missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use livechat_radio::livechat_core::srtp::Context;
use livechat_radio::livechat_core::wire::rtp::Header;
use livechat_radio::wav::{self, Encoding};
use livechat_radio::{
    Channel, JoinOptions, MasterKey, Protection, Radio, Received, Recorder, Sent, Suite,
    TalkOptions, audio, g711,
};
use livechat_tests::tone::assert_tone;
use livechat_tests::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UdpSocket;

const P80: Protection = Protection::Srtp(Suite::AesCm128HmacSha1_80);
const P32: Protection = Protection::Srtp(Suite::AesCm128HmacSha1_32);
const PLAIN: Protection = Protection::Plain;

/// How long a batch of expected packets may take to arrive.
const WAIT: Duration = Duration::from_secs(10);
/// The quiet period after an ordering barrier.
const QUIET: Duration = Duration::from_millis(300);
/// Tone amplitude as a fraction of full scale, and in sample units.
const TONE_LEVEL: f64 = 0.5;
const TONE_PEAK: f64 = TONE_LEVEL * 32767.0;

// ----- helpers -----------------------------------------------------------------------------

async fn radio(d: &Daemon, user: &str) -> Radio {
    Radio::connect(&d.ws_url(), user, &d.token(user))
        .await
        .unwrap_or_else(|e| panic!("{user}: connect and identify: {e}"))
}

async fn join(r: &Radio, channel: &str, p: Protection) -> Channel {
    r.join(channel, JoinOptions::with(p).ssrc(fresh_ssrc()))
        .await
        .unwrap_or_else(|e| panic!("{}: join {channel} with {p:?}: {e}", r.user_id()))
}

/// A radio named `user` joined to `channel` with `p`.
async fn member(d: &Daemon, user: &str, channel: &str, p: Protection) -> (Radio, Channel) {
    let r = radio(d, user).await;
    let c = join(&r, channel, p).await;
    (r, c)
}

/// Talk options for bulk tests: 2 ms between packets, every packet kept.
fn fast() -> TalkOptions {
    TalkOptions {
        pace: Duration::from_millis(2),
        keep_packets: true,
        ..TalkOptions::default()
    }
}

/// `n` frames of PCMU, each frame different (so a packet mix-up cannot go unnoticed).
fn distinct_frames(n: usize) -> Vec<u8> {
    (0..n * audio::FRAME_SAMPLES)
        .map(|i| ((i / audio::FRAME_SAMPLES) * 13 + i % audio::FRAME_SAMPLES) as u8)
        .collect()
}

/// Exactly `n` packets within [`WAIT`], or fails naming `who`.
async fn expect_packets(ch: &mut Channel, n: usize, who: &str) -> Vec<Received> {
    let got = ch.recv_n(n, WAIT).await;
    assert_eq!(
        got.len(),
        n,
        "{who}: expected {n} packets within {WAIT:?}, got {} (receive stats {:?})",
        got.len(),
        ch.stats()
    );
    got
}

/// Fails if any packet is queued or arrives within [`QUIET`].
async fn expect_nothing(ch: &mut Channel, who: &str, why: &str) {
    let got = ch.recv_for(QUIET).await;
    assert!(
        got.is_empty(),
        "{who} must receive nothing ({why}), got {} packets: first ssrc {} seq {}",
        got.len(),
        got[0].ssrc(),
        got[0].seq()
    );
}

/// The received packets are the sent ones, byte for byte and in order.
fn assert_same_packets(got: &[Received], sent: &[Sent], who: &str) {
    assert_eq!(got.len(), sent.len(), "{who}: packet count");
    for (i, (g, s)) in got.iter().zip(sent).enumerate() {
        assert!(
            g.rtp == s.rtp,
            "{who}: packet {i} differs from the one sent: got ssrc {} seq {} ({} bytes), sent \
             seq {} ({} bytes)",
            g.ssrc(),
            g.seq(),
            g.rtp.len(),
            Received {
                rtp: s.rtp.clone(),
                from: g.from
            }
            .seq(),
            s.rtp.len()
        );
    }
}

/// Sends `n` packets of distinct frames without touching the floor; returns them.
async fn send_frames(ch: &Channel, n: usize) -> Vec<Sent> {
    let pcmu = distinct_frames(n);
    let mut sent = Vec::with_capacity(n);
    for (i, f) in audio::frames(&pcmu).enumerate() {
        sent.push(
            ch.send_rtp(&f, i == 0)
                .await
                .unwrap_or_else(|e| panic!("sending RTP: {e}")),
        );
    }
    sent
}

fn temp_wav(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "livechat-e2e-media-{}-{name}.wav",
        std::process::id()
    ))
}

// ----- a 1 kHz tone to listeners of every kind -----------------------------------------------

/// The talker (`talker`) sends one second of a 1 kHz tone at real-time pace to three
/// listeners (SRTP _80, _32 and plain); each recording must be that tone, two of them after
/// a round trip through a WAV file; the talker hears nothing.
async fn tone_to_three_listeners(talker: Protection) {
    let d = Daemon::start().await;
    let alice = radio(&d, "alice").await;
    alice.create_channel("tone").await.expect("create");
    let mut listeners = Vec::new();
    for (name, p) in [("l80", P80), ("l32", P32), ("lplain", PLAIN)] {
        listeners.push((name, member(&d, name, "tone", p).await));
    }
    let mut a = join(&alice, "tone", talker).await;

    let tone = audio::tone_pcmu(1000.0, 1.0, TONE_LEVEL);
    let report = a
        .talk(
            &tone,
            &TalkOptions {
                keep_packets: true,
                ..TalkOptions::default()
            },
        )
        .await
        .expect("alice talks");
    assert_eq!(report.packets, 50, "one second is 50 packets of 20 ms");
    assert!(report.revoked.is_none(), "{report:?}");

    for (i, (name, (_r, ch))) in listeners.iter_mut().enumerate() {
        let got = expect_packets(ch, 50, name).await;
        assert!(
            got.iter().all(|p| p.ssrc() == a.ssrc()),
            "{name}: every packet carries the talker's SSRC"
        );
        assert!(
            got[0].marker(),
            "{name}: the talk burst starts with the marker bit"
        );
        assert_same_packets(&got, &report.sent, name);
        let mut rec = Recorder::new();
        for p in &got {
            rec.push(&p.rtp);
        }
        assert_eq!(rec.pcmu().len(), 8000, "{name}: one second of audio");
        assert_tone(&rec.samples(), 1000.0, TONE_PEAK, name);
        // Two of the recordings go through a WAV file and back, as `lcradio listen` does.
        if let Some(enc) = [Some(Encoding::Pcmu), Some(Encoding::Pcm16), None][i] {
            let path = temp_wav(&format!("{name}-{enc:?}"));
            wav::write_wav(&path, rec.pcmu(), enc).expect("write WAV");
            let back = wav::read_pcmu(&path).expect("read WAV back");
            let _ = std::fs::remove_file(&path);
            assert_eq!(back.len(), 8000, "{name}: the WAV holds one second");
            assert_tone(
                &g711::decode_all(&back),
                1000.0,
                TONE_PEAK,
                &format!("{name} via {enc:?} WAV"),
            );
        }
        expect_nothing(ch, name, "the burst is over").await;
        let st = ch.stats();
        assert_eq!(
            (st.auth_failed, st.replayed, st.malformed, st.foreign),
            (0, 0, 0, 0),
            "{name}: {st:?}"
        );
    }
    expect_nothing(&mut a, "alice", "a talker does not hear itself").await;
    assert_eq!(a.stats().rtp, 0, "{:?}", a.stats());
}

#[tokio::test]
async fn tone_from_an_srtp_80_talker_reaches_srtp_and_plain_listeners() {
    tone_to_three_listeners(P80).await;
}

#[tokio::test]
async fn tone_from_an_srtp_32_talker_reaches_srtp_and_plain_listeners() {
    tone_to_three_listeners(P32).await;
}

#[tokio::test]
async fn tone_from_a_plain_rtp_talker_reaches_srtp_and_plain_listeners() {
    tone_to_three_listeners(PLAIN).await;
}

// ----- the 16-bit sequence wrap ------------------------------------------------------------

/// 300 packets from sequence number 65400 (the wrap at packet 136) reach listeners of every
/// kind byte-exact: the daemon's inbound and outbound SRTP contexts and the radio's all
/// follow the rollover counter.
async fn across_the_wrap(talker: Protection) {
    let d = Daemon::start().await;
    let alice = radio(&d, "alice").await;
    alice.create_channel("wrap").await.expect("create");
    let mut listeners = Vec::new();
    for (name, p) in [("l80", P80), ("l32", P32), ("lplain", PLAIN)] {
        listeners.push((name, member(&d, name, "wrap", p).await));
    }
    let mut a = join(&alice, "wrap", talker).await;
    let report = a
        .talk(
            &distinct_frames(300),
            &TalkOptions {
                start_seq: Some(65400),
                ..fast()
            },
        )
        .await
        .expect("alice talks");
    assert_eq!(
        (report.packets, report.first_seq, report.last_seq),
        (300, 65400, 163)
    );
    for (name, (_r, ch)) in &mut listeners {
        let got = expect_packets(ch, 300, name).await;
        assert_same_packets(&got, &report.sent, name);
        let seqs: Vec<u16> = got.iter().map(Received::seq).collect();
        assert_eq!(
            (seqs[135], seqs[136]),
            (65535, 0),
            "{name}: the wrap is between packets 135 and 136"
        );
        expect_nothing(ch, name, "all 300 arrived").await;
    }
    expect_nothing(&mut a, "alice", "a talker does not hear itself").await;
}

#[tokio::test]
async fn srtp_80_talker_across_the_sequence_wrap_is_byte_exact_for_every_listener() {
    across_the_wrap(P80).await;
}

#[tokio::test]
async fn srtp_32_talker_across_the_sequence_wrap_is_byte_exact_for_every_listener() {
    across_the_wrap(P32).await;
}

#[tokio::test]
async fn plain_talker_across_the_sequence_wrap_is_byte_exact_for_every_listener() {
    across_the_wrap(PLAIN).await;
}

// ----- the floor gates the media ------------------------------------------------------------

#[tokio::test]
async fn audio_from_a_member_without_the_floor_reaches_nobody() {
    let d = Daemon::start().await;
    let alice = radio(&d, "alice").await;
    alice.create_channel("gate").await.expect("create");
    let mut a = join(&alice, "gate", P80).await;
    let (_b, mut b) = member(&d, "bob", "gate", P32).await;
    let (_l, mut l) = member(&d, "lis", "gate", PLAIN).await;

    // bob sends while the floor is idle, then while alice holds it.
    send_frames(&b, 10).await;
    a.request_floor(None, TIMEOUT).await.expect("alice's floor");
    send_frames(&b, 10).await;
    // Barrier: alice's packets, sent after bob's.
    let sent = send_frames(&a, 20).await;
    let got = expect_packets(&mut l, 20, "lis").await;
    assert_same_packets(&got, &sent, "lis (alice's packets only, none of bob's)");
    let got = expect_packets(&mut b, 20, "bob").await;
    assert_same_packets(&got, &sent, "bob, a listener while alice talks");
    expect_nothing(&mut l, "lis", "bob never held the floor").await;
    expect_nothing(
        &mut a,
        "alice",
        "bob's audio is dropped; alice does not hear herself",
    )
    .await;
    expect_nothing(&mut b, "bob", "nothing more was sent").await;
    a.release_floor().await.expect("release");
}

#[tokio::test]
async fn a_released_talker_is_gated_and_the_media_direction_follows_the_floor() {
    let d = Daemon::start().await;
    let alice = radio(&d, "alice").await;
    alice.create_channel("pass").await.expect("create");
    let mut a = join(&alice, "pass", P80).await;
    let (_b, mut b) = member(&d, "bob", "pass", P32).await;
    let (_l, mut l) = member(&d, "lis", "pass", PLAIN).await;

    // alice talks and releases (talk waits for the release's ACK).
    let first = a
        .talk(&distinct_frames(10), &fast())
        .await
        .expect("alice talks");
    let got = expect_packets(&mut l, 10, "lis").await;
    assert_same_packets(&got, &first.sent, "lis hears alice");
    let got = expect_packets(&mut b, 10, "bob").await;
    assert_same_packets(&got, &first.sent, "bob hears alice");

    // After FLOOR_RELEASE alice's packets go nowhere.
    send_frames(&a, 10).await;

    // The floor passes to bob; his audio now reaches alice and lis.
    let second = b
        .talk(&distinct_frames(10), &fast())
        .await
        .expect("bob talks");
    let got = expect_packets(&mut l, 10, "lis").await;
    assert_same_packets(
        &got,
        &second.sent,
        "lis hears bob, not alice's gated packets",
    );
    let got = expect_packets(&mut a, 10, "alice").await;
    assert_same_packets(&got, &second.sent, "alice, now a listener, hears bob");
    expect_nothing(&mut l, "lis", "alice was gated after releasing").await;
    expect_nothing(&mut b, "bob", "alice's gated packets reach nobody").await;
    expect_nothing(&mut a, "alice", "she does not hear herself").await;
}

// ----- replays -----------------------------------------------------------------------------

/// A talker resends SRTP packets it already sent: listeners get each packet once, and the
/// daemon (not the listener's own replay check) is what dropped the copies.
async fn replays_are_relayed_once(talker: Protection) {
    let d = Daemon::start().await;
    let alice = radio(&d, "alice").await;
    alice.create_channel("replay").await.expect("create");
    let mut listeners = Vec::new();
    for (name, p) in [("l80", P80), ("l32", P32), ("lplain", PLAIN)] {
        listeners.push((name, member(&d, name, "replay", p).await));
    }
    let a = join(&alice, "replay", talker).await;
    a.request_floor(None, TIMEOUT).await.expect("floor");
    let mut sent = send_frames(&a, 10).await;
    for i in [3, 9, 0, 9] {
        a.send_raw(&sent[i].wire).await.expect("replay");
    }
    sent.extend(send_frames(&a, 5).await);
    a.send_raw(&sent[14].wire)
        .await
        .expect("replay of the newest");
    // Barrier after the last replay.
    sent.extend(send_frames(&a, 1).await);
    for (name, (_r, ch)) in &mut listeners {
        let got = expect_packets(ch, 16, name).await;
        assert_same_packets(&got, &sent, name);
        expect_nothing(ch, name, "replays are dropped by the daemon").await;
        assert_eq!(
            ch.stats().replayed,
            0,
            "{name}: the daemon must drop replays, not relay them re-protected"
        );
    }
}

#[tokio::test]
async fn replayed_srtp_80_packets_are_relayed_once() {
    replays_are_relayed_once(P80).await;
}

#[tokio::test]
async fn replayed_srtp_32_packets_are_relayed_once() {
    replays_are_relayed_once(P32).await;
}

// ----- forgeries ----------------------------------------------------------------------------

/// `n` RTP packets with `ssrc` from `seq`, protected under a key nobody else has.
fn forged_rtp(suite: Suite, ssrc: u32, seq: u16, n: u16) -> Vec<Vec<u8>> {
    let mut ctx = Context::new(suite, &MasterKey::aes_cm([0x42; 16], [0x24; 14]));
    (0..n)
        .map(|i| {
            let mut buf = vec![0u8; 12 + 160 + 10];
            let h = Header {
                marker: false,
                payload_type: 0,
                seq_number: seq.wrapping_add(i),
                timestamp: 1000 + u32::from(i) * 160,
                ssrc,
                csrcs: &[],
                extension: None,
            };
            let len = h.emit_packet(&[0xAA; 160], 0, &mut buf).expect("fits");
            let n = ctx.protect_rtp(&mut buf, len).expect("protects");
            buf.truncate(n);
            buf
        })
        .collect()
}

/// An SRTCP receiver report from `ssrc` under a key nobody else has, with SRTCP index 7
/// (ahead of the real member's reports, so only the key keeps it out).
fn forged_rtcp(ssrc: u32) -> Vec<u8> {
    let mut ctx = Context::new(
        Suite::AesCm128HmacSha1_80,
        &MasterKey::aes_cm([0x13; 16], [0x31; 14]),
    );
    let mut out = Vec::new();
    for _ in 0..8 {
        let mut buf = vec![0u8; 8 + 14];
        buf[..4].copy_from_slice(&[0x80, 201, 0, 1]);
        buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
        let n = ctx.protect_rtcp(&mut buf, 8).expect("protects");
        buf.truncate(n);
        out = buf;
    }
    out
}

/// Joins with periodic latching reports off: only the report at join latches, so a latch
/// that a forgery moved would stay moved.
async fn join_once(r: &Radio, channel: &str, p: Protection) -> Channel {
    let mut o = JoinOptions::with(p).ssrc(fresh_ssrc());
    o.latch_every = None;
    r.join(channel, o)
        .await
        .unwrap_or_else(|e| panic!("{}: join {channel}: {e}", r.user_id()))
}

#[tokio::test]
async fn forged_packets_are_not_relayed_and_do_not_move_a_latch() {
    let d = Daemon::start().await;
    let alice = radio(&d, "alice").await;
    alice.create_channel("forge").await.expect("create");
    let mut a = join_once(&alice, "forge", P80).await;
    let (r1, r2, rp) = (
        radio(&d, "l80").await,
        radio(&d, "l32").await,
        radio(&d, "lplain").await,
    );
    let mut l1 = join_once(&r1, "forge", P80).await;
    let mut l2 = join_once(&r2, "forge", P32).await;
    let mut lp = join_once(&rp, "forge", PLAIN).await;

    a.request_floor(None, TIMEOUT).await.expect("floor");
    let sent = send_frames(&a, 5).await;
    for (name, ch) in [("l80", &mut l1), ("l32", &mut l2), ("lplain", &mut lp)] {
        let got = expect_packets(ch, 5, name).await;
        assert_same_packets(&got, &sent, name);
    }

    let attacker = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("attacker socket");
    let server = a.server_addr();
    let next = a.next_seq();
    let mut forgeries: Vec<Vec<u8>> = Vec::new();
    // alice's SSRC with the very sequence numbers she sends next (accepted, they would
    // make her real packets replays), then far ahead (a rollover-counter push).
    forgeries.extend(forged_rtp(Suite::AesCm128HmacSha1_80, a.ssrc(), next, 10));
    forgeries.extend(forged_rtp(
        Suite::AesCm128HmacSha1_80,
        a.ssrc(),
        next.wrapping_add(30000),
        3,
    ));
    // One of her real packets, tampered with, and one replayed, from another address.
    let mut tampered = sent[4].wire.clone();
    tampered[20] ^= 0x01;
    forgeries.push(tampered);
    forgeries.push(sent[2].wire.clone());
    // Her SSRC as plain RTP (no tag at all).
    forgeries.push(sent[4].rtp.clone());
    // SRTCP reports to steal the SRTP listeners' latches.
    forgeries.push(forged_rtcp(l1.ssrc()));
    forgeries.push(forged_rtcp(l2.ssrc()));
    // Garbage that looks like RTP.
    forgeries.push([&[0x80u8, 0x00][..], &[0x5A; 40][..]].concat());
    for f in &forgeries {
        attacker.send_to(f, server).await.expect("attacker sends");
    }

    // Barrier: alice's next real packets, with the sequence numbers the forgeries used.
    // The listeners sent nothing since joining, so they get these only if their latches
    // stayed put.
    let more = send_frames(&a, 5).await;
    for (name, ch) in [("l80", &mut l1), ("l32", &mut l2), ("lplain", &mut lp)] {
        let got = expect_packets(ch, 5, name).await;
        assert_same_packets(&got, &more, &format!("{name}: only alice's real packets"));
        expect_nothing(ch, name, "no forgery is relayed").await;
    }

    // alice falls silent; the attacker tries to take her latch (her own packets would
    // otherwise re-latch her at once).
    a.release_floor().await.expect("release");
    for f in [
        forged_rtcp(a.ssrc()),
        forged_rtp(
            Suite::AesCm128HmacSha1_80,
            a.ssrc(),
            next.wrapping_add(5),
            1,
        )
        .remove(0),
        sent[4].rtp.clone(),
    ] {
        attacker.send_to(&f, server).await.expect("attacker sends");
    }
    // When the floor passes, alice's real socket hears the new talker; the attacker nothing.
    let l1_sent = l1
        .talk(&distinct_frames(5), &fast())
        .await
        .expect("l80 talks");
    let got = expect_packets(&mut a, 5, "alice").await;
    assert_same_packets(&got, &l1_sent.sent, "alice hears l80 on her real socket");
    for (name, ch) in [("l32", &mut l2), ("lplain", &mut lp)] {
        let got = expect_packets(ch, 5, name).await;
        assert_same_packets(&got, &l1_sent.sent, name);
    }
    let mut buf = [0u8; 2048];
    let heard = tokio::time::timeout(QUIET, attacker.recv_from(&mut buf)).await;
    assert!(
        heard.is_err(),
        "the attacker's socket must receive nothing, got {heard:?}"
    );
}

// ----- interop with libsrtp -----------------------------------------------------------------

/// The libsrtp peer (tests/py/srtp_peer.py) as a child process.
struct PyPeer {
    child: tokio::process::Child,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    label: String,
}

impl PyPeer {
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        mode: &str,
        d: &Daemon,
        user: &str,
        channel: &str,
        suite: &str,
        ssrc: u32,
        count: usize,
        start_seq: u16,
    ) -> PyPeer {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/srtp_peer.py");
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .args([mode, &d.ws_url(), user, &d.token(user), channel, suite])
            .args([ssrc.to_string(), count.to_string(), start_seq.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run python3 {} (install python3; .ci/deps-e2e.sh): {e}",
                    script.display()
                )
            });
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        PyPeer {
            child,
            stdout,
            stderr,
            label: format!("python libsrtp {mode}er {user} (suite {suite})"),
        }
    }

    /// The next JSON line on stdout, within `within`; fails with the peer's stderr if it
    /// reports an error or ends.
    async fn next_json(&mut self, within: Duration) -> Value {
        let line = tokio::time::timeout(within, self.stdout.next_line()).await;
        let line = match line {
            Ok(Ok(Some(l))) => l,
            other => {
                let _ = self.child.start_kill();
                let status = self.child.wait().await;
                let stderr = (&mut self.stderr).await.unwrap_or_default();
                panic!(
                    "{}: no result line ({other:?}); exit {status:?}. Exit status 3 means \
                     `websockets` or `pylibsrtp` is missing: run .ci/deps-e2e.sh and \
                     .ci/deps-srtp.sh.\nstderr:\n{stderr}",
                    self.label
                );
            }
        };
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", self.label));
        if let Some(err) = v.get("error") {
            let stderr = (&mut self.stderr).await.unwrap_or_default();
            panic!("{}: {err}\nstderr:\n{stderr}", self.label);
        }
        v
    }

    /// Waits for a clean exit.
    async fn finish(mut self) {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{}: still running after {WAIT:?}", self.label))
            .expect("wait");
        let stderr = self.stderr.await.unwrap_or_default();
        assert!(
            status.success(),
            "{}: {status}\nstderr:\n{stderr}",
            self.label
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_list(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not a list: {}", show(v)))
        .iter()
        .map(|s| s.as_str().expect("hex strings").to_owned())
        .collect()
}

/// libsrtp protects 300 packets across the wrap (and replays the first); the daemon
/// unprotects them and re-protects them for Rust listeners of every kind, who get each one
/// once, byte-exact.
async fn libsrtp_talker(suite: &str) {
    let d = Daemon::start().await;
    let host = radio(&d, "host").await;
    host.create_channel("interop").await.expect("create");
    let mut listeners = Vec::new();
    for (name, p) in [("l80", P80), ("l32", P32), ("lplain", PLAIN)] {
        listeners.push((name, member(&d, name, "interop", p).await));
    }
    let mut py = PyPeer::spawn(
        "talk",
        &d,
        "pytalk",
        "interop",
        suite,
        fresh_ssrc(),
        300,
        65400,
    );
    let result = py.next_json(Duration::from_secs(30)).await;
    py.finish().await;
    let sent = hex_list(&result, "sent");
    assert_eq!(sent.len(), 300);
    for (name, (_r, ch)) in &mut listeners {
        let got = expect_packets(ch, 300, name).await;
        for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
            assert_eq!(&hex(&g.rtp), s, "{name}: packet {i} (seq {})", g.seq());
        }
        assert_eq!((got[135].seq(), got[136].seq()), (65535, 0), "{name}");
        expect_nothing(ch, name, "libsrtp's replay of its first packet is dropped").await;
    }
}

/// A Rust talker sends 300 packets across the wrap; libsrtp unprotects what the daemon
/// re-protected for it with the key from its JOIN ACK, byte-exact. The python listener
/// latched with an SRTCP report protected by libsrtp.
async fn libsrtp_listener(suite: &str, talker: Protection) {
    let d = Daemon::start().await;
    let host = radio(&d, "host").await;
    host.create_channel("interop").await.expect("create");
    let mut py = PyPeer::spawn(
        "listen",
        &d,
        "pylisten",
        "interop",
        suite,
        fresh_ssrc(),
        300,
        0,
    );
    let ready = py.next_json(Duration::from_secs(15)).await;
    assert_eq!(ready["ready"], true, "{}", show(&ready));
    let a = join(&host, "interop", talker).await;
    let report = a
        .talk(
            &distinct_frames(300),
            &TalkOptions {
                start_seq: Some(65400),
                ..fast()
            },
        )
        .await
        .expect("host talks");
    let result = py.next_json(Duration::from_secs(30)).await;
    py.finish().await;
    assert_eq!(
        result["errors"],
        json!({"unprotect": 0, "foreign": 0}),
        "libsrtp refused packets: {}",
        show(&result["errors"])
    );
    let got = hex_list(&result, "received");
    assert_eq!(got.len(), 300, "libsrtp unprotected {} of 300", got.len());
    for (i, (g, s)) in got.iter().zip(&report.sent).enumerate() {
        assert_eq!(g, &hex(&s.rtp), "packet {i}");
    }
}

#[tokio::test]
async fn libsrtp_talker_80_across_the_wrap_reaches_rust_listeners_byte_exact() {
    libsrtp_talker("80").await;
}

#[tokio::test]
async fn libsrtp_talker_32_across_the_wrap_reaches_rust_listeners_byte_exact() {
    libsrtp_talker("32").await;
}

#[tokio::test]
async fn libsrtp_listener_80_unprotects_a_rust_talker_across_the_wrap() {
    libsrtp_listener("80", P32).await;
}

#[tokio::test]
async fn libsrtp_listener_32_unprotects_a_rust_talker_across_the_wrap() {
    libsrtp_listener("32", P80).await;
}
