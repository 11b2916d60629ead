//! What `lcadmin` and `lctrace` share: the daemon's address and token from flags or the
//! environment, a small blocking HTTP/1.1 client (RFC 9112) for the admin API, a reader of
//! server-sent events for the trace, and the exit codes scripts can rely on.
//!
//! The tools speak plain `http://` to a daemon on the same host or LAN; PROTOCOL.md
//! section 6 is the contract they read.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Exit codes of both tools.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The daemon refused the request for another reason (400, 405, 413, 429, 5xx).
    pub const FAILED: u8 = 1;
    /// Bad command line.
    pub const USAGE: u8 = 2;
    /// No daemon answered at the URL.
    pub const UNREACHABLE: u8 = 3;
    /// 401: no token, or the wrong one.
    pub const UNAUTHORIZED: u8 = 4;
    /// 404: no such channel, user or path.
    pub const NOT_FOUND: u8 = 5;
    /// 409: the channel exists, or the floor is idle.
    pub const CONFLICT: u8 = 6;

    /// The exit code for an HTTP status that is not a success.
    pub fn of_status(status: u16) -> u8 {
        match status {
            401 => UNAUTHORIZED,
            404 => NOT_FOUND,
            409 => CONFLICT,
            _ => FAILED,
        }
    }
}

/// The base URL when neither `--url` nor `LIVECHAT_ADMIN_URL` gives one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest an answer may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read, in bytes.
pub const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Where the daemon is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port` as given.
    pub authority: String,
    /// The URL's path, without a trailing `/` ("" for none).
    pub base: String,
    /// The admin token.
    pub token: Option<String>,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing answered (refused, unresolvable, timed out).
    Unreachable(String),
    /// Something answered, but not HTTP as expected.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Unreachable(m) => write!(f, "daemon unreachable: {m}"),
            ClientError::Protocol(m) => write!(f, "bad answer from the daemon: {m}"),
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status code.
    pub status: u16,
    /// Its body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`null` when it is empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `error` of a JSON error answer, else the status's.
    pub fn error(&self) -> String {
        match self.json().get("error").and_then(|e| e.as_str()) {
            Some(e) => e.to_owned(),
            None => format!("HTTP {}", self.status),
        }
    }
}

impl Target {
    /// `url` (`http://host:port[/path]`) and `token`, each from the flag, else the
    /// environment (`LIVECHAT_ADMIN_URL`, `LIVECHAT_ADMIN_TOKEN`), else the default.
    pub fn from_args(url: Option<String>, token: Option<String>) -> Result<Target, String> {
        let url = url
            .or_else(|| std::env::var("LIVECHAT_ADMIN_URL").ok())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        let token = token
            .or_else(|| std::env::var("LIVECHAT_ADMIN_TOKEN").ok())
            .filter(|t| !t.is_empty());
        let mut t = Target::parse(&url)?;
        t.token = token;
        Ok(t)
    }

    /// Parses a base URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "{url}: https is not supported by the tools; use http:// on the daemon's host or LAN"
                ));
            }
            _ => return Err(format!("{url}: expected http://HOST:PORT")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let has_port = if authority.starts_with('[') {
            authority.contains("]:")
        } else {
            authority.contains(':')
        };
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            authority,
            base: path.trim_end_matches('/').to_owned(),
            token: None,
        })
    }

    fn connect(&self, read_timeout: Option<Duration>) -> Result<TcpStream, ClientError> {
        let addrs = self
            .authority
            .to_socket_addrs()
            .map_err(|e| ClientError::Unreachable(format!("{}: {e}", self.authority)))?;
        let mut last = format!("{}: no address", self.authority);
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_read_timeout(read_timeout);
                    let _ = s.set_write_timeout(Some(READ_TIMEOUT));
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = format!("{a}: {e}"),
            }
        }
        Err(ClientError::Unreachable(last))
    }

    /// Sends one request and returns the stream positioned at the body, the status and
    /// the headers (names lowercase).
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        read_timeout: Option<Duration>,
    ) -> Result<(BufReader<TcpStream>, u16, Headers), ClientError> {
        let mut s = self.connect(read_timeout)?;
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: livechat-tools/{}\r\n",
            self.base,
            self.authority,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body.unwrap_or(""));
        s.write_all(head.as_bytes())
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r)?;
        Ok((r, status, headers))
    }

    /// One request: `path` under the base URL, an optional JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let (r, status, headers) = self.send(method, path, body, Some(READ_TIMEOUT))?;
        let mut body = Vec::new();
        body_reader(r, &headers)
            .take(MAX_ANSWER)
            .read_to_end(&mut body)
            .map_err(|e| ClientError::Protocol(format!("reading the body: {e}")))?;
        Ok(Answer { status, body })
    }

    /// Opens an event stream at `path`: its events, or the answer when it is not 200.
    pub fn events(&self, path: &str, idle: Duration) -> Result<Events, ClientError> {
        let (r, status, headers) = self.send("GET", path, None, Some(idle))?;
        if status != 200 {
            let mut body = Vec::new();
            let _ = body_reader(r, &headers)
                .take(MAX_ANSWER)
                .read_to_end(&mut body);
            return Ok(Events::Refused(Answer { status, body }));
        }
        Ok(Events::Open(EventReader {
            lines: BufReader::new(body_reader(r, &headers)),
        }))
    }
}

/// Header names (lowercase) and values.
type Headers = Vec<(String, String)>;

/// The status line and headers.
fn read_head(r: &mut impl BufRead) -> Result<(u16, Headers), ClientError> {
    let mut line = String::new();
    let bad = |m: &str| ClientError::Protocol(m.to_owned());
    r.read_line(&mut line)
        .map_err(|e| ClientError::Unreachable(format!("no answer: {e}")))?;
    if line.is_empty() {
        return Err(ClientError::Unreachable(
            "the connection closed without an answer".into(),
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or_else(|| bad("not an HTTP status line"))?;
    let mut headers = Vec::new();
    for _ in 0..100 {
        line.clear();
        r.read_line(&mut line).map_err(|e| bad(&e.to_string()))?;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, headers));
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    Err(bad("too many headers"))
}

/// The body as sent: chunked (RFC 9112 section 7.1), with a length, or until close.
fn body_reader(r: BufReader<TcpStream>, headers: &[(String, String)]) -> Box<dyn Read> {
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Box::new(Chunked {
            inner: r,
            left: 0,
            done: false,
        });
    }
    match header("content-length").and_then(|v| v.parse::<u64>().ok()) {
        Some(n) => Box::new(r.take(n)),
        None => Box::new(r),
    }
}

/// A chunked body, decoded.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                // The CRLF after the previous chunk's data.
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// An event stream, or the answer that refused it.
pub enum Events {
    /// Open.
    Open(EventReader),
    /// Not 200.
    Refused(Answer),
}

/// Server-sent events, one at a time.
pub struct EventReader {
    lines: BufReader<Box<dyn Read>>,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its `event:` (`message` when none).
    pub kind: String,
    /// Its `data:` lines joined with newlines.
    pub data: String,
}

impl EventReader {
    /// The next event; `None` when the stream ended. Comments are skipped.
    pub fn next_event(&mut self) -> io::Result<Option<Event>> {
        let mut kind = String::new();
        let mut data: Option<String> = None;
        let mut line = String::new();
        loop {
            line.clear();
            if self.lines.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                if let Some(d) = data.take() {
                    let kind = if kind.is_empty() {
                        "message".to_owned()
                    } else {
                        std::mem::take(&mut kind)
                    };
                    return Ok(Some(Event { kind, data: d }));
                }
                kind.clear();
                continue;
            }
            let (field, value) = match l.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (l, ""),
            };
            match field {
                "event" => kind = value.to_owned(),
                "data" => match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
    }
}

/// Whether stdout is a terminal (for colour).
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Rows as a table with aligned columns, under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = width.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = width[i].saturating_sub(c.chars().count()) + 2;
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080").expect("valid");
        assert_eq!(
            (t.authority.as_str(), t.base.as_str()),
            ("127.0.0.1:8080", "")
        );
        let t = Target::parse("http://gw.lan/livechat/").expect("valid");
        assert_eq!(
            (t.authority.as_str(), t.base.as_str()),
            ("gw.lan:80", "/livechat")
        );
        let t = Target::parse("http://[::1]:9000").expect("valid");
        assert_eq!(t.authority, "[::1]:9000");
        assert!(Target::parse("https://x").is_err());
        assert!(Target::parse("x:80").is_err());
    }

    #[test]
    fn chunked_bodies_and_events() {
        let wire = b"7\r\nevent: \r\n1c\r\nfloor\ndata: {\"a\":1}\n\n: ping\n\r\n0\r\n\r\n";
        let body = Chunked {
            inner: BufReader::new(&wire[..]),
            left: 0,
            done: false,
        };
        let mut r = EventReader {
            lines: BufReader::new(Box::new(body)),
        };
        let ev = r.next_event().expect("reads").expect("an event");
        assert_eq!(ev.kind, "floor");
        assert_eq!(ev.data, "{\"a\":1}");
        assert_eq!(r.next_event().expect("reads"), None);
    }

    #[test]
    fn tables_align() {
        let t = table(&["ID", "N"], &[vec!["ops".into(), "2".into()]]);
        assert_eq!(t, "ID   N\nops  2\n");
    }
}
