//! `livechat-radio`: the reference push-to-talk radio client for `livechatd`.
//!
//! A [`Radio`] is one identified gateway session (PROTOCOL.md section 1: a WebSocket of JSON
//! frames, heartbeats in the background). [`Radio::join`] joins a channel with an SSRC and
//! SRTP keys exchanged SDES-style over the gateway (section 3), or plain RTP, opens a UDP
//! socket to the daemon's media port and latches it with an RTCP receiver report (then every
//! 5 s). A [`Channel`] talks ([`Channel::talk`]: FLOOR_REQUEST, PCMU frames at 20 ms,
//! FLOOR_PING, FLOOR_RELEASE) and listens ([`Media::recv`], [`Recorder`], [`wav`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), livechat_radio::Error> {
//! use livechat_radio::{JoinOptions, Radio, TalkOptions, audio, token};
//!
//! let url = "ws://127.0.0.1:8080/gateway";
//! let alice = Radio::connect(url, "alice", &token::mint(None, "alice", 3600, 0)).await?;
//! alice.ensure_channel("ops").await?;
//! let ch = alice.join("ops", JoinOptions::default()).await?;
//! ch.talk(&audio::tone_pcmu(1000.0, 3.0, 0.5), &TalkOptions::default()).await?;
//! # Ok(()) }
//! ```
//!
//! The binary `lcradio` is a thin command line over this library.

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod audio;
pub mod error;
pub mod g711;
pub mod gateway;
pub mod media;
pub mod radio;
pub mod token;
pub mod wav;

pub use audio::Recorder;
pub use error::Error;
pub use gateway::Gateway;
/// The core crate, for tests and tools that build packets themselves.
pub use livechat_core;
pub use livechat_core::srtp::{MasterKey, Suite};
pub use media::{Media, Protection, Received, RxStats, Sent};
pub use radio::{Channel, JoinOptions, Radio, TalkOptions, TalkReport};
