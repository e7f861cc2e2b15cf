//! Broker failures.

use std::sync::Arc;

use chrono::TimeDelta;
use kube::runtime::events::EventType;
use sync_client_broker_sim::{Endpoint, Fault, SyncClients};
use sync_client_operator::api::ConditionStatus;
use sync_client_operator::controller::credential::{self};

use crate::mock_api::MockApi;
use crate::scenarios::{broker_unavailable, permanent_broker_failure};
use crate::world::{
    BROKER, DIRECTORY, Evidence, NAME, NAMESPACE, ONE_TOKEN_CLIENT, World, assert_condition,
    new_credential, within_time,
};

#[tokio::test]
async fn directory_without_sync_client_is_reported_as_not_found_and_retried_slowly() {
    within_time(async {
        let world = World::start(SyncClients::None).await;
        permanent_broker_failure(&world, "SyncClientNotFound").await;
    })
    .await;
}

#[tokio::test]
async fn directory_with_two_sync_clients_is_reported_as_a_conflict_and_retried_slowly() {
    within_time(async {
        let world = World::start(SyncClients::Two).await;
        permanent_broker_failure(&world, "SyncClientConflict").await;
    })
    .await;
}

#[tokio::test]
async fn directory_access_denied_is_reported_as_permission_denied_and_retried_slowly() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        assert!(world.sim.set_directory_access(DIRECTORY, false));
        permanent_broker_failure(&world, "PermissionDenied").await;
    })
    .await;
}

#[tokio::test]
async fn missing_broker_privilege_is_reported_as_permission_denied_and_retried_slowly() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world.sim.set_privilege(false);
        permanent_broker_failure_before_generate(&world).await;
    })
    .await;
}

/// Like [`permanent_broker_failure`] for a refusal of the broker-token request (vCenter's 403
/// for a user without `VcIdentityProviders.Manage`): generate is never reached.
pub(crate) async fn permanent_broker_failure_before_generate(world: &World) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();
    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_event(EventType::Warning, "RotationFailed");
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::False, "PermissionDenied");
        assert_condition(status, "Issuing", ConditionStatus::True, "PermissionDenied");
        assert_eq!(status.failed_attempts, 1);
    });
    let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone()).await;
    api.checkpoint();
    let retry_at = api.last_status().next_retry_time.expect("retried slowly");
    assert_eq!(
        first.as_ref().expect("reconcile succeeds"),
        &world.requeue_at(retry_at)
    );
    assert_eq!(world.sim.count(Endpoint::Generate), 0);

    let mut again = cr;
    again.status = Some(api.last_status());
    let requests_before = world.broker_requests();
    api.expect_get_secret(NAME, None);
    api.allow_status_patch(&again, |_| {});
    let second = credential::reconcile(Arc::new(again), ctx).await;
    api.checkpoint();
    assert_eq!(world.broker_requests(), requests_before, "no broker call");

    let mut evidence = Evidence::default();
    evidence.result(&first);
    evidence.result(&second);
    evidence.api(&api);
    evidence.world(world);
    evidence
}

#[tokio::test]
async fn broker_server_error_backs_off_about_five_seconds_before_retrying() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        broker_unavailable(&world).await;
    })
    .await;
}

#[tokio::test]
async fn missing_identity_broker_is_reported_and_retried_with_backoff() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        api.expect_get_credential(&cr);
        api.expect_get_missing_identity_broker(BROKER);
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "BrokerNotFound");
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
            assert!(status.next_retry_time.is_some());
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        // The first retry waits 5 s, jittered down to no less than 3.75 s.
        let retry_at = api.last_status().next_retry_time.expect("retry time");
        let backoff = (retry_at - world.now()).num_milliseconds();
        assert!((3750..=5000).contains(&backoff), "backoff {backoff}ms");
        assert_eq!(action, world.requeue_at(retry_at));
        assert_eq!(world.broker_requests(), 0);
    })
    .await;
}

#[tokio::test]
async fn broker_failure_at_renewal_keeps_the_current_secret_and_ready_true() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world
            .sim
            .inject(Fault::on(Endpoint::Generate).text(503, "maintenance"));
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        // Due for renewal, 10 minutes before expiry.
        let due = world.owned_secret(&cr, world.ago(50 * 60), TimeDelta::hours(1), 3);
        api.expect_get_secret(NAME, Some(due));
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_replace_secret(NAME, |_| {});
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
            assert_eq!(status.revision, Some(3));
            assert_eq!(status.failed_attempts, 1);
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert!(api.written_secrets().is_empty(), "the Secret is kept");
        // The first retry waits 5 s, jittered down to no less than 3.75 s.
        let retry_at = api.last_status().next_retry_time.expect("retry time");
        let backoff = (retry_at - world.now()).num_milliseconds();
        assert!((3750..=5000).contains(&backoff), "backoff {backoff}ms");
        assert_eq!(action, world.requeue_at(retry_at));
    })
    .await;
}
