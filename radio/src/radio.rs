//! A radio: one identified gateway session ([`Radio`]) and the channels it joined
//! ([`Channel`]), each with its media socket; push-to-talk on top.

use std::net::{IpAddr, SocketAddr};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use livechat_core::srtp::{MasterKey, Suite};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};

use crate::audio::{self, Recorder};
use crate::error::Error;
use crate::gateway::{Gateway, WsUrl, op, op_of};
use crate::media::{self, Keys, Media, Protection, Sent};

/// Seconds between latching receiver reports (RFC 6263 suggests keepalives well inside the
/// shortest NAT binding timeout; the daemon forgets a latch idle for 30 s).
pub const LATCH_EVERY: Duration = Duration::from_secs(5);

/// An identified gateway session.
#[derive(Debug, Clone)]
pub struct Radio {
    gw: Gateway,
    url: WsUrl,
    user_id: String,
}

/// How to join a channel.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// The audio SSRC (unique per server); random when `None`.
    pub ssrc: Option<u32>,
    /// SRTP suite or plain RTP.
    pub protection: Protection,
    /// The client -> server master key; random when `None`.
    pub key: Option<MasterKey>,
    /// Period of the latching receiver reports after the first; `None` sends only the one
    /// at join.
    pub latch_every: Option<Duration>,
}

impl Default for JoinOptions {
    fn default() -> Self {
        JoinOptions {
            ssrc: None,
            protection: Protection::Srtp(Suite::AesCm128HmacSha1_80),
            key: None,
            latch_every: Some(LATCH_EVERY),
        }
    }
}

impl JoinOptions {
    /// Default options with `protection`.
    pub fn with(protection: Protection) -> JoinOptions {
        JoinOptions {
            protection,
            ..JoinOptions::default()
        }
    }

    /// These options with `ssrc`.
    pub fn ssrc(mut self, ssrc: u32) -> JoinOptions {
        self.ssrc = Some(ssrc);
        self
    }
}

/// How to talk.
#[derive(Debug, Clone)]
pub struct TalkOptions {
    /// FLOOR_REQUEST's `priority` (the session's when `None`).
    pub priority: Option<u8>,
    /// The first packet's sequence number (the media socket's next one when `None`).
    pub start_seq: Option<u16>,
    /// Time between packets: 20 ms, one PCMU frame, for real time.
    pub pace: Duration,
    /// Time between FLOOR_PINGs while talking.
    pub ping_every: Duration,
    /// How long to wait for FLOOR_GRANTED (queued requests wait here too).
    pub grant_timeout: Duration,
    /// Keep every packet sent in the report.
    pub keep_packets: bool,
}

impl Default for TalkOptions {
    fn default() -> Self {
        TalkOptions {
            priority: None,
            start_seq: None,
            pace: Duration::from_millis(20),
            ping_every: Duration::from_secs(1),
            grant_timeout: Duration::from_secs(10),
            keep_packets: false,
        }
    }
}

/// What a talk burst did.
#[derive(Debug, Clone, Default)]
pub struct TalkReport {
    /// Packets sent.
    pub packets: u64,
    /// Sequence number of the first packet.
    pub first_seq: u16,
    /// Sequence number of the last packet.
    pub last_seq: u16,
    /// Every packet, when [`TalkOptions::keep_packets`] was set.
    pub sent: Vec<Sent>,
    /// The cause, when the floor was revoked mid-burst (sending stopped there).
    pub revoked: Option<String>,
}

impl Radio {
    /// Connects to `url` and identifies as `user_id` with `token`.
    pub async fn connect(url: &str, user_id: &str, token: &str) -> Result<Radio, Error> {
        Radio::connect_with(url, user_id, token, None).await
    }

    /// Like [`Radio::connect`] with IDENTIFY's `priority`.
    pub async fn connect_with(
        url: &str,
        user_id: &str,
        token: &str,
        priority: Option<u8>,
    ) -> Result<Radio, Error> {
        let parsed = WsUrl::parse(url)?;
        let gw = Gateway::connect(url).await?;
        gw.identify(user_id, token, priority).await?;
        Ok(Radio {
            gw,
            url: parsed,
            user_id: user_id.to_owned(),
        })
    }

    /// The gateway connection.
    pub fn gateway(&self) -> &Gateway {
        &self.gw
    }

    /// The identified user id.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// CHANNEL_CREATE; returns the ACK's `d`.
    pub async fn create_channel(&self, channel_id: &str) -> Result<Value, Error> {
        let (d, _) = self
            .gw
            .ack(op::CHANNEL_CREATE, json!({"channel_id": channel_id}))
            .await?;
        Ok(d)
    }

    /// CHANNEL_CREATE, where a channel that already exists (2005) is fine.
    pub async fn ensure_channel(&self, channel_id: &str) -> Result<(), Error> {
        match self.create_channel(channel_id).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(2005) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// CHANNEL_JOIN with a fresh key (or plain), then opens the media socket and latches.
    pub async fn join(&self, channel_id: &str, opts: JoinOptions) -> Result<Channel, Error> {
        let ssrc = opts.ssrc.unwrap_or_else(|| media::random_u32().max(1));
        let mut d = json!({"channel_id": channel_id, "ssrc": ssrc});
        let client_key = match opts.protection {
            Protection::Srtp(suite) => {
                let key = opts.key.clone().unwrap_or_else(media::random_key);
                d["crypto"] = json!({"suite": suite.as_str(), "key": media::key_to_sdes(&key)});
                Some((suite, key))
            }
            Protection::Plain => None,
        };
        let (ack, _) = self.gw.ack(op::CHANNEL_JOIN, d).await?;
        let keys = match client_key {
            Some((suite, send)) => {
                let c = &ack["crypto"];
                if c["suite"] != suite.as_str() {
                    return Err(Error::Protocol(format!(
                        "JOIN's ACK must answer crypto with the same suite {}: {ack}",
                        suite.as_str()
                    )));
                }
                let receive = c["key"]
                    .as_str()
                    .ok_or_else(|| Error::Protocol(format!("JOIN's ACK has no crypto.key: {ack}")))
                    .and_then(|k| {
                        MasterKey::from_sdes(k).map_err(|e| {
                            Error::Protocol(format!("JOIN's ACK crypto.key: {e}: {ack}"))
                        })
                    })?;
                Some(Keys {
                    suite,
                    send,
                    receive,
                })
            }
            None => None,
        };
        let server = self.media_addr(&ack).await?;
        let cname = format!("{}@lcradio", self.user_id);
        let media = match Media::open(server, ssrc, &cname, keys, opts.latch_every).await {
            Ok(m) => m,
            Err(e) => {
                let _ = self
                    .gw
                    .ack(op::CHANNEL_LEAVE, json!({"channel_id": channel_id}))
                    .await;
                return Err(e);
            }
        };
        Ok(Channel {
            gw: self.gw.clone(),
            user_id: self.user_id.clone(),
            channel_id: channel_id.to_owned(),
            ack,
            media,
        })
    }

    /// The media address from a JOIN ACK: `media.host` (an unspecified address stands for
    /// the gateway's host) and `media.port`.
    async fn media_addr(&self, ack: &Value) -> Result<SocketAddr, Error> {
        let bad = || {
            Error::Protocol(format!(
                "JOIN's ACK has no usable media {{host, port}}: {ack}"
            ))
        };
        let host = ack["media"]["host"].as_str().ok_or_else(bad)?;
        let port = ack["media"]["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .ok_or_else(bad)?;
        let host = match host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => self.url.host.clone(),
            _ => host.trim_matches(['[', ']']).to_owned(),
        };
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Error::io(format!("resolving the media host {host}"), e))?
            .next()
            .ok_or_else(bad)
    }

    /// Closes the gateway connection.
    pub fn close(self) {
        self.gw.close();
    }
}

/// A joined channel: signaling for it, and its media socket (reached through `Deref`).
#[derive(Debug)]
pub struct Channel {
    gw: Gateway,
    user_id: String,
    channel_id: String,
    ack: Value,
    media: Media,
}

impl Deref for Channel {
    type Target = Media;

    fn deref(&self) -> &Media {
        &self.media
    }
}

impl DerefMut for Channel {
    fn deref_mut(&mut self) -> &mut Media {
        &mut self.media
    }
}

impl Channel {
    /// The channel id.
    pub fn id(&self) -> &str {
        &self.channel_id
    }

    /// The JOIN ACK's `d`.
    pub fn join_ack(&self) -> &Value {
        &self.ack
    }

    /// The gateway connection.
    pub fn gateway(&self) -> &Gateway {
        &self.gw
    }

    fn is_mine(&self, v: &Value) -> bool {
        v["d"]["channel_id"] == self.channel_id.as_str()
    }

    /// FLOOR_REQUEST, then waits up to `within` for FLOOR_GRANTED (a queued request keeps
    /// waiting); returns its `d`. FLOOR_DENY is [`Error::FloorDenied`].
    pub async fn request_floor(
        &self,
        priority: Option<u8>,
        within: Duration,
    ) -> Result<Value, Error> {
        let mut d = json!({"channel_id": self.channel_id});
        if let Some(p) = priority {
            d["priority"] = json!(p);
        }
        let (_, after) = self.gw.ack(op::FLOOR_REQUEST, d).await?;
        let me = self.user_id.as_str();
        let ev = self
            .gw
            .wait_event(after, within, "FLOOR_GRANTED", |v| {
                self.is_mine(v)
                    && match op_of(v) {
                        Some(op::FLOOR_GRANTED | op::FLOOR_REVOKE) => v["d"]["user_id"] == me,
                        Some(op::FLOOR_DENY) => true,
                        _ => false,
                    }
            })
            .await?;
        match op_of(&ev) {
            Some(op::FLOOR_GRANTED) => Ok(ev["d"].clone()),
            Some(op::FLOOR_DENY) => Err(Error::FloorDenied(
                ev["d"]["reason"].as_str().unwrap_or("").to_owned(),
            )),
            _ => Err(Error::FloorRevoked(
                ev["d"]["cause"].as_str().unwrap_or("").to_owned(),
            )),
        }
    }

    /// FLOOR_RELEASE; returns once the server acknowledged it.
    pub async fn release_floor(&self) -> Result<(), Error> {
        self.gw
            .ack(op::FLOOR_RELEASE, json!({"channel_id": self.channel_id}))
            .await
            .map(|_| ())
    }

    /// FLOOR_PING without waiting (its FLOOR_PONG is consumed by the connection).
    pub fn ping_floor(&self) -> Result<(), Error> {
        self.gw.swallow_pong();
        self.gw
            .send(op::FLOOR_PING, json!({"channel_id": self.channel_id}))
    }

    /// Push-to-talk: requests the floor, sends `pcmu` as paced 160-byte frames with
    /// FLOOR_PINGs, then releases the floor (unless it was revoked meanwhile).
    pub async fn talk(&self, pcmu: &[u8], opts: &TalkOptions) -> Result<TalkReport, Error> {
        self.request_floor(opts.priority, opts.grant_timeout)
            .await?;
        let report = self.send_audio(pcmu, opts).await?;
        if report.revoked.is_none() {
            self.release_floor().await?;
        }
        Ok(report)
    }

    /// Sends `pcmu` as paced 160-byte frames (the last padded with silence), marker on the
    /// first, FLOOR_PING every `opts.ping_every`; stops early if FLOOR_REVOKE names this
    /// radio. Does not request or release the floor.
    pub async fn send_audio(&self, pcmu: &[u8], opts: &TalkOptions) -> Result<TalkReport, Error> {
        if let Some(s) = opts.start_seq {
            self.media.set_next_seq(s);
        }
        let after = self.gw.event_seq();
        let me = self.user_id.as_str();
        let mut report = TalkReport {
            first_seq: self.media.next_seq(),
            ..TalkReport::default()
        };
        let mut tick = tokio::time::interval(opts.pace.max(Duration::from_micros(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut last_ping = Instant::now();
        for (i, frame) in audio::frames(pcmu).enumerate() {
            tick.tick().await;
            if let Some(ev) = self.gw.take_event(after, |v| {
                v["op"] == op::FLOOR_REVOKE && self.is_mine(v) && v["d"]["user_id"] == me
            }) {
                report.revoked = Some(ev["d"]["cause"].as_str().unwrap_or("").to_owned());
                break;
            }
            let sent = self.media.send_rtp(&frame, i == 0).await?;
            report.packets += 1;
            report.last_seq = self.media.next_seq().wrapping_sub(1);
            if opts.keep_packets {
                report.sent.push(sent);
            }
            if last_ping.elapsed() >= opts.ping_every {
                self.ping_floor()?;
                last_ping = Instant::now();
            }
        }
        Ok(report)
    }

    /// Records what arrives for `within` into `rec`.
    pub async fn record_for(&mut self, rec: &mut Recorder, within: Duration) {
        for r in self.media.recv_for(within).await {
            rec.push(&r.rtp);
        }
    }

    /// CHANNEL_LEAVE; the media socket closes with this value.
    pub async fn leave(self) -> Result<(), Error> {
        self.gw
            .ack(op::CHANNEL_LEAVE, json!({"channel_id": self.channel_id}))
            .await
            .map(|_| ())
    }
}
