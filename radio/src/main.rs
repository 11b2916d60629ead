//! `lcradio`: the reference push-to-talk radio on the command line. See `lcradio --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use livechat_radio::gateway::{WsUrl, op, op_of};
use livechat_radio::wav::{self, Encoding};
use livechat_radio::{
    Channel, Error, JoinOptions, Protection, Radio, Recorder, TalkOptions, audio, token,
};
use tokio::time::Instant;

const USAGE: &str = "\
lcradio: the reference push-to-talk radio for livechatd

Usage:
  lcradio [OPTIONS] listen [--out FILE] [--format pcmu|pcm16] [--seconds N]
  lcradio [OPTIONS] talk (--tone HZ | --wav FILE) [--seconds N] [--amplitude A]

Options:
  --url URL          gateway URL [default: ws://127.0.0.1:8080/gateway]
  --user ID          user id (1..=32 of A-Z a-z 0-9 _ . -)
  --channel ID       channel to join
  --create           create the channel first (it may already exist)
  --srtp 80|32|off   SRTP suite AES_CM_128_HMAC_SHA1_80 or _32, or plain RTP [default: 80]
  --token TOKEN      token for IDENTIFY; otherwise one is minted with --secret or
                     LIVECHAT_SECRET, or, for a loopback daemon without a secret, with none
  --secret SECRET    the daemon's LIVECHAT_SECRET, to mint a token
  --ssrc N           audio SSRC [default: random]
  --priority P       IDENTIFY and FLOOR_REQUEST priority, 0..=255
  -h, --help         this help

listen: records what the channel hears until --seconds pass or Ctrl-C; with --out, writes
        a WAV file, G.711 mu-law (format 7) or 16-bit PCM, 8 kHz mono.
talk:   takes the floor, sends a sine tone (--seconds, default 3; --amplitude 0..1, default
        0.5) or a WAV file (8 kHz mono mu-law or 16-bit PCM; --seconds cuts it) as PCMU in
        20 ms packets, then releases the floor.
";

#[derive(Debug)]
struct Args {
    url: String,
    user: String,
    channel: String,
    create: bool,
    protection: Protection,
    token: Option<String>,
    secret: Option<String>,
    ssrc: Option<u32>,
    priority: Option<u8>,
    command: Command,
}

#[derive(Debug)]
enum Command {
    Listen {
        out: Option<PathBuf>,
        format: Encoding,
        seconds: Option<f64>,
    },
    Talk {
        source: Source,
        seconds: Option<f64>,
        amplitude: f64,
    },
}

#[derive(Debug)]
enum Source {
    Tone(f64),
    Wav(PathBuf),
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("lcradio: {e}\n\nRun `lcradio --help` for usage.");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lcradio: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Usage(e)) => {
            eprintln!("lcradio: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("lcradio: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Option<Args>, String> {
    use lexopt::prelude::*;

    let mut p = lexopt::Parser::from_env();
    let mut url = "ws://127.0.0.1:8080/gateway".to_owned();
    let (mut user, mut channel) = (None, None);
    let mut create = false;
    let mut protection = Protection::from_name("80");
    let (mut token, mut secret, mut ssrc, mut priority) = (None, None, None, None);
    let mut command: Option<String> = None;
    let (mut out, mut format, mut seconds) = (None, Encoding::Pcmu, None);
    let (mut tone, mut wav_in, mut amplitude) = (None, None, 0.5);

    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("url") => url = value(&mut p, "--url")?,
            Long("user") => user = Some(value(&mut p, "--user")?),
            Long("channel") => channel = Some(value(&mut p, "--channel")?),
            Long("create") => create = true,
            Long("srtp") => {
                let v = value(&mut p, "--srtp")?;
                protection = Some(
                    Protection::from_name(&v)
                        .ok_or_else(|| format!("--srtp {v:?}: expected 80, 32 or off"))?,
                );
            }
            Long("token") => token = Some(value(&mut p, "--token")?),
            Long("secret") => secret = Some(value(&mut p, "--secret")?),
            Long("ssrc") => {
                let v = value(&mut p, "--ssrc")?;
                ssrc = Some(
                    v.parse::<u32>()
                        .map_err(|_| format!("--ssrc {v:?}: expected a number 0..=4294967295"))?,
                );
            }
            Long("priority") => {
                let v = value(&mut p, "--priority")?;
                priority = Some(
                    v.parse::<u8>()
                        .map_err(|_| format!("--priority {v:?}: expected 0..=255"))?,
                );
            }
            Long("out") => out = Some(PathBuf::from(value(&mut p, "--out")?)),
            Long("format") => {
                let v = value(&mut p, "--format")?;
                format = Encoding::from_name(&v)
                    .ok_or_else(|| format!("--format {v:?}: expected pcmu or pcm16"))?;
            }
            Long("seconds") => {
                let v = value(&mut p, "--seconds")?;
                seconds = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                        .ok_or_else(|| {
                            format!("--seconds {v:?}: expected a number of seconds, 0 < N <= 3600")
                        })?,
                );
            }
            Long("tone") => {
                let v = value(&mut p, "--tone")?;
                tone = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f > 0.0 && *f < 4000.0)
                        .ok_or_else(|| {
                            format!(
                                "--tone {v:?}: expected a frequency in Hz below 4000 (8 kHz audio)"
                            )
                        })?,
                );
            }
            Long("wav") => wav_in = Some(PathBuf::from(value(&mut p, "--wav")?)),
            Long("amplitude") => {
                let v = value(&mut p, "--amplitude")?;
                amplitude = v
                    .parse::<f64>()
                    .ok()
                    .filter(|a| *a > 0.0 && *a <= 1.0)
                    .ok_or_else(|| format!("--amplitude {v:?}: expected a number in (0, 1]"))?;
            }
            Value(v) if command.is_none() => {
                let v = v
                    .into_string()
                    .map_err(|_| "the command is not UTF-8".to_owned())?;
                if v != "listen" && v != "talk" {
                    return Err(format!("unknown command {v:?}: expected listen or talk"));
                }
                command = Some(v);
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    let protection = protection.ok_or("--srtp: no default suite")?;
    let user = user.ok_or("--user is required")?;
    let channel = channel.ok_or("--channel is required")?;
    check_id("--user", &user)?;
    check_id("--channel", &channel)?;
    let command = match command.as_deref() {
        Some("listen") => {
            if tone.is_some() || wav_in.is_some() {
                return Err("--tone and --wav are for talk".to_owned());
            }
            Command::Listen {
                out,
                format,
                seconds,
            }
        }
        Some("talk") => {
            if out.is_some() {
                return Err("--out is for listen".to_owned());
            }
            let source = match (tone, wav_in) {
                (Some(f), None) => Source::Tone(f),
                (None, Some(w)) => Source::Wav(w),
                (None, None) => return Err("talk needs --tone HZ or --wav FILE".to_owned()),
                (Some(_), Some(_)) => return Err("give --tone or --wav, not both".to_owned()),
            };
            Command::Talk {
                source,
                seconds,
                amplitude,
            }
        }
        _ => return Err("a command is required: listen or talk".to_owned()),
    };
    Ok(Some(Args {
        url,
        user,
        channel,
        create,
        protection,
        token,
        secret,
        ssrc,
        priority,
        command,
    }))
}

/// The value of option `name`, as UTF-8.
fn value(p: &mut lexopt::Parser, name: &str) -> Result<String, String> {
    p.value()
        .map_err(|_| format!("{name} needs a value"))?
        .into_string()
        .map_err(|_| format!("{name}: the value is not UTF-8"))
}

/// PROTOCOL.md ids: 1..=32 of `[A-Za-z0-9_.-]`.
fn check_id(flag: &str, id: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flag} {id:?}: expected 1 to 32 characters of A-Z a-z 0-9 _ . -"
        ))
    }
}

/// The token: given, minted with a secret, or (loopback only) minted without one.
fn resolve_token(args: &Args) -> Result<String, Error> {
    if let Some(t) = &args.token {
        return Ok(t.clone());
    }
    let env_secret = std::env::var("LIVECHAT_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    let cap = args.priority.unwrap_or(0);
    if let Some(secret) = args.secret.clone().or(env_secret) {
        return Ok(token::mint(
            Some(&secret),
            &args.user,
            token::DEFAULT_TTL_S,
            cap,
        ));
    }
    if WsUrl::parse(&args.url)?.is_loopback() {
        return Ok(token::mint(None, &args.user, token::DEFAULT_TTL_S, cap));
    }
    Err(Error::Usage(format!(
        "no token for {}: give --token, or --secret / LIVECHAT_SECRET to mint one (a token \
         without a secret only works with a loopback daemon that has none)",
        args.url
    )))
}

async fn run(args: Args) -> Result<(), Error> {
    let token = resolve_token(&args)?;
    // Read the audio before joining, so a bad file changes nothing on the server.
    let pcmu = match &args.command {
        Command::Talk {
            source,
            seconds,
            amplitude,
        } => load_audio(source, *seconds, *amplitude)?,
        Command::Listen { .. } => Vec::new(),
    };
    let radio = Radio::connect_with(&args.url, &args.user, &token, args.priority).await?;
    if args.create {
        radio.ensure_channel(&args.channel).await?;
    }
    let mut opts = JoinOptions::with(args.protection);
    opts.ssrc = args.ssrc;
    let mut ch = radio.join(&args.channel, opts).await?;
    let protection = match ch.protection() {
        Protection::Plain => "plain RTP".to_owned(),
        Protection::Srtp(s) => format!("SRTP {}", s.as_str()),
    };
    eprintln!(
        "lcradio: {} joined {} (ssrc {}, {protection}, media {} -> {})",
        args.user,
        args.channel,
        ch.ssrc(),
        ch.local_addr()?,
        ch.server_addr()
    );
    let r = match &args.command {
        Command::Listen {
            out,
            format,
            seconds,
        } => listen(&mut ch, out.as_ref(), *format, *seconds).await,
        Command::Talk { .. } => talk(&ch, &pcmu, args.priority).await,
    };
    let _ = ch.leave().await;
    radio.close();
    r
}

async fn listen(
    ch: &mut Channel,
    out: Option<&PathBuf>,
    format: Encoding,
    seconds: Option<f64>,
) -> Result<(), Error> {
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs_f64(s));
    match deadline {
        Some(_) => eprintln!("lcradio: listening for {} s", seconds.unwrap_or(0.0)),
        None => eprintln!("lcradio: listening; Ctrl-C to stop"),
    }
    let mut rec = Recorder::new();
    let mut talker: Option<u32> = None;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let until = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = ch.recv_next() => {
                let Some(r) = r else { break };
                if talker != Some(r.ssrc()) {
                    talker = Some(r.ssrc());
                    print_floor_events(ch);
                    eprintln!("lcradio: hearing ssrc {} (seq {})", r.ssrc(), r.seq());
                }
                rec.push(&r.rtp);
            }
            _ = poll.tick() => print_floor_events(ch),
            _ = until => break,
            _ = &mut ctrl_c => {
                eprintln!("lcradio: interrupted");
                break;
            }
        }
    }
    print_floor_events(ch);
    let st = ch.stats();
    eprintln!(
        "lcradio: heard {} packets, {:.2} s of audio ({} lost and filled, {} duplicate or late; \
         dropped: {} failed authentication, {} replayed, {} malformed, {} from elsewhere)",
        rec.packets(),
        rec.seconds(),
        rec.concealed(),
        rec.discarded(),
        st.auth_failed,
        st.replayed,
        st.malformed,
        st.foreign
    );
    if let Some(path) = out {
        wav::write_wav(path, rec.pcmu(), format).map_err(|e| match e {
            wav::WavError::Io(io) => Error::io(format!("writing {}", path.display()), io),
            other => Error::Wav(other),
        })?;
        eprintln!("lcradio: wrote {}", path.display());
    }
    Ok(())
}

fn print_floor_events(ch: &Channel) {
    for ev in ch.gateway().take_events() {
        let d = &ev["d"];
        if d["channel_id"] != ch.id() {
            continue;
        }
        match op_of(&ev) {
            Some(op::FLOOR_TAKEN) => {
                eprintln!(
                    "lcradio: floor taken by {}",
                    d["user_id"].as_str().unwrap_or("?")
                );
            }
            Some(op::FLOOR_IDLE) => eprintln!("lcradio: floor idle"),
            Some(op::CHANNEL_EVENT) => eprintln!(
                "lcradio: {} {}",
                d["user_id"].as_str().unwrap_or("?"),
                d["event"].as_str().unwrap_or("?")
            ),
            _ => {}
        }
    }
}

/// The audio to send, as PCMU.
fn load_audio(source: &Source, seconds: Option<f64>, amplitude: f64) -> Result<Vec<u8>, Error> {
    Ok(match source {
        Source::Tone(hz) => audio::tone_pcmu(*hz, seconds.unwrap_or(3.0), amplitude),
        Source::Wav(path) => {
            let mut a = wav::read_pcmu(path).map_err(|e| match e {
                wav::WavError::Io(io) => Error::io(format!("reading {}", path.display()), io),
                other => Error::Usage(format!("{}: {other}", path.display())),
            })?;
            if let Some(s) = seconds {
                a.truncate((s * f64::from(wav::SAMPLE_RATE)) as usize);
            }
            if a.is_empty() {
                return Err(Error::Usage(format!("{}: no audio", path.display())));
            }
            a
        }
    })
}

async fn talk(ch: &Channel, pcmu: &[u8], priority: Option<u8>) -> Result<(), Error> {
    let opts = TalkOptions {
        priority,
        ..TalkOptions::default()
    };
    eprintln!("lcradio: requesting the floor");
    let granted = ch.request_floor(priority, opts.grant_timeout).await?;
    eprintln!(
        "lcradio: floor granted (at most {} ms); talking {:.2} s",
        granted["max_duration_ms"],
        pcmu.len() as f64 / f64::from(wav::SAMPLE_RATE)
    );
    let report = tokio::select! {
        r = ch.send_audio(pcmu, &opts) => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("lcradio: interrupted; releasing the floor");
            return ch.release_floor().await;
        }
    };
    eprintln!(
        "lcradio: sent {} packets ({:.2} s), seq {}..{}",
        report.packets,
        report.packets as f64 * 0.02,
        report.first_seq,
        report.last_seq
    );
    if let Some(cause) = report.revoked {
        return Err(Error::FloorRevoked(cause));
    }
    ch.release_floor().await?;
    eprintln!("lcradio: floor released");
    Ok(())
}
