//! Packet index estimation (RFC 3711 section 3.3.1 and Appendix A) and the replay window
//! (section 3.3.2), checked before the MAC and updated only after it.

use super::Error;
use crate::config::SRTP_REPLAY_WINDOW;

const _: () = assert!(SRTP_REPLAY_WINDOW == u128::BITS as u64);

/// Largest SRTP packet index (48 bits: 32-bit ROC and 16-bit SEQ).
const MAX_SRTP_INDEX: u64 = (1 << 48) - 1;

/// The highest index seen (authenticated, or sent) and which of the 128 indices below and
/// including it were seen. Bit `d` of `seen` is `highest - d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: u64,
    seen: u128,
}

impl ReplayWindow {
    /// A window whose first index is `first` (nothing marked yet).
    pub(crate) const fn new(first: u64) -> ReplayWindow {
        ReplayWindow {
            highest: first,
            seen: 0,
        }
    }

    pub(crate) const fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether no index was marked yet (after any `update` the highest one is).
    pub(crate) const fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// Whether `index` may still be accepted: ahead of the window, or inside it and unseen.
    pub(crate) fn check(&self, index: u64) -> Result<(), Error> {
        if index > self.highest {
            return Ok(());
        }
        let delta = self.highest - index;
        if delta >= SRTP_REPLAY_WINDOW {
            Err(Error::IndexTooOld)
        } else if self.seen & (1 << delta) != 0 {
            Err(Error::Replayed)
        } else {
            Ok(())
        }
    }

    /// Marks `index` seen; call only after `check` passed and the packet authenticated.
    pub(crate) fn update(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.seen = if shift >= SRTP_REPLAY_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = index;
        } else {
            self.seen |= 1 << (self.highest - index);
        }
    }
}

/// The SRTP packet index of sequence number `seq` given the highest index so far
/// (RFC 3711 Appendix A): the rollover counter `v` in {ROC-1, ROC, ROC+1} that puts `seq`
/// closest to `s_l`. As in libsrtp, ROC-1 is never guessed below zero (a stream's early
/// packets then stay in ROC 0), and an index past 2^48 - 1 is `KeyExhausted`.
pub(crate) fn estimate_index(highest: u64, seq: u16) -> Result<u64, Error> {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 && roc > 0 {
            roc - 1
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    let index = (v << 16) | u64::from(seq);
    if index > MAX_SRTP_INDEX {
        return Err(Error::KeyExhausted);
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srtp_estimate_index_appendix_a() {
        // Early in ROC 0, anything goes to ROC 0.
        assert_eq!(estimate_index(0, 0), Ok(0));
        assert_eq!(estimate_index(0, 65000), Ok(65000));
        assert_eq!(estimate_index(100, 65500), Ok(65500));
        // Wrap forward.
        assert_eq!(estimate_index(65530, 3), Ok(0x1_0003));
        assert_eq!(estimate_index(0x1_FFFF, 0), Ok(0x2_0000));
        // Late packet from the previous ROC after the wrap.
        assert_eq!(estimate_index(0x1_0003, 65530), Ok(65530));
        assert_eq!(estimate_index(0x2_0000, 0xFFFF), Ok(0x1_FFFF));
        // In the middle: same ROC.
        assert_eq!(estimate_index(0x3_8000, 0), Ok(0x3_0000));
        assert_eq!(estimate_index(0x3_8000, 0xFFFF), Ok(0x3_FFFF));
        assert_eq!(estimate_index(0x3_8001, 0), Ok(0x4_0000));
        // The end of the index space.
        assert_eq!(estimate_index(MAX_SRTP_INDEX, 0xFFFF), Ok(MAX_SRTP_INDEX));
        assert_eq!(estimate_index(MAX_SRTP_INDEX, 0), Err(Error::KeyExhausted));
    }

    #[test]
    fn srtp_replay_window_check_then_update() {
        let mut w = ReplayWindow::new(1000);
        assert_eq!(w.check(1000), Ok(()));
        w.update(1000);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(1001), Ok(()));
        assert_eq!(w.check(999), Ok(()));
        w.update(1005);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(1003), Ok(()));
        w.update(1003);
        assert_eq!(w.check(1003), Err(Error::Replayed));
        // The window's far edge: 127 behind is in, 128 behind is too old.
        assert_eq!(w.check(1005 - 127), Ok(()));
        assert_eq!(w.check(1005 - 128), Err(Error::IndexTooOld));
        // A long jump clears the bitmap.
        w.update(1005 + 500);
        assert_eq!(w.check(1005), Err(Error::IndexTooOld));
        assert_eq!(w.check(1505 - 1), Ok(()));
        assert_eq!(w.check(1505), Err(Error::Replayed));
    }
}
