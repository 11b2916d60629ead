//! The radio's media socket (PROTOCOL.md sections 2 and 3): RTP or SRTP to and from the
//! daemon's one UDP port.
//!
//! Sending: PCMU frames as RTP payload type 0 with this radio's SSRC, sequence number and
//! timestamp (both start random, RFC 3550 section 5.1), protected with the client -> server
//! key when keyed. Latching: an RTCP receiver report with an SDES CNAME (a minimal RFC 3550
//! compound packet), SRTCP-protected when keyed, at join and then periodically (RFC 6263:
//! keepalives keep the server's latch and any NAT binding fresh).
//!
//! Receiving: a task reads the socket, keeps only datagrams from the server's media address,
//! unprotects RTP with the server -> client key (or checks plain RTP parses) and queues each
//! packet it accepts; everything else is counted in [`RxStats`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use livechat_core::srtp::{self, Context, MasterKey, Suite};
use livechat_core::wire::{rtcp, rtp};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::Error;

/// RTP payload type of G.711 mu-law (RFC 3551).
pub const PT_PCMU: u8 = 0;
/// Socket buffer size asked for in both directions: a few seconds of a busy channel.
const SOCKET_BUF: usize = 1 << 20;
/// Largest datagram handled.
const MAX_DATAGRAM: usize = 2048;
/// SRTP/SRTCP trailer room: the 80-bit tag, plus the SRTCP index word.
const TRAILER_ROOM: usize = srtp::SRTCP_TAG_LEN + srtp::SRTCP_INDEX_LEN;

/// How the radio's media is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Plain RTP (only where the daemon's LIVECHAT_PLAIN_RTP allows it).
    Plain,
    /// SRTP with keys exchanged over the gateway (PROTOCOL.md section 3).
    Srtp(Suite),
}

impl Protection {
    /// `80`, `32` or `off` (also the full suite names and `plain`).
    pub fn from_name(name: &str) -> Option<Protection> {
        match name {
            "80" | "AES_CM_128_HMAC_SHA1_80" => Some(Protection::Srtp(Suite::AesCm128HmacSha1_80)),
            "32" | "AES_CM_128_HMAC_SHA1_32" => Some(Protection::Srtp(Suite::AesCm128HmacSha1_32)),
            "off" | "plain" | "none" => Some(Protection::Plain),
            _ => None,
        }
    }
}

/// One packet accepted from the server: the RTP packet after SRTP was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The (decrypted) RTP packet, header included.
    pub rtp: Vec<u8>,
    /// Where it came from (the server's media address).
    pub from: SocketAddr,
}

impl Received {
    fn header(&self) -> Option<rtp::Packet<&[u8]>> {
        rtp::Packet::new_checked(self.rtp.as_slice()).ok()
    }

    /// The RTP sequence number.
    pub fn seq(&self) -> u16 {
        self.header().map_or(0, |p| p.seq_number())
    }

    /// The RTP SSRC: the talker's.
    pub fn ssrc(&self) -> u32 {
        self.header().map_or(0, |p| p.ssrc())
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        self.header().map_or(0, |p| p.timestamp())
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.header().is_some_and(|p| p.marker())
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        match rtp::Packet::new_checked(self.rtp.as_slice()) {
            Ok(p) => {
                let (start, len) = (p.header_len(), p.payload().len());
                &self.rtp[start..start + len]
            }
            Err(_) => &[],
        }
    }
}

/// One RTP packet sent: as built, and as it went on the wire (protected when keyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The plain RTP packet.
    pub rtp: Vec<u8>,
    /// The datagram sent (SRTP, or the same bytes as `rtp` for plain RTP).
    pub wire: Vec<u8>,
}

/// What the receive side saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxStats {
    /// RTP packets accepted and queued.
    pub rtp: u64,
    /// RTCP packets accepted (the server sends none today).
    pub rtcp: u64,
    /// SRTP/SRTCP packets that failed authentication.
    pub auth_failed: u64,
    /// SRTP/SRTCP packets replayed or behind the replay window.
    pub replayed: u64,
    /// Datagrams that are not RTP or RTCP, or do not parse.
    pub malformed: u64,
    /// Datagrams from an address other than the server's media address.
    pub foreign: u64,
}

#[derive(Default)]
struct Counters {
    rtp: AtomicU64,
    rtcp: AtomicU64,
    auth_failed: AtomicU64,
    replayed: AtomicU64,
    malformed: AtomicU64,
    foreign: AtomicU64,
}

impl Counters {
    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RxStats {
        RxStats {
            rtp: self.rtp.load(Ordering::Relaxed),
            rtcp: self.rtcp.load(Ordering::Relaxed),
            auth_failed: self.auth_failed.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            foreign: self.foreign.load(Ordering::Relaxed),
        }
    }
}

/// The sending state: client -> server context and the RTP counters.
struct Tx {
    ctx: Option<Context>,
    seq: u16,
    timestamp: u32,
}

/// Keys for a media session; `None` for plain RTP.
pub(crate) struct Keys {
    pub(crate) suite: Suite,
    /// Client -> server (what this radio sends).
    pub(crate) send: MasterKey,
    /// Server -> client (what this radio receives).
    pub(crate) receive: MasterKey,
}

/// A radio's media socket for one joined channel.
pub struct Media {
    socket: Arc<UdpSocket>,
    server: SocketAddr,
    ssrc: u32,
    cname: Arc<str>,
    protection: Protection,
    tx: Arc<Mutex<Tx>>,
    rx: mpsc::UnboundedReceiver<Received>,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("local", &self.socket.local_addr().ok())
            .field("server", &self.server)
            .field("ssrc", &self.ssrc)
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

impl Drop for Media {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Media {
    /// Binds a socket for `server`, sends the first latching report and starts the receive
    /// task and, with `latch_every`, the periodic reports.
    pub(crate) async fn open(
        server: SocketAddr,
        ssrc: u32,
        cname: &str,
        keys: Option<Keys>,
        latch_every: Option<Duration>,
    ) -> Result<Media, Error> {
        let socket = Arc::new(bind_for(server)?);
        let (protection, send_ctx, recv_ctx) = match keys {
            Some(k) => (
                Protection::Srtp(k.suite),
                Some(Context::new(k.suite, &k.send)),
                Some(Context::new(k.suite, &k.receive)),
            ),
            None => (Protection::Plain, None, None),
        };
        let tx = Arc::new(Mutex::new(Tx {
            ctx: send_ctx,
            seq: random_u32() as u16,
            timestamp: random_u32(),
        }));
        let counters = Arc::new(Counters::default());
        let (queue, rx) = mpsc::unbounded_channel();
        let receiver = tokio::spawn(receive(
            socket.clone(),
            server,
            recv_ctx,
            queue,
            counters.clone(),
        ));
        // Built before anything can fail, so that dropping it stops the tasks.
        let mut media = Media {
            socket,
            server,
            ssrc,
            cname: Arc::from(cname),
            protection,
            tx,
            rx,
            counters,
            tasks: vec![receiver],
        };
        media.send_report().await?;
        if let Some(every) = latch_every {
            let (socket, tx, cname) = (media.socket.clone(), media.tx.clone(), media.cname.clone());
            media.tasks.push(tokio::spawn(async move {
                let start = tokio::time::Instant::now() + every;
                let mut tick = tokio::time::interval_at(start, every);
                loop {
                    tick.tick().await;
                    if let Ok(rr) = report(&tx, ssrc, &cname) {
                        let _ = socket.send_to(&rr, server).await;
                    }
                }
            }));
        }
        Ok(media)
    }

    /// This radio's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The server's media address (from the JOIN ACK).
    pub fn server_addr(&self) -> SocketAddr {
        self.server
    }

    /// The local address of the media socket.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.socket
            .local_addr()
            .map_err(|e| Error::io("the media socket's address", e))
    }

    /// Plain or SRTP with a suite.
    pub fn protection(&self) -> Protection {
        self.protection
    }

    fn lock_tx(&self) -> MutexGuard<'_, Tx> {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sequence number the next RTP packet gets.
    pub fn next_seq(&self) -> u16 {
        self.lock_tx().seq
    }

    /// Sets the sequence number of the next RTP packet (e.g. to cross the 16-bit wrap soon).
    pub fn set_next_seq(&self, seq: u16) {
        self.lock_tx().seq = seq;
    }

    /// Builds the next RTP packet (PT 0, this SSRC, the next sequence number; the timestamp
    /// then advances by the payload's length in samples) and protects it when keyed. Nothing
    /// is sent.
    pub fn build_rtp(&self, payload: &[u8], marker: bool) -> Result<Sent, Error> {
        let mut tx = self.lock_tx();
        let header = rtp::Header {
            marker,
            payload_type: PT_PCMU,
            seq_number: tx.seq,
            timestamp: tx.timestamp,
            ssrc: self.ssrc,
            csrcs: &[],
            extension: None,
        };
        let mut buf = vec![0u8; rtp::HEADER_LEN + payload.len() + TRAILER_ROOM];
        let len = header
            .emit_packet(payload, 0, &mut buf)
            .map_err(|e| Error::Usage(format!("cannot build an RTP packet: {e}")))?;
        let plain = buf[..len].to_vec();
        let wire_len = match &mut tx.ctx {
            Some(ctx) => ctx
                .protect_rtp(&mut buf, len)
                .map_err(|e| Error::Srtp(format!("protecting RTP seq {}: {e}", tx.seq)))?,
            None => len,
        };
        buf.truncate(wire_len);
        tx.seq = tx.seq.wrapping_add(1);
        // One PCMU byte is one sample at 8 kHz.
        tx.timestamp = tx.timestamp.wrapping_add(payload.len() as u32);
        Ok(Sent {
            rtp: plain,
            wire: buf,
        })
    }

    /// Builds and sends the next RTP packet; see [`Media::build_rtp`].
    pub async fn send_rtp(&self, payload: &[u8], marker: bool) -> Result<Sent, Error> {
        let sent = self.build_rtp(payload, marker)?;
        send_to(&self.socket, &sent.wire, self.server).await?;
        Ok(sent)
    }

    /// Sends `datagram` to the server as it is (a replay, say).
    pub async fn send_raw(&self, datagram: &[u8]) -> Result<(), Error> {
        send_to(&self.socket, datagram, self.server).await
    }

    /// Sends a latching receiver report now.
    pub async fn send_report(&self) -> Result<(), Error> {
        let rr = report(&self.tx, self.ssrc, &self.cname)?;
        send_to(&self.socket, &rr, self.server).await
    }

    /// The next accepted packet, waiting at most `within`.
    pub async fn recv(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next accepted packet, waiting as long as it takes (`None` once the socket task
    /// ended).
    pub async fn recv_next(&mut self) -> Option<Received> {
        self.rx.recv().await
    }

    /// Every packet accepted within `within` from now.
    pub async fn recv_for(&mut self, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            out.push(r);
        }
        out
    }

    /// Up to `n` packets, waiting at most `within` in all.
    pub async fn recv_n(&mut self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(r)) => out.push(r),
                _ => break,
            }
        }
        out
    }

    /// Packets already queued, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }

    /// Receive counters.
    pub fn stats(&self) -> RxStats {
        self.counters.snapshot()
    }
}

/// A UDP socket of the server's address family with large buffers.
fn bind_for(server: SocketAddr) -> Result<UdpSocket, Error> {
    use socket2::{Domain, Protocol as SockProto, Socket, Type};
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let what = "opening the media socket";
    let s = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(SockProto::UDP))
        .map_err(|e| Error::io(what, e))?;
    // Best effort: the kernel caps these at its own limits.
    let _ = s.set_recv_buffer_size(SOCKET_BUF);
    let _ = s.set_send_buffer_size(SOCKET_BUF);
    s.bind(&bind.into()).map_err(|e| Error::io(what, e))?;
    s.set_nonblocking(true).map_err(|e| Error::io(what, e))?;
    UdpSocket::from_std(s.into()).map_err(|e| Error::io(what, e))
}

async fn send_to(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) -> Result<(), Error> {
    socket
        .send_to(datagram, to)
        .await
        .map(|_| ())
        .map_err(|e| Error::io(format!("sending to {to}"), e))
}

/// A receiver report with no blocks plus an SDES CNAME (RFC 3550 section 6.1: a compound
/// packet starts with a report and carries a CNAME), SRTCP-protected when keyed.
fn report(tx: &Mutex<Tx>, ssrc: u32, cname: &str) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; 8 + 4 + 8 + cname.len().min(255) + 4 + TRAILER_ROOM];
    let bad = |e: rtcp::EmitError| Error::Usage(format!("cannot build an RTCP report: {e}"));
    let rr = rtcp::emit_receiver_report(ssrc, &[], &mut buf).map_err(bad)?;
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let sdes = rtcp::emit_sdes_cname(ssrc, cname, &mut buf[rr..]).map_err(bad)?;
    let len = rr + sdes;
    let mut tx = tx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let n = match &mut tx.ctx {
        Some(ctx) => ctx
            .protect_rtcp(&mut buf, len)
            .map_err(|e| Error::Srtp(format!("protecting RTCP: {e}")))?,
        None => len,
    };
    buf.truncate(n);
    Ok(buf)
}

/// The receive task.
async fn receive(
    socket: Arc<UdpSocket>,
    server: SocketAddr,
    mut ctx: Option<Context>,
    queue: mpsc::UnboundedSender<Received>,
    c: Arc<Counters>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(_) => {
                // ICMP errors surface here on some systems; do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if from != server {
            Counters::bump(&c.foreign);
            continue;
        }
        let pkt = &mut buf[..n];
        // RFC 7983 demultiplexing on the first byte; RTCP by its packet type (RFC 5761).
        let is_rtp_or_rtcp = n >= 2 && (128..=191).contains(&pkt[0]);
        if !is_rtp_or_rtcp {
            Counters::bump(&c.malformed);
            continue;
        }
        let is_rtcp = (192..=223).contains(&pkt[1]);
        let r = match (&mut ctx, is_rtcp) {
            (Some(ctx), false) => ctx.unprotect_rtp(pkt),
            (Some(ctx), true) => ctx.unprotect_rtcp(pkt),
            (None, _) => Ok(n),
        };
        let len = match r {
            Ok(len) => len,
            Err(srtp::Error::AuthFailed) => {
                Counters::bump(&c.auth_failed);
                continue;
            }
            Err(srtp::Error::Replayed | srtp::Error::IndexTooOld) => {
                Counters::bump(&c.replayed);
                continue;
            }
            Err(_) => {
                Counters::bump(&c.malformed);
                continue;
            }
        };
        if is_rtcp {
            Counters::bump(&c.rtcp);
            continue;
        }
        if rtp::Packet::new_checked(&pkt[..len]).is_err() {
            Counters::bump(&c.malformed);
            continue;
        }
        Counters::bump(&c.rtp);
        let got = Received {
            rtp: pkt[..len].to_vec(),
            from,
        };
        if queue.send(got).is_err() {
            return;
        }
    }
}

/// A random `u32` from the OS.
pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    fill_random(&mut b);
    u32::from_be_bytes(b)
}

/// Fills `buf` from the OS random source. Without it no key can be made safely.
pub(crate) fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        eprintln!("lcradio: the OS random number generator failed: {e}");
        std::process::abort();
    }
}

/// A fresh random master key and salt.
pub(crate) fn random_key() -> MasterKey {
    let mut key = [0u8; srtp::MASTER_KEY_LEN];
    let mut salt = [0u8; srtp::MASTER_SALT_LEN];
    fill_random(&mut key);
    fill_random(&mut salt);
    MasterKey::aes_cm(key, salt)
}

/// The SDES (base64) form of `key`.
pub fn key_to_sdes(key: &MasterKey) -> String {
    let mut out = [0u8; 40];
    key.to_sdes(&mut out).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_names() {
        assert_eq!(
            Protection::from_name("80"),
            Some(Protection::Srtp(Suite::AesCm128HmacSha1_80))
        );
        assert_eq!(
            Protection::from_name("AES_CM_128_HMAC_SHA1_32"),
            Some(Protection::Srtp(Suite::AesCm128HmacSha1_32))
        );
        assert_eq!(Protection::from_name("off"), Some(Protection::Plain));
        assert_eq!(Protection::from_name("64"), None);
    }

    #[test]
    fn reports_are_valid_compound_rtcp_and_unprotect() {
        let key = random_key();
        let suite = Suite::AesCm128HmacSha1_32;
        let tx = Mutex::new(Tx {
            ctx: Some(Context::new(suite, &key)),
            seq: 0,
            timestamp: 0,
        });
        let mut rx = Context::new(suite, &key);
        for _ in 0..3 {
            let mut rr = report(&tx, 0xABCD, "alice@lcradio").expect("builds");
            let n = rx.unprotect_rtcp(&mut rr).expect("authenticates");
            let pkts: Vec<_> = rtcp::Compound::new(&rr[..n]).collect();
            assert_eq!(pkts.len(), 2, "RR then SDES");
            assert!(pkts.iter().all(Result::is_ok));
            assert_eq!(rtcp::first_ssrc(&rr[..n]), Ok(Some(0xABCD)));
        }
        let plain = Mutex::new(Tx {
            ctx: None,
            seq: 0,
            timestamp: 0,
        });
        let rr = report(&plain, 1, "x").expect("builds");
        assert!(rtcp::Compound::new(&rr).all(|p| p.is_ok()));
        assert_eq!(rr[1], 201, "starts with an RR");
    }

    #[test]
    fn sdes_key_round_trips() {
        let k = random_key();
        let s = key_to_sdes(&k);
        assert_eq!(s.len(), 40);
        assert_eq!(MasterKey::from_sdes(&s), Ok(k));
    }
}
