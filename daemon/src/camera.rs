//! RTSP cameras as channel sources (PROTOCOL.md section 7): one task per camera pulls its
//! H.264 over RTSP with `retina` and hands whole access units to the core task through one
//! bounded queue; the core packetizes them for the channel's viewers.
//!
//! A camera that floods or stalls costs bounded memory and time: frames wait in the queue
//! only up to [`QUEUE_FRAMES`] and [`QUEUE_BYTES`] per camera (beyond: a counted drop), an
//! access unit larger than [`MAX_FRAME`] is dropped and counted, and a camera silent for
//! [`STALL`] is reconnected with a backoff of at most [`MAX_BACKOFF`].

pub mod config;
mod session;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use livechat_core::config::{DEFAULT_CAMERA_KEY_FRAME, MAX_PARAMETER_SET};
use livechat_core::gateway::{ConnId, Driver, Gateway};
use livechat_core::relay::camera::{CameraStorage, ViewerSeq};
use livechat_core::time::Now;
use tokio::sync::mpsc;

pub use config::CameraConfig;

/// Frames of one camera waiting for the core task; a camera ahead of the core by more
/// loses frames (counted) rather than memory.
pub const QUEUE_FRAMES: usize = 32;
/// Bytes of one camera's frames waiting for the core task.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// The largest access unit taken from a camera: 1080p key frames at high bitrates fit.
pub const MAX_FRAME: usize = 2 * 1024 * 1024;
/// A camera that sends no frame this long (or does not answer a request) is reconnected
/// (PROTOCOL.md section 7: 5 s).
pub const STALL: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest wait between two connection attempts (PROTOCOL.md section 7: 10 s).
pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a camera is in its life (PROTOCOL.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// From each (re)connect attempt until the first frame.
    Connecting,
    /// Frames arrive.
    Streaming,
    /// Waiting out the backoff after a failure.
    Retrying,
}

impl State {
    /// The admin API's word.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Streaming => "streaming",
            State::Retrying => "retrying",
        }
    }
}

/// One camera's state and counters, shared by its task and the core task.
#[derive(Debug)]
pub struct Status {
    /// Its id.
    pub id: String,
    /// Its channel.
    pub channel: String,
    state: Mutex<(State, Option<String>)>,
    /// Access units received since start (dropped ones included).
    pub frames: AtomicU64,
    /// Bytes of them.
    pub bytes: AtomicU64,
    /// Access units dropped before the core: queue full or larger than [`MAX_FRAME`].
    pub drops: AtomicU64,
    /// Frames and bytes waiting in the queue.
    queued: AtomicUsize,
    queued_bytes: AtomicUsize,
}

impl Status {
    fn new(cfg: &CameraConfig) -> Self {
        Status {
            id: cfg.id.clone(),
            channel: cfg.channel.clone(),
            state: Mutex::new((State::Connecting, None)),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            drops: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
        }
    }

    /// The state and, when retrying, the last error.
    pub fn state(&self) -> (State, Option<String>) {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or((State::Retrying, None))
    }

    /// Moves to `state`; `last_error` is kept only while retrying. Returns whether it changed.
    fn set(&self, state: State, last_error: Option<String>) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let changed = s.0 != state;
        *s = (state, last_error.filter(|_| state == State::Retrying));
        changed
    }
}

/// One access unit on its way to the core task.
#[derive(Debug)]
pub struct Frame {
    /// The camera's index (its order in the config file, as the core numbered it).
    pub camera: usize,
    /// NAL units with 4-byte lengths.
    pub au: Vec<u8>,
    /// 90 kHz since the start of its RTSP session.
    pub timestamp: u64,
    /// The camera task's count of RTSP sessions.
    pub session: u32,
}

/// The cameras as the core task sees them: their status, and the queue of their frames.
pub struct Cameras {
    /// By index.
    pub status: Vec<Arc<Status>>,
    /// Frames from every camera.
    pub frames: mpsc::Receiver<Frame>,
    /// State changes, for the trace (a camera task waits for room: they are few).
    pub states: mpsc::Receiver<(usize, State)>,
    /// Per camera: a kept key frame was dropped as too large and the log said so.
    too_large_said: Vec<bool>,
}

impl Cameras {
    /// `GET /admin/v1/cameras` (PROTOCOL.md section 6).
    pub fn admin_json(&self) -> serde_json::Value {
        let list: Vec<serde_json::Value> = self
            .status
            .iter()
            .map(|s| {
                let (state, last_error) = s.state();
                let mut v = serde_json::json!({
                    "id": s.id,
                    "channel_id": s.channel,
                    "state": state.as_str(),
                    "frames": s.frames.load(Ordering::Relaxed),
                    "bytes": s.bytes.load(Ordering::Relaxed),
                    "drops": s.drops.load(Ordering::Relaxed),
                });
                if let Some(e) = last_error {
                    v["last_error"] = serde_json::Value::from(e);
                }
                v
            })
            .collect();
        serde_json::json!({ "cameras": list })
    }

    /// A frame left the queue.
    pub fn dequeued(&self, f: &Frame) {
        if let Some(s) = self.status.get(f.camera) {
            s.queued.fetch_sub(1, Ordering::Relaxed);
            s.queued_bytes.fetch_sub(f.au.len(), Ordering::Relaxed);
        }
    }

    /// Logs what the core did with a frame, once per change.
    pub fn outcome(
        &mut self,
        f: &Frame,
        r: Result<
            livechat_core::relay::camera::FrameOutcome,
            livechat_core::relay::camera::FrameError,
        >,
    ) {
        use livechat_core::relay::camera::{FrameError, FrameOutcome};
        let id = self.status.get(f.camera).map_or("?", |s| s.id.as_str());
        let said = self.too_large_said.get_mut(f.camera);
        match (r, said) {
            (Ok(FrameOutcome::KeyFrameTooLarge(_)), Some(said)) if !*said => {
                *said = true;
                log::warn!(
                    "camera {id}: a key frame of {} bytes is larger than the {} kept for late viewers; they wait for the camera's next key frame",
                    f.au.len(),
                    DEFAULT_CAMERA_KEY_FRAME
                );
            }
            (Ok(FrameOutcome::KeyFrameKept(_)), Some(said)) => *said = false,
            (Err(FrameError::Malformed(e)), _) => {
                log::debug!("camera {id}: malformed access unit ({e:?}); dropped");
            }
            _ => {}
        }
    }
}

/// Random bytes for the core while no connection exists (the cameras' SSRCs).
struct Random;

impl Driver for Random {
    fn send(&mut self, _to: &[ConnId], _frame: &[u8]) {}
    fn close(&mut self, _conn: ConnId, _code: u16, _reason: &str) {}
    fn fill_random(&mut self, buf: &mut [u8]) {
        if let Err(e) = getrandom::fill(buf) {
            log::error!("OS random number generator failed: {e}");
            std::process::abort();
        }
    }
}

/// Adds every camera to the core (creating their channels) and starts their tasks on the
/// current runtime. A camera the core refuses is a bad setting (exit 2).
pub fn start(
    gw: &mut Gateway<'static>,
    now: Now,
    cameras: &[CameraConfig],
) -> Result<Cameras, String> {
    let peers = gw.capacities().peers;
    let (tx, rx) = mpsc::channel(QUEUE_FRAMES * cameras.len().max(1));
    let (states_tx, states) = mpsc::channel(4 * cameras.len().max(1));
    let mut status = Vec::new();
    for (i, cfg) in cameras.iter().enumerate() {
        // Zeroed memory the allocator maps lazily: a key frame costs its size only once
        // a camera sends one.
        let storage = CameraStorage {
            key_frame: Vec::leak(vec![0u8; 2 * MAX_PARAMETER_SET + DEFAULT_CAMERA_KEY_FRAME]),
            viewers: Vec::leak(vec![ViewerSeq::default(); peers]),
        };
        match gw.add_camera(now, &cfg.id, &cfg.channel, storage, &mut Random) {
            Ok(at) if at == i => {}
            Ok(_) => {
                return Err(format!(
                    "[[camera]] #{} (id {:?}): out of order",
                    i + 1,
                    cfg.id
                ));
            }
            Err(e) => {
                return Err(format!(
                    "[[camera]] #{} (id {:?}): {}",
                    i + 1,
                    cfg.id,
                    e.reason()
                ));
            }
        }
        let st = Arc::new(Status::new(cfg));
        status.push(st.clone());
        tokio::spawn(session::run(
            i,
            cfg.clone(),
            st,
            tx.clone(),
            states_tx.clone(),
        ));
        log::info!(
            "camera {}: {} feeding channel {} over {:?}",
            cfg.id,
            cfg.shown_url(),
            cfg.channel,
            cfg.transport
        );
    }
    Ok(Cameras {
        too_large_said: vec![false; status.len()],
        status,
        frames: rx,
        states,
    })
}

/// Queues a frame for the core, or drops and counts it.
fn offer(tx: &mpsc::Sender<Frame>, st: &Status, f: Frame) {
    let len = f.au.len();
    if len > MAX_FRAME
        || st.queued.load(Ordering::Relaxed) >= QUEUE_FRAMES
        || st.queued_bytes.load(Ordering::Relaxed) + len > QUEUE_BYTES
    {
        st.drops.fetch_add(1, Ordering::Relaxed);
        return;
    }
    st.queued.fetch_add(1, Ordering::Relaxed);
    st.queued_bytes.fetch_add(len, Ordering::Relaxed);
    if tx.try_send(f).is_err() {
        st.queued.fetch_sub(1, Ordering::Relaxed);
        st.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        st.drops.fetch_add(1, Ordering::Relaxed);
    }
}
