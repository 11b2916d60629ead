//! The transforms, with their per-key work done once: AES-CM (RFC 3711 section 4.1.1)
//! from an expanded AES key, HMAC-SHA1 (section 4.2) from the SHA-1 states after the
//! keyed ipad and opad blocks, so a packet costs its keystream blocks and one SHA-1
//! compression per 64 bytes of authenticated data, plus one for the outer hash; and AES-GCM
//! (RFC 7714, over NIST SP 800-38D) from an expanded AES key and its GHASH key.

use aes::cipher::consts::{U12, U16};
use aes::cipher::{BlockCipherEncrypt, BlockSizeUser, KeyInit};
use aes::{Aes128Enc, Aes256Enc};
use aes_gcm::{AeadInOut, AesGcm};
use sha1::block_api::compress;

use super::AEAD_TAG_LEN;

/// AES block size, and the keystream granule.
const BLOCK: usize = 16;
/// Keystream blocks generated per batch: 256 bytes, enough for a typical voice packet in one
/// call so the cipher can pipeline (AES-NI runs 8 blocks in parallel).
const BATCH: usize = 16;
/// SHA-1 block size.
const SHA1_BLOCK: usize = 64;
/// SHA-1 output size.
pub(crate) const SHA1_LEN: usize = 20;
/// SHA-1 initial state (FIPS 180-4 section 5.3.1).
const SHA1_H0: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// AES-CM under one key: the expanded encryption key schedule (AES-128 for the session keys,
/// AES-256 too for the key derivation of a 256-bit master key).
#[derive(Clone)]
pub(crate) struct AesCm<C = Aes128Enc> {
    aes: C,
}

impl AesCm<Aes128Enc> {
    pub(crate) fn new(key: &[u8; 16]) -> AesCm {
        AesCm {
            aes: Aes128Enc::new(&(*key).into()),
        }
    }
}

impl AesCm<Aes256Enc> {
    pub(crate) fn new_256(key: &[u8; 32]) -> AesCm<Aes256Enc> {
        AesCm {
            aes: Aes256Enc::new(&(*key).into()),
        }
    }
}

impl<C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>> AesCm<C> {
    /// XORs `data` with the keystream starting at counter block `iv` (whose low 16 bits are
    /// the block counter, zero here). `data` is at most 2^16 blocks, as RFC 3711 allows.
    pub(crate) fn apply(&self, iv: &[u8; BLOCK], data: &mut [u8]) {
        let iv = u128::from_be_bytes(*iv);
        for (i, chunk) in data.chunks_mut(BLOCK * BATCH).enumerate() {
            let n = chunk.len().div_ceil(BLOCK);
            // Counter blocks for the whole batch, even if fewer are used: that is cheaper than
            // zeroing the array first. The counter never carries out of its 16 bits: packets
            // are < 2^16 blocks.
            let first = iv.wrapping_add((i * BATCH) as u128);
            let mut ks: [aes::Block; BATCH] =
                core::array::from_fn(|j| first.wrapping_add(j as u128).to_be_bytes().into());
            self.aes.encrypt_blocks(&mut ks[..n]);
            let (full, tail) = chunk.as_chunks_mut::<BLOCK>();
            for (d, k) in full.iter_mut().zip(&ks) {
                let x = u128::from_ne_bytes(*d) ^ u128::from_ne_bytes(k.0);
                *d = x.to_ne_bytes();
            }
            if let Some(k) = ks.get(full.len()) {
                for (d, k) in tail.iter_mut().zip(k.iter()) {
                    *d ^= k;
                }
            }
        }
    }
}

/// The authentication tag of an AEAD suite did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagMismatch;

/// AES-GCM with a 96-bit IV and a 128-bit tag (RFC 7714) under one key.
#[derive(Clone)]
// No allocator to box into: a key is held by value, sized for AES-256.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Gcm {
    Aes128(AesGcm<Aes128Enc, U12>),
    Aes256(AesGcm<Aes256Enc, U12>),
}

impl Gcm {
    pub(crate) fn new_128(key: &[u8; 16]) -> Gcm {
        Gcm::Aes128(AesGcm::from(Aes128Enc::new(&(*key).into())))
    }

    pub(crate) fn new_256(key: &[u8; 32]) -> Gcm {
        Gcm::Aes256(AesGcm::from(Aes256Enc::new(&(*key).into())))
    }

    /// Encrypts `data` in place under `iv` with `aad` authenticated; returns the tag.
    pub(crate) fn seal(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; AEAD_TAG_LEN] {
        let nonce = (*iv).into();
        // The only failure is a plaintext or AAD over 2^36 bytes, not a datagram.
        let tag = match self {
            Gcm::Aes128(c) => c.encrypt_inout_detached(&nonce, aad, data.into()),
            Gcm::Aes256(c) => c.encrypt_inout_detached(&nonce, aad, data.into()),
        };
        tag.map(Into::into).unwrap_or_default()
    }

    /// Authenticates `aad` and the ciphertext `data` against `tag` and, if it matches,
    /// decrypts `data` in place; on a mismatch `data` is unchanged.
    pub(crate) fn open(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), TagMismatch> {
        let nonce = (*iv).into();
        let tag = (*tag).into();
        match self {
            Gcm::Aes128(c) => c.decrypt_inout_detached(&nonce, aad, data.into(), &tag),
            Gcm::Aes256(c) => c.decrypt_inout_detached(&nonce, aad, data.into(), &tag),
        }
        .map_err(|_| TagMismatch)
    }
}

/// HMAC-SHA1 (RFC 2104) under one key: the SHA-1 states after the ipad and opad blocks.
#[derive(Clone)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl HmacSha1 {
    /// Keys of at most one SHA-1 block, as SRTP's 160-bit auth keys are.
    pub(crate) fn new(key: &[u8; SHA1_LEN]) -> HmacSha1 {
        let mut ipad = [0x36u8; SHA1_BLOCK];
        let mut opad = [0x5cu8; SHA1_BLOCK];
        for (i, k) in key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let mut inner = SHA1_H0;
        compress(&mut inner, &[ipad]);
        let mut outer = SHA1_H0;
        compress(&mut outer, &[opad]);
        HmacSha1 { inner, outer }
    }

    /// HMAC of `data` followed by `tail` (the ROC for SRTP, empty for SRTCP). Whole blocks
    /// are hashed straight from `data`; only the last partial block and padding are copied.
    pub(crate) fn mac(&self, data: &[u8], tail: &[u8]) -> [u8; SHA1_LEN] {
        debug_assert!(tail.len() <= 8);
        let mut state = self.inner;
        let (blocks, rest) = data.as_chunks::<SHA1_BLOCK>();
        compress(&mut state, blocks);

        // The rest (< 64 bytes), the tail (<= 8), 0x80 and the 64-bit bit length fit in two
        // blocks.
        let mut last = [[0u8; SHA1_BLOCK]; 2];
        let n = rest.len() + tail.len();
        {
            let flat = last.as_flattened_mut();
            flat[..rest.len()].copy_from_slice(rest);
            flat[rest.len()..n].copy_from_slice(tail);
            flat[n] = 0x80;
        }
        let used = if n + 9 <= SHA1_BLOCK { 1 } else { 2 };
        let bits = ((SHA1_BLOCK + data.len() + tail.len()) as u64) * 8;
        let flat = last.as_flattened_mut();
        flat[used * SHA1_BLOCK - 8..used * SHA1_BLOCK].copy_from_slice(&bits.to_be_bytes());
        compress(&mut state, &last[..used]);

        let mut block = [0u8; SHA1_BLOCK];
        for (out, word) in block.as_chunks_mut::<4>().0.iter_mut().zip(state) {
            *out = word.to_be_bytes();
        }
        block[SHA1_LEN] = 0x80;
        block[SHA1_BLOCK - 8..]
            .copy_from_slice(&(((SHA1_BLOCK + SHA1_LEN) as u64) * 8).to_be_bytes());
        let mut state = self.outer;
        compress(&mut state, &[block]);

        let mut out = [0u8; SHA1_LEN];
        for (out, word) in out.as_chunks_mut::<4>().0.iter_mut().zip(state) {
            *out = word.to_be_bytes();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;

    #[test]
    fn srtp_hmac_matches_the_hmac_crate() {
        let key: [u8; 20] = core::array::from_fn(|i| (i * 7 + 1) as u8);
        let ours = HmacSha1::new(&key);
        let data: [u8; 300] = core::array::from_fn(|i| (i * 13) as u8);
        for len in 0..data.len() {
            for tail_len in [0, 4] {
                let tail = &[0xde, 0xad, 0xbe, 0xef][..tail_len];
                let mut theirs = hmac::Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
                theirs.update(&data[..len]);
                theirs.update(tail);
                let expect = theirs.finalize().into_bytes();
                assert_eq!(ours.mac(&data[..len], tail)[..], expect[..], "len {len}");
            }
        }
    }

    #[test]
    fn srtp_aes_cm_matches_block_by_block() {
        let cm = AesCm::new(&[7; 16]);
        let iv: [u8; 16] = core::array::from_fn(|i| if i < 14 { i as u8 * 17 } else { 0 });
        for len in [0, 1, 15, 16, 17, 160, 255, 256, 257, 600] {
            let mut data = [0u8; 600];
            cm.apply(&iv, &mut data[..len]);
            for (i, chunk) in data[..len].chunks(16).enumerate() {
                let mut block: aes::Block =
                    (u128::from_be_bytes(iv) + i as u128).to_be_bytes().into();
                cm.aes.encrypt_block(&mut block);
                assert_eq!(chunk, &block[..chunk.len()], "len {len} block {i}");
            }
            assert!(data[len..].iter().all(|&b| b == 0));
        }
    }
}
