//! Master keys: raw (DTLS-SRTP exporter) or the SDES form of PROTOCOL.md section 3.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{MASTER_KEY_LEN, MASTER_SALT_LEN, SDES_KEY_LEN};

/// Length of the SDES key-salt: master key then master salt.
const KEY_SALT_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
const _: () = assert!(SDES_KEY_LEN == KEY_SALT_LEN.div_ceil(3) * 4);

/// Why a master key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not standard base64.
    BadBase64,
    /// Not a 16-byte key and a 14-byte salt.
    BadLength,
}

impl core::fmt::Display for KeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KeyError::BadBase64 => "key is not base64",
            KeyError::BadLength => "key is not 16 bytes of key and 14 of salt",
        })
    }
}

/// A 128-bit master key and its 112-bit master salt. `Debug` prints no key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; MASTER_KEY_LEN],
    salt: [u8; MASTER_SALT_LEN],
}

impl MasterKey {
    /// From raw bytes.
    pub const fn new(key: [u8; MASTER_KEY_LEN], salt: [u8; MASTER_SALT_LEN]) -> MasterKey {
        MasterKey { key, salt }
    }

    /// From raw slices, e.g. cut from the DTLS-SRTP exporter output (RFC 5764 section 4.2).
    pub fn from_slices(key: &[u8], salt: &[u8]) -> Result<MasterKey, KeyError> {
        Ok(MasterKey {
            key: key.try_into().map_err(|_| KeyError::BadLength)?,
            salt: salt.try_into().map_err(|_| KeyError::BadLength)?,
        })
    }

    /// From the SDES form of PROTOCOL.md section 3 (RFC 4568 section 6.1 key-salt without
    /// lifetime or MKI): base64 of the 16-byte key followed by the 14-byte salt.
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
        MasterKey::from_slices(key, salt)
    }

    /// The SDES form, written into `out`; the returned `&str` borrows it.
    pub fn to_sdes<'a>(&self, out: &'a mut [u8; SDES_KEY_LEN]) -> &'a str {
        let mut raw = [0u8; KEY_SALT_LEN];
        raw[..MASTER_KEY_LEN].copy_from_slice(&self.key);
        raw[MASTER_KEY_LEN..].copy_from_slice(&self.salt);
        // 30 bytes are exactly 40 base64 characters, so neither call can fail.
        let n = STANDARD.encode_slice(raw, out).unwrap_or(0);
        core::str::from_utf8(&out[..n]).unwrap_or("")
    }

    pub(crate) fn key(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.key
    }

    pub(crate) fn salt(&self) -> &[u8; MASTER_SALT_LEN] {
        &self.salt
    }
}

impl core::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterKey")
            .field("key", &format_args!("[{} bytes]", self.key.len()))
            .field("salt", &format_args!("[{} bytes]", self.salt.len()))
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
        assert_eq!(&k.key, b"YS___semctl () {");
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
        assert_eq!(
            MasterKey::from_slices(&[0; 16], &[0; 13]),
            Err(KeyError::BadLength)
        );
    }

    #[test]
    fn srtp_debug_hides_key_bytes() {
        let k = MasterKey::new([0xAB; 16], [0xCD; 14]);
        let s = format!("{k:?}");
        assert_eq!(s, "MasterKey { key: [16 bytes], salt: [14 bytes] }");
    }
}
