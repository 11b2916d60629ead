//! The media relay (PROTOCOL.md sections 2 and 3): authenticate, latch, gate on the floor,
//! re-protect once per listener.
//!
//! RTCP from clients is consumed: it latches and keeps the peer alive, and is never
//! forwarded. Listeners' receiver reports describe the server's re-protected streams, not
//! the talker's, and talkers do not need them in push-to-talk; the server sends no RTCP.

use core::net::SocketAddr;

use super::Gateway;
use crate::config::{MAX_DATAGRAM, SRTP_OVERHEAD};
use crate::hub::Channel;
use crate::media::{Drop, MediaStats, Peer, Peers};
use crate::srtp;
use crate::time::Now;
use crate::wire::demux::{self, Kind};
use crate::wire::rtcp;
use crate::wire::rtp;

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

/// Authenticates an RTP packet from `peer` in place (or, for plain RTP, checks it comes
/// from the member's gateway IP) and latches its address. Returns the plain packet's view.
fn accept_rtp<'a>(
    peer: &mut Peer,
    now: Now,
    src: SocketAddr,
    packet: rtp::Packet<&'a mut [u8]>,
) -> Result<rtp::Packet<&'a mut [u8]>, Drop> {
    let plain = match &mut peer.inbound {
        Some(ctx) => ctx.unprotect_rtp_packet(packet).map_err(srtp_drop)?,
        None => {
            check_plain_source(peer, src)?;
            packet
        }
    };
    latch(peer, now, src, plain.as_bytes().len());
    Ok(plain)
}

/// [`accept_rtp`] for an RTCP compound packet: returns the plain compound.
fn accept_rtcp<'a>(
    peer: &mut Peer,
    now: Now,
    src: SocketAddr,
    header: rtcp::Header<&'a mut [u8]>,
) -> Result<&'a [u8], Drop> {
    let plain = match &mut peer.inbound {
        Some(ctx) => ctx.unprotect_rtcp_header(header).map_err(srtp_drop)?,
        None => {
            check_plain_source(peer, src)?;
            header.into_inner()
        }
    };
    latch(peer, now, src, plain.len());
    Ok(plain)
}

/// Plain RTP cannot be told from a forgery on the same IP: that is why it is a policy
/// choice. From any other IP it is one.
fn check_plain_source(peer: &Peer, src: SocketAddr) -> Result<(), Drop> {
    if src.ip().to_canonical() == peer.gateway_ip.to_canonical() {
        Ok(())
    } else {
        Err(Drop::Spoofed)
    }
}

/// Latches `peer` on `src` after an accepted datagram of `len` plain bytes.
fn latch(peer: &mut Peer, now: Now, src: SocketAddr, len: usize) {
    peer.latched = Some(src);
    peer.last_rx = now.mono;
    peer.stats.packets_in += 1;
    peer.stats.bytes_in += len as u64;
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
        // The one parse of the header: SRTP and the fan-out use this view.
        let packet = rtp::Packet::new_checked_header(buf).map_err(|_| Drop::Malformed)?;
        let ssrc = packet.ssrc();
        let Gateway {
            channels,
            peers,
            media,
            ..
        } = self;
        let peer = peers.get_mut(ssrc).ok_or(Drop::UnknownSsrc)?;
        let plain = accept_rtp(peer, now, src, packet).inspect_err(|_| peer.stats.dropped += 1)?;
        let (talker, slot) = (peer.conn, usize::from(peer.channel));
        let ch: &mut Channel = channels
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(Drop::UnknownSsrc)?;
        if ch.floor.holder().is_none_or(|(h, _)| h != talker) {
            // Listeners' keepalives end here too, after latching.
            return Err(Drop::NotHolder);
        }
        // Authenticated RTP from the holder is floor activity (PROTOCOL.md floor timers).
        ch.floor.activity(now.mono, talker);
        media.relayed += 1;
        for m in ch.members.iter().filter(|m| m.conn != talker) {
            relay_to(peers, media, now, m.ssrc, &plain, tx);
        }
        Ok(())
    }

    fn on_rtcp(&mut self, now: Now, src: SocketAddr, buf: &mut [u8]) -> Result<(), Drop> {
        // The first packet's sender SSRC is in the clear in SRTCP too (RFC 3711 section 3.4).
        let header = rtcp::Header::new_checked(buf).map_err(|_| Drop::Malformed)?;
        let peer = self.peers.get_mut(header.ssrc()).ok_or(Drop::UnknownSsrc)?;
        let plain = accept_rtcp(peer, now, src, header).inspect_err(|_| peer.stats.dropped += 1)?;
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
    ssrc: u32,
    plain: &rtp::Packet<impl AsRef<[u8]>>,
    tx: &mut impl Transmit,
) {
    let Some(rx) = peers.get_mut(ssrc) else {
        return;
    };
    let Some(dst) = rx.destination(now.mono) else {
        media.drop(Drop::NoLatch);
        return;
    };
    let ctx = &mut rx.outbound;
    let outcome = tx.send_with(dst, |room| match ctx {
        Some(ctx) => ctx.protect_rtp_into(plain, room).ok(),
        None => {
            let bytes = plain.as_bytes();
            room.get_mut(..bytes.len())?.copy_from_slice(bytes);
            Some(bytes.len())
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
