//! D: read a sync-client configuration. E: probe whether an issued access token still works.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::{
    DIRECTORY, MockBroker, Reply, Route, SYNC_MEDIA_TYPE, expect_error, operator_client, unguarded,
};
use sync_client_broker::{
    CredentialKind, ErrorKind, GenerateRequest, IssuedCredential, ReportedLifetime, SecretString,
    SyncClientConfig,
};

const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: Some(60),
};

#[tokio::test]
async fn reads_the_sync_client_configuration() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);

    let config = client.read_sync_client(DIRECTORY).await.expect("read");

    assert_eq!(
        config,
        SyncClientConfig {
            generate_token: Some(true),
            token_ttl: Some(1800),
            client_id: Some("sync-client-1".to_owned()),
            access_token_expires_in: ReportedLifetime::Seconds(21599),
        }
    );
    let request = &broker.requests_to(Route::Read)[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        format!("/usergroup/t/CUSTOMER/broker/directories/{DIRECTORY}/sync-client")
    );
    assert_eq!(request.query, None);
    assert_eq!(request.header("accept").as_deref(), Some(SYNC_MEDIA_TYPE));
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer broker-jwt-SECRET-1")
    );
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn read_tolerates_null_and_missing_fields() {
    let broker = MockBroker::start().await;
    broker.push(
        Route::Read,
        Reply::raw(
            200,
            SYNC_MEDIA_TYPE,
            json!({"generate_token": null, "token_ttl": null}).to_string(),
        ),
    );
    broker.push(Route::Read, Reply::raw(200, SYNC_MEDIA_TYPE, "{}"));
    broker.push(
        Route::Read,
        Reply::raw(
            200,
            SYNC_MEDIA_TYPE,
            json!({"token_ttl": 99_999_999_999_i64, "client_id": 7}).to_string(),
        ),
    );
    let client = operator_client(&broker);

    for _ in 0..3 {
        assert_eq!(
            client.read_sync_client(DIRECTORY).await.expect("read"),
            SyncClientConfig::default()
        );
    }
}

#[tokio::test]
async fn read_never_exposes_secrets_the_broker_returns() {
    let broker = MockBroker::start().await;
    broker.push(Route::Read, Reply::raw(200, SYNC_MEDIA_TYPE, json!({
        "client_id": "c1", "client_secret": "client-secret-SECRET-r", "access_token": "sync-token-SECRET-r"
    }).to_string()));
    let client = operator_client(&broker);

    let config = client.read_sync_client(DIRECTORY).await.expect("read");

    support::assert_no_secret(&format!("{config:?}"));
    assert_eq!(config.client_id.as_deref(), Some("c1"));
}

#[tokio::test]
async fn read_errors_map_like_generate_errors() {
    let cases = [
        (400, ErrorKind::Spec),
        (403, ErrorKind::Permission),
        (404, ErrorKind::NotFound),
        (409, ErrorKind::Conflict),
        (500, ErrorKind::Transient),
        (503, ErrorKind::Transient),
    ];
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);
    for (status, kind) in cases {
        broker.push(Route::Read, Reply::status(status));
        let error = expect_error(client.read_sync_client(DIRECTORY).await);
        assert_eq!(error.kind(), kind, "{status}");
        assert_eq!(error.status(), Some(status));
        assert!(!error.outcome_unknown(), "reads never rotate");
        assert!(error.to_string().starts_with(&format!(
            "read sync-client configuration: broker answered {status}"
        )));
    }
}

#[tokio::test]
async fn read_refetches_the_token_once_on_401() {
    let broker = MockBroker::start().await;
    broker.push(Route::Read, Reply::status(401));
    broker.push(Route::Read, Reply::status(401));
    let client = operator_client(&broker);

    let error = expect_error(client.read_sync_client(DIRECTORY).await);

    assert_eq!(error.kind(), ErrorKind::Auth);
    assert_eq!(broker.count(Route::Read), 2);
    assert_eq!(broker.count(Route::BrokerToken), 2);
}

#[tokio::test]
async fn read_of_malformed_answer_is_transient_but_not_ambiguous() {
    let broker = MockBroker::start().await;
    broker.push(
        Route::Read,
        Reply::raw(200, "text/html", "<html>sign in</html>"),
    );
    let client = operator_client(&broker);

    let error = expect_error(client.read_sync_client(DIRECTORY).await);

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(!error.outcome_unknown());
}

#[tokio::test]
async fn probe_says_live_for_the_current_token_and_dead_after_rotation() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);
    let IssuedCredential::AccessToken {
        access_token: first,
        ..
    } = client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated")
    else {
        panic!("access token expected");
    };

    assert!(client.probe_token(&first).await.expect("probed"));
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("rotated");
    assert!(
        !client.probe_token(&first).await.expect("probed"),
        "rotation revoked the first token"
    );

    let request = &broker.requests_to(Route::Probe)[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/usergroup/t/CUSTOMER/scim/v2/Users");
    assert_eq!(request.query.as_deref(), Some("count=1"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", first.expose()))
    );
    assert_eq!(request.header("vmware-api-session-id"), None);
}

#[tokio::test]
async fn probe_needs_no_vcenter_login() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);

    let live = client
        .probe_token(&SecretString::from("sync-token-SECRET-unknown"))
        .await
        .expect("probed");

    assert!(!live);
    assert_eq!(broker.requests().len(), 1, "only the probe itself");
}

#[tokio::test]
async fn probe_errors_other_than_401_are_errors() {
    let broker = MockBroker::start().await;
    broker.push(Route::Probe, Reply::status(403));
    broker.push(Route::Probe, Reply::json(500, &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "detail": "Token sync-token-SECRET-p failed", "status": "500"})));
    broker.push(Route::Probe, Reply::status(404));
    let client = operator_client(&broker);
    let token = SecretString::from("sync-token-SECRET-p");

    let forbidden = expect_error(client.probe_token(&token).await);
    let failed = expect_error(client.probe_token(&token).await);
    let missing = expect_error(client.probe_token(&token).await);

    assert_eq!(forbidden.kind(), ErrorKind::Permission);
    assert_eq!(
        forbidden.to_string(),
        "probe access token: broker answered 403 Forbidden: the token may not read users of this tenant"
    );
    assert_eq!(failed.kind(), ErrorKind::Transient);
    assert_eq!(
        failed.to_string(),
        "probe access token: broker answered 500 Internal Server Error: Token <redacted> failed"
    );
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}
