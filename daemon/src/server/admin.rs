//! The operators' HTTP surface (PROTOCOL.md section 6): `/healthz`, `/metrics` and the
//! admin API under `/admin/v1`, beside `/gateway` on the same listener.
//!
//! The HTTP side (a connection's task) checks the rate limit, then auth, routes, reads and
//! checks a bounded body, and hands a typed [`AdminReq`] to the core task, which answers
//! it from the gateway ([`answer`]) as it answers a member's frame: actions go through the
//! core, so members see what they would see had a member acted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use livechat_core::gateway::{AdminError, Channel, ChannelBody, ConnId, Gateway, address_key};
use livechat_core::time::Now;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::ops::Ops;
use crate::dump::DriverCounters;

/// Base path of the admin API.
pub(crate) const ADMIN_PREFIX: &str = "/admin/v1";
/// Largest request body read (a channel's fields are a few hundred bytes); 413 beyond.
pub(crate) const MAX_ADMIN_BODY: usize = 16 * 1024;
/// Longest a client may take to send a request body.
pub(crate) const ADMIN_BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest an answer from the core task may take before the request is answered 503
/// (and `/healthz` says the loop does not answer).
pub(crate) const CORE_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Client addresses (IPv6 by /64) whose admin request budgets are kept; when full, the
/// budgets that have refilled are forgotten, and with none refilled a new address waits.
pub(crate) const MAX_ADMIN_CLIENTS: usize = 256;

/// What the core task is asked.
#[derive(Debug)]
pub(crate) enum AdminReq {
    /// `/healthz`: any answer means the loop turns.
    Health,
    /// `/metrics`.
    Metrics,
    Status,
    Channels,
    Channel(String),
    Create(ChannelBody),
    Update(String, ChannelBody),
    Delete(String),
    Revoke(String),
    Users,
    Kick(String),
    Peers,
    /// `/cameras`: answered by the core task from the cameras' status.
    Cameras,
}

impl AdminReq {
    /// Whether it changes the gateway (needs the driver).
    pub(crate) fn acts(&self) -> bool {
        matches!(
            self,
            AdminReq::Create(_)
                | AdminReq::Update(..)
                | AdminReq::Delete(_)
                | AdminReq::Revoke(_)
                | AdminReq::Kick(_)
        )
    }
}

/// The core task's answer: an HTTP status and a body (JSON unless `/metrics` or
/// `/healthz`; empty for 204).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(status: u16, v: &Value) -> Answer {
        Answer {
            status,
            body: v.to_string(),
        }
    }

    pub(crate) fn error(status: u16, reason: &str) -> Answer {
        Answer::json(status, &json!({ "error": reason }))
    }

    fn refused(e: AdminError) -> Answer {
        Answer::error(e.http_status(), e.reason())
    }
}

/// The settings the HTTP side needs.
pub(crate) struct AdminConf {
    /// `LIVECHAT_ADMIN_TOKEN`: its SHA-1, so the comparison takes the same time whatever
    /// the length of the guess.
    token_digest: Option<[u8; 20]>,
    /// Request budget per client address: burst, then per second (LIVECHAT_RATE's).
    burst: f64,
    per_sec: f64,
    budgets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    /// LIVECHAT_MAX_MEMBERS: bounds a channel's `capacity`.
    pub(crate) max_members: usize,
}

impl AdminConf {
    pub(crate) fn new(token: Option<&str>, burst: u32, per_sec: u32, max_members: usize) -> Self {
        AdminConf {
            token_digest: token.map(|t| Sha1::digest(t.as_bytes()).into()),
            burst: f64::from(burst),
            per_sec: f64::from(per_sec),
            budgets: Mutex::new(HashMap::new()),
            max_members,
        }
    }

    /// PROTOCOL.md section 6: with a token, `Authorization: Bearer <token>` from any peer
    /// (compared in constant time); without one, loopback peers only.
    pub(crate) fn authorized(&self, authorization: Option<&[u8]>, peer: IpAddr) -> bool {
        match &self.token_digest {
            None => is_loopback(peer),
            Some(want) => {
                let Some(got) = authorization.and_then(|h| h.strip_prefix(b"Bearer ")) else {
                    return false;
                };
                let got: [u8; 20] = Sha1::digest(got).into();
                bool::from(got.ct_eq(want))
            }
        }
    }

    /// Takes one request from the budget of `peer`'s address (IPv6 by /64, as the door
    /// counts them); `false`: 429.
    pub(crate) fn take(&self, peer: IpAddr) -> bool {
        let key = address_key(peer);
        let now = Instant::now();
        let mut b = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let refill = |(tokens, at): (f64, Instant)| {
            (tokens + now.duration_since(at).as_secs_f64() * self.per_sec).min(self.burst)
        };
        if !b.contains_key(&key) && b.len() >= MAX_ADMIN_CLIENTS {
            b.retain(|_, v| refill(*v) < self.burst);
            if b.len() >= MAX_ADMIN_CLIENTS {
                return false;
            }
        }
        let slot = b.entry(key).or_insert((self.burst, now));
        let tokens = refill(*slot);
        if tokens >= 1.0 {
            *slot = (tokens - 1.0, now);
            true
        } else {
            *slot = (tokens, now);
            false
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    }
}

/// A request body as CHANNEL_CREATE's or CHANNEL_UPDATE's `d`, checked by the core's own
/// decoder: the body must be one JSON object; it is written out again (so nothing beyond
/// that object reaches the decoder) inside an envelope. For an update, a missing
/// `channel_id` is the path's.
pub(crate) fn channel_body(
    create: bool,
    path_id: Option<&str>,
    body: &[u8],
    max_members: usize,
) -> Result<ChannelBody, Answer> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|_| Answer::error(400, "body is not JSON"))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(Answer::error(400, "body must be a JSON object"));
    };
    if let Some(id) = path_id {
        obj.entry("channel_id")
            .or_insert_with(|| Value::String(id.to_owned()));
    }
    let op = if create { 10 } else { 13 };
    let envelope = json!({ "op": op, "d": v }).to_string();
    ChannelBody::decode(create, envelope.as_bytes(), max_members).map_err(Answer::refused)
}

/// A channel as CHANNEL_INFO gives it, with `floor`.
fn channel_json(gw: &Gateway<'_>, c: &Channel) -> Value {
    let members: Vec<&str> = gw
        .members(c)
        .map(|m| gw.user_id(m.conn()))
        .chain(gw.cameras_of(c))
        .collect();
    let queue: Vec<&str> = c.floor.queue().map(|(u, _)| gw.user_id(u)).collect();
    let mut floor = json!({
        "state": if c.floor.is_idle() { "idle" } else { "taken" },
        "queue": queue,
    });
    if let Some((h, _)) = c.floor.holder() {
        floor["holder"] = Value::from(gw.user_id(h));
    }
    json!({
        "channel_id": c.id.as_str(),
        "name": c.name.as_str(),
        "freq": c.freq.as_str(),
        "capacity": c.capacity,
        "member_count": members.len(),
        "codec": c.codec.as_str(),
        "video_codec": c.video_codec.as_str(),
        "creator": c.creator.as_str(),
        "created_at": c.created_at,
        "members": members,
        "floor": floor,
    })
}

/// `/status`'s `counters`: the core's and the driver's, by the names the stats line uses.
fn counters(gw: &Gateway<'_>, ops: &Ops, driver: &DriverCounters) -> Value {
    let s = gw.stats();
    let m = gw.media_stats();
    json!({
        "frames_in": s.frames_in,
        "frames_out": s.frames_out,
        "errors": s.errors_out,
        "rate_limited": s.rate_limited,
        "slow_closed": driver.slow_closed,
        "zombies_reaped": s.zombies_reaped,
        "identify_timeouts": s.identify_timeouts,
        "unidentified_shed": s.unidentified_shed,
        "encode_failures": s.encode_failures,
        "rtp_in": m.packets_in,
        "rtp_in_bytes": m.bytes_in,
        "rtp_out": m.packets_out,
        "rtp_out_bytes": m.bytes_out,
        "relayed": m.relayed,
        "drops": m.drops(),
        "floor_grants": ops.floor.grants,
        "floor_denials": ops.floor.denied.iter().map(|(_, n)| n).sum::<u64>(),
        "floor_revokes": ops.floor.revoked.iter().map(|(_, n)| n).sum::<u64>(),
        "door_refused": driver.door_refused,
        "door_shed": driver.door_shed,
    })
}

/// Answers a request that only reads. `addr_of` gives a connection's remote address.
pub(crate) fn read(
    gw: &Gateway<'_>,
    req: &AdminReq,
    ops: &Ops,
    driver: &DriverCounters,
    addr_of: &dyn Fn(ConnId) -> Option<SocketAddr>,
) -> Answer {
    let now = Instant::now();
    match req {
        AdminReq::Health => Answer {
            status: 200,
            body: "ok\n".to_owned(),
        },
        AdminReq::Metrics => Answer {
            status: 200,
            body: super::metrics::render(
                gw,
                ops,
                driver,
                super::trace_stream::TRACE_STREAMS.load(std::sync::atomic::Ordering::Relaxed),
                now,
            ),
        },
        AdminReq::Status => {
            let s = gw.stats();
            Answer::json(
                200,
                &json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "uptime_s": now.duration_since(ops.started).as_secs(),
                    "connections": s.connections,
                    "sessions": s.sessions,
                    "channels": s.channels,
                    "peers": gw.endpoints().count(),
                    "counters": counters(gw, ops, driver),
                }),
            )
        }
        AdminReq::Channels => {
            let list: Vec<Value> = gw.channels().map(|c| channel_json(gw, c)).collect();
            Answer::json(200, &json!({ "channels": list }))
        }
        AdminReq::Channel(id) => match gw.channel_by_id(id) {
            Some(c) => Answer::json(200, &channel_json(gw, c)),
            None => Answer::error(404, "channel not found"),
        },
        AdminReq::Users => {
            let users: Vec<Value> = gw
                .sessions()
                .map(|(conn, s, peer)| {
                    let channels: Vec<&str> = gw.joined(conn).collect();
                    let addr = addr_of(conn).map_or_else(|| peer.ip.to_string(), |a| a.to_string());
                    json!({
                        "user_id": s.user_id.as_str(),
                        "session_id": s.session_id.as_str(),
                        "priority": s.priority,
                        "channels": channels,
                        "remote_addr": addr,
                    })
                })
                .collect();
            Answer::json(200, &json!({ "users": users }))
        }
        AdminReq::Peers => {
            let peers: Vec<Value> = gw
                .endpoints()
                .map(|e| {
                    json!({
                        "user_id": gw.user_id(e.conn()),
                        "channel_id": gw.channel_of(e).map(|c| c.id.as_str()),
                        "ssrc": e.ssrc(),
                        "kind": e.kind(),
                        "addr": e.latched.map(|a| a.to_string()),
                        "packets_in": e.stats.packets_in,
                        "packets_out": e.stats.packets_out,
                        "drops": e.stats.dropped,
                    })
                })
                .chain(gw.cameras().map(|cam| {
                    json!({
                        "user_id": cam.id.as_str(),
                        "channel_id": cam.channel_id.as_str(),
                        "ssrc": cam.ssrc(),
                        "kind": "camera",
                        "addr": null,
                        "packets_in": cam.stats.frames,
                        "packets_out": cam.stats.packets_out,
                        "drops": cam.stats.drops + cam.stats.malformed,
                    })
                }))
                .collect();
            Answer::json(200, &json!({ "peers": peers }))
        }
        _ => Answer::error(500, "internal error"),
    }
}

/// Carries out a request that acts, through the core, with the driver `drv`.
pub(crate) fn act(
    gw: &mut Gateway<'_>,
    now: Now,
    req: AdminReq,
    drv: &mut impl livechat_core::gateway::Driver,
) -> Answer {
    let res = match req {
        AdminReq::Create(body) => {
            let id = body.channel_id.as_str().to_owned();
            gw.admin_create(now, body, drv).map(|_| (201, Some(id)))
        }
        AdminReq::Update(id, body) => gw
            .admin_update(now, &id, body, drv)
            .map(|_| (200, Some(id))),
        AdminReq::Revoke(id) => gw.admin_revoke(now, &id, drv).map(|_| (200, Some(id))),
        AdminReq::Delete(id) => gw.admin_delete(now, &id, drv).map(|()| (204, None)),
        AdminReq::Kick(user) => gw.admin_kick(now, &user, drv).map(|()| (204, None)),
        _ => return Answer::error(500, "internal error"),
    };
    match res {
        Ok((status, Some(id))) => match gw.channel_by_id(&id) {
            Some(c) => Answer::json(status, &channel_json(gw, c)),
            None => Answer::error(500, "internal error"),
        },
        Ok((status, None)) => Answer {
            status,
            body: String::new(),
        },
        Err(e) => Answer::refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_token_is_needed_from_anywhere_once_configured() {
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let far = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let open = AdminConf::new(None, 10, 1, 8);
        assert!(open.authorized(None, local));
        assert!(!open.authorized(Some(b"Bearer x"), far));
        let locked = AdminConf::new(Some("s3cret"), 10, 1, 8);
        assert!(!locked.authorized(None, local));
        assert!(!locked.authorized(Some(b"Bearer s3cre"), local));
        assert!(!locked.authorized(Some(b"bearer s3cret"), local));
        assert!(!locked.authorized(Some(b"s3cret"), local));
        assert!(locked.authorized(Some(b"Bearer s3cret"), far));
    }

    #[test]
    fn admin_requests_spend_a_budget_per_address() {
        let conf = AdminConf::new(None, 3, 1, 8);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        assert!((0..3).all(|_| conf.take(a)));
        assert!(!conf.take(a), "the burst is spent");
        assert!(conf.take(b), "another address has its own");
    }

    #[test]
    fn a_body_is_one_object_checked_as_a_members_request() {
        let ok = channel_body(true, None, br#"{"channel_id":"ops","capacity":4}"#, 8);
        assert_eq!(ok.expect("valid").capacity, Some(4));
        let status = |r: Result<ChannelBody, Answer>| r.err().map(|a| a.status);
        assert_eq!(status(channel_body(true, None, b"[1]", 8)), Some(400));
        assert_eq!(status(channel_body(true, None, b"{", 8)), Some(400));
        assert_eq!(
            status(channel_body(true, None, br#"{"channel_id":"a b"}"#, 8)),
            Some(400)
        );
        assert_eq!(
            status(channel_body(
                true,
                None,
                br#"{"channel_id":"ok","capacity":9}"#,
                8
            )),
            Some(400)
        );
        let patch = channel_body(false, Some("ops"), br#"{"name":"Ops"}"#, 8).expect("valid");
        assert_eq!(patch.channel_id.as_str(), "ops");
    }
}
