//! Dropped watches and expired watch history.

use std::time::Duration;

use crate::harness::token_is_live;
use crate::harness::{DIRECTORY, Env, WAIT, secret_value};
use kube::api::DeleteParams;
use serde_json::json;

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
            let requests = crate::harness::operator_requests(kube);
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
