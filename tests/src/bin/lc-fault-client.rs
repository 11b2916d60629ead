//! `lc-fault-client`: a radio run as a child process by tests/tests/faults.rs, so that a test
//! can SIGKILL it (or SIGSTOP it: a half-open peer) mid-talk or mid-queue.
//!
//! `lc-fault-client URL USER CHANNEL [MAX_SECS]`: connects and identifies (any well-formed
//! token: the test daemon runs without a secret on loopback), joins CHANNEL with SRTP, sends
//! FLOOR_REQUEST, then reports on stdout, one line each: `joined`, `queued <position>`,
//! `granted`. Once granted it sends a 20 ms PCMU packet stream and FLOOR_PINGs. It exits by
//! itself after MAX_SECS (default 30) or when the connection closes.

use std::time::Duration;

use livechat_radio::gateway::op;
use livechat_radio::{JoinOptions, Radio};
use serde_json::json;
use tokio::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, user, channel, rest @ ..] = args.as_slice() else {
        eprintln!("usage: lc-fault-client URL USER CHANNEL [MAX_SECS]");
        std::process::exit(2);
    };
    let max = rest
        .first()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(30)
        .min(120);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run(url, user, channel, Duration::from_secs(max)));
    std::process::exit(code);
}

fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run(url: &str, user: &str, channel: &str, max: Duration) -> i32 {
    let end = Instant::now() + max;
    let token = livechat_tests::token::mint("no-secret-configured", user, 3600, 255);
    let radio = match Radio::connect(url, user, &token).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{user}: connect: {e}");
            return 1;
        }
    };
    let ch = match radio.join(channel, JoinOptions::default()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{user}: join: {e}");
            return 1;
        }
    };
    say("joined");
    let gw = ch.gateway().clone();
    let after = gw.event_seq();
    if let Err(e) = gw
        .ack(op::FLOOR_REQUEST, json!({"channel_id": channel}))
        .await
    {
        eprintln!("{user}: FLOOR_REQUEST: {e}");
        return 1;
    }
    let mine = |v: &serde_json::Value| v["d"]["channel_id"] == channel;
    // Wait for the grant, reporting queue positions.
    loop {
        if Instant::now() >= end {
            return 0;
        }
        let ev = gw
            .wait_event(after, Duration::from_millis(200), "floor events", |v| {
                mine(v)
                    && (v["op"] == op::FLOOR_QUEUE_POS_INFO
                        || v["op"] == op::FLOOR_DENY
                        || (v["op"] == op::FLOOR_GRANTED && v["d"]["user_id"] == user))
            })
            .await;
        match ev {
            Ok(v) if v["op"] == op::FLOOR_GRANTED => break,
            Ok(v) if v["op"] == op::FLOOR_QUEUE_POS_INFO => {
                say(&format!("queued {}", v["d"]["position"]));
            }
            Ok(v) => {
                say(&format!("denied {}", v["d"]["reason"]));
                return 0;
            }
            Err(livechat_radio::Error::Timeout(_)) => {}
            Err(e) => {
                eprintln!("{user}: {e}");
                return 1;
            }
        }
    }
    say("granted");
    let frame = [0xFFu8; 160];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut n = 0u64;
    while Instant::now() < end && gw.closed().is_none() {
        tick.tick().await;
        if ch.send_rtp(&frame, n == 0).await.is_err() {
            break;
        }
        n += 1;
        if n.is_multiple_of(25) {
            let _ = ch.ping_floor();
        }
    }
    0
}
