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

use livechat_tests::*;
use tokio::io::{AsyncReadExt, BufReader};
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
        let path = webrtc_dir().join(script);
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
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

/// The Chromium driver itself, no daemon: headless Chromium loads the test page from
/// 127.0.0.1 (a secure context), and a tone sent between two peer connections inside the
/// page is found at its frequency by the page's analyser.
#[tokio::test]
async fn harness_chromium_loads_the_page_and_hears_itself() {
    let _one = SERIAL.lock().await;
    let (status, output) = Scenario::spawn("chromium.py", &["selftest"]).finish().await;
    assert_passed(status, &output, None);
}
