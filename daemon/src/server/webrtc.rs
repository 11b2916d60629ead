//! WebRTC beside the core (PROTOCOL.md section 4): the `livechat-rtc` agent, fed by the
//! core loop. The core answers CHANNEL_JOIN with `sdp_offer` through [`Webrtc::negotiate`]
//! (the driver's `negotiate`), STUN and DTLS from the media port come here instead of to the
//! core, and the agent's events go back to the core as `media_checked`, `media_keys` and
//! `media_failed`.

use std::net::{IpAddr, SocketAddr};

use livechat_core::gateway::{Gateway, MediaId, Negotiated, Offer, OfferError};
use livechat_core::srtp::Context;
use livechat_core::time::{Instant as CoreInstant, Now};
use livechat_core::trace::Detail;
use livechat_rtc::sdp::{self, Local};
use livechat_rtc::{AddPeerError, Agent, AgentConfig, Certificate, Event};
use log::{debug, error, info};

/// The agent and what answers need.
pub(crate) struct Webrtc {
    agent: Agent,
    ip: IpAddr,
    port: u16,
    /// The last answer written, lent to the core until it copies it into the ACK.
    answer: String,
    /// The core loop's clock reading at the last input, for `negotiate` (which the core
    /// calls without one).
    now: CoreInstant,
}

impl Webrtc {
    /// An agent for at most `max_peers` WebRTC peers, answering with `ip` and `port`.
    pub(crate) fn new(
        cert: Certificate,
        max_peers: usize,
        ip: IpAddr,
        port: u16,
        now: CoreInstant,
    ) -> Result<Webrtc, String> {
        let config = AgentConfig {
            max_peers,
            software: Some(concat!("livechatd/", env!("CARGO_PKG_VERSION"))),
            ..AgentConfig::default()
        };
        let agent = Agent::new(cert, config, now).map_err(|e| format!("DTLS setup: {e}"))?;
        Ok(Webrtc {
            agent,
            ip,
            port,
            answer: String::new(),
            now,
        })
    }

    /// The time of the input being handled.
    pub(crate) fn set_now(&mut self, now: CoreInstant) {
        self.now = now;
    }

    /// The driver's `negotiate`: parse, negotiate, add the peer, answer.
    pub(crate) fn negotiate(&mut self, offer: &Offer<'_>) -> Result<Negotiated<'_>, OfferError> {
        let parsed = sdp::Offer::parse(offer.sdp).map_err(|e| OfferError::Malformed(e.0))?;
        let n = sdp::negotiate(&parsed, offer.codec.into(), offer.video_codec.into())
            .map_err(|e| OfferError::Unacceptable(e.0))?;
        let local = match self
            .agent
            .add_peer(self.now, offer.media.to_u64(), &n.remote)
        {
            Ok(l) => l,
            Err(AddPeerError::Full) => return Err(OfferError::Full),
            Err(AddPeerError::NoRandomness) => {
                // As for SRTP keys: no credentials can be made safely without it.
                error!("OS random number generator failed");
                std::process::abort();
            }
        };
        self.answer = sdp::answer(
            &parsed,
            &n,
            &Local {
                ufrag: &local.ufrag,
                pwd: &local.pwd,
                fingerprint: self.agent.fingerprint(),
                ip: self.ip,
                port: self.port,
            },
        );
        debug!(
            "webrtc: answered an offer for channel {:?} ({} m-lines, video {})",
            offer.channel_id,
            parsed.media_kinds().count(),
            if n.video.is_some() { "on" } else { "off" }
        );
        Ok(Negotiated {
            answer: &self.answer,
            audio: n.audio.into(),
            video: n.video.map(Into::into),
        })
    }

    /// The driver's `media_ended`.
    pub(crate) fn ended(&mut self, media: MediaId) {
        self.agent.remove_peer(media.to_u64());
    }

    /// A STUN or DTLS datagram from the media port.
    pub(crate) fn datagram(
        &mut self,
        now: Now,
        src: SocketAddr,
        bytes: &[u8],
        send: &mut impl FnMut(SocketAddr, &[u8]),
    ) {
        self.now = now.mono;
        self.agent.handle_datagram(now.mono, src, bytes, send);
    }

    /// When the agent's next timer is due.
    pub(crate) fn poll_timeout(&self) -> Option<CoreInstant> {
        self.agent.poll_timeout()
    }

    /// The agent's timers, when due.
    pub(crate) fn timeout(&mut self, now: Now, send: &mut impl FnMut(SocketAddr, &[u8])) {
        self.now = now.mono;
        if self.agent.poll_timeout().is_some_and(|t| t <= now.mono) {
            self.agent.handle_timeout(now.mono, send);
        }
    }

    /// Hands the agent's events to the core, and how each DTLS handshake ended to `trace`
    /// (PROTOCOL.md section 6: `media` `dtls`).
    pub(crate) fn pump(
        &mut self,
        now: Now,
        gw: &mut Gateway<'_>,
        trace: &mut impl FnMut(&livechat_core::trace::Event<'_>),
    ) {
        while let Some(ev) = self.agent.poll_event() {
            match ev {
                Event::Checked { media, addr, .. } => {
                    gw.media_checked(now, MediaId::from_u64(media), addr);
                }
                Event::Connected { media, keys } => {
                    debug!("webrtc: DTLS connected ({})", keys.suite.as_str());
                    let inbound = Context::new(keys.suite, &keys.client);
                    let outbound = Context::new(keys.suite, &keys.server);
                    let id = MediaId::from_u64(media);
                    gw.media_keys(now, id, inbound, outbound);
                    let done = Detail::Dtls {
                        result: "done",
                        reason: None,
                    };
                    gw.media_trace(id, "dtls", done, &mut *trace);
                }
                Event::Failed { media, reason } => {
                    info!("webrtc: peer failed: {}", reason.as_str());
                    let id = MediaId::from_u64(media);
                    let failed = Detail::Dtls {
                        result: "failed",
                        reason: Some(reason.as_str()),
                    };
                    gw.media_trace(id, "dtls", failed, &mut *trace);
                    gw.media_failed(now, id);
                }
            }
        }
    }

    /// The agent's counters.
    pub(crate) fn stats(&self) -> livechat_rtc::Stats {
        self.agent.stats()
    }
}

/// The DTLS certificate: LIVECHAT_DTLS_CERT and LIVECHAT_DTLS_KEY when set (a file that
/// cannot be read or used is a bad setting), else a fresh self-signed one.
pub(crate) fn certificate(
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<Certificate, String> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => {
            return Certificate::generate()
                .map_err(|e| format!("cannot make a DTLS certificate: {e}"));
        }
        _ => return Err("LIVECHAT_DTLS_CERT and LIVECHAT_DTLS_KEY must be set together".into()),
    };
    let read = |env: &str, p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{env}: cannot read {}: {e}", p.display()))
    };
    let cert_pem = read("LIVECHAT_DTLS_CERT", cert_path)?;
    let key_pem = read("LIVECHAT_DTLS_KEY", key_path)?;
    Certificate::from_pem(&cert_pem, &key_pem).map_err(|e| {
        let env = match e {
            livechat_rtc::CertError::BadCertificate => "LIVECHAT_DTLS_CERT",
            _ => "LIVECHAT_DTLS_KEY",
        };
        format!(
            "{env}: {} / {}: {e}",
            cert_path.display(),
            key_path.display()
        )
    })
}
