//! `livechatd`: the push-to-talk signaling gateway and media relay.
//!
//! A thin single-threaded driver around the sans-IO `livechat-core`: it owns the sockets,
//! the clock, the settings and the signals; every decision is the core's.

mod alloc_count;
mod camera;
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
       livechatd token USER [--ttl SECONDS] [--priority P] [--secret S] [--config FILE]
       livechatd --help | --version

Every setting is a flag, an environment variable (LIVECHAT_*) and a key of the TOML
config file (LIVECHAT_CONFIG, default /etc/livechat/livechatd.toml), in that order of
precedence. `livechatd check-config` prints them all.";

enum Command {
    Run,
    CheckConfig,
    Token {
        user: String,
        ttl: u64,
        priority: u8,
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
            Value(v) if command.is_none() && !token_mode => {
                let v = v.into_string().map_err(|_| "bad argument".to_owned())?;
                match v.as_str() {
                    "run" => command = Some(Command::Run),
                    "check-config" => command = Some(Command::CheckConfig),
                    "token" => token_mode = true,
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
        });
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
            writeln!(out, "{token}").map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => Ok(server::run(settings)),
    }
}
