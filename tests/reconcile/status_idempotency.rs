//! Status idempotency: a reconcile that changes nothing writes nothing. Each status write is a
//! watch event that triggers the next reconcile, so a status that differs the second time costs
//! an extra write and reconcile every time. A status computed from a stale cache is not written.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use sync_client_broker_sim::{Endpoint, Fault, SyncClients};
use sync_client_operator::api::{SyncClientCredential, SyncClientCredentialStatus};
use sync_client_operator::controller::Context;
use sync_client_operator::controller::credential::{self};

use crate::mock_api::{MockApi, Reply};
use crate::world::{NAME, NAMESPACE, ONE_TOKEN_CLIENT, World, new_credential, within_time};

/// Reconciles `cr` again with the status its last reconcile wrote and the Secret as `secret`,
/// and fails listing what changed when the status is written again.
pub(crate) async fn assert_next_reconcile_keeps_the_status(
    api: &MockApi,
    ctx: Arc<Context>,
    cr: SyncClientCredential,
    secret: Option<Secret>,
) {
    let written = api.last_status();
    let mut again = cr;
    again.status = Some(written.clone());
    api.expect_get_secret(NAME, secret);
    api.allow_status_patch(&again, |_| {});
    credential::reconcile(Arc::new(again), ctx)
        .await
        .expect("reconcile succeeds");
    api.checkpoint();
    let rewritten = api.last_status();
    assert!(
        api.status_patches().len() == 1,
        "the status was written again although nothing happened:\n  {}",
        status_changes(&written, &rewritten).join("\n  ")
    );
}

/// Field-by-field differences of two statuses (conditions by type), as `field: old -> new`.
pub(crate) fn status_changes(
    old: &SyncClientCredentialStatus,
    new: &SyncClientCredentialStatus,
) -> Vec<String> {
    let flatten = |status: &SyncClientCredentialStatus| {
        let mut fields = BTreeMap::new();
        let value = serde_json::to_value(status).expect("status serializes");
        for (key, field) in value.as_object().into_iter().flatten() {
            if key == "conditions" {
                for condition in field.as_array().into_iter().flatten() {
                    let type_ = condition["type"].as_str().unwrap_or_default();
                    for (name, part) in condition.as_object().into_iter().flatten() {
                        fields.insert(format!("conditions[{type_}].{name}"), part.to_string());
                    }
                }
            } else {
                fields.insert(key.clone(), field.to_string());
            }
        }
        fields
    };
    let (old, new) = (flatten(old), flatten(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(|key| {
            let show = |map: &BTreeMap<String, String>| map.get(key).cloned().unwrap_or_default();
            format!("{key}: {} -> {}", show(&old), show(&new))
        })
        .collect()
}

#[tokio::test]
async fn status_written_after_issuing_is_not_rewritten_by_the_next_reconcile() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_create_secret(|_| {});
        api.expect_create_secret(|_| {});
        api.expect_event(EventType::Normal, "Issued");
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        // The owned-Secret watch reconciles at once, with what was just written.
        let mut created = api.written_secrets().remove(0);
        created.metadata.resource_version = Some("1".into());
        assert_next_reconcile_keeps_the_status(&api, ctx, cr, Some(created)).await;
    })
    .await;
}

#[tokio::test]
async fn status_after_a_permanent_failure_is_not_rewritten_by_the_next_reconcile() {
    within_time(async {
        let world = World::start(SyncClients::None).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_create_secret(|_| {});
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        assert_next_reconcile_keeps_the_status(&api, ctx, cr, None).await;
    })
    .await;
}

#[tokio::test]
async fn status_during_a_retry_backoff_is_not_rewritten_by_the_next_reconcile() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world
            .sim
            .inject(Fault::on(Endpoint::Generate).text(500, "internal error"));
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_create_secret(|_| {});
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        assert_next_reconcile_keeps_the_status(&api, ctx, cr, None).await;
    })
    .await;
}

#[tokio::test]
async fn status_computed_from_a_stale_cache_is_not_written_over_a_newer_one() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        // The cached copy is at resourceVersion 7; the operator has written a newer status since.
        let mut cr = new_credential();
        cr.metadata.resource_version = Some("7".into());
        let existing = world.owned_secret(&cr, world.ago(5 * 60), TimeDelta::hours(1), 2);

        api.expect_get_secret(NAME, Some(existing));
        api.expect(
            Method::PATCH,
            format!("/apis/syncclient.io/v1alpha1/namespaces/{NAMESPACE}/syncclientcredentials/{NAME}/status"),
            |request| {
                let body: serde_json::Value = request.json();
                assert_eq!(
                    body["metadata"]["resourceVersion"], "7",
                    "a status computed from the cache carries its resourceVersion as a precondition"
                );
                Reply::failure(StatusCode::CONFLICT, "Conflict", "the object has been modified")
            },
        );
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("a stale status is not an error");
        api.checkpoint();
        assert_eq!(
            action,
            Action::requeue(credential::STALE_RETRY),
            "retried soon on the newer version"
        );
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}
