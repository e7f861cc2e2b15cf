//! A throwaway CA and a server certificate for the names a client may use to reach the
//! simulator, generated at start. Only the ring crypto provider is used, passed explicitly.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// DNS names on the server certificate: loopback and the in-cluster service names.
pub(crate) const DNS_NAMES: &[&str] = &[
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The generated CA and the server configuration it signs.
pub(crate) struct SimTls {
    pub ca_pem: String,
    pub server_config: Arc<ServerConfig>,
}

fn tls_error(step: &str, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!(
        "kube simulator TLS setup failed at {step}: {error}"
    ))
}

fn ca() -> io::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())
        .map_err(|error| tls_error("CA parameters", error))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-sim-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().map_err(|error| tls_error("CA key", error))?;
    CertifiedIssuer::self_signed(params, key).map_err(|error| tls_error("CA certificate", error))
}

pub(crate) fn generate() -> io::Result<SimTls> {
    let ca = ca()?;
    let names: Vec<String> = DNS_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let mut params =
        CertificateParams::new(names).map_err(|error| tls_error("server parameters", error))?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(Ipv6Addr::LOCALHOST.into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(|error| tls_error("server key", error))?;
    let cert = params
        .signed_by(&key, &ca)
        .map_err(|error| tls_error("server certificate", error))?;

    let chain = vec![cert.der().clone(), ca.der().clone()];
    let private_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut server_config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| tls_error("protocol versions", error))?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|error| tls_error("server certificate chain", error))?;
    // kube-apiserver offers both; Go clients (kubectl) pick HTTP/2.
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(SimTls {
        ca_pem: ca.pem(),
        server_config: Arc::new(server_config),
    })
}
