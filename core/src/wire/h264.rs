//! H.264 access units as an RTSP client hands them over, and their RTP payloads
//! (RFC 6184, packetization-mode 1).
//!
//! An access unit arrives as NAL units each preceded by a 4-byte big-endian length (the
//! AVC/MP4 framing, ISO/IEC 14496-15 section 5.3.4.2). [`Nals::new`] walks them: the only
//! door for those bytes, it yields each NAL unit in turn and stops with an error at the
//! first length that runs past the buffer or a NAL unit that is empty.
//!
//! [`Fragments`] cuts one NAL unit into RTP payloads no longer than a limit: the NAL unit
//! itself when it fits (a single NAL unit packet, RFC 6184 section 5.6), otherwise FU-A
//! fragments (section 5.8):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | FU indicator  |   FU header   |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
//! |                         FU payload                            |
//! |                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               :...OPTIONAL RTP padding        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! FU indicator: |F|NRI|  Type=28  |     FU header: |S|E|R|  Type  |
//! ```

use super::bytes::be_u32;

/// Bytes of the length before each NAL unit.
pub const LENGTH_LEN: usize = 4;
/// FU indicator and FU header.
pub const FU_A_HEADER_LEN: usize = 2;

/// NAL unit types this crate tells apart (ITU-T H.264 Table 7-1; RFC 6184 section 5.4).
pub mod nal_type {
    /// A coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// A coded slice of an IDR picture: a key frame.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
    /// Fragmentation unit A (RFC 6184 section 5.8).
    pub const FU_A: u8 = 28;
}

/// The NAL unit type: the low five bits of its first byte.
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Why bytes are not an access unit of length-prefixed NAL units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A length field cut short, or a length that runs past the buffer.
    Truncated,
    /// A NAL unit of length zero.
    Empty,
}

/// The NAL units of one access unit, each a slice of the buffer.
#[derive(Debug, Clone)]
pub struct Nals<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Nals<'a> {
    /// A walk over `au`. Each item is a NAL unit, or the error that ends the walk.
    pub fn new(au: &'a [u8]) -> Self {
        Nals {
            rest: au,
            failed: false,
        }
    }

    /// Checks the whole access unit: every length in bounds, no NAL unit empty, and at
    /// least one NAL unit.
    pub fn check(au: &'a [u8]) -> Result<Self, Error> {
        let mut n = 0usize;
        for nal in Nals::new(au) {
            nal?;
            n += 1;
        }
        if n == 0 {
            return Err(Error::Empty);
        }
        Ok(Nals::new(au))
    }
}

impl<'a> Iterator for Nals<'a> {
    type Item = Result<&'a [u8], Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = (|| {
            let len = usize::try_from(be_u32(self.rest.get(..LENGTH_LEN)?)).ok()?;
            let end = LENGTH_LEN.checked_add(len)?;
            let nal = self.rest.get(LENGTH_LEN..end)?;
            self.rest = self.rest.get(end..).unwrap_or_default();
            Some(nal)
        })();
        let item = match r {
            None => Err(Error::Truncated),
            Some([]) => Err(Error::Empty),
            Some(nal) => Ok(nal),
        };
        self.failed = item.is_err();
        Some(item)
    }
}

/// One RTP payload of a NAL unit: `header` (when present) then `body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The FU indicator and FU header of an FU-A fragment; `None` for a single NAL unit.
    pub header: Option<[u8; FU_A_HEADER_LEN]>,
    /// The NAL unit, or the piece of its payload this fragment carries.
    pub body: &'a [u8],
    /// The last payload of the NAL unit.
    pub last: bool,
}

impl Fragment<'_> {
    /// Bytes of the payload.
    pub fn len(&self) -> usize {
        self.header.map_or(0, |h| h.len()) + self.body.len()
    }

    /// Whether the payload is empty (never, for a fragment [`Fragments`] made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the payload at the start of `out`; `None` when it does not fit.
    pub fn write(&self, out: &mut [u8]) -> Option<usize> {
        let h = self.header.as_ref().map_or(&[][..], |h| &h[..]);
        let n = h.len() + self.body.len();
        let dst = out.get_mut(..n)?;
        let (a, b) = dst.split_at_mut(h.len());
        a.copy_from_slice(h);
        b.copy_from_slice(self.body);
        Some(n)
    }
}

/// The RTP payloads of one NAL unit, each at most `limit` bytes (RFC 6184 sections 5.6
/// and 5.8).
#[derive(Debug, Clone)]
pub struct Fragments<'a> {
    nal: &'a [u8],
    /// Where the next fragment's payload starts in `nal`; `None` once done.
    at: Option<usize>,
    limit: usize,
}

impl<'a> Fragments<'a> {
    /// The payloads of `nal` for payloads of at most `limit` bytes. An empty NAL unit, or a
    /// limit with no room for a byte after the FU-A header, yields nothing.
    pub fn new(nal: &'a [u8], limit: usize) -> Self {
        Fragments {
            nal,
            at: (!nal.is_empty() && limit > FU_A_HEADER_LEN).then_some(0),
            limit,
        }
    }
}

impl<'a> Iterator for Fragments<'a> {
    type Item = Fragment<'a>;

    fn next(&mut self) -> Option<Fragment<'a>> {
        let at = self.at?;
        if at == 0 && self.nal.len() <= self.limit {
            self.at = None;
            return Some(Fragment {
                header: None,
                body: self.nal,
                last: true,
            });
        }
        let first = self.nal.first().copied().unwrap_or(0);
        // The NAL header byte travels as the FU indicator (F, NRI) and FU header (type),
        // not in the fragments' payload (section 5.8).
        let start = at.max(1);
        let end = start
            .saturating_add(self.limit - FU_A_HEADER_LEN)
            .min(self.nal.len());
        let last = end == self.nal.len();
        let (s, e) = (if at == 0 { 0x80 } else { 0 }, if last { 0x40 } else { 0 });
        self.at = (!last).then_some(end);
        Some(Fragment {
            header: Some([(first & 0xe0) | nal_type::FU_A, s | e | (first & 0x1f)]),
            body: self.nal.get(start..end).unwrap_or_default(),
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(nals: &[&[u8]]) -> std::vec::Vec<u8> {
        let mut v = std::vec::Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn nals_are_walked_in_order() {
        let b = au(&[&[0x67, 1, 2], &[0x68, 3], &[0x65, 4, 5, 6]]);
        let types: std::vec::Vec<u8> = Nals::check(&b)
            .unwrap()
            .map(|n| nal_unit_type(n.unwrap()))
            .collect();
        assert_eq!(types, [nal_type::SPS, nal_type::PPS, nal_type::IDR]);
    }

    #[test]
    fn bad_lengths_end_the_walk_with_an_error() {
        assert_eq!(Nals::check(&[]).unwrap_err(), Error::Empty);
        assert_eq!(Nals::check(&[0, 0, 0]).unwrap_err(), Error::Truncated);
        assert_eq!(
            Nals::check(&[0, 0, 0, 5, 1, 2]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Nals::check(&[0, 0, 0, 0]).unwrap_err(), Error::Empty);
        assert_eq!(
            Nals::check(&[0xff, 0xff, 0xff, 0xff, 1]).unwrap_err(),
            Error::Truncated
        );
        let mut ok_then_bad = au(&[&[0x41, 9]]);
        ok_then_bad.extend_from_slice(&[0, 0, 1]);
        let mut it = Nals::new(&ok_then_bad);
        assert_eq!(it.next(), Some(Ok(&[0x41, 9][..])));
        assert_eq!(it.next(), Some(Err(Error::Truncated)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn a_nal_that_fits_is_one_single_nal_unit_packet() {
        let nal = [0x65, 1, 2, 3];
        let f: std::vec::Vec<_> = Fragments::new(&nal, 4).collect();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].header, f[0].body, f[0].last), (None, &nal[..], true));
    }

    /// RFC 6184 section 5.8: S on the first fragment, E on the last, the indicator keeps F
    /// and NRI with type 28, the header the original type; the NAL header byte itself is not
    /// repeated, and the fragments' bodies put back together are the rest of the NAL unit.
    #[test]
    fn a_large_nal_is_cut_into_fu_a_fragments() {
        let mut nal = std::vec![0x65u8];
        nal.extend((0..1000u32).map(|i| i as u8));
        let frags: std::vec::Vec<_> = Fragments::new(&nal, 100).collect();
        assert_eq!(frags.len(), 11); // 1000 bytes after the NAL header, 98 a fragment.
        let mut body = std::vec::Vec::new();
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= 100);
            let [ind, hdr] = f.header.unwrap();
            assert_eq!(ind, 0x60 | 28);
            assert_eq!(hdr & 0x1f, 5);
            assert_eq!(hdr & 0x80 != 0, i == 0);
            assert_eq!(hdr & 0x40 != 0, i == frags.len() - 1);
            assert_eq!(f.last, i == frags.len() - 1);
            let mut out = [0u8; 100];
            let n = f.write(&mut out).unwrap();
            assert_eq!(&out[2..n], f.body);
            body.extend_from_slice(f.body);
        }
        assert_eq!(body, &nal[1..]);
    }

    #[test]
    fn no_room_means_no_fragments() {
        assert_eq!(Fragments::new(&[0x65, 1, 2, 3], 2).count(), 0);
        assert_eq!(Fragments::new(&[], 1200).count(), 0);
    }
}
