//! The camera side's H.264 parser and packetizer (core `wire::h264`): any bytes as an access
//! unit of length-prefixed NAL units, cut for any payload limit. No panic; the walk stops at
//! the first bad length; every payload fits the limit; and the payloads, put back together
//! as a receiver does (RFC 6184 sections 5.6 and 5.8: a single NAL unit, or FU-A fragments
//! from S to E), are the NAL units exactly, in order.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::wire::h264::{FU_A_HEADER_LEN, Fragments, Nals, nal_type};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    au: &'a [u8],
    limit: u16,
}

fuzz_target!(|i: Input<'_>| {
    let limit = usize::from(i.limit % 1500);
    let checked = Nals::check(i.au);
    let mut nals = Vec::new();
    let mut failed = false;
    for n in Nals::new(i.au) {
        assert!(!failed, "the walk goes on after an error");
        match n {
            Ok(nal) => {
                assert!(!nal.is_empty());
                nals.push(nal);
            }
            Err(_) => failed = true,
        }
    }
    assert_eq!(checked.is_ok(), !failed && !nals.is_empty());
    for nal in nals {
        let frags: Vec<_> = Fragments::new(nal, limit).collect();
        if limit <= FU_A_HEADER_LEN {
            assert!(frags.is_empty());
            continue;
        }
        assert!(frags.iter().all(|f| f.len() <= limit && !f.is_empty()));
        assert_eq!(frags.iter().filter(|f| f.last).count(), 1);
        assert!(frags.last().is_some_and(|f| f.last));
        let mut out = vec![0u8; limit];
        let mut rebuilt = Vec::new();
        for (k, f) in frags.iter().enumerate() {
            let n = f.write(&mut out).expect("fits the limit");
            let p = &out[..n];
            match f.header {
                None => {
                    assert_eq!(frags.len(), 1);
                    rebuilt.extend_from_slice(p);
                }
                Some(_) => {
                    assert_eq!(p[0] & 0x1f, nal_type::FU_A);
                    let (s, e) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0);
                    assert_eq!((s, e), (k == 0, k == frags.len() - 1));
                    if s {
                        rebuilt.push((p[0] & 0xe0) | (p[1] & 0x1f));
                    }
                    rebuilt.extend_from_slice(&p[FU_A_HEADER_LEN..]);
                }
            }
        }
        assert_eq!(rebuilt, nal);
    }
});
