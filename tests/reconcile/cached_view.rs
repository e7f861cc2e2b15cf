//! Reconciles from the watch cache's view of a status, which holds long texts and the history
//! only as digests: an unchanged status is not written, a patch leaves what the view does not
//! hold to the server, and a status that needs an elided text is computed again from a fresh
//! read of the same version (and not written when the version moved on).

use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use serde_json::Value;
use sync_client_operator::api::{
    Condition, ConditionStatus, ELIDED, SyncClientCredential, SyncClientCredentialStatus, reasons,
};
use sync_client_operator::controller::Context;
use sync_client_operator::controller::credential::{self, STALE_RETRY};
use sync_client_operator::controller::status::cached;

use crate::mock_api::{MockApi, Reply};
use crate::world::{NAME, NAMESPACE, ONE_TOKEN_CLIENT, World, new_credential, within_time};

const PREFLIGHT_MESSAGE: &str =
    "vCenter login, broker token and a read of the sync client succeeded; nothing was minted";

/// A credential issued once (its status as the API server holds it, at resourceVersion 1) and
/// its Secret. The reconciles that follow use another context: this one remembers the status it
/// wrote, and takes a different one for its cache lagging behind.
async fn issued(
    world: &World,
    api: &MockApi,
    ctx: &Arc<Context>,
) -> (SyncClientCredential, Secret) {
    let cr = new_credential();
    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(api, &cr);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_create_secret(|_| {});
    api.expect_event(EventType::Normal, "Issued");
    api.expect_status_patch(&cr, |_| {});
    credential::reconcile(Arc::new(cr.clone()), ctx.clone())
        .await
        .expect("reconcile succeeds");
    api.checkpoint();
    let mut stored = cr;
    stored.status = Some(api.last_status());
    stored.metadata.resource_version = Some("1".into());
    let mut secret = api.written_secrets().remove(0);
    secret.metadata.resource_version = Some("1".into());
    (stored, secret)
}

/// `cr` as the watch cache holds it.
fn cached_view(cr: &SyncClientCredential) -> SyncClientCredential {
    let mut view = cr.clone();
    view.status = view.status.as_ref().map(cached::view);
    view
}

/// `cr` suspended (a new generation), with a passed preflight in its status.
fn suspended_after_a_preflight(cr: &SyncClientCredential, world: &World) -> SyncClientCredential {
    let mut suspended = cr.clone();
    suspended.spec.suspend = true;
    suspended.metadata.generation = Some(2);
    let status = suspended.status.get_or_insert_with(Default::default);
    status.last_preflight_time = Some(world.now());
    status.conditions.push(Condition {
        type_: reasons::PREFLIGHT.into(),
        status: ConditionStatus::True,
        reason: reasons::PREFLIGHT_PASSED.into(),
        message: PREFLIGHT_MESSAGE.into(),
        last_transition_time: world.now(),
        observed_generation: Some(1),
    });
    suspended
}

/// Expects a status patch and keeps its `status` as sent.
fn expect_raw_status_patch(api: &MockApi, cr: &SyncClientCredential) -> Arc<Mutex<Option<Value>>> {
    let sent = Arc::new(Mutex::new(None));
    let keep = sent.clone();
    let reply = cr.clone();
    api.expect(
        Method::PATCH,
        format!("/apis/syncclient.io/v1alpha1/namespaces/{NAMESPACE}/syncclientcredentials/{NAME}/status"),
        move |request| {
            let body: Value = request.json();
            *keep.lock().unwrap() = Some(body["status"].clone());
            Reply::json(StatusCode::OK, &reply)
        },
    );
    sent
}

fn sent(patch: &Arc<Mutex<Option<Value>>>) -> Value {
    patch
        .lock()
        .unwrap()
        .clone()
        .expect("the status patch was sent")
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("a {type_} condition in {status}"))
}

#[tokio::test]
async fn an_unchanged_status_seen_through_the_cache_is_not_written() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let (cr, secret) = issued(&world, &api, &world.context(client.clone())).await;
        let ctx = world.context(client);
        let view = cached_view(&cr);
        let status = view.status.as_ref().unwrap();
        assert!(status.history.is_elided() && status.history.is_empty());
        assert!(status.conditions.iter().all(|c| c.message.is_elided()));

        api.expect_get_secret(NAME, Some(secret));
        credential::reconcile(Arc::new(view), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(api.status_patches().len(), 1, "only the issue's status");
    })
    .await;
}

#[tokio::test]
async fn a_status_changed_from_the_cache_leaves_what_it_does_not_hold_to_the_server() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let (cr, secret) = issued(&world, &api, &world.context(client.clone())).await;
        let ctx = world.context(client);
        let mut suspended = cr.clone();
        suspended.spec.suspend = true;
        suspended.metadata.generation = Some(2);
        suspended.status.as_mut().unwrap().last_preflight_time = Some(world.now());

        api.expect_get_secret(NAME, Some(secret));
        let patch = expect_raw_status_patch(&api, &suspended);
        credential::reconcile(Arc::new(cached_view(&suspended)), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        let status = sent(&patch);
        assert!(
            status.get("history").is_none(),
            "the history is left as it is: {status}"
        );
        assert!(!status.to_string().contains(ELIDED), "{status}");
        let issuing = condition(&status, reasons::ISSUING);
        assert_eq!(issuing["reason"], reasons::SUSPENDED);
        assert_eq!(issuing["observedGeneration"], 2);
        assert!(
            issuing["message"]
                .as_str()
                .unwrap()
                .contains("spec.suspend")
        );
        assert_eq!(status["observedGeneration"], 2);
    })
    .await;
}

#[tokio::test]
async fn a_status_that_needs_an_elided_text_is_computed_again_from_a_fresh_read() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let (cr, secret) = issued(&world, &api, &world.context(client.clone())).await;
        let ctx = world.context(client);
        let full = suspended_after_a_preflight(&cr, &world);
        let history = full.status.as_ref().unwrap().history.to_vec();
        assert_eq!(history.len(), 1);

        // Suspending rewrites the conditions, and the cache holds the preflight's message only
        // as a digest: the credential is read again and the status computed from it.
        api.expect_get_secret(NAME, Some(secret));
        api.expect_get_credential(&full);
        let patch = expect_raw_status_patch(&api, &full);
        credential::reconcile(Arc::new(cached_view(&full)), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        let status = sent(&patch);
        assert!(!status.to_string().contains(ELIDED), "{status}");
        assert_eq!(
            condition(&status, reasons::PREFLIGHT)["message"],
            PREFLIGHT_MESSAGE,
            "the preflight's message is kept in full"
        );
        assert_eq!(
            condition(&status, reasons::ISSUING)["reason"],
            reasons::SUSPENDED
        );
        let written: SyncClientCredentialStatus = serde_json::from_value(status).unwrap();
        assert_eq!(written.history.to_vec(), history, "the history is kept");
        assert_eq!(
            written
                .conditions
                .iter()
                .find(|c| c.type_ == reasons::READY)
                .map(|c| c.message.is_elided()),
            Some(false)
        );
    })
    .await;
}

#[tokio::test]
async fn a_fresh_read_that_finds_a_newer_version_writes_nothing() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let (cr, secret) = issued(&world, &api, &world.context(client.clone())).await;
        let ctx = world.context(client);
        let full = suspended_after_a_preflight(&cr, &world);
        let mut newer = full.clone();
        newer.metadata.resource_version = Some("2".into());

        api.expect_get_secret(NAME, Some(secret));
        api.expect_get_credential(&newer);
        let action = credential::reconcile(Arc::new(cached_view(&full)), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            action,
            Action::requeue(STALE_RETRY),
            "decided again on the newer version"
        );
        assert_eq!(api.status_patches().len(), 1, "only the issue's status");
    })
    .await;
}
