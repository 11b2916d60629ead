//! End-to-end harness for `livechatd`: start the real binary ([`Daemon`]) and talk to it over
//! real WebSockets exactly as clients do ([`Client`]). Written from PROTOCOL.md alone.
//!
//! Every receive has a deadline ([`client::TIMEOUT`], 5 s) and its failure message says what
//! it was waiting for and what arrived instead; every frame the server sends is checked against
//! the frame shapes of PROTOCOL.md section 1.
//!
//! Running: `bash .ci/deps-e2e.sh` (python3 `websockets` for the interop peers, `pylibsrtp`
//! for the libsrtp media peer) and `bash .ci/deps-webrtc.sh` (aiortc, numpy and Debian's
//! chromium for the WebRTC peers of tests/tests/webrtc.rs, tests/webrtc/) and
//! `bash .ci/deps-camera.sh` (gst-rtsp-server and python3-gi for the camera of
//! tests/tests/camera.rs, tests/camera/), then
//! `cargo build -p livechatd && cargo test -p livechat-tests`. The binary under test is
//! `LIVECHATD_BIN`, else `<CARGO_TARGET_DIR or target>/debug/livechatd`. Each test starts its
//! own daemon on loopback ports chosen by the kernel, with a config path that does not exist
//! and every inherited `LIVECHAT_*` variable removed.
//!
//! Emulated runs (an ARM daemon under qemu-user, `LIVECHATD_RUNNER`, see [`daemon::command`])
//! are slower: `LIVECHAT_TEST_TIME_SCALE` (a factor >= 1, default 1) runs the tests in slow
//! motion rather than loosening what they assert. Every wait handed to the harness (receive
//! deadlines, quiet windows, drains, close and exit waits, the start timeout) is multiplied by
//! it, and the tests that set short daemon timers (`LIVECHAT_HEARTBEAT_MS`,
//! `LIVECHAT_FLOOR_*_MS`) set [`timer_ms`] of them and wait [`scaled`] times, so timers and
//! waits keep their ratios. Bounds the daemon does not take from the test (PROTOCOL.md's 3 s
//! shutdown) are not scaled.

pub mod client;
pub mod daemon;
pub mod http;
pub mod proto;
pub mod token;
pub mod tone;

pub use client::{
    Client, Closed, TIMEOUT, describe, fresh_ssrc, has_id, has_no_id, ids, show, sorted_ids,
};
pub use daemon::{Daemon, DaemonBuilder, RunOutput, livechatd_bin, run};
pub use proto::{close, code, code_name, op, op_name};
pub use serde_json::{Value, json};

/// Milliseconds.
pub fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

/// `LIVECHAT_TEST_TIME_SCALE`: how much slower than native this run is allowed to be (>= 1;
/// 1 when unset). Panics on a value that is not a number >= 1, so a typo does not pass
/// silently.
pub fn time_scale() -> f64 {
    static SCALE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *SCALE.get_or_init(|| match std::env::var("LIVECHAT_TEST_TIME_SCALE") {
        Err(_) => 1.0,
        Ok(v) if v.trim().is_empty() => 1.0,
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(f) if f.is_finite() && f >= 1.0 => f,
            _ => panic!("LIVECHAT_TEST_TIME_SCALE={v:?}: expected a number >= 1"),
        },
    })
}

/// `d` in this run's time: `d` times [`time_scale`].
pub fn scaled(d: std::time::Duration) -> std::time::Duration {
    d.mul_f64(time_scale())
}

/// A daemon timer of `n` ms in this run's time (`n` times [`time_scale`], rounded): the value
/// a test sets in `LIVECHAT_*_MS` and then expects the daemon to announce.
pub fn timer_ms(n: u64) -> u64 {
    // Timers in tests are at most minutes: far inside f64's exact integers.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let t = (n as f64 * time_scale()).round() as u64;
    t
}
