//! Cameras in the gateway (PROTOCOL.md section 7): configured at start, each a member of
//! its channel by its id, its frames relayed to every member that takes video, whoever
//! holds the floor.

use core::net::SocketAddr;

use super::Gateway;
use crate::codec::{Codec, VideoCodec};
use crate::config::{MAX_CAMERAS, MAX_DATAGRAM};
use crate::gateway::Channel;
use crate::protocol::Id;
use crate::relay::camera::{
    Camera, CameraFrame, CameraStorage, FrameError, FrameOutcome, Stamp, for_each_payload,
    write_packet,
};
use crate::relay::{DtlsKeys, Keys, Relay, Transmit, TxOutcome};
use crate::time::Now;
use crate::wire::rtcp::{self, Compound};
use crate::wire::rtp;

/// The cameras, at most [`MAX_CAMERAS`].
pub(crate) type Cameras<'a> = heapless::Vec<Camera<'a>, MAX_CAMERAS>;

/// RTCP payload-specific feedback (RFC 4585 section 6.1) and its PLI and FIR formats
/// (RFC 4585 section 6.3.1, RFC 5104 section 4.3.1).
const PSFB: u8 = 206;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;

/// Why a camera could not be added (each a bad `[[camera]]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraError {
    /// The id is not 1 to 32 bytes of `[A-Za-z0-9_.-]`.
    BadId,
    /// The channel id is not 1 to 32 bytes of `[A-Za-z0-9_.-]`.
    BadChannel,
    /// Another camera has this id.
    Duplicate,
    /// [`MAX_CAMERAS`] cameras already.
    TooMany,
    /// The channel table is full.
    ChannelsFull,
    /// The channel exists with a video codec other than H.264.
    NotH264,
}

impl CameraError {
    /// What is wrong, for the message that names the table.
    pub const fn reason(self) -> &'static str {
        match self {
            CameraError::BadId => "id must be 1 to 32 of [A-Za-z0-9_.-]",
            CameraError::BadChannel => "channel must be 1 to 32 of [A-Za-z0-9_.-]",
            CameraError::Duplicate => "id is used by another camera",
            CameraError::TooMany => "too many cameras",
            CameraError::ChannelsFull => "channel limit reached",
            CameraError::NotH264 => "the channel's video codec is not H264",
        }
    }
}

/// 1 to 32 bytes of `[A-Za-z0-9_.-]` (PROTOCOL.md section 1's ids).
fn be_u32(b: &[u8]) -> u32 {
    b.iter()
        .take(4)
        .fold(0, |acc, &x| (acc << 8) | u32::from(x))
}

fn id(s: &str) -> Option<Id> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then(|| Id::try_from(s).ok()).flatten()
}

impl<'a> Gateway<'a> {
    /// Adds camera `camera_id` feeding `channel_id`, creating the channel (codec PCMU,
    /// video_codec H264, the camera its creator) when it does not exist. Its SSRC and the
    /// start of its RTP timestamps come from the driver's randomness. Returns its index for
    /// [`Gateway::camera_frame`].
    pub fn add_camera(
        &mut self,
        now: Now,
        camera_id: &str,
        channel_id: &str,
        storage: CameraStorage<'a>,
        drv: &mut impl super::Driver,
    ) -> Result<usize, CameraError> {
        let cam = id(camera_id).ok_or(CameraError::BadId)?;
        let chan = id(channel_id).ok_or(CameraError::BadChannel)?;
        if self.cameras.iter().any(|c| c.id == cam) {
            return Err(CameraError::Duplicate);
        }
        if self.cameras.is_full() {
            return Err(CameraError::TooMany);
        }
        match self.find_channel(&chan) {
            Ok(slot) => {
                if self.channel(slot).map(|c| c.video_codec) != Ok(VideoCodec::H264) {
                    return Err(CameraError::NotH264);
                }
            }
            Err(_) => self.camera_channel(now, &cam, &chan)?,
        }
        let mut r = [0u8; 8];
        drv.fill_random(&mut r);
        let [s0, s1, s2, s3, t0, t1, t2, t3] = r;
        let camera = Camera::new(
            cam,
            chan,
            u32::from_be_bytes([s0, s1, s2, s3]),
            u32::from_be_bytes([t0, t1, t2, t3]),
            storage,
        );
        self.cameras
            .push(camera)
            .map_err(|_| CameraError::TooMany)?;
        Ok(self.cameras.len() - 1)
    }

    /// Creates a camera's channel.
    fn camera_channel(&mut self, now: Now, cam: &Id, chan: &Id) -> Result<(), CameraError> {
        if self.channels().count() >= self.max_channels {
            return Err(CameraError::ChannelsFull);
        }
        let new = super::channels::NewChannel {
            id: chan.clone(),
            name: None,
            freq: None,
            capacity: None,
            creator: cam.clone(),
            codec: Codec::Pcmu,
            video_codec: VideoCodec::H264,
        };
        self.place_channel(now, new)
            .map(|_| ())
            .ok_or(CameraError::ChannelsFull)
    }

    /// The cameras, in the order they were added.
    pub fn cameras(&self) -> impl Iterator<Item = &Camera<'a>> {
        self.cameras.iter()
    }

    /// The ids of the cameras feeding `ch` (members of it beside its sessions).
    pub fn cameras_of<'s>(&'s self, ch: &'s Channel) -> impl Iterator<Item = &'s str> + 's {
        Gateway::cameras_in(&self.cameras, ch)
    }

    /// Whether `user_id` is a camera's id (IDENTIFY with it is 1002).
    pub(super) fn is_camera(&self, user_id: &str) -> bool {
        self.cameras.iter().any(|c| c.id == user_id)
    }

    /// The ids of the cameras feeding `ch`: members of it beside its sessions.
    pub(super) fn cameras_in<'s>(
        cameras: &'s Cameras<'_>,
        ch: &'s Channel,
    ) -> impl Iterator<Item = &'s str> + Clone + 's {
        cameras
            .iter()
            .filter(move |c| c.channel_id == ch.id)
            .map(|c| c.id.as_str())
    }

    /// One access unit from camera `camera` (the index [`Gateway::add_camera`] gave): kept
    /// when it is a key frame, then packetized (RFC 6184) for every member of its channel
    /// that takes video and whose DTLS is up, each getting the kept key frame first when it
    /// has not had one (a new viewer, or one that sent a PLI or FIR).
    pub fn camera_frame(
        &mut self,
        now: Now,
        camera: usize,
        frame: &CameraFrame<'_>,
        tx: &mut impl Transmit,
    ) -> Result<FrameOutcome, FrameError> {
        let Gateway {
            cameras,
            channels,
            relay,
            ..
        } = self;
        let cam = cameras.get_mut(camera).ok_or(FrameError::UnknownCamera)?;
        let (ts, outcome) = cam.take(frame)?;
        let Some(head) = channels
            .as_slice()
            .iter()
            .flatten()
            .find(|c| c.id == cam.channel_id && c.video_codec == VideoCodec::H264)
            .map(|c| c.head)
        else {
            cam.stats.no_channel += 1;
            return Err(FrameError::NoChannel);
        };
        let key = !matches!(outcome, FrameOutcome::Relayed(_));
        let mut viewers = 0;
        let mut at = head;
        while let Some(next) = relay.get(at as usize).map(|e| e.next) {
            if feed(now, relay, cam, at as usize, ts, frame.au, key, tx) {
                viewers += 1;
            }
            at = next;
        }
        Ok(match outcome {
            FrameOutcome::Relayed(_) => FrameOutcome::Relayed(viewers),
            FrameOutcome::KeyFrameKept(_) => FrameOutcome::KeyFrameKept(viewers),
            FrameOutcome::KeyFrameTooLarge(_) => FrameOutcome::KeyFrameTooLarge(viewers),
        })
    }

    /// Sum of the packets accepted from the endpoints latched at `src`.
    pub(super) fn packets_in_at(&self, src: SocketAddr) -> u64 {
        self.relay
            .latched_at(src)
            .filter_map(|at| self.relay.get(at))
            .map(|e| e.stats.packets_in)
            .sum()
    }

    /// An authenticated RTCP compound from `src`, in the clear in `plain` (an SRTCP
    /// trailer after it ends the walk): each PLI or FIR naming a camera's SSRC marks the
    /// sender's endpoint in that camera's channel for the kept key frame.
    pub(super) fn camera_feedback(&mut self, src: SocketAddr, plain: &[u8]) {
        for p in Compound::new(plain).map_while(Result::ok) {
            let rtcp::Packet::Other(raw) = p else {
                continue;
            };
            if raw.packet_type() != PSFB {
                continue;
            }
            let body = raw.body();
            let mut named = heapless::Vec::<u32, 8>::new();
            match raw.count() {
                // Sender SSRC, then the media source's SSRC.
                FMT_PLI => named.extend(body.get(4..8).map(be_u32)),
                // The media source field is unused; each FCI entry names one (8 bytes:
                // SSRC, sequence number, reserved).
                FMT_FIR => {
                    let fci = body.get(8..).unwrap_or_default();
                    named.extend(
                        fci.chunks_exact(8)
                            .take(8)
                            .filter_map(|c| c.get(..4))
                            .map(be_u32),
                    );
                }
                _ => continue,
            }
            for ssrc in named {
                self.key_frame_request(src, ssrc);
            }
        }
    }

    fn key_frame_request(&mut self, src: SocketAddr, ssrc: u32) {
        let Gateway {
            cameras,
            channels,
            relay,
            ..
        } = self;
        let Some(cam) = cameras.iter_mut().find(|c| c.ssrc() == ssrc) else {
            return;
        };
        for at in relay.latched_at(src) {
            let in_channel = relay.get(at).is_some_and(|e| {
                channels
                    .as_slice()
                    .get(e.channel() as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|c| c.id == cam.channel_id)
            });
            if in_channel {
                cam.key_frame_requested(at);
            }
        }
    }
}

/// Sends one access unit (at `ts`) to the endpoint in `slot` when it takes video and is
/// keyed, preceded by the kept key frame when it has had none. Returns whether it was a
/// viewer.
#[allow(clippy::too_many_arguments)]
fn feed(
    now: Now,
    relay: &mut Relay<'_>,
    cam: &mut Camera<'_>,
    slot: usize,
    ts: u32,
    au: &[u8],
    key: bool,
    tx: &mut impl Transmit,
) -> bool {
    let Some(e) = relay.get_mut(slot) else {
        return false;
    };
    if !e.takes_video() {
        return false;
    }
    let Some(dst) = e.destination(now.mono) else {
        return false;
    };
    let serial = e.media_id(slot).to_u64() as u32;
    let crate::relay::Endpoint {
        keys,
        webrtc,
        stats,
        ..
    } = e;
    let (Keys::WebRtc(DtlsKeys::Keyed { outbound, .. }), Some(video)) =
        (keys, webrtc.as_ref().and_then(|w| w.video.as_ref()))
    else {
        return false;
    };
    let Some(mut v) = cam.viewer(slot, serial).copied() else {
        return false;
    };
    let mut stamp = Stamp {
        ssrc: cam.ssrc(),
        pt: video.track.pt,
        timestamp: ts,
        mid: video.track.ext_mid.map(|id| (id, video.track.mid.as_str())),
    };
    let mut sent = (0u64, 0u64, 0u64);
    let need_kept = !v.primed() && !key;
    let mut primed = key;
    let mut send = |stamp: &Stamp<'_>, frag: &crate::wire::h264::Fragment<'_>, marker: bool| {
        let mut plain = [0u8; MAX_DATAGRAM];
        let seq = v.next_seq();
        let built = write_packet(&mut plain, stamp, seq, marker, frag)
            .and_then(|n| plain.get(..n))
            .and_then(|p| rtp::Packet::new_checked_header(p).ok());
        let Some(packet) = built else {
            sent.2 += 1;
            return;
        };
        match tx.send_with(dst, |room| outbound.protect_rtp_into(&packet, room).ok()) {
            TxOutcome::Taken(n) => {
                sent.0 += 1;
                sent.1 += n as u64;
            }
            TxOutcome::NotBuilt | TxOutcome::Failed => sent.2 += 1,
        }
    };
    if need_kept && let Some(kept) = cam.kept() {
        // Just before the live frame, so the viewer shows it at once and the live
        // frames carry on in order.
        let kept_stamp = Stamp {
            timestamp: ts.wrapping_sub(1),
            ..stamp
        };
        for_each_payload(Some((kept.sps, kept.pps)), kept.au, |f, m| {
            send(&kept_stamp, f, m)
        });
        primed = true;
        cam.stats.key_frames_sent += 1;
    }
    stamp.timestamp = ts;
    for_each_payload(None, au, |f, m| send(&stamp, f, m));
    if primed {
        v.set_primed();
    }
    let (packets, bytes, drops) = sent;
    stats.packets_out += packets;
    stats.bytes_out += bytes;
    cam.stats.packets_out += packets;
    cam.stats.bytes_out += bytes;
    cam.stats.drops += drops;
    if let Some(slot_state) = cam.viewer(slot, serial) {
        *slot_state = v;
    }
    true
}
