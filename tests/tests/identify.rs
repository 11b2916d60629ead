//! IDENTIFY, tokens and the identified/unidentified gate (PROTOCOL.md section 1, "Sessions",
//! "Tokens", error codes 1000-1002 and 1004).

use livechat_tests::token::{mint, mint_at, now_unix};
use livechat_tests::*;

const SECRET: &str = "e2e-identify-secret";

#[tokio::test]
async fn hello_then_identify_gets_ready_with_session_and_user() {
    let d = Daemon::start().await;
    let mut a = Client::connect(&d, "conn-a").await;
    let hello = a.hello.clone().expect("hello");
    assert_eq!(
        hello["heartbeat_interval"], 15000,
        "default heartbeat_interval is 15000 ms: {hello}"
    );
    let server = hello["server"].as_str().expect("server");
    assert!(
        server.starts_with(&format!("livechatd/{}", env!("CARGO_PKG_VERSION"))),
        "HELLO server is livechatd/<version> (the workspace version {}): {server}",
        env!("CARGO_PKG_VERSION")
    );
    let ready = a.identify(&d, "alice").await;
    let sid_a = ready["session_id"].as_str().expect("session_id").to_owned();
    assert!(!sid_a.is_empty(), "session_id must not be empty: {ready}");

    let mut b = Client::connect(&d, "conn-b").await;
    let ready_b = b.identify(&d, "bob").await;
    assert_ne!(
        ready_b["session_id"], sid_a,
        "two sessions must not share a session_id"
    );
    a.assert_quiet(ms(200), "another user identifying sends nothing to alice")
        .await;
}

#[tokio::test]
async fn answers_echo_the_request_id_including_zero_and_u32_max() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    for id in [0u64, 7, 4_294_967_295] {
        c.send_json(&json!({"op": op::HEARTBEAT, "d": null, "id": id}))
            .await;
        let f = c.recv(&format!("HEARTBEAT_ACK echoing id {id}")).await;
        assert_eq!(f["op"], op::HEARTBEAT_ACK, "{}", describe(&f));
        assert_eq!(f["id"], id, "HEARTBEAT_ACK must echo id {id}: {f}");
    }
    c.send_json(&json!({"op": op::IDENTIFY, "id": 4_294_967_295u64,
        "d": {"user_id": "alice", "token": d.token("alice")}}))
        .await;
    let f = c.recv("READY echoing id 4294967295").await;
    assert_eq!(f["op"], op::READY, "{}", describe(&f));
    assert_eq!(f["id"], 4_294_967_295u64, "READY must echo the id: {f}");

    // An ERROR echoes the id too.
    c.send_json(&json!({"op": op::CHANNEL_INFO, "id": 0, "d": {"channel_id": "nope"}}))
        .await;
    let f = c.recv("ERROR 2000 echoing id 0").await;
    c.check_error(
        &f,
        Some(op::CHANNEL_INFO),
        code::CHANNEL_NOT_FOUND,
        "CHANNEL_INFO nope",
    );
    assert_eq!(f["id"], 0, "ERROR must echo id 0: {f}");

    // Without id: a channel op still gets ACK/ERROR, with no id.
    c.send_op(op::CHANNEL_INFO, json!({"channel_id": "nope"}))
        .await;
    let f = c.recv("ERROR 2000 for CHANNEL_INFO without id").await;
    c.check_error(
        &f,
        Some(op::CHANNEL_INFO),
        code::CHANNEL_NOT_FOUND,
        "CHANNEL_INFO nope",
    );
    assert!(
        has_no_id(&f),
        "an answer to a request without id has no id: {f}"
    );
    c.send_op(op::CHANNEL_LIST, Value::Null).await;
    let f = c.recv("ACK for CHANNEL_LIST without id").await;
    c.check_ack(&f, op::CHANNEL_LIST, "without id");
    assert!(
        has_no_id(&f),
        "an answer to a request without id has no id: {f}"
    );
}

#[tokio::test]
async fn an_id_that_is_not_a_u32_is_error_1004() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    for bad in [
        r#"{"op":1,"d":null,"id":"7"}"#,
        r#"{"op":1,"d":null,"id":-1}"#,
        r#"{"op":1,"d":null,"id":4294967296}"#,
        r#"{"op":1,"d":null,"id":1.5}"#,
    ] {
        c.raw_error(bad, code::MALFORMED).await;
    }
    c.assert_alive("after bad ids").await;
}

#[tokio::test]
async fn heartbeat_is_allowed_before_identify() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.heartbeat().await;
    c.send_op(op::HEARTBEAT, Value::Null).await;
    let f = c.recv("HEARTBEAT_ACK for a HEARTBEAT without id").await;
    assert_eq!(f["op"], op::HEARTBEAT_ACK, "{}", describe(&f));
    assert!(has_no_id(&f), "{f}");
}

#[tokio::test]
async fn every_op_but_heartbeat_and_identify_is_1000_before_identify() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    let requests = [
        (op::CHANNEL_CREATE, json!({"channel_id": "c"})),
        (op::CHANNEL_JOIN, json!({"channel_id": "c", "ssrc": 1})),
        (op::CHANNEL_LEAVE, json!({"channel_id": "c"})),
        (op::CHANNEL_UPDATE, json!({"channel_id": "c", "name": "x"})),
        (op::CHANNEL_DELETE, json!({"channel_id": "c"})),
        (op::CHANNEL_LIST, Value::Null),
        (op::CHANNEL_INFO, json!({"channel_id": "c"})),
        (
            op::MESSAGE_CREATE,
            json!({"channel_id": "c", "content": "hi"}),
        ),
        // Field checks come after the identified check: still 1000.
        (op::CHANNEL_CREATE, json!({"channel_id": 5})),
        (op::CHANNEL_JOIN, Value::Null),
    ];
    for (o, body) in requests {
        c.error(o, body, code::NOT_IDENTIFIED).await;
    }
    // The connection is still usable: identify, then the same op works.
    c.identify(&d, "late").await;
    c.create("c").await;
}

#[tokio::test]
async fn floor_ops_before_identify_are_1000() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    for o in [op::FLOOR_REQUEST, op::FLOOR_RELEASE, op::FLOOR_PING] {
        c.error(o, json!({"channel_id": "c"}), code::NOT_IDENTIFIED)
            .await;
    }
}

#[tokio::test]
async fn malformed_tokens_are_1001() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    let exp = now_unix() + 3600;
    let mac = "0123456789abcdef0123456789abcdef01234567";
    let bad_tokens = [
        String::new(),
        "garbage".to_owned(),
        format!("{exp}"),
        format!("{exp}.0"),
        format!("{exp}.0.{mac}.extra"),
        format!("x{exp}.0.{mac}"),
        format!("{exp}.x.{mac}"),
        format!("-5.0.{mac}"),
        format!("{exp}.256.{mac}"),
        format!("{exp}.-1.{mac}"),
        format!("{exp}.0.{}", &mac[..39]),
        format!("{exp}.0.{mac}0"),
        format!("{exp}.0.{}", "zz".repeat(20)),
        format!("{exp}.0."),
        format!(".0.{mac}"),
        format!("{exp}..{mac}"),
        format!("{exp} .0.{mac}"),
        // Expiry beyond u64.
        format!("99999999999999999999999.0.{mac}"),
        // Far too long.
        format!("{exp}.0.{}", "a".repeat(2000)),
    ];
    for t in &bad_tokens {
        let f = c
            .identify_raw(json!({"user_id": "alice", "token": t}))
            .await;
        c.check_error(
            &f,
            Some(op::IDENTIFY),
            code::INVALID_TOKEN,
            &format!(
                "IDENTIFY with token {:?}{}",
                t.chars().take(70).collect::<String>(),
                if t.len() > 70 {
                    format!("... ({} bytes)", t.len())
                } else {
                    String::new()
                }
            ),
        );
    }
    // Still not identified, and still open: a good token works.
    c.error(op::CHANNEL_LIST, Value::Null, code::NOT_IDENTIFIED)
        .await;
    c.identify(&d, "alice").await;
}

#[tokio::test]
async fn token_field_missing_or_not_a_string_is_1004() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    for body in [
        json!({"user_id": "alice"}),
        json!({"user_id": "alice", "token": 12345}),
        json!({"user_id": "alice", "token": null}),
        json!({"token": d.token("alice")}),
        json!(null),
        json!([d.token("alice")]),
    ] {
        c.error(op::IDENTIFY, body, code::MALFORMED).await;
    }
    c.identify(&d, "alice").await;
}

#[tokio::test]
async fn expired_token_is_1001_without_and_with_a_secret() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    let expired = mint_at("whatever", "alice", now_unix() - 10, 0);
    let f = c
        .identify_raw(json!({"user_id": "alice", "token": expired}))
        .await;
    c.check_error(&f, Some(op::IDENTIFY), code::INVALID_TOKEN, "expired token");
    let long_expired = mint_at("whatever", "alice", 1, 0);
    let f = c
        .identify_raw(json!({"user_id": "alice", "token": long_expired}))
        .await;
    c.check_error(
        &f,
        Some(op::IDENTIFY),
        code::INVALID_TOKEN,
        "token expired in 1970",
    );

    let d = Daemon::builder().secret(SECRET).start().await;
    let mut c = Client::connect(&d, "conn").await;
    let expired = mint_at(SECRET, "alice", now_unix() - 10, 0);
    let f = c
        .identify_raw(json!({"user_id": "alice", "token": expired}))
        .await;
    c.check_error(
        &f,
        Some(op::IDENTIFY),
        code::INVALID_TOKEN,
        "correctly signed but expired token",
    );
    // A token expiring a minute from now is fine.
    let fresh = mint(SECRET, "alice", 60, 0);
    c.identify_token("alice", &fresh).await;
}

#[tokio::test]
async fn with_a_secret_the_mac_is_checked() {
    let d = Daemon::builder().secret(SECRET).start().await;
    let mut c = Client::connect(&d, "conn").await;
    let exp = now_unix() + 3600;
    let good = mint_at(SECRET, "alice", exp, 5);
    let cases = [
        (
            "MAC keyed with another secret",
            mint_at("not-the-secret", "alice", exp, 5),
        ),
        ("MAC for another user", mint_at(SECRET, "mallory", exp, 5)),
        (
            "priority cap raised after signing",
            good.replacen(".5.", ".255.", 1),
        ),
        (
            "expiry extended after signing",
            good.replacen(&exp.to_string(), &(exp + 1000).to_string(), 1),
        ),
        ("MAC in upper case is not the lowercase hex MAC", {
            let (head, mac) = good.rsplit_once('.').expect("token has dots");
            let upper = mac.to_uppercase();
            // Only meaningful if the MAC has letters.
            if upper == mac {
                format!("{head}.{}", "f".repeat(40))
            } else {
                format!("{head}.{upper}")
            }
        }),
        ("all-zero MAC", format!("{exp}.5.{}", "0".repeat(40))),
    ];
    for (why, t) in &cases {
        let f = c
            .identify_raw(json!({"user_id": "alice", "token": t}))
            .await;
        c.check_error(
            &f,
            Some(op::IDENTIFY),
            code::INVALID_TOKEN,
            &format!("IDENTIFY with a bad MAC ({why}): {t}"),
        );
    }
    c.identify_token("alice", &good).await;
    // Mallory cannot reuse alice's token either.
    let mut m = Client::connect(&d, "conn-m").await;
    let f = m
        .identify_raw(json!({"user_id": "mallory", "token": good}))
        .await;
    m.check_error(
        &f,
        Some(op::IDENTIFY),
        code::INVALID_TOKEN,
        "alice's token for mallory",
    );
}

#[tokio::test]
async fn identify_priority_is_validated_and_capped_not_refused() {
    let d = Daemon::builder().secret(SECRET).start().await;
    let tok = mint(SECRET, "alice", 3600, 5);
    let mut c = Client::connect(&d, "conn").await;
    for p in [json!(256), json!(-1), json!("5"), json!(1.5), json!(true)] {
        let f = c
            .identify_raw(json!({"user_id": "alice", "token": tok, "priority": p}))
            .await;
        c.check_error(
            &f,
            Some(op::IDENTIFY),
            code::MALFORMED,
            &format!("IDENTIFY with priority {p}"),
        );
    }
    // Above the token's cap is capped (PROTOCOL.md: "capped by the token"), not an error.
    let f = c
        .identify_raw(json!({"user_id": "alice", "token": tok, "priority": 200}))
        .await;
    assert_eq!(
        f["op"],
        op::READY,
        "priority 200 with a cap-5 token is capped, not refused: {}",
        describe(&f)
    );
    // Explicit 0 and 255 are in range.
    let tok_b = mint(SECRET, "bob", 3600, 255);
    let mut b = Client::connect(&d, "conn-b").await;
    let f = b
        .identify_raw(json!({"user_id": "bob", "token": tok_b, "priority": 255}))
        .await;
    assert_eq!(f["op"], op::READY, "priority 255: {}", describe(&f));
    let tok_c = mint(SECRET, "carol", 3600, 0);
    let mut cc = Client::connect(&d, "conn-c").await;
    let f = cc
        .identify_raw(json!({"user_id": "carol", "token": tok_c, "priority": 0}))
        .await;
    assert_eq!(f["op"], op::READY, "priority 0: {}", describe(&f));
}

#[tokio::test]
async fn user_id_charset_and_length_are_1004() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
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
    for u in bad_ids {
        // With no secret, any well-formed token is accepted, so only the user_id is wrong.
        let tok = d.token("x");
        let f = c.identify_raw(json!({"user_id": u, "token": tok})).await;
        c.check_error(
            &f,
            Some(op::IDENTIFY),
            code::MALFORMED,
            &format!("IDENTIFY with user_id {u}"),
        );
    }
    // The edges that are valid: 32 characters of the full charset, and 1 character.
    let max = "Az09_.-Az09_.-Az09_.-Az09_.-Az09";
    assert_eq!(max.len(), 32);
    c.identify(&d, max).await;
    let mut one = Client::connect(&d, "conn-1").await;
    one.identify(&d, "x").await;
}

#[tokio::test]
async fn duplicate_user_id_across_connections_is_1002() {
    let d = Daemon::start().await;
    let mut a = Client::identified(&d, "alice").await;
    let mut a2 = Client::connect(&d, "alice-again").await;
    let f = a2
        .identify_raw(json!({"user_id": "alice", "token": d.token("alice")}))
        .await;
    a2.check_error(
        &f,
        Some(op::IDENTIFY),
        code::ALREADY_IDENTIFIED,
        "second alice",
    );
    // The first alice is unaffected, and the second connection can still identify as another.
    a.assert_alive("the original alice after a duplicate login")
        .await;
    a.assert_quiet(
        ms(100),
        "a rejected duplicate login is not announced to alice",
    )
    .await;
    a2.identify(&d, "alice2").await;
}

#[tokio::test]
async fn identify_twice_on_one_connection_is_1002() {
    let d = Daemon::start().await;
    let mut a = Client::identified(&d, "alice").await;
    let f = a
        .identify_raw(json!({"user_id": "alice", "token": d.token("alice")}))
        .await;
    a.check_error(
        &f,
        Some(op::IDENTIFY),
        code::ALREADY_IDENTIFIED,
        "IDENTIFY again as alice",
    );
    let f = a
        .identify_raw(json!({"user_id": "other", "token": d.token("other")}))
        .await;
    a.check_error(
        &f,
        Some(op::IDENTIFY),
        code::ALREADY_IDENTIFIED,
        "IDENTIFY again as other",
    );
    // Still alice: a channel op works, and "other" was not taken.
    a.create("still-alice").await;
    let mut o = Client::connect(&d, "conn-o").await;
    o.identify(&d, "other").await;
}

#[tokio::test]
async fn a_failed_identify_leaves_the_connection_open_for_a_retry() {
    let d = Daemon::builder().secret(SECRET).start().await;
    let mut c = Client::connect(&d, "conn").await;
    let f = c
        .identify_raw(json!({"user_id": "alice", "token": mint(SECRET, "bob", 60, 0)}))
        .await;
    c.check_error(
        &f,
        Some(op::IDENTIFY),
        code::INVALID_TOKEN,
        "wrong-user token",
    );
    let f = c
        .identify_raw(json!({"user_id": "bad id", "token": mint(SECRET, "alice", 60, 0)}))
        .await;
    c.check_error(&f, Some(op::IDENTIFY), code::MALFORMED, "bad user_id");
    c.assert_alive("after two failed IDENTIFYs").await;
    c.identify_token("alice", &mint(SECRET, "alice", 60, 0))
        .await;
    c.create("ok").await;
}

#[tokio::test]
async fn errors_for_parsed_frames_echo_their_id() {
    // "A request carrying id gets exactly one answer echoing id": when the frame is a JSON
    // object with a valid id, even a shape error is answered with that id.
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    for (text, id, code) in [
        (r#"{"op":"x","d":null,"id":5}"#, 5u32, code::MALFORMED),
        (r#"{"d":null,"id":6}"#, 6, code::MALFORMED),
        (r#"{"op":1.5,"d":null,"id":7}"#, 7, code::MALFORMED),
        (r#"{"op":99,"d":null,"id":8}"#, 8, code::UNKNOWN_OP),
        (
            r#"{"op":10,"d":{"channel_id":"c"},"id":9}"#,
            9,
            code::NOT_IDENTIFIED,
        ),
        (
            r#"{"op":3,"d":{"user_id":"a b","token":"x"},"id":10}"#,
            10,
            code::MALFORMED,
        ),
    ] {
        c.send_text(text).await;
        let f = c
            .recv_where(&format!("ERROR {code} for {text}"), |f| {
                f["op"] == op::ERROR
            })
            .await;
        c.check_error(&f, None, code, text);
        assert!(
            has_id(&f, id),
            "the ERROR for {text} must echo id {id}: {f}"
        );
    }
}

/// The cap is observable only through floor control (FLOOR_TAKEN's `priority`).
#[tokio::test]
async fn a_priority_above_the_token_cap_is_capped_as_floor_taken_shows() {
    let d = Daemon::builder().secret(SECRET).start().await;
    let mut alice = Client::connect(&d, "conn-a").await;
    let f = alice
        .identify_raw(
            json!({"user_id": "alice", "token": mint(SECRET, "alice", 3600, 5),
            "priority": 200}),
        )
        .await;
    assert_eq!(f["op"], op::READY, "{}", describe(&f));
    alice.user_id = Some("alice".into());
    let mut bob = Client::connect(&d, "conn-b").await;
    bob.identify_token("bob", &mint(SECRET, "bob", 3600, 0))
        .await;
    alice.create("f").await;
    alice.join("f").await;
    bob.join("f").await;
    alice.expect_member_event("join", "f", "bob").await;

    // The session priority (200) is capped by the token (5).
    alice
        .send_op(op::FLOOR_REQUEST, json!({"channel_id": "f"}))
        .await;
    alice
        .recv_where("FLOOR_GRANTED to alice", |f| f["op"] == op::FLOOR_GRANTED)
        .await;
    let taken = bob
        .recv_where("FLOOR_TAKEN by alice", |f| f["op"] == op::FLOOR_TAKEN)
        .await;
    assert_eq!(
        taken["d"]["priority"], 5,
        "IDENTIFY priority 200 with a cap-5 token must be capped to 5: {taken}"
    );
    alice
        .send_op(op::FLOOR_RELEASE, json!({"channel_id": "f"}))
        .await;
    bob.recv_where("FLOOR_IDLE", |f| f["op"] == op::FLOOR_IDLE)
        .await;
    alice
        .recv_where("FLOOR_IDLE", |f| f["op"] == op::FLOOR_IDLE)
        .await;

    // An explicit FLOOR_REQUEST priority is capped the same way.
    alice
        .send_op(
            op::FLOOR_REQUEST,
            json!({"channel_id": "f", "priority": 250}),
        )
        .await;
    let taken = bob
        .recv_where("FLOOR_TAKEN by alice again", |f| f["op"] == op::FLOOR_TAKEN)
        .await;
    assert_eq!(
        taken["d"]["priority"], 5,
        "FLOOR_REQUEST priority 250 with a cap-5 token must be capped to 5: {taken}"
    );
}
