//! Property tests of `livechat_core::srtp`: protect then unprotect is the identity over any
//! payload length, header shape and sequence path (wrap, gaps, reordering within the
//! window), any single flipped bit of a protected packet is refused, and the calls that take
//! a checked `wire` view give the same bytes and results as the calls that take a slice.
#![allow(clippy::unwrap_used)]

use livechat_core::srtp::{Context, Error, MasterKey, Suite};
use livechat_core::wire::{rtcp, rtp};
use proptest::prelude::*;

/// A suite and a random master key of its lengths.
fn suite_and_key() -> impl Strategy<Value = (Suite, MasterKey)> {
    (
        prop_oneof![
            Just(Suite::AesCm128HmacSha1_80),
            Just(Suite::AesCm128HmacSha1_32),
            Just(Suite::AeadAes128Gcm),
            Just(Suite::AeadAes256Gcm),
        ],
        any::<[u8; 32]>(),
        any::<[u8; 14]>(),
    )
        .prop_map(|(suite, k, s)| {
            let key = MasterKey::new(suite, &k[..suite.key_len()], &s[..suite.salt_len()]);
            (suite, key.unwrap())
        })
}

/// An RTP packet with `csrcs` CSRCs, an optional extension and `payload`.
fn rtp(seq: u16, ssrc: u32, csrcs: u8, ext: Option<u8>, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80 | csrcs | if ext.is_some() { 0x10 } else { 0 }, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(std::iter::repeat_n(0xCC, 4 * usize::from(csrcs)));
    if let Some(words) = ext {
        p.extend_from_slice(&[0xBE, 0xDE, 0, words]);
        p.extend(std::iter::repeat_n(0xEE, 4 * usize::from(words)));
    }
    p.extend_from_slice(payload);
    p
}

/// A sequence path: a start and steps (mostly 1, some gaps of up to 300), then a delivery
/// order that keeps the first packet first and delays packets by up to 100 places (so by
/// less than 2^15 indices, inside what the index estimation can place).
fn path() -> impl Strategy<Value = (u16, Vec<u16>, Vec<(usize, usize)>)> {
    (
        any::<u16>(),
        prop::collection::vec(
            prop_oneof![8 => Just(1u16), 1 => 2u16..=3, 1 => 4u16..=300],
            1..200,
        ),
        prop::collection::vec((1usize..200, 0usize..=100), 0..20),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn srtp_round_trip_any_length_and_path(
        (suite, key) in suite_and_key(),
        ssrc in any::<u32>(),
        csrcs in 0u8..=15,
        ext in prop::option::of(0u8..=3),
        payload in prop::collection::vec(any::<u8>(), 0..1200),
        (start, steps, moves) in path(),
    ) {
        let mut tx = Context::new(suite, &key);
        let mut rx = Context::new(suite, &key);
        let mut index = u64::from(start);
        let mut packets = Vec::new();
        for (i, step) in std::iter::once(0).chain(steps).enumerate() {
            index += u64::from(step);
            let seq = index as u16;
            let body = &payload[..payload.len().saturating_sub(i)];
            let plain = rtp(seq, ssrc, csrcs, ext, body);
            let mut buf = plain.clone();
            buf.resize(plain.len() + suite.rtp_tag_len(), 0);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            prop_assert_eq!(n, buf.len());
            packets.push((index, plain, buf));
        }
        let mut order: Vec<usize> = (0..packets.len()).collect();
        for (from, by) in moves {
            if from < order.len() {
                let p = order.remove(from);
                order.insert((from + by).min(order.len()), p);
            }
        }
        // Accepted within the 128-packet replay window, IndexTooOld behind it.
        let mut highest = 0;
        for i in order {
            let (index, plain, protected) = &packets[i];
            let mut buf = protected.clone();
            let n = rx.unprotect_rtp(&mut buf);
            if index + 128 <= highest {
                prop_assert_eq!(n, Err(Error::IndexTooOld), "packet {}", i);
                continue;
            }
            prop_assert_eq!(n, Ok(plain.len()), "packet {}", i);
            prop_assert_eq!(&buf[..plain.len()], &plain[..]);
            highest = highest.max(*index);
        }
    }

    #[test]
    fn srtp_rtcp_round_trip_any_length(
        (suite, key) in suite_and_key(),
        ssrc in any::<u32>(),
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..20),
    ) {
        let mut tx = Context::new(suite, &key);
        let mut rx = Context::new(suite, &key);
        for body in bodies {
            let mut plain = vec![0x80, 201, 0, 1];
            plain.extend_from_slice(&ssrc.to_be_bytes());
            plain.extend_from_slice(&body);
            let mut buf = plain.clone();
            buf.resize(plain.len() + 4 + suite.rtcp_tag_len(), 0);
            prop_assert_eq!(tx.protect_rtcp(&mut buf, plain.len()), Ok(buf.len()));
            prop_assert_eq!(rx.unprotect_rtcp(&mut buf), Ok(plain.len()));
            prop_assert_eq!(&buf[..plain.len()], &plain[..]);
        }
    }

    #[test]
    fn srtp_any_flipped_bit_is_refused(
        (suite, key) in suite_and_key(),
        rtcp in any::<bool>(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
        history in 0u16..5,
        bit in any::<prop::sample::Index>(),
    ) {
        let mut tx = Context::new(suite, &key);
        let mut rx = Context::new(suite, &key);
        // A few good packets first, so the receiver has state.
        for seq in 0..=history {
            let plain = if rtcp {
                [&[0x80, 200, 0, 0, 0, 0, 0, 7][..], &payload].concat()
            } else {
                rtp(seq, 7, 1, Some(1), &payload)
            };
            let mut buf = plain.clone();
            buf.resize(plain.len() + 4 + suite.rtcp_tag_len(), 0);
            let n = if rtcp {
                tx.protect_rtcp(&mut buf, plain.len())
            } else {
                tx.protect_rtp(&mut buf, plain.len())
            };
            buf.truncate(n.unwrap());
            if seq < history {
                let ok = if rtcp { rx.unprotect_rtcp(&mut buf) } else { rx.unprotect_rtp(&mut buf) };
                prop_assert_eq!(ok, Ok(plain.len()));
                continue;
            }
            let bit = bit.index(buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            let tampered = buf.clone();
            let got = if rtcp { rx.unprotect_rtcp(&mut buf) } else { rx.unprotect_rtp(&mut buf) };
            prop_assert!(got.is_err(), "bit {} accepted", bit);
            prop_assert_eq!(&buf, &tampered, "buffer changed on error");
            // The genuine packet still passes: the forgery changed no state.
            buf[bit / 8] ^= 1 << (bit % 8);
            let ok = if rtcp { rx.unprotect_rtcp(&mut buf) } else { rx.unprotect_rtp(&mut buf) };
            prop_assert_eq!(ok, Ok(plain.len()));
        }
    }

    #[test]
    fn srtp_view_calls_match_slice_calls(
        (suite, key) in suite_and_key(),
        ssrc in any::<u32>(),
        csrcs in 0u8..=15,
        ext in prop::option::of(0u8..=3),
        payload in prop::collection::vec(any::<u8>(), 0..300),
        steps in prop::collection::vec(prop_oneof![4 => Just(1u16), 1 => 2u16..=3], 1..40),
        tamper in prop::option::of(any::<prop::sample::Index>()),
    ) {
        // Two senders and two receivers with the same key: one pair through slices, one
        // through the views.
        let (mut tx_slice, mut tx_view) = (Context::new(suite, &key), Context::new(suite, &key));
        let (mut rx_slice, mut rx_view) = (Context::new(suite, &key), Context::new(suite, &key));
        let mut seq = 0u16;
        for (i, step) in steps.into_iter().enumerate() {
            seq = seq.wrapping_add(step);
            let plain = rtp(seq, ssrc, csrcs, ext, &payload[..payload.len().saturating_sub(i)]);
            let mut by_slice = plain.clone();
            by_slice.resize(plain.len() + suite.rtp_tag_len(), 0);
            let n = tx_slice.protect_rtp(&mut by_slice, plain.len());
            let view = rtp::Packet::new_checked_header(&plain[..]).unwrap();
            let mut by_view = vec![0u8; plain.len() + suite.rtp_tag_len()];
            let m = tx_view.protect_rtp_into(&view, &mut by_view);
            prop_assert_eq!(n, m);
            prop_assert_eq!(&by_slice, &by_view);
            // `protect_rtp_into` leaves the plaintext as it was.
            prop_assert_eq!(view.as_bytes(), &plain[..]);

            if let (Some(at), true) = (tamper, i % 3 == 2) {
                let at = at.index(by_slice.len());
                by_slice[at] ^= 0x01;
                by_view[at] ^= 0x01;
            }
            let n = rx_slice.unprotect_rtp(&mut by_slice);
            let m = match rtp::Packet::new_checked_header(&mut by_view[..]) {
                Ok(packet) => rx_view
                    .unprotect_rtp_packet(packet)
                    .map(|clear| clear.as_bytes().len()),
                // A flipped header bit the view refuses is what `unprotect_rtp` calls
                // malformed.
                Err(_) => Err(Error::Malformed),
            };
            prop_assert_eq!(n, m);
            prop_assert_eq!(&by_slice, &by_view);
        }

        // SRTCP: the clear-header call agrees with the slice call.
        let mut plain = [0u8; 64];
        let n = rtcp::emit_receiver_report(ssrc, &[], &mut plain).unwrap();
        let mut by_slice = plain;
        let len = tx_slice.protect_rtcp(&mut by_slice, n).unwrap();
        let mut by_view = by_slice;
        prop_assert_eq!(rx_slice.unprotect_rtcp(&mut by_slice[..len]), Ok(n));
        let header = rtcp::Header::new_checked(&mut by_view[..len]).unwrap();
        prop_assert_eq!(header.ssrc(), ssrc);
        let clear = rx_view.unprotect_rtcp_header(header).unwrap();
        prop_assert_eq!(&clear[..], &plain[..n]);
    }
}
