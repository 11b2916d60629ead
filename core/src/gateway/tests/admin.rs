//! Operator actions and the trace in virtual time (PROTOCOL.md section 6): what members see
//! when the admin API creates, updates or deletes a channel, revokes a floor or kicks a
//! user, with exact recipients; and the trace events a member's session causes, in order.
//! tests/tests/admin.rs proves the HTTP surface over real sockets.

use serde_json::json;

use super::{Sim, chan};
use crate::config::Limits;
use crate::gateway::{ADMIN_USER, AdminError, CLOSE_KICKED, ChannelBody};

const FLOOR_REQUEST: i64 = 30;
const FLOOR_RELEASE: i64 = 31;

fn body(create: bool, d: serde_json::Value) -> Result<ChannelBody, AdminError> {
    let op = if create { 10 } else { 13 };
    let frame = json!({"op": op, "d": d}).to_string();
    ChannelBody::decode(create, frame.as_bytes(), 8)
}

#[test]
fn bodies_are_checked_as_a_members_request() {
    let b = body(true, json!({"channel_id": "ops", "capacity": 8})).unwrap();
    assert_eq!((b.channel_id.as_str(), b.capacity), ("ops", Some(8)));
    for bad in [
        json!({"channel_id": "a b"}),
        json!({"channel_id": "ops", "capacity": 9}),
        json!({"channel_id": "ops", "capacity": 0}),
        json!({"channel_id": "ops", "name": "n".repeat(65)}),
        json!({"name": "no id"}),
    ] {
        let e = body(true, bad.clone()).unwrap_err();
        assert_eq!(e.http_status(), 400, "{bad}: {e:?}");
    }
}

#[test]
fn created_by_admin_not_joined_then_updated_and_deleted_as_members_see_it() {
    let mut s = Sim::new(Limits::default());
    let now = s.now;
    let ch =
        s.gw.admin_create(now, body(true, chan("ops")).unwrap(), &mut s.rec)
            .unwrap();
    assert_eq!(ch.creator.as_str(), ADMIN_USER);
    assert_eq!(ch.member_count(), 0);
    let again =
        s.gw.admin_create(now, body(true, chan("ops")).unwrap(), &mut s.rec)
            .map(|_| ());
    assert_eq!(again.unwrap_err().http_status(), 409);

    let alice = s.user("alice");
    let bob = s.user("bob");
    s.join_all_to("ops", &[alice, bob]);
    let upd = body(
        false,
        json!({"channel_id": "ops", "name": "Ops", "capacity": 5}),
    )
    .unwrap();
    let ch = s.gw.admin_update(now, "ops", upd, &mut s.rec).unwrap();
    assert_eq!((ch.name.as_str(), ch.capacity), ("Ops", 5));
    for c in [alice, bob] {
        let ev = s.event(
            c,
            100,
            json!({"event": "update", "channel_id": "ops", "user_id": "admin"}),
            "the operator's update",
        );
        assert_eq!(
            (ev["name"].clone(), ev["capacity"].clone()),
            (json!("Ops"), json!(5))
        );
    }
    s.quiet(&[alice, bob], "one update event each");
    let low = body(false, json!({"channel_id": "ops", "capacity": 1})).unwrap();
    let e = s.gw.admin_update(now, "ops", low, &mut s.rec).map(|_| ());
    assert_eq!(e.unwrap_err().http_status(), 400, "below the member count");
    let other = body(false, json!({"channel_id": "other"})).unwrap();
    let e = s.gw.admin_update(now, "ops", other, &mut s.rec).map(|_| ());
    assert_eq!(e, Err(AdminError::ChannelIdMismatch));
    let unknown = body(false, json!({"channel_id": "nope"})).unwrap();
    let e =
        s.gw.admin_update(now, "nope", unknown, &mut s.rec)
            .map(|_| ());
    assert_eq!(e.unwrap_err().http_status(), 404);

    // Alice holds the floor: a delete sends `delete` and no floor messages.
    s.send(alice, json!({"op": FLOOR_REQUEST, "d": chan("ops")}));
    s.event(alice, 50, json!({"channel_id": "ops"}), "granted");
    s.event(bob, 53, json!({"channel_id": "ops"}), "taken");
    s.gw.admin_delete(now, "ops", &mut s.rec).unwrap();
    for c in [alice, bob] {
        s.event(
            c,
            100,
            json!({"event": "delete", "channel_id": "ops", "user_id": "admin"}),
            "the operator's delete",
        );
    }
    s.quiet(&[alice, bob], "no floor messages on delete");
    assert_eq!(
        s.gw.admin_delete(now, "ops", &mut s.rec)
            .unwrap_err()
            .http_status(),
        404
    );
    // Their sessions forgot the channel: they may join a new one of the same name.
    s.create(alice, "ops");
    s.enter(alice, "ops");
    s.enter(bob, "ops");
}

#[test]
fn a_revoke_passes_the_floor_on_as_a_release_would() {
    let mut s = Sim::new(Limits::default());
    let (alice, bob, carol) = (s.user("alice"), s.user("bob"), s.user("carol"));
    s.create(alice, "ops");
    s.join_all_to("ops", &[alice, bob, carol]);
    let now = s.now;
    let e = s.gw.admin_revoke(now, "ops", &mut s.rec).map(|_| ());
    assert_eq!(e, Err(AdminError::FloorIdle));
    assert_eq!(AdminError::FloorIdle.http_status(), 409);

    s.send(alice, json!({"op": FLOOR_REQUEST, "d": chan("ops")}));
    s.event(alice, 50, json!({"user_id": "alice"}), "granted");
    s.event(bob, 53, json!({"user_id": "alice"}), "taken");
    s.event(carol, 53, json!({"user_id": "alice"}), "taken");
    s.send(bob, json!({"op": FLOOR_REQUEST, "d": chan("ops")}));
    s.event(bob, 55, json!({"position": 1}), "queued");
    s.quiet(&[alice, bob, carol], "set up");

    let ch = s.gw.admin_revoke(now, "ops", &mut s.rec).unwrap();
    assert!(ch.floor.holder().is_some());
    s.event(
        alice,
        52,
        json!({"channel_id": "ops", "user_id": "alice", "cause": "admin"}),
        "revoked by the operator",
    );
    s.event(
        bob,
        50,
        json!({"user_id": "bob"}),
        "the queue head is granted",
    );
    s.event(alice, 53, json!({"user_id": "bob"}), "taken");
    s.event(carol, 53, json!({"user_id": "bob"}), "taken");
    s.quiet(&[alice, bob, carol], "nothing more");

    // Alone in the queue no more: the next revoke empties the floor.
    s.gw.admin_revoke(now, "ops", &mut s.rec).unwrap();
    s.event(bob, 52, json!({"cause": "admin"}), "revoked");
    for c in [alice, bob, carol] {
        s.event(c, 54, json!({"channel_id": "ops"}), "idle");
    }
    s.quiet(&[alice, bob, carol], "nothing more");
    let revoked: Vec<&String> = s
        .rec
        .traces
        .iter()
        .filter(|t| t.starts_with("floor revoked"))
        .collect();
    assert_eq!(
        revoked,
        [
            "floor revoked ops alice Cause(\"admin\")",
            "floor revoked ops bob Cause(\"admin\")"
        ]
    );
    assert!(s.gw.poll_timeout().is_some(), "zombie timers still run");
}

#[test]
fn a_kick_closes_with_4010_and_cleans_up_as_a_disconnect() {
    let mut s = Sim::new(Limits::default());
    let (alice, bob) = (s.user("alice"), s.user("bob"));
    s.create(alice, "ops");
    s.join_all_to("ops", &[alice, bob]);
    s.send(bob, json!({"op": FLOOR_REQUEST, "d": chan("ops")}));
    s.event(bob, 50, json!({"user_id": "bob"}), "granted");
    s.event(alice, 53, json!({"user_id": "bob"}), "taken");
    let now = s.now;
    s.gw.admin_kick(now, "bob", &mut s.rec).unwrap();
    assert_eq!(s.rec.closed, [(bob, CLOSE_KICKED)]);
    s.left(alice, "ops", "bob", "kicked");
    s.event(
        alice,
        54,
        json!({"channel_id": "ops"}),
        "the floor passes on",
    );
    s.quiet(&[alice, bob], "the kicked connection is sent nothing");
    assert!(s.gw.session(bob).is_none());
    assert_eq!(s.gw.stats().sessions, 1);
    assert_eq!(
        s.gw.admin_kick(now, "bob", &mut s.rec),
        Err(AdminError::UserNotFound)
    );
    assert!(
        s.rec
            .traces
            .contains(&"session close - bob Cause(\"kicked\")".to_owned()),
        "{:?}",
        s.rec.traces
    );
    // The name is free again.
    s.user("bob");
}

#[test]
fn a_members_session_in_the_trace() {
    let mut s = Sim::new(Limits::default());
    let alice = s.user("alice");
    let bob = s.user("bob");
    s.create(alice, "ops");
    s.join_all_to("ops", &[alice, bob]);
    s.send(alice, json!({"op": FLOOR_REQUEST, "d": chan("ops")}));
    s.send(bob, json!({"op": FLOOR_REQUEST, "d": chan("ops")}));
    s.send(alice, json!({"op": FLOOR_REQUEST, "d": chan("ops")}));
    s.send(alice, json!({"op": FLOOR_RELEASE, "d": chan("ops")}));
    s.send(
        bob,
        json!({"op": 20, "d": {"channel_id": "ops", "content": "hello there"}}),
    );
    s.send(bob, json!({"op": 16, "d": chan("nope")}));
    let now = s.now;
    s.gw.close(now, bob, &mut s.rec);
    assert_eq!(
        s.rec.traces,
        [
            "session identify - alice None",
            "session identify - bob None",
            "channel create ops alice None",
            "channel join ops alice None",
            "channel join ops bob None",
            "floor granted ops alice None",
            "floor taken ops alice Priority(0)",
            "floor queued ops bob Queued { position: 1, size: 1 }",
            "floor denied ops alice Reason(\"already_granted\")",
            "floor granted ops bob None",
            "floor taken ops bob Priority(0)",
            "message message ops bob Length(11)",
            "channel leave ops bob None",
            "floor idle ops - None",
            "session close - bob Cause(\"disconnect\")",
        ]
    );
    assert_eq!(s.rec.errors, [2000]);
    assert!(
        !s.rec.traces.iter().any(|t| t.contains("hello")),
        "never the content"
    );
}
