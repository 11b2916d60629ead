//! An independent peer: a Python client using the `websockets` library (PyPI) talks to the
//! daemon next to a Rust client. Needs `python3` with `websockets` (.ci/deps-e2e.sh installs
//! it); the test fails, it does not skip, when they are missing.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use livechat_tests::*;

const CONTENT: &str = "hello from python 😀 日本 é";
const REPLY: &str = "reply from rust ✓ 🎉";

#[tokio::test]
async fn a_python_websockets_peer_round_trips_an_emoji_message() {
    let d = Daemon::start().await;
    let mut rust = Client::identified(&d, "rusty").await;
    rust.create("mixed").await;
    rust.join("mixed").await;

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/peer.py");
    let child = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(d.ws_url())
        .arg("pyth0n")
        .arg(d.token("pyth0n"))
        .arg("mixed")
        .arg("rusty")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    let output = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await
    });

    rust.expect_member_event("join", "mixed", "pyth0n").await;
    let ev = rust.expect_message("mixed", "pyth0n", CONTENT).await;
    assert!(ev["timestamp"].is_u64(), "{ev}");
    rust.say("mixed", REPLY).await;

    let out = output
        .await
        .expect("python task")
        .expect("the python peer finished within 20 s")
        .expect("python3 ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "the python peer failed ({}); run .ci/deps-e2e.sh if `websockets` is missing.\n\
         stdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    rust.expect_member_event("leave", "mixed", "pyth0n").await;
}
