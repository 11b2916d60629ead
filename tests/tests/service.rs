//! The daemon as a system service (issue #7): sd_notify readiness, watchdog and status,
//! journald log format, counters line, SIGUSR1 dump, TLS on the gateway, and no secret in
//! the logs even at `RUST_LOG=trace`.
//!
//! Runs the binary named by `LIVECHATD_BIN`, else `target/debug/livechatd` (build it first:
//! `cargo build -p livechatd`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

// ---------------------------------------------------------------------------------------
// A daemon process and its stderr.

fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LIVECHATD_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug/livechatd")
}

/// A unique name for sockets and temporary files of this test process.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "livechat-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A command for the daemon with a clean service environment: loopback ephemeral ports,
/// no config file, and none of our variables inherited from the caller.
fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LIVECHAT_")
            || matches!(
                k.as_str(),
                "NOTIFY_SOCKET" | "WATCHDOG_USEC" | "WATCHDOG_PID" | "JOURNAL_STREAM" | "RUST_LOG"
            )
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("LIVECHAT_CONFIG", "/nonexistent/livechatd.toml")
        .env("LIVECHAT_HTTP_ADDR", "127.0.0.1:0")
        .env("LIVECHAT_UDP_ADDR", "127.0.0.1:0");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

struct Daemon {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    http: SocketAddr,
    ready: String,
}

impl Daemon {
    fn start(envs: &[(&str, &str)]) -> Daemon {
        Self::start_cmd(command(&[], envs))
    }

    fn start_cmd(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (cargo build -p livechatd)",
                    bin().display()
                )
            });
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lines").push(line);
            }
        });
        let mut d = Daemon {
            child: Some(child),
            lines,
            reader: Some(reader),
            http: "0.0.0.0:0".parse().expect("addr"),
            ready: String::new(),
        };
        let ready = d
            .wait_line(
                |l| l.contains("ready") && l.contains("http="),
                Duration::from_secs(10),
            )
            .unwrap_or_else(|| panic!("no ready line; stderr:\n{}", d.stderr()));
        let http = ready
            .split_whitespace()
            .find_map(|t| t.strip_prefix("http="))
            .expect("http=");
        d.http = http.parse().expect("http addr");
        d.ready = ready;
        d
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    fn stderr(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// The first stderr line matching `pred`, waiting up to `within`.
    fn wait_line(&self, pred: impl Fn(&str) -> bool, within: Duration) -> Option<String> {
        let until = Instant::now() + within;
        loop {
            if let Some(l) = self.lines.lock().expect("lines").iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let signal = match sig {
            "TERM" => libc::SIGTERM,
            "USR1" => libc::SIGUSR1,
            "USR2" => libc::SIGUSR2,
            other => panic!("no signal {other}"),
        };
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill(2) on the child we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill -{sig}: {}", std::io::Error::last_os_error());
    }

    /// SIGTERM, then the exit status (within 3 s, PROTOCOL.md section 5) and all of stderr.
    fn stop(self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait()
    }

    /// The exit status (within 3 s) and all of stderr.
    fn wait(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("child");
        let status = wait_exit(&mut child, Duration::from_secs(3))
            .unwrap_or_else(|| panic!("no exit within 3 s of SIGTERM:\n{}", self.stderr()));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, self.stderr())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + within;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the daemon to completion (for settings it must refuse): exit status and stderr.
fn run_to_exit(args: &[&str], envs: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut child = command(args, envs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    let mut err = String::new();
    use std::io::Read;
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    (status, err)
}

// ---------------------------------------------------------------------------------------
// A notify socket, as systemd would listen on.

struct NotifySocket {
    name: String,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl NotifySocket {
    /// An abstract socket (`@name`), collecting every datagram with its arrival time.
    fn bind() -> NotifySocket {
        let name = unique("notify");
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind notify socket");
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().expect("got").push((Instant::now(), msg));
            }
        });
        NotifySocket { name, got }
    }

    fn env(&self) -> String {
        format!("@{}", self.name)
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.got.lock().expect("got").clone()
    }

    fn wait_for(&self, pred: impl Fn(&str) -> bool, within: Duration) -> Option<String> {
        let until = Instant::now() + within;
        loop {
            if let Some((_, m)) = self.messages().into_iter().find(|(_, m)| pred(m)) {
                return Some(m);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Arrival times of `WATCHDOG=1` between `from` and `to`.
    fn pings(&self, from: Instant, to: Instant) -> Vec<Instant> {
        self.messages()
            .into_iter()
            .filter(|(t, m)| *t >= from && *t <= to && m.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(t, _)| t)
            .collect()
    }
}

fn max_gap(times: &[Instant]) -> Duration {
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// A WebSocket client, over TCP or TLS.

struct Client<S> {
    ws: WebSocketStream<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    async fn new(stream: S, url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("websocket handshake");
        let mut c = Client { ws };
        let hello = c.recv_op(0).await;
        assert!(hello["d"]["heartbeat_interval"].is_u64(), "{hello}");
        c
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// The next frame with this op, skipping others; panics after 5 s.
    async fn recv_op(&mut self, op: u64) -> Value {
        let wait = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(&t).expect("json");
                        if v["op"] == op {
                            return v;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("connection ended waiting for op {op}: {other:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("no op {op} within 5 s"))
    }

    /// Sends `v` with `id` and returns the answer echoing it.
    async fn request(&mut self, mut v: Value, id: u32) -> Value {
        v["id"] = json!(id);
        self.send(v).await;
        let wait = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(&t).expect("json");
                        if v["id"] == id {
                            return v;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("connection ended waiting for id {id}: {other:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("no answer to id {id} within 5 s"))
    }

    async fn identify(&mut self, user: &str, token: &str) {
        let r = self
            .request(json!({"op":3,"d":{"user_id":user,"token":token}}), 1)
            .await;
        assert_eq!(r["op"], 4, "IDENTIFY: {r}");
    }

    /// The close code the server ends the connection with.
    async fn close_code(&mut self) -> Option<u16> {
        let wait = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    _ => return None,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(3), wait)
            .await
            .ok()
            .flatten()
    }
}

async fn plain_client(d: &Daemon) -> Client<TcpStream> {
    let tcp = TcpStream::connect(d.http).await.expect("connect");
    Client::new(tcp, &format!("ws://{}/gateway", d.http)).await
}

/// A token from `livechatd token`, signed with `secret`.
fn mint(user: &str, secret: &str) -> String {
    let out = command(&["token", user], &[("LIVECHAT_SECRET", secret)])
        .output()
        .expect("livechatd token");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

const CLIENT_SRTP_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

// ---------------------------------------------------------------------------------------
// sd_notify

#[test]
fn ready_then_watchdog_pings_then_stopping() {
    let ns = NotifySocket::bind();
    let d = Daemon::start(&[("NOTIFY_SOCKET", &ns.env()), ("WATCHDOG_USEC", "200000")]);
    let ready = ns
        .wait_for(|m| m.contains("READY=1"), Duration::from_secs(2))
        .expect("READY=1");
    assert!(ready.contains("STATUS=0 sessions"), "{ready:?}");
    // Sent after the ready line, not before.
    assert!(d.stderr().contains("ready http="));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let pings = ns.pings(t0, Instant::now());
    assert!(
        pings.len() >= 5,
        "{} pings in 1 s at a 100 ms period",
        pings.len()
    );
    let (status, err) = d.stop();
    assert!(status.success(), "{status:?}\n{err}");
    let stopping = ns.wait_for(|m| m.contains("STOPPING=1"), Duration::from_secs(1));
    assert!(stopping.is_some(), "no STOPPING=1: {:?}", ns.messages());
}

#[test]
fn a_stalled_core_loop_stops_the_watchdog_pings() {
    let ns = NotifySocket::bind();
    let d = Daemon::start(&[
        ("NOTIFY_SOCKET", &ns.env()),
        ("WATCHDOG_USEC", "200000"),
        ("LIVECHAT_DEBUG_STALL_MS", "2000"),
    ]);
    ns.wait_for(|m| m.contains("READY=1"), Duration::from_secs(2))
        .expect("READY=1");
    std::thread::sleep(Duration::from_millis(600));
    let before = ns.pings(Instant::now() - Duration::from_millis(600), Instant::now());
    assert!(
        before.len() >= 3,
        "pings before the stall: {}",
        before.len()
    );
    let t0 = Instant::now();
    d.signal("USR2");
    d.wait_line(
        |l| l.contains("core loop unblocked"),
        Duration::from_secs(5),
    )
    .expect("the stall ends");
    std::thread::sleep(Duration::from_millis(800));
    // From before the signal, so the last ping before the stall is in.
    let pings = ns.pings(t0 - Duration::from_millis(500), Instant::now());
    let gap = max_gap(&pings);
    assert!(
        gap >= Duration::from_millis(1800),
        "the pings went on during a 2 s stall (longest gap {gap:?}): {:?}\n{}",
        pings.iter().map(|t| *t - t0).collect::<Vec<_>>(),
        d.stderr()
    );
    let end = *pings.last().expect("pings");
    let resumed = pings
        .iter()
        .filter(|t| **t > end - Duration::from_millis(700))
        .count();
    assert!(
        resumed >= 3,
        "pings did not resume after the stall: {pings:?}"
    );
    let (status, err) = d.stop();
    assert!(status.success(), "{status:?}\n{err}");
}

#[test]
fn no_pings_when_the_watchdog_is_for_another_process() {
    let ns = NotifySocket::bind();
    let d = Daemon::start(&[
        ("NOTIFY_SOCKET", &ns.env()),
        ("WATCHDOG_USEC", "200000"),
        ("WATCHDOG_PID", "1"),
    ]);
    ns.wait_for(|m| m.contains("READY=1"), Duration::from_secs(2))
        .expect("READY=1");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(ns.pings(t0, Instant::now()).len(), 0, "{:?}", ns.messages());
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn status_and_counters_follow_the_sessions() {
    let ns = NotifySocket::bind();
    let d = Daemon::start(&[
        ("NOTIFY_SOCKET", &ns.env()),
        ("LIVECHAT_STATS_INTERVAL_S", "1"),
    ]);
    rt().block_on(async {
        let mut a = plain_client(&d).await;
        a.identify("alice", &mint("alice", "x")).await;
        let r = a
            .request(json!({"op":10,"d":{"channel_id":"ops"}}), 2)
            .await;
        assert_eq!(r["op"], 200, "{r}");
        let status = ns.wait_for(
            |m| m.contains("STATUS=1 sessions, 1 connections, 1 channels"),
            Duration::from_secs(4),
        );
        assert!(status.is_some(), "STATUS not updated: {:?}", ns.messages());
        let line = d.wait_line(
            |l| l.contains("stats: ") && l.contains("sessions=1") && l.contains("channels=1"),
            Duration::from_secs(3),
        );
        assert!(line.is_some(), "no counters line:\n{}", d.stderr());
    });
    let (status, _) = d.stop();
    assert!(status.success());
}

#[test]
fn bad_service_settings_are_refused_by_name() {
    for (key, value) in [
        ("LIVECHAT_STATS_INTERVAL_S", "-1"),
        ("LIVECHAT_STATS_INTERVAL_S", "86401"),
        ("LIVECHAT_DEBUG_STALL_MS", "soon"),
    ] {
        let (status, err) = run_to_exit(&["check-config"], &[(key, value)]);
        assert!(!status.success(), "{key}={value} accepted");
        assert!(err.contains(key), "{key}={value}: {err}");
    }
}

// ---------------------------------------------------------------------------------------
// Logs

#[test]
fn journald_lines_carry_priorities_and_no_timestamps() {
    // JOURNAL_STREAM names the daemon's own stderr, as systemd sets it.
    let cmd = command(&[], &[]);
    let daemon = cmd.get_program().to_owned();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(r#"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0""#)
        .arg(daemon);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let d = Daemon::start_cmd(sh);
    assert!(d.ready.starts_with("<6>"), "{:?}", d.ready);
    let warn = d
        .wait_line(|l| l.contains("no LIVECHAT_SECRET"), Duration::from_secs(1))
        .expect("the no-secret warning");
    assert!(warn.starts_with("<4>"), "{warn:?}");
    let (status, err) = d.stop();
    assert!(status.success());
    for line in err.lines() {
        assert!(
            line.starts_with('<') && !line.contains("Z INFO") && !line.starts_with("[20"),
            "not a journald line: {line:?}"
        );
    }

    // A JOURNAL_STREAM that is not our stderr (inherited by a child, say): plain lines.
    let d = Daemon::start(&[("JOURNAL_STREAM", "1:1")]);
    assert!(d.ready.starts_with('['), "{:?}", d.ready);
    drop(d.stop());
}

/// A full session at `RUST_LOG=trace`, with the SIGUSR1 dump and shutdown: the secret,
/// the tokens, their MACs and the SRTP keys never reach the log, in clear or in hex.
#[test]
fn no_secret_in_the_logs_at_trace() {
    let secret = "s3cr3t-Livechat-HMAC-key";
    let d = Daemon::start(&[
        ("LIVECHAT_SECRET", secret),
        ("RUST_LOG", "trace"),
        ("LIVECHAT_STATS_INTERVAL_S", "1"),
    ]);
    let ta = mint("alice", secret);
    let tb = mint("bob", secret);
    let mut server_keys = Vec::new();
    rt().block_on(async {
        let mut a = plain_client(&d).await;
        let mut b = plain_client(&d).await;
        a.identify("alice", &ta).await;
        b.identify("bob", &tb).await;
        let r = a
            .request(
                json!({"op":10,"d":{"channel_id":"ops","name":"Ops\nforged line"}}),
                2,
            )
            .await;
        assert_eq!(r["op"], 200, "{r}");
        let crypto = json!({"suite":"AES_CM_128_HMAC_SHA1_80","key":CLIENT_SRTP_KEY});
        for (c, ssrc) in [(&mut a, 1111), (&mut b, 2222)] {
            let r = c
                .request(
                    json!({"op":11,"d":{"channel_id":"ops","ssrc":ssrc,"crypto":crypto}}),
                    3,
                )
                .await;
            assert_eq!(r["op"], 200, "{r}");
            let key = r["d"]["crypto"]["key"].as_str().expect("server key");
            server_keys.push(key.to_owned());
        }
        a.send(json!({"op":20,"d":{"channel_id":"ops","content":"over"}}))
            .await;
        b.recv_op(101).await;
        a.send(json!({"op":30,"d":{"channel_id":"ops"}})).await;
        a.recv_op(50).await;
        b.send(json!({"op":30,"d":{"channel_id":"ops"}})).await;
        b.recv_op(55).await;

        d.signal("USR1");
        let end = d.wait_line(|l| l.contains("dump: end"), Duration::from_secs(3));
        assert!(end.is_some(), "no dump:\n{}", d.stderr());
        let ch = d
            .wait_line(|l| l.contains("dump: channel ops"), Duration::ZERO)
            .expect("the channel in the dump");
        assert!(ch.contains("holder=alice/prio=0"), "{ch}");
        assert!(ch.contains("queue=[bob/prio=0]"), "{ch}");
        assert!(ch.contains("alice/ssrc=1111 bob/ssrc=2222"), "{ch}");
        assert!(ch.contains(r#"name="Ops\nforged line""#), "{ch}");
        let peer = d
            .wait_line(|l| l.contains("dump: peer ssrc=1111"), Duration::ZERO)
            .expect("alice's media peer in the dump");
        assert!(
            peer.contains("user=alice channel=ops srtp=yes latched=none"),
            "{peer}"
        );
        d.wait_line(
            |l| l.contains("stats: ") && l.contains("sessions=2"),
            Duration::from_secs(3),
        )
        .expect("a counters line");

        // bob hangs up (the server's WebSocket library logs that at debug), alice stays.
        b.ws.close(None).await.expect("close");
        d.wait_line(|l| l.contains("DEBUG tungstenite"), Duration::from_secs(3))
            .expect("debug records from the WebSocket library at RUST_LOG=trace");
        d.signal("TERM");
        assert_eq!(a.close_code().await, Some(1001));
    });
    let (status, log) = d.wait();
    assert!(status.success(), "{status:?}");
    assert!(log.contains("SIGTERM"), "{log}");

    let mac = |t: &str| t.rsplit('.').next().expect("mac").to_owned();
    let mut secrets = vec![
        secret.to_owned(),
        ta.clone(),
        tb.clone(),
        mac(&ta),
        mac(&tb),
        CLIENT_SRTP_KEY.to_owned(),
    ];
    secrets.extend(server_keys);
    for s in secrets {
        for form in [s.clone(), hex(&s)] {
            assert!(!log.contains(&form), "{s:?} is in the log (as {form:?})");
        }
    }
    assert!(log.contains("dump: end"));
}

// ---------------------------------------------------------------------------------------
// TLS

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
struct Cert {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

impl Cert {
    fn new() -> Cert {
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("rcgen");
        let dir = std::env::temp_dir().join(unique("tls"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).expect("write cert");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
        Cert {
            dir,
            cert,
            key,
            der: ck.cert.der().to_vec(),
        }
    }

    fn path(&self, name: &str, contents: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, contents).expect("write");
        p.display().to_string()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tls_client(d: &Daemon, cert: &Cert) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert.der.clone()))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(d.http).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    Client::new(tls, &format!("wss://localhost:{}/gateway", d.http.port())).await
}

#[test]
fn wss_gateway_sessions_are_tls() {
    let cert = Cert::new();
    let (c, k) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let strict = [("LIVECHAT_SDES_OVER_WS", "never")];
    let d = Daemon::start(&[
        ("LIVECHAT_TLS_CERT", &c),
        ("LIVECHAT_TLS_KEY", &k),
        strict[0],
    ]);
    assert!(d.ready.contains(" tls=on "), "{}", d.ready);
    let plain = Daemon::start(&strict);
    assert!(plain.ready.contains(" tls=off "), "{}", plain.ready);
    let crypto = json!({"suite":"AES_CM_128_HMAC_SHA1_80","key":CLIENT_SRTP_KEY});
    let join = json!({"op":11,"d":{"channel_id":"c","ssrc":7,"crypto":crypto}});
    rt().block_on(async {
        // Over wss:// the keys may travel whatever LIVECHAT_SDES_OVER_WS says...
        let mut a = tls_client(&d, &cert).await;
        a.identify("alice", &mint("alice", "x")).await;
        let r = a.request(json!({"op":10,"d":{"channel_id":"c"}}), 2).await;
        assert_eq!(r["op"], 200, "{r}");
        let r = a.request(join.clone(), 3).await;
        assert_eq!(r["op"], 200, "{r}");
        assert_eq!(r["d"]["crypto"]["suite"], "AES_CM_128_HMAC_SHA1_80", "{r}");

        // ...and over ws:// (even from loopback) they may not: the flag is what differs.
        let mut b = plain_client(&plain).await;
        b.identify("bob", &mint("bob", "x")).await;
        b.request(json!({"op":10,"d":{"channel_id":"c"}}), 2).await;
        let r = b.request(join.clone(), 3).await;
        assert_eq!(r["d"]["code"], 2002, "{r}");

        // A plain HTTP client gets no WebSocket from the TLS port.
        let tcp = TcpStream::connect(d.http).await.expect("connect");
        let ws = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::client_async(format!("ws://{}/gateway", d.http), tcp),
        )
        .await
        .expect("answered or closed");
        assert!(ws.is_err(), "ws:// worked on the TLS port");

        d.signal("TERM");
        assert_eq!(a.close_code().await, Some(1001));
    });
    let (status, _) = d.wait();
    assert!(status.success());
    drop(plain.stop());
}

#[test]
fn bad_tls_files_are_refused_by_name() {
    let cert = Cert::new();
    let other = Cert::new();
    let good_cert = cert.cert.display().to_string();
    let good_key = cert.key.display().to_string();
    let garbage = cert.path("garbage.pem", "not a PEM file\n");
    let missing = cert.dir.join("missing.pem").display().to_string();
    let wrong_key = other.key.display().to_string();
    let cases = [
        (missing.as_str(), good_key.as_str(), "LIVECHAT_TLS_CERT"),
        (garbage.as_str(), good_key.as_str(), "LIVECHAT_TLS_CERT"),
        (good_key.as_str(), good_key.as_str(), "LIVECHAT_TLS_CERT"),
        (good_cert.as_str(), missing.as_str(), "LIVECHAT_TLS_KEY"),
        (good_cert.as_str(), garbage.as_str(), "LIVECHAT_TLS_KEY"),
        (good_cert.as_str(), good_cert.as_str(), "LIVECHAT_TLS_KEY"),
        (good_cert.as_str(), wrong_key.as_str(), "LIVECHAT_TLS_KEY"),
    ];
    for (c, k, named) in cases {
        let (status, err) = run_to_exit(
            &["run"],
            &[("LIVECHAT_TLS_CERT", c), ("LIVECHAT_TLS_KEY", k)],
        );
        assert!(!status.success(), "cert {c} key {k} accepted");
        assert!(
            err.contains(named),
            "cert {c} key {k}: expected {named} in {err:?}"
        );
        assert!(!err.contains("ready"), "{err}");
        assert!(!err.contains("PRIVATE KEY-----\n"), "key material in {err}");
    }
    // One of the pair alone is refused too.
    let (status, err) = run_to_exit(&["run"], &[("LIVECHAT_TLS_CERT", &good_cert)]);
    assert!(!status.success());
    assert!(err.contains("LIVECHAT_TLS_KEY"), "{err}");
}
