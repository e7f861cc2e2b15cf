//! Scenarios shared by their own test and the secrecy test.

use std::sync::Arc;

use kube::runtime::events::EventType;
use sync_client_broker_sim::{Endpoint, Fault};
use sync_client_operator::api::ConditionStatus;
use sync_client_operator::controller::credential::{self};
use sync_client_operator::secret::{EXPIRES_AT_ANNOTATION, ISSUED_AT_ANNOTATION};

use crate::mock_api::MockApi;
use crate::world::{
    DIRECTORY, Evidence, NAME, NAMESPACE, World, annotation, assert_condition, assert_owned_record,
    data_text, new_credential, parse_time, seconds,
};

pub(crate) async fn first_issuance(world: &World) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();

    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_create_secret(|secret| {
        assert_owned_record(secret, 1);
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    });
    api.expect_event(EventType::Normal, "Issued");
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        assert_condition(status, "Issuing", ConditionStatus::False, "Idle");
        assert_eq!(status.revision, Some(1));
        assert_eq!(status.failed_attempts, 0);
        assert_eq!(status.secret_name.as_deref(), Some(NAME));
        assert_eq!(status.observed_generation, Some(1));
        assert!(status.expires_at.is_some() && status.renewal_time.is_some());
    });

    let started = world.now();
    let result = credential::reconcile(Arc::new(cr), ctx).await;
    api.checkpoint();
    let action = result.as_ref().expect("reconcile succeeds").clone();

    let written = api.written_secrets().remove(0);
    let live = world
        .sim
        .current_token(DIRECTORY)
        .expect("the broker issued a token");
    assert_eq!(data_text(&written, "access_token"), live, "the live token");
    assert_eq!(data_text(&written, "scim_url"), world.scim_url());
    assert_eq!(world.sim.generate_count(DIRECTORY), 1);

    // The broker reports the sync client's saved lifetime of 60 minutes.
    let expires_at = parse_time(annotation(&written, EXPIRES_AT_ANNOTATION));
    let issued_at = parse_time(annotation(&written, ISSUED_AT_ANNOTATION));
    let lifetime = seconds(expires_at - issued_at);
    assert!(
        (3590.0..=3600.0).contains(&lifetime),
        "lifetime {lifetime}s"
    );

    // Renewal at two thirds of the lifetime, advanced by at most a tenth of that (jitter).
    let status = api.last_status();
    let renewal = status.renewal_time.expect("renewal time");
    let renewal_after_issue = seconds(renewal - started);
    assert!(
        (2400.0 - 240.0 - 15.0..=2401.0).contains(&renewal_after_issue),
        "renewal {renewal_after_issue}s after issue"
    );
    assert_eq!(
        status.expires_at.map(|at| at.timestamp()),
        Some(expires_at.timestamp())
    );
    assert_eq!(
        action,
        world.requeue_at(renewal),
        "requeued at the renewal time"
    );

    let mut evidence = Evidence::default();
    evidence.result(&result);
    evidence.api(&api);
    evidence.world(world);
    evidence
}

/// A broker refusal that only a change can fix: reported with its reason and what to do, then
/// retried on the slow backoff (never given up), and not before.
pub(crate) async fn permanent_broker_failure(world: &World, reason: &'static str) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();

    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_event(EventType::Warning, "RotationFailed");
    api.expect_status_patch(&cr, move |status| {
        assert_condition(status, "Ready", ConditionStatus::False, reason);
        assert_condition(status, "Issuing", ConditionStatus::True, reason);
        assert_eq!(status.failed_attempts, 1);
        assert_eq!(status.last_failure_reason.as_deref(), Some(reason));
        assert_eq!(status.last_failure_generation, Some(1));
        assert!(status.last_failure_time.is_some());
        assert!(status.last_failure_message.is_some());
    });
    let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone()).await;
    api.checkpoint();
    let status = api.last_status();
    let failed_at = status.last_failure_time.expect("failure time");
    let retry_at = status.next_retry_time.expect("a retry is scheduled");
    let backoff = seconds(retry_at - failed_at);
    assert!((90.0..=120.0).contains(&backoff), "slow backoff {backoff}s");
    assert_eq!(
        status.renewal_time,
        Some(retry_at),
        "renewalTime is the next try"
    );
    assert_eq!(
        first.as_ref().expect("reconcile succeeds"),
        &world.requeue_at(retry_at),
        "a permanent failure is retried slowly"
    );
    assert_eq!(world.sim.count(Endpoint::Generate), 1);
    assert_eq!(world.sim.generate_count(DIRECTORY), 0);
    let event = api.events().remove(0);
    assert!(
        event.note.as_deref().is_some_and(|n| n.contains(reason)),
        "event note names the reason: {:?}",
        event.note
    );

    // Reconciled again (any watch event) before the retry time: no new broker call.
    let mut again = cr;
    again.status = Some(status);
    let requests_before = world.broker_requests();
    api.expect_get_secret(NAME, None);
    api.allow_status_patch(&again, move |status| {
        assert_condition(status, "Ready", ConditionStatus::False, reason);
        assert_eq!(status.failed_attempts, 1);
    });
    let second = credential::reconcile(Arc::new(again), ctx).await;
    api.checkpoint();
    assert_eq!(
        second.as_ref().expect("reconcile succeeds"),
        &world.requeue_at(retry_at)
    );
    assert_eq!(
        world.broker_requests(),
        requests_before,
        "no broker call before the retry time"
    );
    assert_eq!(world.sim.count(Endpoint::Generate), 1);

    let mut evidence = Evidence::default();
    evidence.result(&first);
    evidence.result(&second);
    evidence.api(&api);
    evidence.world(world);
    evidence
}

pub(crate) async fn broker_unavailable(world: &World) -> Evidence {
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
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::False, "BrokerUnavailable");
        assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
        assert_eq!(status.failed_attempts, 1);
        assert_eq!(
            status.last_failure_reason.as_deref(),
            Some("BrokerUnavailable")
        );
        assert!(status.next_retry_time.is_some());
    });
    let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone()).await;
    api.checkpoint();
    assert_eq!(world.sim.count(Endpoint::Generate), 1);

    // The first retry waits 5 s, jittered down to no less than 3.75 s.
    let status = api.last_status();
    let failed_at = status.last_failure_time.expect("failure time");
    let retry_at = status.next_retry_time.expect("retry time");
    let backoff = seconds(retry_at - failed_at);
    assert!((3.75..=5.0).contains(&backoff), "backoff {backoff}s");
    assert_eq!(
        first.as_ref().expect("reconcile succeeds"),
        &world.requeue_at(retry_at),
        "requeued at the retry time"
    );

    // Reconciled again before the retry time (its own status patch is a watch event): waits.
    let mut again = cr;
    again.status = Some(status);
    api.expect_get_secret(NAME, None);
    api.allow_status_patch(&again, |status| {
        assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
        assert_eq!(status.failed_attempts, 1);
    });
    let second = credential::reconcile(Arc::new(again), ctx).await;
    api.checkpoint();
    assert_eq!(
        world.sim.count(Endpoint::Generate),
        1,
        "no retry before the backoff"
    );
    assert_eq!(
        second.as_ref().expect("reconcile succeeds"),
        &world.requeue_at(retry_at),
        "still requeued at the retry time"
    );

    let mut evidence = Evidence::default();
    evidence.result(&first);
    evidence.result(&second);
    evidence.api(&api);
    evidence.world(world);
    evidence
}
