//! What the operator costs: calls per rotation, and none while idle.

use std::time::Duration;

use crate::harness::{Env, WAIT};
use serde_json::json;

/// Starts the operator with one credential, waits until it is current and the follow-up
/// reconciles are over, then clears the simulator's request log.
pub(crate) async fn settled_credential(
    env: &Env,
    kube: &sync_client_kube_sim::KubeSim,
) -> crate::harness::Operator {
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    env.wait_for_reason("app", "CredentialCurrent").await;
    // The first token through a broker is probed once, moments after its issue, to learn whether
    // the broker's probe can be believed (once per broker, not per credential).
    env.wait_for_first_probe("app").await;
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
    let calls = crate::harness::operator_calls(kube);
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
    let calls = crate::harness::operator_calls(kube);
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
    // One dry run of the Secret's write before the generate (a write that would fail is found
    // before the mint), one write of the Secret, one status patch, one event; reads of the
    // credential, the Secret, the broker and its login Secret, and the re-check after the
    // operator's own writes.
    let writes = calls
        .iter()
        .filter(|c| !c.starts_with("get ") && !c.starts_with("list ") && !c.ends_with("(dry run)"))
        .count();
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "update secrets (dry run)")
            .count(),
        1,
        "{calls:?}"
    );
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
    // 6 today; a follow-up reconcile after the operator's own writes may add a GET.
    assert!(calls.len() <= 10, "calls per rotation: {calls:?}");
}
