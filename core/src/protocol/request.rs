//! Client -> server frames: the envelope, then `d` by op, then field validation. The order
//! of checks is PROTOCOL.md's: JSON shape and `op` (1004), unknown op (1003), then, after
//! the gateway's identification check (1000), the op's own fields (1004, or 3000/3001 for
//! chat content).

use serde::Deserialize;

use super::json::{self, JsonError, RawStr, UnescapeError};
use super::{Freq, Id, Name, op};
use crate::codec::{Codec, VideoCodec};
use crate::config::{MAX_CHAT_LEN, MAX_INBOUND_FRAME, MAX_JSON_DEPTH, MAX_TOKEN_LEN};
use crate::error::{Error, ErrorCode};
use crate::srtp::{MasterKey, Suite};

/// The part of every frame read before the op is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// The op, an integer (not necessarily a known one).
    pub op: i64,
    /// The request id to echo.
    pub id: Option<u32>,
}

/// What went wrong before the op was known; `id` is echoed when it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeError {
    /// The error to answer.
    pub error: Error,
    /// The op, when it could be read.
    pub op: Option<i64>,
    /// The id, when it could be read.
    pub id: Option<u32>,
}

/// SDES keying from CHANNEL_JOIN (PROTOCOL.md section 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The suite.
    pub suite: Suite,
    /// The client's master key and salt (client -> server). `Debug` prints no key bytes.
    pub key: MasterKey,
}

/// A decoded, validated client request. Chat content makes it about a kilobyte; it lives
/// on the stack for one call, so boxing it would only add an allocation. An SDP offer stays
/// in the frame it came in (`'a`), escaped as it stands there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Request<'a> {
    /// op 1.
    Heartbeat,
    /// op 3.
    Identify {
        /// Who.
        user_id: Id,
        /// The signed token.
        token: heapless::String<MAX_TOKEN_LEN>,
        /// Requested priority (capped later by the token).
        priority: Option<u8>,
    },
    /// op 10.
    ChannelCreate {
        /// The new channel.
        channel_id: Id,
        /// Display name.
        name: Option<Name>,
        /// Frequency label.
        freq: Option<Freq>,
        /// Member limit.
        capacity: Option<u16>,
        /// Audio codec (`PCMU` when absent).
        codec: Option<Codec>,
        /// Video codec (`VP8` when absent).
        video_codec: Option<VideoCodec>,
    },
    /// op 11.
    ChannelJoin {
        /// The channel.
        channel_id: Id,
        /// The client's audio SSRC: always there without `sdp_offer`, optional with it.
        ssrc: Option<u32>,
        /// SDES keys for client -> server SRTP.
        crypto: Option<Crypto>,
        /// The SDP offer of a WebRTC client (PROTOCOL.md section 4), its JSON string as it
        /// stands in the frame; the gateway unescapes it ([`json::unescape_into`]).
        sdp_offer: Option<RawStr<'a>>,
    },
    /// op 12.
    ChannelLeave {
        /// The channel.
        channel_id: Id,
    },
    /// op 13.
    ChannelUpdate {
        /// The channel.
        channel_id: Id,
        /// New display name.
        name: Option<Name>,
        /// New frequency label.
        freq: Option<Freq>,
        /// New member limit.
        capacity: Option<u16>,
    },
    /// op 14.
    ChannelDelete {
        /// The channel.
        channel_id: Id,
    },
    /// op 15.
    ChannelList,
    /// op 16.
    ChannelInfo {
        /// The channel.
        channel_id: Id,
    },
    /// op 20.
    MessageCreate {
        /// The channel.
        channel_id: Id,
        /// The text, unescaped and within the chat limit; or why not (3000 empty, 3001 too
        /// long), answered only after the channel and membership checks (PROTOCOL.md's
        /// order: 2000, then 3002, then the content).
        content: Result<heapless::String<MAX_CHAT_LEN>, ErrorCode>,
    },
    /// op 30.
    FloorRequest {
        /// The channel.
        channel_id: Id,
        /// Requested priority (defaults to the session's, capped by the token).
        priority: Option<u8>,
    },
    /// op 31.
    FloorRelease {
        /// The channel.
        channel_id: Id,
    },
    /// op 32.
    FloorPing {
        /// The channel.
        channel_id: Id,
    },
}

const fn malformed(reason: &'static str) -> Error {
    Error::new(ErrorCode::Malformed, reason)
}

/// Reads `op` and `id` after checking the frame is one JSON object nested at most
/// [`MAX_JSON_DEPTH`] deep.
pub fn decode_envelope(frame: &[u8]) -> Result<Envelope, EnvelopeError> {
    let fail = |reason, op, id| EnvelopeError {
        error: malformed(reason),
        op,
        id,
    };
    match json::validate(frame, MAX_JSON_DEPTH) {
        Ok(()) => {}
        Err(JsonError::Syntax) => return Err(fail("malformed JSON", None, None)),
        Err(JsonError::TooDeep) => return Err(fail("JSON nested too deep", None, None)),
    }
    if frame.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(fail("frame is not a JSON object", None, None));
    }
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<u32>,
    }
    #[derive(Deserialize)]
    struct OpOnly {
        #[serde(default)]
        op: Option<i64>,
    }
    let id = serde_json_core::from_slice::<IdOnly>(frame).map(|(e, _)| e.id);
    let op = serde_json_core::from_slice::<OpOnly>(frame).map(|(e, _)| e.op);
    match (op, id) {
        (Ok(Some(op)), Ok(id)) => Ok(Envelope { op, id }),
        (Ok(None), id) => Err(fail("missing op", None, id.ok().flatten())),
        (Err(_), id) => Err(fail("op must be an integer", None, id.ok().flatten())),
        (Ok(Some(op)), Err(_)) => Err(fail("id must be an integer 0..=4294967295", Some(op), None)),
    }
}

#[derive(Deserialize)]
struct WithD<T> {
    d: T,
}

#[derive(Deserialize)]
struct IdentifyD<'a> {
    #[serde(borrow)]
    user_id: RawStr<'a>,
    #[serde(borrow)]
    token: RawStr<'a>,
    #[serde(default)]
    priority: Option<i64>,
}

#[derive(Deserialize)]
struct ChannelD<'a> {
    #[serde(borrow)]
    channel_id: RawStr<'a>,
}

#[derive(Deserialize)]
struct ChannelFieldsD<'a> {
    #[serde(borrow)]
    channel_id: RawStr<'a>,
    #[serde(default, borrow)]
    name: Option<RawStr<'a>>,
    #[serde(default, borrow)]
    freq: Option<RawStr<'a>>,
    #[serde(default)]
    capacity: Option<i64>,
    #[serde(default, borrow)]
    codec: Option<RawStr<'a>>,
    #[serde(default, borrow)]
    video_codec: Option<RawStr<'a>>,
}

#[derive(Deserialize)]
struct CryptoD<'a> {
    #[serde(borrow)]
    suite: RawStr<'a>,
    #[serde(borrow)]
    key: RawStr<'a>,
}

#[derive(Deserialize)]
struct JoinD<'a> {
    #[serde(borrow)]
    channel_id: RawStr<'a>,
    #[serde(default)]
    ssrc: Option<i64>,
    #[serde(default, borrow)]
    crypto: Option<CryptoD<'a>>,
    #[serde(default, borrow)]
    sdp_offer: Option<RawStr<'a>>,
}

#[derive(Deserialize)]
struct MessageD<'a> {
    #[serde(borrow)]
    channel_id: RawStr<'a>,
    #[serde(borrow)]
    content: RawStr<'a>,
}

#[derive(Deserialize)]
struct FloorRequestD<'a> {
    #[serde(borrow)]
    channel_id: RawStr<'a>,
    #[serde(default)]
    priority: Option<i64>,
}

fn d<'a, T: Deserialize<'a>>(frame: &'a [u8]) -> Result<T, Error> {
    serde_json_core::from_slice::<WithD<T>>(frame)
        .map(|(w, _)| w.d)
        .map_err(|_| malformed("missing or invalid field in d"))
}

/// Decodes and validates `d` for a known client `op` (see [`op::is_client_op`]).
/// `max_members` bounds `capacity`.
pub fn decode_request(op_code: u8, frame: &[u8], max_members: usize) -> Result<Request<'_>, Error> {
    Ok(match op_code {
        op::HEARTBEAT => Request::Heartbeat,
        op::IDENTIFY => {
            let v: IdentifyD<'_> = d(frame)?;
            Request::Identify {
                user_id: id_field(v.user_id, "invalid user_id")?,
                // A token too long to be one is still a bad token (1001), not a bad field.
                token: json::unescape(v.token)
                    .map_err(|_| Error::new(ErrorCode::InvalidToken, "malformed token"))?,
                priority: v.priority.map(priority).transpose()?,
            }
        }
        op::CHANNEL_CREATE | op::CHANNEL_UPDATE => {
            let v: ChannelFieldsD<'_> = d(frame)?;
            let channel_id = id_field(v.channel_id, "invalid channel_id")?;
            let name = v.name.map(|s| unescape(s, "name too long")).transpose()?;
            let freq = v.freq.map(|s| unescape(s, "freq too long")).transpose()?;
            let capacity = v
                .capacity
                .map(|c| match u16::try_from(c) {
                    Ok(c) if c >= 1 && usize::from(c) <= max_members => Ok(c),
                    _ => Err(malformed("capacity out of range")),
                })
                .transpose()?;
            if op_code == op::CHANNEL_CREATE {
                let codec = v
                    .codec
                    .map(|raw| {
                        let name: heapless::String<8> = unescape(raw, "unknown codec")?;
                        Codec::from_name(&name).ok_or(malformed("codec must be PCMU or opus"))
                    })
                    .transpose()?;
                let video_codec = v
                    .video_codec
                    .map(|raw| {
                        let name: heapless::String<8> = unescape(raw, "unknown video_codec")?;
                        VideoCodec::from_name(&name)
                            .ok_or(malformed("video_codec must be VP8 or H264"))
                    })
                    .transpose()?;
                Request::ChannelCreate {
                    channel_id,
                    name,
                    freq,
                    capacity,
                    codec,
                    video_codec,
                }
            } else {
                Request::ChannelUpdate {
                    channel_id,
                    name,
                    freq,
                    capacity,
                }
            }
        }
        op::CHANNEL_JOIN => {
            let v: JoinD<'_> = d(frame)?;
            let channel_id = id_field(v.channel_id, "invalid channel_id")?;
            let ssrc = v
                .ssrc
                .map(|s| u32::try_from(s).map_err(|_| malformed("ssrc out of range")))
                .transpose()?;
            if ssrc.is_none() && v.sdp_offer.is_none() {
                return Err(malformed("missing ssrc"));
            }
            // DTLS keys a WebRTC client; SDES keys beside an offer would key nothing.
            if v.crypto.is_some() && v.sdp_offer.is_some() {
                return Err(malformed("crypto and sdp_offer exclude each other"));
            }
            let crypto = v.crypto.map(crypto).transpose()?;
            Request::ChannelJoin {
                channel_id,
                ssrc,
                crypto,
                sdp_offer: v.sdp_offer,
            }
        }
        op::CHANNEL_LEAVE
        | op::CHANNEL_DELETE
        | op::CHANNEL_INFO
        | op::FLOOR_RELEASE
        | op::FLOOR_PING => {
            let v: ChannelD<'_> = d(frame)?;
            let channel_id = id_field(v.channel_id, "invalid channel_id")?;
            match op_code {
                op::CHANNEL_LEAVE => Request::ChannelLeave { channel_id },
                op::CHANNEL_DELETE => Request::ChannelDelete { channel_id },
                op::CHANNEL_INFO => Request::ChannelInfo { channel_id },
                op::FLOOR_RELEASE => Request::FloorRelease { channel_id },
                _ => Request::FloorPing { channel_id },
            }
        }
        op::CHANNEL_LIST => Request::ChannelList,
        op::MESSAGE_CREATE => {
            let v: MessageD<'_> = d(frame)?;
            let channel_id = id_field(v.channel_id, "invalid channel_id")?;
            let mut buf = [0u8; MAX_INBOUND_FRAME];
            let content = match json::unescape_into(v.content.0, &mut buf) {
                Err(UnescapeError::TooLong) => Err(ErrorCode::MessageTooLong),
                Err(UnescapeError::Invalid) => return Err(malformed("invalid escape in content")),
                Ok(0) => Err(ErrorCode::EmptyMessage),
                Ok(n) => {
                    let text = buf
                        .get(..n)
                        .and_then(|b| core::str::from_utf8(b).ok())
                        .ok_or(malformed("content is not UTF-8"))?;
                    let mut content = heapless::String::new();
                    match content.push_str(text) {
                        Ok(()) => Ok(content),
                        Err(_) => Err(ErrorCode::MessageTooLong),
                    }
                }
            };
            Request::MessageCreate {
                channel_id,
                content,
            }
        }
        op::FLOOR_REQUEST => {
            let v: FloorRequestD<'_> = d(frame)?;
            Request::FloorRequest {
                channel_id: id_field(v.channel_id, "invalid channel_id")?,
                priority: v.priority.map(priority).transpose()?,
            }
        }
        _ => return Err(ErrorCode::UnknownOp.into()),
    })
}

fn unescape<const N: usize>(
    raw: RawStr<'_>,
    too_long: &'static str,
) -> Result<heapless::String<N>, Error> {
    json::unescape(raw).map_err(|e| match e {
        UnescapeError::TooLong => malformed(too_long),
        UnescapeError::Invalid => malformed("invalid string escape"),
    })
}

/// 1 to 32 bytes of `[A-Za-z0-9_.-]`.
fn id_field(raw: RawStr<'_>, reason: &'static str) -> Result<Id, Error> {
    let id: Id = unescape(raw, reason)?;
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok { Ok(id) } else { Err(malformed(reason)) }
}

fn priority(p: i64) -> Result<u8, Error> {
    u8::try_from(p).map_err(|_| malformed("priority out of range 0..=255"))
}

fn crypto(c: CryptoD<'_>) -> Result<Crypto, Error> {
    let suite_name: heapless::String<32> = unescape(c.suite, "unknown crypto suite")?;
    // SDES keys are the 30 bytes of the AES-CM suites (PROTOCOL.md section 3); the AEAD
    // suites come by DTLS-SRTP only.
    let suite = Suite::from_name(&suite_name)
        .filter(|s| !s.is_aead())
        .ok_or(malformed("unknown crypto suite"))?;
    let key_b64: heapless::String<64> = unescape(c.key, "crypto key must be 30 bytes")?;
    let key = MasterKey::from_sdes(&key_b64)
        .map_err(|_| malformed("crypto key must be base64 of 30 bytes"))?;
    Ok(Crypto { suite, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(s: &str) -> Result<Envelope, EnvelopeError> {
        decode_envelope(s.as_bytes())
    }

    #[test]
    fn envelope_reads_op_and_id_ignoring_the_rest() {
        assert_eq!(
            env(r#"{"op":1,"d":null,"id":7,"x":{"y":[1,2,{"z":null}]}}"#),
            Ok(Envelope { op: 1, id: Some(7) })
        );
        assert_eq!(env(r#"{"op":99}"#), Ok(Envelope { op: 99, id: None }));
    }

    #[test]
    fn envelope_errors_are_1004_and_keep_what_they_can() {
        for (frame, id) in [
            (r#"{"op":"x","id":3}"#, Some(3)),
            (r#"{"op":1.5}"#, None),
            (r#"{"d":null,"id":4}"#, Some(4)),
            (r#"{"op":null}"#, None),
            (r#"[1,2]"#, None),
            (r#"{"op":1"#, None),
            ("not json", None),
        ] {
            let e = env(frame).unwrap_err();
            assert_eq!(e.error.code, ErrorCode::Malformed, "{frame}");
            assert_eq!(e.id, id, "{frame}");
        }
        let e = env(r#"{"op":1,"id":-1}"#).unwrap_err();
        assert_eq!((e.op, e.id), (Some(1), None));
    }

    fn req(op_code: u8, s: &str) -> Result<Request<'_>, Error> {
        decode_request(op_code, s.as_bytes(), 256)
    }

    #[test]
    fn identify_fields() {
        let r = req(
            3,
            r#"{"op":3,"d":{"user_id":"a.b-c_D9","token":"1.2.x","priority":9}}"#,
        )
        .unwrap();
        assert!(
            matches!(r, Request::Identify { ref user_id, priority: Some(9), .. } if user_id == "a.b-c_D9")
        );
        for bad in [
            r#"{"op":3,"d":{"user_id":"a b","token":"t"}}"#,
            r#"{"op":3,"d":{"user_id":"","token":"t"}}"#,
            r#"{"op":3,"d":{"user_id":"abcdefghijabcdefghijabcdefghijabc","token":"t"}}"#,
            r#"{"op":3,"d":{"user_id":"a","token":"t","priority":256}}"#,
            r#"{"op":3,"d":{"user_id":"a","token":"t","priority":-1}}"#,
            r#"{"op":3,"d":{"user_id":"a","token":5}}"#,
            r#"{"op":3,"d":{"user_id":"a"}}"#,
            r#"{"op":3,"d":null}"#,
            r#"{"op":3}"#,
        ] {
            assert_eq!(req(3, bad).unwrap_err().code, ErrorCode::Malformed, "{bad}");
        }
    }

    #[test]
    fn chat_content_limits_count_utf8_bytes() {
        let ok = format!(
            r#"{{"op":20,"d":{{"channel_id":"c","content":"{}"}}}}"#,
            "é".repeat(512)
        );
        assert!(req(20, &ok).is_ok());
        let long = format!(
            r#"{{"op":20,"d":{{"channel_id":"c","content":"{}x"}}}}"#,
            "é".repeat(512)
        );
        let content = |frame: &str| match req(20, frame).unwrap() {
            Request::MessageCreate { content, .. } => content,
            r => panic!("{r:?}"),
        };
        assert_eq!(content(&long), Err(ErrorCode::MessageTooLong));
        let empty = r#"{"op":20,"d":{"channel_id":"c","content":""}}"#;
        assert_eq!(content(empty), Err(ErrorCode::EmptyMessage));
        let emoji = r#"{"op":20,"d":{"channel_id":"c","content":"hi \ud83d\ude00"}}"#;
        match req(20, emoji).unwrap() {
            Request::MessageCreate { content, .. } => assert_eq!(content.unwrap(), "hi 😀"),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn join_crypto_and_ranges() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"; // bytes 0..30
        let ok = format!(
            r#"{{"op":11,"d":{{"channel_id":"c","ssrc":4294967295,"crypto":{{"suite":"AES_CM_128_HMAC_SHA1_32","key":"{key}"}}}}}}"#
        );
        match req(11, &ok).unwrap() {
            Request::ChannelJoin {
                ssrc,
                crypto: Some(c),
                ..
            } => {
                assert_eq!(ssrc, Some(u32::MAX));
                assert_eq!(c.suite, Suite::AesCm128HmacSha1_32);
                let mut k = [0u8; 29];
                k.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
                assert_eq!(
                    c.key,
                    MasterKey::new(
                        Suite::AesCm128HmacSha1_32,
                        &k[..16],
                        &(16..30).collect::<Vec<u8>>()
                    )
                    .unwrap()
                );
            }
            r => panic!("{r:?}"),
        }
        for bad in [
            r#"{"op":11,"d":{"channel_id":"c","ssrc":4294967296}}"#,
            r#"{"op":11,"d":{"channel_id":"c","ssrc":-1}}"#,
            r#"{"op":11,"d":{"channel_id":"c"}}"#,
            r#"{"op":11,"d":{"channel_id":"c","ssrc":1,"crypto":{"suite":"NULL","key":"AAAA"}}}"#,
            r#"{"op":11,"d":{"channel_id":"c","ssrc":1,"crypto":{"suite":"AES_CM_128_HMAC_SHA1_80","key":"AAAA"}}}"#,
            r#"{"op":11,"d":{"channel_id":"c","sdp_offer":5}}"#,
            r#"{"op":11,"d":{"channel_id":"c","ssrc":1,"sdp_offer":"v=0","crypto":{"suite":"AES_CM_128_HMAC_SHA1_80","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"}}}"#,
            // The AEAD suites have no SDES keys here (PROTOCOL.md section 3).
            r#"{"op":11,"d":{"channel_id":"c","ssrc":1,"crypto":{"suite":"AEAD_AES_128_GCM","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"}}}"#,
        ] {
            assert_eq!(
                req(11, bad).unwrap_err().code,
                ErrorCode::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn an_offer_makes_ssrc_optional_and_stays_escaped() {
        let frame =
            r#"{"op":11,"d":{"channel_id":"c","sdp_offer":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}}"#;
        match req(11, frame).unwrap() {
            Request::ChannelJoin {
                ssrc: None,
                crypto: None,
                sdp_offer: Some(raw),
                ..
            } => assert_eq!(raw.0, r"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"),
            r => panic!("{r:?}"),
        }
        match req(
            11,
            r#"{"op":11,"d":{"channel_id":"c","ssrc":7,"sdp_offer":""}}"#,
        )
        .unwrap()
        {
            Request::ChannelJoin {
                ssrc: Some(7),
                sdp_offer: Some(raw),
                ..
            } => assert_eq!(raw.0, ""),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn channel_codecs_are_named_or_1004() {
        let f = |extra: &str| format!(r#"{{"op":10,"d":{{"channel_id":"c"{extra}}}}}"#);
        match req(10, &f("")).unwrap() {
            Request::ChannelCreate {
                codec: None,
                video_codec: None,
                ..
            } => {}
            r => panic!("{r:?}"),
        }
        match req(10, &f(r#","codec":"opus","video_codec":"H264""#)).unwrap() {
            Request::ChannelCreate {
                codec: Some(Codec::Opus),
                video_codec: Some(VideoCodec::H264),
                ..
            } => {}
            r => panic!("{r:?}"),
        }
        for bad in [
            r#","codec":"PCMA""#,
            r#","codec":"""#,
            r#","codec":0"#,
            r#","codec":"opus-and-more-than-eight""#,
            r#","video_codec":"VP9""#,
        ] {
            let frame = f(bad);
            assert_eq!(
                req(10, &frame).unwrap_err().code,
                ErrorCode::Malformed,
                "{frame}"
            );
        }
    }

    #[test]
    fn capacity_is_bounded_by_the_member_limit() {
        let f = |c: i64| format!(r#"{{"op":10,"d":{{"channel_id":"c","capacity":{c}}}}}"#);
        assert!(req(10, &f(256)).is_ok());
        assert!(req(10, &f(1)).is_ok());
        assert_eq!(req(10, &f(0)).unwrap_err().code, ErrorCode::Malformed);
        assert_eq!(req(10, &f(257)).unwrap_err().code, ErrorCode::Malformed);
    }
}
