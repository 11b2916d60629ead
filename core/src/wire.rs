//! Wire formats of the media port: one checked, zero-copy view per format.
//!
//! Every format follows one shape (smoltcp's `wire/`): a `mod field` of byte ranges, the
//! RFC's header diagram above the parser, a `new_checked` constructor that is the only door
//! for untrusted bytes, and accessors that read through `get` so none can panic.
//!
//! - [`demux`]: which protocol a datagram on the shared media port carries (RFC 7983).
//! - [`rtp`]: RTP packets (RFC 3550 section 5.1). SRTP reads the header through the same
//!   view ([`rtp::Packet::new_checked_header`]), so a packet's header is parsed once.
//! - [`hdrext`]: RTP header extension elements (RFC 8285), one-byte and two-byte forms.
//! - [`rtcp`]: RTCP compound packets (RFC 3550 section 6), and [`rtcp::Header`], the part
//!   of an SRTCP packet left in the clear.
//!
//! The byte helpers they share (big-endian reads, a bounded writer) are in `bytes`, with
//! [`Records`], the one iterator over items laid back to back: CSRC and SSRC lists, report
//! blocks, SDES chunks and items.

pub mod demux;
pub mod h264;
pub mod hdrext;
pub mod rtcp;
pub mod rtp;

mod bytes;

pub use bytes::{Record, Records};
