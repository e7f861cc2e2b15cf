//! The schedule survives restarts, and a manual rotation is served once.

use std::time::Duration;

use crate::harness::assert_no_secrets;
use crate::harness::{DIRECTORY, Env, WAIT, secret_value};
use kube::ResourceExt;
use serde_json::json;

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
