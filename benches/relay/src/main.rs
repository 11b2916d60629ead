//! `livechat-relay-bench`: the relay's throughput, latency, CPU and memory against the
//! physical limit of a raw UDP forwarder, measured in one run. See docs/performance.md
//! ("Relay") for the method and `benches/relay/run.sh` for the command.

mod forward;
mod load;
mod setup;
mod sys;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use livechat_radio::Gateway;

use crate::load::{Listeners, Step, Talker};
use crate::setup::{Daemon, Membership};

/// Loss allowed at a "sustained" rate.
const MAX_LOSS: f64 = 0.001;
/// Listener receive buffer asked for (the kernel doubles it): small, so the sockets fill
/// at once and every further copy is counted as a drop at no cost to the benchmark.
const LISTENER_RCVBUF: usize = 4096;
/// Receive buffer of the latency probe socket: it is read, and must not drop.
const PROBE_RCVBUF: usize = 8 << 20;
/// Re-latch listeners this often (the daemon forgets a latch idle for 30 s).
const KEEPALIVE: Duration = Duration::from_secs(8);

struct Opts {
    daemon: String,
    /// The C forwarder (benches/relay/forward.c), searched beside the Rust ones.
    c_forwarder: Option<String>,
    alloc_daemon: Option<String>,
    cpu_subject: usize,
    cpu_load: usize,
    secs: f64,
    /// Searches per subject and fan-out, interleaved; the best counts.
    rounds: usize,
    fanouts: Vec<usize>,
    doc: Option<String>,
    ptt: bool,
    ptt_secs: f64,
    /// Profiling aid: after setup, one subject (the relay with SRTP or plain, or the
    /// `mmsg` raw forwarder) at the first fan-out at this rate for so many seconds, then exit.
    hold: Option<(f64, f64, Subject)>,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        daemon: "target/release/livechatd".into(),
        c_forwarder: None,
        alloc_daemon: None,
        cpu_subject: 1,
        cpu_load: 0,
        secs: 1.0,
        rounds: 3,
        fanouts: vec![1, 10, 50],
        doc: Some("docs/performance.md".into()),
        ptt: true,
        ptt_secs: 5.0,
        hold: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a}: missing value"));
        match a.as_str() {
            "--daemon" => o.daemon = val()?,
            "--alloc-daemon" => o.alloc_daemon = Some(val()?),
            "--c-forwarder" => o.c_forwarder = Some(val()?),
            "--cpu-subject" => o.cpu_subject = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--cpu-load" => o.cpu_load = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--secs" => o.secs = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--rounds" => o.rounds = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--ptt-secs" => o.ptt_secs = val()?.parse().map_err(|e| format!("{a}: {e}"))?,
            "--fanouts" => {
                o.fanouts = val()?
                    .split(',')
                    .map(|f| f.parse().map_err(|e| format!("{a}: {e}")))
                    .collect::<Result<_, String>>()?
            }
            "--doc" => {
                let v = val()?;
                o.doc = (v != "-").then_some(v);
            }
            "--no-ptt" => o.ptt = false,
            "--hold" => {
                // RATE,SECS[,srtp|plain|raw|c]
                let v = val()?;
                let f: Vec<&str> = v.split(',').collect();
                let num = |i: usize| -> Result<f64, String> {
                    f.get(i)
                        .and_then(|x| x.parse().ok())
                        .ok_or(format!("{a}: RATE,SECS[,srtp|plain|raw|c]"))
                };
                let kind = match f.get(2).copied() {
                    None | Some("srtp") => Subject::Relay(true),
                    Some("plain") => Subject::Relay(false),
                    Some("raw") => Subject::Raw("mmsg"),
                    Some("c") => Subject::Raw(C_MMSG),
                    Some(k) => return Err(format!("{a}: unknown subject {k}")),
                };
                let secs = num(1)?;
                if !(0.0..=120.0).contains(&secs) {
                    return Err(format!("{a}: at most 120 s"));
                }
                o.hold = Some((num(0)?, secs, kind));
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if o.secs <= 0.0 || o.secs > 10.0 || o.ptt_secs <= 0.0 || o.ptt_secs > 60.0 {
        return Err("--secs must be in (0, 10], --ptt-secs in (0, 60]".into());
    }
    if !(1..=10).contains(&o.rounds) {
        return Err("--rounds must be in [1, 10]".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = if args.first().map(String::as_str) == Some("forward") {
        forward::main(args.get(1..).unwrap_or_default())
    } else {
        parse_opts(&args).and_then(|o| run(&o))
    };
    if let Err(e) = r {
        eprintln!("livechat-relay-bench: {e}");
        std::process::exit(1);
    }
}

/// One fan-out case set up on a daemon: the talker and its listeners.
struct Case {
    fanout: usize,
    srtp: bool,
    talker: Talker,
    /// The talker's twin for the raw forwarders: same packets, its own SRTP context, so
    /// the packets it sends do not move the daemon's view of the talker's stream.
    twin: Talker,
    listeners: Listeners,
    latches: Vec<Membership>,
}

struct World {
    /// Runs the sessions' background tasks (heartbeats) while the load runs.
    _rt: tokio::runtime::Runtime,
    sessions: Vec<Gateway>,
    udp: SocketAddr,
    last_keepalive: Instant,
}

impl World {
    fn keepalive(&mut self, cases: &mut [Case], force: bool) {
        if !force && self.last_keepalive.elapsed() < KEEPALIVE {
            return;
        }
        for c in cases.iter_mut() {
            for (s, m) in c.listeners.socks.iter().zip(c.latches.iter_mut()) {
                let _ = setup::latch(s, m, self.udp);
            }
        }
        self.last_keepalive = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// Sets up `fanouts` x {SRTP, plain} on `d`: one talker session holding every floor, and
/// listener session `i` joined to every channel with more than `i` listeners.
fn setup_cases(d: &Daemon, fanouts: &[usize]) -> Result<(World, Vec<Case>), String> {
    let rt = runtime()?;
    let url = d.url();
    let udp = d.udp;
    let (sessions, cases) = rt.block_on(async {
        let mut sessions = Vec::new();
        let talker = setup::session(&url, "talker").await?;
        let max = fanouts.iter().copied().max().unwrap_or(0);
        for i in 0..max {
            sessions.push(setup::session(&url, &format!("l{i}")).await?);
        }
        let mut ssrc = 0x1000u32;
        let mut cases = Vec::new();
        for &f in fanouts {
            for srtp in [true, false] {
                let ch = format!("f{f}-{}", if srtp { "srtp" } else { "plain" });
                setup::create(&talker, &ch).await?;
                ssrc += 1;
                let tm = setup::join(&talker, &ch, ssrc, srtp).await?;
                let mut socks = Vec::new();
                let mut latches = Vec::new();
                for gw in sessions.iter().take(f) {
                    ssrc += 1;
                    let mut m = setup::join(gw, &ch, ssrc, srtp).await?;
                    let s = sys::udp_socket(Some(LISTENER_RCVBUF)).map_err(|e| e.to_string())?;
                    setup::latch(&s, &mut m, udp)?;
                    socks.push(s);
                    latches.push(m);
                }
                setup::take_floor(&talker, &ch).await?;
                let ts = sys::udp_socket(None).map_err(|e| e.to_string())?;
                let twin = sys::udp_socket(None).map_err(|e| e.to_string())?;
                let twin_ctx = srtp.then(|| setup::context_for(tm.ssrc));
                cases.push(Case {
                    fanout: f,
                    srtp,
                    talker: Talker::new(ts, tm.ssrc, tm.send),
                    twin: Talker::new(twin, tm.ssrc, twin_ctx),
                    listeners: Listeners::new(socks),
                    latches,
                });
            }
        }
        sessions.push(talker);
        Ok::<_, String>((sessions, cases))
    })?;
    let mut w = World {
        _rt: rt,
        sessions,
        udp,
        last_keepalive: Instant::now(),
    };
    let mut cases = cases;
    // Every listener latched and every floor held: a short light step proves it (a listener
    // not latched would lose all its copies, 1/fan-out of the total).
    std::thread::sleep(Duration::from_millis(100));
    for c in cases.iter_mut() {
        let s = load::step(&mut c.talker, udp, &c.listeners, d.pid(), 500.0, 0.2);
        if s.loss() > 0.5 / c.fanout as f64 {
            return Err(format!(
                "setup check: fan-out {} {} lost {} of {} copies at 2000 packets/s",
                c.fanout,
                if c.srtp { "SRTP" } else { "plain" },
                s.expected - s.delivered,
                s.expected
            ));
        }
    }
    w.keepalive(&mut cases, true);
    Ok((w, cases))
}

/// Every talker sends `pps` packets/s to `dst` for `secs`, the talkers spread evenly over
/// the period (sleeping when none is due, as a gateway's clients would be spread); the
/// probe socket is read for latency, the others counted. `fanout` copies are expected
/// per packet sent (the probe's and the counted ones).
#[allow(clippy::too_many_arguments)]
fn paced(
    talkers: &mut [Talker],
    dst: SocketAddr,
    probe_sock: &std::net::UdpSocket,
    counted: &Listeners,
    fanout: usize,
    pid: u32,
    (pps, secs): (f64, f64),
    cpu: usize,
) -> Result<(Step, Vec<i64>), String> {
    let probe = load::Probe::start(probe_sock.try_clone().map_err(|e| e.to_string())?, cpu);
    let mark = counted.mark(dst.port());
    let cpu0 = sys::cpu_seconds(pid);
    let period = 1.0 / pps;
    let n = talkers.len().max(1) as f64;
    let start = Instant::now();
    let mut next: Vec<f64> = (0..talkers.len()).map(|c| c as f64 * period / n).collect();
    let mut sent = 0u64;
    let mut buf = [0u8; 256];
    while start.elapsed().as_secs_f64() < secs {
        let now = start.elapsed().as_secs_f64();
        let mut any = false;
        for (t, n) in talkers.iter_mut().zip(next.iter_mut()) {
            if *n <= now {
                let len = t.build(&mut buf);
                if t.sock.send_to(&buf[..len], dst).is_ok() {
                    sent += 1;
                }
                *n += period;
                any = true;
            }
        }
        if !any {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(50));
    let cpu = sys::cpu_seconds(pid) - cpu0;
    let samples = probe.finish();
    let (unread, _) = counted.delivered(dst.port(), &mark);
    let step = Step {
        sent,
        delivered: unread + samples.len() as u64,
        expected: sent * fanout as u64,
        secs: elapsed,
        cpu,
    };
    Ok((step, samples))
}

/// p50, p99 and max latency in µs, the step, and how many copies were timed.
type Timed = ((f64, f64, f64), Step, usize);

/// A 3 s step at `rate` with the first listener read for latency (send to kernel receive):
/// p50, p99 and max in µs, and the step.
fn timed_step(
    talker: &mut Talker,
    dst: SocketAddr,
    listeners: &Listeners,
    pid: u32,
    rate: f64,
    cpu: usize,
) -> Result<Timed, String> {
    let probe_sock = listeners.socks[0].try_clone().map_err(|e| e.to_string())?;
    sys::set_rcvbuf(&probe_sock, PROBE_RCVBUF).map_err(|e| e.to_string())?;
    let probe = load::Probe::start(probe_sock, cpu);
    std::thread::sleep(Duration::from_millis(50));
    let mut s = load::step(talker, dst, listeners, pid, rate, 3.0);
    let samples = probe.finish();
    let n = samples.len();
    s.delivered += n as u64;
    sys::set_rcvbuf(&listeners.socks[0], LISTENER_RCVBUF).map_err(|e| e.to_string())?;
    let p = load::percentiles(samples).ok_or("latency probe: nothing received")?;
    Ok((p, s, n))
}

/// The mode name of the C forwarder among the raw ones.
const C_MMSG: &str = "C mmsg";

/// What a search measures.
#[derive(Clone, Copy, PartialEq)]
enum Subject {
    /// The raw forwarder in this mode (`sendto` or `mmsg`, or [`C_MMSG`] for forward.c).
    Raw(&'static str),
    /// The daemon's relay, SRTP (true) or plain.
    Relay(bool),
}

impl Subject {
    fn name(self) -> String {
        match self {
            Subject::Raw(m) => format!("raw {m:6}"),
            Subject::Relay(true) => "relay SRTP ".into(),
            Subject::Relay(false) => "relay plain".into(),
        }
    }

    fn label(self) -> String {
        match self {
            Subject::Raw(m) => format!("raw forwarder, {m}"),
            Subject::Relay(true) => "livechatd relay, SRTP".into(),
            Subject::Relay(false) => "livechatd relay, plain".into(),
        }
    }
}

/// One search for `subject`'s sustained rate at fan-out `f`. The raw forwarders get the
/// SRTP case's listeners and are fed by its talker's twin.
fn measure(
    w: &mut World,
    cases: &mut [Case],
    d: &Daemon,
    subject: Subject,
    f: usize,
    o: &Opts,
) -> Result<(Step, bool), String> {
    let srtp = !matches!(subject, Subject::Relay(false));
    let ci = cases
        .iter()
        .position(|c| c.fanout == f && c.srtp == srtp)
        .ok_or_else(|| format!("no case for fan-out {f}"))?;
    let r = match subject {
        Subject::Raw(mode) => {
            let c = &mut cases[ci];
            let fw = Forwarder::start(o, mode, &c.listeners.addrs())?;
            std::thread::sleep(Duration::from_millis(50));
            let pid = fw.child.id();
            load::search(&mut c.twin, fw.addr, &c.listeners, pid, o.secs, MAX_LOSS)
        }
        Subject::Relay(_) => {
            let c = &mut cases[ci];
            load::search(
                &mut c.talker,
                w.udp,
                &c.listeners,
                d.pid(),
                o.secs,
                MAX_LOSS,
            )
        }
    };
    w.keepalive(cases, false);
    Ok(r)
}

/// A raw forwarder child process, pinned like the daemon.
struct Forwarder {
    child: Child,
    addr: SocketAddr,
}

impl Forwarder {
    fn start(o: &Opts, mode: &str, dests: &[SocketAddr]) -> Result<Forwarder, String> {
        let mut cmd = if mode == C_MMSG {
            Command::new(o.c_forwarder.as_deref().ok_or("no --c-forwarder given")?)
        } else {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut cmd = Command::new(exe);
            cmd.arg("forward").arg(mode);
            cmd
        };
        cmd.arg("300");
        for d in dests {
            cmd.arg(d.to_string());
        }
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        sys::pin_child(&mut cmd, o.cpu_subject);
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port: u16 = line
            .trim()
            .strip_prefix("port=")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("forwarder said {line:?}"))?;
        Ok(Forwarder {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One measured subject at one fan-out.
struct Row {
    subject: String,
    fanout: usize,
    m: Summary,
}

/// A subject's searches at one fan-out, summarized.
struct Summary {
    /// The median sustained search's step (the lower middle for an even count), or the
    /// best unsustained one when none was sustained.
    step: Step,
    /// Searches that found a sustained rate, of `rounds`.
    sustained: usize,
    rounds: usize,
    /// Lowest and highest sustained output rate.
    range: (f64, f64),
}

impl Summary {
    fn of(runs: &[(Step, bool)]) -> Option<Summary> {
        let mut ok: Vec<Step> = runs.iter().filter(|r| r.1).map(|r| r.0).collect();
        ok.sort_by(|a, b| a.out_pps().total_cmp(&b.out_pps()));
        let range = (
            ok.first().map_or(0.0, Step::out_pps),
            ok.last().map_or(0.0, Step::out_pps),
        );
        let step = match ok.get(ok.len().saturating_sub(1) / 2) {
            Some(s) => *s,
            None => runs
                .iter()
                .map(|r| r.0)
                .max_by(|a, b| a.out_pps().total_cmp(&b.out_pps()))?,
        };
        Some(Summary {
            step,
            sustained: ok.len(),
            rounds: runs.len(),
            range,
        })
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.3} M", r / 1e6)
    } else {
        format!("{:.1} k", r / 1e3)
    }
}

fn run(o: &Opts) -> Result<(), String> {
    sys::pin_self(o.cpu_load).map_err(|e| format!("pinning to CPU {}: {e}", o.cpu_load))?;
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    eprintln!("starting {} on CPU {}", o.daemon, o.cpu_subject);
    let d = Daemon::start(&o.daemon, o.cpu_subject, &[])?;
    let (mut w, mut cases) = setup_cases(&d, &o.fanouts)?;
    eprintln!(
        "set up {} sessions, {} channels in {:.1} s",
        w.sessions.len(),
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some((rate, secs, kind)) = o.hold {
        let srtp = !matches!(kind, Subject::Relay(false));
        let c = cases
            .iter_mut()
            .find(|c| c.srtp == srtp)
            .ok_or("no case to hold")?;
        let s = if let Subject::Raw(mode) = kind {
            let fw = Forwarder::start(o, mode, &c.listeners.addrs())?;
            std::thread::sleep(Duration::from_millis(50));
            let pid = fw.child.id();
            eprintln!("holding: raw forwarder pid {pid} at {rate}/s for {secs} s");
            load::step(&mut c.twin, fw.addr, &c.listeners, pid, rate, secs)
        } else {
            eprintln!("holding: pid {} at {rate}/s for {secs} s", d.pid());
            load::step(&mut c.talker, w.udp, &c.listeners, d.pid(), rate, secs)
        };
        eprintln!(
            "held: in {:.0}/s out {:.0}/s loss {:.4} % cpu {:.3} s",
            s.in_pps(),
            s.out_pps(),
            s.loss() * 100.0,
            s.cpu
        );
        return Ok(());
    }
    let listener_buf = cases
        .first()
        .and_then(|c| c.listeners.socks.first())
        .map_or(0, sys::rcvbuf);
    let mut relay_cpu = (0.0f64, 0u64, 0u64); // cpu s, out datagrams, in datagrams
    let mut ratio10 = None;
    let mut subjects = vec![Subject::Raw("sendto"), Subject::Raw("mmsg")];
    if o.c_forwarder.is_some() {
        subjects.push(Subject::Raw(C_MMSG));
    }
    subjects.extend([Subject::Relay(true), Subject::Relay(false)]);
    for &f in &o.fanouts {
        // Every subject is searched once per round, the rounds interleaved, and the median
        // of its sustained rates counts: this machine's speed drifts by several per cent
        // from one minute to the next (a virtual machine's neighbours), and neither one
        // lucky nor one unlucky search should decide a ratio.
        let mut runs: Vec<Vec<(Step, bool)>> = vec![Vec::new(); subjects.len()];
        for round in 0..o.rounds {
            for (subject, runs) in subjects.iter().zip(runs.iter_mut()) {
                let (s, ok) = measure(&mut w, &mut cases, &d, *subject, f, o)?;
                eprintln!(
                    "round {} {} fan-out {f:2}: {} out/s, loss {:.4}%{}",
                    round + 1,
                    subject.name(),
                    fmt_rate(s.out_pps()),
                    s.loss() * 100.0,
                    if ok { "" } else { " (not sustained)" }
                );
                runs.push((s, ok));
            }
        }
        let summary: Vec<Option<Summary>> = runs.iter().map(|r| Summary::of(r)).collect();
        let best_raw = subjects
            .iter()
            .zip(&summary)
            .filter(|(s, _)| matches!(s, Subject::Raw(_)))
            .filter_map(|(_, m)| m.as_ref().map(|m| m.step.out_pps()))
            .fold(0.0f64, f64::max);
        for (subject, m) in subjects.iter().zip(summary) {
            let Some(m) = m else { continue };
            let s = m.step;
            if let Subject::Relay(srtp) = *subject {
                relay_cpu.0 += s.cpu;
                relay_cpu.1 += s.delivered;
                relay_cpu.2 += s.sent;
                if f == 10 && srtp {
                    ratio10 = Some((s.out_pps() / best_raw, s.out_pps(), best_raw, s.in_pps()));
                }
                eprintln!(
                    "median {} fan-out {f:2}: {} out/s, ratio {:.3}",
                    subject.name(),
                    fmt_rate(s.out_pps()),
                    s.out_pps() / best_raw
                );
            }
            rows.push(Row {
                subject: subject.label(),
                fanout: f,
                m,
            });
        }
    }
    // Latency at 80 % of the sustained SRTP fan-out 10 rate, read at one listener; then
    // the raw forwarder at the same rate to the same listener, for the latency the relay adds.
    let mut lat80 = Vec::new();
    if let (Some((_, _, _, in_pps)), Some(ci)) =
        (ratio10, cases.iter().position(|c| c.fanout == 10 && c.srtp))
    {
        let rate = in_pps * 0.8;
        let c = &mut cases[ci];
        let s = timed_step(
            &mut c.talker,
            w.udp,
            &c.listeners,
            d.pid(),
            rate,
            o.cpu_load,
        )?;
        lat80.push(("livechatd relay, SRTP", s, rate));
        let fw = Forwarder::start(o, "mmsg", &c.listeners.addrs())?;
        std::thread::sleep(Duration::from_millis(50));
        let s = timed_step(
            &mut c.twin,
            fw.addr,
            &c.listeners,
            fw.child.id(),
            rate,
            o.cpu_load,
        )?;
        drop(fw);
        lat80.push(("raw forwarder, mmsg", s, rate));
        eprintln!("latency at 80%: {lat80:?}");
    }
    let (rss, hwm) = sys::rss_kib(d.pid());
    let stats_peers = cases.iter().map(|c| c.fanout + 1).sum::<usize>();
    drop(cases);
    w.sessions.clear();
    drop(w);
    let _ = d.stop();

    let ptt = if o.ptt { Some(ptt_run(o)?) } else { None };
    let alloc = match &o.alloc_daemon {
        Some(path) => Some(alloc_run(o, path)?),
        None => None,
    };

    // The report.
    let mut md = String::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let _ = writeln!(
        md,
        "Run: {date}, host `{}`, kernel {}, {} CPUs; subject (daemon or forwarder) pinned to CPU {}, load generator to CPU {}; steps of {} s; listener SO_RCVBUF {} bytes; load average at the end: {}.\n",
        host.trim(),
        kernel.trim(),
        sys::online_cpus(),
        o.cpu_subject,
        o.cpu_load,
        o.secs,
        listener_buf,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        md,
        "| subject | fan-out | in pkt/s | out datagrams/s (median) | range over the rounds | loss | x raw | CPU s / M out | sustained |\n|---|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for f in &o.fanouts {
        let best_raw = rows
            .iter()
            .filter(|r| r.fanout == *f && r.subject.starts_with("raw"))
            .map(|r| r.m.step.out_pps())
            .fold(0.0, f64::max);
        for r in rows.iter().filter(|r| r.fanout == *f) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | **{}** | {} | {:.3} % | {:.3} | {:.3} | {} |",
                r.subject,
                r.fanout,
                fmt_rate(r.m.step.in_pps()),
                fmt_rate(r.m.step.out_pps()),
                if r.m.sustained > 0 {
                    format!("{} - {}", fmt_rate(r.m.range.0), fmt_rate(r.m.range.1))
                } else {
                    "-".into()
                },
                r.m.step.loss() * 100.0,
                r.m.step.out_pps() / best_raw,
                r.m.step.cpu / (r.m.step.delivered.max(1) as f64) * 1e6,
                if r.m.sustained > 0 {
                    format!("{} of {}", r.m.sustained, r.m.rounds)
                } else {
                    "no: probe at full speed".into()
                }
            );
        }
    }
    // The Rust recvmmsg/sendmmsg forwarder against the same loop in C, at fan-out 10: the
    // raw limit above is only a limit if the language of the forwarder costs nothing.
    let rate_of = |mode: &'static str| {
        let label = Subject::Raw(mode).label();
        rows.iter()
            .find(|r| r.fanout == 10 && r.subject == label)
            .map(|r| r.m.step.out_pps())
    };
    if let (Some(rust), Some(c)) = (rate_of("mmsg"), rate_of(C_MMSG)) {
        notes.push(format!(
            "Raw forwarder at fan-out 10, Rust against C (benches/relay/forward.c, same loop, same run): {} against {}, {:.2}",
            fmt_rate(rust),
            fmt_rate(c),
            rust / c
        ));
    }
    let _ = writeln!(md);
    if !notes.is_empty() {
        let _ = writeln!(md, "{}\n", notes.join("; "));
    }
    let _ = writeln!(
        md,
        "Daemon CPU over all the relay's sustained steps: {:.3} s per million output datagrams, {:.3} s per million input packets. RSS with {} peers: {} KiB (peak {} KiB).\n",
        relay_cpu.0 / relay_cpu.1.max(1) as f64 * 1e6,
        relay_cpu.0 / relay_cpu.2.max(1) as f64 * 1e6,
        stats_peers,
        rss,
        hwm
    );
    let _ = writeln!(
        md,
        "| latency (send to kernel receive at a listener) | load | timed copies | loss | p50 | p99 | max |\n|---|---|---:|---:|---:|---:|---:|"
    );
    if let Some(p) = &ptt {
        let _ = writeln!(
            md,
            "| PTT: 100 channels x (1 talker + 10 listeners), SRTP, 50 pkt/s per talker | {} in, {} out | {} | {:.3} % | {:.0} µs | {:.0} µs | {:.0} µs |",
            fmt_rate(p.step.in_pps()),
            fmt_rate(p.step.out_pps()),
            p.samples,
            p.step.loss() * 100.0,
            p.lat.0,
            p.lat.1,
            p.lat.2
        );
        let (lat, s, n) = &p.raw;
        let _ = writeln!(
            md,
            "| the same load through the raw forwarder, mmsg (100 streams paced alike, fan-out 10) | {} in, {} out | {} | {:.3} % | {:.0} µs | {:.0} µs | {:.0} µs |",
            fmt_rate(s.in_pps()),
            fmt_rate(s.out_pps()),
            n,
            s.loss() * 100.0,
            lat.0,
            lat.1,
            lat.2
        );
    }
    for (who, ((p50, p99, max), s, n), rate) in &lat80 {
        let _ = writeln!(
            md,
            "| 80 % of the sustained SRTP fan-out 10 rate: {who} | {} in, {} out | {} | {:.3} % | {:.0} µs | {:.0} µs | {:.0} µs |",
            fmt_rate(*rate),
            fmt_rate(s.out_pps()),
            n,
            s.loss() * 100.0,
            p50,
            p99,
            max
        );
    }
    if let Some(p) = &ptt {
        let _ = writeln!(
            md,
            "\nPTT load: daemon CPU {:.3} s per million output datagrams; RSS with 1100 peers {} KiB (peak {} KiB).",
            p.cpu_per_m_out, p.rss.0, p.rss.1
        );
    }
    if let Some(a) = &alloc {
        let _ = writeln!(md, "\nAllocations (`alloc-count` build): {a}");
    }
    print!("{md}");
    if let Some(path) = &o.doc {
        write_doc(path, &md)?;
        eprintln!("wrote the table into {path}");
    }
    match ratio10 {
        Some((r, out, raw, _)) => {
            println!("relay fanout=10 srtp ratio={r:.3} out_pps={out:.0} raw_pps={raw:.0}")
        }
        None => println!("relay fanout=10 srtp ratio=n/a out_pps=0 raw_pps=0"),
    }
    Ok(())
}

const BEGIN: &str = "<!-- relay-bench:begin -->";
const END: &str = "<!-- relay-bench:end -->";

/// Replaces the text between the markers in the "Relay" section (appending the markers
/// when the file has none).
fn write_doc(path: &str, md: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{md}{END}");
    let out = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if e > b => format!("{}{block}{}", &text[..b], &text[e + END.len()..]),
        _ => format!("{}\n## Relay\n\n{block}\n", text.trim_end()),
    };
    std::fs::write(path, out).map_err(|e| format!("{path}: {e}"))
}

struct Ptt {
    step: Step,
    samples: usize,
    lat: (f64, f64, f64),
    /// The raw forwarder at the same input rate and fan-out (one stream, paced alike).
    raw: Timed,
    cpu_per_m_out: f64,
    rss: (u64, u64),
}

/// 100 channels of 1 talker + 10 listeners (1100 peers; the compiled maximum is 1536),
/// SRTP, each talker at 50 packets/s; the first listener of every channel is latched at one
/// shared probe socket that is read for latency, the others are counted.
fn ptt_run(o: &Opts) -> Result<Ptt, String> {
    const CHANNELS: usize = 100;
    const LISTENERS: usize = 10;
    const PPS: f64 = 50.0;
    let d = Daemon::start(&o.daemon, o.cpu_subject, &[])?;
    let rt = runtime()?;
    let url = d.url();
    let udp = d.udp;
    let probe_sock = sys::udp_socket(Some(PROBE_RCVBUF)).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (sessions, mut talkers, socks, mut latches, mut probe_latches) = rt.block_on(async {
        let mut talkers_gw = Vec::new();
        for t in 0..10 {
            talkers_gw.push(setup::session(&url, &format!("t{t}")).await?);
        }
        let mut listeners_gw = Vec::new();
        for l in 0..10 * LISTENERS {
            listeners_gw.push(setup::session(&url, &format!("p{l}")).await?);
        }
        let mut ssrc = 0x10_0000u32;
        let mut talkers = Vec::new();
        let mut socks = Vec::new();
        let mut latches = Vec::new();
        let mut probe_latches = Vec::new();
        for c in 0..CHANNELS {
            let ch = format!("ptt{c}");
            let tgw = &talkers_gw[c / 10];
            setup::create(tgw, &ch).await?;
            ssrc += 1;
            let tm = setup::join(tgw, &ch, ssrc, true).await?;
            for j in 0..LISTENERS {
                let gw = &listeners_gw[(c % 10) * LISTENERS + j];
                ssrc += 1;
                let mut m = setup::join(gw, &ch, ssrc, true).await?;
                if j == 0 {
                    setup::latch(&probe_sock, &mut m, udp)?;
                    probe_latches.push(m);
                } else {
                    let s = sys::udp_socket(Some(LISTENER_RCVBUF)).map_err(|e| e.to_string())?;
                    setup::latch(&s, &mut m, udp)?;
                    socks.push(s);
                    latches.push(m);
                }
            }
            setup::take_floor(tgw, &ch).await?;
            let ts = sys::udp_socket(None).map_err(|e| e.to_string())?;
            talkers.push(Talker::new(ts, tm.ssrc, tm.send));
        }
        talkers_gw.extend(listeners_gw);
        Ok::<_, String>((talkers_gw, talkers, socks, latches, probe_latches))
    })?;
    eprintln!(
        "PTT: set up {} sessions, {CHANNELS} channels in {:.1} s",
        sessions.len(),
        t0.elapsed().as_secs_f64()
    );
    let listeners = Listeners::new(socks);
    // Re-latch everything once more right before the run (setup took a while).
    for (s, m) in listeners.socks.iter().zip(latches.iter_mut()) {
        setup::latch(s, m, udp)?;
    }
    for m in probe_latches.iter_mut() {
        setup::latch(&probe_sock, m, udp)?;
    }
    std::thread::sleep(Duration::from_millis(100));
    let (step, samples) = paced(
        &mut talkers,
        udp,
        &probe_sock,
        &listeners,
        LISTENERS,
        d.pid(),
        (PPS, o.ptt_secs),
        o.cpu_load,
    )?;
    let rss = sys::rss_kib(d.pid());
    let n = samples.len();
    let lat = load::percentiles(samples).ok_or("PTT: the probe received nothing")?;
    eprintln!(
        "PTT: {} in/s, loss {:.4}%, latency p50/p99/max {lat:?} µs",
        fmt_rate(step.in_pps()),
        step.loss() * 100.0
    );
    drop(sessions);
    drop(rt);
    let _ = d.stop();
    // The baseline: the raw forwarder at the same load, paced alike (100 talkers at 50
    // packets/s each), to the probe socket and 8 of the counted listeners (the same
    // fan-out of 9), for the latency the relay adds.
    let counted = Listeners::new(
        listeners
            .socks
            .iter()
            .take(LISTENERS - 1)
            .map(|l| l.try_clone().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
    );
    let mut dests = vec![probe_sock.local_addr().map_err(|e| e.to_string())?];
    dests.extend(counted.addrs());
    let fw = Forwarder::start(o, "mmsg", &dests)?;
    std::thread::sleep(Duration::from_millis(50));
    let mut plain = Vec::new();
    for t in &talkers {
        plain.push(Talker::new(
            sys::udp_socket(None).map_err(|e| e.to_string())?,
            t.ssrc,
            None,
        ));
    }
    let (s, samples) = paced(
        &mut plain,
        fw.addr,
        &probe_sock,
        &counted,
        LISTENERS,
        fw.child.id(),
        (PPS, o.ptt_secs),
        o.cpu_load,
    )?;
    drop(fw);
    let n_raw = samples.len();
    let raw = (
        load::percentiles(samples).ok_or("PTT baseline: the probe received nothing")?,
        s,
        n_raw,
    );
    eprintln!("PTT baseline, raw forwarder: {raw:?}");
    Ok(Ptt {
        step,
        samples: n,
        lat,
        raw,
        cpu_per_m_out: step.cpu / (step.delivered.max(1) as f64) * 1e6,
        rss,
    })
}

/// Runs fan-out 10 (SRTP, then plain) for 2 s each against the `alloc-count` build and
/// returns its report line.
fn alloc_run(o: &Opts, path: &str) -> Result<String, String> {
    let d = Daemon::start(path, o.cpu_subject, &[])?;
    let (w, mut cases) = setup_cases(&d, &[10])?;
    let mut sent = 0;
    for c in cases.iter_mut() {
        let s = load::step(&mut c.talker, w.udp, &c.listeners, d.pid(), 20_000.0, 2.0);
        sent += s.sent;
    }
    drop(cases);
    drop(w);
    let log = d.stop();
    let line = log
        .iter()
        .find_map(|l| l.split_once("alloc-count: ").map(|(_, r)| r.to_owned()))
        .ok_or_else(|| {
            format!(
                "{path}: no `alloc-count:` line at exit (built without --features alloc-count?)"
            )
        })?;
    eprintln!("alloc-count: {line}");
    Ok(format!(
        "{sent} talker packets at fan-out 10 (SRTP and plain, 20 k/s, after the setup's own traffic): {line}."
    ))
}
