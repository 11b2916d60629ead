//! RTP and RTCP parsing and the media demux on arbitrary bytes: no panic, whatever a view
//! accepts, its accessors stay inside the buffer, and every list yields as many items as
//! its count field announces.
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
        assert_eq!(p.csrcs().len(), usize::from(p.csrc_count()));
        assert_eq!(p.csrcs().count(), usize::from(p.csrc_count()));
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
                assert_eq!(sr.reports().len(), usize::from(sr.report_count()));
                assert_eq!(sr.reports().count(), usize::from(sr.report_count()));
            }
            rtcp::Packet::ReceiverReport(rr) => {
                assert_eq!(rr.reports().len(), usize::from(rr.report_count()));
                assert_eq!(rr.reports().count(), usize::from(rr.report_count()));
            }
            rtcp::Packet::SourceDescription(sd) => {
                assert_eq!(sd.chunks().count(), usize::from(sd.chunk_count()));
                for c in sd.chunks() {
                    let _ = c.items().count();
                }
            }
            rtcp::Packet::Bye(b) => {
                assert_eq!(b.ssrcs().count(), usize::from(b.ssrc_count()));
                let _ = b.reason();
            }
            _ => {}
        }
    }
    assert!(n <= data.len());
    let first = rtcp::first_ssrc(data);
    // The clear header SRTCP reads agrees with the walk of a well-formed compound.
    if let Ok(h) = rtcp::Header::new_checked(data) {
        let _ = (h.packet_type(), h.count(), h.length());
        if let Ok(Some(ssrc)) = first {
            assert_eq!(h.ssrc(), ssrc);
        }
    }
});
