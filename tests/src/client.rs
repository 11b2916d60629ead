//! A gateway client that talks to the daemon exactly as real clients do: text frames over a real
//! WebSocket. Every receive has a deadline and says what it was waiting for; every frame the
//! server sends is checked against the frame shapes of PROTOCOL.md section 1.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::daemon::Daemon;
use crate::proto::{code_name, op, op_name};

/// How long any single expected frame may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh SSRC, unique within this test process (SSRCs must be unique per server).
pub fn fresh_ssrc() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0x1000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// How a connection ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The server sent a close frame (`code` is `None` for a close frame without a code).
    Frame { code: Option<u16>, reason: String },
    /// The TCP stream ended without a close frame.
    Eof,
    /// Reading failed (e.g. connection reset).
    Error(String),
}

impl Closed {
    /// The close code, if a close frame carried one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Closed::Frame { code, .. } => *code,
            _ => None,
        }
    }
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::Frame {
                code: Some(c),
                reason,
            } => write!(f, "close frame {c} {reason:?}"),
            Closed::Frame { code: None, .. } => write!(f, "close frame without a code"),
            Closed::Eof => write!(f, "TCP end of stream without a close frame"),
            Closed::Error(e) => write!(f, "read error: {e}"),
        }
    }
}

enum Incoming {
    Frame(Value),
    Closed(Closed),
}

/// Short text of a frame for failure messages.
pub fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        let mut end = 600;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], s.len())
    } else {
        s
    }
}

/// Describes an answer frame: `ACK(CHANNEL_CREATE)`, `ERROR 2005 (channel already exists) "..."`.
pub fn describe(frame: &Value) -> String {
    let o = frame["op"].as_i64().unwrap_or(-1);
    let d = &frame["d"];
    match o {
        op::ERROR => format!(
            "ERROR {} ({}) reason {:?} req_op {} [{}]",
            d["code"],
            code_name(d["code"].as_i64().unwrap_or(0)),
            d["reason"].as_str().unwrap_or(""),
            d["req_op"],
            show(frame)
        ),
        op::ACK => format!(
            "ACK for {} [{}]",
            op_name(d["req_op"].as_i64().unwrap_or(-1)),
            show(frame)
        ),
        _ => format!("{} [{}]", op_name(o), show(frame)),
    }
}

/// The sorted user ids in a JSON array of strings.
pub fn sorted_ids(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("expected an array of user ids, got {}", show(v)))
        .iter()
        .map(|u| {
            u.as_str()
                .unwrap_or_else(|| panic!("expected user id strings, got {}", show(v)))
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

/// Sorted owned copies of `ids`.
pub fn ids(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Whether `frame` carries the answer id `id`.
pub fn has_id(frame: &Value, id: u32) -> bool {
    frame.get("id").and_then(Value::as_u64) == Some(u64::from(id))
}

/// Whether `frame` carries no `id` (absent or null).
pub fn has_no_id(frame: &Value) -> bool {
    frame.get("id").is_none_or(Value::is_null)
}

/// One gateway connection.
pub struct Client {
    ws: WebSocketStream<TcpStream>,
    label: String,
    pending: VecDeque<Value>,
    closed: Option<Closed>,
    next_id: u32,
    bg_heartbeats: usize,
    /// HELLO's `d`, once received.
    pub hello: Option<Value>,
    /// The identified user id, once READY.
    pub user_id: Option<String>,
    /// The session id from READY.
    pub session_id: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client({})", self.label)
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
        .write_buffer_size(0)
}

impl Client {
    /// Opens a WebSocket to the daemon's gateway without reading anything (not even HELLO).
    pub async fn open(daemon: &Daemon, label: &str) -> Client {
        Client::open_addr(daemon.connect_addr(), label).await
    }

    /// Opens a WebSocket to `ws://<addr>/gateway` without reading anything.
    pub async fn open_addr(addr: SocketAddr, label: &str) -> Client {
        let tcp = tokio::time::timeout(crate::scaled(TIMEOUT), TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| {
                panic!("{label}: TCP connect to {addr} timed out after {TIMEOUT:?}")
            })
            .unwrap_or_else(|e| panic!("{label}: TCP connect to {addr}: {e}"));
        Client::handshake(tcp, addr, label).await
    }

    /// Opens a WebSocket whose socket has a tiny receive buffer (`bytes`), so that a client that
    /// does not read pushes back on the server quickly.
    pub async fn open_with_recv_buffer(daemon: &Daemon, label: &str, bytes: u32) -> Client {
        let addr = daemon.connect_addr();
        let sock = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .expect("TCP socket");
        sock.set_recv_buffer_size(bytes).expect("setting SO_RCVBUF");
        let tcp = tokio::time::timeout(crate::scaled(TIMEOUT), sock.connect(addr))
            .await
            .unwrap_or_else(|_| panic!("{label}: TCP connect to {addr} timed out"))
            .unwrap_or_else(|e| panic!("{label}: TCP connect to {addr}: {e}"));
        Client::handshake(tcp, addr, label).await
    }

    async fn handshake(tcp: TcpStream, addr: SocketAddr, label: &str) -> Client {
        let _ = tcp.set_nodelay(true);
        let url = format!("ws://{addr}/gateway");
        let (ws, _response) = tokio::time::timeout(
            crate::scaled(TIMEOUT),
            tokio_tungstenite::client_async_with_config(url.as_str(), tcp, Some(ws_config())),
        )
        .await
        .unwrap_or_else(|_| panic!("{label}: WebSocket handshake with {url} timed out"))
        .unwrap_or_else(|e| panic!("{label}: WebSocket handshake with {url} failed: {e}"));
        Client {
            ws,
            label: label.to_owned(),
            pending: VecDeque::new(),
            closed: None,
            next_id: 1,
            bg_heartbeats: 0,
            hello: None,
            user_id: None,
            session_id: None,
        }
    }

    /// Opens a WebSocket and receives HELLO (checked: `heartbeat_interval`, `server`).
    pub async fn connect(daemon: &Daemon, label: &str) -> Client {
        let mut c = Client::open(daemon, label).await;
        c.expect_hello().await;
        c
    }

    /// Connects and identifies as `user_id` with a valid token from the daemon's secret.
    pub async fn identified(daemon: &Daemon, user_id: &str) -> Client {
        let mut c = Client::connect(daemon, user_id).await;
        c.identify(daemon, user_id).await;
        c
    }

    /// `n` identified clients named `<prefix>0`, `<prefix>1`, ...
    pub async fn identified_many(daemon: &Daemon, prefix: &str, n: usize) -> Vec<Client> {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            v.push(Client::identified(daemon, &format!("{prefix}{i}")).await);
        }
        v
    }

    /// The name used in failure messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The identified user id (panics if not identified).
    pub fn uid(&self) -> &str {
        self.user_id
            .as_deref()
            .unwrap_or_else(|| panic!("{} is not identified", self.label))
    }

    /// Receives HELLO as the first frame and checks it.
    pub async fn expect_hello(&mut self) -> Value {
        let f = self
            .recv("HELLO (op 0), the first frame after connect")
            .await;
        assert_eq!(
            f["op"],
            op::HELLO,
            "{}: the first frame must be HELLO, got {}",
            self.label,
            describe(&f)
        );
        let d = f["d"].clone();
        self.hello = Some(d.clone());
        d
    }

    /// HELLO's `heartbeat_interval` in ms.
    pub fn heartbeat_interval(&self) -> u64 {
        self.hello
            .as_ref()
            .and_then(|h| h["heartbeat_interval"].as_u64())
            .unwrap_or_else(|| panic!("{}: no HELLO received yet", self.label))
    }

    // ----- sending -------------------------------------------------------------------------

    /// Sends any WebSocket message; `Err` if the connection is gone.
    pub async fn try_send(&mut self, msg: Message) -> Result<(), String> {
        tokio::time::timeout(crate::scaled(TIMEOUT), self.ws.send(msg))
            .await
            .map_err(|_| format!("send timed out after {TIMEOUT:?} (server not reading?)"))?
            .map_err(|e| e.to_string())
    }

    /// Sends one text frame; `Err` if the connection is gone (for floods that may be cut off).
    pub async fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        self.try_send(Message::text(text)).await
    }

    async fn send_msg(&mut self, msg: Message, what: &str) {
        if let Err(e) = self.try_send(msg).await {
            panic!(
                "{}: sending {what} failed: {e} (connection state: {})",
                self.label,
                self.closed
                    .as_ref()
                    .map_or("open as far as we know".to_owned(), ToString::to_string)
            );
        }
    }

    /// Sends one text frame exactly as given.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        let what = format!("text frame ({} bytes)", text.len());
        self.send_msg(Message::text(text), &what).await;
    }

    /// Sends one binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        let what = format!("binary frame ({} bytes)", bytes.len());
        self.send_msg(Message::binary(bytes), &what).await;
    }

    /// Sends a WebSocket ping.
    pub async fn send_ping(&mut self, payload: Vec<u8>) {
        self.send_msg(Message::Ping(payload.into()), "ping").await;
    }

    /// Sends `v` as one text frame.
    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(v.to_string()).await;
    }

    /// Sends `{op, d}` without `id`.
    pub async fn send_op(&mut self, op: i64, d: Value) {
        self.send_json(&json!({"op": op, "d": d})).await;
    }

    /// A fresh request id for this connection.
    pub fn fresh_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Sends `{op, d, id}` with a fresh id and returns the id (does not wait).
    pub async fn send_request(&mut self, op: i64, d: Value) -> u32 {
        let id = self.fresh_id();
        self.send_json(&json!({"op": op, "d": d, "id": id})).await;
        id
    }

    /// Sends HEARTBEAT without `id` and forgets its HEARTBEAT_ACK (for keeping a connection
    /// alive in the background of a test).
    pub async fn bg_heartbeat(&mut self) {
        self.bg_heartbeats += 1;
        self.send_op(op::HEARTBEAT, Value::Null).await;
    }

    // ----- receiving -----------------------------------------------------------------------

    fn check_server_frame(&self, v: &Value) {
        let bad = |why: &str| -> ! {
            panic!(
                "{}: server frame violates PROTOCOL.md section 1 ({why}): {}",
                self.label,
                show(v)
            )
        };
        let Some(obj) = v.as_object() else {
            bad("not a JSON object")
        };
        let Some(o) = obj.get("op").and_then(Value::as_i64) else {
            bad("`op` missing or not an integer")
        };
        if !op::SERVER_OPS.contains(&o) {
            bad("`op` is not a server -> client op")
        }
        if let Some(id) = obj.get("id")
            && !id.is_null()
            && id.as_u64().is_none_or(|i| i > u64::from(u32::MAX))
        {
            bad("`id` is not a u32")
        }
        let Some(d) = obj.get("d") else {
            bad("`d` missing (it is `<object or null>`)")
        };
        if !(d.is_null() || d.is_object()) {
            bad("`d` is neither an object nor null")
        }
        let s = |k: &str| d.get(k).and_then(Value::as_str).is_some();
        let int = |k: &str| d.get(k).and_then(Value::as_i64).is_some();
        match o {
            op::HELLO => {
                if d.get("heartbeat_interval")
                    .and_then(Value::as_u64)
                    .is_none_or(|i| i == 0)
                {
                    bad("HELLO `heartbeat_interval` must be a positive integer (ms)")
                }
                let server = d.get("server").and_then(Value::as_str).unwrap_or("");
                if !server.starts_with("livechatd/") || server.len() == "livechatd/".len() {
                    bad("HELLO `server` must be `livechatd/<version>`")
                }
            }
            op::READY if !s("session_id") || !s("user_id") => {
                bad("READY needs `session_id` and `user_id` strings")
            }
            op::ACK if !int("req_op") => bad("ACK needs an integer `req_op`"),
            op::ERROR => {
                if !int("code") {
                    bad("ERROR needs an integer `code`")
                }
                if !s("reason") {
                    bad("ERROR needs a string `reason`")
                }
                if let Some(r) = d.get("req_op")
                    && !r.is_null()
                    && r.as_i64().is_none()
                {
                    bad("ERROR `req_op` must be an integer")
                }
            }
            op::CHANNEL_EVENT => {
                let ev = d.get("event").and_then(Value::as_str).unwrap_or("");
                if !["join", "leave", "update", "delete"].contains(&ev) {
                    bad("CHANNEL_EVENT `event` must be join, leave, update or delete")
                }
                if !s("channel_id") {
                    bad("CHANNEL_EVENT needs `channel_id`")
                }
                if (ev == "join" || ev == "leave") && !s("user_id") {
                    bad("CHANNEL_EVENT join/leave needs `user_id`")
                }
            }
            op::MESSAGE_EVENT => {
                if !s("channel_id") || !s("user_id") || !s("content") {
                    bad("MESSAGE_EVENT needs `channel_id`, `user_id`, `content` strings")
                }
                if d.get("timestamp").and_then(Value::as_u64).is_none() {
                    bad("MESSAGE_EVENT needs an integer `timestamp` (ms since the epoch)")
                }
            }
            _ => {}
        }
    }

    async fn read_one(&mut self, deadline: Instant) -> Option<Incoming> {
        if let Some(c) = &self.closed {
            return Some(Incoming::Closed(c.clone()));
        }
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(n) => n,
            };
            let closed = match next {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or_else(|e| {
                        panic!(
                            "{}: server sent a text frame that is not JSON ({e}): {:?}",
                            self.label,
                            t.as_str()
                        )
                    });
                    self.check_server_frame(&v);
                    if self.bg_heartbeats > 0 && v["op"] == op::HEARTBEAT_ACK && has_no_id(&v) {
                        self.bg_heartbeats -= 1;
                        continue;
                    }
                    return Some(Incoming::Frame(v));
                }
                Some(Ok(Message::Binary(b))) => panic!(
                    "{}: server sent a binary frame ({} bytes); PROTOCOL.md section 1 has JSON \
                     text frames only",
                    self.label,
                    b.len()
                ),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(f))) => {
                    // Complete the closing handshake as a real client library would: flush the
                    // close reply tungstenite has queued, then close our side of the TCP stream.
                    let _ = tokio::time::timeout(Duration::from_millis(500), self.ws.flush()).await;
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        self.ws.get_mut().shutdown(),
                    )
                    .await;
                    Closed::Frame {
                        code: f.as_ref().map(|f| u16::from(f.code)),
                        reason: f.map(|f| f.reason.as_str().to_owned()).unwrap_or_default(),
                    }
                }
                None
                | Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => Closed::Eof,
                Some(Err(e)) => Closed::Error(e.to_string()),
            };
            self.closed = Some(closed.clone());
            return Some(Incoming::Closed(closed));
        }
    }

    fn pending_text(&self) -> String {
        if self.pending.is_empty() {
            return "none".to_owned();
        }
        let mut s = String::new();
        for (i, f) in self.pending.iter().enumerate().take(12) {
            s.push_str(&format!("\n    {}: {}", i + 1, describe(f)));
        }
        if self.pending.len() > 12 {
            s.push_str(&format!("\n    ... and {} more", self.pending.len() - 12));
        }
        s
    }

    /// The next frame (stashed first), waiting at most [`TIMEOUT`].
    ///
    /// Every wait a `Client` method is given (and [`TIMEOUT`]) is multiplied by
    /// [`crate::time_scale`].
    pub async fn recv(&mut self, what: &str) -> Value {
        self.recv_where(what, |_| true).await
    }

    /// The first frame (stashed or new) for which `pred` holds, waiting at most [`TIMEOUT`];
    /// frames that do not match are stashed for later receives.
    pub async fn recv_where(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.recv_where_within(TIMEOUT, what, pred).await
    }

    /// Like [`Client::recv_where`] with a custom deadline.
    pub async fn recv_where_within(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        match self.try_recv_where(within, &pred).await {
            Ok(v) => v,
            Err(None) => panic!(
                "{}: timed out after {within:?} (x time scale) waiting for {what}; other frames received \
                 meanwhile: {}",
                self.label,
                self.pending_text()
            ),
            Err(Some(c)) => panic!(
                "{}: connection closed ({c}) while waiting for {what}; other frames received \
                 before: {}",
                self.label,
                self.pending_text()
            ),
        }
    }

    /// The first frame for which `pred` holds within `within`; `Err(None)` on timeout,
    /// `Err(Some(closed))` if the connection closed first. Non-matching frames are stashed.
    pub async fn try_recv_where(
        &mut self,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, Option<Closed>> {
        if let Some(pos) = self.pending.iter().position(&pred) {
            return Ok(self.pending.remove(pos).expect("position is in range"));
        }
        let deadline = Instant::now() + crate::scaled(within);
        loop {
            match self.read_one(deadline).await {
                None => return Err(None),
                Some(Incoming::Closed(c)) => return Err(Some(c)),
                Some(Incoming::Frame(f)) => {
                    if pred(&f) {
                        return Ok(f);
                    }
                    self.pending.push_back(f);
                }
            }
        }
    }

    /// Every frame (stashed, then new) that arrives within `within`. Stops early at a close.
    pub async fn drain(&mut self, within: Duration) -> Vec<Value> {
        let mut out: Vec<Value> = self.pending.drain(..).collect();
        let deadline = Instant::now() + crate::scaled(within);
        while let Some(Incoming::Frame(f)) = self.read_one(deadline).await {
            out.push(f);
        }
        out
    }

    /// Fails if any frame is stashed or arrives within `within`, or the connection closes.
    pub async fn assert_quiet(&mut self, within: Duration, context: &str) {
        if !self.pending.is_empty() {
            panic!(
                "{}: expected no further frames ({context}), but these arrived: {}",
                self.label,
                self.pending_text()
            );
        }
        let deadline = Instant::now() + crate::scaled(within);
        match self.read_one(deadline).await {
            None => {}
            Some(Incoming::Frame(f)) => panic!(
                "{}: expected no further frames ({context}), but got {}",
                self.label,
                describe(&f)
            ),
            Some(Incoming::Closed(c)) => panic!(
                "{}: expected the connection to stay quietly open ({context}), but it closed: {c}",
                self.label
            ),
        }
    }

    /// Waits up to `within` for the connection to end; returns how it ended and the frames
    /// received before. Fails if it is still open then.
    pub async fn expect_close(&mut self, within: Duration, what: &str) -> (Closed, Vec<Value>) {
        let mut frames: Vec<Value> = self.pending.drain(..).collect();
        let deadline = Instant::now() + crate::scaled(within);
        loop {
            match self.read_one(deadline).await {
                None => {
                    let list: Vec<String> = frames.iter().map(describe).collect();
                    panic!(
                        "{}: the connection was still open after {within:?}; expected it to be \
                         closed ({what}). Frames received meanwhile: {list:#?}",
                        self.label
                    )
                }
                Some(Incoming::Closed(c)) => return (c, frames),
                Some(Incoming::Frame(f)) => frames.push(f),
            }
        }
    }

    /// Waits for a close frame with exactly `code`.
    pub async fn expect_close_code(&mut self, code: u16, within: Duration, what: &str) {
        let (closed, frames) = self.expect_close(within, what).await;
        assert_eq!(
            closed.code(),
            Some(code),
            "{}: expected a close frame with code {code} ({what}), got {closed}; frames \
             before it: {:?}",
            self.label,
            frames.iter().map(describe).collect::<Vec<_>>()
        );
    }

    /// Whether the connection is known to be closed.
    pub fn closed(&self) -> Option<&Closed> {
        self.closed.as_ref()
    }

    // ----- requests and answers ------------------------------------------------------------

    /// Waits for the one answer echoing `id`.
    pub async fn answer_to(&mut self, id: u32, what: &str) -> Value {
        let what = format!("the answer echoing id {id} to {what}");
        self.recv_where(&what, |f| has_id(f, id)).await
    }

    /// Waits for one answer to each of `ids` (in any order, other frames stashed), at most
    /// `within` in all; returns them in the order of `ids`. Fails on a second answer to an id
    /// seen while waiting, and names the ids still unanswered on timeout.
    pub async fn answers_to(&mut self, ids: &[u32], within: Duration, what: &str) -> Vec<Value> {
        let mut got: std::collections::HashMap<u32, Value> = std::collections::HashMap::new();
        let wanted: std::collections::HashSet<u32> = ids.iter().copied().collect();
        let deadline = Instant::now() + crate::scaled(within);
        let mut keep = VecDeque::new();
        for f in std::mem::take(&mut self.pending) {
            match f["id"].as_u64().and_then(|i| u32::try_from(i).ok()) {
                Some(i) if wanted.contains(&i) => {
                    if let Some(prev) = got.insert(i, f.clone()) {
                        panic!(
                            "{}: two answers echo id {i} ({what}): {} and {}",
                            self.label,
                            describe(&prev),
                            describe(&f)
                        );
                    }
                }
                _ => keep.push_back(f),
            }
        }
        self.pending = keep;
        while got.len() < wanted.len() {
            match self.read_one(deadline).await {
                Some(Incoming::Frame(f)) => {
                    match f["id"].as_u64().and_then(|i| u32::try_from(i).ok()) {
                        Some(i) if wanted.contains(&i) => {
                            if let Some(prev) = got.insert(i, f.clone()) {
                                panic!(
                                    "{}: two answers echo id {i} ({what}): {} and {}",
                                    self.label,
                                    describe(&prev),
                                    describe(&f)
                                );
                            }
                        }
                        _ => self.pending.push_back(f),
                    }
                }
                end => {
                    let mut missing: Vec<u32> = wanted
                        .iter()
                        .filter(|i| !got.contains_key(i))
                        .copied()
                        .collect();
                    missing.sort_unstable();
                    let how = match end {
                        Some(Incoming::Closed(c)) => format!("the connection closed ({c})"),
                        _ => format!("{within:?} passed"),
                    };
                    panic!(
                        "{}: {how} with {} of {} answers ({what}); unanswered ids: {:?}{}",
                        self.label,
                        got.len(),
                        wanted.len(),
                        &missing[..missing.len().min(20)],
                        if missing.len() > 20 { " ..." } else { "" }
                    );
                }
            }
        }
        ids.iter()
            .map(|i| got.get(i).cloned().expect("every id was answered"))
            .collect()
    }

    /// Sends `{op, d, id}` and returns the frame echoing `id`.
    pub async fn request(&mut self, o: i64, d: Value) -> Value {
        let what = format!("{} {}", op_name(o), show(&d));
        let id = self.send_request(o, d).await;
        self.answer_to(id, &what).await
    }

    /// Sends `{op, d, id}` and expects ACK with `req_op == op`; returns the ACK's `d`.
    pub async fn ack(&mut self, o: i64, d: Value) -> Value {
        let sent = show(&d);
        let f = self.request(o, d).await;
        self.check_ack(&f, o, &sent)
    }

    /// Checks that `frame` is an ACK for `o`; returns its `d`.
    pub fn check_ack(&self, frame: &Value, o: i64, sent: &str) -> Value {
        assert!(
            frame["op"] == op::ACK && frame["d"]["req_op"] == o,
            "{}: expected ACK (req_op {o} {}) for {} {sent}, got {}",
            self.label,
            op_name(o),
            op_name(o),
            describe(frame)
        );
        frame["d"].clone()
    }

    /// Sends `{op, d, id}` and expects ERROR `code` with `req_op == op`; returns the ERROR's `d`.
    pub async fn error(&mut self, o: i64, d: Value, code: i64) -> Value {
        let sent = show(&d);
        let f = self.request(o, d).await;
        self.check_error(&f, Some(o), code, &format!("{} {sent}", op_name(o)))
    }

    /// Checks that `frame` is ERROR `code` (and `req_op`, when given); returns its `d`.
    pub fn check_error(&self, frame: &Value, req_op: Option<i64>, code: i64, sent: &str) -> Value {
        assert!(
            frame["op"] == op::ERROR && frame["d"]["code"] == code,
            "{}: expected ERROR {code} ({}) for {sent}, got {}",
            self.label,
            code_name(code),
            describe(frame)
        );
        if let Some(o) = req_op {
            assert_eq!(
                frame["d"]["req_op"],
                o,
                "{}: ERROR {code} for {sent} must carry req_op {o}: {}",
                self.label,
                describe(frame)
            );
        }
        frame["d"].clone()
    }

    /// Sends a raw text frame (which may carry no parseable id) and expects the next ERROR to
    /// be `code`. Returns the ERROR's `d`.
    pub async fn raw_error(&mut self, text: &str, code: i64) -> Value {
        let shown = if text.len() > 120 {
            let mut end = 120;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{:?}... ({} bytes)", &text[..end], text.len())
        } else {
            format!("{text:?}")
        };
        self.send_text(text).await;
        let f = self
            .recv_where(&format!("ERROR {code} for text frame {shown}"), |f| {
                f["op"] == op::ERROR
            })
            .await;
        self.check_error(&f, None, code, &format!("text frame {shown}"))
    }

    /// HEARTBEAT with an id; expects HEARTBEAT_ACK echoing it.
    pub async fn heartbeat(&mut self) {
        let f = self.request(op::HEARTBEAT, Value::Null).await;
        assert_eq!(
            f["op"],
            op::HEARTBEAT_ACK,
            "{}: expected HEARTBEAT_ACK, got {}",
            self.label,
            describe(&f)
        );
    }

    /// Proves the connection is alive and processing: a HEARTBEAT round trip.
    pub async fn assert_alive(&mut self, context: &str) {
        let id = self.send_request(op::HEARTBEAT, Value::Null).await;
        match self.try_recv_where(TIMEOUT, |f| has_id(f, id)).await {
            Ok(f) if f["op"] == op::HEARTBEAT_ACK => {}
            Ok(f) => panic!(
                "{}: connection should be alive ({context}), but HEARTBEAT got {}",
                self.label,
                describe(&f)
            ),
            Err(None) => panic!(
                "{}: connection should be alive ({context}), but HEARTBEAT got no answer \
                 within {TIMEOUT:?}",
                self.label
            ),
            Err(Some(c)) => panic!(
                "{}: connection should be alive ({context}), but it was closed: {c}",
                self.label
            ),
        }
    }

    /// IDENTIFY with `d`; returns the answer frame (READY or ERROR).
    pub async fn identify_raw(&mut self, d: Value) -> Value {
        self.request(op::IDENTIFY, d).await
    }

    /// IDENTIFY as `user_id` with a valid token; expects READY, returns its `d`.
    pub async fn identify(&mut self, daemon: &Daemon, user_id: &str) -> Value {
        let token = daemon.token(user_id);
        self.identify_token(user_id, &token).await
    }

    /// IDENTIFY as `user_id` with `token`; expects READY, returns its `d`.
    pub async fn identify_token(&mut self, user_id: &str, token: &str) -> Value {
        let f = self
            .identify_raw(json!({"user_id": user_id, "token": token}))
            .await;
        assert_eq!(
            f["op"],
            op::READY,
            "{}: IDENTIFY as {user_id:?} with token {token:?} should get READY, got {}",
            self.label,
            describe(&f)
        );
        assert_eq!(
            f["d"]["user_id"], user_id,
            "{}: READY must carry the identified user_id: {}",
            self.label, f
        );
        self.user_id = Some(user_id.to_owned());
        self.session_id = f["d"]["session_id"].as_str().map(str::to_owned);
        if self.label.starts_with("conn") || self.label.is_empty() {
            self.label = user_id.to_owned();
        }
        f["d"].clone()
    }

    // ----- channel and chat helpers --------------------------------------------------------

    /// CHANNEL_CREATE `channel_id` (no optional fields); returns the ACK's `d`.
    pub async fn create(&mut self, channel_id: &str) -> Value {
        self.create_with(channel_id, json!({})).await
    }

    /// CHANNEL_CREATE with extra fields (`name`, `freq`, `capacity`); returns the ACK's `d`.
    pub async fn create_with(&mut self, channel_id: &str, fields: Value) -> Value {
        let mut d = fields;
        d["channel_id"] = json!(channel_id);
        let a = self.ack(op::CHANNEL_CREATE, d).await;
        assert_eq!(
            a["channel_id"], channel_id,
            "{}: CHANNEL_CREATE's ACK carries channel_id: {a}",
            self.label
        );
        a
    }

    /// CHANNEL_JOIN with a fresh SSRC; returns the ACK's `d` (checked: channel_id, joiner in
    /// active_members, media host/port).
    pub async fn join(&mut self, channel_id: &str) -> Value {
        self.join_ssrc(channel_id, fresh_ssrc()).await
    }

    /// CHANNEL_JOIN with `ssrc`; returns the ACK's `d`.
    pub async fn join_ssrc(&mut self, channel_id: &str, ssrc: u32) -> Value {
        let a = self
            .ack(
                op::CHANNEL_JOIN,
                json!({"channel_id": channel_id, "ssrc": ssrc}),
            )
            .await;
        assert_eq!(
            a["channel_id"], channel_id,
            "{}: JOIN's ACK carries channel_id: {a}",
            self.label
        );
        let me = self.uid().to_owned();
        let members = sorted_ids(&a["active_members"]);
        assert!(
            members.contains(&me),
            "{}: JOIN's ACK active_members must include the joiner {me}: {a}",
            self.label
        );
        assert!(
            a["media"]["host"].is_string() && a["media"]["port"].is_u64(),
            "{}: JOIN's ACK carries media {{host, port}}: {a}",
            self.label
        );
        a
    }

    /// CHANNEL_LEAVE; returns the ACK's `d`.
    pub async fn leave(&mut self, channel_id: &str) -> Value {
        self.ack(op::CHANNEL_LEAVE, json!({"channel_id": channel_id}))
            .await
    }

    /// CHANNEL_UPDATE with `fields`; returns the ACK's `d`.
    pub async fn update(&mut self, channel_id: &str, fields: Value) -> Value {
        let mut d = fields;
        d["channel_id"] = json!(channel_id);
        self.ack(op::CHANNEL_UPDATE, d).await
    }

    /// CHANNEL_DELETE; returns the ACK's `d`.
    pub async fn delete(&mut self, channel_id: &str) -> Value {
        self.ack(op::CHANNEL_DELETE, json!({"channel_id": channel_id}))
            .await
    }

    /// CHANNEL_LIST; returns the ACK's `d` (with `channels`).
    pub async fn list_full(&mut self) -> Value {
        let a = self.ack(op::CHANNEL_LIST, Value::Null).await;
        assert!(
            a["channels"].is_array(),
            "{}: CHANNEL_LIST's ACK carries a `channels` array: {}",
            self.label,
            show(&a)
        );
        a
    }

    /// CHANNEL_LIST's entries (the list must not be truncated).
    pub async fn list(&mut self) -> Vec<Value> {
        let a = self.list_full().await;
        assert!(
            a.get("truncated").is_none_or(|t| t == false || t.is_null()),
            "{}: a short CHANNEL_LIST must not say truncated: {}",
            self.label,
            show(&a)
        );
        a["channels"].as_array().cloned().unwrap_or_default()
    }

    /// CHANNEL_INFO; returns the ACK's `d`.
    pub async fn info(&mut self, channel_id: &str) -> Value {
        let a = self
            .ack(op::CHANNEL_INFO, json!({"channel_id": channel_id}))
            .await;
        assert_eq!(
            a["channel_id"], channel_id,
            "{}: CHANNEL_INFO's ACK carries channel_id: {a}",
            self.label
        );
        a
    }

    /// CHANNEL_INFO's sorted `members`.
    pub async fn members(&mut self, channel_id: &str) -> Vec<String> {
        let a = self.info(channel_id).await;
        sorted_ids(&a["members"])
    }

    /// MESSAGE_CREATE without id; waits for this sender's own MESSAGE_EVENT with that content
    /// and returns its `d`.
    pub async fn say(&mut self, channel_id: &str, content: &str) -> Value {
        self.send_op(
            op::MESSAGE_CREATE,
            json!({"channel_id": channel_id, "content": content}),
        )
        .await;
        let me = self.uid().to_owned();
        self.expect_message(channel_id, &me, content).await
    }

    /// Waits for a MESSAGE_EVENT in `channel_id` from `from` with `content`; returns its `d`.
    pub async fn expect_message(&mut self, channel_id: &str, from: &str, content: &str) -> Value {
        let what = format!("MESSAGE_EVENT in {channel_id} from {from} with {content:?}");
        let f = self
            .recv_where(&what, |f| {
                f["op"] == op::MESSAGE_EVENT
                    && f["d"]["channel_id"] == channel_id
                    && f["d"]["user_id"] == from
                    && f["d"]["content"] == content
            })
            .await;
        f["d"].clone()
    }

    /// Waits for CHANNEL_EVENT `event` in `channel_id`; returns its `d`.
    pub async fn expect_channel_event(&mut self, event: &str, channel_id: &str) -> Value {
        let what = format!("CHANNEL_EVENT {event} for {channel_id}");
        let f = self
            .recv_where(&what, |f| {
                f["op"] == op::CHANNEL_EVENT
                    && f["d"]["event"] == event
                    && f["d"]["channel_id"] == channel_id
            })
            .await;
        f["d"].clone()
    }

    /// Waits for CHANNEL_EVENT `event` (join/leave) in `channel_id` about `user_id`.
    pub async fn expect_member_event(&mut self, event: &str, channel_id: &str, user_id: &str) {
        let what = format!("CHANNEL_EVENT {event} of {user_id} for {channel_id}");
        self.recv_where_within(TIMEOUT, &what, |f| {
            f["op"] == op::CHANNEL_EVENT
                && f["d"]["event"] == event
                && f["d"]["channel_id"] == channel_id
                && f["d"]["user_id"] == user_id
        })
        .await;
    }

    // ----- ending --------------------------------------------------------------------------

    /// Closes politely (close frame 1000) and waits briefly for the server's close.
    pub async fn close(mut self) {
        let _ = self.try_send(Message::Close(None)).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(Incoming::Frame(_)) = self.read_one(deadline).await {}
    }

    /// Sends a close frame and drops the connection at once, without waiting for the
    /// server's close frame.
    pub async fn close_and_drop(mut self) {
        let _ = self.try_send(Message::Close(None)).await;
    }

    /// Drops the TCP connection without a WebSocket close frame.
    pub fn drop_abruptly(self) {
        drop(self);
    }

    /// Goes silent without a FIN: a duplicate of the socket's descriptor is leaked, so
    /// dropping the client neither closes the TCP connection nor sends anything. The server
    /// sees a half-open peer (a dead link, a frozen host) that it can only reap by silence.
    pub fn vanish(self) {
        use std::os::fd::AsRawFd;
        let fd = self.ws.get_ref().as_raw_fd();
        // SAFETY: dup(2) of a descriptor this client owns; the duplicate is leaked on purpose
        // and never used, so no other code can observe it.
        let leaked = unsafe { libc::dup(fd) };
        assert!(
            leaked >= 0,
            "{}: dup: {}",
            self.label,
            std::io::Error::last_os_error()
        );
        drop(self);
    }
}
