//! A throwaway CA and a server certificate for 127.0.0.1 and `localhost`, made at start.
//!
//! Only the ring crypto provider is used, passed explicitly, so nothing depends on a
//! process-wide default provider.

use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

fn tls_error(step: &str, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!(
        "entra simulator TLS setup failed at {step}: {error}"
    ))
}

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Adds the certificates of a PEM to `roots`; returns how many were added.
pub(crate) fn add_pem_roots(roots: &mut RootCertStore, pem: &str) -> usize {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .filter(|certificate| roots.add(certificate.clone()).is_ok())
        .count()
}

/// A client configuration (ring provider) that trusts only `roots`.
pub(crate) fn client_config(roots: Arc<RootCertStore>) -> io::Result<ClientConfig> {
    Ok(ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error("client protocol versions", error))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The server's TLS configuration and the PEM of the CA that signed its certificate.
pub(crate) fn generate() -> io::Result<(Arc<ServerConfig>, String)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())
        .map_err(|error| tls_error("CA parameters", error))?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sync-client entra simulator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(|error| tls_error("CA key", error))?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
        .map_err(|error| tls_error("CA certificate", error))?;

    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()])
        .map_err(|error| tls_error("server parameters", error))?;
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(|error| tls_error("server key", error))?;
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .map_err(|error| tls_error("server certificate", error))?;

    let chain = vec![server_cert.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error("protocol versions", error))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| tls_error("server key loading", error))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), ca.pem()))
}
