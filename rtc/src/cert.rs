//! The server's DTLS certificate (PROTOCOL.md section 4): ECDSA P-256, self-signed, made at
//! start unless LIVECHAT_DTLS_CERT/_KEY name one; its SHA-256 fingerprint goes in every answer
//! (RFC 8122 section 5).

use std::fmt::Write as _;

use dimpl::DtlsCertificate;
use sha2::{Digest, Sha256};

/// Why a certificate could not be made or loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertError {
    /// Key generation or signing failed (no randomness, or the crypto backend refused).
    Generate,
    /// The certificate file holds no PEM `CERTIFICATE` block.
    BadCertificate,
    /// The key file holds no PEM private key that ring can load (PKCS#8 or SEC1, P-256).
    BadKey,
    /// The key does not belong to the certificate.
    KeyMismatch,
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertError::Generate => "could not generate a certificate",
            CertError::BadCertificate => "no PEM CERTIFICATE block",
            CertError::BadKey => "no usable PEM private key (ECDSA P-256, PKCS#8 or SEC1)",
            CertError::KeyMismatch => "the private key does not match the certificate",
        })
    }
}

impl std::error::Error for CertError {}

/// A SHA-256 certificate fingerprint (RFC 8122 section 5), as the raw digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The digest of a DER certificate.
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }

    /// From the SDP form `AB:CD:...` (32 pairs of hex digits, either case).
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let mut out = [0u8; 32];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next()?;
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Fingerprint(out))
    }

    /// The SDP form: upper-case hex pairs joined by colons.
    pub fn to_sdp(&self) -> String {
        let mut s = String::with_capacity(95);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02X}");
        }
        s
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_sdp())
    }
}

/// The certificate and key DTLS presents, with its fingerprint. `Debug` prints no key.
#[derive(Clone)]
pub struct Certificate {
    dtls: DtlsCertificate,
    fingerprint: String,
}

impl Certificate {
    /// A fresh self-signed ECDSA P-256 certificate with a random 128-bit serial (Firefox
    /// refuses two certificates with the same issuer and serial, so the serial must not
    /// repeat across starts or hosts).
    pub fn generate() -> Result<Certificate, CertError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|_| CertError::Generate)?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|_| CertError::Generate)?;
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, "livechatd");
        params.distinguished_name = name;
        let mut serial = [0u8; 16];
        getrandom::fill(&mut serial).map_err(|_| CertError::Generate)?;
        // A positive DER INTEGER without a leading zero byte.
        serial[0] = (serial[0] & 0x7f) | 0x01;
        params.serial_number = Some(serial.to_vec().into());
        let cert = params.self_signed(&key).map_err(|_| CertError::Generate)?;
        Ok(Certificate::from_der(
            cert.der().to_vec(),
            key.serialize_der(),
        ))
    }

    /// From PEM text: the first `CERTIFICATE` block of `cert_pem` and the private key in
    /// `key_pem` (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`), which must be the
    /// certificate's.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Certificate, CertError> {
        let cert = pem::parse_many(cert_pem)
            .map_err(|_| CertError::BadCertificate)?
            .into_iter()
            .find(|p| p.tag() == "CERTIFICATE")
            .ok_or(CertError::BadCertificate)?;
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(|_| CertError::BadKey)?;
        if !key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256) {
            return Err(CertError::BadKey);
        }
        // The SubjectPublicKeyInfo of the certificate carries the key's public point.
        let public = key.public_key_raw();
        let der = cert.contents();
        if public.is_empty() || !der.windows(public.len()).any(|w| w == public) {
            return Err(CertError::KeyMismatch);
        }
        Ok(Certificate::from_der(der.to_vec(), key.serialize_der()))
    }

    fn from_der(certificate: Vec<u8>, private_key: Vec<u8>) -> Certificate {
        let fingerprint = Fingerprint::of_der(&certificate).to_sdp();
        Certificate {
            dtls: DtlsCertificate {
                certificate,
                private_key,
            },
            fingerprint,
        }
    }

    /// The SHA-256 fingerprint as `a=fingerprint:sha-256` wants its value: `AB:CD:...`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The certificate in DER.
    pub fn der(&self) -> &[u8] {
        &self.dtls.certificate
    }

    pub(crate) fn dtls(&self) -> &DtlsCertificate {
        &self.dtls
    }
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_has_a_sha256_fingerprint_of_its_der() {
        let c = Certificate::generate().unwrap();
        assert_eq!(c.fingerprint().len(), 32 * 3 - 1);
        assert_eq!(
            Fingerprint::parse(c.fingerprint()).unwrap(),
            Fingerprint::of_der(c.der())
        );
        // Two starts never share a certificate (and so never a serial).
        assert_ne!(c.der(), Certificate::generate().unwrap().der());
    }

    #[test]
    fn pem_round_trip_and_mismatched_key() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let loaded = Certificate::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
        assert_eq!(loaded.der(), cert.der().as_ref());

        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert_eq!(
            Certificate::from_pem(&cert.pem(), &other.serialize_pem()).unwrap_err(),
            CertError::KeyMismatch
        );
        assert_eq!(
            Certificate::from_pem("not pem", &key.serialize_pem()).unwrap_err(),
            CertError::BadCertificate
        );
        assert_eq!(
            Certificate::from_pem(&cert.pem(), "not pem").unwrap_err(),
            CertError::BadKey
        );
    }

    #[test]
    fn fingerprint_parse_refuses_bad_forms() {
        let good = ["AB"; 32].join(":");
        assert!(Fingerprint::parse(&good).is_some());
        assert!(Fingerprint::parse(&good.to_lowercase()).is_some());
        assert!(Fingerprint::parse(&good[3..]).is_none());
        assert!(Fingerprint::parse(&format!("{good}:AB")).is_none());
        assert!(Fingerprint::parse(&good.replace("AB", "GZ")).is_none());
        assert!(Fingerprint::parse("").is_none());
    }
}
