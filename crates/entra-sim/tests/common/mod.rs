//! Helpers shared by the simulator's HTTP tests: a reqwest client that trusts the simulator's CA
//! (ring provider), a tenant with one app, one service principal and one job, and one function
//! per call of the contract.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Client, Method, Response};
use serde_json::Value;
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig};
use sync_client_entra_sim::{
    AppRegistration, ClientSecret, EntraSim, EntraSimConfig, GRAPH_SCOPE, Permission,
    ServicePrincipal, test_app_key,
};

/// Test values only; none of them is a credential anywhere.
pub const CLIENT_ID: &str = "0b5e8f2c-1d3a-4e6f-9a7b-8c9d0e1f2a3b";
pub const CLIENT_SECRET: &str = "entra-sim-test-client-secret-value";
pub const SERVICE_PRINCIPAL: &str = "5a7c9e1f-2b4d-4f6a-8c0e-1a3b5c7d9e0f";
pub const JOB: &str = "scim.0123456789abcdef0123456789abcdef.5a7c9e1f";
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DIRECTORY: &str = "3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c";

pub fn client_with_timeout(sim: &EntraSim, timeout: Duration) -> Client {
    Client::builder()
        .tls_backend_preconfigured(sim.client_tls_config().expect("client TLS config"))
        .timeout(timeout)
        .build()
        .expect("reqwest client builds")
}

pub fn client(sim: &EntraSim) -> Client {
    client_with_timeout(sim, CLIENT_TIMEOUT)
}

/// A simulator holding [`CLIENT_ID`] (secret [`CLIENT_SECRET`] and the test certificate) with
/// `Synchronization.ReadWrite.All`, and [`SERVICE_PRINCIPAL`] with [`JOB`].
pub async fn start_with(config: EntraSimConfig) -> (EntraSim, Client) {
    let sim = EntraSim::start(config).await.expect("simulator starts");
    sim.register_app(
        AppRegistration::new(CLIENT_ID)
            .with_secret(ClientSecret::new(CLIENT_SECRET))
            .with_certificate_pem(test_app_key().certificate_pem)
            .expect("test certificate"),
    );
    sim.grant(CLIENT_ID, Permission::SynchronizationReadWriteAll);
    sim.add_service_principal(ServicePrincipal::new(SERVICE_PRINCIPAL).with_job(JOB, "scim"));
    let client = client(&sim);
    (sim, client)
}

pub async fn start() -> (EntraSim, Client) {
    start_with(EntraSimConfig::default()).await
}

pub async fn token_response(client: &Client, sim: &EntraSim, form: &[(&str, &str)]) -> Response {
    client
        .post(sim.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .await
        .expect("token endpoint answered")
}

/// A client-credentials form with a client secret.
pub fn secret_form<'a>(client_id: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", GRAPH_SCOPE),
        ("client_secret", secret),
    ]
}

/// A client-credentials form with a client assertion.
pub fn assertion_form<'a>(client_id: &'a str, assertion: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", GRAPH_SCOPE),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ]
}

/// The access token of a successful token answer.
pub async fn access_token_of(response: Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("token JSON");
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// An access token of [`CLIENT_ID`] from its client secret.
pub async fn access_token(client: &Client, sim: &EntraSim) -> String {
    access_token_of(token_response(client, sim, &secret_form(CLIENT_ID, CLIENT_SECRET)).await).await
}

/// `400` and the AADSTS code of a refused token request.
pub async fn aadsts(response: Response) -> (u16, String, u64) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("OAuth error JSON");
    let code = body["error_codes"][0].as_u64().expect("error code");
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    (
        status,
        body["error"].as_str().expect("error").to_owned(),
        code,
    )
}

/// `{url}/v1.0/servicePrincipals/{sp}/synchronization{suffix}`.
pub fn graph_url(sim: &EntraSim, service_principal: &str, suffix: &str) -> String {
    format!(
        "{}/v1.0/servicePrincipals/{service_principal}/synchronization{suffix}",
        sim.url()
    )
}

pub async fn graph(
    client: &Client,
    method: Method,
    token: Option<&str>,
    url: &str,
    body: Option<&Value>,
) -> Response {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    request.send().await.expect("Graph answered")
}

pub async fn get(client: &Client, sim: &EntraSim, token: &str, suffix: &str) -> Response {
    let url = graph_url(sim, SERVICE_PRINCIPAL, suffix);
    graph(client, Method::GET, Some(token), &url, None).await
}

pub async fn post(
    client: &Client,
    sim: &EntraSim,
    token: &str,
    suffix: &str,
    body: Option<&Value>,
) -> Response {
    let url = graph_url(sim, SERVICE_PRINCIPAL, suffix);
    graph(client, Method::POST, Some(token), &url, body).await
}

pub async fn put_secrets(
    client: &Client,
    sim: &EntraSim,
    token: &str,
    pairs: &[(&str, &str)],
) -> Response {
    let url = graph_url(sim, SERVICE_PRINCIPAL, "/secrets");
    let body = key_values("value", pairs);
    graph(client, Method::PUT, Some(token), &url, Some(&body)).await
}

/// `{"field":[{"key":…,"value":…},…]}`.
pub fn key_values(field: &str, pairs: &[(&str, &str)]) -> Value {
    let items: Vec<Value> = pairs
        .iter()
        .map(|(key, value)| serde_json::json!({"key": key, "value": value}))
        .collect();
    serde_json::json!({ field: items })
}

/// Status and `error.code` of a Graph error, checking the documented shape.
pub async fn graph_error(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("Graph error JSON");
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["innerError"]["request-id"].is_string(), "{body}");
    assert!(error["innerError"]["date"].is_string(), "{body}");
    (status, error["code"].as_str().expect("code").to_owned())
}

/// A broker simulator with one directory whose sync client holds a live token: the broker,
/// that token, and the directory's SCIM base address.
pub async fn broker_with_live_token() -> (BrokerSim, String, String) {
    let broker = BrokerSim::start(BrokerSimConfig::default())
        .await
        .expect("broker simulator starts");
    broker.add_directory_with_defaults(DIRECTORY);
    let token = broker
        .generate_out_of_band(DIRECTORY)
        .expect("token generated");
    let base_address = format!("{}/usergroup/t/{}/scim/v2", broker.url(), broker.tenant());
    (broker, token, base_address)
}
