//! Tokens as PROTOCOL.md section 1 defines them:
//! `<expiry_unix_s>.<priority_cap>.<lowercase hex HMAC-SHA1 over "user_id.expiry_unix_s.priority_cap">`.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    d.as_secs() * 1000 + u64::from(d.subsec_millis())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// The lowercase hex HMAC-SHA1 of `message` keyed with `secret`.
pub fn hmac_sha1_hex(secret: &str, message: &str) -> String {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// A token for `user_id` expiring at `expiry_unix_s` with `priority_cap`, MAC keyed with `secret`.
pub fn mint_at(secret: &str, user_id: &str, expiry_unix_s: u64, priority_cap: u8) -> String {
    let mac = hmac_sha1_hex(secret, &format!("{user_id}.{expiry_unix_s}.{priority_cap}"));
    format!("{expiry_unix_s}.{priority_cap}.{mac}")
}

/// A token for `user_id` valid for `ttl_s` seconds from now.
pub fn mint(secret: &str, user_id: &str, ttl_s: u64, priority_cap: u8) -> String {
    mint_at(secret, user_id, now_unix() + ttl_s, priority_cap)
}

/// A parsed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub expiry_unix_s: u64,
    pub priority_cap: u8,
    pub mac_hex: String,
}

/// Parses a token strictly by the grammar (decimal expiry, decimal cap 0..=255, 40 lowercase hex
/// digits). `Err` says what is wrong.
pub fn parse(token: &str) -> Result<Parsed, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [expiry, cap, mac] = parts.as_slice() else {
        return Err(format!(
            "expected 3 dot-separated parts, got {}",
            parts.len()
        ));
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(expiry) {
        return Err(format!("expiry {expiry:?} is not a decimal number"));
    }
    if !digits(cap) {
        return Err(format!("priority cap {cap:?} is not a decimal number"));
    }
    let expiry_unix_s = expiry
        .parse()
        .map_err(|e| format!("expiry {expiry:?}: {e}"))?;
    let priority_cap = cap
        .parse()
        .map_err(|e| format!("priority cap {cap:?}: {e}"))?;
    if mac.len() != 40 || !mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("MAC {mac:?} is not 40 lowercase hex digits"));
    }
    Ok(Parsed {
        expiry_unix_s,
        priority_cap,
        mac_hex: (*mac).to_owned(),
    })
}

/// Whether `token` is well formed and its MAC is right for `user_id` under `secret`.
pub fn verify(secret: &str, user_id: &str, token: &str) -> Result<Parsed, String> {
    let parsed = parse(token)?;
    let want = hmac_sha1_hex(
        secret,
        &format!("{user_id}.{}.{}", parsed.expiry_unix_s, parsed.priority_cap),
    );
    if want != parsed.mac_hex {
        return Err(format!(
            "MAC {} is not HMAC-SHA1(secret, \"{user_id}.{}.{}\") = {want}",
            parsed.mac_hex, parsed.expiry_unix_s, parsed.priority_cap
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2202_vector() {
        // RFC 2202 test case 2.
        assert_eq!(
            hmac_sha1_hex("Jefe", "what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn mint_then_verify() {
        let t = mint_at("s3cret", "alice", 2_000_000_000, 7);
        assert!(t.starts_with("2000000000.7."), "{t}");
        let p = verify("s3cret", "alice", &t).expect("own token verifies");
        assert_eq!(p.priority_cap, 7);
        assert!(verify("s3cret", "bob", &t).is_err());
        assert!(verify("other", "alice", &t).is_err());
        assert!(parse("1.2").is_err());
        assert!(parse("1.256.0000000000000000000000000000000000000000").is_err());
    }
}
