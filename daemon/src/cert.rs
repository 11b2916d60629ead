//! `livechatd cert`: HTTPS a LAN user can get. Browsers give the microphone only to
//! https:// pages (W3C Secure Contexts), and a gateway on a LAN has no public name for a
//! public CA to certify, so this makes a local CA and a server certificate signed by it:
//!
//! - `ca.pem`: the CA certificate that phones and laptops install and trust, once;
//! - `cert.pem`: the server certificate for the given names, then the CA (the chain
//!   LIVECHAT_TLS_CERT wants);
//! - `key.pem`: the server's private key (LIVECHAT_TLS_KEY), mode 0600.
//!
//! The CA's private key is never written: it signs this one certificate and is gone, so it
//! cannot sign anything else, and its name constraints (RFC 5280 section 4.2.1.10) limit it
//! to the given names anyway. A CA rather than one self-signed certificate, because iOS and
//! Android trust only CA certificates a user installs, and Chromium refuses a CA
//! certificate as a server's own. Renewing is running the command again (and installing
//! the new `ca.pem`). ECDSA P-256, with ring as everywhere else in the daemon.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
    PKCS_ECDSA_P256_SHA256, SerialNumber,
};

/// Where the service looks for its certificate (systemd/livechatd.env, docs/service.md).
pub const DEFAULT_DIR: &str = "/etc/livechat/tls";
/// Default and longest validity: Apple platforms refuse TLS server certificates valid
/// longer than 825 days (support.apple.com/en-us/103769).
pub const MAX_DAYS: u32 = 825;

/// What `livechatd cert` was asked for.
#[derive(Debug)]
pub struct Request {
    pub names: Vec<String>,
    pub out: PathBuf,
    pub days: u32,
    pub force: bool,
}

/// The files written and the fingerprint to check on a device.
#[derive(Debug)]
pub struct Written {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the CA certificate, `AB:CD:...`, as phones and browsers show it.
    pub ca_sha256: String,
}

/// Makes the CA and the server certificate and writes the three files.
pub fn make(req: &Request) -> Result<Written, String> {
    if req.names.is_empty() {
        return Err("cert: give at least one --name (a host name or an IP address)".into());
    }
    if let Some(bad) = req.names.iter().find(|n| !is_name(n)) {
        return Err(format!(
            "cert: --name {bad:?} is neither an IP address nor a host name"
        ));
    }
    if !(1..=MAX_DAYS).contains(&req.days) {
        return Err(format!("cert: --days must be 1..={MAX_DAYS}"));
    }
    let ca_path = req.out.join("ca.pem");
    let cert_path = req.out.join("cert.pem");
    let key_path = req.out.join("key.pem");
    if !req.force {
        for p in [&ca_path, &cert_path, &key_path] {
            if p.exists() {
                return Err(format!(
                    "cert: {} exists; --force replaces it (devices then need the new ca.pem)",
                    p.display()
                ));
            }
        }
    }
    let now = time::OffsetDateTime::now_utc();
    // An hour back, for devices whose clocks run a little behind.
    let not_before = now - time::Duration::hours(1);
    let not_after = now + time::Duration::days(i64::from(req.days));
    fn err(what: &'static str) -> impl Fn(rcgen::Error) -> String {
        move |e| format!("cert: {what}: {e}")
    }

    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "livechat");
    dn.push(
        DnType::CommonName,
        format!("livechat local CA for {}", req.names[0]),
    );
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.name_constraints = Some(NameConstraints {
        permitted_subtrees: req.names.iter().map(|n| subtree(n)).collect(),
        excluded_subtrees: Vec::new(),
    });
    ca.not_before = not_before;
    ca.not_after = not_after;
    ca.serial_number = Some(serial()?);
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err("CA key"))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err("CA certificate"))?;
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let mut leaf =
        CertificateParams::new(req.names.clone()).map_err(|e| format!("cert: bad --name: {e}"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, req.names[0].clone());
    leaf.distinguished_name = dn;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    leaf.serial_number = Some(serial()?);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err("key"))?;
    let cert = leaf.signed_by(&key, &issuer).map_err(err("certificate"))?;

    std::fs::create_dir_all(&req.out)
        .map_err(|e| format!("cert: cannot create {}: {e}", req.out.display()))?;
    write(&ca_path, ca_cert.pem().as_bytes(), 0o644)?;
    write(
        &cert_path,
        format!("{}{}", cert.pem(), ca_cert.pem()).as_bytes(),
        0o644,
    )?;
    write(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, ca_cert.der());
    let ca_sha256 = digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(Written {
        ca: ca_path,
        cert: cert_path,
        key: key_path,
        ca_sha256,
    })
}

/// An IP address, or a host name of letters, digits and `-` in dot-separated labels.
fn is_name(n: &str) -> bool {
    n.parse::<IpAddr>().is_ok()
        || (n.len() <= 253
            && n.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

/// The name constraint for one name: an IP address alone, or a DNS name and its
/// subdomains.
fn subtree(name: &str) -> GeneralSubtree {
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => GeneralSubtree::IpAddress(CidrSubnet::V4(ip.octets(), [255; 4])),
        Ok(IpAddr::V6(ip)) => GeneralSubtree::IpAddress(CidrSubnet::V6(ip.octets(), [255; 16])),
        Err(_) => GeneralSubtree::DnsName(name.to_owned()),
    }
}

/// A random positive 16-byte serial (RFC 5280 section 4.1.2.2: at most 20 bytes).
fn serial() -> Result<SerialNumber, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("cert: OS random number generator: {e}"))?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(SerialNumber::from_slice(&b))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| format!("cert: cannot write {}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cert: cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cert: cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_chain_the_gateway_loads_and_a_key_only_its_owner_reads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("livechat-cert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let req = Request {
            names: vec!["pi.local".into(), "192.168.1.20".into()],
            out: dir.clone(),
            days: MAX_DAYS,
            force: false,
        };
        let w = make(&req).expect("made");
        let chain = std::fs::read_to_string(&w.cert).expect("cert.pem");
        assert_eq!(
            chain.matches("BEGIN CERTIFICATE").count(),
            2,
            "leaf then CA"
        );
        let mode = std::fs::metadata(&w.key)
            .expect("key.pem")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(w.ca_sha256.len(), 32 * 3 - 1);
        crate::tls::acceptor(Some(&w.cert), Some(&w.key)).expect("rustls takes the pair");
        assert!(make(&req).is_err(), "no overwrite without --force");
        make(&Request { force: true, ..req }).expect("--force replaces");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_no_name_and_too_long_a_validity() {
        let out = std::env::temp_dir().join("livechat-cert-never-written");
        let r = |names: Vec<String>, days| Request {
            names,
            out: out.clone(),
            days,
            force: false,
        };
        assert!(make(&r(vec![], 30)).is_err());
        assert!(make(&r(vec!["pi.local".into()], MAX_DAYS + 1)).is_err());
        assert!(make(&r(vec!["not a name".into()], 30)).is_err());
        assert!(!out.exists());
    }
}
