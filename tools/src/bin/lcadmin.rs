//! `lcadmin`: the livechatd admin API (PROTOCOL.md section 6) from a shell. Human tables by
//! default, the daemon's JSON with `--json`; the exit code says what happened
//! ([`livechat_tools::exit`]).

use std::process::ExitCode;

use lexopt::Arg::{Long, Short};
use livechat_tools::{Answer, ClientError, Target, exit, table};
use serde_json::{Map, Value, json};

const USAGE: &str = "\
usage: lcadmin [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]

commands:
  status                      counters, sessions, channels, peers
  channels                    every channel with its members and floor
  channel ID                  one channel
  create ID [--name N] [--freq F] [--capacity C]
  update ID [--name N] [--freq F] [--capacity C]
  delete ID                   members get CHANNEL_EVENT delete
  revoke ID                   revoke the floor (cause admin); it passes on
  users                       identified sessions
  kick USER                   close the user's connection (4010 kicked)
  peers                       media peers with their counters
  cameras                     RTSP camera sources

--url     base URL of the daemon (else LIVECHAT_ADMIN_URL, else http://127.0.0.1:8080)
--token   admin token (else LIVECHAT_ADMIN_TOKEN; none: the daemon serves loopback only)
--json    print the daemon's JSON answer as it is
--version print the version and exit

exit codes: 0 done, 1 refused (400, 405, 429, 5xx), 2 usage, 3 daemon unreachable,
            4 unauthorized, 5 not found, 6 conflict (exists, floor idle)";

struct Args {
    url: Option<String>,
    token: Option<String>,
    json: bool,
    command: String,
    operand: Option<String>,
    fields: Map<String, Value>,
}

fn parse() -> Result<Args, String> {
    let mut p = lexopt::Parser::from_env();
    let mut a = Args {
        url: None,
        token: None,
        json: false,
        command: String::new(),
        operand: None,
        fields: Map::new(),
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
            Long("json") => a.json = true,
            Long("name") => {
                a.fields.insert("name".into(), Value::String(text(&mut p)?));
            }
            Long("freq") => {
                a.fields.insert("freq".into(), Value::String(text(&mut p)?));
            }
            Long("capacity") => {
                let v = text(&mut p)?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--capacity {v}: not a number"))?;
                a.fields.insert("capacity".into(), json!(n));
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Short('V') | Long("version") => {
                println!("lcadmin {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            lexopt::Arg::Value(v) => {
                let v = v.into_string().map_err(|_| "not UTF-8".to_owned())?;
                if a.command.is_empty() {
                    a.command = v;
                } else if a.operand.is_none() {
                    a.operand = Some(v);
                } else {
                    return Err(format!("unexpected argument {v}"));
                }
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(a)
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
    let needs_operand = matches!(
        args.command.as_str(),
        "channel" | "create" | "update" | "delete" | "revoke" | "kick"
    );
    if needs_operand != args.operand.is_some() {
        return usage(&format!("{}: wrong number of arguments", args.command));
    }
    if !args.fields.is_empty() && !matches!(args.command.as_str(), "create" | "update") {
        return usage("--name, --freq and --capacity go with create and update");
    }
    let id = args.operand.clone().unwrap_or_default();
    let mut fields = args.fields.clone();
    let (method, path, body) = match args.command.as_str() {
        "status" => ("GET", "/admin/v1/status".to_owned(), None),
        "channels" => ("GET", "/admin/v1/channels".to_owned(), None),
        "channel" => ("GET", format!("/admin/v1/channels/{id}"), None),
        "create" => {
            fields.insert("channel_id".into(), Value::String(id.clone()));
            ("POST", "/admin/v1/channels".to_owned(), Some(fields))
        }
        "update" => ("PATCH", format!("/admin/v1/channels/{id}"), Some(fields)),
        "delete" => ("DELETE", format!("/admin/v1/channels/{id}"), None),
        "revoke" => (
            "POST",
            format!("/admin/v1/channels/{id}/floor/revoke"),
            None,
        ),
        "users" => ("GET", "/admin/v1/users".to_owned(), None),
        "kick" => ("DELETE", format!("/admin/v1/users/{id}"), None),
        "peers" => ("GET", "/admin/v1/peers".to_owned(), None),
        "cameras" => ("GET", "/admin/v1/cameras".to_owned(), None),
        "" => return usage("no command"),
        other => return usage(&format!("unknown command {other}")),
    };
    let body = body.map(|f| Value::Object(f).to_string());
    let answer = match target.request(method, &path, body.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lcadmin: {e} ({})", target.authority);
            return ExitCode::from(match e {
                ClientError::Unreachable(_) => exit::UNREACHABLE,
                ClientError::Protocol(_) => exit::FAILED,
            });
        }
    };
    if !(200..300).contains(&answer.status) {
        let what = match answer.status {
            401 => {
                "unauthorized: set --token or LIVECHAT_ADMIN_TOKEN (or run on the daemon's host)"
                    .to_owned()
            }
            _ => answer.error(),
        };
        if args.json && !answer.body.is_empty() {
            println!("{}", String::from_utf8_lossy(&answer.body));
        }
        eprintln!(
            "lcadmin: {} {path}: {what} (HTTP {})",
            method, answer.status
        );
        return ExitCode::from(exit::of_status(answer.status));
    }
    if args.json {
        if !answer.body.is_empty() {
            println!("{}", String::from_utf8_lossy(&answer.body));
        }
        return ExitCode::from(exit::OK);
    }
    print!("{}", human(&args.command, &id, &answer));
    ExitCode::from(exit::OK)
}

fn usage(e: &str) -> ExitCode {
    eprintln!("lcadmin: {e}\n\n{USAGE}");
    ExitCode::from(exit::USAGE)
}

/// A JSON value as a table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn rows(list: &Value, cols: &[&str], f: impl Fn(&Value, &str) -> String) -> Vec<Vec<String>> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|item| cols.iter().map(|c| f(item, c)).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn channel_cell(c: &Value, col: &str) -> String {
    match col {
        "floor" => match c["floor"]["holder"].as_str() {
            Some(h) => format!("taken by {h}"),
            None => "idle".into(),
        },
        "queue" => cell(&c["floor"]["queue"]),
        "members" => format!("{}/{}", c["member_count"], c["capacity"]),
        "who" => cell(&c["members"]),
        _ => cell(&c[col]),
    }
}

/// The answer for a human.
fn human(command: &str, id: &str, a: &Answer) -> String {
    let v = a.json();
    match command {
        "status" => {
            let mut s = format!(
                "livechatd {}  up {}s\nconnections {}  sessions {}  channels {}  peers {}\n\n",
                cell(&v["version"]),
                v["uptime_s"],
                v["connections"],
                v["sessions"],
                v["channels"],
                v["peers"]
            );
            let counters: Vec<Vec<String>> = v["counters"]
                .as_object()
                .map(|m| m.iter().map(|(k, n)| vec![k.clone(), cell(n)]).collect())
                .unwrap_or_default();
            s.push_str(&table(&["COUNTER", "VALUE"], &counters));
            s
        }
        "channels" => {
            let cols = [
                "channel_id",
                "name",
                "freq",
                "members",
                "floor",
                "queue",
                "who",
            ];
            table(
                &[
                    "CHANNEL", "NAME", "FREQ", "MEMBERS", "FLOOR", "QUEUE", "WHO",
                ],
                &rows(&v["channels"], &cols, channel_cell),
            )
        }
        "channel" | "create" | "update" | "revoke" => {
            let fields = [
                ("channel", "channel_id"),
                ("name", "name"),
                ("freq", "freq"),
                ("creator", "creator"),
                ("members", "members"),
                ("who", "who"),
                ("floor", "floor"),
                ("queue", "queue"),
            ];
            let rows: Vec<Vec<String>> = fields
                .iter()
                .map(|(label, col)| vec![(*label).to_owned(), channel_cell(&v, col)])
                .collect();
            table(&["FIELD", "VALUE"], &rows)
        }
        "delete" => format!("channel {id} deleted\n"),
        "kick" => format!("user {id} kicked\n"),
        "users" => {
            let cols = [
                "user_id",
                "session_id",
                "priority",
                "channels",
                "remote_addr",
            ];
            table(
                &["USER", "SESSION", "PRIORITY", "CHANNELS", "ADDRESS"],
                &rows(&v["users"], &cols, |u, c| cell(&u[c])),
            )
        }
        "peers" => {
            let cols = [
                "user_id",
                "channel_id",
                "ssrc",
                "kind",
                "addr",
                "packets_in",
                "packets_out",
                "drops",
            ];
            table(
                &[
                    "USER", "CHANNEL", "SSRC", "KIND", "ADDRESS", "IN", "OUT", "DROPS",
                ],
                &rows(&v["peers"], &cols, |p, c| cell(&p[c])),
            )
        }
        "cameras" => {
            let cols = ["id", "channel_id", "state", "last_error", "frames", "bytes"];
            table(
                &[
                    "CAMERA",
                    "CHANNEL",
                    "STATE",
                    "LAST ERROR",
                    "FRAMES",
                    "BYTES",
                ],
                &rows(&v["cameras"], &cols, |p, c| cell(&p[c])),
            )
        }
        _ => format!("{v}\n"),
    }
}
