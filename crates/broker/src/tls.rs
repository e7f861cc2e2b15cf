//! rustls client configuration with the `ring` provider, set explicitly (never the process default).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TlsConfig;
use crate::error::BrokerError;

/// Builds the TLS settings: `insecure_skip_verify` accepts any certificate, a CA bundle is the
/// only trust anchor when given, otherwise the system trust store is used.
///
/// `needs_tls` is false for `http://` base URLs (tests): then a missing system trust store is not
/// an error, since no TLS connection is ever made (redirects are not followed).
pub(crate) fn client_config(tls: &TlsConfig, needs_tls: bool) -> Result<ClientConfig, BrokerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| BrokerError::configure(&format!("TLS setup failed: {error}")))?;

    let mut config = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FixedVerdict {
                provider,
                verdict: Verdict::AcceptAny,
            }))
            .with_no_client_auth()
    } else if let Some(pem) = &tls.ca_bundle_pem {
        builder
            .with_root_certificates(root_store(pem)?)
            .with_no_client_auth()
    } else {
        let verifier: Arc<dyn ServerCertVerifier> = match rustls_platform_verifier::Verifier::new(
            provider.clone(),
        ) {
            Ok(verifier) => Arc::new(verifier),
            Err(error) if needs_tls => {
                return Err(BrokerError::configure(&format!(
                    "no CA bundle is configured and the system trust store is unusable ({error})"
                )));
            }
            Err(_) => Arc::new(FixedVerdict {
                provider,
                verdict: Verdict::RejectAll,
            }),
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn root_store(pem: &str) -> Result<RootCertStore, BrokerError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| BrokerError::configure(&format!("CA bundle is not valid PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(BrokerError::configure("CA bundle holds no PEM certificate"));
    }
    let mut store = RootCertStore::empty();
    for certificate in certificates {
        store.add(certificate).map_err(|error| {
            BrokerError::configure(&format!("CA bundle holds an unusable certificate: {error}"))
        })?;
    }
    Ok(store)
}

/// A verifier with a fixed verdict on certificates: `AcceptAny` for `insecure_skip_verify`
/// (handshake signatures are still checked, so the connection is at least bound to the key the
/// server presented), `RejectAll` when no trust anchors exist at all.
#[derive(Debug)]
struct FixedVerdict {
    provider: Arc<CryptoProvider>,
    verdict: Verdict,
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    AcceptAny,
    RejectAll,
}

impl ServerCertVerifier for FixedVerdict {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.verdict {
            Verdict::AcceptAny => Ok(ServerCertVerified::assertion()),
            // Without trust anchors every issuer is unknown.
            Verdict::RejectAll => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
