//! Words that say what happened, read as a person reads them: `kubectl describe scc` with the
//! stock `kubectl` while the real operator runs, and the status and events of a credential whose
//! Secret the operator may not read (RBAC of the API simulator). Every operator log of the suite
//! is checked as JSON lines in the harness (`logs.rs`), and every event note and status message
//! for `Debug` text when its world ends.

use std::time::Duration;

use kube::ResourceExt;
use serde_json::json;
use sync_client_broker_sim::{Endpoint, Fault};
use sync_client_operator::api::{ConditionStatus, SyncClientCredential};

use crate::chaos_kit::Identity;
use crate::debug_text::assert_no_debug_text;
use crate::fencing::{bind_cluster_role, operator_rules, rbac_cluster_with_broker};
use crate::harness::{BROKER_NAME, Env, WAIT, wait_for_event};
use crate::kubectl::Kubectl;

/// The rows of the `Events:` table at the end of `kubectl describe`, spaces collapsed.
fn described_events(described: &str) -> Vec<String> {
    described
        .lines()
        .skip_while(|line| !line.starts_with("Events:"))
        .skip(3)
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// A failed generate, then an issue, then a restart target that does not exist: `kubectl
/// describe scc` lists the operator's events, each saying what happened in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_scc_shows_what_the_operator_did() {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::Generate).times(1).status(503));
    let _operator = env.operator("words", &[]);
    env.create_credential(
        "app",
        json!({"rolloutRestartTargets": [{"kind": "Deployment", "name": "scim-pusher"}]}),
    )
    .await;
    env.wait_for_revision("app", 1).await;
    wait_for_event(&env, "app", "RolloutRestartFailed").await;

    let kubectl = Kubectl::new(&env);
    let run = kubectl.run(&["describe", "scc", "app"], None).await;
    assert!(run.success, "kubectl describe scc: {}", run.stderr);
    let described = run.stdout;
    let rows = described_events(&described);
    let row = |reason: &str| {
        rows.iter()
            .find(|row| row.split(' ').nth(1) == Some(reason))
            .unwrap_or_else(|| panic!("no {reason} event in:\n{described}"))
            .clone()
    };
    let failed = row("RotationFailed");
    assert!(failed.starts_with("Warning RotationFailed "), "{failed}");
    assert!(
        failed.contains("sync-client-operator BrokerUnavailable: "),
        "{failed}"
    );
    let issued = row("Issued");
    assert!(
        issued.starts_with("Normal Issued ")
            && issued.ends_with("sync-client-operator issued revision 1 into Secret app"),
        "{issued}"
    );
    let restart = row("RolloutRestartFailed");
    assert!(
        restart.starts_with("Warning RolloutRestartFailed "),
        "{restart}"
    );
    assert!(
        restart.ends_with(
            "sync-client-operator could not restart Deployment scim-pusher: not found (404): deployments.apps \"scim-pusher\" not found; create the Deployment or remove it from spec.rolloutRestartTargets; its pods read the new Secret data only when they restart"
        ),
        "{restart}"
    );
    assert!(
        !rows.iter().any(|row| row.contains("RolloutRestarted")),
        "a failed restart is not reported as done:\n{described}"
    );
    assert_no_debug_text("kubectl describe scc", &described);
}

/// The operator's ServiceAccount (and ClusterRole) in the RBAC test.
const ACCOUNT: &str = "words-operator";

/// The rules of the chart's ClusterRole, without reading Secrets one by one (`get`).
fn rules_without_secret_get() -> serde_json::Value {
    let mut rules = operator_rules();
    for rule in rules.as_array_mut().into_iter().flatten() {
        if rule["resources"] == json!(["secrets"]) {
            rule["verbs"] = json!(["list", "watch", "create", "update", "patch"]);
        }
    }
    rules
}

/// What the credential's `Ready` condition says, once it is `status`.
async fn ready_once(env: &Env, status: ConditionStatus, reason: &str) -> String {
    env.eventually(&format!("app Ready {status:?} {reason}"), WAIT, || async {
        let cr: SyncClientCredential = env.credentials().get_opt("app").await.ok()??;
        let ready = cr
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == status && ready.reason == reason).then(|| ready.message.to_string())
    })
    .await
}

/// The operator may not read Secrets: the credential says so (Ready Unknown, `SecretReadFailed`,
/// the Secret and the verb named, and where to look), as does its event; its broker says it
/// cannot read its login Secret (`BrokerReadFailed`). Once the permission is granted, both heal
/// without anything else changing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_operator_may_not_read_shows_on_the_credential_and_its_broker() {
    let env = rbac_cluster_with_broker().await;
    let kube = env.kube.as_ref().expect("simulator");
    let identity = Identity::new(&env, ACCOUNT);
    bind_cluster_role(kube, ACCOUNT, &[ACCOUNT], &rules_without_secret_get());
    let _process = identity.spawn(&env, "words", &[]);
    env.create_credential("app", json!({})).await;

    let message = ready_once(&env, ConditionStatus::Unknown, "SecretReadFailed").await;
    assert_eq!(
        message,
        "reading Secret default/app: forbidden (403): the operator may not get secrets in namespace default; check its RBAC rules (its ClusterRole, or its Role when it watches one namespace); nothing is decided about the credential until its Secret can be read; it is retried with backoff"
    );
    wait_for_event(&env, "app", "SecretReadFailed").await;
    let broker_message = env
        .eventually("the broker to say why it is not Ready", WAIT, || async {
            let broker = env.brokers().get_opt(BROKER_NAME).await.ok()??;
            let ready = broker
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.reason == "BrokerReadFailed")?;
            Some(ready.message)
        })
        .await;
    assert_eq!(
        broker_message,
        "reading Secret default/vcenter-login for IdentityBroker default/vcenter: forbidden (403): the operator may not get secrets in namespace default; check its RBAC rules (its ClusterRole, or its Role when it watches one namespace)"
    );

    bind_cluster_role(kube, ACCOUNT, &[ACCOUNT], &operator_rules());
    // Retried with the error backoff (1 s, doubling): within a minute of the grant.
    env.wait_for_revision_within("app", 1, Duration::from_secs(60))
        .await;
    ready_once(&env, ConditionStatus::True, "CredentialCurrent").await;
    let secret = env.secret("app").await.expect("the Secret");
    assert_eq!(secret.name_any(), "app");
}
