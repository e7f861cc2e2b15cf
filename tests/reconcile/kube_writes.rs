//! Kubernetes write trouble.

use std::sync::Arc;

use chrono::TimeDelta;
use http::StatusCode;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::runtime::events::EventType;
use sync_client_operator::api::{
    Condition, ConditionStatus, SyncClientCredential, SyncClientCredentialStatus,
};
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

/// The conditions of a credential that issued before.
fn with_conditions(mut cr: SyncClientCredential, world: &World) -> SyncClientCredential {
    let condition = |type_: &'static str, status, reason: &'static str| Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message: "as before".into(),
        last_transition_time: world.ago(3600),
        observed_generation: Some(1),
    };
    cr.status = Some(SyncClientCredentialStatus {
        conditions: vec![
            condition("Ready", ConditionStatus::True, "CredentialCurrent"),
            condition("Issuing", ConditionStatus::False, "Idle"),
        ],
        ..SyncClientCredentialStatus::default()
    });
    cr
}

/// The operator may not read the Secret (RBAC): the reconcile fails, and the credential shows
/// it where people look: a `SecretReadFailed` event and `Ready` Unknown, each naming the Secret
/// and the verb, without kube's `Debug` text. Only that condition is patched.
#[tokio::test]
async fn a_forbidden_secret_read_reaches_the_credentials_events_and_ready_condition() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = with_conditions(new_credential(), &world);
        api.expect_get_secret_failing(
            NAME,
            Reply::failure(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "secrets \"app\" is forbidden: User \"system:serviceaccount:ops:operator\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team\"",
            ),
        );
        api.expect_event(EventType::Warning, "SecretReadFailed");
        api.expect_condition_patch(&cr, |operations| {
            assert_eq!(operations[0]["op"], "test");
            assert_eq!(operations[0]["path"], "/status/conditions/0/type");
            assert_eq!(operations[0]["value"], "Ready");
            assert_eq!(operations[1]["op"], "replace");
            let condition = &operations[1]["value"];
            assert_eq!(condition["status"], "Unknown");
            assert_eq!(condition["reason"], "SecretReadFailed");
            assert!(
                condition["message"].as_str().unwrap().starts_with(FORBIDDEN_READ),
                "{condition}"
            );
        });
        let error = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect_err("the Secret cannot be read");
        api.checkpoint();
        assert!(matches!(error, Error::GetSecret { .. }), "{error:?}");
        assert_eq!(error.to_string(), FORBIDDEN_READ);
        let note = api.events().pop().and_then(|e| e.note).unwrap_or_default();
        assert!(note.starts_with(&format!("{FORBIDDEN_READ}; nothing is decided")), "{note}");
        assert_eq!(world.broker_requests(), 0, "nothing is decided without the Secret");
    })
    .await;
}

const FORBIDDEN_READ: &str = "reading Secret team/app: forbidden (403): the operator may not get secrets in namespace team; check its RBAC rules (its ClusterRole, or its Role when it watches one namespace)";

/// The fresh read of the credential an issue is decided on fails: `CredentialReadFailed` in an
/// event and on `Issuing` (Unknown: whether the issue is due is not confirmed); `Ready` keeps
/// what it said.
#[tokio::test]
async fn a_failed_fresh_read_leaves_issuing_unknown_and_says_why() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = with_conditions(new_credential(), &world);
        api.expect_get_secret(NAME, None);
        api.expect(
            http::Method::GET,
            format!("/apis/syncclient.io/v1alpha1/namespaces/{NAMESPACE}/syncclientcredentials/{NAME}"),
            |_| Reply::failure(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "etcd is down"),
        );
        api.expect_event(EventType::Warning, "CredentialReadFailed");
        api.expect_condition_patch(&cr, |operations| {
            assert_eq!(operations[0]["path"], "/status/conditions/1/type");
            assert_eq!(operations[0]["value"], "Issuing");
            let condition = &operations[1]["value"];
            assert_eq!(
                (condition["status"].as_str(), condition["reason"].as_str()),
                (Some("Unknown"), Some("CredentialReadFailed"))
            );
            assert!(
                condition["message"].as_str().unwrap().starts_with(
                    "reading SyncClientCredential team/app: the API server failed (503 ServiceUnavailable): etcd is down; "
                ),
                "{condition}"
            );
        });
        let error = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect_err("the fresh read fails");
        api.checkpoint();
        assert!(matches!(error, Error::GetCredential { .. }), "{error:?}");
        assert_eq!(error.category(), "get_credential");
        assert_eq!(world.sim.count(sync_client_broker_sim::Endpoint::Generate), 0);
    })
    .await;
}

/// The operator may not create Secrets (RBAC): the dry run before any generate is refused, and
/// the credential says who may not do what, without kube's `Debug` text.
#[tokio::test]
async fn a_secret_create_refused_by_rbac_says_which_permission_is_missing() {
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
            "secrets is forbidden: User \"system:serviceaccount:ops:operator\" cannot create resource \"secrets\" in API group \"\" in the namespace \"team\"",
        ));
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "SecretWriteRejected");
            assert_eq!(
                status.last_failure_message.as_deref(),
                Some(
                    "the API server refused the dry run of writing Secret app: forbidden (403): the operator may not create secrets in namespace team; check its RBAC rules (its ClusterRole, or its Role when it watches one namespace)"
                )
            );
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.count(sync_client_broker_sim::Endpoint::Generate), 0);
    })
    .await;
}
