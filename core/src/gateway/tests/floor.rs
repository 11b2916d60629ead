//! Floor control through the gateway in virtual time (PROTOCOL.md "Floor semantics", ops
//! 30-32 and 50-56): every member's frames in exact order, the exact recipients, and every
//! timer at its exact deadline.
//!
//! Besides PROTOCOL.md this relies on the implementation's documented choices (module docs
//! of core/src/floor.rs and core/src/gateway/floor.rs): preemption is immediate (no grace); a
//! floor op carrying `id` gets ACK `{req_op}` echoing it before its floor events, without `id`
//! only the floor events; a queued member's release is acknowledged only by the
//! FLOOR_QUEUE_POS_INFO of those behind it; a joiner gets FLOOR_TAKEN right after its JOIN
//! ACK when the floor is held.
//!
//! Per member the frames are taken strictly one after the other ([`Sim::next`]), so anything
//! unexpected in between fails; [`Sim::quiet`] at the end of a step catches anything extra.
//! Time moves only when a test says so ([`Sim::advance`]), so "revoked at the deadline" means
//! nothing at the deadline minus 1 ms and the revoke at the deadline itself.
//! tests/tests/floor.rs keeps the round trips that prove the daemon's wiring.

use serde_json::{Value, json};

use super::{Sim, chan, fresh_id, fresh_ssrc, ms};
use crate::config::{Limits, MAX_FLOOR_QUEUE};
use crate::gateway::CLOSE_ZOMBIE;
use crate::gateway::ConnId;
use crate::time::{Duration, Instant};

const CH: &str = "radio";
/// Floor timers for tests in which they must never fire.
const LONG_MAX: u64 = 120_000;
const LONG_PING: u64 = 60_000;

const REQUEST: i64 = 30;
const RELEASE: i64 = 31;
const PING: i64 = 32;
const LEAVE: i64 = 12;
const JOIN: i64 = 11;
const NOT_FOUND: i64 = 2000;
const NOT_PERMITTED: i64 = 2002;
const NOT_JOINED: i64 = 2004;

fn timers(max_ms: u64, ping_ms: u64) -> Limits {
    Limits {
        floor_max: Duration::from_millis(max_ms),
        floor_ping: Duration::from_millis(ping_ms),
        ..Limits::default()
    }
}

/// A gateway whose floor timers do not fire during a test.
fn sim() -> Sim {
    Sim::new(timers(LONG_MAX, LONG_PING))
}

fn chan_prio(channel: &str, priority: u8) -> Value {
    json!({"channel_id": channel, "priority": priority})
}

impl Sim {
    /// Identified sessions `names` (cap 255, priority 0); the first creates `channel`, then
    /// all join it in order.
    fn channel_of<const N: usize>(&mut self, channel: &str, names: [&str; N]) -> [ConnId; N] {
        let cs = names.map(|n| self.user(n));
        self.create(cs[0], channel);
        self.join_all_to(channel, &cs);
        cs
    }

    fn granted(&mut self, c: ConnId, channel: &str, max_ms: u64, context: &str) {
        let me = self.name(c);
        self.event(
            c,
            50,
            json!({"channel_id": channel, "user_id": me, "max_duration_ms": max_ms}),
            context,
        );
    }

    /// The member named "holder" asks for the idle floor of [`CH`] at priority 0: FLOOR_GRANTED
    /// with `max_ms` to it, FLOOR_TAKEN to each of `others`. Returns when it was granted.
    fn holder_takes(&mut self, h: ConnId, others: &[ConnId], max_ms: u64) -> Instant {
        self.op(h, REQUEST, chan(CH));
        let granted_at = self.now.mono;
        self.granted(h, CH, max_ms, "");
        for &o in others {
            self.taken(o, CH, "holder", 0, "");
        }
        granted_at
    }

    fn taken(&mut self, c: ConnId, channel: &str, holder: &str, priority: u8, context: &str) {
        let want = json!({"channel_id": channel, "user_id": holder, "priority": priority});
        self.event(c, 53, want, context);
    }

    fn revoked(&mut self, c: ConnId, channel: &str, cause: &str, context: &str) {
        let me = self.name(c);
        let want = json!({"channel_id": channel, "user_id": me, "cause": cause});
        self.event(c, 52, want, context);
    }

    fn idle(&mut self, c: ConnId, channel: &str, context: &str) {
        self.event(c, 54, chan(channel), context);
    }

    fn queue_pos(&mut self, c: ConnId, channel: &str, position: u16, size: u16, context: &str) {
        let want = json!({"channel_id": channel, "position": position, "queue_size": size});
        self.event(c, 55, want, context);
    }

    fn pong(&mut self, c: ConnId, channel: &str, context: &str) {
        self.event(c, 56, chan(channel), context);
    }

    fn denied(&mut self, c: ConnId, channel: &str, reason: &str, context: &str) {
        self.event(
            c,
            51,
            json!({"channel_id": channel, "reason": reason}),
            context,
        );
    }

    /// Floor op `o` without an id.
    fn op(&mut self, c: ConnId, o: i64, d: Value) {
        self.send(c, json!({"op": o, "d": d}));
    }

    /// `o` on `channel` with an id gets ERROR `code` echoing it as the next frame; the same
    /// without an id gets ERROR `code` without one.
    fn errs_both_ways(&mut self, c: ConnId, o: i64, channel: &str, code: i64) {
        let id = fresh_id();
        self.send(c, json!({"op": o, "d": chan(channel), "id": id}));
        let f = self.next(c, "an ERROR");
        assert_eq!(
            f,
            json!({"op": 201, "d": {"req_op": o, "code": code, "reason": f["d"]["reason"]}, "id": id}),
            "{}: op {o} on {channel} with an id",
            self.name(c)
        );
        self.op(c, o, chan(channel));
        let f = self.next(c, "an ERROR");
        assert!(
            f["op"] == 201 && f["d"]["code"] == code && f["d"]["req_op"] == o,
            "{}: op {o} on {channel}: {f}",
            self.name(c)
        );
        assert!(f.get("id").is_none(), "no id, none echoed: {f}");
    }

    /// CHANNEL_INFO's `floor` is `{state, holder?, queue}` with exactly this holder and queue.
    fn assert_floor(&mut self, c: ConnId, channel: &str, holder: Option<&str>, queue: &[&str]) {
        let r = self.req(c, json!({"op": 16, "d": chan(channel), "id": fresh_id()}));
        assert_eq!(r.len(), 1, "CHANNEL_INFO answers alone: {r:?}");
        let want = match holder {
            Some(h) => json!({"state": "taken", "holder": h, "queue": queue}),
            None => json!({"state": "idle", "queue": queue}),
        };
        assert_eq!(r[0]["d"]["floor"], want, "CHANNEL_INFO {}", r[0]);
    }
}

// ----- grant, ping ------------------------------------------------------------------------------

#[test]
fn grant_on_idle_goes_to_the_requester_and_taken_to_every_other_member() {
    let mut s = Sim::new(timers(45_000, 20_000));
    let [alice, bob, carol] = s.channel_of(CH, ["alice", "bob", "carol"]);
    let dave = s.user("dave"); // not a member

    s.op(bob, REQUEST, chan(CH));
    s.granted(bob, CH, 45_000, "max_duration_ms is LIVECHAT_FLOOR_MAX_MS");
    for c in [alice, carol] {
        s.taken(c, CH, "bob", 0, "every other member, default priority 0");
    }
    s.quiet(
        &[alice, bob, carol, dave],
        "a grant on an idle floor is GRANTED + TAKEN, nothing else, nothing to non-members",
    );
    s.assert_floor(dave, CH, Some("bob"), &[]);
}

#[test]
fn floor_ping_gets_pong_from_the_holder_and_from_a_non_holder() {
    let mut s = sim();
    let [h, o] = s.channel_of(CH, ["holder", "other"]);
    s.holder_takes(h, &[o], LONG_MAX);

    s.op(h, PING, chan(CH));
    s.pong(h, CH, "the holder's ping, no id");
    s.quiet(&[h, o], "a PONG goes to the pinger alone");
    s.op(o, PING, chan(CH));
    s.pong(o, CH, "a non-holder's ping, no id");
    s.quiet(&[h, o], "a PONG goes to the pinger alone");

    s.acked(h, PING, chan(CH));
    s.pong(h, CH, "the holder's ping after its ACK");
    s.acked(o, PING, chan(CH));
    s.pong(o, CH, "a non-holder's ping after its ACK");
    s.quiet(&[h, o], "pings change nothing about the floor");
    s.assert_floor(o, CH, Some("holder"), &[]);
}

#[test]
fn pinging_keeps_the_holder_past_several_ping_intervals() {
    const MAX: u64 = 20_000;
    const PING_MS: u64 = 600;
    let mut s = Sim::new(timers(MAX, PING_MS));
    let [h, o] = s.channel_of(CH, ["holder", "other"]);
    let granted_at = s.holder_takes(h, &[o], MAX);

    // Five ping intervals, a FLOOR_PING every 100 ms, each answered by FLOOR_PONG alone.
    while s.now.mono < granted_at + ms(5 * PING_MS) {
        s.advance(100);
        s.op(h, PING, chan(CH));
        s.pong(h, CH, "the pinging holder keeps the floor");
        s.quiet(&[h, o], "a ping moves nothing");
    }
    let last_ping = s.now.mono;
    s.assert_floor(o, CH, Some("holder"), &[]);

    // Silent now: revoked `timeout` exactly a ping interval after the last ping.
    assert!(s.gw.poll_timeout() <= Some(last_ping + ms(PING_MS)));
    s.advance_to(last_ping + ms(PING_MS - 1));
    s.quiet(&[h, o], "1 ms before the deadline");
    s.advance(1);
    s.revoked(h, CH, "timeout", "the holder stopped pinging");
    s.idle(h, CH, "empty queue");
    // The other member saw nothing between TAKEN and IDLE.
    s.idle(o, CH, "empty queue");
    s.quiet(&[h, o], "after the revoke");
}

// ----- queueing ---------------------------------------------------------------------------------

#[test]
fn queue_orders_by_priority_then_arrival_and_tells_whoever_moved() {
    let mut s = sim();
    let h = s.member("holder", 255, Some(200));
    s.create(h, CH);
    let [a, b, c, e, o] = ["anna", "ben", "cleo", "emil", "olga"].map(|n| s.user(n));
    let all = [h, a, b, c, e, o];
    s.join_all_to(CH, &all);

    s.op(h, REQUEST, chan(CH));
    s.granted(h, CH, LONG_MAX, "");
    for x in [a, b, c, e, o] {
        s.taken(x, CH, "holder", 200, "IDENTIFY priority 200 is the default");
    }

    // anna at 5: alone in the queue.
    s.op(a, REQUEST, chan_prio(CH, 5));
    s.queue_pos(a, CH, 1, 1, "first in the queue");
    s.quiet(&all, "only the requester learns its position");

    // ben at 5: behind anna (same priority, later); anna's position does not change.
    s.op(b, REQUEST, chan_prio(CH, 5));
    s.queue_pos(b, CH, 2, 2, "same priority as anna, after her");
    s.quiet(&all, "anna did not move, so she is not told");

    // cleo at 10 (with an id): ahead of both, who are told they moved.
    s.acked(c, REQUEST, chan_prio(CH, 10));
    s.queue_pos(c, CH, 1, 3, "higher priority goes first");
    s.queue_pos(a, CH, 2, 3, "pushed back by cleo");
    s.queue_pos(b, CH, 3, 3, "pushed back by cleo");
    s.quiet(&all, "after cleo queued");

    // emil at the default priority 0: last; nobody moved.
    s.op(e, REQUEST, chan(CH));
    s.queue_pos(e, CH, 4, 4, "lowest priority, last");
    s.quiet(&all, "after emil queued");

    // ben asks again (higher, still below the holder's, with an id; then plain): answered
    // with his current position, nothing changes.
    s.acked(b, REQUEST, chan_prio(CH, 50));
    s.queue_pos(
        b,
        CH,
        3,
        4,
        "a repeated request answers the current position",
    );
    s.op(b, REQUEST, chan(CH));
    s.queue_pos(
        b,
        CH,
        3,
        4,
        "a repeated request answers the current position",
    );
    s.quiet(&all, "a repeated request moves nobody");

    s.assert_floor(o, CH, Some("holder"), &["cleo", "anna", "ben", "emil"]);
}

// ----- priorities -------------------------------------------------------------------------------

#[test]
fn priority_is_capped_by_the_token_and_defaults_to_identify_priority() {
    let mut s = sim();
    // Cap 2, no IDENTIFY priority.
    let capped = s.member("capped", 2, None);
    s.create(capped, CH);
    // Cap 255, IDENTIFY priority 3.
    let mid = s.member("mid", 255, Some(3));
    // Cap 2, IDENTIFY priority 100.
    let loud = s.member("loud", 2, Some(100));
    let o = s.user("other");
    let all = [capped, mid, loud, o];
    s.join_all_to(CH, &all);

    // 200 requested, capped to 2.
    s.op(capped, REQUEST, chan_prio(CH, 200));
    s.granted(capped, CH, LONG_MAX, "");
    for x in [mid, loud, o] {
        s.taken(x, CH, "capped", 2, "priority 200 with a cap-2 token is 2");
    }

    // mid asks without a priority: its IDENTIFY priority 3 beats the capped 2 and preempts.
    s.op(mid, REQUEST, chan(CH));
    s.revoked(capped, CH, "preempted", "3 > capped 2");
    s.taken(capped, CH, "mid", 3, "after its revoke");
    s.granted(mid, CH, LONG_MAX, "IDENTIFY priority 3 by default");
    for x in [loud, o] {
        s.taken(x, CH, "mid", 3, "IDENTIFY priority is the default");
    }
    s.quiet(&all, "after the preemption");

    // capped asks for 200 again: capped to 2 < 3, so it queues instead of preempting.
    s.op(capped, REQUEST, chan_prio(CH, 200));
    s.queue_pos(capped, CH, 1, 1, "capped to 2, below the holder's 3");
    // loud's IDENTIFY priority 100 is capped to 2 as well: queued behind capped (same 2).
    s.op(loud, REQUEST, chan(CH));
    s.queue_pos(loud, CH, 2, 2, "IDENTIFY priority 100 capped to 2");
    s.quiet(&all, "queued, not preempting");
    s.assert_floor(o, CH, Some("mid"), &["capped", "loud"]);

    // Hand-over: capped holds at its capped priority 2.
    s.op(mid, RELEASE, chan(CH));
    s.granted(capped, CH, LONG_MAX, "the queue head");
    s.taken(mid, CH, "capped", 2, "");
    s.taken(loud, CH, "capped", 2, "");
    s.queue_pos(loud, CH, 1, 1, "moved up");
    s.taken(o, CH, "capped", 2, "");

    // loud asks again at 255: capped to 2, equal, so its current position, no preemption.
    s.op(loud, REQUEST, chan_prio(CH, 255));
    s.queue_pos(loud, CH, 1, 1, "255 capped to 2 does not preempt 2");
    s.quiet(&all, "after the hand-over");
}

#[test]
fn strictly_higher_priority_preempts_at_once_and_equal_priority_queues() {
    let mut s = sim();
    let low = s.member("low", 255, Some(1));
    s.create(low, CH);
    let w = s.member("waiter", 255, Some(1));
    let hi = s.member("high", 255, Some(5));
    let peer = s.member("peer", 255, Some(5));
    let o = s.user("other");
    let all = [low, w, hi, peer, o];
    s.join_all_to(CH, &all);

    s.op(low, REQUEST, chan(CH));
    s.granted(low, CH, LONG_MAX, "");
    for x in [w, hi, peer, o] {
        s.taken(x, CH, "low", 1, "");
    }
    s.op(w, REQUEST, chan(CH));
    s.queue_pos(w, CH, 1, 1, "equal priority 1 queues");

    // high (5 > 1, with an id): REVOKE preempted to low, then TAKEN; GRANTED to high at once.
    s.acked(hi, REQUEST, chan(CH));
    s.granted(hi, CH, LONG_MAX, "preemption grants at once");
    s.revoked(low, CH, "preempted", "5 > 1");
    s.taken(low, CH, "high", 5, "the preempted holder sees TAKEN too");
    s.taken(w, CH, "high", 5, "a queued member whose place is unchanged");
    s.taken(peer, CH, "high", 5, "");
    s.taken(o, CH, "high", 5, "");
    s.quiet(&all, "after the preemption");
    s.assert_floor(o, CH, Some("high"), &["waiter"]); // low is not re-queued

    // peer at 5, equal to the holder: queued ahead of the waiter (1), who is told.
    s.op(peer, REQUEST, chan(CH));
    s.queue_pos(peer, CH, 1, 2, "equal priority queues");
    s.queue_pos(w, CH, 2, 2, "pushed back");
    s.quiet(&all, "equal priority does not preempt");
    s.assert_floor(o, CH, Some("high"), &["peer", "waiter"]);

    // high releases: peer, the head, holds at 5.
    s.op(hi, RELEASE, chan(CH));
    s.granted(peer, CH, LONG_MAX, "the queue head");
    for x in [low, hi, o] {
        s.taken(x, CH, "peer", 5, "");
    }
    s.taken(w, CH, "peer", 5, "");
    s.queue_pos(w, CH, 1, 1, "moved up");
    s.op(low, REQUEST, chan(CH));
    s.queue_pos(low, CH, 2, 2, "behind the waiter");
    s.quiet(&all, "after the hand-over");

    // The queued waiter asks again at 9 > 5: it preempts and leaves the queue; low moves up.
    s.op(w, REQUEST, chan_prio(CH, 9));
    s.granted(w, CH, LONG_MAX, "a queued member preempting");
    s.revoked(peer, CH, "preempted", "9 > 5");
    s.taken(peer, CH, "waiter", 9, "");
    s.taken(low, CH, "waiter", 9, "");
    s.queue_pos(low, CH, 1, 1, "the preempter left the queue");
    s.taken(hi, CH, "waiter", 9, "");
    s.taken(o, CH, "waiter", 9, "");
    s.quiet(&all, "after the second preemption");
    s.assert_floor(o, CH, Some("waiter"), &["low"]);
}

// ----- release ----------------------------------------------------------------------------------

/// `h` holds the floor of `CH` and `queued` wait in that order (all at priority 0); the
/// others are told.
fn held_with_queue(s: &mut Sim, h: ConnId, queued: &[ConnId], others: &[ConnId]) {
    s.op(h, REQUEST, chan(CH));
    s.granted(h, CH, LONG_MAX, "");
    let holder = s.name(h);
    for &x in queued.iter().chain(others) {
        s.taken(x, CH, &holder, 0, "");
    }
    for (i, &x) in queued.iter().enumerate() {
        s.op(x, REQUEST, chan(CH));
        let n = u16::try_from(i + 1).unwrap();
        s.queue_pos(x, CH, n, n, "arrival order");
    }
}

#[test]
fn release_hands_over_to_the_queue_head_and_goes_idle_when_the_queue_is_empty() {
    let mut s = sim();
    let all = s.channel_of(CH, ["holder", "anna", "ben", "cleo", "olga"]);
    let [h, a, b, c, o] = all;
    held_with_queue(&mut s, h, &[a, b, c], &[o]);

    // The holder releases (no id): anna granted, the rest told, ben and cleo moved up.
    s.op(h, RELEASE, chan(CH));
    s.granted(a, CH, LONG_MAX, "the queue head");
    s.taken(h, CH, "anna", 0, "the releaser sees TAKEN");
    s.taken(b, CH, "anna", 0, "");
    s.queue_pos(b, CH, 1, 2, "moved up");
    s.taken(c, CH, "anna", 0, "");
    s.queue_pos(c, CH, 2, 2, "moved up");
    s.taken(o, CH, "anna", 0, "");
    s.quiet(&all, "after the first hand-over");

    // anna releases with an id: ACK first, then the floor events.
    s.acked(a, RELEASE, chan(CH));
    s.taken(a, CH, "ben", 0, "after the releaser's ACK");
    s.granted(b, CH, LONG_MAX, "the queue head");
    s.taken(c, CH, "ben", 0, "");
    s.queue_pos(c, CH, 1, 1, "moved up");
    s.taken(h, CH, "ben", 0, "");
    s.taken(o, CH, "ben", 0, "");
    s.quiet(&all, "after the second hand-over");

    s.op(b, RELEASE, chan(CH));
    s.granted(c, CH, LONG_MAX, "the last queued");
    for x in [h, a, b, o] {
        s.taken(x, CH, "cleo", 0, "");
    }
    s.quiet(&all, "after the third hand-over: nobody left in the queue");
    s.assert_floor(o, CH, Some("cleo"), &[]);

    // Empty queue: FLOOR_IDLE to every member, the releaser included.
    s.acked(c, RELEASE, chan(CH));
    for x in all {
        s.idle(x, CH, "release with an empty queue");
    }
    s.quiet(&all, "after IDLE");
    s.assert_floor(o, CH, None, &[]);
}

#[test]
fn a_queued_member_cancels_by_release_and_anyone_else_gets_2002() {
    let mut s = sim();
    let all = s.channel_of(CH, ["holder", "anna", "ben", "cleo", "olga"]);
    let [h, a, b, c, o] = all;

    // On an idle floor nobody may release.
    s.errs_both_ways(o, RELEASE, CH, NOT_PERMITTED);
    held_with_queue(&mut s, h, &[a, b, c], &[o]);

    // anna (the head) cancels without an id: she hears nothing, those behind her move up.
    s.op(a, RELEASE, chan(CH));
    s.queue_pos(b, CH, 1, 2, "moved up after anna cancelled");
    s.queue_pos(c, CH, 2, 2, "moved up after anna cancelled");
    s.quiet(&all, "a cancel tells only those behind");

    // cleo (the last) cancels with an id: her ACK and nothing else for anybody.
    s.acked(c, RELEASE, chan(CH));
    s.quiet(&all, "nobody was behind cleo");
    s.assert_floor(o, CH, Some("holder"), &["ben"]);

    // Neither holder nor queued: 2002, with and without id; nothing changes.
    s.errs_both_ways(a, RELEASE, CH, NOT_PERMITTED);
    s.errs_both_ways(o, RELEASE, CH, NOT_PERMITTED);
    s.quiet(&all, "a refused release changes nothing");
    s.assert_floor(o, CH, Some("holder"), &["ben"]);

    s.op(h, RELEASE, chan(CH));
    s.granted(b, CH, LONG_MAX, "ben is still queued");
}

// ----- errors and denials -----------------------------------------------------------------------

#[test]
fn floor_ops_on_an_unknown_channel_are_2000_and_from_a_non_member_2004() {
    let mut s = sim();
    let [h, m] = s.channel_of(CH, ["holder", "member"]);
    let x = s.user("outsider");

    for held in [false, true] {
        if held {
            s.op(h, REQUEST, chan(CH));
            s.granted(h, CH, LONG_MAX, "");
            s.taken(m, CH, "holder", 0, "");
        }
        for o in [REQUEST, RELEASE, PING] {
            s.errs_both_ways(x, o, "nowhere", NOT_FOUND);
            s.errs_both_ways(h, o, "nowhere", NOT_FOUND);
            s.errs_both_ways(x, o, CH, NOT_JOINED);
        }
        s.quiet(&[h, m, x], "refused floor ops change nothing");
        s.assert_floor(x, CH, held.then_some("holder"), &[]);
    }
}

#[test]
fn a_request_by_the_holder_is_denied_already_granted() {
    let mut s = sim();
    let [h, o] = s.channel_of(CH, ["holder", "other"]);
    s.holder_takes(h, &[o], LONG_MAX);

    s.op(h, REQUEST, chan(CH));
    s.denied(h, CH, "already_granted", "the holder asks again");
    s.acked(h, REQUEST, chan_prio(CH, 200));
    s.denied(h, CH, "already_granted", "the holder asks again, higher");
    s.quiet(&[h, o], "a denial goes to the requester alone");
    s.assert_floor(o, CH, Some("holder"), &[]);
}

#[test]
fn the_waiting_request_past_the_queue_capacity_is_denied_queue_full() {
    let mut s = sim();
    let cap = MAX_FLOOR_QUEUE;
    let names: Vec<String> = (0..cap + 2).map(|i| format!("m{i}")).collect();
    let ms_: Vec<ConnId> = names.iter().map(|n| s.user(n)).collect();
    s.create(ms_[0], CH);
    s.join_all_to(CH, &ms_);
    let (holder, rest) = (ms_[0], &ms_[1..]);
    s.op(holder, REQUEST, chan(CH));
    s.granted(holder, CH, LONG_MAX, "");
    for &x in rest {
        s.taken(x, CH, "m0", 0, "");
    }

    // m1..m32 fill the queue.
    for (i, &x) in rest[..cap].iter().enumerate() {
        s.op(x, REQUEST, chan(CH));
        let n = u16::try_from(i + 1).unwrap();
        s.queue_pos(x, CH, n, n, "filling the queue");
    }
    // m33: the queue is full, with and without an id.
    let last = rest[cap];
    s.op(last, REQUEST, chan(CH));
    s.denied(last, CH, "queue_full", "the queue is full");
    s.acked(last, REQUEST, chan(CH));
    s.denied(last, CH, "queue_full", "the queue is full");
    s.quiet(&ms_, "queueing tells only the requester; a denial too");
    let queue: Vec<&str> = names[1..=cap].iter().map(String::as_str).collect();
    s.assert_floor(last, CH, Some("m0"), &queue);

    // m7 cancels: m8..m32 move up; now m33 fits, last.
    s.op(ms_[7], RELEASE, chan(CH));
    let size = u16::try_from(cap - 1).unwrap();
    for (at, &x) in (7u16..).zip(&ms_[8..=cap]) {
        s.queue_pos(x, CH, at, size, "moved up");
    }
    s.op(last, REQUEST, chan(CH));
    let full = u16::try_from(cap).unwrap();
    s.queue_pos(last, CH, full, full, "room again");
    s.quiet(&ms_, "after the cancel and the new request");
}

// ----- timers -----------------------------------------------------------------------------------

#[test]
fn a_silent_holder_is_revoked_timeout_at_its_deadline_then_the_head_is_granted_then_idle() {
    const MAX: u64 = 20_000;
    const PING_MS: u64 = 600;
    let mut s = Sim::new(timers(MAX, PING_MS));
    let all = s.channel_of(CH, ["holder", "queued", "other"]);
    let [h, q, o] = all;

    let granted_at = s.holder_takes(h, &[q, o], MAX);
    s.advance(100);
    s.op(q, REQUEST, chan(CH));
    s.queue_pos(q, CH, 1, 1, "");
    // A non-holder's ping is answered, but it is not the holder's activity.
    s.advance(100);
    s.op(o, PING, chan(CH));
    s.pong(o, CH, "a non-holder's ping");

    let deadline = granted_at + ms(PING_MS);
    assert!(
        s.gw.poll_timeout() <= Some(deadline),
        "the driver wakes by the deadline"
    );
    s.advance_to(deadline - ms(1));
    s.quiet(&all, "1 ms before the holder's ping deadline");
    s.advance(1);
    s.revoked(h, CH, "timeout", "the holder never pinged");
    s.taken(h, CH, "queued", 0, "the revoked holder sees the new holder");
    s.granted(q, CH, MAX, "the queue head after the revoke");
    s.taken(o, CH, "queued", 0, "");
    s.quiet(&all, "one revoke, one hand-over");

    // The new holder is silent too: its timer started at its grant, the first deadline.
    let second = deadline + ms(PING_MS);
    assert!(
        s.gw.poll_timeout() <= Some(second),
        "the driver wakes by the deadline"
    );
    s.advance_to(second - ms(1));
    s.quiet(&all, "1 ms before the new holder's ping deadline");
    s.advance(1);
    s.revoked(q, CH, "timeout", "the new holder never pinged");
    s.idle(q, CH, "after its revoke");
    s.idle(h, CH, "");
    s.idle(o, CH, "");
    s.quiet(&all, "after IDLE");
    s.assert_floor(o, CH, None, &[]);
}

#[test]
fn a_pinging_holder_is_revoked_max_duration_at_its_deadline_then_the_head_is_granted_then_idle() {
    const MAX: u64 = 1500;
    const PING_MS: u64 = 600;
    let mut s = Sim::new(timers(MAX, PING_MS));
    let all = s.channel_of(CH, ["holder", "queued", "other"]);
    let [h, q, o] = all;

    let granted_at = s.holder_takes(h, &[q, o], MAX);
    s.op(q, REQUEST, chan(CH));
    s.queue_pos(q, CH, 1, 1, "");

    // A ping every 100 ms up to 1 ms before the max deadline: each answered, nothing else.
    let deadline = granted_at + ms(MAX);
    while s.now.mono + ms(100) < deadline {
        s.advance(100);
        s.op(h, PING, chan(CH));
        s.pong(h, CH, "the pinging holder keeps the floor");
        s.quiet(&all, "before the max deadline");
    }
    s.advance_to(deadline - ms(1));
    s.op(h, PING, chan(CH));
    s.pong(h, CH, "1 ms before the max deadline");
    s.quiet(&all, "1 ms before the max deadline");
    s.advance(1);
    s.revoked(h, CH, "max_duration", "held for LIVECHAT_FLOOR_MAX_MS");
    s.taken(h, CH, "queued", 0, "right after the revoke");
    s.granted(q, CH, MAX, "the queue head after the revoke");
    s.taken(o, CH, "queued", 0, "");
    s.quiet(&all, "one revoke, one hand-over");

    let second = deadline + ms(MAX);
    while s.now.mono + ms(100) < second {
        s.advance(100);
        s.op(q, PING, chan(CH));
        s.pong(q, CH, "the new holder pings");
        s.quiet(&all, "before the new holder's max deadline");
    }
    s.advance_to(second);
    s.revoked(q, CH, "max_duration", "the new holder held for its max");
    s.idle(q, CH, "right after the revoke");
    s.idle(h, CH, "");
    s.idle(o, CH, "");
    s.quiet(&all, "after IDLE");
    s.assert_floor(o, CH, None, &[]);
}

// ----- members going away -----------------------------------------------------------------------

#[test]
fn a_holder_that_disconnects_is_sent_nothing_and_the_floor_passes_on() {
    let mut s = sim();
    let [h, q1, q2, o] = s.channel_of(CH, ["holder", "first", "second", "other"]);
    held_with_queue(&mut s, h, &[q1, q2], &[o]);

    s.gw.close(s.now, h, &mut s.rec);
    assert!(
        s.take(h).is_empty(),
        "a holder that disconnects is sent nothing"
    );
    s.left(q1, CH, "holder", "leave first");
    s.granted(q1, CH, LONG_MAX, "then the floor passes on");
    s.left(q2, CH, "holder", "leave first");
    s.taken(q2, CH, "first", 0, "then the floor passes on");
    s.queue_pos(q2, CH, 1, 1, "moved up");
    s.left(o, CH, "holder", "leave first");
    s.taken(o, CH, "first", 0, "then the floor passes on");
    s.quiet(&[q1, q2, o], "after the hand-over");
    s.assert_floor(o, CH, Some("first"), &["second"]);
}

#[test]
fn a_holder_that_leaves_is_sent_only_its_ack_and_the_floor_passes_on() {
    let mut s = sim();
    let all = s.channel_of(CH, ["holder", "queued", "other"]);
    let [h, q, o] = all;
    held_with_queue(&mut s, h, &[q], &[o]);

    s.acked(h, LEAVE, chan(CH));
    s.left(q, CH, "holder", "leave first");
    s.granted(q, CH, LONG_MAX, "then the floor passes on");
    s.left(o, CH, "holder", "leave first");
    s.taken(o, CH, "queued", 0, "then the floor passes on");
    s.quiet(&all, "the leaver gets its ACK and nothing else");

    // The new holder leaves with nobody queued: IDLE to the remaining member only.
    s.acked(q, LEAVE, chan(CH));
    s.left(o, CH, "queued", "leave first");
    s.idle(o, CH, "then IDLE");
    s.quiet(&all, "the leaver gets its ACK and nothing else");
    s.assert_floor(o, CH, None, &[]);
}

#[test]
fn a_queued_member_that_disconnects_is_dequeued_and_those_behind_move_up() {
    let mut s = sim();
    let [h, q1, q2, q3, o] = s.channel_of(CH, ["holder", "first", "second", "third", "other"]);
    held_with_queue(&mut s, h, &[q1, q2, q3], &[o]);

    // The middle one disconnects.
    s.gw.close(s.now, q2, &mut s.rec);
    s.left(q3, CH, "second", "leave first");
    s.queue_pos(q3, CH, 2, 2, "moved up");
    for x in [h, q1, o] {
        s.left(x, CH, "second", "unchanged places: only the leave");
    }
    s.quiet(&[h, q1, q2, q3, o], "after the disconnect");
    s.assert_floor(o, CH, Some("holder"), &["first", "third"]);

    // Then the head.
    s.gw.close(s.now, q1, &mut s.rec);
    s.left(q3, CH, "first", "leave first");
    s.queue_pos(q3, CH, 1, 1, "moved up");
    for x in [h, o] {
        s.left(x, CH, "first", "only the leave");
    }
    s.quiet(&[h, q1, q3, o], "after the second disconnect");

    s.op(h, RELEASE, chan(CH));
    s.granted(q3, CH, LONG_MAX, "the only one still queued");
    s.taken(h, CH, "third", 0, "");
    s.taken(o, CH, "third", 0, "");
    s.quiet(&[h, q3, o], "after the release");
}

#[test]
fn a_zombie_holder_is_reaped_at_two_heartbeats_and_the_floor_passes_on() {
    const HEARTBEAT: u64 = 400;
    let mut s = Sim::new(Limits {
        heartbeat: ms(HEARTBEAT),
        ..timers(LONG_MAX, LONG_PING)
    });
    let [z, q, o] = s.channel_of(CH, ["zombie", "queued", "other"]);
    held_with_queue(&mut s, z, &[q], &[o]);
    // The holder's last frame was its request; the others heartbeat every 150 ms.
    let silent_since = s.now.mono;
    let reaped_at = silent_since + ms(2 * HEARTBEAT);
    while s.now.mono + ms(150) < reaped_at {
        s.advance(150);
        s.heartbeat(&[q, o]);
    }
    s.advance_to(reaped_at - ms(1));
    s.quiet(&[z, q, o], "1 ms before two heartbeat intervals of silence");
    assert!(s.rec.closed.is_empty());
    s.advance(1);
    assert_eq!(s.rec.closed, vec![(z, CLOSE_ZOMBIE)], "reaped with 4000");
    assert!(s.take(z).is_empty(), "a reaped holder is sent nothing");
    s.left(q, CH, "zombie", "the reaped holder's leave first");
    s.granted(q, CH, LONG_MAX, "after the reaped holder's leave");
    s.left(o, CH, "zombie", "leave first");
    s.taken(o, CH, "queued", 0, "then the floor passes on");
    s.quiet(&[q, o], "after the hand-over");
    s.assert_floor(q, CH, Some("queued"), &[]);
}

// ----- channels ---------------------------------------------------------------------------------

#[test]
fn floors_of_different_channels_are_independent() {
    let mut s = sim();
    let [a1, a2, b1, b2, x] = ["a1", "a2", "b1", "b2", "x"].map(|n| s.user(n)); // x in both
    let all = [a1, a2, b1, b2, x];
    s.create(a1, "alpha");
    s.create(b1, "bravo");
    s.join_all_to("alpha", &[a1, a2, x]);
    s.join_all_to("bravo", &[b1, b2, x]);

    s.op(a1, REQUEST, chan("alpha"));
    s.granted(a1, "alpha", LONG_MAX, "");
    s.taken(a2, "alpha", "a1", 0, "");
    s.taken(x, "alpha", "a1", 0, "");
    s.quiet(&all, "alpha's floor events go to alpha's members only");

    s.op(b1, REQUEST, chan("bravo"));
    s.granted(b1, "bravo", LONG_MAX, "bravo's floor is idle");
    s.taken(b2, "bravo", "b1", 0, "");
    s.taken(x, "bravo", "b1", 0, "");
    s.quiet(&all, "bravo's floor events go to bravo's members only");

    // x waits in both.
    s.op(x, REQUEST, chan("alpha"));
    s.queue_pos(x, "alpha", 1, 1, "");
    s.op(x, REQUEST, chan("bravo"));
    s.queue_pos(x, "bravo", 1, 1, "");
    // A holder of one channel is nobody in the other.
    s.errs_both_ways(b2, REQUEST, "alpha", NOT_JOINED);
    s.errs_both_ways(a1, RELEASE, "bravo", NOT_JOINED);
    s.quiet(&all, "queued in both");

    // alpha hands over to x; bravo is untouched and x still waits there.
    s.op(a1, RELEASE, chan("alpha"));
    s.granted(x, "alpha", LONG_MAX, "");
    s.taken(a1, "alpha", "x", 0, "");
    s.taken(a2, "alpha", "x", 0, "");
    s.quiet(&all, "alpha's hand-over touches nobody in bravo");
    s.assert_floor(b2, "bravo", Some("b1"), &["x"]);

    // x cancels in bravo, releases alpha.
    s.op(x, RELEASE, chan("bravo"));
    s.op(x, RELEASE, chan("alpha"));
    for c in [a1, a2, x] {
        s.idle(c, "alpha", "");
    }
    s.quiet(&all, "bravo hears nothing of alpha going idle");
    s.assert_floor(b2, "bravo", Some("b1"), &[]);
    s.assert_floor(b2, "alpha", None, &[]);
}

#[test]
fn a_member_joining_a_held_floor_gets_floor_taken_right_after_its_join_ack() {
    let mut s = sim();
    let h = s.member("holder", 255, Some(4));
    s.create(h, CH);
    s.create(h, "calm");
    let q = s.user("queued");
    s.join_all_to(CH, &[h, q]);
    s.op(h, REQUEST, chan(CH));
    s.granted(h, CH, LONG_MAX, "");
    s.taken(q, CH, "holder", 4, "");
    s.op(q, REQUEST, chan(CH));
    s.queue_pos(q, CH, 1, 1, "");

    let j = s.user("joiner");
    let id = fresh_id();
    s.send(
        j,
        json!({"op": JOIN, "d": {"channel_id": CH, "ssrc": fresh_ssrc()}, "id": id}),
    );
    let f = s.next(j, "JOIN's ACK, the first frame after joining");
    assert!(f["op"] == 200 && f["id"] == id, "joiner: {f}");
    s.taken(j, CH, "holder", 4, "right after the JOIN ACK");
    s.member_event(h, "join", CH, "joiner", "the others hear only the join");
    s.member_event(q, "join", CH, "joiner", "the others hear only the join");
    s.quiet(&[h, q, j], "one FLOOR_TAKEN to the joiner, nothing else");

    // Joining an idle floor: the ACK and no floor message.
    s.enter(j, "calm");
    s.quiet(&[j], "an idle floor sends the joiner nothing");

    // The joiner queues behind the one already waiting.
    s.op(j, REQUEST, chan(CH));
    s.queue_pos(j, CH, 2, 2, "behind the earlier request");
    s.quiet(&[h, q, j], "");
}

#[test]
fn deleting_a_channel_with_a_held_floor_sends_only_delete_and_stops_its_timers() {
    const MAX: u64 = 3000;
    const PING_MS: u64 = 1500;
    let mut s = Sim::new(timers(MAX, PING_MS));
    let all = s.channel_of(CH, ["owner", "holder", "queued"]);
    let [owner, h, q] = all;
    let granted_at = s.holder_takes(h, &[owner, q], MAX);
    s.op(q, REQUEST, chan(CH));
    s.queue_pos(q, CH, 1, 1, "");
    assert!(s.gw.poll_timeout() <= Some(granted_at + ms(PING_MS)));

    s.advance(100);
    let r = s.req(owner, json!({"op": 14, "d": chan(CH)}));
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(
        r[0]["d"],
        json!({"event": "delete", "channel_id": CH, "user_id": "owner"})
    );
    assert_eq!(r[1]["d"]["req_op"], 14);
    for c in [h, q] {
        let d = s.event(c, 100, json!({"event": "delete", "channel_id": CH}), "");
        assert_eq!(d["user_id"], "owner", "{d}");
    }
    s.quiet(&all, "a delete sends `delete` and no floor messages");
    s.advance_to(granted_at + ms(PING_MS));
    s.quiet(&all, "nothing at the deleted holder's ping deadline");
    s.advance_to(granted_at + ms(MAX));
    s.quiet(
        &all,
        "nothing when the deleted floor's timers would have fired",
    );

    s.errs_both_ways(h, RELEASE, CH, NOT_FOUND);
    s.errs_both_ways(q, REQUEST, CH, NOT_FOUND);
    // A channel created again under the same id starts with an idle floor.
    s.create(owner, CH);
    s.assert_floor(owner, CH, None, &[]);
}

// ----- ids --------------------------------------------------------------------------------------

#[test]
fn floor_ops_with_an_id_are_acked_first_and_without_one_get_only_floor_events() {
    let mut s = sim();
    let [h, o] = s.channel_of(CH, ["holder", "other"]);

    // Without ids: only the floor events.
    s.op(h, REQUEST, chan(CH));
    s.granted(h, CH, LONG_MAX, "no ACK without an id");
    s.taken(o, CH, "holder", 0, "");
    s.op(h, PING, chan(CH));
    s.pong(h, CH, "no ACK without an id");
    s.op(o, REQUEST, chan(CH));
    s.queue_pos(o, CH, 1, 1, "no ACK without an id");
    s.op(o, RELEASE, chan(CH)); // cancel: nothing at all
    s.quiet(&[h, o], "a cancel without an id gets nothing");
    s.op(h, RELEASE, chan(CH));
    s.idle(h, CH, "no ACK without an id");
    s.idle(o, CH, "");
    s.quiet(&[h, o], "no ACKs without ids");

    // With ids: ACK {req_op} echoing the id, then the same floor events.
    s.acked(h, REQUEST, chan(CH));
    s.granted(h, CH, LONG_MAX, "after the ACK");
    s.taken(o, CH, "holder", 0, "");
    s.acked(h, PING, chan(CH));
    s.pong(h, CH, "after the ACK");
    s.acked(o, REQUEST, chan(CH));
    s.queue_pos(o, CH, 1, 1, "after the ACK");
    s.acked(o, RELEASE, chan(CH)); // cancel: the ACK alone
    s.quiet(&[h, o], "a cancel with an id gets its ACK alone");
    s.acked(h, RELEASE, chan(CH));
    s.idle(h, CH, "after the ACK");
    s.idle(o, CH, "");
    s.quiet(&[h, o], "one ACK per request");

    // Errors: with an id echoed, without none.
    s.errs_both_ways(o, RELEASE, CH, NOT_PERMITTED);
    s.quiet(&[h, o], "one ERROR per request");
}
