//! The task that owns the core: it applies every input to the gateway and carries out
//! what the gateway asks for.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use livechat_core::gateway::ConnId;
use livechat_core::gateway::{Driver, Frame, Gateway, MediaId, Negotiated, Offer, OfferError};
use livechat_core::relay::Transmit;
use livechat_core::time::{Instant as CoreInstant, Now};
use livechat_core::wire::demux::{self, Kind};
use log::{debug, error, info, warn};
use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::admin;
use super::ops::Ops;
use super::udp::{RxBatch, TxBatch};
use super::webrtc::Webrtc;
use super::{
    CLOSE_GOING_AWAY, CLOSE_SLOW, Cmd, InFrame, OUTBOUND_BYTES, OUTBOUND_FAIR_BYTES,
    OUTBOUND_HARD_BYTES, OUTBOUND_QUEUE, OUTBOUND_QUEUE_BYTES, OUTBOUND_TOTAL_BYTES,
    SHUTDOWN_GRACE, Signals, UNIDENTIFIED_QUEUE_BYTES, close_frame,
};
use crate::alloc_count;
use crate::dump::DriverCounters;

struct Handle {
    id: ConnId,
    /// The client's address, for the admin API's `remote_addr`.
    addr: SocketAddr,
    out: mpsc::Sender<Utf8Bytes>,
    queued: Arc<AtomicUsize>,
    kill: Option<oneshot::Sender<CloseFrame>>,
    /// Whether the connection has a session; until then it is only ever sent small frames
    /// and its queue is bounded by [`UNIDENTIFIED_QUEUE_BYTES`].
    identified: bool,
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

    fn get_mut(&mut self, c: ConnId) -> Option<&mut Handle> {
        self.slots
            .get_mut(c.index())
            .and_then(Option::as_mut)
            .filter(|h| h.id == c)
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

/// The core's [`Driver`]: queues frames per connection, closes, draws random bytes,
/// answers WebRTC offers.
struct Io<'a> {
    reg: &'a mut Registry,
    slow: &'a mut Vec<ConnId>,
    ops: &'a mut Ops,
    rtc: &'a mut Webrtc,
}

/// Whether a frame of `len` bytes may join a queue holding `mine` bytes, bounded by `cap`,
/// with `total` bytes of frames queued toward everyone. An empty queue takes it up to
/// [`OUTBOUND_HARD_BYTES`]: a client that reads is not closed for what others hold.
fn fits(len: usize, mine: usize, cap: usize, total: usize) -> bool {
    if mine == 0 {
        return total + len <= OUTBOUND_HARD_BYTES || len <= OUTBOUND_FAIR_BYTES;
    }
    mine + len <= cap && (total + len <= OUTBOUND_TOTAL_BYTES || mine + len <= OUTBOUND_FAIR_BYTES)
}

/// One outbound frame's bytes, shared by every queue it joins: counted once in
/// [`OUTBOUND_BYTES`] while it exists, whatever the number of recipients.
struct Counted(Vec<u8>);

impl Counted {
    fn new(bytes: Vec<u8>) -> Self {
        OUTBOUND_BYTES.fetch_add(bytes.len(), Ordering::Relaxed);
        Counted(bytes)
    }
}

impl Counted {
    /// `text` as one counted allocation that every queue it joins shares.
    fn shared(text: &str) -> Utf8Bytes {
        let bytes = hyper::body::Bytes::from_owner(Counted::new(text.as_bytes().to_vec()));
        // A copy of a `str`: the check cannot fail, and costs one pass over the frame.
        Utf8Bytes::try_from(bytes).unwrap_or_default()
    }
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OUTBOUND_BYTES.fetch_sub(self.0.len(), Ordering::Relaxed);
    }
}

impl Driver for Io<'_> {
    fn send(&mut self, to: &[ConnId], frame: &[u8]) {
        let Ok(text) = std::str::from_utf8(frame) else {
            error!("core produced a frame that is not UTF-8; dropped");
            return;
        };
        let len = text.len();
        // Queued toward everyone before this frame, which is one allocation however many
        // queues it joins.
        let total = OUTBOUND_BYTES.load(Ordering::Relaxed);
        let text = Counted::shared(text);
        for c in to {
            let out = self.reg.get(*c).map(|h| {
                let cap = if h.identified {
                    OUTBOUND_QUEUE_BYTES
                } else {
                    UNIDENTIFIED_QUEUE_BYTES
                };
                (&h.out, &h.queued, cap)
            });
            if let Some((out, queued, cap)) = out {
                // Big answers count by their size: a client that does not read is closed
                // after a few of them, not after hundreds.
                if !fits(len, queued.load(Ordering::Relaxed), cap, total) {
                    self.slow.push(*c);
                    continue;
                }
                match out.try_send(text.clone()) {
                    Ok(()) => {
                        queued.fetch_add(len, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => self.slow.push(*c),
                    // Its task is gone (the peer went away mid-write): clean up now rather
                    // than when the zombie reaper finds it.
                    Err(mpsc::error::TrySendError::Closed(_)) => self.slow.push(*c),
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

    fn trace(&mut self, event: &livechat_core::trace::Event<'_>) {
        self.ops.on_trace(event);
    }

    fn error_sent(&mut self, code: u16) {
        self.ops.error_sent(code);
    }

    fn negotiate<'d>(&'d mut self, offer: &Offer<'_>) -> Result<Negotiated<'d>, OfferError> {
        self.rtc.negotiate(offer)
    }

    fn media_ended(&mut self, media: MediaId) {
        self.rtc.ended(media);
    }
}

/// Bytes of frames queued by the core task before it lets the connections' writers run:
/// a queue grows by at most this (and one frame) between two turns of its writer, well
/// within [`OUTBOUND_QUEUE_BYTES`].
const YIELD_AFTER_BYTES: usize = 16 * 1024;

/// `recvmmsg` batches handled in one turn of the loop before the other inputs (signals,
/// gateway frames, timers) get theirs: at most `UDP_ROUNDS * RX_BATCH` datagrams.
const UDP_ROUNDS: usize = 32;

/// Drains the media socket: batches in, the core relays into the send batch, flushed
/// after each batch in. Returns when the socket is empty (readiness cleared) or after
/// [`UDP_ROUNDS`] batches.
// The loop's parts it drives, each borrowed separately from the loop's locals.
#[allow(clippy::too_many_arguments)]
fn drain_udp(
    udp: &UdpSocket,
    gw: &mut Gateway<'_>,
    rtc: &mut Webrtc,
    clock: &Clock,
    rx: &mut RxBatch,
    tx: &mut TxBatch,
    counters: &mut DriverCounters,
    ops: &mut Ops,
) {
    let allocs_before = alloc_count::allocations();
    let fd = udp.as_raw_fd();
    for _ in 0..UDP_ROUNDS {
        let got = udp.try_io(Interest::READABLE, || rx.recv(fd));
        let n = match got {
            Ok(n) => n,
            // Empty (readiness cleared by `try_io`), or an error such as a reflected ICMP
            // error on some systems: either way, back to the loop.
            Err(_) => break,
        };
        counters.udp_batches += 1;
        let now = clock.now();
        for i in 0..n {
            if let Some((src, d)) = rx.get(i) {
                // RFC 7983: STUN and DTLS are the agent's; RTP and RTCP (and what is
                // neither, to be counted) the core's.
                match demux::classify(d) {
                    Kind::Stun | Kind::Dtls => {
                        rtc.datagram(now, src, d, &mut |to, b| {
                            tx.send_to(to, b);
                        });
                        rtc.pump(now, gw, &mut |ev| ops.on_trace(ev));
                    }
                    _ => gw.handle_datagram(now, src, d, tx),
                }
            }
        }
        tx.flush();
        gw.drain_latched(|ev| ops.on_trace(ev));
    }
    counters.webrtc = rtc.stats();
    counters.udp_send_failed = tx.failed;
    counters.udp_allocs += alloc_count::allocations() - allocs_before;
}

/// Converts the runtime's clocks into the core's.
#[derive(Clone, Copy)]
pub(super) struct Clock {
    base: Instant,
}

impl Clock {
    pub(super) fn new(base: Instant) -> Clock {
        Clock { base }
    }

    pub(super) fn now(&self) -> Now {
        let mono = CoreInstant::from_micros(self.base.elapsed().as_micros() as u64);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Now::new(mono, unix_ms)
    }

    fn to_tokio(self, t: CoreInstant) -> Instant {
        self.base + StdDuration::from_micros(t.as_micros())
    }
}

/// Runs the core until SIGTERM or SIGINT: commands from the connections, media datagrams,
/// the core's timers and the service events, then closes every connection (1001).
#[allow(clippy::too_many_arguments)]
pub(super) async fn core_loop(
    mut gw: Box<Gateway<'static>>,
    mut rtc: Webrtc,
    clock: Clock,
    mut rx: mpsc::Receiver<Cmd>,
    udp: UdpSocket,
    mut signals: Signals,
    live: Arc<AtomicUsize>,
    mut svc: crate::service::Service,
    mut ops: Ops,
    mut cameras: crate::camera::Cameras,
) -> ExitCode {
    let mut reg = Registry::default();
    let mut slow = Vec::new();
    let mut udp_rx = RxBatch::new();
    let mut udp_tx = TxBatch::new(udp.as_raw_fd());
    // Outbound bytes alive when the writers last had their turn.
    let mut mark = OUTBOUND_BYTES.load(Ordering::Relaxed);
    loop {
        let deadline = match (gw.poll_timeout(), rtc.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|t| clock.to_tokio(t));
        tokio::select! {
            biased;
            _ = signals.term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = signals.int.recv() => { info!("SIGINT: shutting down"); break; }
            ev = svc.next() => {
                svc.counters.webrtc = rtc.stats();
                svc.handle(ev, &gw);
            }
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { break };
                let now = clock.now();
                rtc.set_now(now.mono);
                match cmd {
                    Cmd::Open { peer, addr, out, queued, kill, reply } => {
                        // Registered first, so HELLO goes out through the connection's handle.
                        let res = gw.accept(now, peer, &mut Io { reg: &mut reg, slow: &mut slow, rtc: &mut rtc, ops: &mut ops }).map(|accepted| {
                            reg.insert(Handle { id: accepted.conn(), addr, out, queued, kill: Some(kill), identified: false });
                            gw.greet(now, accepted, &mut Io { reg: &mut reg, slow: &mut slow, rtc: &mut rtc, ops: &mut ops })
                        });
                        let _ = reply.send(res);
                    }
                    Cmd::Frame { conn, frame } => {
                        let f = match &frame {
                            InFrame::Text(b) => Frame::Text(b),
                            InFrame::Binary(n) => Frame::Binary(*n),
                            InFrame::Oversized { len, id } => Frame::Oversized { len: *len, id: *id },
                            InFrame::Ping => Frame::Ping,
                        };
                        gw.handle_frame(now, conn, f, &mut Io { reg: &mut reg, slow: &mut slow, rtc: &mut rtc, ops: &mut ops });
                        if let Some(h) = reg.get_mut(conn) {
                            h.identified = gw.session(conn).is_some();
                        }
                    }
                    Cmd::Admin { req, reply } => {
                        svc.sync_counters();
                        let answer = if matches!(req, admin::AdminReq::Cameras) {
                            admin::Answer::json(200, &cameras.admin_json())
                        } else if req.acts() {
                            admin::act(&mut gw, now, req, &mut Io { reg: &mut reg, slow: &mut slow, rtc: &mut rtc, ops: &mut ops })
                        } else {
                            admin::read(&gw, &req, &ops, &svc.counters, &|c| reg.get(c).map(|h| h.addr))
                        };
                        let _ = reply.send(answer);
                    }
                    Cmd::Closed { conn, slow: was_slow } => {
                        if was_slow {
                            svc.counters.slow_closed += 1;
                        }
                        reg.take(conn);
                        gw.close(now, conn, &mut Io { reg: &mut reg, slow: &mut slow, rtc: &mut rtc, ops: &mut ops });
                    }
                }
            }
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let now = clock.now();
                rtc.set_now(now.mono);
                if gw.poll_timeout().is_some_and(|t| t <= now.mono) {
                    gw.handle_timeout(now, &mut Io { reg: &mut reg, slow: &mut slow, rtc: &mut rtc, ops: &mut ops });
                }
                rtc.timeout(now, &mut |to, b| {
                    udp_tx.send_to(to, b);
                });
                udp_tx.flush();
                rtc.pump(now, &mut gw, &mut |ev| ops.on_trace(ev));
                svc.counters.webrtc = rtc.stats();
            }
            r = udp.readable() => {
                if r.is_ok() {
                    drain_udp(&udp, &mut gw, &mut rtc, &clock, &mut udp_rx, &mut udp_tx, &mut svc.counters, &mut ops);
                }
            }
            Some((i, state)) = cameras.states.recv() => {
                if let Some(st) = cameras.status.get(i) {
                    ops.on_trace(&livechat_core::trace::Event::new(
                        livechat_core::trace::Kind::Camera,
                        state.as_str(),
                        Some(&st.channel),
                        Some(&st.id),
                    ));
                }
            }
            Some(f) = cameras.frames.recv() => {
                cameras.dequeued(&f);
                let frame = livechat_core::relay::camera::CameraFrame {
                    au: &f.au,
                    timestamp: f.timestamp,
                    session: f.session,
                };
                let r = gw.camera_frame(clock.now(), f.camera, &frame, &mut udp_tx);
                udp_tx.flush();
                cameras.outcome(&f, r);
            }
        }
        // Slow consumers: closed, and cleaned up like any disconnect (which may find more).
        while let Some(c) = slow.pop() {
            let Some(h) = reg.get(c) else {
                continue;
            };
            if h.out.is_closed() {
                debug!("connection task gone; cleaning up its session");
                reg.take(c);
            } else {
                warn!(
                    "closing a slow consumer (outbound queue full: {OUTBOUND_QUEUE} frames, {OUTBOUND_QUEUE_BYTES} bytes, or {OUTBOUND_FAIR_BYTES} bytes with {OUTBOUND_TOTAL_BYTES} queued in all)"
                );
                svc.counters.slow_closed += 1;
                reg.kill(c, CLOSE_SLOW, "slow consumer");
            }
            gw.close(
                clock.now(),
                c,
                &mut Io {
                    reg: &mut reg,
                    slow: &mut slow,
                    ops: &mut ops,
                    rtc: &mut rtc,
                },
            );
        }
        // Writers run only when this task yields, and it yields only when all its inputs
        // are empty (or its budget of 128 is spent): a burst of frames into a big channel
        // would pile up in every member's queue and close readers as slow consumers. So
        // it lets them write once it queued [`YIELD_AFTER_BYTES`].
        let alive = OUTBOUND_BYTES.load(Ordering::Relaxed);
        if alive >= mark + YIELD_AFTER_BYTES {
            tokio::task::yield_now().await;
            mark = OUTBOUND_BYTES.load(Ordering::Relaxed);
        } else {
            mark = mark.min(alive);
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
    if alloc_count::ENABLED {
        let m = gw.media_stats();
        let c = &svc.counters;
        info!(
            "alloc-count: {} allocations in the media path over {} datagrams in, {} relayed, {} out: {:.6} per relayed packet",
            c.udp_allocs,
            m.packets_in,
            m.relayed,
            m.packets_out,
            c.udp_allocs as f64 / m.relayed.max(1) as f64
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_bounded_in_bytes_alone_and_together() {
        let big = livechat_core::config::MAX_OUTBOUND_FRAME;
        let cap = OUTBOUND_QUEUE_BYTES;
        assert!(fits(big, 0, cap, 0));
        assert!(fits(big, cap - big, cap, 0), "up to the cap");
        assert!(!fits(1, cap, cap, 0), "not beyond it");
        // Everyone together over budget: only connections under their fair share get more.
        assert!(!fits(100, OUTBOUND_FAIR_BYTES, cap, OUTBOUND_TOTAL_BYTES));
        assert!(fits(100, 1, cap, OUTBOUND_TOTAL_BYTES));
        assert!(!fits(OUTBOUND_FAIR_BYTES, 1, cap, OUTBOUND_TOTAL_BYTES));
        // An empty queue takes any frame up to the hard bound, so a client that reads is
        // not closed for what others hold; beyond it, its fair share.
        assert!(fits(big, 0, cap, OUTBOUND_TOTAL_BYTES));
        assert!(!fits(big, 0, cap, OUTBOUND_HARD_BYTES));
        assert!(fits(OUTBOUND_FAIR_BYTES, 0, cap, OUTBOUND_HARD_BYTES));
        assert!(fits(big, 0, UNIDENTIFIED_QUEUE_BYTES, 0));
        // A connection that has not identified holds a few KiB at most.
        assert!(fits(200, 100, UNIDENTIFIED_QUEUE_BYTES, 0));
        assert!(!fits(
            200,
            UNIDENTIFIED_QUEUE_BYTES - 100,
            UNIDENTIFIED_QUEUE_BYTES,
            0
        ));
        const {
            assert!(
                (livechat_core::config::DEFAULT_MAX_SESSIONS
                    + livechat_core::config::MAX_UNIDENTIFIED)
                    * OUTBOUND_FAIR_BYTES
                    <= OUTBOUND_TOTAL_BYTES
                    && OUTBOUND_TOTAL_BYTES < OUTBOUND_HARD_BYTES
            )
        };
    }

    /// A frame shared by many queues counts its bytes once, and gives them back when the
    /// last queue lets go of it.
    #[test]
    fn a_frame_counts_once_however_many_queues_hold_it() {
        let before = OUTBOUND_BYTES.load(Ordering::Relaxed);
        let text = "x".repeat(30_000);
        let frame = Counted::shared(&text);
        let mut queues: Vec<_> = (0..50).map(|_| mpsc::channel(OUTBOUND_QUEUE)).collect();
        for (tx, _) in &queues {
            assert!(tx.try_send(frame.clone()).is_ok());
        }
        drop(frame);
        assert_eq!(OUTBOUND_BYTES.load(Ordering::Relaxed) - before, text.len());
        for (_, rx) in &mut queues[..49] {
            assert!(rx.try_recv().is_ok());
        }
        assert_eq!(
            OUTBOUND_BYTES.load(Ordering::Relaxed) - before,
            text.len(),
            "one queue still holds it"
        );
        queues.clear();
        assert_eq!(OUTBOUND_BYTES.load(Ordering::Relaxed), before);
    }
}
