//! G.711 mu-law (PCMU, RTP payload type 0), written from ITU-T Recommendation G.711 (11/88),
//! section 3 and table 2a, in the form of the ITU-T Software Tool Library's reference
//! `ulaw_compress`/`ulaw_expand` (ITU-T G.191, `g711.c`).
//!
//! G.711 mu-law codes 14-bit uniform PCM. Here linear samples are 16-bit, the 14-bit value
//! left-justified: the encoder drops the two low bits, the decoder returns the 14-bit
//! reconstruction value times 4 (so decoded samples are multiples of 4, at most +-32124).
//!
//! A code is `S EEE MMMM` sent inverted (all bits complemented, G.711 section 3.2 "the
//! character signal is inverted"): S is 1 for positive samples, EEE the segment, MMMM the
//! step within it. The positive segments of table 2a end (14-bit decision values) at
//! 31, 95, 223, 479, 991, 2015, 4063 and 8159.

/// The mu-law code of silence (linear 0), a positive zero.
pub const SILENCE: u8 = 0xFF;

/// Bias added to the 14-bit magnitude before segmenting (G.711 table 2a, 33 = 0x21).
const BIAS: i32 = 33;
/// Largest biased magnitude: 8158 + 33, 13 bits all ones.
const CLIP: i32 = 0x1FFF;

/// Encodes one 16-bit linear sample to a mu-law code.
pub fn encode(sample: i16) -> u8 {
    let x = i32::from(sample);
    // Negative samples are taken in one's complement, as the reference does: -1 maps to
    // magnitude 0 (negative zero), i16::MIN to 8191.
    let magnitude = if x < 0 { !x >> 2 } else { x >> 2 };
    let biased = (magnitude + BIAS).min(CLIP);
    // Segment 1..=8: one plus the number of significant bits above bit 5.
    let mut segment = 1u32;
    let mut i = biased >> 6;
    while i != 0 {
        segment += 1;
        i >>= 1;
    }
    // The casts cannot truncate: segment is 1..=8 and the nibbles are masked to 4 bits.
    let high = (8 - segment) as u8;
    let low = 0x0F - ((biased >> segment) & 0x0F) as u8;
    let code = (high << 4) | low;
    if x >= 0 { code | 0x80 } else { code }
}

/// Decodes one mu-law code to a 16-bit linear sample (the table 2a reconstruction value
/// times 4).
pub fn decode(code: u8) -> i16 {
    let inverted = !code;
    let exponent = i32::from((inverted >> 4) & 0x07);
    let mantissa = i32::from(inverted & 0x0F);
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * BIAS;
    // |magnitude| <= 32124, so it fits an i16.
    let magnitude = magnitude as i16;
    if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// Encodes a block of linear samples.
pub fn encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| encode(s)).collect()
}

/// Decodes a block of mu-law codes.
pub fn decode_all(codes: &[u8]) -> Vec<i16> {
    codes.iter().map(|&c| decode(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 14-bit uniform PCM value `v` as a left-justified 16-bit sample.
    fn s14(v: i16) -> i16 {
        v * 4
    }

    #[test]
    fn zero_is_0xff_and_negative_zero_is_0x7f() {
        assert_eq!(encode(0), 0xFF);
        assert_eq!(encode(1), 0xFF, "below the 14-bit resolution");
        assert_eq!(encode(-1), 0x7F);
        assert_eq!(decode(0xFF), 0);
        assert_eq!(decode(0x7F), 0);
        assert_eq!(SILENCE, encode(0));
    }

    #[test]
    fn full_scale() {
        assert_eq!(encode(i16::MAX), 0x80);
        assert_eq!(encode(i16::MIN), 0x00);
        assert_eq!(decode(0x80), 32124);
        assert_eq!(decode(0x00), -32124);
        // Table 2a: the last decision value is 8159; above it everything is code 0x80.
        assert_eq!(encode(s14(8158)), 0x80);
        assert_eq!(encode(s14(8159)), 0x80);
        assert_eq!(encode(s14(4062)), 0x90, "the last value of segment 7");
        assert_eq!(encode(s14(4063)), 0x8F, "the first value of segment 8");
    }

    /// G.711 table 2a, positive inputs: segment ends (decision values, 14-bit) and the codes
    /// on either side of them, with the reconstruction values of the first code of each
    /// segment.
    #[test]
    fn segment_ends_of_table_2a() {
        // (last value of a segment, its code, first value of the next, its code, the
        // 14-bit reconstruction value of that next code)
        let ends: [(i16, u8, i16, u8, i16); 7] = [
            (30, 0xF0, 31, 0xEF, 33),
            (94, 0xE0, 95, 0xDF, 99),
            (222, 0xD0, 223, 0xCF, 231),
            (478, 0xC0, 479, 0xBF, 495),
            (990, 0xB0, 991, 0xAF, 1023),
            (2014, 0xA0, 2015, 0x9F, 2079),
            (4062, 0x90, 4063, 0x8F, 4191),
        ];
        for (last, last_code, first, first_code, value) in ends {
            assert_eq!(encode(s14(last)), last_code, "14-bit {last}");
            assert_eq!(encode(s14(first)), first_code, "14-bit {first}");
            assert_eq!(decode(first_code), s14(value), "code {first_code:#04x}");
            // Mirrored for negative inputs (sign bit clear). The reference takes negatives in
            // one's complement, so the mirror of a 16-bit sample x is !x = -x - 1.
            assert_eq!(
                encode(!s14(first)),
                first_code & 0x7F,
                "16-bit !{}",
                s14(first)
            );
            assert_eq!(
                encode(!s14(last)),
                last_code & 0x7F,
                "16-bit !{}",
                s14(last)
            );
            assert_eq!(decode(first_code & 0x7F), -s14(value));
        }
        // Segment 1: 0 -> 0xFF, 1..=2 -> 0xFE, 3..=4 -> 0xFD, ..., reconstruction 0, 2, 4, ...
        assert_eq!(encode(s14(1)), 0xFE);
        assert_eq!(encode(s14(2)), 0xFE);
        assert_eq!(encode(s14(3)), 0xFD);
        assert_eq!(decode(0xFE), s14(2));
        assert_eq!(decode(0xF0), s14(30));
    }

    #[test]
    fn every_code_round_trips_and_decoding_is_monotonic() {
        for code in 0..=255u8 {
            let back = encode(decode(code));
            if code == 0x7F {
                assert_eq!(
                    back, 0xFF,
                    "negative zero decodes to 0, which is positive zero"
                );
            } else {
                assert_eq!(back, code, "code {code:#04x} -> {}", decode(code));
            }
        }
        // Positive codes 0xFF down to 0x80 increase; negative codes 0x7F down to 0x00 decrease.
        for c in 0x81..=0xFFu8 {
            assert!(decode(c - 1) > decode(c), "{c:#04x}");
        }
        for c in 0x01..=0x7Fu8 {
            assert!(decode(c - 1) < decode(c), "{c:#04x}");
        }
    }

    #[test]
    fn quantization_error_is_within_half_a_step() {
        for x in (i16::MIN..=i16::MAX).step_by(7) {
            let y = decode(encode(x));
            let magnitude = i32::from(x).abs();
            // The step in 16-bit units doubles per segment: 8 in segment 1, 1024 in 8.
            let step = match magnitude {
                m if m < 31 * 4 => 8,
                m if m < 95 * 4 => 16,
                m if m < 223 * 4 => 32,
                m if m < 479 * 4 => 64,
                m if m < 991 * 4 => 128,
                m if m < 2015 * 4 => 256,
                m if m < 4063 * 4 => 512,
                _ => 1024,
            };
            let err = (i32::from(x) - i32::from(y)).abs();
            // Beyond the clip point (32124 + half a step) the error grows; elsewhere it is
            // at most half a step plus the two dropped bits.
            if magnitude <= 32124 + 512 {
                assert!(err <= step / 2 + 4, "{x} -> {y}: error {err}, step {step}");
            }
        }
    }
}
