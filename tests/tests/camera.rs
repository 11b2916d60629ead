//! RTSP cameras as channel sources (PROTOCOL.md section 7) end to end: a real RTSP server
//! (GStreamer's gst-rtsp-server, tests/camera/rtsp_server.py: 320x240 H.264 at 25 frames a
//! second, a key frame every 10 s, Basic auth) configured in a `[[camera]]` table of the
//! daemon's config file, and aiortc viewers (tests/webrtc/camera_viewer.py) that decode it.
//!
//! Needs Debian's python3 with python3-gi and gst-rtsp-server (.ci/deps-camera.sh) for the
//! camera and python3 with aiortc for the viewers (.ci/deps-webrtc.sh); the tests fail, they
//! do not skip, when those are missing. They run one at a time: each is a real-time stream.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use livechat_tests::http::{self, EventStream};
use livechat_tests::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

const USER: &str = "cam";
const PASSWORD: &str = "Pa55-w0rd-xyzzy";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The RTSP camera on 127.0.0.1:`port`, killed when dropped.
struct Camera {
    child: Child,
}

impl Camera {
    async fn start(port: u16) -> Camera {
        let script = root().join("camera/rtsp_server.py");
        // Debian's python3: where python3-gi lives, whatever python3 is first on PATH.
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .args([&port.to_string(), USER, PASSWORD])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run /usr/bin/python3 {}: {e}", script.display()));
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(scaled(Duration::from_secs(20)), out.next_line()).await;
        match ready {
            Ok(Ok(Some(l))) if l.trim() == "ready" => Camera { child },
            other => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), e.read_to_string(&mut err))
                            .await;
                }
                panic!("the RTSP camera did not start: {other:?}\n{err}");
            }
        }
    }

    async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A config file holding `tables`, removed when dropped.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(tables: &str) -> ConfigFile {
        let p = std::env::temp_dir().join(format!(
            "livechat-camera-{}-{}.toml",
            std::process::id(),
            fresh_ssrc()
        ));
        std::fs::write(&p, tables).expect("write the config file");
        ConfigFile(p)
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn table(id: &str, url: &str, channel: &str) -> String {
    format!("[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\nchannel = \"{channel}\"\n")
}

fn url(port: u16, password: &str) -> String {
    format!("rtsp://{USER}:{password}@127.0.0.1:{port}/cam")
}

async fn daemon(cfg: &ConfigFile) -> Daemon {
    Daemon::builder()
        .env("LIVECHAT_CONFIG", cfg.0.to_str().expect("utf-8 path"))
        .start()
        .await
}

async fn get(d: &Daemon, path: &str) -> (String, Value) {
    let a = http::request(d.connect_addr(), "GET", path, None, None).await;
    let v = a.json();
    (v.to_string(), v)
}

async fn camera(d: &Daemon, id: &str) -> Value {
    let (_, v) = get(d, "/admin/v1/cameras").await;
    v["cameras"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["id"] == id).cloned())
        .unwrap_or_else(|| panic!("no camera {id} in {v}"))
}

/// Waits until camera `id` is in `state`; returns its row.
async fn wait_state(d: &Daemon, id: &str, state: &str, within: Duration) -> Value {
    let until = tokio::time::Instant::now() + scaled(within);
    loop {
        let c = camera(d, id).await;
        if c["state"] == state {
            return c;
        }
        if tokio::time::Instant::now() > until {
            panic!(
                "camera {id} not {state} within {within:?}: {c}\n{}",
                d.logs()
            );
        }
        tokio::time::sleep(ms(100)).await;
    }
}

/// Runs the aiortc viewers; returns one JSON object per viewer (or the join figures).
async fn viewers(d: &Daemon, channel: &str, args: &[&str]) -> Vec<Value> {
    let script = root().join("webrtc/camera_viewer.py");
    let child = Command::new("python3")
        .arg(&script)
        .arg(d.ws_url())
        .arg(channel)
        .args(args)
        .current_dir(root().join("webrtc"))
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    let out = tokio::time::timeout(scaled(Duration::from_secs(170)), child.wait_with_output())
        .await
        .expect("the viewers did not finish")
        .expect("viewer output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "viewers failed:\n{stdout}\n{}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.logs()
    );
    print!("{stdout}");
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test]
async fn the_camera_is_a_member_and_late_viewers_see_it_at_once() {
    let _one = SERIAL.lock().await;
    let port = free_port();
    let cam = Camera::start(port).await;
    let cfg = ConfigFile::new(&table("gate", &url(port, PASSWORD), "yard"));
    let d = daemon(&cfg).await;
    let mut c = Client::identified(&d, "alice").await;
    let info = c.ack(op::CHANNEL_INFO, json!({"channel_id": "yard"})).await;
    assert_eq!(info["members"], json!(["gate"]), "{info}");
    assert_eq!(
        (&info["codec"], &info["video_codec"], &info["creator"]),
        (&json!("PCMU"), &json!("H264"), &json!("gate"))
    );
    let mut fake = Client::connect(&d, "fake").await;
    let r = fake
        .identify_raw(json!({"user_id": "gate", "token": d.token("gate")}))
        .await;
    assert_eq!(r["d"]["code"], 1002, "{r}");
    wait_state(&d, "gate", "streaming", Duration::from_secs(10)).await;
    // The camera's key frame is now 3 s old, its next one 7 s away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = viewers(&d, "yard", &["2", "3"]).await;
    assert_eq!(seen.len(), 2);
    for v in &seen {
        let first = v["first_frame_s"].as_f64().expect("first_frame_s");
        assert!(
            first < 1.5,
            "a late viewer waited {first} s for a picture: {v}"
        );
        assert_eq!(v["size"], json!([320, 240]), "{v}");
        // 25 frames a second for 3 s, with room for a loaded machine.
        let frames = v["frames"].as_u64().expect("frames");
        assert!(frames >= 45, "{frames} frames in 3 s: {v}");
    }
    let (_, peers) = get(&d, "/admin/v1/peers").await;
    let row = peers["peers"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["kind"] == "camera").cloned())
        .expect("the camera in /peers");
    assert_eq!(
        (&row["user_id"], &row["channel_id"]),
        (&json!("gate"), &json!("yard"))
    );
    assert!(row["packets_out"].as_u64().unwrap_or(0) > 0, "{row}");
    let c = camera(&d, "gate").await;
    assert!(c["frames"].as_u64().unwrap_or(0) > 100 && c["bytes"].as_u64().unwrap_or(0) > 0);
    cam.kill().await;
}

#[tokio::test]
async fn a_camera_killed_and_restarted_comes_back_to_viewers_that_stayed() {
    let _one = SERIAL.lock().await;
    let port = free_port();
    let cam = Camera::start(port).await;
    let cfg = ConfigFile::new(&table("gate", &url(port, PASSWORD), "yard"));
    let d = daemon(&cfg).await;
    wait_state(&d, "gate", "streaming", Duration::from_secs(10)).await;
    let mut trace = EventStream::open(d.connect_addr(), "/admin/v1/trace", None, None)
        .await
        .unwrap_or_else(|a| panic!("trace: {}", a.status));
    let view = {
        let url = d.ws_url();
        let script = root().join("webrtc/camera_viewer.py");
        Command::new("python3")
            .arg(&script)
            .args([url.as_str(), "yard", "1", "16"])
            .current_dir(root().join("webrtc"))
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("viewer")
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    cam.kill().await;
    let c = wait_state(&d, "gate", "retrying", Duration::from_secs(8)).await;
    assert!(
        c["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{c}"
    );
    let cam = Camera::start(port).await;
    wait_state(&d, "gate", "streaming", Duration::from_secs(15)).await;
    let out = tokio::time::timeout(scaled(Duration::from_secs(60)), view.wait_with_output())
        .await
        .expect("viewer finished")
        .expect("viewer output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.trim_end().ends_with("OK"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.logs()
    );
    let v: Value = serde_json::from_str(
        stdout
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("a viewer line"),
    )
    .expect("JSON");
    // The viewer never left: frames reached it again after the restart.
    let age = v["last_frame_age_s"].as_f64().expect("last_frame_age_s");
    assert!(age < 1.0, "no frame in the viewer's last {age} s: {v}");
    let events = trace.drain(ms(500)).await;
    let states: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "camera")
        .filter_map(|e| e.data["event"].as_str())
        .collect();
    assert!(
        states
            .windows(3)
            .any(|w| w == ["retrying", "connecting", "streaming"]),
        "camera trace: {states:?}"
    );
    assert!(
        events
            .iter()
            .filter(|e| e.kind == "camera")
            .all(|e| e.data["camera"] == "gate" && e.data["channel_id"] == "yard"),
        "{:?}",
        events.iter().map(|e| &e.data).collect::<Vec<_>>()
    );
    cam.kill().await;
}

#[tokio::test]
async fn bad_cameras_retry_with_a_clear_error_and_the_password_is_nowhere() {
    let _one = SERIAL.lock().await;
    let port = free_port();
    let closed = free_port();
    let cam = Camera::start(port).await;
    let wrong = "Wr0ng-pa55-plugh";
    let cfg = ConfigFile::new(&format!(
        "{}{}{}",
        table("gate", &url(port, PASSWORD), "yard"),
        table("door", &url(port, wrong), "yard"),
        table("shut", &url(closed, PASSWORD), "lot"),
    ));
    let check = run(
        &["check-config", "--config", cfg.0.to_str().expect("path")],
        &[],
        Duration::from_secs(10),
    )
    .await;
    assert!(
        check.all().contains("rtsp://***@127.0.0.1"),
        "{}",
        check.all()
    );
    let d = daemon(&cfg).await;
    let mut trace = EventStream::open(d.connect_addr(), "/admin/v1/trace", None, None)
        .await
        .unwrap_or_else(|a| panic!("trace: {}", a.status));
    let door = wait_state(&d, "door", "retrying", Duration::from_secs(10)).await;
    let e = door["last_error"].as_str().expect("last_error");
    assert!(e.contains("401") || e.contains("Unauthorized"), "{e}");
    let shut = wait_state(&d, "shut", "retrying", Duration::from_secs(10)).await;
    let e = shut["last_error"].as_str().expect("last_error");
    assert!(e.contains("refused"), "{e}");
    wait_state(&d, "gate", "streaming", Duration::from_secs(10)).await;
    // The daemon serves on.
    let mut c = Client::identified(&d, "alice").await;
    let list = c.ack(op::CHANNEL_LIST, Value::Null).await;
    assert_eq!(list["channels"].as_array().map(Vec::len), Some(2), "{list}");
    // Retries keep coming, each one traced.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = trace.drain(ms(500)).await;
    assert!(
        events.iter().any(|e| e.kind == "camera"),
        "no camera events"
    );
    let mut shown = String::new();
    for path in [
        "/admin/v1/cameras",
        "/admin/v1/peers",
        "/admin/v1/channels",
        "/admin/v1/status",
    ] {
        shown.push_str(&get(&d, path).await.0);
    }
    for e in &events {
        shown.push_str(&e.data.to_string());
    }
    shown.push_str(&check.all());
    shown.push_str(&d.logs());
    let basic = |p: &str| base64(format!("{USER}:{p}").as_bytes());
    for secret in [
        PASSWORD.to_owned(),
        wrong.to_owned(),
        basic(PASSWORD),
        basic(wrong),
    ] {
        assert!(!shown.contains(&secret), "{secret} shown:\n{shown}");
    }
    cam.kill().await;
}

/// Standard base64 (RFC 4648 section 4), as a Basic Authorization header carries it.
fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_is_rfc_4648() {
    // RFC 4648 section 10.
    assert_eq!(base64(b"foob"), "Zm9vYg==");
    assert_eq!(base64(b"fooba"), "Zm9vYmE=");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
