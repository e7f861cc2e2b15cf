//! No account lockout: after vCenter refuses a login (401), the client makes no further login
//! attempt for the cool-down, failing fast instead, while bearer tokens and cached broker tokens
//! keep working and a new client (a changed Secret) starts afresh.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime};

use support::{
    DIRECTORY, MockBroker, PASSWORD, Reply, Route, USERNAME, bearer_config, expect_error,
    unguarded, vcenter_config,
};
use sync_client_broker::{
    BrokerAuth, BrokerConfig, CredentialKind, DEFAULT_LOGIN_COOLDOWN, ErrorKind, GenerateRequest,
    SecretString, TokenClient,
};
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, Endpoint, SyncClients};

const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: Some(60),
};

fn with_password(broker: &MockBroker, password: &str) -> BrokerConfig {
    let mut config = vcenter_config(broker, TokenClient::OperatorClient);
    config.auth = BrokerAuth::VCenter {
        username: USERNAME.to_owned(),
        password: SecretString::from(password),
        token_client: TokenClient::OperatorClient,
    };
    config
}

#[tokio::test]
async fn a_refused_login_blocks_further_logins_and_calls_fail_fast() {
    let broker = MockBroker::start().await;
    let client = support::client(with_password(&broker, "wrong-SECRET-password"));
    assert_eq!(client.login_blocked_until(), None);

    let refused = expect_error(client.authenticate().await);
    let before = SystemTime::now();

    assert_eq!(refused.kind(), ErrorKind::Auth);
    assert_eq!(refused.status(), Some(401));
    assert_eq!(refused.retry_after(), Some(DEFAULT_LOGIN_COOLDOWN));
    let until = client.login_blocked_until().expect("blocked");
    let ahead = until.duration_since(before).expect("in the future");
    assert!(ahead <= DEFAULT_LOGIN_COOLDOWN, "{ahead:?}");
    assert!(
        ahead > DEFAULT_LOGIN_COOLDOWN.saturating_sub(Duration::from_secs(60)),
        "{ahead:?}"
    );

    let fast_failures = [
        client.authenticate().await.map(|_| ()),
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await
            .map(|_| ()),
        client.read_sync_client(DIRECTORY).await.map(|_| ()),
    ];
    for result in fast_failures {
        let error = expect_error(result);
        assert_eq!(error.kind(), ErrorKind::Auth);
        assert_eq!(error.status(), None, "no HTTP answer behind it");
        assert!(!error.outcome_unknown(), "nothing was sent");
        let text = error.to_string();
        assert!(text.starts_with("log in to vCenter: vCenter refused the user name or password; to avoid locking the account no login is tried until "), "{text}");
        assert!(
            text.ends_with("changing the login Secret retries at once"),
            "{text}"
        );
        assert!(text.contains(" GMT (in 1"), "{text}");
        let left = error.retry_after().expect("time left");
        assert!(left <= DEFAULT_LOGIN_COOLDOWN && left > Duration::ZERO);
    }
    assert_eq!(broker.count(Route::Session), 1, "one login attempt only");
    assert_eq!(broker.count(Route::BrokerToken), 0);
    assert_eq!(broker.count(Route::Generate), 0);

    // The operator rebuilds the client when the Secret changes: that starts afresh at once.
    let fixed = support::client(with_password(&broker, PASSWORD));
    fixed
        .authenticate()
        .await
        .expect("new credentials are tried");
    assert_eq!(fixed.login_blocked_until(), None);
    assert_eq!(broker.count(Route::Session), 2);
}

#[tokio::test]
async fn the_cooldown_ends_and_then_one_login_is_tried_again() {
    let broker = MockBroker::start().await;
    let mut config = with_password(&broker, "wrong-SECRET-password");
    config.login_cooldown = Duration::from_millis(600);
    let client = support::client(config);

    expect_error(client.authenticate().await);
    let blocked = expect_error(client.authenticate().await);
    assert_eq!(blocked.status(), None);
    assert_eq!(broker.count(Route::Session), 1);

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(client.login_blocked_until(), None, "the cool-down is over");
    let refused_again = expect_error(client.authenticate().await);
    assert_eq!(refused_again.status(), Some(401), "a real attempt");
    assert_eq!(broker.count(Route::Session), 2);
    assert!(client.login_blocked_until().is_some(), "blocked again");
}

#[tokio::test]
async fn a_zero_cooldown_turns_the_protection_off() {
    let broker = MockBroker::start().await;
    let mut config = with_password(&broker, "wrong-SECRET-password");
    config.login_cooldown = Duration::ZERO;
    let client = support::client(config);

    for attempt in 1..=3 {
        let error = expect_error(client.authenticate().await);
        assert_eq!(error.status(), Some(401));
        assert_eq!(error.retry_after(), None);
        assert!(
            error
                .to_string()
                .contains("user name or password rejected;"),
            "{error}"
        );
        assert_eq!(broker.count(Route::Session), attempt);
    }
    assert_eq!(client.login_blocked_until(), None);
}

#[tokio::test]
async fn other_login_failures_do_not_block() {
    let broker = MockBroker::start().await;
    broker.push(
        Route::Session,
        Reply::vapi(503, "SERVICE_UNAVAILABLE", "vCenter is starting."),
    );
    broker.push(Route::Session, Reply::status(500));
    let client = support::client(with_password(&broker, PASSWORD));

    for _ in 0..2 {
        let error = expect_error(client.authenticate().await);
        assert_eq!(error.kind(), ErrorKind::Transient);
        assert_eq!(client.login_blocked_until(), None);
    }
    client.authenticate().await.expect("third time lucky");
    assert_eq!(broker.count(Route::Session), 3);
}

#[tokio::test]
async fn a_password_changed_on_vcenter_blocks_the_relogin_but_not_the_cached_token() {
    let broker = MockBroker::start().await;
    let client = support::client(with_password(&broker, PASSWORD));
    client
        .authenticate()
        .await
        .expect("logged in, token cached");

    // The cached broker token needs no login: generating still works.
    broker.push(
        Route::Session,
        Reply::vapi(401, "UNAUTHENTICATED", "Authentication required."),
    );
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("cached token");
    assert_eq!(broker.count(Route::Session), 1);

    // Then the session and the token die; the re-login is refused and blocks the next ones.
    broker.expire_sessions();
    broker.revoke_broker_tokens();
    let refused = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );
    assert_eq!(refused.kind(), ErrorKind::Auth);
    assert_eq!(
        refused.endpoint(),
        Some(sync_client_broker::Endpoint::Session)
    );
    assert!(!refused.outcome_unknown());
    assert_eq!(broker.count(Route::Session), 2);
    assert!(client.login_blocked_until().is_some());

    let blocked = expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
            .await,
    );
    assert_eq!(blocked.status(), None);
    assert_eq!(broker.count(Route::Session), 2, "no further attempt");
}

#[tokio::test]
async fn rejected_bearer_tokens_never_block_anything() {
    let broker = MockBroker::start().await;
    let client = support::client(bearer_config(&broker));

    for attempt in 1..=3 {
        let error = expect_error(
            client
                .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
                .await,
        );
        assert_eq!(error.kind(), ErrorKind::Auth);
        assert_eq!(error.status(), Some(401), "a real answer every time");
        assert_eq!(broker.count(Route::Generate), attempt);
    }
    assert_eq!(client.login_blocked_until(), None);
    assert_eq!(broker.count(Route::Session), 0);
}

#[tokio::test]
async fn the_simulator_sees_no_login_attempt_during_the_cooldown() {
    let sim = BrokerSim::start(BrokerSimConfig {
        tls: false,
        ..BrokerSimConfig::default()
    })
    .await
    .expect("simulator");
    sim.add_directory(
        DIRECTORY,
        SyncClients::One {
            generate_token: true,
            token_ttl: 60,
        },
    );
    let mut config = BrokerConfig::new(
        sim.url(),
        sim.tenant(),
        BrokerAuth::VCenter {
            username: sim.username().to_owned(),
            password: SecretString::from("not-the-SECRET-password"),
            token_client: TokenClient::OperatorClient,
        },
    );
    config.allow_insecure_http = true;
    let client = support::client(config);

    for _ in 0..5 {
        expect_error(
            client
                .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
                .await,
        );
        expect_error(client.authenticate().await);
    }

    assert_eq!(sim.count(Endpoint::Login), 1);
    assert_eq!(sim.count_with_status(Endpoint::Login, 401), 1);
    assert_eq!(sim.count(Endpoint::Generate), 0);
    assert_eq!(sim.generate_count(DIRECTORY), 0);
    assert_eq!(sim.open_sessions(), 0);
}
