//! IDENTIFY and the identified gate in virtual time (PROTOCOL.md section 1 "Sessions", codes
//! 1000-1002 and 1004): field checks, duplicate sessions, retries and the token's priority
//! cap. tests/tests/identify.rs keeps HELLO, id echoes and the token checks under the
//! daemon's `LIVECHAT_SECRET`.

use serde_json::{Value, json};

use super::{Sim, chan};
use crate::config::Limits;
use crate::gateway::ConnId;

const IDENTIFY: i64 = 3;
const NOT_IDENTIFIED: i64 = 1000;
const INVALID_TOKEN: i64 = 1001;
const ALREADY_IDENTIFIED: i64 = 1002;
const MALFORMED: i64 = 1004;

impl Sim {
    /// IDENTIFY with `d`; returns the one frame it got.
    fn identify_raw(&mut self, c: ConnId, d: Value) -> Value {
        let r = self.req(c, json!({"op": IDENTIFY, "d": d}));
        assert_eq!(r.len(), 1, "IDENTIFY {d} gets one answer: {r:?}");
        r[0].clone()
    }
}

fn error_code(f: &Value) -> i64 {
    assert_eq!(f["op"], 201, "{f}");
    assert_eq!(f["d"]["req_op"], IDENTIFY, "{f}");
    f["d"]["code"].as_i64().unwrap()
}

#[test]
fn every_op_but_heartbeat_and_identify_is_1000_before_identify() {
    let mut s = Sim::new(Limits::default());
    let c = s.connect();
    let requests = [
        (10, json!({"channel_id": "c"})),
        (11, json!({"channel_id": "c", "ssrc": 1})),
        (12, json!({"channel_id": "c"})),
        (13, json!({"channel_id": "c", "name": "x"})),
        (14, json!({"channel_id": "c"})),
        (15, Value::Null),
        (16, json!({"channel_id": "c"})),
        (20, json!({"channel_id": "c", "content": "hi"})),
        (30, json!({"channel_id": "c"})),
        (31, json!({"channel_id": "c"})),
        (32, json!({"channel_id": "c"})),
        // Field checks come after the identified check: still 1000.
        (10, json!({"channel_id": 5})),
        (11, Value::Null),
    ];
    for (o, body) in requests {
        s.refused(c, o, body, NOT_IDENTIFIED);
    }
    s.heartbeat(&[c]);
    // The connection is still usable: identify, then the same op works.
    let tok = s.token("late", 0);
    assert_eq!(
        s.identify_raw(c, json!({"user_id": "late", "token": tok}))["op"],
        4
    );
    s.create(c, "c");
}

#[test]
fn identify_priority_is_validated_and_capped_not_refused() {
    let mut s = Sim::new(Limits::default());
    let tok = s.token("alice", 5);
    let c = s.connect();
    for p in [json!(256), json!(-1), json!("5"), json!(1.5), json!(true)] {
        let f = s.identify_raw(c, json!({"user_id": "alice", "token": tok, "priority": p}));
        assert_eq!(error_code(&f), MALFORMED, "priority {p}: {f}");
    }
    // Above the token's cap is capped ("capped by the token"), not an error.
    let f = s.identify_raw(
        c,
        json!({"user_id": "alice", "token": tok, "priority": 200}),
    );
    assert_eq!(f["op"], 4, "{f}");
    assert_eq!(s.gw.session(c).unwrap().priority, 5);
    // Explicit 0 and 255 are in range.
    for (user, p) in [("bob", 255), ("carol", 0)] {
        let c = s.connect();
        let tok = s.token(user, 255);
        let f = s.identify_raw(c, json!({"user_id": user, "token": tok, "priority": p}));
        assert_eq!(f["op"], 4, "priority {p}: {f}");
        assert_eq!(s.gw.session(c).unwrap().priority, p);
    }
}

#[test]
fn user_id_charset_and_length_are_1004() {
    let mut s = Sim::new(Limits::default());
    let c = s.connect();
    let too_long = "a".repeat(33);
    let bad_ids = [
        json!(""),
        json!(too_long),
        json!("a b"),
        json!("a/b"),
        json!("a@b"),
        json!("a:b"),
        json!("ä"),
        json!("😀"),
        json!("a\u{0}"),
        json!(" alice"),
        json!(42),
        json!(null),
        json!(["alice"]),
    ];
    let tok = s.token("x", 0);
    for u in bad_ids {
        let f = s.identify_raw(c, json!({"user_id": u, "token": tok}));
        assert_eq!(error_code(&f), MALFORMED, "user_id {u}: {f}");
    }
    // The edges that are valid: 32 characters of the full charset, and 1 character.
    let max = "Az09_.-Az09_.-Az09_.-Az09_.-Az09";
    assert_eq!(max.len(), 32);
    let tok = s.token(max, 0);
    assert_eq!(
        s.identify_raw(c, json!({"user_id": max, "token": tok}))["op"],
        4
    );
    let one = s.user("x");
    assert_eq!(s.name(one), "x");
}

#[test]
fn duplicate_user_id_across_connections_is_1002() {
    let mut s = Sim::new(Limits::default());
    let a = s.user("alice");
    let a2 = s.connect();
    let tok = s.token("alice", 0);
    let f = s.identify_raw(a2, json!({"user_id": "alice", "token": tok}));
    assert_eq!(error_code(&f), ALREADY_IDENTIFIED, "{f}");
    // The first alice is unaffected and told nothing; the second can identify as another.
    s.quiet(&[a], "a rejected duplicate login is not announced");
    assert_eq!(s.name(a), "alice");
    let tok = s.token("alice2", 0);
    assert_eq!(
        s.identify_raw(a2, json!({"user_id": "alice2", "token": tok}))["op"],
        4
    );
}

#[test]
fn identify_twice_on_one_connection_is_1002() {
    let mut s = Sim::new(Limits::default());
    let a = s.user("alice");
    for user in ["alice", "other"] {
        let tok = s.token(user, 0);
        let f = s.identify_raw(a, json!({"user_id": user, "token": tok}));
        assert_eq!(error_code(&f), ALREADY_IDENTIFIED, "again as {user}: {f}");
    }
    // Still alice: a channel op works, and "other" was not taken.
    s.create(a, "still-alice");
    let info = s.req(a, json!({"op": 16, "d": chan("still-alice")}));
    assert_eq!(info[0]["d"]["creator"], "alice");
    let o = s.user("other");
    assert_eq!(s.name(o), "other");
}

#[test]
fn a_failed_identify_leaves_the_connection_open_for_a_retry() {
    let mut s = Sim::new(Limits::default());
    let c = s.connect();
    let bobs = s.token("bob", 0);
    let f = s.identify_raw(c, json!({"user_id": "alice", "token": bobs}));
    assert_eq!(
        error_code(&f),
        INVALID_TOKEN,
        "a token for another user: {f}"
    );
    let alices = s.token("alice", 0);
    let f = s.identify_raw(c, json!({"user_id": "bad id", "token": alices}));
    assert_eq!(error_code(&f), MALFORMED, "{f}");
    assert!(s.rec.closed.is_empty(), "failed IDENTIFYs close nothing");
    assert_eq!(
        s.identify_raw(c, json!({"user_id": "alice", "token": alices}))["op"],
        4
    );
    s.create(c, "ok");
}

/// The cap is observable through floor control (FLOOR_TAKEN's `priority`).
#[test]
fn a_priority_above_the_token_cap_is_capped_as_floor_taken_shows() {
    let mut s = Sim::new(Limits::default());
    let alice = s.member("alice", 5, Some(200));
    let bob = s.member("bob", 0, None);
    s.create(alice, "f");
    s.join_all_to("f", &[alice, bob]);

    // The session priority (200) is capped by the token (5).
    s.send(alice, json!({"op": 30, "d": chan("f")}));
    assert_eq!(s.next(alice, "FLOOR_GRANTED")["op"], 50);
    let taken = s.next(bob, "FLOOR_TAKEN");
    assert_eq!(taken["op"], 53, "{taken}");
    assert_eq!(taken["d"]["priority"], 5, "{taken}");
    s.send(alice, json!({"op": 31, "d": chan("f")}));
    assert_eq!(s.next(alice, "FLOOR_IDLE")["op"], 54);
    assert_eq!(s.next(bob, "FLOOR_IDLE")["op"], 54);

    // An explicit FLOOR_REQUEST priority is capped the same way.
    s.send(
        alice,
        json!({"op": 30, "d": {"channel_id": "f", "priority": 250}}),
    );
    assert_eq!(s.next(alice, "FLOOR_GRANTED")["op"], 50);
    let taken = s.next(bob, "FLOOR_TAKEN");
    assert_eq!(taken["d"]["priority"], 5, "{taken}");
    s.quiet(&[alice, bob], "");
}
