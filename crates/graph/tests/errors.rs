//! Every way a Graph call can fail: each error status with Graph's error body, throttling with
//! and without `Retry-After`, timeouts, dropped connections, HTML and oversized answers,
//! malformed success answers, a refused credential validation, redirects and an untrusted
//! certificate. Each error has the right kind, a bounded one-line message, and no secret.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime};

use serde_json::json;
use support::{
    BASE_ADDRESS, JOB_ID, MockEntra, Reply, Route, SCIM_TOKEN, SP_ID, client, config, expect_error,
    observed_client,
};
use sync_client_graph::{
    GraphCall, GraphClient, GraphConfig, GraphErrorKind, SecretString, TlsConfig,
};

const TOO_LARGE: usize = sync_client_http::MAX_BODY_BYTES + 1;

async fn logged_in(mock: &MockEntra) -> GraphClient {
    let client = client(config(mock));
    client.authenticate().await.expect("logged in");
    client
}

#[tokio::test]
async fn graph_error_statuses_map_to_kinds_with_graphs_code() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    let cases = [
        (
            403,
            "Authorization_RequestDenied",
            GraphErrorKind::Forbidden,
            "Microsoft Graph answered 403 Forbidden: the app needs \
             Synchronization.ReadWrite.All, or Application.ReadWrite.OwnedBy and to own the \
             service principal; Authorization_RequestDenied: boom"
                .to_owned(),
        ),
        (
            404,
            "Request_ResourceNotFound",
            GraphErrorKind::NotFound,
            format!(
                "Microsoft Graph answered 404 Not Found: no service principal {SP_ID} or no job \
                 {JOB_ID}; Request_ResourceNotFound: boom"
            ),
        ),
        (
            409,
            "Conflict",
            GraphErrorKind::Conflict,
            "Microsoft Graph answered 409 Conflict: Conflict: boom".to_owned(),
        ),
        (
            500,
            "InternalServerError",
            GraphErrorKind::Transient,
            "Microsoft Graph answered 500 Internal Server Error: InternalServerError: boom"
                .to_owned(),
        ),
        (
            503,
            "ServiceUnavailable",
            GraphErrorKind::Transient,
            "Microsoft Graph answered 503 Service Unavailable: ServiceUnavailable: boom".to_owned(),
        ),
        (
            504,
            "GatewayTimeout",
            GraphErrorKind::Transient,
            "Microsoft Graph answered 504 Gateway Timeout: GatewayTimeout: boom".to_owned(),
        ),
        (
            400,
            "BadRequest",
            GraphErrorKind::Configuration,
            "Microsoft Graph answered 400 Bad Request: BadRequest: boom".to_owned(),
        ),
    ];
    for (status, code, kind, message) in cases {
        mock.push(Route::GetJob, Reply::graph_error(status, code, "boom"));
        let error = expect_error(client.get_job(SP_ID, JOB_ID).await);
        assert_eq!(error.kind(), kind, "{status}");
        assert_eq!(error.status(), Some(status));
        assert_eq!(error.code(), Some(code));
        assert_eq!(error.request_id(), Some("5a1f0c2e-request"));
        assert_eq!(error.call(), Some(GraphCall::GetJob));
        assert_eq!(error.retry_after(), None);
        assert_eq!(error.message(), message);
        assert_eq!(
            error.to_string(),
            format!("read provisioning job: {message}")
        );
    }
    assert_eq!(client.token_requests(), 1, "only a 401 fetches a new token");
    assert!(
        GraphErrorKind::Forbidden.is_retryable(),
        "transient after consent"
    );
}

#[tokio::test]
async fn the_error_shape_is_read_in_any_case_and_lowercase_innererror() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    mock.push(
        Route::ListJobs,
        Reply::json(
            403,
            &json!({"Error": {"Code": "Authorization_RequestDenied", "Message": "Insufficient privileges to complete the operation.", "innererror": {"request-id": "lower-1", "date": "2024-05-01T10:00:00"}}}),
        ),
    );
    let error = expect_error(client.list_jobs(SP_ID).await);
    assert_eq!(error.kind(), GraphErrorKind::Forbidden);
    assert_eq!(error.code(), Some("Authorization_RequestDenied"));
    assert_eq!(error.request_id(), Some("lower-1"));
    assert!(
        error.to_string().ends_with(
            "Authorization_RequestDenied: Insufficient privileges to complete the operation."
        ),
        "{error}"
    );
}

#[tokio::test]
async fn throttling_carries_retry_after_when_given() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(62));
    let cases = [
        (
            Reply::graph_error(429, "TooManyRequests", "Too many requests")
                .header("retry-after", "30"),
            Some(30..=30),
        ),
        (
            Reply::graph_error(429, "TooManyRequests", "Too many requests")
                .header("retry-after", &in_a_minute),
            Some(55..=62),
        ),
        (
            Reply::graph_error(429, "TooManyRequests", "Too many requests"),
            None,
        ),
        (
            Reply::graph_error(429, "TooManyRequests", "x").header("retry-after", "whenever"),
            None,
        ),
        (
            Reply::graph_error(429, "TooManyRequests", "x").header("retry-after", "99999999"),
            Some(3600..=3600),
        ),
    ];
    for (reply, expected) in cases {
        mock.push(Route::PutSecrets, reply);
        let error = expect_error(
            client
                .put_secrets(SP_ID, BASE_ADDRESS, &SecretString::from(SCIM_TOKEN))
                .await,
        );
        assert_eq!(error.kind(), GraphErrorKind::Throttled);
        assert!(error.kind().is_retryable());
        assert_eq!(error.status(), Some(429));
        let seconds = error.retry_after().map(|wait| wait.as_secs());
        match (&expected, seconds) {
            (Some(range), Some(seconds)) => assert!(range.contains(&seconds), "{seconds}"),
            (None, None) => {}
            other => panic!("retry after {other:?}"),
        }
        if let Some(seconds) = seconds {
            assert!(
                error
                    .to_string()
                    .contains(&format!("retry after {seconds}s")),
                "{error}"
            );
        }
    }
    mock.push(
        Route::GetJob,
        Reply::graph_error(503, "ServiceUnavailable", "later").header("retry-after", "8"),
    );
    let error = expect_error(client.get_job(SP_ID, JOB_ID).await);
    assert_eq!(error.kind(), GraphErrorKind::Transient);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(8)));
    mock.push(
        Route::GetJob,
        Reply::graph_error(500, "InternalServerError", "x").header("retry-after", "8"),
    );
    let error = expect_error(client.get_job(SP_ID, JOB_ID).await);
    assert_eq!(
        error.retry_after(),
        None,
        "only 429 and 503 say when to come back"
    );
}

#[tokio::test]
async fn a_refused_validation_is_its_own_kind() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    mock.push(
        Route::Validate,
        Reply::graph_error(
            400,
            "SystemForCrossDomainIdentityManagementCredentialValidationFailure",
            "The SCIM endpoint answered 401.",
        ),
    );
    mock.push(
        Route::Validate,
        Reply::graph_error(
            500,
            "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable",
            "The SCIM endpoint did not answer.",
        ),
    );
    mock.push(
        Route::Validate,
        Reply::graph_error(500, "InternalError", "x"),
    );
    mock.push(
        Route::Validate,
        Reply::graph_error(403, "Authorization_RequestDenied", "x"),
    );

    let refused = expect_error(client.validate_saved_credentials(SP_ID, JOB_ID).await);
    let unreachable = expect_error(client.validate_saved_credentials(SP_ID, JOB_ID).await);
    let broken = expect_error(client.validate_saved_credentials(SP_ID, JOB_ID).await);
    let forbidden = expect_error(client.validate_saved_credentials(SP_ID, JOB_ID).await);

    assert_eq!(refused.kind(), GraphErrorKind::ValidationFailed);
    assert_eq!(
        refused.to_string(),
        "validate provisioning credentials: Microsoft Graph answered 400 Bad Request: Entra ID \
         could not reach the SCIM endpoint with the saved credentials; \
         SystemForCrossDomainIdentityManagementCredentialValidationFailure: The SCIM endpoint \
         answered 401."
    );
    assert!(!refused.kind().is_retryable());
    assert_eq!(unreachable.kind(), GraphErrorKind::ValidationFailed);
    assert_eq!(broken.kind(), GraphErrorKind::Transient);
    assert_eq!(forbidden.kind(), GraphErrorKind::Forbidden);
    // The same 400 on another call is a refused request, not a validation.
    mock.push(
        Route::Restart,
        Reply::graph_error(400, "BadRequest", "resetScope"),
    );
    let error = expect_error(client.restart_quarantined_job(SP_ID, JOB_ID).await);
    assert_eq!(error.kind(), GraphErrorKind::Configuration);
}

#[tokio::test]
async fn a_slow_answer_times_out_within_the_request_timeout() {
    let mock = MockEntra::start().await;
    let mut config = config(&mock);
    config.request_timeout = Duration::from_millis(500);
    let client = client(config);
    client.authenticate().await.expect("logged in");
    mock.push(Route::GetJob, Reply::DefaultAfter(Duration::from_secs(5)));

    let error = expect_error(client.get_job(SP_ID, JOB_ID).await);

    assert_eq!(error.kind(), GraphErrorKind::Transient);
    assert_eq!(error.status(), None);
    assert_eq!(
        error.to_string(),
        "read provisioning job: timed out waiting for the answer (request timeout 500ms)"
    );
    assert_eq!(mock.count(Route::GetJob), 1, "not retried");
}

#[tokio::test]
async fn dropped_connections_are_transient() {
    let mock = MockEntra::start().await;
    let (client, outcomes) = observed_client(&mock);
    client.authenticate().await.expect("logged in");
    mock.push(Route::PutSecrets, Reply::Drop);
    mock.push(Route::Token, Reply::Drop);
    mock.revoke_tokens();

    let dropped = expect_error(
        client
            .put_secrets(SP_ID, BASE_ADDRESS, &SecretString::from(SCIM_TOKEN))
            .await,
    );
    assert_eq!(dropped.kind(), GraphErrorKind::Transient);
    assert_eq!(dropped.status(), None);
    assert!(
        dropped
            .to_string()
            .starts_with("save provisioning secret token: request failed: "),
        "{dropped}"
    );

    // The token was revoked: the 401 leads to a login whose connection drops.
    let login_dropped = expect_error(client.get_job(SP_ID, JOB_ID).await);
    assert_eq!(login_dropped.kind(), GraphErrorKind::Transient);
    assert_eq!(login_dropped.call(), Some(GraphCall::Token));

    mock.push(
        Route::GetJob,
        Reply::json(200, &support::documented_job(JOB_ID, "Active")).cut(),
    );
    let cut = expect_error(client.get_job(SP_ID, JOB_ID).await);
    assert_eq!(cut.kind(), GraphErrorKind::Transient);
    assert_eq!(cut.status(), Some(200));
    assert!(
        cut.to_string()
            .starts_with("read provisioning job: connection failed while reading the answer"),
        "{cut}"
    );
    let summary = outcomes.summary();
    assert_eq!(
        summary[1..4],
        [
            ("put_secrets", None, "transient"),
            ("get_job", Some(401), "unauthorized"),
            ("token", None, "transient"),
        ]
    );
}

#[tokio::test]
async fn html_pages_are_named_by_their_title_only() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    let page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx SECRET</body></html>";
    mock.push(Route::GetJob, Reply::raw(502, "text/html", page));
    mock.push(
        Route::GetJob,
        Reply::raw(
            200,
            "text/html",
            "<html><title>Sign in to your account</title></html>",
        ),
    );
    mock.push(
        Route::Token,
        Reply::raw(503, "text/html; charset=utf-8", "Service Unavailable"),
    );

    let gateway = expect_error(client.get_job(SP_ID, JOB_ID).await);
    let portal = expect_error(client.get_job(SP_ID, JOB_ID).await);

    assert_eq!(gateway.kind(), GraphErrorKind::Transient);
    assert_eq!(
        gateway.to_string(),
        "read provisioning job: Microsoft Graph answered 502 Bad Gateway: HTML page \"502 Bad Gateway\""
    );
    assert_eq!(portal.kind(), GraphErrorKind::InvalidResponse);
    assert_eq!(
        portal.to_string(),
        "read provisioning job: malformed response (200 the answer is an HTML page \"Sign in \
         to your account\", not JSON; a proxy or login portal may have answered)"
    );
    mock.revoke_tokens();
    let login = expect_error(client.get_job(SP_ID, JOB_ID).await);
    assert_eq!(
        login.to_string(),
        "get Microsoft Graph token: Microsoft Entra login answered 503 Service Unavailable: HTML page"
    );
}

#[tokio::test]
async fn oversized_answers_are_refused_without_reading_them_whole() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    let huge = format!(
        r#"{{"id":"{JOB_ID}","padding":"{}"}}"#,
        "x".repeat(TOO_LARGE)
    );
    mock.push(
        Route::GetJob,
        Reply::raw(200, "application/json", huge.clone()),
    );
    mock.push(
        Route::ListJobs,
        Reply::raw(200, "application/json", huge.clone()).chunked(),
    );
    mock.push(
        Route::PutSecrets,
        Reply::raw(500, "text/plain", huge).chunked(),
    );

    let announced = expect_error(client.get_job(SP_ID, JOB_ID).await);
    let streamed = expect_error(client.list_jobs(SP_ID).await);
    let error_body = expect_error(
        client
            .put_secrets(SP_ID, BASE_ADDRESS, &SecretString::from(SCIM_TOKEN))
            .await,
    );

    for (error, step) in [
        (&announced, "read provisioning job"),
        (&streamed, "list provisioning jobs"),
    ] {
        assert_eq!(error.kind(), GraphErrorKind::InvalidResponse);
        assert_eq!(
            error.to_string(),
            format!("{step}: malformed response (200 the answer is too large (over 1 MiB))")
        );
    }
    assert_eq!(error_body.kind(), GraphErrorKind::Transient);
    assert!(error_body.to_string().chars().count() <= 300);
}

#[tokio::test]
async fn malformed_success_answers_are_invalid_responses() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    let cases = [
        (Reply::status(200), "the answer is empty"),
        (
            Reply::raw(200, "application/json", "{\"id\": "),
            "the answer is not JSON (line 1, column 7)",
        ),
        (
            Reply::json(200, &json!({"templateId": "scim"})),
            "the job has no id",
        ),
        (
            Reply::json(200, &json!([1, 2])),
            "the answer is not a JSON object",
        ),
    ];
    for (reply, reason) in cases {
        mock.push(Route::GetJob, reply);
        let error = expect_error(client.get_job(SP_ID, JOB_ID).await);
        assert_eq!(error.kind(), GraphErrorKind::InvalidResponse);
        assert_eq!(
            error.to_string(),
            format!("read provisioning job: malformed response (200 {reason})")
        );
    }
    mock.push(Route::ListJobs, Reply::json(200, &json!({"jobs": []})));
    let error = expect_error(client.list_jobs(SP_ID).await);
    assert!(
        error
            .to_string()
            .ends_with("the answer holds no job list (value))"),
        "{error}"
    );
    mock.push(
        Route::Token,
        Reply::json(200, &json!({"token_type": "Bearer", "expires_in": 3599})),
    );
    mock.revoke_tokens();
    let error = expect_error(client.get_job(SP_ID, JOB_ID).await);
    assert_eq!(error.kind(), GraphErrorKind::InvalidResponse);
    assert_eq!(
        error.to_string(),
        "get Microsoft Graph token: malformed response (200 the answer holds no access_token)"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mock = MockEntra::start().await;
    let client = logged_in(&mock).await;
    mock.push(
        Route::GetJob,
        Reply::status(302).header("location", &format!("{}/v1.0/elsewhere", mock.base_url())),
    );

    let error = expect_error(client.get_job(SP_ID, JOB_ID).await);

    assert_eq!(error.kind(), GraphErrorKind::Configuration);
    assert_eq!(error.status(), Some(302));
    assert_eq!(mock.count(Route::Unknown), 0, "the token went nowhere else");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_before_anything_is_sent() {
    let mock = MockEntra::start().await;
    let other_ca = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()]).unwrap();
    let mut config = config(&mock);
    config.tls = TlsConfig {
        ca_bundle_pem: Some(other_ca.cert.pem()),
        insecure_skip_verify: false,
    };
    let client = client(config);

    let error = expect_error(client.get_job(SP_ID, JOB_ID).await);

    assert_eq!(error.kind(), GraphErrorKind::Transient);
    assert_eq!(error.call(), Some(GraphCall::Token));
    assert!(
        error.to_string().starts_with(
            "get Microsoft Graph token: could not connect: TLS certificate verification failed"
        ),
        "{error}"
    );
    assert!(mock.requests().is_empty());
    assert_eq!(client.token_requests(), 1, "counted when sent");
}

/// A change that makes a configuration unusable.
type ConfigChange = fn(&mut GraphConfig);

#[tokio::test]
async fn bad_configurations_are_refused_before_any_request() {
    let mock = MockEntra::start().await;
    let cases: Vec<(ConfigChange, &str)> = vec![
        (
            |config| {
                config.endpoints.graph_base = "http://graph.microsoft.com".to_owned();
            },
            "graph_base must start with https://",
        ),
        (
            |config| config.endpoints.login_base = "not a url".to_owned(),
            "login_base is not a valid URL",
        ),
        (
            |config| config.tenant_id = "..".to_owned(),
            "the tenant id must not be \"..\"",
        ),
        (
            |config| config.client_id = " ".to_owned(),
            "the client id is empty",
        ),
        (
            |config| {
                config.credential =
                    sync_client_graph::ClientCredential::Secret(SecretString::from(""));
            },
            "the client secret is empty",
        ),
        (
            |config| config.request_timeout = Duration::ZERO,
            "request_timeout must be positive",
        ),
        (
            |config| config.tls.ca_bundle_pem = Some(String::new()),
            "CA bundle holds no PEM certificate",
        ),
    ];
    for (change, message) in cases {
        let mut config = config(&mock);
        change(&mut config);
        let error = GraphClient::new(config).expect_err("refused");
        assert_eq!(error.kind(), GraphErrorKind::Configuration);
        assert_eq!(error.call(), None);
        assert!(
            error
                .to_string()
                .starts_with(&format!("configure Microsoft Graph client: {message}")),
            "{error}"
        );
    }
    assert!(mock.requests().is_empty());
}
