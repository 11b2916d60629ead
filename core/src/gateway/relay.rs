//! The media relay (PROTOCOL.md sections 2 and 3): authenticate, latch, gate on the floor,
//! re-protect once per listener.
//!
//! RTCP from clients is consumed: it latches and keeps the peer alive, and is never
//! forwarded. Listeners' receiver reports describe the server's re-protected streams, not
//! the talker's, and talkers do not need them in push-to-talk; the server sends no RTCP.

use core::net::SocketAddr;

use super::Gateway;
use crate::config::MAX_DATAGRAM;
use crate::demux::{self, Kind};
use crate::hub::Channel;
use crate::media::{Drop, MediaStats, Peer, Peers};
use crate::rtcp;
use crate::rtp;
use crate::srtp;
use crate::time::Now;

/// Where the relay's datagrams go; the driver's socket.
pub trait Transmit {
    /// Sends one datagram; `false` when it could not (counted as a drop).
    fn send_to(&mut self, dst: SocketAddr, datagram: &[u8]) -> bool;
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
            scratch,
            ..
        } = self;
        let peer = peers.get_mut(ssrc).ok_or(Drop::UnknownSsrc)?;
        let len = accept(peer, now, src, buf, false).inspect_err(|_| peer.stats.dropped += 1)?;
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
        let plain = buf.get(..len).ok_or(Drop::Malformed)?;
        media.relayed += 1;
        for m in ch.members.iter().filter(|m| m.conn != talker) {
            relay_to(peers, media, scratch, now, m.ssrc, plain, tx);
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
        let peer = self.peers.get_mut(ssrc).ok_or(Drop::UnknownSsrc)?;
        let len = accept(peer, now, src, buf, true).inspect_err(|_| peer.stats.dropped += 1)?;
        let plain = buf.get(..len).ok_or(Drop::Malformed)?;
        if rtcp::Compound::new(plain).any(|p| p.is_err()) {
            return Err(Drop::Malformed);
        }
        Ok(())
    }
}

/// Sends one listener its copy: re-protected with its server -> client context, or as is
/// for a plain-RTP listener.
fn relay_to(
    peers: &mut Peers<'_>,
    media: &mut MediaStats,
    scratch: &mut [u8],
    now: Now,
    ssrc: u32,
    plain: &[u8],
    tx: &mut impl Transmit,
) {
    let Some(rx) = peers.get_mut(ssrc) else {
        return;
    };
    let Some(dst) = rx.destination(now.mono) else {
        media.drop(Drop::NoLatch);
        return;
    };
    let out: &[u8] = match &mut rx.outbound {
        Some(ctx) => {
            let Some(room) = scratch.get_mut(..plain.len()) else {
                media.drop(Drop::Malformed);
                return;
            };
            room.copy_from_slice(plain);
            match ctx.protect_rtp(scratch, plain.len()) {
                Ok(n) => match scratch.get(..n) {
                    Some(b) => b,
                    None => return,
                },
                Err(_) => {
                    media.drop(Drop::Malformed);
                    return;
                }
            }
        }
        None => plain,
    };
    if tx.send_to(dst, out) {
        media.packets_out += 1;
        media.bytes_out += out.len() as u64;
        rx.stats.packets_out += 1;
        rx.stats.bytes_out += out.len() as u64;
    } else {
        media.drop(Drop::SendFailed);
    }
}
