//! A credential's life: first issue, rotations, repair, garbage collection, and a foreign Secret.

use crate::harness::{DIRECTORY, Env, WAIT, secret_value};
use crate::harness::{assert_no_secrets, token_is_live, wait_for_event};
use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

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
