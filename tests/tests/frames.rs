//! Frame-level rules of PROTOCOL.md section 1: limits, frame type, JSON shape, the order of
//! checks (size 1005, frame type 1003, JSON shape/op 1004, unknown op 1003, not identified
//! 1000, then the op's own checks 1004 before state 2xxx/3xxx), nesting and unknown fields.

use livechat_tests::*;

/// A HEARTBEAT frame padded with an unknown string field to exactly `len` bytes.
fn padded_heartbeat(len: usize, id: u32) -> String {
    let head = format!(r#"{{"op":1,"d":null,"id":{id},"pad":""#);
    let tail = r#""}"#;
    assert!(len >= head.len() + tail.len());
    let s = format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()));
    assert_eq!(s.len(), len);
    s
}

/// `{"op":1,"d":null,"id":<id>,"x":<value nested so that the frame has depth `depth`>}`:
/// the top-level object is level 1, so the unknown field holds `depth - 1` levels.
fn nested_heartbeat(depth: usize, id: u32) -> String {
    assert!(depth >= 2);
    let inner = depth - 1;
    let mut v = String::new();
    for i in 0..inner {
        v.push_str(if i % 2 == 0 { "[" } else { "{\"k\":" });
    }
    v.push('1');
    for i in (0..inner).rev() {
        v.push_str(if i % 2 == 0 { "]" } else { "}" });
    }
    format!(r#"{{"op":1,"d":null,"id":{id},"x":{v}}}"#)
}

#[tokio::test]
async fn a_frame_at_the_inbound_limit_is_accepted() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.send_text(padded_heartbeat(proto::MAX_INBOUND_FRAME, 41))
        .await;
    let f = c
        .answer_to(41, "a HEARTBEAT of exactly the inbound limit")
        .await;
    assert_eq!(
        f["op"],
        op::HEARTBEAT_ACK,
        "a frame of exactly the inbound limit is within it: {}",
        describe(&f)
    );
}

#[tokio::test]
async fn a_frame_over_the_inbound_limit_is_1005_and_the_connection_lives_on() {
    let d = Daemon::start().await;
    let mut c = Client::identified(&d, "alice").await;
    c.raw_error(
        &padded_heartbeat(proto::MAX_INBOUND_FRAME + 1, 42),
        code::TOO_LARGE,
    )
    .await;
    c.assert_alive("after a frame one byte over the inbound limit")
        .await;
    // A chat message over the frame limit is a frame error, not a chat error.
    c.create("big").await;
    c.join("big").await;
    let content = "y".repeat(proto::MAX_INBOUND_FRAME + 1000);
    let text = json!({"op": op::MESSAGE_CREATE, "d": {"channel_id": "big", "content": content}})
        .to_string();
    c.raw_error(&text, code::TOO_LARGE).await;
    c.assert_alive("after a MESSAGE_CREATE over the inbound limit")
        .await;
    c.assert_quiet(ms(200), "an oversized MESSAGE_CREATE is not delivered")
        .await;
}

#[tokio::test]
async fn a_1005_echoes_the_id_of_an_oversized_frame() {
    // PROTOCOL.md: a request with `id` gets exactly one answer echoing it, 1005 included,
    // although the frame's payload is dropped as it arrives.
    let d = Daemon::start().await;
    let mut c = Client::identified(&d, "alice").await;
    c.send_text(padded_heartbeat(proto::MAX_INBOUND_FRAME + 100, 4242))
        .await;
    let f = c
        .recv_where("ERROR 1005 for an oversized frame", |f| {
            f["op"] == op::ERROR
        })
        .await;
    assert_eq!(f["d"]["code"], code::TOO_LARGE, "{f}");
    c.assert_quiet(ms(200), "one answer to an oversized frame")
        .await;
    c.assert_alive("after an oversized frame with an id").await;
}

#[tokio::test]
async fn a_frame_just_under_the_hard_cap_is_still_1005() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.raw_error(
        &padded_heartbeat(proto::HARD_FRAME_CAP, 43),
        code::TOO_LARGE,
    )
    .await;
    c.assert_alive("after a 65536-byte frame (at the hard cap, not over it)")
        .await;
}

#[tokio::test]
async fn a_frame_over_the_hard_cap_closes_with_1009() {
    let d = Daemon::start().await;
    let mut c = Client::identified(&d, "alice").await;
    let mut other = Client::identified(&d, "bob").await;
    c.send_text(padded_heartbeat(proto::HARD_FRAME_CAP + 1, 44))
        .await;
    c.expect_close_code(
        close::TOO_BIG,
        TIMEOUT,
        "a 65537-byte frame is over the 64 KiB hard cap",
    )
    .await;
    other
        .assert_alive("a neighbour of a connection closed for 1009")
        .await;
    // The session was cleaned up: alice can log in again.
    let mut again = Client::connect(&d, "conn-again").await;
    let deadline = tokio::time::Instant::now() + scaled(TIMEOUT);
    loop {
        let f = again
            .identify_raw(json!({"user_id": "alice", "token": d.token("alice")}))
            .await;
        if f["op"] == op::READY {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alice's user_id should be free again after her connection was closed: {}",
            describe(&f)
        );
        tokio::time::sleep(ms(100)).await;
    }
}

#[tokio::test]
async fn size_is_checked_before_frame_type_and_json_shape() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    // Oversized and malformed: 1005, not 1004.
    c.raw_error(&"{".repeat(proto::MAX_INBOUND_FRAME + 1), code::TOO_LARGE)
        .await;
    // Oversized binary: 1005, not 1003.
    c.send_binary(vec![0u8; proto::MAX_INBOUND_FRAME + 1]).await;
    let f = c
        .recv_where("ERROR for a binary frame over the inbound limit", |f| {
            f["op"] == op::ERROR
        })
        .await;
    c.check_error(
        &f,
        None,
        code::TOO_LARGE,
        "binary frame over the inbound limit",
    );
    // Oversized with an unknown op: 1005.
    let unknown = format!(
        r#"{{"op":99,"d":null,"pad":"{}"}}"#,
        "x".repeat(proto::MAX_INBOUND_FRAME)
    );
    c.raw_error(&unknown, code::TOO_LARGE).await;
    c.assert_alive("after oversized frames").await;
}

#[tokio::test]
async fn a_binary_frame_is_1003_and_the_connection_lives_on() {
    let d = Daemon::start().await;
    let mut c = Client::identified(&d, "alice").await;
    // Even a binary frame that holds a valid request.
    c.send_binary(br#"{"op":1,"d":null,"id":5}"#.to_vec()).await;
    let f = c
        .recv_where("ERROR for a binary frame", |f| f["op"] == op::ERROR)
        .await;
    c.check_error(&f, None, code::UNKNOWN_OP, "binary frame");
    c.send_binary(vec![0x80, 0x00, 0xff]).await;
    let f = c
        .recv_where("ERROR for a binary frame", |f| f["op"] == op::ERROR)
        .await;
    c.check_error(&f, None, code::UNKNOWN_OP, "binary frame");
    c.assert_alive("after binary frames").await;
}

#[tokio::test]
async fn malformed_json_and_bad_op_are_1004() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    let cases = [
        "",
        "not json",
        r#"{"op":1,"#,
        r#"{"op":1,"d":null}x"#,
        r#"{"op":1,"d":null}{"op":1,"d":null}"#,
        r#"{'op':1}"#,
        r#"{"op":1,"d":null,}"#,
        r#"[1,null]"#,
        r#""op""#,
        "42",
        "null",
        "{}",
        r#"{"d":null}"#,
        r#"{"op":null}"#,
        r#"{"op":"x"}"#,
        r#"{"op":"1"}"#,
        r#"{"op":1.5}"#,
        r#"{"op":true}"#,
        r#"{"op":[1]}"#,
        r#"{"op":{"v":1}}"#,
    ];
    for text in cases {
        c.raw_error(text, code::MALFORMED).await;
    }
    c.assert_alive("after 20 malformed frames").await;
}

#[tokio::test]
async fn an_unknown_op_is_1003_even_before_identify() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    // Unknown op comes before "not identified" in the order of checks.
    for o in [99i64, 5, 0, 2, 4, 200, 201, 100, -1] {
        c.send_json(&json!({"op": o, "d": null, "id": 9})).await;
        let f = c
            .recv_where(&format!("ERROR for unknown op {o}"), |f| {
                f["op"] == op::ERROR
            })
            .await;
        c.check_error(
            &f,
            None,
            code::UNKNOWN_OP,
            &format!("op {o} before IDENTIFY"),
        );
    }
    // Server-to-client ops sent by a client are unknown ops too; after identify the same.
    c.identify(&d, "alice").await;
    let f = c.request(99, json!({})).await;
    c.check_error(&f, None, code::UNKNOWN_OP, "op 99 after IDENTIFY");
    c.assert_alive("after unknown ops").await;
}

#[tokio::test]
async fn a_known_op_before_identify_is_1000_even_with_bad_fields() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.send_text(r#"{"op":10,"d":{"channel_id":"c"},"id":3}"#)
        .await;
    let f = c.answer_to(3, "CHANNEL_CREATE before IDENTIFY").await;
    c.check_error(
        &f,
        Some(op::CHANNEL_CREATE),
        code::NOT_IDENTIFIED,
        "op 10 unidentified",
    );
    c.send_text(r#"{"op":10,"d":{"channel_id":["not","a","string"]},"id":4}"#)
        .await;
    let f = c
        .answer_to(4, "CHANNEL_CREATE with a bad field before IDENTIFY")
        .await;
    c.check_error(
        &f,
        Some(op::CHANNEL_CREATE),
        code::NOT_IDENTIFIED,
        "op 10 unidentified with bad fields",
    );
}

#[tokio::test]
async fn wrong_field_types_are_1004_before_state_checks() {
    let d = Daemon::start().await;
    let mut c = Client::identified(&d, "alice").await;
    let cases = [
        (op::CHANNEL_CREATE, json!(null)),
        (op::CHANNEL_CREATE, json!({})),
        (op::CHANNEL_CREATE, json!([])),
        (op::CHANNEL_CREATE, json!({"channel_id": 5})),
        (op::CHANNEL_CREATE, json!({"channel_id": "c", "name": 5})),
        (
            op::CHANNEL_CREATE,
            json!({"channel_id": "c", "freq": 146.52}),
        ),
        (
            op::CHANNEL_CREATE,
            json!({"channel_id": "c", "capacity": "5"}),
        ),
        (
            op::CHANNEL_CREATE,
            json!({"channel_id": "c", "capacity": 2.5}),
        ),
        (
            op::CHANNEL_CREATE,
            json!({"channel_id": "c", "capacity": -1}),
        ),
        // Nonexistent channel, but the field check comes first: 1004, not 2000.
        (op::CHANNEL_JOIN, json!({"channel_id": "nope"})),
        (op::CHANNEL_JOIN, json!({"channel_id": "nope", "ssrc": "1"})),
        (op::CHANNEL_JOIN, json!({"channel_id": "nope", "ssrc": -1})),
        (
            op::CHANNEL_JOIN,
            json!({"channel_id": "nope", "ssrc": 4_294_967_296u64}),
        ),
        (op::CHANNEL_JOIN, json!({"channel_id": "nope", "ssrc": 1.5})),
        (op::CHANNEL_JOIN, json!({"channel_id": 7, "ssrc": 1})),
        (op::CHANNEL_LEAVE, json!({"channel_id": null})),
        (op::CHANNEL_LEAVE, json!({})),
        (
            op::CHANNEL_UPDATE,
            json!({"channel_id": "nope", "capacity": "x"}),
        ),
        (op::CHANNEL_DELETE, json!({"channel_id": 1})),
        (op::CHANNEL_INFO, json!({"channel_id": false})),
        (op::CHANNEL_INFO, json!(null)),
        (op::MESSAGE_CREATE, json!({"channel_id": "nope"})),
        (
            op::MESSAGE_CREATE,
            json!({"channel_id": "nope", "content": 5}),
        ),
        (op::MESSAGE_CREATE, json!({"content": "hi"})),
        // Bad channel_id shapes (charset, length) are invalid fields too.
        (op::CHANNEL_INFO, json!({"channel_id": ""})),
        (op::CHANNEL_INFO, json!({"channel_id": "a b"})),
        (op::CHANNEL_INFO, json!({"channel_id": "x".repeat(33)})),
    ];
    for (o, body) in cases {
        c.error(o, body, code::MALFORMED).await;
    }
    c.assert_alive("after 27 invalid requests").await;
}

#[tokio::test]
async fn nesting_16_deep_is_an_ignored_unknown_field_and_17_deep_is_1004() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    let ok = nested_heartbeat(proto::MAX_JSON_DEPTH, 16);
    c.send_text(ok.clone()).await;
    let f = c.answer_to(16, &format!("a 16-deep HEARTBEAT {ok}")).await;
    assert_eq!(
        f["op"],
        op::HEARTBEAT_ACK,
        "nesting of 16 levels (top-level object = level 1) is allowed: {ok} -> {}",
        describe(&f)
    );
    let bad = nested_heartbeat(proto::MAX_JSON_DEPTH + 1, 17);
    c.send_text(bad.clone()).await;
    let f = c
        .recv_where(&format!("ERROR 1004 for a 17-deep frame {bad}"), |f| {
            f["op"] == op::ERROR || has_id(f, 17)
        })
        .await;
    c.check_error(&f, None, code::MALFORMED, &format!("17-deep frame {bad}"));
    c.assert_alive("after a 17-deep frame").await;
}

#[tokio::test]
async fn pathological_nesting_within_the_size_limit_is_1004_not_a_crash() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    // 4000 levels: would blow a naive recursive parser's stack.
    c.raw_error(&"[".repeat(4000), code::MALFORMED).await;
    let balanced = format!(
        r#"{{"op":1,"d":{}1{}}}"#,
        "[".repeat(1900),
        "]".repeat(1900)
    );
    assert!(balanced.len() <= proto::MAX_INBOUND_FRAME);
    c.raw_error(&balanced, code::MALFORMED).await;
    c.assert_alive("after pathological nesting").await;
    let mut other = Client::connect(&d, "other").await;
    other
        .assert_alive("a new connection after pathological nesting")
        .await;
}

#[tokio::test]
async fn unknown_fields_are_ignored_everywhere() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.send_text(r#"{"op":1,"d":null,"id":1,"extra":{"a":[1,2,{"b":null}]},"zzz":true,"OP":5}"#)
        .await;
    let f = c.answer_to(1, "HEARTBEAT with unknown fields").await;
    assert_eq!(f["op"], op::HEARTBEAT_ACK, "{}", describe(&f));
    let f = c
        .identify_raw(json!({"user_id": "alice", "token": d.token("alice"),
            "client": "e2e", "version": [1, 2], "nested": {"x": {}}}))
        .await;
    assert_eq!(
        f["op"],
        op::READY,
        "IDENTIFY with unknown fields: {}",
        describe(&f)
    );
    c.user_id = Some("alice".into());
    c.ack(
        op::CHANNEL_CREATE,
        json!({"channel_id": "u", "unknown": 1, "color": "red"}),
    )
    .await;
    let a = c
        .ack(
            op::CHANNEL_JOIN,
            json!({"channel_id": "u", "ssrc": fresh_ssrc(), "mute": true}),
        )
        .await;
    assert_eq!(a["channel_id"], "u", "{a}");
    c.send_text(r#"{"op":20,"d":{"channel_id":"u","content":"hi","fmt":"md"},"x":[]}"#)
        .await;
    c.expect_message("u", "alice", "hi").await;
}

#[tokio::test]
async fn websocket_pings_are_answered() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.send_ping(b"e2e".to_vec()).await;
    // tungstenite swallows the pong; what matters is that the connection stays healthy.
    c.assert_alive("after a WebSocket ping").await;
}
