//! Signed identity tokens (PROTOCOL.md section 1, "Tokens"):
//! `<expiry_unix_s>.<priority_cap>.<lowercase hex HMAC-SHA1 over "user_id.expiry.cap">`.

use core::fmt::{self, Write};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::config::MAX_TOKEN_LEN;

type HmacSha1 = Hmac<Sha1>;

/// Length of the hex MAC in a token.
const MAC_HEX_LEN: usize = 40;

/// Why a token was refused. All of them are error 1001 on the wire; the variants exist for
/// logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not `<digits>.<digits>.<40 lowercase hex>`, or a number out of range.
    Malformed,
    /// The expiry is before now.
    Expired,
    /// The MAC does not match.
    BadMac,
}

/// The secret that signs tokens, with its HMAC key schedule done once. `None` inside means
/// no secret is configured: well-formed, unexpired tokens are accepted without a MAC check
/// (the daemon allows that only on loopback).
#[derive(Clone)]
pub struct TokenKey(Option<HmacSha1>);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "TokenKey(secret)"
        } else {
            "TokenKey(none)"
        })
    }
}

/// What a valid token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Expiry, seconds since the Unix epoch.
    pub expiry_unix_s: u64,
    /// Highest priority the session may use.
    pub priority_cap: u8,
}

impl TokenKey {
    /// A key from the UTF-8 bytes of the secret.
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        TokenKey(HmacSha1::new_from_slice(secret).ok())
    }

    /// No secret: MACs are not checked.
    pub const fn none() -> Self {
        TokenKey(None)
    }

    /// Whether a secret is configured.
    pub fn has_secret(&self) -> bool {
        self.0.is_some()
    }

    /// Checks `token` for `user_id` at `now_unix_s`.
    pub fn verify(&self, user_id: &str, token: &str, now_unix_s: u64) -> Result<Grant, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.splitn(3, '.');
        let expiry_s = parts.next().ok_or(TokenError::Malformed)?;
        let cap_s = parts.next().ok_or(TokenError::Malformed)?;
        let mac_s = parts.next().ok_or(TokenError::Malformed)?;
        let expiry_unix_s = parse_decimal(expiry_s).ok_or(TokenError::Malformed)?;
        let cap = parse_decimal(cap_s).ok_or(TokenError::Malformed)?;
        let priority_cap = u8::try_from(cap).map_err(|_| TokenError::Malformed)?;
        let mut given = [0u8; MAC_HEX_LEN / 2];
        decode_lower_hex(mac_s, &mut given).ok_or(TokenError::Malformed)?;
        if let Some(key) = &self.0 {
            let expected = mac(key, user_id, expiry_s, cap_s);
            if !bool::from(expected.ct_eq(&given)) {
                return Err(TokenError::BadMac);
            }
        }
        if expiry_unix_s < now_unix_s {
            return Err(TokenError::Expired);
        }
        Ok(Grant {
            expiry_unix_s,
            priority_cap,
        })
    }

    /// Writes the token for `user_id` into `out` (the `livechatd token` subcommand). Without
    /// a secret the MAC is computed with an empty key, which a server without a secret accepts.
    pub fn mint<W: Write>(
        &self,
        user_id: &str,
        expiry_unix_s: u64,
        priority_cap: u8,
        out: &mut W,
    ) -> fmt::Result {
        let mut expiry = heapless::String::<20>::new();
        write!(expiry, "{expiry_unix_s}")?;
        let mut cap = heapless::String::<3>::new();
        write!(cap, "{priority_cap}")?;
        let key = match &self.0 {
            Some(k) => k.clone(),
            None => HmacSha1::new_from_slice(b"").map_err(|_| fmt::Error)?,
        };
        let tag = mac(&key, user_id, &expiry, &cap);
        write!(out, "{expiry}.{cap}.")?;
        for b in tag {
            write!(out, "{b:02x}")?;
        }
        Ok(())
    }
}

fn mac(key: &HmacSha1, user_id: &str, expiry: &str, cap: &str) -> [u8; 20] {
    let mut m = key.clone();
    m.update(user_id.as_bytes());
    m.update(b".");
    m.update(expiry.as_bytes());
    m.update(b".");
    m.update(cap.as_bytes());
    m.finalize().into_bytes().into()
}

/// 1 to 20 ASCII digits that fit a u64.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn decode_lower_hex(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (nib(pair[0])? << 4) | nib(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mint(key: &TokenKey, user: &str, exp: u64, cap: u8) -> String {
        let mut s = String::new();
        key.mint(user, exp, cap, &mut s).unwrap();
        s
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA1(key="secret", "alice.2000000000.5"), computed independently with
        // `printf 'alice.2000000000.5' | openssl dgst -sha1 -hmac secret`.
        let key = TokenKey::new(b"secret");
        let t = mint(&key, "alice", 2_000_000_000, 5);
        assert_eq!(t, "2000000000.5.6e920e2ec2208ab208c592bbda3800d000f1785d");
        assert_eq!(
            key.verify("alice", &t, 1_999_999_999),
            Ok(Grant {
                expiry_unix_s: 2_000_000_000,
                priority_cap: 5
            })
        );
    }

    #[test]
    fn refuses_forged_expired_and_malformed() {
        let key = TokenKey::new(b"secret");
        let t = mint(&key, "alice", 1000, 3);
        assert_eq!(key.verify("alice", &t, 1000).map(|g| g.priority_cap), Ok(3));
        assert_eq!(key.verify("alice", &t, 1001), Err(TokenError::Expired));
        assert_eq!(key.verify("bob", &t, 10), Err(TokenError::BadMac));
        assert_eq!(
            TokenKey::new(b"other").verify("alice", &t, 10),
            Err(TokenError::BadMac)
        );
        let upper = t.to_uppercase();
        assert_eq!(key.verify("alice", &upper, 10), Err(TokenError::Malformed));
        for bad in ["", "1.2", "1.2.3", "x.0.", "1.256.", "1.-1.", "1.0.zz"] {
            let tok = if bad.ends_with('.') {
                format!("{bad}{}", "0".repeat(40))
            } else {
                bad.to_string()
            };
            assert_eq!(
                key.verify("alice", &tok, 0),
                Err(TokenError::Malformed),
                "{tok}"
            );
        }
    }

    #[test]
    fn without_secret_checks_shape_and_expiry_only() {
        let none = TokenKey::none();
        let t = format!("2000000000.7.{}", "ab".repeat(20));
        assert_eq!(none.verify("x", &t, 0).map(|g| g.priority_cap), Ok(7));
        assert_eq!(
            none.verify("x", &t, 2_000_000_001),
            Err(TokenError::Expired)
        );
        assert_eq!(
            none.verify("x", "2000000000.7.abc", 0),
            Err(TokenError::Malformed)
        );
        let minted = mint(&none, "x", 10, 0);
        assert_eq!(none.verify("x", &minted, 0).map(|g| g.priority_cap), Ok(0));
    }
}
