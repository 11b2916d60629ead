//! The HTTP side: accepting connections, upgrading `/gateway` to WebSocket, and one task
//! per WebSocket connection.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use std::convert::Infallible;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited, StreamBody};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue,
    SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use livechat_core::config::MAX_INBOUND_FRAME;
use livechat_core::gateway::{ConnectionsFull, PeerInfo, address_key};
use log::{debug, info, warn};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes, handshake::derive_accept_key};

use super::admin::{
    ADMIN_BODY_TIMEOUT, ADMIN_PREFIX, AdminConf, AdminReq, Answer, CORE_ANSWER_TIMEOUT,
    MAX_ADMIN_BODY, channel_body,
};
use super::inbound::{Guard, Oversized, is_fragmented_too_large};
use super::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use super::ops::TraceMsg;
use super::trace_stream::{self, Filter};
use super::web;
use super::{
    ACCEPT_BACKOFF, ACCEPT_LOG_INTERVAL, CLOSE_BAD_DATA, CLOSE_FULL, CLOSE_GOING_AWAY, CLOSE_GRACE,
    CLOSE_PROTOCOL, CLOSE_SLOW, CLOSE_TOO_BIG, Cmd, DOOR_REFUSED, DOOR_SHED, HEADER_READ_TIMEOUT,
    InFrame, MAX_PENDING, MAX_PENDING_PER_IP, MAX_REQUEST_HEAD, OUT_FRAGMENT, OUTBOUND_QUEUE,
    TCP_SOCKET_BUF, WRITE_TIMEOUT, WS_MAX_WRITE_BUFFER, WS_READ_BUFFER, close_frame,
};

/// What the page's side of the listener needs (PROTOCOL.md section 6, `GET /`).
pub(super) struct WebConfig {
    /// LIVECHAT_WEB: serve the page at `/`.
    pub(super) on: bool,
    /// LIVECHAT_ALLOWED_ORIGINS: browser origins allowed to upgrade besides the page's own.
    pub(super) allowed_origins: Vec<web::Origin>,
}

#[derive(Default)]
pub(super) struct PerIp {
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// Holds one connection's place in [`PerIp`] until dropped.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// Takes a place for `ip` if fewer than `cap` are open.
    fn acquire(table: &Arc<PerIp>, ip: IpAddr, cap: u32) -> Option<IpSlot> {
        let mut counts = table.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Connections accepted and not yet handed to the core: in their TLS handshake, sending
/// their request head, or being upgraded. Bounded per IP and in total, so descriptors and
/// buffers held before anyone has said who they are stay within the budget of
/// docs/reliability.md ("Front door").
#[derive(Default)]
pub(super) struct Door {
    inner: Mutex<DoorInner>,
}

#[derive(Default)]
struct DoorInner {
    per_ip: HashMap<IpAddr, u32>,
    /// Connections holding a place, shed or not.
    total: usize,
    next_id: u64,
    /// Idle connections that may be shed, oldest first (ids grow with accept order), with
    /// their address. Dropping a sender tells its connection task to end.
    sheddable: BTreeMap<u64, (IpAddr, oneshot::Sender<()>)>,
}

/// One connection's place at the [`Door`], released when dropped.
struct DoorSlot {
    door: Arc<Door>,
    id: u64,
    ip: IpAddr,
    /// Kept once the connection is upgrading, so that it is no longer sheddable but its
    /// task is not told to end either.
    keep: Option<oneshot::Sender<()>>,
}

/// Why the door refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    PerIp,
    /// [`MAX_PENDING`] connections, none idle.
    Full,
}

impl Door {
    fn lock(&self) -> std::sync::MutexGuard<'_, DoorInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for a connection from `ip`. Beyond [`MAX_PENDING_PER_IP`] the new
    /// connection is refused; beyond [`MAX_PENDING`] in total the oldest idle one is shed
    /// instead, so that a flood from many addresses cannot keep a real client out (its
    /// connection is the newest, and the newest is the last to go), and with none idle
    /// the new one is refused.
    fn admit(door: &Arc<Door>, ip: IpAddr) -> Result<(DoorSlot, oneshot::Receiver<()>), Refused> {
        let ip = address_key(ip);
        let mut d = door.lock();
        let n = d.per_ip.get(&ip).copied().unwrap_or(0);
        let refused = if n >= MAX_PENDING_PER_IP {
            Some(Refused::PerIp)
        } else if d.total >= MAX_PENDING && !d.shed_oldest() {
            Some(Refused::Full)
        } else {
            None
        };
        if let Some(why) = refused {
            DOOR_REFUSED.fetch_add(1, Ordering::Relaxed);
            return Err(why);
        }
        d.per_ip.insert(ip, n + 1);
        d.total += 1;
        d.next_id += 1;
        let id = d.next_id;
        let (tx, rx) = oneshot::channel();
        d.sheddable.insert(id, (ip, tx));
        Ok((
            DoorSlot {
                door: door.clone(),
                id,
                ip,
                keep: None,
            },
            rx,
        ))
    }

    /// Tells an idle connection to end ([`DoorInner::shed_oldest`]); whether there was one.
    fn shed_oldest(&self) -> bool {
        self.lock().shed_oldest()
    }

    fn total(&self) -> usize {
        self.lock().total
    }
}

impl DoorInner {
    /// Tells the oldest idle connection of the address holding the most places to end, so
    /// that a flood from a few addresses sheds its own connections first.
    fn shed_oldest(&mut self) -> bool {
        let victim = self
            .sheddable
            .iter()
            .max_by_key(|(id, (ip, _))| {
                let held = self.per_ip.get(ip).copied().unwrap_or(0);
                (held, std::cmp::Reverse(**id))
            })
            .map(|(id, _)| *id);
        let shed = victim.and_then(|id| self.sheddable.remove(&id)).is_some();
        if shed {
            DOOR_SHED.fetch_add(1, Ordering::Relaxed);
        }
        shed
    }
}

impl DoorSlot {
    /// The connection is being upgraded: it is no longer idle, so no longer sheddable.
    fn upgrading(&mut self) {
        self.keep = self
            .door
            .lock()
            .sheddable
            .remove(&self.id)
            .map(|(_, tx)| tx);
    }
}

impl Drop for DoorSlot {
    fn drop(&mut self) {
        let mut d = self.door.lock();
        d.sheddable.remove(&self.id);
        d.total = d.total.saturating_sub(1);
        if let Some(n) = d.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                d.per_ip.remove(&self.ip);
            }
        }
    }
}

/// What every connection task shares.
struct Front {
    core: mpsc::Sender<Cmd>,
    per_ip: Arc<PerIp>,
    cap: u32,
    live: Arc<AtomicUsize>,
    door: Arc<Door>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ops: OpsFront,
    web: WebConfig,
}

/// What the operators' endpoints need on the HTTP side.
pub(super) struct OpsFront {
    pub(super) conf: AdminConf,
    pub(super) trace: broadcast::Sender<Arc<TraceMsg>>,
}

/// A descriptor held back for the moment the process runs out of them: closing it lets
/// the accept loop take one connection off the backlog and close it, instead of leaving
/// every client in the kernel queue until it times out.
struct Reserve(Option<std::fs::File>);

impl Reserve {
    fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }

    fn release(&mut self) -> bool {
        self.0.take().is_some()
    }
}

/// Descriptor exhaustion, logged at most once per [`ACCEPT_LOG_INTERVAL`] with a count.
#[derive(Default)]
struct Exhaustion {
    last_log: Option<tokio::time::Instant>,
    since: u64,
}

impl Exhaustion {
    fn note(&mut self, e: &std::io::Error, pending: usize) {
        self.since += 1;
        let now = tokio::time::Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= ACCEPT_LOG_INTERVAL)
        {
            warn!(
                "accept failed: {e} ({} times since the last report; {pending} connections before their upgrade); shedding the oldest idle one",
                self.since
            );
            self.last_log = Some(now);
            self.since = 0;
        }
    }
}

fn is_descriptor_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts connections until aborted.
#[allow(clippy::too_many_arguments)]
pub(super) async fn accept_loop(
    listener: TcpListener,
    core: mpsc::Sender<Cmd>,
    per_ip: Arc<PerIp>,
    cap: u32,
    live: Arc<AtomicUsize>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ops: OpsFront,
    web: WebConfig,
) {
    let front = Arc::new(Front {
        core,
        per_ip,
        cap,
        live,
        door: Arc::new(Door::default()),
        tls,
        ops,
        web,
    });
    let mut reserve = Reserve(None);
    let mut exhaustion = Exhaustion::default();
    loop {
        reserve.refill();
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) if is_descriptor_exhaustion(&e) => {
                exhaustion.note(&e, front.door.total());
                if front.door.shed_oldest() {
                    // Let the shed connection's task run and give its descriptor back.
                    tokio::task::yield_now().await;
                    continue;
                }
                // Nothing to shed: take one client off the backlog and close it at once,
                // then wait for descriptors to come back.
                if reserve.release()
                    && let Ok((s, _)) = listener.accept().await
                {
                    drop(s);
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let (slot, shed) = match Door::admit(&front.door, peer.ip()) {
            Ok(x) => x,
            Err(why) => {
                match why {
                    Refused::PerIp => debug!(
                        "{}: {MAX_PENDING_PER_IP} connections before their upgrade already; closing",
                        peer.ip()
                    ),
                    Refused::Full => debug!(
                        "{}: {MAX_PENDING} connections before their upgrade, none idle; closing",
                        peer.ip()
                    ),
                }
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        super::udp::set_buffers(&tcp, TCP_SOCKET_BUF);
        tokio::spawn(serve(tcp, peer, slot, shed, front.clone()));
    }
}

/// One HTTP connection until it is upgraded, closed, timed out or shed.
async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: DoorSlot,
    shed: oneshot::Receiver<()>,
    front: Arc<Front>,
) {
    let tls = front.tls.is_some();
    let fd = tcp.as_raw_fd();
    let slot = Arc::new(Mutex::new(Some(slot)));
    let svc_front = front.clone();
    let service = hyper::service::service_fn(move |req| {
        let front = svc_front.clone();
        let slot = slot.clone();
        async move { Ok::<_, Infallible>(dispatch(req, peer, fd, tls, &front, &slot).await) }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD);
    let work = async {
        let res = match &front.tls {
            Some(a) => match crate::tls::handshake(a, tcp, peer).await {
                Some(s) => {
                    http.serve_connection(TokioIo::new(s), service)
                        .with_upgrades()
                        .await
                }
                None => return,
            },
            None => {
                http.serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await
            }
        };
        if let Err(e) = res {
            debug!("http connection from {peer}: {e}");
        }
    };
    tokio::select! {
        _ = shed => debug!("{peer}: shed before its upgrade"),
        () = work => {}
    }
}

fn plain(status: StatusCode) -> Response<Empty<Bytes>> {
    let mut r = Response::new(Empty::new());
    *r.status_mut() = status;
    r
}

/// Whether a comma-separated header (RFC 9110 section 5.6.1) lists `token`, in any of its
/// occurrences, ignoring case.
fn lists_token(req: &Request<Incoming>, name: HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Checks an opening handshake as RFC 6455 section 4.2.1 lists it; the key on success,
/// else the answer to give.
fn check_upgrade(req: &Request<Incoming>) -> Result<HeaderValue, Response<Empty<Bytes>>> {
    // PROTOCOL.md section 6: a wrong method is 405.
    if req.method() != Method::GET {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return Err(r);
    }
    // "An HTTP/1.1 or higher GET request".
    if req.version() != Version::HTTP_11 {
        return Err(plain(StatusCode::BAD_REQUEST));
    }
    if !lists_token(req, UPGRADE, "websocket") || !lists_token(req, CONNECTION, "upgrade") {
        return Err(plain(StatusCode::BAD_REQUEST));
    }
    let mut keys = req.headers().get_all(SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) => k,
        _ => return Err(plain(StatusCode::BAD_REQUEST)),
    };
    // "a base64-encoded value that, when decoded, is 16 bytes in length".
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if decoded.map_or(true, |k| k.len() != 16) {
        return Err(plain(StatusCode::BAD_REQUEST));
    }
    // Section 4.2.2: a version the server does not speak is 426 with the ones it does.
    let version_13 = req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_13 {
        let mut r = plain(StatusCode::UPGRADE_REQUIRED);
        r.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(r);
    }
    Ok(key.clone())
}

/// Every answer's body: empty, whole, or the trace stream.
type Body = UnsyncBoxBody<Bytes, Infallible>;

fn whole(status: u16, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != 204 {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    r
}

fn json_answer(a: Answer) -> Response<Body> {
    whole(a.status, "application/json", a.body)
}

fn json_error(status: u16, reason: &str) -> Response<Body> {
    json_answer(Answer::error(status, reason))
}

/// 405 with the methods the path takes (RFC 9110 section 15.5.6).
fn not_allowed(allow: &'static str, json: bool) -> Response<Body> {
    let mut r = if json {
        json_error(405, "method not allowed")
    } else {
        whole(
            405,
            "text/plain; charset=utf-8",
            "method not allowed\n".into(),
        )
    };
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// Asks the core task; `None` when it does not answer in time.
async fn ask_core(front: &Front, req: AdminReq) -> Option<Answer> {
    let (reply, rx) = oneshot::channel();
    let ask = async {
        front.core.send(Cmd::Admin { req, reply }).await.ok()?;
        rx.await.ok()
    };
    timeout(CORE_ANSWER_TIMEOUT, ask).await.ok().flatten()
}

/// Reads a request body of at most [`MAX_ADMIN_BODY`] bytes within [`ADMIN_BODY_TIMEOUT`].
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    let limited = Limited::new(req.into_body(), MAX_ADMIN_BODY);
    match timeout(ADMIN_BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(json_error(413, "body too large")),
        Ok(Err(_)) => Err(json_error(400, "cannot read the body")),
        Err(_) => Err(json_error(408, "body not sent in time")),
    }
}

/// HTTP routing: the page's files (web.rs) when LIVECHAT_WEB is on; `/gateway` upgrades to
/// WebSocket; `/healthz`, `/metrics` and `/admin/...` are the operators' (PROTOCOL.md
/// section 6); anything else is 404.
async fn dispatch(
    req: Request<Incoming>,
    peer: SocketAddr,
    fd: RawFd,
    tls: bool,
    front: &Arc<Front>,
    slot: &Mutex<Option<DoorSlot>>,
) -> Response<Body> {
    if front.web.on
        && let Some(r) = web::respond(req.method(), req.uri().path(), req.headers())
    {
        return r.map(|b| b.boxed_unsync());
    }
    let path = req.uri().path();
    if path == "/gateway" {
        return route(req, peer, fd, tls, front, slot).map(|b| b.boxed_unsync());
    }
    if path == "/healthz" {
        if req.method() != Method::GET {
            return not_allowed("GET", false);
        }
        let text = "text/plain; charset=utf-8";
        return match ask_core(front, AdminReq::Health).await {
            Some(a) => whole(a.status, text, a.body),
            None => whole(503, text, "core loop not answering\n".into()),
        };
    }
    let admin = path == "/admin" || path.starts_with("/admin/");
    if path != "/metrics" && !admin {
        return plain(StatusCode::NOT_FOUND).map(|b| b.boxed_unsync());
    }
    let conf = &front.ops.conf;
    if !conf.take(peer.ip()) {
        return json_error(429, "rate limited");
    }
    let auth = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if !conf.authorized(auth, peer.ip()) {
        // The header itself is never logged: it may hold a guess close to the token.
        debug!("{peer}: unauthorized request for {path}");
        return json_error(401, "unauthorized");
    }
    if path == "/metrics" {
        if req.method() != Method::GET {
            return not_allowed("GET", false);
        }
        return match ask_core(front, AdminReq::Metrics).await {
            Some(a) => whole(a.status, METRICS_CONTENT_TYPE, a.body),
            None => json_error(503, "core loop not answering"),
        };
    }
    admin_route(req, front, slot).await
}

/// `/admin/v1/...` once allowed: the rows of PROTOCOL.md section 6.
async fn admin_route(
    req: Request<Incoming>,
    front: &Arc<Front>,
    slot: &Mutex<Option<DoorSlot>>,
) -> Response<Body> {
    let Some(rest) = req.uri().path().strip_prefix(ADMIN_PREFIX) else {
        return json_error(404, "not found");
    };
    let segments: Vec<String> = rest.split('/').skip(1).map(str::to_owned).collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let (is_get, is_post) = (method == Method::GET, method == Method::POST);
    let max_members = front.ops.conf.max_members;
    let ask = match segs.as_slice() {
        ["status"] if is_get => AdminReq::Status,
        ["users"] if is_get => AdminReq::Users,
        ["peers"] if is_get => AdminReq::Peers,
        ["cameras"] if is_get => AdminReq::Cameras,
        ["trace"] if is_get => return trace(req, front, slot),
        ["status"] | ["peers"] | ["cameras"] | ["trace"] => return not_allowed("GET", true),
        ["users"] => return not_allowed("GET", true),
        ["channels"] if is_get => AdminReq::Channels,
        ["channels"] if is_post => {
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match channel_body(true, None, &body, max_members) {
                Ok(b) => AdminReq::Create(b),
                Err(a) => return json_answer(a),
            }
        }
        ["channels"] => return not_allowed("GET, POST", true),
        ["channels", id] if is_get => AdminReq::Channel((*id).to_owned()),
        ["channels", id] if method == Method::PATCH => {
            let id = (*id).to_owned();
            let body = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match channel_body(false, Some(&id), &body, max_members) {
                Ok(b) if b.channel_id.as_str() != id => {
                    return json_error(400, "channel_id does not match the path");
                }
                Ok(b) => AdminReq::Update(id, b),
                Err(a) => return json_answer(a),
            }
        }
        ["channels", id] if method == Method::DELETE => AdminReq::Delete((*id).to_owned()),
        ["channels", _] => return not_allowed("GET, PATCH, DELETE", true),
        ["channels", id, "floor", "revoke"] if is_post => AdminReq::Revoke((*id).to_owned()),
        ["channels", _, "floor", "revoke"] => return not_allowed("POST", true),
        ["users", id] if method == Method::DELETE => AdminReq::Kick((*id).to_owned()),
        ["users", _] => return not_allowed("DELETE", true),
        _ => return json_error(404, "not found"),
    };
    match ask_core(front, ask).await {
        Some(a) => json_answer(a),
        None => json_error(503, "core loop not answering"),
    }
}

/// `GET /admin/v1/trace`: an event stream, or 503 with
/// [`MAX_TRACE_STREAMS`](trace_stream::MAX_TRACE_STREAMS) open.
fn trace(
    req: Request<Incoming>,
    front: &Arc<Front>,
    slot: &Mutex<Option<DoorSlot>>,
) -> Response<Body> {
    let filter = Filter::parse(req.uri().query());
    let Some(stream) = trace_stream::open(&front.ops.trace, filter) else {
        return json_error(503, "too many trace streams");
    };
    // A stream is not an idle connection: the door must not shed it.
    if let Some(s) = slot.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        s.upgrading();
    }
    let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `/gateway`: the WebSocket upgrade.
fn route(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    fd: RawFd,
    tls: bool,
    front: &Arc<Front>,
    slot: &Mutex<Option<DoorSlot>>,
) -> Response<Empty<Bytes>> {
    if req.uri().path() != "/gateway" {
        return plain(StatusCode::NOT_FOUND);
    }
    let key = match check_upgrade(&req) {
        Ok(k) => k,
        Err(r) => return r,
    };
    if let Err(refused) = web::check_origin(req.headers(), tls, &front.web.allowed_origins) {
        info!(
            "{peer}: WebSocket upgrade refused: Origin {:?} is not this host nor in LIVECHAT_ALLOWED_ORIGINS",
            refused.0
        );
        return plain(StatusCode::FORBIDDEN);
    }
    let Some(mut door_slot) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        // A second upgrade on one connection cannot happen (the first one took it over).
        return plain(StatusCode::BAD_REQUEST);
    };
    door_slot.upgrading();
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ip_slot = PerIp::acquire(&front.per_ip, peer.ip(), front.cap);
    let front = front.clone();
    front.live.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let oversized = Oversized::default();
                let ws = WebSocketStream::from_raw_socket(
                    Guard::new(TokioIo::new(upgraded), oversized.clone()),
                    Role::Server,
                    Some(ws_config()),
                )
                .await;
                let cap = front.cap;
                match ip_slot {
                    Some(_slot) => {
                        let core = front.core.clone();
                        connection(ws, peer, fd, tls, core, door_slot, oversized).await;
                    }
                    None => {
                        info!(
                            "{}: over LIVECHAT_MAX_CONN_PER_IP={cap}, closing",
                            peer.ip()
                        );
                        refuse(ws, 1008, "too many connections from this address").await;
                    }
                }
            }
            Err(e) => debug!("upgrade from {peer} failed: {e}"),
        }
        front.live.fetch_sub(1, Ordering::Relaxed);
    });
    let mut r = plain(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// The WebSocket limits of every gateway connection. Frames and messages are limited to the
/// protocol's inbound limit: a whole frame above it (up to the hard cap) never reaches
/// tungstenite but its empty stand-in does ([`Guard`]); anything else above it fails the
/// connection with 1009. A connection's read buffer holds at most one frame ([`Guard`]
/// hands on one frame per read), beside a fragmented message of at most 4096 bytes; the
/// worst case per connection is in docs/reliability.md "Front door".
fn ws_config() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_INBOUND_FRAME);
    config.max_frame_size = Some(MAX_INBOUND_FRAME);
    config.read_buffer_size = WS_READ_BUFFER;
    // Each frame is written (and flushed) as it is sent; the bound only matters
    // while the socket refuses writes, and the outbound queue is bounded before it.
    config.write_buffer_size = 0;
    config.max_write_buffer_size = WS_MAX_WRITE_BUFFER;
    config
}

/// Writes one message, in fragments of at most [`OUT_FRAGMENT`] bytes (RFC 6455 section
/// 5.4), each written out before the next: tungstenite's write buffer keeps the capacity of
/// the largest frame it ever held, so whole 32 KiB answers would leave every connection
/// that got one holding 32 KiB for life.
async fn write_message(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    text: Utf8Bytes,
) -> Result<(), tungstenite::Error> {
    if text.len() <= OUT_FRAGMENT {
        return sink.send(Message::Text(text)).await;
    }
    let text = Bytes::from(text);
    let mut at = 0;
    while at < text.len() {
        let end = (at + OUT_FRAGMENT).min(text.len());
        let opcode = if at == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(text.slice(at..end), opcode, end == text.len());
        sink.send(Message::Frame(frame)).await?;
        at = end;
    }
    Ok(())
}

/// Whether the socket's send queue (bytes not yet acknowledged by the client) empties
/// within [`CLOSE_GRACE`].
async fn send_queue_drains(fd: RawFd) -> bool {
    let until = tokio::time::Instant::now() + CLOSE_GRACE;
    loop {
        let mut unsent: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ on a TCP socket) writes one int through the pointer,
        // which lives for the call; `fd` is open while the caller holds its connection.
        let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut unsent) };
        if r != 0 || unsent == 0 {
            return r == 0;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Makes closing the socket reset the connection and free its buffers at once.
fn abort_on_close(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` lives for the call and the length is its size; `fd` is open while
    // the caller holds its connection.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

type Ws = WebSocketStream<Guard<TokioIo<hyper::upgrade::Upgraded>>>;

async fn refuse(mut ws: Ws, code: u16, reason: &str) {
    let _ = timeout(CLOSE_GRACE, ws.close(Some(close_frame(code, reason)))).await;
}

/// One WebSocket connection: frames in go to the core, frames out come from the core's
/// bounded queue, and the core may end it at any time with a close frame.
async fn connection(
    ws: Ws,
    peer: SocketAddr,
    fd: RawFd,
    tls: bool,
    core: mpsc::Sender<Cmd>,
    door_slot: DoorSlot,
    oversized: Oversized,
) {
    let (out_tx, mut out_rx) = mpsc::channel::<Utf8Bytes>(OUTBOUND_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    let (kill_tx, mut kill_rx) = oneshot::channel::<CloseFrame>();
    let (reply_tx, reply_rx) = oneshot::channel();
    let info = PeerInfo { ip: peer.ip(), tls };
    let open = Cmd::Open {
        peer: info,
        addr: peer,
        out: out_tx,
        queued: queued.clone(),
        kill: kill_tx,
        reply: reply_tx,
    };
    if core.send(open).await.is_err() {
        return refuse(ws, CLOSE_GOING_AWAY, "server shutting down").await;
    }
    let conn = match reply_rx.await {
        Ok(Ok(c)) => c,
        Ok(Err(ConnectionsFull)) => return refuse(ws, CLOSE_FULL, "server full").await,
        Err(_) => return refuse(ws, CLOSE_GOING_AWAY, "server shutting down").await,
    };
    // In the core's table: from here the connection counts against its capacities.
    drop(door_slot);
    let (mut sink, mut stream) = ws.split();
    // Set when the core ended the connection, so it need not be told.
    let closed_by_core;
    let local_close: Option<CloseFrame>;
    {
        // The writer ends when the core closes the connection (it already knows), or when
        // a write fails (the core must be told, like any disconnect).
        let writer = async {
            loop {
                tokio::select! {
                    biased;
                    k = &mut kill_rx => return (true, k.ok()),
                    m = out_rx.recv() => {
                        let Some(m) = m else { return (true, None) };
                        let len = m.len();
                        tokio::select! {
                            r = timeout(WRITE_TIMEOUT, write_message(&mut sink, m)) => match r {
                                Ok(Ok(())) => {}
                                Ok(Err(_)) => return (false, None),
                                Err(_) => {
                                    info!("{peer}: not reading for {WRITE_TIMEOUT:?}, closing as a slow consumer");
                                    return (false, Some(close_frame(CLOSE_SLOW, "slow consumer")));
                                }
                            },
                            k = &mut kill_rx => return (true, k.ok()),
                        }
                        queued.fetch_sub(len, Ordering::Relaxed);
                    }
                }
            }
        };
        let reader = async {
            loop {
                let frame = match stream.next().await {
                    // A copy: the frame shares tungstenite's read buffer, whose whole
                    // allocation it would keep alive while queued toward the core.
                    Some(Ok(Message::Text(t))) => {
                        InFrame::Text(Bytes::copy_from_slice(t.as_bytes()))
                    }
                    Some(Ok(Message::Binary(b))) if b.is_empty() => match oversized.take() {
                        Some(d) => InFrame::Oversized {
                            len: d.len,
                            id: d.id,
                        },
                        None => InFrame::Binary(0),
                    },
                    Some(Ok(Message::Binary(b))) => InFrame::Binary(b.len()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => InFrame::Ping,
                    Some(Ok(Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => return None,
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        debug!("{peer}: {e}");
                        return Some(close_frame(CLOSE_TOO_BIG, "frame too large"));
                    }
                    // RFC 6455 section 7.4.1: 1002 protocol error, 1007 data inconsistent
                    // with the message type (text that is not UTF-8).
                    Some(Err(tungstenite::Error::Protocol(e))) => {
                        debug!("{peer}: {e}");
                        return Some(close_frame(CLOSE_PROTOCOL, "protocol error"));
                    }
                    Some(Err(tungstenite::Error::Io(e))) if is_fragmented_too_large(&e) => {
                        debug!("{peer}: {e}");
                        return Some(close_frame(CLOSE_TOO_BIG, "frame too large"));
                    }
                    Some(Err(tungstenite::Error::Utf8(e))) => {
                        debug!("{peer}: {e}");
                        return Some(close_frame(CLOSE_BAD_DATA, "invalid UTF-8"));
                    }
                    Some(Err(e)) => {
                        debug!("{peer}: {e}");
                        return None;
                    }
                };
                if core.send(Cmd::Frame { conn, frame }).await.is_err() {
                    return None;
                }
            }
        };
        tokio::select! {
            (core_knows, k) = writer => {
                closed_by_core = core_knows;
                local_close = k;
            }
            c = reader => {
                closed_by_core = false;
                local_close = c;
            }
        }
    }
    // Only the writer closes with 1008 on its own: a frame it could not write in time.
    let slow = local_close
        .as_ref()
        .is_some_and(|f| u16::from(f.code) == CLOSE_SLOW);
    let server_closed = local_close.is_some();
    let mut flushed = true;
    if let Some(frame) = local_close {
        let sent = timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
        flushed = matches!(sent, Ok(Ok(())));
    }
    if flushed {
        flushed = timeout(CLOSE_GRACE, sink.close()).await.is_ok();
    }
    // A socket closed with bytes the client never took stays in the kernel as an orphan
    // (charged to the service's memory cgroup) until the client reads or TCP gives up,
    // minutes for a zero window. A client the server closes gets [`CLOSE_GRACE`] to take
    // the close frame, then the connection is reset (SO_LINGER 0, RFC 9293 section
    // 3.10.5 ABORT) rather than left to linger.
    if server_closed && !(flushed && send_queue_drains(fd).await) {
        abort_on_close(fd);
    }
    // What is left in the queue goes with it (each frame gives its bytes back to
    // `OUTBOUND_BYTES` when its last holder drops it).
    drop(out_rx);
    if !closed_by_core {
        let _ = core.send(Cmd::Closed { conn, slow }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn the_door_sheds_the_oldest_idle_connection_and_refuses_when_none_is_idle() {
        let door = Arc::new(Door::default());
        let mut held = Vec::new();
        for i in 0..MAX_PENDING as u32 {
            let (mut slot, rx) = Door::admit(&door, ip(i)).expect("room");
            slot.upgrading();
            held.push((slot, rx));
        }
        assert_eq!(door.total(), MAX_PENDING);
        let refused = DOOR_REFUSED.load(Ordering::Relaxed);
        assert_eq!(
            Door::admit(&door, ip(9999)).err(),
            Some(Refused::Full),
            "none idle to shed: the total stays bounded"
        );
        assert_eq!(door.total(), MAX_PENDING);
        assert!(DOOR_REFUSED.load(Ordering::Relaxed) > refused);
        // One idle connection: the next one sheds it.
        drop(held.pop());
        let (_idle, mut idle_rx) = Door::admit(&door, ip(10_000)).expect("room");
        let shed = DOOR_SHED.load(Ordering::Relaxed);
        let (_new, _) = Door::admit(&door, ip(10_001)).expect("the idle one is shed");
        assert!(DOOR_SHED.load(Ordering::Relaxed) > shed);
        assert!(
            matches!(
                idle_rx.try_recv(),
                Err(oneshot::error::TryRecvError::Closed)
            ),
            "the idle connection is told to end"
        );
    }

    #[test]
    fn the_door_sheds_the_address_holding_the_most_first() {
        let door = Arc::new(Door::default());
        let (_alone, mut alone_rx) = Door::admit(&door, ip(1)).expect("room");
        // One IPv6 host, from many addresses of its /64: beyond 32 places it is refused.
        let mut flood = Vec::new();
        for i in 1..100u16 {
            let v6 = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i);
            if let Ok(x) = Door::admit(&door, IpAddr::V6(v6)) {
                flood.push(x);
            }
        }
        assert_eq!(flood.len(), MAX_PENDING_PER_IP as usize);
        let mut others = Vec::new();
        while door.total() < MAX_PENDING {
            let n = others.len() as u32;
            others.push(Door::admit(&door, ip(100 + n)).expect("room"));
        }
        let _new = Door::admit(&door, ip(5000)).expect("one is shed");
        assert!(
            matches!(
                alone_rx.try_recv(),
                Err(oneshot::error::TryRecvError::Empty)
            ),
            "the oldest connection, alone on its address, stays"
        );
        assert!(
            matches!(
                flood[0].1.try_recv(),
                Err(oneshot::error::TryRecvError::Closed)
            ),
            "the flood's oldest is shed"
        );
    }
}
