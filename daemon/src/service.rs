//! Life as a system service, driven from the core loop: systemd readiness, watchdog and
//! status (sd_notify), the periodic counters line, the SIGUSR1 state dump.
//!
//! The core loop polls [`Service::next`] as one branch of its `select!` and hands the
//! event back to [`Service::handle`] with the gateway. Watchdog pings therefore leave only
//! when the core loop turns: a loop stuck in one iteration stops them, and systemd
//! restarts the daemon after `WatchdogSec=`.

use std::future::pending;
use std::sync::atomic::Ordering;
use std::time::Duration;

use livechat_core::gateway::Gateway;
use log::{info, warn};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

use crate::dump::{self, DriverCounters};
use crate::notify::{self, Notifier};
use crate::settings::Settings;

/// How often the `STATUS=` line is recomputed (and sent when it changed).
const STATUS_PERIOD: Duration = Duration::from_secs(2);

/// Something for the core loop to do on the service's behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Time to tell systemd we are alive.
    Watchdog,
    /// Time to refresh `STATUS=`.
    Status,
    /// Time for the counters line.
    Stats,
    /// SIGUSR1: dump the state to the log.
    Dump,
    /// SIGUSR2 with LIVECHAT_DEBUG_STALL_MS: block the core loop (tests).
    Stall,
}

/// Timers, signals and the notify socket.
pub struct Service {
    notify: Notifier,
    watchdog: Option<Interval>,
    status: Option<Interval>,
    stats: Option<Interval>,
    usr1: Option<Signal>,
    usr2: Option<Signal>,
    stall: Duration,
    last_status: String,
    /// Driver-side counters, incremented by the core loop.
    pub counters: DriverCounters,
}

impl Service {
    /// Opens `$NOTIFY_SOCKET` and sets up the timers and signals. Inside the runtime.
    pub fn new(settings: &Settings) -> Self {
        let notify = Notifier::from_env();
        let every = |period: Duration| {
            let mut i = interval_at(Instant::now() + period, period);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        let watchdog = notify
            .enabled()
            .then(notify::watchdog_period)
            .flatten()
            .map(|p| {
                info!("systemd watchdog: pinging every {} ms", p.as_millis());
                every(p)
            });
        let status = notify.enabled().then(|| every(STATUS_PERIOD));
        let stats = settings.stats_interval.map(every);
        let usr1 = signal(SignalKind::user_defined1())
            .map_err(|e| warn!("SIGUSR1 (state dump) unavailable: {e}"))
            .ok();
        let usr2 = settings.debug_stall.and_then(|d| {
            warn!(
                "LIVECHAT_DEBUG_STALL_MS={}: SIGUSR2 will block the core loop (testing only)",
                d.as_millis()
            );
            signal(SignalKind::user_defined2())
                .map_err(|e| warn!("SIGUSR2 unavailable: {e}"))
                .ok()
        });
        Service {
            notify,
            watchdog,
            status,
            stats,
            usr1,
            usr2,
            stall: settings.debug_stall.unwrap_or_default(),
            last_status: String::new(),
            counters: DriverCounters::default(),
        }
    }

    /// Every socket is bound: `READY=1`, with a first status and a first watchdog ping.
    pub fn ready(&mut self, gw: &Gateway) {
        self.last_status = dump::status_line(gw);
        let ping = if self.watchdog.is_some() {
            "\nWATCHDOG=1"
        } else {
            ""
        };
        self.notify
            .send(&format!("READY=1\nSTATUS={}{ping}", self.last_status));
    }

    /// Shutting down (SIGTERM, SIGINT): `STOPPING=1`.
    pub fn stopping(&mut self) {
        self.notify.send("STOPPING=1\nSTATUS=shutting down");
    }

    /// The next event; cancel-safe, for a `select!` branch.
    pub async fn next(&mut self) -> Event {
        tokio::select! {
            biased;
            () = tick(&mut self.watchdog) => Event::Watchdog,
            () = recv(&mut self.usr2) => Event::Stall,
            () = recv(&mut self.usr1) => Event::Dump,
            () = tick(&mut self.status) => Event::Status,
            () = tick(&mut self.stats) => Event::Stats,
        }
    }

    /// Reads the counters kept outside the core loop into [`Service::counters`].
    pub fn sync_counters(&mut self) {
        self.counters.door_refused = crate::server::DOOR_REFUSED.load(Ordering::Relaxed);
        self.counters.door_shed = crate::server::DOOR_SHED.load(Ordering::Relaxed);
    }

    /// Carries out an event from [`Service::next`], in the core loop.
    pub fn handle(&mut self, ev: Event, gw: &Gateway) {
        self.sync_counters();
        match ev {
            Event::Watchdog => self.notify.send("WATCHDOG=1"),
            Event::Status => {
                let line = dump::status_line(gw);
                if line != self.last_status {
                    self.notify.send(&format!("STATUS={line}"));
                    self.last_status = line;
                }
            }
            Event::Stats => info!("{}", dump::stats_line(gw, &self.counters)),
            Event::Dump => {
                info!("SIGUSR1: state dump");
                for line in dump::state_dump(gw, &self.counters) {
                    info!("{line}");
                }
            }
            Event::Stall => {
                warn!(
                    "SIGUSR2: blocking the core loop for {} ms (LIVECHAT_DEBUG_STALL_MS)",
                    self.stall.as_millis()
                );
                // Deliberately synchronous: this is the stuck loop the watchdog must catch.
                std::thread::sleep(self.stall);
                warn!("SIGUSR2: core loop unblocked");
            }
        }
    }
}

async fn tick(i: &mut Option<Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => pending().await,
    }
}

async fn recv(s: &mut Option<Signal>) {
    if let Some(s) = s
        && s.recv().await.is_some()
    {
        return;
    }
    pending().await
}
