//! The sd_notify protocol without libsystemd (sd_notify(3)): one datagram of
//! `KEY=VALUE` lines to the AF_UNIX socket named by `$NOTIFY_SOCKET`, a path or, with a
//! leading `@`, an abstract name.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use log::{debug, warn};

/// A connection to the service manager, or nothing when not run under one.
pub struct Notifier {
    sock: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; unset means not supervised, and every call is a no-op.
    pub fn from_env() -> Self {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier { sock: None };
        };
        let open = || -> std::io::Result<(UnixDatagram, SocketAddr)> {
            let addr = socket_addr(name.as_encoded_bytes())?;
            Ok((UnixDatagram::unbound()?, addr))
        };
        match open() {
            Ok(s) => Notifier { sock: Some(s) },
            Err(e) => {
                warn!("NOTIFY_SOCKET {name:?} unusable: {e}");
                Notifier { sock: None }
            }
        }
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.sock.is_some()
    }

    /// Sends one state message (`READY=1`, `STATUS=...`, ...). Failures are logged at
    /// debug and otherwise ignored: the manager may be gone while we shut down.
    pub fn send(&self, state: &str) {
        if let Some((sock, addr)) = &self.sock
            && let Err(e) = sock.send_to_addr(state.as_bytes(), addr)
        {
            debug!("sd_notify failed: {e}");
        }
    }
}

/// The socket address for a `$NOTIFY_SOCKET` value.
fn socket_addr(name: &[u8]) -> std::io::Result<SocketAddr> {
    match name.split_first() {
        Some((b'@', abstract_name)) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name)
        }
        Some((b'/', _)) => {
            use std::os::unix::ffi::OsStrExt;
            SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(name))
        }
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "neither an absolute path nor an @abstract name",
        )),
    }
}

/// The watchdog ping period: half of `$WATCHDOG_USEC` (sd_watchdog_enabled(3)), when
/// set, valid, and meant for this process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names() {
        assert!(socket_addr(b"/run/systemd/notify").is_ok());
        let a = socket_addr(b"@livechat-test").expect("abstract");
        use std::os::linux::net::SocketAddrExt;
        assert_eq!(a.as_abstract_name(), Some(&b"livechat-test"[..]));
        assert!(socket_addr(b"relative").is_err());
        assert!(socket_addr(b"").is_err());
    }

    #[test]
    fn sends_to_a_real_socket() {
        let dir = std::env::temp_dir().join(format!("livechat-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier {
            sock: Some((
                UnixDatagram::unbound().expect("socket"),
                socket_addr(path.as_os_str().as_encoded_bytes()).expect("addr"),
            )),
        };
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..len], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
