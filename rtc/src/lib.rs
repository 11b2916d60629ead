//! WebRTC for livechat (PROTOCOL.md section 4): SDP offer/answer, ICE-lite and DTLS-SRTP.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cert;
pub mod dtls;
pub mod ice;
pub mod sdp;

pub use cert::{CertError, Certificate, Fingerprint};
