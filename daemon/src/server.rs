//! The driver: one current-thread runtime, one task that owns the core, one task per
//! WebSocket connection talking to it through bounded channels.

use std::net::{IpAddr, Ipv4Addr, UdpSocket as StdUdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration as StdDuration;

use hyper::body::Bytes;
use livechat_core::gateway::{ConnId, PeerInfo};
use livechat_core::gateway::{ConnectionsFull, Gateway, GatewayConfig};
use livechat_core::storage::{Capacities, Tables};
use livechat_core::token::TokenKey;
use log::{error, info, warn};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::settings::Settings;

mod admin;
mod core_task;
mod http;
mod id_scan;
mod inbound;
mod metrics;
mod ops;
mod trace_stream;
mod udp;
mod web;
mod webrtc;

pub(crate) use web::{ORIGIN_REFUSED, Origin};

/// Frames queued toward one connection, at most (the writer takes them one at a time):
/// room for a whole burst of the rate limit's 200 requests into a channel, and more.
const OUTBOUND_QUEUE: usize = 512;
/// Bytes queued toward one connection, at most: a member of a busy channel gets another
/// member's whole burst of 200 messages of 1 KiB at the speed the core makes them, while
/// its socket takes a few dozen frames per round trip; those frames are shared by every
/// member's queue, so this costs little memory (what all queues hold together is bounded
/// by [`OUTBOUND_TOTAL_BYTES`]). A client that does not read is closed as a slow consumer
/// (1008) before it holds more than this (plus what tungstenite and the kernel hold).
pub(crate) const OUTBOUND_QUEUE_BYTES: usize = 256 * 1024;
/// Bytes of outbound frames alive (queued, or being handed to tungstenite) toward all
/// connections together, at most (docs/reliability.md "Front door"); a frame broadcast to
/// many connections is one allocation and counts once. Past it, a frame for a connection
/// whose queue is not empty and would go over [`OUTBOUND_FAIR_BYTES`] closes that
/// connection as a slow consumer; a connection whose queue is empty gets its frame up to
/// [`OUTBOUND_HARD_BYTES`], so a client that reads is not closed for what others hold.
pub(crate) const OUTBOUND_TOTAL_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of outbound frames alive beyond which even a connection whose queue is empty gets
/// only its fair share: [`OUTBOUND_TOTAL_BYTES`] and room for a few dozen connections
/// that read to get an answer of the largest size each. Outbound frames alive are at most
/// this plus every connection's fair share: 5 MiB + 1152 x 2 KiB = 7.3 MiB with the default
/// connection table (1024 sessions + 128 unidentified).
pub(crate) const OUTBOUND_HARD_BYTES: usize = OUTBOUND_TOTAL_BYTES + 1024 * 1024;
/// A connection's fair share of [`OUTBOUND_TOTAL_BYTES`] when it is exhausted.
pub(crate) const OUTBOUND_FAIR_BYTES: usize = 2 * 1024;
/// Bytes queued toward a connection that has not identified, at most: it is only ever sent
/// HELLO, READY, ERROR and HEARTBEAT_ACK, each under a few hundred bytes.
pub(crate) const UNIDENTIFIED_QUEUE_BYTES: usize = 4 * 1024;
/// Longest one frame may take to be written to a connection's socket; beyond it the
/// client is not reading and is closed as a slow consumer (1008).
pub(crate) const WRITE_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Bytes of outbound frames alive, each counted once however many queues hold it, for
/// [`OUTBOUND_TOTAL_BYTES`].
pub(crate) static OUTBOUND_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Longest a client may take to send its request head, TLS handshake excluded (it has its
/// own limit); beyond it the connection is closed. RFC 6455 clients send the head at once.
pub(crate) const HEADER_READ_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Largest request head read (request line and headers), in bytes: hyper answers 431 and
/// closes beyond it. An upgrade request is a few hundred bytes; this is hyper's minimum.
pub(crate) const MAX_REQUEST_HEAD: usize = 8192;
/// Connections accepted and not yet in the core's table (TLS handshake, request head,
/// upgrade). Beyond it the oldest idle one is shed for each new one, or the new one is
/// closed when none is idle.
pub(crate) const MAX_PENDING: usize = 256;
/// Connections closed at the door before their upgrade: over [`MAX_PENDING_PER_IP`], or
/// over [`MAX_PENDING`] with none idle to shed (the stats line's `door_refused`).
pub(crate) static DOOR_REFUSED: AtomicU64 = AtomicU64::new(0);
/// Idle connections shed before their upgrade to make room (the stats line's `door_shed`).
pub(crate) static DOOR_SHED: AtomicU64 = AtomicU64::new(0);
/// Connections from one IP (an IPv6 /64) not yet in the core's table; the next one is
/// closed at once.
/// Room for a NAT of clients reconnecting together; far below [`MAX_PENDING`], so one
/// address cannot shed everyone else's.
pub(crate) const MAX_PENDING_PER_IP: u32 = 32;
/// Receive and send buffer asked for on each gateway connection (the kernel doubles it).
/// A client that does not read fills its socket's send buffer, and the kernel charges that
/// memory to the service's cgroup (`MemoryMax`) although RSS does not show it; left to
/// autotuning each could grow to `net.ipv4.tcp_wmem`'s maximum (4 MiB by default). Signaling
/// frames are at most 32 KiB, so this still takes the largest in one go.
pub(crate) const TCP_SOCKET_BUF: usize = 32 * 1024;
/// Pause of the accept loop after an error that is not descriptor exhaustion, or when
/// nothing could be shed, so it does not spin.
pub(crate) const ACCEPT_BACKOFF: StdDuration = StdDuration::from_millis(50);
/// At most one log line per this interval about descriptor exhaustion (with a count).
pub(crate) const ACCEPT_LOG_INTERVAL: StdDuration = StdDuration::from_secs(10);
/// Commands queued from all connections toward the core task; readers wait when it is full.
/// Each holds at most one inbound frame (a copy, at most [`MAX_INBOUND_FRAME`] bytes), so
/// the queue holds at most 2 MiB; the core takes 128 commands per turn anyway.
///
/// [`MAX_INBOUND_FRAME`]: livechat_core::config::MAX_INBOUND_FRAME
pub(crate) const CORE_QUEUE: usize = 128;
/// How long a close frame may take to go out before the connection is simply dropped.
pub(crate) const CLOSE_GRACE: StdDuration = StdDuration::from_millis(500);
/// How long shutdown waits for connections to close (PROTOCOL.md: exit within 3 s).
pub(crate) const SHUTDOWN_GRACE: StdDuration = StdDuration::from_secs(2);
/// WebSocket read buffer per connection (tungstenite's default of 128 KiB per connection
/// would dominate the daemon's memory on a Pi); frames larger than it still work, up to
/// the inbound limit.
pub(crate) const WS_READ_BUFFER: usize = 1024;
/// Largest frame written: longer messages go in fragments of this size, so tungstenite's
/// write buffer (which keeps the capacity of the largest frame it held) stays small.
pub(crate) const OUT_FRAGMENT: usize = 4096;
/// Most bytes one connection's WebSocket may hold unwritten: a fragment, and the pongs and
/// close frame that may join it while the socket refuses writes.
pub(crate) const WS_MAX_WRITE_BUFFER: usize = 2 * OUT_FRAGMENT;
/// Largest UDP datagram read.
pub(crate) const UDP_BUF: usize = 2048;
/// Receive and send buffer asked for on the media socket (the kernel caps it at
/// `net.core.rmem_max`/`wmem_max` and doubles it): about a thousand 20 ms packets, so a
/// loop descheduled for a few milliseconds on a busy CPU does not lose a burst.
pub(crate) const UDP_SOCKET_BUF: usize = 1 << 20;

/// Close code for a slow consumer (RFC 6455 section 7.4.1: 1008 policy violation).
pub(crate) const CLOSE_SLOW: u16 = 1008;
/// Close code when the server is full: 1013 try again later.
pub(crate) const CLOSE_FULL: u16 = 1013;
/// Close code on shutdown: 1001 going away.
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for frames over the hard cap: 1009 message too big.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a WebSocket protocol violation (RFC 6455 section 7.4.1: 1002).
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;
/// Close code for a text message that is not UTF-8 (RFC 6455 section 7.4.1: 1007).
pub(crate) const CLOSE_BAD_DATA: u16 = 1007;

/// A frame from a connection task to the core.
pub(crate) enum InFrame {
    Text(Bytes),
    Binary(usize),
    /// A frame over the inbound limit, dropped as it arrived, with the `id` read from it.
    Oversized {
        len: usize,
        id: Option<u32>,
    },
    Ping,
}

/// What connection tasks tell the core task.
pub(crate) enum Cmd {
    Open {
        peer: PeerInfo,
        /// The client's address and port.
        addr: std::net::SocketAddr,
        /// Text frames toward the connection (the queue's slots are the size of one
        /// `Utf8Bytes`, not of a whole `Message`).
        out: mpsc::Sender<Utf8Bytes>,
        /// Bytes in `out` and being written, shared with the connection's writer.
        queued: Arc<AtomicUsize>,
        kill: oneshot::Sender<CloseFrame>,
        reply: oneshot::Sender<Result<ConnId, ConnectionsFull>>,
    },
    Frame {
        conn: ConnId,
        frame: InFrame,
    },
    Closed {
        conn: ConnId,
        /// Closed by its writer as a slow consumer (a write over [`WRITE_TIMEOUT`]).
        slow: bool,
    },
    /// An operator's request (`/healthz`, `/metrics`, `/admin/v1`), answered by the core.
    Admin {
        req: admin::AdminReq,
        reply: oneshot::Sender<admin::Answer>,
    },
}

pub(crate) fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(settings: Settings) -> ExitCode {
    init_logging();
    let tls = match crate::tls::acceptor(settings.tls_cert.as_deref(), settings.tls_key.as_deref())
    {
        Ok(t) => t,
        Err(msg) => {
            error!("{msg}");
            return ExitCode::from(2);
        }
    };
    let dtls_cert =
        match webrtc::certificate(settings.dtls_cert.as_deref(), settings.dtls_key.as_deref()) {
            Ok(c) => c,
            Err(msg) => {
                error!("{msg}");
                return ExitCode::from(2);
            }
        };
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
    let listener = match std::net::TcpListener::bind(settings.http_addr) {
        Ok(l) => l,
        Err(e) => {
            error!(
                "LIVECHAT_HTTP_ADDR: cannot bind {}: {e}",
                settings.http_addr
            );
            return ExitCode::from(1);
        }
    };
    let udp = match StdUdpSocket::bind(settings.udp_addr) {
        Ok(u) => u,
        Err(e) => {
            error!("LIVECHAT_UDP_ADDR: cannot bind {}: {e}", settings.udp_addr);
            return ExitCode::from(1);
        }
    };
    udp::set_buffers(&udp, UDP_SOCKET_BUF);
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
    let tables = match reserve_tables(&settings.limits) {
        Ok(t) => t,
        Err(msg) => {
            error!("{msg}");
            return ExitCode::from(1);
        }
    };
    let gw = Box::new(Gateway::new(cfg, tables));
    let clock = core_task::Clock::new(tokio::time::Instant::now());
    let rtc = match webrtc::Webrtc::new(
        dtls_cert,
        settings.limits.max_peers,
        advertise,
        udp_local.port(),
        clock.now().mono,
    ) {
        Ok(r) => r,
        Err(msg) => {
            error!("{msg}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let nonblocking = listener
            .set_nonblocking(true)
            .and_then(|()| udp.set_nonblocking(true));
        let sockets = nonblocking
            .and_then(|()| Ok((TcpListener::from_std(listener)?, UdpSocket::from_std(udp)?)));
        let (listener, udp) = match sockets {
            Ok(s) => s,
            Err(e) => {
                error!("cannot register the sockets: {e}");
                return ExitCode::from(1);
            }
        };
        let mut gw = gw;
        let cameras = match crate::camera::start(&mut gw, clock.now(), &settings.cameras) {
            Ok(c) => c,
            Err(msg) => {
                error!("{msg}");
                return ExitCode::from(2);
            }
        };
        let mut svc = crate::service::Service::new(&settings);
        let tls_on = if tls.is_some() { "on" } else { "off" };
        let (core_tx, core_rx) = mpsc::channel(CORE_QUEUE);
        let live = Arc::new(AtomicUsize::new(0));
        let trim = tokio::spawn(trim_allocator());
        let (trace_tx, _) = tokio::sync::broadcast::channel(ops::TRACE_BUFFER);
        let admin_conf = admin::AdminConf::new(
            settings.admin_token.as_deref(),
            settings.limits.rate_burst,
            settings.limits.rate_per_sec,
            settings.limits.max_members,
        );
        let accept = tokio::spawn(http::accept_loop(
            listener,
            core_tx,
            Arc::new(http::PerIp::default()),
            settings.max_conn_per_ip,
            live.clone(),
            tls,
            http::OpsFront {
                conf: admin_conf,
                trace: trace_tx.clone(),
            },
            http::WebConfig {
                on: settings.web,
                allowed_origins: settings.allowed_origins.clone(),
            },
        ));
        // Handlers go in before `ready`, so a SIGTERM right after it is a clean exit.
        let signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                error!("cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
        };
        info!(
            "ready http={http_local} udp={udp_local} tls={tls_on} media_host={advertise} version={}",
            env!("CARGO_PKG_VERSION")
        );
        svc.ready(&gw);
        let ops = ops::Ops::new(trace_tx);
        let code = core_task::core_loop(
            gw, rtc, clock, core_rx, udp, signals, live, svc, ops, cameras,
        )
        .await;
        accept.abort();
        trim.abort();
        code
    })
}

/// How often freed heap memory is handed back to the kernel.
const TRIM_PERIOD: StdDuration = StdDuration::from_secs(5);

/// Hands freed heap memory back to the kernel every [`TRIM_PERIOD`], so that RSS comes
/// back near its baseline once a burst of connections (an attack, a reconnect storm) has
/// gone. glibc keeps freed memory in its arenas and gives back only the top of each heap
/// on its own; `malloc_trim(0)` also releases the free pages inside them (glibc 2.8+).
/// musl's allocator (mallocng) returns freed groups to the kernel by itself, so a static
/// musl build has nothing to do here.
async fn trim_allocator() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let mut tick = tokio::time::interval(TRIM_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes
        // no pointer and is safe to call at any time from any thread.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

fn init_logging() {
    crate::logging::init();
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

/// The core's tables, reserved once from the settings and kept for the life of the process
/// ([`Tables::reserve`]: pages of slots never used are never touched).
fn reserve_tables(limits: &livechat_core::config::Limits) -> Result<Tables<'static>, String> {
    Tables::reserve(&Capacities::of(limits)).map_err(|e| {
        let setting = match e.table {
            "connections" => "LIVECHAT_MAX_SESSIONS",
            "channels" => "LIVECHAT_MAX_CHANNELS",
            _ => "LIVECHAT_MAX_PEERS",
        };
        format!(
            "{setting}: cannot reserve the {} table ({} slots: {}); lower the setting",
            e.table, e.slots, e.error
        )
    })
}

/// SIGTERM and SIGINT, both meaning a graceful stop.
pub(crate) struct Signals {
    pub(crate) term: tokio::signal::unix::Signal,
    pub(crate) int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}
