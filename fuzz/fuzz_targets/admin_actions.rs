//! Operator actions (the admin API's create, update, delete, floor revoke and kick, with
//! arbitrary request bodies) mixed with members identifying, joining, taking the floor,
//! chatting, closing and time passing. No panic; the tables stay consistent: members within
//! capacity, the floor held and queued by members only, one endpoint per membership.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::gateway::{ChannelBody, ConnId, Frame, PeerInfo};
use livechat_core::time::{Duration, Instant, Now};
use livechat_fuzz::{recorder, recycle, small_gateway, token};
use serde_json::json;

const USERS: &[&str] = &["a", "b", "c", "d", "e", "f"];
const CHANNELS: &[&str] = &["x", "y", "z", "w"];

#[derive(Arbitrary, Debug)]
enum Action<'a> {
    /// A member connects and identifies.
    Member { user: u8 },
    Join { conn: u8, channel: u8, ssrc: u8 },
    FloorRequest { conn: u8, channel: u8, priority: u8 },
    FloorRelease { conn: u8, channel: u8 },
    Chat { conn: u8, channel: u8 },
    Close { conn: u8 },
    /// POST /channels or PATCH /channels/{id} with this body (`d`), as the daemon wraps it.
    Create { body: &'a str },
    Update { channel: u8, body: &'a str },
    CreateNamed { channel: u8, capacity: Option<u16> },
    Delete { channel: u8 },
    Revoke { channel: u8 },
    Kick { user: u8 },
    Advance { ms: u16 },
}

fn pick<'p>(pool: &[&'p str], i: u8) -> &'p str {
    pool[usize::from(i) % pool.len()]
}

fuzz_target!(|actions: Vec<Action<'_>>| {
    let mut gw = small_gateway();
    let mut rec = recorder();
    let mut now = Now::new(Instant::from_millis(1), 1_700_000_000_000);
    let mut conns: Vec<ConnId> = Vec::new();
    let conn = |conns: &[ConnId], i: u8| conns.get(usize::from(i) % conns.len().max(1)).copied();
    let max_members = gw.config().limits.max_members;
    for a in actions.iter().take(256) {
        let frame = |v: serde_json::Value| v.to_string();
        match a {
            Action::Member { user } => {
                let peer = PeerInfo {
                    ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    tls: false,
                };
                if let Ok(c) = gw.open(now, peer, &mut rec) {
                    conns.push(c);
                    let u = pick(USERS, *user);
                    let f = frame(json!({"op":3,"d":{"user_id":u,"token":token(u)}}));
                    gw.handle_frame(now, c, Frame::Text(f.as_bytes()), &mut rec);
                }
            }
            Action::Join { conn: i, channel, ssrc } => {
                if let Some(c) = conn(&conns, *i) {
                    let d = json!({"channel_id": pick(CHANNELS, *channel), "ssrc": ssrc % 8});
                    let f = frame(json!({"op":11,"d":d}));
                    gw.handle_frame(now, c, Frame::Text(f.as_bytes()), &mut rec);
                }
            }
            Action::FloorRequest { conn: i, channel, priority } => {
                if let Some(c) = conn(&conns, *i) {
                    let d = json!({"channel_id": pick(CHANNELS, *channel), "priority": priority});
                    let f = frame(json!({"op":30,"d":d}));
                    gw.handle_frame(now, c, Frame::Text(f.as_bytes()), &mut rec);
                }
            }
            Action::FloorRelease { conn: i, channel } => {
                if let Some(c) = conn(&conns, *i) {
                    let f = frame(json!({"op":31,"d":{"channel_id": pick(CHANNELS, *channel)}}));
                    gw.handle_frame(now, c, Frame::Text(f.as_bytes()), &mut rec);
                }
            }
            Action::Chat { conn: i, channel } => {
                if let Some(c) = conn(&conns, *i) {
                    let d = json!({"channel_id": pick(CHANNELS, *channel), "content": "hi"});
                    let f = frame(json!({"op":20,"d":d}));
                    gw.handle_frame(now, c, Frame::Text(f.as_bytes()), &mut rec);
                }
            }
            Action::Close { conn: i } => {
                if let Some(c) = conn(&conns, *i) {
                    gw.close(now, c, &mut rec);
                }
            }
            Action::Create { body } => {
                let env = format!(r#"{{"op":10,"d":{body}}}"#);
                if let Ok(b) = ChannelBody::decode(true, env.as_bytes(), max_members) {
                    let _ = gw.admin_create(now, b, &mut rec);
                }
            }
            Action::Update { channel, body } => {
                let env = format!(r#"{{"op":13,"d":{body}}}"#);
                if let Ok(b) = ChannelBody::decode(false, env.as_bytes(), max_members) {
                    let _ = gw.admin_update(now, pick(CHANNELS, *channel), b, &mut rec);
                }
            }
            Action::CreateNamed { channel, capacity } => {
                let d = json!({"channel_id": pick(CHANNELS, *channel), "capacity": capacity});
                let env = frame(json!({"op":10,"d":d}));
                if let Ok(b) = ChannelBody::decode(true, env.as_bytes(), max_members) {
                    let _ = gw.admin_create(now, b, &mut rec);
                }
            }
            Action::Delete { channel } => {
                let _ = gw.admin_delete(now, pick(CHANNELS, *channel), &mut rec);
            }
            Action::Revoke { channel } => {
                let _ = gw.admin_revoke(now, pick(CHANNELS, *channel), &mut rec);
            }
            Action::Kick { user } => {
                let _ = gw.admin_kick(now, pick(USERS, *user), &mut rec);
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
        assert_eq!(gw.sessions().count(), s.sessions);
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
        for (c, s, _) in gw.sessions() {
            assert_eq!(gw.joined(c).count(), usize::from(s.joined), "joined list");
        }
        assert_eq!(
            gw.endpoints().count(),
            gw.channels().map(|c| c.member_count()).sum::<usize>()
        );
    }
    recycle(gw);
});
