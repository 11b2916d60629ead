//! Logging to stderr with `env_logger` (`RUST_LOG`, default `info`).
//!
//! Under journald (`$JOURNAL_STREAM` names our stderr) lines carry no timestamp and start
//! with the syslog priority as sd-daemon(3) prefixes it (`<3>` error, `<4>` warn, `<6>` info,
//! `<7>` debug and trace); elsewhere (a serial console, a terminal) they carry the usual
//! timestamp. Either way the records of the WebSocket library below `debug` are dropped:
//! at `trace` it prints whole frames, and an IDENTIFY frame holds a token.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use log::{Level, Log, Metadata, Record};

/// Crates whose `trace` records may contain frame payloads (tokens, SRTP keys).
const PAYLOAD_TRACERS: &[&str] = &["tungstenite", "tokio_tungstenite"];

/// Crates whose `debug` and `trace` records may contain RTSP requests and responses (a
/// camera's Authorization header, PROTOCOL.md section 7): cut below `info`.
const RTSP_TRACERS: &[&str] = &["retina", "http_auth"];

/// Installs the logger. Call once, first thing.
pub fn init() {
    let env = env_logger::Env::default().default_filter_or("info");
    let mut builder = env_logger::Builder::from_env(env);
    builder.target(env_logger::Target::Stderr);
    if journald_stderr() {
        builder.format(|buf, record| {
            writeln!(
                buf,
                "<{}>{}: {}",
                priority(record.level()),
                record.target(),
                record.args()
            )
        });
    }
    let inner = builder.build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Redacting { inner })).is_ok() {
        log::set_max_level(max);
    }
}

/// The sd-daemon(3) prefix for a level.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Whether stderr is the journal stream systemd connected (systemd.exec(5),
/// `$JOURNAL_STREAM`: "device:inode" of that stream, to compare with our stderr's).
fn journald_stderr() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    meta.is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// `env_logger` minus the records that could carry secrets.
struct Redacting {
    inner: env_logger::Logger,
}

impl Redacting {
    fn allowed(metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        let krate = target.split("::").next().unwrap_or(target);
        if metadata.level() > Level::Info && RTSP_TRACERS.contains(&krate) {
            return false;
        }
        if metadata.level() < Level::Trace {
            return true;
        }
        !PAYLOAD_TRACERS.contains(&krate)
    }
}

impl Log for Redacting {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        Self::allowed(metadata) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if Self::allowed(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_tracers_are_cut_at_trace_only() {
        let m = |level, target| Metadata::builder().level(level).target(target).build();
        assert!(!Redacting::allowed(&m(
            Level::Trace,
            "tungstenite::protocol"
        )));
        assert!(!Redacting::allowed(&m(Level::Trace, "tokio_tungstenite")));
        assert!(Redacting::allowed(&m(
            Level::Debug,
            "tungstenite::protocol"
        )));
        assert!(Redacting::allowed(&m(Level::Trace, "livechatd::server")));
        assert!(Redacting::allowed(&m(Level::Trace, "tungstenite_other")));
        // RTSP requests carry a camera's Authorization header: nothing below info.
        assert!(!Redacting::allowed(&m(Level::Debug, "retina::client")));
        assert!(!Redacting::allowed(&m(Level::Trace, "retina")));
        assert!(Redacting::allowed(&m(Level::Info, "retina::client")));
        assert!(Redacting::allowed(&m(Level::Warn, "retina::client")));
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Debug), 7);
        assert_eq!(priority(Level::Trace), 7);
    }
}
