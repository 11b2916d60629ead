//! RTP and RTCP parsing and the media demux on arbitrary bytes: no panic, and whatever a
//! view accepts, its accessors stay inside the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechat_core::wire::{demux, rtcp, rtp};

fuzz_target!(|data: &[u8]| {
    let _ = demux::classify(data);
    if let Ok(p) = rtp::Packet::new_checked(data) {
        assert!(p.header_len() + p.payload().len() + p.padding_len() <= data.len());
        let _ = (
            p.ssrc(),
            p.seq_number(),
            p.timestamp(),
            p.marker(),
            p.payload_type(),
        );
        let _ = p.csrcs().count();
        let _ = p.extension();
    }
    if let Ok(p) = rtp::Packet::new_checked_header(data) {
        assert!(p.header_len() <= data.len());
    }
    let mut n = 0;
    for pkt in rtcp::Compound::new(data) {
        let Ok(pkt) = pkt else { break };
        n += pkt.raw().as_bytes().len();
        let _ = pkt.sender_ssrc();
        match pkt {
            rtcp::Packet::SenderReport(sr) => {
                let _ = sr.reports().count();
            }
            rtcp::Packet::ReceiverReport(rr) => {
                let _ = rr.reports().count();
            }
            rtcp::Packet::SourceDescription(sd) => {
                for c in sd.chunks() {
                    let _ = c.items().count();
                }
            }
            rtcp::Packet::Bye(b) => {
                let _ = (b.ssrcs().count(), b.reason());
            }
            _ => {}
        }
    }
    assert!(n <= data.len());
    let _ = rtcp::first_ssrc(data);
});
