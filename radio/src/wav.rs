//! WAV (RIFF WAVE) files of 8 kHz mono telephone audio: G.711 mu-law (`WAVE_FORMAT_MULAW`,
//! 7) or 16-bit linear PCM (`WAVE_FORMAT_PCM`, 1), read and written whole.
//!
//! Layout written (Microsoft "Multimedia Programming Interface and Data Specifications 1.0"):
//!
//! ```text
//! "RIFF" <size u32le> "WAVE"
//! "fmt " <16 or 18> format(u16) channels(u16)=1 rate(u32)=8000 byte_rate(u32)
//!                   block_align(u16) bits(u16) [cb_size(u16)=0 for non-PCM]
//! ["fact" <4> samples(u32)]       non-PCM formats only
//! "data" <size u32le> samples...
//! ```

use std::fmt;
use std::path::Path;

use crate::g711;

/// The only sample rate handled: G.711's.
pub const SAMPLE_RATE: u32 = 8000;

/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_MULAW`.
const FORMAT_MULAW: u16 = 7;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is in the sub-format GUID's first two bytes.
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// How samples are stored in a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// G.711 mu-law, one byte per sample, as carried in RTP payload type 0.
    Pcmu,
    /// 16-bit little-endian linear PCM.
    Pcm16,
}

impl Encoding {
    /// `pcmu` or `pcm16`.
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name {
            "pcmu" | "ulaw" | "mulaw" => Some(Encoding::Pcmu),
            "pcm16" | "pcm" | "s16" => Some(Encoding::Pcm16),
            _ => None,
        }
    }
}

/// Why a WAV file could not be read or written.
#[derive(Debug)]
pub enum WavError {
    /// Reading or writing the file failed.
    Io(std::io::Error),
    /// Not a RIFF WAVE file, or a chunk runs past the end.
    NotWav(&'static str),
    /// A well-formed file in a format this client does not send.
    Unsupported(String),
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WavError::Io(e) => write!(f, "{e}"),
            WavError::NotWav(why) => write!(f, "not a WAV file: {why}"),
            WavError::Unsupported(why) => write!(
                f,
                "{why}; lcradio takes 8000 Hz mono G.711 mu-law or 16-bit PCM (convert with \
                 e.g. `sox in.wav -r 8000 -c 1 -e mu-law out.wav`)"
            ),
        }
    }
}

impl std::error::Error for WavError {}

/// Reads a WAV file of 8 kHz mono PCMU or 16-bit PCM and returns its audio as PCMU bytes.
pub fn read_pcmu(path: &Path) -> Result<Vec<u8>, WavError> {
    let bytes = std::fs::read(path).map_err(WavError::Io)?;
    parse_pcmu(&bytes)
}

/// Parses a WAV file held in memory; see [`read_pcmu`].
pub fn parse_pcmu(bytes: &[u8]) -> Result<Vec<u8>, WavError> {
    let (encoding, data) = parse(bytes)?;
    Ok(match encoding {
        Encoding::Pcmu => data.to_vec(),
        Encoding::Pcm16 => data
            .chunks_exact(2)
            .map(|s| g711::encode(i16::from_le_bytes([s[0], s[1]])))
            .collect(),
    })
}

/// The encoding and the sample bytes of a WAV file.
fn parse(bytes: &[u8]) -> Result<(Encoding, &[u8]), WavError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format: Option<Encoding> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_le(&bytes[at + 4..at + 8]) as usize;
        let body_start = at + 8;
        // A streamed file may leave the data size at 0 or 0xFFFFFFFF: take what is there.
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " => format = Some(parse_fmt(body)?),
            b"data" => {
                let encoding = format.ok_or(WavError::NotWav("data chunk before fmt chunk"))?;
                return Ok((encoding, body));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body_start.saturating_add(size).saturating_add(size & 1);
    }
    Err(WavError::NotWav(if format.is_some() {
        "no data chunk"
    } else {
        "no fmt chunk"
    }))
}

fn parse_fmt(body: &[u8]) -> Result<Encoding, WavError> {
    if body.len() < 16 {
        return Err(WavError::NotWav("fmt chunk shorter than 16 bytes"));
    }
    let mut tag = u16_le(&body[0..2]);
    let channels = u16_le(&body[2..4]);
    let rate = u32_le(&body[4..8]);
    let bits = u16_le(&body[14..16]);
    if tag == FORMAT_EXTENSIBLE {
        // cbSize(2) validBits(2) channelMask(4) then the GUID, whose first two bytes are the
        // format tag.
        if body.len() < 26 {
            return Err(WavError::NotWav(
                "WAVE_FORMAT_EXTENSIBLE fmt chunk too short",
            ));
        }
        tag = u16_le(&body[24..26]);
    }
    let encoding = match (tag, bits) {
        (FORMAT_MULAW, 8) => Encoding::Pcmu,
        (FORMAT_PCM, 16) => Encoding::Pcm16,
        (FORMAT_MULAW | FORMAT_PCM, b) => {
            return Err(WavError::Unsupported(format!(
                "{b}-bit samples in format {tag}"
            )));
        }
        (t, _) => {
            return Err(WavError::Unsupported(format!(
                "WAV format tag {t} (1 is PCM, 7 is mu-law)"
            )));
        }
    };
    if channels != 1 {
        return Err(WavError::Unsupported(format!("{channels} channels")));
    }
    if rate != SAMPLE_RATE {
        return Err(WavError::Unsupported(format!("{rate} Hz")));
    }
    Ok(encoding)
}

/// The bytes of a WAV file holding `pcmu` audio, stored as `encoding` (decoded to 16-bit
/// PCM for [`Encoding::Pcm16`]).
pub fn encode_wav(pcmu: &[u8], encoding: Encoding) -> Vec<u8> {
    let (tag, bits, data): (u16, u16, Vec<u8>) = match encoding {
        Encoding::Pcmu => (FORMAT_MULAW, 8, pcmu.to_vec()),
        Encoding::Pcm16 => (
            FORMAT_PCM,
            16,
            pcmu.iter()
                .flat_map(|&c| g711::decode(c).to_le_bytes())
                .collect(),
        ),
    };
    let block_align = bits / 8;
    let non_pcm = encoding == Encoding::Pcmu;
    let fmt_len: u32 = if non_pcm { 18 } else { 16 };
    let data_len = data.len() as u32;
    let pad = data.len() & 1;
    let fact_len: u32 = if non_pcm { 12 } else { 0 };
    let riff_len = 4 + (8 + fmt_len) + fact_len + 8 + data_len + pad as u32;

    let mut out = Vec::with_capacity(riff_len as usize + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_len.to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&fmt_len.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    if non_pcm {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"fact");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&(pcmu.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&data);
    if pad == 1 {
        out.push(0);
    }
    out
}

/// Writes `pcmu` audio to a WAV file at `path`, stored as `encoding`.
pub fn write_wav(path: &Path, pcmu: &[u8], encoding: Encoding) -> Result<(), WavError> {
    std::fs::write(path, encode_wav(pcmu, encoding)).map_err(WavError::Io)
}

fn u16_le(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn u32_le(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcmu_file_layout_and_round_trip() {
        let audio: Vec<u8> = (0..=254u8).collect();
        let file = encode_wav(&audio, Encoding::Pcmu);
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(u32_le(&file[4..8]) as usize, file.len() - 8);
        assert_eq!(&file[12..16], b"fmt ");
        assert_eq!(u16_le(&file[20..22]), 7, "WAVE_FORMAT_MULAW");
        assert_eq!(u32_le(&file[24..28]), 8000);
        assert_eq!(u16_le(&file[34..36]), 8, "bits per sample");
        assert_eq!(file.len() % 2, 0, "odd data is padded");
        assert_eq!(parse_pcmu(&file).expect("parses"), audio);
    }

    #[test]
    fn pcm16_file_decodes_and_reencodes() {
        let audio: Vec<u8> = (0..=255u8).filter(|&c| c != 0x7F).collect();
        let file = encode_wav(&audio, Encoding::Pcm16);
        assert_eq!(u16_le(&file[20..22]), 1, "WAVE_FORMAT_PCM");
        assert_eq!(u16_le(&file[34..36]), 16);
        assert_eq!(u32_le(&file[40..44]) as usize, audio.len() * 2);
        assert_eq!(
            i16::from_le_bytes([file[44], file[45]]),
            g711::decode(audio[0])
        );
        assert_eq!(parse_pcmu(&file).expect("parses"), audio);
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(matches!(parse_pcmu(b""), Err(WavError::NotWav(_))));
        assert!(matches!(
            parse_pcmu(b"RIFF\0\0\0\0WAVE"),
            Err(WavError::NotWav(_))
        ));
        let mut file = encode_wav(&[1, 2, 3, 4], Encoding::Pcm16);
        // 44.1 kHz.
        file[24..28].copy_from_slice(&44100u32.to_le_bytes());
        let e = parse_pcmu(&file).expect_err("wrong rate");
        assert!(e.to_string().contains("44100 Hz"), "{e}");
        // Stereo.
        let mut file = encode_wav(&[1, 2, 3, 4], Encoding::Pcm16);
        file[22..24].copy_from_slice(&2u16.to_le_bytes());
        assert!(matches!(parse_pcmu(&file), Err(WavError::Unsupported(_))));
        // A-law (6).
        let mut file = encode_wav(&[1, 2, 3, 4], Encoding::Pcmu);
        file[20..22].copy_from_slice(&6u16.to_le_bytes());
        assert!(matches!(parse_pcmu(&file), Err(WavError::Unsupported(_))));
        // Truncated everywhere: never a panic.
        let file = encode_wav(&[9; 100], Encoding::Pcmu);
        for n in 0..file.len() {
            let _ = parse_pcmu(&file[..n]);
        }
        // A data size larger than the file is clamped.
        let mut file = encode_wav(&[9; 10], Encoding::Pcmu);
        let n = file.len();
        file[n - 14..n - 10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_pcmu(&file).expect("clamped"), vec![9; 10]);
    }
}
