//! What the operator sees of the state: the `STATUS=` line for systemd, the periodic
//! counters line for serial consoles, and the SIGUSR1 state dump.
//!
//! Only identifiers and counters are printed: user and channel ids (a restricted charset),
//! channel names quoted with `{:?}` so no client text can forge a log line. Never a token,
//! a key or a message body.

use std::fmt::Write;

use livechat_core::gateway::Channel;
use livechat_core::gateway::{Gateway, Stats};
use livechat_core::relay::{Endpoint, MediaStats};

/// Members listed per channel in a dump; the rest are counted.
const DUMP_MEMBERS: usize = 64;

/// Counters the driver keeps beside the core's [`Stats`].
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverCounters {
    /// Connections closed because their outbound queue was full.
    pub slow_closed: u64,
    /// Datagrams the kernel refused at `sendmmsg` (a full send buffer): dropped.
    pub udp_send_failed: u64,
    /// `recvmmsg` batches handled.
    pub udp_batches: u64,
    /// Allocations made while handling media datagrams (the `alloc-count` feature only).
    pub udp_allocs: u64,
    /// Connections closed at the door before their upgrade (per-IP or total bound).
    pub door_refused: u64,
    /// Idle connections shed before their upgrade to make room.
    pub door_shed: u64,
    /// The WebRTC agent's counters (ICE and DTLS drops by reason, handshakes).
    pub webrtc: livechat_rtc::Stats,
}

/// Channels whose floor is held.
fn floors_held(gw: &Gateway) -> usize {
    gw.channels().filter(|c| c.floor.holder().is_some()).count()
}

/// The one-line `STATUS=` summary shown by `systemctl status`.
pub fn status_line(gw: &Gateway) -> String {
    let s = gw.stats();
    format!(
        "{} sessions, {} connections, {} channels, {} floors held",
        s.sessions,
        s.connections,
        s.channels,
        floors_held(gw)
    )
}

/// The periodic counters line (LIVECHAT_STATS_INTERVAL_S).
pub fn stats_line(gw: &Gateway, driver: &DriverCounters) -> String {
    let s: Stats = gw.stats();
    let m: MediaStats = gw.media_stats();
    let drops = m.drops();
    format!(
        "stats: connections={} sessions={} channels={} floors_held={} peers={} \
         frames_in={} frames_out={} errors={} rate_limited={} slow_closed={} \
         zombies_reaped={} identify_timeouts={} unidentified_shed={} encode_failures={} \
         rtp_in={} rtp_in_bytes={} rtp_out={} rtp_out_bytes={} relayed={} drops={} \
         (malformed={} unknown_ssrc={} auth={} replay={} too_many_streams={} \
         key_exhausted={} buffer={} spoofed={} not_holder={} no_latch={} send={}) \
         udp_send_failed={} udp_batches={} udp_allocs={} door_refused={} door_shed={} \
         webrtc_peers={} stun_answered={} stun_bad_integrity={} stun_unknown_ufrag={} \
         stun_malformed={} stun_other={} dtls_unchecked={} dtls_after_connect={} \
         dtls_failed={} dtls_done={} consent_expired={}",
        s.connections,
        s.sessions,
        s.channels,
        floors_held(gw),
        gw.endpoints().count(),
        s.frames_in,
        s.frames_out,
        s.errors_out,
        s.rate_limited,
        driver.slow_closed,
        s.zombies_reaped,
        s.identify_timeouts,
        s.unidentified_shed,
        s.encode_failures,
        m.packets_in,
        m.bytes_in,
        m.packets_out,
        m.bytes_out,
        m.relayed,
        drops,
        m.drop_malformed,
        m.drop_unknown_ssrc,
        m.drop_auth,
        m.drop_replay,
        m.drop_too_many_streams,
        m.drop_key_exhausted,
        m.drop_buffer,
        m.drop_spoofed,
        m.drop_not_holder,
        m.drop_no_latch,
        m.drop_send,
        driver.udp_send_failed,
        driver.udp_batches,
        if crate::alloc_count::ENABLED {
            driver.udp_allocs.to_string()
        } else {
            "n/a".to_owned()
        },
        driver.door_refused,
        driver.door_shed,
        driver.webrtc.peers,
        driver.webrtc.stun_answered,
        driver.webrtc.stun_bad_integrity,
        driver.webrtc.stun_unknown_ufrag,
        driver.webrtc.stun_malformed,
        driver.webrtc.stun_other,
        driver.webrtc.dtls_unchecked,
        driver.webrtc.dtls_after_connect,
        driver.webrtc.dtls_failed,
        driver.webrtc.handshakes_done,
        driver.webrtc.consent_expired,
    )
}

/// The SIGUSR1 state dump, one log line per item (journald splits multi-line records and
/// would lose their priority).
pub fn state_dump(gw: &Gateway, driver: &DriverCounters) -> Vec<String> {
    let s = gw.stats();
    let mut lines = vec![format!(
        "dump: begin sessions={} connections={} channels={} floors_held={}",
        s.sessions,
        s.connections,
        s.channels,
        floors_held(gw)
    )];
    for c in gw.channels() {
        lines.push(channel_line(gw, c));
    }
    for p in gw.endpoints() {
        lines.push(peer_line(gw, p));
    }
    lines.push(stats_line(gw, driver).replacen("stats:", "dump: counters", 1));
    lines.push("dump: end".to_owned());
    lines
}

fn channel_line(gw: &Gateway, c: &Channel) -> String {
    let mut line = format!(
        "dump: channel {} name={:?} freq={:?} creator={} capacity={} members={} [",
        c.id.as_str(),
        c.name.as_str(),
        c.freq.as_str(),
        c.creator.as_str(),
        c.capacity,
        c.member_count()
    );
    for (i, m) in gw.members(c).take(DUMP_MEMBERS).enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(line, "{sep}{}/ssrc={}", gw.user_id(m.conn()), m.ssrc());
    }
    if c.member_count() > DUMP_MEMBERS {
        let _ = write!(line, " +{} more", c.member_count() - DUMP_MEMBERS);
    }
    line.push_str("] floor=");
    match c.floor.holder() {
        Some((conn, prio)) => {
            let _ = write!(line, "taken holder={}/prio={}", gw.user_id(conn), prio);
        }
        None => line.push_str("idle"),
    }
    line.push_str(" queue=[");
    for (i, (conn, prio)) in c.floor.queue().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(line, "{sep}{}/prio={prio}", gw.user_id(conn));
    }
    line.push(']');
    line
}

/// A media peer: never its SRTP keys, only whether it has them.
fn peer_line(gw: &Gateway, p: &Endpoint) -> String {
    let channel = gw.channel_of(p).map_or("?", |c| c.id.as_str());
    let latched = p
        .latched
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    format!(
        "dump: peer ssrc={} user={} channel={} srtp={} latched={} packets_in={} packets_out={} dropped={}",
        p.ssrc(),
        gw.user_id(p.conn()),
        channel,
        if p.is_srtp() { "yes" } else { "no" },
        latched,
        p.stats.packets_in,
        p.stats.packets_out,
        p.stats.dropped,
    )
}
