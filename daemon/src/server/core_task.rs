//! The task that owns the core: it applies every input to the gateway and carries out
//! what the gateway asks for.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use livechat_core::gateway::{Driver, Frame, Gateway, Transmit};
use livechat_core::hub::ConnId;
use livechat_core::time::{Instant as CoreInstant, Now};
use log::{error, info, warn};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::{
    CLOSE_GOING_AWAY, CLOSE_SLOW, Cmd, InFrame, OUTBOUND_QUEUE, SHUTDOWN_GRACE, Signals, UDP_BUF,
    close_frame,
};

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

/// The relay's [`Transmit`]: non-blocking sends on the media socket; a full socket buffer
/// is a counted drop, never a wait.
struct UdpTx<'a> {
    socket: &'a UdpSocket,
}

impl Transmit for UdpTx<'_> {
    fn send_to(&mut self, dst: std::net::SocketAddr, datagram: &[u8]) -> bool {
        self.socket.try_send_to(datagram, dst).is_ok()
    }
}

/// Datagrams handled in one go after the one that woke the loop.
const UDP_BATCH: usize = 64;

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
pub(super) async fn core_loop(
    mut gw: Box<Gateway<'static>>,
    mut rx: mpsc::Receiver<Cmd>,
    udp: UdpSocket,
    mut signals: Signals,
    live: Arc<AtomicUsize>,
    mut svc: crate::service::Service,
) -> ExitCode {
    let clock = Clock {
        base: Instant::now(),
    };
    let mut reg = Registry::default();
    let mut slow = Vec::new();
    let mut udp_buf = vec![0u8; UDP_BUF];
    loop {
        let deadline = gw.poll_timeout().map(|t| clock.to_tokio(t));
        tokio::select! {
            biased;
            _ = signals.term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = signals.int.recv() => { info!("SIGINT: shutting down"); break; }
            ev = svc.next() => svc.handle(ev, &gw),
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
                            InFrame::Binary(n) => Frame::Binary(*n),
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
                let now = clock.now();
                let mut tx = UdpTx { socket: &udp };
                if let Ok((n, src)) = r
                    && let Some(d) = udp_buf.get_mut(..n)
                {
                    gw.handle_datagram(now, src, d, &mut tx);
                }
                // Drain what else is waiting before going back to the other inputs.
                for _ in 0..UDP_BATCH {
                    match udp.try_recv_from(&mut udp_buf) {
                        Ok((n, src)) => {
                            if let Some(d) = udp_buf.get_mut(..n) {
                                gw.handle_datagram(now, src, d, &mut tx);
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
        }
        // Slow consumers: closed, and cleaned up like any disconnect (which may find more).
        while let Some(c) = slow.pop() {
            if reg.get(c).is_none() {
                continue;
            }
            warn!("closing a slow consumer (outbound queue of {OUTBOUND_QUEUE} frames full)");
            svc.counters.slow_closed += 1;
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
    svc.stopping();
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
