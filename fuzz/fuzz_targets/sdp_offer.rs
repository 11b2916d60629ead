//! SDP offers (the `sdp_offer` of CHANNEL_JOIN): any text parses or is refused (1004),
//! negotiates or is refused with a reason (2008), and every answer is itself valid SDP that
//! names the server's credentials. Never a panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use livechat_rtc::sdp::{self, AudioCodec, Local, Offer, VideoCodec};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(offer) = Offer::parse(text) else {
        return;
    };
    let audio = if flags & 1 == 0 { AudioCodec::Pcmu } else { AudioCodec::Opus };
    let video = if flags & 2 == 0 { VideoCodec::Vp8 } else { VideoCodec::H264 };
    let Ok(n) = sdp::negotiate(&offer, audio, video) else {
        return;
    };
    let local = Local {
        ufrag: "srvUfrag",
        pwd: "serverpasswordserverpass",
        fingerprint: "AB:CD",
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        port: 10000,
    };
    let answer = sdp::answer(&offer, &n, &local);
    let reparsed = Offer::parse(&answer).expect("the answer is valid SDP");
    assert_eq!(reparsed.media_kinds().count(), offer.media_kinds().count());
    assert!(answer.contains("a=ice-ufrag:srvUfrag\r\n"));
    assert!(answer.contains("a=setup:passive\r\n"));
});
