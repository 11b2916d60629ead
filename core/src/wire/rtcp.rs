//! RTCP packets (RFC 3550 section 6): compound walking and checked views.
//!
//! An RTCP datagram is a compound packet: individual packets back to back, each with a
//! 4-byte header whose length field counts 32-bit words minus one. [`Compound::new`] walks
//! them and yields each as a typed view or the first error; it is the only door for
//! untrusted plain RTCP (the clear header of SRTCP has its own, below). A packet is checked
//! before it is yielded:
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
//! After the views, [`first_ssrc`] gives the SSRC a plain compound speaks for, and
//! [`emit_receiver_report`] and [`emit_sdes_cname`] build the RR + SDES compound a listening
//! client sends to latch (PROTOCOL.md section 3).
//!
//! SRTCP (RFC 3711 section 3.4) leaves only the first packet's header and SSRC in the clear.
//! [`Header::new_checked`] reads those 8 bytes, for the SSRC the relay looks its peer up by
//! and the SRTP context derives the IV from; the compound is walked only after the SRTP
//! module has authenticated and decrypted it and removed the E-flag/index word and the tag.

use core::fmt;
use core::iter::FusedIterator;

use super::bytes::{Record, Records, TooSmall, Writer, be_u16, be_u32, be_u64};

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
/// Length of the common header and the SSRC after it, the part of a compound's first
/// packet that SRTCP leaves in the clear (RFC 3711 section 3.4).
pub const SSRC_HEADER_LEN: usize = 8;
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

/// The common header and SSRC of a compound's first packet, the 8 bytes SRTCP leaves in the
/// clear (RFC 3711 section 3.4): what the relay reads the sender SSRC from, and SRTCP
/// derives the IV from, before the rest is authenticated and decrypted. Walk the plain
/// compound with [`Compound`] afterwards.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |V=2|P|    RC   |      PT       |             length            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  SSRC of the first packet                     |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// The length field is not checked against the buffer: in an SRTCP packet the E flag,
/// index and tag follow, and in a compound more packets do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks that `buffer` starts with a version 2 header and an SSRC.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let header = Header { buffer };
        let buf = header.buffer.as_ref();
        if buf.len() < SSRC_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if header.version() != VERSION {
            return Err(Error::BadVersion);
        }
        Ok(header)
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    /// Version field (2 after the check).
    pub fn version(&self) -> u8 {
        self.byte(field::VPC) >> 6
    }

    /// Packet type of the first packet.
    pub fn packet_type(&self) -> u8 {
        self.byte(field::PT)
    }

    /// The 5-bit count field of the first packet.
    pub fn count(&self) -> u8 {
        self.byte(field::VPC) & COUNT_MASK
    }

    /// Length field of the first packet: its size in 32-bit words minus one.
    pub fn length(&self) -> u16 {
        self.buffer.as_ref().get(field::LENGTH).map_or(0, be_u16)
    }

    /// The SSRC after the first header: the sender's for SR, RR, APP and feedback, the
    /// first chunk's for SDES, the first listed for BYE.
    pub fn ssrc(&self) -> u32 {
        self.buffer.as_ref().get(field::SSRC).map_or(0, be_u32)
    }
}

impl<T: AsRef<[u8]>> fmt::Debug for Header<T> {
    /// Header fields and the length; never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("rtcp::Header")
            .field("packet_type", &self.packet_type())
            .field("count", &self.count())
            .field("ssrc", &format_args!("{:#010x}", self.ssrc()))
            .field("len", &self.buffer.as_ref().len())
            .finish()
    }
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
    let mut rest = packet.get(field::SDES_CHUNKS..).unwrap_or(&[]);
    for _ in 0..count {
        rest = split_chunk(rest)?.1;
    }
    if !rest.is_empty() {
        return Err(Error::BadCount);
    }
    Ok(())
}

/// Splits the SDES chunk at the start of `rest` (which starts on a 32-bit boundary of the
/// packet) off it: its SSRC, its items up to the null item, and the rest after the null
/// octets that pad the chunk to a 32-bit boundary.
fn split_chunk(rest: &[u8]) -> Result<(Chunk<'_>, &[u8]), Error> {
    if rest.is_empty() {
        return Err(Error::BadCount);
    }
    let (ssrc, items) = rest.split_first_chunk::<4>().ok_or(Error::BadItem)?;
    let mut i = 0;
    loop {
        let kind = *items.get(i).ok_or(Error::BadItem)?;
        if kind == sdes_item::END {
            // The items start 4 bytes into an aligned chunk, so the chunk ends on the first
            // 32-bit boundary after the null octet.
            let end = (4 + i + 4) & !3;
            let tail = rest.get(end..).ok_or(Error::BadItem)?;
            let chunk = Chunk {
                ssrc: u32::from_be_bytes(*ssrc),
                items: items.get(..i).unwrap_or(&[]),
            };
            return Ok((chunk, tail));
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
        let count = usize::from(self.count());
        let end = start + count * REPORT_BLOCK_LEN;
        let blocks = self.unpadded().get(start..end).unwrap_or(&[]);
        Records::new(blocks, count)
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
pub type ReportBlocks<'a> = Records<'a, ReportBlock>;

impl<'a> Record<'a> for ReportBlock {
    const LEN: Option<usize> = Some(REPORT_BLOCK_LEN);

    fn split(rest: &'a [u8]) -> Option<(ReportBlock, &'a [u8])> {
        let (block, tail) = rest.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        Some((ReportBlock::parse(block), tail))
    }
}

/// Exact: report blocks have a fixed size.
impl ExactSizeIterator for ReportBlocks<'_> {}

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
        let chunks = self.raw.unpadded().get(field::SDES_CHUNKS..).unwrap_or(&[]);
        Records::new(chunks, usize::from(self.raw.count()))
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
pub type Chunks<'a> = Records<'a, Chunk<'a>>;

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
        Records::new(self.items, usize::MAX)
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

impl<'a> Record<'a> for Chunk<'a> {
    const LEN: Option<usize> = None;

    fn split(rest: &'a [u8]) -> Option<(Chunk<'a>, &'a [u8])> {
        split_chunk(rest).ok()
    }
}

/// Iterator over the items of an SDES chunk.
pub type Items<'a> = Records<'a, SdesItem<'a>>;

impl<'a> Record<'a> for SdesItem<'a> {
    const LEN: Option<usize> = None;

    fn split(rest: &'a [u8]) -> Option<(SdesItem<'a>, &'a [u8])> {
        split_item(rest)
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
        Records::new(list, usize::from(self.raw.count()))
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
pub type Ssrcs<'a> = Records<'a, u32>;

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

mod feedback;

pub use feedback::{FMT_FIR, FMT_NACK, FMT_PLI, Feedback, Kind as FeedbackKind, emit_pli};

#[cfg(test)]
mod tests;
