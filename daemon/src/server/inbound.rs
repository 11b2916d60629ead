//! The inbound side of a WebSocket, between the socket and tungstenite: it reads every
//! client frame header (RFC 6455 section 5.2) as the bytes go by, and turns a whole text or
//! binary frame larger than the protocol's inbound limit (but within the hard cap) into an
//! empty binary frame, dropping its payload as it arrives.
//!
//! PROTOCOL.md section 1 answers such a frame with error 1005 and keeps the connection, so
//! the server has to read it, but need not keep it: tungstenite is then configured with the
//! inbound limit as its frame and message limits and never buffers more than that, while
//! the length of the dropped frame is handed to the connection task through [`Oversized`].
//! Everything else passes unchanged: a frame over the hard cap reaches tungstenite's limits,
//! which fail the connection (1009). A message sent in
//! fragments (RFC 6455 section 5.4) may total at most [`MAX_FRAGMENTED`]: the guard fails the
//! connection (1009) at the header of the fragment that would take it over, before its
//! payload is read. Tungstenite copies fragments into a message of their own while its read
//! buffer keeps the capacity of the largest frame seen, so without this bound a connection
//! could hold the inbound limit twice.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use livechat_core::config::{HARD_FRAME_CAP, MAX_INBOUND_FRAME};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::id_scan::IdScan;

/// Longest client frame header: 2 bytes, a 64-bit length, a 4-byte mask key.
const MAX_HEADER: usize = 14;
/// Most bytes a message sent in fragments may total. Browsers and the usual client libraries
/// send each message as one frame; fragmenting is for streaming large messages, which this
/// protocol does not have.
pub(super) const MAX_FRAGMENTED: u64 = 4096;
/// Bytes read from the socket at a time (tungstenite reads from here in turn).
const SCRATCH: usize = 1024;
/// Payload length beyond which a frame's header is handed on in a read of its own.
/// Tungstenite reserves a frame's whole length in its read buffer once it has the header,
/// on top of the payload bytes it read with it, and its buffer (`BytesMut`) doubles when it
/// cannot reuse its allocation: a 16 KiB frame whose header came with a little payload
/// would grow the buffer to 32 KiB for life. With each read holding bytes of one frame
/// only, and the header of a big one alone, the buffer never holds more than one frame.
const READ_ALONE: usize = 1024;

/// The frame dropped by [`Guard`] whose stand-in tungstenite is reading: its length and, for
/// a text frame, the top-level `id` found in its payload as it went by ([`IdScan`]), taken by
/// the connection task when tungstenite delivers the empty binary message. The guard hands
/// the stand-in on once the payload is dropped, and stores this when it hands on the
/// stand-in's first byte, only in a read that hands on nothing before it: tungstenite
/// delivers every frame before that byte (it parses what it holds before reading more), so
/// an empty binary message the client sent itself is never taken for a stand-in, nor the
/// reverse.
#[derive(Debug, Default, Clone)]
pub(super) struct Oversized(Arc<AtomicU64>);

/// A dropped frame as [`Oversized`] hands it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dropped {
    /// Its length in bytes.
    pub(super) len: usize,
    /// The `id` of its request, as far as it could be read.
    pub(super) id: Option<u32>,
}

impl Oversized {
    /// The frame an empty binary message stands for, if it stands for one.
    pub(super) fn take(&self) -> Option<Dropped> {
        // Packed as length << 33 | id present << 32 | id: a length is at most the hard cap.
        match self.0.swap(0, Ordering::Relaxed) {
            0 => None,
            v => Some(Dropped {
                len: (v >> 33) as usize,
                id: (v & (1 << 32) != 0).then_some(v as u32),
            }),
        }
    }

    fn store(&self, d: Dropped) {
        let id = d.id.map_or(0, |id| 1 << 32 | u64::from(id));
        self.0.store((d.len as u64) << 33 | id, Ordering::Relaxed);
    }
}

enum State {
    /// Reading a frame header: `have` bytes of it so far.
    Header { have: usize },
    /// Passing `left` payload bytes on.
    Pass { left: u64 },
    /// Dropping `left` payload bytes.
    Drop { left: u64 },
    /// A fragmented message went over [`MAX_FRAGMENTED`]: reads fail from here on.
    Failed,
}

/// The error a read gives once a fragmented message went over [`MAX_FRAGMENTED`].
pub(super) fn is_fragmented_too_large(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
        && e.get_ref().is_some_and(|i| i.is::<FragmentedTooLarge>())
}

#[derive(Debug)]
struct FragmentedTooLarge;

impl std::fmt::Display for FragmentedTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a fragmented message over {MAX_FRAGMENTED} bytes")
    }
}

impl std::error::Error for FragmentedTooLarge {}

/// The socket as tungstenite sees it.
pub(super) struct Guard<S> {
    inner: S,
    state: State,
    header: [u8; MAX_HEADER],
    /// Header bytes waiting to be handed on (the original or its empty stand-in).
    out: [u8; MAX_HEADER],
    out_at: usize,
    out_len: usize,
    /// Bytes read from the socket and not yet looked at.
    scratch: Box<[u8; SCRATCH]>,
    scratch_at: usize,
    scratch_len: usize,
    /// Bytes so far of the message being sent in fragments, if one is.
    fragmented: Option<u64>,
    oversized: Oversized,
    /// The frame being dropped: its stand-in's header length in `out` (handed on once the
    /// payload is dropped), its length, the mask key of its payload and the scan for its
    /// `id` (text frames only).
    dropping: Option<Dropping>,
    /// The dropped frame whose stand-in is in `out`, until its first byte is handed on.
    standin: Option<Dropped>,
    /// The header in `out` is handed on in a read of its own (its payload is over
    /// [`READ_ALONE`] bytes).
    header_alone: bool,
}

impl<S> Guard<S> {
    pub(super) fn new(inner: S, oversized: Oversized) -> Self {
        Guard {
            inner,
            state: State::Header { have: 0 },
            header: [0; MAX_HEADER],
            out: [0; MAX_HEADER],
            out_at: 0,
            out_len: 0,
            scratch: Box::new([0; SCRATCH]),
            scratch_at: 0,
            scratch_len: 0,
            fragmented: None,
            oversized,
            dropping: None,
            standin: None,
            header_alone: false,
        }
    }

    /// Takes header bytes from the scratch buffer, up to the end of the header; returns
    /// how many it used.
    fn feed_header(&mut self, mut have: usize) -> usize {
        let mut at = self.scratch_at;
        loop {
            let need = header_len(&self.header[..have]).unwrap_or(2);
            if have == need {
                self.header_done(need);
                break;
            }
            if at == self.scratch_len {
                self.state = State::Header { have };
                break;
            }
            self.header[have] = self.scratch[at];
            have += 1;
            at += 1;
        }
        at - self.scratch_at
    }

    /// A whole header is in `self.header[..len]`: decide what to hand on.
    fn header_done(&mut self, len: usize) {
        let h = &self.header[..len];
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0f;
        let payload = payload_len(h);
        let masked = h[1] & 0x80 != 0;
        let whole_data_frame = fin && (opcode == 0x1 || opcode == 0x2);
        // Fragments: a text or binary frame without FIN starts a message, continuations
        // (opcode 0) add to it, the one with FIN ends it. Protocol errors in that sequence
        // are tungstenite's to find.
        let fragmented = match (opcode, fin) {
            (0x1 | 0x2, false) => Some(payload),
            (0x0, _) => Some(self.fragmented.unwrap_or(0).saturating_add(payload)),
            _ => None,
        };
        if let Some(total) = fragmented {
            if total > MAX_FRAGMENTED {
                self.state = State::Failed;
                return;
            }
            self.fragmented = if fin { None } else { Some(total) };
        }
        let over_limit = payload > MAX_INBOUND_FRAME as u64 && payload <= HARD_FRAME_CAP as u64;
        if whole_data_frame && over_limit {
            // An empty final binary frame with the same reserved bits, mask bit and mask key
            // (RFC 6455 section 5.3: the key is the last four bytes of the header), so that
            // tungstenite finds the same protocol errors (1002) in it as in the original.
            self.out[0] = 0x82 | (h[0] & 0x70);
            self.out[1] = h[1] & 0x80;
            let mut key = None;
            let mut standin_len = 2;
            if masked {
                let mut k = [0u8; 4];
                k.copy_from_slice(&h[len - 4..len]);
                self.out[2..6].copy_from_slice(&k);
                key = Some(k);
                standin_len = 6;
            }
            // Nothing is handed on until the payload is dropped, so the `id` read from it
            // goes with the stand-in.
            self.out_len = 0;
            self.dropping = Some(Dropping {
                standin_len,
                len: payload as usize,
                key,
                at: 0,
                scan: (opcode == 0x1).then(IdScan::default),
            });
            self.header_alone = false;
            self.state = State::Drop { left: payload };
            self.out_at = 0;
            return;
        } else {
            self.out[..len].copy_from_slice(h);
            self.out_len = len;
            self.header_alone = payload > READ_ALONE as u64;
            self.state = State::Pass { left: payload };
        }
        self.out_at = 0;
        if payload == 0 {
            self.state = State::Header { have: 0 };
        }
    }
}

/// The length of the header that starts with `h`, once its first two bytes are known.
fn header_len(h: &[u8]) -> Option<usize> {
    let b1 = *h.get(1)?;
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    Some(2 + ext + mask)
}

/// The payload length of a whole header.
fn payload_len(h: &[u8]) -> u64 {
    match h[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[2..10]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let start = buf.filled().len();
        loop {
            if matches!(this.state, State::Failed) {
                if buf.filled().len() > start {
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    FragmentedTooLarge,
                )));
            }
            // Header bytes waiting go first, and a header starts a read of its own: each
            // read hands on bytes of one frame only (see [`READ_ALONE`]).
            if this.out_at < this.out_len {
                if this.out_at == 0 && buf.filled().len() > start {
                    return Poll::Ready(Ok(()));
                }
                if let Some(d) = this.standin.take() {
                    this.oversized.store(d);
                }
                let n = (this.out_len - this.out_at).min(buf.remaining());
                buf.put_slice(&this.out[this.out_at..this.out_at + n]);
                this.out_at += n;
                let header_done = this.out_at == this.out_len;
                if buf.remaining() == 0 || (header_done && this.header_alone) {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // Then what is already read.
            if this.scratch_at < this.scratch_len {
                let (at, end) = (this.scratch_at, this.scratch_len);
                let used = match this.state {
                    State::Header { have } => this.feed_header(have),
                    State::Pass { left } => {
                        let n = (left.min((end - at) as u64) as usize).min(buf.remaining());
                        buf.put_slice(&this.scratch[at..at + n]);
                        this.advance_payload(left, n, false);
                        if matches!(this.state, State::Header { .. }) {
                            // The frame's last byte: the read ends with it.
                            this.scratch_at += n;
                            return Poll::Ready(Ok(()));
                        }
                        n
                    }
                    State::Drop { left } => {
                        let n = left.min((end - at) as u64) as usize;
                        if let Some(d) = this.dropping.as_mut() {
                            d.scan(&mut this.scratch[at..at + n]);
                        }
                        this.advance_payload(left, n, true);
                        let dropped = matches!(this.state, State::Header { .. });
                        if let Some(d) = this.dropping.take_if(|_| dropped) {
                            // Dropped: the stand-in goes next, with what was read.
                            this.out_len = d.standin_len;
                            this.out_at = 0;
                            this.standin = Some(Dropped {
                                len: d.len,
                                id: d.scan.and_then(|s| s.id()),
                            });
                        }
                        n
                    }
                    State::Failed => 0,
                };
                this.scratch_at += used;
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // Something handed on: let tungstenite look at it before reading more.
            if buf.filled().len() > start {
                return Poll::Ready(Ok(()));
            }
            let mut rb = ReadBuf::new(&mut this.scratch[..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // End of stream: tungstenite sees it as such.
                return Poll::Ready(Ok(()));
            }
            this.scratch_at = 0;
            this.scratch_len = n;
        }
    }
}

/// A frame over the inbound limit while its payload goes by.
struct Dropping {
    standin_len: usize,
    len: usize,
    key: Option<[u8; 4]>,
    /// Payload bytes dropped so far (where the mask key stands).
    at: usize,
    scan: Option<IdScan>,
}

impl Dropping {
    /// Reads the next payload bytes for the `id`, unmasking them in place (RFC 6455 section
    /// 5.3); they are dropped afterwards.
    fn scan(&mut self, bytes: &mut [u8]) {
        let Some(scan) = self.scan.as_mut() else {
            return;
        };
        if let Some(key) = self.key {
            for (i, b) in bytes.iter_mut().enumerate() {
                *b ^= key[(self.at + i) % 4];
            }
        }
        self.at += bytes.len();
        scan.feed(bytes);
    }
}

impl<S> Guard<S> {
    fn advance_payload(&mut self, left: u64, n: usize, dropping: bool) {
        let left = left - n as u64;
        self.state = match (left, dropping) {
            (0, _) => State::Header { have: 0 },
            (l, true) => State::Drop { left: l },
            (l, false) => State::Pass { left: l },
        };
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A socket that hands out its bytes `step` at a time.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = self
                .step
                .min(self.data.len() - self.at)
                .min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    /// A masked client frame (RFC 6455 section 5.2) with key 1, 2, 3, 4.
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    async fn through(input: Vec<u8>, step: usize) -> (Vec<u8>, Oversized) {
        let o = Oversized::default();
        let mut g = Guard::new(
            Trickle {
                data: input,
                at: 0,
                step,
            },
            o.clone(),
        );
        let mut out = Vec::new();
        g.read_to_end(&mut out)
            .await
            .expect("an in-memory socket does not fail");
        (out, o)
    }

    #[tokio::test]
    async fn frames_within_the_limit_pass_unchanged() {
        let mut input = frame(true, 1, 10);
        input.extend(frame(true, 1, MAX_INBOUND_FRAME));
        input.extend(frame(false, 1, 300));
        input.extend(frame(true, 9, 4));
        input.extend(frame(true, 0, 3796));
        for step in [1, 7, 4096] {
            let (out, o) = through(input.clone(), step).await;
            assert_eq!(out, input, "step {step}");
            assert_eq!(o.take(), None);
        }
    }

    #[tokio::test]
    async fn a_whole_frame_over_the_limit_becomes_an_empty_binary_frame() {
        for len in [MAX_INBOUND_FRAME + 1, 20_000, HARD_FRAME_CAP] {
            for step in [1, 13, 4096] {
                let mut input = frame(true, 1, len);
                input.extend(frame(true, 1, 5));
                let (out, o) = through(input, step).await;
                let mut want = vec![0x82, 0x80, 1, 2, 3, 4];
                want.extend(frame(true, 1, 5));
                assert_eq!(out, want, "len {len} step {step}");
                assert_eq!(o.take(), Some(Dropped { len, id: None }));
                assert_eq!(o.take(), None);
            }
        }
    }

    /// A masked text frame carrying `text` (RFC 6455 section 5.3), as a client sends it.
    fn masked_text(text: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![0x81, 0x80 | 127];
        f.extend_from_slice(&(text.len() as u64).to_be_bytes());
        f.extend_from_slice(&key);
        f.extend(text.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[tokio::test]
    async fn a_dropped_text_frame_hands_on_the_id_it_carried() {
        let pad = "p".repeat(MAX_INBOUND_FRAME);
        let with_id = format!(r#"{{"op":1,"pad":"{pad}","id":4242}}"#);
        let without = format!(r#"{{"op":1,"pad":"{pad}"}}"#);
        for step in [1, 999, 1 << 20] {
            let (out, o) = through(masked_text(with_id.as_bytes()), step).await;
            assert_eq!(out, vec![0x82, 0x80, 0x37, 0xfa, 0x21, 0x3d], "step {step}");
            let len = with_id.len();
            assert_eq!(
                o.take(),
                Some(Dropped {
                    len,
                    id: Some(4242)
                }),
                "step {step}"
            );
            let (_, o) = through(masked_text(without.as_bytes()), step).await;
            let len = without.len();
            assert_eq!(o.take(), Some(Dropped { len, id: None }), "step {step}");
        }
        // A binary frame carries no request: its bytes are not read for one.
        let mut binary = masked_text(with_id.as_bytes());
        binary[0] = 0x82;
        let (_, o) = through(binary, 4096).await;
        let len = with_id.len();
        assert_eq!(o.take(), Some(Dropped { len, id: None }));
    }

    #[tokio::test]
    async fn a_fragmented_message_over_its_limit_fails_before_its_payload() {
        let mut ok = frame(false, 1, 4000);
        ok.extend(frame(true, 9, 4));
        let mut input = ok.clone();
        input.extend(frame(false, 0, 97));
        input.extend(frame(true, 0, 1));
        for step in [1, 4096] {
            let o = Oversized::default();
            let mut g = Guard::new(
                Trickle {
                    data: input.clone(),
                    at: 0,
                    step,
                },
                o,
            );
            let mut out = Vec::new();
            let e = g
                .read_to_end(&mut out)
                .await
                .expect_err("the 4097th byte of a fragmented message fails the read");
            assert!(is_fragmented_too_large(&e), "{e}");
            assert_eq!(
                out, ok,
                "what came before the failing fragment is handed on"
            );
        }
    }

    #[tokio::test]
    async fn a_stand_in_keeps_the_reserved_bits_and_the_mask_bit() {
        let len = MAX_INBOUND_FRAME + 1;
        let mut rsv = frame(true, 1, len);
        rsv[0] |= 0x40;
        let (out, o) = through(rsv, 4096).await;
        assert_eq!(out, vec![0xc2, 0x80, 1, 2, 3, 4], "RSV1 stays set: 1002");
        assert_eq!(o.take(), Some(Dropped { len, id: None }));
        // Unmasked: the same header without mask bit and key, no payload.
        let mut unmasked = vec![0x81, 127];
        unmasked.extend_from_slice(&(len as u64).to_be_bytes());
        unmasked.extend(std::iter::repeat_n(b'x', len));
        let (out, o) = through(unmasked, 4096).await;
        assert_eq!(out, vec![0x82, 0x00], "still unmasked: 1002");
        assert_eq!(o.take(), Some(Dropped { len, id: None }));
    }

    /// A stand-in is handed on in a read of its own, and its length only then: frames
    /// before it, an empty binary one included, are delivered before it is stored.
    #[tokio::test]
    async fn a_stand_in_comes_in_a_read_of_its_own() {
        let len = MAX_INBOUND_FRAME + 1;
        let mut input = frame(true, 2, 5);
        input.extend(frame(true, 2, 0));
        input.extend(frame(true, 1, len));
        input.extend(frame(true, 1, 3));
        let o = Oversized::default();
        let mut g = Guard::new(
            Trickle {
                data: input,
                at: 0,
                step: 1 << 20,
            },
            o.clone(),
        );
        let mut buf = [0u8; 4096];
        for before in [frame(true, 2, 5), frame(true, 2, 0)] {
            let n = g.read(&mut buf).await.expect("in memory");
            assert_eq!(&buf[..n], &before[..], "a frame before the stand-in");
            assert_eq!(o.take(), None, "nothing stored while it is delivered");
        }
        let n = g.read(&mut buf).await.expect("in memory");
        assert_eq!(&buf[..n], &[0x82, 0x80, 1, 2, 3, 4][..], "the stand-in");
        assert_eq!(o.take(), Some(Dropped { len, id: None }));
    }

    /// Each read holds bytes of one frame only, and a big frame's header comes alone, so
    /// tungstenite's read buffer never holds more than the frame it is reading.
    #[tokio::test]
    async fn reads_never_cross_a_frame_and_a_big_header_comes_alone() {
        let mut input = frame(true, 1, 10);
        input.extend(frame(true, 1, MAX_INBOUND_FRAME));
        input.extend(frame(true, 1, 10));
        let o = Oversized::default();
        let mut g = Guard::new(
            Trickle {
                data: input,
                at: 0,
                step: 1 << 20,
            },
            o,
        );
        let mut buf = [0u8; 8192];
        let mut reads = Vec::new();
        loop {
            let n = g.read(&mut buf).await.expect("in memory");
            if n == 0 {
                break;
            }
            reads.push(n);
        }
        let small = frame(true, 1, 10).len();
        assert_eq!(reads.first(), Some(&small), "the first frame alone");
        assert_eq!(reads.get(1), Some(&8), "the big frame's header alone");
        let payload: usize = reads[2..reads.len() - 1].iter().sum();
        assert_eq!(payload, MAX_INBOUND_FRAME, "then its payload, nothing more");
        assert_eq!(reads.last(), Some(&small), "the last frame alone");
    }

    #[tokio::test]
    async fn a_frame_over_the_hard_cap_is_left_to_tungstenite() {
        let input = frame(true, 1, HARD_FRAME_CAP + 1);
        let (out, o) = through(input.clone(), 4096).await;
        assert_eq!(out, input);
        assert_eq!(o.take(), None);
    }

    /// Any sequence of whole client frames, masked or not, read in any chunks: what the guard
    /// hands on is each frame unchanged, or for a data frame over the inbound limit (up to the
    /// hard cap) its empty stand-in with the same reserved bits, mask bit and key; and the
    /// last stand-in's length and `id` are those of the last dropped frame.
    mod props {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        struct Spec {
            opcode: u8,
            rsv: u8,
            key: Option<[u8; 4]>,
            len: usize,
            id: Option<u32>,
        }

        fn spec() -> impl Strategy<Value = Spec> {
            let len = prop_oneof![
                0usize..200,
                MAX_INBOUND_FRAME - 2..MAX_INBOUND_FRAME + 3,
                MAX_INBOUND_FRAME + 1..HARD_FRAME_CAP + 1,
            ];
            (
                prop_oneof![Just(1u8), Just(2u8), Just(9u8), Just(10u8)],
                prop_oneof![Just(0u8), Just(0x40u8)],
                prop::option::of(any::<[u8; 4]>()),
                len,
                prop::option::of(any::<u32>()),
            )
                .prop_map(|(opcode, rsv, key, len, id)| {
                    // Control frames carry at most 125 bytes (RFC 6455 section 5.5).
                    let len = if opcode >= 8 { len.min(125) } else { len };
                    Spec {
                        opcode,
                        rsv,
                        key,
                        len,
                        id,
                    }
                })
        }

        /// The frame's bytes on the wire: a JSON text with the id when there is room.
        fn wire(s: &Spec) -> Vec<u8> {
            let mut payload = vec![b' '; s.len];
            if let Some(id) = s.id {
                let head = format!(r#"{{"id":{id},"p":""#);
                if s.len >= head.len() + 2 {
                    payload[..head.len()].copy_from_slice(head.as_bytes());
                    payload[s.len - 2..].copy_from_slice(br#""}"#);
                }
            }
            let mut f = vec![0x80 | s.rsv | s.opcode];
            let mask_bit = if s.key.is_some() { 0x80 } else { 0 };
            match s.len {
                0..=125 => f.push(mask_bit | s.len as u8),
                126..=0xffff => {
                    f.push(mask_bit | 126);
                    f.extend_from_slice(&(s.len as u16).to_be_bytes());
                }
                _ => {
                    f.push(mask_bit | 127);
                    f.extend_from_slice(&(s.len as u64).to_be_bytes());
                }
            }
            if let Some(k) = s.key {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            } else {
                f.extend_from_slice(&payload);
            }
            f
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]

            #[test]
            fn frames_pass_or_stand_in(
                specs in prop::collection::vec(spec(), 1..5),
                step in prop_oneof![1usize..40, 900usize..5000],
            ) {
                let mut input = Vec::new();
                let mut want = Vec::new();
                let mut last = None;
                for s in &specs {
                    let f = wire(s);
                    input.extend_from_slice(&f);
                    let data = s.opcode == 1 || s.opcode == 2;
                    if data && s.len > MAX_INBOUND_FRAME {
                        want.push(0x82 | s.rsv);
                        want.push(if s.key.is_some() { 0x80 } else { 0 });
                        if let Some(k) = s.key {
                            want.extend_from_slice(&k);
                        }
                        let id = s.id.filter(|_| s.opcode == 1);
                        last = Some(Dropped { len: s.len, id });
                    } else {
                        want.extend_from_slice(&f);
                    }
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a runtime for the in-memory reads");
                let (out, o) = rt.block_on(through(input, step));
                prop_assert_eq!(out, want);
                prop_assert_eq!(o.take(), last);
            }
        }
    }
}
