//! Loopback PKI: a fresh CA and a leaf certificate for `localhost`, `127.0.0.1`, `::1` and the
//! real venue host names (so a client may keep the real SNI), generated with `rcgen` at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Host names in the leaf certificate.
pub const HOSTS: [&str; 21] = [
    "localhost",
    "127.0.0.1",
    "::1",
    "ws-subscriptions-clob.polymarket.com",
    "ws-live-data.polymarket.com",
    "gamma-api.polymarket.com",
    "stream.binance.com",
    "api.binance.com",
    "ws-feed.exchange.coinbase.com",
    "clob.polymarket.com",
    "fstream.binance.com",
    "fapi.binance.com",
    "ws.kraken.com",
    "api.gemini.com",
    "stream.bybit.com",
    "ws.okx.com",
    "www.deribit.com",
    "ws.bitstamp.net",
    "www.bitstamp.net",
    "api.bybit.com",
    "ws-live-v2.polymarket.com",
];

/// TLS setup errors.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation.
    #[error("generating certificates: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// rustls configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Writing the PEM files.
    #[error("writing {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// The generated material.
#[derive(Debug)]
pub struct Pki {
    /// `cert_dir/ca.pem`: the CA clients must trust.
    pub ca_pem_path: PathBuf,
    /// The rustls server configuration (leaf + CA chain, ALPN http/1.1).
    pub server: Arc<rustls::ServerConfig>,
}

fn write(path: &Path, text: &str) -> Result<(), TlsError> {
    std::fs::write(path, text).map_err(|source| TlsError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Generate the CA and leaf, write `ca.pem`, `leaf.pem` and `leaf.key` into `cert_dir`.
pub fn generate(cert_dir: &Path) -> Result<Pki, TlsError> {
    std::fs::create_dir_all(cert_dir).map_err(|source| TlsError::Io {
        path: cert_dir.display().to_string(),
        source,
    })?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(
        DnType::CommonName,
        "ringbolt sim loopback CA (emulated venues)",
    );
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(HOSTS.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
    leaf.distinguished_name
        .push(DnType::CommonName, "ringbolt sim emulated venue");
    leaf.is_ca = IsCa::NoCa;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    let ca_pem_path = cert_dir.join("ca.pem");
    write(&ca_pem_path, &ca_cert.pem())?;
    write(&cert_dir.join("leaf.pem"), &leaf_cert.pem())?;
    write(&cert_dir.join("leaf.key"), &leaf_key.serialize_pem())?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Pki {
        ca_pem_path,
        server: Arc::new(server),
    })
}
