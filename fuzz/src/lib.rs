//! Shared pieces of the fuzz targets: the core's recording sinks (`livechat_core::testing`)
//! and a small gateway.

use std::sync::Mutex;

use livechat_core::config::Limits;
use livechat_core::gateway::{Gateway, GatewayConfig, Policy};
pub use livechat_core::testing::{Recorder, RecordingTransmit};
use livechat_core::time::Duration;
use livechat_core::token::TokenKey;

/// The core's recording driver, keeping the last 64 frames of each connection so memory
/// stays bounded across long inputs.
pub fn recorder() -> Recorder {
    Recorder::bounded(64).with_random_step(37)
}

/// A gateway with small tables so inputs reach every limit, and short timers.
pub fn small_gateway() -> Box<Gateway<'static>> {
    let limits = Limits {
        max_sessions: 6,
        max_channels: 3,
        max_members: 4,
        max_peers: 8,
        heartbeat: Duration::from_millis(1000),
        identify_timeout: Duration::from_millis(1500),
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
        None => livechat_core::testing::gateway(cfg),
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

/// One DTLS certificate per process: generating a P-256 key per input would dominate the run.
pub fn rtc_certificate() -> livechat_rtc::Certificate {
    static CERT: std::sync::OnceLock<livechat_rtc::Certificate> = std::sync::OnceLock::new();
    CERT.get_or_init(|| livechat_rtc::Certificate::generate().expect("certificate"))
        .clone()
}

/// A Binding request as a browser sends it for `username`, integrity-protected with `pwd`,
/// with USE-CANDIDATE when `nominate`.
pub fn stun_check(username: &str, pwd: &str, nominate: bool) -> Vec<u8> {
    use stun_types::attribute::{AttributeType, RawAttribute, Username};
    use stun_types::message::{
        BINDING, IntegrityAlgorithm, Message, MessageIntegrityCredentials, MessageWrite,
        MessageWriteExt, MessageWriteVec, ShortTermCredentials,
    };
    let mut m = Message::builder_request(BINDING, MessageWriteVec::new());
    if let Ok(u) = Username::new(username) {
        let _ = m.add_attribute(&u);
    }
    if nominate {
        let _ = m.add_attribute(&RawAttribute::new(AttributeType::new(0x0025), &[]));
    }
    let creds = MessageIntegrityCredentials::from(ShortTermCredentials::new(pwd.to_string()));
    let _ = m.add_message_integrity(&creds, IntegrityAlgorithm::Sha1);
    let _ = m.add_fingerprint();
    m.finish()
}
