//! `lctrace`: the livechatd trace stream (PROTOCOL.md section 6) live, one line an event,
//! in colour on a terminal; reconnects when the daemon restarts.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use lexopt::Arg::{Long, Short};
use livechat_tools::{ClientError, Events, Target, exit, stdout_is_terminal};
use serde_json::Value;

const USAGE: &str = "\
usage: lctrace [--url URL] [--token TOKEN] [--channel ID] [--user ID] [--kind KIND]
               [--json] [--color | --no-color] [--once]

--channel, --user   only events about this channel or user (filtered by the daemon)
--kind              only events of this kind: session, channel, message, floor, media,
                    camera, lagged
--json              print each event as one JSON object with its kind
--once              exit when the stream ends instead of reconnecting
--url, --token      as lcadmin (LIVECHAT_ADMIN_URL, LIVECHAT_ADMIN_TOKEN)
--version           print the version and exit

exit codes: 0 stream ended (--once), 2 usage, 3 unreachable (--once), 4 unauthorized,
            1 other refusal (such as 503: too many trace streams, with --once)";

/// Longest silence before the stream is taken for dead: the daemon sends a comment every
/// 15 s.
const IDLE: Duration = Duration::from_secs(45);
/// Waits between reconnection attempts, doubling up to the last.
const BACKOFF: [u64; 4] = [250, 500, 1000, 2000];

struct Args {
    url: Option<String>,
    token: Option<String>,
    channel: Option<String>,
    user: Option<String>,
    kind: Option<String>,
    json: bool,
    color: Option<bool>,
    once: bool,
}

fn parse() -> Result<Args, String> {
    let mut p = lexopt::Parser::from_env();
    let mut a = Args {
        url: None,
        token: None,
        channel: None,
        user: None,
        kind: None,
        json: false,
        color: None,
        once: false,
    };
    let text = |p: &mut lexopt::Parser| -> Result<String, String> {
        p.value()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|_| "not UTF-8".to_owned())
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("url") => a.url = Some(text(&mut p)?),
            Long("token") => a.token = Some(text(&mut p)?),
            Long("channel") => a.channel = Some(text(&mut p)?),
            Long("user") => a.user = Some(text(&mut p)?),
            Long("kind") => a.kind = Some(text(&mut p)?),
            Long("json") => a.json = true,
            Long("color") => a.color = Some(true),
            Long("no-color") => a.color = Some(false),
            Long("once") => a.once = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Short('V') | Long("version") => {
                println!("lctrace {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(a)
}

/// Only ids of PROTOCOL.md's charset go in the query, so nothing needs escaping.
fn valid_id(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    let target = match Target::from_args(args.url.clone(), args.token.clone()) {
        Ok(t) => t,
        Err(e) => return usage(&e),
    };
    let mut query = Vec::new();
    for (name, v) in [("channel", &args.channel), ("user", &args.user)] {
        if let Some(v) = v {
            if !valid_id(v) {
                return usage(&format!("--{name} {v}: not a valid id"));
            }
            query.push(format!("{name}={v}"));
        }
    }
    let path = if query.is_empty() {
        "/admin/v1/trace".to_owned()
    } else {
        format!("/admin/v1/trace?{}", query.join("&"))
    };
    let color = args.color.unwrap_or_else(stdout_is_terminal);
    let mut failures = 0usize;
    loop {
        match target.events(&path, IDLE) {
            Ok(Events::Open(mut r)) => {
                if failures > 0 {
                    eprintln!("lctrace: connected to {}", target.authority);
                }
                failures = 0;
                loop {
                    match r.next_event() {
                        Ok(Some(ev)) => {
                            if args.kind.as_deref().is_some_and(|k| k != ev.kind) {
                                continue;
                            }
                            let line = render(&ev.kind, &ev.data, args.json, color);
                            let mut out = std::io::stdout().lock();
                            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                                // A closed pipe (`lctrace | head`): done.
                                return ExitCode::from(exit::OK);
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            eprintln!("lctrace: stream lost: {e}");
                            break;
                        }
                    }
                }
                if args.once {
                    return ExitCode::from(exit::OK);
                }
                eprintln!("lctrace: stream ended; reconnecting");
            }
            Ok(Events::Refused(a)) => {
                let code = exit::of_status(a.status);
                eprintln!("lctrace: {} (HTTP {})", a.error(), a.status);
                if args.once || a.status == 401 || a.status == 404 {
                    return ExitCode::from(code);
                }
                failures += 1;
            }
            Err(e) => {
                if args.once {
                    eprintln!("lctrace: {e}");
                    return ExitCode::from(match e {
                        ClientError::Unreachable(_) => exit::UNREACHABLE,
                        ClientError::Protocol(_) => exit::FAILED,
                    });
                }
                if failures == 0 {
                    eprintln!("lctrace: {e}; retrying");
                }
                failures += 1;
            }
        }
        let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
        std::thread::sleep(Duration::from_millis(wait));
    }
}

fn usage(e: &str) -> ExitCode {
    eprintln!("lctrace: {e}\n\n{USAGE}");
    ExitCode::from(exit::USAGE)
}

/// ANSI colour of a kind (SGR codes, ECMA-48 section 8.3.117).
fn colour(kind: &str) -> &'static str {
    match kind {
        "session" => "36",
        "channel" => "34",
        "message" => "37",
        "floor" => "33",
        "media" => "32",
        "camera" => "35",
        "lagged" => "31;1",
        _ => "0",
    }
}

/// `HH:MM:SS.mmm kind event channel user key=value...`, or the event as JSON with its kind.
fn render(kind: &str, data: &str, json: bool, color: bool) -> String {
    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    if json {
        let mut v = v;
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), Value::String(kind.to_owned()));
            return Value::Object(o.clone()).to_string();
        }
        return format!(
            "{{\"kind\":\"{kind}\",\"data\":{}}}",
            Value::String(data.into())
        );
    }
    let ts = v["ts"]
        .as_u64()
        .map_or_else(|| "--:--:--.---".to_owned(), clock);
    let event = v["event"].as_str().unwrap_or("");
    let mut line = String::new();
    let k = if color {
        format!("\x1b[{}m{kind:<7}\x1b[0m", colour(kind))
    } else {
        format!("{kind:<7}")
    };
    line.push_str(&format!("{ts} {k} {event:<9}"));
    for key in ["channel_id", "user_id"] {
        if let Some(s) = v[key].as_str() {
            line.push_str(&format!(" {}={s}", &key[..key.len() - 3]));
        }
    }
    if let Some(o) = v.as_object() {
        for (key, val) in o {
            if !matches!(key.as_str(), "ts" | "event" | "channel_id" | "user_id") {
                let shown = val.as_str().map_or_else(|| val.to_string(), str::to_owned);
                line.push_str(&format!(" {key}={shown}"));
            }
        }
    }
    line
}

/// UTC time of day of a millisecond timestamp.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}
