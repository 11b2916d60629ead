//! One direction's SRTP/SRTCP context: session keys and the per-SSRC stream table.

use heapless::Vec;
use subtle::ConstantTimeEq;

use super::kdf::{GcmKeys, Kdf, Label, SessionKeys};
use super::replay::{ReplayWindow, estimate_index};
use super::{AEAD_TAG_LEN, Error, MasterKey, SRTCP_INDEX_LEN, Suite};
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

/// The session keys of one context: the one place that decides per suite how a packet is
/// transformed.
// No allocator to box into: a context holds its keys by value, sized for AES-256-GCM.
#[allow(clippy::large_enum_variant)]
enum Transform {
    /// AES-CM and HMAC-SHA1 (RFC 3711 sections 4.1.1 and 4.2).
    Cm { rtp: SessionKeys, rtcp: SessionKeys },
    /// AES-GCM (RFC 7714).
    Gcm { rtp: GcmKeys, rtcp: GcmKeys },
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
    transform: Transform,
    streams: Vec<Stream, SRTP_MAX_STREAMS>,
    tick: u64,
}

impl Context {
    /// Derives the session keys (RFC 3711 section 4.3, key derivation rate 0; RFC 7714
    /// section 11 for the AEAD suites) and their AES key schedules and keyed HMAC or GHASH
    /// states. `master` is made for `suite` ([`MasterKey::new`]).
    pub fn new(suite: Suite, master: &MasterKey) -> Context {
        let kdf = Kdf::new(master);
        let transform = if suite.is_aead() {
            Transform::Gcm {
                rtp: GcmKeys::derive(&kdf, suite, [Label::RtpEncryption, Label::RtpSalt]),
                rtcp: GcmKeys::derive(&kdf, suite, [Label::RtcpEncryption, Label::RtcpSalt]),
            }
        } else {
            Transform::Cm {
                rtp: SessionKeys::derive(
                    &kdf,
                    [Label::RtpEncryption, Label::RtpAuth, Label::RtpSalt],
                ),
                rtcp: SessionKeys::derive(
                    &kdf,
                    [Label::RtcpEncryption, Label::RtcpAuth, Label::RtcpSalt],
                ),
            }
        };
        Context::with_transform(suite, transform)
    }

    fn with_transform(suite: Suite, transform: Transform) -> Context {
        Context {
            suite,
            transform,
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

        match &self.transform {
            Transform::Cm { rtp, .. } => {
                rtp.cipher
                    .apply(&rtp.iv(ssrc, index), &mut buf[header_len..len]);
                let roc = ((index >> 16) as u32).to_be_bytes();
                let tag = rtp.auth.mac(&buf[..len], &roc);
                buf[len..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Transform::Gcm { rtp, .. } => {
                // RFC 7714 section 8.2: the header is the AAD, the payload the plaintext.
                let (header, rest) = buf.split_at_mut(header_len);
                let (payload, trailer) = rest.split_at_mut(len - header_len);
                let tag = rtp.aead.seal(&rtp.iv(ssrc, index), header, payload);
                trailer[..tag_len].copy_from_slice(&tag);
            }
        }

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

        match &self.transform {
            Transform::Cm { rtp, .. } => {
                let roc = ((index >> 16) as u32).to_be_bytes();
                let tag = rtp.auth.mac(&buf[..len], &roc);
                if !tag_eq(&tag[..tag_len], &buf[len..]) {
                    return Err(Error::AuthFailed);
                }
                rtp.cipher
                    .apply(&rtp.iv(ssrc, index), &mut buf[header_len..len]);
            }
            Transform::Gcm { rtp, .. } => {
                let (header, rest) = buf.split_at_mut(header_len);
                let (payload, tag) = rest.split_at_mut(len - header_len);
                let tag: &[u8; AEAD_TAG_LEN] = (&*tag).try_into().map_err(|_| Error::TooShort)?;
                rtp.aead
                    .open(&rtp.iv(ssrc, index), header, payload, tag)
                    .map_err(|_| Error::AuthFailed)?;
            }
        }

        stream.rtp.update(index);
        stream.last_used = next_tick(&mut self.tick);
        if slot.is_none() {
            self.add(fresh);
        }
        // The header was checked above and ends before `len`.
        Ok(rtp::Packet::new_unchecked(&mut buf[..len]))
    }

    /// Protects the RTCP (compound) packet in `buf[..len]` in place: encrypts all but the
    /// first 8 bytes, appends the E flag with the SRTCP index and the tag (AES-CM: the word
    /// then the 80-bit tag, RFC 3711 section 3.4; AES-GCM: the 128-bit tag then the word,
    /// RFC 7714 section 9). `buf` needs `len + 4 + suite.rtcp_tag_len()` bytes. Returns the
    /// SRTCP packet length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let tag_len = self.suite.rtcp_tag_len();
        let out_len = room(buf, len, SRTCP_INDEX_LEN + tag_len)?;
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

        let word = (SRTCP_E_FLAG | index as u32).to_be_bytes();
        match &self.transform {
            Transform::Cm { rtcp, .. } => {
                let trailer_end = len + SRTCP_INDEX_LEN;
                rtcp.cipher
                    .apply(&rtcp.iv(ssrc, index), &mut buf[RTCP_HEADER_LEN..len]);
                buf[len..trailer_end].copy_from_slice(&word);
                let tag = rtcp.auth.mac(&buf[..trailer_end], &[]);
                buf[trailer_end..out_len].copy_from_slice(&tag[..tag_len]);
            }
            Transform::Gcm { rtcp, .. } => {
                // RFC 7714 section 9.2: the AAD is the clear header and the trailer word.
                let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                let tag =
                    rtcp.aead
                        .seal(&rtcp.iv(ssrc, index), &aad, &mut buf[RTCP_HEADER_LEN..len]);
                buf[len..len + tag_len].copy_from_slice(&tag);
                buf[len + tag_len..out_len].copy_from_slice(&word);
            }
        }

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
        let tag_len = self.suite.rtcp_tag_len();
        let len = buf
            .len()
            .checked_sub(SRTCP_INDEX_LEN + tag_len)
            .filter(|&n| n >= RTCP_HEADER_LEN)
            .ok_or(Error::TooShort)?;
        // The trailer word follows the packet (AES-CM) or the tag (AES-GCM).
        let at = match self.transform {
            Transform::Cm { .. } => len,
            Transform::Gcm { .. } => len + tag_len,
        };
        let word: [u8; SRTCP_INDEX_LEN] = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        let trailer = u32::from_be_bytes(word);
        let index = u64::from(trailer & !SRTCP_E_FLAG);
        let encrypted = trailer & SRTCP_E_FLAG != 0;

        let slot = self.slot_to_unprotect(ssrc)?;
        let mut fresh = Stream::new(ssrc);
        let stream = match slot {
            Some(i) => &mut self.streams[i],
            None => &mut fresh,
        };
        stream.rtcp.check(index)?;

        match &self.transform {
            Transform::Cm { rtcp, .. } => {
                let trailer_end = len + SRTCP_INDEX_LEN;
                let tag = rtcp.auth.mac(&buf[..trailer_end], &[]);
                if !tag_eq(&tag[..tag_len], &buf[trailer_end..]) {
                    return Err(Error::AuthFailed);
                }
                if encrypted {
                    rtcp.cipher
                        .apply(&rtcp.iv(ssrc, index), &mut buf[RTCP_HEADER_LEN..len]);
                }
            }
            Transform::Gcm { rtcp, .. } => {
                let iv = rtcp.iv(ssrc, index);
                let mut tag = [0u8; AEAD_TAG_LEN];
                tag.copy_from_slice(&buf[len..at]);
                let ok = if encrypted {
                    // RFC 7714 section 9.2: AAD is the clear header and the trailer word.
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                    rtcp.aead
                        .open(&iv, &aad, &mut buf[RTCP_HEADER_LEN..len], &tag)
                } else {
                    // RFC 7714 section 9.3: unencrypted, the AAD is the whole packet and the
                    // trailer word, the plaintext empty. The word is put after the packet,
                    // over the tag's first bytes, for the one contiguous AAD, then put back.
                    buf[len..len + SRTCP_INDEX_LEN].copy_from_slice(&word);
                    let ok = rtcp
                        .aead
                        .open(&iv, &buf[..len + SRTCP_INDEX_LEN], &mut [], &tag);
                    buf[len..len + SRTCP_INDEX_LEN].copy_from_slice(&tag[..SRTCP_INDEX_LEN]);
                    ok
                };
                ok.map_err(|_| Error::AuthFailed)?;
            }
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
    use super::super::cipher::Gcm;
    use super::*;

    fn key() -> MasterKey {
        MasterKey::new(Suite::AesCm128HmacSha1_80, &[0x11; 16], &[0x22; 14]).unwrap()
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
        let Transform::Cm { rtcp, .. } = &tx.transform else {
            unreachable!()
        };
        let tag = rtcp.auth.mac(&buf[..12], &[]);
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

    // RFC 7714 sections 16 and 17 give their vectors in session keys and salts (no key
    // derivation), as 4-octet groups; the contexts below start from those session keys.
    // Common to all of them (sections 16 and 17):
    //
    //   Key (128):  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
    //   Key (256):  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
    //               10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
    //   Salt:       51 75 69 64 20 70 72 6f 20 71 75 6f
    const RFC7714_KEY: &str = "000102030405060708090a0b0c0d0e0f
                               101112131415161718191a1b1c1d1e1f";
    const RFC7714_SALT: &str = "51 75 69 64 20 70 72 6f 20 71 75 6f";

    // Section 16: the RTP packet, SSRC 5501a0b2, sequence number f17b, ROC 0.
    const RFC7714_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c
                               69612065 7374206f 6d6e6973 20646976
                               69736120 696e2070 61727465 73207472
                               6573";
    // Section 16.1.1, SRTP AEAD_AES_128_GCM encrypted packet.
    const RFC7714_SRTP_128: &str = "8040f17b 8041f8d3 5501a0b2 f24de3a3
                                    fb34de6c acba861c 9d7e4bca be633bd5
                                    0d294e6f 42a5f47a 51c7d19b 36de3adf
                                    8833899d 7f27beb1 6a9152cf 765ee439
                                    0cce";
    // Section 16.2.1, SRTP AEAD_AES_256_GCM encrypted packet.
    const RFC7714_SRTP_256: &str = "8040f17b 8041f8d3 5501a0b2 32b1de78
                                    a822fe12 ef9f78fa 332e33aa b1801238
                                    9a58e2f3 b50b2a02 76ffae0f 1ba63799
                                    b87b7aa3 db36dfff d6b0f9bb 7878d7a7
                                    6c13";
    // Section 17: the RTCP packet of sections 17.1 to 17.3, SSRC 4d617273 ("Mars"),
    // SRTCP index 5d4.
    const RFC7714_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032
                                52545020 0000042a 0000e930 4c756e61
                                deadbeef deadbeef deadbeef deadbeef
                                deadbeef";
    // Section 17.1, SRTCP AEAD_AES_128_GCM encrypted packet (E flag set).
    const RFC7714_SRTCP_128: &str = "81c8000d 4d617273 63e94885 dcdab67c
                                     a727d766 2f6b7e99 7ff5c0f7 6c06f32d
                                     c676a5f1 730d6fda 4ce09b46 86303ded
                                     0bb9275b c84aa458 96cf4d2f c5abf872
                                     45d9eade 800005d4";
    // Section 17.2, SRTCP AEAD_AES_256_GCM encrypted packet.
    const RFC7714_SRTCP_256: &str = "81c8000d 4d617273 d50ae4d1 f5ce5d30
                                     4ba297e4 7d470c28 2c3ece5d bffe0a50
                                     a2eaa5c1 110555be 8415f658 c61de047
                                     6f1b6fad 1d1eb30c 4446839f 57ff6f6c
                                     b26ac3be 800005d4";
    // Section 17.3, SRTCP AEAD_AES_128_GCM tagged, not encrypted (E flag clear).
    const RFC7714_SRTCP_128_TAG_ONLY: &str = "81c8000d 4d617273 4e545031 4e545032
                                              52545020 0000042a 0000e930 4c756e61
                                              deadbeef deadbeef deadbeef deadbeef
                                              deadbeef 841dd968 3dd78ec9 2ae58790
                                              125f62b3 000005d4";

    fn unhex(s: &str) -> std::vec::Vec<u8> {
        let s: std::vec::Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// A context from the RFC's session key and salt, for SRTP and SRTCP alike.
    fn rfc7714_context(suite: Suite) -> Context {
        let key = unhex(RFC7714_KEY);
        let salt: [u8; 12] = unhex(RFC7714_SALT).try_into().unwrap();
        let keys = || GcmKeys {
            aead: match suite {
                Suite::AeadAes256Gcm => Gcm::new_256(&key[..].try_into().unwrap()),
                _ => Gcm::new_128(&key[..16].try_into().unwrap()),
            },
            salt,
        };
        Context::with_transform(
            suite,
            Transform::Gcm {
                rtp: keys(),
                rtcp: keys(),
            },
        )
    }

    #[test]
    fn srtp_rfc7714_iv() {
        let ctx = rfc7714_context(Suite::AeadAes128Gcm);
        let Transform::Gcm { rtp, .. } = &ctx.transform else {
            unreachable!()
        };
        // Section 16.1.1: IV = 51753c6580c2726f20718414 (SSRC 5501a0b2, ROC 0, SEQ f17b).
        assert_eq!(
            rtp.iv(0x5501_a0b2, 0xf17b)[..],
            unhex("51753c6580c2726f20718414")
        );
        // Section 17.1: IV = 517524055203726f207170bb (SSRC 4d617273, SRTCP index 5d4).
        assert_eq!(
            rtp.iv(0x4d61_7273, 0x5d4)[..],
            unhex("517524055203726f207170bb")
        );
    }

    #[test]
    fn srtp_rfc7714_16_protect_and_unprotect() {
        for (suite, expect) in [
            (Suite::AeadAes128Gcm, RFC7714_SRTP_128),
            (Suite::AeadAes256Gcm, RFC7714_SRTP_256),
        ] {
            let (plain, expect) = (unhex(RFC7714_RTP), unhex(expect));
            let mut buf = [0u8; 128];
            buf[..plain.len()].copy_from_slice(&plain);
            let n = rfc7714_context(suite)
                .protect_rtp(&mut buf, plain.len())
                .unwrap();
            assert_eq!(buf[..n], expect[..], "{suite:?}");

            let mut rx = rfc7714_context(suite);
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(plain.len()));
            assert_eq!(buf[..plain.len()], plain[..], "{suite:?}");
        }
    }

    #[test]
    fn srtcp_rfc7714_17_protect_and_unprotect() {
        for (suite, expect) in [
            (Suite::AeadAes128Gcm, RFC7714_SRTCP_128),
            (Suite::AeadAes256Gcm, RFC7714_SRTCP_256),
        ] {
            let (plain, expect) = (unhex(RFC7714_RTCP), unhex(expect));
            let mut tx = rfc7714_context(suite);
            let mut buf = [0u8; 128];
            buf[..plain.len()].copy_from_slice(&plain);
            // The stream's next index is the vector's 0x5d4.
            assert_eq!(tx.protect_rtcp(&mut buf, plain.len()), Ok(plain.len() + 20));
            tx.streams[0].rtcp.update(0x5d3);
            buf[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
            assert_eq!(buf[..n], expect[..], "{suite:?}");

            let mut rx = rfc7714_context(suite);
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Ok(plain.len()));
            assert_eq!(buf[..plain.len()], plain[..], "{suite:?}");
            buf[..n].copy_from_slice(&expect);
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Err(Error::Replayed));
        }
    }

    #[test]
    fn srtcp_rfc7714_17_3_tag_only() {
        let (plain, tagged) = (unhex(RFC7714_RTCP), unhex(RFC7714_SRTCP_128_TAG_ONLY));
        let mut rx = rfc7714_context(Suite::AeadAes128Gcm);
        let mut buf = tagged.clone();
        // Any bit of the packet, tag or trailer word changed fails, bytes unchanged.
        for i in 0..buf.len() {
            buf[i] ^= 0x01;
            let r = rx.unprotect_rtcp(&mut buf);
            assert!(
                matches!(r, Err(Error::AuthFailed | Error::Malformed)),
                "byte {i}: {r:?}"
            );
            buf[i] ^= 0x01;
            assert_eq!(buf, tagged, "byte {i}");
        }
        assert_eq!(rx.unprotect_rtcp(&mut buf), Ok(plain.len()));
        assert_eq!(buf[..plain.len()], plain[..]);
        // The 256-bit key does not authenticate it.
        let mut buf = tagged.clone();
        let mut rx = rfc7714_context(Suite::AeadAes256Gcm);
        assert_eq!(rx.unprotect_rtcp(&mut buf), Err(Error::AuthFailed));
    }

    fn gcm_key(suite: Suite) -> MasterKey {
        MasterKey::new(suite, &[0x33; 32][..suite.key_len()], &[0x44; 12]).unwrap()
    }

    #[test]
    fn srtp_gcm_tampering_truncation_and_replay() {
        for suite in [Suite::AeadAes128Gcm, Suite::AeadAes256Gcm] {
            let mut tx = Context::new(suite, &gcm_key(suite));
            let mut rx = Context::new(suite, &gcm_key(suite));
            let (protected, n) = protect(&mut tx, 5, 0x55);
            assert_eq!(n, 40 + 16);
            // Every bit flipped in the header, payload or tag fails; the bytes stay.
            for i in 0..n {
                for bit in [0x01, 0x80] {
                    let mut buf = protected;
                    buf[i] ^= bit;
                    let r = rx.unprotect_rtp(&mut buf[..n]);
                    assert!(
                        matches!(r, Err(Error::AuthFailed | Error::Malformed)),
                        "{suite:?} byte {i}: {r:?}"
                    );
                    buf[i] ^= bit;
                    assert_eq!(buf, protected);
                }
            }
            assert_eq!(rx.stream_count(), 0);
            // Truncated: the tag cut short fails, shorter than header and tag is TooShort.
            let mut buf = protected;
            assert_eq!(rx.unprotect_rtp(&mut buf[..n - 1]), Err(Error::AuthFailed));
            assert_eq!(rx.unprotect_rtp(&mut buf[..12 + 15]), Err(Error::TooShort));
            assert_eq!(rx.unprotect_rtp(&mut buf[..11]), Err(Error::TooShort));
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]), Ok(40));
            let mut again = protected;
            assert_eq!(rx.unprotect_rtp(&mut again[..n]), Err(Error::Replayed));
            // The other GCM key size does not authenticate it.
            let other = match suite {
                Suite::AeadAes128Gcm => Suite::AeadAes256Gcm,
                _ => Suite::AeadAes128Gcm,
            };
            let mut wrong = Context::new(other, &gcm_key(other));
            assert_eq!(wrong.unprotect_rtp(&mut again[..n]), Err(Error::AuthFailed));
            // Room for the 16-byte tag.
            let mut buf = [0u8; 64];
            rtp(&mut buf, 6, 0x55);
            assert_eq!(
                tx.protect_rtp(&mut buf[..55], 40),
                Err(Error::BufferTooSmall { needed: 56 })
            );
        }
    }

    #[test]
    fn srtcp_gcm_tampering_truncation_and_replay() {
        for suite in [Suite::AeadAes128Gcm, Suite::AeadAes256Gcm] {
            let mut tx = Context::new(suite, &gcm_key(suite));
            let mut rx = Context::new(suite, &gcm_key(suite));
            let mut buf = [0u8; 80];
            let rtcp = unhex(RFC7714_RTCP);
            let len = rtcp.len();
            buf[..len].copy_from_slice(&rtcp);
            let plain = buf;
            assert_eq!(
                tx.protect_rtcp(&mut buf[..len + 19], len),
                Err(Error::BufferTooSmall { needed: len + 20 })
            );
            let n = tx.protect_rtcp(&mut buf, len).unwrap();
            assert_eq!(n, len + 20);
            // E flag set, index 0, after the tag (RFC 7714 section 9.1).
            assert_eq!(buf[n - 4..n], [0x80, 0, 0, 0]);
            let protected = buf;
            for i in 0..n {
                let mut buf = protected;
                buf[i] ^= 0x01;
                let r = rx.unprotect_rtcp(&mut buf[..n]);
                assert!(
                    matches!(r, Err(Error::AuthFailed | Error::Malformed)),
                    "{suite:?} byte {i}: {r:?}"
                );
                assert_eq!(buf[i] ^ 0x01, protected[i]);
            }
            // Clearing the E flag changes the AAD: it fails rather than passing ciphertext.
            let mut buf = protected;
            buf[n - 4] &= 0x7f;
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Err(Error::AuthFailed));
            assert_eq!(buf[..n - 4], protected[..n - 4]);
            let mut buf = protected;
            assert_eq!(rx.unprotect_rtcp(&mut buf[..8 + 19]), Err(Error::TooShort));
            assert_eq!(rx.unprotect_rtcp(&mut buf[..7]), Err(Error::TooShort));
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n - 1]), Err(Error::AuthFailed));
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Ok(len));
            assert_eq!(buf[..len], plain[..len]);
            let mut buf = protected;
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]), Err(Error::Replayed));
        }
    }
}
