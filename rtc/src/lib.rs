//! WebRTC for livechat (PROTOCOL.md section 4): SDP offer/answer, ICE-lite and DTLS-SRTP.
//!
//! This crate holds what needs `std` and an allocator, so the core stays `no_std`: it turns
//! a browser's offer into an answer ([`sdp`]), answers its ICE checks ([`ice`]), runs its
//! DTLS handshake ([`dtls`]) and hands the core what the core needs to relay media: latched
//! addresses and SRTP master keys for the core's own SRTP contexts. All of it is sans-IO and
//! owned by one [`Agent`]; its loop contract is in [`agent`].
//!
//! Crates: `dimpl` (DTLS 1.2, sans-IO, pure-Rust crypto backend: no C toolchain for the
//! ARM builds), `stun-types` (STUN parsing, FINGERPRINT and MESSAGE-INTEGRITY checks; RFC
//! 5769 tested), `rcgen` with `ring` (the certificate), and `sdp-types` for SDP. `sdp-types`
//! over `webrtc-sdp`: it is small (no logging or URL stack), MIT/Apache, parses any RFC 8866
//! text into sessions, media sections and attribute lists without refusing attributes it
//! does not model, and this crate reads the handful of WebRTC attributes it needs from those
//! lists; `webrtc-sdp` is Firefox's full typed model, several times the code, and refuses
//! offers over attributes the server would ignore anyway.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod agent;
pub mod cert;
pub mod dtls;
pub mod ice;
pub mod sdp;

pub use agent::{AddPeerError, Agent, AgentConfig, Event, LocalIce, Stats};
pub use cert::{CertError, Certificate, Fingerprint};
pub use dtls::{FailReason, SrtpKeys};
pub use sdp::RemoteIce;
