//! RTP packets (RFC 3550 section 5.1): a checked zero-copy view.
//!
//! [`Packet::new_checked`] is the only door for untrusted bytes. It checks the version, that
//! the CSRC list and the header extension fit, and the padding count; after it every
//! accessor reads inside the buffer and none can panic (they read through `get`, so even a
//! buffer whose `AsRef` changes length under us yields zeros, not a panic).
//!
//! SRTP (RFC 3711 section 3.1) leaves the header in the clear but encrypts the payload and
//! the padding and appends an authentication tag, so the padding count of a protected packet
//! is ciphertext. [`Packet::new_checked_header`] checks everything but the padding, for
//! reading the SSRC, sequence number and header length of a packet before it is unprotected.
//! It is the only RTP header parser: the SRTP context takes that view
//! ([`Context::unprotect_rtp_packet`](crate::srtp::Context::unprotect_rtp_packet),
//! [`Context::protect_rtp_into`](crate::srtp::Context::protect_rtp_into)), so the relay
//! parses a packet's header once for its unprotect and every re-protect.
//!
//! [`Header::emit`] and [`Header::emit_packet`] write a header (and payload and padding) into a
//! caller's buffer, for the reference client and tests.

use core::fmt;

use super::bytes::{Records, TooSmall, Writer, be_u16, be_u32};

/// A byte range inside the header.
type Field = core::ops::Range<usize>;

/// Byte offsets of the header fields (RFC 3550 section 5.1 and 5.3.1).
mod field {
    use super::Field;

    /// V (2 bits), P, X, CC (4 bits).
    pub(crate) const VPXCC: usize = 0;
    /// M, PT (7 bits).
    pub(crate) const MPT: usize = 1;
    /// Sequence number.
    pub(crate) const SEQ: Field = 2..4;
    /// Timestamp.
    pub(crate) const TIMESTAMP: Field = 4..8;
    /// Synchronization source.
    pub(crate) const SSRC: Field = 8..12;
    /// Start of the CSRC list, 4 bytes per entry.
    pub(crate) const CSRC: usize = 12;

    /// Header extension, relative to its start: "defined by profile".
    pub(crate) const EXT_PROFILE: Field = 0..2;
    /// Header extension, relative to its start: length in 32-bit words after these 4 bytes.
    pub(crate) const EXT_LENGTH: Field = 2..4;
    /// Header extension, relative to its start: the extension data.
    pub(crate) const EXT_DATA: usize = 4;
}

/// Length of the fixed header (without CSRCs or extension).
pub const HEADER_LEN: usize = 12;
/// The only RTP version (RFC 3550 section 5.1).
pub const VERSION: u8 = 2;
/// Most CSRCs a header can carry (the CC field is 4 bits).
pub const MAX_CSRCS: usize = 15;

const PADDING_BIT: u8 = 0x20;
const EXTENSION_BIT: u8 = 0x10;
const CC_MASK: u8 = 0x0f;
const MARKER_BIT: u8 = 0x80;
const PT_MASK: u8 = 0x7f;
const CSRC_LEN: usize = 4;
const EXT_HEADER_LEN: usize = field::EXT_DATA;
/// Largest header extension data: 65535 32-bit words.
const MAX_EXT_DATA: usize = u16::MAX as usize * 4;

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than the 12-byte fixed header plus the CSRC list it announces.
    Truncated,
    /// Version field other than 2.
    BadVersion,
    /// P is set but the padding count (the last byte) is zero or more than what follows the
    /// header.
    BadPadding,
    /// X is set but the header extension (its 4-byte header, or the length it declares) runs
    /// past the packet.
    BadExtension,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "RTP packet truncated",
            Error::BadVersion => "RTP version is not 2",
            Error::BadPadding => "RTP padding count is zero or too large",
            Error::BadExtension => "RTP header extension runs past the packet",
        })
    }
}

impl core::error::Error for Error {}

/// An RTP header extension (RFC 3550 section 5.3.1): 16 bits defined by the profile and data
/// whose length is a multiple of 4. WebRTC uses the RFC 8285 profiles (0xBEDE one-byte,
/// 0x100x two-byte), whose elements live inside `data`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The 16 bits "defined by profile".
    pub profile: u16,
    /// The extension data, without its 4-byte header.
    pub data: &'a [u8],
}

impl fmt::Debug for Extension<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extension")
            .field("profile", &format_args!("{:#06x}", self.profile))
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// The RTP fixed header, CSRC list and header extension (RFC 3550 section 5.1):
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
/// ```
///
/// followed, when X is set, by the header extension (section 5.3.1):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      defined by profile       |           length              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        header extension                       |
/// |                             ....                              |
/// ```
///
/// then the payload, then, when P is set, padding whose last byte counts the padding bytes
/// including itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks `buffer` as a whole RTP packet: fixed header, version 2, CSRC list, header
    /// extension and padding.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Packet { buffer };
        packet.check_header()?;
        packet.check_padding()?;
        Ok(packet)
    }

    /// Checks the header only (fixed header, version, CSRC list, extension), not the
    /// padding: for SRTP packets, whose padding count is still encrypted and whose last
    /// bytes are the authentication tag. [`payload`](Self::payload) and
    /// [`padding_len`](Self::padding_len) of such a packet are not meaningful (they still
    /// cannot panic); check the decrypted packet with [`new_checked`](Self::new_checked).
    pub fn new_checked_header(buffer: T) -> Result<Self, Error> {
        let packet = Packet { buffer };
        packet.check_header()?;
        Ok(packet)
    }

    /// Wraps a buffer whose header a checked view already accepted, without checking it
    /// again: SRTP narrows a checked SRTP packet to its plaintext this way, once it has
    /// checked that the header ends before the tag. The accessors stay panic-free whatever
    /// the buffer holds.
    pub(crate) fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole packet: header, payload and padding (and, for an SRTP packet not yet
    /// unprotected, the tag).
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn check_header(&self) -> Result<(), Error> {
        let buf = self.buffer.as_ref();
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != VERSION {
            return Err(Error::BadVersion);
        }
        let after_csrcs = buf.get(self.extension_start()..).ok_or(Error::Truncated)?;
        if self.has_extension() {
            let declared = after_csrcs
                .get(field::EXT_LENGTH)
                .map(be_u16)
                .ok_or(Error::BadExtension)?;
            let ext_len = EXT_HEADER_LEN + usize::from(declared) * 4;
            if after_csrcs.len() < ext_len {
                return Err(Error::BadExtension);
            }
        }
        Ok(())
    }

    fn check_padding(&self) -> Result<(), Error> {
        if !self.has_padding() {
            return Ok(());
        }
        let buf = self.buffer.as_ref();
        let count = usize::from(buf.last().copied().unwrap_or(0));
        // check_header ran first, so header_len() <= len.
        let after_header = buf.len().saturating_sub(self.header_len());
        if count == 0 || count > after_header {
            return Err(Error::BadPadding);
        }
        Ok(())
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    /// Version field (2 after a check).
    pub fn version(&self) -> u8 {
        self.byte(field::VPXCC) >> 6
    }

    /// P: the packet ends in padding.
    pub fn has_padding(&self) -> bool {
        self.byte(field::VPXCC) & PADDING_BIT != 0
    }

    /// X: a header extension follows the CSRC list.
    pub fn has_extension(&self) -> bool {
        self.byte(field::VPXCC) & EXTENSION_BIT != 0
    }

    /// CC: number of CSRCs (0..=15).
    pub fn csrc_count(&self) -> u8 {
        self.byte(field::VPXCC) & CC_MASK
    }

    /// M: the marker bit (for audio, the first packet of a talkspurt).
    pub fn marker(&self) -> bool {
        self.byte(field::MPT) & MARKER_BIT != 0
    }

    /// PT: the 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.byte(field::MPT) & PT_MASK
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u16 {
        self.buffer.as_ref().get(field::SEQ).map_or(0, be_u16)
    }

    /// Timestamp.
    pub fn timestamp(&self) -> u32 {
        self.buffer.as_ref().get(field::TIMESTAMP).map_or(0, be_u32)
    }

    /// Synchronization source.
    pub fn ssrc(&self) -> u32 {
        self.buffer.as_ref().get(field::SSRC).map_or(0, be_u32)
    }

    /// The CSRC at `index`, or `None` past the CSRC count.
    pub fn csrc(&self, index: usize) -> Option<u32> {
        self.csrcs().nth(index)
    }

    /// The CSRC list, in order.
    pub fn csrcs(&self) -> Csrcs<'_> {
        let end = field::CSRC + usize::from(self.csrc_count()) * CSRC_LEN;
        let list = self.buffer.as_ref().get(field::CSRC..end).unwrap_or(&[]);
        Records::new(list, usize::from(self.csrc_count()))
    }

    /// Offset of the header extension (just after the CSRC list).
    fn extension_start(&self) -> usize {
        field::CSRC + usize::from(self.csrc_count()) * CSRC_LEN
    }

    /// The header extension when X is set.
    pub fn extension(&self) -> Option<Extension<'_>> {
        if !self.has_extension() {
            return None;
        }
        let ext = self.buffer.as_ref().get(self.extension_start()..)?;
        let profile = ext.get(field::EXT_PROFILE).map(be_u16)?;
        let words = ext.get(field::EXT_LENGTH).map(be_u16)?;
        let data = ext.get(field::EXT_DATA..field::EXT_DATA + usize::from(words) * 4)?;
        Some(Extension { profile, data })
    }

    /// Length of the whole header: fixed part, CSRC list and header extension.
    pub fn header_len(&self) -> usize {
        let start = self.extension_start();
        if !self.has_extension() {
            return start;
        }
        let words = self
            .buffer
            .as_ref()
            .get(start..)
            .and_then(|ext| ext.get(field::EXT_LENGTH))
            .map_or(0, be_u16);
        start + EXT_HEADER_LEN + usize::from(words) * 4
    }

    /// Bytes of padding at the end (0 without P). Meaningful after
    /// [`new_checked`](Self::new_checked).
    pub fn padding_len(&self) -> usize {
        if self.has_padding() {
            usize::from(self.buffer.as_ref().last().copied().unwrap_or(0))
        } else {
            0
        }
    }

    /// The payload: after the header, before the padding.
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let end = buf.len().saturating_sub(self.padding_len());
        buf.get(self.header_len()..end).unwrap_or(&[])
    }

    /// Whether this is an RFC 6263 section 4.6 keepalive: an RTP packet whose payload type
    /// the receiver does not use, sent only to keep a NAT binding (and here, a latch) alive.
    /// `in_use` lists the payload types the receiver decodes or relays; a packet with any
    /// other payload type is a keepalive, to be used for latching and otherwise dropped.
    pub fn is_keepalive(&self, in_use: &[u8]) -> bool {
        !in_use.contains(&self.payload_type())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn byte_mut(&mut self, at: usize) -> Option<&mut u8> {
        self.buffer.as_mut().get_mut(at)
    }

    /// Sets or clears the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        if let Some(b) = self.byte_mut(field::MPT) {
            *b = if marker {
                *b | MARKER_BIT
            } else {
                *b & !MARKER_BIT
            };
        }
    }

    /// Sets the payload type; only its low 7 bits are used.
    pub fn set_payload_type(&mut self, payload_type: u8) {
        if let Some(b) = self.byte_mut(field::MPT) {
            *b = (*b & MARKER_BIT) | (payload_type & PT_MASK);
        }
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: u16) {
        put(self.buffer.as_mut(), field::SEQ, &seq.to_be_bytes());
    }

    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, timestamp: u32) {
        put(
            self.buffer.as_mut(),
            field::TIMESTAMP,
            &timestamp.to_be_bytes(),
        );
    }

    /// Sets the synchronization source.
    pub fn set_ssrc(&mut self, ssrc: u32) {
        put(self.buffer.as_mut(), field::SSRC, &ssrc.to_be_bytes());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let padding = self.padding_len();
        let buf = self.buffer.as_mut();
        let end = buf.len().saturating_sub(padding);
        buf.get_mut(start..end).unwrap_or_default()
    }
}

impl<T: AsRef<[u8]>> fmt::Debug for Packet<T> {
    /// Header fields and lengths; never payload bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("rtp::Packet")
            .field("pt", &self.payload_type())
            .field("marker", &self.marker())
            .field("seq", &self.seq_number())
            .field("timestamp", &self.timestamp())
            .field("ssrc", &format_args!("{:#010x}", self.ssrc()))
            .field("csrcs", &self.csrc_count())
            .field("extension", &self.extension())
            .field("header_len", &self.header_len())
            .field("payload_len", &self.payload().len())
            .field("padding_len", &self.padding_len())
            .finish()
    }
}

/// Iterator over a packet's CSRC list.
pub type Csrcs<'a> = Records<'a, u32>;

/// Why a header could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmitError {
    /// The buffer is shorter than the packet; `needed` is the packet's length.
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
    },
    /// More than [`MAX_CSRCS`] CSRCs.
    TooManyCsrcs,
    /// A payload type above 127.
    PayloadTypeOutOfRange,
    /// Extension data whose length is not a multiple of 4 or exceeds 65535 words.
    BadExtensionLength,
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
                write!(f, "buffer too small for RTP packet, {needed} bytes needed")
            }
            EmitError::TooManyCsrcs => f.write_str("more than 15 CSRCs"),
            EmitError::PayloadTypeOutOfRange => f.write_str("payload type above 127"),
            EmitError::BadExtensionLength => {
                f.write_str("extension data not a multiple of 4 bytes or too long")
            }
        }
    }
}

impl core::error::Error for EmitError {}

/// A header to write: the fields an RTP sender chooses. Version is always 2; P is set by
/// [`emit_packet`](Self::emit_packet) when it writes padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// M.
    pub marker: bool,
    /// PT, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub seq_number: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: &'a [u32],
    /// Header extension; its data length must be a multiple of 4.
    pub extension: Option<Extension<'a>>,
}

impl Header<'_> {
    /// Length of the header this writes.
    pub fn header_len(&self) -> usize {
        // Saturating: only absurd (API-misuse) slice lengths could overflow, and validate()
        // or the buffer check turns a saturated length into an error.
        HEADER_LEN
            .saturating_add(self.csrcs.len().saturating_mul(CSRC_LEN))
            .saturating_add(
                self.extension
                    .map_or(0, |ext| EXT_HEADER_LEN.saturating_add(ext.data.len())),
            )
    }

    fn validate(&self) -> Result<(), EmitError> {
        if self.csrcs.len() > MAX_CSRCS {
            return Err(EmitError::TooManyCsrcs);
        }
        if self.payload_type > PT_MASK {
            return Err(EmitError::PayloadTypeOutOfRange);
        }
        if let Some(ext) = self.extension
            && (ext.data.len() % 4 != 0 || ext.data.len() > MAX_EXT_DATA)
        {
            return Err(EmitError::BadExtensionLength);
        }
        Ok(())
    }

    /// Writes the header (P clear) at the start of `buf` and returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        self.validate()?;
        let needed = self.header_len();
        let mut w = Writer::new(buf, needed)?;
        self.write(&mut w, false);
        Ok(w.finish()?)
    }

    /// Writes a whole packet: header, `payload`, then `padding` bytes of padding (0 for
    /// none; otherwise P is set, `padding - 1` zero bytes are written and then the count).
    /// Returns the packet's length.
    pub fn emit_packet(
        &self,
        payload: &[u8],
        padding: u8,
        buf: &mut [u8],
    ) -> Result<usize, EmitError> {
        self.validate()?;
        let needed = self
            .header_len()
            .saturating_add(payload.len())
            .saturating_add(usize::from(padding));
        let mut w = Writer::new(buf, needed)?;
        self.write(&mut w, padding > 0);
        w.put(payload);
        if let Some(zeros) = padding.checked_sub(1) {
            w.fill(0, usize::from(zeros));
            w.put(&[padding]);
        }
        Ok(w.finish()?)
    }

    fn write(&self, w: &mut Writer<'_>, padding: bool) {
        // The casts cannot truncate: validate() bounded both.
        let cc = (self.csrcs.len() & usize::from(CC_MASK)) as u8;
        let mut first = (VERSION << 6) | cc;
        if padding {
            first |= PADDING_BIT;
        }
        if self.extension.is_some() {
            first |= EXTENSION_BIT;
        }
        let marker = if self.marker { MARKER_BIT } else { 0 };
        w.put(&[first, marker | (self.payload_type & PT_MASK)]);
        w.put(&self.seq_number.to_be_bytes());
        w.put(&self.timestamp.to_be_bytes());
        w.put(&self.ssrc.to_be_bytes());
        for csrc in self.csrcs {
            w.put(&csrc.to_be_bytes());
        }
        if let Some(ext) = self.extension {
            let words = u16::try_from(ext.data.len() / 4).unwrap_or(u16::MAX);
            w.put(&ext.profile.to_be_bytes());
            w.put(&words.to_be_bytes());
            w.put(ext.data);
        }
    }
}

/// Copies `bytes` over `field` when the buffer holds it.
fn put(buf: &mut [u8], field: Field, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(field)
        && dst.len() == bytes.len()
    {
        dst.copy_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests;
