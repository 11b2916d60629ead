//! Chat (PROTOCOL.md section 1, MESSAGE_CREATE/MESSAGE_EVENT, codes 3000-3002).

use livechat_tests::token::now_unix_ms;
use livechat_tests::*;

const QUIET: u64 = 250;

async fn room(d: &Daemon, channel: &str, users: &[&str]) -> Vec<Client> {
    let mut out = Vec::new();
    for u in users {
        let mut c = Client::identified(d, u).await;
        if out.is_empty() {
            c.create(channel).await;
        }
        c.join(channel).await;
        out.push(c);
    }
    // Drain the join events so tests start from silence.
    let n = out.len();
    for (i, c) in out.iter_mut().enumerate() {
        for later in users.iter().take(n).skip(i + 1) {
            c.expect_member_event("join", channel, later).await;
        }
    }
    out
}

#[tokio::test]
async fn a_message_fans_out_to_40_members_including_the_sender() {
    let d = Daemon::start().await;
    let names: Vec<String> = (0..40).map(|i| format!("m{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut members = room(&d, "town", &refs).await;
    let mut outsider = Client::identified(&d, "outsider").await;
    for c in members.iter_mut() {
        c.assert_quiet(ms(20), "each member heard exactly the later joins")
            .await;
    }

    let before = now_unix_ms();
    members[7]
        .send_op(
            op::MESSAGE_CREATE,
            json!({"channel_id": "town", "content": "hello town"}),
        )
        .await;
    for c in members.iter_mut() {
        let ev = c.expect_message("town", "m07", "hello town").await;
        let ts = ev["timestamp"].as_u64().expect("timestamp");
        let after = now_unix_ms();
        assert!(
            ts + 5000 >= before && ts <= after + 5000,
            "{}: MESSAGE_EVENT timestamp {ts} is not near now ({before}..{after} ms): {ev}",
            c.label()
        );
    }
    let quiet = members
        .iter_mut()
        .map(|c| c.assert_quiet(ms(QUIET), "exactly one MESSAGE_EVENT per member"));
    futures_util::future::join_all(quiet).await;
    outsider
        .assert_quiet(ms(QUIET), "a non-member gets no MESSAGE_EVENT")
        .await;
}

#[tokio::test]
async fn message_without_id_gets_only_its_event_and_with_id_one_ack() {
    let d = Daemon::start().await;
    let mut r = room(&d, "c", &["alice", "bob"]).await;
    // Without id: the sender gets only its MESSAGE_EVENT (no ACK).
    r[0].send_op(
        op::MESSAGE_CREATE,
        json!({"channel_id": "c", "content": "one"}),
    )
    .await;
    let f = r[0].recv("alice's own MESSAGE_EVENT").await;
    assert_eq!(
        f["op"],
        op::MESSAGE_EVENT,
        "MESSAGE_CREATE without id gets only its MESSAGE_EVENT: {}",
        describe(&f)
    );
    r[0].assert_quiet(ms(QUIET), "no ACK for a MESSAGE_CREATE without id")
        .await;
    r[1].expect_message("c", "alice", "one").await;

    // With id: exactly one answer echoes it, an ACK with req_op 20; the event still comes.
    let id = r[0]
        .send_request(
            op::MESSAGE_CREATE,
            json!({"channel_id": "c", "content": "two"}),
        )
        .await;
    let frames = r[0].drain(ms(500)).await;
    let echoing: Vec<&Value> = frames.iter().filter(|f| has_id(f, id)).collect();
    assert_eq!(
        echoing.len(),
        1,
        "a request with id gets exactly one answer echoing it: {:?}",
        frames.iter().map(describe).collect::<Vec<_>>()
    );
    r[0].check_ack(echoing[0], op::MESSAGE_CREATE, "MESSAGE_CREATE with id");
    assert!(
        frames.iter().any(|f| f["op"] == op::MESSAGE_EVENT
            && f["d"]["content"] == "two"
            && f["d"]["user_id"] == "alice"),
        "the sender is a member and gets its MESSAGE_EVENT too: {:?}",
        frames.iter().map(describe).collect::<Vec<_>>()
    );
    r[1].expect_message("c", "alice", "two").await;
    r[1].assert_quiet(ms(QUIET), "one event per message").await;
}

#[tokio::test]
async fn unicode_round_trips_from_surrogate_escapes_and_raw_utf8() {
    let d = Daemon::start().await;
    let mut r = room(&d, "uni", &["alice", "bob"]).await;

    // What Python's json.dumps emits for "hi 😀 é": surrogate-pair escapes, ASCII only.
    r[0].send_text(r#"{"op":20,"d":{"channel_id":"uni","content":"hi \ud83d\ude00 \u00e9"}}"#)
        .await;
    for c in r.iter_mut() {
        c.expect_message("uni", "alice", "hi 😀 é").await;
    }

    // Raw UTF-8 of all widths, escapes for control characters, quotes and backslashes.
    let tricky = "héllo wörld — 日本語 😀👍🏽 🇫🇷 \"quoted\" back\\slash tab\tnewline\n nul\u{0} end";
    r[1].send_json(&json!({"op": 20, "d": {"channel_id": "uni", "content": tricky}}))
        .await;
    for c in r.iter_mut() {
        c.expect_message("uni", "bob", tricky).await;
    }
    // Mixed: raw UTF-8 next to escapes of the same characters.
    r[0].send_text(
        "{\"op\":20,\"d\":{\"channel_id\":\"uni\",\"content\":\"😀=\\ud83d\\ude00 \\u65e5=日\"}}",
    )
    .await;
    for c in r.iter_mut() {
        c.expect_message("uni", "alice", "😀=😀 日=日").await;
    }
    for c in r.iter_mut() {
        c.assert_quiet(ms(QUIET), "one event per message").await;
    }
}

#[tokio::test]
async fn empty_content_is_3000() {
    let d = Daemon::start().await;
    let mut r = room(&d, "c", &["alice", "bob"]).await;
    r[0].error(
        op::MESSAGE_CREATE,
        json!({"channel_id": "c", "content": ""}),
        code::EMPTY_MESSAGE,
    )
    .await;
    // Without id, the ERROR still comes (and nothing is delivered).
    r[0].send_op(
        op::MESSAGE_CREATE,
        json!({"channel_id": "c", "content": ""}),
    )
    .await;
    let f = r[0]
        .recv("ERROR 3000 for an empty message without id")
        .await;
    r[0].check_error(
        &f,
        Some(op::MESSAGE_CREATE),
        code::EMPTY_MESSAGE,
        "empty, no id",
    );
    r[1].assert_quiet(ms(QUIET), "an empty message is not delivered")
        .await;
}

#[tokio::test]
async fn content_limit_is_1024_utf8_bytes_not_characters() {
    let d = Daemon::start().await;
    let mut r = room(&d, "c", &["alice", "bob"]).await;
    let cases_ok = [
        "a".repeat(1024),
        // 256 four-byte characters = 1024 bytes.
        "😀".repeat(256),
        // 341 x 3 + 1 = 1024 bytes.
        format!("{}a", "€".repeat(341)),
    ];
    for content in &cases_ok {
        r[0].say("c", content).await;
        r[1].expect_message("c", "alice", content).await;
    }
    // 256 emoji sent as surrogate escapes: 3 kB of JSON, 1024 bytes of content.
    let escaped = format!(
        r#"{{"op":20,"d":{{"channel_id":"c","content":"{}"}}}}"#,
        r"\ud83d\ude00".repeat(256)
    );
    assert!(escaped.len() < proto::MAX_INBOUND_FRAME);
    r[0].send_text(escaped).await;
    let emoji = "😀".repeat(256);
    r[0].expect_message("c", "alice", &emoji).await;
    r[1].expect_message("c", "alice", &emoji).await;

    let cases_long = [
        "a".repeat(1025),
        format!("{}a", "😀".repeat(256)),
        // 342 characters but 1026 bytes: counting characters would wrongly accept it.
        "€".repeat(342),
    ];
    for content in cases_long {
        r[0].error(
            op::MESSAGE_CREATE,
            json!({"channel_id": "c", "content": content}),
            code::MESSAGE_TOO_LONG,
        )
        .await;
    }
    // 1025 bytes written as escapes.
    let escaped = format!(
        r#"{{"op":20,"d":{{"channel_id":"c","content":"{}a"}},"id":77}}"#,
        r"\ud83d\ude00".repeat(256)
    );
    r[0].send_text(escaped).await;
    let f = r[0].answer_to(77, "1025 bytes of content as escapes").await;
    r[0].check_error(
        &f,
        Some(op::MESSAGE_CREATE),
        code::MESSAGE_TOO_LONG,
        "escaped 1025 bytes",
    );
    for c in r.iter_mut() {
        c.assert_quiet(ms(QUIET), "refused messages are not delivered")
            .await;
    }
}

#[tokio::test]
async fn a_non_member_cannot_chat_3002() {
    let d = Daemon::start().await;
    let mut r = room(&d, "c", &["alice"]).await;
    let mut eve = Client::identified(&d, "eve").await;
    eve.error(
        op::MESSAGE_CREATE,
        json!({"channel_id": "c", "content": "let me in"}),
        code::NOT_A_MEMBER,
    )
    .await;
    r[0].assert_quiet(ms(QUIET), "a non-member's message is not delivered")
        .await;
    // After leaving, a former member is a non-member too.
    r[0].leave("c").await;
    r[0].error(
        op::MESSAGE_CREATE,
        json!({"channel_id": "c", "content": "still here?"}),
        code::NOT_A_MEMBER,
    )
    .await;
}

#[tokio::test]
async fn messages_from_one_sender_arrive_in_order_and_stop_after_leave() {
    let d = Daemon::start().await;
    let mut r = room(&d, "c", &["alice", "bob", "carol"]).await;
    for i in 0..30 {
        r[0].send_op(
            op::MESSAGE_CREATE,
            json!({"channel_id": "c", "content": format!("msg {i}")}),
        )
        .await;
    }
    for c in r.iter_mut() {
        for i in 0..30 {
            let f = c.recv(&format!("message {i} of 30 in order")).await;
            assert!(
                f["op"] == op::MESSAGE_EVENT && f["d"]["content"] == format!("msg {i}"),
                "{}: expected MESSAGE_EVENT \"msg {i}\" (in order), got {}",
                c.label(),
                describe(&f)
            );
        }
    }
    r[2].leave("c").await;
    r[0].expect_member_event("leave", "c", "carol").await;
    r[1].expect_member_event("leave", "c", "carol").await;
    r[0].say("c", "after carol left").await;
    r[1].expect_message("c", "alice", "after carol left").await;
    r[2].assert_quiet(ms(QUIET), "a member who left gets no more messages")
        .await;
}

#[tokio::test]
async fn a_member_of_two_channels_gets_each_message_once_with_its_channel() {
    let d = Daemon::start().await;
    let mut a = Client::identified(&d, "alice").await;
    let mut b = Client::identified(&d, "bob").await;
    a.create("one").await;
    a.create("two").await;
    a.join("one").await;
    a.join("two").await;
    b.join("one").await;
    a.expect_member_event("join", "one", "bob").await;
    a.say("two", "only in two").await;
    a.say("one", "only in one").await;
    b.expect_message("one", "alice", "only in one").await;
    b.assert_quiet(ms(QUIET), "bob is not in channel two").await;
    a.assert_quiet(ms(QUIET), "one event per message").await;
}
