//! The media relay (PROTOCOL.md sections 2 and 3): it owns the media endpoints, one per
//! member's media session, keyed by SSRC, and relays RTP: authenticate, latch, gate on the
//! floor, re-protect once per listener.
//!
//! The signaling side tells it who joined ([`Relay::add`], then linking it into the channel)
//! and left (unlinking, [`Relay::remove`]); a channel's members are its endpoints, linked in
//! join order, so membership is kept once. Floor decisions stay with the signaling side,
//! asked through [`Floors`] for each RTP packet.
//!
//! Endpoints are found by SSRC (RTP and RTCP carry one) and by latched address
//! ([`Relay::latched_at`]: what STUN and DTLS records, which carry no SSRC, are matched by);
//! an ICE username fragment is one more key of the same kind of index.
//!
//! RTCP from clients is consumed: it latches and keeps the endpoint alive, and reports are
//! never forwarded. Listeners' receiver reports describe the server's re-protected streams,
//! not the talker's, and talkers do not need them in push-to-talk. A WebRTC receiver's PLI,
//! FIR or NACK goes to the WebRTC sender of the video it names (in the same channel),
//! re-protected for it, as a compound packet the server sends from an SSRC of its own for
//! that peer: an empty receiver report and an SDES CNAME, then the feedback (RFC 3550
//! section 6.1 compound rules, which every RTCP receiver accepts; the reduced size of RFC
//! 5506 would need `a=rtcp-rsize` in the answer). The media SSRC and sequence numbers pass
//! unchanged. A new floor holder with video gets a PLI with its next packet.
//!
//! Each receiver's copy of RTP is its own (`rewrite`): its payload type, its header
//! extensions with its IDs and MID, none for radios.
//!
//! A WebRTC endpoint (PROTOCOL.md section 4) is latched by the driver's ICE agent
//! ([`Relay::checked`]) and keyed by its DTLS handshake ([`Relay::keyed`]); its media is
//! accepted only from that address and with those keys. SSRCs its offer did not name are
//! learned from its first authenticated RTP of the stream's payload type.

pub mod camera;
mod endpoint;
mod index;
mod rewrite;
mod transmit;
mod webrtc;

pub use endpoint::{Endpoint, EndpointStats, Keys, Source};
pub use transmit::{TX_ROOM, Transmit, TxOutcome};
pub use webrtc::{DtlsKeys, MediaId, Role, Track, VideoTrack, WebRtc};

use core::net::SocketAddr;

use crate::config::MAX_DATAGRAM;
use crate::gateway::{Channel, ConnId};
use crate::srtp;
use crate::storage::{IndexSlot, Table};
use crate::time::{Instant, Now};
use crate::wire::demux::{self, Kind};
use crate::wire::{rtcp, rtp};
use index::Index;
use rewrite::Target;

/// The CNAME of the server's own RTCP (RFC 3550 section 6.5.1: every compound carries one).
const SERVER_CNAME: &[u8] = b"livechatd";

/// "No slot" in the member links.
pub(crate) const NONE: u32 = u32::MAX;

/// WebRTC endpoints latched at one address tried for an SSRC they have not announced: one
/// per channel a client's socket has joined, at most [`MAX_JOINED_PER_SESSION`]
/// (`crate::config`).
const LEARN_CANDIDATES: usize = crate::config::MAX_JOINED_PER_SESSION;

/// Why a datagram was dropped; each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Not RTP or RTCP (STUN and DTLS are not served yet), or unparseable.
    Malformed,
    /// An SSRC no member joined with.
    UnknownSsrc,
    /// SRTP/SRTCP authentication failed (forged or corrupted).
    AuthFailed,
    /// Replayed or too old for the replay window.
    Replay,
    /// SRTP from a new SSRC while the context's stream table is full
    /// ([`crate::config::SRTP_MAX_STREAMS`]).
    TooManyStreams,
    /// The stream's packet index space is used up (RFC 3711 section 9.2: rekey).
    KeyExhausted,
    /// A relayed copy did not fit the send buffer with its SRTP tag.
    Buffer,
    /// Plain RTP from an address other than the member's gateway connection.
    Spoofed,
    /// RTP from a member who does not hold the floor (keepalives land here too).
    NotHolder,
    /// A listener with no latched address yet (counted per listener per packet).
    NoLatch,
    /// The sender's socket buffer was full.
    SendFailed,
    /// WebRTC media before DTLS keyed the endpoint, after its handshake failed, or from an
    /// address its ICE checks did not latch; or a WebRTC listener not keyed yet.
    Unkeyed,
}

impl From<srtp::Error> for Drop {
    fn from(e: srtp::Error) -> Self {
        match e {
            srtp::Error::AuthFailed => Drop::AuthFailed,
            srtp::Error::Replayed | srtp::Error::IndexTooOld => Drop::Replay,
            srtp::Error::TooManyStreams => Drop::TooManyStreams,
            srtp::Error::KeyExhausted => Drop::KeyExhausted,
            srtp::Error::BufferTooSmall { .. } => Drop::Buffer,
            srtp::Error::TooShort | srtp::Error::Malformed => Drop::Malformed,
        }
    }
}

/// Global media counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// Datagrams received.
    pub packets_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// RTP packets relayed (once per talker packet, whatever the fan-out).
    pub relayed: u64,
    /// Drops: not RTP/RTCP or malformed.
    pub drop_malformed: u64,
    /// Drops: unknown SSRC.
    pub drop_unknown_ssrc: u64,
    /// Drops: authentication failed.
    pub drop_auth: u64,
    /// Drops: replayed.
    pub drop_replay: u64,
    /// Drops: a new SSRC over the SRTP context's stream limit.
    pub drop_too_many_streams: u64,
    /// Drops: SRTP packet index exhausted.
    pub drop_key_exhausted: u64,
    /// Drops: a relayed copy did not fit its buffer.
    pub drop_buffer: u64,
    /// Drops: plain RTP from a foreign address.
    pub drop_spoofed: u64,
    /// Drops: RTP from a non-holder.
    pub drop_not_holder: u64,
    /// Drops: listener not latched.
    pub drop_no_latch: u64,
    /// Drops: send failed.
    pub drop_send: u64,
    /// Drops: WebRTC media without DTLS keys or from an unchecked address.
    pub drop_unkeyed: u64,
    /// Driver calls naming a WebRTC endpoint that is gone (ignored).
    pub stale_media: u64,
    /// SSRCs learned from WebRTC endpoints' first authenticated RTP.
    pub ssrcs_learned: u64,
    /// PLI, FIR and NACK forwarded to the sender of the stream they name.
    pub feedback_forwarded: u64,
    /// PLI, FIR and NACK not forwarded: the stream is unknown, not video, in another
    /// channel, or its sender is not a keyed WebRTC client that negotiated that feedback.
    pub feedback_dropped: u64,
    /// PLIs the server sent of its own (a new floor holder owes its viewers a key frame).
    pub plis_sent: u64,
}

impl MediaStats {
    /// Counts one drop.
    pub fn drop(&mut self, why: Drop) {
        let c = match why {
            Drop::Malformed => &mut self.drop_malformed,
            Drop::UnknownSsrc => &mut self.drop_unknown_ssrc,
            Drop::AuthFailed => &mut self.drop_auth,
            Drop::Replay => &mut self.drop_replay,
            Drop::TooManyStreams => &mut self.drop_too_many_streams,
            Drop::KeyExhausted => &mut self.drop_key_exhausted,
            Drop::Buffer => &mut self.drop_buffer,
            Drop::Spoofed => &mut self.drop_spoofed,
            Drop::NotHolder => &mut self.drop_not_holder,
            Drop::NoLatch => &mut self.drop_no_latch,
            Drop::SendFailed => &mut self.drop_send,
            Drop::Unkeyed => &mut self.drop_unkeyed,
        };
        *c += 1;
    }

    /// Every drop, whatever the reason.
    pub fn drops(&self) -> u64 {
        self.drop_malformed
            + self.drop_unknown_ssrc
            + self.drop_auth
            + self.drop_replay
            + self.drop_too_many_streams
            + self.drop_key_exhausted
            + self.drop_buffer
            + self.drop_spoofed
            + self.drop_not_holder
            + self.drop_no_latch
            + self.drop_send
            + self.drop_unkeyed
    }
}

/// Why an endpoint could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    /// The endpoint table (or its SSRC index) is at its capacity (error 2006).
    Full,
    /// Another endpoint has one of its SSRCs (error 2007).
    SsrcInUse,
}

/// What the relay asks the signaling side about each authenticated RTP packet.
pub trait Floors {
    /// Whether `conn` holds the floor of the channel in `channel`; when it does, the packet
    /// counts as floor activity (PROTOCOL.md's floor timers) and the answer is the channel's
    /// member list, to fan out to.
    fn talk(&mut self, channel: u32, conn: ConnId, now: Instant) -> Result<&Channel, Drop>;
}

/// The media endpoints and the relay between them.
pub struct Relay<'a> {
    slots: &'a mut dyn Table<Option<Endpoint>>,
    by_ssrc: Index<'a>,
    by_addr: Index<'a>,
    /// Most endpoints: the limit or the storage's capacity, whichever is less.
    cap: usize,
    len: usize,
    /// SSRCs in the index, against its capacity.
    ssrcs: usize,
    /// No slot below this one is free: where the search for one starts.
    free: usize,
    /// The serial the last added endpoint got.
    serial: u32,
    /// Keys the server's own SSRCs.
    seed: u64,
    stats: MediaStats,
    /// Endpoints whose address latched (or moved) since the driver last asked
    /// ([`Relay::take_latched`]), for the trace; beyond [`LATCH_LOG`] they go untraced.
    latched_log: heapless::Vec<u32, LATCH_LOG>,
}

/// Latches the relay remembers for the trace between two [`Relay::take_latched`].
pub const LATCH_LOG: usize = 32;

impl<'a> Relay<'a> {
    /// A relay over `slots` and the zeroed `ssrc_index` and `addr_index` (all emptied),
    /// holding at most `limit` endpoints (and no more than `addr_index` has room for);
    /// `seed` keys the indexes' hash.
    pub fn new(
        slots: &'a mut dyn Table<Option<Endpoint>>,
        ssrc_index: &'a mut [IndexSlot],
        addr_index: &'a mut [IndexSlot],
        limit: usize,
        seed: u64,
    ) -> Self {
        slots.clear();
        let by_addr = Index::new(addr_index, seed);
        let cap = limit
            .min(slots.capacity())
            .min(by_addr.capacity())
            .min(crate::config::TABLE_LIMIT);
        Relay {
            slots,
            by_ssrc: Index::new(ssrc_index, seed),
            by_addr,
            cap,
            len: 0,
            ssrcs: 0,
            free: 0,
            serial: 0,
            seed,
            stats: MediaStats::default(),
            latched_log: heapless::Vec::new(),
        }
    }

    /// The endpoint slots whose address latched or moved since the last call, oldest
    /// first (at most [`LATCH_LOG`]); the log is emptied.
    pub fn take_latched(&mut self) -> heapless::Vec<u32, LATCH_LOG> {
        core::mem::take(&mut self.latched_log)
    }

    /// Removes every endpoint, rewriting only the index entries in use, zeroes the
    /// counters, and starts over with `limit` and `seed`.
    pub fn clear(&mut self, limit: usize, seed: u64) {
        for i in 0..self.slots.as_slice().len() {
            if let Some(e) = self.slots.as_slice().get(i).and_then(Option::as_ref) {
                let (ssrcs, latched) = (e.ssrcs.clone(), e.latched);
                for s in ssrcs {
                    self.by_ssrc.remove(s);
                }
                if let Some(a) = latched {
                    self.by_addr.remove_entry(addr_key(a), i);
                }
            }
        }
        self.slots.clear();
        self.by_ssrc.reseed(seed);
        self.by_addr.reseed(seed);
        self.cap = limit
            .min(self.slots.capacity())
            .min(self.by_addr.capacity())
            .min(crate::config::TABLE_LIMIT);
        self.len = 0;
        self.ssrcs = 0;
        self.free = 0;
        self.serial = 0;
        self.seed = seed;
        self.stats = MediaStats::default();
        self.latched_log.clear();
    }

    /// Endpoints in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most endpoints the table holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Media counters.
    pub fn stats(&self) -> MediaStats {
        self.stats
    }

    /// The slot of the endpoint with this SSRC.
    pub fn find(&self, ssrc: u32) -> Option<usize> {
        self.by_ssrc.get(ssrc)
    }

    /// The slots of the endpoints latched to `addr` (several when one client socket carries
    /// the media of several channels).
    pub fn latched_at(&self, addr: SocketAddr) -> impl Iterator<Item = usize> + '_ {
        self.by_addr
            .all(addr_key(addr))
            .filter(move |&at| self.get(at).is_some_and(|e| e.latched == Some(addr)))
    }

    /// Adds an endpoint, unlinked, and returns its slot. Its SSRCs must be new on the
    /// server; a full table or index is [`JoinRefused::Full`].
    pub fn add(&mut self, mut endpoint: Endpoint) -> Result<usize, JoinRefused> {
        if endpoint.ssrcs.iter().any(|&s| self.by_ssrc.contains(s)) {
            return Err(JoinRefused::SsrcInUse);
        }
        let n = endpoint.ssrcs.len();
        if self.len >= self.cap || self.ssrcs + n > self.by_ssrc.capacity() {
            return Err(JoinRefused::Full);
        }
        let (ssrcs, latched) = (endpoint.ssrcs.clone(), endpoint.latched);
        // Zero is never a serial, so no id made before the first add names anything.
        self.serial = self.serial.wrapping_add(1).max(1);
        endpoint.serial = self.serial;
        endpoint.server_ssrc =
            crate::gateway::splitmix64(self.seed ^ u64::from(self.serial).rotate_left(32)) as u32;
        let from = self.free;
        let free = self
            .slots
            .as_slice()
            .get(from..)
            .and_then(|rest| rest.iter().position(Option::is_none))
            .map(|i| i + from);
        let slot = match free {
            Some(i) => {
                if let Some(s) = self.slots.as_mut_slice().get_mut(i) {
                    *s = Some(endpoint);
                }
                i
            }
            None => {
                let i = self.slots.as_slice().len();
                self.slots
                    .push(Some(endpoint))
                    .map_err(|_| JoinRefused::Full)?;
                i
            }
        };
        self.free = slot + 1;
        for s in ssrcs {
            // Cannot fail: the index has room for every SSRC counted.
            self.by_ssrc.insert(s, slot);
        }
        if let Some(a) = latched {
            // Cannot fail: the address index has room for one entry per endpoint.
            self.by_addr.insert_entry(addr_key(a), slot);
        }
        self.ssrcs += n;
        self.len += 1;
        Ok(slot)
    }

    /// The id of the endpoint in `slot`, for the driver.
    pub fn media_id(&self, slot: usize) -> Option<MediaId> {
        self.get(slot).map(|e| e.media_id(slot))
    }

    /// The slot of the endpoint `id` names, unless it is gone.
    pub fn resolve(&self, id: MediaId) -> Option<usize> {
        let e = self.get(id.slot())?;
        (e.serial == id.serial()).then_some(id.slot())
    }

    /// Gives the endpoint in `at` one more SSRC, unique on the server (2007 otherwise); a
    /// full index or endpoint is [`JoinRefused::Full`].
    pub fn add_ssrc(&mut self, at: usize, ssrc: u32) -> Result<(), JoinRefused> {
        if self.by_ssrc.contains(ssrc) {
            return Err(JoinRefused::SsrcInUse);
        }
        if self.ssrcs >= self.by_ssrc.capacity() {
            return Err(JoinRefused::Full);
        }
        let e = self.get_mut(at).ok_or(JoinRefused::Full)?;
        e.ssrcs.push(ssrc).map_err(|_| JoinRefused::Full)?;
        // Cannot fail: the index has room for every SSRC counted.
        self.by_ssrc.insert(ssrc, at);
        self.ssrcs += 1;
        Ok(())
    }

    /// A valid ICE check for the endpoint `id` came from `addr` (PROTOCOL.md section 4):
    /// the endpoint is latched there, and the check counts as activity that keeps the latch.
    /// An id that is gone is counted and ignored.
    pub fn checked(&mut self, now: Now, id: MediaId, addr: SocketAddr) {
        // A failed endpoint stays without media until it leaves (PROTOCOL.md section 4).
        let live = |e: &Endpoint| {
            matches!(
                e.keys,
                Keys::WebRtc(DtlsKeys::Pending | DtlsKeys::Keyed { .. })
            )
        };
        let Some(at) = self
            .resolve(id)
            .filter(|&at| self.get(at).is_some_and(live))
        else {
            self.stats.stale_media += 1;
            return;
        };
        self.set_latch(at, Some(addr));
        if let Some(e) = self.get_mut(at) {
            e.last_rx = now.mono;
        }
    }

    /// The endpoint `id`'s DTLS-SRTP handshake is done: its media flows with these keys
    /// from now on (RFC 5764 section 4.2).
    pub fn keyed(&mut self, id: MediaId, inbound: srtp::Context, outbound: srtp::Context) {
        match self.resolve(id).and_then(|at| self.get_mut(at)) {
            Some(e) if matches!(e.keys, Keys::WebRtc(DtlsKeys::Pending)) => {
                e.keys = Keys::WebRtc(DtlsKeys::Keyed { inbound, outbound });
            }
            // A second handshake result for one endpoint is the driver's mistake; the
            // first keys stay.
            _ => self.stats.stale_media += 1,
        }
    }

    /// The endpoint `id`'s handshake failed or did not finish in time: its keys go and its
    /// latch is cleared, so no media flows either way; its membership stays.
    pub fn failed(&mut self, id: MediaId) {
        let Some(at) = self.resolve(id).filter(|&at| {
            self.get(at)
                .is_some_and(|e| matches!(e.keys, Keys::WebRtc(_)))
        }) else {
            self.stats.stale_media += 1;
            return;
        };
        self.set_latch(at, None);
        if let Some(e) = self.get_mut(at) {
            e.keys = Keys::WebRtc(DtlsKeys::Failed);
        }
    }

    /// The endpoint in `at`, a new floor holder, owes its viewers a key frame: when it sends
    /// video, a PLI goes to it with its next packet.
    pub(crate) fn want_key_frame(&mut self, at: usize) {
        if let Some(e) = self.get_mut(at)
            && e.webrtc
                .as_ref()
                .and_then(|w| w.video.as_ref())
                .is_some_and(|v| v.track.send)
        {
            e.pli_due = true;
        }
    }

    /// The floor of the channel whose members start at `head` went to the member in `at`:
    /// it owes a key frame, and a former holder that never sent one owes none.
    pub(crate) fn granted(&mut self, head: u32, at: usize) {
        let mut next = head;
        while let Some(e) = self.get_mut(next as usize) {
            e.pli_due = false;
            next = e.next;
        }
        self.want_key_frame(at);
    }

    /// Moves the latch of the endpoint in `at`, keeping the address index in step.
    fn set_latch(&mut self, at: usize, to: Option<SocketAddr>) {
        let Some(e) = self.get_mut(at) else {
            return;
        };
        let before = core::mem::replace(&mut e.latched, to);
        if before == to {
            return;
        }
        if let Some(old) = before {
            self.by_addr.remove_entry(addr_key(old), at);
        }
        if let Some(new) = to {
            // Cannot fail: the address index has room for one entry per endpoint.
            self.by_addr.insert_entry(addr_key(new), at);
        }
    }

    /// The endpoint in `slot`.
    pub fn get(&self, slot: usize) -> Option<&Endpoint> {
        self.slots.as_slice().get(slot)?.as_ref()
    }

    /// The endpoint in `slot`, mutably.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut Endpoint> {
        self.slots.as_mut_slice().get_mut(slot)?.as_mut()
    }

    /// Removes the endpoint in `slot` (unlinked from its channel, or its whole channel
    /// going).
    pub fn remove(&mut self, slot: usize) -> Option<Endpoint> {
        let e = self.slots.as_mut_slice().get_mut(slot)?.take()?;
        self.free = self.free.min(slot);
        for &s in &e.ssrcs {
            self.by_ssrc.remove(s);
        }
        if let Some(a) = e.latched {
            self.by_addr.remove_entry(addr_key(a), slot);
        }
        self.ssrcs -= e.ssrcs.len();
        self.len -= 1;
        Some(e)
    }

    /// Every endpoint.
    pub fn iter(&self) -> impl Iterator<Item = &Endpoint> {
        self.slots.as_slice().iter().flatten()
    }

    /// Appends the endpoint in `slot` to the members of `ch`.
    pub(crate) fn link(&mut self, slot: usize, ch: &mut Channel) {
        let tail = ch.tail;
        if let Some(e) = self.get_mut(slot) {
            e.prev = tail;
            e.next = NONE;
        }
        match self.get_mut(tail as usize) {
            Some(t) => t.next = slot as u32,
            None => ch.head = slot as u32,
        }
        ch.tail = slot as u32;
        ch.members = ch.members.saturating_add(1);
    }

    /// Takes the endpoint in `slot` out of the members of `ch`, keeping the others' order.
    pub(crate) fn unlink(&mut self, slot: usize, ch: &mut Channel) {
        let Some((prev, next)) = self.get(slot).map(|e| (e.prev, e.next)) else {
            return;
        };
        match self.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => ch.head = next,
        }
        match self.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => ch.tail = prev,
        }
        if let Some(e) = self.get_mut(slot) {
            e.prev = NONE;
            e.next = NONE;
        }
        ch.members = ch.members.saturating_sub(1);
    }

    /// The members of `ch` in join order, with their slots.
    pub fn members<'s>(&'s self, ch: &Channel) -> Members<'s, 'a> {
        self.members_from(ch.head)
    }

    /// The members from slot `head` on, following the join-order links.
    pub(crate) fn members_from<'s>(&'s self, head: u32) -> Members<'s, 'a> {
        Members {
            relay: self,
            at: head,
        }
    }

    /// One datagram from the media port. Relayed copies go out through `tx` before this
    /// returns; `buf` is decrypted in place.
    pub fn handle_datagram(
        &mut self,
        now: Now,
        src: SocketAddr,
        buf: &mut [u8],
        floors: &mut impl Floors,
        tx: &mut impl Transmit,
    ) {
        self.stats.packets_in += 1;
        self.stats.bytes_in += buf.len() as u64;
        if buf.len() > MAX_DATAGRAM {
            self.stats.drop(Drop::Malformed);
            return;
        }
        let r = match demux::classify(buf) {
            Kind::Rtp => self.on_rtp(now, src, buf, floors, tx),
            Kind::Rtcp => self.on_rtcp(now, src, buf, tx),
            // ICE-lite and DTLS-SRTP come with browser support.
            Kind::Stun | Kind::Dtls | Kind::Unknown => Err(Drop::Malformed),
        };
        if let Err(why) = r {
            self.stats.drop(why);
        }
    }

    fn on_rtp(
        &mut self,
        now: Now,
        src: SocketAddr,
        buf: &mut [u8],
        floors: &mut impl Floors,
        tx: &mut impl Transmit,
    ) -> Result<(), Drop> {
        // The one parse of the header: SRTP and the fan-out use this view.
        let packet = rtp::Packet::new_checked_header(&mut *buf).map_err(|_| Drop::Malformed)?;
        let (ssrc, pt) = (packet.ssrc(), packet.payload_type());
        let (at, plain) = match self.find(ssrc) {
            Some(at) => (
                at,
                self.accept(at, now, src, |e| accept_rtp(e, src, packet))?,
            ),
            None => self.learn(now, src, ssrc, pt, buf)?,
        };
        let e = self.get(at).ok_or(Drop::UnknownSsrc)?;
        let role = e.role(ssrc).unwrap_or(Role::Audio);
        let level = rewrite::sender_level(e, role, &plain);
        let Source::Member { conn, channel } = e.source;
        let pli_due = e.pli_due;
        // Listeners' keepalives end here too, after latching.
        let head = floors.talk(channel, conn, now.mono)?.head;
        if pli_due {
            self.send_pli(now, at, tx);
        }
        self.stats.relayed += 1;
        let mut next = head;
        while let Some(after) = self.get(next as usize).map(|e| e.next) {
            if next as usize != at {
                self.relay_to(now, next as usize, role, level, &plain, tx);
            }
            next = after;
        }
        Ok(())
    }

    /// Sends the endpoint in `at` a PLI for its video, when its video SSRC is known and
    /// it is keyed; until then the PLI stays due.
    fn send_pli(&mut self, now: Now, at: usize, tx: &mut impl Transmit) {
        let Some((media, sender)) = self.get(at).and_then(|e| {
            let v = e.webrtc.as_ref()?.video.as_ref()?;
            Some((v.track.ssrc?, e.server_ssrc))
        }) else {
            return;
        };
        if self.send_rtcp(now, at, tx, |buf| rtcp::emit_pli(sender, media, buf).ok()) {
            self.stats.plis_sent += 1;
            if let Some(e) = self.get_mut(at) {
                e.pli_due = false;
            }
        }
    }

    /// Sends the WebRTC endpoint in `at` one SRTCP compound from the server's own SSRC for
    /// it: an empty receiver report, an SDES CNAME, then what `last` writes. Whether it went.
    fn send_rtcp(
        &mut self,
        now: Now,
        at: usize,
        tx: &mut impl Transmit,
        last: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> bool {
        let Relay { slots, stats, .. } = self;
        let Some(rx) = slots.as_mut_slice().get_mut(at).and_then(Option::as_mut) else {
            return false;
        };
        let (Some(dst), Keys::WebRtc(DtlsKeys::Keyed { outbound, .. })) =
            (rx.destination(now.mono), &mut rx.keys)
        else {
            return false;
        };
        let ssrc = rx.server_ssrc;
        let outcome = tx.send_with(dst, |room| {
            // The SRTCP trailer and tag follow the compound; a datagram stays within
            // MAX_DATAGRAM.
            let room = room.get_mut(..MAX_DATAGRAM)?;
            let rr = rtcp::emit_receiver_report(ssrc, &[], room).ok()?;
            let sdes = rtcp::emit_sdes_cname(ssrc, SERVER_CNAME, room.get_mut(rr..)?).ok()?;
            let fb = last(room.get_mut(rr + sdes..)?)?;
            outbound.protect_rtcp(room, rr + sdes + fb).ok()
        });
        match outcome {
            TxOutcome::Taken(n) => {
                stats.packets_out += 1;
                stats.bytes_out += n as u64;
                rx.stats.packets_out += 1;
                rx.stats.bytes_out += n as u64;
                true
            }
            TxOutcome::NotBuilt => {
                stats.drop(Drop::Buffer);
                false
            }
            TxOutcome::Failed => {
                stats.drop(Drop::SendFailed);
                false
            }
        }
    }

    /// Sends a receiver's PLI, FIR or NACK from the endpoint in `from` to the sender of the
    /// video it names: a keyed WebRTC member of the same channel that negotiated that
    /// feedback. Anything else is counted and dropped.
    fn route_feedback(
        &mut self,
        now: Now,
        from: usize,
        fb: &rtcp::Feedback<'_>,
        tx: &mut impl Transmit,
    ) {
        let channel = self.get(from).map(Endpoint::channel);
        let to = self.find(fb.media_ssrc).filter(|&to| {
            to != from
                && self.get(to).is_some_and(|e| {
                    let video = e.webrtc.as_ref().and_then(|w| w.video.as_ref());
                    let wanted = video.is_some_and(|v| {
                        v.track.ssrc == Some(fb.media_ssrc)
                            && match fb.kind {
                                rtcp::FeedbackKind::Nack => v.nack,
                                rtcp::FeedbackKind::Pli => v.pli,
                                rtcp::FeedbackKind::Fir => v.fir,
                            }
                    });
                    wanted && Some(e.channel()) == channel
                })
        });
        let Some(to) = to else {
            self.stats.feedback_dropped += 1;
            return;
        };
        let Some((sender, seq)) = self.get_mut(to).map(|e| {
            if fb.kind == rtcp::FeedbackKind::Fir {
                e.fir_seq = e.fir_seq.wrapping_add(1);
            }
            (e.server_ssrc, e.fir_seq)
        }) else {
            return;
        };
        if self.send_rtcp(now, to, tx, |buf| fb.emit(sender, seq, buf).ok()) {
            self.stats.feedback_forwarded += 1;
        } else {
            self.stats.feedback_dropped += 1;
        }
    }

    /// RTP from an SSRC no endpoint has: the stream of a WebRTC endpoint latched at `src`
    /// whose offer did not name it, if it authenticates with that endpoint's keys. Each
    /// candidate (one per channel the client's socket joined) is tried in turn; a failed
    /// attempt leaves the bytes as they were.
    fn learn<'b>(
        &mut self,
        now: Now,
        src: SocketAddr,
        ssrc: u32,
        pt: u8,
        buf: &'b mut [u8],
    ) -> Result<(usize, rtp::Packet<&'b mut [u8]>), Drop> {
        let mut candidates = heapless::Vec::<(usize, Role), LEARN_CANDIDATES>::new();
        for at in self.latched_at(src) {
            let role = self.get(at).and_then(|e| match (&e.keys, &e.webrtc) {
                (Keys::WebRtc(DtlsKeys::Keyed { .. }), Some(w)) => w.unlearned_role(pt),
                _ => None,
            });
            if let Some(role) = role
                && candidates.push((at, role)).is_err()
            {
                break;
            }
        }
        if candidates.is_empty() {
            return Err(Drop::UnknownSsrc);
        }
        if self.ssrcs >= self.by_ssrc.capacity() {
            return Err(Drop::TooManyStreams);
        }
        let mut found = None;
        for &(at, role) in &candidates {
            let packet = rtp::Packet::new_checked_header(&mut *buf).map_err(|_| Drop::Malformed)?;
            let Some(Keys::WebRtc(DtlsKeys::Keyed { inbound, .. })) =
                self.get_mut(at).map(|e| &mut e.keys)
            else {
                continue;
            };
            if let Ok(plain) = inbound.unprotect_rtp_packet(packet) {
                found = Some((at, role, plain.as_bytes().len()));
                break;
            }
        }
        let (at, role, len) = found.ok_or(Drop::AuthFailed)?;
        self.add_ssrc(at, ssrc).map_err(|_| Drop::TooManyStreams)?;
        self.stats.ssrcs_learned += 1;
        if let Some(e) = self.get_mut(at) {
            if let Some(w) = e.webrtc.as_mut() {
                w.learn(role, ssrc);
            }
            e.last_rx = now.mono;
            e.stats.packets_in += 1;
            e.stats.bytes_in += len as u64;
        }
        let plain = buf.get_mut(..len).ok_or(Drop::Malformed)?;
        let packet = rtp::Packet::new_checked_header(plain).map_err(|_| Drop::Malformed)?;
        Ok((at, packet))
    }

    fn on_rtcp(
        &mut self,
        now: Now,
        src: SocketAddr,
        buf: &mut [u8],
        tx: &mut impl Transmit,
    ) -> Result<(), Drop> {
        // The first packet's sender SSRC is in the clear in SRTCP too (RFC 3711 section 3.4).
        let header = rtcp::Header::new_checked(&mut *buf).map_err(|_| Drop::Malformed)?;
        let (at, plain) = match self.find(header.ssrc()) {
            Some(at) => (
                at,
                self.accept(at, now, src, |e| accept_rtcp(e, src, header))?,
            ),
            // A WebRTC client's reports may carry a sender SSRC it never announced (a
            // receive-only client has none of its own): its latched address names it.
            None => self.rtcp_by_address(now, src, buf)?,
        };
        if rtcp::Compound::new(plain).any(|p| p.is_err()) {
            return Err(Drop::Malformed);
        }
        if !matches!(self.get(at).map(|e| &e.keys), Some(Keys::WebRtc(_))) {
            return Ok(());
        }
        for fb in rtcp::Compound::new(plain).filter_map(|p| p.ok()?.feedback()) {
            self.route_feedback(now, at, &fb, tx);
        }
        if self.get(at).is_some_and(|e| e.pli_due) {
            self.send_pli(now, at, tx);
        }
        Ok(())
    }

    /// SRTCP from `src` that authenticates with the keys of a WebRTC endpoint latched there.
    fn rtcp_by_address<'b>(
        &mut self,
        now: Now,
        src: SocketAddr,
        buf: &'b mut [u8],
    ) -> Result<(usize, &'b [u8]), Drop> {
        let mut candidates = heapless::Vec::<usize, LEARN_CANDIDATES>::new();
        for at in self.latched_at(src) {
            let keyed = self
                .get(at)
                .is_some_and(|e| matches!(e.keys, Keys::WebRtc(DtlsKeys::Keyed { .. })));
            if keyed && candidates.push(at).is_err() {
                break;
            }
        }
        if candidates.is_empty() {
            return Err(Drop::UnknownSsrc);
        }
        let mut found = None;
        for &at in &candidates {
            let header = rtcp::Header::new_checked(&mut *buf).map_err(|_| Drop::Malformed)?;
            let Some(Keys::WebRtc(DtlsKeys::Keyed { inbound, .. })) =
                self.get_mut(at).map(|e| &mut e.keys)
            else {
                continue;
            };
            if let Ok(plain) = inbound.unprotect_rtcp_header(header) {
                found = Some((at, plain.len()));
                break;
            }
        }
        let (at, len) = found.ok_or(Drop::AuthFailed)?;
        if let Some(e) = self.get_mut(at) {
            e.last_rx = now.mono;
            e.stats.packets_in += 1;
            e.stats.bytes_in += len as u64;
        }
        Ok((at, buf.get(..len).ok_or(Drop::Malformed)?))
    }

    /// Authenticates a datagram for the endpoint in `at` with `check` and latches its
    /// address, keeping the address index in step. Returns what `check` gives.
    fn accept<P: Plain>(
        &mut self,
        at: usize,
        now: Now,
        src: SocketAddr,
        check: impl FnOnce(&mut Endpoint) -> Result<P, Drop>,
    ) -> Result<P, Drop> {
        let e = self.get_mut(at).ok_or(Drop::UnknownSsrc)?;
        let before = e.latched;
        let plain = check(e).inspect_err(|_| e.stats.dropped += 1)?;
        e.latched = Some(src);
        e.last_rx = now.mono;
        e.stats.packets_in += 1;
        e.stats.bytes_in += plain.len() as u64;
        if before != Some(src) {
            if let Some(old) = before {
                self.by_addr.remove_entry(addr_key(old), at);
            }
            // Cannot fail: the address index has room for one entry per endpoint.
            self.by_addr.insert_entry(addr_key(src), at);
            // Full: this latch goes untraced (the trace is best effort by design).
            let _ = self.latched_log.push(at as u32);
        }
        Ok(plain)
    }

    /// Sends one listener its copy of a stream of `role`, built in the driver's buffer
    /// ([`rewrite`]: its payload type and header extensions, `level` being the sender's
    /// audio level): re-protected with its server -> client context, or in the clear for
    /// a plain-RTP listener. Video goes only to listeners that take it.
    fn relay_to(
        &mut self,
        now: Now,
        at: usize,
        role: Role,
        level: Option<u8>,
        plain: &rtp::Packet<impl AsRef<[u8]>>,
        tx: &mut impl Transmit,
    ) {
        let Relay { slots, stats, .. } = self;
        let Some(rx) = slots.as_mut_slice().get_mut(at).and_then(Option::as_mut) else {
            return;
        };
        let Some(target) = Target::of(rx.webrtc.as_ref(), rx.audio_pt, role) else {
            return;
        };
        let same = rewrite::unchanged(&target, plain);
        let Some(dst) = rx.destination(now.mono) else {
            stats.drop(Drop::NoLatch);
            return;
        };
        let mut why = Drop::Buffer;
        let keys = &mut rx.keys;
        let outcome = tx.send_with(dst, |room| match keys {
            Keys::Sdes { outbound, .. } | Keys::WebRtc(DtlsKeys::Keyed { outbound, .. })
                if same =>
            {
                outbound
                    .protect_rtp_into(plain, room)
                    .map_err(|e| why = Drop::from(e))
                    .ok()
            }
            Keys::Sdes { outbound, .. } | Keys::WebRtc(DtlsKeys::Keyed { outbound, .. }) => {
                // A rewritten copy may have grown: with its tag it stays within
                // MAX_DATAGRAM, or it is a counted drop.
                let fits = MAX_DATAGRAM.checked_sub(outbound.suite().rtp_tag_len())?;
                let n = rewrite::write(&target, level, plain, room.get_mut(..fits)?)?;
                outbound
                    .protect_rtp(room, n)
                    .map_err(|e| why = Drop::from(e))
                    .ok()
            }
            Keys::Plain if same => {
                let bytes = plain.as_bytes();
                room.get_mut(..bytes.len())?.copy_from_slice(bytes);
                Some(bytes.len())
            }
            Keys::Plain => rewrite::write(&target, level, plain, room.get_mut(..MAX_DATAGRAM)?),
            Keys::WebRtc(_) => {
                why = Drop::Unkeyed;
                None
            }
        });
        match outcome {
            TxOutcome::Taken(n) => {
                stats.packets_out += 1;
                stats.bytes_out += n as u64;
                rx.stats.packets_out += 1;
                rx.stats.bytes_out += n as u64;
            }
            TxOutcome::NotBuilt => stats.drop(why),
            TxOutcome::Failed => stats.drop(Drop::SendFailed),
        }
    }
}

/// The address index's key: the address folded to 32 bits (the index hashes it again with
/// its seed; different addresses may share a key, so lookups compare the latch).
fn addr_key(a: SocketAddr) -> u32 {
    let ip = match a.ip().to_canonical() {
        core::net::IpAddr::V4(v4) => u64::from(v4.to_bits()),
        core::net::IpAddr::V6(v6) => {
            let b = v6.to_bits();
            crate::gateway::splitmix64((b >> 64) as u64) ^ b as u64
        }
    };
    let h = crate::gateway::splitmix64(ip ^ (u64::from(a.port()) << 48));
    (h ^ (h >> 32)) as u32
}

/// An accepted datagram's plain bytes, counted by their length.
trait Plain {
    fn len(&self) -> usize;
}

impl<T: AsRef<[u8]>> Plain for rtp::Packet<T> {
    fn len(&self) -> usize {
        self.as_bytes().len()
    }
}

impl Plain for &[u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
}

/// Authenticates an RTP packet from `e` in place (or, for plain RTP, checks it comes from
/// the member's gateway IP). Returns the plain packet's view.
fn accept_rtp<'b>(
    e: &mut Endpoint,
    src: SocketAddr,
    packet: rtp::Packet<&'b mut [u8]>,
) -> Result<rtp::Packet<&'b mut [u8]>, Drop> {
    match &mut e.keys {
        Keys::Sdes { inbound, .. } => Ok(inbound.unprotect_rtp_packet(packet)?),
        Keys::WebRtc(DtlsKeys::Keyed { inbound, .. }) if e.latched == Some(src) => {
            Ok(inbound.unprotect_rtp_packet(packet)?)
        }
        Keys::WebRtc(_) => Err(Drop::Unkeyed),
        Keys::Plain => {
            check_plain_source(e, src)?;
            Ok(packet)
        }
    }
}

/// [`accept_rtp`] for an RTCP compound packet: returns the plain compound.
fn accept_rtcp<'b>(
    e: &mut Endpoint,
    src: SocketAddr,
    header: rtcp::Header<&'b mut [u8]>,
) -> Result<&'b [u8], Drop> {
    match &mut e.keys {
        Keys::Sdes { inbound, .. } => Ok(inbound.unprotect_rtcp_header(header)?),
        Keys::WebRtc(DtlsKeys::Keyed { inbound, .. }) if e.latched == Some(src) => {
            Ok(inbound.unprotect_rtcp_header(header)?)
        }
        Keys::WebRtc(_) => Err(Drop::Unkeyed),
        Keys::Plain => {
            check_plain_source(e, src)?;
            Ok(header.into_inner())
        }
    }
}

/// Plain RTP cannot be told from a forgery on the same IP: that is why it is a policy
/// choice. From any other IP it is one.
fn check_plain_source(e: &Endpoint, src: SocketAddr) -> Result<(), Drop> {
    if src.ip().to_canonical() == e.gateway_ip.to_canonical() {
        Ok(())
    } else {
        Err(Drop::Spoofed)
    }
}

/// The members of one channel in join order: `(slot, endpoint)`.
pub struct Members<'s, 'a> {
    relay: &'s Relay<'a>,
    at: u32,
}

impl<'s> Iterator for Members<'s, '_> {
    type Item = (usize, &'s Endpoint);

    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.at as usize;
        let e = self.relay.get(slot)?;
        self.at = e.next;
        Some((slot, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    /// Floors where nobody holds the floor: packets latch, then stop.
    struct Nobody;

    impl Floors for Nobody {
        fn talk(&mut self, _: u32, _: ConnId, _: Instant) -> Result<&Channel, Drop> {
            Err(Drop::NotHolder)
        }
    }

    struct Nowhere;

    impl Transmit for Nowhere {
        fn send_to(&mut self, _: SocketAddr, _: &[u8]) -> bool {
            true
        }
    }

    fn plain(ssrc: u32, channel: u32) -> Endpoint {
        Endpoint {
            source: Source::Member {
                conn: ConnId::new(ssrc, 1),
                channel,
            },
            ssrcs: heapless::Vec::from_slice(&[ssrc]).unwrap(),
            audio_pt: 0,
            webrtc: None,
            gateway_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            keys: Keys::Plain,
            latched: None,
            last_rx: Instant::ZERO,
            stats: EndpointStats::default(),
            prev: NONE,
            next: NONE,
            session_next: NONE,
            serial: 0,
            server_ssrc: 0,
            fir_seq: 0,
            pli_due: false,
        }
    }

    fn rtp(ssrc: u32) -> [u8; 12] {
        let mut p = [0u8; 12];
        p[0] = 0x80;
        p[8..].copy_from_slice(&ssrc.to_be_bytes());
        p
    }

    #[test]
    fn endpoints_are_found_by_latched_address() {
        let mut slots: Vec<Option<Endpoint>> = Vec::with_capacity(8);
        let (mut by_ssrc, mut by_addr) = (vec![0u64; 32], vec![0u64; 16]);
        let mut relay = Relay::new(&mut slots, &mut by_ssrc, &mut by_addr, 8, 3);
        let now = Now::new(Instant::from_millis(5), 0);
        // One radio socket in two channels (two endpoints), another radio elsewhere.
        let a = relay.add(plain(1, 0)).unwrap();
        let b = relay.add(plain(2, 1)).unwrap();
        let c = relay.add(plain(3, 0)).unwrap();
        let radio: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:4002".parse().unwrap();
        assert_eq!(relay.latched_at(radio).count(), 0);
        for (ssrc, from) in [(1, radio), (2, radio), (3, other)] {
            relay.handle_datagram(now, from, &mut rtp(ssrc), &mut Nobody, &mut Nowhere);
        }
        assert_eq!(relay.stats().drop_not_holder, 3, "latched, then gated");
        let mut at_radio: Vec<usize> = relay.latched_at(radio).collect();
        at_radio.sort();
        assert_eq!(at_radio, [a, b]);
        assert_eq!(relay.latched_at(other).collect::<Vec<_>>(), [c]);
        // A latch that moves leaves its old address.
        let moved: SocketAddr = "127.0.0.1:4004".parse().unwrap();
        relay.handle_datagram(now, moved, &mut rtp(1), &mut Nobody, &mut Nowhere);
        assert_eq!(relay.latched_at(radio).collect::<Vec<_>>(), [b]);
        assert_eq!(relay.latched_at(moved).collect::<Vec<_>>(), [a]);
        // Removed endpoints leave the index; clearing empties it.
        relay.remove(b);
        assert_eq!(relay.latched_at(radio).count(), 0);
        relay.clear(8, 4);
        assert_eq!(relay.latched_at(other).count(), 0);
        assert!(by_addr.iter().chain(&by_ssrc).all(|&e| e == 0));
    }

    #[test]
    fn each_srtp_error_has_its_own_drop_counter() {
        let errors = [
            (srtp::Error::AuthFailed, Drop::AuthFailed),
            (srtp::Error::Replayed, Drop::Replay),
            (srtp::Error::IndexTooOld, Drop::Replay),
            (srtp::Error::TooManyStreams, Drop::TooManyStreams),
            (srtp::Error::KeyExhausted, Drop::KeyExhausted),
            (srtp::Error::BufferTooSmall { needed: 9 }, Drop::Buffer),
            (srtp::Error::TooShort, Drop::Malformed),
            (srtp::Error::Malformed, Drop::Malformed),
        ];
        let mut stats = MediaStats::default();
        for (e, want) in errors {
            assert_eq!(Drop::from(e), want, "{e:?}");
            stats.drop(Drop::from(e));
        }
        assert_eq!(stats.drop_auth, 1);
        assert_eq!(stats.drop_replay, 2);
        assert_eq!(stats.drop_too_many_streams, 1);
        assert_eq!(stats.drop_key_exhausted, 1);
        assert_eq!(stats.drop_buffer, 1);
        assert_eq!(stats.drop_malformed, 2);
        for why in [
            Drop::UnknownSsrc,
            Drop::Spoofed,
            Drop::NotHolder,
            Drop::NoLatch,
            Drop::SendFailed,
        ] {
            stats.drop(why);
        }
        assert_eq!(stats.drops(), 13, "every reason counts once in the total");
    }
}
