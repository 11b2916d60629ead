//! The operators' surface end to end (PROTOCOL.md section 6): `/healthz`, `/metrics`, the
//! admin API and the trace stream of the real daemon, with members on real WebSockets and
//! radios on real UDP seeing what operators do; `promtool check metrics` on the exposition;
//! `lcadmin` and `lctrace` run as processes.
//!
//! Needs `promtool` (Debian package `prometheus`, .ci/deps-ops.sh) and the tools built next
//! to the daemon under test (`cargo build -p livechat-tools`, with `--release` for a
//! release daemon), or `LCADMIN_BIN` and `LCTRACE_BIN`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use livechat_radio::{Channel, JoinOptions, Protection, Radio, TalkOptions, audio};
use livechat_tests::http::{self, Answer, EventStream};
use livechat_tests::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The close code of a kicked connection.
const KICKED: u16 = 4010;
const QUIET: Duration = Duration::from_millis(300);

async fn get(d: &Daemon, path: &str) -> Answer {
    http::request(d.connect_addr(), "GET", path, None, None).await
}

async fn send(d: &Daemon, method: &str, path: &str, body: Option<&str>) -> Answer {
    http::request(d.connect_addr(), method, path, None, body).await
}

/// One sample of the exposition: `name` with exactly `labels` (`k="v"` joined by commas,
/// "" for none); `None` when absent.
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{labels}}}")
    };
    metrics.lines().find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == key).then(|| v.parse().expect("a number"))
    })
}

fn metric(metrics: &str, name: &str, labels: &str) -> f64 {
    sample(metrics, name, labels)
        .unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in:\n{metrics}"))
}

async fn metrics(d: &Daemon) -> String {
    let a = get(d, "/metrics").await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    a.body
}

/// `members` identified, the first creating `channel`, all joined, every join event taken.
async fn channel_with(d: &Daemon, channel: &str, names: &[&str]) -> Vec<Client> {
    let mut cs = Vec::new();
    for n in names {
        cs.push(Client::identified(d, n).await);
    }
    cs[0].create(channel).await;
    for i in 0..cs.len() {
        cs[i].join(channel).await;
        let who = names[i];
        for c in cs.iter_mut().take(i) {
            c.expect_member_event("join", channel, who).await;
        }
    }
    cs
}

async fn floor_request(c: &mut Client, channel: &str) {
    c.send_op(op::FLOOR_REQUEST, json!({ "channel_id": channel }))
        .await;
}

async fn expect_op(c: &mut Client, o: i64, channel: &str) -> Value {
    let what = format!("{} in {channel}", op_name(o));
    c.recv_where(&what, |f| f["op"] == o && f["d"]["channel_id"] == channel)
        .await["d"]
        .clone()
}

/// This host's address on the interface with the default route (not loopback).
fn lan_ip() -> IpAddr {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
    s.connect((Ipv4Addr::new(192, 0, 2, 1), 9))
        .expect("a default route to tell a non-loopback address");
    let ip = s.local_addr().expect("local address").ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "need a non-loopback address, got {ip}"
    );
    ip
}

fn tool(name: &str, var: &str) -> PathBuf {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| livechatd_bin().with_file_name(name));
    assert!(
        p.is_file(),
        "{name} is missing at {}: build it beside the daemon (cargo build [--release] -p \
         livechat-tools) or set {var}",
        p.display()
    );
    p
}

// ----- health and auth -----------------------------------------------------------------------

#[tokio::test]
async fn healthz_answers_without_auth_and_unknown_paths_are_404() {
    let d = Daemon::start().await;
    let h = get(&d, "/healthz").await;
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    assert_eq!(send(&d, "POST", "/healthz", None).await.status, 405);
    assert_eq!(get(&d, "/nowhere").await.status, 404);
    get(&d, "/admin/v1/nowhere")
        .await
        .assert_error(404, "not found");
    get(&d, "/admin/v2/status")
        .await
        .assert_error(404, "not found");
    let wrong = send(&d, "PUT", "/admin/v1/channels", Some("{}")).await;
    wrong.assert_error(405, "method not allowed");
    assert_eq!(wrong.header("allow"), Some("GET, POST"));
    send(&d, "DELETE", "/admin/v1/status", None)
        .await
        .assert_error(405, "method not allowed");
}

#[tokio::test]
async fn without_a_token_only_loopback_peers_are_served() {
    // Bound on every address (which needs a secret), reached from this host's LAN address:
    // the peer is not loopback.
    let d = Daemon::builder()
        .secret("s")
        .env("LIVECHAT_HTTP_ADDR", "0.0.0.0:0")
        .start()
        .await;
    assert_eq!(get(&d, "/admin/v1/status").await.status, 200);
    assert_eq!(get(&d, "/metrics").await.status, 200);
    let far = SocketAddr::new(lan_ip(), d.connect_addr().port());
    for path in ["/admin/v1/status", "/metrics", "/admin/v1/trace"] {
        http::request(far, "GET", path, None, None)
            .await
            .assert_error(401, "unauthorized");
        http::request(far, "GET", path, Some("anything"), None)
            .await
            .assert_error(401, "unauthorized");
    }
    let h = http::request(far, "GET", "/healthz", None, None).await;
    assert_eq!(h.status, 200, "health needs no auth");
}

#[tokio::test]
async fn with_a_token_every_peer_needs_it_and_it_is_never_shown() {
    const TOKEN: &str = "op-token-7c1e9a";
    let d = Daemon::builder()
        .secret("s")
        .env("LIVECHAT_HTTP_ADDR", "0.0.0.0:0")
        .env("LIVECHAT_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "debug")
        .start()
        .await;
    let local = d.connect_addr();
    let far = SocketAddr::new(lan_ip(), local.port());
    for addr in [local, far] {
        for path in ["/admin/v1/status", "/metrics"] {
            http::request(addr, "GET", path, None, None)
                .await
                .assert_error(401, "unauthorized");
            http::request(addr, "GET", path, Some("op-token-7c1e9"), None)
                .await
                .assert_error(401, "unauthorized");
            http::request(addr, "GET", path, Some(&format!("{TOKEN}x")), None)
                .await
                .assert_error(401, "unauthorized");
            let lower = [("Authorization".to_owned(), format!("bearer{TOKEN}"))];
            let a = http::request_with(addr, "GET", path, &lower, None).await;
            assert_eq!(a.status, 401);
            let ok = http::request(addr, "GET", path, Some(TOKEN), None).await;
            assert_eq!(ok.status, 200, "{path} from {addr} with the token: {ok:?}");
        }
    }
    let created = http::request(
        local,
        "POST",
        "/admin/v1/channels",
        Some(TOKEN),
        Some(r#"{"channel_id":"ops"}"#),
    )
    .await;
    assert_eq!(created.status, 201);
    assert!(
        !d.logs().contains(TOKEN),
        "the admin token appears in the logs:\n{}",
        d.logs()
    );
    let out = run(
        &["check-config"],
        &[("LIVECHAT_ADMIN_TOKEN", TOKEN)],
        Duration::from_secs(10),
    )
    .await;
    let all = out.all();
    assert!(
        all.contains("admin_token") && all.contains("LIVECHAT_ADMIN_TOKEN"),
        "check-config lists the setting:\n{all}"
    );
    assert!(!all.contains(TOKEN), "check-config shows the token:\n{all}");
}

#[tokio::test]
async fn admin_requests_are_rate_limited_per_address() {
    let d = Daemon::start_with(&[("LIVECHAT_RATE", "5/1")]).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get(&d, "/admin/v1/status").await.status);
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    get(&d, "/admin/v1/status")
        .await
        .assert_error(429, "rate limited");
    assert_eq!(
        get(&d, "/healthz").await.status,
        200,
        "health is not limited"
    );
}

// ----- every row -----------------------------------------------------------------------------

#[tokio::test]
async fn channel_rows_with_their_errors_and_what_members_see() {
    let d = Daemon::start().await;
    let c = send(
        &d,
        "POST",
        "/admin/v1/channels",
        Some(r#"{"channel_id":"ops","name":"Ops","freq":"446.1","capacity":4}"#),
    )
    .await;
    assert_eq!(c.status, 201, "{c:?}");
    let ch = c.json();
    assert_eq!(ch["channel_id"], "ops");
    assert_eq!(ch["creator"], "admin");
    assert_eq!(
        (
            ch["name"].clone(),
            ch["freq"].clone(),
            ch["capacity"].clone()
        ),
        (json!("Ops"), json!("446.1"), json!(4))
    );
    assert_eq!(ch["members"], json!([]));
    assert_eq!(ch["floor"], json!({"state": "idle", "queue": []}));
    send(
        &d,
        "POST",
        "/admin/v1/channels",
        Some(r#"{"channel_id":"ops"}"#),
    )
    .await
    .assert_error(409, "channel already exists");
    for bad in [
        r#"{"channel_id":"a b"}"#,
        r#"{"channel_id":"ok","capacity":0}"#,
        r#"{"channel_id":"ok","capacity":"4"}"#,
        r#"{"name":"no id"}"#,
        r#"["ops"]"#,
        "not json",
    ] {
        let a = send(&d, "POST", "/admin/v1/channels", Some(bad)).await;
        assert_eq!(a.status, 400, "{bad}: {a:?}");
        assert!(a.json()["error"].is_string(), "{a:?}");
    }
    let big = format!(r#"{{"channel_id":"x","name":"{}"}}"#, "n".repeat(20_000));
    send(&d, "POST", "/admin/v1/channels", Some(&big))
        .await
        .assert_error(413, "body too large");

    // A member sees the operator's update and delete as a member's.
    let mut alice = Client::identified(&d, "alice").await;
    alice.join("ops").await;
    let list = get(&d, "/admin/v1/channels").await.json();
    assert_eq!(list["channels"][0]["members"], json!(["alice"]));
    assert_eq!(list["channels"][0]["member_count"], 1);
    let one = get(&d, "/admin/v1/channels/ops").await;
    assert_eq!(one.json()["members"], json!(["alice"]));
    get(&d, "/admin/v1/channels/nope")
        .await
        .assert_error(404, "channel not found");

    let u = send(
        &d,
        "PATCH",
        "/admin/v1/channels/ops",
        Some(r#"{"name":"Operations","capacity":8}"#),
    )
    .await;
    assert_eq!(u.status, 200, "{u:?}");
    assert_eq!(u.json()["name"], "Operations");
    let ev = alice.expect_channel_event("update", "ops").await;
    assert_eq!(ev["user_id"], "admin");
    assert_eq!(ev["name"], "Operations");
    assert_eq!(ev["capacity"], 8);
    send(
        &d,
        "PATCH",
        "/admin/v1/channels/ops",
        Some(r#"{"channel_id":"other"}"#),
    )
    .await
    .assert_error(400, "channel_id does not match the path");
    let a = send(
        &d,
        "PATCH",
        "/admin/v1/channels/ops",
        Some(r#"{"capacity":0}"#),
    )
    .await;
    assert_eq!(a.status, 400);
    send(&d, "PATCH", "/admin/v1/channels/nope", Some("{}"))
        .await
        .assert_error(404, "channel not found");
    // A member's own update is still the creator's alone: the operator is not a member.
    let e = alice
        .error(
            op::CHANNEL_UPDATE,
            json!({"channel_id": "ops", "name": "x"}),
            code::NOT_PERMITTED,
        )
        .await;
    assert_eq!(e["code"], code::NOT_PERMITTED);

    send(&d, "POST", "/admin/v1/channels/ops/floor/revoke", None)
        .await
        .assert_error(409, "floor idle");
    send(&d, "POST", "/admin/v1/channels/nope/floor/revoke", None)
        .await
        .assert_error(404, "channel not found");
    send(&d, "GET", "/admin/v1/channels/ops/floor/revoke", None)
        .await
        .assert_error(405, "method not allowed");

    let del = send(&d, "DELETE", "/admin/v1/channels/ops", None).await;
    assert_eq!((del.status, del.body.as_str()), (204, ""));
    let ev = alice.expect_channel_event("delete", "ops").await;
    assert_eq!(ev["user_id"], "admin");
    alice
        .assert_quiet(QUIET, "no floor messages on delete")
        .await;
    send(&d, "DELETE", "/admin/v1/channels/ops", None)
        .await
        .assert_error(404, "channel not found");
    assert_eq!(
        get(&d, "/admin/v1/channels").await.json(),
        json!({"channels": []})
    );
    assert!(alice.list().await.is_empty());
    // The member's session forgot the channel: joining again works after a re-create.
    send(
        &d,
        "POST",
        "/admin/v1/channels",
        Some(r#"{"channel_id":"ops"}"#),
    )
    .await;
    alice.join("ops").await;

    assert_eq!(
        get(&d, "/admin/v1/cameras").await.json(),
        json!({"cameras": []})
    );
    send(&d, "DELETE", "/admin/v1/users/nobody", None)
        .await
        .assert_error(404, "user not found");
}

#[tokio::test]
async fn revoke_and_kick_are_seen_by_the_members() {
    let d = Daemon::start().await;
    let mut cs = channel_with(&d, "ops", &["alice", "bob", "carol"]).await;
    floor_request(&mut cs[0], "ops").await;
    expect_op(&mut cs[0], op::FLOOR_GRANTED, "ops").await;
    expect_op(&mut cs[1], op::FLOOR_TAKEN, "ops").await;
    expect_op(&mut cs[2], op::FLOOR_TAKEN, "ops").await;
    floor_request(&mut cs[1], "ops").await;
    expect_op(&mut cs[1], op::FLOOR_QUEUE_POS_INFO, "ops").await;

    let ch = get(&d, "/admin/v1/channels/ops").await.json();
    assert_eq!(
        ch["floor"],
        json!({"state": "taken", "holder": "alice", "queue": ["bob"]})
    );

    let r = send(&d, "POST", "/admin/v1/channels/ops/floor/revoke", None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["floor"]["holder"], "bob", "the floor passed on");
    let rev = expect_op(&mut cs[0], op::FLOOR_REVOKE, "ops").await;
    assert_eq!(
        (rev["user_id"].clone(), rev["cause"].clone()),
        (json!("alice"), json!("admin"))
    );
    let g = expect_op(&mut cs[1], op::FLOOR_GRANTED, "ops").await;
    assert_eq!(g["user_id"], "bob");
    for i in [0, 2] {
        let t = expect_op(&mut cs[i], op::FLOOR_TAKEN, "ops").await;
        assert_eq!(t["user_id"], "bob");
    }
    let m = metrics(&d).await;
    assert_eq!(
        metric(&m, "livechat_floor_revokes_total", r#"cause="admin""#),
        1.0
    );
    assert_eq!(metric(&m, "livechat_floor_grants_total", ""), 2.0);

    let users = get(&d, "/admin/v1/users").await.json();
    let names: Vec<&str> = users["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["user_id"].as_str().expect("user_id"))
        .collect();
    assert_eq!(sorted_ids(&json!(names)), ids(&["alice", "bob", "carol"]));

    // Kicking the holder: closed with 4010, cleaned up as a disconnect.
    let k = send(&d, "DELETE", "/admin/v1/users/bob", None).await;
    assert_eq!((k.status, k.body.as_str()), (204, ""));
    cs[1]
        .expect_close_code(KICKED, Duration::from_secs(5), "kicked by the operator")
        .await;
    for i in [0, 2] {
        cs[i].expect_member_event("leave", "ops", "bob").await;
        expect_op(&mut cs[i], op::FLOOR_IDLE, "ops").await;
    }
    let users = get(&d, "/admin/v1/users").await.json();
    assert_eq!(users["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        get(&d, "/admin/v1/channels/ops").await.json()["members"],
        json!(["alice", "carol"])
    );
    send(&d, "DELETE", "/admin/v1/users/bob", None)
        .await
        .assert_error(404, "user not found");
    // The user may come back.
    let mut again = Client::identified(&d, "bob").await;
    again.join("ops").await;
}

// ----- a conversation seen everywhere --------------------------------------------------------

async fn radio(d: &Daemon, user: &str) -> Radio {
    Radio::connect(&d.ws_url(), user, &d.token(user))
        .await
        .unwrap_or_else(|e| panic!("{user}: {e}"))
}

async fn join(r: &Radio, channel: &str) -> Channel {
    r.join(
        channel,
        JoinOptions::with(Protection::Plain).ssrc(fresh_ssrc()),
    )
    .await
    .unwrap_or_else(|e| panic!("{}: join {channel}: {e}", r.user_id()))
}

#[tokio::test]
async fn a_ptt_conversation_in_the_api_the_trace_and_the_metrics() {
    let d = Daemon::start().await;
    let addr = d.connect_addr();
    let mut all = EventStream::open(addr, "/admin/v1/trace", None, None)
        .await
        .expect("trace");
    let mut ops_only = EventStream::open(addr, "/admin/v1/trace?channel=ops", None, None)
        .await
        .expect("trace");
    let mut bob_only = EventStream::open(addr, "/admin/v1/trace?user=bob", None, None)
        .await
        .expect("trace");
    let m0 = metrics(&d).await;
    assert_eq!(metric(&m0, "livechat_sessions", ""), 0.0);

    let alice = radio(&d, "alice").await;
    let bob = radio(&d, "bob").await;
    alice.create_channel("ops").await.expect("create");
    alice.create_channel("other").await.expect("create");
    let a = join(&alice, "ops").await;
    let mut b = join(&bob, "ops").await;
    let _a2 = join(&alice, "other").await;
    // Latch the listener's address.
    b.send_report().await.expect("report");
    a.send_report().await.expect("report");

    a.request_floor(None, Duration::from_secs(5))
        .await
        .expect("floor");
    let opts = TalkOptions {
        pace: Duration::from_millis(2),
        ..TalkOptions::default()
    };
    let pcmu = vec![0x55u8; 25 * audio::FRAME_SAMPLES];
    a.send_audio(&pcmu, &opts).await.expect("talk");
    let got = b.recv_n(25, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 25, "bob hears alice");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // While alice holds the floor.
    let ch = get(&d, "/admin/v1/channels/ops").await.json();
    assert_eq!(ch["members"], json!(["alice", "bob"]));
    assert_eq!(ch["floor"]["state"], "taken");
    assert_eq!(ch["floor"]["holder"], "alice");
    let users = get(&d, "/admin/v1/users").await.json()["users"].clone();
    let alice_u = users
        .as_array()
        .and_then(|u| u.iter().find(|u| u["user_id"] == "alice"))
        .expect("alice listed")
        .clone();
    assert_eq!(sorted_ids(&alice_u["channels"]), ids(&["other", "ops"]));
    assert!(
        alice_u["session_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let remote: SocketAddr = alice_u["remote_addr"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("remote_addr is an address");
    assert!(remote.ip().is_loopback());
    let peers = get(&d, "/admin/v1/peers").await.json()["peers"].clone();
    let peers = peers.as_array().expect("peers");
    assert_eq!(peers.len(), 3);
    let pa = peers
        .iter()
        .find(|p| p["user_id"] == "alice" && p["channel_id"] == "ops")
        .expect("alice in ops");
    assert_eq!(pa["kind"], "plain");
    assert_eq!(pa["ssrc"], a.ssrc());
    let latched = pa["addr"]
        .as_str()
        .and_then(|s| s.parse::<SocketAddr>().ok());
    assert_eq!(
        latched.map(|l| l.port()),
        Some(a.local_addr().expect("local").port()),
        "{pa}"
    );
    assert!(pa["packets_in"].as_u64() >= Some(26), "{pa}");
    let pb = peers
        .iter()
        .find(|p| p["user_id"] == "bob")
        .expect("bob in ops");
    assert!(pb["packets_out"].as_u64() >= Some(25), "{pb}");
    let m1 = metrics(&d).await;
    assert_eq!(metric(&m1, "livechat_sessions", ""), 2.0);
    assert_eq!(metric(&m1, "livechat_channels", ""), 2.0);
    assert_eq!(metric(&m1, "livechat_peers", ""), 3.0);
    assert_eq!(metric(&m1, "livechat_talkers", ""), 1.0);
    assert_eq!(
        metric(&m1, "livechat_channel_members", r#"channel="ops""#),
        2.0
    );
    assert_eq!(
        metric(&m1, "livechat_channel_members", r#"channel="other""#),
        1.0
    );
    assert!(
        metric(
            &m1,
            "livechat_channel_packets_relayed_total",
            r#"channel="ops""#
        ) >= 25.0
    );
    assert_eq!(
        metric(
            &m1,
            "livechat_channel_packets_relayed_total",
            r#"channel="other""#
        ),
        0.0
    );
    assert!(metric(&m1, "livechat_media_relayed_total", "") >= 25.0);
    assert!(
        metric(
            &m1,
            "livechat_channel_talk_seconds_total",
            r#"channel="ops""#
        ) > 0.0
    );
    assert_eq!(metric(&m1, "livechat_floor_grants_total", ""), 1.0);
    let status = get(&d, "/admin/v1/status").await.json();
    assert_eq!(
        (
            status["sessions"].clone(),
            status["channels"].clone(),
            status["peers"].clone()
        ),
        (json!(2), json!(2), json!(3))
    );
    assert_eq!(
        status["counters"]["relayed"],
        json!(metric(&m1, "livechat_media_relayed_total", "") as u64)
    );

    // Bob talks out of turn: dropped and counted.
    b.send_rtp(&pcmu[..audio::FRAME_SAMPLES], true)
        .await
        .expect("send");
    a.release_floor().await.expect("release");
    let talk1 = metric(
        &metrics(&d).await,
        "livechat_channel_talk_seconds_total",
        r#"channel="ops""#,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m2 = metrics(&d).await;
    assert_eq!(metric(&m2, "livechat_talkers", ""), 0.0);
    assert_eq!(
        metric(
            &m2,
            "livechat_channel_talk_seconds_total",
            r#"channel="ops""#
        ),
        talk1,
        "an idle floor adds no talk time"
    );
    assert!(
        metric(
            &m2,
            "livechat_media_dropped_total",
            r#"reason="not_holder""#
        ) >= 1.0
    );

    // Chat: traced with its length, never its content.
    let mut chat = Client::identified(&d, "carol").await;
    chat.join("ops").await;
    chat.say("ops", "secret words").await;

    // The unfiltered trace: the whole story in order.
    let want = [
        ("session", "identify", None, Some("alice")),
        ("session", "identify", None, Some("bob")),
        ("channel", "create", Some("ops"), Some("alice")),
        ("channel", "join", Some("ops"), Some("alice")),
        ("channel", "join", Some("ops"), Some("bob")),
        ("floor", "granted", Some("ops"), Some("alice")),
        ("floor", "taken", Some("ops"), Some("alice")),
        ("floor", "idle", Some("ops"), None),
        ("message", "message", Some("ops"), Some("carol")),
    ];
    for (kind, event, channel, user) in want {
        let e = all
            .expect(&format!("{kind} {event}"), |e| {
                e.kind == kind
                    && e.data["event"] == event
                    && channel.is_none_or(|c| e.data["channel_id"] == c)
                    && user.is_none_or(|u| e.data["user_id"] == u)
            })
            .await;
        assert!(e.data["ts"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
        if kind == "message" {
            assert_eq!(e.data["length"], "secret words".len());
            assert!(!e.data.to_string().contains("secret"), "{:?}", e.data);
        }
    }
    // Media latches, in the filtered stream too.
    let l = ops_only
        .expect("media latched", |e| {
            e.kind == "media" && e.data["event"] == "latched"
        })
        .await;
    assert_eq!(l.data["channel_id"], "ops");
    assert!(l.data["addr"].is_string());
    let rest = ops_only.drain(QUIET).await;
    let seen: Vec<&Event> = rest.iter().collect();
    for e in &seen {
        assert_eq!(
            e.data["channel_id"], "ops",
            "?channel=ops lets only ops through: {e:?}"
        );
    }
    assert!(seen.iter().any(|e| e.kind == "message"));
    let bobs = bob_only.drain(QUIET).await;
    assert!(!bobs.is_empty());
    for e in &bobs {
        assert_eq!(
            e.data["user_id"], "bob",
            "?user=bob lets only bob through: {e:?}"
        );
    }
    assert!(
        bobs.iter()
            .any(|e| e.kind == "session" && e.data["event"] == "identify")
    );

    // A deleted channel's series go away; a leaving session is traced with its cause.
    send(&d, "DELETE", "/admin/v1/channels/other", None).await;
    chat.close().await;
    let close = all
        .expect("session close", |e| {
            e.kind == "session" && e.data["event"] == "close"
        })
        .await;
    assert_eq!(
        (close.data["user_id"].clone(), close.data["cause"].clone()),
        (json!("carol"), json!("disconnect"))
    );
    let m3 = metrics(&d).await;
    assert!(sample(&m3, "livechat_channel_members", r#"channel="other""#).is_none());
    assert!(
        sample(
            &m3,
            "livechat_channel_talk_seconds_total",
            r#"channel="other""#
        )
        .is_none()
    );
    assert!(metric(&m3, "livechat_talk_seconds_total", "") >= talk1);
    assert_eq!(metric(&m3, "livechat_trace_streams", ""), 3.0);
    drop((a, b));
}

use livechat_tests::http::Event;

// ----- the exposition, checked by promtool ---------------------------------------------------

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let d = Daemon::start().await;
    let mut cs = channel_with(&d, "ops", &["alice", "bob"]).await;
    floor_request(&mut cs[0], "ops").await;
    expect_op(&mut cs[0], op::FLOOR_GRANTED, "ops").await;
    cs[1]
        .error(
            op::CHANNEL_JOIN,
            json!({"channel_id": "nope", "ssrc": 1}),
            code::CHANNEL_NOT_FOUND,
        )
        .await;
    let m = metrics(&d).await;
    assert_eq!(metric(&m, "livechat_errors_total", r#"code="2000""#), 1.0);
    for family in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
    ] {
        assert!(metric(&m, family, "") > 0.0 || family == "process_cpu_seconds_total");
    }
    // Every series the Grafana dashboard draws is exposed.
    let dash = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana-dashboard.json"),
    )
    .expect("docs/grafana-dashboard.json");
    let dash: Value = serde_json::from_str(&dash).expect("the dashboard is JSON");
    let mut used = 0;
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            let expr = t["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("livechat_") || word.starts_with("process_") {
                    used += 1;
                    assert!(
                        m.contains(&format!("# TYPE {word} ")),
                        "the dashboard uses {word}, which /metrics does not expose"
                    );
                }
            }
        }
    }
    assert!(used >= 10, "the dashboard draws the daemon's series");
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/deps-ops.sh)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(m.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("promtool ran");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- a slow trace reader -------------------------------------------------------------------

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn a_trace_reader_that_stops_reading_loses_events_not_the_server() {
    let d = Daemon::start_with(&[("LIVECHAT_RATE", "100000/100000")]).await;
    let addr = d.connect_addr();
    // 8 streams at most: the 9th is 503.
    let mut streams = Vec::new();
    for _ in 0..7 {
        streams.push(
            EventStream::open(addr, "/admin/v1/trace", None, None)
                .await
                .expect("room"),
        );
    }
    let mut stalled = EventStream::open(addr, "/admin/v1/trace", None, Some(4096))
        .await
        .expect("room");
    let refused = EventStream::open(addr, "/admin/v1/trace", None, None).await;
    match refused {
        Err(a) => a.assert_error(503, "too many trace streams"),
        Ok(s) => panic!("a 9th stream was opened: {}", s.head),
    }
    drop(streams);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut cs = channel_with(&d, "ops", &["alice", "bob"]).await;
    let rss_before = rss_kib(d.pid());
    const N: usize = 5000;
    const BATCH: usize = 100;
    let mut bob = cs.remove(1);
    let mut a = cs.remove(0);
    let sender = async {
        for start in (0..N).step_by(BATCH) {
            for i in start..start + BATCH {
                a.send_op(
                    op::MESSAGE_CREATE,
                    json!({"channel_id": "ops", "content": format!("m{i}")}),
                )
                .await;
            }
            // The sender gets its own MESSAGE_EVENTs too: it takes them as it goes.
            let last = format!("m{}", start + BATCH - 1);
            while a.recv("the sender's own MESSAGE_EVENT").await["d"]["content"] != last {}
        }
        a
    };
    let receiver = async {
        let mut n = 0;
        while n < N {
            let f = bob
                .recv_where_within(Duration::from_secs(30), "MESSAGE_EVENT", |f| {
                    f["op"] == op::MESSAGE_EVENT
                })
                .await;
            assert_eq!(f["d"]["content"], format!("m{n}"), "in order, none lost");
            n += 1;
        }
    };
    let (mut alice, ()) = tokio::join!(sender, receiver);
    // The neighbours were not slowed into failure: both still answer.
    alice.heartbeat().await;
    bob.heartbeat().await;
    let rss_after = rss_kib(d.pid());
    assert!(
        rss_after < rss_before + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB with a stalled trace reader"
    );
    // The reader wakes up: what it missed is counted, then it goes on.
    let lagged = stalled
        .expect("event: lagged", |e| e.kind == "lagged")
        .await;
    let missed = lagged.data["missed"].as_u64().expect("missed");
    assert!(missed > 0 && missed <= 2 * N as u64, "missed {missed}");
    alice.say("ops", "after").await;
    stalled
        .expect("a message event after the lag", |e| e.kind == "message")
        .await;
    let h = get(&d, "/healthz").await;
    assert_eq!(h.status, 200);
}

// ----- the tools as processes ----------------------------------------------------------------

async fn lcadmin(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(tool("lcadmin", "LCADMIN_BIN"))
        .args(args)
        .env("LIVECHAT_ADMIN_URL", format!("http://{}", d.connect_addr()))
        .env_remove("LIVECHAT_ADMIN_TOKEN")
        .output()
        .await
        .expect("lcadmin runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn lcadmin_runs_every_row_with_exit_codes_a_script_can_trust() {
    let d = Daemon::start().await;
    let (rc, out, err) = lcadmin(
        &d,
        &["create", "ops", "--name", "Ops room", "--capacity", "5"],
    )
    .await;
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("Ops room") && out.contains("0/5"), "{out}");
    assert_eq!(
        lcadmin(&d, &["create", "ops"]).await.0,
        6,
        "exists: conflict"
    );
    let mut alice = Client::identified(&d, "alice").await;
    alice.join("ops").await;
    let (rc, out, _) = lcadmin(&d, &["channels"]).await;
    assert_eq!(rc, 0);
    let header = out.lines().next().expect("a header");
    assert!(
        header.starts_with("CHANNEL") && header.contains("FLOOR"),
        "{out}"
    );
    assert!(
        out.contains("ops") && out.contains("alice") && out.contains("1/5"),
        "{out}"
    );
    let (rc, out, _) = lcadmin(&d, &["--json", "channel", "ops"]).await;
    assert_eq!(rc, 0);
    let v: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(v["members"], json!(["alice"]));
    assert_eq!(lcadmin(&d, &["channel", "nope"]).await.0, 5, "not found");
    let (rc, out, _) = lcadmin(&d, &["update", "ops", "--freq", "446.2"]).await;
    assert_eq!(rc, 0);
    assert!(out.contains("446.2"), "{out}");
    alice.expect_channel_event("update", "ops").await;
    let (rc, _, err) = lcadmin(&d, &["revoke", "ops"]).await;
    assert_eq!(rc, 6, "floor idle: {err}");
    assert!(err.contains("floor idle"), "{err}");
    let (rc, out, _) = lcadmin(&d, &["users"]).await;
    assert_eq!(rc, 0);
    assert!(out.starts_with("USER") && out.contains("alice"), "{out}");
    let (rc, out, _) = lcadmin(&d, &["--json", "peers"]).await;
    assert_eq!(rc, 0);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["peers"][0]["user_id"], "alice");
    let (rc, out, _) = lcadmin(&d, &["status"]).await;
    assert_eq!(rc, 0);
    assert!(out.contains("sessions 1"), "{out}");
    assert_eq!(lcadmin(&d, &["cameras"]).await.0, 0);
    assert_eq!(lcadmin(&d, &["kick", "alice"]).await.0, 0);
    alice
        .expect_close_code(KICKED, Duration::from_secs(5), "kicked with lcadmin")
        .await;
    assert_eq!(lcadmin(&d, &["kick", "alice"]).await.0, 5);
    assert_eq!(lcadmin(&d, &["delete", "ops"]).await.0, 0);
    assert_eq!(lcadmin(&d, &["delete", "ops"]).await.0, 5);
    assert_eq!(lcadmin(&d, &["frobnicate"]).await.0, 2, "usage");
    assert_eq!(lcadmin(&d, &["channel"]).await.0, 2, "usage");
    let (rc, _, err) = lcadmin(&d, &["--url", "http://127.0.0.1:1", "status"]).await;
    assert_eq!(rc, 3, "unreachable: {err}");
    assert!(err.contains("unreachable"), "{err}");

    // With a token: without it 4, with it 0.
    let t = Daemon::start_with(&[("LIVECHAT_ADMIN_TOKEN", "tkn")]).await;
    let (rc, _, err) = lcadmin(&t, &["status"]).await;
    assert_eq!(rc, 4, "unauthorized: {err}");
    assert!(err.contains("unauthorized"), "{err}");
    assert_eq!(lcadmin(&t, &["--token", "tkn", "status"]).await.0, 0);
}

#[tokio::test]
async fn lctrace_prints_one_line_an_event_and_reconnects_when_the_daemon_restarts() {
    let d = Daemon::start().await;
    let addr = d.connect_addr();
    let mut child = tokio::process::Command::new(tool("lctrace", "LCTRACE_BIN"))
        .args(["--channel", "ops"])
        .env("LIVECHAT_ADMIN_URL", format!("http://{addr}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("lctrace runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // Until lctrace is connected, events would be missed: retry creating a channel until
    // its line shows.
    let mut line = String::new();
    for i in 0..50 {
        send(
            &d,
            "POST",
            "/admin/v1/channels",
            Some(r#"{"channel_id":"ops"}"#),
        )
        .await;
        send(&d, "DELETE", "/admin/v1/channels/ops", None).await;
        if let Ok(Ok(Some(l))) =
            tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await
        {
            line = l;
            break;
        }
        assert!(i < 49, "lctrace never showed an event");
    }
    assert!(
        line.contains("channel") && line.contains("channel=ops"),
        "{line}"
    );
    assert!(!line.contains('\x1b'), "no colour on a pipe: {line:?}");
    send(
        &d,
        "POST",
        "/admin/v1/channels",
        Some(r#"{"channel_id":"other"}"#),
    )
    .await;
    let mut alice = Client::identified(&d, "alice").await;
    send(
        &d,
        "POST",
        "/admin/v1/channels",
        Some(r#"{"channel_id":"ops"}"#),
    )
    .await;
    alice.join("ops").await;
    loop {
        let l = tokio::time::timeout(scaled(TIMEOUT), lines.next_line())
            .await
            .expect("lctrace printed alice's join")
            .expect("read")
            .expect("lctrace still runs");
        assert!(!l.contains("other"), "--channel ops filters: {l}");
        if l.contains("join") {
            assert!(l.contains("user=alice"), "{l}");
            break;
        }
    }
    // The daemon restarts on the same port: lctrace reconnects by itself.
    let port = addr.port().to_string();
    drop(alice);
    drop(d);
    let d2 = Daemon::builder()
        .env("LIVECHAT_HTTP_ADDR", &format!("127.0.0.1:{port}"))
        .start()
        .await;
    let mut ok = false;
    for _ in 0..50 {
        send(
            &d2,
            "POST",
            "/admin/v1/channels",
            Some(r#"{"channel_id":"ops"}"#),
        )
        .await;
        send(&d2, "DELETE", "/admin/v1/channels/ops", None).await;
        if let Ok(Ok(Some(l))) =
            tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await
            && l.contains("channel=ops")
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "lctrace did not reconnect to the restarted daemon");
    let _ = child.kill().await;
}

// ----- the state dump agrees -----------------------------------------------------------------

/// `key=value` out of a log line.
fn field<'l>(line: &'l str, key: &str) -> &'l str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[tokio::test]
async fn the_sigusr1_dump_agrees_with_the_api() {
    let d = Daemon::start().await;
    let mut cs = channel_with(&d, "ops", &["alice", "bob"]).await;
    floor_request(&mut cs[0], "ops").await;
    expect_op(&mut cs[0], op::FLOOR_GRANTED, "ops").await;
    send(
        &d,
        "POST",
        "/admin/v1/channels",
        Some(r#"{"channel_id":"empty"}"#),
    )
    .await;
    let st = get(&d, "/admin/v1/status").await.json();
    d.signal(libc::SIGUSR1);
    assert!(
        d.wait_for_log("dump: end", Duration::from_secs(5)).await,
        "no state dump:\n{}",
        d.logs()
    );
    let logs = d.logs();
    let begin = logs
        .lines()
        .find(|l| l.contains("dump: begin"))
        .expect("dump: begin");
    for key in ["sessions", "connections", "channels"] {
        assert_eq!(
            field(begin, key),
            st[key].to_string(),
            "{key}: {begin} vs {st}"
        );
    }
    assert_eq!(field(begin, "floors_held"), "1");
    let counters = logs
        .lines()
        .find(|l| l.contains("dump: counters"))
        .expect("dump: counters");
    assert_eq!(field(counters, "peers"), st["peers"].to_string());
    for key in ["frames_in", "frames_out", "errors", "relayed", "drops"] {
        assert_eq!(
            field(counters, key),
            st["counters"][key].to_string(),
            "{key}: {counters} vs {st}"
        );
    }
    assert!(logs.contains("dump: channel ops") && logs.contains("holder=alice"));
}
