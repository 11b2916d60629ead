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
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 7714 section 16.1 (the plaintext RTP packet of the AES-GCM vectors,
    /// <https://www.rfc-editor.org/rfc/rfc7714#section-16.1>): header `8040f17b 8041f8d3
    /// 5501a0b2`, payload "Gallia est omnis divisa in partes tres".
    const RFC7714_RTP: [u8; 50] = [
        0x80, 0x40, 0xf1, 0x7b, 0x80, 0x41, 0xf8, 0xd3, 0x55, 0x01, 0xa0, 0xb2, 0x47, 0x61, 0x6c,
        0x6c, 0x69, 0x61, 0x20, 0x65, 0x73, 0x74, 0x20, 0x6f, 0x6d, 0x6e, 0x69, 0x73, 0x20, 0x64,
        0x69, 0x76, 0x69, 0x73, 0x61, 0x20, 0x69, 0x6e, 0x20, 0x70, 0x61, 0x72, 0x74, 0x65, 0x73,
        0x20, 0x74, 0x72, 0x65, 0x73,
    ];

    /// An Opus packet laid out as libwebrtc sends the first packet of a talkspurt with the
    /// RFC 8285 one-byte header extensions ssrc-audio-level (id 1) and transport-wide-cc
    /// (id 3). Built byte by byte, not captured.
    const WEBRTC_OPUS: [u8; 28] = [
        0x90, // V=2, P=0, X=1, CC=0
        0xef, // M=1 (start of talkspurt), PT=111 (Opus, as Chrome offers it)
        0x1a, 0x2b, // sequence number 6699
        0x00, 0x01, 0xe2, 0x40, // timestamp 123456 (48 kHz clock)
        0x3c, 0x5d, 0x7e, 0x9f, // SSRC
        0xbe, 0xde, // profile 0xBEDE: RFC 8285 one-byte elements
        0x00, 0x02, // length: 2 words of elements follow
        0x10, 0x9e, // id 1 len 1: voice activity set, level -30 dBov
        0x31, 0x00, 0x2a, // id 3 len 2 (L=1): transport-wide sequence number 42
        0x00, 0x00, 0x00, // zero padding to the word boundary
        0x78, 0x0b, 0xe4, 0xc1, // Opus: TOC byte 0x78 (config 15, mono, one frame), data
    ];

    /// A mixer's packet: two CSRCs, payload, then 4 bytes of padding (count byte 4).
    const MIXED_PADDED: [u8; 32] = [
        0xa2, // V=2, P=1, X=0, CC=2
        0x00, // M=0, PT=0 (PCMU)
        0x00, 0x07, // seq 7
        0x00, 0x00, 0x03, 0x20, // timestamp 800
        0xde, 0xad, 0xbe, 0xef, // SSRC
        0x11, 0x11, 0x11, 0x11, // CSRC 1
        0x22, 0x22, 0x22, 0x22, // CSRC 2
        0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, // 8 bytes of PCMU
        0x00, 0x00, 0x00, 0x04, // padding: 3 zeros and the count 4
    ];

    #[test]
    fn rfc7714_packet() {
        let p = Packet::new_checked(&RFC7714_RTP[..]).unwrap();
        assert_eq!(p.version(), 2);
        assert!(!p.has_padding());
        assert!(!p.has_extension());
        assert_eq!(p.csrc_count(), 0);
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 0x40);
        assert_eq!(p.seq_number(), 0xf17b);
        assert_eq!(p.timestamp(), 0x8041_f8d3);
        assert_eq!(p.ssrc(), 0x5501_a0b2);
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.extension(), None);
        assert_eq!(p.padding_len(), 0);
        assert_eq!(p.payload(), b"Gallia est omnis divisa in partes tres");
    }

    #[test]
    fn webrtc_opus_with_one_byte_extension() {
        let p = Packet::new_checked(&WEBRTC_OPUS[..]).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 111);
        assert_eq!(p.seq_number(), 6699);
        assert_eq!(p.timestamp(), 123_456);
        assert_eq!(p.ssrc(), 0x3c5d_7e9f);
        assert!(p.has_extension());
        let ext = p.extension().unwrap();
        assert_eq!(ext.profile, 0xbede);
        assert_eq!(ext.data, &[0x10, 0x9e, 0x31, 0x00, 0x2a, 0, 0, 0]);
        assert_eq!(p.header_len(), 12 + 4 + 8);
        assert_eq!(p.payload(), &[0x78, 0x0b, 0xe4, 0xc1]);
    }

    #[test]
    fn csrcs_and_padding() {
        let p = Packet::new_checked(&MIXED_PADDED[..]).unwrap();
        assert_eq!(p.csrc_count(), 2);
        assert_eq!(p.csrcs().len(), 2);
        assert_eq!(p.csrcs().collect::<Vec<_>>(), [0x1111_1111, 0x2222_2222]);
        assert_eq!(p.csrc(0), Some(0x1111_1111));
        assert_eq!(p.csrc(1), Some(0x2222_2222));
        assert_eq!(p.csrc(2), None);
        assert_eq!(p.header_len(), 20);
        assert!(p.has_padding());
        assert_eq!(p.padding_len(), 4);
        assert_eq!(
            p.payload(),
            &[0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8]
        );
    }

    #[test]
    fn padding_may_fill_everything_after_the_header() {
        // A padding-only packet (as used for bandwidth probing): count = len - header.
        let mut buf = [0u8; 16];
        buf[..12].copy_from_slice(&RFC7714_RTP[..12]);
        buf[0] |= PADDING_BIT;
        buf[15] = 4;
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.padding_len(), 4);
        assert_eq!(p.payload(), &[] as &[u8]);
        // A header with nothing after it is fine too.
        let p = Packet::new_checked(&RFC7714_RTP[..12]).unwrap();
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(Packet::new_checked(&[][..]), Err(Error::Truncated));
        assert_eq!(
            Packet::new_checked(&RFC7714_RTP[..11]),
            Err(Error::Truncated)
        );
        // CC=2 but only one CSRC present.
        assert_eq!(
            Packet::new_checked(&MIXED_PADDED[..16]),
            Err(Error::Truncated)
        );
        // CC=15 needs 72 bytes.
        let mut buf = [0u8; 72];
        buf[0] = 0x8f;
        assert_eq!(Packet::new_checked(&buf[..71]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&buf[..]).unwrap().csrcs().len(), 15);
    }

    #[test]
    fn rejects_bad_version() {
        for v in [0u8, 1, 3] {
            let mut buf = RFC7714_RTP;
            buf[0] = (buf[0] & 0x3f) | (v << 6);
            assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadVersion));
            assert_eq!(Packet::new_checked_header(&buf[..]), Err(Error::BadVersion));
        }
    }

    #[test]
    fn rejects_bad_extension() {
        // X set, but the packet ends before the 4-byte extension header.
        let mut buf = [0u8; 15];
        buf.copy_from_slice(&RFC7714_RTP[..15]);
        buf[0] |= EXTENSION_BIT;
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadExtension));
        // X set, extension length claims 3 words, 2 present.
        let mut buf = WEBRTC_OPUS;
        buf[15] = 3;
        assert_eq!(
            Packet::new_checked(&buf[..12 + 4 + 8]),
            Err(Error::BadExtension)
        );
        // The same packet with the payload present: 3 words now fit (the payload becomes
        // extension data), so the packet is well formed with an empty payload.
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.payload(), &[] as &[u8]);
        // Length 0xffff on a small packet.
        let mut buf = WEBRTC_OPUS;
        buf[14] = 0xff;
        buf[15] = 0xff;
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadExtension));
    }

    #[test]
    fn rejects_bad_padding() {
        // Count zero.
        let mut buf = MIXED_PADDED;
        buf[31] = 0;
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
        // Count reaching into the header: 12 bytes after a 20-byte header, count 13.
        let mut buf = MIXED_PADDED;
        buf[31] = 13;
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
        // Count exactly everything after the header is allowed.
        buf[31] = 12;
        assert_eq!(
            Packet::new_checked(&buf[..]).unwrap().payload(),
            &[] as &[u8]
        );
        // P set on a bare header: nothing can be padding.
        let mut buf = [0u8; 12];
        buf.copy_from_slice(&RFC7714_RTP[..12]);
        buf[0] |= PADDING_BIT;
        buf[11] = 1;
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
    }

    #[test]
    fn header_only_check_for_srtp() {
        // P set and the last byte (here standing for an SRTP tag byte) is 0: the full check
        // rejects it, the header check reads the header.
        let mut buf = [0u8; 22];
        buf[..12].copy_from_slice(&RFC7714_RTP[..12]);
        buf[0] |= PADDING_BIT;
        assert_eq!(Packet::new_checked(&buf[..]), Err(Error::BadPadding));
        let p = Packet::new_checked_header(&buf[..]).unwrap();
        assert_eq!(p.ssrc(), 0x5501_a0b2);
        assert_eq!(p.seq_number(), 0xf17b);
        assert_eq!(p.header_len(), 12);
        // Last byte 0xff: more than the packet; payload() clamps rather than panics.
        buf[21] = 0xff;
        let p = Packet::new_checked_header(&buf[..]).unwrap();
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn setters() {
        let mut buf = WEBRTC_OPUS;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_ssrc(0x0102_0304);
        p.set_seq_number(0xfffe);
        p.set_timestamp(0xdead_beef);
        p.set_marker(false);
        p.set_payload_type(0x80 | 96); // the high bit is ignored
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.seq_number(), 0xfffe);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 96);
        p.set_marker(true);
        assert!(p.marker());
        assert_eq!(p.payload_type(), 96);
        p.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        // Nothing else moved.
        assert!(p.has_extension());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.extension().unwrap().profile, 0xbede);
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(
            &buf[2..12],
            &[0xff, 0xfe, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]
        );
        assert_eq!(buf[1], 0x80 | 96);
    }

    #[test]
    fn payload_mut_skips_padding() {
        let mut buf = MIXED_PADDED;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.payload_mut().len(), 8);
        p.payload_mut().fill(0x55);
        assert_eq!(&buf[20..28], &[0x55; 8]);
        assert_eq!(&buf[28..], &[0, 0, 0, 4]);
    }

    #[test]
    fn emit_reproduces_rfc7714_header() {
        let header = Header {
            marker: false,
            payload_type: 0x40,
            seq_number: 0xf17b,
            timestamp: 0x8041_f8d3,
            ssrc: 0x5501_a0b2,
            csrcs: &[],
            extension: None,
        };
        let mut buf = [0u8; 64];
        assert_eq!(header.emit(&mut buf), Ok(12));
        assert_eq!(buf[..12], RFC7714_RTP[..12]);
        let n = header
            .emit_packet(b"Gallia est omnis divisa in partes tres", 0, &mut buf)
            .unwrap();
        assert_eq!(buf[..n], RFC7714_RTP[..]);
    }

    #[test]
    fn emit_reproduces_captures_with_extension_and_padding() {
        let mut buf = [0u8; 64];
        let opus = Header {
            marker: true,
            payload_type: 111,
            seq_number: 6699,
            timestamp: 123_456,
            ssrc: 0x3c5d_7e9f,
            csrcs: &[],
            extension: Some(Extension {
                profile: 0xbede,
                data: &[0x10, 0x9e, 0x31, 0x00, 0x2a, 0, 0, 0],
            }),
        };
        let n = opus
            .emit_packet(&[0x78, 0x0b, 0xe4, 0xc1], 0, &mut buf)
            .unwrap();
        assert_eq!(buf[..n], WEBRTC_OPUS[..]);

        let mixed = Header {
            marker: false,
            payload_type: 0,
            seq_number: 7,
            timestamp: 800,
            ssrc: 0xdead_beef,
            csrcs: &[0x1111_1111, 0x2222_2222],
            extension: None,
        };
        let n = mixed
            .emit_packet(
                &[0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8],
                4,
                &mut buf,
            )
            .unwrap();
        assert_eq!(buf[..n], MIXED_PADDED[..]);
    }

    #[test]
    fn emit_errors() {
        let mut header = Header {
            marker: false,
            payload_type: 0,
            seq_number: 0,
            timestamp: 0,
            ssrc: 0,
            csrcs: &[],
            extension: None,
        };
        let mut buf = [0u8; 11];
        assert_eq!(
            header.emit(&mut buf),
            Err(EmitError::BufferTooSmall { needed: 12 })
        );
        let mut buf = [0u8; 100];
        assert_eq!(
            header.emit_packet(&[0; 80], 9, &mut buf),
            Err(EmitError::BufferTooSmall { needed: 101 })
        );
        header.payload_type = 128;
        assert_eq!(header.emit(&mut buf), Err(EmitError::PayloadTypeOutOfRange));
        header.payload_type = 127;
        let csrcs = [0u32; 16];
        header.csrcs = &csrcs;
        assert_eq!(header.emit(&mut buf), Err(EmitError::TooManyCsrcs));
        header.csrcs = &csrcs[..15];
        assert_eq!(header.emit(&mut buf), Ok(72));
        header.extension = Some(Extension {
            profile: 0xbede,
            data: &[1, 2, 3],
        });
        assert_eq!(header.emit(&mut buf), Err(EmitError::BadExtensionLength));
    }

    #[test]
    fn keepalive_is_an_unused_payload_type() {
        let p = Packet::new_checked(&WEBRTC_OPUS[..]).unwrap();
        assert!(!p.is_keepalive(&[111]));
        assert!(!p.is_keepalive(&[0, 8, 111]));
        assert!(p.is_keepalive(&[0, 8]));
        assert!(p.is_keepalive(&[]));
    }

    #[test]
    fn debug_prints_no_payload_bytes() {
        let p = Packet::new_checked(&RFC7714_RTP[..]).unwrap();
        let s = format!("{p:?}");
        assert!(s.contains("payload_len: 38"), "{s}");
        assert!(s.contains("0x5501a0b2"), "{s}");
        // "Gallia" would show as 71 (0x47) and friends if bytes leaked.
        assert!(!s.contains("71, 97"), "{s}");
        let ext = format!("{:?}", Packet::new_checked(&WEBRTC_OPUS[..]).unwrap());
        assert!(ext.contains("data_len: 8"), "{ext}");
    }

    /// Reads every accessor; used by the no-panic property.
    fn touch_all<T: AsRef<[u8]>>(p: &Packet<T>) {
        let _ = (
            p.version(),
            p.has_padding(),
            p.has_extension(),
            p.csrc_count(),
            p.marker(),
            p.payload_type(),
            p.seq_number(),
            p.timestamp(),
            p.ssrc(),
            p.csrc(3),
            p.csrcs().count(),
            p.extension(),
            p.header_len(),
            p.padding_len(),
            p.payload().len(),
            p.is_keepalive(&[0]),
        );
        let _ = format!("{p:?}");
    }

    fn arb_extension() -> impl Strategy<Value = Option<(u16, Vec<u8>)>> {
        proptest::option::of((
            any::<u16>(),
            (0usize..8).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(mut buf in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Ok(p) = Packet::new_checked(&buf[..]) {
                touch_all(&p);
                prop_assert!(p.header_len() + p.padding_len() <= buf.len());
                prop_assert_eq!(
                    p.header_len() + p.payload().len() + p.padding_len(),
                    buf.len()
                );
            }
            if let Ok(p) = Packet::new_checked_header(&buf[..]) {
                touch_all(&p);
                prop_assert!(p.header_len() <= buf.len());
            }
            // Biased toward version 2 so the deeper checks run too.
            if let Some(b) = buf.first_mut() {
                *b = (*b & 0x3f) | 0x80;
            }
            if let Ok(mut p) = Packet::new_checked(&mut buf[..]) {
                touch_all(&p);
                p.set_payload_type(0xff);
                p.set_marker(true);
                p.set_ssrc(1);
                p.payload_mut().fill(0);
                touch_all(&p);
            }
            if let Ok(p) = Packet::new_checked_header(&buf[..]) {
                touch_all(&p);
            }
        }

        #[test]
        fn emit_then_parse_round_trips(
            marker in any::<bool>(),
            payload_type in 0u8..=127,
            seq_number in any::<u16>(),
            timestamp in any::<u32>(),
            ssrc in any::<u32>(),
            csrcs in proptest::collection::vec(any::<u32>(), 0..=MAX_CSRCS),
            ext in arb_extension(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            padding in any::<u8>(),
        ) {
            let header = Header {
                marker,
                payload_type,
                seq_number,
                timestamp,
                ssrc,
                csrcs: &csrcs,
                extension: ext.as_ref().map(|(profile, data)| Extension { profile: *profile, data }),
            };
            let mut buf = [0u8; 512];
            let n = header.emit_packet(&payload, padding, &mut buf).unwrap();
            prop_assert_eq!(n, header.header_len() + payload.len() + usize::from(padding));
            let p = Packet::new_checked(&buf[..n]).unwrap();
            prop_assert_eq!(p.version(), 2);
            prop_assert_eq!(p.marker(), marker);
            prop_assert_eq!(p.payload_type(), payload_type);
            prop_assert_eq!(p.seq_number(), seq_number);
            prop_assert_eq!(p.timestamp(), timestamp);
            prop_assert_eq!(p.ssrc(), ssrc);
            prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs.clone());
            prop_assert_eq!(p.extension(), header.extension);
            prop_assert_eq!(p.header_len(), header.header_len());
            prop_assert_eq!(p.has_padding(), padding > 0);
            prop_assert_eq!(p.padding_len(), usize::from(padding));
            prop_assert_eq!(p.payload(), &payload[..]);

            // The header alone parses to the same header.
            let m = header.emit(&mut buf).unwrap();
            let h = Packet::new_checked(&buf[..m]).unwrap();
            prop_assert_eq!(h.header_len(), m);
            prop_assert_eq!(h.ssrc(), ssrc);
            prop_assert_eq!(h.payload(), &[] as &[u8]);
        }
    }
}
