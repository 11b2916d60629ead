//! `livechat-soak`: soak, load and abuse measurements against the real release `livechatd`
//! (issue #10). Every part is bounded in time and count and talks to 127.0.0.1 only.
//!
//! ```text
//! cargo build --release -p livechatd
//! cargo run --profile soak -p livechat-soak -- [churn|flood|abuse|all] [options]
//! ```
//!
//! - `churn`: N WebSocket clients (default 1000) connect, identify, join, chat, leave and
//!   disconnect in a loop for `--secs`; an oracle built from the clients' own clocks says which
//!   CHANNEL_EVENTs and MESSAGE_EVENTs each client must have seen, and counts what it saw. The
//!   daemon's RSS is sampled from /proc/PID/status; the end figure must be within 10 % of the
//!   figure after warm-up.
//! - `flood`: a push-to-talk conversation over SRTP (the radio library: talkers take turns,
//!   listeners record) measured without and then with a flood of garbage, forged SRTP (real
//!   SSRCs, wrong key) and replays on the media port; loss and latency p50/p99 per phase.
//! - `abuse`: neighbours make paced requests while flooding connections exceed the rate
//!   limit; each flooder must get ERROR 1006 and then close 1008, the neighbours' answers and
//!   latency must stay as they were.
//!
//! The daemon is `LIVECHATD_BIN`, else `<workspace>/target/release/livechatd`. The exit status
//! is non-zero when any check failed; the report goes to stdout.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livechat_radio::gateway::{op, op_of};
use livechat_radio::{Channel, Gateway, JoinOptions, Radio, audio};
use livechat_tests::Daemon;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The key tokens are minted with: the daemon runs without a secret on loopback, so it checks
/// no MAC (PROTOCOL.md section 1, Tokens).
const TOKEN_KEY: &str = "no-secret-configured";

fn token(user: &str) -> String {
    livechat_tests::token::mint(TOKEN_KEY, user, 3600, 255)
}

// ----- options -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Opts {
    parts: Vec<String>,
    clients: usize,
    channels: usize,
    secs: u64,
    warmup: u64,
    phase_secs: u64,
    flood_pps: u64,
    abuse_secs: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            parts: Vec::new(),
            clients: 1000,
            channels: 100,
            secs: 90,
            warmup: 20,
            phase_secs: 20,
            flood_pps: 20_000,
            abuse_secs: 16,
        }
    }
}

const USAGE: &str = "usage: livechat-soak [churn|flood|abuse|all]... [--clients N] \
[--channels N] [--secs S] [--warmup S] [--phase-secs S] [--flood-pps N] [--abuse-secs S]";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "churn" | "flood" | "abuse" => o.parts.push(a),
            "all" => o
                .parts
                .extend(["churn", "flood", "abuse"].map(String::from)),
            "--clients" => o.clients = num(&a)? as usize,
            "--channels" => o.channels = (num(&a)? as usize).clamp(1, 255),
            "--secs" => o.secs = num(&a)?.clamp(5, 600),
            "--warmup" => o.warmup = num(&a)?,
            "--phase-secs" => o.phase_secs = num(&a)?.clamp(5, 300),
            "--flood-pps" => o.flood_pps = num(&a)?.clamp(1, 1_000_000),
            "--abuse-secs" => o.abuse_secs = num(&a)?.clamp(2, 120),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
        }
    }
    if o.parts.is_empty() {
        o.parts = vec!["churn".into(), "flood".into(), "abuse".into()];
    }
    o.clients = o.clients.clamp(1, 1200);
    o.warmup = o.warmup.min(o.secs / 2);
    Ok(o)
}

// ----- small helpers -----------------------------------------------------------------------

/// xorshift64*: deterministic per client, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi.saturating_sub(lo) + 1))
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

/// The daemon's resident set in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) of a process in seconds, from /proc/PID/stat.
fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Percentile (0..=100) of sorted values, nearest rank.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        v.len(),
        pct(&v, 50.0),
        pct(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// The last `stats:` line the daemon logged.
/// Longest a flooder of the abuse part keeps sending while it is not closed.
const FLOODER_MAX: Duration = Duration::from_secs(8);

/// The daemon's stats interval in the flood part (LIVECHAT_STATS_INTERVAL_S).
const STATS_INTERVAL_S: u64 = 5;

/// The stats-line drop reasons a flood datagram can end in (daemon/src/dump.rs).
const FLOOD_DROPS: [&str; 5] = ["malformed", "unknown_ssrc", "auth", "replay", "spoofed"];

/// One `key=N` counter of a stats line (0 when absent).
fn stat_of(line: &str, key: &str) -> u64 {
    line.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|w| w.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Datagrams the kernel dropped at the IPv4 UDP socket bound to `addr` because its receive
/// buffer was full (the `drops` column of /proc/net/udp).
fn udp_kernel_drops(addr: SocketAddr) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!(":{:04X}", addr.port());
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let ours = cols.get(1).is_some_and(|a| a.ends_with(&local));
        ours.then(|| cols.last()?.parse().ok()).flatten()
    })
}

fn last_stats(d: &Daemon) -> String {
    d.logs()
        .lines()
        .rev()
        .find(|l| l.contains("stats: "))
        .map(|l| l.split_once("stats: ").map_or(l, |(_, s)| s).to_owned())
        .unwrap_or_else(|| "(no stats line)".to_owned())
}

async fn start_daemon(env: &[(&str, &str)]) -> Daemon {
    let mut b = Daemon::builder();
    for (k, v) in env {
        b = b.env(k, v);
    }
    b.start().await
}

/// Where a check failed; printed at the end and turned into the exit status.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
}

impl Verdict {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        println!("  [{}] {what}", if ok { "ok" } else { "FAIL" });
        if !ok {
            self.failures.push(what);
        }
    }
}

// ----- part 1: churn -----------------------------------------------------------------------

/// One incarnation of a churning client: one session, one channel membership.
#[derive(Debug, Default)]
struct Inc {
    uid: String,
    ch: usize,
    /// JOIN sent / its ACK received.
    t_js: Option<Instant>,
    t_ja: Option<Instant>,
    /// LEAVE sent / its ACK received (explicit leave).
    t_ls: Option<Instant>,
    t_la: Option<Instant>,
    /// Disconnected while still a member (no LEAVE; the server cleans up).
    t_gone: Option<Instant>,
    /// Messages sent: content, sent, own echo received.
    sent: Vec<(String, Instant, Option<Instant>)>,
    /// What it saw in its channel: message contents, join and leave user ids.
    seen_msgs: Vec<String>,
    seen_joins: Vec<String>,
    seen_leaves: Vec<String>,
    /// Events about itself or another channel (must be none).
    stray: u64,
    error: Option<String>,
}

struct ChurnCfg {
    url: String,
    channels: usize,
    deadline: Instant,
    start_at: Instant,
}

fn absorb(inc: &mut Inc, events: Vec<Value>, chan: &str) {
    for ev in events {
        let d = &ev["d"];
        match op_of(&ev) {
            Some(op::CHANNEL_EVENT) if d["channel_id"] == chan => {
                let who = d["user_id"].as_str().unwrap_or("").to_owned();
                if who == inc.uid {
                    inc.stray += 1;
                    continue;
                }
                match d["event"].as_str() {
                    Some("join") => inc.seen_joins.push(who),
                    Some("leave") => inc.seen_leaves.push(who),
                    _ => inc.stray += 1,
                }
            }
            Some(op::MESSAGE_EVENT) if d["channel_id"] == chan => {
                inc.seen_msgs
                    .push(d["content"].as_str().unwrap_or("").to_owned());
            }
            Some(op::CHANNEL_EVENT | op::MESSAGE_EVENT) => inc.stray += 1,
            _ => {}
        }
    }
}

async fn churn_client(i: usize, cfg: Arc<ChurnCfg>) -> Vec<Inc> {
    let mut rng = Rng::new(i as u64 + 1);
    let mut out = Vec::new();
    tokio::time::sleep_until(cfg.start_at).await;
    let mut generation: u32 = 0;
    // Stop starting new incarnations a few seconds before the deadline so each can finish.
    while Instant::now() + Duration::from_secs(6) < cfg.deadline {
        generation += 1;
        let uid = format!("c{i}g{generation}");
        let mut inc = Inc {
            uid: uid.clone(),
            ch: rng.below(cfg.channels as u64) as usize,
            ..Inc::default()
        };
        let r = churn_once(&mut inc, &mut rng, &cfg, i as u32, generation).await;
        if let Err(e) = r {
            inc.error = Some(e);
            if inc.t_ja.is_some() && inc.t_ls.is_none() && inc.t_gone.is_none() {
                inc.t_gone = Some(Instant::now());
            }
        }
        out.push(inc);
        tokio::time::sleep(rng.ms(100, 800)).await;
    }
    out
}

async fn churn_once(
    inc: &mut Inc,
    rng: &mut Rng,
    cfg: &ChurnCfg,
    i: u32,
    generation: u32,
) -> Result<(), String> {
    let gw = Gateway::connect(&cfg.url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    gw.identify(&inc.uid, &token(&inc.uid), None)
        .await
        .map_err(|e| format!("identify: {e}"))?;
    let chan = format!("ch{}", inc.ch);
    // Unique per server: client index in the high bits, generation in the low ones.
    let ssrc = ((i + 1) << 16) | (generation & 0xffff);
    inc.t_js = Some(Instant::now());
    gw.ack(op::CHANNEL_JOIN, json!({"channel_id": chan, "ssrc": ssrc}))
        .await
        .map_err(|e| format!("join {chan}: {e}"))?;
    inc.t_ja = Some(Instant::now());
    let n = 1 + rng.below(4);
    for k in 0..n {
        tokio::time::sleep(rng.ms(200, 1500)).await;
        let content = format!("{}/{k}", inc.uid);
        let t = Instant::now();
        inc.sent.push((content.clone(), t, None));
        gw.send(
            op::MESSAGE_CREATE,
            json!({"channel_id": chan, "content": content}),
        )
        .map_err(|e| format!("chat: {e}"))?;
        let c2 = content.clone();
        let chan2 = chan.clone();
        gw.wait_event(
            0,
            Duration::from_secs(10),
            "own op::MESSAGE_EVENT",
            move |v| {
                v["op"] == op::MESSAGE_EVENT
                    && v["d"]["content"] == c2.as_str()
                    && v["d"]["channel_id"] == chan2
            },
        )
        .await
        .map_err(|e| format!("own echo of {content}: {e}"))?;
        inc.seen_msgs.push(content);
        if let Some(last) = inc.sent.last_mut() {
            last.2 = Some(Instant::now());
        }
    }
    tokio::time::sleep(rng.ms(0, 1000)).await;
    if rng.below(10) == 0 {
        // Disconnect while a member: the server must clean up (leave to the others).
        let events = gw.take_events();
        inc.t_gone = Some(Instant::now());
        gw.close();
        absorb(inc, events, &chan);
    } else {
        inc.t_ls = Some(Instant::now());
        gw.ack(op::CHANNEL_LEAVE, json!({"channel_id": chan}))
            .await
            .map_err(|e| format!("leave {chan}: {e}"))?;
        inc.t_la = Some(Instant::now());
        let events = gw.take_events();
        absorb(inc, events, &chan);
        gw.close();
    }
    Ok(())
}

/// What each receiver had to see, from the clients' own clocks: an event the server handled
/// after the receiver's JOIN was acknowledged and before its LEAVE was sent must have reached
/// it before its LEAVE ACK (one ordered stream per connection).
#[derive(Debug, Default)]
struct Oracle {
    receivers: u64,
    req_msgs: u64,
    got_msgs: u64,
    req_joins: u64,
    got_joins: u64,
    req_leaves: u64,
    got_leaves: u64,
    /// `leave` after a disconnect without LEAVE, required when the receiver stayed >= 3 s more.
    req_gone: u64,
    got_gone: u64,
    /// Seen twice, or seen although it was handled before the receiver's JOIN was sent.
    dups: u64,
    impossible: u64,
    unknown: u64,
    stray: u64,
    samples: Vec<String>,
}

fn oracle(incs: &[Inc], channels: usize) -> Oracle {
    let mut o = Oracle::default();
    let mut by_ch: Vec<Vec<&Inc>> = vec![Vec::new(); channels];
    for inc in incs {
        if inc.t_ja.is_some() {
            by_ch[inc.ch].push(inc);
        }
    }
    let gone_grace = Duration::from_secs(3);
    for members in &by_ch {
        // Every message of the channel: content -> (sent, echo).
        let mut msgs: HashMap<&str, (Instant, Option<Instant>)> = HashMap::new();
        for u in members {
            for (c, ts, te) in &u.sent {
                msgs.insert(c.as_str(), (*ts, *te));
            }
        }
        for r in members {
            o.stray += r.stray;
            let (Some(a), Some(b), true) = (r.t_ja, r.t_ls, r.error.is_none()) else {
                continue;
            };
            let Some(js) = r.t_js else { continue };
            o.receivers += 1;
            let seen_m: HashSet<&str> = r.seen_msgs.iter().map(String::as_str).collect();
            let seen_j: HashSet<&str> = r.seen_joins.iter().map(String::as_str).collect();
            let seen_l: HashSet<&str> = r.seen_leaves.iter().map(String::as_str).collect();
            o.dups += (r.seen_msgs.len() - seen_m.len() + r.seen_joins.len() + r.seen_leaves.len()
                - seen_j.len()
                - seen_l.len()) as u64;
            for m in &r.seen_msgs {
                match msgs.get(m.as_str()) {
                    None => o.unknown += 1,
                    Some((_, Some(echo))) if *echo < js => o.impossible += 1,
                    _ => {}
                }
            }
            let miss = |what: String, o: &mut Oracle| {
                if o.samples.len() < 20 {
                    o.samples.push(format!("{} missed {what}", r.uid));
                }
            };
            for u in members {
                for (c, ts, te) in &u.sent {
                    if let Some(te) = te
                        && a < *ts
                        && *te < b
                    {
                        o.req_msgs += 1;
                        if seen_m.contains(c.as_str()) {
                            o.got_msgs += 1;
                        } else {
                            miss(format!("message {c}"), &mut o);
                        }
                    }
                }
                if u.uid == r.uid {
                    continue;
                }
                if let (Some(ujs), Some(uja)) = (u.t_js, u.t_ja)
                    && a < ujs
                    && uja < b
                {
                    o.req_joins += 1;
                    if seen_j.contains(u.uid.as_str()) {
                        o.got_joins += 1;
                    } else {
                        miss(format!("join of {}", u.uid), &mut o);
                    }
                }
                if let (Some(uls), Some(ula)) = (u.t_ls, u.t_la)
                    && a < uls
                    && ula < b
                {
                    o.req_leaves += 1;
                    if seen_l.contains(u.uid.as_str()) {
                        o.got_leaves += 1;
                    } else {
                        miss(format!("leave of {}", u.uid), &mut o);
                    }
                }
                if let Some(g) = u.t_gone
                    && a < g
                    && g + gone_grace < b
                {
                    o.req_gone += 1;
                    if seen_l.contains(u.uid.as_str()) {
                        o.got_gone += 1;
                    } else {
                        miss(format!("leave of {} (disconnected)", u.uid), &mut o);
                    }
                }
            }
        }
    }
    o
}

async fn churn(opts: &Opts, v: &mut Verdict) {
    println!(
        "\n== churn: {} clients, {} channels, {} s (warm-up {} s) ==",
        opts.clients, opts.channels, opts.secs, opts.warmup
    );
    let d = start_daemon(&[
        ("LIVECHAT_MAX_CONN_PER_IP", "1280"),
        ("LIVECHAT_MAX_SESSIONS", "1024"),
        ("LIVECHAT_MAX_CHANNELS", "256"),
        ("LIVECHAT_STATS_INTERVAL_S", "10"),
    ])
    .await;
    let pid = d.pid();
    let url = d.ws_url();
    // For an outside probe (a second process measuring latency without this one's queueing).
    println!("  daemon pid {pid} at {url}");
    let admin = Gateway::connect(&url).await.expect("admin connects");
    admin
        .identify("admin", &token("admin"), None)
        .await
        .expect("admin identifies");
    for c in 0..opts.channels {
        admin
            .ack(op::CHANNEL_CREATE, json!({"channel_id": format!("ch{c}")}))
            .await
            .expect("creating the channels");
    }
    let t0 = Instant::now();
    let cfg = Arc::new(ChurnCfg {
        url: url.clone(),
        channels: opts.channels,
        deadline: t0 + Duration::from_secs(opts.secs),
        start_at: t0,
    });
    let ramp = Duration::from_secs(10).min(Duration::from_secs(opts.warmup.max(1)));
    let mut tasks = Vec::new();
    for i in 0..opts.clients {
        let cfg = cfg.clone();
        let delay = ramp.mul_f64(i as f64 / opts.clients as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            churn_client(i, cfg).await
        }));
    }
    // Sample RSS, admin request latency and load while it runs.
    let mut rss = Vec::new();
    let mut admin_rtt = Vec::new();
    let mut rss_warm = None;
    let mut rss_end = None;
    let end = t0 + Duration::from_secs(opts.secs);
    let mut next_rss = t0;
    let mut stats_at_end = String::new();
    while Instant::now() < end {
        let t = Instant::now();
        if admin.heartbeat().await.is_ok() {
            admin_rtt.push(ms_of(t.elapsed()));
        }
        if Instant::now() >= next_rss {
            let s = t0.elapsed().as_secs();
            let r = rss_kib(pid).unwrap_or(0);
            rss.push((s, r));
            if rss_warm.is_none() && s >= opts.warmup {
                rss_warm = Some(r);
            }
            // The last sample with the load still at full strength.
            if t0.elapsed() + Duration::from_secs(7) < Duration::from_secs(opts.secs) {
                rss_end = Some(r);
                stats_at_end = last_stats(&d);
            }
            next_rss += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut incs = Vec::new();
    for t in tasks {
        match tokio::time::timeout(Duration::from_secs(30), t).await {
            Ok(Ok(v)) => incs.extend(v),
            Ok(Err(e)) => v.check(false, format!("a churn client task failed: {e}")),
            Err(_) => v.check(
                false,
                "a churn client did not finish within 30 s of the end",
            ),
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(pid).unwrap_or(0);
    let cpu = cpu_secs(pid).unwrap_or(f64::NAN);
    admin.close();
    let errors: Vec<&Inc> = incs.iter().filter(|i| i.error.is_some()).collect();
    let msgs: usize = incs.iter().map(|i| i.sent.len()).sum();
    let o = oracle(&incs, opts.channels);
    println!(
        "  incarnations (connect..disconnect cycles): {}, messages sent: {msgs}, client errors: {}",
        incs.len(),
        errors.len()
    );
    for e in errors.iter().take(10) {
        println!(
            "    error: {} ({}): {}",
            e.uid,
            e.ch,
            e.error.as_deref().unwrap_or("")
        );
    }
    println!(
        "  oracle over {} receivers: op::MESSAGE_EVENT {}/{} required seen, CHANNEL_EVENT join {}/{}, \
         leave {}/{}, leave-after-disconnect {}/{}; duplicates {}, before-join {}, unknown {}, \
         stray {}",
        o.receivers,
        o.got_msgs,
        o.req_msgs,
        o.got_joins,
        o.req_joins,
        o.got_leaves,
        o.req_leaves,
        o.got_gone,
        o.req_gone,
        o.dups,
        o.impossible,
        o.unknown,
        o.stray
    );
    for s in &o.samples {
        println!("    {s}");
    }
    let series: Vec<String> = rss.iter().map(|(s, r)| format!("{s}s:{r}")).collect();
    println!("  RSS KiB series: {}", series.join(" "));
    let (warm, endr) = (rss_warm.unwrap_or(0), rss_end.unwrap_or(0));
    println!(
        "  RSS after warm-up {warm} KiB, at the end of the load {endr} KiB ({:+.1} %), \
         after all disconnected {rss_after} KiB; daemon CPU {cpu:.1} s",
        (endr as f64 / warm.max(1) as f64 - 1.0) * 100.0
    );
    println!("  admin HEARTBEAT round trip: {}", summary(admin_rtt));
    println!("  daemon stats under full load: {stats_at_end}");
    println!("  load average: {}", loadavg());
    v.check(errors.is_empty(), "no client request failed or timed out");
    v.check(
        o.got_msgs == o.req_msgs && o.got_joins == o.req_joins && o.got_leaves == o.req_leaves,
        "every required op::MESSAGE_EVENT and CHANNEL_EVENT join/leave arrived",
    );
    v.check(
        o.got_gone == o.req_gone,
        "every leave after a disconnect arrived (3 s grace)",
    );
    v.check(
        o.dups == 0 && o.impossible == 0 && o.unknown == 0 && o.stray == 0,
        "no duplicate, early, unknown or stray event",
    );
    v.check(
        warm > 0 && (endr as f64) <= warm as f64 * 1.10,
        format!("RSS at the end {endr} KiB <= 110 % of warm-up {warm} KiB"),
    );
}

// ----- part 2: PTT under a media flood -----------------------------------------------------

#[derive(Default)]
struct FloodCounts {
    garbage: AtomicU64,
    forged: AtomicU64,
    replayed: AtomicU64,
    replayed_same_addr: AtomicU64,
}

/// Sends garbage, forged SRTP (real SSRCs, wrong key) and replays of captured talker packets
/// from a foreign socket at `pps`, until `stop` or `until`.
fn flood_thread(
    target: SocketAddr,
    ssrcs: Vec<u32>,
    pool: Arc<Mutex<VecDeque<Vec<u8>>>>,
    pps: u64,
    stop: Arc<AtomicBool>,
    until: std::time::Instant,
    counts: Arc<FloodCounts>,
) {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return;
    };
    let mut rng = Rng::new(0xF100D);
    let start = std::time::Instant::now();
    let mut n: u64 = 0;
    let mut buf = [0u8; 400];
    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
        for _ in 0..32 {
            let len = match n % 3 {
                0 => {
                    let len = 1 + rng.below(300) as usize;
                    rng.fill(&mut buf[..len]);
                    counts.garbage.fetch_add(1, Ordering::Relaxed);
                    len
                }
                1 => {
                    // RTP header, a real SSRC, random payload and a random 80-bit tag.
                    rng.fill(&mut buf[..182]);
                    buf[0] = 0x80;
                    buf[1] = if rng.below(2) == 0 { 0x00 } else { 0x80 };
                    let s = ssrcs[rng.below(ssrcs.len() as u64) as usize];
                    buf[8..12].copy_from_slice(&s.to_be_bytes());
                    counts.forged.fetch_add(1, Ordering::Relaxed);
                    182
                }
                _ => {
                    let p = pool.lock().ok().and_then(|p| {
                        (!p.is_empty()).then(|| p[rng.below(p.len() as u64) as usize].clone())
                    });
                    match p {
                        Some(p) if p.len() <= buf.len() => {
                            buf[..p.len()].copy_from_slice(&p);
                            counts.replayed.fetch_add(1, Ordering::Relaxed);
                            p.len()
                        }
                        _ => 0,
                    }
                }
            };
            n += 1;
            if len > 0 {
                let _ = sock.send_to(&buf[..len], target);
            }
        }
        // Pace to `pps`.
        let due = start + Duration::from_secs_f64(n as f64 / pps as f64);
        let now = std::time::Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

struct PttSetup {
    talkers: Vec<Arc<Channel>>,
    talker_ssrcs: Vec<u32>,
    listener_ssrcs: Vec<u32>,
    /// (ssrc, seq) -> when it was sent.
    sent: Arc<Mutex<HashMap<(u32, u16), Instant>>>,
    pool: Arc<Mutex<VecDeque<Vec<u8>>>>,
}

/// Talkers take turns for `secs`: FLOOR_REQUEST, 2 s of 20 ms PCMU packets with FLOOR_PINGs,
/// FLOOR_RELEASE. Returns the packets sent (ssrc, seq) and any talker error.
async fn converse(s: &PttSetup, secs: u64) -> (Vec<(u32, u16)>, Vec<String>) {
    let pcmu = audio::tone_pcmu(440.0, 2.0, 0.5);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut sent = Vec::new();
    let mut errors = Vec::new();
    let mut k = 0usize;
    while Instant::now() + Duration::from_millis(2500) < end {
        let t = &s.talkers[k % s.talkers.len()];
        k += 1;
        if let Err(e) = t.request_floor(None, Duration::from_secs(5)).await {
            errors.push(format!("floor request: {e}"));
            continue;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut last_ping = Instant::now();
        for (i, frame) in audio::frames(&pcmu).enumerate() {
            tick.tick().await;
            let at = Instant::now();
            match t.send_rtp(&frame, i == 0).await {
                Ok(p) => {
                    let seq = t.next_seq().wrapping_sub(1);
                    if let Ok(mut m) = s.sent.lock() {
                        m.insert((t.ssrc(), seq), at);
                    }
                    if let Ok(mut pool) = s.pool.lock() {
                        pool.push_back(p.wire);
                        if pool.len() > 512 {
                            pool.pop_front();
                        }
                    }
                    sent.push((t.ssrc(), seq));
                }
                Err(e) => errors.push(format!("send: {e}")),
            }
            if last_ping.elapsed() >= Duration::from_secs(1) {
                let _ = t.ping_floor();
                last_ping = Instant::now();
            }
        }
        if let Err(e) = t.release_floor().await {
            errors.push(format!("release: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (sent, errors)
}

async fn flood(opts: &Opts, v: &mut Verdict) {
    println!(
        "\n== flood: PTT over SRTP, {} s without and {} s with a media flood at {} pps ==",
        opts.phase_secs, opts.phase_secs, opts.flood_pps
    );
    let d = start_daemon(&[("LIVECHAT_STATS_INTERVAL_S", &STATS_INTERVAL_S.to_string())]).await;
    let url = d.ws_url();
    let admin = Radio::connect(&url, "ptt-admin", &token("ptt-admin"))
        .await
        .expect("admin");
    admin.create_channel("ptt").await.expect("create ptt");
    let mut talkers = Vec::new();
    let mut radios = Vec::new();
    for t in 0..3u32 {
        let u = format!("talker{t}");
        let r = Radio::connect(&url, &u, &token(&u)).await.expect("talker");
        let c = r
            .join("ptt", JoinOptions::default().ssrc(0x7A1C_0000 + t))
            .await
            .expect("talker joins");
        talkers.push(Arc::new(c));
        radios.push(r);
    }
    let mut listeners = Vec::new();
    for l in 0..5u32 {
        let u = format!("listener{l}");
        let r = Radio::connect(&url, &u, &token(&u))
            .await
            .expect("listener");
        let c = r
            .join("ptt", JoinOptions::default().ssrc(0x1157_0000 + l))
            .await
            .expect("listener joins");
        listeners.push(c);
        radios.push(r);
    }
    let setup = PttSetup {
        talker_ssrcs: talkers.iter().map(|t| t.ssrc()).collect(),
        listener_ssrcs: listeners.iter().map(|l| l.ssrc()).collect(),
        talkers,
        sent: Arc::new(Mutex::new(HashMap::new())),
        pool: Arc::new(Mutex::new(VecDeque::new())),
    };
    let total = Duration::from_secs(2 * opts.phase_secs + 10);
    let stop_listen = Instant::now() + total;
    let mut rx_tasks = Vec::new();
    for mut l in listeners {
        rx_tasks.push(tokio::spawn(async move {
            let mut got: HashMap<(u32, u16), Instant> = HashMap::new();
            let mut dups = 0u64;
            while Instant::now() < stop_listen {
                if let Some(p) = l.recv(Duration::from_millis(100)).await
                    && got.insert((p.ssrc(), p.seq()), Instant::now()).is_some()
                {
                    dups += 1;
                }
            }
            (got, dups, l.stats())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu0 = cpu_secs(d.pid()).unwrap_or(0.0);
    let (quiet_sent, quiet_err) = converse(&setup, opts.phase_secs).await;
    let cpu1 = cpu_secs(d.pid()).unwrap_or(0.0);
    // A stats line written after the quiet phase ended, so the flood's drops are exactly the
    // difference to the line after the flood.
    tokio::time::sleep(Duration::from_secs(STATS_INTERVAL_S + 1)).await;
    let stats_quiet = last_stats(&d);
    let kernel_drops0 = udp_kernel_drops(d.udp);

    // The flood: a foreign socket (garbage, forged, replays) and replays from the talkers' own
    // sockets (the same address the daemon latched).
    let counts = Arc::new(FloodCounts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let until = std::time::Instant::now() + Duration::from_secs(opts.phase_secs + 5);
    let mut ssrcs = setup.talker_ssrcs.clone();
    ssrcs.extend(&setup.listener_ssrcs);
    let th = {
        let (pool, stop, counts) = (setup.pool.clone(), stop.clone(), counts.clone());
        let (target, pps) = (d.udp, opts.flood_pps);
        std::thread::spawn(move || flood_thread(target, ssrcs, pool, pps, stop, until, counts))
    };
    let same_addr = {
        let (talkers, pool, stop, counts) = (
            setup.talkers.clone(),
            setup.pool.clone(),
            stop.clone(),
            counts.clone(),
        );
        tokio::spawn(async move {
            let mut rng = Rng::new(7);
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                tick.tick().await;
                let p = pool.lock().ok().and_then(|p| {
                    (!p.is_empty()).then(|| p[rng.below(p.len() as u64) as usize].clone())
                });
                if let Some(p) = p {
                    // From each talker's own socket: the latched address.
                    let t = &talkers[rng.below(talkers.len() as u64) as usize];
                    if t.send_raw(&p).await.is_ok() {
                        counts.replayed_same_addr.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let f0 = std::time::Instant::now();
    let (flood_sent, flood_err) = converse(&setup, opts.phase_secs).await;
    stop.store(true, Ordering::Relaxed);
    let flood_secs = f0.elapsed().as_secs_f64();
    let _ = th.join();
    let _ = same_addr.await;
    let cpu2 = cpu_secs(d.pid()).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(STATS_INTERVAL_S + 1)).await;
    let stats_flood = last_stats(&d);
    let kernel_drops = udp_kernel_drops(d.udp)
        .zip(kernel_drops0)
        .map(|(b, a)| b - a);

    let sent_times = setup.sent.lock().map(|m| m.clone()).unwrap_or_default();
    let mut per_listener = Vec::new();
    for t in rx_tasks {
        if let Ok(r) = t.await {
            per_listener.push(r);
        }
    }
    let analyse = |sent: &[(u32, u16)]| {
        let mut lat = Vec::new();
        let mut lost = 0u64;
        for (got, _, _) in &per_listener {
            for k in sent {
                match (got.get(k), sent_times.get(k)) {
                    (Some(r), Some(s)) => lat.push(ms_of(r.saturating_duration_since(*s))),
                    _ => lost += 1,
                }
            }
        }
        let expected = (sent.len() * per_listener.len()) as u64;
        (expected, lost, lat)
    };
    let (qe, ql, qlat) = analyse(&quiet_sent);
    let (fe, fl, flat) = analyse(&flood_sent);
    let g = counts.garbage.load(Ordering::Relaxed);
    let fo = counts.forged.load(Ordering::Relaxed);
    let re = counts.replayed.load(Ordering::Relaxed);
    let rs = counts.replayed_same_addr.load(Ordering::Relaxed);
    let flood_total = g + fo + re + rs;
    let dups: u64 = per_listener.iter().map(|(_, d, _)| d).sum();
    let rx_auth: u64 = per_listener.iter().map(|(_, _, s)| s.auth_failed).sum();
    let rx_replay: u64 = per_listener.iter().map(|(_, _, s)| s.replayed).sum();
    println!(
        "  without flood: {} packets x {} listeners, lost {ql}/{qe} ({:.3} %), latency {}",
        quiet_sent.len(),
        per_listener.len(),
        ql as f64 * 100.0 / qe.max(1) as f64,
        summary(qlat)
    );
    println!(
        "  with flood:    {} packets x {} listeners, lost {fl}/{fe} ({:.3} %), latency {}",
        flood_sent.len(),
        per_listener.len(),
        fl as f64 * 100.0 / fe.max(1) as f64,
        summary(flat)
    );
    println!(
        "  flood sent {flood_total} datagrams in {flood_secs:.1} s ({:.0} pps): garbage {g}, \
         forged SRTP {fo}, replays from a foreign address {re}, replays from the talkers' own \
         sockets {rs}",
        flood_total as f64 / flood_secs
    );
    println!(
        "  daemon CPU: {:.2} s in the quiet phase, {:.2} s in the flood phase",
        cpu1 - cpu0,
        cpu2 - cpu1
    );
    println!(
        "  listeners: duplicates {dups}, auth failures {rx_auth}, replays {rx_replay} (as seen \
         by the listeners' SRTP)"
    );
    println!("  talker errors: quiet {quiet_err:?}, flood {flood_err:?}");
    println!("  daemon stats after the quiet phase: {stats_quiet}");
    println!("  daemon stats after the flood:       {stats_flood}");
    // Every flood datagram is either dropped by the daemon under a named reason or dropped
    // by the kernel before the daemon read it (the socket's receive buffer overflowed).
    let dropped: u64 = FLOOD_DROPS
        .iter()
        .map(|k| stat_of(&stats_flood, k).saturating_sub(stat_of(&stats_quiet, k)))
        .sum();
    let by_reason: Vec<String> = FLOOD_DROPS
        .iter()
        .map(|k| {
            let n = stat_of(&stats_flood, k).saturating_sub(stat_of(&stats_quiet, k));
            format!("{k} {n}")
        })
        .collect();
    let kernel = kernel_drops.unwrap_or(0);
    println!(
        "  flood accounted: daemon drops {dropped} ({}), kernel receive-buffer drops {}; \
         unaccounted {}",
        by_reason.join(", "),
        kernel_drops.map_or("n/a".to_owned(), |k| k.to_string()),
        flood_total as i64 - dropped as i64 - kernel as i64
    );
    println!("  load average: {}", loadavg());
    v.check(
        dropped + kernel == flood_total,
        format!(
            "every flood datagram accounted for ({dropped} dropped by reason + {kernel} by the \
             kernel of {flood_total})"
        ),
    );
    v.check(
        quiet_err.is_empty() && flood_err.is_empty(),
        "talkers got the floor and sent in both phases",
    );
    v.check(ql == 0, format!("no loss without flood ({ql}/{qe})"));
    v.check(
        fl as f64 <= fe as f64 * 0.001,
        format!("loss under flood <= 0.1 % ({fl}/{fe})"),
    );
    v.check(
        dups == 0 && rx_auth == 0 && rx_replay == 0,
        "no replay or forgery reached a listener",
    );
    drop(radios);
}

// ----- part 3: the rate limit under load ---------------------------------------------------

async fn abuse(opts: &Opts, v: &mut Verdict) {
    println!(
        "\n== abuse: 20 neighbours at 10 requests/s, {} s baseline, then {} s with flooders ==",
        opts.abuse_secs, opts.abuse_secs
    );
    let d = start_daemon(&[("LIVECHAT_STATS_INTERVAL_S", "5")]).await;
    let url = d.ws_url();
    let admin = Gateway::connect(&url).await.expect("admin");
    admin
        .identify("admin", &token("admin"), None)
        .await
        .expect("admin identifies");
    admin
        .ack(op::CHANNEL_CREATE, json!({"channel_id": "room"}))
        .await
        .expect("create room");
    let mut neighbours = Vec::new();
    for n in 0..20 {
        let u = format!("n{n}");
        let g = Gateway::connect(&url).await.expect("neighbour");
        g.identify(&u, &token(&u), None).await.expect("identify");
        g.ack(
            op::CHANNEL_JOIN,
            json!({"channel_id": "room", "ssrc": 0xAB00_0000u32 + n}),
        )
        .await
        .expect("join");
        neighbours.push(g);
    }
    let mut expected_members: Vec<String> = (0..20).map(|n| format!("n{n}")).collect();
    expected_members.sort();
    let measure = |secs: u64| {
        let ns: Vec<Gateway> = neighbours.clone();
        let expected = expected_members.clone();
        async move {
            let end = Instant::now() + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for g in ns {
                let expected = expected.clone();
                tasks.push(tokio::spawn(async move {
                    let (mut rtt, mut wrong) = (Vec::new(), Vec::new());
                    while Instant::now() < end {
                        let t = Instant::now();
                        match g.ack(op::CHANNEL_INFO, json!({"channel_id": "room"})).await {
                            Ok((a, _)) => {
                                rtt.push(ms_of(t.elapsed()));
                                let mut m: Vec<String> = a["members"]
                                    .as_array()
                                    .map(|m| {
                                        m.iter()
                                            .filter_map(|x| x.as_str().map(String::from))
                                            .collect()
                                    })
                                    .unwrap_or_default();
                                m.sort();
                                if m != expected {
                                    wrong.push(format!("members {m:?}"));
                                }
                            }
                            Err(e) => wrong.push(e.to_string()),
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    (rtt, wrong)
                }));
            }
            let (mut rtt, mut wrong) = (Vec::new(), Vec::new());
            for t in tasks {
                if let Ok((r, w)) = t.await {
                    rtt.extend(r);
                    wrong.extend(w);
                }
            }
            (rtt, wrong)
        }
    };
    let (base_rtt, base_wrong) = measure(opts.abuse_secs).await;
    // Flooders one after another during the second window, each for a quarter of it: one
    // unpaced (it writes as fast as it can and reads its answers only as the connection task
    // gets to them), then paced ones at 5000, 1000 and 200 CHANNEL_LISTs per second (100 x, 20 x,
    // 4 x the sustained budget), all without ids.
    let flood_end = Instant::now() + Duration::from_secs(opts.abuse_secs);
    let each = Duration::from_secs(opts.abuse_secs).mul_f64(0.24);
    let url2 = url.clone();
    let flooders = tokio::spawn(async move {
        let mut results = Vec::new();
        for (f, pps) in [0u64, 5000, 1000, 200].into_iter().enumerate() {
            let u = format!("flooder{f}");
            let label = if pps == 0 {
                "unpaced".to_owned()
            } else {
                format!("{pps}/s")
            };
            let Ok(g) = Gateway::connect(&url2).await else {
                results.push((label, 0u64, 0u64, "connect failed".to_owned(), 0.0));
                continue;
            };
            if g.identify(&u, &token(&u), None).await.is_err() {
                results.push((label, 0, 0, "identify failed".to_owned(), 0.0));
                continue;
            }
            let t = Instant::now();
            let window_end = (t + each).min(flood_end);
            // Persist until closed, bounded: the slowest flooder (200/s, 4 x the sustained
            // rate) gains 100 strikes a second once its burst is spent, so it is closed about
            // 3 s after it starts; then up to a quarter of the window for a close to show.
            let stop_at = t + FLOODER_MAX;
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while g.closed().is_none() && sent < 50_000 && Instant::now() < stop_at {
                let n = if pps == 0 { 64 } else { pps.div_ceil(100) };
                for _ in 0..n {
                    if g.send(op::CHANNEL_LIST, Value::Null).is_err() {
                        break;
                    }
                    sent += 1;
                }
                if pps == 0 {
                    tokio::task::yield_now().await;
                } else {
                    tick.tick().await;
                }
            }
            // Wait briefly for a close the last frames may still cause.
            let close_deadline = Instant::now() + each.mul_f64(0.25);
            while g.closed().is_none() && Instant::now() < close_deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let limited = g
                .take_events()
                .iter()
                .filter(|e| e["op"] == op::ERROR && e["d"]["code"] == 1006)
                .count() as u64;
            let why = g.closed().unwrap_or_else(|| "still open".to_owned());
            results.push((label, sent, limited, why, ms_of(t.elapsed())));
            g.close();
            tokio::time::sleep_until(window_end).await;
        }
        results
    });
    let (flood_rtt, flood_wrong) = measure(opts.abuse_secs).await;
    let results = flooders.await.unwrap_or_default();
    println!("  neighbours, baseline:    {}", summary(base_rtt.clone()));
    println!("  neighbours, with flood:  {}", summary(flood_rtt.clone()));
    println!(
        "  wrong or failed answers: baseline {}, with flood {}",
        base_wrong.len(),
        flood_wrong.len()
    );
    for w in base_wrong.iter().chain(&flood_wrong).take(5) {
        println!("    {w}");
    }
    let mut all_limited = results.len() == 4;
    let mut all_closed = results.len() == 4;
    for (label, sent, limited, why, t) in &results {
        println!(
            "  flooder {label}: queued {sent} frames, read back {limited} ERROR 1006 (the \
             client keeps the last 4096 events), after {t:.0} ms: {why}"
        );
        // An unpaced flooder may be cut off as a slow consumer (it does not read its answers
        // fast enough), its 1006s lost to the TCP reset: a close is what counts there.
        all_limited &= *limited > 0 || label == "unpaced";
        all_closed &= why.contains("1008") || why.contains("reset") || why.contains("Broken pipe");
    }
    println!("  daemon stats: {}", last_stats(&d));
    println!("  load average: {}", loadavg());
    v.check(all_limited, "every paced flooder got ERROR 1006");
    v.check(
        all_closed,
        "every flooder, paced or not, was closed (1008) while it persisted",
    );
    v.check(
        base_wrong.is_empty() && flood_wrong.is_empty(),
        "every neighbour answer was right, with and without flooders",
    );
    let mut b = base_rtt;
    let mut f = flood_rtt;
    b.sort_by(f64::total_cmp);
    f.sort_by(f64::total_cmp);
    // A loose bound: the machine is shared, so only gross interference counts.
    v.check(
        pct(&f, 50.0) <= pct(&b, 50.0) * 3.0 + 2.0,
        format!(
            "neighbour p50 with flood {:.2} ms <= 3 x baseline {:.2} ms + 2 ms",
            pct(&f, 50.0),
            pct(&b, 50.0)
        ),
    );
    admin.close();
}

// ----- main ----------------------------------------------------------------------------------

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("LIVECHATD_BIN").is_none() {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/release/livechatd")
            .canonicalize();
        match bin {
            // SAFETY: no other thread exists yet (the runtime is built below).
            Ok(p) => unsafe { std::env::set_var("LIVECHATD_BIN", p) },
            Err(_) => {
                eprintln!(
                    "target/release/livechatd is missing: run `cargo build --release -p \
                     livechatd` (or set LIVECHATD_BIN)"
                );
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "livechat-soak: daemon {}, parts {:?}, load average at start {}",
        std::env::var("LIVECHATD_BIN").unwrap_or_default(),
        opts.parts,
        loadavg()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut v = Verdict::default();
    rt.block_on(async {
        for p in &opts.parts {
            match p.as_str() {
                "churn" => churn(&opts, &mut v).await,
                "flood" => flood(&opts, &mut v).await,
                "abuse" => abuse(&opts, &mut v).await,
                _ => {}
            }
        }
    });
    if v.failures.is_empty() {
        println!("\nall checks passed");
        ExitCode::SUCCESS
    } else {
        println!("\n{} check(s) failed:", v.failures.len());
        for f in &v.failures {
            println!("  - {f}");
        }
        ExitCode::FAILURE
    }
}
