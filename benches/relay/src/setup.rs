//! Starting the real daemon and setting up sessions through the real gateway protocol:
//! IDENTIFY, CHANNEL_CREATE, CHANNEL_JOIN with SDES keys (or plain), latching with an
//! RTCP receiver report from each listener's socket, FLOOR_REQUEST by the talker.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livechat_radio::gateway::op;
use livechat_radio::livechat_core::srtp::{Context, MasterKey, Suite};
use livechat_radio::livechat_core::wire::rtcp;
use livechat_radio::{Gateway, token};
use serde_json::{Value, json};

use crate::sys;

/// The suite used for SRTP sessions.
pub const SUITE: Suite = Suite::AesCm128HmacSha1_80;

/// A running `livechatd`, pinned to one CPU, with its stderr collected.
pub struct Daemon {
    child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start(path: &str, cpu: usize, env: &[(&str, String)]) -> Result<Daemon, String> {
        let mut cmd = Command::new(path);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("LIVECHAT_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("LIVECHAT_HTTP_ADDR", "127.0.0.1:0")
            .env("LIVECHAT_UDP_ADDR", "127.0.0.1:0")
            .env("LIVECHAT_CONFIG", "/nonexistent/livechat-relay-bench.toml")
            .env("RUST_LOG", "info")
            .env("LIVECHAT_MAX_CONN_PER_IP", "4096")
            .env("LIVECHAT_MAX_SESSIONS", "1024")
            .env("LIVECHAT_HEARTBEAT_MS", "60000")
            .env("LIVECHAT_FLOOR_MAX_MS", "86400000")
            .env("LIVECHAT_FLOOR_PING_MS", "86400000")
            .env("LIVECHAT_RATE", "100000/100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        sys::pin_child(&mut cmd, cpu);
        let mut child = cmd.spawn().map_err(|e| format!("starting {path}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = log
                .lock()
                .ok()
                .and_then(|l| l.iter().find(|l| l.contains(" ready ")).cloned());
            if let Some(line) = ready {
                let field = |k: &str| -> Result<SocketAddr, String> {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(k))
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| format!("no {k} in {line:?}"))
                };
                return Ok(Daemon {
                    http: field("http=")?,
                    udp: field("udp=")?,
                    child,
                    log,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("{path} did not log `ready` within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("ws://{}/gateway", self.http)
    }

    /// SIGTERM, wait for the exit (at most 5 s), and return the log.
    pub fn stop(mut self) -> Vec<String> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An identified session.
pub async fn session(url: &str, user: &str) -> Result<Gateway, String> {
    let gw = Gateway::connect(url).await.map_err(|e| e.to_string())?;
    gw.identify(user, &token::mint(None, user, 86_400, 0), None)
        .await
        .map_err(|e| format!("IDENTIFY {user}: {e}"))?;
    Ok(gw)
}

/// CHANNEL_CREATE (an existing channel is fine).
pub async fn create(gw: &Gateway, channel: &str) -> Result<(), String> {
    match gw
        .ack(op::CHANNEL_CREATE, json!({"channel_id": channel}))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(2005) => Ok(()),
        Err(e) => Err(format!("CHANNEL_CREATE {channel}: {e}")),
    }
}

fn key(seed: u32) -> MasterKey {
    let mut k = [0u8; 16];
    let mut s = [0u8; 14];
    for (i, b) in k.iter_mut().chain(s.iter_mut()).enumerate() {
        *b = (seed.wrapping_mul(2_654_435_761).rotate_left(i as u32 % 32) >> (i % 4 * 8)) as u8
            ^ i as u8;
    }
    MasterKey::aes_cm(k, s)
}

/// A context with the key a membership of `ssrc` sends with.
pub fn context_for(ssrc: u32) -> Context {
    Context::new(SUITE, &key(ssrc))
}

/// One membership: its SSRC and its client -> server context (None for plain RTP).
pub struct Membership {
    pub ssrc: u32,
    pub send: Option<Context>,
}

/// CHANNEL_JOIN with SDES keys (or plain).
pub async fn join(
    gw: &Gateway,
    channel: &str,
    ssrc: u32,
    srtp: bool,
) -> Result<Membership, String> {
    let mut d = json!({"channel_id": channel, "ssrc": ssrc});
    let k = key(ssrc);
    if srtp {
        let mut b = [0u8; 40];
        d["crypto"] = json!({"suite": SUITE.as_str(), "key": k.to_sdes(&mut b)});
    }
    let (ack, _) = gw
        .ack(op::CHANNEL_JOIN, d)
        .await
        .map_err(|e| format!("CHANNEL_JOIN {channel}: {e}"))?;
    if srtp && ack["crypto"]["key"].as_str().is_none() {
        return Err(format!("JOIN ACK without crypto: {ack}"));
    }
    Ok(Membership {
        ssrc,
        send: srtp.then(|| Context::new(SUITE, &k)),
    })
}

/// FLOOR_REQUEST and wait for FLOOR_GRANTED.
pub async fn take_floor(gw: &Gateway, channel: &str) -> Result<(), String> {
    let seq = gw.event_seq();
    gw.send(op::FLOOR_REQUEST, json!({"channel_id": channel}))
        .map_err(|e| e.to_string())?;
    let ch = channel.to_owned();
    gw.wait_event(
        seq,
        Duration::from_secs(5),
        "FLOOR_GRANTED",
        move |v: &Value| v["op"] == op::FLOOR_GRANTED && v["d"]["channel_id"] == ch.as_str(),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("floor {channel}: {e}"))
}

/// A receiver report with no blocks (SRTCP-protected when keyed), sent from `sock` to the
/// media port: latches the membership's address (and keeps the latch alive).
pub fn latch(sock: &UdpSocket, m: &mut Membership, server: SocketAddr) -> Result<(), String> {
    let mut buf = [0u8; 64];
    let n = rtcp::emit_receiver_report(m.ssrc, &[], &mut buf).map_err(|e| format!("{e:?}"))?;
    let n = match &mut m.send {
        Some(ctx) => ctx
            .protect_rtcp(&mut buf, n)
            .map_err(|e| format!("{e:?}"))?,
        None => n,
    };
    sock.send_to(buf.get(..n).unwrap_or_default(), server)
        .map_err(|e| e.to_string())?;
    Ok(())
}
