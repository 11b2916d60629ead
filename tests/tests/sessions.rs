//! Sessions: heartbeats, zombies, disconnect cleanup, per-IP connection cap, rate limiting and
//! slow consumers (PROTOCOL.md sections 1 and 5), through the daemon's sockets and timers.
//!
//! The rules alone (a zombie reaped at exactly two heartbeat intervals and cleaned up like a
//! disconnect, heartbeats and any other frame as activity, a disconnect leaving every channel)
//! run in virtual time in core/src/gateway/tests/timers.rs.

use std::time::Duration;

use livechat_tests::*;
use tokio::time::Instant;

const QUIET: u64 = 250;

#[tokio::test]
async fn heartbeat_gets_heartbeat_ack_identified_or_not() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.heartbeat().await;
    c.identify(&d, "alice").await;
    for _ in 0..3 {
        c.heartbeat().await;
    }
    c.assert_quiet(ms(QUIET), "one HEARTBEAT_ACK per HEARTBEAT")
        .await;
}

/// The short heartbeat interval of the reaping tests, in ms before the time scale.
const HEARTBEAT_MS: u64 = 400;

/// A daemon with `LIVECHAT_HEARTBEAT_MS` = [`HEARTBEAT_MS`] in this run's time.
async fn daemon_with_short_heartbeat() -> Daemon {
    Daemon::start_with(&[("LIVECHAT_HEARTBEAT_MS", &timer_ms(HEARTBEAT_MS).to_string())]).await
}

#[tokio::test]
async fn hello_announces_the_configured_heartbeat_interval() {
    let d = daemon_with_short_heartbeat().await;
    let c = Client::connect(&d, "conn").await;
    assert_eq!(
        c.heartbeat_interval(),
        timer_ms(HEARTBEAT_MS),
        "HELLO heartbeat_interval = LIVECHAT_HEARTBEAT_MS"
    );
}

#[tokio::test]
async fn an_unidentified_silent_connection_is_reaped_too() {
    let d = daemon_with_short_heartbeat().await;
    let mut c = Client::connect(&d, "silent").await;
    // Do not read meanwhile: reading would answer server pings, which is client activity.
    tokio::time::sleep(scaled(ms(2500))).await;
    c.expect_close(
        ms(1000),
        "an unidentified connection silent for 2.5 s with heartbeat_interval 400 ms",
    )
    .await;
}

#[tokio::test]
async fn any_frame_is_activity_pings_and_binary_frames_keep_a_connection() {
    let d = daemon_with_short_heartbeat().await;
    let mut pinger = Client::identified(&d, "pinger").await;
    let mut binary = Client::identified(&d, "binary").await;
    let mut texter = Client::identified(&d, "texter").await;
    let end = Instant::now() + scaled(ms(2200));
    while Instant::now() < end {
        pinger.send_ping(b"k".to_vec()).await;
        binary.send_binary(vec![1, 2, 3]).await;
        texter.send_text("not json").await;
        // Read (and so answer any server ping) without sending anything else.
        for c in [&mut pinger, &mut binary, &mut texter] {
            let _ = c.drain(ms(60)).await;
            if let Some(closed) = c.closed() {
                panic!(
                    "{}: closed ({closed}) although it sent a frame every ~200 ms",
                    c.label()
                );
            }
        }
    }
    for c in [&mut pinger, &mut binary, &mut texter] {
        c.assert_alive("after 2.2 s of only non-HEARTBEAT activity")
            .await;
    }
}

#[tokio::test]
async fn disconnect_cleans_up_leave_to_others_and_user_id_reusable() {
    let d = Daemon::start().await;
    let mut alice = Client::identified(&d, "alice").await;
    alice.create("c").await;
    alice.join("c").await;
    let mut bob = Client::identified(&d, "bob").await;
    let bob_ssrc = fresh_ssrc();
    bob.join_ssrc("c", bob_ssrc).await;
    let mut carol = Client::identified(&d, "carol").await;
    carol.join("c").await;
    alice.expect_member_event("join", "c", "bob").await;
    alice.expect_member_event("join", "c", "carol").await;
    bob.expect_member_event("join", "c", "carol").await;

    // A polite close.
    bob.close().await;
    alice.expect_member_event("leave", "c", "bob").await;
    carol.expect_member_event("leave", "c", "bob").await;
    // An abrupt TCP drop without a close frame.
    carol.drop_abruptly();
    alice.expect_member_event("leave", "c", "carol").await;
    alice
        .assert_quiet(ms(QUIET), "one leave per departed member")
        .await;
    assert_eq!(alice.members("c").await, ids(&["alice"]));

    // Their user_ids and SSRCs are free again.
    let mut bob2 = Client::identified(&d, "bob").await;
    bob2.join_ssrc("c", bob_ssrc).await;
    let _carol2 = Client::identified(&d, "carol").await;
    alice.expect_member_event("join", "c", "bob").await;
}

#[tokio::test]
async fn a_creator_disconnecting_does_not_break_its_channel_members() {
    let d = Daemon::start().await;
    let mut owner = Client::identified(&d, "owner").await;
    owner.create("c").await;
    owner.join("c").await;
    let mut m = Client::identified(&d, "member").await;
    m.join("c").await;
    owner.close().await;
    m.expect_member_event("leave", "c", "owner").await;
    // Whatever the daemon does with an orphaned channel, it stays consistent for members.
    let f = m
        .request(op::CHANNEL_INFO, json!({"channel_id": "c"}))
        .await;
    if f["op"] == op::ACK {
        assert_eq!(sorted_ids(&f["d"]["members"]), ids(&["member"]), "{f}");
        m.say("c", "still here").await;
    } else {
        m.check_error(
            &f,
            Some(op::CHANNEL_INFO),
            code::CHANNEL_NOT_FOUND,
            "orphaned channel",
        );
    }
}

#[tokio::test]
async fn the_connection_over_the_per_ip_cap_is_closed_with_1008() {
    let d = Daemon::start_with(&[("LIVECHAT_MAX_CONN_PER_IP", "3")]).await;
    let mut a = Client::connect(&d, "c1").await;
    let mut b = Client::connect(&d, "c2").await;
    let c = Client::connect(&d, "c3").await;
    let mut extra = Client::open(&d, "c4").await;
    let (closed, frames) = extra
        .expect_close(
            TIMEOUT,
            "the 4th connection from 127.0.0.1 with LIVECHAT_MAX_CONN_PER_IP=3",
        )
        .await;
    assert_eq!(
        closed.code(),
        Some(close::POLICY),
        "the extra connection is closed with 1008, got {closed}; frames before: {:?}",
        frames.iter().map(describe).collect::<Vec<_>>()
    );
    a.assert_alive("the first three connections are unaffected")
        .await;
    b.assert_alive("the first three connections are unaffected")
        .await;
    // Closing one makes room for another.
    c.close().await;
    let deadline = Instant::now() + scaled(TIMEOUT);
    loop {
        let mut again = Client::open(&d, "c4-again").await;
        match again
            .try_recv_where(TIMEOUT, |f| f["op"] == op::HELLO)
            .await
        {
            Ok(_) => {
                again
                    .assert_alive("a connection after one of three closed")
                    .await;
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "after closing one of 3 connections a new one should be accepted, got {e:?}"
            ),
        }
        tokio::time::sleep(ms(100)).await;
    }
}

#[tokio::test]
async fn a_burst_over_the_rate_budget_gets_1006_and_neighbours_are_unaffected() {
    let d = Daemon::start_with(&[("LIVECHAT_RATE", "20/5")]).await;
    let mut flooder = Client::identified(&d, "flooder").await;
    let mut neighbour = Client::identified(&d, "neighbour").await;
    tokio::time::sleep(ms(500)).await; // refill the token IDENTIFY spent
    let mut ids_sent = Vec::new();
    for _ in 0..40 {
        ids_sent.push(flooder.send_request(op::CHANNEL_LIST, Value::Null).await);
    }
    // The neighbour, on the same IP at the same time, gets every answer.
    for _ in 0..10 {
        let f = neighbour.request(op::CHANNEL_LIST, Value::Null).await;
        neighbour.check_ack(&f, op::CHANNEL_LIST, "a neighbour of a flooder");
    }
    let frames = flooder.drain(ms(1000)).await;
    let acks = frames
        .iter()
        .filter(|f| f["op"] == op::ACK && f["d"]["req_op"] == op::CHANNEL_LIST)
        .count();
    let limited = frames
        .iter()
        .filter(|f| f["op"] == op::ERROR && f["d"]["code"] == code::RATE_LIMITED)
        .count();
    let others: Vec<String> = frames
        .iter()
        .filter(|f| {
            !(f["op"] == op::ACK || (f["op"] == op::ERROR && f["d"]["code"] == code::RATE_LIMITED))
        })
        .map(describe)
        .collect();
    assert!(
        others.is_empty(),
        "unexpected frames in the flood answers: {others:?}"
    );
    assert!(
        (18..=24).contains(&acks),
        "with a burst of 20, about 20 of 40 back-to-back requests pass; {acks} did \
         ({limited} were 1006)"
    );
    assert!(
        limited >= 10,
        "the rest get ERROR 1006; only {limited} did ({acks} passed)"
    );
    // The budget refills at 5/s: after a pause the flooder is served again.
    tokio::time::sleep(ms(1200)).await;
    let f = flooder.request(op::CHANNEL_LIST, Value::Null).await;
    flooder.check_ack(&f, op::CHANNEL_LIST, "a request after the budget refilled");
}

#[tokio::test]
async fn rate_limited_requests_still_get_exactly_one_answer_echoing_their_id() {
    let d = Daemon::start_with(&[("LIVECHAT_RATE", "20/5")]).await;
    let mut c = Client::identified(&d, "flooder").await;
    let mut sent = Vec::new();
    for _ in 0..40 {
        sent.push(c.send_request(op::CHANNEL_LIST, Value::Null).await);
    }
    let answers = c
        .answers_to(&sent, TIMEOUT, "40 requests, half over the budget")
        .await;
    for (id, f) in sent.iter().zip(&answers) {
        let ok =
            f["op"] == op::ACK || (f["op"] == op::ERROR && f["d"]["code"] == code::RATE_LIMITED);
        assert!(
            ok,
            "id {id}: expected ACK or ERROR 1006, got {}",
            describe(f)
        );
    }
    let extra = c.drain(ms(300)).await;
    assert!(
        extra.iter().all(|f| !sent.iter().any(|&i| has_id(f, i))),
        "second answers to the same id: {:?}",
        extra.iter().map(describe).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_member_that_never_reads_does_not_stall_its_channel() {
    let d = Daemon::start_with(&[("LIVECHAT_RATE", "100000/100000")]).await;
    let mut sender = Client::identified(&d, "sender").await;
    sender.create("flood").await;
    sender.join("flood").await;
    let mut reader = Client::identified(&d, "reader").await;
    reader.join("flood").await;
    // A member with a tiny receive buffer that never reads.
    let mut stuck = Client::open_with_recv_buffer(&d, "stuck", 4096).await;
    stuck.expect_hello().await;
    stuck.identify(&d, "stuck").await;
    stuck.join("flood").await;
    sender.expect_member_event("join", "flood", "reader").await;
    sender.expect_member_event("join", "flood", "stuck").await;
    reader.expect_member_event("join", "flood", "stuck").await;

    // 3000 messages of ~1000 bytes: ~3 MB toward `stuck`, far beyond any socket buffer.
    let pad = "p".repeat(990);
    let total = 3000;
    let started = Instant::now();
    let mut next_expected = 0;
    for batch in 0..(total / 50) {
        for i in (batch * 50)..(batch * 50 + 50) {
            sender
                .send_op(
                    op::MESSAGE_CREATE,
                    json!({"channel_id": "flood", "content": format!("{i:05}{pad}")}),
                )
                .await;
        }
        // The sender and the reader keep up; the stuck member does not read at all.
        while next_expected < batch * 50 + 50 {
            let want = format!("{next_expected:05}{pad}");
            let f = reader
                .recv_where_within(ms(10_000), &format!("message {next_expected}"), |f| {
                    f["op"] == op::MESSAGE_EVENT
                })
                .await;
            assert_eq!(
                f["d"]["content"],
                want,
                "reader: message {next_expected} out of order or lost: {}",
                describe(&f)
            );
            next_expected += 1;
        }
        let _ = sender.drain(ms(0)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "3000 messages took {took:?} with a stuck member"
    );
    // The server is expected to drop the slow consumer rather than buffer without bound;
    // the others then see it leave.
    reader
        .recv_where_within(
            ms(10_000),
            "CHANNEL_EVENT leave of the stuck slow consumer",
            |f| {
                f["op"] == op::CHANNEL_EVENT
                    && f["d"]["event"] == "leave"
                    && f["d"]["user_id"] == "stuck"
            },
        )
        .await;
    drop(stuck);
}

#[tokio::test]
async fn unidentified_connections_do_not_count_against_the_session_limit() {
    let d = Daemon::start_with(&[("LIVECHAT_MAX_SESSIONS", "2")]).await;
    let mut idle = Vec::new();
    for i in 0..5 {
        idle.push(Client::connect(&d, &format!("idle{i}")).await);
    }
    let mut a = Client::identified(&d, "a").await;
    let _b = Client::identified(&d, "b").await;
    let f = idle[0]
        .identify_raw(json!({"user_id": "c", "token": d.token("c")}))
        .await;
    idle[0].check_error(&f, Some(op::IDENTIFY), code::CAPACITY, "a third session");
    a.assert_alive("a after a refused third session").await;
}

#[tokio::test]
async fn once_the_budget_is_spent_rate_limiting_comes_before_every_other_check() {
    // 20 requests, refilling at 1/s: the budget stays spent for the rest of the test.
    let d = Daemon::start_with(&[("LIVECHAT_RATE", "20/1")]).await;
    let mut c = Client::connect(&d, "unidentified").await;
    let mut sent = Vec::new();
    for _ in 0..30 {
        sent.push(c.send_request(op::CHANNEL_LIST, Value::Null).await);
    }
    let answers = c
        .answers_to(&sent, TIMEOUT, "30 requests over a budget of 20")
        .await;
    let limited = answers
        .iter()
        .filter(|f| f["op"] == op::ERROR && f["d"]["code"] == code::RATE_LIMITED)
        .count();
    assert!(
        (8..=11).contains(&limited),
        "about 10 of 30 requests over a 20 budget get 1006, got {limited}: {:?}",
        answers.iter().map(describe).collect::<Vec<_>>()
    );
    // Frames that would be 1005, 1003, 1004 and 1000 are all 1006 now.
    c.raw_error(
        &"x".repeat(proto::MAX_INBOUND_FRAME + 1),
        code::RATE_LIMITED,
    )
    .await;
    c.send_binary(vec![1, 2, 3]).await;
    let f = c
        .recv_where("ERROR for a binary frame over budget", |f| {
            f["op"] == op::ERROR
        })
        .await;
    c.check_error(&f, None, code::RATE_LIMITED, "binary frame over budget");
    c.raw_error("not json", code::RATE_LIMITED).await;
    c.raw_error(r#"{"op":10,"d":{"channel_id":"c"}}"#, code::RATE_LIMITED)
        .await;
}
