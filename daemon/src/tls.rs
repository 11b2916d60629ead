//! TLS for the gateway (wss://): rustls with the ring provider, certificate chain and key
//! from PEM files (LIVECHAT_TLS_CERT, LIVECHAT_TLS_KEY).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use log::debug;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete the TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The acceptor for the configured certificate, `Ok(None)` when TLS is off. An error
/// names the setting at fault; it never contains key material.
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<TlsAcceptor>, String> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => return Ok(None),
        _ => return Err("LIVECHAT_TLS_CERT and LIVECHAT_TLS_KEY must be set together".into()),
    };
    let cert_pem = std::fs::read(cert_path).map_err(|e| {
        format!(
            "LIVECHAT_TLS_CERT: cannot read {}: {e}",
            cert_path.display()
        )
    })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("LIVECHAT_TLS_CERT: {}: bad PEM: {e}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "LIVECHAT_TLS_CERT: {}: no CERTIFICATE block",
            cert_path.display()
        ));
    }
    let key_pem = std::fs::read(key_path)
        .map_err(|e| format!("LIVECHAT_TLS_KEY: cannot read {}: {e}", key_path.display()))?;
    // The parser's error says what it expected, not what the file holds: safe to show.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "LIVECHAT_TLS_KEY: {}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            key_path.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "LIVECHAT_TLS_KEY: {} does not fit the certificate in {}: {e}",
                key_path.display(),
                cert_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// The server side of the TLS handshake, bounded in time; `None` (logged at debug) when
/// the client fails it.
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            debug!("TLS handshake with {peer} failed: {e}");
            None
        }
        Err(_) => {
            debug!("TLS handshake with {peer} timed out");
            None
        }
    }
}
