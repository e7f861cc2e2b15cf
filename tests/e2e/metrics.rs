//! The metrics endpoint.

use crate::harness::{Env, WAIT};
use kube::ResourceExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_the_secret_expiry_and_readiness() {
    let env = Env::start().await;
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    let secret = env.wait_for_revision("app", 1).await;
    env.wait_for_reason("app", "CredentialCurrent").await;
    let expires: chrono::DateTime<chrono::Utc> = secret.annotations()["syncclient.io/expires-at"]
        .parse()
        .unwrap();
    let ns = env.namespace.clone();
    let body = env
        .eventually("metrics with the expiry gauge", WAIT, || async {
            let (status, body) = operator.http_get("/metrics").await?;
            (status == 200 && body.contains("sync_client_credential_expiration_timestamp_seconds{"))
                .then_some(body)
        })
        .await;
    let gauge = |name: &str| -> Option<i64> {
        body.lines()
            .find(|l| {
                l.starts_with(name)
                    && l.contains(&format!("namespace=\"{ns}\""))
                    && l.contains("name=\"app\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        gauge("sync_client_credential_expiration_timestamp_seconds{"),
        Some(expires.timestamp())
    );
    assert!(
        gauge("sync_client_credential_renewal_timestamp_seconds{")
            .is_some_and(|t| t < expires.timestamp())
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("sync_client_credential_ready_status{")
                && l.contains("condition=\"True\"")
                && l.ends_with(" 1"))
    );
    assert!(body.contains("sync_client_rotations_total{result=\"success\"} 1"));
    assert!(body.contains(
        "sync_client_broker_requests_total{endpoint=\"generate_credentials\",result=\"success\"} 1"
    ));
    assert!(body.contains("sync_client_reconcile_duration_seconds_count"));
    assert_eq!(operator.http_get("/healthz").await.map(|r| r.0), Some(200));
    env.eventually("/readyz to answer 200", WAIT, || async {
        (operator.http_get("/readyz").await?.0 == 200).then_some(())
    })
    .await;

    // A deleted credential's series disappear.
    env.delete_credential("app").await;
    env.eventually("series of the deleted credential to go", WAIT, || async {
        let (_, body) = operator.http_get("/metrics").await?;
        (!body.contains("name=\"app\"")).then_some(())
    })
    .await;
}
