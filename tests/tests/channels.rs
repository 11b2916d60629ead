//! Channels (PROTOCOL.md section 1, ops 10-16, "Who hears what", codes 2000-2007) through
//! the real daemon: the life cycle over real sockets, field limits, lists, capacities set by
//! the daemon's settings, media and transport policies.
//!
//! The channel rules alone (update and delete rights, 2000/2001/2002/2003/2004/2007, what a
//! delete leaves behind, a creator reconnecting) run in virtual time in
//! core/src/gateway/tests/channels.rs; a delete under a held floor in
//! core/src/gateway/tests/floor.rs.

use livechat_tests::*;

const QUIET: u64 = 250;

fn entry<'a>(list: &'a [Value], channel_id: &str) -> &'a Value {
    list.iter()
        .find(|e| e["channel_id"] == channel_id)
        .unwrap_or_else(|| {
            panic!(
                "CHANNEL_LIST should list {channel_id}: {}",
                show(&Value::Array(list.to_vec()))
            )
        })
}

#[tokio::test]
async fn channel_life_cycle_with_exactly_the_right_events_to_the_right_members() {
    let d = Daemon::start().await;
    let mut alice = Client::identified(&d, "alice").await;
    let mut bob = Client::identified(&d, "bob").await;
    let mut carol = Client::identified(&d, "carol").await;
    let mut dave = Client::identified(&d, "dave").await; // never joins

    // Create: ACK with channel_id; creating does not join; nobody hears about it.
    let a = alice
        .create_with(
            "ops",
            json!({"name": "Operations", "freq": "146.520", "capacity": 5}),
        )
        .await;
    assert_eq!(a["channel_id"], "ops");
    let info = alice.info("ops").await;
    assert_eq!(info["name"], "Operations", "{info}");
    assert_eq!(info["freq"], "146.520", "{info}");
    assert_eq!(info["capacity"], 5, "{info}");
    assert_eq!(
        info["member_count"], 0,
        "creating a channel does not join it: {info}"
    );
    assert_eq!(sorted_ids(&info["members"]), Vec::<String>::new(), "{info}");
    assert_eq!(info["floor"]["state"], "idle", "{info}");
    assert_eq!(info["floor"]["queue"], json!([]), "{info}");
    assert!(
        info["floor"].get("holder").is_none_or(Value::is_null),
        "an idle floor has no holder: {info}"
    );
    let list = dave.list().await;
    let e = entry(&list, "ops");
    assert_eq!(e["name"], "Operations", "{e}");
    assert_eq!(e["freq"], "146.520", "{e}");
    assert_eq!(e["capacity"], 5, "{e}");
    assert_eq!(e["member_count"], 0, "{e}");
    for c in [&mut bob, &mut carol, &mut dave] {
        c.assert_quiet(ms(QUIET), "nobody hears of a CHANNEL_CREATE")
            .await;
    }

    // bob joins: ACK with active_members [bob] and media at the daemon's UDP port.
    let j = bob.join("ops").await;
    assert_eq!(sorted_ids(&j["active_members"]), ids(&["bob"]), "{j}");
    assert_eq!(
        j["media"]["port"],
        d.udp.port(),
        "JOIN's media.port is the daemon's UDP port: {j}"
    );
    assert_eq!(
        j["media"]["host"],
        d.udp.ip().to_string(),
        "media.host is the advertised IP, by default the UDP bind IP: {j}"
    );
    assert!(
        j.get("crypto").is_none_or(Value::is_null),
        "a JOIN without crypto gets no crypto in its ACK: {j}"
    );
    bob.assert_quiet(ms(QUIET), "the joiner gets no join event for itself")
        .await;

    // carol joins: bob hears it, carol does not hear herself.
    let j = carol.join("ops").await;
    assert_eq!(
        sorted_ids(&j["active_members"]),
        ids(&["bob", "carol"]),
        "{j}"
    );
    bob.expect_member_event("join", "ops", "carol").await;

    // alice (the creator) joins.
    let j = alice.join("ops").await;
    assert_eq!(
        sorted_ids(&j["active_members"]),
        ids(&["alice", "bob", "carol"]),
        "{j}"
    );
    bob.expect_member_event("join", "ops", "alice").await;
    carol.expect_member_event("join", "ops", "alice").await;
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.assert_quiet(ms(QUIET), "after the joins").await;
    }
    let info = dave.info("ops").await;
    assert_eq!(info["member_count"], 3, "{info}");
    assert_eq!(
        sorted_ids(&info["members"]),
        ids(&["alice", "bob", "carol"]),
        "{info}"
    );

    // Update by the creator: every member (the creator included) gets `update` with the fields.
    alice
        .update(
            "ops",
            json!({"name": "Ops 2", "freq": "446.006", "capacity": 4}),
        )
        .await;
    for c in [&mut alice, &mut bob, &mut carol] {
        let ev = c.expect_channel_event("update", "ops").await;
        assert_eq!(ev["name"], "Ops 2", "{}: {ev}", c.label());
        assert_eq!(ev["freq"], "446.006", "{}: {ev}", c.label());
        assert_eq!(ev["capacity"], 4, "{}: {ev}", c.label());
    }
    dave.assert_quiet(ms(QUIET), "a non-member hears no update")
        .await;
    let e = dave.list().await;
    let e = entry(&e, "ops");
    assert_eq!(
        (&e["name"], &e["freq"], &e["capacity"], &e["member_count"]),
        (&json!("Ops 2"), &json!("446.006"), &json!(4), &json!(3)),
        "{e}"
    );

    // A partial update changes only that field; the event carries the current fields.
    alice.update("ops", json!({"freq": "145.500"})).await;
    for c in [&mut alice, &mut bob, &mut carol] {
        let ev = c.expect_channel_event("update", "ops").await;
        assert_eq!(ev["freq"], "145.500", "{}: {ev}", c.label());
        assert_eq!(ev["name"], "Ops 2", "partial update keeps name: {ev}");
        assert_eq!(ev["capacity"], 4, "partial update keeps capacity: {ev}");
    }

    // carol leaves: the others hear `leave`, carol hears nothing.
    carol.leave("ops").await;
    alice.expect_member_event("leave", "ops", "carol").await;
    bob.expect_member_event("leave", "ops", "carol").await;
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.assert_quiet(ms(QUIET), "after carol's leave").await;
    }
    let info = bob.info("ops").await;
    assert_eq!(
        sorted_ids(&info["members"]),
        ids(&["alice", "bob"]),
        "{info}"
    );
    assert_eq!(info["member_count"], 2, "{info}");

    // Delete: every member gets `delete` (carol, gone, does not); no floor messages.
    alice.delete("ops").await;
    alice.expect_channel_event("delete", "ops").await;
    bob.expect_channel_event("delete", "ops").await;
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.assert_quiet(
            ms(QUIET),
            "after the delete: only `delete`, no floor messages",
        )
        .await;
    }
    assert!(
        dave.list().await.iter().all(|e| e["channel_id"] != "ops"),
        "a deleted channel is not listed"
    );
    dave.error(
        op::CHANNEL_INFO,
        json!({"channel_id": "ops"}),
        code::CHANNEL_NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn channel_ids_are_case_sensitive_and_exact() {
    let d = Daemon::start().await;
    let mut c = Client::identified(&d, "alice").await;
    c.create("Ops").await;
    c.error(
        op::CHANNEL_INFO,
        json!({"channel_id": "ops"}),
        code::CHANNEL_NOT_FOUND,
    )
    .await;
    c.create("ops").await;
    let max = "Az09_.-Az09_.-Az09_.-Az09_.-Az09";
    c.create(max).await;
    c.info(max).await;
}

#[tokio::test]
async fn create_field_limits_are_1004() {
    let d = Daemon::builder()
        .env("LIVECHAT_MAX_MEMBERS", "4")
        .start()
        .await;
    let mut c = Client::identified(&d, "alice").await;
    let cases = [
        json!({"channel_id": ""}),
        json!({"channel_id": "x".repeat(33)}),
        json!({"channel_id": "a b"}),
        json!({"channel_id": "a/b"}),
        json!({"channel_id": "é"}),
        json!({"channel_id": "n", "name": "n".repeat(65)}),
        // 22 x 3 bytes = 66 bytes in 22 characters: the limit is in bytes.
        json!({"channel_id": "n", "name": "€".repeat(22)}),
        json!({"channel_id": "n", "freq": "1".repeat(17)}),
        json!({"channel_id": "n", "capacity": 0}),
        json!({"channel_id": "n", "capacity": 5}),
    ];
    for body in cases {
        c.error(op::CHANNEL_CREATE, body, code::MALFORMED).await;
    }
    // The edges that are valid.
    c.create_with(
        "n",
        json!({"name": "n".repeat(64), "freq": "1".repeat(16), "capacity": 4}),
    )
    .await;
    c.create_with("e", json!({"name": "€".repeat(21)})).await;
    // Default capacity is the member limit.
    c.create("dflt").await;
    let info = c.info("dflt").await;
    assert_eq!(
        info["capacity"], 4,
        "default capacity = LIVECHAT_MAX_MEMBERS: {info}"
    );
    // Update is checked the same way.
    c.error(
        op::CHANNEL_UPDATE,
        json!({"channel_id": "n", "capacity": 5}),
        code::MALFORMED,
    )
    .await;
    c.error(
        op::CHANNEL_UPDATE,
        json!({"channel_id": "n", "name": "n".repeat(65)}),
        code::MALFORMED,
    )
    .await;
    let info = c.info("n").await;
    assert_eq!(
        info["name"],
        "n".repeat(64),
        "refused updates change nothing: {info}"
    );
}

#[tokio::test]
async fn an_existing_channel_id_is_2005() {
    let d = Daemon::start().await;
    let mut alice = Client::identified(&d, "alice").await;
    let mut bob = Client::identified(&d, "bob").await;
    alice.create_with("dup", json!({"name": "First"})).await;
    alice
        .error(
            op::CHANNEL_CREATE,
            json!({"channel_id": "dup"}),
            code::CHANNEL_EXISTS,
        )
        .await;
    bob.error(
        op::CHANNEL_CREATE,
        json!({"channel_id": "dup", "name": "Second"}),
        code::CHANNEL_EXISTS,
    )
    .await;
    assert_eq!(bob.info("dup").await["name"], "First");
    // bob did not become the creator.
    bob.error(
        op::CHANNEL_DELETE,
        json!({"channel_id": "dup"}),
        code::NOT_PERMITTED,
    )
    .await;
}

#[tokio::test]
async fn channel_capacity_exhaustion_is_2006() {
    let d = Daemon::builder()
        .env("LIVECHAT_MAX_CHANNELS", "2")
        .start()
        .await;
    let mut c = Client::identified(&d, "alice").await;
    c.create("one").await;
    c.create("two").await;
    c.error(
        op::CHANNEL_CREATE,
        json!({"channel_id": "three"}),
        code::CAPACITY,
    )
    .await;
    // Freeing a slot makes room.
    c.delete("one").await;
    c.create("three").await;
    c.error(
        op::CHANNEL_CREATE,
        json!({"channel_id": "four"}),
        code::CAPACITY,
    )
    .await;
    assert_eq!(c.list().await.len(), 2);
}

#[tokio::test]
async fn session_capacity_exhaustion_is_2006_until_one_leaves() {
    let d = Daemon::builder()
        .env("LIVECHAT_MAX_SESSIONS", "2")
        .start()
        .await;
    let a = Client::identified(&d, "a").await;
    let mut b = Client::identified(&d, "b").await;
    let mut c = Client::connect(&d, "conn-c").await;
    let f = c
        .identify_raw(json!({"user_id": "c", "token": d.token("c")}))
        .await;
    c.check_error(
        &f,
        Some(op::IDENTIFY),
        code::CAPACITY,
        "a third session with max 2",
    );
    // The refused connection stays open (a failed IDENTIFY) and may retry once a slot frees.
    a.close().await;
    let deadline = tokio::time::Instant::now() + scaled(TIMEOUT);
    loop {
        let f = c
            .identify_raw(json!({"user_id": "c", "token": d.token("c")}))
            .await;
        if f["op"] == op::READY {
            break;
        }
        c.check_error(
            &f,
            Some(op::IDENTIFY),
            code::CAPACITY,
            "retry while a's slot frees",
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "a's session slot was not freed within {TIMEOUT:?} of its disconnect"
        );
        tokio::time::sleep(ms(100)).await;
    }
    b.assert_alive("b after the session churn").await;
}

#[tokio::test]
async fn list_shows_every_channel_with_its_member_count() {
    let d = Daemon::start().await;
    let mut a = Client::identified(&d, "a").await;
    let mut b = Client::identified(&d, "b").await;
    assert!(a.list().await.is_empty(), "a fresh daemon has no channels");
    a.create_with("x", json!({"name": "X", "freq": "1"})).await;
    b.create("y").await;
    a.join("x").await;
    b.join("x").await;
    b.join("y").await;
    let list = a.list().await;
    assert_eq!(list.len(), 2, "{}", show(&Value::Array(list.clone())));
    for e in &list {
        for key in ["channel_id", "name", "freq", "capacity", "member_count"] {
            assert!(
                e.get(key).is_some(),
                "CHANNEL_LIST entries carry {key}: {e}"
            );
        }
    }
    assert_eq!(entry(&list, "x")["member_count"], 2);
    assert_eq!(entry(&list, "y")["member_count"], 1);
    assert_eq!(
        entry(&list, "y")["capacity"],
        256,
        "default capacity is the member limit"
    );
}

#[tokio::test]
async fn a_list_that_does_not_fit_is_cut_and_says_truncated() {
    let d = Daemon::builder()
        .env("LIVECHAT_RATE", "100000/100000")
        .start()
        .await;
    let mut c = Client::identified(&d, "alice").await;
    // 256 channels with 64-byte names and 16-byte freqs: far over a 32 KiB outbound frame.
    let mut sent = Vec::new();
    for i in 0..256 {
        let id = format!("channel-with-a-long-id-{i:05}");
        sent.push(
            c.send_request(
                op::CHANNEL_CREATE,
                json!({"channel_id": id, "name": format!("{:n<64}", i), "freq": "1234567890123456"}),
            )
            .await,
        );
    }
    let answers = c
        .answers_to(&sent, ms(20_000), "256 pipelined CHANNEL_CREATEs")
        .await;
    let refused: Vec<String> = answers
        .iter()
        .filter(|f| f["op"] != op::ACK)
        .map(describe)
        .take(5)
        .collect();
    assert!(
        refused.is_empty(),
        "256 creates (the default channel limit) all succeed; refused: {refused:?}"
    );
    let a = c.list_full().await;
    let n = a["channels"].as_array().map_or(0, Vec::len);
    assert_eq!(
        a["truncated"], true,
        "a 256-channel list of ~50 kB must be cut and say `truncated: true` (got {n} entries)"
    );
    assert!(
        n > 0 && n < 256,
        "a cut list has some but not all entries: {n}"
    );
}

#[tokio::test]
async fn the_member_limit_bounds_the_default_capacity_2001_beyond() {
    let d = Daemon::builder()
        .env("LIVECHAT_MAX_MEMBERS", "2")
        .start()
        .await;
    let mut cs = Client::identified_many(&d, "u", 3).await;
    cs[0].create("c").await;
    cs[0].join("c").await;
    cs[1].join("c").await;
    cs[2]
        .error(
            op::CHANNEL_JOIN,
            json!({"channel_id": "c", "ssrc": fresh_ssrc()}),
            code::CHANNEL_FULL,
        )
        .await;
}

#[tokio::test]
async fn racing_creates_of_one_id_give_one_ack_and_one_2005() {
    let d = Daemon::start().await;
    let mut a = Client::identified(&d, "a").await;
    let mut b = Client::identified(&d, "b").await;
    for round in 0..10 {
        let ch = format!("race{round}");
        let ia = a
            .send_request(op::CHANNEL_CREATE, json!({"channel_id": ch}))
            .await;
        let ib = b
            .send_request(op::CHANNEL_CREATE, json!({"channel_id": ch}))
            .await;
        let fa = a.answer_to(ia, "a racing create").await;
        let fb = b.answer_to(ib, "b racing create").await;
        let acks = [&fa, &fb].iter().filter(|f| f["op"] == op::ACK).count();
        let dups = [&fa, &fb]
            .iter()
            .filter(|f| f["op"] == op::ERROR && f["d"]["code"] == code::CHANNEL_EXISTS)
            .count();
        assert!(
            acks == 1 && dups == 1,
            "two creates of {ch}: exactly one ACK and one 2005, got {} and {}",
            describe(&fa),
            describe(&fb)
        );
    }
}

#[tokio::test]
async fn join_media_host_is_the_advertised_ip() {
    // Documentation range (RFC 5737): never contacted, only announced.
    let d = Daemon::builder()
        .env("LIVECHAT_ADVERTISE_IP", "192.0.2.7")
        .start()
        .await;
    let mut c = Client::identified(&d, "alice").await;
    c.create("c").await;
    let j = c.join("c").await;
    assert_eq!(
        j["media"]["host"], "192.0.2.7",
        "media.host = LIVECHAT_ADVERTISE_IP: {j}"
    );
    assert_eq!(j["media"]["port"], d.udp.port(), "{j}");
}

#[tokio::test]
async fn plain_rtp_policy_never_refuses_a_join_without_crypto_2002() {
    let d = Daemon::start_with(&[("LIVECHAT_PLAIN_RTP", "never")]).await;
    let mut c = Client::identified(&d, "alice").await;
    c.create("c").await;
    c.error(
        op::CHANNEL_JOIN,
        json!({"channel_id": "c", "ssrc": fresh_ssrc()}),
        code::NOT_PERMITTED,
    )
    .await;
    assert_eq!(c.members("c").await, Vec::<String>::new());
    // With crypto (allowed over ws:// from loopback by default) the join works.
    let j = c
        .ack(
            op::CHANNEL_JOIN,
            json!({"channel_id": "c", "ssrc": fresh_ssrc(),
                "crypto": {"suite": "AES_CM_128_HMAC_SHA1_80", "key": base64(&[7u8; 30])}}),
        )
        .await;
    assert_eq!(j["crypto"]["suite"], "AES_CM_128_HMAC_SHA1_80", "{j}");
}

#[tokio::test]
async fn sdes_keys_over_ws_policy_never_is_2002() {
    let d = Daemon::start_with(&[("LIVECHAT_SDES_OVER_WS", "never")]).await;
    let mut c = Client::identified(&d, "alice").await;
    c.create("c").await;
    c.error(
        op::CHANNEL_JOIN,
        json!({"channel_id": "c", "ssrc": fresh_ssrc(),
            "crypto": {"suite": "AES_CM_128_HMAC_SHA1_80", "key": base64(&[7u8; 30])}}),
        code::NOT_PERMITTED,
    )
    .await;
    // Plain RTP from loopback is still allowed by default.
    c.join("c").await;
}

#[tokio::test]
async fn join_with_sdes_crypto_gets_a_fresh_server_key_of_the_same_suite() {
    let d = Daemon::start().await;
    let mut a = Client::identified(&d, "alice").await;
    let mut b = Client::identified(&d, "bob").await;
    a.create("c").await;
    let client_key = base64(&(1..=30).collect::<Vec<u8>>());
    let mut server_keys = Vec::new();
    for (c, suite) in [
        (&mut a, "AES_CM_128_HMAC_SHA1_80"),
        (&mut b, "AES_CM_128_HMAC_SHA1_32"),
    ] {
        let j = c
            .ack(
                op::CHANNEL_JOIN,
                json!({"channel_id": "c", "ssrc": fresh_ssrc(),
                    "crypto": {"suite": suite, "key": client_key}}),
            )
            .await;
        assert_eq!(
            j["crypto"]["suite"], suite,
            "the ACK's crypto has the same suite: {j}"
        );
        let key = j["crypto"]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("crypto.key: {j}"));
        let raw = unbase64(key).unwrap_or_else(|| panic!("crypto.key is not base64: {j}"));
        assert_eq!(raw.len(), 30, "16-byte master key + 14-byte salt: {j}");
        assert_ne!(
            key, client_key,
            "the server key is fresh, not the client's: {j}"
        );
        server_keys.push(key.to_owned());
    }
    assert_ne!(
        server_keys[0], server_keys[1],
        "each join gets a fresh server key"
    );
    // Bad suites and keys are 1004.
    let mut c = Client::identified(&d, "carol").await;
    for crypto in [
        json!({"suite": "AES_CM_256_HMAC_SHA1_80", "key": client_key}),
        json!({"suite": "AES_CM_128_HMAC_SHA1_80", "key": base64(&[1u8; 29])}),
        json!({"suite": "AES_CM_128_HMAC_SHA1_80", "key": base64(&[1u8; 31])}),
        json!({"suite": "AES_CM_128_HMAC_SHA1_80", "key": "not base64!"}),
        json!({"suite": "AES_CM_128_HMAC_SHA1_80"}),
        json!({"key": client_key}),
        json!("AES_CM_128_HMAC_SHA1_80"),
    ] {
        c.error(
            op::CHANNEL_JOIN,
            json!({"channel_id": "c", "ssrc": fresh_ssrc(), "crypto": crypto}),
            code::MALFORMED,
        )
        .await;
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard padded base64; `None` if it is not.
fn unbase64(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0usize;
        for &c in chunk {
            let v = if c == b'=' {
                pad += 1;
                0
            } else {
                if pad > 0 {
                    return None;
                }
                u32::try_from(B64.iter().position(|&x| x == c)?).ok()?
            };
            n = (n << 6) | v;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad.min(2)]);
    }
    Some(out)
}

#[test]
fn base64_round_trip() {
    for len in 0..40 {
        let v: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        assert_eq!(unbase64(&base64(&v)), Some(v));
    }
    assert_eq!(base64(b"foob"), "Zm9vYg==");
}
