//! Numbers fixed by PROTOCOL.md section 1: op codes, error codes and close codes.

/// Op codes (PROTOCOL.md section 1, both directions).
pub mod op {
    /// Server -> client on connect: `heartbeat_interval`, `server`.
    pub const HELLO: i64 = 0;
    /// Client -> server, `d` null.
    pub const HEARTBEAT: i64 = 1;
    /// Server -> client answer to HEARTBEAT.
    pub const HEARTBEAT_ACK: i64 = 2;
    /// Client -> server: `user_id`, `token`, `priority`?.
    pub const IDENTIFY: i64 = 3;
    /// Server -> client answer to a successful IDENTIFY: `session_id`, `user_id`.
    pub const READY: i64 = 4;
    /// `channel_id`, `name`?, `freq`?, `capacity`?.
    pub const CHANNEL_CREATE: i64 = 10;
    /// `channel_id`, `ssrc`, `crypto`?, `sdp_offer`?.
    pub const CHANNEL_JOIN: i64 = 11;
    /// `channel_id`.
    pub const CHANNEL_LEAVE: i64 = 12;
    /// `channel_id`, `name`?, `freq`?, `capacity`?.
    pub const CHANNEL_UPDATE: i64 = 13;
    /// `channel_id`.
    pub const CHANNEL_DELETE: i64 = 14;
    /// `d` null.
    pub const CHANNEL_LIST: i64 = 15;
    /// `channel_id`.
    pub const CHANNEL_INFO: i64 = 16;
    /// `channel_id`, `content`.
    pub const MESSAGE_CREATE: i64 = 20;
    /// `channel_id`, `priority`?.
    pub const FLOOR_REQUEST: i64 = 30;
    /// `channel_id`.
    pub const FLOOR_RELEASE: i64 = 31;
    /// `channel_id`.
    pub const FLOOR_PING: i64 = 32;
    /// Floor events (server -> client).
    pub const FLOOR_GRANTED: i64 = 50;
    pub const FLOOR_DENY: i64 = 51;
    pub const FLOOR_REVOKE: i64 = 52;
    pub const FLOOR_TAKEN: i64 = 53;
    pub const FLOOR_IDLE: i64 = 54;
    pub const FLOOR_QUEUE_POS_INFO: i64 = 55;
    pub const FLOOR_PONG: i64 = 56;
    /// `event`, `channel_id`, `user_id`?, channel fields?.
    pub const CHANNEL_EVENT: i64 = 100;
    /// `channel_id`, `user_id`, `content`, `timestamp`.
    pub const MESSAGE_EVENT: i64 = 101;
    /// `req_op` plus the answer.
    pub const ACK: i64 = 200;
    /// `req_op`?, `code`, `reason`.
    pub const ERROR: i64 = 201;

    /// Every op a client may send.
    pub const CLIENT_OPS: &[i64] = &[
        HEARTBEAT,
        IDENTIFY,
        CHANNEL_CREATE,
        CHANNEL_JOIN,
        CHANNEL_LEAVE,
        CHANNEL_UPDATE,
        CHANNEL_DELETE,
        CHANNEL_LIST,
        CHANNEL_INFO,
        MESSAGE_CREATE,
        FLOOR_REQUEST,
        FLOOR_RELEASE,
        FLOOR_PING,
    ];

    /// Every op the server may send.
    pub const SERVER_OPS: &[i64] = &[
        HELLO,
        HEARTBEAT_ACK,
        READY,
        FLOOR_GRANTED,
        FLOOR_DENY,
        FLOOR_REVOKE,
        FLOOR_TAKEN,
        FLOOR_IDLE,
        FLOOR_QUEUE_POS_INFO,
        FLOOR_PONG,
        CHANNEL_EVENT,
        MESSAGE_EVENT,
        ACK,
        ERROR,
    ];
}

/// The name PROTOCOL.md gives an op, for failure messages.
pub fn op_name(op: i64) -> &'static str {
    match op {
        0 => "HELLO",
        1 => "HEARTBEAT",
        2 => "HEARTBEAT_ACK",
        3 => "IDENTIFY",
        4 => "READY",
        10 => "CHANNEL_CREATE",
        11 => "CHANNEL_JOIN",
        12 => "CHANNEL_LEAVE",
        13 => "CHANNEL_UPDATE",
        14 => "CHANNEL_DELETE",
        15 => "CHANNEL_LIST",
        16 => "CHANNEL_INFO",
        20 => "MESSAGE_CREATE",
        30 => "FLOOR_REQUEST",
        31 => "FLOOR_RELEASE",
        32 => "FLOOR_PING",
        50 => "FLOOR_GRANTED",
        51 => "FLOOR_DENY",
        52 => "FLOOR_REVOKE",
        53 => "FLOOR_TAKEN",
        54 => "FLOOR_IDLE",
        55 => "FLOOR_QUEUE_POS_INFO",
        56 => "FLOOR_PONG",
        100 => "CHANNEL_EVENT",
        101 => "MESSAGE_EVENT",
        200 => "ACK",
        201 => "ERROR",
        _ => "unknown op",
    }
}

/// Error codes (PROTOCOL.md section 1, "Error codes").
pub mod code {
    pub const NOT_IDENTIFIED: i64 = 1000;
    pub const INVALID_TOKEN: i64 = 1001;
    pub const ALREADY_IDENTIFIED: i64 = 1002;
    pub const UNKNOWN_OP: i64 = 1003;
    pub const MALFORMED: i64 = 1004;
    pub const TOO_LARGE: i64 = 1005;
    pub const RATE_LIMITED: i64 = 1006;
    pub const CHANNEL_NOT_FOUND: i64 = 2000;
    pub const CHANNEL_FULL: i64 = 2001;
    pub const NOT_PERMITTED: i64 = 2002;
    pub const ALREADY_JOINED: i64 = 2003;
    pub const NOT_JOINED: i64 = 2004;
    pub const CHANNEL_EXISTS: i64 = 2005;
    pub const CAPACITY: i64 = 2006;
    pub const SSRC_IN_USE: i64 = 2007;
    pub const EMPTY_MESSAGE: i64 = 3000;
    pub const MESSAGE_TOO_LONG: i64 = 3001;
    pub const NOT_A_MEMBER: i64 = 3002;
    pub const INTERNAL: i64 = 9000;
}

/// The meaning PROTOCOL.md gives an error code, for failure messages.
pub fn code_name(code: i64) -> &'static str {
    match code {
        1000 => "not identified",
        1001 => "invalid or expired token",
        1002 => "already identified / user_id in use",
        1003 => "unknown op or wrong frame type",
        1004 => "malformed JSON or missing/invalid field",
        1005 => "frame too large",
        1006 => "rate limited",
        2000 => "channel not found",
        2001 => "channel full",
        2002 => "not permitted",
        2003 => "already joined",
        2004 => "not joined",
        2005 => "channel already exists",
        2006 => "server capacity reached",
        2007 => "SSRC already in use",
        3000 => "empty message",
        3001 => "message too long",
        3002 => "not a member of the channel",
        9000 => "internal error",
        _ => "unlisted code",
    }
}

/// WebSocket close codes the contract names.
pub mod close {
    /// SIGTERM/SIGINT: going away.
    pub const GOING_AWAY: u16 = 1001;
    /// Per-IP connection cap (policy violation).
    pub const POLICY: u16 = 1008;
    /// Frame over the hard cap (message too big).
    pub const TOO_BIG: u16 = 1009;
}

/// Inbound text frame limit (bytes) above which the server answers 1005.
pub const MAX_INBOUND_FRAME: usize = 16384;
/// Hard frame cap (bytes) above which the server closes with 1009.
pub const HARD_FRAME_CAP: usize = 64 * 1024;
/// Longest chat `content` in UTF-8 bytes.
pub const MAX_CHAT_LEN: usize = 1024;
/// Longest `user_id`/`channel_id` in bytes.
pub const MAX_ID_LEN: usize = 32;
/// Longest channel `name` in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest channel `freq` in bytes.
pub const MAX_FREQ_LEN: usize = 16;
/// Deepest JSON nesting accepted (the top-level object counts as level 1).
pub const MAX_JSON_DEPTH: usize = 16;
