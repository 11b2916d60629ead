//! Tokens (PROTOCOL.md section 1): `<expiry>.<priority_cap>.<hex HMAC-SHA1>`, minted with
//! the core's [`TokenKey`] exactly as `livechatd token` does.

use std::time::{SystemTime, UNIX_EPOCH};

use livechat_core::token::TokenKey;

/// Default token lifetime: one hour.
pub const DEFAULT_TTL_S: u64 = 3600;

/// A token for `user_id` valid `ttl_s` seconds from now with `priority_cap`, its MAC keyed
/// with `secret`; with `None` the MAC uses an empty key, which only a daemon without a secret
/// (on loopback) accepts.
pub fn mint(secret: Option<&str>, user_id: &str, ttl_s: u64, priority_cap: u8) -> String {
    let key = match secret {
        Some(s) => TokenKey::new(s.as_bytes()),
        None => TokenKey::none(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = key.mint(user_id, now.saturating_add(ttl_s), priority_cap, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify() {
        let t = mint(Some("s3cret"), "alice", 60, 7);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let g = TokenKey::new(b"s3cret")
            .verify("alice", &t, now)
            .expect("verifies");
        assert_eq!(g.priority_cap, 7);
        assert!(TokenKey::new(b"other").verify("alice", &t, now).is_err());
        assert!(
            TokenKey::none()
                .verify("alice", &mint(None, "alice", 60, 0), now)
                .is_ok()
        );
    }
}
