//! Every default capacity, compiled size and timeout, each with why it is what it is.
//!
//! The capacities of the tables are run-time settings ([`Limits`]); the tables live in
//! storage the driver sizes from them ([`crate::storage::Capacities`]).

use crate::time::Duration;

/// Connections that have not identified yet, at most, tracked beyond the session limit so
/// that they can never take a slot a session needs. A new connection beyond it closes the
/// oldest unidentified one (1013): refusing the new one instead would let a steady flood of
/// connections that never identify keep every real client out. 128 connections arriving
/// within the time a client takes to send IDENTIFY (milliseconds) is far beyond the churn
/// of a Pi's clients; the memory ceiling (docs/reliability.md "Front door") counts each
/// one at up to 36 KiB.
pub const MAX_UNIDENTIFIED: usize = 128;
/// Default identified sessions (`LIVECHAT_MAX_SESSIONS`, PROTOCOL.md section 5).
pub const DEFAULT_MAX_SESSIONS: usize = 1024;
/// Default channels (`LIVECHAT_MAX_CHANNELS`, PROTOCOL.md section 5).
pub const DEFAULT_MAX_CHANNELS: usize = 256;
/// Default members per channel (`LIVECHAT_MAX_MEMBERS`, PROTOCOL.md section 5).
pub const DEFAULT_MAX_MEMBERS: usize = 256;
/// Default channel memberships with media, over all channels (`LIVECHAT_MAX_PEERS`): one per
/// session in 100 channels of a talker and ten listeners, with room to spare.
pub const DEFAULT_MAX_PEERS: usize = 1536;
/// Largest members per channel: a channel's `capacity` is a 16-bit count on the wire.
pub const MEMBERS_LIMIT: usize = u16::MAX as usize;
/// Largest sessions, channels or peers: table slots are numbered with 32 bits (the last
/// values are reserved as "none" markers), far beyond any memory the tables could have.
pub const TABLE_LIMIT: usize = (u32::MAX >> 2) as usize;
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
/// Longest SDP answer in a CHANNEL_JOIN ACK, counted as escaped in its JSON string: a
/// browser's answer is about 3 KB (4 with its escaped line ends), and the member list gets
/// what the outbound frame has left beside it. Longer is error 9000 (a bug in the driver's
/// answer).
pub const MAX_SDP_ANSWER: usize = 12 * 1024;
// The ACK holds the answer, a member list and the other fields (4 KiB kept for them).
const _: () = assert!(MAX_SDP_ANSWER + 4096 + 4096 <= MAX_OUTBOUND_FRAME);
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

/// Run-time limits and timers, from the daemon's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Identified sessions.
    pub max_sessions: usize,
    /// Channels.
    pub max_channels: usize,
    /// Members per channel (and the default and maximum channel `capacity`).
    pub max_members: usize,
    /// Channel memberships with media, over all channels.
    pub max_peers: usize,
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
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_channels: DEFAULT_MAX_CHANNELS,
            max_members: DEFAULT_MAX_MEMBERS,
            max_peers: DEFAULT_MAX_PEERS,
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
    /// The same limits with every capacity within what the tables can number: at least 1,
    /// at most [`MEMBERS_LIMIT`] members and [`TABLE_LIMIT`] of the others. The daemon's
    /// settings refuse values outside these, so this changes nothing it asks for.
    pub fn clamped(mut self) -> Self {
        self.max_sessions = self.max_sessions.clamp(1, TABLE_LIMIT);
        self.max_channels = self.max_channels.clamp(1, TABLE_LIMIT);
        self.max_members = self.max_members.clamp(1, MEMBERS_LIMIT);
        self.max_peers = self.max_peers.clamp(1, TABLE_LIMIT);
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

/// SSRCs one media endpoint may have (RFC 8843 BUNDLE: audio, video and the video's RTX on
/// one transport).
pub const ENDPOINT_SSRCS: usize = 3;
/// Largest datagram the media port handles; longer ones are dropped as malformed.
pub const MAX_DATAGRAM: usize = 1500;
/// Room after a datagram for the SRTP tag (and SRTCP trailer) added when re-protecting: the
/// AEAD suites' 16-byte tag and the 4-byte SRTCP index word (RFC 7714 section 9).
pub const SRTP_OVERHEAD: usize = 20;
/// A latched address unused this long is forgotten (PROTOCOL.md section 3: 30 s).
pub const LATCH_IDLE: Duration = Duration::from_secs(30);

// Cameras (PROTOCOL.md section 7).

/// Cameras one server pulls: each is a member of a channel and a table row with its own
/// kept key frame.
pub const MAX_CAMERAS: usize = 16;
/// Largest SPS or PPS kept per camera (real ones are tens of bytes); a larger one is not
/// kept.
pub const MAX_PARAMETER_SET: usize = 256;
/// Largest RTP payload of a camera's video (RFC 6184 FU-A cuts larger NAL units): with the
/// 12-byte header, a MID extension of up to 20 bytes and a 16-byte SRTP tag it stays under
/// 1280 bytes, the IPv6 minimum MTU (RFC 8200 section 5), so no path fragments it.
pub const CAMERA_RTP_PAYLOAD: usize = 1200;
/// Default largest key frame kept per camera for late viewers, in bytes: an IDR of a 1080p
/// camera at a high bitrate fits. A larger key frame is relayed but not kept (counted).
pub const DEFAULT_CAMERA_KEY_FRAME: usize = 1024 * 1024;
