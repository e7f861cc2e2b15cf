//! A generated credential is never lost and never generated twice: the write is proven by a dry
//! run before the broker call, a failed write is retried without another generate, a vanished
//! Secret is created, a newer revision is never overwritten, and no trigger issues twice within
//! the minimum interval.

use std::sync::Arc;

use chrono::TimeDelta;
use http::StatusCode;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use sync_client_broker_sim::{Endpoint, Fault};
use sync_client_operator::api::{ConditionStatus, SecretKeys, SyncClientCredential};
use sync_client_operator::controller::credential;
use sync_client_operator::secret::REVISION_ANNOTATION;

use crate::mock_api::{MockApi, Reply};
use crate::world::{
    DIRECTORY, NAME, NAMESPACE, ONE_TOKEN_CLIENT, World, assert_condition, assert_owned_record,
    data_keys, data_text, new_credential, within_time,
};

#[tokio::test]
async fn a_write_the_api_server_refuses_costs_no_generate() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();

        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_create_secret_failing(Reply::failure(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "secrets \"app\" is forbidden: exceeded quota: team-quota, requested: count/secrets=1",
        ));
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(
                status,
                "Ready",
                ConditionStatus::False,
                "SecretWriteRejected",
            );
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
            let message = status.last_failure_message.as_deref().unwrap_or_default();
            assert!(message.contains("exceeded quota"), "{message}");
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.count(Endpoint::Generate), 0, "nothing was minted");
    })
    .await;
}

/// A first issue whose Secret create fails after the generate (a server error, retryable).
fn expect_first_write_failing(world: &World, api: &MockApi, cr: &SyncClientCredential) {
    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(api, cr);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_create_secret_failing(Reply::failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "etcdserver: request timed out",
    ));
    api.expect_event(EventType::Warning, "RotationFailed");
}

#[tokio::test]
async fn a_failed_write_is_retried_without_generating_again() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();

        expect_first_write_failing(&world, &api, &cr);
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "SecretWriteFailed");
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
        });
        let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.count(Endpoint::Generate), 1);
        let retry_at = api.last_status().next_retry_time.expect("a retry time");
        assert_eq!(first, world.requeue_at(retry_at), "a short backoff");
        assert!((retry_at - world.now()) <= TimeDelta::seconds(30));

        // Before the backoff passed: nothing happens, not even a fresh read.
        let mut again = cr.clone();
        again.status = Some(api.last_status());
        api.expect_get_secret(NAME, None);
        credential::reconcile(Arc::new(again.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        // Once it passed: the same credential is written, without another broker call.
        world.clock.advance(TimeDelta::seconds(31));
        api.expect_get_secret(NAME, None);
        api.expect_get_credential(&again);
        api.expect_create_secret(|secret| assert_owned_record(secret, 1));
        api.expect_event(EventType::Normal, "Issued");
        api.expect_status_patch(&again, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.failed_attempts, 0);
            assert_eq!(status.history.len(), 2, "{:?}", status.history);
            assert_eq!(status.history[0].outcome, "Issued");
            assert_eq!(status.history[1].outcome, "SecretWriteFailed");
        });
        credential::reconcile(Arc::new(again), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.count(Endpoint::Generate), 1, "generated once");
        let written = api.written_secrets().pop().expect("a write");
        assert_eq!(
            Some(data_text(&written, "access_token")),
            world.sim.current_token(DIRECTORY),
            "the Secret holds the live token"
        );
    })
    .await;
}

#[tokio::test]
async fn a_secret_deleted_during_the_generate_is_created() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let due = world.owned_secret(&cr, world.ago(50 * 60), TimeDelta::hours(1), 3);

        api.expect_get_secret(NAME, Some(due));
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_replace_secret(NAME, |_| {});
        api.expect_replace_secret_failing(NAME, Reply::not_found("secrets \"app\""));
        api.expect_get_secret(NAME, None);
        api.expect_create_secret(|secret| assert_owned_record(secret, 4));
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.count(Endpoint::Generate), 1);
    })
    .await;
}

/// Another writer (a new leader) stored revision 4 while ours was being written. Exactly one of
/// the two tokens is live at the broker: ours is probed before either is dropped.
async fn conflicting_writer(world: &World, ours_live: bool) -> MockApi {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();
    let due = world.owned_secret(&cr, world.ago(50 * 60), TimeDelta::hours(1), 3);
    let newer = world.owned_secret(&cr, world.ago(1), TimeDelta::hours(1), 4);
    if !ours_live {
        world
            .sim
            .inject(Fault::on(Endpoint::ScimProbe).times(1).status(401));
    }
    api.expect_get_secret(NAME, Some(due));
    world.expect_broker_resolution(&api, &cr);
    api.expect_dry_run_replace_secret(NAME, |_| {});
    api.expect_replace_secret_failing(
        NAME,
        Reply::failure(
            StatusCode::CONFLICT,
            "Conflict",
            "the object has been modified",
        ),
    );
    api.expect_get_secret(NAME, Some(newer));
    // The probe of our token goes through the broker (read again: no caches here).
    api.expect_get_identity_broker(&world.identity_broker());
    if ours_live {
        api.expect_replace_secret(NAME, |secret| assert_owned_record(secret, 5));
        api.expect_event(EventType::Normal, "Rotated");
    } else {
        api.expect_event(EventType::Warning, "RotationFailed");
    }
    api.expect_status_patch(&cr, |_| {});
    credential::reconcile(Arc::new(cr), ctx)
        .await
        .expect("reconcile succeeds");
    api.checkpoint();
    assert_eq!(world.sim.count(Endpoint::ScimProbe), 1, "ours was probed");
    api
}

#[tokio::test]
async fn a_conflicting_writers_credential_is_kept_when_ours_was_revoked_by_it() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let api = conflicting_writer(&world, false).await;
        assert_eq!(
            api.written_secrets().len(),
            1,
            "only the refused replace: revision 4 was kept"
        );
    })
    .await;
}

#[tokio::test]
async fn ours_is_written_on_top_when_it_is_the_live_one() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let api = conflicting_writer(&world, true).await;
        let written = api.written_secrets();
        assert_eq!(written.len(), 2, "the refused replace, then ours on top");
        assert_eq!(
            Some(data_text(&written[1], "access_token")),
            world.sim.current_token(DIRECTORY),
            "the live token"
        );
    })
    .await;
}

#[tokio::test]
async fn renamed_data_keys_are_written_from_the_credential_held_without_a_new_one() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        // Issued with the default keys; the spec now renames the token's key.
        let existing = world.owned_secret(&cr, world.ago(5 * 60), TimeDelta::hours(1), 2);
        cr.spec.keys = Some(SecretKeys {
            access_token: Some("token".into()),
            ..SecretKeys::default()
        });

        api.expect_get_secret(NAME, Some(existing));
        api.expect_replace_secret(NAME, |secret| {
            assert_eq!(data_keys(secret), ["expires_at", "scim_url", "token"]);
            assert_eq!(data_text(secret, "token"), "previously-issued-token-value");
            assert_eq!(
                secret.metadata.annotations.as_ref().unwrap()[REVISION_ANNOTATION],
                "2",
                "the same credential, written again"
            );
        });
        api.expect_event(EventType::Normal, "SecretKeysRenamed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.revision, Some(2));
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            world.broker_requests(),
            0,
            "nothing minted, the broker not even asked"
        );
    })
    .await;
}

#[tokio::test]
async fn a_deleted_secret_is_recreated_only_after_the_minimum_interval() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        let mut status = sync_client_operator::api::SyncClientCredentialStatus {
            revision: Some(1),
            last_rotation_time: Some(world.ago(5)),
            ..Default::default()
        };
        status.observed_generation = Some(1);
        cr.status = Some(status);

        api.expect_get_secret(NAME, None);
        // Holding an issue back is decided on a fresh read, like an issue.
        api.expect_get_credential(&cr);
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Issuing", ConditionStatus::True, "Throttled");
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            world.broker_requests(),
            0,
            "no broker call within the interval"
        );
        assert_eq!(action, Action::requeue(std::time::Duration::from_secs(25)));
    })
    .await;
}

#[tokio::test]
async fn a_credential_waiting_to_be_stored_goes_to_the_secret_the_spec_names_now() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();

        expect_first_write_failing(&world, &api, &cr);
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.count(Endpoint::Generate), 1);

        // Meanwhile the spec names another Secret: the credential in hand is written there.
        let mut renamed = cr.clone();
        renamed.status = Some(api.last_status());
        renamed.spec.secret_name = Some("renamed".to_owned());
        world.clock.advance(TimeDelta::seconds(31));
        api.expect_get_secret("renamed", None);
        api.expect_get_credential(&renamed);
        api.expect_create_secret(|secret| {
            assert_eq!(secret.metadata.name.as_deref(), Some("renamed"));
            // Otherwise the record written at the first attempt, unchanged.
            let mut record = secret.clone();
            record.metadata.name = Some(NAME.to_owned());
            assert_owned_record(&record, 1);
        });
        api.expect_event(EventType::Normal, "Issued");
        api.expect_status_patch(&renamed, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(renamed), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.count(Endpoint::Generate), 1, "generated once");
    })
    .await;
}
