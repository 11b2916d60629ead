//! The radio's errors: each says what was being done and what went wrong.

use std::fmt;

use crate::wav::WavError;

/// Anything that can go wrong in the radio.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A bad argument: a URL, a channel name, a key.
    Usage(String),
    /// A socket or file operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The WebSocket failed (handshake, read or write).
    WebSocket(String),
    /// The gateway connection is closed.
    Closed(String),
    /// Nothing came in time.
    Timeout(String),
    /// The server answered with ERROR.
    Server {
        /// The request's op.
        req_op: i64,
        /// The error code (PROTOCOL.md section 1).
        code: i64,
        /// The server's reason.
        reason: String,
    },
    /// The server sent something the protocol does not allow here.
    Protocol(String),
    /// FLOOR_DENY.
    FloorDenied(String),
    /// The floor was taken away while talking (FLOOR_REVOKE).
    FloorRevoked(String),
    /// SRTP protect failed (a local limit).
    Srtp(String),
    /// A WAV file could not be read or written.
    Wav(WavError),
}

impl Error {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// The server's error code, for [`Error::Server`].
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(s) => f.write_str(s),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::WebSocket(s) => write!(f, "WebSocket: {s}"),
            Error::Closed(s) => write!(f, "the gateway connection closed: {s}"),
            Error::Timeout(s) => write!(f, "timed out waiting for {s}"),
            Error::Server {
                req_op,
                code,
                reason,
            } => write!(
                f,
                "the server refused op {req_op}: error {code} ({}): {reason}",
                code_meaning(*code)
            ),
            Error::Protocol(s) => write!(f, "protocol violation by the server: {s}"),
            Error::FloorDenied(r) => write!(f, "floor denied: {r}"),
            Error::FloorRevoked(c) => write!(f, "floor revoked: {c}"),
            Error::Srtp(s) => write!(f, "SRTP: {s}"),
            Error::Wav(e) => write!(f, "WAV: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Wav(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WavError> for Error {
    fn from(e: WavError) -> Self {
        Error::Wav(e)
    }
}

/// The meaning of a PROTOCOL.md error code.
pub fn code_meaning(code: i64) -> &'static str {
    match code {
        1000 => "not identified",
        1001 => "invalid or expired token",
        1002 => "already identified or user_id in use",
        1003 => "unknown op or wrong frame type",
        1004 => "malformed JSON or invalid field",
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
        _ => "unknown code",
    }
}
