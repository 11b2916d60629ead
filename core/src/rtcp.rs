//! RTCP packets (RFC 3550 section 6): compound walking and checked views.
//!
//! An RTCP datagram is a compound packet: individual packets back to back, each with a
//! 4-byte header whose length field counts 32-bit words minus one. [`Compound::new`] walks
//! them and yields each as a typed view or the first error; it is the only door for
//! untrusted bytes. A packet is checked before it is yielded:
//!
//! - version 2, the length inside the datagram, and the datagram used up exactly;
//! - padding only on the last packet, its count nonzero and within the packet;
//! - for SR (200), RR (201), SDES (202), BYE (203) and APP (204), the fixed fields, the
//!   report or source count against the length, every SDES chunk and item, the BYE reason.
//!
//! Other packet types (RTPFB, PSFB, XR, ...) are passed through as [`RawPacket`]s. The
//! RFC 3550 appendix A.2 rule that a compound starts with an SR or RR is not enforced, since
//! reduced-size RTCP (RFC 5506) allows a lone feedback packet.
//!
//! After the views, [`first_ssrc`] gives the relay the SSRC to latch on, and
//! [`emit_receiver_report`] and [`emit_sdes_cname`] build the RR + SDES compound a listening
//! client sends to latch (PROTOCOL.md section 3).
//!
//! SRTCP: the relay sees a compound here only after the SRTP module has authenticated and
//! decrypted it and removed the E-flag/index word and the tag; what reaches this module is
//! plain RTCP.

use core::fmt;
use core::iter::FusedIterator;

use crate::wire::{TooSmall, Writer, be_u16, be_u32, be_u64};

/// A byte range inside a packet.
type Field = core::ops::Range<usize>;

/// Byte offsets inside an individual RTCP packet (RFC 3550 sections 6.4 to 6.7).
mod field {
    use super::Field;

    /// V (2 bits), P, RC/SC/subtype (5 bits).
    pub(crate) const VPC: usize = 0;
    /// Packet type.
    pub(crate) const PT: usize = 1;
    /// Length in 32-bit words minus one.
    pub(crate) const LENGTH: Field = 2..4;

    /// SR, RR, APP, BYE, RTPFB, PSFB, XR: the first SSRC after the header.
    pub(crate) const SSRC: Field = 4..8;
    /// SR: NTP timestamp, both words.
    pub(crate) const SR_NTP: Field = 8..16;
    /// SR: RTP timestamp.
    pub(crate) const SR_RTP_TS: Field = 16..20;
    /// SR: sender's packet count.
    pub(crate) const SR_PACKET_COUNT: Field = 20..24;
    /// SR: sender's octet count.
    pub(crate) const SR_OCTET_COUNT: Field = 24..28;
    /// SR: first report block.
    pub(crate) const SR_REPORTS: usize = 28;
    /// RR: first report block.
    pub(crate) const RR_REPORTS: usize = 8;
    /// SDES: first chunk.
    pub(crate) const SDES_CHUNKS: usize = 4;
    /// BYE: first SSRC/CSRC.
    pub(crate) const BYE_SSRCS: usize = 4;
    /// APP: four ASCII characters.
    pub(crate) const APP_NAME: Field = 8..12;
    /// APP: application-dependent data.
    pub(crate) const APP_DATA: usize = 12;

    /// Report block, relative to its start: SSRC of the source reported on.
    pub(crate) const RB_SSRC: Field = 0..4;
    /// Report block: fraction lost.
    pub(crate) const RB_FRACTION_LOST: usize = 4;
    /// Report block: cumulative number of packets lost (signed 24 bits).
    pub(crate) const RB_CUMULATIVE_LOST: Field = 5..8;
    /// Report block: extended highest sequence number received.
    pub(crate) const RB_HIGHEST_SEQ: Field = 8..12;
    /// Report block: interarrival jitter.
    pub(crate) const RB_JITTER: Field = 12..16;
    /// Report block: last SR.
    pub(crate) const RB_LSR: Field = 16..20;
    /// Report block: delay since last SR.
    pub(crate) const RB_DLSR: Field = 20..24;
}

/// Length of the common header.
pub const HEADER_LEN: usize = 4;
/// The only RTCP version.
pub const VERSION: u8 = 2;
/// Length of one SR/RR report block.
pub const REPORT_BLOCK_LEN: usize = 24;
/// Largest RC or SC (a 5-bit field).
pub const MAX_COUNT: usize = 31;
/// Longest SDES item value (its length is one byte).
pub const MAX_ITEM_LEN: usize = 255;

const PADDING_BIT: u8 = 0x20;
const COUNT_MASK: u8 = 0x1f;
const SR_MIN_LEN: usize = field::SR_REPORTS;
const RR_MIN_LEN: usize = field::RR_REPORTS;
const APP_MIN_LEN: usize = field::APP_DATA;

/// RTCP packet types.
pub mod packet_type {
    /// Sender report (RFC 3550 section 6.4.1).
    pub const SR: u8 = 200;
    /// Receiver report (RFC 3550 section 6.4.2).
    pub const RR: u8 = 201;
    /// Source description (RFC 3550 section 6.5).
    pub const SDES: u8 = 202;
    /// Goodbye (RFC 3550 section 6.6).
    pub const BYE: u8 = 203;
    /// Application-defined (RFC 3550 section 6.7).
    pub const APP: u8 = 204;
    /// Transport-layer feedback (RFC 4585 section 6.1): NACK, transport-wide CC.
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback (RFC 4585 section 6.1): PLI, FIR, REMB.
    pub const PSFB: u8 = 206;
    /// Extended reports (RFC 3611 section 2).
    pub const XR: u8 = 207;
}

/// SDES item types (RFC 3550 section 6.5).
pub mod sdes_item {
    /// End of a chunk's item list.
    pub const END: u8 = 0;
    /// Canonical end-point identifier.
    pub const CNAME: u8 = 1;
    /// User name.
    pub const NAME: u8 = 2;
    /// Electronic mail address.
    pub const EMAIL: u8 = 3;
    /// Phone number.
    pub const PHONE: u8 = 4;
    /// Geographic user location.
    pub const LOC: u8 = 5;
    /// Application or tool name.
    pub const TOOL: u8 = 6;
    /// Notice/status.
    pub const NOTE: u8 = 7;
    /// Private extensions.
    pub const PRIV: u8 = 8;
}

/// Why bytes are not a well-formed RTCP compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Fewer than 4 bytes where a header should start (including an empty datagram), or a
    /// length field running past the datagram.
    Truncated,
    /// Version field other than 2.
    BadVersion,
    /// Padding bit on a packet that is not the last, or a padding count that is zero or
    /// larger than the packet after its header.
    BadPadding,
    /// A packet too short for its type's fixed fields (SR, RR, APP).
    BadLength,
    /// A report count (RC) or source count (SC) that disagrees with the length: more report
    /// blocks, chunks or SSRCs than fit, or SDES chunks left over.
    BadCount,
    /// An SDES chunk without its terminating null item or with an item running past the
    /// packet, or a BYE reason running past the packet or followed by more than padding.
    BadItem,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "RTCP packet truncated",
            Error::BadVersion => "RTCP version is not 2",
            Error::BadPadding => "RTCP padding misplaced or its count out of range",
            Error::BadLength => "RTCP packet too short for its type",
            Error::BadCount => "RTCP report or source count disagrees with the length",
            Error::BadItem => "RTCP SDES item or BYE reason malformed",
        })
    }
}

impl core::error::Error for Error {}

/// Walks a compound RTCP packet (RFC 3550 section 6.1), yielding each individual packet as
/// a checked view, or the first error, after which it yields nothing more.
///
/// An empty datagram yields `Err(Error::Truncated)`: a compound has at least one packet.
/// Each individual packet starts with this header (section 6.4.1):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |V=2|P|    RC   |      PT       |             length            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// where length is the packet's size in 32-bit words minus one, header and padding
/// included, and padding (P) is allowed only on the last packet of the compound.
#[derive(Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
    started: bool,
    done: bool,
}

impl<'a> Compound<'a> {
    /// Starts walking `buf`, a whole RTCP datagram.
    pub fn new(buf: &'a [u8]) -> Self {
        Compound {
            rest: buf,
            started: false,
            done: false,
        }
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<Packet<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || (self.started && self.rest.is_empty()) {
            self.done = true;
            return None;
        }
        self.started = true;
        let parsed = split_packet(self.rest)
            .and_then(|(raw, tail)| Packet::from_raw(raw).map(|packet| (packet, tail)));
        match parsed {
            Ok((packet, tail)) => {
                self.rest = tail;
                Some(Ok(packet))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for Compound<'_> {}

impl fmt::Debug for Compound<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compound")
            .field("remaining_len", &self.rest.len())
            .field("done", &self.done)
            .finish()
    }
}

/// Splits the first individual packet off `rest`: header, version, length and padding.
fn split_packet(rest: &[u8]) -> Result<(RawPacket<'_>, &[u8]), Error> {
    let first = *rest.first().ok_or(Error::Truncated)?;
    let words = rest
        .get(field::LENGTH)
        .map(be_u16)
        .ok_or(Error::Truncated)?;
    if first >> 6 != VERSION {
        return Err(Error::BadVersion);
    }
    let len = (usize::from(words) + 1) * 4;
    let (bytes, tail) = rest.split_at_checked(len).ok_or(Error::Truncated)?;
    let padding = if first & PADDING_BIT != 0 {
        if !tail.is_empty() {
            return Err(Error::BadPadding);
        }
        let count = usize::from(bytes.last().copied().unwrap_or(0));
        if count == 0 || count > len - HEADER_LEN {
            return Err(Error::BadPadding);
        }
        count
    } else {
        0
    };
    Ok((RawPacket { bytes, padding }, tail))
}

/// One individual RTCP packet, typed by its packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// SR (200).
    SenderReport(SenderReport<'a>),
    /// RR (201).
    ReceiverReport(ReceiverReport<'a>),
    /// SDES (202).
    SourceDescription(SourceDescription<'a>),
    /// BYE (203).
    Bye(Bye<'a>),
    /// APP (204).
    App(App<'a>),
    /// Any other packet type, checked only for header, length and padding.
    Other(RawPacket<'a>),
}

impl<'a> Packet<'a> {
    fn from_raw(raw: RawPacket<'a>) -> Result<Self, Error> {
        let count = usize::from(raw.count());
        let len = raw.unpadded().len();
        Ok(match raw.packet_type() {
            packet_type::SR => {
                check_reports(len, SR_MIN_LEN, count)?;
                Packet::SenderReport(SenderReport { raw })
            }
            packet_type::RR => {
                check_reports(len, RR_MIN_LEN, count)?;
                Packet::ReceiverReport(ReceiverReport { raw })
            }
            packet_type::SDES => {
                check_sdes(raw.unpadded(), count)?;
                Packet::SourceDescription(SourceDescription { raw })
            }
            packet_type::BYE => {
                check_bye(raw.unpadded(), count)?;
                Packet::Bye(Bye { raw })
            }
            packet_type::APP => {
                if len < APP_MIN_LEN {
                    return Err(Error::BadLength);
                }
                Packet::App(App { raw })
            }
            _ => Packet::Other(raw),
        })
    }

    /// The packet's header, length and bytes, whatever its type.
    pub fn raw(&self) -> RawPacket<'a> {
        match self {
            Packet::SenderReport(p) => p.raw,
            Packet::ReceiverReport(p) => p.raw,
            Packet::SourceDescription(p) => p.raw,
            Packet::Bye(p) => p.raw,
            Packet::App(p) => p.raw,
            Packet::Other(raw) => *raw,
        }
    }

    /// The SSRC this packet speaks for: the sender's for SR, RR and APP, the first chunk's
    /// for SDES, the first listed for BYE, the packet sender's for RTPFB and PSFB (RFC 4585
    /// section 6.1) and XR (RFC 3611 section 2). `None` for an SDES or BYE with a count of
    /// zero and for other packet types.
    pub fn sender_ssrc(&self) -> Option<u32> {
        match self {
            Packet::SenderReport(p) => Some(p.ssrc()),
            Packet::ReceiverReport(p) => Some(p.ssrc()),
            Packet::SourceDescription(p) => p.chunks().next().map(|c| c.ssrc()),
            Packet::Bye(p) => p.ssrcs().next(),
            Packet::App(p) => Some(p.ssrc()),
            Packet::Other(raw) => match raw.packet_type() {
                packet_type::RTPFB | packet_type::PSFB | packet_type::XR => {
                    raw.unpadded().get(field::SSRC).map(be_u32)
                }
                _ => None,
            },
        }
    }
}

/// The SSRC the first packet of a compound speaks for (see [`Packet::sender_ssrc`]): what
/// the relay latches a client's address on. The whole compound must be well formed;
/// `Ok(None)` when it is but its first packet names no SSRC.
pub fn first_ssrc(buf: &[u8]) -> Result<Option<u32>, Error> {
    let mut packets = Compound::new(buf);
    let first = packets.next().unwrap_or(Err(Error::Truncated))?;
    for packet in packets {
        packet?;
    }
    Ok(first.sender_ssrc())
}

fn check_reports(len: usize, fixed: usize, count: usize) -> Result<(), Error> {
    if len < fixed {
        return Err(Error::BadLength);
    }
    if len < fixed + count * REPORT_BLOCK_LEN {
        return Err(Error::BadCount);
    }
    Ok(())
}

fn check_sdes(packet: &[u8], count: usize) -> Result<(), Error> {
    let mut at = field::SDES_CHUNKS;
    for _ in 0..count {
        at = next_chunk(packet, at)?.1;
    }
    if at != packet.len() {
        return Err(Error::BadCount);
    }
    Ok(())
}

/// Reads the SDES chunk at `at` (32-bit aligned): its SSRC, its items up to the null item,
/// and the offset of the next chunk after the null octets that pad to a 32-bit boundary.
fn next_chunk(packet: &[u8], at: usize) -> Result<(Chunk<'_>, usize), Error> {
    let tail = packet.get(at..).unwrap_or(&[]);
    if tail.is_empty() {
        return Err(Error::BadCount);
    }
    let (ssrc, items) = tail.split_at_checked(4).ok_or(Error::BadItem)?;
    let mut i = 0;
    loop {
        let kind = *items.get(i).ok_or(Error::BadItem)?;
        if kind == sdes_item::END {
            // The items start 4 bytes into an aligned chunk, so the chunk ends on the first
            // 32-bit boundary after the null octet.
            let end = (at + 4 + i + 4) & !3;
            if end > packet.len() {
                return Err(Error::BadItem);
            }
            let chunk = Chunk {
                ssrc: be_u32(ssrc),
                items: items.get(..i).unwrap_or(&[]),
            };
            return Ok((chunk, end));
        }
        let len = usize::from(*items.get(i + 1).ok_or(Error::BadItem)?);
        i += 2 + len;
        if i > items.len() {
            return Err(Error::BadItem);
        }
    }
}

fn check_bye(packet: &[u8], count: usize) -> Result<(), Error> {
    let reason_at = field::BYE_SSRCS + count * 4;
    let rest = packet.get(reason_at..).ok_or(Error::BadCount)?;
    if let Some(&len) = rest.first() {
        let end = 1 + usize::from(len);
        if end > rest.len() {
            return Err(Error::BadItem);
        }
        // Only the null octets that pad the reason to a 32-bit boundary may follow it.
        if packet.len() > (reason_at + end + 3) & !3 {
            return Err(Error::BadItem);
        }
    }
    Ok(())
}

/// An individual RTCP packet of any type: header fields and bytes, checked for version,
/// length and padding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawPacket<'a> {
    bytes: &'a [u8],
    padding: usize,
}

impl<'a> RawPacket<'a> {
    fn byte(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0)
    }

    /// Version field (always 2).
    pub fn version(&self) -> u8 {
        self.byte(field::VPC) >> 6
    }

    /// P: this (last) packet ends in padding.
    pub fn has_padding(&self) -> bool {
        self.byte(field::VPC) & PADDING_BIT != 0
    }

    /// The 5-bit field after P: RC for SR and RR, SC for SDES and BYE, subtype for APP,
    /// FMT for RTPFB and PSFB.
    pub fn count(&self) -> u8 {
        self.byte(field::VPC) & COUNT_MASK
    }

    /// Packet type.
    pub fn packet_type(&self) -> u8 {
        self.byte(field::PT)
    }

    /// Length field: the packet's size in 32-bit words minus one.
    pub fn length(&self) -> u16 {
        self.bytes.get(field::LENGTH).map_or(0, be_u16)
    }

    /// The whole packet: header, body and padding.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Bytes of padding at the end.
    pub fn padding_len(&self) -> usize {
        self.padding
    }

    /// The packet after its 4-byte header, without padding.
    pub fn body(&self) -> &'a [u8] {
        self.unpadded().get(HEADER_LEN..).unwrap_or(&[])
    }

    /// Header and body, without padding.
    fn unpadded(&self) -> &'a [u8] {
        let end = self.bytes.len().saturating_sub(self.padding);
        self.bytes.get(..end).unwrap_or(&[])
    }

    fn u32_at(&self, field: Field) -> u32 {
        self.unpadded().get(field).map_or(0, be_u32)
    }

    fn report_blocks(&self, start: usize) -> ReportBlocks<'a> {
        let end = start + usize::from(self.count()) * REPORT_BLOCK_LEN;
        let blocks = self.unpadded().get(start..end).unwrap_or(&[]);
        ReportBlocks {
            chunks: blocks.chunks_exact(REPORT_BLOCK_LEN),
        }
    }

    fn after_reports(&self, start: usize) -> &'a [u8] {
        let end = start + usize::from(self.count()) * REPORT_BLOCK_LEN;
        self.unpadded().get(end..).unwrap_or(&[])
    }
}

impl fmt::Debug for RawPacket<'_> {
    /// Header fields and lengths; never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawPacket")
            .field("packet_type", &self.packet_type())
            .field("count", &self.count())
            .field("len", &self.bytes.len())
            .field("padding", &self.padding)
            .finish()
    }
}

/// A sender report (RFC 3550 section 6.4.1):
///
/// ```text
///         0                   1                   2                   3
///         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// header |V=2|P|    RC   |   PT=SR=200   |             length            |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                         SSRC of sender                        |
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// sender |              NTP timestamp, most significant word             |
/// info   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |             NTP timestamp, least significant word             |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                         RTP timestamp                         |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                     sender's packet count                     |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                      sender's octet count                     |
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// report |                 SSRC_1 (SSRC of first source)                 |
/// block  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   1    | fraction lost |       cumulative number of packets lost       |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |           extended highest sequence number received           |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                      interarrival jitter                      |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                         last SR (LSR)                         |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                   delay since last SR (DLSR)                  |
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// report |                 SSRC_2 (SSRC of second source)                |
/// block  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   2    :                               ...                             :
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
///        |                  profile-specific extensions                  |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    raw: RawPacket<'a>,
}

impl<'a> SenderReport<'a> {
    /// SSRC of the sender.
    pub fn ssrc(&self) -> u32 {
        self.raw.u32_at(field::SSRC)
    }

    /// NTP timestamp, 32.32 fixed point seconds since 1900.
    pub fn ntp_timestamp(&self) -> u64 {
        self.raw.unpadded().get(field::SR_NTP).map_or(0, be_u64)
    }

    /// RTP timestamp corresponding to the NTP timestamp.
    pub fn rtp_timestamp(&self) -> u32 {
        self.raw.u32_at(field::SR_RTP_TS)
    }

    /// Sender's packet count.
    pub fn packet_count(&self) -> u32 {
        self.raw.u32_at(field::SR_PACKET_COUNT)
    }

    /// Sender's octet count.
    pub fn octet_count(&self) -> u32 {
        self.raw.u32_at(field::SR_OCTET_COUNT)
    }

    /// RC: number of report blocks.
    pub fn report_count(&self) -> u8 {
        self.raw.count()
    }

    /// The report blocks.
    pub fn reports(&self) -> ReportBlocks<'a> {
        self.raw.report_blocks(field::SR_REPORTS)
    }

    /// Profile-specific extension after the report blocks (usually empty).
    pub fn profile_extension(&self) -> &'a [u8] {
        self.raw.after_reports(field::SR_REPORTS)
    }

    /// Header fields and bytes.
    pub fn raw(&self) -> RawPacket<'a> {
        self.raw
    }
}

impl fmt::Debug for SenderReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderReport")
            .field("ssrc", &format_args!("{:#010x}", self.ssrc()))
            .field(
                "ntp_timestamp",
                &format_args!("{:#018x}", self.ntp_timestamp()),
            )
            .field("rtp_timestamp", &self.rtp_timestamp())
            .field("packet_count", &self.packet_count())
            .field("octet_count", &self.octet_count())
            .field("reports", &self.report_count())
            .field("extension_len", &self.profile_extension().len())
            .finish()
    }
}

/// A receiver report (RFC 3550 section 6.4.2):
///
/// ```text
///         0                   1                   2                   3
///         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// header |V=2|P|    RC   |   PT=RR=201   |             length            |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                     SSRC of packet sender                     |
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// report |                 SSRC_1 (SSRC of first source)                 |
/// block  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///   1    :                      (as in the SR)                           :
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
///        |                  profile-specific extensions                  |
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    raw: RawPacket<'a>,
}

impl<'a> ReceiverReport<'a> {
    /// SSRC of the packet sender.
    pub fn ssrc(&self) -> u32 {
        self.raw.u32_at(field::SSRC)
    }

    /// RC: number of report blocks.
    pub fn report_count(&self) -> u8 {
        self.raw.count()
    }

    /// The report blocks.
    pub fn reports(&self) -> ReportBlocks<'a> {
        self.raw.report_blocks(field::RR_REPORTS)
    }

    /// Profile-specific extension after the report blocks (usually empty).
    pub fn profile_extension(&self) -> &'a [u8] {
        self.raw.after_reports(field::RR_REPORTS)
    }

    /// Header fields and bytes.
    pub fn raw(&self) -> RawPacket<'a> {
        self.raw
    }
}

impl fmt::Debug for ReceiverReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverReport")
            .field("ssrc", &format_args!("{:#010x}", self.ssrc()))
            .field("reports", &self.report_count())
            .field("extension_len", &self.profile_extension().len())
            .finish()
    }
}

/// One SR/RR report block: reception statistics about one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// SSRC of the source reported on.
    pub ssrc: u32,
    /// Fraction of packets lost since the last report, in 1/256ths.
    pub fraction_lost: u8,
    /// Cumulative packets lost, a signed 24-bit value (negative with duplicates). Emitting
    /// clamps it to -0x80_0000..=0x7f_ffff as RFC 3550 section 6.4.1 says.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 seconds (DLSR).
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    /// Reads a block from its 24 bytes.
    fn parse(bytes: &[u8]) -> Self {
        let u32_at = |f: Field| bytes.get(f).map_or(0, be_u32);
        let lost = match bytes.get(field::RB_CUMULATIVE_LOST) {
            // The arithmetic shift sign-extends the 24 bits.
            Some(&[a, b, c]) => i32::from_be_bytes([a, b, c, 0]) >> 8,
            _ => 0,
        };
        ReportBlock {
            ssrc: u32_at(field::RB_SSRC),
            fraction_lost: bytes.get(field::RB_FRACTION_LOST).copied().unwrap_or(0),
            cumulative_lost: lost,
            highest_seq: u32_at(field::RB_HIGHEST_SEQ),
            jitter: u32_at(field::RB_JITTER),
            last_sr: u32_at(field::RB_LSR),
            delay_since_last_sr: u32_at(field::RB_DLSR),
        }
    }

    fn write(&self, w: &mut Writer<'_>) {
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32;
        let [_, l0, l1, l2] = lost.to_be_bytes();
        w.put(&self.ssrc.to_be_bytes());
        w.put(&[self.fraction_lost, l0, l1, l2]);
        w.put(&self.highest_seq.to_be_bytes());
        w.put(&self.jitter.to_be_bytes());
        w.put(&self.last_sr.to_be_bytes());
        w.put(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// Iterator over the report blocks of an SR or RR.
#[derive(Clone)]
pub struct ReportBlocks<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        self.chunks.next().map(ReportBlock::parse)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

impl fmt::Debug for ReportBlocks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportBlocks")
            .field("remaining", &self.len())
            .finish()
    }
}
impl FusedIterator for ReportBlocks<'_> {}

/// A source description (RFC 3550 section 6.5): SC chunks, each an SSRC/CSRC and its items.
///
/// ```text
///         0                   1                   2                   3
///         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///        +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// header |V=2|P|    SC   |  PT=SDES=202  |             length            |
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// chunk  |                          SSRC/CSRC_1                          |
///   1    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                           SDES items                          |
///        |                              ...                              |
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// chunk  |                          SSRC/CSRC_2                          |
///   2    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///        |                           SDES items                          |
///        |                              ...                              |
///        +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// ```
///
/// Each item is a type byte, a length byte and that many bytes of text, e.g. CNAME
/// (section 6.5.1):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    CNAME=1    |     length    | user and domain name        ...
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// and a chunk's item list ends with one or more null octets up to the next 32-bit boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SourceDescription<'a> {
    raw: RawPacket<'a>,
}

impl<'a> SourceDescription<'a> {
    /// SC: number of chunks.
    pub fn chunk_count(&self) -> u8 {
        self.raw.count()
    }

    /// The chunks, in order.
    pub fn chunks(&self) -> Chunks<'a> {
        Chunks {
            packet: self.raw.unpadded(),
            at: field::SDES_CHUNKS,
            remaining: self.raw.count(),
        }
    }

    /// The CNAME of `ssrc`, if a chunk for it carries one.
    pub fn cname(&self, ssrc: u32) -> Option<&'a [u8]> {
        self.chunks()
            .find(|chunk| chunk.ssrc() == ssrc)
            .and_then(|chunk| chunk.cname())
    }

    /// Header fields and bytes.
    pub fn raw(&self) -> RawPacket<'a> {
        self.raw
    }
}

impl fmt::Debug for SourceDescription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceDescription")
            .field("chunks", &self.chunk_count())
            .finish()
    }
}

/// Iterator over the chunks of an SDES packet.
#[derive(Clone)]
pub struct Chunks<'a> {
    packet: &'a [u8],
    at: usize,
    remaining: u8,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Chunk<'a>;

    fn next(&mut self) -> Option<Chunk<'a>> {
        self.remaining = self.remaining.checked_sub(1)?;
        match next_chunk(self.packet, self.at) {
            Ok((chunk, next)) => {
                self.at = next;
                Some(chunk)
            }
            Err(_) => {
                // Unreachable for a checked packet; stop rather than guess.
                self.remaining = 0;
                None
            }
        }
    }
}

impl FusedIterator for Chunks<'_> {}

impl fmt::Debug for Chunks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunks")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// One SDES chunk: an SSRC or CSRC and its items.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    ssrc: u32,
    items: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// The SSRC or CSRC described.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The items, in order, without the terminating null item.
    pub fn items(&self) -> Items<'a> {
        Items { rest: self.items }
    }

    /// The value of the first CNAME item.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items()
            .find(|item| item.kind == sdes_item::CNAME)
            .map(|item| item.value)
    }
}

impl fmt::Debug for Chunk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("ssrc", &format_args!("{:#010x}", self.ssrc))
            .field("items", &self.items().count())
            .finish()
    }
}

/// Iterator over the items of an SDES chunk.
#[derive(Clone)]
pub struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        match split_item(self.rest) {
            Some((item, tail)) => {
                self.rest = tail;
                Some(item)
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

impl FusedIterator for Items<'_> {}

impl fmt::Debug for Items<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items")
            .field("remaining_len", &self.rest.len())
            .finish()
    }
}

/// Splits the first item off a chunk's item list; `None` at the null item or the end.
fn split_item(rest: &[u8]) -> Option<(SdesItem<'_>, &[u8])> {
    let (&kind, tail) = rest.split_first()?;
    if kind == sdes_item::END {
        return None;
    }
    let (&len, tail) = tail.split_first()?;
    let (value, tail) = tail.split_at_checked(usize::from(len))?;
    Some((SdesItem { kind, value }, tail))
}

/// One SDES item: its type (see [`sdes_item`]) and value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// Item type, 1..=255.
    pub kind: u8,
    /// Value, at most 255 bytes (UTF-8 text by RFC 3550, not checked).
    pub value: &'a [u8],
}

impl fmt::Debug for SdesItem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdesItem")
            .field("kind", &self.kind)
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// A goodbye (RFC 3550 section 6.6):
///
/// ```text
///        0                   1                   2                   3
///        0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///       |V=2|P|    SC   |   PT=BYE=203  |             length            |
///       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///       |                           SSRC/CSRC                           |
///       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///       :                              ...                              :
///       +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// (opt) |     length    |               reason for leaving            ...
///       +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    raw: RawPacket<'a>,
}

impl<'a> Bye<'a> {
    /// SC: number of SSRCs/CSRCs leaving.
    pub fn ssrc_count(&self) -> u8 {
        self.raw.count()
    }

    /// The SSRCs/CSRCs leaving.
    pub fn ssrcs(&self) -> Ssrcs<'a> {
        let end = field::BYE_SSRCS + usize::from(self.raw.count()) * 4;
        let list = self
            .raw
            .unpadded()
            .get(field::BYE_SSRCS..end)
            .unwrap_or(&[]);
        Ssrcs {
            chunks: list.chunks_exact(4),
        }
    }

    /// The reason for leaving, when present.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let at = field::BYE_SSRCS + usize::from(self.raw.count()) * 4;
        let (&len, text) = self.raw.unpadded().get(at..)?.split_first()?;
        text.get(..usize::from(len))
    }

    /// Header fields and bytes.
    pub fn raw(&self) -> RawPacket<'a> {
        self.raw
    }
}

impl fmt::Debug for Bye<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bye")
            .field("ssrcs", &self.ssrc_count())
            .field("reason_len", &self.reason().map(<[u8]>::len))
            .finish()
    }
}

/// Iterator over the SSRCs of a BYE.
#[derive(Clone)]
pub struct Ssrcs<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for Ssrcs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        self.chunks.next().map(be_u32)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for Ssrcs<'_> {}

impl fmt::Debug for Ssrcs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ssrcs")
            .field("remaining", &self.len())
            .finish()
    }
}
impl FusedIterator for Ssrcs<'_> {}

/// An application-defined packet (RFC 3550 section 6.7):
///
/// ```text
///     0                   1                   2                   3
///     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |V=2|P| subtype |   PT=APP=204  |             length            |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                           SSRC/CSRC                           |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                          name (ASCII)                         |
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///    |                   application-dependent data                ...
///    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    raw: RawPacket<'a>,
}

impl<'a> App<'a> {
    /// Subtype (the 5-bit count field).
    pub fn subtype(&self) -> u8 {
        self.raw.count()
    }

    /// SSRC/CSRC of the sender.
    pub fn ssrc(&self) -> u32 {
        self.raw.u32_at(field::SSRC)
    }

    /// Four ASCII characters naming the application.
    pub fn name(&self) -> [u8; 4] {
        self.raw
            .unpadded()
            .get(field::APP_NAME)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .unwrap_or_default()
    }

    /// Application-dependent data.
    pub fn data(&self) -> &'a [u8] {
        self.raw.unpadded().get(field::APP_DATA..).unwrap_or(&[])
    }

    /// Header fields and bytes.
    pub fn raw(&self) -> RawPacket<'a> {
        self.raw
    }
}

impl fmt::Debug for App<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("subtype", &self.subtype())
            .field("ssrc", &format_args!("{:#010x}", self.ssrc()))
            .field("name", &self.name())
            .field("data_len", &self.data().len())
            .finish()
    }
}

/// Why a packet could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmitError {
    /// The buffer is shorter than the packet; `needed` is the packet's length.
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
    },
    /// More than [`MAX_COUNT`] report blocks.
    TooManyReports,
    /// A CNAME longer than [`MAX_ITEM_LEN`] bytes.
    CnameTooLong,
}

impl From<TooSmall> for EmitError {
    fn from(e: TooSmall) -> Self {
        EmitError::BufferTooSmall { needed: e.needed }
    }
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmitError::BufferTooSmall { needed } => {
                write!(f, "buffer too small for RTCP packet, {needed} bytes needed")
            }
            EmitError::TooManyReports => f.write_str("more than 31 report blocks"),
            EmitError::CnameTooLong => f.write_str("CNAME longer than 255 bytes"),
        }
    }
}

impl core::error::Error for EmitError {}

/// Writes a receiver report from `ssrc` with `reports` (none for a client that only wants
/// to be latched) at the start of `buf`; returns its length, `8 + 24 * reports.len()`.
pub fn emit_receiver_report(
    ssrc: u32,
    reports: &[ReportBlock],
    buf: &mut [u8],
) -> Result<usize, EmitError> {
    let count = u8::try_from(reports.len())
        .ok()
        .filter(|&n| usize::from(n) <= MAX_COUNT)
        .ok_or(EmitError::TooManyReports)?;
    let needed = RR_MIN_LEN + reports.len() * REPORT_BLOCK_LEN;
    let mut w = Writer::new(buf, needed)?;
    write_header(&mut w, count, packet_type::RR, needed);
    w.put(&ssrc.to_be_bytes());
    for block in reports {
        block.write(&mut w);
    }
    Ok(w.finish()?)
}

/// Writes an SDES packet with one chunk, `ssrc` with a single CNAME item, at the start of
/// `buf`; returns its length.
pub fn emit_sdes_cname(ssrc: u32, cname: &[u8], buf: &mut [u8]) -> Result<usize, EmitError> {
    let len = u8::try_from(cname.len()).map_err(|_| EmitError::CnameTooLong)?;
    // SSRC, type, length, value, then at least one null octet up to a 32-bit boundary.
    let chunk = (4 + 2 + cname.len() + 1).next_multiple_of(4);
    let nulls = chunk - (4 + 2 + cname.len());
    let needed = HEADER_LEN + chunk;
    let mut w = Writer::new(buf, needed)?;
    write_header(&mut w, 1, packet_type::SDES, needed);
    w.put(&ssrc.to_be_bytes());
    w.put(&[sdes_item::CNAME, len]);
    w.put(cname);
    w.fill(sdes_item::END, nulls);
    Ok(w.finish()?)
}

/// Writes a common header (no padding) for a packet of `len` bytes, a multiple of 4.
fn write_header(w: &mut Writer<'_>, count: u8, packet_type: u8, len: usize) {
    let words = u16::try_from(len / 4 - 1).unwrap_or(u16::MAX);
    w.put(&[(VERSION << 6) | (count & COUNT_MASK), packet_type]);
    w.put(&words.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A sender report as libwebrtc sends it for an audio stream that is both sending and
    /// receiving: one report block about the remote stream. Built byte by byte, not
    /// captured.
    const CHROME_SR: [u8; 52] = [
        0x81, 0xc8, 0x00, 0x0c, // V=2 P=0 RC=1, PT=200 (SR), length 12: 13 words, 52 bytes
        0x9a, 0x3f, 0x2c, 0x11, // SSRC of sender
        0xe9, 0xa1, 0x2b, 0x3c, // NTP seconds since 1900 (2024-03-17)
        0x80, 0x00, 0x00, 0x00, // NTP fraction: half a second
        0x00, 0x0f, 0x42, 0x40, // RTP timestamp 1_000_000 (48 kHz)
        0x00, 0x00, 0x01, 0xf4, // sender's packet count 500
        0x00, 0x00, 0x9c, 0x40, // sender's octet count 40_000
        0x5e, 0x11, 0xa7, 0x02, // report block 1: SSRC of the remote stream
        0x05, // fraction lost 5/256
        0x00, 0x00, 0x0c, // cumulative lost 12
        0x00, 0x01, 0x30, 0x39, // extended highest seq: 1 cycle, seq 12345
        0x00, 0x00, 0x00, 0x2a, // interarrival jitter 42
        0xa1, 0x2b, 0x3c, 0x00, // LSR: middle 32 bits of the last SR's NTP timestamp
        0x00, 0x00, 0x80, 0x00, // DLSR 0x8000/65536 s: half a second
    ];

    /// The SDES that libwebrtc puts after every SR or RR: one chunk with the CNAME, a
    /// 16-character random string.
    const CHROME_SDES: [u8; 28] = [
        0x81, 0xca, 0x00, 0x06, // V=2 P=0 SC=1, PT=202 (SDES), length 6: 7 words, 28 bytes
        0x9a, 0x3f, 0x2c, 0x11, // chunk 1: SSRC
        0x01, 0x10, // item CNAME, 16 bytes
        b'X', b'q', b'3', b'f', b'9', b'Z', b't', b'H', // CNAME
        b'0', b'k', b'L', b'm', b'2', b'P', b'w', b'B', //
        0x00, 0x00, // null item, one null octet to the 32-bit boundary
    ];

    /// A receive-only endpoint's RR (one report block), as the first packet of a compound.
    const RECV_RR: [u8; 32] = [
        0x81, 0xc9, 0x00, 0x07, // V=2 P=0 RC=1, PT=201 (RR), length 7: 32 bytes
        0x12, 0x34, 0xab, 0xcd, // SSRC of packet sender
        0x9a, 0x3f, 0x2c, 0x11, // report block 1: SSRC of the source
        0x00, // fraction lost 0
        0xff, 0xff, 0xfe, // cumulative lost -2 (duplicates)
        0x00, 0x00, 0x10, 0x00, // extended highest seq 4096
        0x00, 0x00, 0x00, 0x07, // jitter 7
        0x00, 0x00, 0x00, 0x00, // LSR: no SR received yet
        0x00, 0x00, 0x00, 0x00, // DLSR
    ];

    /// A generic NACK (RFC 4585 section 6.2.1), RTPFB with FMT 1.
    const NACK: [u8; 16] = [
        0x81, 0xcd, 0x00, 0x03, // V=2 P=0 FMT=1, PT=205 (RTPFB), length 3: 16 bytes
        0x12, 0x34, 0xab, 0xcd, // SSRC of packet sender
        0x9a, 0x3f, 0x2c, 0x11, // SSRC of media source
        0x30, 0x39, 0x00, 0x05, // PID 12345, BLP: 12346 and 12348 lost too
    ];

    /// RFC 7714 section 17 (<https://www.rfc-editor.org/rfc/rfc7714#section-17>): the SR
    /// the SRTCP AES-GCM vectors protect, SSRC "Mars", report block about "Luna". Its
    /// length field says 13 (14 words, 56 bytes) but 13 words (52 bytes) are given.
    const RFC7714_SR: [u8; 52] = [
        0x81, 0xc8, 0x00, 0x0d, 0x4d, 0x61, 0x72, 0x73, 0x4e, 0x54, 0x50, 0x31, 0x4e, 0x54, 0x50,
        0x32, 0x52, 0x54, 0x50, 0x20, 0x00, 0x00, 0x04, 0x2a, 0x00, 0x00, 0xe9, 0x30, 0x4c, 0x75,
        0x6e, 0x61, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde,
        0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn collect(buf: &[u8]) -> Vec<Result<Packet<'_>, Error>> {
        Compound::new(buf).collect()
    }

    /// The single error a compound walk ends in, or `None` if it is well formed.
    fn walk_error(buf: &[u8]) -> Option<Error> {
        Compound::new(buf).find_map(Result::err)
    }

    #[test]
    fn chrome_sr_sdes_compound() {
        let buf = cat(&[&CHROME_SR, &CHROME_SDES]);
        let packets = collect(&buf);
        assert_eq!(packets.len(), 2);

        let Ok(Packet::SenderReport(sr)) = packets[0] else {
            panic!("{:?}", packets[0]);
        };
        assert_eq!(sr.ssrc(), 0x9a3f_2c11);
        assert_eq!(sr.ntp_timestamp(), 0xe9a1_2b3c_8000_0000);
        assert_eq!(sr.rtp_timestamp(), 1_000_000);
        assert_eq!(sr.packet_count(), 500);
        assert_eq!(sr.octet_count(), 40_000);
        assert_eq!(sr.report_count(), 1);
        assert_eq!(sr.profile_extension(), &[] as &[u8]);
        let blocks: Vec<_> = sr.reports().collect();
        assert_eq!(
            blocks,
            [ReportBlock {
                ssrc: 0x5e11_a702,
                fraction_lost: 5,
                cumulative_lost: 12,
                highest_seq: 0x0001_3039,
                jitter: 42,
                last_sr: 0xa12b_3c00,
                delay_since_last_sr: 0x8000,
            }]
        );
        assert_eq!(sr.raw().as_bytes(), &CHROME_SR);
        assert_eq!(sr.raw().length(), 12);
        assert_eq!(sr.raw().version(), 2);
        assert!(!sr.raw().has_padding());

        let Ok(Packet::SourceDescription(sdes)) = packets[1] else {
            panic!("{:?}", packets[1]);
        };
        assert_eq!(sdes.chunk_count(), 1);
        let chunk = sdes.chunks().next().unwrap();
        assert_eq!(chunk.ssrc(), 0x9a3f_2c11);
        assert_eq!(chunk.cname(), Some(&b"Xq3f9ZtH0kLm2PwB"[..]));
        assert_eq!(sdes.cname(0x9a3f_2c11), Some(&b"Xq3f9ZtH0kLm2PwB"[..]));
        assert_eq!(sdes.cname(0x5e11_a702), None);
        let items: Vec<_> = chunk.items().collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].kind, sdes_item::CNAME);

        assert_eq!(first_ssrc(&buf), Ok(Some(0x9a3f_2c11)));
    }

    #[test]
    fn receiver_compound_with_feedback() {
        let sdes = {
            let mut s = CHROME_SDES;
            s[4..8].copy_from_slice(&[0x12, 0x34, 0xab, 0xcd]);
            s
        };
        let buf = cat(&[&RECV_RR, &sdes, &NACK]);
        let packets = collect(&buf);
        assert_eq!(packets.len(), 3);
        let Ok(Packet::ReceiverReport(rr)) = packets[0] else {
            panic!("{:?}", packets[0]);
        };
        assert_eq!(rr.ssrc(), 0x1234_abcd);
        let block = rr.reports().next().unwrap();
        assert_eq!(block.ssrc, 0x9a3f_2c11);
        assert_eq!(block.cumulative_lost, -2);
        assert_eq!(block.highest_seq, 4096);
        assert_eq!(block.jitter, 7);
        assert_eq!(rr.reports().len(), 1);
        let Ok(Packet::Other(nack)) = packets[2] else {
            panic!("{:?}", packets[2]);
        };
        assert_eq!(nack.packet_type(), packet_type::RTPFB);
        assert_eq!(nack.count(), 1);
        assert_eq!(nack.body(), &NACK[4..]);
        assert_eq!(nack.as_bytes(), &NACK);
        assert_eq!(first_ssrc(&buf), Ok(Some(0x1234_abcd)));
        // Reduced-size RTCP (RFC 5506): a NACK alone is a valid compound.
        assert_eq!(first_ssrc(&NACK), Ok(Some(0x1234_abcd)));
    }

    #[test]
    fn rfc7714_sr_length_is_inconsistent() {
        assert_eq!(collect(&RFC7714_SR), [Err(Error::Truncated)]);
        assert_eq!(first_ssrc(&RFC7714_SR), Err(Error::Truncated));
        // With the length field matching the bytes, it parses.
        let mut fixed = RFC7714_SR;
        fixed[3] = 0x0c;
        let packets = collect(&fixed);
        let Ok(Packet::SenderReport(sr)) = packets[0] else {
            panic!("{packets:?}");
        };
        assert_eq!(&sr.ssrc().to_be_bytes(), b"Mars");
        assert_eq!(&sr.ntp_timestamp().to_be_bytes(), b"NTP1NTP2");
        assert_eq!(&sr.rtp_timestamp().to_be_bytes(), b"RTP ");
        assert_eq!(sr.packet_count(), 0x42a);
        assert_eq!(sr.octet_count(), 0xe930);
        let block = sr.reports().next().unwrap();
        assert_eq!(&block.ssrc.to_be_bytes(), b"Luna");
        assert_eq!(block.fraction_lost, 0xde);
        // 0xadbeef has its sign bit set: a negative 24-bit count.
        assert_eq!(block.cumulative_lost, 0xadbeef - 0x100_0000);
        assert_eq!(block.highest_seq, 0xdead_beef);
        assert_eq!(block.delay_since_last_sr, 0xdead_beef);
    }

    #[test]
    fn sdes_with_several_chunks_and_items() {
        let buf = [
            0x82, 0xca, 0x00, 0x0a, // SC=2, SDES, length 10: 44 bytes
            0x00, 0x00, 0x00, 0x01, // chunk 1: SSRC 1
            0x01, 0x03, b'a', b'@', b'b', // CNAME "a@b"
            0x02, 0x05, b'A', b'l', b'i', b'c', b'e', // NAME "Alice"
            0x06, 0x03, b'l', b'c', b'1', // TOOL "lc1"
            0x00, 0x00, 0x00, // null item and padding to the boundary (24 bytes)
            0x00, 0x00, 0x00, 0x02, // chunk 2: SSRC 2
            0x07, 0x00, // NOTE, empty
            0x01, 0x04, b'c', b'@', b'd', b'e', // CNAME "c@de"
            0x00, 0x00, 0x00, 0x00, // null item and 3 octets of padding
        ];
        let packets = collect(&buf);
        let Ok(Packet::SourceDescription(sdes)) = packets[0] else {
            panic!("{packets:?}");
        };
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(chunks.len(), 2);
        let items: Vec<_> = chunks[0].items().map(|i| (i.kind, i.value)).collect();
        assert_eq!(
            items,
            [
                (sdes_item::CNAME, &b"a@b"[..]),
                (sdes_item::NAME, &b"Alice"[..]),
                (sdes_item::TOOL, &b"lc1"[..]),
            ]
        );
        assert_eq!(chunks[1].ssrc(), 2);
        assert_eq!(chunks[1].items().count(), 2);
        assert_eq!(sdes.cname(1), Some(&b"a@b"[..]));
        assert_eq!(sdes.cname(2), Some(&b"c@de"[..]));
        assert_eq!(sdes.cname(3), None);
        assert_eq!(first_ssrc(&buf), Ok(Some(1)));
    }

    #[test]
    fn bye_and_app() {
        let bye = [
            0x82, 0xcb, 0x00, 0x04, // SC=2, BYE, length 4: 20 bytes
            0x00, 0x00, 0x00, 0x0a, // SSRC 10
            0x00, 0x00, 0x00, 0x0b, // SSRC 11
            0x05, b'l', b'e', b'a', b'v', b'e', 0x00, 0x00, // reason "leave", 2 null octets
        ];
        let app = [
            0x83, 0xcc, 0x00, 0x04, // subtype 3, APP, length 4: 20 bytes
            0x00, 0x00, 0x00, 0x0a, // SSRC 10
            b'L', b'C', b'H', b'T', // name
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // data
        ];
        let bare_bye = [0x81, 0xcb, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0c];
        let buf = cat(&[&bye, &app, &bare_bye]);
        let packets = collect(&buf);
        assert_eq!(packets.len(), 3);
        let Ok(Packet::Bye(b)) = packets[0] else {
            panic!("{packets:?}");
        };
        assert_eq!(b.ssrc_count(), 2);
        assert_eq!(b.ssrcs().collect::<Vec<_>>(), [10, 11]);
        assert_eq!(b.reason(), Some(&b"leave"[..]));
        let Ok(Packet::App(a)) = packets[1] else {
            panic!("{packets:?}");
        };
        assert_eq!(a.subtype(), 3);
        assert_eq!(a.ssrc(), 10);
        assert_eq!(&a.name(), b"LCHT");
        assert_eq!(a.data(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        let Ok(Packet::Bye(b)) = packets[2] else {
            panic!("{packets:?}");
        };
        assert_eq!(b.ssrcs().collect::<Vec<_>>(), [12]);
        assert_eq!(b.reason(), None);
        assert_eq!(first_ssrc(&buf), Ok(Some(10)));
        assert_eq!(first_ssrc(&app), Ok(Some(10)));
    }

    #[test]
    fn padding_on_the_last_packet() {
        // The SDES grows by 8 bytes of padding; P set, length 8.
        let mut sdes = CHROME_SDES.to_vec();
        sdes[0] |= PADDING_BIT;
        sdes[3] = 8;
        sdes.extend([0, 0, 0, 0, 0, 0, 0, 8]);
        let buf = cat(&[&CHROME_SR, &sdes]);
        let packets = collect(&buf);
        let Ok(Packet::SourceDescription(s)) = packets[1] else {
            panic!("{packets:?}");
        };
        assert!(s.raw().has_padding());
        assert_eq!(s.raw().padding_len(), 8);
        assert_eq!(s.raw().as_bytes().len(), 36);
        assert_eq!(s.raw().body(), &CHROME_SDES[4..]);
        assert_eq!(s.cname(0x9a3f_2c11), Some(&b"Xq3f9ZtH0kLm2PwB"[..]));
        // Padding covering the whole body of an unknown type is fine.
        let buf = [0x80 | PADDING_BIT, 195, 0x00, 0x01, 0, 0, 0, 4];
        let packets = collect(&buf);
        let Ok(Packet::Other(raw)) = packets[0] else {
            panic!("{packets:?}");
        };
        assert_eq!(raw.body(), &[] as &[u8]);
        assert_eq!(first_ssrc(&buf), Ok(None));
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(collect(&[]), [Err(Error::Truncated)]);
        assert_eq!(first_ssrc(&[]), Err(Error::Truncated));
        assert_eq!(collect(&CHROME_SR[..3]), [Err(Error::Truncated)]);
        // Length running past the datagram.
        assert_eq!(collect(&CHROME_SR[..48]), [Err(Error::Truncated)]);
        // 1 to 3 stray bytes after the last packet.
        for extra in 1..=3 {
            let buf = cat(&[&CHROME_SR, &CHROME_SDES[..extra]]);
            let packets = collect(&buf);
            assert!(packets[0].is_ok());
            assert_eq!(packets[1], Err(Error::Truncated));
            assert_eq!(packets.len(), 2);
        }
        // A good packet, then a header whose length runs past the end.
        let buf = cat(&[&CHROME_SR, &CHROME_SDES[..24]]);
        assert_eq!(walk_error(&buf), Some(Error::Truncated));
        assert_eq!(first_ssrc(&buf), Err(Error::Truncated));
    }

    #[test]
    fn rejects_bad_version() {
        for v in [0u8, 1, 3] {
            let mut sr = CHROME_SR;
            sr[0] = (sr[0] & 0x3f) | (v << 6);
            assert_eq!(collect(&sr), [Err(Error::BadVersion)]);
            // In the second packet too.
            let mut sdes = CHROME_SDES;
            sdes[0] = (sdes[0] & 0x3f) | (v << 6);
            let buf = cat(&[&CHROME_SR, &sdes]);
            assert_eq!(walk_error(&buf), Some(Error::BadVersion));
            assert_eq!(first_ssrc(&buf), Err(Error::BadVersion));
        }
        // Version is checked before the length, so a 4-byte version-1 header is BadVersion.
        assert_eq!(collect(&[0x40, 0xc9, 0x00, 0x01]), [Err(Error::BadVersion)]);
    }

    #[test]
    fn rejects_bad_padding() {
        // Padding bit on the first of two packets.
        let mut sr = CHROME_SR;
        sr[0] |= PADDING_BIT;
        let buf = cat(&[&sr, &CHROME_SDES]);
        assert_eq!(collect(&buf), [Err(Error::BadPadding)]);
        // Padding count zero.
        let mut rr = [0x80 | PADDING_BIT, 201, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(collect(&rr), [Err(Error::BadPadding)]);
        // Padding count larger than the packet after its header (8 bytes).
        rr[11] = 9;
        assert_eq!(collect(&rr), [Err(Error::BadPadding)]);
        // 8 is the whole body: then the RR lacks its SSRC.
        rr[11] = 8;
        assert_eq!(collect(&rr), [Err(Error::BadLength)]);
        // 4 leaves the SSRC.
        rr[11] = 4;
        assert!(collect(&rr)[0].is_ok());
    }

    #[test]
    fn rejects_inconsistent_reports() {
        // SR shorter than its sender info.
        let short_sr = [
            0x80, 200, 0x00, 0x05, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(collect(&short_sr), [Err(Error::BadLength)]);
        // SR claiming two report blocks with room for one.
        let mut sr = CHROME_SR;
        sr[0] = 0x82;
        assert_eq!(collect(&sr), [Err(Error::BadCount)]);
        // RR of just a header.
        assert_eq!(collect(&[0x80, 201, 0x00, 0x00]), [Err(Error::BadLength)]);
        // RR with RC=31 and one block.
        let mut rr = RECV_RR;
        rr[0] = 0x80 | 31;
        assert_eq!(collect(&rr), [Err(Error::BadCount)]);
        // RR with RC=0 and a block's worth of bytes: profile-specific extension.
        rr[0] = 0x80;
        let packets = collect(&rr);
        let Ok(Packet::ReceiverReport(r)) = packets[0] else {
            panic!("{packets:?}");
        };
        assert_eq!(r.reports().count(), 0);
        assert_eq!(r.profile_extension().len(), 24);
    }

    #[test]
    fn rejects_inconsistent_sdes() {
        // SC=2 but one chunk.
        let mut sdes = CHROME_SDES;
        sdes[0] = 0x82;
        assert_eq!(collect(&sdes), [Err(Error::BadCount)]);
        // SC=0 but a chunk present.
        sdes[0] = 0x80;
        assert_eq!(collect(&sdes), [Err(Error::BadCount)]);
        // SC=0 and nothing: fine, and names no SSRC.
        assert!(collect(&[0x80, 202, 0x00, 0x00])[0].is_ok());
        assert_eq!(first_ssrc(&[0x80, 202, 0x00, 0x00]), Ok(None));
        // Item length running past the packet.
        let mut sdes = CHROME_SDES;
        sdes[9] = 0x20;
        assert_eq!(collect(&sdes), [Err(Error::BadItem)]);
        // No null item: CNAME of 18 bytes fills the chunk exactly.
        let mut sdes = CHROME_SDES;
        sdes[9] = 18;
        sdes[26] = b'!';
        sdes[27] = b'!';
        assert_eq!(collect(&sdes), [Err(Error::BadItem)]);
        // A chunk that is only part of an SSRC.
        let buf = [0x81, 202, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00];
        assert!(collect(&buf)[0].is_err());
        // SSRC present but no item list at all.
        let buf = [0x81, 202, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01];
        assert_eq!(collect(&buf), [Err(Error::BadItem)]);
        // Padding that leaves the chunk misaligned: its null padding is cut off.
        let mut sdes = CHROME_SDES.to_vec();
        sdes[0] |= PADDING_BIT;
        sdes[3] = 7;
        sdes.extend([0, 0, 0, 5]);
        assert_eq!(collect(&sdes), [Err(Error::BadItem)]);
    }

    #[test]
    fn rejects_inconsistent_bye_and_app() {
        // SC=3 with two SSRCs.
        let bye = [0x83, 203, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(collect(&bye), [Err(Error::BadCount)]);
        // Reason length past the packet.
        let bye = [0x81, 203, 0x00, 0x02, 0, 0, 0, 1, 0x08, b'b', b'y', b'e'];
        assert_eq!(collect(&bye), [Err(Error::BadItem)]);
        // A word of garbage after the reason and its padding.
        let bye = [
            0x81, 203, 0x00, 0x03, 0, 0, 0, 1, 0x03, b'b', b'y', b'e', 1, 2, 3, 4,
        ];
        assert_eq!(collect(&bye), [Err(Error::BadItem)]);
        // A reason that exactly fills its word.
        let bye = [0x81, 203, 0x00, 0x02, 0, 0, 0, 1, 0x03, b'b', b'y', b'e'];
        let packets = collect(&bye);
        let Ok(Packet::Bye(b)) = packets[0] else {
            panic!("{packets:?}");
        };
        assert_eq!(b.reason(), Some(&b"bye"[..]));
        // BYE with SC=0 names no SSRC.
        assert_eq!(first_ssrc(&[0x80, 203, 0x00, 0x00]), Ok(None));
        // APP without its name.
        let app = [0x80, 204, 0x00, 0x01, 0, 0, 0, 1];
        assert_eq!(collect(&app), [Err(Error::BadLength)]);
    }

    #[test]
    fn walk_stops_at_the_first_error() {
        let mut bad = CHROME_SDES;
        bad[0] = 0x40;
        let buf = cat(&[&CHROME_SR, &bad, &CHROME_SDES]);
        let packets = collect(&buf);
        assert_eq!(packets.len(), 2);
        assert!(packets[0].is_ok());
        assert_eq!(packets[1], Err(Error::BadVersion));
        let mut walk = Compound::new(&buf);
        assert!(walk.nth(1).unwrap().is_err());
        assert!(walk.next().is_none());
        assert!(walk.next().is_none());
    }

    #[test]
    fn unknown_types_pass_through() {
        // XR (207) with its sender SSRC, and a type RFC 3550 never defined.
        let xr = [0x80, 207, 0x00, 0x01, 0xaa, 0xbb, 0xcc, 0xdd];
        assert_eq!(first_ssrc(&xr), Ok(Some(0xaabb_ccdd)));
        let ij = [0x81, 195, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10];
        let packets = collect(&ij);
        let Ok(Packet::Other(raw)) = packets[0] else {
            panic!("{packets:?}");
        };
        assert_eq!(raw.packet_type(), 195);
        assert_eq!(raw.count(), 1);
        assert_eq!(first_ssrc(&ij), Ok(None));
        // PSFB with no room for its SSRC: passed through, no SSRC.
        assert_eq!(first_ssrc(&[0x81, 206, 0x00, 0x00]), Ok(None));
    }

    #[test]
    fn emit_receiver_report_bytes() {
        let mut buf = [0u8; 64];
        assert_eq!(emit_receiver_report(0x1234_abcd, &[], &mut buf), Ok(8));
        assert_eq!(buf[..8], [0x80, 0xc9, 0x00, 0x01, 0x12, 0x34, 0xab, 0xcd]);
        // With the block of RECV_RR it reproduces RECV_RR.
        let block = ReportBlock {
            ssrc: 0x9a3f_2c11,
            fraction_lost: 0,
            cumulative_lost: -2,
            highest_seq: 4096,
            jitter: 7,
            last_sr: 0,
            delay_since_last_sr: 0,
        };
        assert_eq!(
            emit_receiver_report(0x1234_abcd, &[block], &mut buf),
            Ok(32)
        );
        assert_eq!(buf[..32], RECV_RR);
    }

    #[test]
    fn emit_clamps_cumulative_lost() {
        let mut buf = [0u8; 32];
        for (lost, wire, back) in [
            (i32::MAX, [0x7f, 0xff, 0xff], 0x7f_ffff),
            (i32::MIN, [0x80, 0x00, 0x00], -0x80_0000),
            (-1, [0xff, 0xff, 0xff], -1),
        ] {
            let block = ReportBlock {
                cumulative_lost: lost,
                ..ReportBlock::default()
            };
            emit_receiver_report(1, &[block], &mut buf).unwrap();
            assert_eq!(buf[13..16], wire);
            let packets = collect(&buf);
            let Ok(Packet::ReceiverReport(rr)) = packets[0] else {
                panic!("{packets:?}");
            };
            assert_eq!(rr.reports().next().unwrap().cumulative_lost, back);
        }
    }

    #[test]
    fn emit_sdes_cname_bytes() {
        let mut buf = [0u8; 64];
        assert_eq!(
            emit_sdes_cname(0x9a3f_2c11, b"Xq3f9ZtH0kLm2PwB", &mut buf),
            Ok(28)
        );
        assert_eq!(buf[..28], CHROME_SDES);
        // Every CNAME length gets at least one null octet and ends on a word.
        let mut buf = [0u8; 300];
        let name = [b'x'; MAX_ITEM_LEN];
        for len in 0..=MAX_ITEM_LEN {
            let n = emit_sdes_cname(7, &name[..len], &mut buf).unwrap();
            assert_eq!(n % 4, 0);
            assert!(n > 4 + 4 + 2 + len);
            let packets = collect(&buf[..n]);
            let Ok(Packet::SourceDescription(s)) = packets[0] else {
                panic!("{len}: {packets:?}");
            };
            assert_eq!(s.cname(7), Some(&name[..len]));
        }
    }

    #[test]
    fn emitted_latch_compound() {
        // What a listening client sends at join: RR with no blocks, then its CNAME.
        let mut buf = [0u8; 64];
        let n = emit_receiver_report(0x0bad_cafe, &[], &mut buf).unwrap();
        let m = emit_sdes_cname(0x0bad_cafe, b"radio-7@gw", &mut buf[n..]).unwrap();
        let compound = &buf[..n + m];
        assert_eq!(first_ssrc(compound), Ok(Some(0x0bad_cafe)));
        let packets = collect(compound);
        assert_eq!(packets.len(), 2);
        let Ok(Packet::SourceDescription(s)) = packets[1] else {
            panic!("{packets:?}");
        };
        assert_eq!(s.cname(0x0bad_cafe), Some(&b"radio-7@gw"[..]));
    }

    #[test]
    fn emit_errors() {
        let mut buf = [0u8; 8];
        assert_eq!(
            emit_receiver_report(1, &[ReportBlock::default()], &mut buf),
            Err(EmitError::BufferTooSmall { needed: 32 })
        );
        assert_eq!(
            emit_receiver_report(1, &[], &mut buf[..7]),
            Err(EmitError::BufferTooSmall { needed: 8 })
        );
        let mut big = [0u8; 1024];
        let blocks = [ReportBlock::default(); 32];
        assert_eq!(
            emit_receiver_report(1, &blocks, &mut big),
            Err(EmitError::TooManyReports)
        );
        assert_eq!(
            emit_receiver_report(1, &blocks[..31], &mut big),
            Ok(8 + 31 * 24)
        );
        assert_eq!(
            emit_sdes_cname(1, &[b'x'; 256], &mut big),
            Err(EmitError::CnameTooLong)
        );
        assert_eq!(
            emit_sdes_cname(1, b"abc", &mut buf),
            Err(EmitError::BufferTooSmall { needed: 16 })
        );
    }

    #[test]
    fn debug_prints_no_bytes() {
        let buf = cat(&[&CHROME_SR, &CHROME_SDES]);
        let text = format!("{:?} {:?}", collect(&buf), Compound::new(&buf));
        // The CNAME's first bytes as decimal would read "88, 113".
        assert!(!text.contains("88, 113"), "{text}");
        assert!(text.contains("0x9a3f2c11"), "{text}");
    }

    // Property tests.

    /// Reads everything a view offers; used by the no-panic properties.
    fn touch(packet: &Packet<'_>) {
        let raw = packet.raw();
        let _ = (
            raw.version(),
            raw.has_padding(),
            raw.count(),
            raw.packet_type(),
            raw.length(),
            raw.as_bytes().len(),
            raw.body().len(),
            raw.padding_len(),
            packet.sender_ssrc(),
        );
        match packet {
            Packet::SenderReport(sr) => {
                let _ = (
                    sr.ssrc(),
                    sr.ntp_timestamp(),
                    sr.rtp_timestamp(),
                    sr.packet_count(),
                    sr.octet_count(),
                    sr.profile_extension().len(),
                );
                assert_eq!(sr.reports().count(), usize::from(sr.report_count()));
            }
            Packet::ReceiverReport(rr) => {
                let _ = (rr.ssrc(), rr.profile_extension().len());
                assert_eq!(rr.reports().count(), usize::from(rr.report_count()));
            }
            Packet::SourceDescription(sdes) => {
                let mut n = 0;
                for chunk in sdes.chunks() {
                    n += 1;
                    let _ = (chunk.ssrc(), chunk.cname(), sdes.cname(chunk.ssrc()));
                    for item in chunk.items() {
                        assert_ne!(item.kind, sdes_item::END);
                    }
                }
                assert_eq!(n, usize::from(sdes.chunk_count()));
            }
            Packet::Bye(bye) => {
                assert_eq!(bye.ssrcs().count(), usize::from(bye.ssrc_count()));
                let _ = bye.reason();
            }
            Packet::App(app) => {
                let _ = (app.subtype(), app.ssrc(), app.name(), app.data().len());
            }
            Packet::Other(_) => {}
        }
        let _ = format!("{packet:?}");
    }

    /// SDES chunks to build: SSRC and (type, value) items.
    type SdesModel = Vec<(u32, Vec<(u8, Vec<u8>)>)>;

    /// An individual packet to build, for the round-trip property.
    #[derive(Debug, Clone)]
    enum Model {
        Sr {
            ssrc: u32,
            ntp: u64,
            rtp_ts: u32,
            packets: u32,
            octets: u32,
            reports: Vec<ReportBlock>,
            ext: Vec<u8>,
        },
        Rr {
            ssrc: u32,
            reports: Vec<ReportBlock>,
            ext: Vec<u8>,
        },
        Sdes(SdesModel),
        Bye {
            ssrcs: Vec<u32>,
            reason: Option<Vec<u8>>,
        },
        App {
            subtype: u8,
            ssrc: u32,
            name: [u8; 4],
            data: Vec<u8>,
        },
        Other {
            pt: u8,
            count: u8,
            body: Vec<u8>,
        },
    }

    fn pad_to_word(out: &mut Vec<u8>, start: usize) {
        while !(out.len() - start).is_multiple_of(4) {
            out.push(0);
        }
    }

    /// Appends `model` to `out` with `padding` bytes of RTCP padding (0, 4 or 8).
    fn build(model: &Model, padding: u8, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend([0; 4]);
        let (count, pt) = match model {
            Model::Sr {
                ssrc,
                ntp,
                rtp_ts,
                packets,
                octets,
                reports,
                ext,
            } => {
                out.extend(ssrc.to_be_bytes());
                out.extend(ntp.to_be_bytes());
                out.extend(rtp_ts.to_be_bytes());
                out.extend(packets.to_be_bytes());
                out.extend(octets.to_be_bytes());
                for r in reports {
                    let mut b = [0u8; 24];
                    let mut w = Writer::new(&mut b, 24).unwrap();
                    r.write(&mut w);
                    out.extend(b);
                }
                out.extend(ext);
                (reports.len(), packet_type::SR)
            }
            Model::Rr { ssrc, reports, ext } => {
                out.extend(ssrc.to_be_bytes());
                for r in reports {
                    let mut b = [0u8; 24];
                    let mut w = Writer::new(&mut b, 24).unwrap();
                    r.write(&mut w);
                    out.extend(b);
                }
                out.extend(ext);
                (reports.len(), packet_type::RR)
            }
            Model::Sdes(chunks) => {
                for (ssrc, items) in chunks {
                    out.extend(ssrc.to_be_bytes());
                    for (kind, value) in items {
                        out.push(*kind);
                        out.push(value.len() as u8);
                        out.extend(value);
                    }
                    out.push(0);
                    pad_to_word(out, start);
                }
                (chunks.len(), packet_type::SDES)
            }
            Model::Bye { ssrcs, reason } => {
                for s in ssrcs {
                    out.extend(s.to_be_bytes());
                }
                if let Some(r) = reason {
                    out.push(r.len() as u8);
                    out.extend(r);
                    pad_to_word(out, start);
                }
                (ssrcs.len(), packet_type::BYE)
            }
            Model::App {
                subtype,
                ssrc,
                name,
                data,
            } => {
                out.extend(ssrc.to_be_bytes());
                out.extend(name);
                out.extend(data);
                (usize::from(*subtype), packet_type::APP)
            }
            Model::Other { pt, count, body } => {
                out.extend(body);
                (usize::from(*count), *pt)
            }
        };
        if padding > 0 {
            out.extend(std::iter::repeat_n(0, usize::from(padding) - 1));
            out.push(padding);
        }
        let len = out.len() - start;
        assert_eq!(len % 4, 0);
        out[start] = 0x80 | if padding > 0 { PADDING_BIT } else { 0 } | count as u8;
        out[start + 1] = pt;
        out[start + 2..start + 4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
    }

    /// Checks a parsed packet against the model it was built from.
    fn matches(packet: &Packet<'_>, model: &Model, padding: u8) -> Result<(), TestCaseError> {
        prop_assert_eq!(packet.raw().padding_len(), usize::from(padding));
        match (packet, model) {
            (
                Packet::SenderReport(sr),
                Model::Sr {
                    ssrc,
                    ntp,
                    rtp_ts,
                    packets,
                    octets,
                    reports,
                    ext,
                },
            ) => {
                prop_assert_eq!(sr.ssrc(), *ssrc);
                prop_assert_eq!(sr.ntp_timestamp(), *ntp);
                prop_assert_eq!(sr.rtp_timestamp(), *rtp_ts);
                prop_assert_eq!(sr.packet_count(), *packets);
                prop_assert_eq!(sr.octet_count(), *octets);
                prop_assert_eq!(&sr.reports().collect::<Vec<_>>(), reports);
                prop_assert_eq!(sr.profile_extension(), &ext[..]);
            }
            (Packet::ReceiverReport(rr), Model::Rr { ssrc, reports, ext }) => {
                prop_assert_eq!(rr.ssrc(), *ssrc);
                prop_assert_eq!(&rr.reports().collect::<Vec<_>>(), reports);
                prop_assert_eq!(rr.profile_extension(), &ext[..]);
            }
            (Packet::SourceDescription(sdes), Model::Sdes(chunks)) => {
                let got: SdesModel = sdes
                    .chunks()
                    .map(|c| {
                        (
                            c.ssrc(),
                            c.items().map(|i| (i.kind, i.value.to_vec())).collect(),
                        )
                    })
                    .collect();
                prop_assert_eq!(&got, chunks);
            }
            (Packet::Bye(bye), Model::Bye { ssrcs, reason }) => {
                prop_assert_eq!(&bye.ssrcs().collect::<Vec<_>>(), ssrcs);
                prop_assert_eq!(bye.reason(), reason.as_deref());
            }
            (
                Packet::App(app),
                Model::App {
                    subtype,
                    ssrc,
                    name,
                    data,
                },
            ) => {
                prop_assert_eq!(app.subtype(), *subtype);
                prop_assert_eq!(app.ssrc(), *ssrc);
                prop_assert_eq!(&app.name(), name);
                prop_assert_eq!(app.data(), &data[..]);
            }
            (Packet::Other(raw), Model::Other { pt, count, body }) => {
                prop_assert_eq!(raw.packet_type(), *pt);
                prop_assert_eq!(raw.count(), *count);
                prop_assert_eq!(raw.body(), &body[..]);
            }
            (packet, model) => prop_assert!(false, "{packet:?} parsed from {model:?}"),
        }
        Ok(())
    }

    fn words(max: usize) -> impl Strategy<Value = Vec<u8>> {
        (0..=max).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 4))
    }

    fn report_block() -> impl Strategy<Value = ReportBlock> {
        (
            any::<u32>(),
            any::<u8>(),
            -0x80_0000i32..=0x7f_ffff,
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(
                |(ssrc, fraction_lost, cumulative_lost, highest_seq, jitter, last_sr, dlsr)| {
                    ReportBlock {
                        ssrc,
                        fraction_lost,
                        cumulative_lost,
                        highest_seq,
                        jitter,
                        last_sr,
                        delay_since_last_sr: dlsr,
                    }
                },
            )
    }

    fn model() -> impl Strategy<Value = Model> {
        let reports = || proptest::collection::vec(report_block(), 0..4);
        let text = || proptest::collection::vec(any::<u8>(), 0..40);
        prop_oneof![
            (
                any::<u32>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                reports(),
                words(2)
            )
                .prop_map(|(ssrc, ntp, rtp_ts, packets, octets, reports, ext)| {
                    Model::Sr {
                        ssrc,
                        ntp,
                        rtp_ts,
                        packets,
                        octets,
                        reports,
                        ext,
                    }
                }),
            (any::<u32>(), reports(), words(2)).prop_map(|(ssrc, reports, ext)| Model::Rr {
                ssrc,
                reports,
                ext
            }),
            proptest::collection::vec(
                (
                    any::<u32>(),
                    proptest::collection::vec((1u8..=255, text()), 0..4)
                ),
                0..4
            )
            .prop_map(Model::Sdes),
            (
                proptest::collection::vec(any::<u32>(), 0..5),
                proptest::option::of(text())
            )
                .prop_map(|(ssrcs, reason)| Model::Bye { ssrcs, reason }),
            (0u8..32, any::<u32>(), any::<[u8; 4]>(), words(4)).prop_map(
                |(subtype, ssrc, name, data)| Model::App {
                    subtype,
                    ssrc,
                    name,
                    data,
                }
            ),
            (prop_oneof![192u8..=199, 205u8..=223], 0u8..32, words(4))
                .prop_map(|(pt, count, body)| Model::Other { pt, count, body }),
        ]
    }

    fn compound() -> impl Strategy<Value = (Vec<Model>, u8)> {
        (
            proptest::collection::vec(model(), 1..5),
            prop_oneof![Just(0u8), Just(4u8), Just(8u8)],
        )
    }

    fn build_compound(models: &[Model], padding: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, m) in models.iter().enumerate() {
            let last = i + 1 == models.len();
            build(m, if last { padding } else { 0 }, &mut out);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 0..160)) {
            for packet in Compound::new(&buf).flatten() {
                touch(&packet);
            }
            let _ = first_ssrc(&buf);
            // Biased toward version 2 so the walk gets past the first header.
            if let Some(b) = buf.first_mut() {
                *b = (*b & 0x3f) | 0x80;
            }
            for packet in Compound::new(&buf).flatten() {
                touch(&packet);
            }
            let _ = first_ssrc(&buf);
        }

        #[test]
        fn mutated_compounds_never_panic(
            (models, padding) in compound(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut buf = build_compound(&models, padding);
            for (at, byte) in flips {
                let i = at.index(buf.len());
                buf[i] = byte;
            }
            for packet in Compound::new(&buf).flatten() {
                touch(&packet);
            }
            let end = cut.index(buf.len() + 1);
            for packet in Compound::new(&buf[..end]).flatten() {
                touch(&packet);
            }
            let _ = first_ssrc(&buf[..end]);
        }

        #[test]
        fn built_compounds_round_trip((models, padding) in compound()) {
            let buf = build_compound(&models, padding);
            let packets: Vec<_> = Compound::new(&buf).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(packets.len(), models.len());
            for (i, (packet, model)) in packets.iter().zip(&models).enumerate() {
                let last = i + 1 == models.len();
                matches(packet, model, if last { padding } else { 0 })?;
                touch(packet);
            }
            prop_assert_eq!(first_ssrc(&buf).unwrap(), packets[0].sender_ssrc());
        }

        #[test]
        fn emitted_rr_and_sdes_round_trip(
            ssrc in any::<u32>(),
            reports in proptest::collection::vec(report_block(), 0..=MAX_COUNT),
            cname in proptest::collection::vec(any::<u8>(), 0..=MAX_ITEM_LEN),
        ) {
            let mut buf = [0u8; 8 + MAX_COUNT * 24 + 4 + 4 + 2 + MAX_ITEM_LEN + 4];
            let n = emit_receiver_report(ssrc, &reports, &mut buf).unwrap();
            prop_assert_eq!(n, 8 + reports.len() * 24);
            let m = emit_sdes_cname(ssrc, &cname, &mut buf[n..]).unwrap();
            let compound = &buf[..n + m];
            prop_assert_eq!(first_ssrc(compound), Ok(Some(ssrc)));
            let packets: Vec<_> = Compound::new(compound).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(packets.len(), 2);
            matches(&packets[0], &Model::Rr { ssrc, reports, ext: Vec::new() }, 0)?;
            matches(&packets[1], &Model::Sdes(vec![(ssrc, vec![(sdes_item::CNAME, cname)])]), 0)?;
        }
    }
}
