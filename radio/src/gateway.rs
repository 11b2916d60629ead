//! The gateway connection (PROTOCOL.md section 1): one WebSocket of JSON text frames.
//!
//! A background task owns the socket. It answers nothing by itself but keeps the session
//! alive with HEARTBEATs at half HELLO's interval, routes answers to the request that
//! carried their `id`, and queues every other frame as an event, numbered in arrival order.
//! Requests return the event number current when their answer arrived, so a caller can wait
//! for the events its request caused and ignore older ones (answers and events travel on the
//! same ordered stream).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::error::Error;

/// How long a request waits for its answer, and the default for events.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Events kept for the caller; beyond this the oldest is dropped.
const MAX_EVENTS: usize = 4096;

/// Op codes of PROTOCOL.md section 1: the core's own table.
pub use livechat_core::protocol::op;

/// A frame's op code (`None` when absent or not an op).
pub fn op_of(frame: &Value) -> Option<u8> {
    frame["op"].as_u64().and_then(|o| u8::try_from(o).ok())
}

/// The answer to a request, and the number of the next event at the time it arrived.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The whole frame.
    pub frame: Value,
    /// Events numbered from here on arrived after the answer.
    pub seq: u64,
}

/// A gateway connection. Clones share it; it closes when the last clone is dropped or on
/// [`Gateway::close`].
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Message>,
    next_id: Arc<AtomicU32>,
    hello: Arc<Value>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("closed", &self.closed())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Default)]
struct State {
    pending: HashMap<u32, oneshot::Sender<Answer>>,
    events: VecDeque<(u64, Value)>,
    next_seq: u64,
    closed: Option<String>,
    swallow_pongs: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn on_text(&self, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let o = op_of(&v);
        let id = v
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok());
        let mut st = self.lock();
        if o == Some(op::HEARTBEAT_ACK) && id.is_none() {
            return;
        }
        if o == Some(op::FLOOR_PONG) && id.is_none() && st.swallow_pongs > 0 {
            st.swallow_pongs -= 1;
            return;
        }
        if let Some(id) = id
            && let Some(tx) = st.pending.remove(&id)
        {
            let seq = st.next_seq;
            let _ = tx.send(Answer { frame: v, seq });
            return;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.events.push_back((seq, v));
        if st.events.len() > MAX_EVENTS {
            st.events.pop_front();
        }
        drop(st);
        self.notify.notify_waiters();
    }

    fn set_closed(&self, why: String) {
        let mut st = self.lock();
        st.closed.get_or_insert(why);
        // Dropping the senders wakes every request still waiting.
        st.pending.clear();
        drop(st);
        self.notify.notify_waiters();
    }
}

/// The parts of a `ws://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// Host name or IP (without brackets).
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and query, `/` when absent.
    pub path: String,
}

impl WsUrl {
    /// Parses `ws://host[:port][/path]`. `wss://` is refused with an explanation.
    pub fn parse(url: &str) -> Result<WsUrl, Error> {
        let rest = if let Some(r) = url.strip_prefix("ws://") {
            r
        } else if url.starts_with("wss://") {
            return Err(Error::Usage(format!(
                "{url}: wss:// is not supported by this client yet; use ws:// on loopback or \
                 a LAN where the daemon allows it"
            )));
        } else {
            return Err(Error::Usage(format!(
                "{url}: expected a URL like ws://127.0.0.1:8080/gateway"
            )));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let bad = || Error::Usage(format!("{url}: bad host or port"));
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(bad)?;
            let host = &v6[..end];
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(bad());
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad())?,
            None => 80,
        };
        Ok(WsUrl {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// Whether the host is a loopback name or address.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The URL again, for the handshake.
    pub fn to_url(&self) -> String {
        if self.host.contains(':') {
            format!("ws://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            format!("ws://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

impl Gateway {
    /// Connects to `url` (`ws://host:port/gateway`) and receives HELLO.
    pub async fn connect(url: &str) -> Result<Gateway, Error> {
        let u = WsUrl::parse(url)?;
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((u.host.as_str(), u.port)))
            .await
            .map_err(|_| Error::Timeout(format!("a TCP connection to {}:{}", u.host, u.port)))?
            .map_err(|e| Error::io(format!("connecting to {}:{}", u.host, u.port), e))?;
        let _ = tcp.set_nodelay(true);
        let (mut ws, _) =
            tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(u.to_url(), tcp))
                .await
                .map_err(|_| Error::Timeout(format!("the WebSocket handshake with {url}")))?
                .map_err(|e| Error::WebSocket(format!("handshake with {url}: {e}")))?;
        let hello = first_frame(&mut ws).await?;
        if hello["op"] != op::HELLO {
            return Err(Error::Protocol(format!(
                "the first frame must be HELLO, got {hello}"
            )));
        }
        let interval = hello["d"]["heartbeat_interval"]
            .as_u64()
            .filter(|&i| i > 0)
            .ok_or_else(|| {
                Error::Protocol(format!("HELLO without a heartbeat_interval: {hello}"))
            })?;
        let shared = Arc::new(Shared::default());
        let (out, rx) = mpsc::unbounded_channel();
        let beat = Duration::from_millis((interval / 2).max(50));
        tokio::spawn(run(ws, rx, shared.clone(), beat));
        Ok(Gateway {
            shared,
            out,
            next_id: Arc::new(AtomicU32::new(1)),
            hello: Arc::new(hello["d"].clone()),
        })
    }

    /// HELLO's `d`.
    pub fn hello(&self) -> &Value {
        &self.hello
    }

    /// Why the connection closed, once it has.
    pub fn closed(&self) -> Option<String> {
        self.shared.lock().closed.clone()
    }

    fn push(&self, msg: Message) -> Result<(), Error> {
        if let Some(why) = self.closed() {
            return Err(Error::Closed(why));
        }
        self.out
            .send(msg)
            .map_err(|_| Error::Closed("the connection task ended".to_owned()))
    }

    /// Sends `{op, d}` without an id.
    pub fn send(&self, o: u8, d: Value) -> Result<(), Error> {
        self.push(Message::text(json!({"op": o, "d": d}).to_string()))
    }

    /// Sends `{op, d, id}` and waits for the answer echoing `id` (ACK, ERROR, READY or
    /// HEARTBEAT_ACK), at most [`TIMEOUT`].
    pub async fn request(&self, o: u8, d: Value) -> Result<Answer, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.lock().pending.insert(id, tx);
        if let Err(e) = self.push(Message::text(
            json!({"op": o, "d": d, "id": id}).to_string(),
        )) {
            self.shared.lock().pending.remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(TIMEOUT, rx).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(_)) => Err(Error::Closed(
                self.closed().unwrap_or_else(|| "unknown".to_owned()),
            )),
            Err(_) => {
                self.shared.lock().pending.remove(&id);
                Err(Error::Timeout(format!("the answer to op {o}")))
            }
        }
    }

    /// Sends a request and expects ACK; returns the ACK's `d` and the event number at its
    /// arrival. ERROR is [`Error::Server`].
    pub async fn ack(&self, o: u8, d: Value) -> Result<(Value, u64), Error> {
        let a = self.request(o, d).await?;
        check_ack(&a.frame, o)?;
        Ok((a.frame["d"].clone(), a.seq))
    }

    /// IDENTIFY; returns READY's `d`.
    pub async fn identify(
        &self,
        user_id: &str,
        token: &str,
        priority: Option<u8>,
    ) -> Result<Value, Error> {
        let mut d = json!({"user_id": user_id, "token": token});
        if let Some(p) = priority {
            d["priority"] = json!(p);
        }
        let a = self.request(op::IDENTIFY, d).await?;
        if a.frame["op"] == op::READY {
            return Ok(a.frame["d"].clone());
        }
        check_ack(&a.frame, op::IDENTIFY)?;
        Err(Error::Protocol(format!(
            "IDENTIFY answered with {}",
            a.frame
        )))
    }

    /// A HEARTBEAT round trip.
    pub async fn heartbeat(&self) -> Result<(), Error> {
        let a = self.request(op::HEARTBEAT, Value::Null).await?;
        if a.frame["op"] == op::HEARTBEAT_ACK {
            Ok(())
        } else {
            Err(Error::Protocol(format!(
                "HEARTBEAT answered with {}",
                a.frame
            )))
        }
    }

    /// The number the next event will get.
    pub fn event_seq(&self) -> u64 {
        self.shared.lock().next_seq
    }

    /// Removes and returns the first queued event numbered `after` or later for which `pred`
    /// holds, waiting at most `within` for it.
    pub async fn wait_event(
        &self,
        after: u64,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, Error> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.take_event(after, &pred) {
                return Ok(v);
            }
            {
                let st = self.shared.lock();
                if let Some(why) = &st.closed {
                    return Err(Error::Closed(format!("{why} (while waiting for {what})")));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout(what.to_owned()));
            }
        }
    }

    /// Removes and returns the first queued event numbered `after` or later for which `pred`
    /// holds, without waiting.
    pub fn take_event(&self, after: u64, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let mut st = self.shared.lock();
        let i = st
            .events
            .iter()
            .position(|(seq, v)| *seq >= after && pred(v))?;
        st.events.remove(i).map(|(_, v)| v)
    }

    /// Removes and returns every queued event.
    pub fn take_events(&self) -> Vec<Value> {
        self.shared
            .lock()
            .events
            .drain(..)
            .map(|(_, v)| v)
            .collect()
    }

    /// The next FLOOR_PONG without an id is consumed by the connection, not queued.
    pub(crate) fn swallow_pong(&self) {
        self.shared.lock().swallow_pongs += 1;
    }

    /// Closes the connection (close frame 1000).
    pub fn close(&self) {
        let _ = self.out.send(Message::Close(None));
    }
}

/// `Ok` if `frame` is ACK for `o`; ERROR becomes [`Error::Server`].
fn check_ack(frame: &Value, o: u8) -> Result<(), Error> {
    let d = &frame["d"];
    if frame["op"] == op::ERROR {
        return Err(Error::Server {
            req_op: d["req_op"].as_i64().unwrap_or(i64::from(o)),
            code: d["code"].as_i64().unwrap_or(0),
            reason: d["reason"].as_str().unwrap_or("").to_owned(),
        });
    }
    if frame["op"] != op::ACK || d["req_op"] != o {
        return Err(Error::Protocol(format!(
            "expected ACK for op {o}, got {frame}"
        )));
    }
    Ok(())
}

async fn first_frame(ws: &mut WebSocketStream<TcpStream>) -> Result<Value, Error> {
    loop {
        let m = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .map_err(|_| Error::Timeout("HELLO".to_owned()))?;
        match m {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| Error::Protocol(format!("HELLO is not JSON: {e}")));
            }
            Some(Ok(Message::Close(f))) => {
                return Err(Error::Closed(format!("before HELLO: {f:?}")));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Error::WebSocket(e.to_string())),
            None => return Err(Error::Closed("before HELLO".to_owned())),
        }
    }
}

/// The connection task: reads frames, writes queued ones, heartbeats.
async fn run(
    mut ws: WebSocketStream<TcpStream>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    beat: Duration,
) {
    let mut tick = tokio::time::interval_at(Instant::now() + beat, beat);
    let heartbeat = json!({"op": op::HEARTBEAT, "d": null}).to_string();
    let why = loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => shared.on_text(t.as_str()),
                Some(Ok(Message::Close(f))) => {
                    break match f {
                        Some(f) => format!("close frame {} {:?}", u16::from(f.code), f.reason.as_str()),
                        None => "close frame without a code".to_owned(),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("read error: {e}"),
                None => break "end of stream".to_owned(),
            },
            out = rx.recv() => match out {
                Some(msg) => {
                    if let Err(e) = ws.send(msg).await {
                        break format!("write error: {e}");
                    }
                }
                // Every handle is gone.
                None => break "closed by the client".to_owned(),
            },
            _ = tick.tick() => {
                if let Err(e) = ws.send(Message::text(heartbeat.clone())).await {
                    break format!("write error: {e}");
                }
            }
        }
    };
    shared.set_closed(why);
    // Finish the closing handshake politely (flushes tungstenite's queued close reply).
    let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = WsUrl::parse("ws://127.0.0.1:8080/gateway").expect("ok");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/gateway")
        );
        assert!(u.is_loopback());
        let u = WsUrl::parse("ws://[::1]:9/gateway").expect("ok");
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert!(u.is_loopback());
        assert_eq!(u.to_url(), "ws://[::1]:9/gateway");
        let u = WsUrl::parse("ws://radio.lan").expect("ok");
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert!(!u.is_loopback());
        assert!(WsUrl::parse("localhost:8080").is_err());
        assert!(WsUrl::parse("wss://x/gateway").is_err());
        assert!(WsUrl::parse("ws://:80/").is_err());
        assert!(WsUrl::parse("ws://h:99999/").is_err());
        assert!(WsUrl::parse("ws://[::1/").is_err());
    }
}
