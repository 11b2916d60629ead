//! One direction's SRTP/SRTCP context: session keys and the per-SSRC stream table.

use heapless::Vec;
use subtle::ConstantTimeEq;

use super::kdf::{Kdf, Label, SessionKeys};
use super::replay::{ReplayWindow, estimate_index};
use super::{Error, MasterKey, SRTCP_INDEX_LEN, SRTCP_TAG_LEN, Suite};
use crate::config::SRTP_MAX_STREAMS;

/// Fixed RTP header length (RFC 3550 section 5.1), up to and including the SSRC.
const RTP_HEADER_LEN: usize = 12;
/// RTCP header and sender SSRC (RFC 3550 section 6.4.1): the part SRTCP leaves in clear.
const RTCP_HEADER_LEN: usize = 8;
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
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let tag_len = self.suite.rtp_tag_len();
        let out_len = room(buf, len, tag_len)?;
        let header_len = rtp_header_len(&buf[..len])?;
        let (seq, ssrc) = rtp_seq_ssrc(buf);

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
        let tag_len = self.suite.rtp_tag_len();
        let len = buf.len().checked_sub(tag_len).ok_or(Error::TooShort)?;
        let header_len = rtp_header_len(&buf[..len])?;
        let (seq, ssrc) = rtp_seq_ssrc(buf);

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
        Ok(len)
    }

    /// Protects the RTCP (compound) packet in `buf[..len]` in place: encrypts all but the
    /// first 8 bytes, appends the E flag with the SRTCP index and the 80-bit tag. `buf` needs
    /// `len + 14` bytes. Returns the SRTCP packet length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let trailer_end = len + SRTCP_INDEX_LEN;
        let out_len = room(buf, len, SRTCP_INDEX_LEN + SRTCP_TAG_LEN)?;
        if len < RTCP_HEADER_LEN {
            return Err(Error::TooShort);
        }
        let ssrc = rtcp_ssrc(buf);

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
        let trailer_end = buf
            .len()
            .checked_sub(SRTCP_TAG_LEN)
            .filter(|&n| n >= RTCP_HEADER_LEN + SRTCP_INDEX_LEN)
            .ok_or(Error::TooShort)?;
        let len = trailer_end - SRTCP_INDEX_LEN;
        let trailer = u32::from_be_bytes([buf[len], buf[len + 1], buf[len + 2], buf[len + 3]]);
        let index = u64::from(trailer & !SRTCP_E_FLAG);
        let ssrc = rtcp_ssrc(buf);

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
        Ok(len)
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

/// The RTP header length with CSRCs and extension (RFC 3550 section 5.1 and 5.3.1): where
/// the encrypted payload starts.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |V=2|P|X|  CC   |M|     PT      |       sequence number         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                           timestamp                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           synchronization source (SSRC) identifier            |
/// +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// |            contributing source (CSRC) identifiers             |
/// |                             ....                              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      defined by profile       |           length              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        header extension                       |
/// |                             ....                              |
/// ```
fn rtp_header_len(packet: &[u8]) -> Result<usize, Error> {
    if packet.len() < RTP_HEADER_LEN {
        return Err(Error::TooShort);
    }
    let first = packet[0];
    let mut len = RTP_HEADER_LEN + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let ext = packet.get(len + 2..len + 4).ok_or(Error::Malformed)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > packet.len() {
        return Err(Error::Malformed);
    }
    Ok(len)
}

/// Sequence number and SSRC of an RTP header already checked by `rtp_header_len`.
fn rtp_seq_ssrc(buf: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([buf[2], buf[3]]),
        u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
    )
}

/// The sender SSRC of the first RTCP packet of a compound packet at least 8 bytes long.
fn rtcp_ssrc(buf: &[u8]) -> u32 {
    u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]])
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
