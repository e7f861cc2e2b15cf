//! Trace-level logs of a whole session carry no credentials.
//!
//! This is the only test of its binary: tracing's per-callsite interest cache is process-wide,
//! and a test running in parallel without a subscriber could hide our events.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::{
    DIRECTORY, MockBroker, Reply, Route, assert_no_secret, expect_error, operator_client, unguarded,
};
use sync_client_broker::{CredentialKind, GenerateRequest, IssuedCredential};

/// Collects everything the fmt subscriber writes.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_logs_carry_no_credentials() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let broker = MockBroker::start().await;
    broker.set_token_expires_in(None);
    let client = operator_client(&broker);
    let access = GenerateRequest {
        kind: CredentialKind::AccessToken,
        token_ttl_minutes: Some(5),
    };
    let secret = GenerateRequest {
        kind: CredentialKind::ClientSecret,
        token_ttl_minutes: None,
    };
    let issued = client
        .generate_credentials(DIRECTORY, &access, &unguarded())
        .await
        .expect("generated");
    broker.expire_sessions();
    broker.push(Route::Generate, Reply::status(401));
    client
        .generate_credentials(DIRECTORY, &secret, &unguarded())
        .await
        .expect("generated after retries");
    if let IssuedCredential::AccessToken { access_token, .. } = issued {
        client.probe_token(&access_token).await.expect("probed");
    }
    broker.push(Route::BrokerToken, Reply::vapi(500, "ERROR", "boom"));
    let _ = expect_error(client.authenticate().await);
    client.logout().await;

    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("UTF-8 logs");
    assert!(text.contains("/api/session"), "logs were captured: {text}");
    assert!(text.contains("status=401"), "{text}");
    assert_no_secret(&text);
}
