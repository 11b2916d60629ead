//! SRTP and SRTCP (RFC 3711): AES-CM with HMAC-SHA1-80/32, and AEAD AES-GCM with 128- and
//! 256-bit keys (RFC 7714).
//!
//! One [`Context`] is one direction under one master key (RFC 3711 section 3.2): the
//! client->server context of a radio unprotects what it sends, the server->client context
//! protects what the relay forwards to it, from any talker. A context keeps a bounded table
//! of per-SSRC states ([`SRTP_MAX_STREAMS`](crate::config::SRTP_MAX_STREAMS)): rollover
//! counter, highest index and replay window for SRTP, index and replay window for SRTCP.
//!
//! Packets are transformed in place in the caller's buffer; nothing is allocated or copied
//! out. Headers are read through the checked views of [`crate::wire`]; a caller that
//! already holds the view passes it in ([`Context::unprotect_rtp_packet`],
//! [`Context::protect_rtp_into`], [`Context::unprotect_rtcp_header`]) rather than have the
//! header parsed again. Per packet the work is the AES-CM keystream over the payload and the SHA-1
//! compressions of the HMAC, or the AES-GCM keystream and GHASH, from key schedules and keyed
//! states computed once per context. The `aes`, `sha1` and `ghash` crates pick
//! AES-NI/SHA-NI/PCLMULQDQ or the ARMv8 crypto extensions at run time where the CPU has them.
//!
//! ```
//! use livechat_core::srtp::{Context, MasterKey, Suite};
//!
//! let suite = Suite::from_name("AES_CM_128_HMAC_SHA1_80").unwrap();
//! let key = MasterKey::from_sdes("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz").unwrap();
//! let mut tx = Context::new(suite, &key);
//! let mut rx = Context::new(suite, &key);
//!
//! let mut buf = [0u8; 200];
//! buf[..12].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 42]);
//! let len = tx.protect_rtp(&mut buf, 12 + 160).unwrap();
//! assert_eq!(len, 12 + 160 + suite.rtp_tag_len());
//! assert_eq!(rx.unprotect_rtp(&mut buf[..len]).unwrap(), 12 + 160);
//! ```

mod cipher;
mod context;
mod kdf;
mod key;
mod replay;

pub use context::Context;
pub use key::{KeyError, MasterKey};

use crate::config::SRTP_OVERHEAD;

/// Master key length of the AES_CM_128 suites, in bytes.
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length of the AES_CM_128 suites, in bytes.
pub const MASTER_SALT_LEN: usize = 14;
/// Longest master key of any suite (AEAD_AES_256_GCM), in bytes.
pub const MAX_MASTER_KEY_LEN: usize = 32;
/// Master salt length of the AEAD suites, in bytes (RFC 7714 section 12: 96 bits).
pub const AEAD_SALT_LEN: usize = 12;
/// Authentication tag length of the AEAD suites, SRTP and SRTCP alike (RFC 7714 section 12).
pub const AEAD_TAG_LEN: usize = 16;
/// Length of the SDES form of a master key and salt: 30 bytes in base64, no padding
/// (PROTOCOL.md section 3; [`MasterKey::to_sdes`]).
pub const SDES_KEY_LEN: usize = 40;
/// SRTCP authentication tag length of the AES_CM suites (see [`Suite::rtcp_tag_len`]).
pub const SRTCP_TAG_LEN: usize = 10;
/// Length of the SRTCP trailer word, the E flag and the 31-bit SRTCP index.
pub const SRTCP_INDEX_LEN: usize = 4;
/// Most bytes any suite adds to a packet: the AEAD tag and the SRTCP trailer word.
pub const MAX_OVERHEAD: usize = AEAD_TAG_LEN + SRTCP_INDEX_LEN;
const _: () = assert!(SRTP_OVERHEAD >= MAX_OVERHEAD);

/// A crypto suite (RFC 4568 section 6.2 and RFC 7714 section 14.1 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-CM 128-bit key, HMAC-SHA1 with an 80-bit tag.
    AesCm128HmacSha1_80,
    /// AES-CM 128-bit key, HMAC-SHA1 with a 32-bit SRTP tag (SRTCP keeps 80 bits).
    AesCm128HmacSha1_32,
    /// AEAD AES-GCM, 128-bit key, 96-bit salt, 128-bit tag (RFC 7714).
    AeadAes128Gcm,
    /// AEAD AES-GCM, 256-bit key, 96-bit salt, 128-bit tag (RFC 7714).
    AeadAes256Gcm,
}

impl Suite {
    /// The suite named `name` as in SDES: RFC 4568 (`AES_CM_128_HMAC_SHA1_80`, `_32`) and
    /// RFC 7714 section 14.1 (`AEAD_AES_128_GCM`, `AEAD_AES_256_GCM`).
    pub fn from_name(name: &str) -> Option<Suite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(Suite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(Suite::AesCm128HmacSha1_32),
            "AEAD_AES_128_GCM" => Some(Suite::AeadAes128Gcm),
            "AEAD_AES_256_GCM" => Some(Suite::AeadAes256Gcm),
            _ => None,
        }
    }

    /// The SDES name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// Whether this is one of the RFC 7714 AEAD suites.
    pub const fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// Master (and session) key length in bytes: 16, or 32 for AEAD_AES_256_GCM.
    pub const fn key_len(self) -> usize {
        match self {
            Suite::AeadAes256Gcm => 32,
            _ => MASTER_KEY_LEN,
        }
    }

    /// Master (and session) salt length in bytes: 14 for AES-CM (RFC 3711 section 8.2), 12
    /// for AES-GCM (RFC 7714 section 12).
    pub const fn salt_len(self) -> usize {
        if self.is_aead() {
            AEAD_SALT_LEN
        } else {
            MASTER_SALT_LEN
        }
    }

    /// SRTP authentication tag length in bytes: 10 or 4 for AES-CM, 16 for AES-GCM.
    pub const fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => AEAD_TAG_LEN,
        }
    }

    /// Length of the SDES form of a master key and salt: 30 bytes in base64, no padding
    /// (PROTOCOL.md section 3; [`MasterKey::to_sdes`]).
    pub const SDES_KEY_LEN: usize = 40;
    /// SRTCP authentication tag length in bytes: 10 for both AES-CM suites, 16 for AES-GCM.
    /// RFC 4568 section 6.2.2 says the `_32` suite's SRTCP tag is 80 bits (RFC 3711 section
    /// 5.2 mandates 80-bit tags for SRTCP), and libsrtp's
    /// `srtp_crypto_policy_set_from_profile_for_rtcp` does the same.
    pub const fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            AEAD_TAG_LEN
        } else {
            SRTCP_TAG_LEN
        }
    }
}

/// Why a packet could not be protected or unprotected.
///
/// Peer misbehaviour or attack ([`AuthFailed`](Error::AuthFailed),
/// [`Replayed`](Error::Replayed), [`IndexTooOld`](Error::IndexTooOld),
/// [`Malformed`](Error::Malformed), [`TooShort`](Error::TooShort)) is a counted drop;
/// [`BufferTooSmall`](Error::BufferTooSmall) is a caller mistake;
/// [`TooManyStreams`](Error::TooManyStreams) and [`KeyExhausted`](Error::KeyExhausted) are
/// capacity limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Shorter than a header (plus the tag and SRTCP trailer when unprotecting).
    TooShort,
    /// The RTP or RTCP header is refused by its checked view ([`rtp::Packet`] or
    /// [`rtcp::Header`]): a version other than 2, or a CSRC list or extension that runs past
    /// the packet (into the tag, when unprotecting).
    ///
    /// [`rtp::Packet`]: crate::wire::rtp::Packet
    /// [`rtcp::Header`]: crate::wire::rtcp::Header
    Malformed,
    /// `protect_*`: the buffer has no room for the tag (and SRTCP trailer).
    BufferTooSmall {
        /// Buffer length needed.
        needed: usize,
    },
    /// The authentication tag does not match.
    AuthFailed,
    /// This index was already received (unprotect) or already sent (protect).
    Replayed,
    /// The index is behind the replay window.
    IndexTooOld,
    /// `unprotect_*`: a new SSRC while the stream table is full. Established streams keep
    /// their replay state rather than being evicted by a peer that uses more SSRCs.
    TooManyStreams,
    /// The packet index space of this stream is used up (2^48 SRTP, 2^31 SRTCP): rekey.
    KeyExhausted,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::TooShort => f.write_str("packet too short"),
            Error::Malformed => f.write_str("malformed header"),
            Error::BufferTooSmall { needed } => write!(f, "buffer too small, {needed} needed"),
            Error::AuthFailed => f.write_str("authentication failed"),
            Error::Replayed => f.write_str("replayed packet"),
            Error::IndexTooOld => f.write_str("index behind the replay window"),
            Error::TooManyStreams => f.write_str("too many SSRCs in one context"),
            Error::KeyExhausted => f.write_str("packet index space exhausted"),
        }
    }
}
