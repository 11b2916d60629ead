//! Gateway scenarios driven in virtual time through the recording driver
//! ([`Recorder`]): a [`Sim`] owns one gateway and its clock, and only [`Sim::advance`] moves
//! time, waking at each deadline the gateway announces as a driver would. The submodules
//! script sessions against it: floor control, heartbeats and zombies, channel rules, the
//! IDENTIFY gate, the media relay. Every gateway in these tests is built by [`Sim::new`].

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde_json::{Value, json};

use super::*;
use crate::testing::Recorder;
use crate::token::TokenKey;

pub(crate) struct Sim {
    pub(crate) gw: Box<Gateway<'static>>,
    pub(crate) rec: Recorder,
    pub(crate) now: Now,
}

pub(crate) fn config(limits: Limits) -> GatewayConfig {
    let mut media_host = heapless::String::new();
    media_host.push_str("127.0.0.1").unwrap();
    GatewayConfig {
        limits,
        token_key: TokenKey::new(b"s3cret"),
        plain_rtp: Policy::Loopback,
        sdes_over_ws: Policy::Loopback,
        media_host,
        media_port: 10000,
        session_seed: 42,
    }
}

impl Sim {
    pub(crate) fn new(limits: Limits) -> Self {
        Sim {
            gw: crate::testing::gateway(config(limits)),
            rec: Recorder::new(),
            now: Now::new(Instant::from_millis(1_000), 1_700_000_000_000),
        }
    }

    /// Lets `ms` of virtual time pass the way a driver lives through it: it wakes at every
    /// deadline [`Gateway::poll_timeout`] announces on the way (re-reading it after each
    /// `handle_timeout`, quinn-proto's `drive`), then at the end. So a timer fires at its
    /// own deadline, and what it starts (a new holder's timers) starts there.
    ///
    /// # Panics
    ///
    /// If `handle_timeout` leaves a deadline at or before the clock: the driver would spin.
    pub(crate) fn advance(&mut self, ms: u64) {
        let until = self.now.mono + Duration::from_millis(ms);
        while let Some(at) = self.gw.poll_timeout().filter(|&at| at < until) {
            self.set_clock(at.max(self.now.mono));
            self.gw.handle_timeout(self.now, &mut self.rec);
            let next = self.gw.poll_timeout();
            assert!(
                next.is_none_or(|n| n > self.now.mono),
                "handle_timeout at {:?} left the deadline at {next:?}",
                self.now.mono
            );
        }
        self.set_clock(until);
        self.gw.handle_timeout(self.now, &mut self.rec);
    }

    /// Moves both clocks to `at`, no earlier than now.
    fn set_clock(&mut self, at: Instant) {
        let step = at.saturating_since(self.now.mono);
        self.now.mono = self.now.mono + step;
        self.now.unix_ms += step.as_millis();
    }

    pub(crate) fn connect_from(&mut self, ip: IpAddr) -> ConnId {
        let peer = PeerInfo { ip, tls: false };
        let c = self.gw.open(self.now, peer, &mut self.rec).unwrap();
        let hello = self.take(c);
        assert_eq!(hello[0]["op"], 0);
        c
    }

    pub(crate) fn connect(&mut self) -> ConnId {
        self.connect_from(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    pub(crate) fn token(&self, user: &str, cap: u8) -> String {
        let mut t = String::new();
        TokenKey::new(b"s3cret")
            .mint(user, self.now.unix_ms / 1000 + 3600, cap, &mut t)
            .unwrap();
        t
    }

    pub(crate) fn user(&mut self, name: &str) -> ConnId {
        let c = self.connect();
        let token = self.token(name, 255);
        let r = self.req(c, json!({"op":3,"d":{"user_id":name,"token":token}}));
        assert_eq!(r[0]["op"], 4, "{r:?}");
        c
    }

    pub(crate) fn send(&mut self, c: ConnId, v: Value) {
        let s = v.to_string();
        self.gw
            .handle_frame(self.now, c, Frame::Text(s.as_bytes()), &mut self.rec);
    }

    pub(crate) fn send_raw(&mut self, c: ConnId, s: &[u8]) -> Vec<Value> {
        self.gw
            .handle_frame(self.now, c, Frame::Text(s), &mut self.rec);
        self.take(c)
    }

    /// Sends a request and returns what its sender received.
    pub(crate) fn req(&mut self, c: ConnId, v: Value) -> Vec<Value> {
        self.send(c, v);
        self.take(c)
    }

    pub(crate) fn take(&mut self, c: ConnId) -> Vec<Value> {
        self.rec.take(c)
    }

    pub(crate) fn join(&mut self, c: ConnId, chan: &str, ssrc: u32) -> Vec<Value> {
        self.req(c, json!({"op":11,"d":{"channel_id":chan,"ssrc":ssrc}}))
    }
}

pub(crate) fn chan(channel: &str) -> Value {
    json!({"channel_id": channel})
}

pub(crate) fn fresh_ssrc() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0x5000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn fresh_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(9000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Scenario steps shared by the test modules: sessions, channels, frames taken one by one.
impl Sim {
    /// An identified session for `user` with a token of priority cap `cap`, sending
    /// IDENTIFY's `priority` when given.
    pub(crate) fn member(&mut self, user: &str, cap: u8, priority: Option<u8>) -> ConnId {
        let c = self.connect();
        let mut d = json!({"user_id": user, "token": self.token(user, cap)});
        if let Some(p) = priority {
            d["priority"] = json!(p);
        }
        let r = self.req(c, json!({"op": 3, "d": d}));
        assert_eq!(
            r.len(),
            1,
            "{user}: IDENTIFY {d} answers READY alone: {r:?}"
        );
        assert_eq!(r[0]["op"], 4, "{user}: IDENTIFY {d}: {r:?}");
        c
    }

    pub(crate) fn name(&self, c: ConnId) -> String {
        self.gw.user_id(c).to_owned()
    }

    pub(crate) fn create(&mut self, c: ConnId, channel: &str) {
        let r = self.req(c, json!({"op": 10, "d": chan(channel)}));
        assert_eq!(r.len(), 1, "CHANNEL_CREATE {channel}: {r:?}");
        assert_eq!(r[0]["d"]["req_op"], 10, "CHANNEL_CREATE {channel}: {r:?}");
    }

    /// CHANNEL_JOIN with a fresh SSRC; the next frame is its ACK (a floor event may follow).
    pub(crate) fn enter(&mut self, c: ConnId, channel: &str) {
        self.send(
            c,
            json!({"op": 11, "d": {"channel_id": channel, "ssrc": fresh_ssrc()}}),
        );
        let f = self.next(c, "JOIN's ACK");
        assert!(
            f["op"] == 200 && f["d"]["req_op"] == 11 && f["d"]["channel_id"] == channel,
            "{}: JOIN {channel}: {f}",
            self.name(c)
        );
    }

    /// Each joins `channel` in order; then each takes the `join` events of those after it,
    /// strictly in order, so every member starts with nothing pending.
    pub(crate) fn join_all_to(&mut self, channel: &str, cs: &[ConnId]) {
        for &c in cs {
            self.enter(c, channel);
        }
        for (i, &c) in cs.iter().enumerate() {
            for &later in &cs[i + 1..] {
                let who = self.name(later);
                self.member_event(c, "join", channel, &who, "setting up the channel");
            }
        }
    }

    /// The next frame `c` received, which must exist.
    pub(crate) fn next(&mut self, c: ConnId, what: &str) -> Value {
        let name = self.name(c);
        let q = self.rec.frames.entry(c).or_default();
        assert!(!q.is_empty(), "{name}: expected {what}, nothing was sent");
        q.remove(0)
    }

    /// The next frame to `c` is `o` (without `id`) and its `d` holds the values in `want`.
    pub(crate) fn event(&mut self, c: ConnId, o: i64, want: Value, context: &str) -> Value {
        let what = format!("op {o} {want} ({context})");
        let f = self.next(c, &what);
        let fields = want.as_object().unwrap();
        assert!(
            f["op"] == o && fields.iter().all(|(k, v)| f["d"][k] == *v),
            "{}: the next frame should be {what}, got {f}",
            self.name(c)
        );
        assert!(f.get("id").is_none(), "events carry no `id`: {f}");
        f["d"].clone()
    }

    pub(crate) fn member_event(
        &mut self,
        c: ConnId,
        event: &str,
        channel: &str,
        who: &str,
        context: &str,
    ) {
        let want = json!({"event": event, "channel_id": channel, "user_id": who});
        self.event(c, 100, want, context);
    }

    pub(crate) fn left(&mut self, c: ConnId, channel: &str, who: &str, context: &str) {
        self.member_event(c, "leave", channel, who, context);
    }

    /// `o` with `d` and a fresh id is refused: the next frame is ERROR `code` echoing the id.
    pub(crate) fn refused(&mut self, c: ConnId, o: i64, d: Value, code: i64) {
        let id = fresh_id();
        self.send(c, json!({"op": o, "d": d, "id": id}));
        let f = self.next(c, "an ERROR");
        assert!(
            f["op"] == 201 && f["d"]["code"] == code && f["d"]["req_op"] == o && f["id"] == id,
            "{}: op {o} {d} should get ERROR {code} echoing id {id}, got {f}",
            self.name(c)
        );
    }

    /// Nothing is waiting for any of `cs`.
    pub(crate) fn quiet(&mut self, cs: &[ConnId], context: &str) {
        for &c in cs {
            let pending = self.take(c);
            assert!(
                pending.is_empty(),
                "{}: nothing more was due ({context}), got {pending:?}",
                self.name(c)
            );
        }
    }

    /// `o` with `d` and a fresh id; the very next frame is its ACK, exactly `{req_op: o}`.
    pub(crate) fn acked(&mut self, c: ConnId, o: i64, d: Value) {
        let id = fresh_id();
        self.send(c, json!({"op": o, "d": d, "id": id}));
        let f = self.next(c, "the ACK");
        assert_eq!(
            f,
            json!({"op": 200, "d": {"req_op": o}, "id": id}),
            "{}: op {o} {d} with an id gets its bare ACK first",
            self.name(c)
        );
    }

    /// Moves the clock to `at` (firing what is due there).
    pub(crate) fn advance_to(&mut self, at: Instant) {
        assert!(at >= self.now.mono, "time runs forward");
        let ms = at.saturating_since(self.now.mono).as_millis();
        self.advance(ms);
        assert_eq!(self.now.mono, at);
    }

    pub(crate) fn heartbeat(&mut self, cs: &[ConnId]) {
        for &c in cs {
            let r = self.req(c, json!({"op": 1}));
            assert_eq!(r, vec![json!({"op": 2, "d": null})], "HEARTBEAT_ACK");
        }
    }
}

fn code(frames: &[Value]) -> i64 {
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["op"], 201, "{frames:?}");
    frames[0]["d"]["code"].as_i64().unwrap()
}

#[test]
fn gateway_fits_comfortably_in_memory() {
    // The tables live in the driver's storage; what is left (mostly the outbound frame
    // buffer) is built and touched at start, and fits any stack.
    let size = core::mem::size_of::<Gateway<'static>>();
    assert!(size < 40 * 1024, "Gateway is {size} bytes");
}

#[test]
fn identify_answers_ready_and_echoes_id() {
    let mut s = Sim::new(Limits::default());
    let c = s.connect();
    let tok = s.token("alice", 3);
    let r = s.req(
        c,
        json!({"op":3,"d":{"user_id":"alice","token":tok,"priority":9},"id":5}),
    );
    assert_eq!(r[0]["op"], 4);
    assert_eq!(r[0]["id"], 5);
    assert_eq!(r[0]["d"]["user_id"], "alice");
    assert_eq!(r[0]["d"]["session_id"].as_str().unwrap().len(), 16);
    assert_eq!(s.gw.session(c).unwrap().priority, 3, "capped by the token");
    assert_eq!(
        code(&s.req(c, json!({"op":3,"d":{"user_id":"alice","token":tok}}))),
        1002
    );
    let c2 = s.connect();
    assert_eq!(
        code(&s.req(c2, json!({"op":3,"d":{"user_id":"alice","token":tok}}))),
        1002
    );
    let bad = s.req(c2, json!({"op":3,"d":{"user_id":"bob","token":tok},"id":1}));
    assert_eq!(code(&bad), 1001);
    assert_eq!(bad[0]["id"], 1);
    assert_eq!(bad[0]["d"]["req_op"], 3);
    let tok_b = s.token("bob", 0);
    assert_eq!(
        s.req(c2, json!({"op":3,"d":{"user_id":"bob","token":tok_b}}))[0]["op"],
        4
    );
}

#[test]
fn frame_checks_follow_the_protocol_order() {
    let mut s = Sim::new(Limits::default());
    let c = s.connect();
    // Unknown op before "not identified".
    assert_eq!(code(&s.req(c, json!({"op":99}))), 1003);
    assert_eq!(code(&s.req(c, json!({"op":15}))), 1000);
    assert_eq!(
        s.req(c, json!({"op":1,"id":2}))[0],
        json!({"op":2,"d":null,"id":2})
    );
    assert_eq!(code(&s.send_raw(c, b"{\"op\":\"x\"}")), 1004);
    assert_eq!(code(&s.send_raw(c, b"{\"op\":1.5}")), 1004);
    assert_eq!(code(&s.send_raw(c, b"{nope")), 1004);
    let big = format!("{{\"op\":1,\"pad\":\"{}\"}}", "x".repeat(MAX_INBOUND_FRAME));
    assert_eq!(code(&s.send_raw(c, big.as_bytes())), 1005);
    let big_bad = format!("{{{}", "x".repeat(MAX_INBOUND_FRAME));
    assert_eq!(code(&s.send_raw(c, big_bad.as_bytes())), 1005);
    s.gw.handle_frame(s.now, c, Frame::Binary(3), &mut s.rec);
    assert_eq!(code(&s.take(c)), 1003);
    s.gw.handle_frame(s.now, c, Frame::Binary(MAX_INBOUND_FRAME + 1), &mut s.rec);
    assert_eq!(code(&s.take(c)), 1005);
    let deep = format!("{{\"op\":1,\"x\":{}{}}}", "[".repeat(16), "]".repeat(16));
    assert_eq!(code(&s.send_raw(c, deep.as_bytes())), 1004);
    let ok = format!("{{\"op\":1,\"x\":{}{}}}", "[".repeat(15), "]".repeat(15));
    assert_eq!(s.send_raw(c, ok.as_bytes())[0]["op"], 2);
}

#[test]
fn channel_life_cycle_events_reach_the_right_members() {
    let mut s = Sim::new(Limits::default());
    let (a, b, c) = (s.user("a"), s.user("b"), s.user("c"));
    let r = s.req(
        a,
        json!({"op":10,"d":{"channel_id":"ch","name":"Ops","freq":"446.1","capacity":2}}),
    );
    assert_eq!(r[0]["d"]["req_op"], 10);
    assert_eq!(
        code(&s.req(b, json!({"op":10,"d":{"channel_id":"ch"}}))),
        2005
    );
    let r = s.join(a, "ch", 1);
    assert_eq!(r[0]["d"]["active_members"], json!(["a"]));
    assert_eq!(r[0]["d"]["media"], json!({"host":"127.0.0.1","port":10000}));
    assert_eq!(code(&s.join(a, "ch", 9)), 2003);
    assert_eq!(code(&s.join(b, "ch", 1)), 2007);
    assert_eq!(
        s.join(b, "ch", 2)[0]["d"]["active_members"],
        json!(["a", "b"])
    );
    let ev = s.take(a);
    assert_eq!(
        ev[0]["d"],
        json!({"event":"join","channel_id":"ch","user_id":"b","ssrc":2})
    );
    assert_eq!(code(&s.join(c, "ch", 3)), 2001);
    assert_eq!(
        code(&s.req(b, json!({"op":13,"d":{"channel_id":"ch","name":"x"}}))),
        2002
    );
    let r = s.req(a, json!({"op":13,"d":{"channel_id":"ch","name":"New"}}));
    assert_eq!(r[0]["d"]["event"], "update");
    assert_eq!(r[1]["d"]["name"], "New");
    assert_eq!(s.take(b)[0]["d"]["name"], "New");
    let info = s.req(c, json!({"op":16,"d":{"channel_id":"ch"},"id":4}));
    assert_eq!(info[0]["d"]["members"], json!(["a", "b"]));
    assert_eq!(info[0]["d"]["floor"], json!({"state":"idle","queue":[]}));
    assert_eq!(
        code(&s.req(c, json!({"op":12,"d":{"channel_id":"ch"}}))),
        2004
    );
    assert_eq!(
        s.req(b, json!({"op":12,"d":{"channel_id":"ch"}}))[0]["d"]["req_op"],
        12
    );
    assert_eq!(s.take(a)[0]["d"]["event"], "leave");
    s.join(b, "ch", 2);
    s.take(a);
    let r = s.req(a, json!({"op":14,"d":{"channel_id":"ch"}}));
    assert_eq!(r[0]["d"]["event"], "delete");
    assert_eq!(r[1]["d"]["req_op"], 14);
    assert_eq!(s.take(b)[0]["d"]["event"], "delete");
    assert_eq!(code(&s.join(b, "ch", 2)), 2000);
    assert_eq!(s.gw.session(b).unwrap().joined, 0);
}

#[test]
fn tables_fill_with_2006_and_free_again() {
    let limits = Limits {
        max_sessions: 2,
        max_channels: 1,
        ..Limits::default()
    };
    let mut s = Sim::new(limits);
    let a = s.user("a");
    let _b = s.user("b");
    let c = s.connect();
    let tok = s.token("c", 0);
    assert_eq!(
        code(&s.req(c, json!({"op":3,"d":{"user_id":"c","token":tok}}))),
        2006
    );
    s.gw.close(s.now, a, &mut s.rec);
    assert_eq!(
        s.req(c, json!({"op":3,"d":{"user_id":"c","token":tok}}))[0]["op"],
        4
    );
    s.req(c, json!({"op":10,"d":{"channel_id":"x"}}));
    assert_eq!(
        code(&s.req(c, json!({"op":10,"d":{"channel_id":"y"}}))),
        2006
    );
    s.req(c, json!({"op":14,"d":{"channel_id":"x"}}));
    assert_eq!(
        s.req(c, json!({"op":10,"d":{"channel_id":"y"}}))[0]["op"],
        200
    );
}

#[test]
fn chat_fans_out_to_every_member_with_the_sender() {
    let mut s = Sim::new(Limits::default());
    let users: Vec<_> = (0..40).map(|i| s.user(&format!("u{i}"))).collect();
    s.req(users[0], json!({"op":10,"d":{"channel_id":"c"}}));
    for (i, u) in users.iter().enumerate() {
        s.join(*u, "c", i as u32);
    }
    for u in &users {
        s.take(*u);
    }
    let r = s.req(
        users[3],
        json!({"op":20,"d":{"channel_id":"c","content":"hé 😀"},"id":8}),
    );
    assert_eq!(r[0], json!({"op":200,"d":{"req_op":20},"id":8}));
    assert_eq!(r[1]["d"]["content"], "hé 😀");
    for u in &users {
        if *u != users[3] {
            let f = s.take(*u);
            assert_eq!(f.len(), 1);
            assert_eq!(f[0]["op"], 101);
            assert_eq!(f[0]["d"]["user_id"], "u3");
            assert_eq!(f[0]["d"]["timestamp"], 1_700_000_000_000u64);
        }
    }
    let outsider = s.user("out");
    assert_eq!(
        code(&s.req(
            outsider,
            json!({"op":20,"d":{"channel_id":"c","content":"x"}})
        )),
        3002
    );
    assert_eq!(
        code(&s.req(
            outsider,
            json!({"op":20,"d":{"channel_id":"zz","content":"x"}})
        )),
        2000
    );
}

#[test]
fn zombies_are_reaped_and_cleaned_up() {
    let limits = Limits {
        heartbeat: Duration::from_millis(400),
        ..Limits::default()
    };
    let mut s = Sim::new(limits);
    let (a, b) = (s.user("a"), s.user("b"));
    s.req(a, json!({"op":10,"d":{"channel_id":"c"}}));
    s.join(a, "c", 1);
    s.join(b, "c", 2);
    s.take(a);
    assert_eq!(
        s.gw.poll_timeout(),
        Some(s.now.mono + Duration::from_millis(800))
    );
    s.advance(500);
    s.req(a, json!({"op":1}));
    s.advance(400);
    assert_eq!(s.rec.closed, vec![(b, CLOSE_ZOMBIE)]);
    assert_eq!(
        s.take(a)[0]["d"],
        json!({"event":"leave","channel_id":"c","user_id":"b"})
    );
    assert!(s.gw.session(b).is_none());
    assert_eq!(s.gw.stats().sessions, 1);
    // Stale handles are ignored.
    s.gw.handle_frame(s.now, b, Frame::Text(b"{\"op\":1}"), &mut s.rec);
    assert!(s.take(b).is_empty());
}

#[test]
fn rate_limit_answers_1006_then_closes_a_persistent_flooder() {
    let limits = Limits {
        rate_burst: 5,
        rate_per_sec: 1,
        ..Limits::default()
    };
    let mut s = Sim::new(limits);
    let c = s.connect();
    for _ in 0..5 {
        assert_eq!(s.req(c, json!({"op":1}))[0]["op"], 2);
    }
    let r = s.req(c, json!({"op":1,"id":77}));
    assert_eq!(code(&r), 1006);
    assert_eq!(r[0]["id"], 77);
    s.now.mono = s.now.mono + Duration::from_millis(1000);
    assert_eq!(s.req(c, json!({"op":1}))[0]["op"], 2);
    for _ in 0..=RATE_STRIKES_BEFORE_CLOSE {
        s.req(c, json!({"op":1}));
    }
    assert_eq!(s.rec.closed, vec![(c, CLOSE_POLICY)]);
}

#[test]
fn transport_policies_gate_plain_rtp_and_sdes() {
    let mut s = Sim::new(Limits::default());
    let remote = s.connect_from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    let tok = s.token("r", 0);
    s.req(remote, json!({"op":3,"d":{"user_id":"r","token":tok}}));
    s.req(remote, json!({"op":10,"d":{"channel_id":"c"}}));
    assert_eq!(code(&s.join(remote, "c", 1)), 2002);
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    let crypto = json!({"suite":"AES_CM_128_HMAC_SHA1_80","key":key});
    let r = s.req(
        remote,
        json!({"op":11,"d":{"channel_id":"c","ssrc":1,"crypto":crypto}}),
    );
    assert_eq!(code(&r), 2002);
    let local = s.user("l");
    let r = s.req(
        local,
        json!({"op":11,"d":{"channel_id":"c","ssrc":2,"crypto":crypto}}),
    );
    assert_eq!(r[0]["d"]["crypto"]["suite"], "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(r[0]["d"]["crypto"]["key"].as_str().unwrap().len(), 40);
}

fn ops(frames: &[Value]) -> Vec<i64> {
    frames.iter().map(|f| f["op"].as_i64().unwrap()).collect()
}

/// Three members of channel "c": a (priority cap 255), b and c (cap 1).
fn floor_sim(limits: Limits) -> (Sim, ConnId, ConnId, ConnId) {
    let mut s = Sim::new(limits);
    let a = s.user("a");
    let low = |s: &mut Sim, name: &str| {
        let c = s.connect();
        let tok = s.token(name, 1);
        s.req(c, json!({"op":3,"d":{"user_id":name,"token":tok}}));
        c
    };
    let b = low(&mut s, "b");
    let c = low(&mut s, "c");
    s.req(a, json!({"op":10,"d":{"channel_id":"c"}}));
    for (i, u) in [a, b, c].into_iter().enumerate() {
        s.join(u, "c", i as u32 + 1);
    }
    for u in [a, b, c] {
        s.take(u);
    }
    (s, a, b, c)
}

#[test]
fn floor_grant_queue_release_and_info() {
    let (mut s, a, b, c) = floor_sim(Limits::default());
    let r = s.req(b, json!({"op":30,"d":{"channel_id":"c"}}));
    assert_eq!(r[0]["op"], 50);
    assert_eq!(r[0]["d"]["max_duration_ms"], 30000);
    assert_eq!(
        s.take(a)[0]["d"],
        json!({"channel_id":"c","user_id":"b","priority":0})
    );
    s.take(c);
    // The token caps c's requested priority at 1, not above... b holds at 0, so c (1) preempts.
    let r = s.req(c, json!({"op":30,"d":{"channel_id":"c","priority":200}}));
    assert_eq!(ops(&r), vec![50]);
    assert_eq!(ops(&s.take(b)), vec![52, 53]);
    assert_eq!(s.take(a)[0]["d"]["priority"], 1);
    // b now queues behind c's hold.
    let r = s.req(b, json!({"op":30,"d":{"channel_id":"c"},"id":3}));
    assert_eq!(r[0], json!({"op":200,"d":{"req_op":30},"id":3}));
    assert_eq!(
        r[1]["d"],
        json!({"channel_id":"c","position":1,"queue_size":1})
    );
    let info = s.req(a, json!({"op":16,"d":{"channel_id":"c"}}));
    assert_eq!(
        info[0]["d"]["floor"],
        json!({"state":"taken","holder":"c","queue":["b"]})
    );
    assert_eq!(
        code(&s.req(a, json!({"op":31,"d":{"channel_id":"c"}}))),
        2002
    );
    assert_eq!(
        ops(&s.req(c, json!({"op":31,"d":{"channel_id":"c"}}))),
        vec![53]
    );
    assert_eq!(ops(&s.take(b)), vec![50]);
    assert_eq!(
        ops(&s.req(b, json!({"op":31,"d":{"channel_id":"c"}}))),
        vec![54]
    );
    assert_eq!(ops(&s.take(a)), vec![53, 54]);
    let outsider = s.user("z");
    assert_eq!(
        code(&s.req(outsider, json!({"op":30,"d":{"channel_id":"c"}}))),
        2004
    );
    assert_eq!(
        code(&s.req(outsider, json!({"op":30,"d":{"channel_id":"q"}}))),
        2000
    );
}

#[test]
fn floor_timers_revoke_and_pass_on() {
    let limits = Limits {
        floor_ping: Duration::from_millis(300),
        floor_max: Duration::from_millis(1000),
        ..Limits::default()
    };
    let (mut s, a, b, c) = floor_sim(limits);
    s.req(b, json!({"op":30,"d":{"channel_id":"c"}}));
    s.req(c, json!({"op":30,"d":{"channel_id":"c"}}));
    for u in [a, b, c] {
        s.take(u);
    }
    assert_eq!(
        ops(&s.req(b, json!({"op":32,"d":{"channel_id":"c"}}))),
        vec![56]
    );
    s.advance(200);
    s.req(b, json!({"op":32,"d":{"channel_id":"c"}}));
    s.advance(200);
    assert!(s.take(a).is_empty(), "pings keep the holder");
    s.advance(200);
    let r = s.take(b);
    assert_eq!(r[0]["d"]["cause"], "timeout");
    assert_eq!(ops(&r), vec![52, 53]);
    assert_eq!(ops(&s.take(c)), vec![50]);
    // b's last ping was at 200 ms: revoked at 500 ms, when c was granted. c pings from
    // 600 ms every 250 ms, within its 300 ms ping timer: revoked at its 1500 ms max deadline.
    let mut seen = s.req(c, json!({"op":32,"d":{"channel_id":"c"}}));
    for _ in 0..4 {
        s.advance(250);
        seen.extend(s.req(c, json!({"op":32,"d":{"channel_id":"c"}})));
    }
    let revokes: Vec<_> = seen.iter().filter(|f| f["op"] == 52).collect();
    assert_eq!(revokes.len(), 1, "{seen:?}");
    assert_eq!(revokes[0]["d"]["cause"], "max_duration");
    assert_eq!(ops(&s.take(a)), vec![53, 54]);
}

#[test]
fn holder_disconnect_passes_the_floor_and_joiners_learn_the_holder() {
    let (mut s, a, b, c) = floor_sim(Limits::default());
    s.req(b, json!({"op":30,"d":{"channel_id":"c"}}));
    s.req(c, json!({"op":30,"d":{"channel_id":"c"}}));
    for u in [a, b, c] {
        s.take(u);
    }
    s.gw.close(s.now, b, &mut s.rec);
    assert!(s.take(b).is_empty());
    assert_eq!(ops(&s.take(c)), vec![100, 50]);
    assert_eq!(ops(&s.take(a)), vec![100, 53]);
    let d = s.user("d");
    let r = s.join(d, "c", 9);
    assert_eq!(ops(&r), vec![200, 53]);
    assert_eq!(r[1]["d"]["user_id"], "c");
    // Deleting the channel sends only `delete`.
    s.take(a);
    s.take(c);
    s.req(a, json!({"op":14,"d":{"channel_id":"c"}}));
    assert_eq!(ops(&s.take(c)), vec![100]);
}

mod admin;
mod camera;
mod channels;
mod floor;
mod identify;
mod order;
mod relay;
mod tables;
mod timers;
mod webrtc;

/// Everything a scripted run shows from outside: connection ids, frames, closes, timers and
/// counters.
fn transcript(s: &mut Sim) -> Value {
    let mut ready = Vec::new();
    let mut ids = Vec::new();
    for name in ["alice", "bob"] {
        let c = s.connect();
        let token = s.token(name, 255);
        ready.push(s.req(c, json!({"op":3,"d":{"user_id":name,"token":token}})));
        ids.push(c);
    }
    let (a, b) = (ids[0], ids[1]);
    let ch = "ops";
    let r1 = s.req(
        a,
        json!({"op":10,"d":{"channel_id":ch,"name":"Ops","freq":"146.5"}}),
    );
    let j1 = s.join(a, ch, 0x11);
    let j2 = s.join(b, ch, 0x22);
    let f1 = s.req(a, json!({"op":30,"d":{"channel_id":ch}}));
    let f2 = s.req(b, json!({"op":30,"d":{"channel_id":ch,"priority":0}}));
    let chat = s.req(b, json!({"op":20,"d":{"channel_id":ch,"content":"hi"}}));
    s.advance(20_000);
    let later = (s.take(a), s.take(b));
    let c = s.connect();
    json!({
        "ids": [format!("{a:?}"), format!("{b:?}"), format!("{c:?}")],
        "ready": ready,
        "frames": [r1, j1, j2, f1, f2, chat, later.0, later.1],
        "closed": format!("{:?}", s.rec.closed),
        "timeout": format!("{:?}", s.gw.poll_timeout()),
        "stats": format!("{:?}", s.gw.stats()),
        "peers": s.gw.endpoints().count(),
    })
}

#[test]
fn reset_gives_a_gateway_like_a_new_one() {
    let mut fresh = Sim::new(Limits::default());
    let expected = transcript(&mut fresh);
    // The script really ran: created, joined twice, granted, queued.
    let f = &expected["frames"];
    let has = |i: usize, op: i64| f[i].as_array().unwrap().iter().any(|v| v["op"] == op);
    assert!(has(0, 200) && has(1, 200) && has(2, 200), "{expected}");
    assert!(has(3, 50) && has(4, 55), "{expected}");

    // Another gateway after a busier past: connections opened and closed (generations
    // moved), channels, members, floors, rate strikes.
    let mut used = Sim::new(Limits::default());
    let _ = transcript(&mut used);
    for i in 0..5 {
        let c = used.user(&format!("u{i}"));
        let ch = format!("c{i}");
        let r = used.req(c, json!({"op":10,"d":{"channel_id":ch}}));
        assert_eq!(r[0]["op"], 200, "{r:?}");
        assert_eq!(used.join(c, &ch, 0x100 + i)[0]["op"], 200);
        used.req(c, json!({"op":30,"d":{"channel_id":ch}}));
        if i % 2 == 0 {
            used.gw.close(used.now, c, &mut used.rec);
        }
    }
    used.advance(3_000);
    // Everything closed: free slots whose generations have moved on.
    let conns = used.gw.conns.as_slice();
    let open: Vec<ConnId> = (0..conns.len())
        .filter(|&i| conns[i].open)
        .map(|i| ConnId::new(i as u32, conns[i].generation))
        .collect();
    assert!(open.len() >= 4);
    for c in open {
        used.gw.close(used.now, c, &mut used.rec);
    }
    used.gw.reset(config(Limits::default()));
    used.rec = Recorder::new();
    used.now = Now::new(Instant::from_millis(1_000), 1_700_000_000_000);
    assert_eq!(used.gw.stats(), fresh_stats());
    assert_eq!(transcript(&mut used), expected);
}

fn fresh_stats() -> Stats {
    Sim::new(Limits::default()).gw.stats()
}

#[test]
fn an_unidentified_connection_is_closed_4008_at_the_identify_deadline_whatever_it_sends() {
    let mut s = Sim::new(Limits::default());
    let idle = s.connect();
    let busy = s.connect();
    let alice = s.user("alice");
    let late = s.connect();
    // Heartbeats, WebSocket pings and failed IDENTIFYs are all activity, none identifies.
    for i in 0..99 {
        s.advance(100);
        assert_eq!(s.req(busy, json!({"op":1}))[0]["op"], 2);
        s.gw.handle_frame(s.now, busy, Frame::Ping, &mut s.rec);
        if i % 10 == 0 {
            let r = s.req(busy, json!({"op":3,"d":{"user_id":"bob","token":"1.0.00"}}));
            assert_eq!(code(&r), 1001);
        }
        s.req(alice, json!({"op":1}));
    }
    assert!(s.rec.closed.is_empty(), "{:?}", s.rec.closed);
    // 9.9 s after HELLO; `late` identifies just in time.
    let tok = s.token("late", 0);
    assert_eq!(
        s.req(late, json!({"op":3,"d":{"user_id":"late","token":tok}}))[0]["op"],
        4
    );
    s.advance(100);
    let mut closed = s.rec.closed.clone();
    closed.sort();
    let mut want = vec![
        (idle, CLOSE_IDENTIFY_TIMEOUT),
        (busy, CLOSE_IDENTIFY_TIMEOUT),
    ];
    want.sort();
    assert_eq!(closed, want);
    assert_eq!(s.gw.stats().identify_timeouts, 2);
    assert_eq!(s.gw.stats().connections, 2, "alice and late stay");
    assert_eq!(s.req(alice, json!({"op":1}))[0]["op"], 2);
    assert_eq!(s.req(late, json!({"op":1}))[0]["op"], 2);
}

#[test]
fn the_identify_timeout_is_a_setting_and_shapes_the_next_deadline() {
    let limits = Limits {
        identify_timeout: Duration::from_millis(2_500),
        ..Limits::default()
    };
    let mut s = Sim::new(limits);
    let c = s.connect();
    assert_eq!(
        s.gw.poll_timeout(),
        Some(s.now.mono + Duration::from_millis(2_500))
    );
    s.advance(2_499);
    assert!(s.rec.closed.is_empty());
    s.advance(1);
    assert_eq!(s.rec.closed, vec![(c, CLOSE_IDENTIFY_TIMEOUT)]);
    // Nothing left to time: the zombie timer of nobody.
    assert_eq!(s.gw.poll_timeout(), None);
}

#[test]
fn unidentified_connections_never_take_the_slots_of_sessions() {
    let limits = Limits {
        max_sessions: 300,
        ..Limits::default()
    };
    let max_connections = limits.max_sessions + crate::config::MAX_UNIDENTIFIED;
    let mut s = Sim::new(limits);
    // A flood that never identifies, from many addresses.
    let mut flood = Vec::new();
    for i in 0..crate::config::MAX_UNIDENTIFIED {
        s.advance(1);
        flood.push(s.connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 1, i as u8))));
    }
    assert!(s.rec.closed.is_empty());
    // The next connection closes the oldest unidentified one (1013) and gets HELLO; once
    // it has identified, the share has room again, so every real client gets in and
    // identifies, up to the session limit, while the flood keeps its share.
    for n in 0..limits.max_sessions {
        s.advance(1);
        let c = s.user(&format!("u{n}"));
        assert!(s.gw.session(c).is_some());
    }
    assert_eq!(s.gw.stats().sessions, limits.max_sessions);
    assert_eq!(s.gw.stats().unidentified_shed, 1);
    assert_eq!(s.rec.closed, vec![(flood[0], CLOSE_FULL)]);
    // Every session taken and the flood renewing itself: still a slot for a newcomer,
    // at the oldest flooder's expense.
    for _ in 0..crate::config::MAX_UNIDENTIFIED {
        s.advance(1);
        s.connect();
    }
    assert_eq!(s.gw.stats().connections, max_connections);
    s.advance(1);
    let newcomer = s.connect();
    assert_eq!(s.gw.stats().connections, max_connections);
    let tok = s.token("late", 0);
    let r = s.req(newcomer, json!({"op":3,"d":{"user_id":"late","token":tok}}));
    assert_eq!(code(&r), 2006, "the session limit still holds");
}

#[test]
fn the_address_holding_the_most_unidentified_connections_loses_its_oldest() {
    let mut s = Sim::new(Limits::default());
    // The oldest unidentified connection comes from a client alone on its address; the
    // rest of the share from one flooding IPv6 host, each from another address of its /64.
    s.advance(1);
    let alone = s.connect_from(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    let mut flood = Vec::new();
    for i in 1..crate::config::MAX_UNIDENTIFIED {
        s.advance(1);
        let ip = core::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i as u16);
        flood.push(s.connect_from(IpAddr::V6(ip)));
    }
    assert!(s.rec.closed.is_empty());
    s.advance(1);
    s.connect_from(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)));
    assert_eq!(
        s.rec.closed,
        vec![(flood[0], CLOSE_FULL)],
        "the flood's oldest goes, not the older client alone on its address"
    );
    assert!(s.gw.conn(alone).is_some());
}

#[test]
fn addresses_count_ipv6_by_their_64_prefix() {
    let a = IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6));
    let b = IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
    let c = IpAddr::V6(core::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 3, 4, 5, 6));
    assert_eq!(address_key(a), address_key(b));
    assert_ne!(address_key(a), address_key(c));
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
    assert_eq!(address_key(mapped), IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
    assert_eq!(
        address_key(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))
    );
}
