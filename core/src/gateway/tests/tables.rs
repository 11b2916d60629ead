//! The tables in storage the driver provides: capacities from the settings with no compiled
//! ceiling, the storage's own capacity as a limit, `heapless` storage for a build without an
//! allocator, and the SSRC index against a model.

use std::collections::HashMap;

use serde_json::json;

use super::{Sim, code, config};
use crate::config::Limits;
use crate::gateway::Gateway;
use crate::gateway::{Channel, Conn};
use crate::relay::{Endpoint, JoinRefused, Keys, NONE, Relay, Source};
use crate::storage::{Capacities, IndexSlot, Tables};
use crate::testing::Recorder;
use crate::time::Instant;

#[test]
fn sessions_members_and_peers_go_as_far_as_the_settings_ask() {
    // Well past the figures that were compiled in before (1536 sessions and peers, 256
    // members): 2100 sessions, one channel of 2050 members, and the limit answered with 2006.
    let limits = Limits {
        max_sessions: 2100,
        max_members: 2050,
        max_peers: 2100,
        ..Limits::default()
    };
    let mut s = Sim::new(limits);
    let users: Vec<_> = (0..2100).map(|i| s.user(&format!("u{i}"))).collect();
    assert_eq!(s.gw.stats().sessions, 2100);
    let c = s.connect();
    let tok = s.token("late", 0);
    let r = s.req(c, json!({"op":3,"d":{"user_id":"late","token":tok}}));
    assert_eq!(code(&r), 2006, "the 2101st session is refused");

    let r = s.req(users[0], json!({"op":10,"d":{"channel_id":"big"}}));
    assert_eq!(r[0]["d"]["capacity"], 2050);
    for (i, &u) in users.iter().enumerate().take(2050) {
        let r = s.join(u, "big", 1000 + i as u32);
        assert_eq!(r[0]["op"], 200, "member {i}: {r:?}");
        // Everyone before is told, in batches of the driver's send.
        s.rec.frames.clear();
    }
    assert_eq!(code(&s.join(users[2050], "big", 9)), 2001, "channel full");
    assert_eq!(s.gw.endpoints().count(), 2050);

    // A chat line reaches all 2050 members.
    s.send(
        users[7],
        json!({"op":20,"d":{"channel_id":"big","content":"hi"}}),
    );
    let told = users[..2050]
        .iter()
        .filter(|u| s.rec.frames.get(u).is_some_and(|f| f[0]["op"] == 101))
        .count();
    assert_eq!(told, 2050);
    s.rec.frames.clear();

    // The member list keeps join order across leaves from its middle and ends.
    for &i in &[0usize, 1000, 2049] {
        let r = s.req(users[i], json!({"op":12,"d":{"channel_id":"big"}}));
        assert_eq!(r.last().unwrap()["d"]["req_op"], 12, "{r:?}");
    }
    s.rec.frames.clear();
    let info = s.req(users[1], json!({"op":16,"d":{"channel_id":"big"}}));
    assert_eq!(info[0]["d"]["member_count"], 2047);
    let ch = s.gw.channels().next().unwrap();
    let order: Vec<u32> = s.gw.members(ch).map(|p| p.ssrc()).collect();
    let want: Vec<u32> = (0..2050)
        .filter(|i| ![0, 1000, 2049].contains(i))
        .map(|i| 1000 + i as u32)
        .collect();
    assert_eq!(order, want);
    // Freed peer slots are reused: joining again does not need a new slot.
    assert_eq!(s.join(users[2050], "big", 1)[0]["op"], 200);
    assert_eq!(s.gw.endpoints().count(), 2048);
}

#[test]
fn a_storage_smaller_than_the_limits_is_the_limit() {
    let limits = Limits::default();
    let c = Capacities {
        connections: 3,
        channels: 1,
        peers: 2,
        ssrc_index: 8,
        addr_index: 4,
    };
    let mut s = Sim::new(limits);
    *s.gw = Gateway::new(config(limits), Tables::reserve(&c).unwrap());
    assert_eq!(s.gw.capacities().connections, 3);
    let a = s.user("a");
    let b = s.user("b");
    let x = s.user("x");
    let peer = crate::gateway::PeerInfo {
        ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        tls: false,
    };
    assert!(
        s.gw.open(s.now, peer, &mut s.rec).is_err(),
        "no fourth slot"
    );
    s.req(a, json!({"op":10,"d":{"channel_id":"one"}}));
    assert_eq!(
        code(&s.req(a, json!({"op":10,"d":{"channel_id":"two"}}))),
        2006
    );
    assert_eq!(s.join(a, "one", 1)[0]["op"], 200);
    assert_eq!(s.join(b, "one", 2)[0]["op"], 200);
    let r = s.join(x, "one", 3);
    assert_eq!(code(&r), 2006, "{r:?}");
    assert_eq!(r[0]["d"]["reason"], "media peer limit reached");
    // A duplicate SSRC is 2005 whether or not the table has room.
    assert_eq!(code(&s.join(x, "one", 2)), 2007);
}

#[test]
fn heapless_storage_serves_a_build_without_an_allocator() {
    // A microcontroller keeps the tables in static `heapless` vectors and a zeroed index.
    let conns = Box::leak(Box::new(heapless::Vec::<Conn, 8>::new()));
    let channels = Box::leak(Box::new(heapless::Vec::<Option<Channel>, 2>::new()));
    let endpoints = Box::leak(Box::new(heapless::Vec::<Option<Endpoint>, 4>::new()));
    let index: &mut [IndexSlot; 16] = Box::leak(Box::new([0; 16]));
    let addr_index: &mut [IndexSlot; 8] = Box::leak(Box::new([0; 8]));
    let tables = Tables {
        conns,
        channels,
        endpoints,
        ssrc_index: index,
        addr_index,
    };
    let limits = Limits::default();
    let mut s = Sim::new(Limits {
        max_sessions: 1,
        max_channels: 1,
        max_peers: 1,
        ..limits
    });
    *s.gw = Gateway::new(config(limits), tables);
    s.rec = Recorder::new();
    let a = s.user("a");
    let b = s.user("b");
    s.req(a, json!({"op":10,"d":{"channel_id":"c"}}));
    assert_eq!(s.join(a, "c", 10)[0]["op"], 200);
    assert_eq!(s.join(b, "c", 11)[0]["op"], 200);
    let ch = s.gw.channels().next().unwrap();
    assert_eq!(s.gw.members(ch).count(), 2);
    assert_eq!(
        s.gw.capacities().peers,
        4,
        "the storage's 4 peers, not 1536"
    );
}

/// An endpoint with only an SSRC, for the index tests.
fn bare(ssrc: u32) -> Endpoint {
    Endpoint {
        source: Source::Member {
            conn: crate::gateway::ConnId::new(0, 1),
            channel: 0,
        },
        ssrcs: heapless::Vec::from_slice(&[ssrc]).unwrap(),
        audio_pt: 0,
        webrtc: None,
        gateway_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        keys: Keys::Plain,
        latched: None,
        last_rx: Instant::ZERO,
        stats: Default::default(),
        prev: NONE,
        next: NONE,
        session_next: NONE,
        serial: 0,
        server_ssrc: 0,
        fir_seq: 0,
        pli_due: false,
    }
}

#[test]
fn the_ssrc_index_agrees_with_a_map_through_churn() {
    // A small index so probe chains wrap and collide; backward-shift deletion must keep
    // every remaining SSRC reachable.
    let mut slots: Vec<Option<Endpoint>> = Vec::with_capacity(16);
    let mut index = vec![0u64; 32];
    let mut addr_index = vec![0u64; 32];
    let mut peers = Relay::new(&mut slots, &mut index, &mut addr_index, 16, 7);
    let mut model: HashMap<u32, usize> = HashMap::new();
    let mut x: u64 = 1;
    for _ in 0..20_000 {
        x = crate::gateway::splitmix64(x);
        // SSRCs from a small set, so inserts meet duplicates and removals meet absentees.
        let ssrc = (x % 40) as u32;
        if x & (1 << 40) == 0 {
            match peers.add(bare(ssrc)) {
                Ok(slot) => {
                    assert!(model.insert(ssrc, slot).is_none(), "{ssrc} inserted twice");
                }
                Err(JoinRefused::SsrcInUse) => assert!(model.contains_key(&ssrc)),
                Err(JoinRefused::Full) => assert_eq!(model.len(), 16),
            }
        } else if let Some(slot) = model.remove(&ssrc) {
            assert_eq!(peers.remove(slot).map(|p| p.ssrc()), Some(ssrc));
        } else {
            assert_eq!(peers.find(ssrc), None);
        }
        assert_eq!(peers.len(), model.len());
        for (&ssrc, &slot) in &model {
            assert_eq!(peers.find(ssrc), Some(slot), "ssrc {ssrc}");
        }
    }
    peers.clear(16, 8);
    assert!(peers.is_empty());
    assert!(index.iter().all(|&e| e == 0), "clear empties the index");
}

#[test]
fn member_lists_too_long_for_a_frame_are_cut_and_say_so() {
    // 1100 members of 32-byte user_ids: about 38 KB of names, over the 32 KiB frame limit.
    let limits = Limits {
        max_sessions: 1100,
        max_members: 1100,
        ..Limits::default()
    };
    let mut s = Sim::new(limits);
    let users: Vec<_> = (0..1100).map(|i| s.user(&format!("{i:0>32}"))).collect();
    s.req(users[0], json!({"op":10,"d":{"channel_id":"wide"}}));
    let mut first_cut = None;
    for (i, &u) in users.iter().enumerate() {
        let r = s.join(u, "wide", 1 + i as u32);
        assert_eq!(r[0]["op"], 200, "member {i}: {r:?}");
        let d = &r[0]["d"];
        let listed = d["active_members"].as_array().unwrap().len();
        if d.get("truncated").is_some() {
            assert_eq!(d["truncated"], true);
            assert!(listed < i + 1);
            first_cut.get_or_insert(i);
        } else {
            assert_eq!(listed, i + 1, "an uncut list is whole");
        }
        s.rec.frames.clear();
    }
    let cut = first_cut.expect("the list outgrew the frame");
    assert!((800..1000).contains(&cut), "cut at {cut}");
    let info = s.req(users[5], json!({"op":16,"d":{"channel_id":"wide"}}));
    assert_eq!(info[0]["d"]["truncated"], true);
    assert_eq!(info[0]["d"]["member_count"], 1100);
    assert_eq!(s.gw.stats().encode_failures, 0, "every frame fit");
}

#[test]
fn a_sessions_memberships_are_its_endpoints() {
    let mut s = Sim::new(Limits::default());
    let a = s.user("a");
    let owner = s.user("owner");
    for i in 0..17 {
        s.req(owner, json!({"op":10,"d":{"channel_id":format!("c{i}")}}));
    }
    for i in 0..16 {
        assert_eq!(s.join(a, &format!("c{i}"), 100 + i)[0]["op"], 200);
    }
    let r = s.join(a, "c16", 200);
    assert_eq!(code(&r), 2006, "the joined-channel limit: {r:?}");
    assert_eq!(s.gw.session(a).unwrap().joined, 16);
    // Leave from the middle, lose one to a delete, and the rest stay reachable.
    s.req(a, json!({"op":12,"d":{"channel_id":"c7"}}));
    s.req(owner, json!({"op":14,"d":{"channel_id":"c0"}}));
    assert_eq!(s.gw.session(a).unwrap().joined, 14);
    assert_eq!(s.take(a)[0]["d"]["event"], "delete");
    assert_eq!(code(&s.join(a, "c0", 300)), 2000);
    assert_eq!(
        code(&s.req(a, json!({"op":12,"d":{"channel_id":"c7"}}))),
        2004
    );
    assert_eq!(s.join(a, "c16", 200)[0]["op"], 200);
    assert_eq!(s.gw.endpoints().count(), 15);
    // Disconnecting ends every membership.
    s.gw.close(s.now, a, &mut s.rec);
    assert_eq!(s.gw.endpoints().count(), 0);
    assert!(s.gw.channels().all(|c| c.member_count() == 0));
}

#[test]
fn freed_slots_are_reused_lowest_first() {
    let mut s = Sim::new(Limits::default());
    let c: Vec<_> = (0..4).map(|_| s.connect()).collect();
    s.gw.close(s.now, c[2], &mut s.rec);
    s.gw.close(s.now, c[1], &mut s.rec);
    let again = s.connect();
    assert_eq!(again.index(), c[1].index(), "the lowest free slot");
    assert_ne!(again, c[1], "a new generation");
    assert_eq!(s.connect().index(), c[2].index());
    assert_eq!(s.connect().index(), 4, "then a new slot");
    // Endpoints likewise: a leave frees a slot that the next join takes.
    let users: Vec<_> = (0..3).map(|i| s.user(&format!("u{i}"))).collect();
    s.req(users[0], json!({"op":10,"d":{"channel_id":"c"}}));
    for (i, &u) in users.iter().enumerate() {
        assert_eq!(s.join(u, "c", 10 + i as u32)[0]["op"], 200);
    }
    s.req(users[0], json!({"op":12,"d":{"channel_id":"c"}}));
    assert_eq!(s.join(users[0], "c", 99)[0]["op"], 200);
    let ch = s.gw.channels().next().unwrap();
    let order: Vec<u32> = s.gw.members(ch).map(|e| e.ssrc()).collect();
    assert_eq!(order, [11, 12, 99], "join order, whatever the slot");
}
