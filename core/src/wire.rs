//! Byte-level helpers shared by the RTP and RTCP codecs: big-endian reads that cannot
//! panic, and a forward writer over a buffer checked for length once.

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
