//! The token parser: any user and token string at any time never panics, and a minted token
//! verifies for its user only.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::token::{TokenError, TokenKey};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: Option<&'a [u8]>,
    user: &'a str,
    token: &'a str,
    now: u64,
    expiry: u64,
    cap: u8,
}

fuzz_target!(|i: Input<'_>| {
    let key = match i.secret {
        Some(s) => TokenKey::new(s),
        None => TokenKey::none(),
    };
    let _ = key.verify(i.user, i.token, i.now);
    let mut minted = String::new();
    key.mint(i.user, i.expiry, i.cap, &mut minted).unwrap();
    let r = key.verify(i.user, &minted, i.now);
    if i.expiry >= i.now {
        assert_eq!(
            r.map(|g| (g.expiry_unix_s, g.priority_cap)),
            Ok((i.expiry, i.cap))
        );
    } else {
        assert_eq!(r.err(), Some(TokenError::Expired));
    }
    if key.has_secret() && !i.user.is_empty() {
        let other = format!("{}x", i.user);
        assert!(key.verify(&other, &minted, 0).is_err());
    }
});
