//! What the core task keeps for operators beside the core: counters the core reports
//! through [`Driver::trace`](livechat_core::gateway::Driver::trace) and
//! [`Driver::error_sent`](livechat_core::gateway::Driver::error_sent) (floor decisions, talk
//! time, errors by code), per-channel series, and the trace stream's sender.
//!
//! Every table here is bounded: errors by the codes the core has, floor reasons and causes
//! by their enums, channels by the channel limit (a channel's entry goes with it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livechat_core::trace::{Detail, Event, Kind};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// Events the trace stream buffers for all its readers together: a reader that falls this
/// far behind loses the oldest and is told how many (`event: lagged`). About 200 bytes an
/// event, so at most a few hundred KiB whatever the readers do.
pub(crate) const TRACE_BUFFER: usize = 1024;

/// One trace event as the stream sends it, with what its filters look at.
#[derive(Debug)]
pub(crate) struct TraceMsg {
    pub(crate) kind: &'static str,
    pub(crate) channel_id: Option<String>,
    pub(crate) user_id: Option<String>,
    /// The `data:` line: one JSON object.
    pub(crate) data: String,
}

/// The trace event's JSON (PROTOCOL.md section 6): `ts`, `event`, `channel_id` and
/// `user_id` when it concerns one, and its detail.
#[derive(Serialize)]
struct TraceData<'a> {
    ts: u64,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_size: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssrc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    camera: Option<&'a str>,
}

/// A channel's own series.
#[derive(Debug, Default)]
pub(crate) struct ChannelSeries {
    /// Seconds its floors were held, spans that ended.
    pub(crate) talk: Duration,
    /// When the current holder was granted, if one holds it.
    pub(crate) talk_since: Option<Instant>,
}

impl ChannelSeries {
    /// Talk time including the span going on at `now`.
    pub(crate) fn talk_at(&self, now: Instant) -> Duration {
        self.talk + self.talk_since.map_or(Duration::ZERO, |s| now - s)
    }

    fn end_span(&mut self, now: Instant) -> Duration {
        let span = self.talk_since.take().map_or(Duration::ZERO, |s| now - s);
        self.talk += span;
        span
    }
}

/// Floor decisions counted from the trace (PROTOCOL.md section 1 "Floor semantics").
#[derive(Debug, Default, Clone)]
pub(crate) struct FloorCounters {
    pub(crate) grants: u64,
    /// FLOOR_DENY by reason: `queue_full`, `already_granted`.
    pub(crate) denied: [(&'static str, u64); 2],
    /// FLOOR_REVOKE by cause: `preempted`, `timeout`, `max_duration`, `admin`.
    pub(crate) revoked: [(&'static str, u64); 4],
    /// Talk time in channels since deleted (the live ones keep their own).
    pub(crate) talk_deleted: Duration,
}

/// The operators' side of the core task.
pub(crate) struct Ops {
    pub(crate) started: Instant,
    pub(crate) started_unix: SystemTime,
    pub(crate) floor: FloorCounters,
    /// ERROR frames sent, by wire code (at most the codes the core has).
    pub(crate) errors: HashMap<u16, u64>,
    /// Per channel, by id; at most the channel limit.
    pub(crate) channels: HashMap<String, ChannelSeries>,
    pub(crate) trace: broadcast::Sender<Arc<TraceMsg>>,
    /// Trace events that were serialized and offered to the stream.
    pub(crate) traced: u64,
}

impl Ops {
    pub(crate) fn new(trace: broadcast::Sender<Arc<TraceMsg>>) -> Self {
        Ops {
            started: Instant::now(),
            started_unix: SystemTime::now(),
            floor: FloorCounters {
                denied: [("queue_full", 0), ("already_granted", 0)],
                revoked: [
                    ("preempted", 0),
                    ("timeout", 0),
                    ("max_duration", 0),
                    ("admin", 0),
                ],
                ..FloorCounters::default()
            },
            errors: HashMap::new(),
            channels: HashMap::new(),
            trace,
            traced: 0,
        }
    }

    pub(crate) fn error_sent(&mut self, code: u16) {
        *self.errors.entry(code).or_insert(0) += 1;
    }

    /// Counts one trace event, then offers it to the trace stream when anyone reads it (no
    /// reader: nothing is serialized).
    pub(crate) fn on_trace(&mut self, ev: &Event<'_>) {
        let now = Instant::now();
        self.count(now, ev);
        if self.trace.receiver_count() == 0 {
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut data = TraceData {
            ts,
            event: ev.event,
            channel_id: ev.channel_id,
            user_id: ev.user_id,
            cause: None,
            reason: None,
            result: None,
            length: None,
            priority: None,
            position: None,
            queue_size: None,
            addr: None,
            ssrc: None,
            camera: (ev.kind == livechat_core::trace::Kind::Camera)
                .then_some(ev.user_id)
                .flatten(),
        };
        match ev.detail {
            Detail::None => {}
            Detail::Cause(c) => data.cause = Some(c),
            Detail::Reason(r) => data.reason = Some(r),
            Detail::Length(n) => data.length = Some(n),
            Detail::Priority(p) => data.priority = Some(p),
            Detail::Queued { position, size } => {
                data.position = Some(position);
                data.queue_size = Some(size);
            }
            Detail::Dtls { result, reason } => {
                data.result = Some(result);
                data.reason = reason;
            }
            Detail::Latched { addr, ssrc } => {
                data.addr = Some(addr.to_string());
                data.ssrc = Some(ssrc);
            }
        }
        let Ok(json) = serde_json::to_string(&data) else {
            return;
        };
        self.traced += 1;
        // Never blocks: a reader that is behind loses the oldest events instead.
        let _ = self.trace.send(Arc::new(TraceMsg {
            kind: ev.kind.as_str(),
            channel_id: ev.channel_id.map(str::to_owned),
            user_id: ev.user_id.map(str::to_owned),
            data: json,
        }));
    }

    fn count(&mut self, now: Instant, ev: &Event<'_>) {
        let Some(channel) = ev.channel_id else {
            return;
        };
        match (ev.kind, ev.event) {
            (Kind::Channel, "create") => {
                self.channels.entry(channel.to_owned()).or_default();
            }
            (Kind::Channel, "delete") => {
                if let Some(mut s) = self.channels.remove(channel) {
                    s.end_span(now);
                    self.floor.talk_deleted += s.talk;
                }
            }
            (Kind::Floor, "granted") => {
                self.floor.grants += 1;
                let s = self.channels.entry(channel.to_owned()).or_default();
                s.end_span(now);
                s.talk_since = Some(now);
            }
            (Kind::Floor, "idle" | "revoked") => {
                if let Some(s) = self.channels.get_mut(channel) {
                    s.end_span(now);
                }
                if let (Kind::Floor, "revoked", Detail::Cause(c)) = (ev.kind, ev.event, ev.detail)
                    && let Some(n) = self.floor.revoked.iter_mut().find(|(k, _)| *k == c)
                {
                    n.1 += 1;
                }
            }
            (Kind::Floor, "denied") => {
                if let Detail::Reason(r) = ev.detail
                    && let Some(n) = self.floor.denied.iter_mut().find(|(k, _)| *k == r)
                {
                    n.1 += 1;
                }
            }
            _ => {}
        }
    }

    /// Seconds of talk over every channel, live and deleted, at `now`.
    pub(crate) fn talk_total(&self, now: Instant) -> Duration {
        self.floor.talk_deleted
            + self
                .channels
                .values()
                .map(|s| s.talk_at(now))
                .sum::<Duration>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talk_time_spans_from_grant_to_idle_revoke_or_the_next_grant() {
        let (tx, _rx) = broadcast::channel(TRACE_BUFFER);
        let mut ops = Ops::new(tx);
        let ev = |kind, event| Event::new(kind, event, Some("ops"), Some("alice"));
        ops.on_trace(&ev(Kind::Channel, "create"));
        ops.on_trace(&ev(Kind::Floor, "granted"));
        assert!(ops.channels["ops"].talk_since.is_some());
        ops.on_trace(&ev(Kind::Floor, "revoked").with(Detail::Cause("admin")));
        assert!(ops.channels["ops"].talk_since.is_none());
        assert_eq!(ops.floor.revoked[3], ("admin", 1));
        ops.on_trace(&ev(Kind::Floor, "denied").with(Detail::Reason("queue_full")));
        assert_eq!(ops.floor.denied[0], ("queue_full", 1));
        assert_eq!(ops.floor.grants, 1);
        ops.on_trace(&ev(Kind::Channel, "delete"));
        assert!(ops.channels.is_empty(), "a deleted channel's series go");
        // A reader was subscribed: every event was offered to it.
        assert_eq!(ops.traced, 5);
    }

    #[test]
    fn nothing_is_serialized_without_a_reader() {
        let (tx, rx) = broadcast::channel(TRACE_BUFFER);
        drop(rx);
        let mut ops = Ops::new(tx);
        ops.on_trace(&Event::new(Kind::Session, "identify", None, Some("bob")));
        assert_eq!(ops.traced, 0);
    }
}
