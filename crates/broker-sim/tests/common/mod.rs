//! Helpers shared by the simulator's HTTP tests: a reqwest client that trusts the simulator's CA
//! (ring provider), and one function per vendor call.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, SYNC_CLIENT_MEDIA_TYPE, SyncClients};

pub const DIRECTORY: &str = "3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c";
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A rustls client configuration with the ring provider, trusting only `ca_pem` (if any).
pub fn tls_config(ca_pem: Option<&str>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(pem) = ca_pem {
        let ca = CertificateDer::from_pem_slice(pem.as_bytes()).expect("CA PEM parses");
        roots.add(ca).expect("CA is a valid trust anchor");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    config
}

pub fn client_with(sim: &BrokerSim, timeout: Duration, alpn: &[&[u8]]) -> Client {
    Client::builder()
        .tls_backend_preconfigured(tls_config(sim.ca_pem().as_deref(), alpn))
        .timeout(timeout)
        .build()
        .expect("reqwest client builds")
}

pub fn client(sim: &BrokerSim) -> Client {
    client_with(sim, CLIENT_TIMEOUT, &[b"http/1.1"])
}

/// Test configuration: HTTPS, one "minute" of token_ttl lasts one second.
pub fn fast_config() -> BrokerSimConfig {
    BrokerSimConfig {
        ttl_unit: Duration::from_secs(1),
        ..BrokerSimConfig::default()
    }
}

/// Starts a simulator with [`DIRECTORY`] holding one token-mode sync client.
pub async fn start(config: BrokerSimConfig) -> (BrokerSim, Client) {
    let sim = BrokerSim::start(config).await.expect("simulator starts");
    sim.add_directory(
        DIRECTORY,
        SyncClients::One {
            generate_token: true,
            token_ttl: 10,
        },
    );
    let client = client(&sim);
    (sim, client)
}

pub async fn login_response(client: &Client, sim: &BrokerSim, password: &str) -> Response {
    client
        .post(format!("{}/api/session", sim.url()))
        .basic_auth(sim.username(), Some(password))
        .send()
        .await
        .expect("login answered")
}

pub async fn login(client: &Client, sim: &BrokerSim) -> String {
    let response = login_response(client, sim, sim.password()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response
        .json::<String>()
        .await
        .expect("session id is a JSON string")
}

pub async fn operator_token_response(client: &Client, sim: &BrokerSim, session: &str) -> Response {
    client
        .get(format!(
            "{}/api/vcenter/identity/broker/tenants/operator-client",
            sim.url()
        ))
        .header("vmware-api-session-id", session)
        .header("accept", "application/json")
        .send()
        .await
        .expect("token request answered")
}

pub async fn admin_token_response(
    client: &Client,
    sim: &BrokerSim,
    session: &str,
    tenant: &str,
) -> Response {
    client
        .get(format!(
            "{}/api/vcenter/identity/broker/tenants/{tenant}/admin-client",
            sim.url()
        ))
        .header("vmware-api-session-id", session)
        .header("accept", "application/json")
        .send()
        .await
        .expect("token request answered")
}

pub async fn access_token(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("TokenInfo JSON");
    body["access_token"]
        .as_str()
        .expect("access_token is a string")
        .to_owned()
}

/// Logs in and fetches an operator-client broker token.
pub async fn broker_token(client: &Client, sim: &BrokerSim) -> String {
    let session = login(client, sim).await;
    access_token(operator_token_response(client, sim, &session).await).await
}

pub fn sync_client_url(sim: &BrokerSim, directory_id: &str) -> String {
    format!(
        "{}/usergroup/t/CUSTOMER/broker/directories/{directory_id}/sync-client",
        sim.url()
    )
}

/// Sends generate_credentials as the operator would (vendor media type, JSON body).
pub async fn send_generate(
    client: &Client,
    sim: &BrokerSim,
    broker_token: &str,
    directory_id: &str,
    body: Option<&Value>,
) -> Result<Response, reqwest::Error> {
    let mut request = client
        .post(format!(
            "{}?action=generate_credentials",
            sync_client_url(sim, directory_id)
        ))
        .bearer_auth(broker_token)
        .header("accept", SYNC_CLIENT_MEDIA_TYPE);
    if let Some(body) = body {
        request = request
            .header("content-type", SYNC_CLIENT_MEDIA_TYPE)
            .body(body.to_string());
    }
    request.send().await
}

pub async fn generate(
    client: &Client,
    sim: &BrokerSim,
    broker_token: &str,
    directory_id: &str,
    body: Option<&Value>,
) -> Response {
    send_generate(client, sim, broker_token, directory_id, body)
        .await
        .expect("generate answered")
}

/// Generates and returns the parsed 200 body.
pub async fn generate_ok(
    client: &Client,
    sim: &BrokerSim,
    broker_token: &str,
    body: Option<&Value>,
) -> Value {
    let response = generate(client, sim, broker_token, DIRECTORY, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    response
        .json()
        .await
        .expect("sync-client configuration JSON")
}

pub async fn probe_with_scheme(
    client: &Client,
    sim: &BrokerSim,
    scheme: &str,
    token: &str,
) -> Response {
    client
        .get(format!(
            "{}/usergroup/t/CUSTOMER/scim/v2/Users?count=1",
            sim.url()
        ))
        .header("authorization", format!("{scheme} {token}"))
        .send()
        .await
        .expect("probe answered")
}

pub async fn probe(client: &Client, sim: &BrokerSim, token: &str) -> StatusCode {
    probe_with_scheme(client, sim, "Bearer", token)
        .await
        .status()
}

pub fn token_of(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .expect("access_token is a string")
        .to_owned()
}
