//! Master keys: raw (DTLS-SRTP exporter) or the SDES form of PROTOCOL.md section 3.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{MASTER_KEY_LEN, MASTER_SALT_LEN, MAX_MASTER_KEY_LEN, SDES_KEY_LEN, Suite};

/// Length of the SDES key-salt: master key then master salt.
const KEY_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
const _: () = assert!(SDES_KEY_LEN == KEY_SALT_LEN.div_ceil(3) * 4);

/// Why a master key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not standard base64.
    BadBase64,
    /// Not the suite's key and salt lengths (16 and 14 bytes for AES-CM and SDES, 16 or 32
    /// and 12 for AES-GCM).
    BadLength,
}

impl core::fmt::Display for KeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KeyError::BadBase64 => "key is not base64",
            KeyError::BadLength => "key or salt length does not fit the suite",
        })
    }
}

/// A master key and its master salt, of the lengths of the suite it was made for: 128 bits and
/// 112 for AES-CM, 128 or 256 and 96 for AES-GCM. `Debug` prints no key bytes.
///
/// [`Context::new`](super::Context::new) derives the session keys with an AES PRF of the key's
/// own length (RFC 6188: AES-256 for a 256-bit key) and the session key and salt
/// lengths of the suite it is given, so a key made for another suite still makes a context,
/// one whose packets the peer does not authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; MAX_MASTER_KEY_LEN],
    key_len: u8,
    salt: [u8; MASTER_SALT_LEN],
    salt_len: u8,
}

impl MasterKey {
    /// From raw slices, e.g. cut from the DTLS-SRTP exporter output (RFC 5764 section 4.2):
    /// `key` of [`suite.key_len()`](Suite::key_len) bytes and `salt` of
    /// [`suite.salt_len()`](Suite::salt_len).
    pub fn new(suite: Suite, key: &[u8], salt: &[u8]) -> Result<MasterKey, KeyError> {
        if key.len() != suite.key_len() || salt.len() != suite.salt_len() {
            return Err(KeyError::BadLength);
        }
        let mut k = MasterKey {
            key: [0; MAX_MASTER_KEY_LEN],
            key_len: key.len() as u8,
            salt: [0; MASTER_SALT_LEN],
            salt_len: salt.len() as u8,
        };
        k.key[..key.len()].copy_from_slice(key);
        k.salt[..salt.len()].copy_from_slice(salt);
        Ok(k)
    }

    /// An AES-CM master key (either AES_CM_128 suite) from its 16 bytes and 14 of salt.
    pub const fn aes_cm(key: [u8; MASTER_KEY_LEN], salt: [u8; MASTER_SALT_LEN]) -> MasterKey {
        let mut k = [0u8; MAX_MASTER_KEY_LEN];
        let mut i = 0;
        while i < MASTER_KEY_LEN {
            k[i] = key[i];
            i += 1;
        }
        MasterKey {
            key: k,
            key_len: MASTER_KEY_LEN as u8,
            salt,
            salt_len: MASTER_SALT_LEN as u8,
        }
    }

    /// From the SDES form of PROTOCOL.md section 3 (RFC 4568 section 6.1 key-salt without
    /// lifetime or MKI): base64 of the 16-byte key followed by the 14-byte salt, a key for
    /// either AES-CM suite (SDES here carries only those).
    pub fn from_sdes(b64: &str) -> Result<MasterKey, KeyError> {
        // One spare byte so that a longer input is reported as a length error, not as a
        // base64 error from `decode_slice` running out of room.
        let mut raw = [0u8; KEY_SALT_LEN + 3];
        let n = STANDARD
            .decode_slice(b64.as_bytes(), &mut raw)
            .map_err(|e| match e {
                base64::DecodeSliceError::OutputSliceTooSmall => KeyError::BadLength,
                base64::DecodeSliceError::DecodeError(_) => KeyError::BadBase64,
            })?;
        if n != KEY_SALT_LEN {
            return Err(KeyError::BadLength);
        }
        let (key, salt) = raw[..KEY_SALT_LEN].split_at(MASTER_KEY_LEN);
        MasterKey::new(Suite::AesCm128HmacSha1_80, key, salt)
    }

    /// The SDES form of an AES-CM key, written into `out`; the returned `&str` borrows it.
    /// A key of other lengths (an AES-GCM key) has no SDES form here and gives `""`.
    pub fn to_sdes<'a>(&self, out: &'a mut [u8; SDES_KEY_LEN]) -> &'a str {
        if self.key().len() != MASTER_KEY_LEN || self.salt().len() != MASTER_SALT_LEN {
            return "";
        }
        let mut raw = [0u8; KEY_SALT_LEN];
        raw[..MASTER_KEY_LEN].copy_from_slice(self.key());
        raw[MASTER_KEY_LEN..].copy_from_slice(self.salt());
        // 30 bytes are exactly 40 base64 characters, so neither call can fail.
        let n = STANDARD.encode_slice(raw, out).unwrap_or(0);
        core::str::from_utf8(&out[..n]).unwrap_or("")
    }

    /// The master key, 16 or 32 bytes.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }

    /// The master salt, 14 or 12 bytes.
    pub(crate) fn salt(&self) -> &[u8] {
        &self.salt[..usize::from(self.salt_len)]
    }
}

impl core::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key", &format_args!("[{} bytes]", self.key().len()))
            .field("salt", &format_args!("[{} bytes]", self.salt().len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 section 9 example key-salt.
    const SDES: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn srtp_sdes_round_trip() {
        let k = MasterKey::from_sdes(SDES).unwrap();
        assert_eq!(k.key(), b"YS___semctl () {");
        let raw = MasterKey::aes_cm(*b"YS___semctl () {", *b"\t220;}\n}\nunles");
        assert_eq!(k, raw);
        let mut out = [0u8; SDES_KEY_LEN];
        assert_eq!(k.to_sdes(&mut out), SDES);
    }

    #[test]
    fn srtp_sdes_rejects_bad_input() {
        assert_eq!(MasterKey::from_sdes("WVNf*X19"), Err(KeyError::BadBase64));
        assert_eq!(MasterKey::from_sdes(&SDES[..36]), Err(KeyError::BadLength));
        let long = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzAAAA";
        assert_eq!(MasterKey::from_sdes(long), Err(KeyError::BadLength));
        let longer = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVzWVNfX19zZW1jdGwgKCkgewkyMjA7";
        assert_eq!(MasterKey::from_sdes(longer), Err(KeyError::BadLength));
        assert_eq!(MasterKey::from_sdes(""), Err(KeyError::BadLength));
        let cm = Suite::AesCm128HmacSha1_80;
        assert_eq!(
            MasterKey::new(cm, &[0; 16], &[0; 13]),
            Err(KeyError::BadLength)
        );
    }

    #[test]
    fn srtp_master_key_lengths_per_suite() {
        use Suite::*;
        for (suite, key, salt) in [
            (AesCm128HmacSha1_80, 16, 14),
            (AesCm128HmacSha1_32, 16, 14),
            (AeadAes128Gcm, 16, 12),
            (AeadAes256Gcm, 32, 12),
        ] {
            let k = MasterKey::new(suite, &[7; 32][..key], &[9; 14][..salt]).unwrap();
            assert_eq!((k.key().len(), k.salt().len()), (key, salt));
            for (kl, sl) in [(key - 1, salt), (key, salt - 1), (key + 1, salt), (0, 0)] {
                let bad = MasterKey::new(suite, &[7; 33][..kl], &[9; 15][..sl]);
                assert_eq!(bad, Err(KeyError::BadLength), "{suite:?} {kl} {sl}");
            }
        }
        // The AEAD keys have no SDES form (PROTOCOL.md section 3 names the AES-CM suites).
        let gcm = MasterKey::new(AeadAes128Gcm, &[1; 16], &[2; 12]).unwrap();
        assert_eq!(gcm.to_sdes(&mut [0; SDES_KEY_LEN]), "");
    }

    #[test]
    fn srtp_debug_hides_key_bytes() {
        let k = MasterKey::new(Suite::AesCm128HmacSha1_80, &[0xAB; 16], &[0xCD; 14]).unwrap();
        let s = format!("{k:?}");
        assert_eq!(s, "MasterKey { key: [16 bytes], salt: [14 bytes] }");
        let k = MasterKey::new(Suite::AeadAes256Gcm, &[0xAB; 32], &[0xCD; 12]).unwrap();
        let s = format!("{k:?}");
        assert_eq!(s, "MasterKey { key: [32 bytes], salt: [12 bytes] }");
    }
}
