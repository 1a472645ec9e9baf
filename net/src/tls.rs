//! TLS client configuration (rustls with the `ring` provider, TLS 1.2 and 1.3).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{NetError, Result};

/// Where trust anchors come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roots {
    /// Mozilla's roots bundled in the binary (`webpki-roots`).
    Bundled,
    /// The operating system's store (`rustls-native-certs`).
    System,
    /// No public roots: only the extra CAs given (tests, private venues).
    None,
}

/// Builds a rustls client configuration.
///
/// * `roots`: bundled, system or none;
/// * `extra_ca_pem`: PEM certificates to trust in addition (e.g. the test server's CA);
/// * `alpn`: ALPN protocol ids in preference order (`b"h2"`, `b"http/1.1"`).
pub fn client_config(
    roots: Roots,
    extra_ca_pem: Option<&[u8]>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::Bundled => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(NetError::TlsConfig(format!(
                    "no system root certificates found ({} errors)",
                    found.errors.len()
                )));
            }
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(NetError::TlsConfig("no usable system roots".into()));
            }
        }
        Roots::None => {}
    }
    if let Some(pem) = extra_ca_pem {
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| NetError::TlsConfig(format!("extra CA PEM: {e}")))?;
            store
                .add(cert)
                .map_err(|e| NetError::TlsConfig(format!("extra CA: {e}")))?;
            n += 1;
        }
        if n == 0 {
            return Err(NetError::TlsConfig(
                "extra CA PEM holds no certificate".into(),
            ));
        }
    }
    if store.is_empty() {
        return Err(NetError::TlsConfig("no trust anchors configured".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // After a TLS 1.3 handshake the link takes the traffic secrets and runs its own
    // allocation-free record layer (see `record`).
    cfg.enable_secret_extraction = true;
    Ok(Arc::new(cfg))
}
