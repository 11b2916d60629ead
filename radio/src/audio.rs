//! Audio at the edges of the radio: test tones to send, and a recorder that turns received
//! RTP packets back into a continuous PCMU stream.

use std::f64::consts::TAU;

use livechat_core::wire::rtp;

use crate::g711;
use crate::wav::SAMPLE_RATE;

/// Samples (and PCMU bytes) in one 20 ms packet at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// Largest gap (in packets) the recorder fills with silence; a longer jump in sequence
/// numbers is a new talk burst and is simply appended.
const MAX_CONCEALED: u64 = 50;

/// `seconds` of a sine tone at `freq_hz` with peak `amplitude` (0.0..=1.0 of full scale),
/// encoded to PCMU.
pub fn tone_pcmu(freq_hz: f64, seconds: f64, amplitude: f64) -> Vec<u8> {
    let n = (seconds.max(0.0) * f64::from(SAMPLE_RATE)).round() as usize;
    let peak = amplitude.clamp(0.0, 1.0) * f64::from(i16::MAX);
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            // The cast saturates; peak <= i16::MAX keeps it in range anyway.
            g711::encode((peak * (TAU * freq_hz * t).sin()).round() as i16)
        })
        .collect()
}

/// Splits PCMU audio into 160-byte frames, padding the last with silence.
pub fn frames(pcmu: &[u8]) -> impl Iterator<Item = [u8; FRAME_SAMPLES]> + '_ {
    pcmu.chunks(FRAME_SAMPLES).map(|c| {
        let mut f = [g711::SILENCE; FRAME_SAMPLES];
        f[..c.len()].copy_from_slice(c);
        f
    })
}

/// Collects the payloads of received PCMU packets into one audio stream, in sequence
/// order: duplicates and late packets are dropped, small losses filled with silence.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    pcmu: Vec<u8>,
    /// The last packet's SSRC and extended sequence number.
    last: Option<(u32, u64)>,
    packets: u64,
    concealed: u64,
    discarded: u64,
}

impl Recorder {
    /// An empty recording.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Adds one (decrypted) RTP packet; returns whether its payload was used. Packets that
    /// are not RTP or not payload type 0 are ignored.
    pub fn push(&mut self, packet: &[u8]) -> bool {
        let Ok(p) = rtp::Packet::new_checked(packet) else {
            self.discarded += 1;
            return false;
        };
        if p.payload_type() != 0 {
            self.discarded += 1;
            return false;
        }
        let (ssrc, seq) = (p.ssrc(), p.seq_number());
        let ext = match self.last {
            Some((s, last)) if s == ssrc => {
                // The extended number nearest to the last one (RFC 3550 appendix A.1 style).
                let base = last & !0xFFFF;
                [base.wrapping_sub(0x1_0000), base, base + 0x1_0000]
                    .into_iter()
                    .map(|b| b.wrapping_add(u64::from(seq)))
                    .min_by_key(|&e| e.abs_diff(last))
                    .unwrap_or(u64::from(seq))
            }
            _ => u64::from(seq) + 0x1_0000,
        };
        if let Some((s, last)) = self.last
            && s == ssrc
        {
            if ext <= last {
                self.discarded += 1;
                return false;
            }
            let lost = ext - last - 1;
            if (1..=MAX_CONCEALED).contains(&lost) {
                let n = lost as usize * p.payload().len();
                self.pcmu.extend(std::iter::repeat_n(g711::SILENCE, n));
                self.concealed += lost;
            }
        }
        self.pcmu.extend_from_slice(p.payload());
        self.last = Some((ssrc, ext));
        self.packets += 1;
        true
    }

    /// The audio so far, PCMU at 8 kHz.
    pub fn pcmu(&self) -> &[u8] {
        &self.pcmu
    }

    /// The audio so far, decoded to 16-bit linear samples.
    pub fn samples(&self) -> Vec<i16> {
        g711::decode_all(&self.pcmu)
    }

    /// Packets whose payload was recorded.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Packets found missing and filled with silence.
    pub fn concealed(&self) -> u64 {
        self.concealed
    }

    /// Packets ignored: not PCMU RTP, duplicates or late.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Seconds of audio recorded.
    pub fn seconds(&self) -> f64 {
        self.pcmu.len() as f64 / f64::from(SAMPLE_RATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livechat_core::wire::rtp::Header;

    fn packet(ssrc: u32, seq: u16, fill: u8) -> Vec<u8> {
        let mut buf = vec![0u8; 12 + FRAME_SAMPLES];
        let h = Header {
            marker: false,
            payload_type: 0,
            seq_number: seq,
            timestamp: u32::from(seq) * 160,
            ssrc,
            csrcs: &[],
            extension: None,
        };
        let n = h
            .emit_packet(&[fill; FRAME_SAMPLES], 0, &mut buf)
            .expect("fits");
        buf.truncate(n);
        buf
    }

    #[test]
    fn tone_has_the_right_length_and_level() {
        let t = tone_pcmu(1000.0, 0.5, 0.5);
        assert_eq!(t.len(), 4000);
        let peak = g711::decode_all(&t)
            .into_iter()
            .map(|s| i32::from(s).abs())
            .max()
            .unwrap_or(0);
        assert!((15000..=17500).contains(&peak), "peak {peak}");
        let f: Vec<_> = frames(&t[..170]).collect();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1][10], g711::SILENCE);
    }

    #[test]
    fn recorder_orders_across_the_wrap_and_conceals_small_losses() {
        let mut r = Recorder::new();
        assert!(r.push(&packet(7, 65534, 1)));
        assert!(r.push(&packet(7, 65535, 2)));
        assert!(r.push(&packet(7, 0, 3)));
        assert!(!r.push(&packet(7, 65535, 2)), "late duplicate");
        assert!(r.push(&packet(7, 3, 4)), "two lost");
        assert_eq!(r.packets(), 4);
        assert_eq!(r.concealed(), 2);
        assert_eq!(r.discarded(), 1);
        assert_eq!(r.pcmu().len(), 6 * FRAME_SAMPLES);
        assert_eq!(r.pcmu()[2 * FRAME_SAMPLES], 3);
        assert_eq!(r.pcmu()[3 * FRAME_SAMPLES], g711::SILENCE);
        assert_eq!(r.pcmu()[5 * FRAME_SAMPLES], 4);
        // A new talker starts a new stream.
        assert!(r.push(&packet(8, 100, 5)));
        assert_eq!(r.pcmu().len(), 7 * FRAME_SAMPLES);
        assert!(!r.push(b"not rtp"));
    }
}
