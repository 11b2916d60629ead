//! Starting the real `livechatd` binary: as a server (`Daemon`) or as a command that is expected
//! to exit (`run`).

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::token;

/// How long the daemon may take to log its `ready` line (times [`crate::time_scale`]).
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The `livechatd` binary under test: `LIVECHATD_BIN`, else `<target>/debug/livechatd` where the
/// target dir is `CARGO_TARGET_DIR` or `<workspace>/target`. Panics if it does not exist.
pub fn livechatd_bin() -> PathBuf {
    let path = if let Some(p) = std::env::var_os("LIVECHATD_BIN") {
        PathBuf::from(p)
    } else {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| {
                if t.is_relative() {
                    workspace.join(t)
                } else {
                    t
                }
            })
            .unwrap_or_else(|| workspace.join("target"));
        target.join("debug").join("livechatd")
    };
    assert!(
        path.is_file(),
        "the livechatd binary is missing at {}: run `cargo build -p livechatd` first \
         (or point LIVECHATD_BIN at a built binary)",
        path.display()
    );
    path
}

/// `LIVECHATD_RUNNER`: a command line the binary under test is run through (an emulator such
/// as `qemu-aarch64-static -L /usr/aarch64-linux-gnu`), or `None` when unset or blank.
pub fn runner() -> Option<String> {
    std::env::var("LIVECHATD_RUNNER")
        .ok()
        .filter(|r| !r.trim().is_empty())
}

/// A config path that does not exist, so the daemon never reads /etc/livechat/livechatd.toml.
pub fn absent_config_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir()
        .join(format!(
            "livechat-e2e-absent-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
        .join("livechatd.toml");
    assert!(!p.exists(), "{} should not exist", p.display());
    p
}

/// A `Command` for the binary with a clean environment: every inherited `LIVECHAT_*` removed,
/// `LIVECHAT_CONFIG` pointing at a file that does not exist, `RUST_LOG=info`, loopback ports 0.
/// The test's own `env` is applied after (and wins).
///
/// With `LIVECHATD_RUNNER` set (say `qemu-aarch64-static -L /usr/aarch64-linux-gnu`), the
/// command is that runner, split on whitespace, with the binary as its first argument.
/// qemu-user runs the guest in its own process, so the pid is the daemon's and signals sent to
/// it reach the daemon's handlers.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let bin = livechatd_bin();
    let mut cmd = match runner() {
        Some(runner) => {
            let mut words = runner.split_whitespace();
            let program = words.next().expect("runner() is not blank");
            let mut cmd = Command::new(program);
            cmd.args(words).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LIVECHAT_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("LIVECHAT_HTTP_ADDR", "127.0.0.1:0")
        .env("LIVECHAT_UDP_ADDR", "127.0.0.1:0")
        .env("LIVECHAT_CONFIG", absent_config_path())
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// What a finished run of the binary left.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// stdout and stderr together, for searching and for failure messages.
    pub fn all(&self) -> String {
        format!("[stdout]\n{}\n[stderr]\n{}", self.stdout, self.stderr)
    }
}

fn drain_to<R: Read + Send + 'static>(mut r: R, into: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .expect("output buffer lock")
                    .extend_from_slice(&buf[..n]),
            }
        }
    });
}

/// Runs the binary with `args` and `env` (see [`command`]) and waits for it to exit, at most
/// `within` (times [`crate::time_scale`]). A process still running then is killed and the test
/// fails with its output.
pub async fn run(args: &[&str], env: &[(&str, &str)], within: Duration) -> RunOutput {
    let within = crate::scaled(within);
    let mut child = command(args, env)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning livechatd {args:?}: {e}"));
    let out = Arc::new(Mutex::new(Vec::new()));
    let err = Arc::new(Mutex::new(Vec::new()));
    drain_to(child.stdout.take().expect("piped stdout"), out.clone());
    drain_to(child.stderr.take().expect("piped stderr"), err.clone());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait on livechatd") {
            break status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            tokio::time::sleep(Duration::from_millis(100)).await;
            panic!(
                "livechatd {args:?} with {env:?} was still running after {within:?} (it was \
                 expected to exit); killed.\n[stdout]\n{}\n[stderr]\n{}",
                String::from_utf8_lossy(&out.lock().expect("lock")),
                String::from_utf8_lossy(&err.lock().expect("lock"))
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Let the drain threads reach EOF.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Arc::strong_count(&out) + Arc::strong_count(&err) > 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stdout = String::from_utf8_lossy(&out.lock().expect("lock")).into_owned();
    let stderr = String::from_utf8_lossy(&err.lock().expect("lock")).into_owned();
    RunOutput {
        status,
        stdout,
        stderr,
    }
}

/// Settings for a daemon to start.
#[derive(Debug, Default, Clone)]
pub struct DaemonBuilder {
    env: Vec<(String, String)>,
    args: Vec<String>,
    secret: Option<String>,
}

impl DaemonBuilder {
    /// Sets an environment variable for the daemon (e.g. `LIVECHAT_HEARTBEAT_MS`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets `LIVECHAT_SECRET`; [`Daemon::token`] then mints tokens with it.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self.env("LIVECHAT_SECRET", secret)
    }

    /// Adds a command-line argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Starts the daemon and waits for its `ready` line (at most [`START_TIMEOUT`]).
    pub async fn start(self) -> Daemon {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut child = command(&args, &env)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning livechatd: {e}"));
        let logs = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<String>();

        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_logs = logs.clone();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                stderr_logs.lock().expect("log lock").push_str(&text);
                if text.contains("ready")
                    && text.contains("http=")
                    && text.contains("udp=")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(text);
                }
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_logs = logs.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(stdout);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let mut l = stdout_logs.lock().expect("log lock");
                l.push_str("[stdout] ");
                l.push_str(&line);
                l.push('\n');
            }
        });

        let start_timeout = crate::scaled(START_TIMEOUT);
        let waited = tokio::time::timeout(start_timeout, ready_rx).await;
        let line = match waited {
            Ok(Ok(line)) => line,
            Ok(Err(_)) | Err(_) => {
                // Give the process a moment to finish writing, then report.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                let why = match (waited.is_err(), status) {
                    (true, _) => format!("no `ready` line within {start_timeout:?}"),
                    (false, Some(s)) => format!("livechatd exited ({s}) before its `ready` line"),
                    (false, None) => "livechatd closed stderr before its `ready` line".to_owned(),
                };
                panic!(
                    "{why} (env {:?}, args {:?}).\nIt logged:\n{}",
                    self.env,
                    self.args,
                    logs.lock().expect("log lock")
                );
            }
        };
        let (http, udp) = parse_ready_line(&line).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("cannot parse the ready line {line:?}: {e}")
        });
        Daemon {
            child,
            http,
            udp,
            ready_line: line,
            logs,
            secret: self.secret,
            env: self.env,
        }
    }
}

/// Parses `http=<addr>` and `udp=<addr>` tokens out of the ready line.
pub fn parse_ready_line(line: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let find = |key: &str| -> Result<SocketAddr, String> {
        let word = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .ok_or_else(|| format!("no `{key}<addr>` token"))?;
        let word = word.trim_end_matches([',', ';', ')', '"', '\'']);
        word.parse()
            .map_err(|e| format!("`{key}{word}` is not a socket address: {e}"))
    };
    Ok((find("http=")?, find("udp=")?))
}

/// A running `livechatd`, killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Child,
    /// The bound gateway address (from the ready line).
    pub http: SocketAddr,
    /// The bound media address (from the ready line).
    pub udp: SocketAddr,
    /// The whole ready line.
    pub ready_line: String,
    logs: Arc<Mutex<String>>,
    secret: Option<String>,
    env: Vec<(String, String)>,
}

impl Daemon {
    /// Settings for a daemon; finish with [`DaemonBuilder::start`].
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    /// A daemon with default settings (no secret, loopback).
    pub async fn start() -> Daemon {
        Daemon::builder().start().await
    }

    /// A daemon with these environment variables.
    pub async fn start_with(env: &[(&str, &str)]) -> Daemon {
        let mut b = Daemon::builder();
        for (k, v) in env {
            b = if *k == "LIVECHAT_SECRET" {
                b.secret(v)
            } else {
                b.env(k, v)
            };
        }
        b.start().await
    }

    /// The address a client connects to: the gateway address, with an unspecified IP
    /// (0.0.0.0 or ::) replaced by loopback.
    pub fn connect_addr(&self) -> SocketAddr {
        let mut a = self.http;
        if a.ip().is_unspecified() {
            a.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        a
    }

    /// `ws://<http addr>/gateway`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/gateway", self.connect_addr())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon wrote so far (stderr, and stdout lines prefixed `[stdout]`).
    pub fn logs(&self) -> String {
        self.logs.lock().expect("log lock").clone()
    }

    /// The secret it was started with, if any.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// The environment the test gave it.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// A valid token for `user_id` (1 h, priority cap 255), MAC keyed with the daemon's secret
    /// (or any key when it has none).
    pub fn token(&self, user_id: &str) -> String {
        self.token_with(user_id, 3600, 255)
    }

    /// A token for `user_id` valid `ttl_s` seconds with `priority_cap`.
    pub fn token_with(&self, user_id: &str, ttl_s: u64, priority_cap: u8) -> String {
        token::mint(
            self.secret.as_deref().unwrap_or("no-secret-configured"),
            user_id,
            ttl_s,
            priority_cap,
        )
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the daemon.
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}) failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// The exit status if the process has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on livechatd")
    }

    /// Waits at most `within` (times [`crate::time_scale`]) for the process to exit; fails
    /// with its logs otherwise.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let within = crate::scaled(within);
        let start = Instant::now();
        loop {
            if let Some(s) = self.try_exit_status() {
                return s;
            }
            if start.elapsed() > within {
                panic!(
                    "livechatd (pid {}) did not exit within {within:?}.\nIt logged:\n{}",
                    self.pid(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits up to `within` (times [`crate::time_scale`]) for a log line containing `needle`;
    /// returns whether it appeared.
    pub async fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let within = crate::scaled(within);
        let start = Instant::now();
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if start.elapsed() > within {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        // A panic inside the daemon (say, in one connection's task) must not go unnoticed
        // just because the test's own assertions passed.
        let logs = self.logs();
        if !std::thread::panicking() && logs.contains("panicked at") {
            panic!("livechatd panicked during the test; it logged:\n{logs}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ready_line;

    #[test]
    fn ready_line() {
        let (h, u) = parse_ready_line(
            "[2026-01-01T00:00:00Z INFO  livechatd] ready http=127.0.0.1:41234 udp=127.0.0.1:5000",
        )
        .expect("parses");
        assert_eq!(h.port(), 41234);
        assert_eq!(u.port(), 5000);
        assert!(parse_ready_line("ready http=127.0.0.1:1").is_err());
        let (h, _) = parse_ready_line("ready http=[::1]:80, udp=[::1]:81").expect("v6");
        assert_eq!(h.port(), 80);
    }
}
