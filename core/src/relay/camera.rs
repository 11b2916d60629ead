//! RTSP cameras as channel sources (PROTOCOL.md section 7): what the relay keeps for each
//! camera and how one access unit becomes RTP for one viewer.
//!
//! The driver pulls the camera over RTSP and hands the core whole H.264 access units; the
//! core packetizes them (RFC 6184, packetization-mode 1) once per viewer, because each
//! viewer has its own payload type, MID extension, sequence numbers and SRTP context. A
//! camera has one SSRC for the life of the process, so a reconnect to the camera is not a
//! new stream to the viewers; the RTP timestamps carry on from where they were.
//!
//! Instant start: the latest key frame (with its SPS and PPS) is kept, in storage the
//! driver provides, and sent to each viewer before the first live frame it gets, and again
//! after a PLI or FIR from it names the camera's SSRC (RFC 4585 section 6.3.1, RFC 5104
//! section 4.3.1): a camera cannot be asked for a key frame, so the kept one answers.

use crate::config::{CAMERA_RTP_PAYLOAD, MAX_PARAMETER_SET};
use crate::protocol::Id;
use crate::wire::h264::{self, Fragments, Nals, nal_type};
use crate::wire::rtp;

/// RTP clock rate of H.264 (RFC 6184 section 8.2.1).
pub const H264_CLOCK_HZ: u64 = 90_000;

/// The RTP timestamp gap put between the last frame of one RTSP session and the first of
/// the next, so the stream stays monotonic across a reconnect: one frame at 25 fps.
const RECONNECT_GAP: u32 = (H264_CLOCK_HZ / 25) as u32;

/// Per viewer, per camera: the viewer's sequence numbers and whether it has the key frame.
/// The driver provides one per endpoint slot; an unused one is never written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewerSeq {
    /// The serial of the endpoint these numbers belong to (0: none yet).
    serial: u32,
    /// The next sequence number to send it.
    seq: u16,
    /// It has been sent a key frame.
    primed: bool,
}

/// One access unit from a camera, as its RTSP session delivered it.
#[derive(Debug, Clone, Copy)]
pub struct CameraFrame<'f> {
    /// NAL units each preceded by its 4-byte length.
    pub au: &'f [u8],
    /// Its time in the camera's 90 kHz clock, counted from the start of the RTSP session.
    pub timestamp: u64,
    /// The driver's count of RTSP sessions to this camera: a new value is a reconnect.
    pub session: u32,
}

/// What the core did with a camera's frame, beyond relaying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// Relayed (to this many viewers), the kept key frame unchanged.
    Relayed(usize),
    /// A key frame, kept for late viewers, and relayed to this many viewers.
    KeyFrameKept(usize),
    /// A key frame larger than the storage for it: relayed to this many viewers, and the
    /// kept key frame dropped (a late viewer waits for the camera's next one).
    KeyFrameTooLarge(usize),
}

/// Why a frame was not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No camera in that slot.
    UnknownCamera,
    /// Not NAL units with 4-byte lengths.
    Malformed(h264::Error),
    /// The camera's channel is gone (deleted by an operator).
    NoChannel,
}

/// Counters of one camera.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CameraStats {
    /// Access units received.
    pub frames: u64,
    /// Bytes of them.
    pub bytes: u64,
    /// Access units that were not NAL units with 4-byte lengths.
    pub malformed: u64,
    /// Frames that found no channel.
    pub no_channel: u64,
    /// Key frames kept.
    pub key_frames: u64,
    /// Key frames too large to keep (each one a dropped cache).
    pub key_frames_too_large: u64,
    /// Kept key frames sent to a viewer (on its first frame, or after its PLI or FIR).
    pub key_frames_sent: u64,
    /// PLIs and FIRs from viewers naming the camera's SSRC.
    pub key_frame_requests: u64,
    /// RTP packets sent to viewers.
    pub packets_out: u64,
    /// Bytes of them (protected).
    pub bytes_out: u64,
    /// Packets to viewers that could not be built or sent.
    pub drops: u64,
}

/// Storage the driver provides for one camera.
pub struct CameraStorage<'a> {
    /// The latest SPS and PPS (the first `2 * MAX_PARAMETER_SET` bytes) and key frame's
    /// access unit (the rest: its length is the largest key frame kept).
    pub key_frame: &'a mut [u8],
    /// One per endpoint slot (the media peer limit).
    pub viewers: &'a mut [ViewerSeq],
}

/// One camera.
pub struct Camera<'a> {
    /// Its id: the `user_id` it has as a member of its channel.
    pub id: Id,
    /// Its channel's id.
    pub channel_id: Id,
    ssrc: u32,
    key_frame: &'a mut [u8],
    /// Bytes of `key_frame` in use; 0: none kept.
    key_len: usize,
    /// The SPS then the PPS, each in `MAX_PARAMETER_SET` bytes, and their lengths.
    params: &'a mut [u8],
    sps_len: usize,
    pps_len: usize,
    viewers: &'a mut [ViewerSeq],
    clock: Clock,
    /// Counters.
    pub stats: CameraStats,
}

impl core::fmt::Debug for Camera<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Camera")
            .field("id", &self.id)
            .field("channel_id", &self.channel_id)
            .field("ssrc", &self.ssrc)
            .field("key_len", &self.key_len)
            .field("stats", &self.stats)
            .finish()
    }
}

/// The camera's RTP clock: the camera's own timestamps, shifted so that each RTSP session
/// carries on after the last.
#[derive(Debug, Clone, Copy, Default)]
struct Clock {
    session: Option<u32>,
    /// The RTP timestamp of the session's timestamp zero.
    base: u32,
    /// The last RTP timestamp sent.
    last: u32,
}

impl Clock {
    fn rtp(&mut self, session: u32, ts: u64) -> u32 {
        if self.session != Some(session) {
            self.base = match self.session {
                Some(_) => self.last.wrapping_add(RECONNECT_GAP),
                None => self.base,
            };
            self.session = Some(session);
        }
        // The RTP timestamp is the low 32 bits (RFC 3550 section 5.1: it wraps).
        self.last = self.base.wrapping_add(ts as u32);
        self.last
    }
}

impl<'a> Camera<'a> {
    /// A camera `id` feeding `channel_id`, sending with `ssrc`; `clock_base` is the random
    /// start of its RTP timestamps (RFC 3550 section 5.1).
    pub fn new(
        id: Id,
        channel_id: Id,
        ssrc: u32,
        clock_base: u32,
        storage: CameraStorage<'a>,
    ) -> Self {
        let split = storage.key_frame.len().min(2 * MAX_PARAMETER_SET);
        let (params, key_frame) = storage.key_frame.split_at_mut(split);
        Camera {
            id,
            channel_id,
            ssrc,
            key_frame,
            key_len: 0,
            params,
            sps_len: 0,
            pps_len: 0,
            viewers: storage.viewers,
            clock: Clock {
                session: None,
                base: clock_base,
                last: clock_base,
            },
            stats: CameraStats::default(),
        }
    }

    /// Its SSRC, the same across reconnects.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Bytes of the key frame kept (0: none).
    pub fn key_frame_len(&self) -> usize {
        self.key_len
    }

    /// Takes in a frame: counts it, keeps it when it is a key frame, and returns its RTP
    /// timestamp and what became of the kept key frame (the viewer count is filled in by
    /// the caller).
    pub(crate) fn take(
        &mut self,
        frame: &CameraFrame<'_>,
    ) -> Result<(u32, FrameOutcome), FrameError> {
        self.stats.frames += 1;
        self.stats.bytes += frame.au.len() as u64;
        let nals = Nals::check(frame.au).map_err(|e| {
            self.stats.malformed += 1;
            FrameError::Malformed(e)
        })?;
        let mut idr = false;
        for nal in nals.flatten() {
            match h264::nal_unit_type(nal) {
                nal_type::SPS => self.sps_len = keep(self.params.get_mut(..MAX_PARAMETER_SET), nal),
                nal_type::PPS => self.pps_len = keep(self.params.get_mut(MAX_PARAMETER_SET..), nal),
                nal_type::IDR => idr = true,
                _ => {}
            }
        }
        let ts = self.clock.rtp(frame.session, frame.timestamp);
        if !idr {
            return Ok((ts, FrameOutcome::Relayed(0)));
        }
        match self.key_frame.get_mut(..frame.au.len()) {
            Some(dst) => {
                dst.copy_from_slice(frame.au);
                self.key_len = frame.au.len();
                self.stats.key_frames += 1;
                Ok((ts, FrameOutcome::KeyFrameKept(0)))
            }
            None => {
                self.key_len = 0;
                self.stats.key_frames_too_large += 1;
                Ok((ts, FrameOutcome::KeyFrameTooLarge(0)))
            }
        }
    }

    /// The viewer state for the endpoint in `slot` with `serial`: a new endpoint there
    /// starts fresh, with a sequence number of its own.
    pub(crate) fn viewer(&mut self, slot: usize, serial: u32) -> Option<&mut ViewerSeq> {
        let ssrc = self.ssrc;
        let v = self.viewers.get_mut(slot)?;
        if v.serial != serial {
            // Sequence numbers start at a value that depends on the camera and the endpoint
            // (RFC 3550 section 5.1 wants them unpredictable; SRTP protects them anyway).
            let h = crate::gateway::splitmix64((u64::from(ssrc) << 32) | u64::from(serial));
            *v = ViewerSeq {
                serial,
                seq: h as u16,
                primed: false,
            };
        }
        Some(v)
    }

    /// A viewer (by endpoint slot) asked for a key frame: it gets the kept one before its
    /// next live frame.
    pub(crate) fn key_frame_requested(&mut self, slot: usize) {
        self.stats.key_frame_requests += 1;
        if let Some(v) = self.viewers.get_mut(slot) {
            v.primed = false;
        }
    }

    /// The kept SPS, PPS and key frame, when there is a key frame.
    pub(crate) fn kept(&self) -> Option<Kept<'_>> {
        (self.key_len > 0).then(|| Kept {
            sps: self.params.get(..self.sps_len).unwrap_or_default(),
            pps: self
                .params
                .get(MAX_PARAMETER_SET..MAX_PARAMETER_SET + self.pps_len)
                .unwrap_or_default(),
            au: self.key_frame.get(..self.key_len).unwrap_or_default(),
        })
    }
}

/// The kept key frame, for a viewer that needs one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kept<'c> {
    pub(crate) sps: &'c [u8],
    pub(crate) pps: &'c [u8],
    pub(crate) au: &'c [u8],
}

/// Keeps a parameter set in `slot` and returns its length; one larger than the slot (no
/// real one is larger than [`MAX_PARAMETER_SET`]) is not kept: 0.
fn keep(slot: Option<&mut [u8]>, nal: &[u8]) -> usize {
    match slot.and_then(|s| s.get_mut(..nal.len())) {
        Some(dst) => {
            dst.copy_from_slice(nal);
            nal.len()
        }
        None => 0,
    }
}

impl ViewerSeq {
    /// Whether it has had a key frame.
    pub(crate) fn primed(&self) -> bool {
        self.primed
    }

    pub(crate) fn set_primed(&mut self) {
        self.primed = true;
    }

    /// Takes the next sequence number.
    pub(crate) fn next_seq(&mut self) -> u16 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }
}

/// How one viewer's packets of a camera are stamped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'m> {
    pub(crate) ssrc: u32,
    pub(crate) pt: u8,
    pub(crate) timestamp: u32,
    /// The viewer's `urn:ietf:params:rtp-hdrext:sdes:mid` id and its video MID.
    pub(crate) mid: Option<(u8, &'m str)>,
}

/// Writes one RTP packet of an access unit into `out`: the header (with the MID in a
/// one-byte header extension, RFC 8285 section 4.2, when the viewer negotiated it) and
/// `frag` as the payload. Returns its length.
pub(crate) fn write_packet(
    out: &mut [u8],
    stamp: &Stamp<'_>,
    seq: u16,
    marker: bool,
    frag: &h264::Fragment<'_>,
) -> Option<usize> {
    let mid = stamp
        .mid
        .filter(|(id, m)| (1..=14).contains(id) && (1..=16).contains(&m.len()));
    let first = 0x80 | if mid.is_some() { 0x10 } else { 0 };
    let head = out.get_mut(..rtp::HEADER_LEN)?;
    head[0] = first;
    head[1] = (stamp.pt & 0x7f) | if marker { 0x80 } else { 0 };
    head[2..4].copy_from_slice(&seq.to_be_bytes());
    head[4..8].copy_from_slice(&stamp.timestamp.to_be_bytes());
    head[8..12].copy_from_slice(&stamp.ssrc.to_be_bytes());
    let mut n = rtp::HEADER_LEN;
    if let Some((id, m)) = mid {
        let data = 1 + m.len();
        let words = data.div_ceil(4);
        let ext = out.get_mut(n..n + 4 + words * 4)?;
        ext.fill(0);
        ext[0..2].copy_from_slice(&[0xbe, 0xde]);
        ext[2..4].copy_from_slice(&(words as u16).to_be_bytes());
        ext[4] = (id << 4) | (m.len() as u8 - 1);
        ext[5..5 + m.len()].copy_from_slice(m.as_bytes());
        n += 4 + words * 4;
    }
    let p = frag.write(out.get_mut(n..)?)?;
    Some(n + p)
}

/// The NAL units to send a viewer for one access unit, kept or live: SPS and PPS first when
/// `params` is given (the kept key frame's, in case its access unit lacks them), and the
/// access unit's own SPS and PPS skipped then, so none is sent twice.
pub(crate) fn for_each_payload(
    params: Option<(&[u8], &[u8])>,
    au: &[u8],
    mut f: impl FnMut(&h264::Fragment<'_>, bool),
) {
    let skip_params = params.is_some();
    let (sps, pps) = params.unwrap_or_default();
    let nals = [sps, pps].into_iter().filter(|n| !n.is_empty()).chain(
        Nals::new(au).map_while(Result::ok).filter(|n| {
            let t = h264::nal_unit_type(n);
            !(skip_params && (t == nal_type::SPS || t == nal_type::PPS)) && t != nal_type::AUD
        }),
    );
    let mut nals = nals.peekable();
    while let Some(nal) = nals.next() {
        let last_nal = nals.peek().is_none();
        for frag in Fragments::new(nal, CAMERA_RTP_PAYLOAD) {
            f(&frag, last_nal && frag.last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::try_from(s).unwrap()
    }

    fn au(nals: &[&[u8]]) -> std::vec::Vec<u8> {
        let mut v = std::vec::Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn the_clock_carries_on_across_sessions() {
        let mut c = Clock {
            session: None,
            base: 1000,
            last: 1000,
        };
        assert_eq!(c.rtp(1, 0), 1000);
        assert_eq!(c.rtp(1, 3600), 4600);
        // A reconnect starts the camera's clock at 0 again: ours goes on.
        assert_eq!(c.rtp(2, 0), 4600 + RECONNECT_GAP);
        assert_eq!(c.rtp(2, 3600), 4600 + RECONNECT_GAP + 3600);
    }

    #[test]
    fn key_frames_are_kept_until_one_is_too_large() {
        let mut kf = [0u8; 2 * MAX_PARAMETER_SET + 64];
        let mut viewers = [ViewerSeq::default(); 4];
        let mut cam = Camera::new(
            id("gate"),
            id("yard"),
            7,
            0,
            CameraStorage {
                key_frame: &mut kf,
                viewers: &mut viewers,
            },
        );
        assert!(cam.kept().is_none());
        let key = au(&[&[0x67, 1], &[0x68, 2], &[0x65, 3, 3, 3]]);
        let frame = |au| CameraFrame {
            au,
            timestamp: 0,
            session: 1,
        };
        assert_eq!(
            cam.take(&frame(&key)).unwrap().1,
            FrameOutcome::KeyFrameKept(0)
        );
        let k = cam.kept().unwrap();
        assert_eq!(
            (k.sps, k.pps, k.au),
            (&[0x67, 1][..], &[0x68, 2][..], &key[..])
        );
        let p = au(&[&[0x41, 9]]);
        assert_eq!(cam.take(&frame(&p)).unwrap().1, FrameOutcome::Relayed(0));
        assert_eq!(cam.kept().unwrap().au, &key[..]);
        let big = au(&[&[0x65; 70]]);
        assert_eq!(
            cam.take(&frame(&big)).unwrap().1,
            FrameOutcome::KeyFrameTooLarge(0)
        );
        assert!(cam.kept().is_none());
        assert_eq!(
            cam.take(&frame(&[0, 0, 0, 9])).unwrap_err(),
            FrameError::Malformed(h264::Error::Truncated)
        );
        assert_eq!(
            (
                cam.stats.frames,
                cam.stats.key_frames,
                cam.stats.key_frames_too_large
            ),
            (4, 1, 1)
        );
        assert_eq!(cam.stats.malformed, 1);
    }

    #[test]
    fn a_new_endpoint_in_a_slot_starts_its_own_sequence() {
        let mut kf = [0u8; 2 * MAX_PARAMETER_SET + 8];
        let mut viewers = [ViewerSeq::default(); 2];
        let mut cam = Camera::new(
            id("gate"),
            id("yard"),
            7,
            0,
            CameraStorage {
                key_frame: &mut kf,
                viewers: &mut viewers,
            },
        );
        let v = cam.viewer(1, 5).unwrap();
        v.set_primed();
        let s = v.next_seq();
        assert_eq!(cam.viewer(1, 5).unwrap().next_seq(), s.wrapping_add(1));
        assert!(cam.viewer(1, 5).unwrap().primed());
        cam.key_frame_requested(1);
        assert!(!cam.viewer(1, 5).unwrap().primed());
        assert!(!cam.viewer(1, 6).unwrap().primed());
        assert!(cam.viewer(2, 1).is_none());
    }

    #[test]
    fn packets_carry_the_viewers_stamp_and_mid() {
        let mut out = [0u8; 64];
        let frag = h264::Fragment {
            header: None,
            body: &[0x65, 1, 2],
            last: true,
        };
        let stamp = Stamp {
            ssrc: 0x0102_0304,
            pt: 102,
            timestamp: 90_000,
            mid: Some((4, "1")),
        };
        let n = write_packet(&mut out, &stamp, 7, true, &frag).unwrap();
        let p = rtp::Packet::new_checked(&out[..n]).unwrap();
        assert_eq!(
            (
                p.marker(),
                p.payload_type(),
                p.seq_number(),
                p.timestamp(),
                p.ssrc()
            ),
            (true, 102, 7, 90_000, 0x0102_0304)
        );
        assert_eq!(p.payload(), &[0x65, 1, 2]);
        let ext = p.extension().unwrap();
        assert_eq!(ext.profile, 0xbede);
        assert_eq!(ext.data, &[0x40, b'1', 0, 0]);
        let plain = Stamp { mid: None, ..stamp };
        let n = write_packet(&mut out, &plain, 8, false, &frag).unwrap();
        assert_eq!(n, 15);
    }

    #[test]
    fn kept_parameter_sets_go_first_and_once_and_the_marker_ends_the_unit() {
        let key = au(&[&[0x09, 0x10], &[0x67, 1], &[0x68, 2], &[0x65; 3000]]);
        let mut seen = std::vec::Vec::new();
        for_each_payload(Some((&[0x67, 1], &[0x68, 2])), &key, |f, m| {
            seen.push((
                f.header.map_or(f.body[0], |h| h[1] & 0x1f | 0x60),
                f.len(),
                m,
            ));
        });
        let types: std::vec::Vec<u8> = seen.iter().map(|s| s.0 & 0x1f).collect();
        assert_eq!(types, [7, 8, 5, 5, 5]);
        assert!(seen.iter().all(|s| s.1 <= CAMERA_RTP_PAYLOAD));
        let markers: std::vec::Vec<bool> = seen.iter().map(|s| s.2).collect();
        assert_eq!(markers, [false, false, false, false, true]);
    }
}
