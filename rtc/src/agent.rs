//! The [`Agent`]: every WebRTC peer's ICE-lite and DTLS state, sans-IO.
//!
//! # The loop contract
//!
//! The driver owns one agent beside the core's gateway and feeds it, one at a time:
//!
//! | input | call |
//! |---|---|
//! | CHANNEL_JOIN with an acceptable offer | [`Agent::add_peer`] (its [`LocalIce`] goes in the answer) |
//! | the endpoint is gone (leave, disconnect, media failed) | [`Agent::remove_peer`] |
//! | a STUN (first byte 0..=3) or DTLS (20..=63) datagram on the media port | [`Agent::handle_datagram`] |
//! | the instant from [`Agent::poll_timeout`] has passed | [`Agent::handle_timeout`] |
//!
//! After **each** call the driver drains [`Agent::poll_event`] until `None` (and hands each
//! event to the core: `media_checked`, `media_keys`, `media_failed`), then re-reads
//! `poll_timeout`. Datagrams to send go out through the `send` sink during the call.
//!
//! Time is the core's [`Instant`]; the agent maps it onto `std::time::Instant` for `dimpl`
//! from the pair of instants it was created with, so a driver never hands `dimpl` a clock.
//!
//! Bounds: at most [`AgentConfig::max_peers`] peers ([`AddPeerError::Full`] beyond, error
//! 2006), [`MAX_CHECKED_ADDRS`] checked addresses per peer (the oldest is forgotten), and an
//! event queue of `2 * max_peers + 16` (each peer has at most one terminal event and the
//! driver drains after every call; an event beyond is dropped and counted).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use livechat_core::time::{Duration, Instant};
use livechat_core::wire::demux::{self, Kind};
use stun_types::message::IntegrityKey;

use crate::cert::{Certificate, Fingerprint};
use crate::dtls::{self, FailReason, Handshake, SrtpKeys};
use crate::ice::{self, Request, StunDrop};
use crate::sdp::RemoteIce;

/// Most addresses one peer may have passed a check from at once (a browser checks from one
/// candidate pair per network path; the oldest address is forgotten beyond this).
pub const MAX_CHECKED_ADDRS: usize = 4;
/// How long a finished handshake is kept to answer the client's retransmitted last flight
/// (RFC 6347 section 4.2.4: the server's final flight may be lost; browsers retransmit
/// after 1, 2 and 4 s). Then it is dropped, so a connected peer keeps no handshake state.
pub const DTLS_LINGER: Duration = Duration::from_secs(8);
/// Length of the server's per-peer ice-ufrag (RFC 8839 section 5.4: at least 4 characters).
const UFRAG_LEN: usize = 8;
/// Length of the server's per-peer ice-pwd (RFC 8839 section 5.4: at least 22 characters,
/// 128 bits of randomness: 24 characters of 64 give 144).
const PWD_LEN: usize = 24;

/// Settings of the agent.
#[derive(Debug, Clone, Copy)]
pub struct AgentConfig {
    /// Most WebRTC peers at once.
    pub max_peers: usize,
    /// A handshake not finished this long after `add_peer` fails the peer (PROTOCOL.md
    /// section 4: 10 s after the ACK).
    pub handshake_timeout: Duration,
    /// A connected peer with no valid check for this long fails (RFC 7675; PROTOCOL.md
    /// section 4: 30 s).
    pub consent_timeout: Duration,
    /// SOFTWARE in success responses (RFC 5389 section 15.10), or none.
    pub software: Option<&'static str>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            max_peers: 256,
            handshake_timeout: Duration::from_secs(10),
            consent_timeout: Duration::from_secs(30),
            software: None,
        }
    }
}

/// Why `add_peer` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddPeerError {
    /// `max_peers` peers exist (error 2006).
    Full,
    /// The operating system gave no random bytes for the credentials (error 9000).
    NoRandomness,
}

/// The server's ICE credentials for one peer, for the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIce {
    /// `a=ice-ufrag`.
    pub ufrag: String,
    /// `a=ice-pwd`.
    pub pwd: String,
}

/// What happened to a peer, for the core.
#[derive(Debug)]
pub enum Event {
    /// A check from `addr` passed integrity and latches the peer there: the first valid
    /// check, a nominated one (USE-CANDIDATE), or a consent check (RFC 7675) from the
    /// latched address, which is activity that keeps the latch.
    Checked {
        /// The peer.
        media: u64,
        /// Where the check came from.
        addr: SocketAddr,
        /// USE-CANDIDATE was present.
        nominated: bool,
    },
    /// The DTLS handshake finished with the offered certificate: SRTP keys.
    Connected {
        /// The peer.
        media: u64,
        /// client_write and server_write master keys.
        keys: SrtpKeys,
    },
    /// The peer failed; the agent has forgotten it.
    Failed {
        /// The peer.
        media: u64,
        /// Why.
        reason: FailReason,
    },
}

/// Counters of the agent (drops by reason, handshakes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Binding requests answered with a success.
    pub stun_answered: u64,
    /// Binding requests whose MESSAGE-INTEGRITY does not verify with the peer's pwd.
    pub stun_bad_integrity: u64,
    /// Binding requests naming a server ufrag (or client ufrag) of no peer.
    pub stun_unknown_ufrag: u64,
    /// STUN-range datagrams that are not STUN, fail FINGERPRINT, or lack an ICE USERNAME.
    pub stun_malformed: u64,
    /// Well-formed STUN that is not a Binding request (indications, responses).
    pub stun_other: u64,
    /// DTLS from an address that passed no check (spoofed or unknown sources).
    pub dtls_unchecked: u64,
    /// DTLS from a connected peer after its handshake state was dropped.
    pub dtls_after_connect: u64,
    /// Handshakes that failed (DTLS error, fingerprint, no use_srtp, timeout).
    pub dtls_failed: u64,
    /// Handshakes that finished with keys.
    pub handshakes_done: u64,
    /// Connected peers failed for lack of consent checks.
    pub consent_expired: u64,
    /// Events dropped because the driver did not drain the queue.
    pub events_dropped: u64,
    /// Peers now.
    pub peers: u64,
}

enum State {
    /// Answered, no DTLS yet.
    Waiting,
    Handshaking(Box<Handshake>),
    /// Keys delivered; the handshake lingers until `linger_until`.
    Connected {
        linger: Option<(Box<Handshake>, Instant)>,
    },
}

struct Peer {
    media: u64,
    ufrag: String,
    key: IntegrityKey,
    remote_ufrag: String,
    fingerprint: Fingerprint,
    checked: heapless::Deque<SocketAddr, MAX_CHECKED_ADDRS>,
    /// Where DTLS last came from: where retransmissions go.
    dtls_addr: Option<SocketAddr>,
    /// The latched address: the first valid check's until a check is nominated, then the
    /// latest nominated one's (PROTOCOL.md section 4).
    latched: Option<SocketAddr>,
    state: State,
    handshake_deadline: Instant,
    last_check: Instant,
}

/// Every WebRTC peer's ICE-lite and DTLS-SRTP state.
pub struct Agent {
    cert: Certificate,
    dtls: Arc<dimpl::Config>,
    config: AgentConfig,
    origin: (Instant, StdInstant),
    peers: Vec<Option<Peer>>,
    free: Vec<usize>,
    by_media: HashMap<u64, usize>,
    by_ufrag: HashMap<String, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    events: VecDeque<Event>,
    stats: Stats,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("peers", &self.by_media.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent presenting `cert`, at `now`.
    pub fn new(
        cert: Certificate,
        config: AgentConfig,
        now: Instant,
    ) -> Result<Agent, dimpl::Error> {
        let timeout = StdDuration::from_micros(config.handshake_timeout.as_micros().max(1));
        Ok(Agent {
            cert,
            dtls: dtls::config(timeout)?,
            config,
            origin: (now, StdInstant::now()),
            peers: Vec::new(),
            free: Vec::new(),
            by_media: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            buf: vec![0; 2048],
            out: Vec::with_capacity(128),
        })
    }

    /// The certificate's SHA-256 fingerprint, for answers.
    pub fn fingerprint(&self) -> &str {
        self.cert.fingerprint()
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        Stats {
            peers: self.by_media.len() as u64,
            ..self.stats
        }
    }

    /// A new peer (an accepted offer), or the same `media` again with new credentials.
    pub fn add_peer(
        &mut self,
        now: Instant,
        media: u64,
        remote: &RemoteIce,
    ) -> Result<LocalIce, AddPeerError> {
        self.remove_peer(media);
        if self.by_media.len() >= self.config.max_peers {
            return Err(AddPeerError::Full);
        }
        let ufrag = loop {
            let u = random_ice_string(UFRAG_LEN).ok_or(AddPeerError::NoRandomness)?;
            if !self.by_ufrag.contains_key(&u) {
                break u;
            }
        };
        let pwd = random_ice_string(PWD_LEN).ok_or(AddPeerError::NoRandomness)?;
        let peer = Peer {
            media,
            ufrag: ufrag.clone(),
            key: ice::key_for(&pwd),
            remote_ufrag: remote.ufrag.clone(),
            fingerprint: remote.fingerprint,
            checked: heapless::Deque::new(),
            dtls_addr: None,
            latched: None,
            state: State::Waiting,
            handshake_deadline: now + self.config.handshake_timeout,
            last_check: now,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.peers[i] = Some(peer);
                i
            }
            None => {
                self.peers.push(Some(peer));
                self.peers.len() - 1
            }
        };
        self.by_media.insert(media, idx);
        self.by_ufrag.insert(ufrag.clone(), idx);
        Ok(LocalIce { ufrag, pwd })
    }

    /// Forgets a peer (unknown ids are ignored).
    pub fn remove_peer(&mut self, media: u64) {
        let Some(idx) = self.by_media.remove(&media) else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(idx).and_then(Option::take) {
            self.by_ufrag.remove(&peer.ufrag);
            for addr in &peer.checked {
                if self.by_addr.get(addr) == Some(&idx) {
                    self.by_addr.remove(addr);
                }
            }
            self.free.push(idx);
        }
    }

    /// Peers now.
    pub fn peer_count(&self) -> usize {
        self.by_media.len()
    }

    /// A STUN or DTLS datagram from `from` (anything else is ignored: the driver routes
    /// RTP/RTCP to the core).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        send: &mut impl FnMut(SocketAddr, &[u8]),
    ) {
        match demux::classify(bytes) {
            Kind::Stun => self.handle_stun(now, from, bytes, send),
            Kind::Dtls => self.handle_dtls(now, from, bytes, send),
            _ => {}
        }
    }

    fn handle_stun(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        send: &mut impl FnMut(SocketAddr, &[u8]),
    ) {
        let req = match Request::parse(bytes) {
            Ok(r) => r,
            Err(StunDrop::Malformed) => return self.stats.stun_malformed += 1,
            Err(StunDrop::Other) => return self.stats.stun_other += 1,
        };
        let Some(&idx) = self.by_ufrag.get(req.local_ufrag()) else {
            return self.stats.stun_unknown_ufrag += 1;
        };
        let Some(peer) = self.peers.get_mut(idx).and_then(Option::as_mut) else {
            return self.stats.stun_unknown_ufrag += 1;
        };
        if req.remote_ufrag() != peer.remote_ufrag {
            return self.stats.stun_unknown_ufrag += 1;
        }
        if !req.verify(&peer.key) {
            return self.stats.stun_bad_integrity += 1;
        }
        peer.last_check = now;
        let media = peer.media;
        // What the core hears: the check that latches (the first valid one, or a nominated
        // one) and consent checks from the latched address; a plain check from elsewhere is
        // answered (ICE needs it) but moves nothing.
        let report = if req.use_candidate || peer.latched.is_none() {
            peer.latched = Some(from);
            true
        } else {
            peer.latched == Some(from)
        };
        if !peer.checked.iter().any(|a| *a == from) {
            if peer.checked.is_full()
                && let Some(old) = peer.checked.pop_front()
                && self.by_addr.get(&old) == Some(&idx)
            {
                self.by_addr.remove(&old);
            }
            // Cannot fail: one slot was just made free if there was none.
            let _ = peer.checked.push_back(from);
        }
        // The address belongs to the peer that last proved it; another peer's claim on it
        // (a client that moved) ends.
        if let Some(prev) = self.by_addr.insert(from, idx)
            && prev != idx
            && let Some(other) = self.peers.get_mut(prev).and_then(Option::as_mut)
        {
            other.checked.retain(|a| *a != from);
        }
        if let Some(peer) = self.peers[idx].as_ref() {
            ice::write_success(
                req.transaction(),
                from,
                &peer.key,
                self.config.software,
                &mut self.out,
            );
            send(from, &self.out);
        }
        self.stats.stun_answered += 1;
        if report {
            self.push_event(Event::Checked {
                media,
                addr: from,
                nominated: req.use_candidate,
            });
        }
    }

    fn handle_dtls(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        send: &mut impl FnMut(SocketAddr, &[u8]),
    ) {
        let Some(&idx) = self.by_addr.get(&from) else {
            return self.stats.dtls_unchecked += 1;
        };
        let std_now = self.std_instant(now);
        let Some(peer) = self.peers.get_mut(idx).and_then(Option::as_mut) else {
            return self.stats.dtls_unchecked += 1;
        };
        peer.dtls_addr = Some(from);
        if matches!(peer.state, State::Waiting) {
            peer.state = State::Handshaking(Box::new(Handshake::new(
                self.dtls.clone(),
                &self.cert,
                peer.fingerprint,
                std_now,
            )));
        }
        let mut sink = |d: &[u8]| send(from, d);
        let result = match &mut peer.state {
            State::Handshaking(h) => h.handle_packet(std_now, bytes, &mut self.buf, &mut sink),
            State::Connected {
                linger: Some((h, _)),
            } => {
                // Retransmissions only: the keys are out already.
                if h.handle_packet(std_now, bytes, &mut self.buf, &mut sink)
                    .is_err()
                {
                    peer.state = State::Connected { linger: None };
                }
                return;
            }
            State::Connected { linger: None } => return self.stats.dtls_after_connect += 1,
            State::Waiting => return,
        };
        self.finish(now, idx, result);
    }

    /// Applies a handshake step's result to peer `idx`.
    fn finish(
        &mut self,
        now: Instant,
        idx: usize,
        result: Result<Option<dtls::Material>, FailReason>,
    ) {
        let Some(peer) = self.peers.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let media = peer.media;
        let keys = match result {
            Ok(None) => return,
            Ok(Some(m)) => SrtpKeys::from_exporter(&m.bytes, m.profile),
            Err(reason) => Err(reason),
        };
        match keys {
            Ok(keys) => {
                let state = std::mem::replace(&mut peer.state, State::Waiting);
                peer.state = match state {
                    State::Handshaking(h) => State::Connected {
                        linger: Some((h, now + DTLS_LINGER)),
                    },
                    other => other,
                };
                peer.last_check = now;
                self.stats.handshakes_done += 1;
                self.push_event(Event::Connected { media, keys });
            }
            Err(reason) => self.fail(media, reason),
        }
    }

    fn fail(&mut self, media: u64, reason: FailReason) {
        if reason == FailReason::ConsentExpired {
            self.stats.consent_expired += 1;
        } else {
            self.stats.dtls_failed += 1;
        }
        self.remove_peer(media);
        self.push_event(Event::Failed { media, reason });
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= 2 * self.config.max_peers + 16 {
            self.stats.events_dropped += 1;
        } else {
            self.events.push_back(event);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Agent::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .iter()
            .flatten()
            .filter_map(|p| self.peer_deadline(p))
            .min()
    }

    fn peer_deadline(&self, p: &Peer) -> Option<Instant> {
        match &p.state {
            State::Waiting => Some(p.handshake_deadline),
            State::Handshaking(h) => Some(match h.next_timeout() {
                Some(t) => self.core_instant(t).min(p.handshake_deadline),
                None => p.handshake_deadline,
            }),
            State::Connected { linger } => {
                let consent = p.last_check + self.config.consent_timeout;
                Some(match linger {
                    Some((h, until)) => {
                        let mut t = consent.min(*until);
                        if let Some(next) = h.next_timeout() {
                            t = t.min(self.core_instant(next));
                        }
                        t
                    }
                    None => consent,
                })
            }
        }
    }

    /// Handshake deadlines, retransmissions, linger ends and consent expiry due by `now`.
    pub fn handle_timeout(&mut self, now: Instant, send: &mut impl FnMut(SocketAddr, &[u8])) {
        let std_now = self.std_instant(now);
        for idx in 0..self.peers.len() {
            let Some(peer) = self.peers[idx].as_mut() else {
                continue;
            };
            let media = peer.media;
            let consent_end = peer.last_check + self.config.consent_timeout;
            match &mut peer.state {
                State::Waiting | State::Handshaking(_) if now >= peer.handshake_deadline => {
                    self.fail(media, FailReason::Timeout);
                }
                State::Waiting => {}
                State::Handshaking(h) => {
                    if h.next_timeout().is_some_and(|t| t <= std_now) {
                        let to = peer.dtls_addr;
                        let mut sink = |d: &[u8]| {
                            if let Some(to) = to {
                                send(to, d);
                            }
                        };
                        let result = h.handle_timeout(std_now, &mut self.buf, &mut sink);
                        self.finish(now, idx, result);
                    }
                }
                State::Connected { .. } if now >= consent_end => {
                    self.fail(media, FailReason::ConsentExpired);
                }
                State::Connected { linger } => {
                    let mut drop_linger = false;
                    if let Some((h, until)) = linger {
                        if now >= *until {
                            drop_linger = true;
                        } else if h.next_timeout().is_some_and(|t| t <= std_now) {
                            let to = peer.dtls_addr;
                            let mut sink = |d: &[u8]| {
                                if let Some(to) = to {
                                    send(to, d);
                                }
                            };
                            drop_linger =
                                h.handle_timeout(std_now, &mut self.buf, &mut sink).is_err();
                        }
                    }
                    if drop_linger {
                        *linger = None;
                    }
                }
            }
        }
    }

    fn std_instant(&self, now: Instant) -> StdInstant {
        self.origin.1 + StdDuration::from_micros(now.saturating_since(self.origin.0).as_micros())
    }

    fn core_instant(&self, t: StdInstant) -> Instant {
        let since = t.saturating_duration_since(self.origin.1).as_micros();
        self.origin.0 + Duration::from_micros(u64::try_from(since).unwrap_or(u64::MAX))
    }
}

/// `len` random ice-chars (RFC 8839 section 5.4: ALPHA / DIGIT / "+" / "/"), 6 bits each.
fn random_ice_string(len: usize) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut raw = [0u8; 32];
    let raw = raw.get_mut(..len)?;
    getrandom::fill(raw).ok()?;
    Some(
        raw.iter()
            .map(|b| ALPHABET[usize::from(b & 63)] as char)
            .collect(),
    )
}

#[cfg(test)]
mod tests;
