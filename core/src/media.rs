//! The media-peer hub: one entry per channel membership, keyed by its SSRC, holding the
//! SRTP contexts, the latched address and the counters. Bounded; a full table is error
//! 2006 at CHANNEL_JOIN.

use core::net::{IpAddr, SocketAddr};

use heapless::index_map::FnvIndexMap;

use crate::config::{LATCH_IDLE, MAX_PEERS, PEER_INDEX};
use crate::hub::ConnId;
use crate::srtp::Context;
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
    pub channel: u16,
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

/// The peer table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeersFull;

/// Storage for the peers: several megabytes when full (mostly SRTP contexts), so the driver
/// provides it and may place it where untouched pages cost nothing (the daemon allocates it
/// zeroed: a `heapless::Vec` is a length and uninitialised slots, and all zeros is empty).
pub type PeerList = heapless::Vec<Peer, MAX_PEERS>;

/// Peers in a dense vector with an SSRC index, so only used slots cost memory.
pub struct Peers<'p> {
    list: &'p mut PeerList,
    by_ssrc: FnvIndexMap<u32, u16, PEER_INDEX>,
}

impl<'p> Peers<'p> {
    /// A table over `list`, which is emptied.
    pub fn new(list: &'p mut PeerList) -> Self {
        list.clear();
        Peers {
            list,
            by_ssrc: FnvIndexMap::new(),
        }
    }

    /// Removes every peer.
    pub fn clear(&mut self) {
        self.list.clear();
        self.by_ssrc.clear();
    }

    /// Gives the storage back.
    pub fn into_list(self) -> &'p mut PeerList {
        self.list
    }

    /// Peers in the table.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether another peer fits.
    pub fn has_room(&self) -> bool {
        !self.list.is_full()
    }

    /// Adds a peer; its SSRC must be new (the gateway checks uniqueness first).
    pub fn insert(&mut self, peer: Peer) -> Result<(), PeersFull> {
        if self.by_ssrc.contains_key(&peer.ssrc) {
            return Err(PeersFull);
        }
        let at = self.list.len() as u16;
        let ssrc = peer.ssrc;
        self.list.push(peer).map_err(|_| PeersFull)?;
        if self.by_ssrc.insert(ssrc, at).is_err() {
            self.list.pop();
            return Err(PeersFull);
        }
        Ok(())
    }

    /// The peer with this SSRC.
    pub fn get(&self, ssrc: u32) -> Option<&Peer> {
        let i = *self.by_ssrc.get(&ssrc)?;
        self.list.get(usize::from(i))
    }

    /// The peer with this SSRC, mutably.
    pub fn get_mut(&mut self, ssrc: u32) -> Option<&mut Peer> {
        let i = *self.by_ssrc.get(&ssrc)?;
        self.list.get_mut(usize::from(i))
    }

    /// Removes the peer with this SSRC.
    pub fn remove(&mut self, ssrc: u32) -> Option<Peer> {
        let i = usize::from(self.by_ssrc.swap_remove(&ssrc)?);
        if i >= self.list.len() {
            return None;
        }
        let peer = self.list.swap_remove(i);
        let moved = self.list.get(i).map(|p| p.ssrc);
        if let Some(slot) = moved.and_then(|ssrc| self.by_ssrc.get_mut(&ssrc)) {
            *slot = i as u16;
        }
        Some(peer)
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.list.iter()
    }
}
