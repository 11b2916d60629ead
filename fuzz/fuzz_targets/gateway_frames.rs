//! The gateway state machine driven by several sessions: structured requests (every op with
//! plausible and implausible fields, valid tokens) mixed with raw bytes, binary frames,
//! closes and time passing. No panic; every frame out is JSON with an op; the tables never
//! exceed their limits.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::gateway::{ConnId, Frame, PeerInfo};
use livechat_core::time::{Duration, Instant, Now};
use livechat_fuzz::{recorder, recycle, small_gateway, token};
use serde_json::{Value, json};

#[derive(Arbitrary, Debug)]
enum Str<'a> {
    Pick(u8),
    Any(&'a str),
}

impl Str<'_> {
    fn get(&self, pool: &[&str]) -> String {
        match self {
            Str::Pick(i) => pool[usize::from(*i) % pool.len()].to_owned(),
            Str::Any(s) => (*s).to_owned(),
        }
    }
}

const USERS: &[&str] = &["a", "b", "c", "d", "e", "f", "g"];
const CHANNELS: &[&str] = &["x", "y", "z", "w"];

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    Heartbeat,
    Identify {
        user: Str<'a>,
        good_token: bool,
        priority: Option<i64>,
    },
    Create {
        channel: Str<'a>,
        name: Option<&'a str>,
        capacity: Option<i64>,
    },
    Join {
        channel: Str<'a>,
        ssrc: u8,
        crypto: Option<bool>,
    },
    Leave {
        channel: Str<'a>,
    },
    Update {
        channel: Str<'a>,
        name: Option<&'a str>,
        capacity: Option<i64>,
    },
    Delete {
        channel: Str<'a>,
    },
    List,
    Info {
        channel: Str<'a>,
    },
    Chat {
        channel: Str<'a>,
        content: &'a str,
    },
    FloorRequest {
        channel: Str<'a>,
        priority: Option<i64>,
    },
    FloorRelease {
        channel: Str<'a>,
    },
    FloorPing {
        channel: Str<'a>,
    },
    Other {
        op: i64,
        d: &'a str,
    },
}

#[derive(Arbitrary, Debug)]
enum Action<'a> {
    Open {
        remote: bool,
        tls: bool,
    },
    Request {
        conn: u8,
        op: Op<'a>,
        id: Option<u32>,
    },
    Raw {
        conn: u8,
        bytes: &'a [u8],
    },
    Binary {
        conn: u8,
        len: u16,
    },
    Ping {
        conn: u8,
    },
    Close {
        conn: u8,
    },
    Advance {
        ms: u16,
    },
}

fn request(op: &Op<'_>) -> Value {
    let ch = |c: &Str<'_>| c.get(CHANNELS);
    match op {
        Op::Heartbeat => json!({"op":1,"d":null}),
        Op::Identify {
            user,
            good_token,
            priority,
        } => {
            let u = user.get(USERS);
            let t = if *good_token {
                token(&u)
            } else {
                "1.2.3".to_owned()
            };
            json!({"op":3,"d":{"user_id":u,"token":t,"priority":priority}})
        }
        Op::Create {
            channel,
            name,
            capacity,
        } => {
            json!({"op":10,"d":{"channel_id":ch(channel),"name":name,"capacity":capacity}})
        }
        Op::Join {
            channel,
            ssrc,
            crypto,
        } => {
            let mut d = json!({"channel_id":ch(channel),"ssrc":u32::from(*ssrc % 16)});
            match crypto {
                Some(true) => {
                    d["crypto"] = json!({"suite":"AES_CM_128_HMAC_SHA1_80","key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"})
                }
                Some(false) => d["crypto"] = json!({"suite":"AES_CM_128_HMAC_SHA1_32","key":"bad"}),
                None => {}
            }
            json!({"op":11,"d":d})
        }
        Op::Leave { channel } => json!({"op":12,"d":{"channel_id":ch(channel)}}),
        Op::Update {
            channel,
            name,
            capacity,
        } => {
            json!({"op":13,"d":{"channel_id":ch(channel),"name":name,"capacity":capacity}})
        }
        Op::Delete { channel } => json!({"op":14,"d":{"channel_id":ch(channel)}}),
        Op::List => json!({"op":15}),
        Op::Info { channel } => json!({"op":16,"d":{"channel_id":ch(channel)}}),
        Op::Chat { channel, content } => {
            json!({"op":20,"d":{"channel_id":ch(channel),"content":content}})
        }
        Op::FloorRequest { channel, priority } => {
            json!({"op":30,"d":{"channel_id":ch(channel),"priority":priority}})
        }
        Op::FloorRelease { channel } => json!({"op":31,"d":{"channel_id":ch(channel)}}),
        Op::FloorPing { channel } => json!({"op":32,"d":{"channel_id":ch(channel)}}),
        Op::Other { op, d } => json!({"op":op,"d":d}),
    }
}

fuzz_target!(|actions: Vec<Action<'_>>| {
    let mut gw = small_gateway();
    let mut rec = recorder();
    let mut now = Now::new(Instant::from_millis(1), 1_700_000_000_000);
    let mut conns: Vec<ConnId> = Vec::new();
    let pick = |conns: &[ConnId], i: u8| conns.get(usize::from(i) % conns.len().max(1)).copied();
    for a in actions.iter().take(256) {
        match a {
            Action::Open { remote, tls } => {
                let ip = if *remote {
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
                } else {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                };
                if let Ok(c) = gw.open(now, PeerInfo { ip, tls: *tls }, &mut rec) {
                    conns.push(c);
                }
            }
            Action::Request { conn, op, id } => {
                if let Some(c) = pick(&conns, *conn) {
                    let mut v = request(op);
                    if let Some(id) = id {
                        v["id"] = json!(id);
                    }
                    let s = v.to_string();
                    gw.handle_frame(now, c, Frame::Text(s.as_bytes()), &mut rec);
                }
            }
            Action::Raw { conn, bytes } => {
                if let Some(c) = pick(&conns, *conn) {
                    gw.handle_frame(now, c, Frame::Text(bytes), &mut rec);
                }
            }
            Action::Binary { conn, len } => {
                if let Some(c) = pick(&conns, *conn) {
                    gw.handle_frame(now, c, Frame::Binary(usize::from(*len)), &mut rec);
                }
            }
            Action::Ping { conn } => {
                if let Some(c) = pick(&conns, *conn) {
                    gw.handle_frame(now, c, Frame::Ping, &mut rec);
                }
            }
            Action::Close { conn } => {
                if let Some(c) = pick(&conns, *conn) {
                    gw.close(now, c, &mut rec);
                }
            }
            Action::Advance { ms } => {
                now.mono = now.mono + Duration::from_millis(u64::from(*ms));
                now.unix_ms += u64::from(*ms);
                if gw.poll_timeout().is_some_and(|t| t <= now.mono) {
                    gw.handle_timeout(now, &mut rec);
                }
                assert!(
                    gw.poll_timeout().is_none_or(|t| t > now.mono),
                    "a due timer survived handle_timeout"
                );
            }
        }
        let s = gw.stats();
        assert!(s.sessions <= 6 && s.channels <= 3, "{s:?}");
        for ch in gw.channels() {
            assert!(ch.member_count() <= usize::from(ch.capacity));
            assert_eq!(gw.members(ch).count(), ch.member_count(), "member list");
            let is_member = |c| gw.members(ch).any(|m| m.conn() == c);
            if let Some((h, _)) = ch.floor.holder() {
                assert!(is_member(h), "floor holder is not a member");
            }
            for (q, _) in ch.floor.queue() {
                assert!(is_member(q), "queued user is not a member");
            }
        }
        assert_eq!(
            gw.endpoints().count(),
            gw.channels().map(|c| c.member_count()).sum::<usize>()
        );
    }
    recycle(gw);
});
