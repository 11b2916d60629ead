//! The sans-IO core of livechat.
//!
//! It owns no socket, no clock and no thread. Time comes in as a value ([`time::Now`]),
//! bytes come in as slices, and what to send goes out through caller-provided sinks.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;

pub mod demux;

pub mod floor;

pub mod rtcp;

pub mod rtp;

mod wire;

pub mod srtp;

pub mod time;

pub mod error;

pub mod protocol;

pub mod token;

pub mod gateway;

pub mod hub;

pub mod media;

pub mod storage;
