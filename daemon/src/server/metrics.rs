//! `GET /metrics`: the Prometheus text exposition format 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>),
//! written by hand: `# HELP` and `# TYPE` once per family, then its samples. Names start
//! with `livechat_`, counters end with `_total`; label values come from bounded sets (error
//! codes, drop reasons, floor causes) or from the channel table (the `channel` label, at
//! most the channel limit, gone with the channel). `process_*` come from `/proc`.

use std::fmt::Write;
use std::time::UNIX_EPOCH;

use livechat_core::gateway::Gateway;
use tokio::time::Instant;

use super::ops::Ops;
use crate::dump::DriverCounters;

/// The exposition's content type.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family of one sample without labels.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Every metric, at `now`.
pub(crate) fn render(
    gw: &Gateway<'_>,
    ops: &Ops,
    driver: &DriverCounters,
    trace_streams: usize,
    now: Instant,
) -> String {
    let mut o = Out(String::with_capacity(8 * 1024));
    let s = gw.stats();
    let m = gw.media_stats();
    o.one(
        "livechat_connections",
        "gauge",
        "Open gateway (WebSocket) connections.",
        s.connections,
    );
    o.one(
        "livechat_sessions",
        "gauge",
        "Identified sessions.",
        s.sessions,
    );
    o.one("livechat_channels", "gauge", "Channels.", s.channels);
    o.one(
        "livechat_peers",
        "gauge",
        "Media peers (channel memberships with media).",
        gw.endpoints().count(),
    );
    o.one(
        "livechat_talkers",
        "gauge",
        "Channels whose floor is held.",
        gw.channels().filter(|c| c.floor.holder().is_some()).count(),
    );
    o.one(
        "livechat_floor_waiting",
        "gauge",
        "Floor requests waiting in queues, over all channels.",
        gw.channels()
            .map(|c| c.floor.queue().count())
            .sum::<usize>(),
    );
    o.one(
        "livechat_trace_streams",
        "gauge",
        "Open trace streams (/admin/v1/trace).",
        trace_streams,
    );
    o.one(
        "livechat_frames_in_total",
        "counter",
        "WebSocket frames received.",
        s.frames_in,
    );
    o.one(
        "livechat_frames_out_total",
        "counter",
        "WebSocket frames sent, one per recipient.",
        s.frames_out,
    );
    o.one(
        "livechat_frames_rate_limited_total",
        "counter",
        "Frames refused by the rate limit (error 1006).",
        s.rate_limited,
    );
    o.family(
        "livechat_errors_total",
        "counter",
        "ERROR frames sent, by error code.",
    );
    let mut codes: Vec<_> = ops.errors.iter().collect();
    codes.sort();
    for (code, n) in codes {
        o.sample("livechat_errors_total", &[("code", &code.to_string())], n);
    }
    o.one(
        "livechat_zombies_reaped_total",
        "counter",
        "Connections closed for silence (4009).",
        s.zombies_reaped,
    );
    o.one(
        "livechat_identify_timeouts_total",
        "counter",
        "Connections closed for not identifying in time (4008).",
        s.identify_timeouts,
    );
    o.one(
        "livechat_slow_consumers_closed_total",
        "counter",
        "Connections closed because they did not read (1008).",
        driver.slow_closed,
    );
    o.one(
        "livechat_media_packets_in_total",
        "counter",
        "Datagrams received on the media port.",
        m.packets_in,
    );
    o.one(
        "livechat_media_bytes_in_total",
        "counter",
        "Bytes received on the media port.",
        m.bytes_in,
    );
    o.one(
        "livechat_media_packets_out_total",
        "counter",
        "Datagrams sent on the media port.",
        m.packets_out,
    );
    o.one(
        "livechat_media_bytes_out_total",
        "counter",
        "Bytes sent on the media port.",
        m.bytes_out,
    );
    o.one(
        "livechat_media_relayed_total",
        "counter",
        "Packets from floor holders relayed to their channel.",
        m.relayed,
    );
    o.family(
        "livechat_media_dropped_total",
        "counter",
        "Datagrams dropped, by reason.",
    );
    let drops = [
        ("malformed", m.drop_malformed),
        ("unknown_ssrc", m.drop_unknown_ssrc),
        ("auth", m.drop_auth),
        ("replay", m.drop_replay),
        ("too_many_streams", m.drop_too_many_streams),
        ("key_exhausted", m.drop_key_exhausted),
        ("buffer", m.drop_buffer),
        ("spoofed", m.drop_spoofed),
        ("not_holder", m.drop_not_holder),
        ("no_latch", m.drop_no_latch),
        ("send", m.drop_send),
    ];
    for (reason, n) in drops {
        o.sample("livechat_media_dropped_total", &[("reason", reason)], n);
    }
    o.family(
        "livechat_srtp_failures_total",
        "counter",
        "SRTP/SRTCP packets refused, by kind.",
    );
    for (kind, n) in [
        ("auth", m.drop_auth),
        ("replay", m.drop_replay),
        ("key_exhausted", m.drop_key_exhausted),
    ] {
        o.sample("livechat_srtp_failures_total", &[("kind", kind)], n);
    }
    o.one(
        "livechat_floor_grants_total",
        "counter",
        "Floors granted (FLOOR_GRANTED).",
        ops.floor.grants,
    );
    o.family(
        "livechat_floor_denials_total",
        "counter",
        "Floor requests denied (FLOOR_DENY), by reason.",
    );
    for (reason, n) in ops.floor.denied {
        o.sample("livechat_floor_denials_total", &[("reason", reason)], n);
    }
    o.family(
        "livechat_floor_revokes_total",
        "counter",
        "Floors revoked (FLOOR_REVOKE), by cause.",
    );
    for (cause, n) in ops.floor.revoked {
        o.sample("livechat_floor_revokes_total", &[("cause", cause)], n);
    }
    o.one(
        "livechat_talk_seconds_total",
        "counter",
        "Seconds floors were held, over all channels.",
        ops.talk_total(now).as_secs_f64(),
    );
    let mut channels: Vec<_> = gw.channels().collect();
    channels.sort_by(|a, b| a.id.cmp(&b.id));
    o.family(
        "livechat_channel_members",
        "gauge",
        "Members of each channel.",
    );
    for c in &channels {
        o.sample(
            "livechat_channel_members",
            &[("channel", &c.id)],
            c.member_count(),
        );
    }
    o.family(
        "livechat_channel_talk_seconds_total",
        "counter",
        "Seconds each channel's floor was held.",
    );
    for c in &channels {
        let talk = ops
            .channels
            .get(c.id.as_str())
            .map_or(0.0, |s| s.talk_at(now).as_secs_f64());
        o.sample(
            "livechat_channel_talk_seconds_total",
            &[("channel", &c.id)],
            talk,
        );
    }
    o.family(
        "livechat_channel_packets_relayed_total",
        "counter",
        "Packets from each channel's floor holders relayed to it.",
    );
    for c in &channels {
        o.sample(
            "livechat_channel_packets_relayed_total",
            &[("channel", &c.id)],
            c.relayed,
        );
    }
    process(&mut o, ops);
    o.0
}

/// `process_*` as the Prometheus client libraries name them, from `/proc/self`.
fn process(o: &mut Out, ops: &Ops) {
    let start = ops
        .started_unix
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    o.one(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
        start,
    );
    let Some(stat) = ProcStat::read() else {
        return;
    };
    o.one(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        stat.cpu_seconds,
    );
    o.one(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        stat.rss_bytes,
    );
    o.one(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        stat.vsize_bytes,
    );
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        o.one(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count(),
        );
    }
}

/// What `/proc/self/stat` says (proc(5)).
struct ProcStat {
    cpu_seconds: f64,
    rss_bytes: u64,
    vsize_bytes: u64,
}

impl ProcStat {
    fn read() -> Option<ProcStat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        Self::parse(&text, clock_ticks(), page_size())
    }

    /// Fields after the command name (which may hold spaces and parentheses, so the last
    /// `)` ends it): utime and stime are fields 14 and 15, vsize 23, rss 24 (in pages).
    fn parse(text: &str, ticks: f64, page: u64) -> Option<ProcStat> {
        let rest = &text[text.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state).
        let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        Some(ProcStat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            vsize_bytes: field(23)?,
            rss_bytes: field(24)? * page,
        })
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a constant of the system; it takes no pointer.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_after_a_command_name_with_spaces_and_parentheses() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 \
                    1000 123456789 300 18446744073709551615";
        let s = ProcStat::parse(line, 100.0, 4096).expect("parses");
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.vsize_bytes, 123_456_789);
        assert_eq!(s.rss_bytes, 300 * 4096);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
