//! End to end: the real operator binary against the Kubernetes API simulator and the broker
//! simulator, over loopback HTTP(S). See `harness` for running the same suite on a real cluster.

mod harness;

use std::time::Duration;

use harness::{DIRECTORY, Env, VCENTER_PASSWORD, WAIT, secret_value};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sync_client_broker::{BrokerAuth, BrokerClient, BrokerConfig, SecretString, TlsConfig};
use sync_client_broker_sim::{BrokerSimConfig, Endpoint, Fault, SyncClients};

/// Asks the broker simulator's SCIM endpoint, over HTTPS, whether a token is live.
async fn token_is_live(env: &Env, token: &str) -> bool {
    let mut config = BrokerConfig::new(
        env.broker.url(),
        "CUSTOMER",
        BrokerAuth::BearerToken(SecretString::from("unused")),
    );
    config.tls = TlsConfig {
        ca_bundle_pem: env.broker.ca_pem(),
        insecure_skip_verify: false,
    };
    let client = BrokerClient::new(config).expect("probe client");
    client
        .probe_token(&SecretString::from(token))
        .await
        .expect("probe answered")
}

/// The operator's output holds none of the credentials it handled.
fn assert_no_secrets(output: &str, secrets: &[String]) {
    assert!(!output.is_empty(), "the operator printed nothing");
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !output.contains(secret.as_str()),
            "a credential appeared in the operator's output"
        );
    }
    assert!(
        !output.contains(VCENTER_PASSWORD),
        "the vCenter password appeared in the operator's output"
    );
}

async fn event_reasons(env: &Env, name: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.namespace);
    events
        .list(&ListParams::default())
        .await
        .map(|list| {
            list.items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter_map(|e| e.reason)
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for_event(env: &Env, name: &str, reason: &str) {
    env.eventually(&format!("event {reason} on {name}"), WAIT, || async {
        event_reasons(env, name)
            .await
            .iter()
            .any(|r| r == reason)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_a_currently_valid_token_into_an_owned_secret() {
    let env = Env::start().await;
    let operator = env.operator("op", &[]);
    let cr = env
        .create_credential(
            "app",
            json!({"secretTemplate": {"labels": {"team": "blue"}}}),
        )
        .await;

    let secret = env.wait_for_revision("app", 1).await;
    let token = secret_value(&secret, "access_token");
    assert_eq!(
        Some(token.clone()),
        env.broker.current_token(DIRECTORY),
        "the Secret holds the broker's current token"
    );
    assert!(
        token_is_live(&env, &token).await,
        "the SCIM probe accepts the token"
    );
    let keys: Vec<_> = secret.data.as_ref().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["access_token", "expires_at", "scim_url"]);
    assert_eq!(
        secret_value(&secret, "scim_url"),
        format!("{}/usergroup/t/CUSTOMER/scim/v2", env.broker.url())
    );
    let expires_at = secret.annotations()["syncclient.io/expires-at"].clone();
    assert_eq!(secret_value(&secret, "expires_at"), expires_at);
    assert_eq!(secret.labels()["team"], "blue");
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        (cr.uid().unwrap().as_str(), Some(true))
    );

    let cr = env.wait_for_reason("app", "CredentialCurrent").await;
    let status = cr.status.unwrap();
    assert_eq!(
        status
            .expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        Some(expires_at)
    );
    let renewal = status.renewal_time.expect("renewal time");
    assert!(
        renewal < status.expires_at.unwrap(),
        "renewal is planned before expiry"
    );
    assert_eq!(status.revision, Some(1));
    wait_for_event(&env, "app", "Issued").await;
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        1,
        "exactly one generate"
    );
    assert_no_secrets(&operator.output(), &[token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_repeatedly_before_expiry_and_each_token_is_the_valid_one() {
    let env = Env::start().await;
    let operator = env.operator("op", &[]);
    // 6-second tokens (the simulator counts token_ttl in seconds here): renewal every ~4 s.
    env.create_credential("app", json!({"tokenTTL": "6m"}))
        .await;
    let mut tokens = Vec::new();
    let mut previous_expiry = None;
    for revision in 1..=3 {
        let secret = env.wait_for_revision("app", revision).await;
        let token = secret_value(&secret, "access_token");
        assert!(
            token_is_live(&env, &token).await,
            "revision {revision} holds a live token"
        );
        let issued: chrono::DateTime<chrono::Utc> = secret.annotations()["syncclient.io/issued-at"]
            .parse()
            .unwrap();
        if let Some(expiry) = previous_expiry {
            assert!(
                issued < expiry,
                "revision {revision} was issued before the previous token expired"
            );
        }
        previous_expiry = Some(
            secret.annotations()["syncclient.io/expires-at"]
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap(),
        );
        tokens.push(token);
    }
    for old in &tokens[..tokens.len() - 1] {
        assert!(
            !token_is_live(&env, old).await,
            "a rotated-out token is revoked"
        );
    }
    wait_for_event(&env, "app", "Rotated").await;
    let generates = env.broker.generate_count(DIRECTORY);
    assert!(
        (3..=4).contains(&generates),
        "one generate per revision, got {generates}"
    );
    assert_no_secrets(&operator.output(), &tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreates_a_deleted_secret_and_repairs_an_edited_one() {
    let env = Env::start().await;
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    env.wait_for_revision("app", 1).await;

    env.secrets()
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let secret = env.wait_for_revision("app", 2).await;
    assert_eq!(
        Some(secret_value(&secret, "access_token")),
        env.broker.current_token(DIRECTORY)
    );

    let patch = json!({"stringData": {"access_token": "edited-by-hand"}});
    env.secrets()
        .patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let secret = env.wait_for_revision("app", 3).await;
    let token = secret_value(&secret, "access_token");
    assert_ne!(token, "edited-by-hand");
    assert!(token_is_live(&env, &token).await);
    wait_for_event(&env, "app", "SecretRepaired").await;
    assert_no_secrets(&operator.output(), &[token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_credential_garbage_collects_its_secret() {
    let env = Env::start().await;
    let _operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    env.wait_for_revision("app", 1).await;
    env.delete_credential("app").await;
    env.eventually("the Secret to be garbage collected", WAIT, || async {
        env.secret("app").await.is_none().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_a_foreign_secret_untouched_and_reports_it() {
    let env = Env::start().await;
    let _operator = env.operator("op", &[]);
    let foreign: k8s_openapi::api::core::v1::Secret = serde_json::from_value(
        json!({"metadata": {"name": "app"}, "stringData": {"access_token": "someone-elses"}}),
    )
    .unwrap();
    env.secrets()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    env.create_credential("app", json!({})).await;
    let cr = env.wait_for_reason("app", "SecretNotOwned").await;
    assert!(
        cr.status
            .unwrap()
            .conditions
            .iter()
            .any(|c| c.message.contains("left untouched"))
    );
    wait_for_event(&env, "app", "SecretNotOwned").await;
    let secret = env.secret("app").await.unwrap();
    assert_eq!(secret_value(&secret, "access_token"), "someone-elses");
    assert!(secret.metadata.owner_references.is_none());
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        0,
        "no broker call for a blocked credential"
    );
}

/// Waits for `reason`, then checks the broker saw no more than `max_generates` generate calls
/// over a few seconds: permanent failures are not retried.
async fn assert_failure_without_retry_storm(
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
    let cr = env.credential("app").await;
    assert_eq!(cr.status.as_ref().unwrap().failed_attempts, 1);
    assert!(cr.status.unwrap().next_retry_time.is_none());

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_operator_resumes_the_schedule_from_the_secret() {
    let env = Env::start().await;
    // 12-second tokens: renewal at about 8 s.
    env.create_credential("app", json!({"tokenTTL": "12m"}))
        .await;
    let mut first = env.operator("first", &[]);
    let secret = env.wait_for_revision("app", 1).await;
    first.kill();
    let issued_count = env.broker.generate_count(DIRECTORY);
    let second = env.operator("second", &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        issued_count,
        "no early rotation after restart"
    );
    let current = env.secret("app").await.unwrap();
    assert_eq!(current.annotations()["syncclient.io/revision"], "1");
    let renewal = env
        .credential("app")
        .await
        .status
        .unwrap()
        .renewal_time
        .unwrap();
    // The new process rotates at the planned time.
    let rotated = env.wait_for_revision("app", 2).await;
    let issued: chrono::DateTime<chrono::Utc> = rotated.annotations()["syncclient.io/issued-at"]
        .parse()
        .unwrap();
    assert!(
        issued + chrono::TimeDelta::seconds(1) >= renewal,
        "rotated at the renewal time, not before"
    );
    assert_no_secrets(
        &second.output(),
        &[
            secret_value(&secret, "access_token"),
            secret_value(&rotated, "access_token"),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_rotation_is_served_once_and_acknowledged() {
    let env = Env::start().await;
    let _operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    env.wait_for_revision("app", 1).await;
    env.annotate("app", "syncclient.io/rotate-request", "r1")
        .await;
    env.wait_for_revision("app", 2).await;
    env.eventually("observedRotateRequest", WAIT, || async {
        let cr = env.credential("app").await;
        (cr.status?.observed_rotate_request.as_deref() == Some("r1")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.broker.generate_count(DIRECTORY), 2, "served once");
    assert_eq!(
        env.secret("app").await.unwrap().annotations()["syncclient.io/revision"],
        "2"
    );
}

/// Starts the operator with one credential, waits until it is current and the follow-up
/// reconciles are over, then clears the simulator's request log.
async fn settled_credential(env: &Env, kube: &sync_client_kube_sim::KubeSim) -> harness::Operator {
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    env.wait_for_reason("app", "CredentialCurrent").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    kube.clear_requests();
    operator
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_operator_makes_no_api_calls_beyond_its_watches() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return assert!(std::env::var_os("E2E_KUBECONFIG").is_some());
    };
    let _operator = settled_credential(&env, kube).await;
    let broker_before = env.broker.requests().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = harness::operator_calls(kube);
    assert!(calls.is_empty(), "idle operator called the API: {calls:?}");
    assert_eq!(
        env.broker.requests().len(),
        broker_before,
        "idle operator called the broker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_costs_a_small_fixed_number_of_calls() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return assert!(std::env::var_os("E2E_KUBECONFIG").is_some());
    };
    let _operator = settled_credential(&env, kube).await;
    env.broker.clear_requests();
    env.annotate("app", "syncclient.io/rotate-request", "measure")
        .await;
    env.wait_for_revision("app", 2).await;
    env.eventually("the rotation to be acknowledged", WAIT, || async {
        (env.credential("app")
            .await
            .status?
            .observed_rotate_request
            .as_deref()
            == Some("measure"))
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = harness::operator_calls(kube);
    let broker_calls: Vec<_> = env
        .broker
        .requests()
        .into_iter()
        .map(|r| format!("{:?}", r.endpoint))
        .collect();
    println!(
        "kubernetes calls for one rotation ({}): {calls:?}",
        calls.len()
    );
    println!(
        "broker calls for one rotation ({}): {broker_calls:?}",
        broker_calls.len()
    );
    // Exactly one generate, and the broker session and token are reused.
    assert_eq!(broker_calls, ["Generate"]);
    // One write of the Secret, one status patch, one event; reads of the credential, the Secret,
    // the broker and its login Secret, and the re-check after the operator's own writes.
    let writes = calls
        .iter()
        .filter(|c| !c.starts_with("get ") && !c.starts_with("list "))
        .count();
    assert_eq!(
        calls.iter().filter(|c| *c == "update secrets").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "patch syncclientcredentials/status")
            .count(),
        1,
        "{calls:?}"
    );
    assert!(writes <= 3, "writes per rotation: {calls:?}");
    // 8 today; a follow-up reconcile after the operator's own writes may add a GET.
    assert!(calls.len() <= 10, "calls per rotation: {calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_dropped_watches_and_expired_watch_history() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return assert!(std::env::var_os("E2E_KUBECONFIG").is_some());
    };
    let operator = env.operator("op", &[]);
    // 10-minute tokens: within this test only the Secret watch can bring a new revision.
    env.create_credential("app", json!({"tokenTTL": "600m"}))
        .await;
    env.wait_for_revision("app", 1).await;
    // Watches break and their history expires: re-watching from the old version gets 410 Gone,
    // so the operator must list again and watch from the new version.
    kube.clear_requests();
    kube.expire_watch_history();
    kube.drop_watches();
    env.eventually(
        "the operator to list and watch Secrets again",
        WAIT,
        || async {
            let requests = harness::operator_requests(kube);
            let is_secrets = |r: &sync_client_kube_sim::RecordedRequest, verb: &str| {
                r.verb.as_deref() == Some(verb) && r.resource.as_deref() == Some("secrets")
            };
            let relist = requests
                .iter()
                .rposition(|r| is_secrets(r, "list") && r.status == 200)?;
            requests[relist..]
                .iter()
                .any(|r| is_secrets(r, "watch"))
                .then_some(())
        },
    )
    .await;
    // A deletion during the gap itself is only reported by a list, not as an event (kube's
    // watcher semantics); the README notes it. After the gap, the new watch must deliver it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.secrets()
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let secret = env.wait_for_revision("app", 2).await;
    assert!(token_is_live(&env, &secret_value(&secret, "access_token")).await);
    assert!(!operator.output().contains("panicked"));
    assert_eq!(env.broker.generate_count(DIRECTORY), 2);
}
