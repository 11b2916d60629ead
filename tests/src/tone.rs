//! Checking recorded audio for a tone: the Goertzel algorithm (one DFT bin, G. Goertzel, "An
//! Algorithm for the Evaluation of Finite Trigonometric Series", 1958), so a test can tell the
//! tone it sent from silence, noise or another tone.

use std::f64::consts::TAU;

/// The amplitude (peak, in sample units) of the `freq_hz` component of `samples`, measured
/// over all of them: `2 |X(f)| / N`. Exact for a tone with a whole number of cycles in the
/// block; other components leak into it in proportion to their amplitude over their
/// distance in bins.
pub fn amplitude_at(samples: &[i16], freq_hz: f64, rate_hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let coeff = 2.0 * (TAU * freq_hz / rate_hz).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / samples.len() as f64
}

/// Root mean square of `samples`.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// Fails unless `samples` (8 kHz) carry a tone at `freq_hz` of peak `amplitude` (+-15 %),
/// at least 30 dB above 700 Hz and 1500 Hz, and with an overall RMS of at least 70 % of the
/// tone's (so the tone is nearly all there is). `who` names the recording in the message.
pub fn assert_tone(samples: &[i16], freq_hz: f64, amplitude: f64, who: &str) {
    let rate = 8000.0;
    let at = amplitude_at(samples, freq_hz, rate);
    let others = [700.0, 1500.0].map(|f| (f, amplitude_at(samples, f, rate)));
    let level = rms(samples);
    let ratio_db = |a: f64, b: f64| 20.0 * (a / b.max(1e-9)).log10();
    let summary = format!(
        "{who}: {} samples, {freq_hz} Hz amplitude {at:.0} (expected {amplitude:.0}), \
         700 Hz {:.1}, 1500 Hz {:.1}, RMS {level:.0}",
        samples.len(),
        others[0].1,
        others[1].1
    );
    assert!(
        (at - amplitude).abs() <= 0.15 * amplitude,
        "the {freq_hz} Hz tone is not there at the level sent: {summary}"
    );
    for (f, a) in others {
        assert!(
            ratio_db(at, a) >= 30.0,
            "{f} Hz is within 30 dB of {freq_hz} Hz ({:.1} dB): {summary}",
            ratio_db(at, a)
        );
    }
    // A pure tone's RMS is amplitude / sqrt(2).
    assert!(
        level >= 0.7 * amplitude / 2f64.sqrt() && level <= 1.3 * amplitude / 2f64.sqrt(),
        "the recording's level does not match one tone: {summary}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (TAU * freq * i as f64 / 8000.0).sin()).round() as i16)
            .collect()
    }

    #[test]
    fn measures_a_tone_and_rejects_others() {
        let s = sine(1000.0, 10000.0, 8000);
        assert!((amplitude_at(&s, 1000.0, 8000.0) - 10000.0).abs() < 10.0);
        assert!(amplitude_at(&s, 1500.0, 8000.0) < 1.0);
        assert_tone(&s, 1000.0, 10000.0, "pure");
        let wrong = sine(1500.0, 10000.0, 8000);
        assert!(std::panic::catch_unwind(|| assert_tone(&wrong, 1000.0, 10000.0, "1500")).is_err());
        let silence = vec![0i16; 8000];
        assert!(std::panic::catch_unwind(|| assert_tone(&silence, 1000.0, 10000.0, "0")).is_err());
        // White-ish noise of the same level.
        let mut x: u32 = 1;
        let noise: Vec<i16> = (0..8000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((x >> 16) as i16) / 3
            })
            .collect();
        assert!(
            std::panic::catch_unwind(|| assert_tone(&noise, 1000.0, 10000.0, "noise")).is_err()
        );
        // The tone plus a strong second tone fails on level.
        let mix: Vec<i16> = s
            .iter()
            .zip(sine(2200.0, 10000.0, 8000))
            .map(|(a, b)| a / 2 + b / 2)
            .collect();
        assert!(std::panic::catch_unwind(|| assert_tone(&mix, 1000.0, 5000.0, "mix")).is_err());
    }
}
