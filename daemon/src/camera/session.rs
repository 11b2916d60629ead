//! One camera's task: DESCRIBE, SETUP, PLAY with `retina` (Basic or Digest auth as the
//! camera asks; keep-alives sent by retina while the stream is read), frames to the core
//! task, and on any failure a reconnect after a backoff with jitter.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use retina::client::{
    Credentials, PlayOptions, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
    UdpTransportOptions,
};
use retina::codec::CodecItem;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::config::{CameraConfig, Transport as Tr};
use super::{Frame, MAX_BACKOFF, STALL, State, Status, offer};

/// The first wait after a failure; it doubles with each failure in a row up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Runs camera `index` for the life of the process.
pub(super) async fn run(
    index: usize,
    cfg: CameraConfig,
    st: Arc<Status>,
    tx: mpsc::Sender<Frame>,
    states: mpsc::Sender<(usize, State)>,
) {
    let mut session = 0u32;
    let mut failures = 0u32;
    let mut audio_said = false;
    loop {
        session = session.wrapping_add(1);
        if st.set(State::Connecting, None) {
            log::info!("camera {}: connecting", cfg.id);
            let _ = states.send((index, State::Connecting)).await;
        }
        let mut streamed = false;
        let err = match stream(
            index,
            &cfg,
            &st,
            &tx,
            &states,
            session,
            &mut streamed,
            &mut audio_said,
        )
        .await
        {
            Ok(()) => "the camera ended the stream".to_owned(),
            Err(e) => e,
        };
        if streamed {
            failures = 0;
        }
        // retina's errors add lines of connection context: the first line says what failed.
        let err = err.lines().next().unwrap_or("").trim().to_owned();
        let wait = backoff(failures);
        failures = failures.saturating_add(1);
        log::warn!(
            "camera {}: {err}; retrying in {} ms",
            cfg.id,
            wait.as_millis()
        );
        st.set(State::Retrying, Some(err));
        let _ = states.send((index, State::Retrying)).await;
        tokio::time::sleep(wait).await;
    }
}

/// The wait after `failures` failures in a row: doubling from [`FIRST_BACKOFF`], capped
/// at [`MAX_BACKOFF`], and a random half of it taken off so cameras that fell together do
/// not come back together.
fn backoff(failures: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = u64::from(u16::from_le_bytes(r)) * (full.as_millis() as u64 / 2) / 65_535;
    full - Duration::from_millis(jitter)
}

/// Wraps one step of the RTSP exchange in [`STALL`].
async fn step<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match timeout(STALL, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer for {} s", STALL.as_secs())),
    }
}

/// One RTSP session: returns when it ends, with why.
// The task's state is passed piecewise: each piece is borrowed for a different use.
#[allow(clippy::too_many_arguments)]
async fn stream(
    index: usize,
    cfg: &CameraConfig,
    st: &Status,
    tx: &mpsc::Sender<Frame>,
    states: &mpsc::Sender<(usize, State)>,
    session: u32,
    streamed: &mut bool,
    audio_said: &mut bool,
) -> Result<(), String> {
    let creds = cfg
        .credentials
        .as_ref()
        .map(|(username, password)| Credentials {
            username: username.clone(),
            password: password.clone(),
        });
    let opts = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("livechatd/{}", env!("CARGO_PKG_VERSION")));
    let mut described = step(
        "DESCRIBE",
        retina::client::Session::describe(cfg.url.clone(), opts),
    )
    .await?;
    let streams = described.streams();
    let video = streams
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
        .ok_or_else(|| "no H.264 video stream in the camera's SDP".to_owned())?;
    if !*audio_said && let Some(a) = streams.iter().find(|s| s.media() == "audio") {
        // The channel's codec is PCMU, but the channel's talkers hold the floor for their
        // audio; a camera's audio is not mixed into it.
        log::info!(
            "camera {}: its audio ({}) is not relayed",
            cfg.id,
            a.encoding_name()
        );
        *audio_said = true;
    }
    let transport = match cfg.transport {
        Tr::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        Tr::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    step(
        "SETUP",
        described.setup(video, SetupOptions::default().transport(transport)),
    )
    .await?;
    let playing = step("PLAY", described.play(PlayOptions::default())).await?;
    let mut demuxed = playing.demuxed().map_err(|e| format!("PLAY: {e}"))?;
    loop {
        let item = match timeout(STALL, demuxed.next()).await {
            Err(_) => return Err(format!("no frame for {} s", STALL.as_secs())),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(item))) => item,
        };
        let CodecItem::VideoFrame(f) = item else {
            continue;
        };
        let ts = f.timestamp().elapsed().max(0) as u64;
        let au = f.into_data();
        st.frames.fetch_add(1, Ordering::Relaxed);
        st.bytes.fetch_add(au.len() as u64, Ordering::Relaxed);
        if !*streamed {
            *streamed = true;
            if st.set(State::Streaming, None) {
                log::info!("camera {}: streaming", cfg.id);
                let _ = states.send((index, State::Streaming)).await;
            }
        }
        offer(
            tx,
            st,
            Frame {
                camera: index,
                au,
                timestamp: ts,
                session,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_ten_seconds() {
        for failures in 0..40 {
            let full = FIRST_BACKOFF
                .saturating_mul(1u32 << failures.min(16))
                .min(MAX_BACKOFF);
            let b = backoff(failures);
            assert!(b <= full && b >= full / 2, "{failures}: {b:?}");
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}
