//! Channel rules in virtual time (PROTOCOL.md section 3 "Channels"): who may update and
//! delete, 2000/2001/2002/2003/2004/2007, and what a delete leaves behind. Exact recipients:
//! every member's frames are taken one after the other and checked quiet at the end.
//! tests/tests/channels.rs keeps the life cycle over real sockets and the settings' wiring.

use serde_json::{Value, json};

use super::{Sim, chan, fresh_ssrc};
use crate::config::Limits;

const JOIN: i64 = 11;
const LEAVE: i64 = 12;
const UPDATE: i64 = 13;
const DELETE: i64 = 14;
const INFO: i64 = 16;
const MESSAGE: i64 = 20;

fn join_d(channel: &str, ssrc: u32) -> Value {
    json!({"channel_id": channel, "ssrc": ssrc})
}

impl Sim {
    /// Sends `o` with `d` and an id; its ACK is the next frame; returns the ACK's `d`.
    fn ack(&mut self, c: crate::gateway::ConnId, o: i64, d: Value) -> Value {
        let id = super::fresh_id();
        self.send(c, json!({"op": o, "d": d, "id": id}));
        let f = self.next(c, "an ACK");
        assert!(
            f["op"] == 200 && f["id"] == id && f["d"]["req_op"] == o,
            "{}: op {o} should be ACKed with id {id}, got {f}",
            self.name(c)
        );
        f["d"].clone()
    }

    fn info(&mut self, c: crate::gateway::ConnId, channel: &str) -> Value {
        self.ack(c, INFO, chan(channel))
    }
}

#[test]
fn a_creator_who_is_not_a_member_may_update_and_delete() {
    let mut s = Sim::new(Limits::default());
    let owner = s.user("owner");
    let m = s.user("member");
    s.create(owner, "net");
    s.enter(m, "net");
    s.ack(owner, UPDATE, json!({"channel_id": "net", "name": "Net"}));
    let ev = s.event(m, 100, json!({"event": "update", "channel_id": "net"}), "");
    assert_eq!(ev["name"], "Net", "{ev}");
    s.quiet(&[owner, m], "the creator is not a member: no update event");
    s.ack(owner, DELETE, chan("net"));
    s.event(m, 100, json!({"event": "delete", "channel_id": "net"}), "");
    s.quiet(&[owner, m], "the creator is not a member: no delete event");
}

#[test]
fn only_the_creator_may_update_or_delete_2002() {
    let mut s = Sim::new(Limits::default());
    let alice = s.user("alice");
    let bob = s.user("bob");
    s.ack(alice, 10, json!({"channel_id": "mine", "name": "Mine"}));
    s.enter(bob, "mine");
    s.refused(
        bob,
        UPDATE,
        json!({"channel_id": "mine", "name": "Stolen"}),
        2002,
    );
    s.refused(bob, DELETE, chan("mine"), 2002);
    let info = s.info(bob, "mine");
    assert_eq!(
        info["name"], "Mine",
        "a refused update changes nothing: {info}"
    );
    s.quiet(&[alice, bob], "refused update/delete send no events");
}

#[test]
fn unknown_channels_are_2000_for_every_channel_op() {
    let mut s = Sim::new(Limits::default());
    let c = s.user("alice");
    s.refused(c, JOIN, join_d("ghost", fresh_ssrc()), 2000);
    s.refused(c, LEAVE, chan("ghost"), 2000);
    s.refused(c, UPDATE, json!({"channel_id": "ghost", "name": "x"}), 2000);
    s.refused(c, DELETE, chan("ghost"), 2000);
    s.refused(c, INFO, chan("ghost"), 2000);
    s.refused(
        c,
        MESSAGE,
        json!({"channel_id": "ghost", "content": "hello?"}),
        2000,
    );
    s.quiet(&[c], "one ERROR per request");
}

#[test]
fn join_twice_is_2003_and_leave_when_not_joined_is_2004() {
    let mut s = Sim::new(Limits::default());
    let alice = s.user("alice");
    let bob = s.user("bob");
    s.create(alice, "c");
    s.refused(bob, LEAVE, chan("c"), 2004);
    s.enter(bob, "c");
    s.refused(bob, JOIN, join_d("c", fresh_ssrc()), 2003);
    assert_eq!(s.info(bob, "c")["members"], json!(["bob"]));
    s.ack(bob, LEAVE, chan("c"));
    s.refused(bob, LEAVE, chan("c"), 2004);
    // Joining again after leaving works.
    s.enter(bob, "c");
    s.quiet(&[alice, bob], "the creator is not a member");
}

#[test]
fn a_full_channel_is_2001_until_someone_leaves() {
    let mut s = Sim::new(Limits::default());
    let owner = s.user("owner");
    s.ack(owner, 10, json!({"channel_id": "pair", "capacity": 2}));
    let [a, b, c] = ["a", "b", "c"].map(|n| s.user(n));
    s.enter(a, "pair");
    s.enter(b, "pair");
    s.refused(c, JOIN, join_d("pair", fresh_ssrc()), 2001);
    s.member_event(a, "join", "pair", "b", "");
    s.quiet(&[a, b, c], "a refused join is not announced");
    assert_eq!(s.info(owner, "pair")["member_count"], 2);
    s.ack(b, LEAVE, chan("pair"));
    s.enter(c, "pair");
    s.left(a, "pair", "b", "");
    s.member_event(a, "join", "pair", "c", "");
    s.quiet(&[a, b, c], "after the swap");
}

#[test]
fn an_ssrc_in_use_is_2007_and_freed_by_leave() {
    let mut s = Sim::new(Limits::default());
    let alice = s.user("alice");
    let bob = s.user("bob");
    s.create(alice, "c1");
    s.create(alice, "c2");
    let ssrc = fresh_ssrc();
    s.ack(alice, JOIN, join_d("c1", ssrc));
    // Another user, another channel, same SSRC: unique per server.
    s.refused(bob, JOIN, join_d("c2", ssrc), 2007);
    // Same channel too.
    s.refused(bob, JOIN, join_d("c1", ssrc), 2007);
    s.quiet(&[alice], "a refused join is not announced");
    // The edges of the u32 range are valid SSRCs.
    s.ack(bob, JOIN, join_d("c2", 0));
    s.ack(bob, LEAVE, chan("c2"));
    s.ack(bob, JOIN, join_d("c2", u32::MAX));
    s.ack(bob, LEAVE, chan("c2"));
    // After alice leaves, her SSRC is free.
    s.ack(alice, LEAVE, chan("c1"));
    s.ack(bob, JOIN, join_d("c2", ssrc));
}

#[test]
fn join_after_delete_is_2000_and_delete_removes_members() {
    let mut s = Sim::new(Limits::default());
    let alice = s.user("alice");
    let bob = s.user("bob");
    s.create(alice, "tmp");
    let bob_ssrc = fresh_ssrc();
    s.ack(bob, JOIN, join_d("tmp", bob_ssrc));
    s.ack(alice, DELETE, chan("tmp"));
    s.event(
        bob,
        100,
        json!({"event": "delete", "channel_id": "tmp"}),
        "",
    );
    s.refused(bob, JOIN, join_d("tmp", fresh_ssrc()), 2000);
    s.refused(bob, LEAVE, chan("tmp"), 2000);
    s.refused(
        bob,
        MESSAGE,
        json!({"channel_id": "tmp", "content": "anyone?"}),
        2000,
    );
    // Re-created under the same id, it is a new, empty channel with a new creator, and bob
    // is not a member any more (no 2003) and his SSRC is free (no 2007).
    s.create(bob, "tmp");
    assert_eq!(s.info(bob, "tmp")["member_count"], 0);
    s.ack(bob, JOIN, join_d("tmp", bob_ssrc));
    s.refused(alice, DELETE, chan("tmp"), 2002);
    s.quiet(&[alice, bob], "alice is no member of the new tmp");
}

#[test]
fn the_creator_keeps_its_rights_after_reconnecting() {
    // The creator is a user: reconnecting under the same user_id does not lose the channel.
    let mut s = Sim::new(Limits::default());
    let owner = s.user("owner");
    s.create(owner, "mine");
    s.gw.close(s.now, owner, &mut s.rec);
    let m = s.user("member");
    s.enter(m, "mine");
    let owner = s.user("owner");
    s.ack(
        owner,
        UPDATE,
        json!({"channel_id": "mine", "name": "Still mine"}),
    );
    s.event(m, 100, json!({"event": "update", "channel_id": "mine"}), "");
    s.ack(owner, DELETE, chan("mine"));
    s.event(m, 100, json!({"event": "delete", "channel_id": "mine"}), "");
    s.quiet(&[owner, m], "");
}
