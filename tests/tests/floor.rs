//! Floor control end to end (PROTOCOL.md "Floor semantics", ops 30-32 and 50-56): the real
//! binary over real WebSockets, with the exact order of events each member receives and the
//! exact recipients (everyone who must hear an event hears it, the others stay quiet).
//!
//! Besides PROTOCOL.md this relies on the implementation's documented choices (module docs of
//! core/src/floor.rs and core/src/gateway/floor.rs): preemption is immediate (no grace); a
//! floor op carrying `id` gets ACK `{req_op}` echoing it before its floor events, without `id`
//! only the floor events; a queued member's release is acknowledged only by the
//! FLOOR_QUEUE_POS_INFO of those behind it; a joiner gets FLOOR_TAKEN right after its JOIN ACK
//! when the floor is held.
//!
//! Per recipient the order is checked by taking frames strictly one after the other
//! ([`Client::recv`]), so anything unexpected in between fails; a short quiet window at the end
//! of a step catches anything extra. Timer tests never bound a wall-clock time more tightly than
//! PROTOCOL.md's "within 1 s of its deadline".

use std::time::Duration;

use futures_util::future::join_all;
use livechat_tests::*;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How long a member must stay silent to count as "not told".
const QUIET: u64 = 250;
/// The channel most tests use.
const CH: &str = "radio";
/// Floor timers for tests in which they must never fire.
const LONG_MAX: u64 = 120_000;
const LONG_PING: u64 = 60_000;

// ----- daemons and members ---------------------------------------------------------------------

/// A daemon with floor timers `max_ms` and `ping_ms` (in this run's time: [`timer_ms`]).
async fn daemon_with_timers(max_ms: u64, ping_ms: u64) -> Daemon {
    Daemon::builder()
        .env("LIVECHAT_FLOOR_MAX_MS", &timer_ms(max_ms).to_string())
        .env("LIVECHAT_FLOOR_PING_MS", &timer_ms(ping_ms).to_string())
        .start()
        .await
}

/// A daemon whose floor timers do not fire during a test.
async fn daemon() -> Daemon {
    daemon_with_timers(LONG_MAX, LONG_PING).await
}

/// Connects and identifies `user_id` with a token of priority cap `cap`, sending IDENTIFY's
/// `priority` when given.
async fn identified_with(d: &Daemon, user_id: &str, cap: u8, priority: Option<u8>) -> Client {
    let mut c = Client::connect(d, user_id).await;
    let mut body = json!({"user_id": user_id, "token": d.token_with(user_id, 3600, cap)});
    if let Some(p) = priority {
        body["priority"] = json!(p);
    }
    let f = c.identify_raw(body.clone()).await;
    assert_eq!(
        f["op"],
        op::READY,
        "{user_id}: IDENTIFY {body} should get READY, got {}",
        describe(&f)
    );
    c.user_id = Some(user_id.to_owned());
    c
}

/// Each client joins `channel` (which exists) in order; then each takes the `join` events of
/// those after it, strictly in order, so that every member starts with nothing pending.
async fn join_all_to(channel: &str, cs: &mut [&mut Client]) {
    for c in cs.iter_mut() {
        c.join(channel).await;
    }
    let names: Vec<String> = cs.iter().map(|c| c.uid().to_owned()).collect();
    for (i, c) in cs.iter_mut().enumerate() {
        for later in &names[i + 1..] {
            left_or_joined(c, "join", channel, later, "setting up the channel").await;
        }
    }
}

/// Identified clients `names`; the first creates `channel`, then all join it in order.
async fn channel_of<const N: usize>(d: &Daemon, channel: &str, names: [&str; N]) -> [Client; N] {
    let mut cs = Vec::with_capacity(N);
    for n in names {
        cs.push(Client::identified(d, n).await);
    }
    cs[0].create(channel).await;
    let mut refs: Vec<&mut Client> = cs.iter_mut().collect();
    join_all_to(channel, &mut refs).await;
    cs.try_into()
        .unwrap_or_else(|_| unreachable!("exactly N clients"))
}

/// Every client in `cs` receives nothing for [`QUIET`] ms (checked concurrently).
async fn quiet(cs: &mut [&mut Client], context: &str) {
    quiet_for(cs, ms(QUIET), context).await;
}

async fn quiet_for(cs: &mut [&mut Client], within: Duration, context: &str) {
    join_all(cs.iter_mut().map(|c| c.assert_quiet(within, context))).await;
}

// ----- sending floor ops -----------------------------------------------------------------------

fn chan(channel: &str) -> Value {
    json!({"channel_id": channel})
}

fn chan_prio(channel: &str, priority: u8) -> Value {
    json!({"channel_id": channel, "priority": priority})
}

/// Sends `o` with `d` and a fresh id; the very next frame must be its ACK, exactly
/// `{req_op: o}`, echoing the id.
async fn send_acked(c: &mut Client, o: i64, d: Value) {
    let id = c.send_request(o, d.clone()).await;
    let f = c
        .recv(&format!("ACK for {} {d} (id {id})", op_name(o)))
        .await;
    assert!(
        f["op"] == op::ACK && has_id(&f, id),
        "{}: a floor op with an id gets its ACK echoing the id before any floor event: sent {} \
         {d} with id {id}, next frame was {}",
        c.label(),
        op_name(o),
        describe(&f)
    );
    let ack = c.check_ack(&f, o, &show(&d));
    assert_eq!(
        ack,
        json!({"req_op": o}),
        "{}: a floor op's ACK is just {{req_op}}",
        c.label()
    );
}

/// `o` on `channel` with an id gets ERROR `code` echoing it as the next frame; then the same
/// without an id gets ERROR `code` without one.
async fn errs_both_ways(c: &mut Client, o: i64, channel: &str, code: i64) {
    let d = chan(channel);
    let sent = format!("{} {d}", op_name(o));
    let id = c.send_request(o, d.clone()).await;
    let f = c.recv(&format!("ERROR {code} for {sent} (id {id})")).await;
    c.check_error(&f, Some(o), code, &sent);
    assert!(
        has_id(&f, id),
        "{}: the ERROR for {sent} must echo id {id}: {}",
        c.label(),
        show(&f)
    );
    c.send_op(o, d).await;
    let f = c.recv(&format!("ERROR {code} for {sent} without id")).await;
    c.check_error(&f, Some(o), code, &format!("{sent} without id"));
    assert!(
        has_no_id(&f),
        "{}: the ERROR for {sent} sent without an id carries none: {}",
        c.label(),
        show(&f)
    );
}

// ----- expecting floor events ------------------------------------------------------------------

/// The very next frame `c` receives must be `o` (without `id`), and its `d` must hold exactly
/// the values in `want`. Returns `d`.
async fn next_event(c: &mut Client, o: i64, want: Value, context: &str) -> Value {
    let what = format!("{} {want} ({context})", op_name(o));
    let f = c.recv(&what).await;
    let fields = want.as_object().expect("`want` is a JSON object");
    let matches = f["op"] == o && fields.iter().all(|(k, v)| f["d"][k] == *v);
    assert!(
        matches,
        "{}: the next frame should be {what}, got {}",
        c.label(),
        describe(&f)
    );
    assert!(
        has_no_id(&f),
        "{}: events carry no `id`: {}",
        c.label(),
        show(&f)
    );
    f["d"].clone()
}

/// FLOOR_GRANTED to `c`, announcing the daemon's `max_ms` timer (set with [`timer_ms`]).
async fn granted(c: &mut Client, channel: &str, max_ms: u64, context: &str) {
    let me = c.uid().to_owned();
    next_event(
        c,
        op::FLOOR_GRANTED,
        json!({"channel_id": channel, "user_id": me, "max_duration_ms": timer_ms(max_ms)}),
        context,
    )
    .await;
}

async fn taken(c: &mut Client, channel: &str, holder: &str, priority: u8, context: &str) {
    next_event(
        c,
        op::FLOOR_TAKEN,
        json!({"channel_id": channel, "user_id": holder, "priority": priority}),
        context,
    )
    .await;
}

async fn revoked(c: &mut Client, channel: &str, cause: &str, context: &str) {
    let me = c.uid().to_owned();
    next_event(
        c,
        op::FLOOR_REVOKE,
        json!({"channel_id": channel, "user_id": me, "cause": cause}),
        context,
    )
    .await;
}

async fn idle(c: &mut Client, channel: &str, context: &str) {
    next_event(c, op::FLOOR_IDLE, chan(channel), context).await;
}

async fn queue_pos(c: &mut Client, channel: &str, position: u16, size: u16, context: &str) {
    next_event(
        c,
        op::FLOOR_QUEUE_POS_INFO,
        json!({"channel_id": channel, "position": position, "queue_size": size}),
        context,
    )
    .await;
}

async fn pong(c: &mut Client, channel: &str, context: &str) {
    next_event(c, op::FLOOR_PONG, chan(channel), context).await;
}

async fn denied(c: &mut Client, channel: &str, reason: &str, context: &str) {
    next_event(
        c,
        op::FLOOR_DENY,
        json!({"channel_id": channel, "reason": reason}),
        context,
    )
    .await;
}

/// The next frame is CHANNEL_EVENT `event` (`join`/`leave`) of `who` in `channel`.
async fn left_or_joined(c: &mut Client, event: &str, channel: &str, who: &str, context: &str) {
    next_event(
        c,
        op::CHANNEL_EVENT,
        json!({"event": event, "channel_id": channel, "user_id": who}),
        context,
    )
    .await;
}

async fn left(c: &mut Client, channel: &str, who: &str, context: &str) {
    left_or_joined(c, "leave", channel, who, context).await;
}

/// CHANNEL_INFO's `floor` is `{state, holder?, queue}` with exactly this holder and queue order.
async fn assert_floor(c: &mut Client, channel: &str, holder: Option<&str>, queue: &[&str]) {
    let info = c.info(channel).await;
    let f = &info["floor"];
    match holder {
        Some(h) => {
            assert_eq!(f["state"], "taken", "CHANNEL_INFO floor: {info}");
            assert_eq!(f["holder"], h, "CHANNEL_INFO floor holder: {info}");
        }
        None => {
            assert_eq!(f["state"], "idle", "CHANNEL_INFO floor: {info}");
            assert!(
                f.get("holder").is_none_or(Value::is_null),
                "an idle floor has no holder: {info}"
            );
        }
    }
    assert_eq!(
        f["queue"],
        json!(queue),
        "CHANNEL_INFO floor queue, head first: {info}"
    );
}

/// PROTOCOL.md: a timer "fires within 1 s of its deadline". The deadline is `timer` after the
/// grant, which the server made after `sent` (the request went out) and before `got` (GRANTED
/// came in), so the revoke cannot arrive before `sent + timer` and must arrive before
/// `got + timer + 1 s`. In a slowed run (`LIVECHAT_TEST_TIME_SCALE`) the timer and the second
/// are both in that run's time.
fn assert_fired_in_time(what: &str, sent: Instant, got: Instant, arrived: Instant, timer: u64) {
    let early = sent + ms(timer_ms(timer));
    let late = got + scaled(ms(timer + 1000));
    assert!(
        arrived >= early,
        "{what} arrived {:?} after the request was sent, before its {timer} ms deadline",
        arrived - sent
    );
    assert!(
        arrived < late,
        "{what} arrived {:?} after GRANTED, more than 1 s after its {timer} ms deadline",
        arrived - got
    );
}

/// The holder pings every 100 ms (each answered by FLOOR_PONG) until FLOOR_REVOKE `cause`
/// arrives. Returns when it arrived and how many pings are still unanswered (their PONGs come
/// after the floor events the revoke started).
async fn ping_until_revoked(c: &mut Client, channel: &str, cause: &str) -> (Instant, usize) {
    let me = c.uid().to_owned();
    let start = Instant::now();
    let mut outstanding = 0usize;
    loop {
        assert!(
            start.elapsed() < scaled(Duration::from_secs(15)),
            "{me}: no FLOOR_REVOKE {cause} within 15 s of pinging"
        );
        c.send_op(op::FLOOR_PING, chan(channel)).await;
        outstanding += 1;
        let f = c
            .recv(&format!("FLOOR_PONG, or FLOOR_REVOKE {cause}"))
            .await;
        if f["op"] == op::FLOOR_PONG && f["d"]["channel_id"] == channel {
            outstanding -= 1;
            tokio::time::sleep(scaled(ms(100))).await;
            continue;
        }
        let arrived = Instant::now();
        let want = json!({"channel_id": channel, "user_id": me, "cause": cause});
        assert!(
            f["op"] == op::FLOOR_REVOKE
                && ["channel_id", "user_id", "cause"]
                    .iter()
                    .all(|k| f["d"][k] == want[k]),
            "{me}: while pinging, expected FLOOR_PONG or FLOOR_REVOKE {want}, got {}",
            describe(&f)
        );
        return (arrived, outstanding);
    }
}

// ----- grant, ping ------------------------------------------------------------------------------

#[tokio::test]
async fn grant_on_idle_goes_to_the_requester_and_taken_to_every_other_member() {
    let d = daemon_with_timers(45_000, 20_000).await;
    let [mut alice, mut bob, mut carol] = channel_of(&d, CH, ["alice", "bob", "carol"]).await;
    let mut dave = Client::identified(&d, "dave").await; // not a member

    bob.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(
        &mut bob,
        CH,
        45_000,
        "max_duration_ms is LIVECHAT_FLOOR_MAX_MS",
    )
    .await;
    for c in [&mut alice, &mut carol] {
        taken(c, CH, "bob", 0, "every other member, default priority 0").await;
    }
    quiet(
        &mut [&mut alice, &mut bob, &mut carol, &mut dave],
        "a grant on an idle floor is GRANTED + TAKEN, nothing else, nothing to non-members",
    )
    .await;
    assert_floor(&mut dave, CH, Some("bob"), &[]).await;
}

#[tokio::test]
async fn floor_ping_gets_pong_from_the_holder_and_from_a_non_holder() {
    let d = daemon().await;
    let [mut h, mut o] = channel_of(&d, CH, ["holder", "other"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    taken(&mut o, CH, "holder", 0, "").await;

    h.send_op(op::FLOOR_PING, chan(CH)).await;
    pong(&mut h, CH, "the holder's ping, no id").await;
    quiet(&mut [&mut h, &mut o], "a PONG goes to the pinger alone").await;
    o.send_op(op::FLOOR_PING, chan(CH)).await;
    pong(&mut o, CH, "a non-holder's ping, no id").await;
    quiet(&mut [&mut h, &mut o], "a PONG goes to the pinger alone").await;

    send_acked(&mut h, op::FLOOR_PING, chan(CH)).await;
    pong(&mut h, CH, "the holder's ping after its ACK").await;
    send_acked(&mut o, op::FLOOR_PING, chan(CH)).await;
    pong(&mut o, CH, "a non-holder's ping after its ACK").await;
    quiet(
        &mut [&mut h, &mut o],
        "pings change nothing about the floor",
    )
    .await;
    assert_floor(&mut o, CH, Some("holder"), &[]).await;
}

#[tokio::test]
async fn pinging_keeps_the_holder_past_several_ping_intervals() {
    const MAX: u64 = 20_000;
    const PING: u64 = 600;
    let d = daemon_with_timers(MAX, PING).await;
    let [mut h, mut o] = channel_of(&d, CH, ["holder", "other"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, MAX, "").await;
    let got = Instant::now();
    taken(&mut o, CH, "holder", 0, "").await;

    // Five ping intervals, a FLOOR_PING every 100 ms, each answered by FLOOR_PONG alone.
    let mut last_ping = Instant::now();
    while got.elapsed() < scaled(ms(5 * PING)) {
        last_ping = Instant::now();
        h.send_op(op::FLOOR_PING, chan(CH)).await;
        pong(&mut h, CH, "the pinging holder keeps the floor").await;
        tokio::time::sleep(scaled(ms(100))).await;
    }
    let last_pong = Instant::now();
    assert_floor(&mut o, CH, Some("holder"), &[]).await;

    // Silent now: revoked `timeout` a ping interval after the last ping (not after the grant).
    revoked(&mut h, CH, "timeout", "the holder stopped pinging").await;
    let arrived = Instant::now();
    assert_fired_in_time(
        "the revoke after the last ping",
        last_ping,
        last_pong,
        arrived,
        PING,
    );
    idle(&mut h, CH, "empty queue").await;
    // The other member saw nothing between TAKEN and IDLE: the holder was never revoked before.
    idle(&mut o, CH, "empty queue").await;
    quiet(&mut [&mut h, &mut o], "after the revoke").await;
}

// ----- queueing ---------------------------------------------------------------------------------

#[tokio::test]
async fn queue_orders_by_priority_then_arrival_and_tells_whoever_moved() {
    let d = daemon().await;
    let mut h = identified_with(&d, "holder", 255, Some(200)).await;
    h.create(CH).await;
    let mut a = Client::identified(&d, "anna").await;
    let mut b = Client::identified(&d, "ben").await;
    let mut c = Client::identified(&d, "cleo").await;
    let mut e = Client::identified(&d, "emil").await;
    let mut o = Client::identified(&d, "olga").await;
    join_all_to(CH, &mut [&mut h, &mut a, &mut b, &mut c, &mut e, &mut o]).await;

    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    for x in [&mut a, &mut b, &mut c, &mut e, &mut o] {
        taken(x, CH, "holder", 200, "IDENTIFY priority 200 is the default").await;
    }

    // anna at 5: alone in the queue.
    a.send_op(op::FLOOR_REQUEST, chan_prio(CH, 5)).await;
    queue_pos(&mut a, CH, 1, 1, "first in the queue").await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut e, &mut o],
        "only the requester learns its position",
    )
    .await;

    // ben at 5: behind anna (same priority, later); anna's position does not change.
    b.send_op(op::FLOOR_REQUEST, chan_prio(CH, 5)).await;
    queue_pos(&mut b, CH, 2, 2, "same priority as anna, after her").await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut e, &mut o],
        "anna did not move, so she is not told",
    )
    .await;

    // cleo at 10 (with an id): ahead of both, who are told they moved.
    send_acked(&mut c, op::FLOOR_REQUEST, chan_prio(CH, 10)).await;
    queue_pos(&mut c, CH, 1, 3, "higher priority goes first").await;
    queue_pos(&mut a, CH, 2, 3, "pushed back by cleo").await;
    queue_pos(&mut b, CH, 3, 3, "pushed back by cleo").await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut e, &mut o],
        "after cleo queued",
    )
    .await;

    // emil at the default priority 0: last; nobody moved.
    e.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut e, CH, 4, 4, "lowest priority, last").await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut e, &mut o],
        "after emil queued",
    )
    .await;

    // ben asks again (at a higher priority, still below the holder's, and with an id; then
    // plain): answered with his current position, nothing changes.
    send_acked(&mut b, op::FLOOR_REQUEST, chan_prio(CH, 50)).await;
    queue_pos(
        &mut b,
        CH,
        3,
        4,
        "a repeated request answers the current position",
    )
    .await;
    b.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(
        &mut b,
        CH,
        3,
        4,
        "a repeated request answers the current position",
    )
    .await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut e, &mut o],
        "a repeated request moves nobody",
    )
    .await;

    assert_floor(&mut o, CH, Some("holder"), &["cleo", "anna", "ben", "emil"]).await;
}

// ----- priorities -------------------------------------------------------------------------------

#[tokio::test]
async fn priority_is_capped_by_the_token_and_defaults_to_identify_priority() {
    let d = daemon().await;
    // Cap 2, no IDENTIFY priority.
    let mut capped = identified_with(&d, "capped", 2, None).await;
    capped.create(CH).await;
    // Cap 255, IDENTIFY priority 3.
    let mut mid = identified_with(&d, "mid", 255, Some(3)).await;
    // Cap 2, IDENTIFY priority 100.
    let mut loud = identified_with(&d, "loud", 2, Some(100)).await;
    let mut o = Client::identified(&d, "other").await;
    join_all_to(CH, &mut [&mut capped, &mut mid, &mut loud, &mut o]).await;

    // 200 requested, capped to 2.
    capped.send_op(op::FLOOR_REQUEST, chan_prio(CH, 200)).await;
    granted(&mut capped, CH, LONG_MAX, "").await;
    for x in [&mut mid, &mut loud, &mut o] {
        taken(x, CH, "capped", 2, "priority 200 with a cap-2 token is 2").await;
    }

    // mid asks without a priority: its IDENTIFY priority 3 beats the capped 2 and preempts
    // (it would not beat an uncapped 200).
    mid.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    revoked(&mut capped, CH, "preempted", "3 > capped 2").await;
    taken(&mut capped, CH, "mid", 3, "after its revoke").await;
    granted(&mut mid, CH, LONG_MAX, "IDENTIFY priority 3 by default").await;
    for x in [&mut loud, &mut o] {
        taken(x, CH, "mid", 3, "IDENTIFY priority is the default").await;
    }
    quiet(
        &mut [&mut capped, &mut mid, &mut loud, &mut o],
        "after the preemption",
    )
    .await;

    // capped asks for 200 again: capped to 2 < 3, so it queues instead of preempting.
    capped.send_op(op::FLOOR_REQUEST, chan_prio(CH, 200)).await;
    queue_pos(&mut capped, CH, 1, 1, "capped to 2, below the holder's 3").await;
    // loud's IDENTIFY priority 100 is capped to 2 as well: queued behind capped (same 2).
    loud.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut loud, CH, 2, 2, "IDENTIFY priority 100 capped to 2").await;
    quiet(
        &mut [&mut capped, &mut mid, &mut loud, &mut o],
        "queued, not preempting",
    )
    .await;
    assert_floor(&mut o, CH, Some("mid"), &["capped", "loud"]).await;

    // Hand-over: capped holds at its capped priority 2.
    mid.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    granted(&mut capped, CH, LONG_MAX, "the queue head").await;
    taken(&mut mid, CH, "capped", 2, "").await;
    taken(&mut loud, CH, "capped", 2, "").await;
    queue_pos(&mut loud, CH, 1, 1, "moved up").await;
    taken(&mut o, CH, "capped", 2, "").await;

    // loud asks again at 255: capped to 2, equal, so its current position, no preemption.
    loud.send_op(op::FLOOR_REQUEST, chan_prio(CH, 255)).await;
    queue_pos(&mut loud, CH, 1, 1, "255 capped to 2 does not preempt 2").await;
    quiet(
        &mut [&mut capped, &mut mid, &mut loud, &mut o],
        "after the hand-over",
    )
    .await;
}

#[tokio::test]
async fn strictly_higher_priority_preempts_at_once_and_equal_priority_queues() {
    let d = daemon().await;
    let mut low = identified_with(&d, "low", 255, Some(1)).await;
    low.create(CH).await;
    let mut w = identified_with(&d, "waiter", 255, Some(1)).await;
    let mut hi = identified_with(&d, "high", 255, Some(5)).await;
    let mut peer = identified_with(&d, "peer", 255, Some(5)).await;
    let mut o = Client::identified(&d, "other").await;
    join_all_to(CH, &mut [&mut low, &mut w, &mut hi, &mut peer, &mut o]).await;

    low.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut low, CH, LONG_MAX, "").await;
    for x in [&mut w, &mut hi, &mut peer, &mut o] {
        taken(x, CH, "low", 1, "").await;
    }
    w.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut w, CH, 1, 1, "equal priority 1 queues").await;

    // high (5 > 1, with an id): REVOKE preempted to low, then TAKEN; GRANTED to high at once.
    send_acked(&mut hi, op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut hi, CH, LONG_MAX, "preemption grants at once").await;
    revoked(&mut low, CH, "preempted", "5 > 1").await;
    taken(
        &mut low,
        CH,
        "high",
        5,
        "the preempted holder sees TAKEN too",
    )
    .await;
    taken(
        &mut w,
        CH,
        "high",
        5,
        "a queued member whose place is unchanged",
    )
    .await;
    taken(&mut peer, CH, "high", 5, "").await;
    taken(&mut o, CH, "high", 5, "").await;
    quiet(
        &mut [&mut low, &mut w, &mut hi, &mut peer, &mut o],
        "after the preemption",
    )
    .await;
    assert_floor(&mut o, CH, Some("high"), &["waiter"]).await; // low is not re-queued

    // peer at 5, equal to the holder: queued ahead of the waiter (1), who is told.
    peer.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut peer, CH, 1, 2, "equal priority queues").await;
    queue_pos(&mut w, CH, 2, 2, "pushed back").await;
    quiet(
        &mut [&mut low, &mut w, &mut hi, &mut peer, &mut o],
        "equal priority does not preempt",
    )
    .await;
    assert_floor(&mut o, CH, Some("high"), &["peer", "waiter"]).await;

    // high releases: peer, the head, holds at 5.
    hi.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    granted(&mut peer, CH, LONG_MAX, "the queue head").await;
    for x in [&mut low, &mut hi, &mut o] {
        taken(x, CH, "peer", 5, "").await;
    }
    taken(&mut w, CH, "peer", 5, "").await;
    queue_pos(&mut w, CH, 1, 1, "moved up").await;
    low.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut low, CH, 2, 2, "behind the waiter").await;
    quiet(
        &mut [&mut low, &mut w, &mut hi, &mut peer, &mut o],
        "after the hand-over",
    )
    .await;

    // The queued waiter asks again at 9 > 5: it preempts and leaves the queue; low moves up.
    w.send_op(op::FLOOR_REQUEST, chan_prio(CH, 9)).await;
    granted(&mut w, CH, LONG_MAX, "a queued member preempting").await;
    revoked(&mut peer, CH, "preempted", "9 > 5").await;
    taken(&mut peer, CH, "waiter", 9, "").await;
    taken(&mut low, CH, "waiter", 9, "").await;
    queue_pos(&mut low, CH, 1, 1, "the preempter left the queue").await;
    taken(&mut hi, CH, "waiter", 9, "").await;
    taken(&mut o, CH, "waiter", 9, "").await;
    quiet(
        &mut [&mut low, &mut w, &mut hi, &mut peer, &mut o],
        "after the second preemption",
    )
    .await;
    assert_floor(&mut o, CH, Some("waiter"), &["low"]).await;
}

// ----- release ----------------------------------------------------------------------------------

#[tokio::test]
async fn release_hands_over_to_the_queue_head_and_goes_idle_when_the_queue_is_empty() {
    let d = daemon().await;
    let [mut h, mut a, mut b, mut c, mut o] =
        channel_of(&d, CH, ["holder", "anna", "ben", "cleo", "olga"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    for x in [&mut a, &mut b, &mut c, &mut o] {
        taken(x, CH, "holder", 0, "").await;
    }
    for (i, x) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
        x.send_op(op::FLOOR_REQUEST, chan(CH)).await;
        let n = u16::try_from(i + 1).expect("small");
        queue_pos(x, CH, n, n, "arrival order").await;
    }

    // The holder releases (no id): anna granted, the rest told, ben and cleo moved up.
    h.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    granted(&mut a, CH, LONG_MAX, "the queue head").await;
    taken(&mut h, CH, "anna", 0, "the releaser sees TAKEN").await;
    taken(&mut b, CH, "anna", 0, "").await;
    queue_pos(&mut b, CH, 1, 2, "moved up").await;
    taken(&mut c, CH, "anna", 0, "").await;
    queue_pos(&mut c, CH, 2, 2, "moved up").await;
    taken(&mut o, CH, "anna", 0, "").await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut o],
        "after the first hand-over",
    )
    .await;

    // anna releases with an id: ACK first, then the floor events.
    send_acked(&mut a, op::FLOOR_RELEASE, chan(CH)).await;
    taken(&mut a, CH, "ben", 0, "after the releaser's ACK").await;
    granted(&mut b, CH, LONG_MAX, "the queue head").await;
    taken(&mut c, CH, "ben", 0, "").await;
    queue_pos(&mut c, CH, 1, 1, "moved up").await;
    taken(&mut h, CH, "ben", 0, "").await;
    taken(&mut o, CH, "ben", 0, "").await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut o],
        "after the second hand-over",
    )
    .await;

    b.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    granted(&mut c, CH, LONG_MAX, "the last queued").await;
    for x in [&mut h, &mut a, &mut b, &mut o] {
        taken(x, CH, "cleo", 0, "").await;
    }
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut o],
        "after the third hand-over: nobody left in the queue",
    )
    .await;
    assert_floor(&mut o, CH, Some("cleo"), &[]).await;

    // Empty queue: FLOOR_IDLE to every member, the releaser included.
    send_acked(&mut c, op::FLOOR_RELEASE, chan(CH)).await;
    for x in [&mut h, &mut a, &mut b, &mut c, &mut o] {
        idle(x, CH, "release with an empty queue").await;
    }
    quiet(&mut [&mut h, &mut a, &mut b, &mut c, &mut o], "after IDLE").await;
    assert_floor(&mut o, CH, None, &[]).await;
}

#[tokio::test]
async fn a_queued_member_cancels_by_release_and_anyone_else_gets_2002() {
    let d = daemon().await;
    let [mut h, mut a, mut b, mut c, mut o] =
        channel_of(&d, CH, ["holder", "anna", "ben", "cleo", "olga"]).await;

    // On an idle floor nobody may release.
    errs_both_ways(&mut o, op::FLOOR_RELEASE, CH, code::NOT_PERMITTED).await;

    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    for x in [&mut a, &mut b, &mut c, &mut o] {
        taken(x, CH, "holder", 0, "").await;
    }
    for (i, x) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
        x.send_op(op::FLOOR_REQUEST, chan(CH)).await;
        let n = u16::try_from(i + 1).expect("small");
        queue_pos(x, CH, n, n, "arrival order").await;
    }

    // anna (the head) cancels without an id: she hears nothing, those behind her move up.
    a.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    queue_pos(&mut b, CH, 1, 2, "moved up after anna cancelled").await;
    queue_pos(&mut c, CH, 2, 2, "moved up after anna cancelled").await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut o],
        "a cancel tells only those behind",
    )
    .await;

    // cleo (the last) cancels with an id: her ACK and nothing else for anybody.
    send_acked(&mut c, op::FLOOR_RELEASE, chan(CH)).await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut o],
        "nobody was behind cleo",
    )
    .await;
    assert_floor(&mut o, CH, Some("holder"), &["ben"]).await;

    // Neither holder nor queued: 2002, with and without id; nothing changes.
    errs_both_ways(&mut a, op::FLOOR_RELEASE, CH, code::NOT_PERMITTED).await;
    errs_both_ways(&mut o, op::FLOOR_RELEASE, CH, code::NOT_PERMITTED).await;
    quiet(
        &mut [&mut h, &mut a, &mut b, &mut c, &mut o],
        "a refused release changes nothing",
    )
    .await;
    assert_floor(&mut o, CH, Some("holder"), &["ben"]).await;

    h.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    granted(&mut b, CH, LONG_MAX, "ben is still queued").await;
}

// ----- errors and denials -----------------------------------------------------------------------

#[tokio::test]
async fn floor_ops_on_an_unknown_channel_are_2000_and_from_a_non_member_2004() {
    let d = daemon().await;
    let [mut h, mut m] = channel_of(&d, CH, ["holder", "member"]).await;
    let mut x = Client::identified(&d, "outsider").await;

    for held in [false, true] {
        if held {
            h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
            granted(&mut h, CH, LONG_MAX, "").await;
            taken(&mut m, CH, "holder", 0, "").await;
        }
        for o in [op::FLOOR_REQUEST, op::FLOOR_RELEASE, op::FLOOR_PING] {
            errs_both_ways(&mut x, o, "nowhere", code::CHANNEL_NOT_FOUND).await;
            errs_both_ways(&mut h, o, "nowhere", code::CHANNEL_NOT_FOUND).await;
            errs_both_ways(&mut x, o, CH, code::NOT_JOINED).await;
        }
        quiet(
            &mut [&mut h, &mut m, &mut x],
            "refused floor ops change nothing",
        )
        .await;
        let holder = held.then_some("holder");
        assert_floor(&mut x, CH, holder, &[]).await;
    }
}

#[tokio::test]
async fn a_request_by_the_holder_is_denied_already_granted() {
    let d = daemon().await;
    let [mut h, mut o] = channel_of(&d, CH, ["holder", "other"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    taken(&mut o, CH, "holder", 0, "").await;

    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    denied(&mut h, CH, "already_granted", "the holder asks again").await;
    send_acked(&mut h, op::FLOOR_REQUEST, chan_prio(CH, 200)).await;
    denied(
        &mut h,
        CH,
        "already_granted",
        "the holder asks again, higher",
    )
    .await;
    quiet(
        &mut [&mut h, &mut o],
        "a denial goes to the requester alone",
    )
    .await;
    assert_floor(&mut o, CH, Some("holder"), &[]).await;
}

#[tokio::test]
async fn the_33rd_waiting_request_is_denied_queue_full() {
    let d = daemon().await;
    let mut ms_ = Client::identified_many(&d, "m", 34).await;
    ms_[0].create(CH).await;
    {
        let mut refs: Vec<&mut Client> = ms_.iter_mut().collect();
        join_all_to(CH, &mut refs).await;
    }
    let [holder, rest @ ..] = ms_.as_mut_slice() else {
        unreachable!("34 clients")
    };
    holder.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(holder, CH, LONG_MAX, "").await;
    for x in rest.iter_mut() {
        taken(x, CH, "m0", 0, "").await;
    }

    // m1..m32 fill the 32-entry queue.
    for (i, x) in rest[..32].iter_mut().enumerate() {
        x.send_op(op::FLOOR_REQUEST, chan(CH)).await;
        let n = u16::try_from(i + 1).expect("small");
        queue_pos(x, CH, n, n, "filling the queue").await;
    }
    // m33: the queue is full, with and without an id.
    let last = &mut rest[32];
    last.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    denied(last, CH, "queue_full", "32 wait already").await;
    send_acked(last, op::FLOOR_REQUEST, chan(CH)).await;
    denied(last, CH, "queue_full", "32 wait already").await;
    {
        let mut refs: Vec<&mut Client> = ms_.iter_mut().collect();
        quiet(&mut refs, "queueing tells only the requester; a denial too").await;
    }
    let queue: Vec<String> = (1..=32).map(|i| format!("m{i}")).collect();
    let queue: Vec<&str> = queue.iter().map(String::as_str).collect();
    assert_floor(&mut ms_[33], CH, Some("m0"), &queue).await;

    // m7 cancels: m8..m32 move up; now m33 fits, last.
    ms_[7].send_op(op::FLOOR_RELEASE, chan(CH)).await;
    for i in 8..=32u16 {
        queue_pos(&mut ms_[usize::from(i)], CH, i - 1, 31, "moved up").await;
    }
    ms_[33].send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut ms_[33], CH, 32, 32, "room again").await;
    let mut refs: Vec<&mut Client> = ms_.iter_mut().collect();
    quiet(&mut refs, "after the cancel and the new request").await;
}

// ----- timers -----------------------------------------------------------------------------------

#[tokio::test]
async fn a_silent_holder_is_revoked_timeout_within_1s_then_the_head_is_granted_then_idle() {
    const MAX: u64 = 20_000;
    const PING: u64 = 600;
    let d = daemon_with_timers(MAX, PING).await;
    let [mut h, mut q, mut o] = channel_of(&d, CH, ["holder", "queued", "other"]).await;

    let sent = Instant::now();
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, MAX, "").await;
    let got = Instant::now();
    taken(&mut q, CH, "holder", 0, "").await;
    taken(&mut o, CH, "holder", 0, "").await;
    q.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q, CH, 1, 1, "").await;
    // A non-holder's ping is answered, but it is not the holder's activity.
    o.send_op(op::FLOOR_PING, chan(CH)).await;
    pong(&mut o, CH, "a non-holder's ping").await;

    revoked(&mut h, CH, "timeout", "the holder never pinged").await;
    let arrived = Instant::now();
    assert_fired_in_time("FLOOR_REVOKE timeout", sent, got, arrived, PING);
    taken(
        &mut h,
        CH,
        "queued",
        0,
        "the revoked holder sees the new holder",
    )
    .await;
    granted(&mut q, CH, MAX, "the queue head after the revoke").await;
    let q_got = Instant::now();
    taken(&mut o, CH, "queued", 0, "").await;

    // The new holder is silent too: revoked, and with nobody queued the floor goes idle. Its
    // grant came no earlier than the first deadline (`sent + PING`).
    revoked(&mut q, CH, "timeout", "the new holder never pinged").await;
    let arrived = Instant::now();
    assert_fired_in_time(
        "the second FLOOR_REVOKE timeout",
        sent + ms(timer_ms(PING)),
        q_got,
        arrived,
        PING,
    );
    idle(&mut q, CH, "after its revoke").await;
    idle(&mut h, CH, "").await;
    idle(&mut o, CH, "").await;
    quiet(&mut [&mut h, &mut q, &mut o], "after IDLE").await;
    assert_floor(&mut o, CH, None, &[]).await;
}

#[tokio::test]
async fn a_pinging_holder_is_revoked_max_duration_within_1s_then_the_head_is_granted_then_idle() {
    const MAX: u64 = 1500;
    const PING: u64 = 600;
    let d = daemon_with_timers(MAX, PING).await;
    let [mut h, mut q, mut o] = channel_of(&d, CH, ["holder", "queued", "other"]).await;

    let sent = Instant::now();
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, MAX, "").await;
    let got = Instant::now();
    taken(&mut q, CH, "holder", 0, "").await;
    taken(&mut o, CH, "holder", 0, "").await;
    q.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q, CH, 1, 1, "").await;

    let (arrived, unanswered) = ping_until_revoked(&mut h, CH, "max_duration").await;
    assert_fired_in_time("FLOOR_REVOKE max_duration", sent, got, arrived, MAX);
    taken(&mut h, CH, "queued", 0, "right after the revoke").await;
    for _ in 0..unanswered {
        pong(&mut h, CH, "a ping sent before the revoke arrived").await;
    }
    granted(&mut q, CH, MAX, "the queue head after the revoke").await;
    let q_got = Instant::now();
    taken(&mut o, CH, "queued", 0, "").await;

    let (arrived, unanswered) = ping_until_revoked(&mut q, CH, "max_duration").await;
    assert_fired_in_time(
        "the second FLOOR_REVOKE max_duration",
        sent + ms(timer_ms(MAX)),
        q_got,
        arrived,
        MAX,
    );
    idle(&mut q, CH, "right after the revoke").await;
    for _ in 0..unanswered {
        pong(&mut q, CH, "a ping sent before the revoke arrived").await;
    }
    idle(&mut h, CH, "").await;
    idle(&mut o, CH, "").await;
    quiet(&mut [&mut h, &mut q, &mut o], "after IDLE").await;
    assert_floor(&mut o, CH, None, &[]).await;
}

// ----- members going away -----------------------------------------------------------------------

#[tokio::test]
async fn a_holder_that_disconnects_is_sent_nothing_and_the_floor_passes_on() {
    let d = daemon().await;
    let [mut h, mut q1, mut q2, mut o] =
        channel_of(&d, CH, ["holder", "first", "second", "other"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    for x in [&mut q1, &mut q2, &mut o] {
        taken(x, CH, "holder", 0, "").await;
    }
    q1.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q1, CH, 1, 1, "").await;
    q2.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q2, CH, 2, 2, "").await;

    // The holder closes its WebSocket; it must hear nothing before the server's close.
    h.try_send(Message::Close(None))
        .await
        .expect("sending a close frame");
    let (_, frames) = h.expect_close(TIMEOUT, "the holder closed").await;
    assert!(
        frames.is_empty(),
        "a holder that disconnects is sent nothing, got {:?}",
        frames.iter().map(describe).collect::<Vec<_>>()
    );

    left(&mut q1, CH, "holder", "leave first").await;
    granted(&mut q1, CH, LONG_MAX, "then the floor passes on").await;
    left(&mut q2, CH, "holder", "leave first").await;
    taken(&mut q2, CH, "first", 0, "then the floor passes on").await;
    queue_pos(&mut q2, CH, 1, 1, "moved up").await;
    left(&mut o, CH, "holder", "leave first").await;
    taken(&mut o, CH, "first", 0, "then the floor passes on").await;
    quiet(&mut [&mut q1, &mut q2, &mut o], "after the hand-over").await;
    assert_floor(&mut o, CH, Some("first"), &["second"]).await;
}

#[tokio::test]
async fn a_holder_that_leaves_is_sent_only_its_ack_and_the_floor_passes_on() {
    let d = daemon().await;
    let [mut h, mut q, mut o] = channel_of(&d, CH, ["holder", "queued", "other"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    taken(&mut q, CH, "holder", 0, "").await;
    taken(&mut o, CH, "holder", 0, "").await;
    q.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q, CH, 1, 1, "").await;

    send_acked(&mut h, op::CHANNEL_LEAVE, chan(CH)).await;
    left(&mut q, CH, "holder", "leave first").await;
    granted(&mut q, CH, LONG_MAX, "then the floor passes on").await;
    left(&mut o, CH, "holder", "leave first").await;
    taken(&mut o, CH, "queued", 0, "then the floor passes on").await;
    quiet(
        &mut [&mut h, &mut q, &mut o],
        "the leaver gets its ACK and nothing else",
    )
    .await;

    // The new holder leaves with nobody queued: IDLE to the remaining member only.
    send_acked(&mut q, op::CHANNEL_LEAVE, chan(CH)).await;
    left(&mut o, CH, "queued", "leave first").await;
    idle(&mut o, CH, "then IDLE").await;
    quiet(
        &mut [&mut h, &mut q, &mut o],
        "the leaver gets its ACK and nothing else",
    )
    .await;
    assert_floor(&mut o, CH, None, &[]).await;
}

#[tokio::test]
async fn a_queued_member_that_disconnects_is_dequeued_and_those_behind_move_up() {
    let d = daemon().await;
    let [mut h, mut q1, mut q2, mut q3, mut o] =
        channel_of(&d, CH, ["holder", "first", "second", "third", "other"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    for x in [&mut q1, &mut q2, &mut q3, &mut o] {
        taken(x, CH, "holder", 0, "").await;
    }
    for (i, x) in [&mut q1, &mut q2, &mut q3].into_iter().enumerate() {
        x.send_op(op::FLOOR_REQUEST, chan(CH)).await;
        let n = u16::try_from(i + 1).expect("small");
        queue_pos(x, CH, n, n, "").await;
    }

    // The middle one drops its TCP connection.
    q2.drop_abruptly();
    left(&mut q3, CH, "second", "leave first").await;
    queue_pos(&mut q3, CH, 2, 2, "moved up").await;
    for x in [&mut h, &mut q1, &mut o] {
        left(x, CH, "second", "unchanged places: only the leave").await;
    }
    quiet(&mut [&mut h, &mut q1, &mut q3, &mut o], "after the drop").await;
    assert_floor(&mut o, CH, Some("holder"), &["first", "third"]).await;

    // The head closes politely.
    q1.close().await;
    left(&mut q3, CH, "first", "leave first").await;
    queue_pos(&mut q3, CH, 1, 1, "moved up").await;
    for x in [&mut h, &mut o] {
        left(x, CH, "first", "only the leave").await;
    }
    quiet(&mut [&mut h, &mut q3, &mut o], "after the close").await;

    h.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    granted(&mut q3, CH, LONG_MAX, "the only one still queued").await;
    taken(&mut h, CH, "third", 0, "").await;
    taken(&mut o, CH, "third", 0, "").await;
    quiet(&mut [&mut h, &mut q3, &mut o], "after the release").await;
}

#[tokio::test]
async fn a_zombie_holder_is_reaped_and_the_floor_passes_on() {
    let d = Daemon::builder()
        .env("LIVECHAT_HEARTBEAT_MS", &timer_ms(400).to_string())
        .env("LIVECHAT_FLOOR_MAX_MS", &timer_ms(LONG_MAX).to_string())
        .env("LIVECHAT_FLOOR_PING_MS", &timer_ms(LONG_PING).to_string())
        .start()
        .await;
    let [mut z, mut q, mut o] = channel_of(&d, CH, ["zombie", "queued", "other"]).await;
    z.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut z, CH, LONG_MAX, "").await;
    taken(&mut q, CH, "zombie", 0, "").await;
    taken(&mut o, CH, "zombie", 0, "").await;
    q.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q, CH, 1, 1, "").await;

    // From now on the holder sends nothing and its socket is not read (reading would answer
    // server pings); the others heartbeat every 150 ms.
    let silent_since = Instant::now();
    let first = loop {
        assert!(
            silent_since.elapsed() < scaled(ms(5000)),
            "a holder silent for 2 x 400 ms must be reaped; nothing reached the others in 5 s"
        );
        q.bg_heartbeat().await;
        o.bg_heartbeat().await;
        match q.try_recv_where(ms(150), |_| true).await {
            Ok(f) => break f,
            Err(None) => {}
            Err(Some(c)) => panic!("the heartbeating queued member was closed: {c}"),
        }
    };
    assert!(
        first["op"] == op::CHANNEL_EVENT
            && first["d"]["event"] == "leave"
            && first["d"]["user_id"] == "zombie",
        "queued: the first frame after the holder went silent should be its `leave`, got {}",
        describe(&first)
    );
    granted(&mut q, CH, LONG_MAX, "after the reaped holder's leave").await;
    left(&mut o, CH, "zombie", "leave first").await;
    taken(&mut o, CH, "queued", 0, "then the floor passes on").await;
    q.bg_heartbeat().await;
    o.bg_heartbeat().await;
    quiet(&mut [&mut q, &mut o], "after the hand-over").await;
    q.bg_heartbeat().await;
    assert_floor(&mut q, CH, Some("queued"), &[]).await;

    let (_, frames) = z.expect_close(TIMEOUT, "the reaped zombie").await;
    assert!(
        frames.is_empty(),
        "a reaped holder is sent nothing, got {:?}",
        frames.iter().map(describe).collect::<Vec<_>>()
    );
}

// ----- channels ---------------------------------------------------------------------------------

#[tokio::test]
async fn floors_of_different_channels_are_independent() {
    let d = daemon().await;
    let mut a1 = Client::identified(&d, "a1").await;
    let mut a2 = Client::identified(&d, "a2").await;
    let mut b1 = Client::identified(&d, "b1").await;
    let mut b2 = Client::identified(&d, "b2").await;
    let mut x = Client::identified(&d, "x").await; // in both
    a1.create("alpha").await;
    b1.create("bravo").await;
    join_all_to("alpha", &mut [&mut a1, &mut a2, &mut x]).await;
    join_all_to("bravo", &mut [&mut b1, &mut b2, &mut x]).await;

    a1.send_op(op::FLOOR_REQUEST, chan("alpha")).await;
    granted(&mut a1, "alpha", LONG_MAX, "").await;
    taken(&mut a2, "alpha", "a1", 0, "").await;
    taken(&mut x, "alpha", "a1", 0, "").await;
    quiet(
        &mut [&mut a1, &mut a2, &mut b1, &mut b2, &mut x],
        "alpha's floor events go to alpha's members only",
    )
    .await;

    b1.send_op(op::FLOOR_REQUEST, chan("bravo")).await;
    granted(&mut b1, "bravo", LONG_MAX, "bravo's floor is idle").await;
    taken(&mut b2, "bravo", "b1", 0, "").await;
    taken(&mut x, "bravo", "b1", 0, "").await;
    quiet(
        &mut [&mut a1, &mut a2, &mut b1, &mut b2, &mut x],
        "bravo's floor events go to bravo's members only",
    )
    .await;

    // x waits in both.
    x.send_op(op::FLOOR_REQUEST, chan("alpha")).await;
    queue_pos(&mut x, "alpha", 1, 1, "").await;
    x.send_op(op::FLOOR_REQUEST, chan("bravo")).await;
    queue_pos(&mut x, "bravo", 1, 1, "").await;
    // A holder of one channel is nobody in the other.
    errs_both_ways(&mut b2, op::FLOOR_REQUEST, "alpha", code::NOT_JOINED).await;
    errs_both_ways(&mut a1, op::FLOOR_RELEASE, "bravo", code::NOT_JOINED).await;
    quiet(
        &mut [&mut a1, &mut a2, &mut b1, &mut b2, &mut x],
        "queued in both",
    )
    .await;

    // alpha hands over to x; bravo is untouched and x still waits there.
    a1.send_op(op::FLOOR_RELEASE, chan("alpha")).await;
    granted(&mut x, "alpha", LONG_MAX, "").await;
    taken(&mut a1, "alpha", "x", 0, "").await;
    taken(&mut a2, "alpha", "x", 0, "").await;
    quiet(
        &mut [&mut a1, &mut a2, &mut b1, &mut b2, &mut x],
        "alpha's hand-over touches nobody in bravo",
    )
    .await;
    assert_floor(&mut b2, "bravo", Some("b1"), &["x"]).await;

    // x cancels in bravo, releases alpha.
    x.send_op(op::FLOOR_RELEASE, chan("bravo")).await;
    x.send_op(op::FLOOR_RELEASE, chan("alpha")).await;
    for c in [&mut a1, &mut a2, &mut x] {
        idle(c, "alpha", "").await;
    }
    quiet(
        &mut [&mut a1, &mut a2, &mut b1, &mut b2, &mut x],
        "bravo hears nothing of alpha going idle",
    )
    .await;
    assert_floor(&mut b2, "bravo", Some("b1"), &[]).await;
    assert_floor(&mut b2, "alpha", None, &[]).await;
}

#[tokio::test]
async fn a_member_joining_a_held_floor_gets_floor_taken_right_after_its_join_ack() {
    let d = daemon().await;
    let mut h = identified_with(&d, "holder", 255, Some(4)).await;
    h.create(CH).await;
    h.create("calm").await;
    let mut q = Client::identified(&d, "queued").await;
    join_all_to(CH, &mut [&mut h, &mut q]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "").await;
    taken(&mut q, CH, "holder", 4, "").await;
    q.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q, CH, 1, 1, "").await;

    let mut j = Client::identified(&d, "joiner").await;
    let d_join = json!({"channel_id": CH, "ssrc": fresh_ssrc()});
    let id = j.send_request(op::CHANNEL_JOIN, d_join.clone()).await;
    let f = j.recv("JOIN's ACK, the first frame after joining").await;
    assert!(has_id(&f, id), "joiner: next frame {}", describe(&f));
    j.check_ack(&f, op::CHANNEL_JOIN, &show(&d_join));
    taken(&mut j, CH, "holder", 4, "right after the JOIN ACK").await;
    left_or_joined(
        &mut h,
        "join",
        CH,
        "joiner",
        "the others hear only the join",
    )
    .await;
    left_or_joined(
        &mut q,
        "join",
        CH,
        "joiner",
        "the others hear only the join",
    )
    .await;
    quiet(
        &mut [&mut h, &mut q, &mut j],
        "one FLOOR_TAKEN to the joiner, nothing else",
    )
    .await;

    // Joining an idle floor: the ACK and no floor message.
    j.join("calm").await;
    quiet(&mut [&mut j], "an idle floor sends the joiner nothing").await;

    // The joiner queues behind the one already waiting.
    j.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut j, CH, 2, 2, "behind the earlier request").await;
    quiet(&mut [&mut h, &mut q, &mut j], "").await;
}

#[tokio::test]
async fn deleting_a_channel_with_a_held_floor_sends_only_delete_and_stops_its_timers() {
    // Short timers: had the deleted floor's timers survived, a revoke would come.
    const MAX: u64 = 3000;
    const PING: u64 = 1500;
    let d = daemon_with_timers(MAX, PING).await;
    let [mut owner, mut h, mut q] = channel_of(&d, CH, ["owner", "holder", "queued"]).await;
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, MAX, "").await;
    let got = Instant::now();
    taken(&mut owner, CH, "holder", 0, "").await;
    taken(&mut q, CH, "holder", 0, "").await;
    q.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut q, CH, 1, 1, "").await;

    owner.delete(CH).await;
    assert!(
        got.elapsed() < ms(timer_ms(PING)),
        "setup too slow: the delete must precede the ping deadline for this test to mean \
         anything ({:?} after the grant)",
        got.elapsed()
    );
    for c in [&mut owner, &mut h, &mut q] {
        c.expect_channel_event("delete", CH).await;
    }
    // Quiet past the holder's ping deadline plus the 1 s allowance.
    let until = got + scaled(ms(PING + 1200));
    quiet_for(
        &mut [&mut owner, &mut h, &mut q],
        // quiet_for takes a window before the time scale.
        until
            .saturating_duration_since(Instant::now())
            .div_f64(time_scale()),
        "a delete sends `delete` and no floor messages, now or when the timers would fire",
    )
    .await;

    errs_both_ways(&mut h, op::FLOOR_RELEASE, CH, code::CHANNEL_NOT_FOUND).await;
    errs_both_ways(&mut q, op::FLOOR_REQUEST, CH, code::CHANNEL_NOT_FOUND).await;
    // A channel created again under the same id starts with an idle floor.
    owner.create(CH).await;
    assert_floor(&mut owner, CH, None, &[]).await;
}

// ----- ids --------------------------------------------------------------------------------------

#[tokio::test]
async fn floor_ops_with_an_id_are_acked_first_and_without_one_get_only_floor_events() {
    let d = daemon().await;
    let [mut h, mut o] = channel_of(&d, CH, ["holder", "other"]).await;

    // Without ids: only the floor events.
    h.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "no ACK without an id").await;
    taken(&mut o, CH, "holder", 0, "").await;
    h.send_op(op::FLOOR_PING, chan(CH)).await;
    pong(&mut h, CH, "no ACK without an id").await;
    o.send_op(op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut o, CH, 1, 1, "no ACK without an id").await;
    o.send_op(op::FLOOR_RELEASE, chan(CH)).await; // cancel: nothing at all
    quiet(&mut [&mut h, &mut o], "a cancel without an id gets nothing").await;
    h.send_op(op::FLOOR_RELEASE, chan(CH)).await;
    idle(&mut h, CH, "no ACK without an id").await;
    idle(&mut o, CH, "").await;
    quiet(&mut [&mut h, &mut o], "no ACKs without ids").await;

    // With ids: ACK {req_op} echoing the id, then the same floor events.
    send_acked(&mut h, op::FLOOR_REQUEST, chan(CH)).await;
    granted(&mut h, CH, LONG_MAX, "after the ACK").await;
    taken(&mut o, CH, "holder", 0, "").await;
    send_acked(&mut h, op::FLOOR_PING, chan(CH)).await;
    pong(&mut h, CH, "after the ACK").await;
    send_acked(&mut o, op::FLOOR_REQUEST, chan(CH)).await;
    queue_pos(&mut o, CH, 1, 1, "after the ACK").await;
    send_acked(&mut o, op::FLOOR_RELEASE, chan(CH)).await; // cancel: the ACK alone
    quiet(
        &mut [&mut h, &mut o],
        "a cancel with an id gets its ACK alone",
    )
    .await;
    send_acked(&mut h, op::FLOOR_RELEASE, chan(CH)).await;
    idle(&mut h, CH, "after the ACK").await;
    idle(&mut o, CH, "").await;
    quiet(&mut [&mut h, &mut o], "one ACK per request").await;

    // Errors: with an id echoed, without none.
    errs_both_ways(&mut o, op::FLOOR_RELEASE, CH, code::NOT_PERMITTED).await;
    quiet(&mut [&mut h, &mut o], "one ERROR per request").await;
}
