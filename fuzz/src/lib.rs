//! Shared pieces of the fuzz targets: a recording driver and a small gateway.

use std::collections::HashMap;
use std::sync::Mutex;

use livechat_core::config::Limits;
use livechat_core::gateway::{ConnId, Driver, Gateway, GatewayConfig, Policy};
use livechat_core::storage::{Capacities, Tables};
use livechat_core::time::Duration;
use livechat_core::token::TokenKey;

/// Records frames per connection and checks each is a JSON object with an integer `op`.
#[derive(Default)]
pub struct Rec {
    pub frames: HashMap<ConnId, Vec<serde_json::Value>>,
    pub closed: Vec<ConnId>,
    rng: u8,
}

impl Driver for Rec {
    fn send(&mut self, to: &[ConnId], frame: &[u8]) {
        let v: serde_json::Value = serde_json::from_slice(frame).expect("server frame is JSON");
        assert!(v["op"].is_u64(), "server frame without op: {v}");
        if v["op"] == 201 {
            let code = v["d"]["code"].as_u64().expect("ERROR has a code");
            assert!((1000..10000).contains(&code), "odd code {code}");
        }
        for c in to {
            let q = self.frames.entry(*c).or_default();
            q.push(v.clone());
            // Bounded memory across long inputs.
            if q.len() > 64 {
                q.remove(0);
            }
        }
    }
    fn close(&mut self, conn: ConnId, _code: u16, _reason: &str) {
        self.closed.push(conn);
    }
    fn fill_random(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.rng = self.rng.wrapping_add(37);
            *b = self.rng;
        }
    }
}

/// A gateway with small tables so inputs reach every limit, and short timers.
pub fn small_gateway() -> Box<Gateway<'static>> {
    let limits = Limits {
        max_sessions: 6,
        max_channels: 3,
        max_members: 4,
        max_peers: 8,
        heartbeat: Duration::from_millis(1000),
        floor_max: Duration::from_millis(3000),
        floor_ping: Duration::from_millis(800),
        rate_burst: 40,
        rate_per_sec: 10,
    };
    let mut media_host = heapless::String::new();
    let _ = media_host.push_str("127.0.0.1");
    let cfg = GatewayConfig {
        limits,
        token_key: TokenKey::none(),
        plain_rtp: Policy::Loopback,
        sdes_over_ws: Policy::Loopback,
        media_host,
        media_port: 10000,
        session_seed: 1,
    };
    match GATEWAY.lock().ok().and_then(|mut g| g.take()) {
        // Reset in place: it keeps the tables' storage and rewrites only the slots used.
        Some(mut gw) => {
            gw.reset(cfg);
            gw
        }
        None => {
            let tables = Tables::reserve(&Capacities::of(&limits)).expect("small tables");
            Box::new(Gateway::new(cfg, tables))
        }
    }
}

/// One gateway per process, reset for each input. A static, never dropped: the gateway
/// and the peer storage it points to stay reachable until exit, so LeakSanitizer has no
/// leak to report when an ASan run ends.
static GATEWAY: Mutex<Option<Box<Gateway<'static>>>> = Mutex::new(None);

/// Ends an input, keeping its gateway for the next one.
pub fn recycle(gw: Box<Gateway<'static>>) {
    if let Ok(mut g) = GATEWAY.lock() {
        *g = Some(gw);
    }
}

/// A token for `user` that a server without a secret accepts.
pub fn token(user: &str) -> String {
    let mut t = String::new();
    TokenKey::none()
        .mint(user, u64::MAX / 2, 255, &mut t)
        .expect("mint");
    t
}
