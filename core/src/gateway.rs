//! The sans-IO signaling gateway: connections in, frames in, frames and closes out.
//!
//! The loop contract (which call for which input, what the driver does after each) is in
//! the crate documentation.

mod admin;
mod camera;
mod channels;
mod floor_ops;
mod state;
mod webrtc;

pub use crate::codec::{Codec, VideoCodec};
pub use crate::relay::{MediaId, Track, VideoTrack};
pub use admin::{ADMIN_USER, AdminError, CLOSE_KICKED, ChannelBody};
pub use camera::CameraError;
pub use state::{Channel, Conn, ConnId, PeerInfo, Session};
pub use webrtc::{Negotiated, Offer, OfferError};

use core::fmt::Write;
use core::net::IpAddr;

use serde::Serialize;

use crate::config::{
    Limits, MAX_INBOUND_FRAME, MAX_JOINED_PER_SESSION, MAX_OUTBOUND_FRAME, MAX_UNIDENTIFIED,
    RATE_STRIKES_BEFORE_CLOSE, ZOMBIE_HEARTBEATS,
};
use crate::error::{Error, ErrorCode};
use crate::protocol::{
    self, ErrorPayload, Frame as OutFrame, Hello, Ready, Request, decode_envelope, decode_request,
    op,
};
use crate::relay::{Drop, Endpoint, Floors, MediaStats, Relay, Transmit};
use crate::storage::{Capacities, Table, Tables};
use crate::time::{Duration, Instant, Now};
use crate::token::TokenKey;
use crate::trace;

/// The address that counts for `ip` when connections are shed by source: an IPv6 address by
/// its /64 prefix (RFC 4291 section 2.5.4: the interface identifier is the low 64 bits, so
/// one host or network holds the whole /64), IPv4-mapped addresses as IPv4.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(core::net::Ipv6Addr::from_bits(
                v6.to_bits() & !u128::from(u64::MAX),
            )),
        },
        v4 => v4,
    }
}

/// The `server` string in HELLO.
pub const SERVER_NAME: &str = concat!("livechatd/", env!("CARGO_PKG_VERSION"));

/// WebSocket close code for a zombie (no frame for two heartbeat intervals).
pub const CLOSE_ZOMBIE: u16 = 4009;
/// WebSocket close code for a connection that did not identify in time (PROTOCOL.md v2).
pub const CLOSE_IDENTIFY_TIMEOUT: u16 = 4008;
/// WebSocket close code when the server is full (RFC 6455 section 7.4.1: 1013 try again
/// later): the oldest unidentified connection, making room for a new one.
pub const CLOSE_FULL: u16 = 1013;
/// WebSocket close code for policy violations (RFC 6455 section 7.4.1): a client that
/// keeps flooding after error 1006.
pub const CLOSE_POLICY: u16 = 1008;

/// What the core needs from its driver, called synchronously during each input.
pub trait Driver {
    /// Sends one text frame (UTF-8 JSON) to each of `to`, at most [`SEND_BATCH`] ids; a
    /// broadcast to a larger channel comes as several calls with the same frame. The driver
    /// queues it per connection (bounded: a connection whose queue is full is the driver's to
    /// close, then to report with [`Gateway::close`]); ids it does not know are skipped.
    fn send(&mut self, to: &[ConnId], frame: &[u8]);
    /// Closes a connection with a WebSocket close code. The core has already forgotten it.
    fn close(&mut self, conn: ConnId, code: u16, reason: &str);
    /// Fills `buf` with cryptographically secure random bytes (SRTP keys).
    fn fill_random(&mut self, buf: &mut [u8]);

    /// CHANNEL_JOIN with `sdp_offer`: parse the offer and answer it for the channel's
    /// codecs (PROTOCOL.md section 4), making the ICE and DTLS state of `offer.media`. A
    /// driver without WebRTC keeps the default, which refuses every offer (1004).
    fn negotiate<'d>(&'d mut self, offer: &Offer<'_>) -> Result<Negotiated<'d>, OfferError> {
        let _ = offer;
        Err(OfferError::Malformed(
            "sdp_offer is not supported by this server",
        ))
    }

    /// A WebRTC endpoint is gone (leave, disconnect, reap, channel delete, a join refused
    /// after [`Driver::negotiate`]): forget its ICE and DTLS state. Ids the driver does not
    /// know are ignored.
    fn media_ended(&mut self, media: MediaId) {
        let _ = media;
    }
    /// One trace event (PROTOCOL.md section 6), as it happens; for counters and the
    /// operators' trace stream. The default ignores it.
    fn trace(&mut self, _event: &crate::trace::Event<'_>) {}
    /// An ERROR frame with this wire code went out; for counters. The default ignores it.
    fn error_sent(&mut self, _code: u16) {}
}

/// When the daemon accepts plain RTP or SDES keys over ws:// (PROTOCOL.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Never.
    Never,
    /// Only when the client's gateway connection comes from a loopback address.
    Loopback,
    /// Always.
    Always,
}

impl Policy {
    /// Whether a client whose connection is (or is not) from loopback is allowed.
    pub fn allows(self, loopback: bool) -> bool {
        match self {
            Policy::Never => false,
            Policy::Loopback => loopback,
            Policy::Always => true,
        }
    }

    /// The setting's spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Policy::Never => "never",
            Policy::Loopback => "loopback",
            Policy::Always => "always",
        }
    }
}

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Capacities and timers.
    pub limits: Limits,
    /// The token secret.
    pub token_key: TokenKey,
    /// When plain RTP is accepted.
    pub plain_rtp: Policy,
    /// When SDES keys may travel over ws://.
    pub sdes_over_ws: Policy,
    /// The host put in the JOIN ACK's `media`.
    pub media_host: heapless::String<64>,
    /// The media port.
    pub media_port: u16,
    /// Seed for session ids, so two runs do not hand out the same ids.
    pub session_seed: u64,
}

/// A frame received on a connection.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    /// A text frame's payload (already checked for the hard cap by the driver).
    Text(&'a [u8]),
    /// A binary frame of this many bytes (refused: 1005 when over the limit, else 1003).
    Binary(usize),
    /// A frame of `len` bytes over the inbound limit that the driver dropped as it arrived
    /// (1005), with the top-level `id` the driver read from it on the way, if any.
    Oversized {
        /// Its length.
        len: usize,
        /// Its request's `id`.
        id: Option<u32>,
    },
    /// A WebSocket ping or pong: activity only.
    Ping,
}

/// The connection table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionsFull;

/// A connection [`Gateway::accept`] took, not greeted yet: pass it to [`Gateway::greet`].
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a connection is greeted with Gateway::greet once the driver has registered it"]
pub struct Accepted(ConnId);

impl Accepted {
    /// The connection's id, for the driver to register before [`Gateway::greet`].
    pub fn conn(&self) -> ConnId {
        self.0
    }
}

/// Counters for logs and state dumps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open.
    pub connections: usize,
    /// Identified sessions.
    pub sessions: usize,
    /// Channels.
    pub channels: usize,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent (one per recipient).
    pub frames_out: u64,
    /// ERROR frames sent.
    pub errors_out: u64,
    /// Frames refused by the rate limit.
    pub rate_limited: u64,
    /// Zombies reaped.
    pub zombies_reaped: u64,
    /// Connections closed for not identifying in time.
    pub identify_timeouts: u64,
    /// Unidentified connections closed to make room for a new one.
    pub unidentified_shed: u64,
    /// Frames that did not fit the outbound limit (a bug if ever non-zero).
    pub encode_failures: u64,
}

/// The outbound side: one scratch buffer, reused for every frame.
pub(crate) struct Out {
    buf: [u8; MAX_OUTBOUND_FRAME],
    frames_out: u64,
    errors_out: u64,
    encode_failures: u64,
}

impl Out {
    /// Encodes one frame and sends it to `to`.
    pub(crate) fn send<D: Serialize>(
        &mut self,
        drv: &mut impl Driver,
        to: &[ConnId],
        op_code: u8,
        d: D,
        id: Option<u32>,
    ) {
        if to.is_empty() {
            return;
        }
        let frame = OutFrame { op: op_code, d, id };
        match protocol::encode(&frame, &mut self.buf) {
            Ok(n) => self.send_raw(drv, to, n),
            Err(_) => self.encode_failures += 1,
        }
    }

    /// Encodes one frame once and sends it to every connection `to` yields, in batches of
    /// [`SEND_BATCH`] (one [`Driver::send`] each), so a channel of any size needs no list.
    pub(crate) fn send_each<D: Serialize>(
        &mut self,
        drv: &mut impl Driver,
        to: impl Iterator<Item = ConnId>,
        op_code: u8,
        d: D,
        id: Option<u32>,
    ) {
        let mut to = to.peekable();
        if to.peek().is_none() {
            return;
        }
        let frame = OutFrame { op: op_code, d, id };
        let n = match protocol::encode(&frame, &mut self.buf) {
            Ok(n) => n,
            Err(_) => {
                self.encode_failures += 1;
                return;
            }
        };
        let mut batch = heapless::Vec::<ConnId, SEND_BATCH>::new();
        for c in to {
            if let Err(c) = batch.push(c) {
                self.send_raw(drv, &batch, n);
                batch.clear();
                let _ = batch.push(c);
            }
        }
        self.send_raw(drv, &batch, n);
    }

    /// Sends the first `n` bytes of the scratch buffer.
    fn send_raw(&mut self, drv: &mut impl Driver, to: &[ConnId], n: usize) {
        if to.is_empty() {
            return;
        }
        if let Some(bytes) = self.buf.get(..n) {
            drv.send(to, bytes);
            self.frames_out += to.len() as u64;
        }
    }

    pub(crate) fn error(
        &mut self,
        drv: &mut impl Driver,
        to: ConnId,
        req_op: Option<i64>,
        e: Error,
        id: Option<u32>,
    ) {
        self.errors_out += 1;
        drv.error_sent(e.code.code());
        self.send(drv, &[to], op::ERROR, ErrorPayload::new(req_op, &e), id);
    }
}

/// The signaling gateway: every session and channel, and the rules between them.
pub struct Gateway<'a> {
    cfg: GatewayConfig,
    conns: &'a mut dyn Table<Conn>,
    channels: &'a mut dyn Table<Option<Channel>>,
    /// The capacities in force: the limits' or the storage's, whichever is less.
    max_conns: usize,
    max_channels: usize,
    /// No connection slot below this one is free: where the search for one starts, so
    /// that opening a connection does not walk every open one.
    free_conn: usize,
    out: Out,
    sessions: usize,
    session_counter: u64,
    next_deadline: Option<Instant>,
    frames_in: u64,
    rate_limited: u64,
    zombies_reaped: u64,
    identify_timeouts: u64,
    unidentified_shed: u64,
    relay: Relay<'a>,
    /// The cameras (PROTOCOL.md section 7), added by the driver at start.
    cameras: camera::Cameras<'a>,
}

/// The identified session of an open connection, or `None`.
fn session_of(conns: &[Conn], c: ConnId) -> Option<&Session> {
    conns
        .get(c.index())
        .filter(|s| s.open && s.generation == c.generation())
        .and_then(|s| s.session.as_ref())
}

/// A user_id for a connection, "" if it has none (never the case for members).
fn user_of(conns: &[Conn], c: ConnId) -> &str {
    session_of(conns, c).map_or("", |s| s.user_id.as_str())
}

impl<'a> Gateway<'a> {
    /// A gateway with empty tables, kept in the storage of `tables` (which is emptied). Each
    /// capacity is the limit's or the storage's, whichever is less: size the storage with
    /// [`Capacities::of`] the same limits.
    pub fn new(mut cfg: GatewayConfig, tables: Tables<'a>) -> Self {
        cfg.limits = cfg.limits.clamped();
        let Tables {
            conns,
            channels,
            endpoints,
            ssrc_index,
            addr_index,
        } = tables;
        conns.clear();
        channels.clear();
        let want = Capacities::of(&cfg.limits);
        let (max_conns, max_channels) = (
            want.connections.min(conns.capacity()),
            want.channels.min(channels.capacity()),
        );
        let relay = Relay::new(
            endpoints,
            ssrc_index,
            addr_index,
            cfg.limits.max_peers,
            cfg.session_seed,
        );
        Gateway {
            cfg,
            conns,
            channels,
            max_conns,
            max_channels,
            free_conn: 0,
            out: Out {
                buf: [0; MAX_OUTBOUND_FRAME],
                frames_out: 0,
                errors_out: 0,
                encode_failures: 0,
            },
            sessions: 0,
            session_counter: 0,
            next_deadline: None,
            frames_in: 0,
            rate_limited: 0,
            zombies_reaped: 0,
            identify_timeouts: 0,
            unidentified_shed: 0,
            relay,
            cameras: heapless::Vec::new(),
        }
    }

    /// Starts over with `cfg`: afterwards the gateway behaves exactly as one just built
    /// with [`Gateway::new`] on the same storage. Only the slots in use are rewritten, so a
    /// driver that rebuilds its state often (fuzzing, tests) does not pay for the whole
    /// tables.
    pub fn reset(&mut self, mut cfg: GatewayConfig) {
        cfg.limits = cfg.limits.clamped();
        self.conns.clear();
        self.channels.clear();
        let want = Capacities::of(&cfg.limits);
        self.max_conns = want.connections.min(self.conns.capacity());
        self.max_channels = want.channels.min(self.channels.capacity());
        self.free_conn = 0;
        self.relay.clear(cfg.limits.max_peers, cfg.session_seed);
        self.cameras.clear();
        self.cfg = cfg;
        self.out.frames_out = 0;
        self.out.errors_out = 0;
        self.out.encode_failures = 0;
        self.sessions = 0;
        self.session_counter = 0;
        self.next_deadline = None;
        self.frames_in = 0;
        self.rate_limited = 0;
        self.zombies_reaped = 0;
        self.identify_timeouts = 0;
        self.unidentified_shed = 0;
    }

    /// The capacities in force: each the limit's or the storage's, whichever is less.
    pub fn capacities(&self) -> Capacities {
        let want = Capacities::of(&self.cfg.limits);
        Capacities {
            connections: self.max_conns,
            channels: self.max_channels,
            peers: self.relay.capacity(),
            ssrc_index: want.ssrc_index,
            addr_index: want.addr_index,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &GatewayConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.conns.as_slice().iter().filter(|c| c.open).count(),
            sessions: self.sessions,
            channels: self.channels().count(),
            frames_in: self.frames_in,
            frames_out: self.out.frames_out,
            errors_out: self.out.errors_out,
            rate_limited: self.rate_limited,
            zombies_reaped: self.zombies_reaped,
            identify_timeouts: self.identify_timeouts,
            unidentified_shed: self.unidentified_shed,
            encode_failures: self.out.encode_failures,
        }
    }

    /// The identified session on `conn`, if any.
    pub fn session(&self, conn: ConnId) -> Option<&Session> {
        session_of(self.conns.as_slice(), conn)
    }

    /// Every channel.
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.as_slice().iter().flatten()
    }

    /// The members of a channel in join order: their media endpoints.
    pub fn members<'s>(&'s self, ch: &Channel) -> impl Iterator<Item = &'s Endpoint> + use<'s, 'a> {
        self.relay.members(ch).map(|(_, e)| e)
    }

    /// The channel whose member `e` is.
    pub fn channel_of(&self, e: &Endpoint) -> Option<&Channel> {
        self.channels
            .as_slice()
            .get(e.channel() as usize)
            .and_then(Option::as_ref)
    }

    /// Every media endpoint.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.relay.iter()
    }

    /// Media counters.
    pub fn media_stats(&self) -> MediaStats {
        self.relay.stats()
    }

    /// One datagram from the media port, for the relay ([`Relay::handle_datagram`]), which
    /// asks the channels' floors who may talk. Relayed copies go out through `tx` before
    /// this returns; `buf` is decrypted in place.
    pub fn handle_datagram(
        &mut self,
        now: Now,
        src: core::net::SocketAddr,
        buf: &mut [u8],
        tx: &mut impl Transmit,
    ) {
        // A viewer's PLI or FIR may name a camera's SSRC: seen once the relay has
        // authenticated (and decrypted in place) the compound.
        let feedback = !self.cameras.is_empty()
            && crate::wire::demux::classify(buf) == crate::wire::demux::Kind::Rtcp;
        let before = if feedback { self.packets_in_at(src) } else { 0 };
        let mut floors = ChannelFloors(self.channels.as_mut_slice());
        self.relay.handle_datagram(now, src, buf, &mut floors, tx);
        if feedback && self.packets_in_at(src) > before {
            self.camera_feedback(src, buf);
        }
    }

    /// The user_id of a connection's session ("" when unidentified).
    pub fn user_id(&self, conn: ConnId) -> &str {
        user_of(self.conns.as_slice(), conn)
    }

    /// A new connection, in one step: [`Gateway::accept`] then [`Gateway::greet`]. For a
    /// driver whose [`Driver::send`] can deliver to an id it has not registered yet (a
    /// recording driver); a driver that routes frames by a table of its own uses the two
    /// steps and registers the id in between.
    pub fn open(
        &mut self,
        now: Now,
        peer: PeerInfo,
        drv: &mut impl Driver,
    ) -> Result<ConnId, ConnectionsFull> {
        let accepted = self.accept(now, peer, drv)?;
        Ok(self.greet(now, accepted, drv))
    }

    /// A new connection takes a slot; nothing is sent yet. The driver registers
    /// [`Accepted::conn`] with its own handle for the connection, then calls
    /// [`Gateway::greet`], which sends HELLO through that handle. A full table is refused
    /// and the driver closes the connection (1013, try again later). With
    /// [`MAX_UNIDENTIFIED`] connections not identified yet, the oldest of them is closed
    /// through `drv` (1013) to make room first.
    pub fn accept(
        &mut self,
        now: Now,
        peer: PeerInfo,
        drv: &mut impl Driver,
    ) -> Result<Accepted, ConnectionsFull> {
        self.shed_unidentified(now, drv);
        let from = self.free_conn;
        let free = self
            .conns
            .as_slice()
            .get(from..)
            .and_then(|rest| rest.iter().position(|c| !c.open))
            .map(|i| i + from);
        let (index, generation) = match free {
            Some(i) => (
                i,
                self.conns
                    .as_slice()
                    .get(i)
                    .map_or(0, |c| c.generation.wrapping_add(1)),
            ),
            None if self.conns.as_slice().len() < self.max_conns => {
                let i = self.conns.as_slice().len();
                self.conns.push(Conn::FREE).map_err(|_| ConnectionsFull)?;
                (i, 1)
            }
            None => return Err(ConnectionsFull),
        };
        let slot = self
            .conns
            .as_mut_slice()
            .get_mut(index)
            .ok_or(ConnectionsFull)?;
        self.free_conn = index + 1;
        *slot = Conn {
            generation,
            open: true,
            peer,
            opened_at: now.mono,
            last_activity: now.mono,
            rate_milli: u64::from(self.cfg.limits.rate_burst) * 1000,
            rate_at: now.mono,
            strikes: 0,
            session: None,
        };
        self.bump_deadline(now.mono + self.zombie_after().min(self.cfg.limits.identify_timeout));
        Ok(Accepted(ConnId::new(index as u32, generation)))
    }

    /// Sends HELLO on a connection [`Gateway::accept`] took (PROTOCOL.md section 1: the
    /// server speaks first) and returns its id.
    pub fn greet(&mut self, _now: Now, accepted: Accepted, drv: &mut impl Driver) -> ConnId {
        let id = accepted.0;
        let hello = Hello {
            heartbeat_interval: self.cfg.limits.heartbeat.as_millis(),
            server: SERVER_NAME,
        };
        self.out.send(drv, &[id], op::HELLO, hello, None);
        id
    }

    /// The unidentified connection to close for a new one: the oldest of the address holding
    /// the most (IPv6 addresses by their /64, what one host is usually given), so that a
    /// flood from a few addresses sheds its own connections, not other people's.
    fn unidentified_to_shed(&self) -> Option<ConnId> {
        let mut held: heapless::Vec<(usize, IpAddr, Instant), MAX_UNIDENTIFIED> =
            heapless::Vec::new();
        for (i, c) in self.conns.as_slice().iter().enumerate() {
            if c.open
                && c.session.is_none()
                && held.push((i, address_key(c.peer.ip), c.opened_at)).is_err()
            {
                break;
            }
        }
        let (i, _, _) = held.iter().max_by_key(|(_, key, opened_at)| {
            let same = held.iter().filter(|(_, k, _)| k == key).count();
            (same, core::cmp::Reverse(*opened_at))
        })?;
        let c = self.conns.as_slice().get(*i)?;
        Some(ConnId::new(*i as u32, c.generation))
    }

    /// The connection ended (closed by the client, a network error, or closed by the
    /// driver for its own reasons such as a full outbound queue): clean up exactly as on
    /// disconnect. Unknown or stale ids are ignored.
    pub fn close(&mut self, now: Now, conn: ConnId, drv: &mut impl Driver) {
        if self.conn(conn).is_some() {
            self.drop_connection(now, conn, trace::cause::DISCONNECT, drv);
        }
    }

    /// One frame from a connection.
    pub fn handle_frame(
        &mut self,
        now: Now,
        conn: ConnId,
        frame: Frame<'_>,
        drv: &mut impl Driver,
    ) {
        let Some(c) = self.conn_mut(conn) else {
            return;
        };
        c.last_activity = now.mono;
        if matches!(frame, Frame::Ping) {
            return;
        }
        self.frames_in += 1;
        if !self.take_budget(now.mono, conn) {
            self.rate_limited += 1;
            let strikes = self.conn_mut(conn).map_or(0, |c| {
                c.strikes = c.strikes.saturating_add(1);
                u32::from(c.strikes)
            });
            if strikes > RATE_STRIKES_BEFORE_CLOSE {
                drv.close(conn, CLOSE_POLICY, "rate limit exceeded");
                self.drop_connection(now, conn, trace::cause::RATE_LIMIT, drv);
                return;
            }
            // Echo what can be read cheaply, so pipelining clients can match the answer.
            let (req_op, id) = match frame {
                Frame::Text(b) if b.len() <= MAX_INBOUND_FRAME => match decode_envelope(b) {
                    Ok(e) => (Some(e.op), e.id),
                    Err(e) => (e.op, e.id),
                },
                Frame::Oversized { id, .. } => (None, id),
                _ => (None, None),
            };
            self.out
                .error(drv, conn, req_op, ErrorCode::RateLimited.into(), id);
            return;
        }
        // Strikes decay one per allowed frame, so a flooder paced to let a frame through
        // now and then still accumulates them (a reset would never close it).
        if let Some(c) = self.conn_mut(conn) {
            c.strikes = c.strikes.saturating_sub(1);
        }
        // PROTOCOL.md's order: size, then frame type, then JSON.
        let len = match frame {
            Frame::Text(b) => b.len(),
            Frame::Binary(n) => n,
            // Dropped by the driver because it is over the limit; at least one byte over it
            // whatever the driver says.
            Frame::Oversized { len, .. } => len.max(MAX_INBOUND_FRAME + 1),
            Frame::Ping => return,
        };
        if len > MAX_INBOUND_FRAME {
            // The answer echoes the frame's `id` when it can be read (PROTOCOL.md: a request
            // with `id` gets exactly one answer echoing it); the frame is below the hard cap.
            let id = match frame {
                Frame::Text(b) => decode_envelope(b).map_or_else(|e| e.id, |e| e.id),
                Frame::Oversized { id, .. } => id,
                _ => None,
            };
            self.out
                .error(drv, conn, None, ErrorCode::TooLarge.into(), id);
            return;
        }
        let bytes = match frame {
            Frame::Text(b) => b,
            _ => {
                let e = Error::new(ErrorCode::UnknownOp, "binary frames are not accepted");
                self.out.error(drv, conn, None, e, None);
                return;
            }
        };
        let env = match decode_envelope(bytes) {
            Ok(env) => env,
            Err(e) => {
                self.out.error(drv, conn, e.op, e.error, e.id);
                return;
            }
        };
        let Some(op_code) = u8::try_from(env.op)
            .ok()
            .filter(|&o| op::is_client_op(i64::from(o)))
        else {
            self.out
                .error(drv, conn, Some(env.op), ErrorCode::UnknownOp.into(), env.id);
            return;
        };
        let identified = self.session(conn).is_some();
        if !identified && op_code != op::HEARTBEAT && op_code != op::IDENTIFY {
            self.out.error(
                drv,
                conn,
                Some(env.op),
                ErrorCode::NotIdentified.into(),
                env.id,
            );
            return;
        }
        let req = match decode_request(op_code, bytes, self.cfg.limits.max_members) {
            Ok(r) => r,
            Err(e) => {
                self.out.error(drv, conn, Some(env.op), e, env.id);
                return;
            }
        };
        let res = self.dispatch(now, conn, req, env.id, drv);
        if let Err(e) = res {
            self.out.error(drv, conn, Some(env.op), e, env.id);
        }
    }

    /// Handles every timer due at `now`: connections that did not identify in time,
    /// zombie connections, then floor timers.
    pub fn handle_timeout(&mut self, now: Now, drv: &mut impl Driver) {
        if self.next_deadline.is_some_and(|d| d > now.mono) {
            return;
        }
        let zombie_after = self.zombie_after();
        let identify_timeout = self.cfg.limits.identify_timeout;
        for index in 0..self.conns.as_slice().len() {
            let Some(c) = self.conns.as_slice().get(index) else {
                continue;
            };
            if c.open && c.session.is_none() && c.opened_at + identify_timeout <= now.mono {
                let id = ConnId::new(index as u32, c.generation);
                self.identify_timeouts += 1;
                drv.close(id, CLOSE_IDENTIFY_TIMEOUT, "identify timeout");
                self.drop_connection(now, id, trace::cause::IDENTIFY_TIMEOUT, drv);
            } else if c.open && c.last_activity + zombie_after <= now.mono {
                let id = ConnId::new(index as u32, c.generation);
                self.zombies_reaped += 1;
                drv.close(id, CLOSE_ZOMBIE, "heartbeat timeout");
                self.drop_connection(now, id, trace::cause::HEARTBEAT_TIMEOUT, drv);
            }
        }
        for slot in 0..self.channels.as_slice().len() {
            let due = self
                .channels
                .as_slice()
                .get(slot)
                .and_then(Option::as_ref)
                .and_then(|c| c.floor.poll_timeout())
                .is_some_and(|t| t <= now.mono);
            if due {
                self.with_floor(slot, drv, |f, emit| f.handle_timeout(now.mono, emit));
            }
        }
        self.recompute_deadline();
    }

    /// When [`Gateway::handle_timeout`] next needs to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_deadline
    }

    /// With [`MAX_UNIDENTIFIED`] connections not identified yet, closes one of them (1013),
    /// so that a flood of connections that never identify cannot keep new clients out.
    fn shed_unidentified(&mut self, now: Now, drv: &mut impl Driver) {
        let conns = self.conns.as_slice();
        let unidentified = conns.iter().filter(|c| c.open && c.session.is_none());
        if unidentified.count() >= MAX_UNIDENTIFIED
            && let Some(id) = self.unidentified_to_shed()
        {
            self.unidentified_shed += 1;
            drv.close(id, CLOSE_FULL, "server full");
            self.drop_connection(now, id, trace::cause::SHED, drv);
        }
    }

    fn zombie_after(&self) -> Duration {
        Duration::from_micros(
            self.cfg
                .limits
                .heartbeat
                .as_micros()
                .saturating_mul(ZOMBIE_HEARTBEATS),
        )
    }

    pub(crate) fn bump_deadline(&mut self, at: Instant) {
        self.next_deadline = Some(self.next_deadline.map_or(at, |d| d.min(at)));
    }

    fn recompute_deadline(&mut self) {
        let zombie_after = self.zombie_after();
        let identify_timeout = self.cfg.limits.identify_timeout;
        let zombies = self.conns.as_slice().iter().filter(|c| c.open).map(|c| {
            let zombie = c.last_activity + zombie_after;
            match c.session {
                None => zombie.min(c.opened_at + identify_timeout),
                Some(_) => zombie,
            }
        });
        let floors = self
            .channels
            .as_slice()
            .iter()
            .flatten()
            .filter_map(|c| c.floor.poll_timeout());
        self.next_deadline = zombies.chain(floors).min();
    }

    fn conn(&self, c: ConnId) -> Option<&Conn> {
        self.conns
            .as_slice()
            .get(c.index())
            .filter(|s| s.open && s.generation == c.generation())
    }

    fn conn_mut(&mut self, c: ConnId) -> Option<&mut Conn> {
        self.conns
            .as_mut_slice()
            .get_mut(c.index())
            .filter(|s| s.open && s.generation == c.generation())
    }

    /// Token bucket: `rate_burst` requests, refilled at `rate_per_sec`.
    fn take_budget(&mut self, now: Instant, conn: ConnId) -> bool {
        let (burst, per_sec) = (
            u64::from(self.cfg.limits.rate_burst) * 1000,
            u64::from(self.cfg.limits.rate_per_sec),
        );
        let Some(c) = self.conn_mut(conn) else {
            return false;
        };
        let elapsed_us = now.saturating_since(c.rate_at).as_micros();
        // per_sec requests a second is per_sec thousandths a millisecond.
        let refill = elapsed_us.saturating_mul(per_sec) / 1000;
        c.rate_milli = c.rate_milli.saturating_add(refill).min(burst);
        c.rate_at = now;
        if c.rate_milli >= 1000 {
            c.rate_milli -= 1000;
            true
        } else {
            false
        }
    }

    fn dispatch(
        &mut self,
        now: Now,
        conn: ConnId,
        req: Request<'_>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        match req {
            Request::Heartbeat => {
                self.out.send(drv, &[conn], op::HEARTBEAT_ACK, (), id);
                Ok(())
            }
            Request::Identify {
                user_id,
                token,
                priority,
            } => self.identify(now, conn, &user_id, &token, priority, id, drv),
            Request::ChannelCreate {
                channel_id,
                name,
                freq,
                capacity,
                codec,
                video_codec,
            } => {
                let codecs = (codec.unwrap_or_default(), video_codec.unwrap_or_default());
                self.channel_create(now, conn, channel_id, name, freq, capacity, codecs, id, drv)
            }
            Request::ChannelJoin {
                channel_id,
                ssrc,
                crypto,
                sdp_offer: Some(offer),
            } => {
                let _ = crypto; // None: the decoder refuses both together.
                self.channel_join_webrtc(now, conn, &channel_id, ssrc, offer, id, drv)
            }
            Request::ChannelJoin {
                channel_id,
                ssrc,
                crypto,
                sdp_offer: None,
            } => {
                let ssrc = ssrc.ok_or(Error::new(ErrorCode::Malformed, "missing ssrc"))?;
                self.channel_join(now, conn, &channel_id, ssrc, crypto, id, drv)
            }
            Request::ChannelLeave { channel_id } => {
                self.channel_leave(now, conn, &channel_id, id, drv)
            }
            Request::ChannelUpdate {
                channel_id,
                name,
                freq,
                capacity,
            } => self.channel_update(conn, &channel_id, name, freq, capacity, id, drv),
            Request::ChannelDelete { channel_id } => {
                self.channel_delete(now, conn, &channel_id, id, drv)
            }
            Request::ChannelList => {
                self.channel_list(conn, id, drv);
                Ok(())
            }
            Request::ChannelInfo { channel_id } => self.channel_info(conn, &channel_id, id, drv),
            Request::MessageCreate {
                channel_id,
                content,
            } => self.message_create(
                now,
                conn,
                &channel_id,
                content.as_deref().map_err(|e| *e),
                id,
                drv,
            ),
            Request::FloorRequest {
                channel_id,
                priority,
            } => self.floor_request(now, conn, &channel_id, priority, id, drv),
            Request::FloorRelease { channel_id } => {
                self.floor_release(now, conn, &channel_id, id, drv)
            }
            Request::FloorPing { channel_id } => self.floor_ping(now, conn, &channel_id, id, drv),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn identify(
        &mut self,
        now: Now,
        conn: ConnId,
        user_id: &str,
        token: &str,
        priority: Option<u8>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        if self.session(conn).is_some() {
            return Err(ErrorCode::AlreadyIdentified.into());
        }
        let grant = self
            .cfg
            .token_key
            .verify(user_id, token, now.unix_ms / 1000)
            .map_err(|e| {
                Error::new(
                    ErrorCode::InvalidToken,
                    match e {
                        crate::token::TokenError::Malformed => "malformed token",
                        crate::token::TokenError::Expired => "token expired",
                        crate::token::TokenError::BadMac => "invalid token",
                    },
                )
            })?;
        let in_use = self
            .conns
            .as_slice()
            .iter()
            .filter_map(|c| c.session.as_ref().filter(|_| c.open))
            .any(|s| s.user_id == user_id);
        if in_use || self.is_camera(user_id) {
            return Err(Error::new(ErrorCode::AlreadyIdentified, "user_id in use"));
        }
        if self.sessions >= self.cfg.limits.max_sessions {
            return Err(Error::new(ErrorCode::Capacity, "session limit reached"));
        }
        self.session_counter += 1;
        let mut session_id = heapless::String::new();
        let _ = write!(
            session_id,
            "{:016x}",
            splitmix64(self.cfg.session_seed ^ self.session_counter)
        );
        let mut uid = protocol::Id::new();
        uid.push_str(user_id)
            .map_err(|_| Error::from(ErrorCode::Malformed))?;
        let session = Session {
            user_id: uid,
            session_id,
            priority: priority.unwrap_or(0).min(grant.priority_cap),
            priority_cap: grant.priority_cap,
            joined: 0,
            joined_head: crate::relay::NONE,
        };
        self.sessions += 1;
        let Gateway { conns, out, .. } = self;
        let c = conns
            .as_mut_slice()
            .get_mut(conn.index())
            .ok_or(Error::from(ErrorCode::Internal))?;
        let s = c.session.insert(session);
        let ready = Ready {
            session_id: &s.session_id,
            user_id: &s.user_id,
        };
        out.send(drv, &[conn], op::READY, ready, id);
        drv.trace(&trace::Event::new(
            trace::Kind::Session,
            "identify",
            None,
            Some(&s.user_id),
        ));
        Ok(())
    }

    /// Forgets a connection and everything its session held: channels left (others are
    /// told), floor passed on or request dequeued; a session's end is traced with `cause`.
    fn drop_connection(
        &mut self,
        now: Now,
        conn: ConnId,
        cause: &'static str,
        drv: &mut impl Driver,
    ) {
        // Each removal takes the head of the session's list; the bound only guards against
        // a list that would not shrink.
        for _ in 0..=MAX_JOINED_PER_SESSION {
            match self.session(conn).map(|s| s.joined_head) {
                Some(at) if at != crate::relay::NONE => {
                    self.remove_member(now, conn, at as usize, drv)
                }
                _ => break,
            }
        }
        if let Some(s) = self.session(conn) {
            let ev = trace::Event::new(trace::Kind::Session, "close", None, Some(&s.user_id));
            drv.trace(&ev.with(trace::Detail::Cause(cause)));
        }
        if let Some(c) = self.conn_mut(conn) {
            let had_session = c.session.take().is_some();
            c.open = false;
            self.free_conn = self.free_conn.min(conn.index());
            if had_session {
                self.sessions = self.sessions.saturating_sub(1);
            }
        }
    }
}

/// The channels' floors as the relay sees them.
struct ChannelFloors<'t>(&'t mut [Option<Channel>]);

impl Floors for ChannelFloors<'_> {
    fn talk(&mut self, channel: u32, conn: ConnId, now: Instant) -> Result<&Channel, Drop> {
        let ch = self
            .0
            .get_mut(channel as usize)
            .and_then(Option::as_mut)
            .ok_or(Drop::UnknownSsrc)?;
        if ch.floor.holder().is_none_or(|(h, _)| h != conn) {
            return Err(Drop::NotHolder);
        }
        // Authenticated RTP from the holder is floor activity (PROTOCOL.md floor timers).
        ch.floor.activity(now, conn);
        ch.relayed += 1;
        Ok(ch)
    }
}

/// A well-mixed 64-bit permutation (Steele et al., SplitMix64), for session ids.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Recipients of one broadcast gathered on the stack per [`Driver::send`] call.
pub const SEND_BATCH: usize = 64;

#[cfg(test)]
mod tests;
