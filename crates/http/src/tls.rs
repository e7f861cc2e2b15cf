//! rustls client configuration with the `ring` provider, set explicitly (never the process default).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How a server's certificate is verified.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificates that are trusted *instead of* the system trust store.
    pub ca_bundle_pem: Option<String>,
    /// Accept any certificate. For labs only; it wins over `ca_bundle_pem`.
    pub insecure_skip_verify: bool,
}

/// The CA bundle is public, but long: `Debug` shows its size only.
impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field(
                "ca_bundle_pem",
                &self
                    .ca_bundle_pem
                    .as_ref()
                    .map(|pem| format!("<{} bytes of PEM>", pem.len())),
            )
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// Builds the TLS settings: `insecure_skip_verify` accepts any certificate, a CA bundle is the
/// only trust anchor when given, otherwise the system trust store is used.
///
/// `needs_tls` is false for `http://` base URLs (tests): then a missing system trust store is not
/// an error, since no TLS connection is ever made (redirects are not followed).
///
/// The error is a one-line message for the caller's configuration error.
pub fn client_config(tls: &TlsConfig, needs_tls: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS setup failed: {error}"))?;

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
                return Err(format!(
                    "no CA bundle is configured and the system trust store is unusable ({error})"
                ));
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

fn root_store(pem: &str) -> Result<RootCertStore, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("CA bundle is not valid PEM: {error}"))?;
    if certificates.is_empty() {
        return Err("CA bundle holds no PEM certificate".to_owned());
    }
    let mut store = RootCertStore::empty();
    for certificate in certificates {
        store
            .add(certificate)
            .map_err(|error| format!("CA bundle holds an unusable certificate: {error}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_size_of_the_ca_bundle_only() {
        let tls = TlsConfig {
            ca_bundle_pem: Some("-----BEGIN CERTIFICATE-----".to_owned()),
            insecure_skip_verify: false,
        };
        let text = format!("{tls:?}");
        assert_eq!(
            text,
            "TlsConfig { ca_bundle_pem: Some(\"<27 bytes of PEM>\"), insecure_skip_verify: false }"
        );
    }

    #[test]
    fn bad_bundles_are_refused_with_a_reason() {
        let bundle = |pem: &str| TlsConfig {
            ca_bundle_pem: Some(pem.to_owned()),
            insecure_skip_verify: false,
        };
        let error = client_config(&bundle(""), true).expect_err("empty");
        assert_eq!(error, "CA bundle holds no PEM certificate");
        let error = client_config(
            &bundle("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            true,
        )
        .expect_err("unusable");
        assert!(
            error.starts_with("CA bundle holds an unusable certificate"),
            "{error}"
        );
        let insecure = TlsConfig {
            ca_bundle_pem: None,
            insecure_skip_verify: true,
        };
        let config = client_config(&insecure, true).expect("insecure mode");
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
