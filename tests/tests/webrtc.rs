//! Browsers over WebRTC (PROTOCOL.md section 4) end to end: real WebRTC implementations join
//! the real daemon through `sdp_offer`, complete ICE-lite and DTLS-SRTP, and exchange
//! floor-gated media with each other and with an SDES radio.
//!
//! The peers are aiortc (PyPI) in tests/webrtc/scenarios.py, each scenario a process that
//! prints what it measured and `OK`, or `FAIL: ...` (see that file for what each one
//! asserts), and headless Chromium driven over the DevTools protocol by tests/webrtc/chromium.py.
//! A failing scenario fails its test with the scenario's output and the daemon's log.
//!
//! Needs python3 with `aiortc`, `numpy` and `websockets`, and Debian's `chromium`
//! (.ci/deps-webrtc.sh installs them); the tests fail, they do not skip, when those are
//! missing. They run one at a time: each one is several real-time media streams, and on a
//! small machine two at once would measure the machine's load rather than the daemon.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use livechat_radio::gateway::op;
use livechat_radio::{JoinOptions, Protection, Radio, Recorder, Suite, TalkOptions, audio};
use livechat_tests::tone::{amplitude_at, rms};
use livechat_tests::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::Mutex;

/// One scenario at a time (see the module doc).
static SERIAL: Mutex<()> = Mutex::const_new(());

/// How long one scenario process may run (each bounds its own waits well inside this).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

fn webrtc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("webrtc")
}

/// A scenario process: `python3 tests/webrtc/<script> <args>`.
struct Scenario {
    what: String,
    child: Child,
    stdout: BufReader<ChildStdout>,
    seen: String,
}

impl Scenario {
    fn spawn(script: &str, args: &[&str]) -> Scenario {
        Scenario::spawn_env(script, args, &[])
    }

    fn spawn_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> Scenario {
        let path = webrtc_dir().join(script);
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(webrtc_dir())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", path.display()));
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Scenario {
            what: format!("{script} {}", args.join(" ")),
            child,
            stdout,
            seen: String::new(),
        }
    }

    /// Reads stdout lines until one contains `needle` (within `within`); false at the end of
    /// the output or on time out.
    async fn wait_line(&mut self, needle: &str, within: Duration) -> bool {
        let read = async {
            loop {
                let mut line = String::new();
                match self.stdout.read_line(&mut line).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {
                        self.seen.push_str(&line);
                        if line.contains(needle) {
                            return true;
                        }
                    }
                }
            }
        };
        tokio::time::timeout(scaled(within), read)
            .await
            .unwrap_or(false)
    }

    /// Waits for the process to exit (killing it after [`SCENARIO_TIMEOUT`]); returns its
    /// status (None when it was killed) and all it printed.
    async fn finish(mut self) -> (Option<ExitStatus>, String) {
        let mut rest = String::new();
        let mut err = String::new();
        let mut stderr = self.child.stderr.take().expect("piped stderr");
        let wait = async {
            let _ = self.stdout.read_to_string(&mut rest).await;
            let _ = stderr.read_to_string(&mut err).await;
            self.child.wait().await.ok()
        };
        let status = tokio::time::timeout(scaled(SCENARIO_TIMEOUT), wait)
            .await
            .ok()
            .flatten();
        let output = format!(
            "[{} stdout]\n{}{rest}\n[stderr]\n{err}",
            self.what, self.seen
        );
        (status, output)
    }
}

/// Fails unless the scenario exited 0 after printing `OK`; the message carries its output and
/// the daemon's log.
fn assert_passed(status: Option<ExitStatus>, output: &str, d: Option<&Daemon>) {
    let passed = status.is_some_and(|s| s.success()) && output.lines().any(|l| l.trim() == "OK");
    assert!(
        passed,
        "the scenario failed ({}; run .ci/deps-webrtc.sh if a python package or chromium is \
         missing):\n{output}\n[daemon log]\n{}",
        status.map_or("killed after the time limit".to_owned(), |s| s.to_string()),
        d.map(Daemon::logs).unwrap_or_default()
    );
    println!("{output}");
}

/// Starts a daemon, runs the aiortc scenario `name` against it and asserts it passed.
async fn aiortc_scenario(name: &str) {
    let _one = SERIAL.lock().await;
    let d = Daemon::start().await;
    let url = d.ws_url();
    let (status, output) = Scenario::spawn("scenarios.py", &[name, &url])
        .finish()
        .await;
    assert_passed(status, &output, Some(&d));
}

/// The harness itself, no daemon: two aiortc peers connected directly hear each other's tone
/// at its frequency (and the detector tells 440 Hz from 660 Hz), VP8 frames arrive, and a PLI
/// from the receiver is counted by the sender's hook.
#[tokio::test]
async fn harness_aiortc_to_aiortc_directly() {
    let _one = SERIAL.lock().await;
    let (status, output) = Scenario::spawn("scenarios.py", &["selftest"])
        .finish()
        .await;
    assert_passed(status, &output, None);
}

/// Two aiortc peers in a PCMU channel: nobody is heard while nobody holds the floor; A's
/// 440 Hz reaches B while A holds it (and not after), then B's 660 Hz reaches A. A offers
/// aiortc's SRTP profiles (AEAD GCM first), B only AES128_CM_HMAC_SHA1_80.
#[tokio::test]
async fn two_aiortc_peers_exchange_floor_gated_audio() {
    aiortc_scenario("floor").await;
}

/// The same exchange in an `opus` channel.
#[tokio::test]
async fn opus_channel() {
    aiortc_scenario("opus").await;
}

/// Audio and VP8 video: no video before the grant; the holder's frames reach the other peer,
/// the holder receives a PLI on its grant (the other peer's own PLIs held back), and a PLI
/// the other peer sends naming the holder's video reaches the holder.
#[tokio::test]
async fn vp8_video_of_the_holder_and_a_pli_on_grant() {
    aiortc_scenario("video").await;
}

/// A peer leaves (the other sees it), joins again with a new offer and hears the other again.
#[tokio::test]
async fn leave_and_rejoin() {
    aiortc_scenario("rejoin").await;
}

/// Every bad offer of PROTOCOL.md section 4 gets its code: 1004 unparseable, 2008 (with a
/// reason naming it) for setup:passive alone, no fingerprint, no ICE credentials, no
/// rtcp-mux, and without the channel's audio codec; the same offer unchanged gets its answer.
#[tokio::test]
async fn bad_offers_get_their_codes() {
    aiortc_scenario("bad_offers").await;
}

/// An aiortc peer and an SDES radio (the reference radio, `livechat-radio`, SRTP _80) in one
/// PCMU channel hear each other: the radio's 440 Hz reaches the browser, the browser's
/// 660 Hz reaches the radio.
#[tokio::test]
async fn aiortc_peer_and_sdes_radio_hear_each_other() {
    let _one = SERIAL.lock().await;
    let d = Daemon::start().await;
    let radio = Radio::connect(&d.ws_url(), "radio1", &d.token("radio1"))
        .await
        .expect("the radio connects");
    radio.create_channel("mixed").await.expect("create");
    let mut ch = radio
        .join(
            "mixed",
            JoinOptions::with(Protection::Srtp(Suite::AesCm128HmacSha1_80)).ssrc(fresh_ssrc()),
        )
        .await
        .expect("the radio joins");

    let url = d.ws_url();
    let mut py = Scenario::spawn("scenarios.py", &["radio", &url, "mixed", "radio1"]);
    if !py.wait_line("\"ready\"", Duration::from_secs(30)).await {
        let (status, output) = py.finish().await;
        assert_passed(status, &output, Some(&d));
        panic!("the aiortc peer never said it was ready:\n{output}");
    }
    let after = radio.gateway().event_seq();
    let tone = audio::tone_pcmu(440.0, 2.0, 0.5);
    let report = ch
        .talk(&tone, &TalkOptions::default())
        .await
        .expect("the radio talks");
    assert_eq!(report.revoked, None);

    // The browser takes the floor once the radio's is idle; record while it holds it.
    radio
        .gateway()
        .wait_event(
            after,
            scaled(Duration::from_secs(20)),
            "FLOOR_TAKEN by webby",
            |v| v["op"] == op::FLOOR_TAKEN && v["d"]["user_id"] == "webby",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n[daemon log]\n{}", d.logs()));
    let mut rec = Recorder::new();
    ch.record_for(&mut rec, Duration::from_millis(2500)).await;
    let (status, output) = py.finish().await;
    assert_passed(status, &output, Some(&d));

    let samples = rec.samples();
    let at = amplitude_at(&samples, 660.0, 8000.0);
    let others = [440.0, 700.0, 1500.0].map(|f| amplitude_at(&samples, f, 8000.0));
    let summary = format!(
        "the radio recorded {} packets ({:.2} s, {} concealed): 660 Hz amplitude {at:.0}, \
         440/700/1500 Hz {others:.0?}, RMS {:.0}",
        rec.packets(),
        rec.seconds(),
        rec.concealed(),
        rms(&samples)
    );
    println!("{summary}");
    assert!(
        rec.seconds() >= 1.5,
        "{summary}\n[daemon log]\n{}",
        d.logs()
    );
    // A pure tone's RMS is its amplitude / sqrt(2); aiortc sends 0.3 of full scale.
    assert!(
        at > 0.2 * 32767.0 && others.iter().all(|&o| o < at / 30.0),
        "the radio does not hear the browser's 660 Hz tone: {summary}"
    );
}

/// The Chromium driver itself, no daemon: headless Chromium loads the test page from
/// 127.0.0.1 (a secure context), and a tone sent between two peer connections inside the
/// page is found at its frequency by the page's analyser.
#[tokio::test]
async fn harness_chromium_loads_the_page_and_hears_itself() {
    let _one = SERIAL.lock().await;
    let (status, output) = Scenario::spawn("chromium.py", &["selftest"]).finish().await;
    assert_passed(status, &output, None);
}

/// A second, independent WebRTC implementation: headless Chromium joins through `sdp_offer`
/// from the test page and exchanges floor-gated audio with an aiortc peer (each hears the
/// other's tone only while the other holds the floor).
#[tokio::test]
async fn chromium_and_aiortc_exchange_floor_gated_audio() {
    let _one = SERIAL.lock().await;
    // The page comes from its own port: an origin the daemon must be told to allow.
    let page_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port for the test page")
        .port();
    let origin = format!("http://127.0.0.1:{page_port}");
    let d = Daemon::start_with(&[("LIVECHAT_ALLOWED_ORIGINS", &origin)]).await;
    let url = d.ws_url();
    let port = page_port.to_string();
    let (status, output) = Scenario::spawn_env(
        "chromium.py",
        &["exchange", &url],
        &[("LC_PAGE_PORT", &port)],
    )
    .finish()
    .await;
    assert_passed(status, &output, Some(&d));
}
