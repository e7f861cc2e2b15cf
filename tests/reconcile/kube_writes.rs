//! Kubernetes write trouble.

use std::sync::Arc;

use chrono::TimeDelta;
use http::StatusCode;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::runtime::events::EventType;
use sync_client_operator::api::ConditionStatus;
use sync_client_operator::controller::Error;
use sync_client_operator::controller::credential::{self};

use crate::mock_api::{MockApi, Reply};
use crate::world::{
    DIRECTORY, NAME, NAMESPACE, ONE_TOKEN_CLIENT, World, assert_condition, assert_owned_record,
    data_text, new_credential, within_time,
};

#[tokio::test]
async fn replace_conflict_rereads_the_secret_and_replaces_at_its_new_version() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let due = world.owned_secret(&cr, world.ago(50 * 60), TimeDelta::hours(1), 3);
        let mut changed = due.clone();
        changed.metadata.resource_version = Some("45".into());

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
        api.expect_get_secret(NAME, Some(changed));
        api.expect_replace_secret(NAME, |secret| {
            assert_eq!(secret.metadata.resource_version.as_deref(), Some("45"));
            assert_owned_record(secret, 4);
        });
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            world.sim.generate_count(DIRECTORY),
            1,
            "one broker rotation"
        );
        let written = api.written_secrets().pop().expect("a write");
        assert_eq!(
            Some(data_text(&written, "access_token")),
            world.sim.current_token(DIRECTORY)
        );
    })
    .await;
}

#[tokio::test]
async fn secret_created_by_someone_else_meanwhile_is_not_overwritten() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let intruder = Secret {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(NAMESPACE.into()),
                resource_version: Some("9".into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };

        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_create_secret(|_| {});
        api.expect_create_secret_failing(Reply::failure(
            StatusCode::CONFLICT,
            "AlreadyExists",
            "secrets \"app\" already exists",
        ));
        api.expect_get_secret(NAME, Some(intruder));
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "SecretWriteFailed");
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
            assert!(
                status
                    .last_failure_message
                    .as_deref()
                    .is_some_and(|m| m.contains("someone else"))
            );
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(api.written_secrets().len(), 1, "only the refused create");
    })
    .await;
}

#[tokio::test]
async fn refused_status_patch_is_returned_as_a_write_status_error() {
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
        api.expect_status_patch_failing(
            &cr,
            Reply::failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "etcd",
            ),
        );
        // The status cannot say so itself: an event does.
        api.expect_event(EventType::Warning, "StatusWriteFailed");
        let error = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect_err("the status write fails");
        api.checkpoint();
        assert!(matches!(error, Error::WriteStatus { .. }), "{error:?}");
        assert_eq!(error.category(), "write_status");
        assert_eq!(
            error.to_string(),
            "writing the status of team/app: the API server failed (503 ServiceUnavailable): etcd"
        );
        let note = api.events().pop().and_then(|e| e.note).unwrap_or_default();
        assert!(
            note.starts_with("writing the status of team/app: the API server failed (503 ServiceUnavailable): etcd; "),
            "{note}"
        );
    })
    .await;
}
