//! The media peers: one per channel membership, keyed by its SSRC, holding the SRTP
//! contexts, the latched address and the counters, and linking the channel's members in
//! join order. Bounded; a full table is error 2006 at CHANNEL_JOIN.

use core::net::{IpAddr, SocketAddr};

use crate::config::LATCH_IDLE;
use crate::hub::{Channel, ConnId};
use crate::srtp::Context;
use crate::storage::{IndexSlot, Table};
use crate::time::Instant;

/// Why a datagram was dropped; each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Not RTP or RTCP (STUN and DTLS are not served yet), or unparseable.
    Malformed,
    /// An SSRC no member joined with.
    UnknownSsrc,
    /// SRTP/SRTCP authentication failed (forged or corrupted).
    AuthFailed,
    /// Replayed or too old for the replay window.
    Replay,
    /// Plain RTP from an address other than the member's gateway connection.
    Spoofed,
    /// RTP from a member who does not hold the floor (keepalives land here too).
    NotHolder,
    /// A listener with no latched address yet (counted per listener per packet).
    NoLatch,
    /// The sender's socket buffer was full.
    SendFailed,
}

/// Global media counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// Datagrams received.
    pub packets_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// RTP packets relayed (once per talker packet, whatever the fan-out).
    pub relayed: u64,
    /// Drops: not RTP/RTCP or malformed.
    pub drop_malformed: u64,
    /// Drops: unknown SSRC.
    pub drop_unknown_ssrc: u64,
    /// Drops: authentication failed.
    pub drop_auth: u64,
    /// Drops: replayed.
    pub drop_replay: u64,
    /// Drops: plain RTP from a foreign address.
    pub drop_spoofed: u64,
    /// Drops: RTP from a non-holder.
    pub drop_not_holder: u64,
    /// Drops: listener not latched.
    pub drop_no_latch: u64,
    /// Drops: send failed.
    pub drop_send: u64,
}

impl MediaStats {
    /// Counts one drop.
    pub fn drop(&mut self, why: Drop) {
        let c = match why {
            Drop::Malformed => &mut self.drop_malformed,
            Drop::UnknownSsrc => &mut self.drop_unknown_ssrc,
            Drop::AuthFailed => &mut self.drop_auth,
            Drop::Replay => &mut self.drop_replay,
            Drop::Spoofed => &mut self.drop_spoofed,
            Drop::NotHolder => &mut self.drop_not_holder,
            Drop::NoLatch => &mut self.drop_no_latch,
            Drop::SendFailed => &mut self.drop_send,
        };
        *c += 1;
    }
}

/// Per-peer counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Datagrams accepted from the peer.
    pub packets_in: u64,
    /// Bytes accepted from the peer.
    pub bytes_in: u64,
    /// Datagrams sent to the peer.
    pub packets_out: u64,
    /// Bytes sent to the peer.
    pub bytes_out: u64,
    /// Datagrams from the peer's SSRC that were dropped.
    pub dropped: u64,
}

/// One member's media state.
pub struct Peer {
    /// The member's audio SSRC (the table key).
    pub ssrc: u32,
    /// Its gateway connection.
    pub conn: ConnId,
    /// The channel slot it joined.
    pub channel: u32,
    /// The IP of its gateway connection: plain RTP latches only from there.
    pub gateway_ip: IpAddr,
    /// Client -> server SRTP; `None` for plain RTP.
    pub inbound: Option<Context>,
    /// Server -> client SRTP; `None` for plain RTP.
    pub outbound: Option<Context>,
    /// Where its media goes, learnt from its authenticated packets.
    pub latched: Option<SocketAddr>,
    /// When it last sent an accepted packet.
    pub last_rx: Instant,
    /// Counters.
    pub stats: PeerStats,
    /// The previous and next member of its channel (in join order), [`NONE`] at the ends.
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

impl core::fmt::Debug for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Peer")
            .field("ssrc", &self.ssrc)
            .field("conn", &self.conn)
            .field("srtp", &self.inbound.is_some())
            .field("latched", &self.latched)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Peer {
    /// The address to send to, unless it is unknown or has gone idle.
    pub fn destination(&self, now: Instant) -> Option<SocketAddr> {
        self.latched
            .filter(|_| now.saturating_since(self.last_rx) < LATCH_IDLE)
    }
}

/// Why a peer could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRefused {
    /// The peer table is at its capacity (error 2006).
    Full,
    /// Another peer has this SSRC (error 2005).
    SsrcInUse,
}

/// "No slot" in the member links.
pub(crate) const NONE: u32 = u32::MAX;

/// The media peers, which are also the channel memberships: a slot table in storage the
/// driver provides, an SSRC index (open addressing, linear probing, backward-shift
/// deletion) over it, and each channel's members linked in join order through the slots.
pub struct Peers<'a> {
    slots: &'a mut dyn Table<Option<Peer>>,
    index: &'a mut [IndexSlot],
    /// Index slots in use: the largest power of two the index storage holds, less one.
    mask: usize,
    /// Most peers: the limit, the storage's capacity, and half the index, whichever is least.
    cap: usize,
    len: usize,
    /// Keys the index's hash, so that clients choosing SSRCs cannot aim at one probe chain.
    seed: u64,
}

impl<'a> Peers<'a> {
    /// A table over `slots` and `index` (both emptied), holding at most `limit` peers.
    pub fn new(
        slots: &'a mut dyn Table<Option<Peer>>,
        index: &'a mut [IndexSlot],
        limit: usize,
        seed: u64,
    ) -> Self {
        slots.clear();
        // Only entries that are not already zero are written: a zeroed index stays untouched.
        for e in index.iter_mut().filter(|e| **e != 0) {
            *e = 0;
        }
        let (mask, cap) = index_shape(index.len(), limit, slots.capacity());
        Peers {
            slots,
            index,
            mask,
            cap,
            len: 0,
            seed,
        }
    }

    /// Removes every peer, rewriting only the index entries in use, and starts over with
    /// `limit` and `seed`.
    pub fn clear(&mut self, limit: usize, seed: u64) {
        for i in 0..self.slots.as_slice().len() {
            let ssrc = self
                .slots
                .as_slice()
                .get(i)
                .and_then(Option::as_ref)
                .map(|p| p.ssrc);
            if let Some(at) = ssrc.and_then(|s| probe(self.index, self.mask, self.seed, s).ok()) {
                self.index_remove(at);
            }
        }
        self.slots.clear();
        self.len = 0;
        (self.mask, self.cap) = index_shape(self.index.len(), limit, self.slots.capacity());
        self.seed = seed;
    }

    /// Peers in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most peers the table holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Whether another peer fits.
    pub fn has_room(&self) -> bool {
        self.len < self.cap
    }

    /// The slot of the peer with this SSRC.
    pub fn find(&self, ssrc: u32) -> Option<usize> {
        let at = probe(self.index, self.mask, self.seed, ssrc).ok()?;
        let e = *self.index.get(at)?;
        Some((e & 0xffff_ffff) as usize - 1)
    }

    /// Adds a peer, unlinked, and returns its slot.
    pub fn insert(&mut self, peer: Peer) -> Result<usize, PeerRefused> {
        let free = match probe(self.index, self.mask, self.seed, peer.ssrc) {
            Ok(_) => return Err(PeerRefused::SsrcInUse),
            Err(free) => free,
        };
        if self.len >= self.cap {
            return Err(PeerRefused::Full);
        }
        let ssrc = peer.ssrc;
        let slot = match self.slots.as_slice().iter().position(Option::is_none) {
            Some(i) => {
                if let Some(s) = self.slots.as_mut_slice().get_mut(i) {
                    *s = Some(peer);
                }
                i
            }
            None => {
                let i = self.slots.as_slice().len();
                self.slots.push(Some(peer)).map_err(|_| PeerRefused::Full)?;
                i
            }
        };
        if let Some(e) = self.index.get_mut(free) {
            *e = (u64::from(ssrc) << 32) | (slot as u64 + 1);
        }
        self.len += 1;
        Ok(slot)
    }

    /// The peer in `slot`.
    pub fn get(&self, slot: usize) -> Option<&Peer> {
        self.slots.as_slice().get(slot)?.as_ref()
    }

    /// The peer in `slot`, mutably.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Peer> {
        self.slots.as_mut_slice().get_mut(slot)?.as_mut()
    }

    /// Removes the peer in `slot` (which the caller has unlinked from its channel).
    pub fn remove(&mut self, slot: usize) -> Option<Peer> {
        let peer = self.slots.as_mut_slice().get_mut(slot)?.take()?;
        if let Ok(at) = probe(self.index, self.mask, self.seed, peer.ssrc) {
            self.index_remove(at);
        }
        self.len -= 1;
        Some(peer)
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.slots.as_slice().iter().flatten()
    }

    /// Appends the peer in `slot` to the members of `ch`.
    pub(crate) fn link(&mut self, slot: usize, ch: &mut Channel) {
        let tail = ch.tail;
        if let Some(p) = self.get_mut(slot) {
            p.prev = tail;
            p.next = NONE;
        }
        match self.get_mut(tail as usize) {
            Some(t) => t.next = slot as u32,
            None => ch.head = slot as u32,
        }
        ch.tail = slot as u32;
        ch.members = ch.members.saturating_add(1);
    }

    /// Takes the peer in `slot` out of the members of `ch`, keeping the others' order.
    pub(crate) fn unlink(&mut self, slot: usize, ch: &mut Channel) {
        let Some((prev, next)) = self.get(slot).map(|p| (p.prev, p.next)) else {
            return;
        };
        match self.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => ch.head = next,
        }
        match self.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => ch.tail = prev,
        }
        if let Some(p) = self.get_mut(slot) {
            p.prev = NONE;
            p.next = NONE;
        }
        ch.members = ch.members.saturating_sub(1);
    }

    /// The members of `ch` in join order, with their slots.
    pub fn members<'s>(&'s self, ch: &Channel) -> Members<'s, 'a> {
        self.members_from(ch.head)
    }

    /// The members from peer slot `head` on, following the join-order links.
    pub(crate) fn members_from<'s>(&'s self, head: u32) -> Members<'s, 'a> {
        Members {
            peers: self,
            at: head,
        }
    }

    /// Empties index position `at` and moves later entries of its probe chain back
    /// (Knuth's algorithm R), so lookups never need tombstones.
    fn index_remove(&mut self, mut at: usize) {
        let mask = self.mask;
        let mut j = at;
        loop {
            j = (j + 1) & mask;
            let e = self.index.get(j).copied().unwrap_or(0);
            if e == 0 {
                break;
            }
            let home = hash(self.seed, (e >> 32) as u32) & mask;
            // The entry may move to `at` unless its home lies cyclically in (at, j].
            let stays = if at <= j {
                at < home && home <= j
            } else {
                at < home || home <= j
            };
            if !stays {
                if let Some(dst) = self.index.get_mut(at) {
                    *dst = e;
                }
                at = j;
            }
        }
        if let Some(dst) = self.index.get_mut(at) {
            *dst = 0;
        }
    }
}

/// The members of one channel in join order: `(slot, peer)`.
pub struct Members<'s, 'a> {
    peers: &'s Peers<'a>,
    at: u32,
}

impl<'s> Iterator for Members<'s, '_> {
    type Item = (usize, &'s Peer);

    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.at as usize;
        let p = self.peers.get(slot)?;
        self.at = p.next;
        Some((slot, p))
    }
}

/// The index mask (the largest power of two in `index_len`, less one) and the most peers:
/// the limit, the storage's capacity and half the index, whichever is least.
fn index_shape(index_len: usize, limit: usize, slots: usize) -> (usize, usize) {
    let pow2 = match index_len {
        0 => 0,
        n => 1usize << (usize::BITS - 1 - n.leading_zeros()),
    };
    let cap = limit
        .min(slots)
        .min(pow2 / 2)
        .min(crate::config::TABLE_LIMIT);
    (pow2.saturating_sub(1), cap)
}

fn hash(seed: u64, ssrc: u32) -> usize {
    crate::gateway::splitmix64(seed ^ u64::from(ssrc)) as usize
}

/// Where `ssrc` sits in the index (`Ok`), or the empty position where it would go (`Err`).
/// An index with no room at all answers `Err` with a position past its end.
fn probe(index: &[IndexSlot], mask: usize, seed: u64, ssrc: u32) -> Result<usize, usize> {
    if index.is_empty() {
        return Err(usize::MAX);
    }
    let mut at = hash(seed, ssrc) & mask;
    // At most half the slots are used, so an empty one ends every chain; the bound only
    // guards against a driver that hands over a non-empty index.
    for _ in 0..=mask {
        match index.get(at).copied() {
            None | Some(0) => return Err(at),
            Some(e) if (e >> 32) as u32 == ssrc => return Ok(at),
            Some(_) => at = (at + 1) & mask,
        }
    }
    Err(usize::MAX)
}
