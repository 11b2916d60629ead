//! The media relay (PROTOCOL.md sections 2 and 3): authenticate, latch, gate on the floor,
//! re-protect once per listener.
//!
//! RTCP from clients is consumed: it latches and keeps the peer alive, and is never
//! forwarded. Listeners' receiver reports describe the server's re-protected streams, not
//! the talker's, and talkers do not need them in push-to-talk; the server sends no RTCP.

use core::net::SocketAddr;

use super::Gateway;
use crate::config::{MAX_DATAGRAM, SRTP_OVERHEAD};
use crate::demux::{self, Kind};
use crate::media::{Drop, MediaStats, Peer, Peers};
use crate::rtcp;
use crate::rtp;
use crate::srtp;
use crate::time::Now;

/// Room a relayed datagram may need: the largest datagram handled plus the SRTP tag.
pub const TX_ROOM: usize = MAX_DATAGRAM + SRTP_OVERHEAD;

/// Where the relay's datagrams go; the driver's socket.
///
/// A driver that batches its sends (`sendmmsg`) implements [`Transmit::send_with`] so the
/// relay builds each copy straight in the batch's buffer. "Taken" then means queued; a
/// later failure of the batched send is the driver's to count.
pub trait Transmit {
    /// Sends one datagram; `false` when it could not (counted as a drop).
    fn send_to(&mut self, dst: SocketAddr, datagram: &[u8]) -> bool;

    /// Sends one datagram that `fill` writes into a buffer of at least [`TX_ROOM`] bytes,
    /// returning its length (`None`: nothing to send). The default builds it on the stack
    /// and calls [`Transmit::send_to`].
    fn send_with<F>(&mut self, dst: SocketAddr, fill: F) -> TxOutcome
    where
        F: FnOnce(&mut [u8]) -> Option<usize>,
        Self: Sized,
    {
        let mut room = [0u8; TX_ROOM];
        let Some(n) = fill(&mut room) else {
            return TxOutcome::NotBuilt;
        };
        match room.get(..n) {
            Some(d) if self.send_to(dst, d) => TxOutcome::Taken(n),
            Some(_) => TxOutcome::Failed,
            None => TxOutcome::NotBuilt,
        }
    }
}

/// What became of a datagram offered to [`Transmit::send_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxOutcome {
    /// Sent or queued: this many bytes.
    Taken(usize),
    /// `fill` declined (it could not build the datagram).
    NotBuilt,
    /// The driver could not take it (a full socket buffer or batch).
    Failed,
}

fn srtp_drop(e: srtp::Error) -> Drop {
    match e {
        srtp::Error::AuthFailed => Drop::AuthFailed,
        srtp::Error::Replayed | srtp::Error::IndexTooOld => Drop::Replay,
        _ => Drop::Malformed,
    }
}

/// Authenticates a datagram from `peer` in place (or, for plain RTP, checks it comes from
/// the member's gateway IP) and latches its address. Returns the plaintext length.
fn accept(
    peer: &mut Peer,
    now: Now,
    src: SocketAddr,
    buf: &mut [u8],
    is_rtcp: bool,
) -> Result<usize, Drop> {
    let len = match &mut peer.inbound {
        Some(ctx) => {
            let r = if is_rtcp {
                ctx.unprotect_rtcp(buf)
            } else {
                ctx.unprotect_rtp(buf)
            };
            r.map_err(srtp_drop)?
        }
        None => {
            // Plain RTP cannot be told from a forgery on the same IP: that is why it is a
            // policy choice. From any other IP it is one.
            if src.ip().to_canonical() != peer.gateway_ip.to_canonical() {
                return Err(Drop::Spoofed);
            }
            buf.len()
        }
    };
    peer.latched = Some(src);
    peer.last_rx = now.mono;
    peer.stats.packets_in += 1;
    peer.stats.bytes_in += len as u64;
    Ok(len)
}

impl Gateway<'_> {
    /// One datagram from the media port. Relayed copies go out through `tx` before this
    /// returns; `buf` is decrypted in place.
    pub fn handle_datagram(
        &mut self,
        now: Now,
        src: SocketAddr,
        buf: &mut [u8],
        tx: &mut impl Transmit,
    ) {
        self.media.packets_in += 1;
        self.media.bytes_in += buf.len() as u64;
        if buf.len() > MAX_DATAGRAM {
            self.media.drop(Drop::Malformed);
            return;
        }
        let r = match demux::classify(buf) {
            Kind::Rtp => self.on_rtp(now, src, buf, tx),
            Kind::Rtcp => self.on_rtcp(now, src, buf),
            // ICE-lite and DTLS-SRTP come with browser support.
            Kind::Stun | Kind::Dtls | Kind::Unknown => Err(Drop::Malformed),
        };
        if let Err(why) = r {
            self.media.drop(why);
        }
    }

    /// Media counters.
    pub fn media_stats(&self) -> MediaStats {
        self.media
    }

    /// Every media peer.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter()
    }

    fn on_rtp(
        &mut self,
        now: Now,
        src: SocketAddr,
        buf: &mut [u8],
        tx: &mut impl Transmit,
    ) -> Result<(), Drop> {
        let ssrc = rtp::Packet::new_checked_header(&*buf)
            .map_err(|_| Drop::Malformed)?
            .ssrc();
        let Gateway {
            channels,
            peers,
            media,
            ..
        } = self;
        let at = peers.find(ssrc).ok_or(Drop::UnknownSsrc)?;
        let peer = peers.get_mut(at).ok_or(Drop::UnknownSsrc)?;
        let len = accept(peer, now, src, buf, false).inspect_err(|_| peer.stats.dropped += 1)?;
        let (talker, slot) = (peer.conn, peer.channel as usize);
        let ch = channels
            .as_mut_slice()
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(Drop::UnknownSsrc)?;
        if ch.floor.holder().is_none_or(|(h, _)| h != talker) {
            // Listeners' keepalives end here too, after latching.
            return Err(Drop::NotHolder);
        }
        // Authenticated RTP from the holder is floor activity (PROTOCOL.md floor timers).
        ch.floor.activity(now.mono, talker);
        let plain = buf.get(..len).ok_or(Drop::Malformed)?;
        media.relayed += 1;
        let mut next = ch.head;
        while let Some(listener) = peers.get(next as usize).map(|p| p.next) {
            if next as usize != at {
                relay_to(peers, media, now, next as usize, plain, tx);
            }
            next = listener;
        }
        Ok(())
    }

    fn on_rtcp(&mut self, now: Now, src: SocketAddr, buf: &mut [u8]) -> Result<(), Drop> {
        // The first packet's sender SSRC is in the clear in SRTCP too (RFC 3711 section 3.4).
        let ssrc = buf
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or(Drop::Malformed)?;
        let at = self.peers.find(ssrc).ok_or(Drop::UnknownSsrc)?;
        let peer = self.peers.get_mut(at).ok_or(Drop::UnknownSsrc)?;
        let len = accept(peer, now, src, buf, true).inspect_err(|_| peer.stats.dropped += 1)?;
        let plain = buf.get(..len).ok_or(Drop::Malformed)?;
        if rtcp::Compound::new(plain).any(|p| p.is_err()) {
            return Err(Drop::Malformed);
        }
        Ok(())
    }
}

/// Sends one listener its copy, built in the driver's buffer: re-protected with its
/// server -> client context, or as is for a plain-RTP listener.
fn relay_to(
    peers: &mut Peers<'_>,
    media: &mut MediaStats,
    now: Now,
    at: usize,
    plain: &[u8],
    tx: &mut impl Transmit,
) {
    let Some(rx) = peers.get_mut(at) else {
        return;
    };
    let Some(dst) = rx.destination(now.mono) else {
        media.drop(Drop::NoLatch);
        return;
    };
    let ctx = &mut rx.outbound;
    let outcome = tx.send_with(dst, |room| {
        let n = plain.len();
        room.get_mut(..n)?.copy_from_slice(plain);
        match ctx {
            Some(ctx) => ctx.protect_rtp(room, n).ok(),
            None => Some(n),
        }
    });
    match outcome {
        TxOutcome::Taken(n) => {
            media.packets_out += 1;
            media.bytes_out += n as u64;
            rx.stats.packets_out += 1;
            rx.stats.bytes_out += n as u64;
        }
        TxOutcome::NotBuilt => media.drop(Drop::Malformed),
        TxOutcome::Failed => media.drop(Drop::SendFailed),
    }
}
