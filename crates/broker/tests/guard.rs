//! The revoke guard of `generate_credentials`: asked right before every generate request (the
//! first and the retry after a 401), and one deadline for the whole chain (the shared login, the
//! vCenter login, the broker token, the generate, the refresh and the retry), with the three ways
//! a deadline can end a call.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{
    DIRECTORY, MockBroker, Reply, Route, bearer_config, expect_error, operator_client, unguarded,
};
use sync_client_broker::{
    BrokerClient, BrokerError, CredentialKind, Endpoint, ErrorKind, GenerateRequest, RevokeGuard,
};

const ACCESS_TOKEN: GenerateRequest = GenerateRequest {
    kind: CredentialKind::AccessToken,
    token_ttl_minutes: Some(1800),
};

/// Far enough for every request of these tests (the mock answers at once unless told).
const LONG: Duration = Duration::from_secs(60);

/// The error of a generate whose whole chain has `within`, with a guard that allows it.
async fn generate_within(client: &BrokerClient, within: Duration) -> BrokerError {
    let guard = RevokeGuard::new(Instant::now() + within, &|| Ok(()));
    expect_error(
        client
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &guard)
            .await,
    )
}

#[tokio::test]
async fn the_guard_is_asked_before_the_first_generate_and_before_the_retry() {
    let broker = MockBroker::start().await;
    broker.push(Route::Generate, Reply::status(401));
    let client = operator_client(&broker);
    // What the broker had received of generates each time the guard was asked.
    let asked = Mutex::new(Vec::new());
    let may_revoke = || {
        asked.lock().unwrap().push(broker.count(Route::Generate));
        Ok(())
    };

    client
        .generate_credentials(
            DIRECTORY,
            &ACCESS_TOKEN,
            &RevokeGuard::new(Instant::now() + LONG, &may_revoke),
        )
        .await
        .expect("generated after the refresh");

    assert_eq!(
        *asked.lock().unwrap(),
        [0, 1],
        "asked before the first generate and again before the retry"
    );
    assert_eq!(broker.count(Route::Generate), 2);
    assert_eq!(broker.count(Route::BrokerToken), 2, "the refresh between");
}

#[tokio::test]
async fn a_guard_refusing_the_retry_stops_it() {
    let broker = MockBroker::start().await;
    broker.push(Route::Generate, Reply::status(401));
    let client = operator_client(&broker);
    let asked = Mutex::new(0);
    let may_revoke = || {
        let mut asked = asked.lock().unwrap();
        *asked += 1;
        if *asked == 1 {
            Ok(())
        } else {
            Err("this replica lost the leader lease".to_owned())
        }
    };

    let error = expect_error(
        client
            .generate_credentials(
                DIRECTORY,
                &ACCESS_TOKEN,
                &RevokeGuard::new(Instant::now() + LONG, &may_revoke),
            )
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::GuardRefused);
    assert!(!error.outcome_unknown(), "the retry was never sent");
    assert_eq!(error.endpoint(), Some(Endpoint::GenerateCredentials));
    assert_eq!(
        error.to_string(),
        "generate credentials: not sent: this replica lost the leader lease"
    );
    assert_eq!(*asked.lock().unwrap(), 2);
    assert_eq!(broker.count(Route::Generate), 1, "only the refused first");
}

#[tokio::test]
async fn a_guard_refusing_the_first_generate_sends_none() {
    let broker = MockBroker::start().await;
    let refuse = || Err("the operator is shutting down".to_owned());
    let guard = RevokeGuard::new(Instant::now() + LONG, &refuse);

    let error = expect_error(
        operator_client(&broker)
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &guard)
            .await,
    );
    assert_eq!(error.kind(), ErrorKind::GuardRefused);
    assert!(!error.outcome_unknown());
    assert_eq!(broker.count(Route::Generate), 0);

    // A static bearer token: nothing at all is sent.
    let static_broker = MockBroker::start().await;
    let error = expect_error(
        support::client(bearer_config(&static_broker))
            .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &guard)
            .await,
    );
    assert_eq!(error.kind(), ErrorKind::GuardRefused);
    assert!(static_broker.requests().is_empty());
}

/// The login takes 2 s and the generate 3 s, each well within the client's 10 s request
/// timeout; the whole call has 4 s. A deadline per request would let the generate finish; one
/// deadline for the chain leaves it about 2 s, and it is cut while in flight.
#[tokio::test]
async fn the_deadline_spans_the_chain_a_slow_login_eats_into_the_generate() {
    let broker = MockBroker::start().await;
    broker.push(Route::Session, Reply::DefaultAfter(Duration::from_secs(2)));
    broker.push(Route::Generate, Reply::DefaultAfter(Duration::from_secs(3)));
    let client = operator_client(&broker);

    let error = generate_within(&client, Duration::from_secs(4)).await;

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.endpoint(), Some(Endpoint::GenerateCredentials));
    assert!(
        error.outcome_unknown(),
        "cut while in flight: the broker may have rotated"
    );
    assert!(
        error
            .message()
            .contains("the deadline of the whole call passed"),
        "{error}"
    );
    assert_eq!(broker.count(Route::Session), 1);
    assert_eq!(broker.count(Route::Generate), 1);
}

#[tokio::test]
async fn a_deadline_passing_during_the_login_is_a_known_outcome() {
    let broker = MockBroker::start().await;
    broker.push(Route::Session, Reply::DefaultAfter(Duration::from_secs(5)));
    let client = operator_client(&broker);

    let error = generate_within(&client, Duration::from_secs(1)).await;

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.endpoint(), Some(Endpoint::Session));
    assert!(!error.outcome_unknown(), "no generate was sent");
    assert!(error.message().contains("deadline"), "{error}");
    assert_eq!(broker.count(Route::Generate), 0);
}

#[tokio::test]
async fn a_deadline_passed_before_the_generate_is_sent_is_a_known_outcome() {
    let broker = MockBroker::start().await;
    let client = operator_client(&broker);
    client
        .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
        .await
        .expect("the broker token is cached now");
    let sent = broker.requests().len();
    let asked = Mutex::new(0);
    let may_revoke = || {
        *asked.lock().unwrap() += 1;
        Ok(())
    };

    let error = expect_error(
        client
            .generate_credentials(
                DIRECTORY,
                &ACCESS_TOKEN,
                &RevokeGuard::new(Instant::now(), &may_revoke),
            )
            .await,
    );

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.endpoint(), Some(Endpoint::GenerateCredentials));
    assert!(!error.outcome_unknown(), "nothing was sent");
    assert_eq!(
        error.to_string(),
        "generate credentials: the deadline of the whole call passed before the request was sent"
    );
    assert_eq!(broker.requests().len(), sent, "no request at all");
    assert_eq!(*asked.lock().unwrap(), 0, "a late chain is not even asked");
}

#[tokio::test]
async fn a_deadline_passing_while_waiting_for_the_shared_login_is_a_known_outcome() {
    let broker = MockBroker::start().await;
    broker.push(Route::Session, Reply::DefaultAfter(Duration::from_secs(3)));
    let client = operator_client(&broker);
    // The first call holds the shared login for 3 s.
    let first = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .generate_credentials(DIRECTORY, &ACCESS_TOKEN, &unguarded())
                .await
        }
    });
    let login_started = Instant::now() + Duration::from_secs(10);
    while broker.count(Route::Session) == 0 && Instant::now() < login_started {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(broker.count(Route::Session), 1, "the first call logs in");

    let error = generate_within(&client, Duration::from_millis(500)).await;

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(!error.outcome_unknown());
    assert!(
        error
            .message()
            .contains("waiting for the shared vCenter login"),
        "{error}"
    );
    first
        .await
        .unwrap()
        .expect("the first call is not disturbed");
    assert_eq!(broker.count(Route::Generate), 1, "only the first call's");
}

#[tokio::test]
async fn a_deadline_passing_while_the_generate_is_in_flight_leaves_the_outcome_unknown() {
    let broker = MockBroker::start().await;
    broker.push(Route::Generate, Reply::DefaultAfter(Duration::from_secs(5)));
    let client = operator_client(&broker);

    let error = generate_within(&client, Duration::from_secs(1)).await;

    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.endpoint(), Some(Endpoint::GenerateCredentials));
    assert!(error.outcome_unknown());
    assert!(
        error
            .message()
            .starts_with("the deadline of the whole call passed while the request was in flight"),
        "{error}"
    );
    assert_eq!(broker.count(Route::Generate), 1);
}
