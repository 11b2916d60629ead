//! IDENTIFY, tokens and the identified/unidentified gate (PROTOCOL.md section 1, "Sessions",
//! "Tokens", error codes 1000-1002 and 1004) through the real daemon: HELLO, id echoes, and
//! token checks with and without `LIVECHAT_SECRET`.
//!
//! The gate's rules alone (1000 before IDENTIFY, user_id and priority checks, 1002 for a
//! second session or a second IDENTIFY, retries after a refusal, the token's priority cap)
//! run in virtual time in core/src/gateway/tests/identify.rs.

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
