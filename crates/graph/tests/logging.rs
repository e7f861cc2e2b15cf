//! Trace-level logs of a whole session carry no secret.
//!
//! This is the only test of its binary: tracing's per-callsite interest cache is process-wide,
//! and a test running in parallel without a subscriber could hide our events.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::{
    BASE_ADDRESS, CLIENT_SECRET, JOB_ID, MockEntra, Reply, Route, SCIM_TOKEN, SECRET_MARKER, SP_ID,
    client, config,
};
use sync_client_graph::SecretString;

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
async fn trace_logs_carry_no_secret() {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    client.list_jobs(SP_ID).await.expect("jobs");
    mock.revoke_tokens();
    client
        .put_secrets(SP_ID, BASE_ADDRESS, &SecretString::from(SCIM_TOKEN))
        .await
        .expect("saved after a new token");
    client
        .validate_saved_credentials(SP_ID, JOB_ID)
        .await
        .expect("valid");
    mock.push(
        Route::Restart,
        Reply::Echo {
            status: 500,
            json: true,
        },
    );
    let _ = client.restart_quarantined_job(SP_ID, JOB_ID).await;

    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("UTF-8 logs");
    assert!(
        text.contains("/synchronization/secrets"),
        "logs were captured: {text}"
    );
    assert!(text.contains("status=401"), "{text}");
    assert!(!text.contains(SECRET_MARKER), "secret logged: {text}");
    assert!(
        !text.contains(CLIENT_SECRET),
        "client secret logged: {text}"
    );
}
