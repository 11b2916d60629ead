//! Session key derivation (RFC 3711 section 4.3) with key derivation rate 0, and the
//! per-direction session state built from it.

use aes::Aes256Enc;

use super::cipher::{AesCm, Gcm, HmacSha1, SHA1_LEN};
use super::{AEAD_SALT_LEN, MasterKey, Suite};

/// Session salt length of the AES-CM suites, as the master salt (112 bits).
const SALT_LEN: usize = 14;

/// Key derivation labels (RFC 3711 section 4.3.1 and 4.3.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuth = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuth = 4,
    RtcpSalt = 5,
}

/// The AES-CM PRF of section 4.3.3, AES-128 or AES-256 as the master key is long (RFC 6188,
/// RFC 7714 section 11).
// Lives on the stack while a context is made.
#[allow(clippy::large_enum_variant)]
enum Prf {
    Aes128(AesCm),
    Aes256(AesCm<Aes256Enc>),
}

/// The AES-CM PRF of section 4.3.3 keyed with the master key.
pub(crate) struct Kdf<'a> {
    prf: Prf,
    salt: &'a [u8],
}

impl<'a> Kdf<'a> {
    pub(crate) fn new(master: &'a MasterKey) -> Kdf<'a> {
        let key = master.key();
        let prf = match <&[u8; 32]>::try_from(key) {
            Ok(k) => Prf::Aes256(AesCm::new_256(k)),
            Err(_) => {
                // A master key is 16 or 32 bytes (`MasterKey::new`).
                let mut k = [0u8; 16];
                let n = key.len().min(16);
                k[..n].copy_from_slice(&key[..n]);
                Prf::Aes128(AesCm::new(&k))
            }
        };
        Kdf {
            prf,
            salt: master.salt(),
        }
    }

    /// Fills `out` with the session key for `label`. With kdr 0, `r` is 0, so
    /// `x = key_id XOR master_salt` where `key_id = label || r` is `label << 48`; the
    /// keystream starts at `x * 2^16`. A 96-bit AEAD master salt fills the high bytes of the
    /// 112-bit x, the low two zero (RFC 7714 section 11, as libsrtp does).
    pub(crate) fn derive(&self, label: Label, out: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..self.salt.len()].copy_from_slice(self.salt);
        // label << 48 within the 112-bit x: byte 7 of its 14 big-endian bytes.
        iv[7] ^= label as u8;
        out.fill(0);
        match &self.prf {
            Prf::Aes128(prf) => prf.apply(&iv, out),
            Prf::Aes256(prf) => prf.apply(&iv, out),
        }
    }
}

/// Everything one packet kind (SRTP or SRTCP) of one direction needs per packet.
#[derive(Clone)]
pub(crate) struct SessionKeys {
    pub(crate) cipher: AesCm,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) auth: HmacSha1,
}

impl SessionKeys {
    /// Derives the three session keys from `labels` (encryption, auth, salt).
    pub(crate) fn derive(kdf: &Kdf<'_>, labels: [Label; 3]) -> SessionKeys {
        let mut key = [0u8; 16];
        kdf.derive(labels[0], &mut key);
        let mut auth = [0u8; SHA1_LEN];
        kdf.derive(labels[1], &mut auth);
        let mut salt = [0u8; SALT_LEN];
        kdf.derive(labels[2], &mut salt);
        SessionKeys {
            cipher: AesCm::new(&key),
            salt,
            auth: HmacSha1::new(&auth),
        }
    }

    /// The AES-CM counter block of section 4.1.1:
    /// `(k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)`.
    pub(crate) fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..SALT_LEN].copy_from_slice(&self.salt);
        let x = u128::from_be_bytes(iv) ^ (u128::from(ssrc) << 64) ^ (u128::from(index) << 16);
        x.to_be_bytes()
    }
}

/// Everything one packet kind (SRTP or SRTCP) of one direction needs per packet under an
/// AEAD suite: the AES-GCM key and the 96-bit session salt (RFC 7714 section 11: no
/// authentication key).
#[derive(Clone)]
pub(crate) struct GcmKeys {
    pub(crate) aead: Gcm,
    pub(crate) salt: [u8; AEAD_SALT_LEN],
}

impl GcmKeys {
    /// Derives the session key, of the suite's length, and salt from `labels` (encryption,
    /// salt).
    pub(crate) fn derive(kdf: &Kdf<'_>, suite: Suite, labels: [Label; 2]) -> GcmKeys {
        let aead = if suite == Suite::AeadAes256Gcm {
            let mut key = [0u8; 32];
            kdf.derive(labels[0], &mut key);
            Gcm::new_256(&key)
        } else {
            let mut key = [0u8; 16];
            kdf.derive(labels[0], &mut key);
            Gcm::new_128(&key)
        };
        let mut salt = [0u8; AEAD_SALT_LEN];
        kdf.derive(labels[1], &mut salt);
        GcmKeys { aead, salt }
    }

    /// The 96-bit IV of RFC 7714 section 8.1, `(00 00 || SSRC || ROC || SEQ) XOR salt`, where
    /// ROC || SEQ is the 48-bit packet index; and of section 9.1, `(00 00 || SSRC || 00 00 ||
    /// 0 || SRTCP index) XOR salt`, the same layout for a 31-bit index.
    pub(crate) fn iv(&self, ssrc: u32, index: u64) -> [u8; AEAD_SALT_LEN] {
        let mut iv = [0u8; AEAD_SALT_LEN];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..].copy_from_slice(&index.to_be_bytes()[2..]);
        for (b, s) in iv.iter_mut().zip(self.salt) {
            *b ^= s;
        }
        iv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        core::array::from_fn(|i| {
            u8::from_str_radix(core::str::from_utf8(&s[2 * i..2 * i + 2]).unwrap(), 16).unwrap()
        })
    }

    // RFC 3711 Appendix B.2 (https://www.rfc-editor.org/rfc/rfc3711#appendix-B.2), verbatim:
    //
    // B.2.  AES-CM Test Vectors
    //
    //     Keystream segment length: 1044512 octets (65282 AES blocks)
    //     Session Key:      2B7E151628AED2A6ABF7158809CF4F3C
    //     Rollover Counter: 00000000
    //     Sequence Number:  0000
    //     SSRC:             00000000
    //     Session Salt:     F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000 (already shifted)
    //     Offset:           F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000
    //
    //     Counter                            Keystream
    //
    //     F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000   E03EAD0935C95E80E166B16DD92B4EB4
    //     F0F1F2F3F4F5F6F7F8F9FAFBFCFD0001   D23513162B02D0F72A43A2FE4A5F97AB
    //     F0F1F2F3F4F5F6F7F8F9FAFBFCFD0002   41E95B3BB0A2E8DD477901E4FCA894C0
    //     ...                                ...
    //     F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF   EC8CDF7398607CB0F2D21675EA9EA1E4
    //     F0F1F2F3F4F5F6F7F8F9FAFBFCFDFF00   362B7C3C6773516318A077D7FC5073AE
    //     F0F1F2F3F4F5F6F7F8F9FAFBFCFDFF01   6A2CC3787889374FBEB4C81B17BA6C44
    //
    //    Nota Bene: this test case is contrived so that the latter part of the
    //    keystream segment coincides with the test case in Section F.5.1 of
    //    [CTR].
    #[test]
    fn srtp_rfc3711_b2_aes_cm_keystream() {
        let keys = SessionKeys {
            cipher: AesCm::new(&hex("2B7E151628AED2A6ABF7158809CF4F3C")),
            salt: hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"),
            auth: HmacSha1::new(&[0; 20]),
        };
        let iv = keys.iv(0x0000_0000, 0);
        assert_eq!(iv, hex::<16>("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
        let mut ks = vec![0u8; 0xFF02 * 16];
        keys.cipher.apply(&iv, &mut ks);
        let block = |i: usize| &ks[i * 16..i * 16 + 16];
        assert_eq!(block(0), hex::<16>("E03EAD0935C95E80E166B16DD92B4EB4"));
        assert_eq!(block(1), hex::<16>("D23513162B02D0F72A43A2FE4A5F97AB"));
        assert_eq!(block(2), hex::<16>("41E95B3BB0A2E8DD477901E4FCA894C0"));
        assert_eq!(block(0xFEFF), hex::<16>("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xFF00), hex::<16>("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xFF01), hex::<16>("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    // RFC 3711 Appendix B.3 (https://www.rfc-editor.org/rfc/rfc3711#appendix-B.3), verbatim
    // from its vectors on:
    //
    //    The inputs to the key derivation function are the 16 octet master key
    //    and the 14 octet master salt:
    //
    //       master key:  E1F97A0D3E018BE0D64FA32C06DE4139
    //       master salt: 0EC675AD498AFEEBB6960B3AABE6
    //
    //    We first show how the cipher key is generated.  The input block for
    //    AES-CM is generated by exclusive-oring the master salt with the
    //    concatenation of the encryption key label 0x00 with (index DIV kdr),
    //    then padding on the right with two null octets (which implements the
    //    multiply-by-2^16 operation, see Section 4.3.3).  The resulting value
    //    is then AES-CM- encrypted using the master key to get the cipher key.
    //
    //       index DIV kdr:                 000000000000
    //       label:                       00
    //       master salt:   0EC675AD498AFEEBB6960B3AABE6
    //       -----------------------------------------------
    //       xor:           0EC675AD498AFEEBB6960B3AABE6     (x, PRF input)
    //
    //       x*2^16:        0EC675AD498AFEEBB6960B3AABE60000 (AES-CM input)
    //
    //       cipher key:    C61E7A93744F39EE10734AFE3FF7A087 (AES-CM output)
    //
    //
    //    Next, we show how the cipher salt is generated.  The input block for
    //    AES-CM is generated by exclusive-oring the master salt with the
    //    concatenation of the encryption salt label.  That value is padded and
    //    encrypted as above.
    //
    //       index DIV kdr:                 000000000000
    //       label:                       02
    //       master salt:   0EC675AD498AFEEBB6960B3AABE6
    //
    //       ----------------------------------------------
    //       xor:           0EC675AD498AFEE9B6960B3AABE6     (x, PRF input)
    //
    //       x*2^16:        0EC675AD498AFEE9B6960B3AABE60000 (AES-CM input)
    //
    //                      30CBBC08863D8C85D49DB34A9AE17AC6 (AES-CM ouptut)
    //
    //       cipher salt:   30CBBC08863D8C85D49DB34A9AE1
    //
    //    We now show how the auth key is generated.  The input block for AES-
    //    CM is generated as above, but using the authentication key label.
    //
    //       index DIV kdr:                   000000000000
    //       label:                         01
    //       master salt:     0EC675AD498AFEEBB6960B3AABE6
    //       -----------------------------------------------
    //       xor:             0EC675AD498AFEEAB6960B3AABE6     (x, PRF input)
    //
    //       x*2^16:          0EC675AD498AFEEAB6960B3AABE60000 (AES-CM input)
    //
    //    Below, the auth key is shown on the left, while the corresponding AES
    //    input blocks are shown on the right.
    //
    //    auth key                           AES input blocks
    //    CEBE321F6FF7716B6FD4AB49AF256A15   0EC675AD498AFEEAB6960B3AABE60000
    //    6D38BAA48F0A0ACF3C34E2359E6CDBCE   0EC675AD498AFEEAB6960B3AABE60001
    //    E049646C43D9327AD175578EF7227098   0EC675AD498AFEEAB6960B3AABE60002
    //    6371C10C9A369AC2F94A8C5FBCDDDC25   0EC675AD498AFEEAB6960B3AABE60003
    //    6D6E919A48B610EF17C2041E47403576   0EC675AD498AFEEAB6960B3AABE60004
    //    6B68642C59BBFC2F34DB60DBDFB2       0EC675AD498AFEEAB6960B3AABE60005
    //
    // (HMAC-SHA1 keeps the first 160 bits of the 94-octet auth key.)
    #[test]
    fn srtp_rfc3711_b3_key_derivation() {
        let master = MasterKey::new(
            Suite::AesCm128HmacSha1_80,
            &hex::<16>("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &hex::<14>("0EC675AD498AFEEBB6960B3AABE6"),
        )
        .unwrap();
        let kdf = Kdf::new(&master);
        let mut key = [0u8; 16];
        kdf.derive(Label::RtpEncryption, &mut key);
        assert_eq!(key, hex::<16>("C61E7A93744F39EE10734AFE3FF7A087"));
        let mut salt = [0u8; 14];
        kdf.derive(Label::RtpSalt, &mut salt);
        assert_eq!(salt, hex::<14>("30CBBC08863D8C85D49DB34A9AE1"));
        let mut auth = [0u8; 94];
        kdf.derive(Label::RtpAuth, &mut auth);
        let expect: [u8; 94] = hex(
            "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2",
        );
        assert_eq!(auth, expect);
    }
}
