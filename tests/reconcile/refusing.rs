//! Refusing and waiting.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use sync_client_operator::api::ConditionStatus;
use sync_client_operator::controller::credential::{self, FOREIGN_SECRET_RECHECK};

use crate::mock_api::MockApi;
use crate::world::{
    CREDENTIALS_SECRET, NAME, NAMESPACE, ONE_TOKEN_CLIENT, World, assert_condition, condition,
    new_credential, within_time,
};
use sync_client_broker_sim::Endpoint;

#[tokio::test]
async fn secret_controlled_by_someone_else_is_left_untouched_and_reported() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        // Same name, left by an earlier credential of the same name (another uid).
        let foreign = Secret {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(NAMESPACE.into()),
                resource_version: Some("7".into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "syncclient.io/v1alpha1".into(),
                    kind: "SyncClientCredential".into(),
                    name: NAME.into(),
                    uid: "11111111-2222-4333-8444-555555555555".into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "access_token".to_owned(),
                ByteString(b"someone-elses-token".to_vec()),
            )])),
            ..Secret::default()
        };

        api.expect_get_secret(NAME, Some(foreign));
        api.expect_event(EventType::Warning, "SecretNotOwned");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "SecretNotOwned");
            assert_condition(status, "Issuing", ConditionStatus::False, "SecretNotOwned");
            assert_eq!(status.revision, None);
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(action, Action::requeue(FOREIGN_SECRET_RECHECK));
        assert!(api.written_secrets().is_empty(), "no write to the Secret");
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}

#[tokio::test]
async fn suspended_credential_mints_nothing_and_is_checked_once_by_a_preflight() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        cr.spec.suspend = true;

        // Staged (created suspended, never issued): a preflight proves it would work.
        api.expect_get_secret(NAME, None);
        api.expect_get_identity_broker(&world.identity_broker());
        api.expect_get_secret(
            CREDENTIALS_SECRET,
            Some(world.vcenter_credentials(world.sim.password())),
        );
        api.expect_event(EventType::Normal, "PreflightPassed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "Suspended");
            assert_condition(status, "Issuing", ConditionStatus::False, "Suspended");
            assert_condition(
                status,
                "Preflight",
                ConditionStatus::True,
                "PreflightPassed",
            );
            assert!(status.last_preflight_time.is_some());
            assert_eq!(status.renewal_time, None);
        });
        let action = credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(action, Action::await_change());
        assert_eq!(world.sim.count(Endpoint::Generate), 0, "nothing minted");
        assert_eq!(
            world.sim.count(Endpoint::ReadSyncClient),
            1,
            "the sync client was read"
        );

        // Checked once: later reconciles make no broker call.
        let broker_calls = world.broker_requests();
        cr.status = Some(api.last_status());
        api.expect_get_secret(NAME, None);
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            world.broker_requests(),
            broker_calls,
            "no further broker call"
        );
    })
    .await;
}

#[tokio::test]
async fn suspended_credential_with_a_due_secret_keeps_it_and_says_why_it_does_not_rotate() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        cr.spec.suspend = true;
        let due = world.owned_secret(&cr, world.ago(50 * 60), TimeDelta::hours(1), 5);

        api.expect_get_secret(NAME, Some(due));
        api.expect_status_patch(&cr, |status| {
            // The token still works: Ready stays true, Issuing says why nothing happens.
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_condition(status, "Issuing", ConditionStatus::False, "Suspended");
            assert!(condition(status, "Ready").message.contains("suspend"));
            assert_eq!(status.revision, Some(5));
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(action, Action::await_change());
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}
