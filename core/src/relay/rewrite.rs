//! Each receiver's copy of a relayed RTP packet (PROTOCOL.md section 4): the payload type it
//! negotiated for the stream's kind, and only the header extensions it negotiated, with its
//! own IDs and its MID (RFC 8843 section 15: receivers route BUNDLEd packets by MID, and
//! the talker's SSRC changes with every floor grant); radios get none. Sequence numbers,
//! timestamps, SSRC, CSRCs and payload pass unchanged.

use super::endpoint::Endpoint;
use super::webrtc::{Role, WebRtc};
use crate::wire::hdrext::{self, Element};
use crate::wire::rtp;

/// RTP header bytes before the CSRC list.
const FIXED_LEN: usize = rtp::HEADER_LEN;
/// The X bit in the first byte.
const EXTENSION_BIT: u8 = 0x10;
/// The PT bits of the second byte (M is the top bit).
const PT_MASK: u8 = 0x7f;

/// What one receiver gets of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'e> {
    /// Its payload type for the stream.
    pub(crate) pt: u8,
    /// Its `sdes:mid` extension ID and the MID of the m-line.
    pub(crate) mid: Option<(u8, &'e str)>,
    /// Its `ssrc-audio-level` extension ID (audio only).
    pub(crate) level: Option<u8>,
}

impl<'e> Target<'e> {
    /// What `rx` gets of a stream of `role`, or `None` when it does not take that kind:
    /// video and its RTX go only to WebRTC receivers whose answer accepted video (RTX only
    /// when it negotiated RTX too), audio to everyone whose answer lets it receive audio.
    pub(crate) fn of(webrtc: Option<&'e WebRtc>, audio_pt: u8, role: Role) -> Option<Target<'e>> {
        let Some(w) = webrtc else {
            return (role == Role::Audio).then_some(Target {
                pt: audio_pt,
                mid: None,
                level: None,
            });
        };
        let (track, pt) = match role {
            Role::Audio => (&w.audio, w.audio.pt),
            Role::Video => {
                let v = w.video.as_ref()?;
                (&v.track, v.track.pt)
            }
            Role::Rtx => {
                let v = w.video.as_ref()?;
                (&v.track, v.rtx_pt?)
            }
        };
        if !track.recv {
            return None;
        }
        Some(Target {
            pt,
            mid: track.ext_mid.map(|id| (id, track.mid.as_str())),
            level: if role == Role::Audio {
                track.ext_audio_level
            } else {
                None
            },
        })
    }
}

/// The sender's audio level element's data (RFC 6464: one byte, V and the level), when the
/// sender negotiated the extension and this packet carries it.
pub(crate) fn sender_level<T: AsRef<[u8]>>(
    sender: &Endpoint,
    role: Role,
    packet: &rtp::Packet<T>,
) -> Option<u8> {
    if role != Role::Audio {
        return None;
    }
    let id = sender.webrtc.as_ref()?.audio.ext_audio_level?;
    let data = hdrext::find(packet.extension()?, id)?;
    match data {
        [level] => Some(*level),
        _ => None,
    }
}

/// Whether `packet` goes to `t` byte for byte (a radio receiving a radio's packet).
pub(crate) fn unchanged<T: AsRef<[u8]>>(t: &Target<'_>, packet: &rtp::Packet<T>) -> bool {
    t.mid.is_none() && t.level.is_none() && !packet.has_extension() && packet.payload_type() == t.pt
}

/// Writes `t`'s copy of `packet` at the start of `out`, with `level` (the sender's audio
/// level) when `t` takes it; returns its length, or `None` when it does not fit `out`.
pub(crate) fn write<T: AsRef<[u8]>>(
    t: &Target<'_>,
    level: Option<u8>,
    packet: &rtp::Packet<T>,
    out: &mut [u8],
) -> Option<usize> {
    let bytes = packet.as_bytes();
    let csrc_end = FIXED_LEN + 4 * usize::from(packet.csrc_count());
    let payload = bytes.get(packet.header_len()..)?;
    out.get_mut(..csrc_end)?
        .copy_from_slice(bytes.get(..csrc_end)?);
    let level_data = [level.unwrap_or(0)];
    let mut elements = heapless::Vec::<Element<'_>, 2>::new();
    if let Some((id, mid)) = t.mid {
        let _ = elements.push(Element {
            id,
            data: mid.as_bytes(),
        });
    }
    if let (Some(id), Some(_)) = (t.level, level) {
        let _ = elements.push(Element {
            id,
            data: &level_data,
        });
    }
    let ext_len = if elements.is_empty() {
        0
    } else {
        hdrext::emit(&elements, out.get_mut(csrc_end..)?).ok()?
    };
    let first = out.first_mut()?;
    *first = if ext_len > 0 {
        *first | EXTENSION_BIT
    } else {
        *first & !EXTENSION_BIT
    };
    let second = out.get_mut(1)?;
    *second = (*second & !PT_MASK) | (t.pt & PT_MASK);
    let at = csrc_end + ext_len;
    out.get_mut(at..at + payload.len())?
        .copy_from_slice(payload);
    Some(at + payload.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::rtp::{Extension, Header};

    fn packet(pt: u8, ext: Option<Extension<'_>>, csrcs: &[u32]) -> Vec<u8> {
        let h = Header {
            marker: true,
            payload_type: pt,
            seq_number: 7,
            timestamp: 9,
            ssrc: 0x1234,
            csrcs,
            extension: ext,
        };
        let mut buf = vec![0u8; 200];
        let n = h.emit_packet(b"payload!", 3, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn extensions_and_payload_type_are_the_receivers() {
        // The sender's one-byte extension: its audio level (id 1) and its MID (id 9, "a").
        let data = [0x10, 0x85, 0x90, b'a'];
        let sent = packet(
            111,
            Some(Extension {
                profile: 0xBEDE,
                data: &data,
            }),
            &[5],
        );
        let view = rtp::Packet::new_checked(&sent[..]).unwrap();
        let t = Target {
            pt: 109,
            mid: Some((3, "audio0")),
            level: Some(2),
        };
        let mut out = [0u8; 300];
        let n = write(&t, Some(0x85), &view, &mut out).unwrap();
        let got = rtp::Packet::new_checked(&out[..n]).unwrap();
        assert_eq!(got.payload_type(), 109);
        assert!(got.marker());
        assert_eq!(
            (got.seq_number(), got.timestamp(), got.ssrc()),
            (7, 9, 0x1234)
        );
        assert_eq!(got.csrcs().collect::<Vec<_>>(), [5]);
        assert_eq!(got.payload(), b"payload!");
        assert_eq!(got.padding_len(), 3);
        let els: Vec<_> = hdrext::elements(got.extension().unwrap()).collect();
        assert_eq!(
            els,
            [
                Element {
                    id: 3,
                    data: b"audio0"
                },
                Element {
                    id: 2,
                    data: &[0x85]
                },
            ]
        );
        // A radio: no extension at all, its payload type.
        let radio = Target {
            pt: 0,
            mid: None,
            level: None,
        };
        let n = write(&radio, Some(0x85), &view, &mut out).unwrap();
        let got = rtp::Packet::new_checked(&out[..n]).unwrap();
        assert!(!got.has_extension());
        assert_eq!(got.payload_type(), 0);
        assert_eq!(n, sent.len() - 8, "the 8-byte extension block went");
        assert!(!unchanged(&radio, &view));
        // No level from the sender: none written, even to a receiver that takes it.
        let plain = packet(0, None, &[]);
        let view = rtp::Packet::new_checked(&plain[..]).unwrap();
        assert!(unchanged(&radio, &view));
        let n = write(&t, None, &view, &mut out).unwrap();
        let got = rtp::Packet::new_checked(&out[..n]).unwrap();
        let els: Vec<_> = hdrext::elements(got.extension().unwrap()).collect();
        assert_eq!(
            els,
            [Element {
                id: 3,
                data: b"audio0"
            }]
        );
        // Too small a buffer is no copy.
        assert_eq!(write(&t, None, &view, &mut out[..20]), None);
    }
}
