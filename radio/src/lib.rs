//! `livechat-radio`: the reference push-to-talk radio client for `livechatd`.

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod audio;
pub mod g711;
pub mod token;
pub mod wav;

pub use audio::Recorder;
