//! Protocol error codes (PROTOCOL.md section 1): the one place where each error meets its
//! wire code and its default reason text.

/// An error answered to a client as an ERROR frame (op 201).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// An op other than HEARTBEAT or IDENTIFY before IDENTIFY succeeded.
    NotIdentified,
    /// The token is malformed, forged or expired.
    InvalidToken,
    /// IDENTIFY on an identified connection, or a `user_id` another session holds.
    AlreadyIdentified,
    /// An op this server does not know, or a binary frame.
    UnknownOp,
    /// Malformed JSON, nesting too deep, a missing or invalid field.
    Malformed,
    /// A text frame over the inbound limit.
    TooLarge,
    /// The connection spent its request budget.
    RateLimited,
    /// No channel with that id.
    ChannelNotFound,
    /// The channel is at its capacity.
    ChannelFull,
    /// Not the channel's creator, not the floor holder, or refused by a transport policy.
    NotPermitted,
    /// The session is already a member.
    AlreadyJoined,
    /// The session is not a member.
    NotJoined,
    /// A channel with that id exists.
    ChannelExists,
    /// A server table (sessions, channels, joined channels per session, peers) is full.
    Capacity,
    /// The SSRC belongs to another member on this server.
    SsrcInUse,
    /// The SDP offer parses but lacks what the server needs (PROTOCOL.md section 4).
    NoAcceptableMedia,
    /// Chat content is empty.
    EmptyMessage,
    /// Chat content is over the limit.
    MessageTooLong,
    /// Chat to a channel the session has not joined.
    NotMember,
    /// A bug or an impossible state; the request had no effect.
    Internal,
}

impl ErrorCode {
    /// The wire code.
    pub const fn code(self) -> u16 {
        match self {
            ErrorCode::NotIdentified => 1000,
            ErrorCode::InvalidToken => 1001,
            ErrorCode::AlreadyIdentified => 1002,
            ErrorCode::UnknownOp => 1003,
            ErrorCode::Malformed => 1004,
            ErrorCode::TooLarge => 1005,
            ErrorCode::RateLimited => 1006,
            ErrorCode::ChannelNotFound => 2000,
            ErrorCode::ChannelFull => 2001,
            ErrorCode::NotPermitted => 2002,
            ErrorCode::AlreadyJoined => 2003,
            ErrorCode::NotJoined => 2004,
            ErrorCode::ChannelExists => 2005,
            ErrorCode::Capacity => 2006,
            ErrorCode::SsrcInUse => 2007,
            ErrorCode::NoAcceptableMedia => 2008,
            ErrorCode::EmptyMessage => 3000,
            ErrorCode::MessageTooLong => 3001,
            ErrorCode::NotMember => 3002,
            ErrorCode::Internal => 9000,
        }
    }

    /// The reason sent when nothing more specific is known.
    pub const fn default_reason(self) -> &'static str {
        match self {
            ErrorCode::NotIdentified => "not identified",
            ErrorCode::InvalidToken => "invalid or expired token",
            ErrorCode::AlreadyIdentified => "already identified",
            ErrorCode::UnknownOp => "unknown op",
            ErrorCode::Malformed => "malformed request",
            ErrorCode::TooLarge => "frame too large",
            ErrorCode::RateLimited => "rate limited",
            ErrorCode::ChannelNotFound => "channel not found",
            ErrorCode::ChannelFull => "channel full",
            ErrorCode::NotPermitted => "not permitted",
            ErrorCode::AlreadyJoined => "already joined",
            ErrorCode::NotJoined => "not joined",
            ErrorCode::ChannelExists => "channel already exists",
            ErrorCode::Capacity => "server capacity reached",
            ErrorCode::SsrcInUse => "ssrc already in use",
            ErrorCode::NoAcceptableMedia => "no acceptable media in the SDP offer",
            ErrorCode::EmptyMessage => "empty message",
            ErrorCode::MessageTooLong => "message too long",
            ErrorCode::NotMember => "not a member of the channel",
            ErrorCode::Internal => "internal error",
        }
    }
}

/// An error with the reason that explains it to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub code: ErrorCode,
    /// Why, for a human reading the ERROR frame.
    pub reason: &'static str,
}

impl Error {
    /// The error with a specific reason.
    pub const fn new(code: ErrorCode, reason: &'static str) -> Self {
        Error { code, reason }
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Error {
            code,
            reason: code.default_reason(),
        }
    }
}
