//! No secret the client holds or sends ever shows in an error message or in `Debug` output:
//! not the client secret (raw or form-encoded), not a certificate assertion, not a federated
//! token, not an access token, not the secret token being saved; not even when the server
//! echoes the whole request back, in JSON or as text, on every call.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{
    BASE_ADDRESS, CLIENT_SECRET, JOB_ID, MockEntra, Reply, Route, SCIM_TOKEN, SECRET_MARKER, SP_ID,
    client, config, config_with, test_certificate_pem, test_key_pem,
};
use sync_client_graph::{ClientCredential, GraphClient, GraphError, SecretString};

/// Fails when `text` holds any of `secrets` or the marker all test secrets share.
fn assert_clean(text: &str, secrets: &[String]) {
    assert!(!text.contains(SECRET_MARKER), "secret leaked: {text}");
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "secret leaked: {text}");
    }
}

fn form_encoded(secret: &str) -> String {
    form_urlencoded::byte_serialize(secret.as_bytes()).collect()
}

/// Runs every call once against an echoing answer and returns the errors.
async fn every_call_echoed(mock: &MockEntra, client: &GraphClient, json: bool) -> Vec<GraphError> {
    let token = SecretString::from(SCIM_TOKEN);
    let mut errors = Vec::new();
    for status in [400, 401, 403, 500] {
        for route in [
            Route::ListJobs,
            Route::GetJob,
            Route::PutSecrets,
            Route::Validate,
            Route::Restart,
        ] {
            mock.push(route, Reply::Echo { status, json });
            if status == 401 {
                // Retried once with a new token: echo both times.
                mock.push(route, Reply::Echo { status, json });
            }
        }
        let results = [
            client.list_jobs(SP_ID).await.map(|_| ()),
            client.get_job(SP_ID, JOB_ID).await.map(|_| ()),
            client.put_secrets(SP_ID, BASE_ADDRESS, &token).await,
            client.validate_saved_credentials(SP_ID, JOB_ID).await,
            client.restart_quarantined_job(SP_ID, JOB_ID).await,
        ];
        errors.extend(
            results
                .into_iter()
                .map(|result| result.expect_err("echoed")),
        );
    }
    errors
}

/// The access tokens the mock issued so far.
fn issued_tokens(mock: &MockEntra) -> Vec<String> {
    mock.requests()
        .iter()
        .filter_map(support::Recorded::bearer)
        .collect()
}

#[tokio::test]
async fn graph_echoing_the_request_leaks_nothing() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    client.authenticate().await.unwrap();

    let mut errors = every_call_echoed(&mock, &client, true).await;
    errors.extend(every_call_echoed(&mock, &client, false).await);

    let mut secrets = vec![
        CLIENT_SECRET.to_owned(),
        form_encoded(CLIENT_SECRET),
        SCIM_TOKEN.to_owned(),
    ];
    secrets.extend(issued_tokens(&mock));
    assert!(secrets.len() > 4, "tokens were issued: {secrets:?}");
    assert_eq!(errors.len(), 40);
    for error in &errors {
        assert_clean(&error.to_string(), &secrets);
        assert_clean(&format!("{error:?}"), &secrets);
        assert_clean(error.code().unwrap_or_default(), &secrets);
        assert!(
            error.to_string().contains("<redacted>"),
            "the echo was seen and scrubbed: {error}"
        );
    }
}

#[tokio::test]
async fn a_login_echoing_the_client_secret_leaks_nothing() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    for json in [true, false] {
        mock.push(Route::Token, Reply::Echo { status: 400, json });
        let error = client.authenticate().await.expect_err("echoed");
        let secrets = [CLIENT_SECRET.to_owned(), form_encoded(CLIENT_SECRET)];
        assert_ne!(CLIENT_SECRET, form_encoded(CLIENT_SECRET));
        assert_clean(&error.to_string(), &secrets);
        assert_clean(&format!("{error:?}"), &secrets);
        assert!(error.to_string().contains("<redacted>"), "{error}");
    }
}

#[tokio::test]
async fn assertions_and_federated_tokens_are_scrubbed_when_echoed() {
    let mock = MockEntra::start().await;
    mock.set_expires_in(json!(0));
    let certificate = client(config_with(
        &mock,
        ClientCredential::Certificate {
            certificate_pem: test_certificate_pem(),
            private_key_pem: SecretString::from(test_key_pem(false)),
        },
    ));
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("token");
    std::fs::write(&path, "federated-SECRET-7").unwrap();
    let federated = client(config_with(
        &mock,
        ClientCredential::FederatedTokenFile(path),
    ));

    let mut errors = Vec::new();
    for client in [&certificate, &federated] {
        for json in [true, false] {
            mock.push(Route::Token, Reply::Echo { status: 401, json });
            errors.push(client.authenticate().await.expect_err("echoed"));
        }
    }

    let assertions: Vec<String> = mock
        .requests_to(Route::Token)
        .iter()
        .map(|request| request.form()["client_assertion"].clone())
        .collect();
    assert_eq!(assertions.len(), 4);
    assert!(assertions[0].len() > 300, "a signed JWT");
    for error in &errors {
        assert_clean(&error.to_string(), &assertions);
        assert_clean(&format!("{error:?}"), &assertions);
        assert!(error.to_string().contains("<redacted>"), "{error}");
    }
}

#[tokio::test]
async fn debug_and_display_of_configuration_and_clients_hold_no_secret() {
    let mock = MockEntra::start().await;
    let key = test_key_pem(false);
    let key_body = key.lines().nth(1).unwrap().to_owned();
    let credentials = [
        ClientCredential::Secret(SecretString::from(CLIENT_SECRET)),
        ClientCredential::Certificate {
            certificate_pem: test_certificate_pem(),
            private_key_pem: SecretString::from(key.as_str()),
        },
        ClientCredential::FederatedTokenFile(
            "/var/run/secrets/azure/tokens/azure-identity-token".into(),
        ),
    ];
    for credential in credentials {
        let config = config_with(&mock, credential.clone());
        let client = GraphClient::new(config.clone()).unwrap();
        for text in [
            format!("{credential:?}"),
            format!("{config:?}"),
            format!("{client:?}"),
            client.to_string(),
        ] {
            assert_clean(&text, &[CLIENT_SECRET.to_owned(), key_body.clone()]);
            assert!(!text.contains("PRIVATE KEY"), "{text}");
        }
    }
}

#[tokio::test]
async fn a_slow_echo_times_out_without_leaking() {
    let mock = MockEntra::start().await;
    let mut config = config(&mock);
    config.request_timeout = Duration::from_millis(300);
    let client = client(config);
    client.authenticate().await.unwrap();
    mock.push(
        Route::PutSecrets,
        Reply::raw(500, "text/plain", SCIM_TOKEN).after(Duration::from_secs(3)),
    );
    let error = client
        .put_secrets(SP_ID, BASE_ADDRESS, &SecretString::from(SCIM_TOKEN))
        .await
        .expect_err("timed out");
    assert_clean(&error.to_string(), &[SCIM_TOKEN.to_owned()]);
}
