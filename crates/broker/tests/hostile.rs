//! An untrusted broker (or a proxy in front of it), played by the simulator: throttling,
//! broken, slow, oversized and mislabelled answers, absurd lifetimes, and a certificate from a
//! new CA. Nothing may panic, hang past the request timeout, or leave a rotation unreported.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{expect_error, unguarded};
use sync_client_broker::{
    BrokerAuth, BrokerClient, BrokerConfig, CredentialKind, ErrorKind, GenerateRequest,
    IssuedCredential, MAX_BROKER_TOKEN_LIFETIME, ReportedLifetime, SecretString, TlsConfig,
    TokenClient,
};
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, Endpoint, Fault, SyncClients};

const DIRECTORY: &str = "3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c";
const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: Some(60),
};

/// A simulator (HTTPS unless `tls` is false) with [`DIRECTORY`] holding one token-mode client.
async fn simulator(tls: bool) -> BrokerSim {
    let sim = BrokerSim::start(BrokerSimConfig {
        tls,
        ..BrokerSimConfig::default()
    })
    .await
    .expect("simulator starts");
    sim.add_directory(
        DIRECTORY,
        SyncClients::One {
            generate_token: true,
            token_ttl: 60,
        },
    );
    sim
}

fn config_for(sim: &BrokerSim) -> BrokerConfig {
    let mut config = BrokerConfig::new(
        sim.url(),
        sim.tenant(),
        BrokerAuth::VCenter {
            username: sim.username().to_owned(),
            password: SecretString::from(sim.password()),
            token_client: TokenClient::OperatorClient,
        },
    );
    config.request_timeout = support::TEST_REQUEST_TIMEOUT;
    config.allow_insecure_http = sim.ca_pem().is_none();
    config.tls = TlsConfig {
        ca_bundle_pem: sim.ca_pem(),
        insecure_skip_verify: false,
    };
    config
}

fn client_for(sim: &BrokerSim) -> BrokerClient {
    BrokerClient::new(config_for(sim)).expect("valid configuration")
}

fn issued_lifetime(issued: &IssuedCredential) -> ReportedLifetime {
    match issued {
        IssuedCredential::AccessToken { expires_in, .. } => *expires_in,
        IssuedCredential::ClientSecret { .. } => panic!("token mode expected"),
    }
}

#[tokio::test]
async fn throttling_is_transient_with_a_bounded_retry_after() {
    let sim = simulator(false).await;
    let client = client_for(&sim);
    client.authenticate().await.expect("token cached");
    let cases = [
        (
            Fault::on(Endpoint::Generate).too_many_requests(30),
            429,
            Some(30),
        ),
        (
            Fault::on(Endpoint::Generate).status(503).retry_after(7),
            503,
            Some(7),
        ),
        (
            Fault::on(Endpoint::Generate).too_many_requests(0),
            429,
            Some(1),
        ),
        (
            Fault::on(Endpoint::Generate).too_many_requests(86_400 * 365),
            429,
            Some(3600),
        ),
        (
            Fault::on(Endpoint::Generate)
                .status(429)
                .header("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
            429,
            Some(3600),
        ),
        (
            Fault::on(Endpoint::Generate)
                .status(503)
                .header("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT"),
            503,
            Some(1),
        ),
        (
            Fault::on(Endpoint::Generate)
                .status(429)
                .header("retry-after", "whenever"),
            429,
            None,
        ),
        (
            Fault::on(Endpoint::Generate).status(500).retry_after(30),
            500,
            None,
        ),
    ];
    for (fault, status, retry_after) in cases {
        sim.inject(fault);

        let error = expect_error(
            client
                .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
                .await,
        );

        assert_eq!(error.kind(), ErrorKind::Transient, "{status}");
        assert_eq!(error.status(), Some(status));
        assert!(!error.outcome_unknown(), "throttled before rotating");
        assert_eq!(
            error.retry_after(),
            retry_after.map(Duration::from_secs),
            "{error}"
        );
        if let Some(seconds) = retry_after {
            assert!(
                error
                    .to_string()
                    .contains(&format!("retry after {seconds}s")),
                "{error}"
            );
        }
    }
    assert_eq!(sim.generate_count(DIRECTORY), 0);

    sim.inject(Fault::on(Endpoint::Login).too_many_requests(12));
    let fresh = client_for(&sim);
    let error = expect_error(fresh.authenticate().await);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(12)));
    assert_eq!(fresh.login_blocked_until(), None, "429 is not a refusal");
}

#[tokio::test]
async fn a_body_cut_mid_way_on_generate_leaves_the_outcome_unknown() {
    let sim = simulator(false).await;
    let client = client_for(&sim);
    client.authenticate().await.expect("token cached");
    sim.inject(Fault::on(Endpoint::Generate).reset_mid_body());

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.status(), Some(200), "the headers had arrived");
    assert!(error.outcome_unknown(), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("generate credentials: connection failed while reading the answer"),
        "{error}"
    );
    assert_eq!(sim.generate_count(DIRECTORY), 1, "the broker did rotate");
    assert_eq!(
        sim.count(Endpoint::Generate),
        1,
        "and the client did not retry"
    );
}

#[tokio::test]
async fn a_trickling_body_times_out_within_the_request_timeout() {
    let sim = simulator(false).await;
    let mut config = config_for(&sim);
    config.request_timeout = Duration::from_millis(1_500);
    let client = BrokerClient::new(config).expect("valid");
    client.authenticate().await.expect("token cached");
    sim.inject(Fault::on(Endpoint::Generate).slow_body(Duration::from_secs(6)));

    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.status(), Some(200));
    assert!(error.outcome_unknown(), "the broker rotated: {error}");
    assert_eq!(
        error.to_string(),
        "generate credentials: timed out while reading the answer (request timeout 1.5s)"
    );

    // A slow body elsewhere is just a transient failure, never an ambiguous rotation.
    sim.inject(Fault::on(Endpoint::ReadSyncClient).slow_body(Duration::from_secs(6)));
    let error = expect_error(client.read_sync_client(DIRECTORY).await);
    assert!(
        error.to_string().contains("timed out while reading"),
        "{error}"
    );
    assert!(!error.outcome_unknown());
}

#[tokio::test]
async fn a_slow_body_within_the_timeout_is_fine() {
    let sim = simulator(false).await;
    let client = client_for(&sim);
    sim.inject(Fault::on(Endpoint::Generate).slow_body(Duration::from_millis(800)));

    let issued = client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");

    let IssuedCredential::AccessToken { access_token, .. } = issued else {
        panic!("token mode expected");
    };
    assert_eq!(
        sim.current_token(DIRECTORY).as_deref(),
        Some(access_token.expose())
    );
}

#[tokio::test]
async fn oversized_answers_are_refused_without_reading_them_whole() {
    let sim = simulator(false).await;
    let client = client_for(&sim);
    sim.inject(Fault::on(Endpoint::OperatorClientToken).oversized_body());
    let error = expect_error(client.authenticate().await);
    assert_eq!(
        error.to_string(),
        "get broker token: malformed response (200 the answer is too large (over 1 MiB))"
    );
    assert!(!error.outcome_unknown());

    sim.inject(Fault::on(Endpoint::Generate).oversized_body());
    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(error.outcome_unknown(), "the broker rotated: {error}");
    assert!(error.to_string().contains("too large"), "{error}");
    assert_eq!(sim.generate_count(DIRECTORY), 1);

    sim.add_directory("no-sync-client", SyncClients::None);
    sim.inject(Fault::on(Endpoint::ReadSyncClient).oversized_body());
    let error = expect_error(client.read_sync_client("no-sync-client").await);
    assert_eq!(error.kind(), ErrorKind::NotFound, "the status still counts");
}

#[tokio::test]
async fn any_content_type_is_accepted_for_json_but_html_is_not() {
    let sim = simulator(false).await;
    let client = client_for(&sim);
    sim.inject(Fault::on(Endpoint::Generate).content_type("text/plain"));
    sim.inject(Fault::on(Endpoint::OperatorClientToken).content_type("text/html"));

    let issued = client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("valid JSON is JSON, whatever the label");
    assert!(matches!(issued, IssuedCredential::AccessToken { .. }));

    sim.inject(Fault::on(Endpoint::Generate).process_then_html(
        200,
        "<html><head><title>Sign in</title></head>SECRET</html>",
    ));
    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(error.outcome_unknown());
    assert_eq!(
        error.to_string(),
        "generate credentials: malformed response (200 the answer is an HTML page \"Sign in\", \
         not JSON; a proxy or login portal may have answered)"
    );

    sim.inject(Fault::on(Endpoint::Generate).process_then_html(
        502,
        &format!(
            "<html><title>502 Bad Gateway</title><body>{}</body></html>",
            "upstream SECRET details ".repeat(500)
        ),
    ));
    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );
    assert_eq!(error.status(), Some(502));
    assert!(
        error.outcome_unknown(),
        "a gateway error after sending is ambiguous"
    );
    assert_eq!(
        error.to_string(),
        "generate credentials: broker answered 502 Bad Gateway: HTML page \"502 Bad Gateway\""
    );

    sim.inject(Fault::on(Endpoint::Generate).raw(503, "text/html", "Maintenance SECRET page"));
    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );
    assert_eq!(
        error.to_string(),
        "generate credentials: broker answered 503 Service Unavailable: HTML page"
    );
}

#[tokio::test]
async fn reported_token_lifetimes_are_typed_whatever_the_broker_says() {
    let sim = simulator(false).await;
    let client = client_for(&sim);
    let cases = [
        (json!(i64::MAX), ReportedLifetime::Seconds(i64::MAX)),
        (json!(u64::MAX), ReportedLifetime::Seconds(i64::MAX)),
        (json!(1e30), ReportedLifetime::Seconds(i64::MAX)),
        (json!(0), ReportedLifetime::Seconds(0)),
        (json!(-5), ReportedLifetime::Seconds(-5)),
        (json!(-1e30), ReportedLifetime::Seconds(i64::MIN)),
        (json!(1.5), ReportedLifetime::Seconds(1)),
        (Value::Null, ReportedLifetime::NotReported),
    ];
    for (value, expected) in cases {
        sim.inject(Fault::on(Endpoint::Generate).access_token_expire_in(&value));
        let issued = client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .expect("generated");
        assert_eq!(issued_lifetime(&issued), expected, "{value}");
    }
    sim.inject(Fault::on(Endpoint::Generate).omit_field("access_token_expire_in"));
    let issued = client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");
    assert_eq!(issued_lifetime(&issued), ReportedLifetime::NotReported);

    // The broker rotated: the new token is kept, its lifetime marked unreadable for the
    // caller to judge.
    sim.inject(Fault::on(Endpoint::Generate).access_token_expire_in(&json!("soon")));
    let issued = client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("the rotated token is kept");
    assert_eq!(issued_lifetime(&issued), ReportedLifetime::Unreadable);
    let rotations = sim.generate_count(DIRECTORY);
    assert_eq!(rotations, 10);
}

#[tokio::test]
async fn broker_token_lifetimes_never_overflow_the_cache() {
    let sim = simulator(false).await;
    let client = client_for(&sim);

    sim.inject(Fault::on(Endpoint::OperatorClientToken).expires_in(&json!(i64::MAX)));
    let status = client.authenticate().await.expect("no overflow");
    assert_eq!(
        status
            .broker_token_expires_in
            .map(|left| left <= MAX_BROKER_TOKEN_LIFETIME),
        Some(true)
    );
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("generated");
    assert_eq!(sim.count(Endpoint::OperatorClientToken), 1, "cached");
    client.logout().await;
    assert_eq!(sim.open_sessions(), 0, "logout closes the session");

    sim.inject(
        Fault::on(Endpoint::OperatorClientToken)
            .times(2)
            .expires_in(&json!(-1)),
    );
    let status = client.authenticate().await.expect("authenticated");
    assert_eq!(status.broker_token_expires_in, Some(Duration::ZERO));
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("used once");
    assert_eq!(sim.count(Endpoint::OperatorClientToken), 3, "never cached");

    sim.inject(Fault::on(Endpoint::OperatorClientToken).expires_in(&json!("never")));
    let status = client
        .authenticate()
        .await
        .expect("an unknown lifetime is not fatal");
    assert_eq!(status.broker_token_expires_in, None);
}

#[tokio::test]
async fn a_certificate_from_a_new_ca_fails_verification_once_without_retrying() {
    let sim = simulator(true).await;
    let client = client_for(&sim);
    client.authenticate().await.expect("trusted at first");
    let pinned_generates = sim.count(Endpoint::Generate);

    let new_ca = sim.rotate_server_certificate().expect("rotated");

    // The server closes its open connections; a request racing that close may still be answered
    // on the old connection, or fail otherwise, so look (bounded) for the certificate failure on
    // a read, which is never ambiguous.
    let mut certificate_error = None;
    for _ in 0..20 {
        if let Err(error) = client.read_sync_client(DIRECTORY).await {
            let error = support::checked(error);
            if error
                .to_string()
                .contains("certificate verification failed")
            {
                certificate_error = Some(error);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = certificate_error.expect("the new certificate is refused");
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.status(), None);
    assert!(
        error.to_string().starts_with(
            "read sync-client configuration: could not connect: TLS certificate verification \
             failed: invalid peer certificate: "
        ),
        "{error}"
    );

    let handshakes_before = settled_handshake_failures(&sim).await;
    let error = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );
    assert!(
        error
            .to_string()
            .contains("certificate verification failed"),
        "{error}"
    );
    assert!(!error.outcome_unknown(), "nothing was sent: {error}");
    assert_eq!(
        settled_handshake_failures(&sim).await,
        handshakes_before + 1,
        "one handshake per call, no retry loop"
    );
    assert_eq!(sim.count(Endpoint::Generate), pinned_generates);
    assert_eq!(sim.generate_count(DIRECTORY), 0);

    let mut renewed = config_for(&sim);
    renewed.tls.ca_bundle_pem = Some(new_ca);
    let renewed = BrokerClient::new(renewed).expect("valid");
    renewed
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("the new CA is trusted");
}

/// The simulator's count of failed handshakes once it stops changing (bounded wait).
async fn settled_handshake_failures(sim: &BrokerSim) -> usize {
    let mut last = sim.failed_tls_handshakes();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sim.failed_tls_handshakes();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let sim = simulator(false).await;
    let mut config = config_for(&sim);
    config.allow_insecure_http = false;

    let error = support::checked(BrokerClient::new(config).expect_err("refused"));

    assert_eq!(error.kind(), ErrorKind::Spec);
    assert_eq!(error.endpoint(), None);
    assert_eq!(
        error.to_string(),
        "configure broker client: base_url uses plain http://, which would send the password and \
         tokens unencrypted; use https:// or set allowInsecureHttp"
    );
    assert!(sim.requests().is_empty());
}
