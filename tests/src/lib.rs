//! End-to-end harness for `livechatd`: start the real binary ([`Daemon`]) and talk to it over
//! real WebSockets exactly as clients do ([`Client`]). Written from PROTOCOL.md alone.
//!
//! Every receive has a deadline ([`client::TIMEOUT`], 5 s) and its failure message says what
//! it was waiting for and what arrived instead; every frame the server sends is checked against
//! the frame shapes of PROTOCOL.md section 1.
//!
//! Running: `bash .ci/deps-e2e.sh` (python3 `websockets` for the interop peer), then
//! `cargo build -p livechatd && cargo test -p livechat-tests`. The binary under test is
//! `LIVECHATD_BIN`, else `<CARGO_TARGET_DIR or target>/debug/livechatd`. Each test starts its
//! own daemon on loopback ports chosen by the kernel, with a config path that does not exist
//! and every inherited `LIVECHAT_*` variable removed.

pub mod client;
pub mod daemon;
pub mod proto;
pub mod token;

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
