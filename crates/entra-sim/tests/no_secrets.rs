//! Credentials never leave the simulator: not in its traces, its request log or its answers.
//!
//! Its own test binary: tracing's callsite interest is process-wide, so a test that captures
//! traces with a thread-local subscriber must not share its process with tests that log
//! without one.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    CLIENT_ID, CLIENT_SECRET, access_token, assertion_form, get, secret_form, start, token_response,
};
use sync_client_entra_sim::{Call, JwtAlgorithm, test_app_key};

#[tokio::test]
async fn the_request_log_and_the_traces_hold_no_secret_token_or_assertion() {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: the server's tasks log through this thread's subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    let refused =
        token_response(&client, &sim, &secret_form(CLIENT_ID, "wrong-secret-value")).await;
    let refused_body = refused.text().await.unwrap();
    let assertion = test_app_key()
        .client_assertion(CLIENT_ID, &sim.token_url(), JwtAlgorithm::Ps256)
        .unwrap();
    token_response(&client, &sim, &assertion_form(CLIENT_ID, &assertion)).await;
    common::put_secrets(
        &client,
        &sim,
        &token,
        &[
            ("BaseAddress", "https://127.0.0.1:1/scim"),
            ("SecretToken", "scim-token-value"),
        ],
    )
    .await;
    let masked = get(&client, &sim, &token, "/secrets")
        .await
        .text()
        .await
        .unwrap();

    let log = format!("{:?}", sim.requests());
    let traces = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        traces.contains("entra simulator answered"),
        "traces were captured: {traces}"
    );
    for secret in [
        CLIENT_SECRET,
        "wrong-secret-value",
        token.as_str(),
        assertion.as_str(),
        "scim-token-value",
    ] {
        assert!(!log.contains(secret), "request log leaks a credential");
        assert!(!traces.contains(secret), "traces leak a credential");
        assert!(
            !refused_body.contains(secret) && !masked.contains(secret),
            "answers leak a credential"
        );
    }
    let put = sim
        .requests()
        .into_iter()
        .find(|request| request.call == Call::PutSecrets)
        .unwrap();
    assert_eq!(put.secret_keys, ["BaseAddress", "SecretToken"]);
    assert!(put.sent.bearer_token);
    assert_eq!(put.client_id.as_deref(), Some(CLIENT_ID));
}
