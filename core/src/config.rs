//! Every compiled capacity, size and timeout, each with why it is what it is.
//!
//! Run-time settings (`Limits`) may lower the capacities, never raise them, so a test can
//! fill a table from outside without recompiling.

use crate::time::Duration;

/// Gateway connections the core tracks at once, identified or not: every session, plus the
/// share of connections that have not identified yet, so that those can never take a slot
/// a session needs.
pub const MAX_CONNECTIONS: usize = MAX_SESSIONS + MAX_UNIDENTIFIED;
/// Connections that have not identified yet, at most. A new connection beyond it closes the
/// oldest unidentified one (1013): refusing the new one instead would let a steady flood of
/// connections that never identify keep every real client out. 128 connections arriving
/// within the time a client takes to send IDENTIFY (milliseconds) is far beyond the churn
/// of a Pi's clients; the memory ceiling (docs/reliability.md "Front door") counts each
/// one at up to 36 KiB.
pub const MAX_UNIDENTIFIED: usize = 128;
/// Identified sessions: the cap of `LIVECHAT_MAX_SESSIONS` (whose default is PROTOCOL.md
/// section 5's 1024). Room for 100 channels of a talker and ten listeners, one session each.
pub const MAX_SESSIONS: usize = 1536;
/// Channels (`LIVECHAT_MAX_CHANNELS` default and cap).
pub const MAX_CHANNELS: usize = 256;
/// Members per channel (`LIVECHAT_MAX_MEMBERS` default and cap).
pub const MAX_MEMBERS: usize = 256;
/// Channels one session may have joined at once; beyond it CHANNEL_JOIN is error 2006.
pub const MAX_JOINED_PER_SESSION: usize = 16;
/// Queued floor requests per channel; beyond it FLOOR_DENY `queue_full`.
pub const MAX_FLOOR_QUEUE: usize = 32;

/// Largest inbound text frame the protocol accepts (error 1005 beyond it): PROTOCOL.md v2's
/// 16384 bytes, room for a browser's SDP offer.
pub const MAX_INBOUND_FRAME: usize = 16384;
/// Largest inbound frame at all: the WebSocket layer closes the connection with 1009 beyond it.
pub const HARD_FRAME_CAP: usize = 64 * 1024;
/// Largest outbound frame; lists that would not fit are cut and flagged `truncated`.
pub const MAX_OUTBOUND_FRAME: usize = 32 * 1024;
/// Deepest JSON nesting accepted (error 1004 beyond it).
pub const MAX_JSON_DEPTH: usize = 16;

/// Longest `user_id` and `channel_id` in bytes.
pub const MAX_ID_LEN: usize = 32;
/// Longest channel `name` in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest channel `freq` in bytes.
pub const MAX_FREQ_LEN: usize = 16;
/// Longest chat `content` in bytes of UTF-8.
pub const MAX_CHAT_LEN: usize = 1024;
/// Longest `token` accepted: 20 digits, a dot, 3 digits, a dot, 40 hex digits.
pub const MAX_TOKEN_LEN: usize = 80;

/// Default heartbeat interval sent in HELLO (`LIVECHAT_HEARTBEAT_MS`).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(15_000);
/// Default time a connection has to identify after HELLO, whatever it sends meanwhile
/// (`LIVECHAT_IDENTIFY_TIMEOUT_MS`, PROTOCOL.md v2 section 5); closed with 4008 after it.
pub const DEFAULT_IDENTIFY_TIMEOUT: Duration = Duration::from_millis(10_000);
/// A connection silent this many heartbeat intervals is a zombie (PROTOCOL.md section 1).
pub const ZOMBIE_HEARTBEATS: u64 = 2;
/// Default longest floor hold, TS 24.380's T2 (`LIVECHAT_FLOOR_MAX_MS`).
pub const DEFAULT_FLOOR_MAX: Duration = Duration::from_millis(30_000);
/// Default holder inactivity before revoke (`LIVECHAT_FLOOR_PING_MS`).
pub const DEFAULT_FLOOR_PING: Duration = Duration::from_millis(5_000);

/// Default request burst per connection (`LIVECHAT_RATE`, first number).
pub const DEFAULT_RATE_BURST: u32 = 200;
/// Default sustained requests per second per connection (`LIVECHAT_RATE`, second number).
pub const DEFAULT_RATE_PER_SEC: u32 = 50;
/// Rate-limited frames, less one per frame allowed since, after which the connection is
/// closed (1008): a client that keeps flooding after being told 1006 is not listening.
pub const RATE_STRIKES_BEFORE_CLOSE: u32 = 200;

/// Run-time limits and timers, from the daemon's settings. Each capacity is clamped to its
/// compiled maximum above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Identified sessions.
    pub max_sessions: usize,
    /// Channels.
    pub max_channels: usize,
    /// Members per channel (and the default and maximum channel `capacity`).
    pub max_members: usize,
    /// Heartbeat interval announced in HELLO.
    pub heartbeat: Duration,
    /// Time to identify after HELLO.
    pub identify_timeout: Duration,
    /// Longest floor hold.
    pub floor_max: Duration,
    /// Holder inactivity before revoke.
    pub floor_ping: Duration,
    /// Request burst per connection.
    pub rate_burst: u32,
    /// Sustained requests per second per connection.
    pub rate_per_sec: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: MAX_SESSIONS,
            max_channels: MAX_CHANNELS,
            max_members: MAX_MEMBERS,
            heartbeat: DEFAULT_HEARTBEAT,
            identify_timeout: DEFAULT_IDENTIFY_TIMEOUT,
            floor_max: DEFAULT_FLOOR_MAX,
            floor_ping: DEFAULT_FLOOR_PING,
            rate_burst: DEFAULT_RATE_BURST,
            rate_per_sec: DEFAULT_RATE_PER_SEC,
        }
    }
}

impl Limits {
    /// The same limits with every capacity clamped to its compiled maximum (and at least 1).
    pub fn clamped(mut self) -> Self {
        self.max_sessions = self.max_sessions.clamp(1, MAX_SESSIONS);
        self.max_channels = self.max_channels.clamp(1, MAX_CHANNELS);
        self.max_members = self.max_members.clamp(1, MAX_MEMBERS);
        self
    }
}

// Floor control.

// SRTP.

/// Per-SSRC stream states one SRTP context keeps (RFC 3711 section 3.2.3: one cryptographic
/// context per SSRC). The relay re-encrypts several talkers with one receiver's context, so
/// this bounds the talkers a receiver hears before the least recently used state is evicted.
pub const SRTP_MAX_STREAMS: usize = 8;
/// SRTP and SRTCP replay window in packets (RFC 3711 section 3.3.2 asks for at least 64;
/// libsrtp's default is 128). It is one `u128` bitmap, so it is exactly 128.
pub const SRTP_REPLAY_WINDOW: u64 = 128;

// Media plane.

/// Media peers (one per channel membership: an SSRC with its SRTP contexts and latched
/// address); CHANNEL_JOIN is error 2006 beyond it. One per session in 100 channels of 11.
pub const MAX_PEERS: usize = 1536;
/// Slots of the SSRC index over the peers: a power of two, at least twice the peers, so
/// lookups stay short.
pub const PEER_INDEX: usize = (2 * MAX_PEERS).next_power_of_two();
/// Largest datagram the media port handles; longer ones are dropped as malformed.
pub const MAX_DATAGRAM: usize = 1500;
/// Room after a datagram for the SRTP tag (and SRTCP trailer) added when re-protecting.
pub const SRTP_OVERHEAD: usize = 16;
/// A latched address unused this long is forgotten (PROTOCOL.md section 3: 30 s).
pub const LATCH_IDLE: Duration = Duration::from_secs(30);
