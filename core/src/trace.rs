//! Trace events for operators' tools (PROTOCOL.md section 6): what happens to sessions,
//! channels, chat, floors and media, handed to [`crate::gateway::Driver::trace`] as it
//! happens. The driver decides what to do with them (count them, stream them); the core
//! keeps nothing. Chat content never appears in an event, only its length.

use core::net::SocketAddr;

/// The event's family: the SSE `event:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A session identified or ended.
    Session,
    /// A channel's life and membership.
    Channel,
    /// A chat message (never its content).
    Message,
    /// A floor decision.
    Floor,
    /// A media endpoint latched or forgotten.
    Media,
    /// A camera's state changed (PROTOCOL.md section 7): `connecting`, `streaming` or
    /// `retrying`; its id is the event's user.
    Camera,
}

impl Kind {
    /// The kind's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::Channel => "channel",
            Kind::Message => "message",
            Kind::Floor => "floor",
            Kind::Media => "media",
            Kind::Camera => "camera",
        }
    }
}

/// What an event adds beyond its kind, name, channel and user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Nothing.
    None,
    /// Why a session closed or a floor was revoked (`cause`).
    Cause(&'static str),
    /// Why a floor request was denied (`reason`).
    Reason(&'static str),
    /// A chat message's length in bytes (`length`).
    Length(usize),
    /// A floor holder's effective priority (`priority`).
    Priority(u8),
    /// A queued request's place (`position`, 1-based) and the queue's size (`queue_size`).
    Queued {
        /// Its place.
        position: u16,
        /// How many wait.
        size: u16,
    },
    /// How a WebRTC endpoint's DTLS handshake ended (`result`: `done` or `failed`) and,
    /// when it failed, why (`reason`).
    Dtls {
        /// `done` or `failed`.
        result: &'static str,
        /// Why it failed.
        reason: Option<&'static str>,
    },
    /// A latched media address (`addr`) and the endpoint's SSRC (`ssrc`).
    Latched {
        /// Where its media comes from and goes.
        addr: SocketAddr,
        /// Its SSRC.
        ssrc: u32,
    },
}

/// One trace event. `event` is the word of PROTOCOL.md section 6 (`identify`, `join`,
/// `granted`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// Its family.
    pub kind: Kind,
    /// What happened.
    pub event: &'static str,
    /// The channel it concerns, if one.
    pub channel_id: Option<&'a str>,
    /// The user it concerns, if one.
    pub user_id: Option<&'a str>,
    /// More about it.
    pub detail: Detail,
}

impl<'a> Event<'a> {
    /// An event without detail.
    pub const fn new(
        kind: Kind,
        event: &'static str,
        channel_id: Option<&'a str>,
        user_id: Option<&'a str>,
    ) -> Self {
        Event {
            kind,
            event,
            channel_id,
            user_id,
            detail: Detail::None,
        }
    }

    /// The same event with `detail`.
    pub const fn with(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }
}

/// Why a session ended: the `cause` of a `session` `close` event.
pub mod cause {
    /// The client closed it or the network dropped it (or the driver closed it, such as
    /// a slow consumer).
    pub const DISCONNECT: &str = "disconnect";
    /// No frame for two heartbeat intervals (4009).
    pub const HEARTBEAT_TIMEOUT: &str = "heartbeat timeout";
    /// Flooding after error 1006 (1008).
    pub const RATE_LIMIT: &str = "rate limit exceeded";
    /// Kicked by an operator (4010).
    pub const KICKED: &str = "kicked";
    /// Did not identify in time (4008).
    pub const IDENTIFY_TIMEOUT: &str = "identify timeout";
    /// Shed to make room for a new connection (1013).
    pub const SHED: &str = "server full";
}
