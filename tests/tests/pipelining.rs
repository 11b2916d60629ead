//! Pipelining: many requests sent back to back without waiting, each answered exactly once and
//! matched by `id` (PROTOCOL.md section 1, "Answers").

use std::collections::HashMap;

use livechat_tests::*;

/// What a pipelined request should get.
#[derive(Debug, Clone, Copy)]
enum Want {
    Ack(i64),
    HeartbeatAck,
    Error(i64, i64),
}

#[tokio::test]
async fn one_hundred_fifty_pipelined_requests_each_get_exactly_one_answer_by_id() {
    let d = Daemon::start().await;
    let mut c = Client::identified(&d, "piper").await;
    let mut wants: HashMap<u32, (Want, String)> = HashMap::new();
    let mut order = Vec::new();
    // Groups of 8 dependent requests; a connection's frames are processed in order, so each
    // group's create/join/chat/info/leave/delete sequence must succeed.
    for g in 0..19 {
        let ch = format!("p{g}");
        let reqs: Vec<(i64, Value, Want)> = vec![
            (
                op::CHANNEL_CREATE,
                json!({"channel_id": ch}),
                Want::Ack(op::CHANNEL_CREATE),
            ),
            (
                op::CHANNEL_JOIN,
                json!({"channel_id": ch, "ssrc": fresh_ssrc()}),
                Want::Ack(op::CHANNEL_JOIN),
            ),
            (
                op::MESSAGE_CREATE,
                json!({"channel_id": ch, "content": format!("m{g}")}),
                Want::Ack(op::MESSAGE_CREATE),
            ),
            (
                op::CHANNEL_INFO,
                json!({"channel_id": ch}),
                Want::Ack(op::CHANNEL_INFO),
            ),
            (
                op::CHANNEL_LEAVE,
                json!({"channel_id": ch}),
                Want::Ack(op::CHANNEL_LEAVE),
            ),
            (
                op::CHANNEL_LEAVE,
                json!({"channel_id": ch}),
                Want::Error(op::CHANNEL_LEAVE, code::NOT_JOINED),
            ),
            (
                op::CHANNEL_DELETE,
                json!({"channel_id": ch}),
                Want::Ack(op::CHANNEL_DELETE),
            ),
            (op::HEARTBEAT, Value::Null, Want::HeartbeatAck),
        ];
        for (o, body, want) in reqs {
            let text = format!("{} {}", op_name(o), show(&body));
            let id = c.send_request(o, body).await;
            wants.insert(id, (want, text));
            order.push(id);
        }
    }
    // Fill up to 150 with lists.
    while order.len() < 150 {
        let id = c.send_request(op::CHANNEL_LIST, Value::Null).await;
        wants.insert(id, (Want::Ack(op::CHANNEL_LIST), "CHANNEL_LIST".into()));
        order.push(id);
    }
    let answers = c
        .answers_to(&order, ms(15_000), "150 pipelined requests")
        .await;
    for (id, f) in order.iter().zip(&answers) {
        let (want, text) = &wants[id];
        let ok = match *want {
            Want::Ack(o) => f["op"] == op::ACK && f["d"]["req_op"] == o,
            Want::HeartbeatAck => f["op"] == op::HEARTBEAT_ACK,
            Want::Error(o, code) => {
                f["op"] == op::ERROR && f["d"]["req_op"] == o && f["d"]["code"] == code
            }
        };
        assert!(
            ok,
            "id {id} ({text}): expected {want:?}, got {}",
            describe(f)
        );
        if let Want::Ack(op::CHANNEL_INFO) = want {
            assert_eq!(
                sorted_ids(&f["d"]["members"]),
                ids(&["piper"]),
                "id {id} ({text}): processed in order, the info follows the join: {f}"
            );
        }
    }
    // Nothing answers any id a second time; the only other frames are the 19 own messages.
    let rest = c.drain(ms(500)).await;
    let dup: Vec<String> = rest
        .iter()
        .filter(|f| f.get("id").is_some_and(|i| !i.is_null()))
        .map(describe)
        .collect();
    assert!(
        dup.is_empty(),
        "extra answers after all 150 were answered: {dup:?}"
    );
    let others: Vec<String> = rest
        .iter()
        .filter(|f| f["op"] != op::MESSAGE_EVENT)
        .map(describe)
        .collect();
    assert!(others.is_empty(), "unexpected frames: {others:?}");
}

#[tokio::test]
async fn two_connections_pipelining_at_once_are_not_mixed_up() {
    let d = Daemon::start().await;
    let mut a = Client::identified(&d, "a").await;
    let mut b = Client::identified(&d, "b").await;
    a.create("shared").await;
    a.join("shared").await;
    b.join("shared").await;
    a.expect_member_event("join", "shared", "b").await;
    let mut ids_a = Vec::new();
    let mut ids_b = Vec::new();
    for i in 0..60 {
        ids_a.push(
            a.send_request(op::CHANNEL_INFO, json!({"channel_id": "shared"}))
                .await,
        );
        ids_b.push(
            b.send_request(
                op::MESSAGE_CREATE,
                json!({"channel_id": "shared", "content": format!("b{i}")}),
            )
            .await,
        );
    }
    let (ans_a, ans_b) = tokio::join!(
        a.answers_to(&ids_a, ms(15_000), "a's 60 infos"),
        b.answers_to(&ids_b, ms(15_000), "b's 60 messages")
    );
    for f in &ans_a {
        a.check_ack(f, op::CHANNEL_INFO, "pipelined info");
    }
    for f in &ans_b {
        b.check_ack(f, op::MESSAGE_CREATE, "pipelined message");
    }
    for i in 0..60 {
        a.expect_message("shared", "b", &format!("b{i}")).await;
        b.expect_message("shared", "b", &format!("b{i}")).await;
    }
}
