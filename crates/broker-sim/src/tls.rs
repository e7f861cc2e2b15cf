//! A throwaway CA and server certificate for 127.0.0.1, generated at start.
//!
//! Only the ring crypto provider is used, passed explicitly, so nothing depends on a
//! process-wide default provider.

use std::io;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The generated CA and the server configuration it signs.
pub(crate) struct SimTls {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub server_config: Arc<ServerConfig>,
}

fn tls_error(step: &str, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!(
        "broker simulator TLS setup failed at {step}: {error}"
    ))
}

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn generate() -> io::Result<SimTls> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())
        .map_err(|error| tls_error("CA parameters", error))?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sync-client broker simulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|error| tls_error("CA key", error))?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
        .map_err(|error| tls_error("CA certificate", error))?;

    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(|error| tls_error("server parameters", error))?;
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(|error| tls_error("server key", error))?;
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .map_err(|error| tls_error("server certificate", error))?;

    let chain = vec![server_cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut server_config = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error("protocol versions", error))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| tls_error("server certificate chain", error))?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    Ok(SimTls {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_config: Arc::new(server_config),
    })
}

/// A client configuration (ring provider) that trusts only the simulator's CA.
pub(crate) fn client_config(ca_der: &CertificateDer<'static>) -> io::Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca_der.clone())
        .map_err(|error| tls_error("client trust store", error))?;
    Ok(ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error("client protocol versions", error))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
