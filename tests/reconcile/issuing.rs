//! Issuing and rotating.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::TimeDelta;
use http::{Method, StatusCode};
use k8s_openapi::ByteString;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use sync_client_broker_sim::{Endpoint, SyncClients};
use sync_client_operator::api::{
    ConditionStatus, CredentialType, ROTATE_REQUEST_ANNOTATION, RolloutKind, RolloutTarget,
    SecretTemplate, SyncClientCredential,
};
use sync_client_operator::controller::credential::{self, RESTARTED_AT_ANNOTATION};
use sync_client_operator::secret::{
    EXPIRES_AT_ANNOTATION, ISSUED_AT_ANNOTATION, REVISION_ANNOTATION,
};

use crate::mock_api::{MockApi, Reply};
use crate::scenarios::first_issuance;
use crate::world::{
    DIRECTORY, Evidence, NAME, NAMESPACE, ONE_TOKEN_CLIENT, TOKEN_TTL_MINUTES, World, annotation,
    assert_condition, assert_owned_record, data_keys, data_text, new_credential, parse_time,
    seconds, within_time,
};

#[tokio::test]
async fn first_reconcile_creates_the_secret_with_the_issued_token_and_reports_ready() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        first_issuance(&world).await;
    })
    .await;
}

#[tokio::test]
async fn secret_past_its_renewal_time_is_replaced_with_the_next_revision() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        // Issued 50 minutes ago for an hour: renewal (at 40 minutes at the latest) has passed.
        let mut existing = world.owned_secret(&cr, world.ago(50 * 60), TimeDelta::hours(1), 3);
        existing
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("team.example/owner".into(), "payments".into());

        api.expect_get_secret(NAME, Some(existing));
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_replace_secret(NAME, |_| {});
        api.expect_replace_secret(NAME, |secret| {
            assert_eq!(
                secret.metadata.resource_version.as_deref(),
                Some("41"),
                "replace is conditional on the version read"
            );
            assert_owned_record(secret, 4);
            assert_eq!(
                annotation(secret, "team.example/owner"),
                "payments",
                "others' annotations are kept"
            );
        });
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.revision, Some(4));
        });

        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        let written = api.written_secrets().remove(0);
        assert_eq!(
            Some(data_text(&written, "access_token")),
            world.sim.current_token(DIRECTORY),
            "the Secret holds the new live token"
        );
        assert_eq!(world.sim.generate_count(DIRECTORY), 1);
        let note = api.events()[0].note.clone().unwrap_or_default();
        assert!(note.contains("revision 4"), "event note: {note}");
        // Next rotation: about 40 minutes from now, jitter included; requeued exactly then.
        let renewal = api.last_status().renewal_time.expect("renewal time");
        let until = (renewal - world.now()).num_seconds();
        assert!((2400 - 245..=2400).contains(&until), "renewal in {until}s");
        assert_eq!(action, world.requeue_at(renewal));
    })
    .await;
}

#[tokio::test]
async fn owned_intact_secret_not_yet_due_only_reads_and_does_not_rewrite_an_unchanged_status() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let existing = world.owned_secret(&cr, world.ago(5 * 60), TimeDelta::hours(1), 2);

        // First sight (no status yet): the status is written from the Secret's record.
        api.expect_get_secret(NAME, Some(existing.clone()));
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_condition(status, "Issuing", ConditionStatus::False, "Idle");
            assert_eq!(status.revision, Some(2));
            assert!(status.renewal_time.is_some());
        });
        let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        let status = api.last_status();
        let renewal = status.renewal_time.expect("renewal time");
        assert_eq!(
            first,
            world.requeue_at(renewal),
            "requeued at the renewal time"
        );

        // Again with that status: one GET, nothing written.
        let mut again = cr;
        again.status = Some(status);
        api.expect_get_secret(NAME, Some(existing));
        let second = credential::reconcile(Arc::new(again), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            api.served().len(),
            3,
            "GET, PATCH status, GET: {:?}",
            api.served()
        );
        assert_eq!(second, world.requeue_at(renewal), "the same renewal time");
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}

#[tokio::test]
async fn secret_with_edited_data_is_reissued_and_reported_as_repaired() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let mut tampered = world.owned_secret(&cr, world.ago(5 * 60), TimeDelta::hours(1), 2);
        tampered.data.get_or_insert_default().insert(
            "access_token".into(),
            ByteString(b"pasted-by-hand".to_vec()),
        );

        api.expect_get_secret(NAME, Some(tampered));
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_replace_secret(NAME, |_| {});
        api.expect_replace_secret(NAME, |secret| {
            assert_eq!(secret.metadata.resource_version.as_deref(), Some("41"));
            assert_owned_record(secret, 3);
            assert_ne!(data_text(secret, "access_token"), "pasted-by-hand");
        });
        api.expect_event(EventType::Normal, "SecretRepaired");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.revision, Some(3));
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        let written = api.written_secrets().remove(0);
        assert_eq!(
            Some(data_text(&written, "access_token")),
            world.sim.current_token(DIRECTORY)
        );
        assert_eq!(world.sim.generate_count(DIRECTORY), 1);
    })
    .await;
}

#[tokio::test]
async fn new_rotate_request_rotates_once_and_is_not_served_twice() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        cr.metadata
            .annotations
            .get_or_insert_default()
            .insert(ROTATE_REQUEST_ANNOTATION.into(), "1".into());
        let existing = world.owned_secret(&cr, world.ago(5 * 60), TimeDelta::hours(1), 2);

        api.expect_get_secret(NAME, Some(existing));
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_replace_secret(NAME, |_| {});
        api.expect_replace_secret(NAME, |secret| assert_owned_record(secret, 3));
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_eq!(status.observed_rotate_request.as_deref(), Some("1"));
            assert_eq!(status.revision, Some(3));
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.generate_count(DIRECTORY), 1);
        let note = api.events()[0].note.clone().unwrap_or_default();
        assert!(note.contains("RotateRequested"), "event note: {note}");

        // The same request value again, with the status and Secret the first pass wrote.
        let mut rotated = api.written_secrets().remove(0);
        rotated.metadata.resource_version = Some("42".into());
        let mut again = cr;
        again.status = Some(api.last_status());
        api.expect_get_secret(NAME, Some(rotated));
        api.allow_status_patch(&again, |status| {
            assert_eq!(status.observed_rotate_request.as_deref(), Some("1"));
            assert_eq!(status.revision, Some(3));
        });
        credential::reconcile(Arc::new(again), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.generate_count(DIRECTORY), 1, "rotated only once");
        assert_eq!(api.written_secrets().len(), 1);
    })
    .await;
}

/// `tokenTTL` applies from the next issue on: changing it mints nothing now (every mint revokes
/// the token the consumer holds); the next renewal asks for the new lifetime.
#[tokio::test]
async fn a_changed_token_ttl_takes_effect_at_the_next_renewal() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        // The Secret was issued for the spec before tokenTTL was set.
        let fresh =
            world.owned_secret(&new_credential(), world.ago(5 * 60), TimeDelta::hours(1), 2);
        let mut cr = new_credential();
        cr.spec.token_ttl = Some("2h".into());
        cr.metadata.generation = Some(2);

        api.expect_get_secret(NAME, Some(fresh));
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.observed_generation, Some(2));
            assert_eq!(status.revision, Some(2));
        });
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            world.sim.count(Endpoint::Generate),
            0,
            "nothing minted for the edit"
        );

        // At the renewal, the new lifetime is asked for.
        cr.status = Some(api.last_status());
        let due = world.owned_secret(
            &new_credential(),
            world.ago(50 * 60),
            TimeDelta::hours(1),
            2,
        );
        api.expect_get_secret(NAME, Some(due));
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_replace_secret(NAME, |_| {});
        api.expect_replace_secret(NAME, |secret| assert_owned_record(secret, 3));
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        let generate = world
            .sim
            .requests()
            .into_iter()
            .find(|r| r.endpoint == Endpoint::Generate)
            .expect("a generate request");
        assert_eq!(
            generate.body_json(),
            Some(serde_json::json!({"generate_token": true, "token_ttl": 120}))
        );
        let written = api.written_secrets().remove(0);
        let lifetime = seconds(
            parse_time(annotation(&written, EXPIRES_AT_ANNOTATION))
                - parse_time(annotation(&written, ISSUED_AT_ANNOTATION)),
        );
        assert!(
            (7190.0..=7200.0).contains(&lifetime),
            "lifetime {lifetime}s"
        );
        let note = api.events()[0].note.clone().unwrap_or_default();
        assert!(note.contains("RenewalDue"), "event note: {note}");
    })
    .await;
}

pub(crate) async fn client_secret_issuance(world: &World) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let mut cr = new_credential();
    cr.spec.credential_type = CredentialType::ClientSecret;

    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_create_secret(|secret| {
        assert_eq!(data_keys(secret), ["client_id", "client_secret"]);
        assert_eq!(annotation(secret, EXPIRES_AT_ANNOTATION), "not-reported");
        assert_eq!(annotation(secret, REVISION_ANNOTATION), "1");
    });
    api.expect_event(EventType::Normal, "Issued");
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        assert_eq!((status.expires_at, status.renewal_time), (None, None));
    });
    let result = credential::reconcile(Arc::new(cr), ctx).await;
    api.checkpoint();
    assert_eq!(
        result.as_ref().expect("reconcile succeeds"),
        &Action::await_change(),
        "a client secret without rotationInterval is never rotated on a schedule"
    );
    let (client_id, client_secret) = world
        .sim
        .current_client_secret(DIRECTORY)
        .expect("the broker issued a client secret");
    let written = api.written_secrets().remove(0);
    assert_eq!(data_text(&written, "client_id"), client_id);
    assert_eq!(data_text(&written, "client_secret"), client_secret);

    let mut evidence = Evidence::default();
    evidence.result(&result);
    evidence.api(&api);
    evidence.world(world);
    evidence.credentials.push(client_secret);
    evidence
}

#[tokio::test]
async fn client_secret_credential_is_stored_without_expiry_and_not_scheduled() {
    within_time(async {
        let world = World::start(SyncClients::One {
            generate_token: false,
            token_ttl: TOKEN_TTL_MINUTES,
        })
        .await;
        client_secret_issuance(&world).await;
    })
    .await;
}

/// A credential that restarts the Deployment `deployment`, and the requests of its first issue,
/// which come before the restart.
fn first_issue_restarting(world: &World, api: &MockApi, deployment: &str) -> SyncClientCredential {
    let mut cr = new_credential();
    cr.spec.rollout_restart_targets = vec![RolloutTarget {
        kind: RolloutKind::Deployment,
        name: deployment.into(),
    }];
    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(api, &cr);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_create_secret(|_| {});
    api.expect_event(EventType::Normal, "Issued");
    cr
}

#[tokio::test]
async fn issuing_restarts_the_listed_deployment_after_writing_the_secret() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = first_issue_restarting(&world, &api, "web");
        api.expect(
            Method::PATCH,
            format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web"),
            |request| {
                assert_eq!(
                    request.content_type.as_deref(),
                    Some("application/strategic-merge-patch+json")
                );
                let patch: serde_json::Value = request.json();
                let restarted_at =
                    &patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT_ANNOTATION];
                assert!(restarted_at.is_string(), "restart annotation in {patch}");
                Reply::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": NAMESPACE},
                    }),
                )
            },
        );
        api.expect_event(EventType::Normal, "RolloutRestarted");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
    })
    .await;
}

/// A restart target that does not exist: the credential is issued (and Ready), and the event
/// is `RolloutRestartFailed`, naming the workload, that it was not found and what to do.
#[tokio::test]
async fn a_missing_restart_target_is_reported_as_a_failed_restart_that_says_what_to_do() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = first_issue_restarting(&world, &api, "scim-pusher");
        api.expect(
            Method::PATCH,
            format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/scim-pusher"),
            |_| Reply::not_found("deployments.apps \"scim-pusher\""),
        );
        api.expect_event(EventType::Warning, "RolloutRestartFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        let note = api.events().pop().and_then(|e| e.note);
        assert_eq!(
            note.as_deref(),
            Some(
                "could not restart Deployment scim-pusher: not found (404): deployments.apps \"scim-pusher\" not found; create the Deployment or remove it from spec.rolloutRestartTargets; its pods read the new Secret data only when they restart"
            )
        );
    })
    .await;
}

#[tokio::test]
async fn template_labels_missing_from_the_owned_secret_are_patched_without_a_new_credential() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let existing =
            world.owned_secret(&new_credential(), world.ago(5 * 60), TimeDelta::hours(1), 2);
        let mut cr = new_credential();
        cr.spec.secret_template = Some(SecretTemplate {
            labels: BTreeMap::from([("team.example/name".into(), "payments".into())]),
            annotations: BTreeMap::new(),
            type_: None,
        });

        api.expect_get_secret(NAME, Some(existing.clone()));
        api.expect_secret_metadata_patch(existing, |patch| {
            assert_eq!(
                patch,
                &serde_json::json!({"metadata": {
                    "labels": {"team.example/name": "payments"},
                    "annotations": {},
                }})
            );
        });
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.revision, Some(2));
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.broker_requests(), 0, "no broker call");
        assert!(api.written_secrets().is_empty(), "no new credential");
    })
    .await;
}
