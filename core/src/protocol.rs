//! The gateway's JSON wire format (PROTOCOL.md section 1): opcodes, typed requests decoded
//! from `&[u8]`, typed answers and events encoded into `&mut [u8]`.
//!
//! Decoding is in two passes because `serde-json-core` has no `deserialize_any`: the
//! envelope (`op`, `id`) first, then `d` by `op`. Strings are borrowed raw and unescaped by
//! [`json::unescape`] so that surrogate pairs work and nothing is allocated.

pub mod json;
mod request;
mod response;

pub use request::{Crypto, Envelope, EnvelopeError, Request, decode_envelope, decode_request};
pub use response::*;

/// Opcodes, numbered as PROTOCOL.md fixes them.
pub mod op {
    /// Server: greeting with the heartbeat interval.
    pub const HELLO: u8 = 0;
    /// Client: keep-alive.
    pub const HEARTBEAT: u8 = 1;
    /// Server: answer to HEARTBEAT.
    pub const HEARTBEAT_ACK: u8 = 2;
    /// Client: authenticate with a token.
    pub const IDENTIFY: u8 = 3;
    /// Server: answer to a successful IDENTIFY.
    pub const READY: u8 = 4;
    /// Client: create a channel.
    pub const CHANNEL_CREATE: u8 = 10;
    /// Client: join a channel.
    pub const CHANNEL_JOIN: u8 = 11;
    /// Client: leave a channel.
    pub const CHANNEL_LEAVE: u8 = 12;
    /// Client: change a channel's fields.
    pub const CHANNEL_UPDATE: u8 = 13;
    /// Client: delete a channel.
    pub const CHANNEL_DELETE: u8 = 14;
    /// Client: list channels.
    pub const CHANNEL_LIST: u8 = 15;
    /// Client: one channel's details.
    pub const CHANNEL_INFO: u8 = 16;
    /// Client: chat.
    pub const MESSAGE_CREATE: u8 = 20;
    /// Client: ask for the floor.
    pub const FLOOR_REQUEST: u8 = 30;
    /// Client: give up the floor or cancel a queued request.
    pub const FLOOR_RELEASE: u8 = 31;
    /// Client: holder keep-alive.
    pub const FLOOR_PING: u8 = 32;
    /// Server: the floor is yours.
    pub const FLOOR_GRANTED: u8 = 50;
    /// Server: the floor request is refused.
    pub const FLOOR_DENY: u8 = 51;
    /// Server: the floor is taken from you.
    pub const FLOOR_REVOKE: u8 = 52;
    /// Server: someone else holds the floor.
    pub const FLOOR_TAKEN: u8 = 53;
    /// Server: nobody holds the floor.
    pub const FLOOR_IDLE: u8 = 54;
    /// Server: your place in the floor queue.
    pub const FLOOR_QUEUE_POS_INFO: u8 = 55;
    /// Server: answer to FLOOR_PING.
    pub const FLOOR_PONG: u8 = 56;
    /// Server: a channel changed.
    pub const CHANNEL_EVENT: u8 = 100;
    /// Server: a chat message.
    pub const MESSAGE_EVENT: u8 = 101;
    /// Server: a request succeeded.
    pub const ACK: u8 = 200;
    /// Server: a request failed.
    pub const ERROR: u8 = 201;

    /// Whether `op` is a client op this server knows.
    pub const fn is_client_op(op: i64) -> bool {
        matches!(op, 1 | 3 | 10..=16 | 20 | 30..=32)
    }
}

/// A `user_id` or `channel_id`: 1 to 32 bytes of `[A-Za-z0-9_.-]`.
pub type Id = heapless::String<{ crate::config::MAX_ID_LEN }>;
/// A channel name.
pub type Name = heapless::String<{ crate::config::MAX_NAME_LEN }>;
/// A channel frequency label.
pub type Freq = heapless::String<{ crate::config::MAX_FREQ_LEN }>;
