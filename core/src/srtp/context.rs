//! One direction's SRTP/SRTCP context: session keys and the per-SSRC stream table.

use heapless::Vec;
use subtle::ConstantTimeEq;

use super::kdf::{Kdf, Label, SessionKeys};
use super::replay::{ReplayWindow, estimate_index};
use super::{Error, MasterKey, SRTCP_INDEX_LEN, SRTCP_TAG_LEN, Suite};
use crate::config::SRTP_MAX_STREAMS;
use crate::wire::{rtcp, rtp};

/// RTCP header and sender SSRC (RFC 3711 section 3.4): the part SRTCP leaves in clear.
const RTCP_HEADER_LEN: usize = rtcp::SSRC_HEADER_LEN;
/// The E flag of the SRTCP trailer word (RFC 3711 section 3.4).
const SRTCP_E_FLAG: u32 = 1 << 31;
/// Largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u64 = (1 << 31) - 1;

/// One SSRC's state: SRTP rollover counter and highest index (both in the replay window's
/// highest index) and SRTCP index, each with its replay window.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// The context's tick at the last authenticated or protected packet, for LRU eviction.
    last_used: u64,
    rtp: ReplayWindow,
    rtcp: ReplayWindow,
}

impl Stream {
    const fn new(ssrc: u32) -> Stream {
        Stream {
            ssrc,
            last_used: 0,
            rtp: ReplayWindow::new(0),
            rtcp: ReplayWindow::new(0),
        }
    }
}

/// An SRTP/SRTCP cryptographic context for one direction under one master key (RFC 3711
/// section 3.2), serving up to [`SRTP_MAX_STREAMS`] SSRCs.
///
/// Protecting a packet of a new SSRC when the table is full evicts the least recently used
/// SSRC; if that SSRC comes back it starts again from rollover counter 0, which the receiver
/// follows only while it has not wrapped, so size the table for the talkers a receiver
/// hears. Unprotecting a packet of a new SSRC when the table is full is
/// [`Error::TooManyStreams`]: the established streams keep their replay windows.
///
/// Use one context per direction: protecting and unprotecting the same SSRC in one context
/// would reuse keystream.
pub struct Context {
    suite: Suite,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: Vec<Stream, SRTP_MAX_STREAMS>,
    tick: u64,
}

impl Context {
    /// Derives the session keys (RFC 3711 section 4.3, key derivation rate 0) and their AES
    /// key schedules and keyed HMAC states.
    pub fn new(suite: Suite, master: &MasterKey) -> Context {
        let kdf = Kdf::new(master);
        Context {
            suite,
            rtp: SessionKeys::derive(&kdf, [Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt]),
            rtcp: SessionKeys::derive(
                &kdf,
                [Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt],
            ),
            streams: Vec::new(),
            tick: 0,
        }
    }

    /// The context's suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// SSRCs with state in this context.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Forgets `ssrc`'s state (a talker left for good); whether it was there.
    pub fn remove_ssrc(&mut self, ssrc: u32) -> bool {
        match self.find(ssrc) {
            Some(i) => {
                self.streams.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Protects the RTP packet in `buf[..len]` in place: encrypts its payload and appends the
    /// tag. `buf` needs `len + suite.rtp_tag_len()` bytes. Returns the SRTP packet length.
    ///
    /// The header is read through [`rtp::Packet::new_checked_header`]; a caller that holds
    /// that view already uses [`protect_rtp_into`](Self::protect_rtp_into).
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let out_len = room(buf, len, self.suite.rtp_tag_len())?;
        let header = rtp_header(buf.get(..len).unwrap_or_default())?;
        let (header_len, seq, ssrc) = (header.header_len(), header.seq_number(), header.ssrc());
        self.seal_rtp(buf, len, out_len, header_len, seq, ssrc)
    }

    /// Protects a copy of the checked RTP packet `packet` written at the start of `out`,
    /// which needs `packet.as_bytes().len() + suite.rtp_tag_len()` bytes; returns the SRTP
    /// packet length. `packet` is left as it is, so one packet can be protected for many
    /// receivers from the header its receiver already parsed.
    pub fn protect_rtp_into<T: AsRef<[u8]>>(
        &mut self,
        packet: &rtp::Packet<T>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let plain = packet.as_bytes();
        let len = plain.len();
        let out_len = room(out, len, self.suite.rtp_tag_len())?;
        let header_len = packet.header_len();
        if header_len > len {
            // Only a buffer whose length changed under the view gets here.
            return Err(Error::Malformed);
        }
        out[..len].copy_from_slice(plain);
        self.seal_rtp(
            out,
            len,
            out_len,
            header_len,
            packet.seq_number(),
            packet.ssrc(),
        )
    }

    /// Encrypts `buf[header_len..len]` and writes the tag up to `out_len`; the lengths are
    /// checked by the caller (`header_len <= len <= out_len <= buf.len()`).
    fn seal_rtp(
        &mut self,
        buf: &mut [u8],
        len: usize,
        out_len: usize,
        header_len: usize,
        seq: u16,
        ssrc: u32,
    ) -> Result<usize, Error> {
        let tag_len = self.suite.rtp_tag_len();
        let slot = self.slot_to_protect(ssrc);
        let stream = &mut self.streams[slot];
        let index = estimate_index(stream.rtp.highest(), seq)?;
        stream.rtp.check(index)?;

        self.rtp
            .cipher
            .apply(&self.rtp.iv(ssrc, index), &mut buf[header_len..len]);
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = self.rtp.auth.mac(&buf[..len], &roc);
        buf[len..out_len].copy_from_slice(&tag[..tag_len]);

        stream.rtp.update(index);
        stream.last_used = next_tick(&mut self.tick);
        Ok(out_len)
    }

    /// Unprotects the SRTP packet that fills `buf` in place: checks replay, authenticates,
    /// then decrypts. Returns the RTP packet length (`buf[..n]`); on error `buf` is unchanged.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let packet = rtp_header(buf)?;
        self.unprotect_rtp_packet(packet)
            .map(|plain| plain.as_bytes().len())
    }

    /// Unprotects the SRTP packet `packet` (a view from
    /// [`rtp::Packet::new_checked_header`] over the whole datagram, tag included) in place,
    /// as [`unprotect_rtp`](Self::unprotect_rtp) does, and returns the view narrowed to the
    /// plain RTP packet, ready for [`protect_rtp_into`](Self::protect_rtp_into). On error
    /// the bytes are unchanged.
    pub fn unprotect_rtp_packet<'a>(
        &mut self,
        packet: rtp::Packet<&'a mut [u8]>,
    ) -> Result<rtp::Packet<&'a mut [u8]>, Error> {
        let tag_len = self.suite.rtp_tag_len();
        let (header_len, seq, ssrc) = (packet.header_len(), packet.seq_number(), packet.ssrc());
        let buf = packet.into_inner();
        let len = buf
            .len()
            .checked_sub(tag_len)
            .filter(|&n| n >= rtp::HEADER_LEN)
            .ok_or(Error::TooShort)?;
        if header_len > len {
            // The CSRC list or extension runs into the tag.
            return Err(Error::Malformed);
        }

        let slot = self.slot_to_unprotect(ssrc)?;
        let mut fresh = Stream::new(ssrc);
        let stream = match slot {
            Some(i) => &mut self.streams[i],
            None => &mut fresh,
        };
        let index = estimate_index(stream.rtp.highest(), seq)?;
        stream.rtp.check(index)?;

        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = self.rtp.auth.mac(&buf[..len], &roc);
        if !tag_eq(&tag[..tag_len], &buf[len..]) {
            return Err(Error::AuthFailed);
        }
        self.rtp
            .cipher
            .apply(&self.rtp.iv(ssrc, index), &mut buf[header_len..len]);

        stream.rtp.update(index);
        stream.last_used = next_tick(&mut self.tick);
        if slot.is_none() {
            self.add(fresh);
        }
        // The header was checked above and ends before `len`.
        Ok(rtp::Packet::new_unchecked(&mut buf[..len]))
    }

    /// Protects the RTCP (compound) packet in `buf[..len]` in place: encrypts all but the
    /// first 8 bytes, appends the E flag with the SRTCP index and the 80-bit tag. `buf` needs
    /// `len + 14` bytes. Returns the SRTCP packet length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let trailer_end = len + SRTCP_INDEX_LEN;
        let out_len = room(buf, len, SRTCP_INDEX_LEN + SRTCP_TAG_LEN)?;
        let ssrc = rtcp_header(buf.get(..len).unwrap_or_default())?.ssrc();

        let slot = self.slot_to_protect(ssrc);
        let stream = &mut self.streams[slot];
        // RFC 3711 section 3.4: the index starts at zero and counts every packet sent.
        let index = if stream.rtcp.is_empty() {
            0
        } else {
            stream.rtcp.highest() + 1
        };
        if index > MAX_SRTCP_INDEX {
            return Err(Error::KeyExhausted);
        }

        self.rtcp
            .cipher
            .apply(&self.rtcp.iv(ssrc, index), &mut buf[RTCP_HEADER_LEN..len]);
        buf[len..trailer_end].copy_from_slice(&(SRTCP_E_FLAG | index as u32).to_be_bytes());
        let tag = self.rtcp.auth.mac(&buf[..trailer_end], &[]);
        buf[trailer_end..out_len].copy_from_slice(&tag[..SRTCP_TAG_LEN]);

        stream.rtcp.update(index);
        stream.last_used = next_tick(&mut self.tick);
        Ok(out_len)
    }

    /// Unprotects the SRTCP packet that fills `buf` in place: checks replay, authenticates,
    /// then decrypts if the E flag is set. Returns the RTCP packet length (`buf[..n]`); on
    /// error `buf` is unchanged.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let header = rtcp_header(buf)?;
        self.unprotect_rtcp_header(header).map(|plain| plain.len())
    }

    /// Unprotects the SRTCP packet whose clear header `header` is (a view from
    /// [`rtcp::Header::new_checked`] over the whole datagram), as
    /// [`unprotect_rtcp`](Self::unprotect_rtcp) does, and returns the plain compound packet,
    /// to be walked with [`rtcp::Compound`]. On error the bytes are unchanged.
    pub fn unprotect_rtcp_header<'a>(
        &mut self,
        header: rtcp::Header<&'a mut [u8]>,
    ) -> Result<&'a mut [u8], Error> {
        let ssrc = header.ssrc();
        let buf = header.into_inner();
        let trailer_end = buf
            .len()
            .checked_sub(SRTCP_TAG_LEN)
            .filter(|&n| n >= RTCP_HEADER_LEN + SRTCP_INDEX_LEN)
            .ok_or(Error::TooShort)?;
        let len = trailer_end - SRTCP_INDEX_LEN;
        let trailer = u32::from_be_bytes([buf[len], buf[len + 1], buf[len + 2], buf[len + 3]]);
        let index = u64::from(trailer & !SRTCP_E_FLAG);

        let slot = self.slot_to_unprotect(ssrc)?;
        let mut fresh = Stream::new(ssrc);
        let stream = match slot {
            Some(i) => &mut self.streams[i],
            None => &mut fresh,
        };
        stream.rtcp.check(index)?;

        let tag = self.rtcp.auth.mac(&buf[..trailer_end], &[]);
        if !tag_eq(&tag[..SRTCP_TAG_LEN], &buf[trailer_end..]) {
            return Err(Error::AuthFailed);
        }
        if trailer & SRTCP_E_FLAG != 0 {
            self.rtcp
                .cipher
                .apply(&self.rtcp.iv(ssrc, index), &mut buf[RTCP_HEADER_LEN..len]);
        }

        stream.rtcp.update(index);
        stream.last_used = next_tick(&mut self.tick);
        if slot.is_none() {
            self.add(fresh);
        }
        Ok(&mut buf[..len])
    }

    fn find(&self, ssrc: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.ssrc == ssrc)
    }

    /// The slot of `ssrc`'s stream for sending, made if new, evicting the least recently used
    /// stream when the table is full.
    fn slot_to_protect(&mut self, ssrc: u32) -> usize {
        if let Some(i) = self.find(ssrc) {
            return i;
        }
        match self.streams.push(Stream::new(ssrc)) {
            Ok(()) => self.streams.len() - 1,
            Err(fresh) => {
                let lru = self
                    .streams
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.last_used)
                    .map_or(0, |(i, _)| i);
                self.streams[lru] = fresh;
                lru
            }
        }
    }

    /// The slot of `ssrc`'s stream for receiving; `None` if it is new and there is room for
    /// it, to [`add`](Self::add) once the packet authenticated.
    fn slot_to_unprotect(&self, ssrc: u32) -> Result<Option<usize>, Error> {
        match self.find(ssrc) {
            None if self.streams.is_full() => Err(Error::TooManyStreams),
            slot => Ok(slot),
        }
    }

    /// Adds an authenticated new stream.
    fn add(&mut self, stream: Stream) {
        // Room was checked in `slot_to_unprotect`, and nothing was added since.
        let _ = self.streams.push(stream);
    }
}

impl core::fmt::Debug for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

/// The LRU clock's current value, advancing it.
fn next_tick(tick: &mut u64) -> u64 {
    let now = *tick;
    *tick += 1;
    now
}

/// Constant-time comparison of a computed tag with a received one of the same length (at
/// most 16 bytes), as one word.
fn tag_eq(ours: &[u8], theirs: &[u8]) -> bool {
    let word = |tag: &[u8]| {
        let mut w = [0u8; 16];
        w[..tag.len()].copy_from_slice(tag);
        u128::from_ne_bytes(w)
    };
    let diff = word(ours) ^ word(theirs);
    let diff = (diff as u64) | ((diff >> 64) as u64);
    ours.len() == theirs.len() && bool::from(diff.ct_eq(&0))
}

/// The length after appending `extra` bytes to `buf[..len]`, if `buf` has room.
fn room(buf: &[u8], len: usize, extra: usize) -> Result<usize, Error> {
    let needed = len.saturating_add(extra);
    if buf.len() < needed {
        Err(Error::BufferTooSmall { needed })
    } else {
        Ok(needed)
    }
}

/// The RTP header of `buf` through the one RTP parser, [`rtp::Packet::new_checked_header`]
/// (RFC 3550 section 5.1: version 2, CSRC list and extension inside the packet). Shorter
/// than a fixed header is [`Error::TooShort`]; any other refusal is [`Error::Malformed`].
fn rtp_header<T: AsRef<[u8]>>(buf: T) -> Result<rtp::Packet<T>, Error> {
    let short = buf.as_ref().len() < rtp::HEADER_LEN;
    rtp::Packet::new_checked_header(buf).map_err(|_| {
        if short {
            Error::TooShort
        } else {
            Error::Malformed
        }
    })
}

/// The clear header of an RTCP or SRTCP packet through [`rtcp::Header::new_checked`].
/// Shorter than a header and SSRC is [`Error::TooShort`]; another version is
/// [`Error::Malformed`].
fn rtcp_header<T: AsRef<[u8]>>(buf: T) -> Result<rtcp::Header<T>, Error> {
    rtcp::Header::new_checked(buf).map_err(|e| match e {
        rtcp::Error::Truncated => Error::TooShort,
        _ => Error::Malformed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::new([0x11; 16], [0x22; 14])
    }

    fn rtp(buf: &mut [u8], seq: u16, ssrc: u32) {
        buf[..12].fill(0);
        buf[0] = 0x80;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    fn protect(ctx: &mut Context, seq: u16, ssrc: u32) -> ([u8; 64], usize) {
        let mut buf = [0u8; 64];
        rtp(&mut buf, seq, ssrc);
        let n = ctx.protect_rtp(&mut buf, 40).unwrap();
        (buf, n)
    }

    #[test]
    fn srtp_length_errors() {
        let mut ctx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut buf = [0u8; 64];
        rtp(&mut buf, 1, 1);
        assert_eq!(
            ctx.protect_rtp(&mut buf[..49], 40),
            Err(Error::BufferTooSmall { needed: 50 })
        );
        assert_eq!(ctx.protect_rtp(&mut buf, 11), Err(Error::TooShort));
        assert_eq!(
            ctx.protect_rtcp(&mut buf[..30], 20),
            Err(Error::BufferTooSmall { needed: 34 })
        );
        assert_eq!(ctx.protect_rtcp(&mut buf, 7), Err(Error::TooShort));
        assert_eq!(ctx.unprotect_rtp(&mut buf[..21]), Err(Error::TooShort));
        assert_eq!(ctx.unprotect_rtcp(&mut buf[..21]), Err(Error::TooShort));
        // 15 CSRCs do not fit in 40 bytes; an extension header past the end.
        buf[0] = 0x8f;
        assert_eq!(ctx.protect_rtp(&mut buf, 40), Err(Error::Malformed));
        buf[0] = 0x90;
        assert_eq!(ctx.protect_rtp(&mut buf, 14), Err(Error::Malformed));
        buf[12..16].copy_from_slice(&[0xBE, 0xDE, 0, 7]);
        assert_eq!(ctx.protect_rtp(&mut buf, 40), Err(Error::Malformed));
        buf[15] = 6;
        assert_eq!(ctx.protect_rtp(&mut buf, 40), Ok(50));
        assert_eq!(ctx.stream_count(), 1);
    }

    #[test]
    fn srtp_refuses_a_version_other_than_2() {
        let mut ctx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut buf = [0u8; 64];
        for first in [0x00, 0x40, 0xc0] {
            rtp(&mut buf, 1, 1);
            buf[0] = first;
            assert_eq!(ctx.protect_rtp(&mut buf, 40), Err(Error::Malformed));
            assert_eq!(ctx.unprotect_rtp(&mut buf[..50]), Err(Error::Malformed));
            buf[..8].copy_from_slice(&[first | 0x01, 201, 0, 1, 0, 0, 0, 9]);
            assert_eq!(ctx.protect_rtcp(&mut buf, 8), Err(Error::Malformed));
            assert_eq!(ctx.unprotect_rtcp(&mut buf[..22]), Err(Error::Malformed));
        }
        assert_eq!(ctx.stream_count(), 0);
    }

    #[test]
    fn srtp_through_the_checked_views() {
        let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut fan = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut rx2 = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut plain = [0u8; 64];
        rtp(&mut plain, 7, 0x77);
        plain[0] = 0x91; // one CSRC and an extension of one word
        plain[16..20].copy_from_slice(&[0xBE, 0xDE, 0, 1]);
        plain[24..40].fill(0x5a);
        let mut buf = plain;
        let n = tx.protect_rtp(&mut buf, 40).unwrap();
        let protected = buf;

        // The receiver parses once, unprotects through the view, and protects the
        // plaintext for two listeners from that same view.
        let packet = rtp::Packet::new_checked_header(&mut buf[..n]).unwrap();
        assert_eq!(packet.ssrc(), 0x77);
        let clear = fan.unprotect_rtp_packet(packet).unwrap();
        assert_eq!(clear.as_bytes(), &plain[..40]);
        assert_eq!(clear.header_len(), 24);
        let mut out = [0u8; 64];
        assert_eq!(
            rx.protect_rtp_into(&clear, &mut out[..49]),
            Err(Error::BufferTooSmall { needed: 50 })
        );
        let m = rx.protect_rtp_into(&clear, &mut out).unwrap();
        // The same key, SSRC and index give the same bytes as the talker's protect.
        assert_eq!(&out[..m], &protected[..n]);
        assert_eq!(rx2.unprotect_rtp(&mut out[..m]), Ok(40));
        assert_eq!(out[..40], plain[..40]);
        // The plaintext view is unchanged, so it serves the next listener.
        assert_eq!(clear.as_bytes(), &plain[..40]);

        // An extension that runs into the tag passes the datagram's header check but not
        // the unprotect.
        let mut bad = protected;
        bad[19] = 7;
        let packet = rtp::Packet::new_checked_header(&mut bad[..n]).unwrap();
        assert_eq!(
            fan.unprotect_rtp_packet(packet).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn srtcp_through_the_clear_header() {
        let mut tx = Context::new(Suite::AesCm128HmacSha1_32, &key());
        let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &key());
        let mut buf = [0u8; 64];
        let n = crate::wire::rtcp::emit_receiver_report(0xABCD, &[], &mut buf).unwrap();
        let m = tx.protect_rtcp(&mut buf, n).unwrap();
        let header = rtcp::Header::new_checked(&mut buf[..m]).unwrap();
        assert_eq!(header.ssrc(), 0xABCD);
        let plain = rx.unprotect_rtcp_header(header).unwrap();
        assert_eq!(rtcp::first_ssrc(plain), Ok(Some(0xABCD)));
    }

    #[test]
    fn srtp_unprotect_refuses_a_new_ssrc_when_full() {
        let mut tx = Context::new(Suite::AesCm128HmacSha1_32, &key());
        let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &key());
        for ssrc in 0..SRTP_MAX_STREAMS as u32 {
            let (mut buf, n) = protect(&mut tx, 1, ssrc);
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(40));
        }
        let (mut buf, n) = protect(&mut tx, 1, 1000);
        assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Err(Error::TooManyStreams));
        assert_eq!(rx.stream_count(), SRTP_MAX_STREAMS);
        // A forged packet of a new SSRC takes no slot either.
        let mut rx = Context::new(Suite::AesCm128HmacSha1_32, &key());
        buf[n - 1] ^= 1;
        assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Err(Error::AuthFailed));
        assert_eq!(rx.stream_count(), 0);
        assert!(tx.remove_ssrc(1000));
        assert!(!tx.remove_ssrc(1000));
    }

    #[test]
    fn srtp_protect_evicts_the_least_recently_used_ssrc() {
        let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        for ssrc in 0..SRTP_MAX_STREAMS as u32 {
            protect(&mut tx, 10, ssrc);
        }
        // SSRC 0 is used again, so SSRC 1 is the least recently used.
        protect(&mut tx, 11, 0);
        protect(&mut tx, 10, 1000);
        assert_eq!(tx.stream_count(), SRTP_MAX_STREAMS);
        assert!(tx.find(1).is_none());
        assert!(tx.find(0).is_some());
        // SSRC 0 kept its state: seq 11 is not sent twice.
        let mut buf = [0u8; 64];
        rtp(&mut buf, 11, 0);
        assert_eq!(tx.protect_rtp(&mut buf, 40), Err(Error::Replayed));
    }

    #[test]
    fn srtcp_without_e_flag_is_authenticated_not_decrypted() {
        let tx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut buf = [0u8; 40];
        buf[..8].copy_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 9]);
        buf[8..12].copy_from_slice(&[0, 0, 0, 5]); // E = 0, index 5
        let tag = tx.rtcp.auth.mac(&buf[..12], &[]);
        buf[12..22].copy_from_slice(&tag[..10]);
        assert_eq!(rx.unprotect_rtcp(&mut buf[..22]), Ok(8));
        assert_eq!(buf[..8], [0x80, 201, 0, 1, 0, 0, 0, 9]);
        assert_eq!(rx.unprotect_rtcp(&mut buf[..22]), Err(Error::Replayed));
    }

    #[test]
    fn srtp_index_exhaustion() {
        let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        let mut buf = [0u8; 64];
        buf[..8].copy_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 9]);
        assert_eq!(tx.protect_rtcp(&mut buf, 8), Ok(22));
        tx.streams[0].rtcp.update(MAX_SRTCP_INDEX);
        assert_eq!(tx.protect_rtcp(&mut buf, 8), Err(Error::KeyExhausted));
        let (_, _) = protect(&mut tx, 0xFFFF, 9);
        tx.streams[0].rtp.update((1 << 48) - 1);
        rtp(&mut buf, 0, 9);
        assert_eq!(tx.protect_rtp(&mut buf, 40), Err(Error::KeyExhausted));
    }

    #[test]
    fn srtp_debug_hides_keys() {
        let ctx = Context::new(Suite::AesCm128HmacSha1_80, &key());
        assert_eq!(
            format!("{ctx:?}"),
            "Context { suite: AesCm128HmacSha1_80, streams: 0, .. }"
        );
    }
}
