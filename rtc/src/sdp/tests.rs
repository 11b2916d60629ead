use std::net::{IpAddr, Ipv4Addr};

use super::*;

/// Chrome 85 (Windows), audio and video sendonly, BUNDLE 0 1. Recorded in
/// github.com/guoweikai/test--demo `signal/offerSDP.js` (commit da58f69); the file's JS
/// indentation is removed, the SDP lines are as recorded.
const CHROME: &str = include_str!("offers/chrome85_audio_video.sdp");
/// Firefox 84, audio sendonly, session-level fingerprint. Recorded in
/// github.com/algesten/str0m `src/sdp/parser.rs` test `parse_offer_sdp_firefox`
/// (commit 120401c).
const FIREFOX: &str = include_str!("offers/firefox84_audio.sdp");
/// Safari, `addTransceiver('audio', {direction: 'sendonly'})`. Recorded in
/// github.com/algesten/str0m `src/sdp/parser.rs`, the comment "Safari addTransceiver"
/// (commit 120401c), where `c=` and `a=rtcp:` share a line through a stray `\n`; here
/// they are two lines.
const SAFARI: &str = include_str!("offers/safari_audio_sendonly.sdp");

fn crlf(s: &str) -> String {
    s.lines().map(|l| format!("{l}\r\n")).collect()
}

fn local() -> Local<'static> {
    Local {
        ufrag: "srvU",
        pwd: "serverpasswordserverpass",
        fingerprint: "AA:BB",
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        port: 10000,
    }
}

fn run(offer: &str, a: AudioCodec, v: VideoCodec) -> Result<(Negotiation, String), Unacceptable> {
    let offer = Offer::parse(&crlf(offer)).expect("parses");
    let n = negotiate(&offer, a, v)?;
    let text = answer(&offer, &n, &local());
    Ok((n, text))
}

fn lines(answer: &str) -> Vec<&str> {
    answer.split("\r\n").filter(|l| !l.is_empty()).collect()
}

/// The m-line sections of an answer, each as its lines.
fn sections(answer: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = Vec::new();
    for l in lines(answer) {
        if l.starts_with("m=") {
            out.push(vec![l]);
        } else if let Some(last) = out.last_mut() {
            last.push(l);
        }
    }
    out
}

#[test]
fn chrome_audio_and_video_vp8() {
    let (n, text) = run(CHROME, AudioCodec::Pcmu, VideoCodec::Vp8).unwrap();
    assert_eq!(n.audio.pt, 0);
    assert_eq!(n.audio.mid, "0");
    assert_eq!(n.audio.ext_mid, Some(4));
    assert_eq!(n.audio.ext_audio_level, Some(1));
    assert_eq!(n.audio.ssrc, Some(2550536406));
    assert_eq!((n.audio.send, n.audio.recv), (true, false));
    let v = n.video.as_ref().unwrap();
    assert_eq!(v.track.pt, 96);
    assert_eq!(v.track.mid, "1");
    assert_eq!(v.track.ext_mid, Some(4));
    assert_eq!(v.track.ext_audio_level, None);
    assert_eq!(v.track.ssrc, Some(2136671120));
    assert_eq!((v.rtx_pt, v.rtx_ssrc), (Some(97), Some(4095618910)));
    assert!(v.nack && v.pli && v.fir);
    assert_eq!(n.remote.ufrag, "3SFa");
    assert_eq!(n.remote.pwd, "vCsxxLy8DndCZ+mBMGBwR6Zn");
    assert_eq!(n.remote.fingerprint.0[..2], [0xE5, 0x55]);

    let all = lines(&text);
    assert_eq!(all[0], "v=0");
    assert!(all.contains(&"a=group:BUNDLE 0 1"));
    assert!(all.contains(&"a=ice-lite"));
    let s = sections(&text);
    assert_eq!(
        s[0],
        [
            "m=audio 10000 UDP/TLS/RTP/SAVPF 0",
            "c=IN IP4 192.0.2.7",
            "a=mid:0",
            "a=recvonly",
            "a=ice-ufrag:srvU",
            "a=ice-pwd:serverpasswordserverpass",
            "a=fingerprint:sha-256 AA:BB",
            "a=setup:passive",
            "a=rtcp-mux",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=rtpmap:0 PCMU/8000",
            "a=candidate:1 1 udp 2130706431 192.0.2.7 10000 typ host",
            "a=end-of-candidates",
        ]
    );
    assert_eq!(s[1][0], "m=video 10000 UDP/TLS/RTP/SAVPF 96 97");
    for want in [
        "a=mid:1",
        "a=recvonly",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:96 ccm fir",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=setup:passive",
    ] {
        assert!(s[1].contains(&want), "{want} missing in {:?}", s[1]);
    }
    // Only the offered mid and audio-level extensions, and no other codec.
    assert!(!text.contains("abs-send-time"));
    assert!(!text.contains("transport-cc"));
    assert!(!text.contains("opus"));
}

#[test]
fn chrome_h264_takes_the_first_packetization_mode_1() {
    let (n, text) = run(CHROME, AudioCodec::Opus, VideoCodec::H264).unwrap();
    assert_eq!(n.audio.pt, 111);
    let v = n.video.unwrap();
    assert_eq!((v.track.pt, v.rtx_pt), (102, Some(122)));
    assert!(text.contains(
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
    ));
    assert!(
        text.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n")
    );
}

#[test]
fn firefox_audio_with_session_level_fingerprint() {
    let (n, text) = run(FIREFOX, AudioCodec::Opus, VideoCodec::Vp8).unwrap();
    assert_eq!(n.audio.pt, 109);
    assert_eq!(
        (n.audio.ext_mid, n.audio.ext_audio_level),
        (Some(3), Some(1))
    );
    assert_eq!(n.audio.ssrc, Some(1481683531));
    assert_eq!(n.remote.ufrag, "c1e284ad");
    assert_eq!(n.remote.fingerprint.0[..2], [0xAE, 0xDC]);
    assert!(n.video.is_none());
    assert!(text.contains("a=group:BUNDLE 0\r\n"));
    assert!(text.contains(
        "a=rtpmap:109 opus/48000/2\r\na=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\n"
    ));
    // csrc-audio-level is not one the server sends.
    assert!(!text.contains("csrc-audio-level"));

    let (n, text) = run(FIREFOX, AudioCodec::Pcmu, VideoCodec::Vp8).unwrap();
    assert_eq!(n.audio.pt, 0);
    assert!(text.contains("m=audio 10000 UDP/TLS/RTP/SAVPF 0\r\n"));
}

#[test]
fn safari_audio_sendonly_is_answered_recvonly() {
    let (n, text) = run(SAFARI, AudioCodec::Pcmu, VideoCodec::Vp8).unwrap();
    assert_eq!(n.audio.pt, 0);
    assert_eq!((n.audio.send, n.audio.recv), (true, false));
    assert_eq!(n.audio.ext_mid, Some(9));
    assert_eq!(n.remote.pwd, "XbIkl+k8mwLz60TFwb9crzbz");
    assert!(text.contains("a=recvonly\r\n"));
    assert_eq!(sections(&text).len(), 1);
}

/// An aiortc-style offer: three fingerprints (sha-256 in the middle), a data channel, a
/// second audio line, IPv6 advertised.
#[test]
fn unserved_lines_get_port_zero_and_sha256_is_picked() {
    let offer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n\
        a=rtcp-mux\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
        a=fingerprint:sha-384 AA:BB\r\n\
        a=fingerprint:sha-256 01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F:20\r\n\
        a=fingerprint:sha-512 CC\r\na=setup:actpass\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtcp-mux\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n";
    let offer = Offer::parse(offer).unwrap();
    let n = negotiate(&offer, AudioCodec::Pcmu, VideoCodec::Vp8).unwrap();
    assert_eq!(n.remote.fingerprint.0[0], 1);
    assert_eq!(n.remote.fingerprint.0[31], 0x20);
    assert_eq!((n.audio.send, n.audio.recv), (true, true));
    let mut l = local();
    l.ip = "2001:db8::7".parse().unwrap();
    let text = answer(&offer, &n, &l);
    let s = sections(&text);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0][0], "m=audio 10000 UDP/TLS/RTP/SAVPF 0");
    assert!(s[0].contains(&"a=sendrecv"));
    assert!(s[0].contains(&"c=IN IP6 2001:db8::7"));
    assert_eq!(
        s[1],
        ["m=audio 0 UDP/TLS/RTP/SAVPF 0", "c=IN IP6 ::", "a=mid:1"]
    );
    assert_eq!(
        s[2],
        [
            "m=application 0 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP6 ::",
            "a=mid:2"
        ]
    );
    assert!(text.contains("a=group:BUNDLE 0\r\n"));
    assert!(text.contains("IN IP6 2001:db8::7\r\n"));
}

/// A minimal acceptable offer, to break one requirement at a time.
const BASE: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE a\r\n\
    m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:a\r\na=rtcp-mux\r\n\
    a=rtpmap:111 opus/48000/2\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
    a=fingerprint:sha-256 01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:1B:1C:1D:1E:1F:20\r\n\
    a=setup:actpass\r\n";

fn verdict(offer: &str, codec: AudioCodec) -> Result<(), &'static str> {
    let offer = Offer::parse(offer).map_err(|e| e.0)?;
    negotiate(&offer, codec, VideoCodec::Vp8)
        .map(|_| ())
        .map_err(|e| e.0)
}

#[test]
fn every_2008_reason() {
    assert_eq!(verdict(BASE, AudioCodec::Opus), Ok(()));
    assert_eq!(verdict(BASE, AudioCodec::Pcmu), Ok(()));
    let cases: [(&str, &str, AudioCodec, &str); 11] = [
        (
            "a=setup:actpass",
            "a=setup:passive",
            AudioCodec::Opus,
            "a=setup:passive",
        ),
        (
            "a=fingerprint:sha-256",
            "a=fingerprint:sha-1",
            AudioCodec::Opus,
            "no DTLS fingerprint",
        ),
        (
            ":1F:20\r\n",
            ":1F\r\n",
            AudioCodec::Opus,
            "no DTLS fingerprint",
        ),
        (
            "a=ice-ufrag:abcd\r\n",
            "",
            AudioCodec::Opus,
            "no ICE credentials",
        ),
        (
            "a=ice-pwd:0123456789012345678901\r\n",
            "",
            AudioCodec::Opus,
            "no ICE credentials",
        ),
        (
            "a=ice-pwd:0123456789012345678901",
            "a=ice-pwd:short",
            AudioCodec::Opus,
            "no ICE credentials",
        ),
        ("a=rtcp-mux\r\n", "", AudioCodec::Opus, "not rtcp-mux"),
        (
            "111 0\r\n",
            "111\r\n",
            AudioCodec::Pcmu,
            "the channel's codec PCMU",
        ),
        (
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:111 opus/48000/1",
            AudioCodec::Opus,
            "the channel's codec opus",
        ),
        ("m=audio", "m=video", AudioCodec::Opus, "no audio m-line"),
        (
            "UDP/TLS/RTP/SAVPF",
            "RTP/AVP",
            AudioCodec::Opus,
            "audio is not UDP/TLS/RTP/SAVPF",
        ),
    ];
    for (from, to, codec, reason) in cases {
        let offer = BASE.replacen(from, to, 1);
        assert_ne!(offer, BASE, "{from} not in the base offer");
        let got = verdict(&offer, codec).unwrap_err();
        assert!(got.starts_with(reason), "{from} -> {to}: {got}");
    }
    // A disabled audio line is no audio.
    assert_eq!(
        verdict(&BASE.replace("m=audio 9", "m=audio 0"), AudioCodec::Opus),
        Err("no audio m-line")
    );
    // Audio outside the BUNDLE group, and a mid too long to keep.
    assert_eq!(
        verdict(&BASE.replace("BUNDLE a", "BUNDLE b"), AudioCodec::Opus),
        Err("audio is not in the BUNDLE group")
    );
    let long = BASE
        .replace("a=mid:a", "a=mid:abcdefghijklmnopq")
        .replace("BUNDLE a", "BUNDLE abcdefghijklmnopq");
    assert_eq!(
        verdict(&long, AudioCodec::Opus),
        Err("a=mid longer than 16 bytes")
    );
}

#[test]
fn every_1004_reason() {
    for bad in ["", "hello", "v=1\r\n", "v=0\r\nm=audio\r\n", "\u{0}\u{1}"] {
        assert_eq!(
            verdict(bad, AudioCodec::Opus),
            Err("sdp_offer is not valid SDP"),
            "{bad:?}"
        );
    }
    let mut many = BASE.to_string();
    for i in 0..16 {
        many.push_str(&format!("m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:x{i}\r\n"));
    }
    assert_eq!(
        verdict(&many, AudioCodec::Opus),
        Err("sdp_offer has more than 16 m-lines")
    );
}

#[test]
fn session_level_credentials_and_direction() {
    let offer = BASE
        .replace("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n", "")
        .replace(
            "a=group:BUNDLE a\r\n",
            "a=group:BUNDLE a\r\na=ice-ufrag:sess\r\na=ice-pwd:sessionpasswordsession\r\na=recvonly\r\n",
        );
    let parsed = Offer::parse(&offer).unwrap();
    let n = negotiate(&parsed, AudioCodec::Opus, VideoCodec::Vp8).unwrap();
    assert_eq!(n.remote.ufrag, "sess");
    assert_eq!((n.audio.send, n.audio.recv), (false, true));
    assert!(answer(&parsed, &n, &local()).contains("a=sendonly\r\n"));
}

#[test]
fn video_without_the_channel_codec_is_rejected_not_refused() {
    // Chrome's offer with the VP8 lines taken out of the m= line: H264 channel works, VP8 does not.
    let no_vp8 = CHROME.replace(" 96 97 98", " 98");
    let (n, text) = run(&no_vp8, AudioCodec::Opus, VideoCodec::Vp8).unwrap();
    assert!(n.video.is_none());
    assert!(text.contains("m=video 0 UDP/TLS/RTP/SAVPF 98"));
    assert!(text.contains("a=group:BUNDLE 0\r\n"));
}
