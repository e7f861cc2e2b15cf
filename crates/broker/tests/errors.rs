//! vAPI and other error bodies: every documented error_type, odd bodies, bounds and scrubbing.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{
    DIRECTORY, MockBroker, PASSWORD, Reply, Route, expect_error, operator_client, unguarded,
};
use sync_client_broker::{CredentialKind, Endpoint, ErrorKind, GenerateRequest};

const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: None,
};

#[tokio::test]
async fn every_documented_vapi_error_type_is_shown_with_its_first_message() {
    let cases = [
        (401, "UNAUTHENTICATED", ErrorKind::Auth),
        (403, "UNAUTHORIZED", ErrorKind::Permission),
        (404, "NOT_FOUND", ErrorKind::NotFound),
        (500, "ERROR", ErrorKind::Transient),
        (503, "SERVICE_UNAVAILABLE", ErrorKind::Transient),
        (504, "TIMED_OUT", ErrorKind::Transient),
        (400, "INVALID_ARGUMENT", ErrorKind::Spec),
        (400, "NOT_ALLOWED_IN_CURRENT_STATE", ErrorKind::Spec),
        (409, "CONCURRENT_CHANGE", ErrorKind::Conflict),
        (500, "SOMETHING_NEW_IN_VSPHERE_9", ErrorKind::Transient),
    ];
    for (status, error_type, kind) in cases {
        let broker = MockBroker::start().await;
        broker.push(
            Route::BrokerToken,
            Reply::vapi(status, error_type, "First message."),
        );
        let client = operator_client(&broker);

        let error = expect_error(client.authenticate().await);

        assert_eq!(error.kind(), kind, "{error_type}");
        assert_eq!(error.status(), Some(status), "{error_type}");
        assert_eq!(error.error_type(), Some(error_type));
        assert_eq!(error.endpoint(), Some(Endpoint::BrokerToken));
        assert!(
            error
                .to_string()
                .ends_with(&format!("{error_type}: First message.")),
            "{error}"
        );
        assert!(
            !error.to_string().contains("Underlying cause"),
            "only the first message"
        );
        assert!(!error.outcome_unknown());
    }
}

#[tokio::test]
async fn vapi_error_with_missing_fields_shows_what_there_is() {
    let broker = MockBroker::start().await;
    broker.push(
        Route::BrokerToken,
        Reply::json(500, &json!({"error_type": "ERROR"})),
    );
    broker.push(
        Route::BrokerToken,
        Reply::json(500, &json!({"error_type": "ERROR", "messages": []})),
    );
    broker.push(
        Route::BrokerToken,
        Reply::json(500, &json!({"messages": [{"default_message": "No type."}]})),
    );
    broker.push(
        Route::BrokerToken,
        Reply::json(
            500,
            &json!({"error_type": null, "messages": [{"id": "x"}], "data": {"k": 1}}),
        ),
    );
    let client = operator_client(&broker);

    let mut shown = Vec::new();
    for _ in 0..4 {
        shown.push(expect_error(client.authenticate().await).to_string());
    }

    let prefix = "get broker token: vCenter answered 500 Internal Server Error";
    assert_eq!(
        shown,
        [
            format!("{prefix}: ERROR"),
            format!("{prefix}: ERROR"),
            format!("{prefix}: No type."),
            prefix.to_owned(),
        ]
    );
}

#[tokio::test]
async fn html_error_page_shows_only_its_title() {
    let broker = MockBroker::start().await;
    let page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
                <body><h1>Bad Gateway</h1><script>var a = 1;</script></body></html>";
    broker.push(Route::BrokerToken, Reply::raw(502, "text/html", page));
    broker.push(
        Route::Generate,
        Reply::raw(503, "text/html", "<html><body>down</body></html>"),
    );
    let client = operator_client(&broker);

    let token_error = expect_error(client.authenticate().await);
    let generate_error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(
        token_error.to_string(),
        "get broker token: vCenter answered 502 Bad Gateway: HTML page \"502 Bad Gateway\""
    );
    assert_eq!(token_error.error_type(), None);
    assert_eq!(
        generate_error.to_string(),
        "generate credentials: broker answered 503 Service Unavailable: HTML page"
    );
}

#[tokio::test]
async fn empty_error_body_shows_the_status_only() {
    let broker = MockBroker::start().await;
    broker.push(Route::BrokerToken, Reply::status(500));
    let client = operator_client(&broker);

    let error = expect_error(client.authenticate().await);

    assert_eq!(
        error.to_string(),
        "get broker token: vCenter answered 500 Internal Server Error"
    );
    assert_eq!(error.error_type(), None);
}

#[tokio::test]
async fn huge_and_multiline_bodies_are_bounded_to_one_short_line() {
    let broker = MockBroker::start().await;
    let text = format!("line one\r\nline two\t\u{1b}[31m{}", "z".repeat(100_000));
    broker.push(Route::BrokerToken, Reply::raw(500, "text/plain", text));
    let long_message = format!("Message\nwith\nbreaks {}", "m".repeat(5_000));
    broker.push(Route::BrokerToken, Reply::vapi(500, "ERROR", &long_message));
    broker.push(
        Route::BrokerToken,
        Reply::raw(
            500,
            "application/octet-stream",
            vec![0xff, 0xfe, 0x00, 0x41],
        ),
    );
    let client = operator_client(&broker);

    let plain = expect_error(client.authenticate().await);
    let vapi = expect_error(client.authenticate().await);
    let binary = expect_error(client.authenticate().await);

    assert!(
        plain.to_string().contains(": line one line two [31mzzz"),
        "{plain}"
    );
    assert!(plain.message().chars().count() <= 250);
    assert!(plain.to_string().ends_with('…'));
    assert!(
        vapi.to_string().contains("ERROR: Message with breaks mmm"),
        "{vapi}"
    );
    assert!(
        binary
            .to_string()
            .starts_with("get broker token: vCenter answered 500"),
        "{binary}"
    );
}

#[tokio::test]
async fn error_bodies_that_echo_credentials_are_scrubbed() {
    let broker = MockBroker::start().await;
    broker.push(
        Route::Session,
        Reply::vapi(
            503,
            "SERVICE_UNAVAILABLE",
            &format!("cannot check password {PASSWORD} now"),
        ),
    );
    broker.push(
        Route::BrokerToken,
        Reply::vapi(500, "ERROR", "session session-SECRET-1 is broken"),
    );
    broker.push(
        Route::Generate,
        Reply::raw(500, "text/plain", "bad token broker-jwt-SECRET-1"),
    );
    let client = operator_client(&broker);

    let login = expect_error(client.authenticate().await);
    let token = expect_error(client.authenticate().await);
    let generate = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert!(
        login
            .to_string()
            .ends_with("cannot check password <redacted> now"),
        "{login}"
    );
    assert!(
        token.to_string().ends_with("session <redacted> is broken"),
        "{token}"
    );
    assert!(
        generate.to_string().ends_with("bad token <redacted>"),
        "{generate}"
    );
}

#[tokio::test]
async fn broker_json_error_shapes_are_understood() {
    let broker = MockBroker::start().await;
    broker.push(
        Route::Generate,
        Reply::json(
            400,
            &json!({"errors": [{"code": "invalid.ttl", "message": "token_ttl too large"}]}),
        ),
    );
    broker.push(
        Route::Generate,
        Reply::json(400, &json!({"message": "bad request"})),
    );
    broker.push(
        Route::Generate,
        Reply::json(400, &json!("plain JSON string")),
    );
    let client = operator_client(&broker);

    let prefix = format!(
        "generate credentials: broker answered 400 Bad Request: invalid parameters for directory {DIRECTORY}"
    );
    for detail in ["token_ttl too large", "bad request", "plain JSON string"] {
        let error = expect_error(
            client
                .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
                .await,
        );
        assert_eq!(error.to_string(), format!("{prefix}; {detail}"));
        assert_eq!(error.kind(), ErrorKind::Spec);
    }
}

#[tokio::test]
async fn error_kinds_have_stable_labels() {
    let labels: Vec<_> = [
        ErrorKind::Spec,
        ErrorKind::Auth,
        ErrorKind::Permission,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Transient,
    ]
    .iter()
    .map(|kind| kind.as_str())
    .collect();
    assert_eq!(
        labels,
        [
            "spec",
            "auth",
            "permission",
            "not_found",
            "conflict",
            "transient"
        ]
    );
    let endpoints: Vec<_> = [
        Endpoint::Session,
        Endpoint::SessionDelete,
        Endpoint::BrokerToken,
        Endpoint::GenerateCredentials,
        Endpoint::ReadSyncClient,
        Endpoint::ProbeToken,
    ]
    .iter()
    .map(|endpoint| endpoint.as_str())
    .collect();
    assert_eq!(
        endpoints,
        [
            "session",
            "session_delete",
            "broker_token",
            "generate_credentials",
            "read_sync_client",
            "probe_token"
        ]
    );
}
