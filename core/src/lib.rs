//! The sans-IO core of livechat.
//!
//! It owns no socket, no clock, no thread and no allocation. Time comes in as a value
//! ([`time::Now`]), bytes come in as slices, the tables live in storage the driver provides
//! ([`storage::Tables`], sized from the settings with [`storage::Capacities`]), and what to
//! send goes out through two sinks the driver implements: [`gateway::Driver`] for the
//! WebSocket side and [`relay::Transmit`] for the media port.
//!
//! # The loop contract
//!
//! A driver owns one [`gateway::Gateway`] and feeds it every input, one at a time:
//!
//! | input | call |
//! |---|---|
//! | a WebSocket connection is accepted | [`Gateway::accept`](gateway::Gateway::accept) (which may first close the oldest unidentified connection through the driver), register [`Accepted::conn`](gateway::Accepted::conn) with the connection's handle, then [`Gateway::greet`](gateway::Gateway::greet) (sends HELLO through that handle); or [`Gateway::open`](gateway::Gateway::open) when `send` needs no registration |
//! | a frame arrives on it | [`Gateway::handle_frame`](gateway::Gateway::handle_frame) |
//! | it ended (client, network, or the driver's own close) | [`Gateway::close`](gateway::Gateway::close) |
//! | a datagram arrives on the media port | RTP and RTCP: [`Gateway::handle_datagram`](gateway::Gateway::handle_datagram) (decrypts in place); STUN and DTLS ([`wire::demux`]): the driver's WebRTC agent |
//! | that agent saw a valid ICE check for a WebRTC endpoint | [`Gateway::media_checked`](gateway::Gateway::media_checked) |
//! | its DTLS-SRTP handshake finished | [`Gateway::media_keys`](gateway::Gateway::media_keys) |
//! | its handshake failed or timed out | [`Gateway::media_failed`](gateway::Gateway::media_failed) |
//! | the instant from [`Gateway::poll_timeout`](gateway::Gateway::poll_timeout) has passed | [`Gateway::handle_timeout`](gateway::Gateway::handle_timeout) |
//!
//! After **each** call the driver re-reads `poll_timeout`: any input may move the next
//! deadline earlier (a new connection's zombie timer, a floor grant's hold timer) or clear
//! it. Calling `handle_timeout` early, or twice, is harmless. Every call takes the current
//! [`Now`](time::Now): a monotonic instant for timers and the wall clock for timestamps.
//!
//! What the core promises in return:
//! - **Synchronous output.** Everything an input causes goes to the sinks before the call
//!   returns: frames through [`Driver::send`](gateway::Driver::send) (one encoded frame,
//!   several recipients; a broadcast to a large channel comes as several calls),
//!   closes through [`Driver::close`](gateway::Driver::close) (the core has already
//!   forgotten the connection: the driver does not call `close` back for it), datagrams
//!   through [`Transmit`](relay::Transmit). Nothing happens between calls.
//! - **Ids.** A [`ConnId`](gateway::ConnId) names a slot and a generation: after a connection
//!   is forgotten its id never reaches anyone else, so a driver may index its own table by
//!   [`ConnId::index`](gateway::ConnId::index) and compare whole ids.
//! - **No panics on input.** Full tables, bad frames and bad datagrams are answers
//!   (errors, close codes) or counted drops ([`relay::MediaStats`]).
//!
//! What the driver promises: a bounded queue per connection (a connection whose queue is
//! full is the driver's to close, then to report with `close`), random bytes from a
//! cryptographically secure source ([`Driver::fill_random`](gateway::Driver::fill_random),
//! for SRTP keys), and the hard frame cap ([`config::HARD_FRAME_CAP`]) enforced before
//! `handle_frame`. A driver with WebRTC answers SDP offers during `handle_frame`
//! ([`Driver::negotiate`](gateway::Driver::negotiate), keyed by the endpoint's
//! [`MediaId`](gateway::MediaId)) and forgets an endpoint's ICE and DTLS state when told
//! ([`Driver::media_ended`](gateway::Driver::media_ended)); without, the defaults refuse
//! offers (1004).
//!
//! # Example
//!
//! One loop over a queue of inputs, with tables in `heapless` vectors as a build without an
//! allocator has them (a hosted driver reserves `Vec`s instead: `storage::Tables::reserve`
//! under the `alloc` feature).
//!
//! ```
//! use core::net::{IpAddr, Ipv4Addr, SocketAddr};
//!
//! use livechat_core::config::Limits;
//! use livechat_core::gateway::{
//!     Channel, Conn, ConnId, Driver, Frame, Gateway, GatewayConfig, PeerInfo, Policy,
//! };
//! use livechat_core::relay::{Endpoint, Transmit};
//! use livechat_core::storage::Tables;
//! use livechat_core::time::{Instant, Now};
//! use livechat_core::token::TokenKey;
//!
//! /// The WebSocket side: a real driver queues each frame on the connection's socket.
//! #[derive(Default)]
//! struct Sockets {
//!     sent: Vec<(ConnId, String)>,
//! }
//!
//! impl Driver for Sockets {
//!     fn send(&mut self, to: &[ConnId], frame: &[u8]) {
//!         for c in to {
//!             self.sent.push((*c, String::from_utf8_lossy(frame).into_owned()));
//!         }
//!     }
//!     fn close(&mut self, _conn: ConnId, _code: u16, _reason: &str) {}
//!     fn fill_random(&mut self, buf: &mut [u8]) {
//!         buf.fill(7); // A real driver asks the operating system.
//!     }
//! }
//!
//! /// The media port: a real driver calls `sendto` (or batches with `sendmmsg`).
//! struct Udp;
//!
//! impl Transmit for Udp {
//!     fn send_to(&mut self, _dst: SocketAddr, _datagram: &[u8]) -> bool {
//!         true
//!     }
//! }
//!
//! enum Input {
//!     Accepted(PeerInfo),
//!     Text(usize, &'static str),
//!     Datagram(SocketAddr, Vec<u8>),
//!     Closed(usize),
//! }
//!
//! let mut conns = heapless::Vec::<Conn, 4>::new();
//! let mut channels = heapless::Vec::<Option<Channel>, 2>::new();
//! let mut endpoints = heapless::Vec::<Option<Endpoint>, 4>::new();
//! let (mut ssrc_index, mut addr_index) = ([0u64; 16], [0u64; 8]);
//! let tables = Tables {
//!     conns: &mut conns,
//!     channels: &mut channels,
//!     endpoints: &mut endpoints,
//!     ssrc_index: &mut ssrc_index,
//!     addr_index: &mut addr_index,
//! };
//! let cfg = GatewayConfig {
//!     limits: Limits::default(),
//!     token_key: TokenKey::none(),
//!     plain_rtp: Policy::Loopback,
//!     sdes_over_ws: Policy::Loopback,
//!     media_host: heapless::String::try_from("127.0.0.1").unwrap(),
//!     media_port: 10000,
//!     session_seed: 1,
//! };
//! let mut gw = Gateway::new(cfg, tables);
//! let (mut ws, mut udp) = (Sockets::default(), Udp);
//!
//! let mut token = String::new();
//! TokenKey::none().mint("alice", u64::MAX / 2, 0, &mut token).unwrap();
//! let identify = format!(r#"{{"op":3,"d":{{"user_id":"alice","token":"{token}"}}}}"#);
//! let loopback = PeerInfo { ip: IpAddr::V4(Ipv4Addr::LOCALHOST), tls: false };
//! let inputs = vec![
//!     Input::Accepted(loopback),
//!     Input::Text(0, Box::leak(identify.into_boxed_str())),
//!     Input::Text(0, r#"{"op":10,"d":{"channel_id":"ops"}}"#),
//!     Input::Datagram(SocketAddr::from(([127, 0, 0, 1], 4000)), vec![0x80; 12]),
//!     Input::Closed(0),
//! ];
//!
//! let mut ids = Vec::new(); // The driver's own table of connections.
//! let mut clock_ms = 1_000;
//! for input in inputs {
//!     clock_ms += 20;
//!     let now = Now::new(Instant::from_millis(clock_ms), 1_700_000_000_000 + clock_ms);
//!     // Timers first: whatever was due by now.
//!     if gw.poll_timeout().is_some_and(|t| t <= now.mono) {
//!         gw.handle_timeout(now, &mut ws);
//!     }
//!     match input {
//!         // `accept` may close the oldest unidentified connection (1013) through `ws`.
//!         Input::Accepted(peer) => match gw.accept(now, peer, &mut ws) {
//!             Ok(accepted) => {
//!                 ids.push(accepted.conn()); // Registered before HELLO goes out.
//!                 gw.greet(now, accepted, &mut ws);
//!             }
//!             Err(_full) => {} // Close the socket with 1013, try again later.
//!         },
//!         Input::Text(i, text) => gw.handle_frame(now, ids[i], Frame::Text(text.as_bytes()), &mut ws),
//!         Input::Datagram(src, mut bytes) => gw.handle_datagram(now, src, &mut bytes, &mut udp),
//!         Input::Closed(i) => gw.close(now, ids[i], &mut ws),
//!     }
//!     // Then sleep until the next input or `gw.poll_timeout()`, whichever comes first.
//! }
//!
//! let ops: Vec<&str> = ws.sent.iter().filter_map(|(_, f)| f.split(',').next()).collect();
//! assert_eq!(ops, [r#"{"op":0"#, r#"{"op":4"#, r#"{"op":200"#]); // HELLO, READY, ACK
//! assert_eq!(gw.media_stats().drop_unknown_ssrc, 1);
//! assert_eq!(gw.stats().connections, 0);
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

#[cfg(feature = "testing")]
extern crate std;

pub mod config;

pub mod codec;

pub mod floor;

pub mod wire;

pub mod srtp;

pub mod time;

pub mod error;

pub mod protocol;

pub mod token;

pub mod gateway;

pub mod relay;

pub mod storage;

pub mod trace;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
