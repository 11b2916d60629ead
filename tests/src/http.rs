//! A small HTTP/1.1 client for the operators' endpoints (PROTOCOL.md section 6), written
//! against RFC 9112 for the tests: one request per connection (`Connection: close`), and a
//! reader of the trace's server-sent events that can stop reading at will.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::{TIMEOUT, scaled};

/// An answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body, dechunked.
    pub body: String,
}

impl Answer {
    /// The body as JSON; panics, showing the answer, when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {self:?}"))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status and that the body is `{"error": reason}`.
    pub fn assert_error(&self, status: u16, reason: &str) {
        assert_eq!(self.status, status, "status of {self:?}");
        assert_eq!(
            self.json(),
            serde_json::json!({ "error": reason }),
            "body of {self:?}"
        );
    }
}

/// One request to `addr`; `token` goes as `Authorization: Bearer`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut extra = Vec::new();
    if let Some(t) = token {
        extra.push(("Authorization".to_owned(), format!("Bearer {t}")));
    }
    request_with(addr, method, path, &extra, body).await
}

/// One request with the given extra headers.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&str>,
) -> Answer {
    let work = async {
        let mut s = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: connect to {addr}: {e}"));
        s.write_all(head(method, path, headers, body).as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: send: {e}"));
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: read: {e}"));
        parse(&raw).unwrap_or_else(|| {
            panic!(
                "{method} {path}: not an HTTP answer: {:?}",
                String::from_utf8_lossy(&raw)
            )
        })
    };
    tokio::time::timeout(scaled(TIMEOUT), work)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within {TIMEOUT:?}"))
}

fn head(method: &str, path: &str, headers: &[(String, String)], body: Option<&str>) -> String {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: livechat\r\nConnection: close\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        h.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    h.push_str("\r\n");
    h.push_str(body.unwrap_or(""));
    h
}

/// Splits a whole answer into status, headers and the (dechunked) body.
fn parse(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_owned()
    };
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n")?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..n)?);
        s = rest.get(n + 2..)?;
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `event:`.
    pub kind: String,
    /// `data:`, parsed.
    pub data: Value,
}

/// An open trace stream (`GET /admin/v1/trace`), read only when asked.
pub struct EventStream {
    sock: TcpStream,
    /// Bytes read and not yet parsed.
    buf: String,
    /// The answer's status and head.
    pub head: String,
}

impl EventStream {
    /// Opens `path` on `addr` with a receive buffer of `recv_buffer` bytes (the kernel
    /// doubles it): a small one fills quickly when the stream is not read. Returns the
    /// answer instead when it is not 200.
    pub async fn open(
        addr: SocketAddr,
        path: &str,
        token: Option<&str>,
        recv_buffer: Option<u32>,
    ) -> Result<EventStream, Answer> {
        let sock = TcpSocket::new_v4().expect("socket");
        if let Some(b) = recv_buffer {
            sock.set_recv_buffer_size(b).expect("SO_RCVBUF");
        }
        let mut s = sock.connect(addr).await.expect("connect");
        let mut headers = Vec::new();
        if let Some(t) = token {
            headers.push(("Authorization".to_owned(), format!("Bearer {t}")));
        }
        s.write_all(head("GET", path, &headers, None).as_bytes())
            .await
            .expect("send");
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        // The head, byte by byte, so nothing of the body is taken with it.
        let read_head = async {
            while !raw.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut byte).await.expect("read the head");
                assert!(n > 0, "closed before the head ended");
                raw.push(byte[0]);
            }
        };
        tokio::time::timeout(scaled(TIMEOUT), read_head)
            .await
            .expect("the trace answer's head in time");
        let head = String::from_utf8_lossy(&raw).into_owned();
        if !head.starts_with("HTTP/1.1 200") {
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(scaled(TIMEOUT), s.read_to_end(&mut rest)).await;
            raw.extend_from_slice(&rest);
            return Err(parse(&raw).expect("an HTTP answer"));
        }
        Ok(EventStream {
            sock: s,
            buf: String::new(),
            head,
        })
    }

    /// The next event of any kind within `within`, or `None`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(e) = self.take_event() {
                return Some(e);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout_at(deadline, self.sock.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    /// The next event for which `pred` holds (others are skipped), or panics after
    /// [`TIMEOUT`] naming `what`.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + scaled(TIMEOUT);
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(e) if pred(&e) => return e,
                Some(e) => skipped.push(e),
                None => panic!("trace: no {what} within {TIMEOUT:?}; got {skipped:?}"),
            }
        }
    }

    /// Every event within `within`.
    pub async fn drain(&mut self, within: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while let Some(e) = self
            .next_within(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            out.push(e);
        }
        out
    }

    /// One whole event out of the buffer: its `event:` and `data:` lines (the chunk-size
    /// lines of the transfer coding between them are skipped; each event is one chunk).
    fn take_event(&mut self) -> Option<Event> {
        loop {
            let end = self.buf.find("\n\n")?;
            let block: String = self.buf.drain(..end + 2).collect();
            let mut kind = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = Some(k.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d.to_owned());
                }
            }
            if let (Some(kind), Some(d)) = (kind, data) {
                let data = serde_json::from_str(&d)
                    .unwrap_or_else(|e| panic!("trace data is not JSON ({e}): {d:?}"));
                return Some(Event { kind, data });
            }
        }
    }
}
