//! The load: a talker sending 172-byte RTP (SRTP-protected with its own context, or plain)
//! at a fixed rate for a bounded time, and the count of what reached the listeners.
//!
//! Counting: the listener sockets are never read during a step. Each has a small receive
//! buffer; a datagram that reaches a full one is dropped by the kernel and counted in that
//! socket's `drops` column of /proc/net/udp. Delivered to a listener = what is queued on its
//! socket after the step (drained then) plus the increase of its drop counter. The kernel
//! work of delivering a datagram is done either way (in the sender's context on loopback),
//! and the benchmark's core does not pay for reading every copy. The relay and the raw
//! forwarders are counted in exactly this way, to the same sockets.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use livechat_radio::livechat_core::srtp::Context;

use crate::sys;

/// RTP header (12) + 20 ms of G.711 (160).
pub const RTP_LEN: usize = 172;
/// Output datagrams per second the full-speed probe asks for.
const PROBE_OUT: f64 = 1.5e6;
/// Packets one `sendmmsg` of the talker carries at most.
const BURST: usize = 64;

/// A talker: its socket, SSRC, context and RTP state.
pub struct Talker {
    pub sock: UdpSocket,
    pub ssrc: u32,
    pub ctx: Option<Context>,
    seq: u16,
}

impl Talker {
    pub fn new(sock: UdpSocket, ssrc: u32, ctx: Option<Context>) -> Talker {
        Talker {
            sock,
            ssrc,
            ctx,
            seq: 1,
        }
    }

    /// Builds the next packet into `buf`; the RTP timestamp carries the low 32 bits of
    /// CLOCK_REALTIME in ns (the header stays in the clear under SRTP), for latency.
    pub fn build(&mut self, buf: &mut [u8; 256]) -> usize {
        let ts = sys::realtime_ns() as u32;
        buf[0] = 0x80;
        buf[1] = 0; // PCMU
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        buf[12..RTP_LEN].fill(0xFF);
        self.seq = self.seq.wrapping_add(1);
        match &mut self.ctx {
            Some(ctx) => ctx.protect_rtp(buf, RTP_LEN).unwrap_or(RTP_LEN),
            None => RTP_LEN,
        }
    }

    /// Sends at `pps` packets/s (0: as fast as this thread can) to `dst` for `secs`;
    /// returns the packets sent.
    pub fn run(&mut self, dst: SocketAddr, pps: f64, secs: f64) -> u64 {
        let mut bufs = [[0u8; 256]; BURST];
        let mut lens = [0usize; BURST];
        let fd = self.sock.as_raw_fd();
        let start = Instant::now();
        let dur = Duration::from_secs_f64(secs);
        let mut sent = 0u64;
        loop {
            let el = start.elapsed();
            if el >= dur {
                break;
            }
            let due = if pps <= 0.0 {
                BURST as u64
            } else {
                ((pps * el.as_secs_f64()) as u64).saturating_sub(sent)
            };
            if due == 0 {
                std::hint::spin_loop();
                continue;
            }
            let n = (due as usize).min(BURST);
            for (b, l) in bufs.iter_mut().zip(lens.iter_mut()).take(n) {
                *l = self.build(b);
            }
            let got = sys::send_many(fd, &mut bufs[..n], &lens[..n], dst);
            sent += got as u64;
            if got < n {
                // The sequence numbers of unsent packets are simply skipped.
                std::hint::spin_loop();
            }
        }
        sent
    }
}

/// The listener sockets of one fan-out, and their counters.
pub struct Listeners {
    pub socks: Vec<UdpSocket>,
    ports: Vec<u16>,
}

impl Listeners {
    pub fn new(socks: Vec<UdpSocket>) -> Listeners {
        let ports = socks
            .iter()
            .map(|s| s.local_addr().map_or(0, |a| a.port()))
            .collect();
        Listeners { socks, ports }
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.socks
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Waits until the subject (receiving on `subject_port`) has nothing queued and no
    /// copy has arrived for 40 ms, at most `limit`; empties the listeners' queues on the
    /// way. Returns the datagrams drained, the drop counters, and when the last copy
    /// arrived (seconds after the call).
    fn settle(
        &self,
        subject_port: u16,
        mark: Option<&[u64]>,
        limit: f64,
    ) -> (u64, u64, f64, Vec<u64>) {
        let t0 = Instant::now();
        let mut drained = 0;
        let mut last = None;
        let mut last_change = 0.0;
        loop {
            let round: u64 = self.socks.iter().map(sys::drain).sum();
            drained += round;
            let table = sys::udp_table();
            let now_drops: Vec<u64> = self
                .ports
                .iter()
                .map(|p| table.get(p).map_or(0, |e| e.1))
                .collect();
            let drops: u64 = match mark {
                Some(m) => now_drops
                    .iter()
                    .zip(m)
                    .map(|(d, m)| d.saturating_sub(*m))
                    .sum(),
                None => now_drops.iter().sum(),
            };
            let backlog = table.get(&subject_port).map_or(0, |e| e.0);
            let now = t0.elapsed().as_secs_f64();
            if round > 0 || last != Some(drops) {
                last_change = now;
            } else if backlog == 0 && now - last_change > 0.04 {
                return (drained, drops, last_change, now_drops);
            }
            if now > limit {
                return (drained, drops, now, now_drops);
            }
            last = Some(drops);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The start of a step: whatever the subject still had is delivered and discarded;
    /// returns the drop counters.
    pub fn mark(&self, subject_port: u16) -> Vec<u64> {
        self.settle(subject_port, None, 5.0).3
    }

    /// Datagrams delivered since `mark` (queued + dropped at the full buffer), and how
    /// long after the call they kept arriving: what the subject had queued lands, and the
    /// time it took counts against its rate.
    pub fn delivered(&self, subject_port: u16, mark: &[u64]) -> (u64, f64) {
        let (drained, drops, last, _) = self.settle(subject_port, Some(mark), 5.0);
        (drained + drops, last)
    }
}

/// One step of load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Step {
    /// Talker packets sent.
    pub sent: u64,
    // `secs` runs from the first packet sent to the last copy delivered.
    /// Copies delivered to the listeners.
    pub delivered: u64,
    /// Expected copies: sent x fan-out.
    pub expected: u64,
    pub secs: f64,
    /// CPU seconds the subject used in the step.
    pub cpu: f64,
}

impl Step {
    pub fn loss(&self) -> f64 {
        if self.expected == 0 {
            return 1.0;
        }
        1.0 - self.delivered as f64 / self.expected as f64
    }

    pub fn in_pps(&self) -> f64 {
        self.sent as f64 / self.secs
    }

    pub fn out_pps(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
}

/// Runs one step: `pps` into `dst` for `secs`, counted at `listeners`; `pid` is the
/// subject whose CPU time is read.
pub fn step(
    talker: &mut Talker,
    dst: SocketAddr,
    listeners: &Listeners,
    pid: u32,
    pps: f64,
    secs: f64,
) -> Step {
    let mark = listeners.mark(dst.port());
    let cpu0 = sys::cpu_seconds(pid);
    let t0 = Instant::now();
    let sent = talker.run(dst, pps, secs);
    let elapsed = t0.elapsed().as_secs_f64();
    let (delivered, settle) = listeners.delivered(dst.port(), &mark);
    let cpu = sys::cpu_seconds(pid) - cpu0;
    let s = Step {
        sent,
        delivered,
        expected: sent * listeners.socks.len() as u64,
        secs: elapsed + settle,
        cpu,
    };
    if std::env::var_os("RELAY_BENCH_VERBOSE").is_some() {
        eprintln!(
            "  step: asked {pps:.0}/s: sent {} in {elapsed:.3} s (+{settle:.3} s), delivered {} of {}, loss {:.4} %, out {:.0}/s, cpu {:.2} s",
            s.sent,
            s.delivered,
            s.expected,
            s.loss() * 100.0,
            s.out_pps(),
            s.cpu
        );
    }
    s
}

/// The highest input rate with loss under `max_loss`, found by a probe at full speed and a
/// bisection (a failing rate is tried twice); returns the best passing step (or the
/// probe's, flagged, when none passed).
pub fn search(
    talker: &mut Talker,
    dst: SocketAddr,
    listeners: &Listeners,
    pid: u32,
    secs: f64,
    max_loss: f64,
) -> (Step, bool) {
    let fanout = listeners.socks.len() as f64;
    // The probe asks for 1.5 M output datagrams/s (beyond the physical limit), or the
    // talker's full speed if lower. Not unbounded: a subject far behind the talker accepts
    // packets whose sequence numbers jump by more than 2^15, and SRTP's index estimate
    // (RFC 3711 section 3.3.1) then loses the talker's stream for good.
    let probe = step(talker, dst, listeners, pid, PROBE_OUT / fanout, secs);
    if probe.loss() < max_loss {
        // The talker, not the subject, is the limit.
        return (probe, true);
    }
    let mut hi = probe.in_pps().max(probe.out_pps() / fanout);
    let mut lo = 0.0;
    let mut best: Option<Step> = None;
    let mut rate = probe.out_pps() / fanout * 0.97;
    for _ in 0..7 {
        let mut s = step(talker, dst, listeners, pid, rate, secs);
        if s.loss() >= max_loss {
            // Once more: on a shared machine one preemption of the subject can fail a step.
            s = step(talker, dst, listeners, pid, rate, secs);
        }
        if s.loss() < max_loss {
            lo = rate;
            if best.is_none_or(|b| s.out_pps() > b.out_pps()) {
                best = Some(s);
            }
        } else {
            hi = rate;
        }
        if lo == 0.0 {
            rate = hi * 0.9;
        } else {
            rate = (lo + hi) / 2.0;
        }
        if hi - lo < hi * 0.01 {
            break;
        }
    }
    match best {
        Some(b) => (b, true),
        None => (probe, false),
    }
}

/// Reads a probe socket in a thread: per datagram, kernel receive time minus the send time
/// in its RTP timestamp, in ns.
pub struct Probe {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<i64>>,
}

impl Probe {
    pub fn start(sock: UdpSocket, cpu: usize) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let _ = sys::enable_rx_timestamps(&sock);
        let _ = sock.set_nonblocking(false);
        let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
        let handle = std::thread::spawn(move || {
            let _ = sys::pin_self(cpu);
            let fd = sock.as_raw_fd();
            let mut buf = [0u8; 2048];
            let mut out = Vec::with_capacity(1 << 20);
            while !flag.load(Ordering::Relaxed) {
                if let Some((n, rx)) = sys::recv_timestamped(fd, &mut buf)
                    && n >= 12
                    && rx != 0
                {
                    let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    out.push(i64::from((rx as u32).wrapping_sub(ts) as i32));
                }
            }
            drop(sock);
            out
        });
        Probe { stop, handle }
    }

    pub fn finish(self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// p50, p99 and max of latencies in ns, as microseconds.
pub fn percentiles(mut v: Vec<i64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    Some((at(0.5), at(0.99), at(1.0)))
}
