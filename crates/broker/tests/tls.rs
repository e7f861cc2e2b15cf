//! TLS: a custom CA bundle, the system trust store, insecure mode, and bad bundles, against an
//! HTTPS mock on 127.0.0.1 with certificates made by rcgen.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use axum::http::Version;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use support::{DIRECTORY, MockBroker, Route, expect_error, unguarded, vcenter_config};
use sync_client_broker::{
    BrokerClient, CredentialKind, ErrorKind, GenerateRequest, TlsConfig, TokenClient,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A CA and a server certificate it signed for `server_names`.
struct TestPki {
    ca_pem: String,
    server_config: ServerConfig,
}

fn test_pki(server_names: &[&str]) -> TestPki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sync-client test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_certificate = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let names: Vec<String> = server_names.iter().map(|name| (*name).to_owned()).collect();
    let mut server_params = CertificateParams::new(names).expect("server params");
    server_params
        .distinguished_name
        .push(DnType::CommonName, "vcenter.test");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_certificate = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut server_config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![server_certificate.der().clone()], key)
            .expect("server TLS config");
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TestPki {
        ca_pem: ca_certificate.pem(),
        server_config,
    }
}

/// Serves the mock over HTTPS (HTTP/1.1 and HTTP/2) on 127.0.0.1 until the test ends.
async fn start_https(server_config: ServerConfig) -> MockBroker {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let broker = MockBroker::unstarted(listener.local_addr().expect("address"));
    let router = broker.router();
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                // Handshake failures are what some tests expect: nothing to report.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                    .await;
            });
        }
    });
    broker
}

fn client_with_tls(broker: &MockBroker, tls: TlsConfig) -> BrokerClient {
    let mut config = vcenter_config(broker, TokenClient::OperatorClient);
    config.tls = tls;
    support::client(config)
}

const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: Some(60),
};

#[tokio::test]
async fn trusts_a_server_signed_by_the_configured_ca() {
    let pki = test_pki(&["127.0.0.1"]);
    let broker = start_https(pki.server_config).await;
    let client = client_with_tls(
        &broker,
        TlsConfig {
            ca_bundle_pem: Some(pki.ca_pem),
            insecure_skip_verify: false,
        },
    );

    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated over TLS");

    assert!(broker.base_url().starts_with("https://127.0.0.1:"));
    let versions: Vec<Version> = broker
        .requests()
        .iter()
        .map(|request| request.version)
        .collect();
    assert_eq!(versions, [Version::HTTP_2; 3], "ALPN negotiated HTTP/2");
}

#[tokio::test]
async fn refuses_an_unknown_ca_without_a_bundle() {
    let pki = test_pki(&["127.0.0.1"]);
    let broker = start_https(pki.server_config).await;
    let client = client_with_tls(&broker, TlsConfig::default());

    let error = expect_error(client.authenticate().await);

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.status(), None);
    assert!(
        error
            .to_string()
            .starts_with("log in to vCenter: could not connect: "),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("TLS certificate verification failed"),
        "{error}"
    );
    assert!(
        broker.requests().is_empty(),
        "no request crossed the failed handshake"
    );
}

#[tokio::test]
async fn refuses_a_server_signed_by_another_ca() {
    let pki = test_pki(&["127.0.0.1"]);
    let other = test_pki(&["127.0.0.1"]);
    let broker = start_https(pki.server_config).await;
    let client = client_with_tls(
        &broker,
        TlsConfig {
            ca_bundle_pem: Some(other.ca_pem),
            insecure_skip_verify: false,
        },
    );

    let error = expect_error(client.authenticate().await);

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(
        error.to_string().contains(
            "could not connect: TLS certificate verification failed: invalid peer certificate"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn refuses_a_certificate_for_another_host() {
    let pki = test_pki(&["vcenter.test"]);
    let broker = start_https(pki.server_config).await;
    let client = client_with_tls(
        &broker,
        TlsConfig {
            ca_bundle_pem: Some(pki.ca_pem),
            insecure_skip_verify: false,
        },
    );

    let error = expect_error(client.authenticate().await);

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(
        error
            .to_string()
            .contains("TLS certificate verification failed: invalid peer certificate: certificate not valid for name \"127.0.0.1\""),
        "{error}"
    );
}

#[tokio::test]
async fn insecure_skip_verify_accepts_any_certificate() {
    let pki = test_pki(&["vcenter.test"]);
    let broker = start_https(pki.server_config).await;
    let client = client_with_tls(
        &broker,
        TlsConfig {
            ca_bundle_pem: None,
            insecure_skip_verify: true,
        },
    );

    client
        .authenticate()
        .await
        .expect("authenticated without verification");

    assert_eq!(broker.count(Route::BrokerToken), 1);
}

#[tokio::test]
async fn unusable_ca_bundles_are_spec_errors() {
    let broker = MockBroker::start().await;
    let key_only = KeyPair::generate().expect("key").serialize_pem();
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let not_a_certificate = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";
    let cases = [
        ("no PEM at all", "holds no PEM certificate"),
        (key_only.as_str(), "holds no PEM certificate"),
        (bad_base64, "is not valid PEM"),
        (not_a_certificate, "holds an unusable certificate"),
    ];
    for (pem, expected) in cases {
        let mut config = vcenter_config(&broker, TokenClient::OperatorClient);
        config.tls.ca_bundle_pem = Some(pem.to_owned());

        let error = support::checked(BrokerClient::new(config).expect_err("refused"));

        assert_eq!(error.kind(), ErrorKind::Spec);
        assert_eq!(error.endpoint(), None);
        assert!(
            error
                .to_string()
                .starts_with("configure broker client: CA bundle "),
            "{error}"
        );
        assert!(error.to_string().contains(expected), "{error}");
    }
}
