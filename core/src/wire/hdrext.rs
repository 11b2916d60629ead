//! RTP header extension elements (RFC 8285): the one-byte form (profile `0xBEDE`, section
//! 4.2) and the two-byte form (profile `0x100` in the top 12 bits, section 4.3), read from
//! an [`rtp::Extension`](super::rtp::Extension) and written for a receiver.
//!
//! One-byte form, each element an ID and a length minus one in one byte:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       0xBE    |    0xDE       |           length=3            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  ID   | L=0   |     data      |  ID   |  L=1  |   data...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!       ...data   |    0 (pad)    |    0 (pad)    |  ID   | L=3   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          data                                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Two-byte form, an ID byte and a length byte per element:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       0x10    |    0x00       |           length=3            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      ID       |     L=0       |     ID        |     L=1       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       data    |    0 (pad)    |       ID      |      L=4      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          data                                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::rtp::Extension;

/// The one-byte form's profile (RFC 8285 section 4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// The two-byte form's profile, its low 4 bits ("appbits") masked off (section 4.3).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;
/// The two-byte form's profile mask.
const TWO_BYTE_MASK: u16 = 0xFFF0;
/// The one-byte form's ID that ends parsing (section 4.2: "the value 15 is reserved").
const ONE_BYTE_STOP: u8 = 15;
/// Largest ID and element length the one-byte form carries.
const ONE_BYTE_MAX_ID: u8 = 14;
const ONE_BYTE_MAX_LEN: usize = 16;

/// One element: its local ID and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The ID the SDP `a=extmap` gave it.
    pub id: u8,
    /// Its data.
    pub data: &'a [u8],
}

/// The elements of an extension in either form; nothing for any other profile. An element
/// whose length runs past the data ends the walk (the rest cannot be framed).
pub fn elements(ext: Extension<'_>) -> impl Iterator<Item = Element<'_>> {
    let form = if ext.profile == ONE_BYTE_PROFILE {
        Some(true)
    } else if ext.profile & TWO_BYTE_MASK == TWO_BYTE_PROFILE {
        Some(false)
    } else {
        None
    };
    let mut at = if form.is_some() { 0 } else { ext.data.len() };
    let data = ext.data;
    core::iter::from_fn(move || {
        let one_byte = form?;
        loop {
            let b = *data.get(at)?;
            if b == 0 {
                // Padding between elements (both forms).
                at += 1;
                continue;
            }
            let (id, len, head) = if one_byte {
                let id = b >> 4;
                if id == ONE_BYTE_STOP {
                    at = data.len();
                    return None;
                }
                (id, usize::from(b & 0x0f) + 1, 1)
            } else {
                (b, usize::from(*data.get(at + 1)?), 2)
            };
            let Some(bytes) = data.get(at + head..at + head + len) else {
                at = data.len();
                return None;
            };
            at += head + len;
            return Some(Element { id, data: bytes });
        }
    })
}

/// The data of element `id`, if the extension has it.
pub fn find(ext: Extension<'_>, id: u8) -> Option<&[u8]> {
    elements(ext).find(|e| e.id == id).map(|e| e.data)
}

/// Why elements could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// The buffer is too short.
    BufferTooSmall,
    /// An ID of 0, or an element longer than 255 bytes.
    BadElement,
}

/// Writes the extension block (profile, length in words, elements, zero padding to a word)
/// holding `elements` at the start of `buf`, in the one-byte form when every ID is 1..=14
/// and every element 1..=16 bytes, else in the two-byte form. Returns its length (a
/// multiple of 4).
pub fn emit(elements: &[Element<'_>], buf: &mut [u8]) -> Result<usize, EmitError> {
    if elements.iter().any(|e| e.id == 0 || e.data.len() > 255) {
        return Err(EmitError::BadElement);
    }
    let one_byte = elements
        .iter()
        .all(|e| e.id <= ONE_BYTE_MAX_ID && (1..=ONE_BYTE_MAX_LEN).contains(&e.data.len()));
    let head = if one_byte { 1 } else { 2 };
    let body: usize = elements.iter().map(|e| head + e.data.len()).sum();
    let padded = body.div_ceil(4) * 4;
    let total = 4 + padded;
    let out = buf.get_mut(..total).ok_or(EmitError::BufferTooSmall)?;
    let profile = if one_byte {
        ONE_BYTE_PROFILE
    } else {
        TWO_BYTE_PROFILE
    };
    let words = u16::try_from(padded / 4).map_err(|_| EmitError::BadElement)?;
    out[..2].copy_from_slice(&profile.to_be_bytes());
    out[2..4].copy_from_slice(&words.to_be_bytes());
    let mut at = 4;
    for e in elements {
        // The casts cannot truncate: the checks above bound IDs and lengths.
        if one_byte {
            out[at] = (e.id << 4) | (e.data.len() - 1) as u8;
        } else {
            out[at] = e.id;
            out[at + 1] = e.data.len() as u8;
        }
        at += head;
        out[at..at + e.data.len()].copy_from_slice(e.data);
        at += e.data.len();
    }
    out[at..].fill(0);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(profile: u16, data: &[u8]) -> Extension<'_> {
        Extension { profile, data }
    }

    /// RFC 8285 section 4.2's figure: elements of 1, 2 and 4 bytes with two padding bytes.
    /// https://www.rfc-editor.org/rfc/rfc8285#section-4.2
    const ONE_BYTE_FIGURE: [u8; 12] = [
        0x10, 0xaa, 0x21, 0xbb, 0xbb, 0x00, 0x00, 0x33, 0xcc, 0xcc, 0xcc, 0xcc,
    ];

    /// RFC 8285 section 4.3's figure: elements of 0, 1 and 4 bytes with one padding byte.
    /// https://www.rfc-editor.org/rfc/rfc8285#section-4.3
    const TWO_BYTE_FIGURE: [u8; 12] = [
        0x01, 0x00, 0x02, 0x01, 0xbb, 0x00, 0x03, 0x04, 0xcc, 0xcc, 0xcc, 0xcc,
    ];

    #[test]
    fn the_rfc_figures_parse() {
        let one: Vec<_> = elements(ext(0xBEDE, &ONE_BYTE_FIGURE)).collect();
        assert_eq!(
            one,
            [
                Element {
                    id: 1,
                    data: &[0xaa]
                },
                Element {
                    id: 2,
                    data: &[0xbb, 0xbb]
                },
                Element {
                    id: 3,
                    data: &[0xcc; 4]
                },
            ]
        );
        let two: Vec<_> = elements(ext(0x1000, &TWO_BYTE_FIGURE)).collect();
        assert_eq!(
            two,
            [
                Element { id: 1, data: &[] },
                Element {
                    id: 2,
                    data: &[0xbb]
                },
                Element {
                    id: 3,
                    data: &[0xcc; 4]
                },
            ]
        );
        // The appbits do not change the form.
        assert_eq!(elements(ext(0x100f, &TWO_BYTE_FIGURE)).count(), 3);
        assert_eq!(
            find(ext(0xBEDE, &ONE_BYTE_FIGURE), 2),
            Some(&[0xbb, 0xbb][..])
        );
        assert_eq!(find(ext(0xBEDE, &ONE_BYTE_FIGURE), 4), None);
    }

    #[test]
    fn other_profiles_stops_and_overruns_end_the_walk() {
        assert_eq!(elements(ext(0xABCD, &ONE_BYTE_FIGURE)).count(), 0);
        // ID 15 stops parsing (RFC 8285 section 4.2).
        assert_eq!(
            elements(ext(0xBEDE, &[0x10, 1, 0xf0, 0, 0x20, 2, 0, 0])).count(),
            1
        );
        // An element running past the data ends the walk without it.
        assert_eq!(elements(ext(0xBEDE, &[0x10, 1, 0x23, 2])).count(), 1);
        assert_eq!(elements(ext(0x1000, &[1, 9, 0, 0])).count(), 0);
        assert_eq!(elements(ext(0x1000, &[1])).count(), 0);
        assert_eq!(elements(ext(0xBEDE, &[])).count(), 0);
    }

    #[test]
    fn emit_picks_the_form_and_round_trips() {
        let mut buf = [0u8; 64];
        let els = [
            Element { id: 3, data: b"0" },
            Element {
                id: 1,
                data: &[0x85],
            },
        ];
        let n = emit(&els, &mut buf).unwrap();
        assert_eq!(&buf[..n], [0xbe, 0xde, 0, 1, 0x30, b'0', 0x10, 0x85]);
        let back: Vec<_> = elements(ext(0xBEDE, &buf[4..n])).collect();
        assert_eq!(back, els);
        // An ID above 14 or a 17-byte value needs the two-byte form.
        let long = [7u8; 17];
        for els in [
            [Element { id: 15, data: b"a" }],
            [Element { id: 2, data: &long }],
        ] {
            let n = emit(&els, &mut buf).unwrap();
            assert_eq!(&buf[..2], [0x10, 0x00]);
            assert_eq!(n % 4, 0);
            let back: Vec<_> = elements(ext(0x1000, &buf[4..n])).collect();
            assert_eq!(back, els);
        }
        assert_eq!(
            emit(&[], &mut buf),
            Ok(4),
            "an empty block is a bare header"
        );
        assert_eq!(
            emit(&[Element { id: 0, data: b"a" }], &mut buf),
            Err(EmitError::BadElement)
        );
        assert_eq!(emit(&els, &mut [0u8; 7]), Err(EmitError::BufferTooSmall));
    }
}
