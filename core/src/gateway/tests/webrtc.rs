//! WebRTC endpoints in virtual time (PROTOCOL.md section 4): CHANNEL_JOIN with `sdp_offer`
//! through a recording driver that answers as an SDP stack would, then the driver's ICE
//! and DTLS reports, then media between WebRTC clients and radios.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::relay::{channel, key, take_floor};
use super::{Sim, code};
use crate::config::Limits;
use crate::gateway::{ConnId, MediaId, OfferError, Track, VideoTrack};
use crate::srtp::{Context, Suite};
use crate::testing::{Negotiation, RecordingTransmit as Net};
use crate::wire::rtp::Header;

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

/// An offer as a browser's JSON would carry it, with a quote and line ends to unescape.
pub(super) const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=\"-\"\r\nt=0 0\r\n";

/// A WebRTC client: its gateway connection, endpoint id, address and SRTP contexts (as
/// DTLS-SRTP would have keyed them).
pub(super) struct Browser {
    pub(super) conn: ConnId,
    pub(super) media: MediaId,
    pub(super) addr: SocketAddr,
    pub(super) tx: Context,
    pub(super) rx: Context,
    pub(super) ssrc: u32,
    pub(super) video_ssrc: u32,
    pub(super) seq: u16,
    pub(super) join: Value,
    /// Seeds the keys DTLS-SRTP would have given both ends.
    pub(super) seed: u8,
}

pub(super) fn audio(pt: u8, ssrc: Option<u32>) -> Track {
    Track {
        pt,
        mid: heapless::String::try_from("0").unwrap(),
        ext_mid: Some(4),
        ext_audio_level: Some(1),
        ssrc,
        send: true,
        recv: true,
    }
}

pub(super) fn video(pt: u8, ssrc: Option<u32>) -> VideoTrack {
    VideoTrack {
        track: Track {
            pt,
            mid: heapless::String::try_from("1").unwrap(),
            ext_mid: Some(4),
            ext_audio_level: None,
            ssrc,
            send: true,
            recv: true,
        },
        rtx_pt: Some(pt + 1),
        rtx_ssrc: None,
        nack: true,
        pli: true,
        fir: true,
    }
}

impl Sim {
    /// The recording driver answers the next offers with these tracks.
    pub(super) fn answers(&mut self, audio: Track, video: Option<VideoTrack>) {
        self.rec.negotiation = Some(Ok(Negotiation {
            answer: "v=0\r\na=ice-lite\r\n".into(),
            audio,
            video,
        }));
    }

    /// `name` joins "ch" with an offer; the driver's ICE and DTLS then latch and key it.
    pub(super) fn browser(&mut self, name: &str, ssrc: u32, with_video: bool) -> Browser {
        let video_ssrc = ssrc + 1000;
        let v = with_video.then(|| video(96, Some(video_ssrc)));
        self.answers(audio(0, Some(ssrc)), v);
        let conn = self.user(name);
        let r = self.req(
            conn,
            json!({"op":11,"d":{"channel_id":"ch","sdp_offer":OFFER}}),
        );
        assert_eq!(r[0]["op"], 200, "{r:?}");
        let media = self.rec.offers.last().unwrap().0;
        let addr = SocketAddr::from(([127, 0, 0, 1], 30000 + ssrc as u16));
        let mut b = Browser {
            conn,
            media,
            addr,
            tx: Context::new(SUITE, &key(ssrc as u8)),
            rx: Context::new(SUITE, &key(ssrc as u8 ^ 0x55)),
            ssrc,
            video_ssrc,
            seq: 100,
            join: r[0].clone(),
            seed: ssrc as u8,
        };
        self.gw.media_checked(self.now, media, addr);
        let (inbound, outbound) = b.server_contexts();
        self.gw.media_keys(self.now, media, inbound, outbound);
        b.seq = 100;
        b
    }
}

impl Browser {
    /// The server's contexts for this client: what DTLS-SRTP would give both ends.
    pub(super) fn server_contexts(&mut self) -> (Context, Context) {
        (
            Context::new(SUITE, &key(self.seed)),
            Context::new(SUITE, &key(self.seed ^ 0x55)),
        )
    }

    /// The next RTP packet of `ssrc` with payload type `pt`: plain, and protected.
    pub(super) fn packet(&mut self, ssrc: u32, pt: u8, payload: u8) -> (Vec<u8>, Vec<u8>) {
        let h = Header {
            marker: false,
            payload_type: pt,
            seq_number: self.seq,
            timestamp: u32::from(self.seq) * 160,
            ssrc,
            csrcs: &[],
            extension: None,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut buf = vec![0u8; 300];
        let n = h.emit_packet(&[payload; 160], 0, &mut buf).unwrap();
        let plain = buf[..n].to_vec();
        let m = self.tx.protect_rtp(&mut buf, n).unwrap();
        (plain, buf[..m].to_vec())
    }

    pub(super) fn send(&self, s: &mut Sim, net: &mut Net, wire: &[u8]) {
        let mut b = wire.to_vec();
        s.gw.handle_datagram(s.now, self.addr, &mut b, net);
    }

    /// The RTP this client received, decrypted with its receive context.
    pub(super) fn heard(&mut self, net: &Net) -> Vec<Vec<u8>> {
        net.sent
            .iter()
            .filter(|(d, b)| *d == self.addr && !is_rtcp(b))
            .map(|(_, b)| {
                let mut b = b.clone();
                let n = self.rx.unprotect_rtp(&mut b).unwrap();
                b.truncate(n);
                b
            })
            .collect()
    }
}

/// RFC 7983 / RFC 5761 section 4: RTCP when the second byte is 192..=223.
fn is_rtcp(b: &[u8]) -> bool {
    b.get(1).is_some_and(|pt| (192..=223).contains(pt))
}

/// `plain` as a receiver gets it: payload type `pt` and exactly the one-byte extension
/// elements `elements` (written here by hand, RFC 8285 section 4.2), nothing else changed.
pub(super) fn as_received(plain: &[u8], pt: u8, elements: &[(u8, &[u8])]) -> Vec<u8> {
    let p = crate::wire::rtp::Packet::new_checked(plain).unwrap();
    let mut data = Vec::new();
    for (id, value) in elements {
        data.push((id << 4) | (value.len() as u8 - 1));
        data.extend_from_slice(value);
    }
    while data.len() % 4 != 0 {
        data.push(0);
    }
    let csrcs: Vec<u32> = p.csrcs().collect();
    let h = Header {
        marker: p.marker(),
        payload_type: pt,
        seq_number: p.seq_number(),
        timestamp: p.timestamp(),
        ssrc: p.ssrc(),
        csrcs: &csrcs,
        extension: (!elements.is_empty()).then_some(crate::wire::rtp::Extension {
            profile: 0xBEDE,
            data: &data,
        }),
    };
    let mut buf = vec![0u8; 1600];
    let n = h.emit_packet(p.payload(), 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn join_offer(s: &mut Sim, c: ConnId, d: Value) -> Vec<Value> {
    let mut d = d;
    d["channel_id"] = json!("ch");
    s.req(c, json!({"op":11,"d":d}))
}

#[test]
fn a_driver_without_webrtc_answers_offers_1004() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let c = s.user("b");
    let r = join_offer(&mut s, c, json!({"sdp_offer":OFFER}));
    assert_eq!(code(&r), 1004);
    assert_eq!(
        r[0]["d"]["reason"],
        "sdp_offer is not supported by this server"
    );
    assert_eq!(s.gw.endpoints().count(), 0, "nothing is left of the join");
    assert_eq!(s.rec.ended.len(), 1, "the driver forgets what it made");
    assert_eq!(s.gw.session(c).unwrap().joined, 0);
}

#[test]
fn channels_carry_their_codecs_in_lists_infos_and_events() {
    let mut s = Sim::new(Limits::default());
    let a = s.user("a");
    let r = s.req(
        a,
        json!({"op":10,"d":{"channel_id":"o","codec":"opus","video_codec":"H264"}}),
    );
    assert_eq!(
        (r[0]["d"]["codec"].clone(), r[0]["d"]["video_codec"].clone()),
        (json!("opus"), json!("H264"))
    );
    s.req(a, json!({"op":10,"d":{"channel_id":"p"}}));
    let list = s.req(a, json!({"op":15}));
    let chans = list[0]["d"]["channels"].as_array().unwrap();
    let codecs: Vec<(Value, Value)> = chans
        .iter()
        .map(|c| (c["codec"].clone(), c["video_codec"].clone()))
        .collect();
    assert_eq!(
        codecs,
        [
            (json!("opus"), json!("H264")),
            (json!("PCMU"), json!("VP8"))
        ]
    );
    let info = s.req(a, json!({"op":16,"d":{"channel_id":"o"}}));
    assert_eq!(info[0]["d"]["codec"], "opus");
    assert_eq!(info[0]["d"]["video_codec"], "H264");
    s.join(a, "o", 5);
    let r = s.req(a, json!({"op":13,"d":{"channel_id":"o","name":"x"}}));
    assert_eq!(r[0]["d"]["event"], "update");
    assert_eq!(r[0]["d"]["codec"], "opus");
    assert_eq!(r[0]["d"]["video_codec"], "H264");
    for bad in [
        json!({"codec":"PCMA"}),
        json!({"video_codec":"VP9"}),
        json!({"codec":7}),
    ] {
        let mut d = bad.clone();
        d["channel_id"] = json!("q");
        assert_eq!(code(&s.req(a, json!({"op":10,"d":d}))), 1004, "{bad}");
    }
    // A radio in an Opus channel relays with payload type 111.
    let e = s.gw.endpoints().next().unwrap();
    assert_eq!(e.audio_pt, 111);
}

#[test]
fn an_offer_is_answered_in_the_ack_with_the_channel_codecs() {
    let mut s = Sim::new(Limits::default());
    let owner = s.user("owner");
    s.req(
        owner,
        json!({"op":10,"d":{"channel_id":"ch","codec":"opus","video_codec":"H264"}}),
    );
    s.join(owner, "ch", 1);
    s.answers(audio(111, Some(77)), Some(video(102, Some(78))));
    let b = s.user("b");
    let r = s.req(
        b,
        json!({"op":11,"d":{"channel_id":"ch","sdp_offer":OFFER},"id":9}),
    );
    assert_eq!(r.len(), 1, "{r:?}");
    let d = &r[0]["d"];
    assert_eq!(r[0]["id"], 9);
    assert_eq!(d["req_op"], 11);
    assert_eq!(d["sdp_answer"], "v=0\r\na=ice-lite\r\n");
    assert_eq!(d["active_members"], json!(["owner", "b"]));
    assert_eq!(d["media"], json!({"host":"127.0.0.1","port":10000}));
    assert!(d.get("crypto").is_none());
    let (media, chan, sdp) = s.rec.offers.last().unwrap().clone();
    assert_eq!((chan.as_str(), sdp.as_str()), ("ch", OFFER), "unescaped");
    let e = s.gw.endpoints().find(|e| e.conn() == b).unwrap();
    assert_eq!(e.keys.kind(), "webrtc");
    let mut ssrcs = e.ssrcs.clone();
    ssrcs.sort();
    assert_eq!(ssrcs.as_slice(), [77, 78], "the offer's SSRCs are indexed");
    assert_eq!(e.audio_pt, 111);
    assert_eq!(e.latched, None, "no ICE check yet");
    assert_eq!(
        s.gw.relay.media_id(s.gw.relay.find(77).unwrap()),
        Some(media)
    );
    assert_eq!(MediaId::from_u64(media.to_u64()), media);
    // The others hear of the join with the audio SSRC.
    assert_eq!(
        s.take(owner)[0]["d"],
        json!({"event":"join","channel_id":"ch","user_id":"b","ssrc":77})
    );
    // An SSRC given in the JOIN is the audio SSRC.
    s.answers(audio(111, Some(90)), None);
    let c = s.user("c");
    let r = join_offer(&mut s, c, json!({"sdp_offer":OFFER,"ssrc":91}));
    assert_eq!(r[0]["op"], 200);
    let e = s.gw.endpoints().find(|e| e.conn() == c).unwrap();
    assert_eq!(e.ssrcs.as_slice(), [91]);
}

#[test]
fn bad_offers_get_their_codes_and_leave_nothing_behind() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let taken = s.user("taken");
    s.join(taken, "ch", 5);
    let b = s.user("b");
    // A bad escape is a field's value: 1004 before anything else (even 2000).
    let raw = br#"{"op":11,"d":{"channel_id":"nope","sdp_offer":"v=0\q"}}"#;
    assert_eq!(code(&s.send_raw(b, raw)), 1004);
    let raw = br#"{"op":11,"d":{"channel_id":"ch","sdp_offer":"\ud800"}}"#;
    assert_eq!(code(&s.send_raw(b, raw)), 1004);
    assert!(s.rec.offers.is_empty(), "the driver never saw those");
    assert_eq!(
        code(&s.req(
            b,
            json!({"op":11,"d":{"channel_id":"nope","sdp_offer":OFFER}})
        )),
        2000
    );
    for (answer, want, reason) in [
        (OfferError::Malformed("no v= line"), 1004, "no v= line"),
        (
            OfferError::Unacceptable("no DTLS fingerprint"),
            2008,
            "no DTLS fingerprint",
        ),
        (OfferError::Full, 2006, "WebRTC peer limit reached"),
    ] {
        s.rec.negotiation = Some(Err(answer));
        let r = join_offer(&mut s, b, json!({"sdp_offer":OFFER}));
        assert_eq!(code(&r), want, "{answer:?}");
        assert_eq!(r[0]["d"]["reason"], reason);
    }
    // The offer's SSRC, or the JOIN's, belongs to another member: 2007.
    s.answers(audio(0, Some(5)), None);
    assert_eq!(
        code(&join_offer(&mut s, b, json!({"sdp_offer":OFFER}))),
        2007
    );
    s.answers(audio(0, Some(6)), Some(video(96, Some(5))));
    assert_eq!(
        code(&join_offer(&mut s, b, json!({"sdp_offer":OFFER}))),
        2007
    );
    let offers_before = s.rec.offers.len();
    s.answers(audio(0, None), None);
    assert_eq!(
        code(&join_offer(&mut s, b, json!({"sdp_offer":OFFER,"ssrc":5}))),
        2007
    );
    assert_eq!(
        s.rec.offers.len(),
        offers_before,
        "refused before the driver"
    );
    // Each refusal after the driver answered ended what it made; nothing stays.
    let ended: Vec<MediaId> = s.rec.ended.clone();
    let made: Vec<MediaId> = s.rec.offers.iter().map(|o| o.0).collect();
    assert_eq!(ended, made);
    assert_eq!(s.gw.endpoints().count(), 1);
    assert_eq!(s.gw.session(b).unwrap().joined, 0);
    // A good offer then joins, and joining twice is 2003 before the driver is asked.
    s.answers(audio(0, Some(6)), None);
    assert_eq!(
        join_offer(&mut s, b, json!({"sdp_offer":OFFER}))[0]["op"],
        200
    );
    let n = s.rec.offers.len();
    assert_eq!(
        code(&join_offer(&mut s, b, json!({"sdp_offer":OFFER}))),
        2003
    );
    assert_eq!(s.rec.offers.len(), n);
}

#[test]
fn every_way_an_endpoint_goes_tells_the_driver() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let owner = s.gw.endpoints().count(); // nobody joined yet
    assert_eq!(owner, 0);
    let a = s.browser("a", 10, false);
    let b = s.browser("b", 20, false);
    let radio = s.radio("r", 30, Some(SUITE));
    // Leave.
    s.req(a.conn, json!({"op":12,"d":{"channel_id":"ch"}}));
    assert_eq!(s.rec.ended, [a.media]);
    // Disconnect.
    s.gw.close(s.now, b.conn, &mut s.rec);
    assert_eq!(s.rec.ended, [a.media, b.media]);
    // Radios are no driver's business.
    s.gw.close(s.now, radio.conn, &mut s.rec);
    assert_eq!(s.rec.ended.len(), 2);
    // Channel delete.
    let c = s.browser("c", 40, false);
    let owner = s.gw.channels().next().unwrap().creator.clone();
    let oc = (0..64)
        .map(|i| ConnId::new(i, 1))
        .find(|&c| s.gw.user_id(c) == owner.as_str())
        .unwrap();
    s.req(oc, json!({"op":14,"d":{"channel_id":"ch"}}));
    assert_eq!(s.rec.ended, [a.media, b.media, c.media]);
    // Ids of endpoints that went are ignored and counted.
    s.gw.media_checked(s.now, a.media, a.addr);
    s.gw.media_failed(s.now, b.media);
    let (i, o) = (Context::new(SUITE, &key(1)), Context::new(SUITE, &key(2)));
    s.gw.media_keys(s.now, c.media, i, o);
    assert_eq!(s.gw.media_stats().stale_media, 3);
}

#[test]
fn a_keyed_browser_and_a_radio_hear_each_other() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut b = s.browser("b", 10, false);
    let mut r = s.radio("r", 30, Some(SUITE));
    r.latch(&mut s, &mut net);
    assert_eq!(take_floor_of(&mut s, b.conn)[0]["op"], 50);
    let (plain, wire) = b.packet(b.ssrc, 0, 1);
    b.send(&mut s, &mut net, &wire);
    assert_eq!(r.heard(&net), [plain]);
    s.req(b.conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor(&mut s, &r);
    let (plain, wire) = r.packet(2);
    r.send(&mut s, &mut net, &wire);
    // With its MID (id 4, "0"), in its payload type.
    assert_eq!(b.heard(&net), [as_received(&plain, 0, &[(4, b"0")])]);
    assert_eq!(s.gw.media_stats().drops(), 0, "{:?}", s.gw.media_stats());
}

fn copies_to(net: &Net, addr: SocketAddr) -> usize {
    net.sent.iter().filter(|(d, _)| *d == addr).count()
}

fn take_floor_of(s: &mut Sim, c: ConnId) -> Vec<Value> {
    s.take(c);
    s.req(c, json!({"op":30,"d":{"channel_id":"ch"}}))
}

#[test]
fn media_before_keys_from_elsewhere_or_after_failure_is_dropped() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut r = s.radio("r", 30, Some(SUITE));
    r.latch(&mut s, &mut net);
    s.answers(audio(0, Some(10)), None);
    let conn = s.user("b");
    join_offer(&mut s, conn, json!({"sdp_offer":OFFER}));
    let media = s.rec.offers.last().unwrap().0;
    let mut b = Browser {
        conn,
        media,
        addr: "127.0.0.1:30010".parse().unwrap(),
        tx: Context::new(SUITE, &key(0)),
        rx: Context::new(SUITE, &key(0x55)),
        ssrc: 10,
        video_ssrc: 0,
        seq: 1,
        join: Value::Null,
        seed: 0,
    };
    take_floor_of(&mut s, conn);
    // No ICE check, no keys.
    let (_, w) = b.packet(10, 0, 1);
    b.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_unkeyed, 1);
    // Checked, not keyed.
    s.gw.media_checked(s.now, media, b.addr);
    let (_, w) = b.packet(10, 0, 2);
    b.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_unkeyed, 2);
    // Nor does a radio's talk reach it.
    s.req(conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor(&mut s, &r);
    let (_, w) = r.packet(1);
    r.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_unkeyed, 3);
    assert!(net.sent.is_empty());
    // Keyed: from its latched address only.
    let (i, o) = b.server_contexts();
    s.gw.media_keys(s.now, media, i, o);
    let (plain, w) = r.packet(2);
    r.send(&mut s, &mut net, &w);
    assert_eq!(b.heard(&net), [as_received(&plain, 0, &[(4, b"0")])]);
    s.req(r.conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor_of(&mut s, conn);
    let (_, w) = b.packet(10, 0, 3);
    let mut moved = w.clone();
    s.gw.handle_datagram(
        s.now,
        "127.0.0.1:999".parse().unwrap(),
        &mut moved,
        &mut net,
    );
    assert_eq!(
        s.gw.media_stats().drop_unkeyed,
        4,
        "not from the checked address"
    );
    b.send(&mut s, &mut net, &w);
    assert_eq!(copies_to(&net, r.addr), 1);
    // A second key report is the driver's mistake: ignored, counted.
    let (i, o) = b.server_contexts();
    s.gw.media_keys(s.now, media, i, o);
    assert_eq!(s.gw.media_stats().stale_media, 1);
    // Failed: no more media either way; the membership stays.
    s.gw.media_failed(s.now, media);
    let e = s.gw.endpoints().find(|e| e.conn() == conn).unwrap();
    assert_eq!(e.latched, None);
    let (_, w) = b.packet(10, 0, 4);
    b.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_unkeyed, 5);
    assert_eq!(copies_to(&net, r.addr), 1);
    assert_eq!(s.gw.session(conn).unwrap().joined, 1);
    // A check after the failure latches nothing.
    s.gw.media_checked(s.now, media, b.addr);
    let e = s.gw.endpoints().find(|e| e.conn() == conn).unwrap();
    assert_eq!(e.latched, None);
    assert_eq!(s.gw.media_stats().stale_media, 2);
    // Nor does a radio's endpoint answer to an id made up for it.
    let radio_at = s.gw.relay.find(r.ssrc).unwrap();
    let radio_id = s.gw.relay.media_id(radio_at).unwrap();
    s.gw.media_checked(s.now, radio_id, "127.0.0.1:1".parse().unwrap());
    s.gw.media_failed(s.now, radio_id);
    assert_eq!(s.gw.media_stats().stale_media, 4);
    assert_eq!(s.gw.relay.get(radio_at).unwrap().latched, Some(r.addr));
    // Leave and join again: a new endpoint, a new id.
    s.req(conn, json!({"op":12,"d":{"channel_id":"ch"}}));
    s.answers(audio(0, Some(10)), None);
    assert_eq!(
        join_offer(&mut s, conn, json!({"sdp_offer":OFFER}))[0]["op"],
        200
    );
    assert_ne!(s.rec.offers.last().unwrap().0, media);
    s.gw.media_failed(s.now, media);
    assert_eq!(
        s.gw.media_stats().stale_media,
        5,
        "the old id names nothing"
    );
}

#[test]
fn ssrcs_the_offer_did_not_name_are_learned_from_authenticated_rtp() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut r = s.radio("r", 30, Some(SUITE));
    r.latch(&mut s, &mut net);
    // The offer names no SSRC at all.
    s.answers(audio(0, None), None);
    let conn = s.user("b");
    let ack = join_offer(&mut s, conn, json!({"sdp_offer":OFFER}));
    assert_eq!(ack[0]["op"], 200);
    assert!(
        s.take(r.conn)[0]["d"].get("ssrc").is_none(),
        "no SSRC to announce"
    );
    let media = s.rec.offers.last().unwrap().0;
    let mut b = Browser {
        conn,
        media,
        addr: "127.0.0.1:30011".parse().unwrap(),
        tx: Context::new(SUITE, &key(0)),
        rx: Context::new(SUITE, &key(0x55)),
        ssrc: 0xabcd,
        video_ssrc: 0,
        seq: 1,
        join: Value::Null,
        seed: 0,
    };
    s.gw.media_checked(s.now, media, b.addr);
    let (i, o) = b.server_contexts();
    s.gw.media_keys(s.now, media, i, o);
    take_floor_of(&mut s, conn);
    // A forgery from the right address with a wrong key teaches nothing.
    let mut forger = Context::new(SUITE, &key(99));
    let (_, _) = b.packet(0xabcd, 0, 0);
    let mut plain = b.packet(0xabcd, 0, 1).0;
    let n = plain.len();
    plain.resize(n + 10, 0);
    let m = forger.protect_rtp(&mut plain, n).unwrap();
    b.send(&mut s, &mut net, &plain[..m]);
    assert_eq!(s.gw.media_stats().drop_auth, 1);
    assert!(s.gw.relay.find(0xabcd).is_none());
    // A payload type the answer did not give audio teaches nothing either.
    let (_, w) = b.packet(0xabcd, 8, 2);
    b.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_unknown_ssrc, 1);
    // The real thing is learned, indexed and relayed.
    let (p, w) = b.packet(0xabcd, 0, 3);
    b.send(&mut s, &mut net, &w);
    assert_eq!(r.heard(&net), [p], "{:?}", s.gw.media_stats());
    assert_eq!(s.gw.media_stats().ssrcs_learned, 1);
    let at = s.gw.relay.find(0xabcd).unwrap();
    assert_eq!(s.gw.relay.media_id(at), Some(media));
    let e = s.gw.relay.get(at).unwrap();
    assert_eq!(e.webrtc.as_ref().unwrap().audio.ssrc, Some(0xabcd));
    // Learned once: the next packet finds it by SSRC.
    net.sent.clear();
    let (p2, w) = b.packet(0xabcd, 0, 4);
    b.send(&mut s, &mut net, &w);
    assert_eq!(r.heard(&net), [p2]);
    assert_eq!(s.gw.media_stats().ssrcs_learned, 1);
    // A second audio SSRC has no stream left to take: unknown.
    let (_, w) = b.packet(0xabce, 0, 5);
    b.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_unknown_ssrc, 2);
    // The learned SSRC is the member's: another join with it is 2007.
    let c = s.user("c");
    assert_eq!(code(&s.join(c, "ch", 0xabcd)), 2007);
    // Leaving frees it.
    s.req(conn, json!({"op":12,"d":{"channel_id":"ch"}}));
    assert!(s.gw.relay.find(0xabcd).is_none());
    let _ = b.join;
}

#[test]
fn the_holders_video_goes_only_to_members_that_take_video() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut talker = s.browser("talker", 10, true);
    let mut viewer = s.browser("viewer", 20, true);
    let mut audio_only = s.browser("audio", 30, false);
    let mut radio = s.radio("r", 40, Some(SUITE));
    radio.latch(&mut s, &mut net);
    take_floor_of(&mut s, talker.conn);
    let (a, w) = talker.packet(talker.ssrc, 0, 1);
    talker.send(&mut s, &mut net, &w);
    let vs = talker.video_ssrc;
    let (v, w) = talker.packet(vs, 96, 2);
    talker.send(&mut s, &mut net, &w);
    // Its RTX, whose SSRC the offer did not name, is learned by its payload type.
    let (x, w) = talker.packet(0x7777, 97, 3);
    talker.send(&mut s, &mut net, &w);
    // Each with the receiver's MID of its kind: "0" for audio, "1" for video and its RTX.
    let a_heard = as_received(&a, 0, &[(4, b"0")]);
    assert_eq!(
        viewer.heard(&net),
        [
            a_heard.clone(),
            as_received(&v, 96, &[(4, b"1")]),
            as_received(&x, 97, &[(4, b"1")])
        ]
    );
    assert_eq!(audio_only.heard(&net), [a_heard]);
    assert_eq!(radio.heard(&net), [a]);
    let e = s.gw.endpoints().find(|e| e.conn() == talker.conn).unwrap();
    assert_eq!(
        e.webrtc.as_ref().unwrap().video.as_ref().unwrap().rtx_ssrc,
        Some(0x7777)
    );
    assert_eq!(s.gw.media_stats().drops(), 0, "{:?}", s.gw.media_stats());
    // Non-holders' video is gated like their audio.
    let (_, w) = viewer.packet(viewer.video_ssrc, 96, 4);
    viewer.send(&mut s, &mut net, &w);
    assert_eq!(s.gw.media_stats().drop_not_holder, 1);
}

impl Browser {
    /// The SRTCP compounds this client received, decrypted, each as its packets' bytes.
    pub(super) fn rtcp_heard(&mut self, net: &Net) -> Vec<Vec<u8>> {
        net.sent
            .iter()
            .filter(|(d, b)| *d == self.addr && is_rtcp(b))
            .map(|(_, b)| {
                let mut b = b.clone();
                let n = self.rx.unprotect_rtcp(&mut b).unwrap();
                b.truncate(n);
                b
            })
            .collect()
    }

    /// Sends `compound` (plain RTCP) protected.
    pub(super) fn send_rtcp(&mut self, s: &mut Sim, net: &mut Net, compound: &[u8]) {
        let mut b = compound.to_vec();
        b.resize(compound.len() + 14, 0);
        let n = self.tx.protect_rtcp(&mut b, compound.len()).unwrap();
        s.gw.handle_datagram(s.now, self.addr, &mut b[..n], net);
    }
}

/// The feedback messages of a compound: (packet type, FMT, sender SSRC, media SSRC, FCI).
fn feedback_in(compound: &[u8]) -> Vec<(u8, u8, u32, u32, Vec<u8>)> {
    crate::wire::rtcp::Compound::new(compound)
        .map(|p| p.unwrap().raw())
        .filter(|r| r.packet_type() == 205 || r.packet_type() == 206)
        .map(|r| {
            let b = r.as_bytes();
            let word = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
            (
                r.packet_type(),
                r.count(),
                word(4),
                word(8),
                b[12..].to_vec(),
            )
        })
        .collect()
}

/// The compound's packet types in order.
fn packet_types(compound: &[u8]) -> Vec<u8> {
    crate::wire::rtcp::Compound::new(compound)
        .map(|p| p.unwrap().raw().packet_type())
        .collect()
}

#[test]
fn payload_types_and_audio_levels_are_each_receivers() {
    let mut s = Sim::new(Limits::default());
    let owner = s.user("owner");
    s.req(
        owner,
        json!({"op":10,"d":{"channel_id":"ch","codec":"opus"}}),
    );
    let mut net = Net::default();
    // Two browsers that gave Opus different payload types and extension IDs.
    s.answers(audio(109, Some(10)), None);
    let a_conn = s.user("a");
    join_offer(&mut s, a_conn, json!({"sdp_offer":OFFER}));
    let a_media = s.rec.offers.last().unwrap().0;
    let mut b_track = audio(111, Some(20));
    b_track.ext_mid = Some(9);
    b_track.ext_audio_level = Some(12);
    b_track.mid = heapless::String::try_from("audio").unwrap();
    s.answers(b_track, None);
    let b_conn = s.user("b");
    join_offer(&mut s, b_conn, json!({"sdp_offer":OFFER}));
    let b_media = s.rec.offers.last().unwrap().0;
    let mut a = Browser {
        conn: a_conn,
        media: a_media,
        addr: "127.0.0.1:31010".parse().unwrap(),
        tx: Context::new(SUITE, &key(1)),
        rx: Context::new(SUITE, &key(1 ^ 0x55)),
        ssrc: 10,
        video_ssrc: 0,
        seq: 1,
        join: Value::Null,
        seed: 1,
    };
    let mut b = Browser {
        conn: b_conn,
        media: b_media,
        addr: "127.0.0.1:31020".parse().unwrap(),
        tx: Context::new(SUITE, &key(2)),
        rx: Context::new(SUITE, &key(2 ^ 0x55)),
        ssrc: 20,
        video_ssrc: 0,
        seq: 1,
        join: Value::Null,
        seed: 2,
    };
    for x in [&mut a, &mut b] {
        s.gw.media_checked(s.now, x.media, x.addr);
        let (i, o) = x.server_contexts();
        s.gw.media_keys(s.now, x.media, i, o);
    }
    let mut radio = s.radio("r", 30, Some(SUITE));
    radio.latch(&mut s, &mut net);
    // a talks with its MID and audio level (IDs 4 and 1, one-byte form) and pt 109.
    take_floor_of(&mut s, a.conn);
    let ext = [0x10, 0xa5, 0x40, b'0'];
    let h = Header {
        marker: true,
        payload_type: 109,
        seq_number: 7,
        timestamp: 960,
        ssrc: 10,
        csrcs: &[],
        extension: Some(crate::wire::rtp::Extension {
            profile: 0xBEDE,
            data: &ext,
        }),
    };
    let mut buf = vec![0u8; 200];
    let n = h.emit_packet(b"opus frame", 0, &mut buf).unwrap();
    let sent = buf[..n].to_vec();
    let m = a.tx.protect_rtp(&mut buf, n).unwrap();
    a.send(&mut s, &mut net, &buf[..m]);
    // b: pt 111, its MID "audio" under id 9 and the level under id 12 (two-byte form:
    // id 12 fits one byte, but each receiver's form follows its IDs and lengths).
    let got = b.heard(&net);
    let p = crate::wire::rtp::Packet::new_checked(&got[0][..]).unwrap();
    assert_eq!(p.payload_type(), 111);
    assert_eq!(p.payload(), b"opus frame");
    assert_eq!((p.seq_number(), p.timestamp(), p.ssrc()), (7, 960, 10));
    assert_eq!(
        got,
        [as_received(&sent, 111, &[(9, b"audio"), (12, &[0xa5])])]
    );
    // The radio: pt 111 (the channel's Opus), no extension.
    assert_eq!(radio.heard(&net), [as_received(&sent, 111, &[])]);
    // A radio's packet (pt 111, no level) reaches a with pt 109 and its MID only.
    s.req(a.conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor(&mut s, &radio);
    net.sent.clear();
    let h = Header {
        marker: false,
        payload_type: 111,
        seq_number: 1,
        timestamp: 0,
        ssrc: 30,
        csrcs: &[],
        extension: None,
    };
    let n = h.emit_packet(b"radio", 0, &mut buf).unwrap();
    let sent = buf[..n].to_vec();
    let m = radio.tx.as_mut().unwrap().protect_rtp(&mut buf, n).unwrap();
    radio.send(&mut s, &mut net, &buf[..m]);
    assert_eq!(a.heard(&net), [as_received(&sent, 109, &[(4, b"0")])]);
    assert_eq!(b.heard(&net), [as_received(&sent, 111, &[(9, b"audio")])]);
    // A two-byte extension from a sender is read too: b talks, with its level under id 12
    // in the two-byte form; a (level id 1) gets it in its one-byte form.
    s.req(radio.conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor_of(&mut s, b.conn);
    net.sent.clear();
    let ext = [12, 1, 0x7f, 0];
    let h = Header {
        marker: false,
        payload_type: 111,
        seq_number: 3,
        timestamp: 0,
        ssrc: 20,
        csrcs: &[],
        extension: Some(crate::wire::rtp::Extension {
            profile: 0x1000,
            data: &ext,
        }),
    };
    let n = h.emit_packet(b"two", 0, &mut buf).unwrap();
    let sent = buf[..n].to_vec();
    let m = b.tx.protect_rtp(&mut buf, n).unwrap();
    b.send(&mut s, &mut net, &buf[..m]);
    assert_eq!(
        a.heard(&net),
        [as_received(&sent, 109, &[(4, b"0"), (1, &[0x7f])])]
    );
    assert_eq!(s.gw.media_stats().drops(), 0, "{:?}", s.gw.media_stats());
}

#[test]
fn a_copy_that_would_outgrow_a_datagram_is_a_counted_drop() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut b = s.browser("b", 10, false);
    let mut r = s.radio("r", 30, Some(SUITE));
    r.latch(&mut s, &mut net);
    take_floor(&mut s, &r);
    // The largest packet a radio can send: its copy for b gains an 8-byte extension.
    let h = Header {
        marker: false,
        payload_type: 0,
        seq_number: 1,
        timestamp: 0,
        ssrc: 30,
        csrcs: &[],
        extension: None,
    };
    let mut buf = vec![0u8; 1600];
    let n = h.emit_packet(&[7u8; 1500 - 12 - 10], 0, &mut buf).unwrap();
    let m = r.tx.as_mut().unwrap().protect_rtp(&mut buf, n).unwrap();
    assert_eq!(m, 1500);
    r.send(&mut s, &mut net, &buf[..m]);
    assert!(b.heard(&net).is_empty());
    assert_eq!(s.gw.media_stats().drop_buffer, 1);
    // Payloads 8 bytes smaller still go, at most MAX_DATAGRAM long.
    let h = Header { seq_number: 2, ..h };
    let n = h
        .emit_packet(&[7u8; 1500 - 12 - 10 - 8], 0, &mut buf)
        .unwrap();
    let m = r.tx.as_mut().unwrap().protect_rtp(&mut buf, n).unwrap();
    r.send(&mut s, &mut net, &buf[..m]);
    assert_eq!(b.heard(&net).len(), 1);
    assert!(
        net.sent
            .iter()
            .all(|(_, d)| d.len() <= crate::config::MAX_DATAGRAM)
    );
}

#[test]
fn viewers_feedback_goes_to_the_sender_of_the_video_it_names() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut talker = s.browser("talker", 10, true);
    let mut viewer = s.browser("viewer", 20, true);
    let mut radio = s.radio("r", 40, Some(SUITE));
    radio.latch(&mut s, &mut net);
    // No floor needed for feedback; the viewer's RR, its PLI, a NACK and a FIR in one.
    let vs = talker.video_ssrc;
    let mut c = vec![0x80, 201, 0, 1, 0, 0, 0, 20];
    c.extend([0x81, 206, 0, 2, 0, 0, 0, 20]);
    c.extend(vs.to_be_bytes());
    c.extend([0x81, 205, 0, 3, 0, 0, 0, 20]);
    c.extend(vs.to_be_bytes());
    c.extend([0, 9, 0, 1]);
    c.extend([0x84, 206, 0, 4, 0, 0, 0, 20, 0, 0, 0, 0]);
    c.extend(vs.to_be_bytes());
    c.extend([77, 0, 0, 0]);
    viewer.send_rtcp(&mut s, &mut net, &c);
    let got = talker.rtcp_heard(&net);
    assert_eq!(got.len(), 3, "one compound per feedback message");
    let server = u32::from_be_bytes(got[0][4..8].try_into().unwrap());
    assert!(
        server != 0 && server != 20 && server != vs,
        "the server's own SSRC"
    );
    for g in &got {
        assert_eq!(
            packet_types(g)[..2],
            [201, 202],
            "led by an empty RR and an SDES"
        );
        assert_eq!(g[0] & 0x1f, 0, "the RR has no report blocks");
    }
    let fb: Vec<_> = got.iter().flat_map(|g| feedback_in(g)).collect();
    assert_eq!(
        fb,
        [
            (206, 1, server, vs, vec![]),
            (205, 1, server, vs, vec![0, 9, 0, 1]),
            (
                206,
                4,
                server,
                0,
                [vs.to_be_bytes().to_vec(), vec![1, 0, 0, 0]].concat()
            ),
        ]
    );
    assert_eq!(s.gw.media_stats().feedback_forwarded, 3);
    // The viewer's receiver report went nowhere; nothing reached the radio or the viewer.
    assert!(radio.heard(&net).is_empty());
    assert!(viewer.rtcp_heard(&net).is_empty());
    // A second FIR counts on for the same requester (the server's SSRC).
    net.sent.clear();
    let mut fir = vec![0x84, 206, 0, 4, 0, 0, 0, 20, 0, 0, 0, 0];
    fir.extend(vs.to_be_bytes());
    fir.extend([78, 0, 0, 0]);
    viewer.send_rtcp(&mut s, &mut net, &fir);
    let got = talker.rtcp_heard(&net);
    assert_eq!(feedback_in(&got[0])[0].4[4], 2);
    // Feedback about audio, an unknown SSRC, the viewer's own video, or a radio's audio is
    // not forwarded.
    net.sent.clear();
    for media in [talker.ssrc, 0xdead, viewer.video_ssrc, 40] {
        let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 20];
        pli.extend(media.to_be_bytes());
        viewer.send_rtcp(&mut s, &mut net, &pli);
    }
    assert!(net.sent.is_empty());
    assert_eq!(s.gw.media_stats().feedback_dropped, 4);
    // A member of another channel cannot ask this channel's talker for anything.
    let owner = s.user("other-owner");
    s.req(owner, json!({"op":10,"d":{"channel_id":"other"}}));
    s.answers(audio(0, Some(50)), Some(video(96, Some(1050))));
    let o_conn = s.user("o");
    let r = s.req(
        o_conn,
        json!({"op":11,"d":{"channel_id":"other","sdp_offer":OFFER}}),
    );
    assert_eq!(r[0]["op"], 200);
    let mut o = Browser {
        conn: o_conn,
        media: s.rec.offers.last().unwrap().0,
        addr: "127.0.0.1:31050".parse().unwrap(),
        tx: Context::new(SUITE, &key(50)),
        rx: Context::new(SUITE, &key(50 ^ 0x55)),
        ssrc: 50,
        video_ssrc: 1050,
        seq: 1,
        join: Value::Null,
        seed: 50,
    };
    s.gw.media_checked(s.now, o.media, o.addr);
    let (i, out) = o.server_contexts();
    s.gw.media_keys(s.now, o.media, i, out);
    let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 50];
    pli.extend(vs.to_be_bytes());
    o.send_rtcp(&mut s, &mut net, &pli);
    assert!(net.sent.is_empty());
    assert_eq!(s.gw.media_stats().feedback_dropped, 5);
    let _ = (&talker.join, viewer.conn);
}

#[test]
fn each_floor_grant_asks_the_new_holder_for_a_key_frame() {
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let mut net = Net::default();
    let mut talker = s.browser("talker", 10, true);
    let mut viewer = s.browser("viewer", 20, true);
    assert_eq!(take_floor_of(&mut s, talker.conn)[0]["op"], 50);
    assert!(net.sent.is_empty(), "sent with the holder's next packet");
    let vs = talker.video_ssrc;
    let (_, w) = talker.packet(vs, 96, 1);
    talker.send(&mut s, &mut net, &w);
    let got = talker.rtcp_heard(&net);
    assert_eq!(got.len(), 1);
    let server = u32::from_be_bytes(got[0][4..8].try_into().unwrap());
    assert_eq!(feedback_in(&got[0]), [(206, 1, server, vs, vec![])]);
    assert_eq!(s.gw.media_stats().plis_sent, 1);
    // Once per grant.
    let (_, w) = talker.packet(vs, 96, 2);
    talker.send(&mut s, &mut net, &w);
    assert_eq!(
        net.sent
            .iter()
            .filter(|(d, b)| *d == talker.addr && is_rtcp(b))
            .count(),
        1
    );
    assert_eq!(viewer.heard(&net).len(), 2);
    // The next grant asks again; a holder's RTCP is a packet too.
    s.req(talker.conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor_of(&mut s, viewer.conn);
    s.req(viewer.conn, json!({"op":31,"d":{"channel_id":"ch"}}));
    take_floor_of(&mut s, talker.conn);
    net.sent.clear();
    talker.send_rtcp(&mut s, &mut net, &[0x80, 201, 0, 1, 0, 0, 0, 10]);
    assert_eq!(talker.rtcp_heard(&net).len(), 1);
    assert_eq!(
        s.gw.media_stats().plis_sent,
        2,
        "the viewer's grant passed before it sent anything: it owes nothing now"
    );
    // Nor does its RTCP, now it does not hold the floor, fetch it a PLI.
    net.sent.clear();
    viewer.send_rtcp(&mut s, &mut net, &[0x80, 201, 0, 1, 0, 0, 0, 20]);
    assert!(net.sent.is_empty());
    // A viewer keyed mid-talk makes the holder owe a key frame too.
    let late = s.browser("late", 30, true);
    net.sent.clear();
    let (_, w) = talker.packet(vs, 96, 3);
    talker.send(&mut s, &mut net, &w);
    assert_eq!(talker.rtcp_heard(&net).len(), 1);
    assert_eq!(s.gw.media_stats().plis_sent, 3);
    // Radios and browsers without video owe nothing.
    let _ = late;
}

#[test]
fn the_largest_answer_fits_the_ack_beside_a_member_list_cut_to_fit() {
    use crate::config::{MAX_OUTBOUND_FRAME, MAX_SDP_ANSWER};
    let limits = Limits {
        max_sessions: 600,
        max_members: 600,
        max_peers: 600,
        ..Limits::default()
    };
    let mut s = Sim::new(limits);
    channel(&mut s);
    // 480 members with 32-byte user_ids: 16.8 KB of names, more than the answer leaves.
    for i in 0..480 {
        let c = s.user(&format!("{i:0>32}"));
        assert_eq!(s.join(c, "ch", 1000 + i)[0]["op"], 200);
    }
    // An answer of exactly the limit once escaped: 2-byte CRLF escapes and a quote.
    let line = "a=x:\"0123456789\"\r\n"; // 18 bytes, 22 escaped
    let mut answer = line.repeat(MAX_SDP_ANSWER / 22);
    answer.push_str(&"y".repeat(MAX_SDP_ANSWER % 22));
    s.rec.negotiation = Some(Ok(Negotiation {
        answer: answer.clone(),
        audio: audio(0, Some(1)),
        video: None,
    }));
    let b = s.user("b");
    s.send(
        b,
        json!({"op":11,"d":{"channel_id":"ch","sdp_offer":OFFER}}),
    );
    let raw = serde_json::to_vec(&s.rec.frames[&b][0]).unwrap();
    let ack = s.take(b);
    assert_eq!(ack[0]["op"], 200, "{:?}", s.gw.stats());
    assert_eq!(ack[0]["d"]["sdp_answer"], answer.as_str());
    assert_eq!(ack[0]["d"]["truncated"], true);
    let names = ack[0]["d"]["active_members"].as_array().unwrap().len();
    assert!(names > 300 && names < 481, "{names} members listed");
    assert!(raw.len() <= MAX_OUTBOUND_FRAME);
    assert_eq!(s.gw.stats().encode_failures, 0);
    // One byte more is the driver's bug: 9000, and nothing is left of the join.
    answer.push('y');
    s.rec.negotiation = Some(Ok(Negotiation {
        answer,
        audio: audio(0, Some(2)),
        video: None,
    }));
    let c = s.user("c");
    let r = join_offer(&mut s, c, json!({"sdp_offer":OFFER}));
    assert_eq!(code(&r), 9000);
    assert_eq!(r[0]["d"]["reason"], "SDP answer too long");
    assert_eq!(s.rec.ended.last(), Some(&s.rec.offers.last().unwrap().0));
    assert!(s.gw.relay.find(2).is_none());
    assert_eq!(s.gw.session(c).unwrap().joined, 0);
}

#[test]
fn a_media_trace_event_names_the_endpoints_channel_and_user_until_it_is_gone() {
    use crate::trace::{Detail, Kind};
    let mut s = Sim::new(Limits::default());
    channel(&mut s);
    let b = s.browser("b", 10, false);
    let done = Detail::Dtls {
        result: "done",
        reason: None,
    };
    let mut seen = Vec::new();
    s.gw.media_trace(b.media, "dtls", done, |ev| {
        seen.push((
            ev.kind,
            ev.event,
            ev.channel_id.map(str::to_owned),
            ev.user_id.map(str::to_owned),
            ev.detail,
        ));
    });
    assert_eq!(
        seen,
        [(
            Kind::Media,
            "dtls",
            Some("ch".to_owned()),
            Some("b".to_owned()),
            done
        )]
    );
    // Once the member has left, its id names nothing: no event.
    s.req(b.conn, json!({"op":12,"d":{"channel_id":"ch"}}));
    let mut after = 0;
    s.gw.media_trace(b.media, "dtls", done, |_| after += 1);
    assert_eq!(after, 0);
}
