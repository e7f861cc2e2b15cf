//! Events on a credential. Publishing is best effort: a failure is logged, never fatal.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::gather::Observation;
use crate::api::{SyncClientCredential, reasons};
use crate::controller::failure::{Failure, FailureReason};
use crate::controller::status::bounded;
use crate::controller::{Context, kube_error};
use crate::planner::{IssueReason, Record, SecretState};

/// Publishes an event on the credential.
pub async fn publish(
    ctx: &Context,
    cr: &SyncClientCredential,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    publish_on(ctx, &cr.object_ref(&()), type_, reason, note).await;
}

/// Publishes an event on any object of the operator (a credential, a broker).
pub async fn publish_on(
    ctx: &Context,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    if !ctx.fence.leading() {
        // The new leader reports what happens now.
        return;
    }
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(bounded(note)),
        action: action(reason).into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, regarding).await {
        tracing::warn!(error = %kube_error::describe(&e), reason, "could not publish event");
    }
}

/// What the operator was doing, for the event's `action`.
fn action(reason: &str) -> &'static str {
    let reconcile_errors = [
        FailureReason::SecretReadFailed,
        FailureReason::SecretWriteFailed,
        FailureReason::SecretWriteRejected,
        FailureReason::ReconcilePanicked,
    ];
    match reason {
        reasons::EVENT_ROLLOUT_RESTARTED | reasons::EVENT_ROLLOUT_RESTART_FAILED => "Restart",
        // A reconcile error: a read or write the reconcile needed failed.
        reasons::CREDENTIAL_READ_FAILED | reasons::STATUS_WRITE_FAILED => "Reconcile",
        _ if reconcile_errors.iter().any(|r| r.as_str() == reason) => "Reconcile",
        _ => "Issue",
    }
}

/// A reconcile of this credential panicked; it was contained and is retried with backoff.
pub async fn panicked(ctx: &Context, cr: &SyncClientCredential, error: &crate::controller::Error) {
    let reason = FailureReason::ReconcilePanicked;
    let note = format!("{error}; {}", reason.hint());
    publish(ctx, cr, EventType::Warning, reason.as_str(), &note).await;
}

pub async fn secret_not_owned(ctx: &Context, observation: &Observation) {
    let note = format!(
        "Secret {} exists and is not controlled by this resource; it was left untouched",
        observation.secret_name
    );
    publish(
        ctx,
        &observation.cr,
        EventType::Warning,
        reasons::EVENT_SECRET_NOT_OWNED,
        &note,
    )
    .await;
}

pub async fn issue_failed(ctx: &Context, observation: &Observation, failure: &Failure) {
    let note = format!("{}: {}", failure.reason, failure.message);
    publish(
        ctx,
        &observation.cr,
        EventType::Warning,
        reasons::EVENT_ROTATION_FAILED,
        &note,
    )
    .await;
}

/// The event after a successful issue: a repair, the first issue, or a rotation.
pub fn issued(
    trigger: IssueReason,
    before: &SecretState,
    record: &Record,
    secret_name: &str,
) -> (&'static str, String) {
    if trigger.is_repair() {
        (
            reasons::EVENT_SECRET_REPAIRED,
            format!(
                "Secret {secret_name} was edited and has been repaired with revision {}",
                record.revision
            ),
        )
    } else if matches!(before, SecretState::Missing) && record.revision == 1 {
        (
            reasons::EVENT_ISSUED,
            format!("issued revision 1 into Secret {secret_name}"),
        )
    } else {
        (
            reasons::EVENT_ROTATED,
            format!(
                "rotated ({}) to revision {} in Secret {secret_name}",
                trigger.as_str(),
                record.revision,
            ),
        )
    }
}

pub async fn sync_client_in_use(ctx: &Context, observation: &Observation, owner: &str) {
    let note = format!(
        "SyncClientCredential {owner} already rotates this sync client; this one issues nothing"
    );
    publish(
        ctx,
        &observation.cr,
        EventType::Warning,
        reasons::EVENT_SYNC_CLIENT_IN_USE,
        &note,
    )
    .await;
}
