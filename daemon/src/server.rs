//! The driver: one current-thread runtime, one task that owns the core, one task per
//! WebSocket connection talking to it through bounded channels.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use livechat_core::config::HARD_FRAME_CAP;
use livechat_core::gateway::{ConnectionsFull, Driver, Frame, Gateway, GatewayConfig};
use livechat_core::hub::{ConnId, PeerInfo};
use livechat_core::time::{Instant as CoreInstant, Now};
use livechat_core::token::TokenKey;
use log::{debug, error, info, warn};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes, handshake::derive_accept_key};

use crate::settings::Settings;

/// Frames queued toward one client before it counts as a slow consumer and is closed.
const OUTBOUND_QUEUE: usize = 256;
/// Commands queued from all connections toward the core task; readers wait when it is full.
const CORE_QUEUE: usize = 1024;
/// How long a close frame may take to go out before the connection is simply dropped.
const CLOSE_GRACE: StdDuration = StdDuration::from_millis(500);
/// How long shutdown waits for connections to close (PROTOCOL.md: exit within 3 s).
const SHUTDOWN_GRACE: StdDuration = StdDuration::from_secs(2);
/// Largest UDP datagram read.
const UDP_BUF: usize = 2048;

/// Close code for a slow consumer (RFC 6455 section 7.4.1: 1008 policy violation).
const CLOSE_SLOW: u16 = 1008;
/// Close code when the server is full: 1013 try again later.
const CLOSE_FULL: u16 = 1013;
/// Close code on shutdown: 1001 going away.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for frames over the hard cap: 1009 message too big.
const CLOSE_TOO_BIG: u16 = 1009;

/// A frame from a connection task to the core.
enum InFrame {
    Text(Bytes),
    Binary,
    Ping,
}

/// What connection tasks tell the core task.
enum Cmd {
    Open {
        peer: PeerInfo,
        out: mpsc::Sender<Message>,
        kill: oneshot::Sender<CloseFrame>,
        reply: oneshot::Sender<Result<ConnId, ConnectionsFull>>,
    },
    Frame {
        conn: ConnId,
        frame: InFrame,
    },
    Closed {
        conn: ConnId,
    },
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason),
    }
}

/// The core task's view of one connection.
struct Handle {
    id: ConnId,
    out: mpsc::Sender<Message>,
    kill: Option<oneshot::Sender<CloseFrame>>,
}

/// Connections by slot index, as the core numbers them.
#[derive(Default)]
struct Registry {
    slots: Vec<Option<Handle>>,
}

impl Registry {
    fn get(&self, c: ConnId) -> Option<&Handle> {
        self.slots
            .get(c.index())
            .and_then(Option::as_ref)
            .filter(|h| h.id == c)
    }

    fn insert(&mut self, h: Handle) {
        let i = h.id.index();
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some(h);
        }
    }

    fn take(&mut self, c: ConnId) -> Option<Handle> {
        let slot = self.slots.get_mut(c.index())?;
        if slot.as_ref().is_some_and(|h| h.id == c) {
            slot.take()
        } else {
            None
        }
    }

    fn kill(&mut self, c: ConnId, code: u16, reason: &str) {
        if let Some(k) = self.take(c).and_then(|mut h| h.kill.take()) {
            let _ = k.send(close_frame(code, reason));
        }
    }
}

/// The core's [`Driver`]: queues frames per connection, closes, draws random bytes.
struct Io<'a> {
    reg: &'a mut Registry,
    slow: &'a mut Vec<ConnId>,
    /// The queue of a connection being opened: the core greets it (HELLO) before its id,
    /// and so its registry slot, is known.
    opening: Option<&'a mpsc::Sender<Message>>,
}

impl Driver for Io<'_> {
    fn send(&mut self, to: &[ConnId], frame: &[u8]) {
        let Ok(text) = std::str::from_utf8(frame) else {
            error!("core produced a frame that is not UTF-8; dropped");
            return;
        };
        let text = Utf8Bytes::from(text.to_owned());
        for c in to {
            let out = self.reg.get(*c).map(|h| &h.out).or(self.opening);
            if let Some(out) = out {
                match out.try_send(Message::Text(text.clone())) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => self.slow.push(*c),
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.reg.kill(conn, code, reason);
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        if let Err(e) = getrandom::fill(buf) {
            // Without the OS RNG no key can be made safely: stop rather than make weak ones.
            error!("OS random number generator failed: {e}");
            std::process::abort();
        }
    }
}

/// Converts the runtime's clocks into the core's.
struct Clock {
    base: Instant,
}

impl Clock {
    fn now(&self) -> Now {
        let mono = CoreInstant::from_micros(self.base.elapsed().as_micros() as u64);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now::new(mono, unix_ms)
    }

    fn to_tokio(&self, t: CoreInstant) -> Instant {
        self.base + StdDuration::from_micros(t.as_micros())
    }
}

/// Open connections per client IP, shared by the accept path.
#[derive(Default)]
struct PerIp {
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

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(settings: Settings) -> ExitCode {
    init_logging();
    if settings.tls_cert.is_some() || settings.tls_key.is_some() {
        error!("LIVECHAT_TLS_CERT: TLS is not available in this build");
        return ExitCode::from(2);
    }
    let token_key = match &settings.secret {
        Some(s) => TokenKey::new(s.as_bytes()),
        None if settings.http_addr.ip().is_loopback() => {
            warn!(
                "no LIVECHAT_SECRET: accepting any well-formed token (gateway bound to loopback)"
            );
            TokenKey::none()
        }
        None => {
            error!(
                "LIVECHAT_SECRET: required when the gateway is not bound to loopback (LIVECHAT_HTTP_ADDR={})",
                settings.http_addr
            );
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let mut seed = [0u8; 8];
    if let Err(e) = getrandom::fill(&mut seed) {
        error!("OS random number generator failed: {e}");
        return ExitCode::from(1);
    }
    let mut cfg = GatewayConfig {
        limits: settings.limits,
        token_key,
        plain_rtp: settings.plain_rtp,
        sdes_over_ws: settings.sdes_over_ws,
        media_host: heapless::String::new(),
        media_port: 0,
        session_seed: u64::from_le_bytes(seed),
    };
    rt.block_on(async move {
        let listener = match TcpListener::bind(settings.http_addr).await {
            Ok(l) => l,
            Err(e) => {
                error!(
                    "LIVECHAT_HTTP_ADDR: cannot bind {}: {e}",
                    settings.http_addr
                );
                return ExitCode::from(1);
            }
        };
        let udp = match UdpSocket::bind(settings.udp_addr).await {
            Ok(u) => u,
            Err(e) => {
                error!("LIVECHAT_UDP_ADDR: cannot bind {}: {e}", settings.udp_addr);
                return ExitCode::from(1);
            }
        };
        let (http_local, udp_local) = match (listener.local_addr(), udp.local_addr()) {
            (Ok(h), Ok(u)) => (h, u),
            _ => {
                error!("cannot read the bound addresses");
                return ExitCode::from(1);
            }
        };
        let advertise = settings
            .advertise_ip
            .unwrap_or_else(|| advertise_ip(udp_local.ip()));
        let _ = cfg.media_host.push_str(&advertise.to_string());
        cfg.media_port = udp_local.port();
        // The gateway is about a megabyte: built once, on the heap, never moved.
        let gw = Box::new(Gateway::new(cfg));
        let (core_tx, core_rx) = mpsc::channel(CORE_QUEUE);
        let live = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(accept_loop(
            listener,
            core_tx,
            Arc::new(PerIp::default()),
            settings.max_conn_per_ip,
            live.clone(),
        ));
        info!(
            "ready http={http_local} udp={udp_local} media_host={advertise} version={}",
            env!("CARGO_PKG_VERSION")
        );
        let code = core_loop(gw, core_rx, udp, live).await;
        accept.abort();
        code
    })
}

fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    env_logger::Builder::from_env(env)
        .target(env_logger::Target::Stderr)
        .init();
}

/// The address of the interface with the default route, found by asking the kernel to
/// route a UDP socket (no packet is sent), or loopback when there is none.
fn advertise_ip(bound: IpAddr) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    let probe = || -> std::io::Result<IpAddr> {
        let s = StdUdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        // TEST-NET-1 (RFC 5737): connect() on UDP only picks a route; nothing is sent.
        s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        Ok(s.local_addr()?.ip())
    };
    match probe() {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => {
            warn!("no default route: advertising 127.0.0.1; set LIVECHAT_ADVERTISE_IP");
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}

async fn core_loop(
    mut gw: Box<Gateway>,
    mut rx: mpsc::Receiver<Cmd>,
    udp: UdpSocket,
    live: Arc<AtomicUsize>,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            error!("cannot install signal handlers");
            return ExitCode::from(1);
        }
    };
    let clock = Clock {
        base: Instant::now(),
    };
    let mut reg = Registry::default();
    let mut slow = Vec::new();
    let mut udp_buf = vec![0u8; UDP_BUF];
    let mut udp_dropped: u64 = 0;
    loop {
        let deadline = gw.poll_timeout().map(|t| clock.to_tokio(t));
        tokio::select! {
            biased;
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let now = clock.now();
                match cmd {
                    Cmd::Open { peer, out, kill, reply } => {
                        let mut io = Io { reg: &mut reg, slow: &mut slow, opening: Some(&out) };
                        let res = gw.open(now, peer, &mut io);
                        if let Ok(id) = res {
                            reg.insert(Handle { id, out, kill: Some(kill) });
                        }
                        let _ = reply.send(res);
                    }
                    Cmd::Frame { conn, frame } => {
                        let f = match &frame {
                            InFrame::Text(b) => Frame::Text(b),
                            InFrame::Binary => Frame::Binary,
                            InFrame::Ping => Frame::Ping,
                        };
                        gw.handle_frame(now, conn, f, &mut Io { reg: &mut reg, slow: &mut slow, opening: None });
                    }
                    Cmd::Closed { conn } => {
                        reg.take(conn);
                        gw.close(now, conn, &mut Io { reg: &mut reg, slow: &mut slow, opening: None });
                    }
                }
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let now = clock.now();
                gw.handle_timeout(now, &mut Io { reg: &mut reg, slow: &mut slow, opening: None });
            }
            r = udp.recv_from(&mut udp_buf) => {
                if r.is_ok() {
                    udp_dropped += 1;
                    debug!("media datagram dropped (no media plane yet): {udp_dropped} so far");
                }
            }
        }
        // Slow consumers: closed, and cleaned up like any disconnect (which may find more).
        while let Some(c) = slow.pop() {
            if reg.get(c).is_none() {
                continue;
            }
            warn!("closing a slow consumer (outbound queue of {OUTBOUND_QUEUE} frames full)");
            reg.kill(c, CLOSE_SLOW, "slow consumer");
            gw.close(
                clock.now(),
                c,
                &mut Io {
                    reg: &mut reg,
                    slow: &mut slow,
                    opening: None,
                },
            );
        }
    }
    // Shutdown: 1001 to everyone, then wait a little for the close frames to go out.
    for slot in 0..reg.slots.len() {
        if let Some(id) = reg.slots.get(slot).and_then(Option::as_ref).map(|h| h.id) {
            reg.kill(id, CLOSE_GOING_AWAY, "server shutting down");
        }
    }
    drop(rx);
    let until = Instant::now() + SHUTDOWN_GRACE;
    while live.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    let s = gw.stats();
    info!(
        "stopped: {} frames in, {} out, {} errors, {} zombies reaped",
        s.frames_in, s.frames_out, s.errors_out, s.zombies_reaped
    );
    ExitCode::SUCCESS
}

async fn accept_loop(
    listener: TcpListener,
    core: mpsc::Sender<Cmd>,
    per_ip: Arc<PerIp>,
    cap: u32,
    live: Arc<AtomicUsize>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!("accept failed: {e}");
                tokio::time::sleep(StdDuration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let core = core.clone();
        let per_ip = per_ip.clone();
        let live = live.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let core = core.clone();
                let per_ip = per_ip.clone();
                let live = live.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(route(req, peer, core, per_ip, cap, live))
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                debug!("http connection from {peer}: {e}");
            }
        });
    }
}

fn plain(status: StatusCode) -> Response<Empty<Bytes>> {
    let mut r = Response::new(Empty::new());
    *r.status_mut() = status;
    r
}

/// HTTP routing: `/gateway` upgrades to WebSocket; later endpoints go here too.
fn route(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    core: mpsc::Sender<Cmd>,
    per_ip: Arc<PerIp>,
    cap: u32,
    live: Arc<AtomicUsize>,
) -> Response<Empty<Bytes>> {
    if req.uri().path() != "/gateway" {
        return plain(StatusCode::NOT_FOUND);
    }
    let is_upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return plain(StatusCode::UPGRADE_REQUIRED);
    };
    if !is_upgrade {
        return plain(StatusCode::UPGRADE_REQUIRED);
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    let slot = PerIp::acquire(&per_ip, peer.ip(), cap);
    live.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let mut config = WebSocketConfig::default();
                config.max_message_size = Some(HARD_FRAME_CAP);
                config.max_frame_size = Some(HARD_FRAME_CAP);
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                match slot {
                    Some(_slot) => connection(ws, peer, core).await,
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
        live.fetch_sub(1, Ordering::Relaxed);
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

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

async fn refuse(mut ws: Ws, code: u16, reason: &str) {
    let _ = timeout(CLOSE_GRACE, ws.close(Some(close_frame(code, reason)))).await;
}

/// One WebSocket connection: frames in go to the core, frames out come from the core's
/// bounded queue, and the core may end it at any time with a close frame.
async fn connection(ws: Ws, peer: SocketAddr, core: mpsc::Sender<Cmd>) {
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTBOUND_QUEUE);
    let (kill_tx, mut kill_rx) = oneshot::channel::<CloseFrame>();
    let (reply_tx, reply_rx) = oneshot::channel();
    let info = PeerInfo {
        ip: peer.ip(),
        tls: false,
    };
    let open = Cmd::Open {
        peer: info,
        out: out_tx,
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
    let (mut sink, mut stream) = ws.split();
    // Set when the core ended the connection, so it need not be told.
    let closed_by_core;
    let local_close: Option<CloseFrame>;
    {
        let writer = async {
            loop {
                tokio::select! {
                    biased;
                    k = &mut kill_rx => return k.ok(),
                    m = out_rx.recv() => {
                        let m = m?;
                        tokio::select! {
                            r = sink.send(m) => if r.is_err() { return None },
                            k = &mut kill_rx => return k.ok(),
                        }
                    }
                }
            }
        };
        let reader = async {
            loop {
                let frame = match stream.next().await {
                    Some(Ok(Message::Text(t))) => InFrame::Text(Bytes::from(t)),
                    Some(Ok(Message::Binary(_))) => InFrame::Binary,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => InFrame::Ping,
                    Some(Ok(Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => return None,
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        debug!("{peer}: {e}");
                        return Some(close_frame(CLOSE_TOO_BIG, "frame too large"));
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
            k = writer => {
                closed_by_core = true;
                local_close = k;
            }
            c = reader => {
                closed_by_core = false;
                local_close = c;
            }
        }
    }
    if let Some(frame) = local_close {
        let _ = timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = timeout(CLOSE_GRACE, sink.close()).await;
    if !closed_by_core {
        let _ = core.send(Cmd::Closed { conn }).await;
    }
}
