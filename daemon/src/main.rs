//! `livechatd`: the push-to-talk signaling gateway and media relay.
//!
//! A thin single-threaded driver around the sans-IO `livechat-core`: it owns the sockets,
//! the clock, the settings and the signals; every decision is the core's.

mod alloc_count;
mod camera;
mod cert;
mod dump;
mod logging;
mod notify;
mod server;
mod service;
mod settings;
mod tls;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use livechat_core::token::TokenKey;

const USAGE: &str = "\
usage: livechatd [run] [--SETTING VALUE ...]
       livechatd check-config [--SETTING VALUE ...]
       livechatd token USER [--ttl SECONDS] [--priority P] [--link URL] [--secret S] [--config FILE]
       livechatd cert --name HOST_OR_IP [--name ...] [--out DIR] [--days N] [--force]
       livechatd --help | --version

Every setting is a flag, an environment variable (LIVECHAT_*) and a key of the TOML
config file (LIVECHAT_CONFIG, default /etc/livechat/livechatd.toml), in that order of
precedence. `livechatd check-config` prints them all.

`token --link https://pi.local:8443/` prints a sign-in link for the web client instead: the
token travels in the URL's fragment, which browsers never send to the server.
`cert` writes ca.pem, cert.pem and key.pem (default DIR /etc/livechat/tls) for wss:// and
the web client on a LAN; install ca.pem on the devices (README, \"HTTPS on a LAN\").";

enum Command {
    Run,
    CheckConfig,
    Token {
        user: String,
        ttl: u64,
        priority: u8,
        link: Option<String>,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("livechatd: {msg}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut command: Option<Command> = None;
    let mut flags = BTreeMap::new();
    let mut token_user: Option<String> = None;
    let mut ttl = 86_400u64;
    let mut priority = 0u8;
    let mut token_mode = false;
    let mut link: Option<String> = None;
    let mut cert_mode = false;
    let mut cert_req = cert::Request {
        names: Vec::new(),
        out: std::path::PathBuf::from(cert::DEFAULT_DIR),
        days: cert::MAX_DAYS,
        force: false,
    };
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => {
                println!("{USAGE}\n\nsettings:");
                for (flag, help) in settings::flag_names() {
                    println!("  {flag:<20} {help}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            Short('V') | Long("version") => {
                println!("livechatd {}", env!("CARGO_PKG_VERSION"));
                return Ok(ExitCode::SUCCESS);
            }
            Long("ttl") if token_mode => {
                ttl = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e| format!("--ttl: {e}"))?;
            }
            Long("priority") if token_mode => {
                priority = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e| format!("--priority must be 0..=255: {e}"))?;
            }
            Long("link") if token_mode => {
                let v = parser.value().map_err(|e| e.to_string())?;
                link = Some(v.into_string().map_err(|_| "--link: not valid UTF-8")?);
            }
            Long("name") if cert_mode => {
                let v = parser.value().map_err(|e| e.to_string())?;
                cert_req
                    .names
                    .push(v.into_string().map_err(|_| "--name: not valid UTF-8")?);
            }
            Long("out") if cert_mode => {
                cert_req.out = parser.value().map_err(|e| e.to_string())?.into();
            }
            Long("days") if cert_mode => {
                cert_req.days = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse()
                    .map_err(|e| format!("--days: {e}"))?;
            }
            Long("force") if cert_mode => cert_req.force = true,
            Long(name) => {
                let name = name.to_owned();
                let key = settings::key_of_flag(&name)
                    .ok_or_else(|| format!("unknown flag --{name}\n\n{USAGE}"))?;
                let value = parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .into_string()
                    .map_err(|_| format!("--{name}: not valid UTF-8"))?;
                flags.insert(key, value);
            }
            Value(v) if command.is_none() && !token_mode && !cert_mode => {
                let v = v.into_string().map_err(|_| "bad argument".to_owned())?;
                match v.as_str() {
                    "run" => command = Some(Command::Run),
                    "check-config" => command = Some(Command::CheckConfig),
                    "token" => token_mode = true,
                    "cert" => cert_mode = true,
                    other => return Err(format!("unknown command {other:?}\n\n{USAGE}")),
                }
            }
            Value(v) if token_mode && token_user.is_none() => {
                token_user = Some(v.into_string().map_err(|_| "bad user".to_owned())?);
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    if token_mode {
        let user = token_user.ok_or("token: missing USER")?;
        command = Some(Command::Token {
            user,
            ttl,
            priority,
            link,
        });
    }
    if cert_mode {
        // Needs no settings: it runs before the service has any.
        return make_cert(&cert_req);
    }
    let settings = settings::load(&flags).map_err(|e| e.to_string())?;
    match command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            print!("{}", settings.describe());
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            user,
            ttl,
            priority,
            link,
        } => {
            let valid_user = !user.is_empty()
                && user.len() <= livechat_core::config::MAX_ID_LEN
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !valid_user {
                return Err("token: USER must be 1..=32 of [A-Za-z0-9_.-]".into());
            }
            let key = match &settings.secret {
                Some(s) => TokenKey::new(s.as_bytes()),
                None => {
                    eprintln!(
                        "livechatd: warning: no LIVECHAT_SECRET; the token is only good for a loopback server without one"
                    );
                    TokenKey::none()
                }
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs();
            let mut token = String::new();
            key.mint(&user, now.saturating_add(ttl), priority, &mut token)
                .map_err(|e| e.to_string())?;
            let mut out = std::io::stdout().lock();
            match link {
                Some(base) => writeln!(out, "{}", sign_in_link(&base, &user, &token)?),
                None => writeln!(out, "{token}"),
            }
            .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => Ok(server::run(settings)),
    }
}

/// The web client's sign-in link: `base` (the page's https:// address) with user and token
/// in the fragment (RFC 3986 section 3.5), which a browser keeps to itself: never in a
/// request line, so never in a log. The page reads it and clears it.
fn sign_in_link(base: &str, user: &str, token: &str) -> Result<String, String> {
    let base = base.split('#').next().unwrap_or(base);
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))
        .filter(|r| !r.is_empty() && !r.starts_with('/'))
        .ok_or("token: --link must be the page's address, e.g. https://pi.local:8443/")?;
    let slash = if rest.contains('/') { "" } else { "/" };
    // user ids are [A-Za-z0-9_.-] and tokens digits, dots and hex: nothing to escape.
    Ok(format!("{base}{slash}#user={user}&token={token}"))
}

fn make_cert(req: &cert::Request) -> Result<ExitCode, String> {
    let w = cert::make(req)?;
    let (ca, cert, key) = (w.ca.display(), w.cert.display(), w.key.display());
    let text = format!(
        "wrote {ca} (install and trust this on phones and laptops)\n\
         wrote {cert} and {key}\n\
         CA fingerprint (SHA-256): {}\n\n\
         Serve them (in /etc/livechat/livechatd.env, or as flags):\n\
         LIVECHAT_TLS_CERT={cert}\n\
         LIVECHAT_TLS_KEY={key}",
        w.ca_sha256
    );
    writeln!(std::io::stdout().lock(), "{text}").map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
