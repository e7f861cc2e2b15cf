//! B: broker tokens from the operator client and the tenant admin client, caching and refresh.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::{
    DIRECTORY, MockBroker, Reply, Route, TENANT, expect_error, operator_client, unguarded,
    vcenter_config,
};
use sync_client_broker::{
    CredentialKind, ErrorKind, GenerateRequest, MAX_BROKER_TOKEN_LIFETIME, TokenClient,
};

const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: Some(1800),
};

#[tokio::test]
async fn operator_client_token_comes_from_the_operator_client_path() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);

    client.authenticate().await.expect("authenticated");

    let request = &broker.requests_to(Route::BrokerToken)[0];
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.path,
        "/api/vcenter/identity/broker/tenants/operator-client"
    );
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn admin_client_token_comes_from_the_tenant_path_percent_encoded() {
    let broker = MockBroker::start().await;
    let mut config = vcenter_config(&broker, TokenClient::AdminClient);
    config.tenant = "my tenant/east".to_owned();
    let client = support::client(config);

    client.authenticate().await.expect("authenticated");

    let request = &broker.requests_to(Route::BrokerToken)[0];
    assert_eq!(
        request.path,
        "/api/vcenter/identity/broker/tenants/my%20tenant%2Feast/admin-client"
    );
    assert_eq!(
        request.header("accept").as_deref(),
        Some("application/json")
    );
}

#[tokio::test]
async fn token_errors_map_to_kinds_with_hints() {
    let cases = [
        (
            TokenClient::OperatorClient,
            403,
            "UNAUTHORIZED",
            ErrorKind::Permission,
            "get broker token: vCenter answered 403 Forbidden: the vCenter user lacks the privilege VcIdentityProviders.Manage; UNAUTHORIZED: Not permitted.",
        ),
        (
            TokenClient::OperatorClient,
            404,
            "NOT_FOUND",
            ErrorKind::NotFound,
            "get broker token: vCenter answered 404 Not Found: no operator client exists; NOT_FOUND: Not permitted.",
        ),
        (
            TokenClient::AdminClient,
            404,
            "NOT_FOUND",
            ErrorKind::NotFound,
            "get broker token: vCenter answered 404 Not Found: no admin client exists for tenant CUSTOMER; NOT_FOUND: Not permitted.",
        ),
        (
            TokenClient::OperatorClient,
            500,
            "ERROR",
            ErrorKind::Transient,
            "get broker token: vCenter answered 500 Internal Server Error: ERROR: Not permitted.",
        ),
        (
            TokenClient::AdminClient,
            503,
            "SERVICE_UNAVAILABLE",
            ErrorKind::Transient,
            "get broker token: vCenter answered 503 Service Unavailable: SERVICE_UNAVAILABLE: Not permitted.",
        ),
    ];
    for (token_client, status, error_type, kind, message) in cases {
        let broker = MockBroker::start().await;
        broker.push(
            Route::BrokerToken,
            Reply::vapi(status, error_type, "Not permitted."),
        );
        let client = support::client(vcenter_config(&broker, token_client));

        let error = expect_error(client.authenticate().await);

        assert_eq!(error.kind(), kind, "{status}");
        assert_eq!(error.status(), Some(status));
        assert_eq!(error.error_type(), Some(error_type));
        assert_eq!(error.to_string(), message);
        assert_eq!(
            broker.count(Route::BrokerToken),
            1,
            "{status} is not retried"
        );
        assert!(!error.outcome_unknown());
    }
}

#[tokio::test]
async fn reuses_the_token_across_calls() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);

    for _ in 0..3 {
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("generated");
    }

    assert_eq!(broker.count(Route::Session), 1);
    assert_eq!(broker.count(Route::BrokerToken), 1);
    let bearers: Vec<_> = broker
        .requests_to(Route::Generate)
        .iter()
        .map(|request| request.header("authorization").expect("authorization"))
        .collect();
    assert_eq!(bearers, ["Bearer broker-jwt-SECRET-1"; 3]);
}

#[tokio::test]
async fn token_without_expires_in_is_used_for_one_call_only() {
    for expires_in in [None, Some(json!(null))] {
        let broker = MockBroker::start().await;
        broker.set_token_expires_in(expires_in.clone());
        let client = operator_client(&broker);

        let status = client.authenticate().await.expect("authenticated");
        assert_eq!(status.broker_token_expires_in, None, "{expires_in:?}");
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("generated");
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("generated");

        assert_eq!(broker.count(Route::Session), 1, "{expires_in:?}");
        assert_eq!(broker.count(Route::BrokerToken), 3, "{expires_in:?}");
        let bearers: Vec<_> = broker
            .requests_to(Route::Generate)
            .iter()
            .map(|request| request.header("authorization").expect("authorization"))
            .collect();
        assert_eq!(
            bearers,
            ["Bearer broker-jwt-SECRET-2", "Bearer broker-jwt-SECRET-3"]
        );
    }
}

#[tokio::test]
async fn token_that_expires_within_the_margin_is_not_cached() {
    let broker = MockBroker::start().await;
    broker.set_token_expires_in(Some(json!(30))); // margin is 60 s by default
    let client = operator_client(&broker);

    let status = client.authenticate().await.expect("authenticated");
    client.authenticate().await.expect("authenticated");

    assert_eq!(
        status.broker_token_expires_in,
        Some(Duration::from_secs(30))
    );
    assert_eq!(broker.count(Route::BrokerToken), 2);
}

#[tokio::test]
async fn refreshes_the_token_when_it_nears_expiry() {
    let broker = MockBroker::start().await;
    broker.set_token_expires_in(Some(json!(2)));
    let mut config = vcenter_config(&broker, TokenClient::OperatorClient);
    config.token_refresh_margin = Duration::from_millis(1500); // refresh 0.5 s after issue
    let client = support::client(config);

    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");
    assert_eq!(broker.count(Route::BrokerToken), 1, "still fresh");

    tokio::time::sleep(Duration::from_millis(700)).await;
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");

    assert_eq!(
        broker.count(Route::BrokerToken),
        2,
        "refreshed within the margin"
    );
    assert_eq!(broker.count(Route::Session), 1, "the session is reused");
    let last = broker.requests_to(Route::Generate).pop().expect("generate");
    assert_eq!(
        last.header("authorization").as_deref(),
        Some("Bearer broker-jwt-SECRET-2")
    );
}

#[tokio::test]
async fn authenticate_reports_the_remaining_lifetime_of_the_cached_token() {
    let broker = MockBroker::start().await;
    broker.set_token_expires_in(Some(json!(600)));
    let client = operator_client(&broker);

    let first = client.authenticate().await.expect("authenticated");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = client.authenticate().await.expect("authenticated");

    assert_eq!(
        first.broker_token_expires_in,
        Some(Duration::from_secs(600))
    );
    let remaining = second.broker_token_expires_in.expect("known");
    assert!(
        remaining < Duration::from_secs(599) && remaining > Duration::from_secs(590),
        "{remaining:?}"
    );
    assert_eq!(broker.count(Route::BrokerToken), 1);
}

#[tokio::test]
async fn accepts_bearer_token_type_in_any_case_and_rejects_others() {
    let broker = MockBroker::start().await;
    broker.set_token_type("bearer");
    let client = operator_client(&broker);
    client
        .authenticate()
        .await
        .expect("lower-case bearer accepted");

    let broker = MockBroker::start().await;
    broker.set_token_type("MAC");
    let client = operator_client(&broker);
    let error = expect_error(client.authenticate().await);

    assert_eq!(error.kind(), ErrorKind::Spec);
    assert_eq!(error.status(), Some(200));
    assert_eq!(
        error.to_string(),
        "get broker token: vCenter issued a token of type MAC; only Bearer tokens are supported"
    );
}

#[tokio::test]
async fn token_answer_without_access_token_is_transient() {
    let broker = MockBroker::start().await;
    broker.push(
        Route::BrokerToken,
        Reply::json(200, &json!({"token_type": "Bearer", "expires_in": 3600})),
    );
    broker.push(
        Route::BrokerToken,
        Reply::json(200, &json!({"token_type": "Bearer", "access_token": null})),
    );
    broker.push(
        Route::BrokerToken,
        Reply::raw(200, "text/html", "<html><title>Login</title></html>"),
    );
    let client = operator_client(&broker);

    for expected in [
        "get broker token: malformed response (200 the answer holds no access_token)",
        "get broker token: malformed response (200 the answer holds no access_token)",
        "get broker token: malformed response (200 the answer is an HTML page \"Login\", not JSON; a proxy or login portal may have answered)",
    ] {
        let error = expect_error(client.authenticate().await);
        assert_eq!(error.kind(), ErrorKind::Transient);
        assert_eq!(error.to_string(), expected);
    }
    client.authenticate().await.expect("recovers");
}

#[tokio::test]
async fn expires_in_that_is_not_a_number_is_an_unknown_lifetime_used_once() {
    for value in [json!("later"), json!(true), json!({"seconds": 1})] {
        let broker = MockBroker::start().await;
        broker.set_token_expires_in(Some(value.clone()));
        let client = operator_client(&broker);

        let status = client.authenticate().await.expect("authenticated");
        assert_eq!(status.broker_token_expires_in, None, "{value}: unknown");
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("the token is still used once");
        assert_eq!(broker.count(Route::BrokerToken), 2, "{value}: not cached");
    }
}

#[tokio::test]
async fn expires_in_sent_as_a_string_holding_a_number_is_read_as_that_number() {
    let broker = MockBroker::start().await;
    broker.set_token_expires_in(Some(json!("3600")));
    let client = operator_client(&broker);

    let status = client.authenticate().await.expect("authenticated");
    assert!(
        status
            .broker_token_expires_in
            .is_some_and(|d| d.as_secs() > 3000)
    );
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");
    assert_eq!(broker.count(Route::BrokerToken), 1, "cached");
}

#[tokio::test]
async fn expired_on_arrival_tokens_are_used_once_and_never_cached() {
    for value in [
        json!(0),
        json!(-1),
        json!(-0.5),
        json!(i64::MIN),
        json!(-1e300),
    ] {
        let broker = MockBroker::start().await;
        broker.set_token_expires_in(Some(value.clone()));
        let client = operator_client(&broker);

        let status = client.authenticate().await.expect("authenticated");
        assert_eq!(
            status.broker_token_expires_in,
            Some(Duration::ZERO),
            "{value}: reported as already expired"
        );
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("the token is still tried once");

        assert_eq!(broker.count(Route::BrokerToken), 2, "{value}: not cached");
        assert_eq!(broker.count(Route::Session), 1, "{value}");
    }
}

#[tokio::test]
async fn absurdly_long_lifetimes_are_cached_for_a_day_at_most() {
    for value in [
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e30),
        json!(1.5e300),
        json!(90_000),
    ] {
        let broker = MockBroker::start().await;
        broker.set_token_expires_in(Some(value.clone()));
        let client = operator_client(&broker);

        let status = client.authenticate().await.expect("no overflow");
        let reported = status.broker_token_expires_in.expect("known");
        assert!(
            reported <= MAX_BROKER_TOKEN_LIFETIME,
            "{value}: {reported:?}"
        );
        assert!(
            reported > MAX_BROKER_TOKEN_LIFETIME.saturating_sub(Duration::from_secs(60)),
            "{value}: {reported:?}"
        );
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("generated");
        let again = client.authenticate().await.expect("cached");
        assert!(again.broker_token_expires_in <= Some(MAX_BROKER_TOKEN_LIFETIME));
        assert_eq!(broker.count(Route::BrokerToken), 1, "{value}: cached");
    }
}

#[tokio::test]
async fn fractional_expires_in_is_rounded_down() {
    let broker = MockBroker::start().await;
    broker.set_token_expires_in(Some(json!(600.9)));
    let client = operator_client(&broker);

    let status = client.authenticate().await.expect("authenticated");

    let remaining = status.broker_token_expires_in.expect("known");
    assert!(remaining <= Duration::from_secs(600), "{remaining:?}");
    assert!(remaining > Duration::from_secs(590), "{remaining:?}");
}

#[tokio::test]
async fn concurrent_callers_share_one_login_and_one_token() {
    let broker = MockBroker::start().await;
    // Slow answers make every caller arrive while the first one is still logging in.
    broker.push(
        Route::Session,
        Reply::DefaultAfter(Duration::from_millis(200)),
    );
    broker.push(
        Route::BrokerToken,
        Reply::DefaultAfter(Duration::from_millis(200)),
    );
    let client = operator_client(&broker);

    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
                .await
        })
    });
    let results = tokio::time::timeout(Duration::from_secs(30), futures_join_all(calls))
        .await
        .expect("all calls end");

    for result in results {
        result.expect("task").expect("generated");
    }
    assert_eq!(broker.count(Route::Session), 1);
    assert_eq!(broker.count(Route::BrokerToken), 1);
    assert_eq!(broker.count(Route::Generate), 8);
}

#[tokio::test]
async fn tenant_is_sent_exactly_as_configured() {
    let broker = MockBroker::start().await;
    let mut config = vcenter_config(&broker, TokenClient::AdminClient);
    config.tenant = TENANT.to_lowercase();
    let client = support::client(config);

    client.authenticate().await.expect("authenticated");

    let request = &broker.requests_to(Route::BrokerToken)[0];
    assert_eq!(
        request.path,
        "/api/vcenter/identity/broker/tenants/customer/admin-client"
    );
}

/// Awaits every handle in order (no extra dependency for a join helper).
async fn futures_join_all<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let handles: Vec<_> = handles.collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await);
    }
    results
}
