//! Server -> client frames, encoded with `serde-json-core` into caller buffers.

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::error::Error;

/// The output buffer was too small for the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall;

/// Any server frame: `{"op":N,"d":...,"id":N?}`.
#[derive(Serialize)]
pub struct Frame<D> {
    /// The opcode.
    pub op: u8,
    /// The payload.
    pub d: D,
    /// The request id being answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
}

/// Encodes `frame` into `buf`, returning its length.
pub fn encode<D: Serialize>(frame: &Frame<D>, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
    serde_json_core::to_slice(frame, buf).map_err(|_| BufferTooSmall)
}

/// HELLO's payload.
#[derive(Serialize)]
pub struct Hello<'a> {
    /// Milliseconds between heartbeats.
    pub heartbeat_interval: u64,
    /// `livechatd/<version>`.
    pub server: &'a str,
}

/// READY's payload.
#[derive(Serialize)]
pub struct Ready<'a> {
    /// This session's id.
    pub session_id: &'a str,
    /// Who identified.
    pub user_id: &'a str,
}

/// ERROR's payload.
#[derive(Serialize)]
pub struct ErrorPayload<'a> {
    /// The failed request's op, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub req_op: Option<i64>,
    /// The wire code.
    pub code: u16,
    /// Why.
    pub reason: &'a str,
}

impl<'a> ErrorPayload<'a> {
    /// The payload for `e` answering `req_op`.
    pub fn new(req_op: Option<i64>, e: &'a Error) -> Self {
        ErrorPayload {
            req_op,
            code: e.code.code(),
            reason: e.reason,
        }
    }
}

/// An ACK with nothing but `req_op`.
#[derive(Serialize)]
pub struct AckPlain {
    /// The request's op.
    pub req_op: u8,
}

/// A channel's public fields, as in CHANNEL_LIST entries and the ACKs of CHANNEL_CREATE,
/// CHANNEL_UPDATE and CHANNEL_DELETE (with `req_op`).
#[derive(Serialize, Clone, Copy)]
pub struct ChannelFields<'a> {
    /// The request's op, in ACKs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub req_op: Option<u8>,
    /// Id.
    pub channel_id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Frequency label.
    pub freq: &'a str,
    /// Member limit.
    pub capacity: u16,
    /// Members now.
    pub member_count: u16,
    /// Who created it.
    pub creator: &'a str,
    /// When, in ms since the Unix epoch.
    pub created_at: u64,
    /// Audio codec (`PCMU` or `opus`).
    pub codec: &'a str,
    /// Video codec (`VP8` or `H264`).
    pub video_codec: &'a str,
}

/// A JSON array of strings produced by an iterator, so lists are encoded straight from
/// the tables without collecting them. It is consumed by the one serialization it is for.
pub struct StrSeq<I>(core::cell::Cell<Option<I>>);

impl<I> StrSeq<I> {
    /// The array of what `iter` yields.
    pub fn new(iter: I) -> Self {
        StrSeq(core::cell::Cell::new(Some(iter)))
    }
}

impl<'a, I: Iterator<Item = &'a str>> Serialize for StrSeq<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for item in self.0.take().into_iter().flatten() {
            seq.serialize_element(item)?;
        }
        seq.end()
    }
}

/// Where to send media.
#[derive(Serialize)]
pub struct Media<'a> {
    /// Host (IP) of the media port.
    pub host: &'a str,
    /// The media port.
    pub port: u16,
}

/// Server -> client SDES keys in the JOIN ACK.
#[derive(Serialize)]
pub struct CryptoAnswer<'a> {
    /// The suite, as offered.
    pub suite: &'a str,
    /// Base64 of the server's 16-byte key and 14-byte salt.
    pub key: &'a str,
}

/// The ACK of CHANNEL_JOIN.
#[derive(Serialize)]
#[serde(bound(serialize = "StrSeq<I>: Serialize"))]
pub struct AckJoin<'a, I> {
    /// Always CHANNEL_JOIN.
    pub req_op: u8,
    /// The channel.
    pub channel_id: &'a str,
    /// Members' user_ids, the joiner included.
    pub active_members: StrSeq<I>,
    /// Where to send media.
    pub media: Media<'a>,
    /// Server -> client keys, when the client sent `crypto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crypto: Option<CryptoAnswer<'a>>,
    /// The SDP answer, when the client sent `sdp_offer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdp_answer: Option<&'a str>,
    /// `true` when `active_members` was cut to fit the outbound frame limit.
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub truncated: bool,
}

/// CHANNEL_INFO's `floor`.
#[derive(Serialize)]
#[serde(bound(serialize = "StrSeq<Q>: Serialize"))]
pub struct FloorInfo<'a, Q> {
    /// `idle` or `taken`.
    pub state: &'a str,
    /// The holder's user_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<&'a str>,
    /// Queued user_ids, in order.
    pub queue: StrSeq<Q>,
}

/// The ACK of CHANNEL_INFO.
#[derive(Serialize)]
#[serde(bound(serialize = "StrSeq<M>: Serialize, StrSeq<Q>: Serialize"))]
pub struct AckInfo<'a, M, Q> {
    /// Always CHANNEL_INFO.
    pub req_op: u8,
    /// Id.
    pub channel_id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Frequency label.
    pub freq: &'a str,
    /// Member limit.
    pub capacity: u16,
    /// Members now.
    pub member_count: u16,
    /// Who created it.
    pub creator: &'a str,
    /// When, in ms since the Unix epoch.
    pub created_at: u64,
    /// Audio codec.
    pub codec: &'a str,
    /// Video codec.
    pub video_codec: &'a str,
    /// Members' user_ids.
    pub members: StrSeq<M>,
    /// Floor state.
    pub floor: FloorInfo<'a, Q>,
    /// `true` when `members` was cut to fit the outbound frame limit.
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub truncated: bool,
}

/// CHANNEL_EVENT's payload.
#[derive(Serialize)]
pub struct ChannelEvent<'a> {
    /// `join`, `leave`, `update` or `delete`.
    pub event: &'a str,
    /// The channel.
    pub channel_id: &'a str,
    /// Who joined, left, updated or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    /// The joiner's SSRC (`join` only), so listeners can tell talkers apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    /// New name (`update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// New frequency label (`update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freq: Option<&'a str>,
    /// New capacity (`update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u16>,
    /// The channel's audio codec (`update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<&'a str>,
    /// The channel's video codec (`update`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<&'a str>,
}

/// MESSAGE_EVENT's payload.
#[derive(Serialize)]
pub struct MessageEvent<'a> {
    /// The channel.
    pub channel_id: &'a str,
    /// The sender.
    pub user_id: &'a str,
    /// The text.
    pub content: &'a str,
    /// Server time of receipt, ms since the Unix epoch.
    pub timestamp: u64,
}

/// Writes CHANNEL_LIST's ACK: as many entries as fit in `buf`, then `truncated`.
pub fn encode_channel_list<'a>(
    channels: impl Iterator<Item = ChannelFields<'a>>,
    id: Option<u32>,
    buf: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut w = Writer { buf, len: 0 };
    w.put(b"{\"op\":200,\"d\":{\"req_op\":15,\"channels\":[")?;
    // Room kept for the tail: `],"truncated":false},"id":4294967295}`.
    const TAIL_ROOM: usize = 40;
    let mut truncated = false;
    let mut first = true;
    for ch in channels {
        let start = w.len;
        let room = w.buf.len().saturating_sub(TAIL_ROOM);
        let fits = (|| {
            if !first {
                w.put_within(b",", room)?;
            }
            let avail = w.buf.get_mut(w.len..room).ok_or(BufferTooSmall)?;
            let n = serde_json_core::to_slice(&ch, avail).map_err(|_| BufferTooSmall)?;
            w.len += n;
            Ok::<(), BufferTooSmall>(())
        })();
        if fits.is_err() {
            w.len = start;
            truncated = true;
            break;
        }
        first = false;
    }
    w.put(if truncated {
        b"],\"truncated\":true}"
    } else {
        b"],\"truncated\":false}"
    })?;
    if let Some(id) = id {
        let mut num = heapless::String::<16>::new();
        core::fmt::write(&mut num, format_args!(",\"id\":{id}")).map_err(|_| BufferTooSmall)?;
        w.put(num.as_bytes())?;
    }
    w.put(b"}")?;
    Ok(w.len)
}

struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, s: &[u8]) -> Result<(), BufferTooSmall> {
        let end = self.buf.len();
        self.put_within(s, end)
    }

    fn put_within(&mut self, s: &[u8], limit: usize) -> Result<(), BufferTooSmall> {
        let end = self.len + s.len();
        if end > limit {
            return Err(BufferTooSmall);
        }
        self.buf
            .get_mut(self.len..end)
            .ok_or(BufferTooSmall)?
            .copy_from_slice(s);
        self.len = end;
        Ok(())
    }
}

/// FLOOR_GRANTED's payload.
#[derive(Serialize)]
pub struct FloorGranted<'a> {
    /// The channel.
    pub channel_id: &'a str,
    /// The new holder.
    pub user_id: &'a str,
    /// How long the holder may keep the floor.
    pub max_duration_ms: u64,
}

/// FLOOR_DENY's payload.
#[derive(Serialize)]
pub struct FloorDeny<'a> {
    /// The channel.
    pub channel_id: &'a str,
    /// Why.
    pub reason: &'a str,
}

/// FLOOR_REVOKE's payload.
#[derive(Serialize)]
pub struct FloorRevoke<'a> {
    /// The channel.
    pub channel_id: &'a str,
    /// The holder losing the floor.
    pub user_id: &'a str,
    /// `preempted`, `timeout`, `max_duration` or `admin`.
    pub cause: &'a str,
}

/// FLOOR_TAKEN's payload.
#[derive(Serialize)]
pub struct FloorTaken<'a> {
    /// The channel.
    pub channel_id: &'a str,
    /// The holder.
    pub user_id: &'a str,
    /// The holder's effective priority.
    pub priority: u8,
}

/// FLOOR_IDLE's and FLOOR_PONG's payload.
#[derive(Serialize)]
pub struct FloorChannel<'a> {
    /// The channel.
    pub channel_id: &'a str,
}

/// FLOOR_QUEUE_POS_INFO's payload.
#[derive(Serialize)]
pub struct FloorQueuePos<'a> {
    /// The channel.
    pub channel_id: &'a str,
    /// 1-based place in the queue.
    pub position: u16,
    /// Requests queued.
    pub queue_size: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::op;

    fn text(buf: &[u8], n: usize) -> &str {
        core::str::from_utf8(&buf[..n]).unwrap()
    }

    #[test]
    fn frames_encode_as_the_protocol_says() {
        let mut buf = [0u8; 256];
        let n = encode(
            &Frame {
                op: op::HELLO,
                d: Hello {
                    heartbeat_interval: 15000,
                    server: "livechatd/0.1.0",
                },
                id: None,
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            text(&buf, n),
            r#"{"op":0,"d":{"heartbeat_interval":15000,"server":"livechatd/0.1.0"}}"#
        );
        let n = encode(
            &Frame {
                op: op::HEARTBEAT_ACK,
                d: (),
                id: Some(9),
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(text(&buf, n), r#"{"op":2,"d":null,"id":9}"#);
        let e = Error::from(crate::error::ErrorCode::ChannelFull);
        let n = encode(
            &Frame {
                op: op::ERROR,
                d: ErrorPayload::new(Some(11), &e),
                id: None,
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            text(&buf, n),
            r#"{"op":201,"d":{"req_op":11,"code":2001,"reason":"channel full"}}"#
        );
    }

    #[test]
    fn strings_are_escaped() {
        let mut buf = [0u8; 256];
        let d = MessageEvent {
            channel_id: "c",
            user_id: "u",
            content: "a\"b\\\n😀",
            timestamp: 1,
        };
        let n = encode(
            &Frame {
                op: op::MESSAGE_EVENT,
                d,
                id: None,
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            text(&buf, n),
            "{\"op\":101,\"d\":{\"channel_id\":\"c\",\"user_id\":\"u\",\"content\":\"a\\\"b\\\\\\n😀\",\"timestamp\":1}}"
        );
    }

    #[test]
    fn channel_list_is_cut_when_it_would_not_fit() {
        let ch = ChannelFields {
            req_op: None,
            channel_id: "chan",
            name: "n",
            freq: "",
            capacity: 5,
            member_count: 0,
            creator: "u",
            created_at: 0,
            codec: "PCMU",
            video_codec: "VP8",
        };
        let mut big = [0u8; 4096];
        let n = encode_channel_list(core::iter::repeat_n(ch, 3), Some(1), &mut big).unwrap();
        let s = text(&big, n);
        assert!(s.ends_with(r#"],"truncated":false},"id":1}"#), "{s}");
        assert_eq!(s.matches("\"chan\"").count(), 3);
        let mut small = [0u8; 300];
        let n = encode_channel_list(core::iter::repeat_n(ch, 100), None, &mut small).unwrap();
        let s = text(&small, n);
        assert!(s.ends_with(r#"],"truncated":true}}"#), "{s}");
        assert!(s.matches("\"chan\"").count() >= 1);
    }
}
