//! The HTTP side: accepting connections, upgrading `/gateway` to WebSocket, and one task
//! per WebSocket connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use futures_util::{SinkExt, StreamExt};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use livechat_core::config::HARD_FRAME_CAP;
use livechat_core::gateway::ConnectionsFull;
use livechat_core::gateway::PeerInfo;
use log::{debug, info, warn};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, handshake::derive_accept_key};

use super::{
    CLOSE_FULL, CLOSE_GOING_AWAY, CLOSE_GRACE, CLOSE_TOO_BIG, Cmd, InFrame, OUTBOUND_QUEUE,
    WS_MAX_WRITE_BUFFER, WS_READ_BUFFER, close_frame,
};

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

/// Runs the daemon until SIGTERM or SIGINT.
pub(super) async fn accept_loop(
    listener: TcpListener,
    core: mpsc::Sender<Cmd>,
    per_ip: Arc<PerIp>,
    cap: u32,
    live: Arc<AtomicUsize>,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
        let acceptor = tls.clone();
        tokio::spawn(async move {
            let tls = acceptor.is_some();
            let service = hyper::service::service_fn(move |req| {
                let core = core.clone();
                let per_ip = per_ip.clone();
                let live = live.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(route(
                        req, peer, tls, core, per_ip, cap, live,
                    ))
                }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let res = match acceptor {
                Some(a) => match crate::tls::handshake(&a, tcp, peer).await {
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
    tls: bool,
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
                config.read_buffer_size = WS_READ_BUFFER;
                // Each frame is written (and flushed) as it is sent; the bound only matters
                // while the socket refuses writes, and the outbound queue is bounded before it.
                config.write_buffer_size = 0;
                config.max_write_buffer_size = WS_MAX_WRITE_BUFFER;
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                match slot {
                    Some(_slot) => connection(ws, peer, tls, core).await,
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
async fn connection(ws: Ws, peer: SocketAddr, tls: bool, core: mpsc::Sender<Cmd>) {
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTBOUND_QUEUE);
    let (kill_tx, mut kill_rx) = oneshot::channel::<CloseFrame>();
    let (reply_tx, reply_rx) = oneshot::channel();
    let info = PeerInfo { ip: peer.ip(), tls };
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
        // The writer ends when the core closes the connection (it already knows), or when
        // a write fails (the core must be told, like any disconnect).
        let writer = async {
            loop {
                tokio::select! {
                    biased;
                    k = &mut kill_rx => return (true, k.ok()),
                    m = out_rx.recv() => {
                        let Some(m) = m else { return (true, None) };
                        tokio::select! {
                            r = sink.send(m) => if r.is_err() { return (false, None) },
                            k = &mut kill_rx => return (true, k.ok()),
                        }
                    }
                }
            }
        };
        let reader = async {
            loop {
                let frame = match stream.next().await {
                    Some(Ok(Message::Text(t))) => InFrame::Text(Bytes::from(t)),
                    Some(Ok(Message::Binary(b))) => InFrame::Binary(b.len()),
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
    if let Some(frame) = local_close {
        let _ = timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = timeout(CLOSE_GRACE, sink.close()).await;
    if !closed_by_core {
        let _ = core.send(Cmd::Closed { conn }).await;
    }
}
