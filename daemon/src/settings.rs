//! Settings (PROTOCOL.md section 5): each one a flag, an environment variable and a key of
//! the TOML config file, in that order of precedence over the default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use livechat_core::config::{self as core_config, Limits};
use livechat_core::gateway::Policy;
use livechat_core::time::Duration;

/// One setting's names and default.
#[derive(Debug)]
struct Spec {
    /// Key in the config file; the flag is `--` plus this with `-` for `_`.
    key: &'static str,
    env: &'static str,
    default: Option<&'static str>,
    secret: bool,
    help: &'static str,
}

const SPECS: &[Spec] = &[
    Spec {
        key: "secret",
        env: "LIVECHAT_SECRET",
        default: None,
        secret: true,
        help: "HMAC key for tokens",
    },
    Spec {
        key: "admin_token",
        env: "LIVECHAT_ADMIN_TOKEN",
        default: None,
        secret: true,
        help: "bearer token for /metrics and /admin (unset: loopback only)",
    },
    Spec {
        key: "http_addr",
        env: "LIVECHAT_HTTP_ADDR",
        default: Some("127.0.0.1:8080"),
        secret: false,
        help: "WebSocket gateway address",
    },
    Spec {
        key: "udp_addr",
        env: "LIVECHAT_UDP_ADDR",
        default: Some("127.0.0.1:10000"),
        secret: false,
        help: "media port address",
    },
    Spec {
        key: "advertise_ip",
        env: "LIVECHAT_ADVERTISE_IP",
        default: None,
        secret: false,
        help: "host put in media.host",
    },
    Spec {
        key: "tls_cert",
        env: "LIVECHAT_TLS_CERT",
        default: None,
        secret: false,
        help: "PEM certificate chain for wss://",
    },
    Spec {
        key: "tls_key",
        env: "LIVECHAT_TLS_KEY",
        default: None,
        secret: false,
        help: "PEM private key for wss://",
    },
    Spec {
        key: "dtls_cert",
        env: "LIVECHAT_DTLS_CERT",
        default: None,
        secret: false,
        help: "PEM certificate for DTLS (unset: a fresh one)",
    },
    Spec {
        key: "dtls_key",
        env: "LIVECHAT_DTLS_KEY",
        default: None,
        secret: false,
        help: "PEM private key for DTLS (ECDSA P-256)",
    },
    Spec {
        key: "plain_rtp",
        env: "LIVECHAT_PLAIN_RTP",
        default: Some("loopback"),
        secret: false,
        help: "never, loopback or always",
    },
    Spec {
        key: "sdes_over_ws",
        env: "LIVECHAT_SDES_OVER_WS",
        default: Some("loopback"),
        secret: false,
        help: "never, loopback or always",
    },
    Spec {
        key: "heartbeat_ms",
        env: "LIVECHAT_HEARTBEAT_MS",
        default: Some("15000"),
        secret: false,
        help: "heartbeat interval sent in HELLO",
    },
    Spec {
        key: "identify_timeout_ms",
        env: "LIVECHAT_IDENTIFY_TIMEOUT_MS",
        default: Some("10000"),
        secret: false,
        help: "time to identify after HELLO (4008 after it)",
    },
    Spec {
        key: "floor_max_ms",
        env: "LIVECHAT_FLOOR_MAX_MS",
        default: Some("30000"),
        secret: false,
        help: "longest floor hold",
    },
    Spec {
        key: "floor_ping_ms",
        env: "LIVECHAT_FLOOR_PING_MS",
        default: Some("5000"),
        secret: false,
        help: "holder inactivity before revoke",
    },
    Spec {
        key: "max_sessions",
        env: "LIVECHAT_MAX_SESSIONS",
        default: Some("1024"),
        secret: false,
        help: "identified sessions",
    },
    Spec {
        key: "max_channels",
        env: "LIVECHAT_MAX_CHANNELS",
        default: Some("256"),
        secret: false,
        help: "channels",
    },
    Spec {
        key: "max_members",
        env: "LIVECHAT_MAX_MEMBERS",
        default: Some("256"),
        secret: false,
        help: "members per channel",
    },
    Spec {
        key: "max_peers",
        env: "LIVECHAT_MAX_PEERS",
        default: Some("1536"),
        secret: false,
        help: "channel memberships with media, over all channels",
    },
    Spec {
        key: "max_conn_per_ip",
        env: "LIVECHAT_MAX_CONN_PER_IP",
        default: Some("256"),
        secret: false,
        help: "gateway connections per client IP",
    },
    Spec {
        key: "rate",
        env: "LIVECHAT_RATE",
        default: Some("200/50"),
        secret: false,
        help: "request burst/sustained per second per connection",
    },
    Spec {
        key: "stats_interval_s",
        env: "LIVECHAT_STATS_INTERVAL_S",
        default: Some("60"),
        secret: false,
        help: "seconds between counters lines in the log (0: none)",
    },
    Spec {
        key: "web",
        env: "LIVECHAT_WEB",
        default: Some("on"),
        secret: false,
        help: "on or off: serve the web PTT client at /",
    },
    Spec {
        key: "allowed_origins",
        env: "LIVECHAT_ALLOWED_ORIGINS",
        default: None,
        secret: false,
        help: "comma-separated browser origins allowed to open /gateway besides the page's own",
    },
    Spec {
        key: "debug_stall_ms",
        env: "LIVECHAT_DEBUG_STALL_MS",
        default: Some("0"),
        secret: false,
        help: "testing only: SIGUSR2 blocks the core loop this long (0: off)",
    },
];

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::File => "config file",
            Source::Env => "environment",
            Source::Flag => "flag",
        })
    }
}

/// A bad setting, naming it.
#[derive(Debug)]
pub struct SettingError(pub String);

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The effective settings, typed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_path: PathBuf,
    pub secret: Option<String>,
    /// Bearer token for `/metrics` and `/admin/v1`; `None`: loopback peers only.
    pub admin_token: Option<String>,
    pub http_addr: SocketAddr,
    pub udp_addr: SocketAddr,
    pub advertise_ip: Option<IpAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub dtls_cert: Option<PathBuf>,
    pub dtls_key: Option<PathBuf>,
    pub plain_rtp: Policy,
    pub sdes_over_ws: Policy,
    pub limits: Limits,
    pub max_conn_per_ip: u32,
    /// Period of the counters line in the log; `None` is off.
    pub stats_interval: Option<std::time::Duration>,
    /// Testing only: how long SIGUSR2 blocks the core loop (watchdog test); `None` is off,
    /// and SIGUSR2 then keeps its default action.
    pub debug_stall: Option<std::time::Duration>,
    /// Serve the web PTT client at `/` (LIVECHAT_WEB).
    pub web: bool,
    /// Browser origins allowed to open `/gateway` besides the page's own host
    /// (LIVECHAT_ALLOWED_ORIGINS).
    pub allowed_origins: Vec<crate::server::Origin>,
    /// The `[[camera]]` tables (PROTOCOL.md section 7).
    pub cameras: Vec<crate::camera::CameraConfig>,
    /// Each setting's raw value and source, for `check-config`.
    raw: Vec<(&'static Spec, Option<String>, Source)>,
}

/// Collects raw values: defaults, then the file, then the environment, then flags.
pub fn load(flags: &BTreeMap<String, String>) -> Result<Settings, SettingError> {
    let config_flag = flags.get("config").cloned();
    let config_path = match (config_flag, std::env::var_os("LIVECHAT_CONFIG")) {
        (Some(p), _) => PathBuf::from(p),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => PathBuf::from("/etc/livechat/livechatd.toml"),
    };
    let file = read_file(&config_path)?;
    for k in flags.keys() {
        if k != "config" && !SPECS.iter().any(|s| s.key == k) {
            return Err(SettingError(format!(
                "unknown flag --{}",
                k.replace('_', "-")
            )));
        }
    }
    let mut raw = Vec::new();
    for spec in SPECS {
        let mut value = spec.default.map(str::to_owned);
        let mut source = Source::Default;
        if let Some(v) = file.get(spec.key) {
            value = Some(v.clone());
            source = Source::File;
        }
        if let Some(v) = std::env::var_os(spec.env) {
            let v = v
                .into_string()
                .map_err(|_| SettingError(format!("{}: not valid UTF-8", spec.env)))?;
            value = Some(v);
            source = Source::Env;
        }
        if let Some(v) = flags.get(spec.key) {
            value = Some(v.clone());
            source = Source::Flag;
        }
        raw.push((spec, value, source));
    }
    let mut settings = parse(config_path, raw)?;
    settings.cameras = crate::camera::config::read(&settings.config_path)?;
    Ok(settings)
}

/// Reads the config file; a missing one is no error (PROTOCOL.md: "read if it exists").
fn read_file(path: &PathBuf) -> Result<BTreeMap<String, String>, SettingError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(SettingError(format!(
                "LIVECHAT_CONFIG: cannot read {}: {e}",
                path.display()
            )));
        }
    };
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Int(i64),
        Str(String),
        Bool(bool),
        /// `[[camera]]` tables, read by `crate::camera::config`; anything else of this
        /// shape is a bad key.
        Other(serde::de::IgnoredAny),
    }
    let table: BTreeMap<String, Scalar> = basic_toml::from_str(&text)
        .map_err(|e| SettingError(format!("LIVECHAT_CONFIG: {}: {e}", path.display())))?;
    let mut out = BTreeMap::new();
    for (k, v) in table {
        if k == "camera" {
            continue;
        }
        if !SPECS.iter().any(|s| s.key == k) {
            return Err(SettingError(format!(
                "{k}: unknown key in {}",
                path.display()
            )));
        }
        let v = match v {
            Scalar::Int(i) => i.to_string(),
            Scalar::Str(s) => s,
            Scalar::Bool(b) => b.to_string(),
            Scalar::Other(_) => {
                return Err(SettingError(format!(
                    "{k}: must be a string, an integer or a boolean in {}",
                    path.display()
                )));
            }
        };
        out.insert(k, v);
    }
    Ok(out)
}

fn parse(
    config_path: PathBuf,
    raw: Vec<(&'static Spec, Option<String>, Source)>,
) -> Result<Settings, SettingError> {
    let get = |key: &str| -> (&'static Spec, Option<&str>) {
        let (spec, v, _) = raw
            .iter()
            .find(|(s, _, _)| s.key == key)
            .map(|(s, v, src)| (*s, v.as_deref(), src))
            .unwrap_or((&SPECS[0], None, &Source::Default));
        (spec, v)
    };
    fn bad(spec: &Spec, v: &str, why: impl fmt::Display) -> SettingError {
        SettingError(format!(
            "invalid {} ({} = {:?}): {why}",
            spec.env, spec.key, v
        ))
    }
    let req = |key: &str| -> Result<(&'static Spec, &str), SettingError> {
        match get(key) {
            (spec, Some(v)) => Ok((spec, v)),
            (spec, None) => Err(SettingError(format!("{}: missing", spec.env))),
        }
    };
    let addr = |key: &str| -> Result<SocketAddr, SettingError> {
        let (spec, v) = req(key)?;
        v.parse().map_err(|e| bad(spec, v, e))
    };
    let ms = |key: &str| -> Result<Duration, SettingError> {
        let (spec, v) = req(key)?;
        match v.parse::<u64>() {
            Ok(n) if (1..=86_400_000).contains(&n) => Ok(Duration::from_millis(n)),
            Ok(_) => Err(bad(spec, v, "must be 1..=86400000 milliseconds")),
            Err(e) => Err(bad(spec, v, e)),
        }
    };
    // A table's capacity: the tables are reserved at start to exactly this size, so the
    // bound is only what a table can number; memory is the practical limit, and a size the
    // system cannot reserve stops the daemon at start with a message naming the setting.
    let count = |key: &str, max: usize| -> Result<usize, SettingError> {
        let (spec, v) = req(key)?;
        match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            Ok(_) => Err(bad(spec, v, format!("must be 1..={max}"))),
            Err(e) => Err(bad(spec, v, e)),
        }
    };
    let policy = |key: &str| -> Result<Policy, SettingError> {
        let (spec, v) = req(key)?;
        match v {
            "never" => Ok(Policy::Never),
            "loopback" => Ok(Policy::Loopback),
            "always" => Ok(Policy::Always),
            _ => Err(bad(spec, v, "must be never, loopback or always")),
        }
    };
    // A bounded count where 0 means off.
    let off_or = |key: &str, max: u64| -> Result<Option<u64>, SettingError> {
        let (spec, v) = req(key)?;
        match v.parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) if n <= max => Ok(Some(n)),
            Ok(_) => Err(bad(spec, v, format!("must be 0 (off) to {max}"))),
            Err(e) => Err(bad(spec, v, e)),
        }
    };
    let optional = |key: &str| get(key).1.filter(|v| !v.is_empty()).map(str::to_owned);

    let (rate_spec, rate) = req("rate")?;
    let (burst, per_sec) = rate
        .split_once('/')
        .and_then(|(b, r)| Some((b.trim().parse::<u32>().ok()?, r.trim().parse::<u32>().ok()?)))
        .filter(|&(b, r)| b >= 1 && r >= 1)
        .ok_or_else(|| bad(rate_spec, rate, "must be BURST/PER_SECOND, both at least 1"))?;
    let advertise_ip = match optional("advertise_ip") {
        Some(v) => Some(v.parse().map_err(|e| bad(get("advertise_ip").0, &v, e))?),
        None => None,
    };
    let (cap_spec, cap) = req("max_conn_per_ip")?;
    let max_conn_per_ip = match cap.parse::<u32>() {
        Ok(n) if n >= 1 => n,
        Ok(_) => return Err(bad(cap_spec, cap, "must be at least 1")),
        Err(e) => return Err(bad(cap_spec, cap, e)),
    };
    let limits = Limits {
        max_sessions: count("max_sessions", core_config::TABLE_LIMIT)?,
        max_channels: count("max_channels", core_config::TABLE_LIMIT)?,
        max_members: count("max_members", core_config::MEMBERS_LIMIT)?,
        max_peers: count("max_peers", core_config::TABLE_LIMIT)?,
        heartbeat: ms("heartbeat_ms")?,
        identify_timeout: ms("identify_timeout_ms")?,
        floor_max: ms("floor_max_ms")?,
        floor_ping: ms("floor_ping_ms")?,
        rate_burst: burst,
        rate_per_sec: per_sec,
    };
    let tls_cert = optional("tls_cert").map(PathBuf::from);
    let tls_key = optional("tls_key").map(PathBuf::from);
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(SettingError(
            "LIVECHAT_TLS_CERT and LIVECHAT_TLS_KEY must be set together".into(),
        ));
    }
    let (web_spec, web) = req("web")?;
    let web = match web {
        "on" => true,
        "off" => false,
        _ => return Err(bad(web_spec, web, "must be on or off")),
    };
    let mut allowed_origins = Vec::new();
    if let Some(list) = optional("allowed_origins") {
        for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let origin = crate::server::Origin::parse(o).ok_or_else(|| {
                bad(
                    get("allowed_origins").0,
                    &list,
                    format!("{o:?} is not an origin such as https://host:port"),
                )
            })?;
            allowed_origins.push(origin);
        }
    }
    let dtls_cert = optional("dtls_cert").map(PathBuf::from);
    let dtls_key = optional("dtls_key").map(PathBuf::from);
    if dtls_cert.is_some() != dtls_key.is_some() {
        return Err(SettingError(
            "LIVECHAT_DTLS_CERT and LIVECHAT_DTLS_KEY must be set together".into(),
        ));
    }
    Ok(Settings {
        config_path,
        secret: optional("secret"),
        admin_token: optional("admin_token"),
        http_addr: addr("http_addr")?,
        udp_addr: addr("udp_addr")?,
        advertise_ip,
        tls_cert,
        dtls_cert,
        dtls_key,
        tls_key,
        plain_rtp: policy("plain_rtp")?,
        sdes_over_ws: policy("sdes_over_ws")?,
        limits,
        max_conn_per_ip,
        stats_interval: off_or("stats_interval_s", 86_400)?.map(std::time::Duration::from_secs),
        debug_stall: off_or("debug_stall_ms", 60_000)?.map(std::time::Duration::from_millis),
        web,
        allowed_origins,
        cameras: Vec::new(),
        raw,
    })
}

impl Settings {
    /// The effective configuration as `check-config` prints it, secrets masked.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "# livechatd effective configuration\n# config file: {}\n",
            self.config_path.display()
        );
        for (spec, value, source) in &self.raw {
            let shown = match value {
                None => "(unset)".to_owned(),
                Some(_) if spec.secret => "******** (set)".to_owned(),
                Some(v) => format!("{v:?}"),
            };
            s.push_str(&format!(
                "{:<16} = {:<24} # {}, {}; {}\n",
                spec.key, shown, spec.env, source, spec.help
            ));
        }
        for c in &self.cameras {
            s.push_str(&format!(
                "[[camera]] id = {:?} channel = {:?} url = {:?} transport = {:?} # config file\n",
                c.id,
                c.channel,
                c.shown_url(),
                c.transport
            ));
        }
        s
    }
}

/// Names of every flag `run` and `check-config` take, with `--` and dashes.
pub fn flag_names() -> impl Iterator<Item = (String, &'static str)> {
    SPECS
        .iter()
        .map(|s| (format!("--{}", s.key.replace('_', "-")), s.help))
        .chain(std::iter::once(("--config".to_owned(), "TOML config file")))
}

/// The key a `--flag-name` stands for, if it is one of ours.
pub fn key_of_flag(flag: &str) -> Option<String> {
    let key = flag.replace('-', "_");
    (key == "config" || SPECS.iter().any(|s| s.key == key)).then_some(key)
}
