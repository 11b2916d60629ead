//! One peer's DTLS-SRTP handshake (RFC 5764, RFC 6347) over `dimpl`, in the server role
//! (`a=setup:passive`).
//!
//! The handshake is fed datagrams and timeouts, and drained after each (`dimpl`'s loop:
//! `poll_output` until `Timeout`). It succeeds when `dimpl` reports `Connected` after the
//! client's certificate matched the offer's `a=fingerprint` (RFC 8122 section 5; `dimpl`
//! checks the handshake signatures with it but leaves the pinning to us) and `use_srtp`
//! produced keying material. Anything else fails it.

use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use dimpl::{Config, Dtls, Output, SrtpProfile};
use livechat_core::srtp::{MasterKey, Suite};

use crate::cert::{Certificate, Fingerprint};

/// Why a peer's WebRTC media failed (reported in [`crate::Event::Failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// No finished handshake within the handshake timeout after `add_peer`.
    Timeout,
    /// `dimpl` gave up: a fatal alert, a bad record from the checked address, a protocol
    /// violation, or its own retransmission limit.
    Dtls,
    /// The client's certificate does not match the offer's `a=fingerprint`.
    FingerprintMismatch,
    /// The handshake finished without a client certificate.
    NoPeerCertificate,
    /// The client did not negotiate `use_srtp` (RFC 5764 section 4.1.1).
    NoSrtp,
    /// The negotiated SRTP protection profile has no matching core suite.
    UnsupportedProfile,
    /// The client sent `close_notify`.
    Closed,
    /// No valid ICE check for the consent timeout (RFC 7675 section 5.1).
    ConsentExpired,
}

impl FailReason {
    /// A short name for logs and traces.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailReason::Timeout => "handshake timeout",
            FailReason::Dtls => "dtls error",
            FailReason::FingerprintMismatch => "certificate fingerprint mismatch",
            FailReason::NoPeerCertificate => "no client certificate",
            FailReason::NoSrtp => "no use_srtp",
            FailReason::UnsupportedProfile => "unsupported srtp profile",
            FailReason::Closed => "close_notify",
            FailReason::ConsentExpired => "consent expired",
        }
    }
}

/// The SRTP master keys of one connected peer (RFC 5764 section 4.2). The server's inbound
/// context uses `client` (what the client protects with), its outbound context `server`.
#[derive(Clone)]
pub struct SrtpKeys {
    /// The negotiated protection profile's suite.
    pub suite: Suite,
    /// client_write_key and client_write_salt.
    pub client: MasterKey,
    /// server_write_key and server_write_salt.
    pub server: MasterKey,
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpKeys {
    /// Splits the exporter output `client_write_key | server_write_key | client_write_salt
    /// | server_write_salt` (RFC 5764 section 4.2) for `profile`.
    pub fn from_exporter(material: &[u8], profile: SrtpProfile) -> Result<SrtpKeys, FailReason> {
        let suite = match profile {
            SrtpProfile::AES128_CM_SHA1_80 => Suite::AesCm128HmacSha1_80,
            // RFC 7714 section 12: the AEAD profiles export 16- or 32-byte keys, 12-byte salts.
            SrtpProfile::AEAD_AES_128_GCM => Suite::AeadAes128Gcm,
            SrtpProfile::AEAD_AES_256_GCM => Suite::AeadAes256Gcm,
            _ => return Err(FailReason::UnsupportedProfile),
        };
        let (key_len, salt_len) = (suite.key_len(), suite.salt_len());
        if material.len() < 2 * (key_len + salt_len) {
            return Err(FailReason::NoSrtp);
        }
        let (keys, salts) = material.split_at(2 * key_len);
        let (client_key, server_key) = keys.split_at(key_len);
        let (client_salt, server_salt) = salts[..2 * salt_len].split_at(salt_len);
        Ok(SrtpKeys {
            suite,
            client: MasterKey::new(suite, client_key, client_salt)
                .map_err(|_| FailReason::UnsupportedProfile)?,
            server: MasterKey::new(suite, server_key, server_salt)
                .map_err(|_| FailReason::UnsupportedProfile)?,
        })
    }
}

/// The `dimpl` configuration every handshake shares.
pub(crate) fn config(handshake_timeout: Duration) -> Result<Arc<Config>, dimpl::Error> {
    Config::builder()
        // ICE already proved the client owns its address (RFC 8445 section 7.2), so the
        // HelloVerifyRequest round trip buys nothing.
        .use_server_cookie(false)
        .handshake_timeout(handshake_timeout)
        .with_crypto_provider(dimpl::crypto::rust_crypto::default_provider())
        .build()
        .map(Arc::new)
}

/// A finished handshake's result: the exporter output and its profile.
pub(crate) struct Material {
    pub(crate) bytes: Vec<u8>,
    pub(crate) profile: SrtpProfile,
}

/// One handshake in progress (and, once done, kept a short while for retransmissions).
pub(crate) struct Handshake {
    dtls: Dtls,
    expected: Fingerprint,
    cert_ok: bool,
    material: Option<Material>,
    connected: bool,
    reported: bool,
    next: Option<StdInstant>,
}

impl Handshake {
    pub(crate) fn new(
        config: Arc<Config>,
        cert: &Certificate,
        expected: Fingerprint,
        now: StdInstant,
    ) -> Handshake {
        Handshake {
            dtls: Dtls::new_12(config, cert.dtls().clone(), now),
            expected,
            cert_ok: false,
            material: None,
            connected: false,
            reported: false,
            next: None,
        }
    }

    /// Feeds one datagram. `Ok(Some(_))` once, when the handshake has succeeded.
    pub(crate) fn handle_packet(
        &mut self,
        now: StdInstant,
        packet: &[u8],
        buf: &mut Vec<u8>,
        send: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Material>, FailReason> {
        // dimpl reads the time (and seeds the server random) in `handle_timeout` only, so
        // it comes first, as its loop example does.
        self.dtls
            .handle_timeout(now)
            .map_err(|_| FailReason::Dtls)?;
        self.dtls
            .handle_packet(packet)
            .map_err(|_| FailReason::Dtls)?;
        self.drain(buf, send)
    }

    /// Retransmissions and `dimpl`'s own timeouts.
    pub(crate) fn handle_timeout(
        &mut self,
        now: StdInstant,
        buf: &mut Vec<u8>,
        send: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Material>, FailReason> {
        self.dtls
            .handle_timeout(now)
            .map_err(|_| FailReason::Dtls)?;
        self.drain(buf, send)
    }

    /// When `dimpl` wants `handle_timeout` next.
    pub(crate) fn next_timeout(&self) -> Option<StdInstant> {
        self.next
    }

    fn drain(
        &mut self,
        buf: &mut Vec<u8>,
        send: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Material>, FailReason> {
        loop {
            let needed = match self.dtls.poll_output(buf) {
                Output::Packet(p) => {
                    send(p);
                    continue;
                }
                Output::BufferTooSmall { needed } => needed,
                Output::Timeout(t) => {
                    self.next = Some(t);
                    break;
                }
                Output::Connected => {
                    self.connected = true;
                    continue;
                }
                Output::PeerCert(der) => {
                    if Fingerprint::of_der(der) != self.expected {
                        return Err(FailReason::FingerprintMismatch);
                    }
                    self.cert_ok = true;
                    continue;
                }
                Output::KeyingMaterial(km, profile) => {
                    self.material = Some(Material {
                        bytes: km.to_vec(),
                        profile,
                    });
                    continue;
                }
                Output::CloseNotify => return Err(FailReason::Closed),
                // Application data: WebRTC carries it only for data channels, which the
                // answer refuses.
                _ => continue,
            };
            buf.resize(needed, 0);
        }
        if !self.connected || self.reported {
            return Ok(None);
        }
        self.reported = true;
        if !self.cert_ok {
            return Err(FailReason::NoPeerCertificate);
        }
        self.material.take().map(Some).ok_or(FailReason::NoSrtp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dimpl client against our server handshake, datagrams passed by hand until both
    /// sides are done; the exporter output must be equal on both sides.
    #[test]
    fn handshake_against_a_dimpl_client_gives_equal_keys() {
        let server_cert = Certificate::generate().unwrap();
        let client_cert = Certificate::generate().unwrap();
        let now = StdInstant::now();
        let cfg = config(Duration::from_secs(10)).unwrap();
        let mut server = Handshake::new(
            cfg.clone(),
            &server_cert,
            Fingerprint::of_der(client_cert.der()),
            now,
        );
        let mut client = Dtls::new_12(cfg, client_cert.dtls().clone(), now);
        client.set_active(true);
        client.handle_timeout(now).unwrap();

        let mut buf = vec![0u8; 2048];
        let mut to_server: Vec<Vec<u8>> = Vec::new();
        let mut client_km = None;
        let mut server_km = None;
        let mut client_saw_server_cert = false;
        for _ in 0..20 {
            loop {
                match client.poll_output(&mut buf) {
                    Output::Packet(p) => to_server.push(p.to_vec()),
                    Output::Timeout(_) => break,
                    Output::PeerCert(der) => {
                        client_saw_server_cert = der == server_cert.der();
                    }
                    Output::KeyingMaterial(km, profile) => client_km = Some((km.to_vec(), profile)),
                    _ => {}
                }
            }
            let mut to_client: Vec<Vec<u8>> = Vec::new();
            for p in to_server.drain(..) {
                let mut sink = |d: &[u8]| to_client.push(d.to_vec());
                if let Some(m) = server.handle_packet(now, &p, &mut buf, &mut sink).unwrap() {
                    server_km = Some((m.bytes, m.profile));
                }
            }
            for p in to_client {
                client.handle_packet(&p).unwrap();
            }
            if client_km.is_some() && server_km.is_some() {
                break;
            }
        }
        assert!(client_saw_server_cert);
        let (ckm, cprofile) = client_km.unwrap();
        let (skm, sprofile) = server_km.unwrap();
        assert_eq!(cprofile, sprofile);
        assert_eq!(ckm, skm);
        assert_eq!(ckm.len(), sprofile.keying_material_len());
    }

    /// The same exchange with a client whose certificate is not the offered one.
    #[test]
    fn a_certificate_not_matching_the_offer_fails_the_handshake() {
        let server_cert = Certificate::generate().unwrap();
        let client_cert = Certificate::generate().unwrap();
        let offered = Certificate::generate().unwrap();
        let now = StdInstant::now();
        let cfg = config(Duration::from_secs(10)).unwrap();
        let mut server = Handshake::new(
            cfg.clone(),
            &server_cert,
            Fingerprint::of_der(offered.der()),
            now,
        );
        let mut client = Dtls::new_12(cfg, client_cert.dtls().clone(), now);
        client.set_active(true);
        client.handle_timeout(now).unwrap();
        let mut buf = vec![0u8; 2048];
        let mut failure = None;
        'rounds: for _ in 0..20 {
            let mut to_server = Vec::new();
            while let Output::Packet(p) | Output::PeerCert(p) = client.poll_output(&mut buf) {
                to_server.push(p.to_vec());
            }
            let mut to_client: Vec<Vec<u8>> = Vec::new();
            for p in to_server {
                let mut sink = |d: &[u8]| to_client.push(d.to_vec());
                if let Err(e) = server.handle_packet(now, &p, &mut buf, &mut sink) {
                    failure = Some(e);
                    break 'rounds;
                }
            }
            for p in to_client {
                let _ = client.handle_packet(&p);
            }
        }
        assert_eq!(failure, Some(FailReason::FingerprintMismatch));
    }

    /// RFC 5764 section 4.2 layout: client key, server key, client salt, server salt; for
    /// SRTP_AES128_CM_HMAC_SHA1_80 16+16 then 14+14 bytes, for the RFC 7714 AEAD profiles
    /// 16+16 or 32+32 then 12+12.
    #[test]
    fn exporter_output_is_split_client_key_server_key_client_salt_server_salt() {
        for (profile, suite, k, s) in [
            (
                SrtpProfile::AES128_CM_SHA1_80,
                Suite::AesCm128HmacSha1_80,
                16u8,
                14u8,
            ),
            (SrtpProfile::AEAD_AES_128_GCM, Suite::AeadAes128Gcm, 16, 12),
            (SrtpProfile::AEAD_AES_256_GCM, Suite::AeadAes256Gcm, 32, 12),
        ] {
            let total = 2 * (k + s);
            assert_eq!(usize::from(total), profile.keying_material_len());
            let material: Vec<u8> = (0..total).collect();
            let keys = SrtpKeys::from_exporter(&material, profile).unwrap();
            assert_eq!(keys.suite, suite);
            let client_key: Vec<u8> = (0..k).collect();
            let server_key: Vec<u8> = (k..2 * k).collect();
            let client_salt: Vec<u8> = (2 * k..2 * k + s).collect();
            let server_salt: Vec<u8> = (2 * k + s..total).collect();
            assert_eq!(
                keys.client,
                MasterKey::new(suite, &client_key, &client_salt).unwrap()
            );
            assert_eq!(
                keys.server,
                MasterKey::new(suite, &server_key, &server_salt).unwrap()
            );
            assert_eq!(
                SrtpKeys::from_exporter(&material[..material.len() - 1], profile).unwrap_err(),
                FailReason::NoSrtp
            );
        }
    }
}
