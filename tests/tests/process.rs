//! The process: the `token` and `check-config` subcommands, bad settings, the no-secret
//! policy, and SIGTERM/SIGINT (PROTOCOL.md sections 1 "Tokens" and 5).

use std::time::{Duration, Instant};

use livechat_tests::token::{now_unix, parse, verify};
use livechat_tests::*;

const EXIT_WITHIN: Duration = Duration::from_secs(10);

fn token_line(out: &RunOutput) -> String {
    assert!(
        out.status.success(),
        "`livechatd token` must exit 0, got {}: {}",
        out.status,
        out.all()
    );
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "`livechatd token` prints the token alone on stdout: {}",
        out.all()
    );
    lines[0].trim().to_owned()
}

#[tokio::test]
async fn token_subcommand_prints_a_token_that_verifies_and_identifies() {
    let secret = "process-test-secret";
    let out = run(
        &["token", "alice", "--ttl", "600", "--priority", "7"],
        &[("LIVECHAT_SECRET", secret)],
        EXIT_WITHIN,
    )
    .await;
    let t = token_line(&out);
    let p = verify(secret, "alice", &t)
        .unwrap_or_else(|e| panic!("`livechatd token` output {t:?} does not verify: {e}"));
    assert_eq!(p.priority_cap, 7, "--priority 7: {t}");
    let now = now_unix();
    assert!(
        p.expiry_unix_s >= now + 590 && p.expiry_unix_s <= now + 610,
        "--ttl 600 gives an expiry ~now+600, got {} (now {now})",
        p.expiry_unix_s
    );
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "the secret must not be printed: {}",
        out.all()
    );

    // It works for IDENTIFY against a daemon with the same secret, and only as alice.
    let d = Daemon::builder().secret(secret).start().await;
    let mut m = Client::connect(&d, "mallory").await;
    let f = m
        .identify_raw(json!({"user_id": "mallory", "token": t}))
        .await;
    m.check_error(
        &f,
        Some(op::IDENTIFY),
        code::INVALID_TOKEN,
        "alice's token as mallory",
    );
    let mut a = Client::connect(&d, "conn-a").await;
    a.identify_token("alice", &t).await;

    // And not against a daemon with another secret.
    let other = Daemon::builder().secret("another-secret").start().await;
    let mut o = Client::connect(&other, "conn-o").await;
    let f = o
        .identify_raw(json!({"user_id": "alice", "token": t}))
        .await;
    o.check_error(
        &f,
        Some(op::IDENTIFY),
        code::INVALID_TOKEN,
        "token from another secret",
    );
}

#[tokio::test]
async fn token_subcommand_defaults_and_secret_flag() {
    let out = run(
        &["token", "bob", "--secret", "flag-secret"],
        &[],
        EXIT_WITHIN,
    )
    .await;
    let t = token_line(&out);
    let p = verify("flag-secret", "bob", &t)
        .unwrap_or_else(|e| panic!("token made with --secret {t:?} does not verify: {e}"));
    assert_eq!(p.priority_cap, 0, "default priority cap is 0: {t}");
    let now = now_unix();
    assert!(
        p.expiry_unix_s >= now + 86_390 && p.expiry_unix_s <= now + 86_410,
        "default ttl is 86400 s, got expiry {} (now {now})",
        p.expiry_unix_s
    );
    // The flag wins over the environment (precedence: flag, environment, file, default).
    let out = run(
        &["token", "bob", "--secret", "flag-secret"],
        &[("LIVECHAT_SECRET", "env-secret")],
        EXIT_WITHIN,
    )
    .await;
    let t = token_line(&out);
    verify("flag-secret", "bob", &t)
        .unwrap_or_else(|e| panic!("--secret must win over LIVECHAT_SECRET: {t:?}: {e}"));
    let out = run(
        &["token", "carol", "--priority", "255"],
        &[("LIVECHAT_SECRET", "env-secret")],
        EXIT_WITHIN,
    )
    .await;
    let t = token_line(&out);
    assert_eq!(parse(&t).map(|p| p.priority_cap), Ok(255), "{t}");
    verify("env-secret", "carol", &t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
}

#[tokio::test]
async fn token_subcommand_rejects_bad_arguments() {
    for (args, env) in [
        (
            vec!["token", "carol", "--priority", "256"],
            vec![("LIVECHAT_SECRET", "s")],
        ),
        (
            vec!["token", "carol", "--ttl", "soon"],
            vec![("LIVECHAT_SECRET", "s")],
        ),
        (vec!["token"], vec![("LIVECHAT_SECRET", "s")]),
    ] {
        let out = run(&args, &env, EXIT_WITHIN).await;
        assert!(
            !out.status.success(),
            "livechatd {args:?} must fail (non-zero exit), got {}: {}",
            out.status,
            out.all()
        );
        assert!(
            parse(out.stdout.trim()).is_err(),
            "livechatd {args:?} must not print a token: {}",
            out.all()
        );
    }
}

#[tokio::test]
async fn check_config_prints_the_configuration_with_the_secret_masked() {
    let secret = "do-not-print-me-4f2a9c";
    let out = run(
        &["check-config"],
        &[
            ("LIVECHAT_SECRET", secret),
            ("LIVECHAT_HEARTBEAT_MS", "1234"),
            ("LIVECHAT_IDENTIFY_TIMEOUT_MS", "4321"),
        ],
        EXIT_WITHIN,
    )
    .await;
    assert!(out.status.success(), "check-config exits 0: {}", out.all());
    assert!(
        out.all().contains("identify_timeout_ms") && out.all().contains("4321"),
        "check-config prints the identify timeout: {}",
        out.all()
    );
    let all = out.all();
    assert!(
        !all.contains(secret),
        "check-config must mask the secret, but it printed it: {all}"
    );
    assert!(
        all.to_lowercase().contains("heartbeat") && all.contains("1234"),
        "check-config prints the effective settings (heartbeat 1234 expected): {all}"
    );
    assert!(
        all.to_lowercase().contains("secret"),
        "check-config shows that a secret is set (masked): {all}"
    );
    assert!(
        !all.contains("ready"),
        "check-config does not start the daemon: {all}"
    );
}

#[tokio::test]
async fn capacities_are_what_the_settings_say() {
    // No compiled ceiling: the tables are reserved at start to the sizes asked for, and
    // check-config prints the values in force.
    let big = [
        ("LIVECHAT_MAX_SESSIONS", "100000"),
        ("LIVECHAT_MAX_CHANNELS", "5000"),
        ("LIVECHAT_MAX_MEMBERS", "4000"),
        ("LIVECHAT_MAX_PEERS", "200000"),
    ];
    let out = run(&["check-config"], &big, EXIT_WITHIN).await;
    assert!(out.status.success(), "check-config exits 0: {}", out.all());
    for (key, value) in [
        ("max_sessions", "100000"),
        ("max_channels", "5000"),
        ("max_members", "4000"),
        ("max_peers", "200000"),
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {}", out.stdout));
        assert!(line.contains(&format!("\"{value}\"")), "{line}");
    }
    assert!(!out.stderr.contains("warning"), "{}", out.all());
    let d = Daemon::start_with(&big).await;
    let mut c = Client::identified(&d, "alice").await;
    // A capacity above the 256 that was compiled in before.
    let d_ack = c
        .ack(
            op::CHANNEL_CREATE,
            json!({"channel_id":"wide","capacity":4000}),
        )
        .await;
    assert_eq!(d_ack["capacity"], 4000);
    let log = d.logs();
    assert!(!log.contains("warn"), "nothing is lowered: {log}");
}

#[tokio::test]
async fn bad_settings_exit_non_zero_naming_the_key() {
    for (key, value) in [
        ("LIVECHAT_HEARTBEAT_MS", "abc"),
        ("LIVECHAT_HEARTBEAT_MS", "-5"),
        ("LIVECHAT_PLAIN_RTP", "sometimes"),
        ("LIVECHAT_SDES_OVER_WS", "maybe"),
        ("LIVECHAT_RATE", "fast"),
        ("LIVECHAT_MAX_SESSIONS", "many"),
        ("LIVECHAT_MAX_SESSIONS", "0"),
        ("LIVECHAT_MAX_MEMBERS", "65536"),
        ("LIVECHAT_MAX_PEERS", "99999999999999"),
        ("LIVECHAT_HTTP_ADDR", "not-an-address"),
        ("LIVECHAT_UDP_ADDR", "127.0.0.1:99999"),
    ] {
        let out = run(&[], &[(key, value)], EXIT_WITHIN).await;
        assert!(
            !out.status.success(),
            "{key}={value} must make livechatd exit non-zero, got {}: {}",
            out.status,
            out.all()
        );
        let short = key.trim_start_matches("LIVECHAT_").to_lowercase();
        assert!(
            out.all().to_lowercase().contains(&short),
            "the error for {key}={value} must name the key ({key} or {short}): {}",
            out.all()
        );
        assert!(
            !out.stderr.contains(" ready"),
            "{key}={value}: must not get ready: {}",
            out.all()
        );
    }
}

#[tokio::test]
async fn non_loopback_without_a_secret_refuses_to_start() {
    let out = run(&[], &[("LIVECHAT_HTTP_ADDR", "0.0.0.0:0")], EXIT_WITHIN).await;
    assert!(
        !out.status.success(),
        "binding the gateway to 0.0.0.0 without LIVECHAT_SECRET must refuse to start: {} {}",
        out.status,
        out.all()
    );
    // With a secret the same address is fine.
    let d = Daemon::builder()
        .env("LIVECHAT_HTTP_ADDR", "0.0.0.0:0")
        .secret("non-loopback-secret")
        .start()
        .await;
    let mut c = Client::connect(&d, "conn").await;
    c.identify(&d, "alice").await;
}

#[tokio::test]
async fn without_a_secret_on_loopback_any_well_formed_token_works_with_a_warning() {
    let d = Daemon::start().await;
    let mut c = Client::connect(&d, "conn").await;
    c.identify_token(
        "alice",
        &format!("{}.9.{}", now_unix() + 60, "a".repeat(40)),
    )
    .await;
    assert!(
        d.logs().to_lowercase().contains("warn"),
        "without a secret the daemon logs a warning: {}",
        d.logs()
    );
}

async fn graceful_stop(signal: i32, name: &str) {
    let mut d = Daemon::start().await;
    let mut unidentified = Client::connect(&d, "unidentified").await;
    let mut a = Client::identified(&d, "alice").await;
    a.create("c").await;
    a.join("c").await;
    let mut b = Client::identified(&d, "bob").await;
    b.join("c").await;
    let t0 = Instant::now();
    d.signal(signal);
    for c in [&mut unidentified, &mut a, &mut b] {
        let (closed, _) = c
            .expect_close(ms(3000), &format!("{name} to the daemon"))
            .await;
        assert_eq!(
            closed.code(),
            Some(close::GOING_AWAY),
            "{}: on {name} every WebSocket is closed with 1001, got {closed}",
            c.label()
        );
    }
    let status = d.wait_exit(ms(3000)).await;
    let took = t0.elapsed();
    assert!(
        status.success(),
        "on {name} livechatd exits 0, got {status}; logs:\n{}",
        d.logs()
    );
    assert!(
        took <= ms(3000),
        "on {name} livechatd exits within 3 s, took {took:?}"
    );
}

#[tokio::test]
async fn sigterm_closes_every_websocket_with_1001_and_exits_0_within_3s() {
    graceful_stop(libc::SIGTERM, "SIGTERM").await;
}

#[tokio::test]
async fn sigint_closes_every_websocket_with_1001_and_exits_0_within_3s() {
    graceful_stop(libc::SIGINT, "SIGINT").await;
}

#[tokio::test]
async fn sigterm_with_no_clients_exits_0_promptly() {
    let mut d = Daemon::start().await;
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(ms(3000)).await;
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.success(),
        "exit 0 on SIGTERM sent right after the ready line, got {status}{}: {}",
        if status.signal() == Some(libc::SIGTERM) {
            " (killed by the default SIGTERM action: the handler was not installed yet when \
             `ready` was logged)"
        } else {
            ""
        },
        d.logs()
    );
}

#[tokio::test]
async fn ready_line_names_the_bound_addresses() {
    let d = Daemon::start().await;
    assert!(
        d.http.ip().is_loopback() && d.http.port() != 0,
        "{}",
        d.ready_line
    );
    assert!(
        d.udp.ip().is_loopback() && d.udp.port() != 0,
        "{}",
        d.ready_line
    );
    // The UDP port is really bound.
    let err = std::net::UdpSocket::bind(d.udp);
    assert!(err.is_err(), "the daemon should hold {}", d.udp);
}

#[tokio::test]
async fn an_unparsable_config_file_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("livechat-e2e-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("broken.toml");
    std::fs::write(&path, "this is [[ not toml = = =\n").expect("write config");
    let p = path.to_string_lossy().into_owned();
    let out = run(&[], &[("LIVECHAT_CONFIG", &p)], EXIT_WITHIN).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !out.status.success(),
        "an unparsable LIVECHAT_CONFIG must make livechatd exit non-zero: {}",
        out.all()
    );
    assert!(
        out.all().contains("broken.toml") || out.all().to_lowercase().contains("config"),
        "the error names the config file: {}",
        out.all()
    );
}

#[tokio::test]
async fn the_secret_never_appears_in_the_logs() {
    let secret = "log-leak-canary-7d1e";
    let d = Daemon::builder().secret(secret).start().await;
    let mut a = Client::identified(&d, "alice").await;
    let mut bad = Client::connect(&d, "conn").await;
    let f = bad
        .identify_raw(json!({"user_id": "bob", "token": "1.0.0"}))
        .await;
    bad.check_error(&f, Some(op::IDENTIFY), code::INVALID_TOKEN, "bad token");
    a.create("c").await;
    drop(a);
    tokio::time::sleep(ms(200)).await;
    assert!(
        !d.logs().contains(secret),
        "the daemon logged its secret: {}",
        d.logs()
    );
}

/// LIVECHAT_DTLS_CERT and LIVECHAT_DTLS_KEY (PROTOCOL.md section 5): check-config shows them,
/// they are set together or not at all, a file that cannot be read or used is a bad setting
/// naming the key, and a good pair starts the daemon.
#[tokio::test]
async fn dtls_certificate_files_are_settings() {
    let dir = std::env::temp_dir().join(format!("lc-dtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let good = rcgen::generate_simple_self_signed(vec!["livechatd".to_owned()]).expect("rcgen");
    let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).expect("rcgen");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let cert = write("cert.pem", &good.cert.pem());
    let key = write("key.pem", &good.signing_key.serialize_pem());
    let other_key = write("other.pem", &other.signing_key.serialize_pem());
    let missing = dir.join("missing.pem").display().to_string();

    let out = run(
        &["check-config"],
        &[("LIVECHAT_DTLS_CERT", &cert), ("LIVECHAT_DTLS_KEY", &key)],
        EXIT_WITHIN,
    )
    .await;
    assert!(out.status.success(), "{}", out.all());
    assert!(
        out.all().contains("dtls_cert") && out.all().contains(&cert),
        "check-config shows the DTLS certificate: {}",
        out.all()
    );

    for (env, names) in [
        (vec![("LIVECHAT_DTLS_CERT", cert.as_str())], "dtls_"),
        (
            vec![
                ("LIVECHAT_DTLS_CERT", missing.as_str()),
                ("LIVECHAT_DTLS_KEY", key.as_str()),
            ],
            "dtls_cert",
        ),
        (
            vec![
                ("LIVECHAT_DTLS_CERT", key.as_str()),
                ("LIVECHAT_DTLS_KEY", key.as_str()),
            ],
            "dtls_cert",
        ),
        (
            vec![
                ("LIVECHAT_DTLS_CERT", cert.as_str()),
                ("LIVECHAT_DTLS_KEY", cert.as_str()),
            ],
            "dtls_key",
        ),
        (
            vec![
                ("LIVECHAT_DTLS_CERT", cert.as_str()),
                ("LIVECHAT_DTLS_KEY", other_key.as_str()),
            ],
            "dtls_key",
        ),
    ] {
        let out = run(&[], &env, EXIT_WITHIN).await;
        assert!(!out.status.success(), "{env:?} must fail: {}", out.all());
        assert!(
            out.all().to_lowercase().contains(names),
            "{env:?}: the error names {names}: {}",
            out.all()
        );
        assert!(!out.stderr.contains(" ready"), "{env:?}: {}", out.all());
    }

    let d = Daemon::builder()
        .env("LIVECHAT_DTLS_CERT", &cert)
        .env("LIVECHAT_DTLS_KEY", &key)
        .start()
        .await;
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
