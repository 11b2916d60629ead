//! An open-addressing hash index from a 32-bit key to endpoint slots, over a slice the
//! driver provides zeroed: linear probing, at most half full, and backward-shift deletion
//! (Knuth's algorithm R) so lookups never meet tombstones. Keys are unique (SSRCs:
//! [`Index::insert`]) or may repeat (addresses, several endpoints behind one socket:
//! [`Index::insert_entry`], [`Index::all`]).

use crate::storage::IndexSlot;

/// The index: `key << 32 | (slot + 1)` per entry, zero when empty.
pub(crate) struct Index<'a> {
    slots: &'a mut [IndexSlot],
    /// Positions in use: the largest power of two the storage holds, less one.
    mask: usize,
    /// Keys the hash, so that clients choosing keys (SSRCs) cannot aim at one probe chain.
    seed: u64,
}

impl<'a> Index<'a> {
    /// An index over `slots`, emptied: only entries that are not already zero are written,
    /// so a zeroed slice stays untouched.
    pub(crate) fn new(slots: &'a mut [IndexSlot], seed: u64) -> Self {
        for e in slots.iter_mut().filter(|e| **e != 0) {
            *e = 0;
        }
        let mask = match slots.len() {
            0 => 0,
            n => (1usize << (usize::BITS - 1 - n.leading_zeros())) - 1,
        };
        Index { slots, mask, seed }
    }

    /// Entries the index may hold and stay at most half full.
    pub(crate) fn capacity(&self) -> usize {
        if self.slots.is_empty() {
            0
        } else {
            self.mask.div_ceil(2)
        }
    }

    /// A new seed; the index must be empty.
    pub(crate) fn reseed(&mut self, seed: u64) {
        self.seed = seed;
    }

    /// The slot stored under `key`.
    pub(crate) fn get(&self, key: u32) -> Option<usize> {
        let at = self.probe(key).ok()?;
        let e = *self.slots.get(at)?;
        Some((e & 0xffff_ffff) as usize - 1)
    }

    /// Whether `key` is present.
    pub(crate) fn contains(&self, key: u32) -> bool {
        self.probe(key).is_ok()
    }

    /// Stores `slot` under `key`, which must be absent; `false` when there is no room.
    pub(crate) fn insert(&mut self, key: u32, slot: usize) -> bool {
        let Err(free) = self.probe(key) else {
            return false;
        };
        match self.slots.get_mut(free) {
            Some(e) => {
                *e = (u64::from(key) << 32) | (slot as u64 + 1);
                true
            }
            None => false,
        }
    }

    /// Stores `slot` under `key`, which may already have other slots; `false` when there is
    /// no room.
    pub(crate) fn insert_entry(&mut self, key: u32, slot: usize) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let mut at = self.home(key);
        for _ in 0..=self.mask {
            match self.slots.get_mut(at) {
                Some(e) if *e == 0 => {
                    *e = (u64::from(key) << 32) | (slot as u64 + 1);
                    return true;
                }
                Some(_) => at = (at + 1) & self.mask,
                None => return false,
            }
        }
        false
    }

    /// Every slot stored under `key`.
    pub(crate) fn all(&self, key: u32) -> impl Iterator<Item = usize> + '_ {
        let start = if self.slots.is_empty() {
            usize::MAX
        } else {
            self.home(key)
        };
        let mask = self.mask;
        let mut at = start;
        let mut left = mask + 1;
        core::iter::from_fn(move || {
            while left > 0 {
                left -= 1;
                let e = self.slots.get(at).copied().unwrap_or(0);
                if e == 0 {
                    left = 0;
                    return None;
                }
                at = (at + 1) & mask;
                if (e >> 32) as u32 == key {
                    return Some((e & 0xffff_ffff) as usize - 1);
                }
            }
            None
        })
    }

    /// Removes `slot` from under `key` (a repeatable key's entry).
    pub(crate) fn remove_entry(&mut self, key: u32, slot: usize) {
        let want = (u64::from(key) << 32) | (slot as u64 + 1);
        if self.slots.is_empty() {
            return;
        }
        let mut at = self.home(key);
        for _ in 0..=self.mask {
            match self.slots.get(at).copied() {
                None | Some(0) => return,
                Some(e) if e == want => return self.remove_at(at),
                Some(_) => at = (at + 1) & self.mask,
            }
        }
    }

    /// Removes `key`, moving later entries of its probe chain back.
    pub(crate) fn remove(&mut self, key: u32) {
        if let Ok(at) = self.probe(key) {
            self.remove_at(at);
        }
    }

    /// Empties position `at`, moving later entries of its probe chain back.
    fn remove_at(&mut self, mut at: usize) {
        let mask = self.mask;
        let mut j = at;
        loop {
            j = (j + 1) & mask;
            let e = self.slots.get(j).copied().unwrap_or(0);
            if e == 0 {
                break;
            }
            let home = self.home((e >> 32) as u32);
            // The entry may move back to `at` unless its home lies cyclically in (at, j].
            let stays = if at <= j {
                at < home && home <= j
            } else {
                at < home || home <= j
            };
            if !stays {
                if let Some(dst) = self.slots.get_mut(at) {
                    *dst = e;
                }
                at = j;
            }
        }
        if let Some(dst) = self.slots.get_mut(at) {
            *dst = 0;
        }
    }

    fn home(&self, key: u32) -> usize {
        crate::gateway::splitmix64(self.seed ^ u64::from(key)) as usize & self.mask
    }

    /// Where `key` sits (`Ok`), or the empty position where it would go (`Err`; past the
    /// end when the index has no room at all).
    fn probe(&self, key: u32) -> Result<usize, usize> {
        if self.slots.is_empty() {
            return Err(usize::MAX);
        }
        let mut at = self.home(key);
        // At most half the positions are used, so an empty one ends every chain; the bound
        // only guards against storage handed over with stray entries.
        for _ in 0..=self.mask {
            match self.slots.get(at).copied() {
                None | Some(0) => return Err(at),
                Some(e) if (e >> 32) as u32 == key => return Ok(at),
                Some(_) => at = (at + 1) & self.mask,
            }
        }
        Err(usize::MAX)
    }
}
