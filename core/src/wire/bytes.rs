//! Byte-level helpers shared by the RTP and RTCP codecs: big-endian reads that cannot
//! panic, a forward writer over a buffer checked for length once, and [`Records`], the one
//! iterator over items laid back to back (CSRC and SSRC lists, report blocks, SDES chunks
//! and items).

use core::fmt;
use core::iter::FusedIterator;

/// The buffer is shorter than the packet: it needs `needed` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooSmall {
    pub(crate) needed: usize,
}

/// Writes forward into a buffer already known to hold `needed` bytes.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
    needed: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8], needed: usize) -> Result<Self, TooSmall> {
        match buf.get_mut(..needed) {
            Some(buf) => Ok(Writer { buf, at: 0, needed }),
            None => Err(TooSmall { needed }),
        }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }

    pub(crate) fn fill(&mut self, byte: u8, n: usize) {
        let end = self.at.saturating_add(n);
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.fill(byte);
        }
        self.at = end;
    }

    /// The length written, which is `needed` unless the length arithmetic is wrong.
    pub(crate) fn finish(self) -> Result<usize, TooSmall> {
        if self.at == self.needed {
            Ok(self.at)
        } else {
            Err(TooSmall {
                needed: self.at.max(self.needed),
            })
        }
    }
}

/// Big-endian u16 from a 2-byte slice (0 for any other length).
pub(crate) fn be_u16(bytes: &[u8]) -> u16 {
    <[u8; 2]>::try_from(bytes).map_or(0, u16::from_be_bytes)
}

/// Big-endian u32 from a 4-byte slice (0 for any other length).
pub(crate) fn be_u32(bytes: &[u8]) -> u32 {
    <[u8; 4]>::try_from(bytes).map_or(0, u32::from_be_bytes)
}

/// Big-endian u64 from an 8-byte slice (0 for any other length).
pub(crate) fn be_u64(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

/// An item that sits back to back with others of its kind in a packet, and knows how to
/// split itself off the front of the bytes that remain.
///
/// Implemented for `u32` (a CSRC or SSRC list entry, RFC 3550 sections 5.1 and 6.6) and by
/// the RTCP report blocks, SDES chunks and SDES items.
pub trait Record<'a>: Sized {
    /// The length of every item of this kind, when it is fixed.
    const LEN: Option<usize>;

    /// The first item of `rest` and what follows it; `None` when `rest` holds no more
    /// items (its end, an end marker, or bytes that are not one).
    fn split(rest: &'a [u8]) -> Option<(Self, &'a [u8])>;
}

impl<'a> Record<'a> for u32 {
    const LEN: Option<usize> = Some(4);

    fn split(rest: &'a [u8]) -> Option<(u32, &'a [u8])> {
        let (word, tail) = rest.split_first_chunk::<4>()?;
        Some((u32::from_be_bytes(*word), tail))
    }
}

/// Iterator over at most `limit` items of kind `T` laid back to back in a checked packet.
///
/// It ends at the limit or where [`Record::split`] finds no more items; a packet that passed
/// its `new_checked` holds exactly the items its count field announces.
#[derive(Clone)]
pub struct Records<'a, T> {
    rest: &'a [u8],
    limit: usize,
    item: core::marker::PhantomData<fn() -> T>,
}

impl<'a, T: Record<'a>> Records<'a, T> {
    /// Up to `limit` items from the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8], limit: usize) -> Self {
        Records {
            rest: bytes,
            limit,
            item: core::marker::PhantomData,
        }
    }
}

impl<'a, T: Record<'a>> Iterator for Records<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.limit = self.limit.checked_sub(1)?;
        match T::split(self.rest) {
            Some((item, tail)) => {
                self.rest = tail;
                Some(item)
            }
            None => {
                self.limit = 0;
                self.rest = &[];
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match T::LEN {
            // A fixed-size item splits off exactly while that many bytes remain.
            Some(len) => {
                let n = self.limit.min(self.rest.len() / len.max(1));
                (n, Some(n))
            }
            None => (0, Some(self.limit.min(self.rest.len()))),
        }
    }
}

impl<'a, T: Record<'a>> FusedIterator for Records<'a, T> {}

/// Exact for fixed-size items: see `size_hint`.
impl ExactSizeIterator for Records<'_, u32> {}

impl<T> fmt::Debug for Records<'_, T> {
    /// Lengths only; never the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("remaining_len", &self.rest.len())
            .field("limit", &self.limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variable-length record: a length byte and that many bytes; a zero length ends the
    /// list, as SDES's null item does.
    #[derive(Debug, PartialEq)]
    struct Item<'a>(&'a [u8]);

    impl<'a> Record<'a> for Item<'a> {
        const LEN: Option<usize> = None;

        fn split(rest: &'a [u8]) -> Option<(Item<'a>, &'a [u8])> {
            let (&len, tail) = rest.split_first()?;
            if len == 0 {
                return None;
            }
            let (value, tail) = tail.split_at_checked(usize::from(len))?;
            Some((Item(value), tail))
        }
    }

    const WORDS: [u8; 10] = [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 9, 9];

    #[test]
    fn words_stop_at_the_limit_or_a_short_tail() {
        let all: Records<'_, u32> = Records::new(&WORDS, 5);
        // Two whole words; the 2 bytes left are not a third.
        assert_eq!(all.len(), 2);
        assert_eq!(all.clone().collect::<Vec<_>>(), [1, 0xffff_fffe]);
        let one: Records<'_, u32> = Records::new(&WORDS, 1);
        assert_eq!(one.len(), 1);
        assert_eq!(one.collect::<Vec<_>>(), [1]);
        let none: Records<'_, u32> = Records::new(&WORDS, 0);
        assert_eq!(none.len(), 0);
        assert_eq!(none.count(), 0);
        let empty: Records<'_, u32> = Records::new(&[], 3);
        assert_eq!(empty.count(), 0);
    }

    #[test]
    fn size_hint_is_exact_while_iterating() {
        let mut it: Records<'_, u32> = Records::new(&WORDS, usize::MAX);
        for left in (0..=2).rev() {
            assert_eq!(it.size_hint(), (left, Some(left)));
            if left > 0 {
                assert!(it.next().is_some());
            }
        }
        assert_eq!(it.next(), None);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn variable_records_end_at_a_refusal_and_stay_ended() {
        let bytes = [2, b'h', b'i', 1, b'!', 0, 1, b'x'];
        let mut it: Records<'_, Item<'_>> = Records::new(&bytes, usize::MAX);
        assert_eq!(it.size_hint(), (0, Some(bytes.len())));
        assert_eq!(it.next(), Some(Item(b"hi")));
        assert_eq!(it.next(), Some(Item(b"!")));
        // The end marker stops the walk; what follows it is never read.
        assert_eq!(it.next(), None);
        assert_eq!(it.size_hint(), (0, Some(0)));
        assert_eq!(it.next(), None);
        // A record that runs past the end is refused, not cut short.
        let cut: Records<'_, Item<'_>> = Records::new(&[3, b'a', b'b'], usize::MAX);
        assert_eq!(cut.count(), 0);
        let limited: Records<'_, Item<'_>> = Records::new(&bytes, 1);
        assert_eq!(limited.collect::<Vec<_>>(), [Item(b"hi")]);
    }

    #[test]
    fn debug_prints_lengths_not_bytes() {
        let it: Records<'_, u32> = Records::new(&WORDS, 7);
        let text = format!("{it:?}");
        assert_eq!(text, "Records { remaining_len: 10, limit: 7 }");
    }
}
