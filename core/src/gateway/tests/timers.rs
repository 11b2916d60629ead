//! Heartbeats and zombies in virtual time (PROTOCOL.md section 1 "Heartbeat"): a connection
//! silent for two heartbeat intervals is reaped at exactly that moment, cleaned up like a
//! disconnect; any frame is activity. The socket side (server pings, a socket that is not
//! read) stays in tests/tests/sessions.rs.

use serde_json::json;

use super::{Sim, chan, fresh_ssrc, ms};
use crate::config::Limits;
use crate::gateway::{CLOSE_ZOMBIE, Frame};

const HEARTBEAT: u64 = 400;
const ZOMBIE_AFTER: u64 = 2 * HEARTBEAT;

fn sim() -> Sim {
    Sim::new(Limits {
        heartbeat: ms(HEARTBEAT),
        ..Limits::default()
    })
}

#[test]
fn hello_announces_the_configured_heartbeat_interval() {
    let mut s = sim();
    let peer = crate::gateway::PeerInfo {
        ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        tls: false,
    };
    let c = s.gw.open(s.now, peer, &mut s.rec).unwrap();
    let hello = s.take(c);
    assert_eq!(hello.len(), 1, "{hello:?}");
    assert_eq!(hello[0]["op"], 0);
    assert_eq!(hello[0]["d"]["heartbeat_interval"], HEARTBEAT);
}

#[test]
fn a_silent_member_is_reaped_at_two_intervals_and_cleaned_up() {
    let mut s = sim();
    let keeper = s.user("keeper");
    s.create(keeper, "net");
    s.enter(keeper, "net");
    let zombie = s.user("zombie");
    let ssrc = fresh_ssrc();
    let r = s.join(zombie, "net", ssrc);
    assert_eq!(r[0]["op"], 200, "{r:?}");
    s.member_event(keeper, "join", "net", "zombie", "");
    let silent_since = s.now.mono;

    // The keeper heartbeats every 150 ms; the zombie sends nothing.
    let reaped_at = silent_since + ms(ZOMBIE_AFTER);
    while s.now.mono + ms(150) < reaped_at {
        s.advance(150);
        s.heartbeat(&[keeper]);
    }
    s.advance_to(reaped_at - ms(1));
    s.quiet(&[keeper, zombie], "1 ms before two intervals of silence");
    assert!(s.rec.closed.is_empty(), "{:?}", s.rec.closed);
    s.advance(1);
    assert_eq!(s.rec.closed, vec![(zombie, CLOSE_ZOMBIE)]);
    assert!(s.take(zombie).is_empty(), "a reaped zombie is sent nothing");
    s.left(keeper, "net", "zombie", "reaped like a disconnect");
    s.quiet(&[keeper], "one leave");
    assert!(s.gw.session(zombie).is_none());

    // Cleaned up as on disconnect: not a member, user_id and SSRC free.
    let info = s.req(keeper, json!({"op": 16, "d": chan("net")}));
    assert_eq!(info[0]["d"]["members"], json!(["keeper"]));
    let back = s.user("zombie");
    assert_eq!(s.join(back, "net", ssrc)[0]["op"], 200);
    s.member_event(
        keeper,
        "join",
        "net",
        "zombie",
        "back under the same id and SSRC",
    );
}

#[test]
fn an_unidentified_silent_connection_is_reaped_too() {
    let mut s = sim();
    let c = s.connect();
    s.advance(ZOMBIE_AFTER - 1);
    assert!(s.rec.closed.is_empty());
    s.advance(1);
    assert_eq!(s.rec.closed, vec![(c, CLOSE_ZOMBIE)]);
    assert!(s.take(c).is_empty());
}

#[test]
fn a_client_that_keeps_heartbeating_survives_many_intervals() {
    let mut s = sim();
    let a = s.user("alice");
    s.create(a, "c");
    s.enter(a, "c");
    let unidentified = s.connect();
    // Every 200 ms for 2.5 s (six intervals); each heartbeat restarts the two-interval count.
    for _ in 0..13 {
        s.advance(200);
        s.heartbeat(&[a, unidentified]);
    }
    // Just short of two intervals after the last one: still there.
    s.advance(ZOMBIE_AFTER - 1);
    assert!(s.rec.closed.is_empty(), "{:?}", s.rec.closed);
    let info = s.req(a, json!({"op": 16, "d": chan("c")}));
    assert_eq!(info[0]["d"]["members"], json!(["alice"]));
    s.heartbeat(&[unidentified]);
    // alice's info request was activity too; both live another full interval pair.
    s.advance(ZOMBIE_AFTER - 1);
    assert!(s.rec.closed.is_empty(), "{:?}", s.rec.closed);
}

#[test]
fn any_frame_is_activity_pings_binary_and_malformed_text_keep_a_connection() {
    let mut s = sim();
    let pinger = s.user("pinger");
    let binary = s.user("binary");
    let texter = s.user("texter");
    let idle = s.user("idle");
    for _ in 0..11 {
        s.advance(200);
        s.gw.handle_frame(s.now, pinger, Frame::Ping, &mut s.rec);
        s.gw.handle_frame(s.now, binary, Frame::Binary(3), &mut s.rec);
        s.gw.handle_frame(s.now, texter, Frame::Text(b"not json"), &mut s.rec);
        // A ping has no answer from the core; binary and malformed text get an ERROR each.
        assert!(s.take(pinger).is_empty());
        assert_eq!(s.take(binary)[0]["d"]["code"], 1003);
        assert_eq!(s.take(texter)[0]["d"]["code"], 1004);
    }
    // 2.2 s of nothing but those frames: only the silent one was reaped (at 800 ms).
    assert_eq!(s.rec.closed, vec![(idle, CLOSE_ZOMBIE)]);
}

#[test]
fn a_disconnect_leaves_every_joined_channel() {
    let mut s = super::Sim::new(Limits::default());
    let hub = s.user("hub");
    let mut watchers = Vec::new();
    for ch in ["x", "y", "z"] {
        s.create(hub, ch);
        let w = s.user(&format!("watch-{ch}"));
        s.enter(w, ch);
        watchers.push(w);
    }
    for ch in ["x", "y", "z"] {
        s.enter(hub, ch);
    }
    s.gw.close(s.now, hub, &mut s.rec);
    for (&w, ch) in watchers.iter().zip(["x", "y", "z"]) {
        s.member_event(w, "join", ch, "hub", "");
        s.left(w, ch, "hub", "a disconnect leaves every channel");
        s.quiet(&[w], "exactly one leave per channel");
        let info = s.req(w, json!({"op": 16, "d": chan(ch)}));
        assert_eq!(info[0]["d"]["members"], json!([format!("watch-{ch}")]));
    }
    assert!(s.gw.session(hub).is_none());
}
