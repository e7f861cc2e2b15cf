//! Broker failures: each status code ends in the right reason without a retry storm.

use std::time::Duration;

use crate::harness::{DIRECTORY, Env, VCENTER_PASSWORD, secret_value};
use crate::harness::{assert_no_secrets, token_is_live, wait_for_event};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sync_client_broker_sim::{BrokerSimConfig, Endpoint, Fault, SyncClients};

/// Waits for `reason`, then checks the broker saw no more than `max_generates` generate calls
/// over a few seconds: permanent failures are not retried.
pub(crate) async fn assert_failure_without_retry_storm(
    env: &Env,
    reason: &str,
    endpoint: Endpoint,
    max_calls: usize,
) {
    env.wait_for_reason("app", reason).await;
    wait_for_event(env, "app", "RotationFailed").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = env.broker.count(endpoint);
    assert!(
        calls <= max_calls,
        "{reason}: {calls} calls to {endpoint:?}, expected at most {max_calls}"
    );
    assert!(
        env.secret("app").await.is_none(),
        "no Secret is written on failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_404_and_409_block_without_retrying() {
    let env = Env::start().await;
    let _operator = env.operator("op", &[]);
    let missing = "00000000-0000-4000-8000-000000000404";
    let doubled = "00000000-0000-4000-8000-000000000409";
    env.broker.add_directory(missing, SyncClients::None);
    env.broker.add_directory(doubled, SyncClients::Two);
    env.create_credential("app", json!({"directoryId": missing}))
        .await;
    assert_failure_without_retry_storm(&env, "SyncClientNotFound", Endpoint::Generate, 1).await;
    // Retried, but slowly: a failure that needs a change waits minutes, not seconds, and never
    // stops renewal for good.
    let cr = env.credential("app").await;
    let status = cr.status.unwrap();
    assert_eq!(status.failed_attempts, 1);
    let retry = status.next_retry_time.expect("a retry is scheduled");
    let last = status.last_failure_time.expect("lastFailureTime");
    assert!(
        retry - last >= chrono::TimeDelta::minutes(1),
        "slow retry: failed {last}, next {retry}"
    );

    // A spec change is a new attempt; 409 blocks again.
    let patch = json!({"spec": {"directoryId": doubled}});
    env.credentials()
        .patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_failure_without_retry_storm(&env, "SyncClientConflict", Endpoint::Generate, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_403_reports_permission_denied_without_retrying() {
    let env = Env::start_with(BrokerSimConfig {
        ttl_unit: Duration::from_secs(1),
        password: VCENTER_PASSWORD.into(),
        grant_privilege: false,
        ..BrokerSimConfig::default()
    })
    .await;
    let _operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    // The broker resource status reports it too.
    assert_failure_without_retry_storm(&env, "PermissionDenied", Endpoint::OperatorClientToken, 3)
        .await;
    assert_eq!(env.broker.generate_count(DIRECTORY), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_401_reports_authentication_failed_with_backoff() {
    let env = Env::start_with(BrokerSimConfig {
        ttl_unit: Duration::from_secs(1),
        password: "the-real-password-differs".into(),
        ..BrokerSimConfig::default()
    })
    .await;
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    env.wait_for_reason("app", "AuthenticationFailed").await;
    wait_for_event(&env, "app", "RotationFailed").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Backoff 5 s, 10 s, ...: a handful of logins, not a storm.
    let logins = env.broker.count(Endpoint::Login);
    assert!(logins <= 6, "{logins} logins in a few seconds");
    assert_no_secrets(&operator.output(), &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_500_is_retried_with_backoff_until_it_succeeds() {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::Generate).times(2).status(500));
    let _operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    let failing = env.wait_for_reason("app", "BrokerUnavailable").await;
    assert!(failing.status.unwrap().next_retry_time.is_some());
    wait_for_event(&env, "app", "RotationFailed").await;
    let secret = env.wait_for_revision("app", 1).await;
    assert!(token_is_live(&env, &secret_value(&secret, "access_token")).await);
    // Two failures then one success: three generate calls in all.
    let generates: Vec<_> = env
        .broker
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == Endpoint::Generate)
        .map(|r| (r.status, r.faulted))
        .collect();
    assert_eq!(
        generates.len(),
        3,
        "generate calls (status, faulted): {generates:?}"
    );
    let cr = env.wait_for_reason("app", "CredentialCurrent").await;
    assert_eq!(cr.status.unwrap().failed_attempts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_after_generate_is_resolved_by_issuing_again_quickly() {
    let env = Env::start().await;
    // The broker rotates, then answers nothing for longer than the 2 s request timeout.
    env.broker.inject(
        Fault::on(Endpoint::Generate)
            .times(1)
            .process_then_hang(Duration::from_secs(4)),
    );
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    env.wait_for_reason("app", "RotationStateUnknown").await;
    let secret = env.wait_for_revision("app", 1).await;
    let token = secret_value(&secret, "access_token");
    assert!(
        token_is_live(&env, &token).await,
        "the retry stored the live token"
    );
    assert_eq!(env.broker.generate_count(DIRECTORY), 2);
    assert_no_secrets(&operator.output(), &[token]);
}
