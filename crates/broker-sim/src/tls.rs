//! A throwaway CA and server certificate for 127.0.0.1, generated at start and replaceable at
//! run time (a certificate re-issued by a new CA, as when vCenter's certificate is renewed).
//!
//! Only the ring crypto provider is used, passed explicitly, so nothing depends on a
//! process-wide default provider.

use std::io;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The CA that signed the certificate the server presents.
#[derive(Clone)]
struct Authority {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
}

/// The server's TLS setup: its configuration and the current CA.
pub(crate) struct SimTls {
    pub server_config: Arc<ServerConfig>,
    certificate: Arc<CurrentCertificate>,
    authority: Mutex<Authority>,
}

/// Hands every new TLS connection the certificate that is current at its handshake.
#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
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
    let (authority, key) = issue()?;
    let certificate = Arc::new(CurrentCertificate(RwLock::new(key)));
    let mut server_config = ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error("protocol versions", error))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // No session resumption: a resumed session skips the certificate, so a client of the old CA
    // would keep working after a rotation. (A real certificate change restarts the server and
    // loses its session cache the same way.)
    server_config.session_storage = Arc::new(NoServerSessionStorage {});
    server_config.send_tls13_tickets = 0;
    Ok(SimTls {
        server_config: Arc::new(server_config),
        certificate,
        authority: Mutex::new(authority),
    })
}

impl SimTls {
    pub(crate) fn ca_pem(&self) -> String {
        self.authority().ca_pem
    }

    /// A client configuration (ring provider) that trusts only the current CA.
    pub(crate) fn client_config(&self) -> io::Result<ClientConfig> {
        client_config(&self.authority().ca_der)
    }

    /// Replaces the CA and the server certificate; returns the new CA's PEM. Handshakes from
    /// now on present the new certificate.
    pub(crate) fn rotate(&self) -> io::Result<String> {
        let (authority, key) = issue()?;
        let ca_pem = authority.ca_pem.clone();
        *self
            .certificate
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = key;
        *self
            .authority
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = authority;
        Ok(ca_pem)
    }

    fn authority(&self) -> Authority {
        self.authority
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A new CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
fn issue() -> io::Result<(Authority, Arc<CertifiedKey>)> {
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
    let signing_key = ring_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| tls_error("server key loading", error))?;
    Ok((
        Authority {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
        },
        Arc::new(CertifiedKey::new(chain, signing_key)),
    ))
}

/// A client configuration (ring provider) that trusts only the simulator's CA.
fn client_config(ca_der: &CertificateDer<'static>) -> io::Result<ClientConfig> {
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
