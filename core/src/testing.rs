//! Recording sinks and a gateway builder for tests and fuzz targets (the `testing` feature;
//! needs `std`).
//!
//! [`gateway`] builds the one kind of gateway tests and fuzz targets use. [`Recorder`] is a
//! [`Driver`] that keeps every frame the gateway sends, parsed, per
//! connection, with the closes it asked for; [`RecordingTransmit`] is a [`Transmit`] that
//! keeps every datagram the relay sends. Both check what a real driver relies on (a server
//! frame is a JSON object with an integer `op`; an ERROR carries a four-digit code), so a
//! test or a fuzz input that makes the core emit anything else fails where it happens.
//!
//! Not part of the default features: a shipped build has no use for them, and they need
//! `std` and `serde_json`.

use std::boxed::Box;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::string::String;
use std::vec::Vec;

use serde_json::Value;

use crate::gateway::{
    ConnId, Driver, Gateway, GatewayConfig, MediaId, Negotiated, Offer, OfferError, Track,
    VideoTrack,
};
use crate::relay::Transmit;
use crate::storage::{Capacities, Tables};

/// A gateway on the heap for `cfg`, its tables reserved for the process's lifetime (as the
/// daemon's are): what a test or a fuzz process wants.
///
/// # Panics
///
/// If the system refuses the tables' memory.
pub fn gateway(cfg: GatewayConfig) -> Box<Gateway<'static>> {
    let tables = match Tables::reserve(&Capacities::of(&cfg.limits)) {
        Ok(t) => t,
        Err(e) => panic!("cannot reserve the tables: {e:?}"),
    };
    Box::new(Gateway::new(cfg, tables))
}

/// A [`Driver`] that records what the core asked for, per connection.
#[derive(Debug)]
pub struct Recorder {
    /// Frames sent to each connection, oldest first, as parsed JSON.
    pub frames: HashMap<ConnId, Vec<Value>>,
    /// Connections the core closed, with the close code, in order.
    pub closed: Vec<(ConnId, u16)>,
    /// Trace events, oldest first, as `kind event channel user detail` (absent parts `-`).
    pub traces: Vec<String>,
    /// ERROR codes sent, in order.
    pub errors: Vec<u16>,
    /// Frames kept per connection: past it the oldest is dropped, so a long fuzz input
    /// runs in bounded memory. `usize::MAX` (the default) keeps them all.
    pub keep: usize,
    /// What [`Driver::negotiate`] answers (`None`: the trait's default refusal), as a
    /// stand-in for an SDP stack: the tracks, and the answer's text.
    pub negotiation: Option<Result<Negotiation, OfferError>>,
    /// Offers received: the endpoint, its channel and the SDP text.
    pub offers: Vec<(MediaId, String, String)>,
    /// Endpoints the core said ended, in order.
    pub ended: Vec<MediaId>,
    rng: u8,
    rng_step: u8,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// Keeps every frame; `fill_random` counts up by one from 1.
    pub fn new() -> Self {
        Recorder {
            frames: HashMap::new(),
            closed: Vec::new(),
            traces: Vec::new(),
            errors: Vec::new(),
            keep: usize::MAX,
            negotiation: None,
            offers: Vec::new(),
            ended: Vec::new(),
            rng: 0,
            rng_step: 1,
        }
    }

    /// Keeps the last `keep` frames of each connection.
    pub fn bounded(keep: usize) -> Self {
        Recorder {
            keep,
            ..Recorder::new()
        }
    }

    /// `fill_random` counts up by `step` (wrapping), a deterministic stand-in for the
    /// daemon's CSPRNG (SRTP keys, session ids).
    pub fn with_random_step(mut self, step: u8) -> Self {
        self.rng_step = step;
        self
    }

    /// Takes the frames recorded for `conn` so far, oldest first.
    pub fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.frames.remove(&conn).unwrap_or_default()
    }

    /// No frame is waiting for any connection.
    pub fn is_empty(&self) -> bool {
        self.frames.values().all(Vec::is_empty)
    }
}

/// A canned answer for [`Recorder::negotiation`].
#[derive(Debug, Clone)]
pub struct Negotiation {
    /// The answer's SDP text.
    pub answer: String,
    /// The audio track.
    pub audio: Track,
    /// The video track.
    pub video: Option<VideoTrack>,
}

impl Driver for Recorder {
    fn negotiate<'d>(&'d mut self, offer: &Offer<'_>) -> Result<Negotiated<'d>, OfferError> {
        self.offers
            .push((offer.media, offer.channel_id.into(), offer.sdp.into()));
        match &self.negotiation {
            None => Err(OfferError::Malformed(
                "sdp_offer is not supported by this server",
            )),
            Some(Err(e)) => Err(*e),
            Some(Ok(n)) => Ok(Negotiated {
                answer: &n.answer,
                audio: n.audio.clone(),
                video: n.video.clone(),
            }),
        }
    }

    fn media_ended(&mut self, media: MediaId) {
        self.ended.push(media);
    }

    /// # Panics
    ///
    /// If the frame is not a JSON object with an integer `op`, or is an ERROR without a
    /// four-digit `code` (PROTOCOL.md "Error codes").
    fn send(&mut self, to: &[ConnId], frame: &[u8]) {
        let v: Value = match serde_json::from_slice(frame) {
            Ok(v) => v,
            Err(e) => panic!("server frame is not JSON ({e}): {frame:?}"),
        };
        assert!(v["op"].is_u64(), "server frame without an integer op: {v}");
        if v["op"] == 201 {
            let code = v["d"]["code"].as_u64().unwrap_or(0);
            assert!((1000..10000).contains(&code), "ERROR with code {code}: {v}");
        }
        for c in to {
            let q = self.frames.entry(*c).or_default();
            if q.len() >= self.keep {
                q.remove(0);
            }
            q.push(v.clone());
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, _reason: &str) {
        self.closed.push((conn, code));
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.rng = self.rng.wrapping_add(self.rng_step);
            *b = self.rng;
        }
    }

    fn trace(&mut self, e: &crate::trace::Event<'_>) {
        if self.keep != usize::MAX {
            // A bounded recorder (fuzzing) keeps no trace.
            return;
        }
        self.traces.push(std::format!(
            "{} {} {} {} {:?}",
            e.kind.as_str(),
            e.event,
            e.channel_id.unwrap_or("-"),
            e.user_id.unwrap_or("-"),
            e.detail
        ));
    }

    fn error_sent(&mut self, code: u16) {
        if self.keep == usize::MAX {
            self.errors.push(code);
        }
    }
}

/// A [`Transmit`] that records every datagram and where it went, oldest first.
#[derive(Debug, Default)]
pub struct RecordingTransmit {
    /// Destination and bytes of each datagram sent.
    pub sent: Vec<(SocketAddr, Vec<u8>)>,
}

impl RecordingTransmit {
    /// Whether any datagram went to `dst`.
    pub fn sent_to(&self, dst: SocketAddr) -> bool {
        self.sent.iter().any(|(a, _)| *a == dst)
    }
}

impl Transmit for RecordingTransmit {
    fn send_to(&mut self, dst: SocketAddr, datagram: &[u8]) -> bool {
        self.sent.push((dst, datagram.to_vec()));
        true
    }
}
