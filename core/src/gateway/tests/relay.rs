//! Media relay scenarios in virtual time: clients with their own SRTP contexts talk to the
//! gateway's `handle_datagram` and read what it sends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::{Value, json};

use super::{Sim, code};
use crate::config::Limits;
use crate::gateway::ConnId;
use crate::srtp::{Context, MasterKey, Suite};
use crate::testing::RecordingTransmit as Net;
use crate::time::Duration;
use crate::wire::rtp::Header;

/// A radio: its gateway connection, media address and SRTP contexts.
pub(super) struct Radio {
    pub(super) conn: ConnId,
    pub(super) ssrc: u32,
    pub(super) addr: SocketAddr,
    pub(super) tx: Option<Context>,
    pub(super) rx: Option<Context>,
    pub(super) seq: u16,
}

pub(super) fn key(seed: u8) -> MasterKey {
    let k: Vec<u8> = (0..30)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i))
        .collect();
    MasterKey::new(Suite::AesCm128HmacSha1_80, &k[..16], &k[16..]).unwrap()
}

impl Sim {
    pub(super) fn radio(&mut self, name: &str, ssrc: u32, suite: Option<Suite>) -> Radio {
        let conn = self.user(name);
        let mut d = json!({"channel_id":"ch","ssrc":ssrc});
        let k = key(ssrc as u8);
        if let Some(s) = suite {
            let mut b = [0u8; 40];
            d["crypto"] = json!({"suite": s.as_str(), "key": k.to_sdes(&mut b)});
        }
        let r = self.req(conn, json!({"op":11,"d":d}));
        assert_eq!(r[0]["op"], 200, "{r:?}");
        let rx = suite.map(|s| {
            let server = r[0]["d"]["crypto"]["key"].as_str().unwrap();
            Context::new(s, &MasterKey::from_sdes(server).unwrap())
        });
        Radio {
            conn,
            ssrc,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20000 + ssrc as u16),
            tx: suite.map(|s| Context::new(s, &k)),
            rx,
            seq: 65500,
        }
    }
}

impl Radio {
    /// The next RTP packet, plain, and as it goes on the wire.
    pub(super) fn packet(&mut self, payload: u8) -> (Vec<u8>, Vec<u8>) {
        let h = Header {
            marker: false,
            payload_type: 0,
            seq_number: self.seq,
            timestamp: u32::from(self.seq) * 160,
            ssrc: self.ssrc,
            csrcs: &[],
            extension: None,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut buf = vec![0u8; 200];
        let n = h.emit_packet(&[payload; 160], 0, &mut buf).unwrap();
        let plain = buf[..n].to_vec();
        let wire = match &mut self.tx {
            Some(ctx) => {
                let m = ctx.protect_rtp(&mut buf, n).unwrap();
                buf[..m].to_vec()
            }
            None => plain.clone(),
        };
        (plain, wire)
    }

    /// A receiver report to latch a listener.
    pub(super) fn latch(&mut self, s: &mut Sim, net: &mut Net) {
        let mut buf = vec![0u8; 64];
        let n = crate::wire::rtcp::emit_receiver_report(self.ssrc, &[], &mut buf).unwrap();
        let n = match &mut self.tx {
            Some(ctx) => ctx.protect_rtcp(&mut buf, n).unwrap(),
            None => n,
        };
        s.gw.handle_datagram(s.now, self.addr, &mut buf[..n], net);
    }

    pub(super) fn send(&mut self, s: &mut Sim, net: &mut Net, wire: &[u8]) {
        let mut b = wire.to_vec();
        s.gw.handle_datagram(s.now, self.addr, &mut b, net);
    }

    /// What this radio received, decrypted.
    pub(super) fn heard(&mut self, net: &Net) -> Vec<Vec<u8>> {
        net.sent
            .iter()
            .filter(|(d, _)| *d == self.addr)
            .map(|(_, b)| {
                let mut b = b.clone();
                match &mut self.rx {
                    Some(ctx) => {
                        let n = ctx.unprotect_rtp(&mut b).unwrap();
                        b.truncate(n);
                        b
                    }
                    None => b,
                }
            })
            .collect()
    }
}

pub(super) fn channel(s: &mut Sim) {
    let owner = s.user("owner");
    s.req(owner, json!({"op":10,"d":{"channel_id":"ch"}}));
}

pub(super) fn take_floor(s: &mut Sim, r: &Radio) -> Vec<Value> {
    s.take(r.conn);
    s.req(r.conn, json!({"op":30,"d":{"channel_id":"ch"}}))
}

fn talk_to_listeners(suite: Option<Suite>) {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut talker = s.radio("talker", 100, suite);
    let mut ls: Vec<Radio> = (0..4)
        .map(|i| s.radio(&format!("l{i}"), 200 + i, suite))
        .collect();
    for l in ls.iter_mut() {
        l.latch(&mut s, &mut net);
    }
    assert!(net.sent.is_empty());
    assert_eq!(take_floor(&mut s, &talker)[0]["op"], 50);
    let mut sent = Vec::new();
    // 300 packets from seq 65500: across the 16-bit wrap.
    for i in 0..300u32 {
        let (plain, wire) = talker.packet(i as u8);
        talker.send(&mut s, &mut net, &wire);
        sent.push(plain);
        s.now.mono = s.now.mono + Duration::from_millis(20);
    }
    for l in ls.iter_mut() {
        assert_eq!(
            l.heard(&net),
            sent,
            "listener {} hears every packet byte-exact",
            l.ssrc
        );
    }
    assert!(
        talker.heard(&net).is_empty(),
        "the talker does not hear itself"
    );
    let st = s.gw.media_stats();
    assert_eq!(st.relayed, 300);
    assert_eq!(st.packets_out, 1200);
}

#[test]
fn srtp_80_talker_reaches_every_listener_across_the_wrap() {
    talk_to_listeners(Some(Suite::AesCm128HmacSha1_80));
}

#[test]
fn srtp_32_talker_reaches_every_listener_across_the_wrap() {
    talk_to_listeners(Some(Suite::AesCm128HmacSha1_32));
}

#[test]
fn plain_talker_reaches_every_listener() {
    talk_to_listeners(None);
}

#[test]
fn non_holders_replays_forgeries_and_strangers_are_dropped() {
    let suite = Some(Suite::AesCm128HmacSha1_80);
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut a = s.radio("a", 1, suite);
    let mut b = s.radio("b", 2, suite);
    let mut never = s.radio("never", 3, suite);
    b.latch(&mut s, &mut net);
    // Not the holder: dropped, but a latches.
    let (_, w) = a.packet(1);
    a.send(&mut s, &mut net, &w);
    assert!(net.sent.is_empty());
    assert_eq!(s.gw.media_stats().drop_not_holder, 1);
    take_floor(&mut s, &a);
    let (p, w) = a.packet(2);
    a.send(&mut s, &mut net, &w);
    assert_eq!(b.heard(&net), vec![p]);
    assert_eq!(s.gw.media_stats().drop_no_latch, 1, "`never` never latched");
    // Replay.
    a.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_replay, 1);
    // A forger with a's SSRC from another address, with a wrong key: dropped, no latch move.
    let mut forger = Radio {
        addr: "127.0.0.1:6666".parse().unwrap(),
        tx: Some(Context::new(Suite::AesCm128HmacSha1_80, &key(99))),
        rx: None,
        conn: a.conn,
        ssrc: 1,
        seq: a.seq,
    };
    let (_, fw) = forger.packet(9);
    forger.send(&mut s, &mut net, &fw);
    assert_eq!(s.gw.media_stats().drop_auth, 1);
    assert_eq!(
        s.gw.endpoints().find(|p| p.ssrc() == 1).unwrap().latched,
        Some(a.addr)
    );
    // Unknown SSRC and garbage.
    let mut stranger = Radio { ssrc: 77, ..forger };
    let (_, sw) = stranger.packet(1);
    stranger.send(&mut s, &mut net, &sw);
    assert_eq!(s.gw.media_stats().drop_unknown_ssrc, 1);
    s.gw.handle_datagram(s.now, stranger.addr, &mut [0x17, 0xfe, 0xff], &mut net);
    s.gw.handle_datagram(s.now, stranger.addr, &mut [0x80], &mut net);
    assert_eq!(s.gw.media_stats().drop_malformed, 2);
    assert_eq!(net.sent.len(), 1, "only b's one copy ever went out");
    assert!(net.sent.iter().all(|(d, _)| *d != stranger.addr));
    // Floor passes: b talks, a hears; a's audio is gated again.
    s.req(a.conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor(&mut s, &b);
    let (pb, wb) = b.packet(5);
    b.send(&mut s, &mut net, &wb);
    assert_eq!(a.heard(&net), vec![pb]);
    let before = net.sent.len();
    let (_, w) = a.packet(3);
    a.send(&mut s, &mut net, &w);
    assert_eq!(net.sent.len(), before);
    never.latch(&mut s, &mut net);
    let (_, wb2) = b.packet(6);
    b.send(&mut s, &mut net, &wb2);
    assert_eq!(never.heard(&net).len(), 1);
}

#[test]
fn plain_rtp_from_another_ip_is_spoofed_and_leaving_removes_the_peer() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut a = s.radio("a", 1, None);
    let mut b = s.radio("b", 2, None);
    b.latch(&mut s, &mut net);
    take_floor(&mut s, &a);
    let (_, w) = a.packet(1);
    let mut spoof = w.clone();
    s.gw.handle_datagram(
        s.now,
        "10.9.9.9:5000".parse().unwrap(),
        &mut spoof,
        &mut net,
    );
    assert_eq!(s.gw.media_stats().drop_spoofed, 1);
    assert!(net.sent.is_empty());
    a.send(&mut s, &mut net, &w);
    assert_eq!(net.sent.len(), 1);
    assert_eq!(s.gw.endpoints().count(), 2);
    s.req(b.conn, json!({"op":12,"d":{"channel_id":"ch"}}));
    assert_eq!(s.gw.endpoints().count(), 1);
    s.gw.close(s.now, a.conn, &mut s.rec);
    assert_eq!(s.gw.endpoints().count(), 0);
    // The SSRC is free again.
    let c = s.user("c");
    let r = s.req(c, json!({"op":11,"d":{"channel_id":"ch","ssrc":1}}));
    assert_eq!(r[0]["op"], 200);
    let _ = code;
}
