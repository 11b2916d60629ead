//! RFC 7983 demux and the relay's datagram handling with a populated state: a channel with
//! SRTP, plain and WebRTC members (the last with audio and video, keyed as DTLS would), a
//! floor holder, latched listeners. Datagrams are raw bytes or packets built for a member
//! (protected with its real key, with any RFC 8285 header extension), possibly tampered
//! with or replayed, from its own or a forger's address, RTCP with feedback naming any
//! member's stream, with floor changes and time in between. No panic; nothing is ever sent
//! to the forger; a tampered or replayed packet is never relayed; RTCP makes the server send
//! only RTCP, and only to WebRTC members.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use livechat_core::gateway::{ConnId, Frame, Gateway, PeerInfo, Track, VideoTrack};
use livechat_core::srtp::{Context, MasterKey, Suite};
use livechat_core::time::{Duration, Instant, Now};
use livechat_core::testing::Negotiation;
use livechat_core::wire::rtp::{Extension, Header};
use livechat_fuzz::{Recorder, RecordingTransmit, recorder, recycle, small_gateway, token};
use serde_json::json;

#[derive(Arbitrary, Debug)]
enum Action<'a> {
    Raw {
        from_forger: bool,
        bytes: &'a [u8],
    },
    Rtp {
        member: u8,
        seq: u16,
        payload_len: u8,
        tamper: Option<(u16, u8)>,
        forger: bool,
        /// A header extension: two-byte form or one-byte, and its data.
        ext: Option<(bool, &'a [u8])>,
        /// The WebRTC member's video stream instead of its audio.
        video: bool,
    },
    Rtcp {
        member: u8,
        tamper: Option<(u16, u8)>,
        /// A feedback message after the report: FMT and packet type choice, the member
        /// whose stream it names, and whether that is its video.
        feedback: Option<(u8, u8, bool)>,
    },
    Replay,
    Floor {
        member: u8,
        release: bool,
    },
    Advance {
        ms: u16,
    },
}

struct Member {
    conn: ConnId,
    ssrc: u32,
    addr: SocketAddr,
    tx: Option<Context>,
}

/// The WebRTC member's video SSRC, and its audio and video payload types.
const VIDEO_SSRC: u32 = 203;
const WEBRTC: usize = 3;

fn track(pt: u8, mid: &str, ssrc: Option<u32>) -> Track {
    Track {
        pt,
        mid: heapless::String::try_from(mid).unwrap_or_default(),
        ext_mid: Some(1),
        ext_audio_level: Some(2),
        ssrc,
        send: true,
        recv: true,
    }
}

const FORGER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 66)), 6666);

fn key(i: u8) -> MasterKey {
    MasterKey::aes_cm([i; 16], [i ^ 0x5a; 14])
}

fn setup(
    gw: &mut Gateway<'_>,
    rec: &mut Recorder,
    net: &mut RecordingTransmit,
    now: Now,
) -> Vec<Member> {
    let mut members = Vec::new();
    let peer = PeerInfo {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls: false,
    };
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        let conn = gw.open(now, peer, rec).expect("room");
        let send = |gw: &mut Gateway<'_>, rec: &mut Recorder, v: serde_json::Value| {
            let s = v.to_string();
            gw.handle_frame(now, conn, Frame::Text(s.as_bytes()), rec);
        };
        send(
            gw,
            rec,
            json!({"op":3,"d":{"user_id":name,"token":token(name)}}),
        );
        if i == 0 {
            send(gw, rec, json!({"op":10,"d":{"channel_id":"x"}}));
        }
        let srtp = i < 2;
        let ssrc = 100 + i as u32;
        let mut d = json!({"channel_id":"x","ssrc":ssrc});
        if i == WEBRTC {
            rec.negotiation = Some(Ok(Negotiation {
                answer: "v=0\r\n".into(),
                audio: track(0, "0", None),
                video: Some(VideoTrack {
                    track: track(96, "1", Some(VIDEO_SSRC)),
                    rtx_pt: Some(97),
                    rtx_ssrc: None,
                    nack: true,
                    pli: true,
                    fir: true,
                }),
            }));
            d["sdp_offer"] = json!("v=0\r\n");
        }
        if srtp {
            let mut b = [0u8; 40];
            d["crypto"] =
                json!({"suite":"AES_CM_128_HMAC_SHA1_80","key":key(i as u8).to_sdes(&mut b)});
        }
        send(gw, rec, json!({"op":11,"d":d}));
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 20000 + i as u16);
        let keyed = srtp || i == WEBRTC;
        let tx = keyed.then(|| Context::new(Suite::AesCm128HmacSha1_80, &key(i as u8)));
        if i == WEBRTC {
            let media = rec.offers.last().expect("the offer was negotiated").0;
            gw.media_checked(now, media, addr);
            let inbound = Context::new(Suite::AesCm128HmacSha1_80, &key(i as u8));
            let outbound = Context::new(Suite::AesCm128HmacSha1_80, &key(i as u8 ^ 0x33));
            gw.media_keys(now, media, inbound, outbound);
        }
        members.push(Member {
            conn,
            ssrc,
            addr,
            tx,
        });
    }
    // Everyone latches with a receiver report; "a" takes the floor.
    for m in members.iter_mut() {
        let mut buf = [0u8; 64];
        let n = livechat_core::wire::rtcp::emit_receiver_report(m.ssrc, &[], &mut buf).unwrap();
        let n = match &mut m.tx {
            Some(ctx) => ctx.protect_rtcp(&mut buf, n).unwrap(),
            None => n,
        };
        gw.handle_datagram(now, m.addr, &mut buf[..n], net);
    }
    let s = json!({"op":30,"d":{"channel_id":"x"}}).to_string();
    gw.handle_frame(now, members[0].conn, Frame::Text(s.as_bytes()), rec);
    assert_eq!(gw.endpoints().filter(|p| p.latched.is_some()).count(), 4);
    members
}

fuzz_target!(|actions: Vec<Action<'_>>| {
    let mut gw = small_gateway();
    let mut rec = recorder();
    let mut net = RecordingTransmit::default();
    let mut now = Now::new(Instant::from_millis(1), 1_700_000_000_000);
    let mut members = setup(&mut gw, &mut rec, &mut net, now);
    let mut last: Option<(SocketAddr, Vec<u8>)> = None;
    for a in actions.iter().take(128) {
        let before = net.sent.len();
        let mut must_not_relay = false;
        match a {
            Action::Raw { from_forger, bytes } => {
                let src = if *from_forger {
                    FORGER
                } else {
                    members[0].addr
                };
                let mut b = bytes.to_vec();
                gw.handle_datagram(now, src, &mut b, &mut net);
            }
            Action::Rtp {
                member,
                seq,
                payload_len,
                tamper,
                forger,
                ext,
                video,
            } => {
                let i = usize::from(*member) % 4;
                let m = &mut members[i];
                let (ssrc, pt) = if *video && i == WEBRTC {
                    (VIDEO_SSRC, 96)
                } else {
                    (m.ssrc, 0)
                };
                let extension = ext.map(|(two, data)| Extension {
                    profile: if two { 0x1000 } else { 0xBEDE },
                    data: &data[..data.len().min(64) / 4 * 4],
                });
                let h = Header {
                    marker: false,
                    payload_type: pt,
                    seq_number: *seq,
                    timestamp: u32::from(*seq) * 160,
                    ssrc,
                    csrcs: &[],
                    extension,
                };
                let mut buf = vec![0u8; 400];
                let n = h
                    .emit_packet(&vec![1; usize::from(*payload_len)], 0, &mut buf)
                    .unwrap();
                if *forger && m.tx.is_none() {
                    // Plain RTP from a loopback forger on the member's IP cannot be told
                    // apart (that is the policy's point); only SRTP forgeries are checked.
                    continue;
                }
                // A forger does not have the member's key.
                let mut wrong = Context::new(Suite::AesCm128HmacSha1_80, &key(99));
                let ctx = if *forger {
                    Some(&mut wrong)
                } else {
                    m.tx.as_mut()
                };
                let n = match ctx {
                    Some(ctx) => match ctx.protect_rtp(&mut buf, n) {
                        Ok(n) => n,
                        Err(_) => continue,
                    },
                    None => n,
                };
                buf.truncate(n);
                if let Some((at, x)) = tamper
                    && *x != 0
                    && m.tx.is_some()
                {
                    let i = usize::from(*at) % buf.len();
                    buf[i] ^= x;
                    must_not_relay = true;
                }
                must_not_relay |= *forger;
                let src = if *forger { FORGER } else { m.addr };
                let ssrc = m.ssrc;
                let accepted = |gw: &Gateway<'_>| {
                    gw.endpoints()
                        .find(|p| p.ssrc() == ssrc)
                        .map_or(0, |p| p.stats.packets_in)
                };
                let was = accepted(&gw);
                let sent = buf.clone();
                gw.handle_datagram(now, src, &mut buf, &mut net);
                if accepted(&gw) > was {
                    last = Some((src, sent));
                }
            }
            Action::Rtcp {
                member,
                tamper,
                feedback,
            } => {
                let named = feedback.map(|(kind, whom, video)| {
                    let i = usize::from(whom) % 4;
                    let ssrc = if video && i == WEBRTC {
                        VIDEO_SSRC
                    } else {
                        members[i].ssrc
                    };
                    (kind, ssrc)
                });
                let m = &mut members[usize::from(*member) % 4];
                let mut buf = [0u8; 96];
                let mut n =
                    livechat_core::wire::rtcp::emit_receiver_report(m.ssrc, &[], &mut buf).unwrap();
                if let Some((kind, media)) = named {
                    // PLI, NACK, FIR, or another FMT of either feedback type.
                    let (pt, fmt) = match kind % 4 {
                        0 => (206, 1),
                        1 => (205, 1),
                        2 => (206, 4),
                        _ => (205 + (kind >> 7), kind & 0x1f),
                    };
                    let fb = [
                        [0x80 | fmt, pt, 0, 4],
                        m.ssrc.to_be_bytes(),
                        if fmt == 4 && pt == 206 { [0; 4] } else { media.to_be_bytes() },
                        media.to_be_bytes(),
                        [kind, 0, 0, 1],
                    ];
                    for w in fb {
                        buf[n..n + 4].copy_from_slice(&w);
                        n += 4;
                    }
                }
                let n = match &mut m.tx {
                    Some(ctx) => ctx.protect_rtcp(&mut buf, n).unwrap(),
                    None => n,
                };
                if let Some((at, x)) = tamper {
                    buf[usize::from(*at) % n] ^= x;
                }
                gw.handle_datagram(now, m.addr, &mut buf[..n], &mut net);
                let webrtc = members[WEBRTC].addr;
                for (to, d) in &net.sent[before..] {
                    assert!(
                        *to == webrtc && (192..=223).contains(&d[1]),
                        "RTCP made the server send RTP, or RTCP to a radio: {a:?}"
                    );
                }
            }
            Action::Replay => {
                if let Some((src, b)) = &last {
                    let mut b = b.clone();
                    let srtp_src = members.iter().any(|m| m.addr == *src && m.tx.is_some());
                    gw.handle_datagram(now, *src, &mut b, &mut net);
                    must_not_relay = srtp_src;
                }
            }
            Action::Floor { member, release } => {
                let m = &members[usize::from(*member) % 4];
                let op = if *release { 31 } else { 30 };
                let s = json!({"op":op,"d":{"channel_id":"x"}}).to_string();
                gw.handle_frame(now, m.conn, Frame::Text(s.as_bytes()), &mut rec);
            }
            Action::Advance { ms } => {
                now.mono = now.mono + Duration::from_millis(u64::from(*ms));
                now.unix_ms += u64::from(*ms);
                gw.handle_timeout(now, &mut rec);
                // Keep the sessions alive: they are not what this target is about.
                for m in &members {
                    gw.handle_frame(now, m.conn, Frame::Ping, &mut rec);
                }
            }
        }
        assert!(!net.sent_to(FORGER), "the forger received media");
        if must_not_relay {
            assert_eq!(
                net.sent.len(),
                before,
                "a tampered, replayed or RTCP packet was relayed: {a:?}"
            );
        }
        if net.sent.len() > 10_000 {
            net.sent.clear();
        }
    }
    let _ = &mut members;
    recycle(gw);
});
