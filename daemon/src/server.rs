//! The driver: one current-thread runtime, one task that owns the core, one task per
//! WebSocket connection talking to it through bounded channels.

use std::net::{IpAddr, Ipv4Addr, UdpSocket as StdUdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration as StdDuration;

use hyper::body::Bytes;
use livechat_core::gateway::{ConnId, PeerInfo};
use livechat_core::gateway::{ConnectionsFull, Gateway, GatewayConfig};
use livechat_core::storage::{Capacities, Tables};
use livechat_core::token::TokenKey;
use log::{error, info, warn};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::settings::Settings;

mod core_task;
mod http;
mod udp;

const OUTBOUND_QUEUE: usize = 256;
/// Commands queued from all connections toward the core task; readers wait when it is full.
pub(crate) const CORE_QUEUE: usize = 1024;
/// How long a close frame may take to go out before the connection is simply dropped.
pub(crate) const CLOSE_GRACE: StdDuration = StdDuration::from_millis(500);
/// How long shutdown waits for connections to close (PROTOCOL.md: exit within 3 s).
pub(crate) const SHUTDOWN_GRACE: StdDuration = StdDuration::from_secs(2);
/// WebSocket read buffer per connection (tungstenite's default of 128 KiB per connection
/// would dominate the daemon's memory on a Pi); frames larger than it still work.
pub(crate) const WS_READ_BUFFER: usize = 4096;
/// Most bytes one connection's WebSocket may hold unwritten: two of the largest frames.
pub(crate) const WS_MAX_WRITE_BUFFER: usize = 2 * livechat_core::config::MAX_OUTBOUND_FRAME + 1024;
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

/// A frame from a connection task to the core.
pub(crate) enum InFrame {
    Text(Bytes),
    Binary(usize),
    Ping,
}

/// What connection tasks tell the core task.
pub(crate) enum Cmd {
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
        let mut svc = crate::service::Service::new(&settings);
        let tls_on = if tls.is_some() { "on" } else { "off" };
        let (core_tx, core_rx) = mpsc::channel(CORE_QUEUE);
        let live = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn(http::accept_loop(
            listener,
            core_tx,
            Arc::new(http::PerIp::default()),
            settings.max_conn_per_ip,
            live.clone(),
            tls,
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
        let code = core_task::core_loop(gw, core_rx, udp, signals, live, svc).await;
        accept.abort();
        code
    })
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
