//! C: generate credentials — the exact request, both credential kinds, every status, lenient
//! answers, the 401 retry, and ambiguous outcomes (timeouts, resets).

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{
    DIRECTORY, MockBroker, ObservedOutcomes, Reply, Route, STATIC_BEARER, SYNC_MEDIA_TYPE,
    bearer_config, expect_error, operator_client, unguarded, vcenter_config,
};
use sync_client_broker::{
    BrokerClient, CredentialKind, ErrorKind, GenerateRequest, IssuedCredential, ReportedLifetime,
    TokenClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: Some(1800),
};
const CLIENT_SECRET: GenerateRequest = GenerateRequest {
    kind: CredentialKind::ClientSecret,
    token_ttl_minutes: None,
};

#[tokio::test]
async fn generates_an_access_token_with_the_exact_request() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);

    let issued = client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");

    let request = &broker.requests_to(Route::Generate)[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!("/usergroup/t/CUSTOMER/broker/directories/{DIRECTORY}/sync-client")
    );
    assert_eq!(
        request.query.as_deref(),
        Some("action=generate_credentials")
    );
    assert_eq!(
        request.header("authorization").as_deref(),
        Some("Bearer broker-jwt-SECRET-1")
    );
    assert_eq!(
        request.header("content-type").as_deref(),
        Some(SYNC_MEDIA_TYPE)
    );
    assert_eq!(request.header("accept").as_deref(), Some(SYNC_MEDIA_TYPE));
    assert_eq!(
        request.header("vmware-api-session-id"),
        None,
        "the session stays with vCenter"
    );
    assert_eq!(
        request.json_body(),
        json!({"generate_token": true, "token_ttl": 1800})
    );
    let current = broker.current_sync_token().expect("issued");
    assert_eq!(
        issued,
        IssuedCredential::AccessToken {
            access_token: current.into(),
            expires_in: ReportedLifetime::Seconds(21599),
        }
    );
}

#[tokio::test]
async fn generates_a_client_secret_without_sending_a_ttl() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);

    let issued = client
        .generate_credentials(DIRECTORY, &CLIENT_SECRET, &unguarded())
        .await
        .expect("generated");

    let request = &broker.requests_to(Route::Generate)[0];
    assert_eq!(request.json_body(), json!({"generate_token": false}));
    assert_eq!(
        issued,
        IssuedCredential::ClientSecret {
            client_id: "sync-client-1".to_owned(),
            client_secret: "client-secret-SECRET-1".into(),
        }
    );
}

#[tokio::test]
async fn percent_encodes_tenant_and_directory_id() {
    let broker = MockBroker::start().await;
    let mut config = vcenter_config(&broker, TokenClient::OperatorClient);
    config.tenant = "my tenant/east".to_owned();
    let client = support::client(config);

    client
        .generate_credentials("dir/../x y?z", &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");

    let request = &broker.requests_to(Route::Generate)[0];
    assert_eq!(
        request.path,
        "/usergroup/t/my%20tenant%2Feast/broker/directories/dir%2F..%2Fx%20y%3Fz/sync-client"
    );
    assert_eq!(
        request.query.as_deref(),
        Some("action=generate_credentials")
    );
}

#[tokio::test]
async fn base_url_trailing_slash_and_path_prefix_are_kept_tidy() {
    let broker = MockBroker::start().await;
    let mut config = bearer_config(&broker);
    config.base_url = format!("{}/", broker.base_url());
    let client = support::client(config);

    let _ = client.read_sync_client(DIRECTORY).await;

    let request = &broker.requests()[0];
    assert_eq!(
        request.path,
        format!("/usergroup/t/CUSTOMER/broker/directories/{DIRECTORY}/sync-client")
    );
}

#[tokio::test]
async fn every_documented_status_maps_to_its_kind() {
    let cases = [
        (
            400,
            ErrorKind::Spec,
            false,
            Some(format!("invalid parameters for directory {DIRECTORY}")),
        ),
        (
            403,
            ErrorKind::Permission,
            false,
            Some(format!(
                "forbidden to manage the sync client of directory {DIRECTORY}"
            )),
        ),
        (
            404,
            ErrorKind::NotFound,
            false,
            Some(format!(
                "no sync-client configuration for directory {DIRECTORY}"
            )),
        ),
        (
            409,
            ErrorKind::Conflict,
            false,
            Some(format!(
                "more than one sync-client configuration for directory {DIRECTORY}"
            )),
        ),
        (405, ErrorKind::Spec, false, None),
        (408, ErrorKind::Transient, false, None),
        (429, ErrorKind::Transient, false, None),
        (500, ErrorKind::Transient, false, None),
        (502, ErrorKind::Transient, true, None),
        (503, ErrorKind::Transient, false, None),
        (504, ErrorKind::Transient, true, None),
        (302, ErrorKind::Spec, false, None),
    ];
    let case_count = cases.len();
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);
    for (status, kind, outcome_unknown, hint) in cases {
        broker.push(Route::Generate, Reply::status(status));

        let error = expect_error(
            client
                .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
                .await,
        );

        assert_eq!(error.kind(), kind, "{status}");
        assert_eq!(error.status(), Some(status));
        assert_eq!(error.error_type(), None);
        assert_eq!(error.outcome_unknown(), outcome_unknown, "{status}");
        let reason = reason_phrase(status);
        let expected = match hint {
            Some(hint) => {
                format!("generate credentials: broker answered {status} {reason}: {hint}")
            }
            None => format!("generate credentials: broker answered {status} {reason}"),
        };
        assert_eq!(error.to_string(), expected);
    }
    assert_eq!(
        broker.count(Route::Generate),
        case_count,
        "no status is retried except 401"
    );
}

#[tokio::test]
async fn answers_404_with_the_documented_message() {
    let broker = MockBroker::start().await;
    broker.push(Route::Generate, Reply::status(404));
    let client = operator_client(&broker);

    let error = expect_error(
        client
            .generate_credentials("1b2c", &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(
        error.to_string(),
        "generate credentials: broker answered 404 Not Found: no sync-client configuration for directory 1b2c"
    );
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn unauthorized_generate_refetches_the_token_exactly_once_then_fails() {
    let broker = MockBroker::start().await;
    broker.push(Route::Generate, Reply::status(401));
    broker.push(Route::Generate, Reply::status(401));
    let client = operator_client(&broker);

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Auth);
    assert_eq!(error.status(), Some(401));
    assert!(!error.outcome_unknown(), "a 401 means nothing was rotated");
    assert_eq!(
        error.to_string(),
        "generate credentials: broker answered 401 Unauthorized: broker token rejected"
    );
    assert_eq!(broker.count(Route::Session), 1);
    assert_eq!(broker.count(Route::BrokerToken), 2);
    let bearers: Vec<_> = broker
        .requests_to(Route::Generate)
        .iter()
        .map(|request| request.header("authorization").expect("authorization"))
        .collect();
    assert_eq!(
        bearers,
        ["Bearer broker-jwt-SECRET-1", "Bearer broker-jwt-SECRET-2"]
    );
}

#[tokio::test]
async fn revoked_broker_token_is_replaced_transparently() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");

    broker.revoke_broker_tokens();
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated after refetch");
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("new token is cached");

    assert_eq!(broker.count(Route::BrokerToken), 2);
    assert_eq!(broker.count(Route::Generate), 4);
    assert_eq!(broker.count(Route::Session), 1);
}

#[tokio::test]
async fn static_bearer_token_skips_vcenter_and_is_not_retried() {
    let broker = MockBroker::start().await;
    let client = support::client(bearer_config(&broker));

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Auth);
    let requests = broker.requests();
    assert_eq!(requests.len(), 1, "no login, no token fetch, no retry");
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {STATIC_BEARER}"))
    );
    let status = client.authenticate().await.expect("nothing to check");
    assert_eq!(status.broker_token_expires_in, None);
    assert_eq!(broker.requests().len(), 1);
}

#[tokio::test]
async fn accepts_missing_and_null_optional_fields() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);
    broker.push(Route::Generate, media(&json!({"access_token": "sync-token-SECRET-a", "access_token_expire_in": null, "client_secret": null})));
    broker.push(
        Route::Generate,
        media(&json!({"access_token": "sync-token-SECRET-b"})),
    );
    broker.push(Route::Generate, media(&json!({"access_token": "sync-token-SECRET-c", "access_token_expire_in": 0, "_links": null, "token_ttl": null})));

    let mut lifetimes = Vec::new();
    for _ in 0..3 {
        match client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("generated")
        {
            IssuedCredential::AccessToken { expires_in, .. } => lifetimes.push(expires_in),
            other @ IssuedCredential::ClientSecret { .. } => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        lifetimes,
        [
            ReportedLifetime::NotReported,
            ReportedLifetime::NotReported,
            ReportedLifetime::Seconds(0)
        ]
    );

    broker.push(Route::Generate, media(&json!({"client_id": "c1", "client_secret": "client-secret-SECRET-x", "access_token": null, "access_token_expire_in": null})));
    let issued = client
        .generate_credentials(DIRECTORY, &CLIENT_SECRET, &unguarded())
        .await
        .expect("generated");
    assert_eq!(
        issued,
        IssuedCredential::ClientSecret {
            client_id: "c1".to_owned(),
            client_secret: "client-secret-SECRET-x".into()
        }
    );
}

#[tokio::test]
async fn unusable_success_answers_are_transient_with_unknown_outcome() {
    let cases = [
        (ACCESS_TOKEN, Reply::status(200), "the answer is empty"),
        (
            ACCESS_TOKEN,
            Reply::raw(200, "text/html", "<html><title>Portal</title></html>"),
            "the answer is an HTML page \"Portal\", not JSON; a proxy or login portal may have answered",
        ),
        (
            ACCESS_TOKEN,
            media(&json!(["not", "an", "object"])),
            "the answer is not a JSON object",
        ),
        (
            ACCESS_TOKEN,
            media(&json!({"access_token": null, "client_secret": "client-secret-SECRET-z"})),
            "the answer holds no access_token",
        ),
        (
            ACCESS_TOKEN,
            media(&json!({"access_token": ""})),
            "the answer holds no access_token",
        ),
        (
            CLIENT_SECRET,
            media(&json!({"client_id": "c1", "client_secret": null})),
            "the answer holds no client_secret",
        ),
        (
            CLIENT_SECRET,
            media(&json!({"client_secret": "client-secret-SECRET-z"})),
            "the answer holds no client_id",
        ),
        (
            ACCESS_TOKEN,
            Reply::raw(
                200,
                SYNC_MEDIA_TYPE,
                "{\"access_token\": \"sync-token-SECRET-cut",
            ),
            "the answer is not JSON (line 1, column 39)",
        ),
    ];
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);
    for (request, reply, reason) in cases {
        broker.push(Route::Generate, reply);

        let error = expect_error(
            client
                .generate_credentials(DIRECTORY, &request, &unguarded())
                .await,
        );

        assert_eq!(error.kind(), ErrorKind::Transient);
        assert_eq!(error.status(), Some(200));
        assert!(error.outcome_unknown(), "the broker rotated: {error}");
        assert_eq!(
            error.to_string(),
            format!("generate credentials: malformed response (200 {reason})")
        );
    }
}

#[tokio::test]
async fn oversized_answer_is_malformed() {
    let broker = MockBroker::start().await;
    let padding = "x".repeat(2 * 1024 * 1024);
    broker.push(
        Route::Generate,
        media(&json!({"access_token": "sync-token-SECRET-big", "padding": padding})),
    );
    let client = operator_client(&broker);

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(
        error.to_string(),
        "generate credentials: malformed response (200 the answer is too large (over 1 MiB))"
    );
    assert!(error.outcome_unknown());
}

#[tokio::test]
async fn an_endless_chunked_answer_is_cut_at_the_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    // Answers 200 with a chunked body (no Content-Length) far larger than the limit.
    let server = tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return 0_usize;
        };
        let mut received = Vec::new();
        let mut buffer = [0_u8; 4096];
        while !request_complete(&received) {
            match socket.read(&mut buffer).await {
                Ok(read) if read > 0 => received.extend_from_slice(&buffer[..read]),
                _ => return 0,
            }
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {SYNC_MEDIA_TYPE}\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        if socket.write_all(head.as_bytes()).await.is_err() {
            return 0;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
        let mut sent = 0;
        // 64 MiB at most; the client must hang up long before.
        for _ in 0..1024 {
            if socket.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 64 * 1024;
        }
        sent
    });
    let client = support::client(bearer_config_for(&format!("http://{address}")));

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(
        error.to_string(),
        "generate credentials: malformed response (200 the answer is too large (over 1 MiB))"
    );
    assert!(error.outcome_unknown());
    let sent = server.await.expect("server task");
    assert!(
        sent < 64 * 1024 * 1024,
        "the client stopped reading, so the server could not send everything ({sent} bytes)"
    );
}

#[tokio::test]
async fn timeout_after_sending_leaves_the_outcome_unknown() {
    let broker = MockBroker::start().await;
    let mut config = vcenter_config(&broker, TokenClient::OperatorClient);
    config.request_timeout = Duration::from_millis(400);
    let client = support::client(config);
    client.authenticate().await.expect("token cached");
    broker.push(Route::Generate, Reply::DefaultAfter(Duration::from_secs(3)));

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.status(), None);
    assert!(error.outcome_unknown());
    assert_eq!(
        error.to_string(),
        "generate credentials: timed out waiting for the answer (request timeout 400ms)"
    );
    assert_eq!(
        broker.count(Route::Generate),
        1,
        "an ambiguous generate is never retried here"
    );
}

#[tokio::test]
async fn timeout_before_generate_is_not_ambiguous() {
    let broker = MockBroker::start().await;
    let mut config = vcenter_config(&broker, TokenClient::OperatorClient);
    config.request_timeout = Duration::from_millis(400);
    let client = support::client(config);
    broker.push(
        Route::BrokerToken,
        Reply::DefaultAfter(Duration::from_secs(3)),
    );

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(
        !error.outcome_unknown(),
        "nothing reached the generate endpoint"
    );
    assert!(
        error.to_string().starts_with("get broker token: timed out"),
        "{error}"
    );
    assert_eq!(broker.count(Route::Generate), 0);
}

#[tokio::test]
async fn connection_reset_after_sending_leaves_the_outcome_unknown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    // Reads the whole request, then closes without answering (each time, for any retry).
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut received = Vec::new();
            let mut buffer = [0_u8; 4096];
            while !request_complete(&received) {
                match tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await {
                    Ok(Ok(read)) if read > 0 => received.extend_from_slice(&buffer[..read]),
                    _ => break,
                }
            }
            let _ = socket.shutdown().await;
        }
    });
    let mut config = bearer_config_for(&format!("http://{address}"));
    config.request_timeout = Duration::from_secs(5);
    let client = support::client(config);

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.status(), None);
    assert!(error.outcome_unknown(), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("generate credentials: request failed: "),
        "{error}"
    );
    server.abort();
}

#[tokio::test]
async fn refused_connection_is_transient_and_not_ambiguous() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let client = support::client(bearer_config_for(&format!("http://{address}")));

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(!error.outcome_unknown(), "the request was never sent");
    assert!(
        error
            .to_string()
            .starts_with("generate credentials: could not connect: "),
        "{error}"
    );
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(
        !error.to_string().contains("http://"),
        "no URL noise: {error}"
    );
}

#[tokio::test]
async fn invalid_directory_ids_are_refused_before_sending() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);

    for directory in ["", ".", ".."] {
        let error = expect_error(
            client
                .generate_credentials(directory, &ACCESS_TOKEN, &unguarded())
                .await,
        );
        assert_eq!(error.kind(), ErrorKind::Spec, "{directory:?}");
    }
    assert!(broker.requests().is_empty());
}

#[tokio::test]
async fn observer_hears_every_request_once() {
    let broker = MockBroker::start().await;
    let observed = ObservedOutcomes::default();
    let mut config = vcenter_config(&broker, TokenClient::OperatorClient);
    observed.attach(&mut config);
    let client = support::client(config);
    broker.push(Route::Generate, Reply::status(401));
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("after refetch");
    broker.push(Route::Generate, Reply::status(200)); // empty body: unusable

    let _ = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(
        observed.summary(),
        [
            ("session", Some(201), "success"),
            ("broker_token", Some(200), "success"),
            ("generate_credentials", Some(401), "auth"),
            ("broker_token", Some(200), "success"),
            ("generate_credentials", Some(200), "success"),
            ("generate_credentials", Some(200), "transient"),
        ]
    );
}

#[test]
fn operations_are_send_so_they_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let client = BrokerClient::new(sync_client_broker::BrokerConfig::new(
        "https://127.0.0.1:9",
        "CUSTOMER",
        sync_client_broker::BrokerAuth::BearerToken("static-bearer-SECRET-send".into()),
    ))
    .expect("valid");
    let token = "x".into();
    assert_send(&client.authenticate());
    assert_send(&client.generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded()));
    assert_send(&client.read_sync_client(DIRECTORY));
    assert_send(&client.probe_token(&token));
    assert_send(&client.logout());
}

fn media(body: &serde_json::Value) -> Reply {
    Reply::raw(200, SYNC_MEDIA_TYPE, body.to_string())
}

fn bearer_config_for(base_url: &str) -> sync_client_broker::BrokerConfig {
    let mut config = sync_client_broker::BrokerConfig::new(
        base_url,
        "CUSTOMER",
        sync_client_broker::BrokerAuth::BearerToken(STATIC_BEARER.into()),
    );
    config.request_timeout = support::TEST_REQUEST_TIMEOUT;
    config.allow_insecure_http = true;
    config
}

fn request_complete(received: &[u8]) -> bool {
    let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    received.len() >= end + 4 + length
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        other => panic!("no reason for {other}"),
    }
}
