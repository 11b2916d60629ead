//! The rows of the gateway's tables: connections (with their identified sessions) and
//! channels.
//! They live in storage the driver provides ([`crate::storage::Tables`]); a channel's
//! members are its media endpoints ([`crate::relay::Relay`]), linked in join order. A full
//! table is an answer, never a panic.

use core::net::IpAddr;

use crate::floor::Floor;
use crate::protocol::{Freq, Id, Name};
use crate::time::Instant;

/// A gateway connection as the core knows it: a slot index and a generation, so a handle
/// kept after the slot was reused never reaches the new occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// The slot index, below the connection table's capacity
    /// ([`crate::storage::Capacities::connections`]); drivers may index their own tables by it.
    pub const fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) const fn new(index: u32, generation: u32) -> Self {
        ConnId { index, generation }
    }

    pub(crate) const fn generation(self) -> u32 {
        self.generation
    }
}

/// What the driver knows about the far end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The client's IP address.
    pub ip: IpAddr,
    /// Whether the connection is TLS (wss://).
    pub tls: bool,
}

impl PeerInfo {
    /// Whether the client connects from a loopback address (PROTOCOL.md section 3's
    /// "loopback" policy).
    pub fn is_loopback(&self) -> bool {
        match self.ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

/// An identified session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub user_id: Id,
    /// The id sent in READY.
    pub session_id: heapless::String<16>,
    /// Default floor priority, already capped.
    pub priority: u8,
    /// The token's priority cap.
    pub priority_cap: u8,
    /// Channels joined, at most [`crate::config::MAX_JOINED_PER_SESSION`]. The memberships themselves are
    /// the relay's endpoints, linked per session from `joined_head`.
    pub joined: u8,
    pub(crate) joined_head: u32,
}

/// A connection slot, a row of the table the driver provides
/// ([`crate::storage::Tables::conns`]).
#[derive(Debug, Clone)]
pub struct Conn {
    pub(crate) generation: u32,
    pub(crate) open: bool,
    pub(crate) peer: PeerInfo,
    /// When HELLO went out: the identify deadline counts from it.
    pub(crate) opened_at: Instant,
    pub(crate) last_activity: Instant,
    /// Request budget in thousandths of a request.
    pub(crate) rate_milli: u64,
    pub(crate) rate_at: Instant,
    /// Rate-limited frames in a row (at most `RATE_STRIKES_BEFORE_CLOSE` + 1).
    pub(crate) strikes: u16,
    pub(crate) session: Option<Session>,
}

// `strikes` counts up to one past the close threshold.
const _: () = assert!(crate::config::RATE_STRIKES_BEFORE_CLOSE < u16::MAX as u32);

impl Conn {
    pub(crate) const FREE: Conn = Conn {
        generation: 0,
        open: false,
        peer: PeerInfo {
            ip: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            tls: false,
        },
        opened_at: Instant::ZERO,
        last_activity: Instant::ZERO,
        rate_milli: 0,
        rate_at: Instant::ZERO,
        strikes: 0,
        session: None,
    };
}

/// A channel.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Id.
    pub id: Id,
    /// Display name.
    pub name: Name,
    /// Frequency label.
    pub freq: Freq,
    /// Member limit.
    pub capacity: u16,
    /// Creator's user_id: the only one allowed to update or delete it.
    pub creator: Id,
    /// Creation time, ms since the Unix epoch.
    pub created_at: u64,
    /// Audio codec every member sends.
    pub codec: crate::codec::Codec,
    /// Video codec of the members that send video.
    pub video_codec: crate::codec::VideoCodec,
    /// Who may talk.
    pub floor: Floor<ConnId>,
    /// The member list: endpoint slots of the first and last member in join order, linked
    /// through [`crate::relay::Endpoint`].
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) members: u16,
    /// Packets from the floor holder relayed to the channel since it was created.
    pub relayed: u64,
}

impl Channel {
    /// Members.
    pub fn member_count(&self) -> usize {
        usize::from(self.members)
    }
}
