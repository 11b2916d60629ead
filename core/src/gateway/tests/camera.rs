//! Cameras in virtual time (PROTOCOL.md section 7): the channel a camera makes, the camera
//! as a member, its frames packetized for WebRTC viewers, the kept key frame for late
//! viewers and for their PLI and FIR, and reconnects that viewers do not notice.

use serde_json::json;

use super::relay::key;
use super::webrtc::Browser;
use super::{Sim, code};
use crate::config::{CAMERA_RTP_PAYLOAD, Limits, MAX_PARAMETER_SET};
use crate::gateway::CameraError;
use crate::relay::camera::{CameraFrame, CameraStorage, FrameError, FrameOutcome, ViewerSeq};
use crate::srtp::{Context, Suite};
use crate::testing::RecordingTransmit as Net;
use crate::wire::rtp;

fn storage(key_frame: usize) -> CameraStorage<'static> {
    CameraStorage {
        key_frame: Vec::leak(vec![0u8; 2 * MAX_PARAMETER_SET + key_frame]),
        viewers: Vec::leak(vec![ViewerSeq::default(); 64]),
    }
}

fn add(s: &mut Sim, id: &str, channel: &str) -> Result<usize, CameraError> {
    s.gw.add_camera(s.now, id, channel, storage(64 * 1024), &mut s.rec)
}

fn au(nals: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&(n.len() as u32).to_be_bytes());
        v.extend_from_slice(n);
    }
    v
}

/// A key frame: SPS, PPS and an IDR slice that needs FU-A.
fn key_frame() -> Vec<u8> {
    let mut idr = vec![0x65u8];
    idr.extend((0..3000u32).map(|i| i as u8));
    au(&[&[0x67, 0x42, 0xc0, 0x1e], &[0x68, 0xce, 0x3c, 0x80], &idr])
}

fn p_frame(n: u8) -> Vec<u8> {
    au(&[&[0x41, n, n, n]])
}

fn frame(au: &[u8], timestamp: u64, session: u32) -> CameraFrame<'_> {
    CameraFrame {
        au,
        timestamp,
        session,
    }
}

/// Everything a viewer received so far, decrypted with a fresh receive context (as
/// DTLS-SRTP keyed it), so it can be read again after more arrived.
fn packets(b: &mut Browser, net: &Net) -> Vec<Vec<u8>> {
    b.rx = Context::new(Suite::AesCm128HmacSha1_80, &key(b.seed ^ 0x55));
    b.heard(net)
}

fn nal_types(ps: &[Vec<u8>]) -> Vec<u8> {
    ps.iter()
        .map(|p| {
            let p = rtp::Packet::new_checked(&p[..]).unwrap();
            let b = p.payload();
            if b[0] & 0x1f == 28 {
                b[1] & 0x1f
            } else {
                b[0] & 0x1f
            }
        })
        .collect()
}

#[test]
fn a_camera_makes_its_channel_and_is_a_member_of_it() {
    let mut s = Sim::new(Limits::default());
    assert_eq!(add(&mut s, "gate", "yard"), Ok(0));
    assert_eq!(
        add(&mut s, "bay", "yard"),
        Ok(1),
        "two cameras, one channel"
    );
    assert_eq!(add(&mut s, "gate", "other"), Err(CameraError::Duplicate));
    assert_eq!(add(&mut s, "bad id", "x"), Err(CameraError::BadId));
    assert_eq!(add(&mut s, "ok", ""), Err(CameraError::BadChannel));
    let a = s.user("alice");
    s.req(a, json!({"op":10,"d":{"channel_id":"vp8"}}));
    assert_eq!(add(&mut s, "cam3", "vp8"), Err(CameraError::NotH264));
    let info = s.req(a, json!({"op":16,"d":{"channel_id":"yard"}}));
    let d = &info[0]["d"];
    assert_eq!(
        (
            d["codec"].clone(),
            d["video_codec"].clone(),
            d["creator"].clone()
        ),
        (json!("PCMU"), json!("H264"), json!("gate"))
    );
    assert_eq!(d["members"], json!(["gate", "bay"]));
    assert_eq!(d["member_count"], 2);
    s.join(a, "yard", 5);
    let r = s.req(a, json!({"op":16,"d":{"channel_id":"yard"}}));
    assert_eq!(r[0]["d"]["members"], json!(["alice", "gate", "bay"]));
    let list = s.req(a, json!({"op":15}));
    let yard = list[0]["d"]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_id"] == "yard")
        .unwrap()
        .clone();
    assert_eq!(yard["member_count"], 3);
    // The camera's id is taken: IDENTIFY with it is 1002.
    let c = s.connect();
    let token = s.token("gate", 0);
    let r = s.req(c, json!({"op":3,"d":{"user_id":"gate","token":token}}));
    assert_eq!(code(&r), 1002);
    // Only its creator (the camera) may delete it; nobody identifies as the camera.
    assert_eq!(
        code(&s.req(a, json!({"op":14,"d":{"channel_id":"yard"}}))),
        2002
    );
}

#[test]
fn a_late_viewer_gets_the_kept_key_frame_before_its_first_live_frame() {
    let mut s = Sim::new(Limits::default());
    add(&mut s, "gate", "ch").unwrap();
    let mut net = Net::default();
    let key = key_frame();
    assert_eq!(
        s.gw.camera_frame(s.now, 0, &frame(&key, 0, 1), &mut net),
        Ok(FrameOutcome::KeyFrameKept(0))
    );
    assert_eq!(
        s.gw.camera_frame(s.now, 0, &frame(&p_frame(1), 3600, 1), &mut net),
        Ok(FrameOutcome::Relayed(0))
    );
    assert!(net.sent.is_empty(), "no viewer yet");
    let mut v = s.browser("v", 10, true);
    let mut audio_only = s.browser("a", 20, false);
    let p2 = p_frame(2);
    assert_eq!(
        s.gw.camera_frame(s.now, 0, &frame(&p2, 7200, 1), &mut net),
        Ok(FrameOutcome::Relayed(1))
    );
    assert!(
        packets(&mut audio_only, &net).is_empty(),
        "video goes to viewers only"
    );
    let got = packets(&mut v, &net);
    // SPS, PPS, the IDR in FU-A fragments (3000 bytes), then the live P frame.
    let frags = 3000usize.div_ceil(CAMERA_RTP_PAYLOAD - 2);
    let mut want = vec![7, 8];
    want.extend(std::iter::repeat_n(5, frags));
    want.push(1);
    assert_eq!(nal_types(&got), want);
    let ssrc = s.gw.cameras().next().unwrap().ssrc();
    let hs: Vec<_> = got
        .iter()
        .map(|p| rtp::Packet::new_checked(&p[..]).unwrap())
        .collect();
    for (i, h) in hs.iter().enumerate() {
        assert_eq!(h.ssrc(), ssrc);
        assert_eq!(h.payload_type(), 96, "the viewer's video payload type");
        assert!(h.as_bytes().len() <= rtp::HEADER_LEN + 8 + CAMERA_RTP_PAYLOAD);
        assert_eq!(h.seq_number(), hs[0].seq_number().wrapping_add(i as u16));
        let ext = h.extension().unwrap();
        assert_eq!(ext.data[..2], [0x40, b'1'], "the viewer's MID");
    }
    let markers: Vec<bool> = hs.iter().map(|h| h.marker()).collect();
    assert_eq!(
        markers.iter().filter(|m| **m).count(),
        2,
        "one per access unit"
    );
    assert!(markers[1 + 1 + frags - 1] && markers[markers.len() - 1]);
    // The kept frame goes just before the live one, in the same clock.
    let live_ts = hs.last().unwrap().timestamp();
    assert_eq!(hs[0].timestamp(), live_ts.wrapping_sub(1));
    // The next frame is live only, continuing the sequence.
    let before = got.len();
    s.gw.camera_frame(s.now, 0, &frame(&p_frame(3), 10800, 1), &mut net)
        .unwrap();
    let got = packets(&mut v, &net);
    assert_eq!(nal_types(&got[before..]), [1]);
    let last = rtp::Packet::new_checked(&got[before][..]).unwrap();
    assert_eq!(
        last.seq_number(),
        hs[0].seq_number().wrapping_add(before as u16)
    );
    assert_eq!(last.timestamp(), live_ts.wrapping_add(3600));
    let cam = s.gw.cameras().next().unwrap();
    assert_eq!(cam.stats.key_frames_sent, 1);
    assert_eq!(cam.stats.frames, 4);
}

/// A PLI (RFC 4585 section 6.3.1) naming the camera's SSRC, protected by the viewer.
fn pli(b: &mut Browser, media_ssrc: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    buf[..12].copy_from_slice(&[0x81, 206, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    buf[4..8].copy_from_slice(&b.ssrc.to_be_bytes());
    buf[8..12].copy_from_slice(&media_ssrc.to_be_bytes());
    let n = b.tx.protect_rtcp(&mut buf, 12).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_pli_is_answered_from_the_kept_key_frame_and_a_reconnect_goes_unnoticed() {
    let mut s = Sim::new(Limits::default());
    add(&mut s, "gate", "ch").unwrap();
    let mut net = Net::default();
    let mut v = s.browser("v", 10, true);
    let key = key_frame();
    s.gw.camera_frame(s.now, 0, &frame(&key, 0, 1), &mut net)
        .unwrap();
    s.gw.camera_frame(s.now, 0, &frame(&p_frame(1), 3600, 1), &mut net)
        .unwrap();
    let n0 = packets(&mut v, &net).len();
    let ssrc = s.gw.cameras().next().unwrap().ssrc();
    // A PLI for another SSRC changes nothing; one for the camera's brings the key frame.
    let other = pli(&mut v, ssrc ^ 1);
    v.send(&mut s, &mut net, &other);
    s.gw.camera_frame(s.now, 0, &frame(&p_frame(2), 7200, 1), &mut net)
        .unwrap();
    let got = packets(&mut v, &net);
    assert_eq!(nal_types(&got[n0..]), [1]);
    let n1 = got.len();
    let req = pli(&mut v, ssrc);
    v.send(&mut s, &mut net, &req);
    // A forged PLI (not authenticated) is no request.
    let mut forged = req.clone();
    *forged.last_mut().unwrap() ^= 1;
    v.send(&mut s, &mut net, &forged);
    s.gw.camera_frame(s.now, 0, &frame(&p_frame(3), 10800, 1), &mut net)
        .unwrap();
    let got = packets(&mut v, &net);
    assert_eq!(nal_types(&got[n1..])[..2], [7, 8]);
    assert_eq!(*nal_types(&got[n1..]).last().unwrap(), 1);
    let cam = s.gw.cameras().next().unwrap();
    assert_eq!(cam.stats.key_frame_requests, 1);
    let n2 = got.len();
    // The camera reconnects: its own clock starts again; the viewer sees one stream.
    s.gw.camera_frame(s.now, 0, &frame(&p_frame(4), 0, 2), &mut net)
        .unwrap();
    let got = packets(&mut v, &net);
    let hs: Vec<_> = got
        .iter()
        .map(|p| rtp::Packet::new_checked(&p[..]).unwrap())
        .collect();
    for w in hs.windows(2) {
        assert_eq!(w[1].seq_number(), w[0].seq_number().wrapping_add(1));
        assert_eq!(w[1].ssrc(), ssrc);
    }
    let (before, after) = (hs[n2 - 1].timestamp(), hs[n2].timestamp());
    assert!(after.wrapping_sub(before) > 0 && after.wrapping_sub(before) < 90_000);
}

#[test]
fn bad_frames_and_a_deleted_channel_are_counted() {
    let mut s = Sim::new(Limits::default());
    add(&mut s, "gate", "ch").unwrap();
    let mut net = Net::default();
    assert!(matches!(
        s.gw.camera_frame(s.now, 0, &frame(&[0, 0, 0, 9, 1], 0, 1), &mut net),
        Err(FrameError::Malformed(_))
    ));
    assert_eq!(
        s.gw.camera_frame(s.now, 7, &frame(&p_frame(1), 0, 1), &mut net),
        Err(FrameError::UnknownCamera)
    );
    // A key frame larger than the storage is relayed but not kept.
    s.gw.add_camera(s.now, "small", "ch", storage(16), &mut s.rec)
        .unwrap();
    assert_eq!(
        s.gw.camera_frame(s.now, 1, &frame(&key_frame(), 0, 1), &mut net),
        Ok(FrameOutcome::KeyFrameTooLarge(0))
    );
    let cam = s.gw.cameras().nth(1).unwrap();
    assert_eq!(
        (cam.key_frame_len(), cam.stats.key_frames_too_large),
        (0, 1)
    );
    assert_eq!(s.gw.cameras().next().unwrap().stats.malformed, 1);
}
