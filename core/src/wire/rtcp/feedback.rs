//! The feedback messages the relay routes between WebRTC clients (RFC 4585 section 6.1's
//! common format): Generic NACK (RTPFB, FMT 1, RFC 4585 section 6.2.1), PLI (PSFB, FMT 1,
//! section 6.3.1) and FIR (PSFB, FMT 4, RFC 5104 section 4.3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|   FMT   |       PT      |          length               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  SSRC of packet sender                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  SSRC of media source                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! :            Feedback Control Information (FCI)                 :
//! ```
//!
//! A FIR's media source SSRC is zero; the stream it names is in each FCI entry (SSRC, a
//! command sequence number, 24 reserved bits).

use super::{COUNT_MASK, EmitError, Packet, RawPacket, VERSION, packet_type};
use crate::wire::bytes::be_u32;

/// The FMT of a Generic NACK.
pub const FMT_NACK: u8 = 1;
/// The FMT of a PLI.
pub const FMT_PLI: u8 = 1;
/// The FMT of a FIR.
pub const FMT_FIR: u8 = 4;
/// Header, sender SSRC and media source SSRC.
const COMMON_LEN: usize = 12;
/// One FIR FCI entry: SSRC, sequence number, reserved.
const FIR_ENTRY_LEN: usize = 8;
/// One NACK FCI entry: PID and BLP.
const NACK_ENTRY_LEN: usize = 4;

/// Which feedback message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Generic NACK: retransmit these packets.
    Nack,
    /// Picture Loss Indication: send a key frame.
    Pli,
    /// Full Intra Request: send a key frame now.
    Fir,
}

/// A NACK, PLI or FIR: the stream it names and the message's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feedback<'a> {
    /// Which message.
    pub kind: Kind,
    /// The SSRC of the stream it is about (a FIR's first FCI entry).
    pub media_ssrc: u32,
    bytes: &'a [u8],
}

impl<'a> Packet<'a> {
    /// This packet as a NACK, PLI or FIR, if it is one with the FCI its kind needs.
    pub fn feedback(&self) -> Option<Feedback<'a>> {
        let Packet::Other(raw) = self else {
            return None;
        };
        feedback(*raw)
    }
}

fn feedback(raw: RawPacket<'_>) -> Option<Feedback<'_>> {
    let bytes = raw.unpadded();
    let (kind, min) = match (raw.packet_type(), raw.count()) {
        (packet_type::RTPFB, FMT_NACK) => (Kind::Nack, COMMON_LEN + NACK_ENTRY_LEN),
        (packet_type::PSFB, FMT_PLI) => (Kind::Pli, COMMON_LEN),
        (packet_type::PSFB, FMT_FIR) => (Kind::Fir, COMMON_LEN + FIR_ENTRY_LEN),
        _ => return None,
    };
    if bytes.len() < min {
        return None;
    }
    let at = if kind == Kind::Fir { COMMON_LEN } else { 8 };
    let media_ssrc = bytes.get(at..at + 4).map(be_u32)?;
    Some(Feedback {
        kind,
        media_ssrc,
        bytes,
    })
}

impl Feedback<'_> {
    /// Writes this message at the start of `buf` as sent by `sender_ssrc`, without padding:
    /// a NACK with all its FCI, a PLI as is, a FIR with only the entry naming
    /// [`Feedback::media_ssrc`] and the command sequence number `fir_seq` (RFC 5104 section
    /// 4.3.1.1: the number counts the commands of one requester, which `sender_ssrc` now
    /// is). Returns its length.
    pub fn emit(&self, sender_ssrc: u32, fir_seq: u8, buf: &mut [u8]) -> Result<usize, EmitError> {
        let len = match self.kind {
            Kind::Fir => COMMON_LEN + FIR_ENTRY_LEN,
            Kind::Nack | Kind::Pli => self.bytes.len(),
        };
        let out = buf
            .get_mut(..len)
            .ok_or(EmitError::BufferTooSmall { needed: len })?;
        let src = self
            .bytes
            .get(..len)
            .ok_or(EmitError::BufferTooSmall { needed: len })?;
        out.copy_from_slice(src);
        let fmt = src.first().copied().unwrap_or(0) & COUNT_MASK;
        out[0] = (VERSION << 6) | fmt;
        let words = u16::try_from(len / 4 - 1).unwrap_or(u16::MAX);
        out[2..4].copy_from_slice(&words.to_be_bytes());
        out[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
        if self.kind == Kind::Fir {
            out[COMMON_LEN + 4] = fir_seq;
        }
        Ok(len)
    }
}

/// Writes a PLI from `sender_ssrc` about `media_ssrc` at the start of `buf`; returns 12.
pub fn emit_pli(sender_ssrc: u32, media_ssrc: u32, buf: &mut [u8]) -> Result<usize, EmitError> {
    let out = buf
        .get_mut(..COMMON_LEN)
        .ok_or(EmitError::BufferTooSmall { needed: COMMON_LEN })?;
    out[0] = (VERSION << 6) | FMT_PLI;
    out[1] = packet_type::PSFB;
    out[2..4].copy_from_slice(&((COMMON_LEN / 4 - 1) as u16).to_be_bytes());
    out[4..8].copy_from_slice(&sender_ssrc.to_be_bytes());
    out[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    Ok(COMMON_LEN)
}

#[cfg(test)]
mod tests {
    use super::super::Compound;
    use super::*;

    fn first(buf: &[u8]) -> Option<Feedback<'_>> {
        Compound::new(buf).next()?.ok()?.feedback()
    }

    #[test]
    fn nack_pli_and_fir_are_read_and_rewritten() {
        // RFC 4585 section 6.3.1: a PLI has no FCI.
        let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 9];
        let f = first(&pli).unwrap();
        assert_eq!((f.kind, f.media_ssrc), (Kind::Pli, 9));
        let mut out = [0u8; 64];
        let n = f.emit(0xabcd, 0, &mut out).unwrap();
        assert_eq!(&out[..n], [0x81, 206, 0, 2, 0, 0, 0xab, 0xcd, 0, 0, 0, 9]);
        // Generic NACK with two FCI entries (PID, BLP), padded: the padding goes.
        let nack = [
            0xa1, 205, 0, 5, 0, 0, 0, 1, 0, 0, 0, 7, 0, 10, 0, 3, 0, 20, 0, 0, 0, 0, 0, 4,
        ];
        let f = first(&nack).unwrap();
        assert_eq!((f.kind, f.media_ssrc), (Kind::Nack, 7));
        let n = f.emit(5, 0, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            [
                0x81, 205, 0, 4, 0, 0, 0, 5, 0, 0, 0, 7, 0, 10, 0, 3, 0, 20, 0, 0
            ]
        );
        // FIR (RFC 5104 section 4.3.1): media SSRC zero, the target in the FCI.
        let fir = [
            0x84, 206, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 9, 4, 0, 0, 0,
        ];
        let f = first(&fir).unwrap();
        assert_eq!((f.kind, f.media_ssrc), (Kind::Fir, 8));
        let n = f.emit(5, 42, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            [
                0x84, 206, 0, 4, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 8, 42, 0, 0, 0
            ]
        );
        let n = emit_pli(1, 2, &mut out).unwrap();
        assert_eq!(
            first(&out[..n]).map(|f| (f.kind, f.media_ssrc)),
            Some((Kind::Pli, 2))
        );
    }

    #[test]
    fn other_feedback_and_short_messages_are_not_routed() {
        // REMB (PSFB FMT 15), TWCC (RTPFB FMT 15), a NACK without FCI, a FIR without one.
        for p in [
            [0x8f, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 9],
            [0x8f, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 9],
            [0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 9],
            [0x84, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 9],
        ] {
            assert_eq!(first(&p), None, "{p:?}");
        }
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(first(&rr), None);
        let mut small = [0u8; 11];
        assert!(emit_pli(1, 2, &mut small).is_err());
    }
}
