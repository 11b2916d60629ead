//! The web PTT client (issue 16, PROTOCOL.md section 6 `GET /`): the page and its headers,
//! the `Origin` check of WebSocket upgrades, and the page itself in Debian's headless
//! `chromium`, driven over the DevTools protocol by tests/web/scenario.py (python3 with
//! `websockets`; .ci/deps-web.sh installs chromium): signaling, floor states, keyboard and
//! touch, reconnection; tests/web/audio.py: audio over WebRTC between two pages and between a
//! page and a radio (`livechat-radio`); tests/web/https.py: the page over https:// on a LAN
//! name. Missing tools fail the test, they do not skip it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use livechat_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 exchange on a fresh connection: the status code, the head (lowercase) and
/// the body.
async fn http(d: &Daemon, request: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(d.connect_addr()).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(scaled(Duration::from_secs(5)), async {
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            // A 101 keeps the connection open: its head is the whole answer.
            if buf.starts_with(b"HTTP/1.1 101") && buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    });
    let _ = read.await;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&buf)));
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head}"));
    (status, head, buf[end + 4..].to_vec())
}

fn get(path: &str, host: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

fn upgrade(host: &str, origin: Option<&str>) -> String {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /gateway HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_off_is_404() {
    let d = Daemon::start().await;
    let host = d.connect_addr().to_string();
    let (status, head, body) = http(&d, &get("/", &host, "")).await;
    assert_eq!(status, 200, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("<script type=\"module\" src=\"/app.js\">"));
    assert_eq!(
        header(&head, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    let csp = header(&head, "content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        csp.contains("script-src 'self';"),
        "no inline script: {csp}"
    );
    assert!(
        csp.contains(&format!("connect-src 'self' ws://{host} wss://{host};")),
        "{csp}"
    );
    // Revalidation: the same ETag gets 304 and no body.
    let etag = header(&head, "etag").expect("an etag").to_owned();
    let (status, _, body) = http(&d, &get("/", &host, &format!("If-None-Match: {etag}\r\n"))).await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    // Every module and the style sheet; the whole page within its 100 KiB budget.
    let mut total = 0;
    for path in [
        "/",
        "/app.js",
        "/gateway.js",
        "/media.js",
        "/words.js",
        "/app.css",
        "/favicon.svg",
    ] {
        let (status, head, body) = http(&d, &get(path, &host, "")).await;
        assert_eq!(status, 200, "{path}: {head}");
        assert!(header(&head, "content-security-policy").is_some(), "{path}");
        total += body.len();
    }
    assert!(total <= 100 * 1024, "the page is {total} bytes");
    let (status, _, _) = http(&d, &get("/nope", &host, "")).await;
    assert_eq!(status, 404);
    let (status, head, _) = http(
        &d,
        &format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 405, "{head}");

    let off = Daemon::start_with(&[("LIVECHAT_WEB", "off")]).await;
    let (status, _, _) = http(&off, &get("/", &off.connect_addr().to_string(), "")).await;
    assert_eq!(status, 404, "LIVECHAT_WEB=off serves no page");
    // The gateway is unaffected.
    Client::identified(&off, "radio1").await;
}

#[tokio::test]
async fn a_browser_origin_of_another_site_is_refused_and_counted() {
    let d = Daemon::start_with(&[
        (
            "LIVECHAT_ALLOWED_ORIGINS",
            "https://dispatch.example, http://console.example:8000",
        ),
        ("LIVECHAT_STATS_INTERVAL_S", "1"),
    ])
    .await;
    let host = d.connect_addr().to_string();
    let port = d.connect_addr().port();
    // Cross-site WebSocket hijacking: another site's page opening our gateway.
    for origin in [
        "http://evil.example".to_owned(),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "null".to_owned(),
        "https://dispatch.example:8443".to_owned(),
    ] {
        let (status, head, _) = http(&d, &upgrade(&host, Some(&origin))).await;
        assert_eq!(status, 403, "Origin {origin}: {head}");
    }
    // The page's own origin, a listed one, and no Origin at all (radios, tools) upgrade.
    for origin in [
        Some(format!("http://{host}")),
        Some("https://dispatch.example".to_owned()),
        Some("http://console.example:8000".to_owned()),
        None,
    ] {
        let (status, head, _) = http(&d, &upgrade(&host, origin.as_deref())).await;
        assert_eq!(status, 101, "Origin {origin:?}: {head}");
    }
    assert!(
        d.wait_for_log("origin_refused=4", Duration::from_secs(5))
            .await,
        "the refusals are counted in the stats line:\n{}",
        d.logs()
    );
    // A radio (no Origin) still works end to end.
    let mut c = Client::identified(&d, "radio1").await;
    c.create("yard").await;

    let bad = run(
        &["check-config"],
        &[("LIVECHAT_ALLOWED_ORIGINS", "dispatch.example")],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(bad.status.code(), Some(2), "{}", bad.all());
    assert!(
        bad.stderr.contains("LIVECHAT_ALLOWED_ORIGINS"),
        "{}",
        bad.all()
    );
    let shown = run(&["check-config"], &[], Duration::from_secs(10)).await;
    assert!(shown.stdout.contains("LIVECHAT_WEB"), "{}", shown.all());
    assert!(
        shown.stdout.contains("LIVECHAT_ALLOWED_ORIGINS"),
        "{}",
        shown.all()
    );
}

/// Where the browser test leaves its screenshots: LIVECHAT_SCREENSHOTS (the README's come
/// from `LIVECHAT_SCREENSHOTS=docs/img`), else the target directory.
fn screenshot_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::var_os("LIVECHAT_SCREENSHOTS") {
        Some(p) if PathBuf::from(&p).is_relative() => workspace.join(p),
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join("target"))
            .join("web-screenshots"),
    }
}

#[tokio::test]
async fn two_pages_in_chromium_sign_in_chat_and_pass_the_floor() {
    let max_ms = timer_ms(8000);
    let heartbeat_ms = timer_ms(1500);
    let d = Daemon::start_with(&[
        ("LIVECHAT_FLOOR_MAX_MS", &max_ms.to_string()),
        ("LIVECHAT_HEARTBEAT_MS", &heartbeat_ms.to_string()),
    ])
    .await;
    let alice_token = d.token("alice");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/scenario.py");
    let shots = screenshot_dir();
    let child = tokio::process::Command::new("python3")
        .arg(&script)
        .arg("--url")
        .arg(format!("http://{}/", d.connect_addr()))
        .arg("--alice")
        .arg(&alice_token)
        .arg("--bob")
        .arg(d.token("bob"))
        .arg("--shots")
        .arg(&shots)
        .arg("--max-ms")
        .arg(max_ms.to_string())
        .arg("--heartbeat-ms")
        .arg(heartbeat_ms.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    let out = tokio::time::timeout(scaled(Duration::from_secs(120)), child.wait_with_output())
        .await
        .expect("the browser scenario finished within 120 s")
        .expect("python3 ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "the browser scenario failed ({}); .ci/deps-web.sh installs chromium.\n\
         stdout: {stdout}\nstderr: {stderr}\ndaemon:\n{}",
        out.status,
        d.logs()
    );
    // Page weight and time until usable, for docs/performance.md (measured, not asserted).
    for line in stdout.lines().filter(|l| l.starts_with("FIGURES")) {
        println!("{line}");
    }
    assert!(
        !d.logs().contains(&alice_token),
        "the sign-in link's token never reaches a log"
    );
    for name in ["web-desktop.png", "web-phone.png"] {
        let png = std::fs::read(shots.join(name)).expect("the screenshot was saved");
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    }
}

#[tokio::test]
async fn cert_makes_a_chain_the_gateway_serves_the_page_over() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;

    let dir = std::env::temp_dir().join(format!("livechat-web-cert-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.display().to_string();
    let made = run(
        &[
            "cert",
            "--name",
            "localhost",
            "--name",
            "127.0.0.1",
            "--out",
            &out,
        ],
        &[],
        Duration::from_secs(20),
    )
    .await;
    assert!(made.status.success(), "{}", made.all());
    assert!(
        made.stdout.contains("CA fingerprint (SHA-256): "),
        "{}",
        made.all()
    );
    let again = run(
        &["cert", "--name", "localhost", "--out", &out],
        &[],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        again.status.code(),
        Some(2),
        "no overwrite without --force: {}",
        again.all()
    );

    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let d = Daemon::start_with(&[
        ("LIVECHAT_TLS_CERT", &cert.display().to_string()),
        ("LIVECHAT_TLS_KEY", &key.display().to_string()),
    ])
    .await;
    // A client that trusts only ca.pem, as a phone that installed it: webpki checks the
    // chain, the names and the CA's name constraints.
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(dir.join("ca.pem")).expect("ca.pem");
    roots.add(ca).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for name in ["localhost", "127.0.0.1"] {
        let tcp = TcpStream::connect(d.connect_addr()).await.expect("connect");
        let server = rustls::pki_types::ServerName::try_from(name).expect("name");
        let mut tls = connector.connect(server, tcp).await.expect("TLS handshake");
        let host = format!("{name}:{}", d.connect_addr().port());
        tls.write_all(get("/", &host, "").as_bytes())
            .await
            .expect("write");
        let mut buf = Vec::new();
        let _ =
            tokio::time::timeout(scaled(Duration::from_secs(5)), tls.read_to_end(&mut buf)).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 200"), "{name}: {text}");
        assert!(text.contains(&format!("wss://{host}")), "{name}: {text}");
    }
    let wrong = rustls::pki_types::ServerName::try_from("evil.example").expect("name");
    let tcp = TcpStream::connect(d.connect_addr()).await.expect("connect");
    assert!(
        connector.connect(wrong, tcp).await.is_err(),
        "the certificate is for its names only"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn token_link_carries_user_and_token_in_the_fragment() {
    let env = [("LIVECHAT_SECRET", "s3cret")];
    let out = run(
        &["token", "alice", "--link", "https://pi.local:8443"],
        &env,
        Duration::from_secs(10),
    )
    .await;
    assert!(out.status.success(), "{}", out.all());
    let link = out.stdout.trim();
    let token = link
        .strip_prefix("https://pi.local:8443/#user=alice&token=")
        .unwrap_or_else(|| panic!("{link}"));
    let parts: Vec<&str> = token.split('.').collect();
    assert!(
        parts.len() == 3
            && parts[0].bytes().all(|b| b.is_ascii_digit())
            && parts[1] == "0"
            && parts[2].len() == 40
            && parts[2].bytes().all(|b| b.is_ascii_hexdigit()),
        "a token after the fragment's token=: {token}"
    );
    let bad = run(
        &["token", "alice", "--link", "pi.local"],
        &env,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(bad.status.code(), Some(2), "{}", bad.all());
}

#[tokio::test]
async fn the_page_over_https_on_a_lan_name_is_a_secure_context_with_the_microphone() {
    let dir = std::env::temp_dir().join(format!("livechat-web-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.display().to_string();
    let made = run(
        &["cert", "--name", "pi.local", "--out", &out],
        &[],
        Duration::from_secs(20),
    )
    .await;
    assert!(made.status.success(), "{}", made.all());
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    // The SPKI hash chromium is told to accept: SHA-256 of the server key's
    // SubjectPublicKeyInfo, base64 (what `openssl pkey -pubin -outform der | openssl dgst
    // -sha256 -binary | base64` prints).
    let spki = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
            cert.display()
        ))
        .output()
        .expect("openssl");
    let spki = String::from_utf8_lossy(&spki.stdout).trim().to_owned();
    assert_eq!(spki.len(), 44, "a base64 SHA-256: {spki:?}");
    let d = Daemon::start_with(&[
        ("LIVECHAT_TLS_CERT", &cert.display().to_string()),
        ("LIVECHAT_TLS_KEY", &key.display().to_string()),
    ])
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/https.py");
    let child = tokio::process::Command::new("python3")
        .arg(&script)
        .args([
            "--url",
            &format!("https://pi.local:{}/", d.connect_addr().port()),
        ])
        .args(["--name", "pi.local", "--spki", &spki])
        .args(["--alice", &d.token("alice")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    let out = tokio::time::timeout(scaled(Duration::from_secs(60)), child.wait_with_output())
        .await
        .expect("the https scenario finished within 60 s")
        .expect("python3 ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "the https scenario failed ({}).\nstdout: {stdout}\nstderr: {stderr}\ndaemon:\n{}",
        out.status,
        d.logs()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn pages_hear_each_other_and_a_radio_through_webrtc() {
    use livechat_radio::{JoinOptions, Radio, Recorder, TalkOptions, audio};
    use tokio::io::AsyncBufReadExt;

    const ALICE_HZ: f64 = 1000.0;
    const BOB_HZ: f64 = 600.0;
    const RADIO_HZ: f64 = 800.0;
    let d = Daemon::start().await;
    let radio = Radio::connect(&d.ws_url(), "radio1", &d.token("radio1"))
        .await
        .expect("the radio identifies");
    radio.ensure_channel("mix").await.expect("mix created");
    let mut ch = radio
        .join("mix", JoinOptions::default())
        .await
        .expect("the radio joins");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/audio.py");
    let dir = screenshot_dir().join("audio");
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .args(["--url", &format!("http://{}/", d.connect_addr())])
        .args(["--alice", &d.token("alice"), "--bob", &d.token("bob")])
        .args(["--channel", "mix", "--dir", &dir.display().to_string()])
        .args([
            "--alice-hz",
            &ALICE_HZ.to_string(),
            "--bob-hz",
            &BOB_HZ.to_string(),
        ])
        .args(["--radio-hz", &RADIO_HZ.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut said = Vec::new();
    let mut rec: Option<Recorder> = None;
    let deadline = tokio::time::Instant::now() + scaled(Duration::from_secs(120));
    loop {
        let line = tokio::select! {
            l = lines.next_line() => l.expect("python's stdout"),
            () = async {
                match rec.as_mut() {
                    Some(r) => ch.record_for(r, Duration::from_millis(100)).await,
                    None => ch.record_for(&mut Recorder::new(), Duration::from_millis(100)).await,
                }
            } => continue,
            () = tokio::time::sleep_until(deadline) => panic!("the audio scenario took over 120 s: {said:?}"),
        };
        let Some(line) = line else { break };
        said.push(line.clone());
        match line.as_str() {
            "ALICE" => rec = Some(Recorder::new()),
            "RADIO" => {
                let heard = rec.take().expect("ALICE came first").samples();
                let at = tone::amplitude_at(&heard, ALICE_HZ, 8000.0);
                let off = tone::amplitude_at(&heard, 1500.0, 8000.0);
                assert!(
                    at > 500.0 && at > 10.0 * off,
                    "the radio hears alice's page: {ALICE_HZ} Hz at {at:.0}, 1500 Hz at {off:.0}, {} samples",
                    heard.len()
                );
                let pcmu = audio::tone_pcmu(RADIO_HZ, 4.0, 0.5);
                ch.talk(&pcmu, &TalkOptions::default())
                    .await
                    .expect("the radio talks");
            }
            _ => {}
        }
    }
    let out = child.wait_with_output().await.expect("python3 ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.iter().any(|l| l == "OK"),
        "the audio scenario failed ({}): stdout {said:?}\nstderr: {stderr}\ndaemon:\n{}",
        out.status,
        d.logs()
    );
}
