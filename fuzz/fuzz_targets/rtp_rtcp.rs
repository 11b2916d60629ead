//! RTP and RTCP parsing and the media demux on arbitrary bytes: no panic, whatever a view
//! accepts, its accessors stay inside the buffer, and every list yields as many items as
//! its count field announces. Header extension elements (RFC 8285) written back read the
//! same; a feedback message (PLI, FIR, NACK) rewritten reads as the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livechat_core::wire::{demux, hdrext, rtcp, rtp};

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
        if let Some(ext) = p.extension() {
            let els: Vec<hdrext::Element<'_>> = hdrext::elements(ext).take(16).collect();
            let total: usize = els.iter().map(|e| e.data.len() + 2).sum();
            assert!(total <= ext.data.len() * 2 + 2);
            let usable: Vec<_> = els.into_iter().filter(|e| e.id != 0).collect();
            let mut out = vec![0u8; 4 + usable.iter().map(|e| e.data.len() + 2).sum::<usize>() + 4];
            if let Ok(n) = hdrext::emit(&usable, &mut out) {
                assert_eq!(n % 4, 0);
                let profile = u16::from_be_bytes([out[0], out[1]]);
                let back: Vec<_> =
                    hdrext::elements(rtp::Extension { profile, data: &out[4..n] }).collect();
                assert_eq!(back, usable);
            }
        }
    }
    if let Ok(p) = rtp::Packet::new_checked_header(data) {
        assert!(p.header_len() <= data.len());
    }
    let mut n = 0;
    for pkt in rtcp::Compound::new(data) {
        let Ok(pkt) = pkt else { break };
        n += pkt.raw().as_bytes().len();
        let _ = pkt.sender_ssrc();
        if let Some(fb) = pkt.feedback() {
            let mut out = [0u8; 1600];
            if let Ok(len) = fb.emit(7, 3, &mut out) {
                assert!(len <= pkt.raw().as_bytes().len());
                let again = rtcp::Compound::new(&out[..len])
                    .next()
                    .and_then(|p| p.ok()?.feedback())
                    .map(|f| (f.kind, f.media_ssrc));
                assert_eq!(again, Some((fb.kind, fb.media_ssrc)));
            }
        }
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
