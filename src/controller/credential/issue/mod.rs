//! Issue: resolve the broker, prove the Secret write with a dry run, generate (which revokes the
//! live credential) only while this process may, and store the new credential at once. If that
//! write fails the credential is kept and the write retried, never the generate. Then events,
//! metrics and rollouts; or, on failure, the backoff the planner sets.
//!
//! [`mint`] owns the steps up to and including the generate, and what is made of its answer.

mod mint;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::gather::Observation;
use super::pending::{self, Pending};
use super::{events, requeue_at, rollout};
use crate::controller::Context;
use crate::controller::failure::{Failure, FailureReason};
use crate::controller::status::credential::Outcome;
use crate::planner::{self, Expiry, IssueReason, Policy, Record};
use crate::secret::HeldValues;

/// When a reconcile the fence stopped looks again (if this replica still runs then).
const FENCED_RETRY: Duration = Duration::from_secs(5);

/// Issues for `trigger` and says what happened and when to look again.
pub async fn run(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
    trigger: IssueReason,
) -> (Outcome, Action) {
    let revision = next_revision(observation);
    let minted = match mint::mint(ctx, observation, policy, (revision, trigger)).await {
        Ok(minted) => minted,
        Err(failure) if failure.fenced => return fenced(observation, trigger, failure, revision),
        Err(failure) => return failed(ctx, observation, policy, trigger, failure, revision).await,
    };
    let expires_at = match minted.record.expiry {
        Expiry::At(at) => Some(at),
        _ => None,
    };
    let pending = Pending {
        data: minted.data,
        meta: minted.meta,
        record: minted.record,
        based_on: observation.current_revision(),
        trigger,
        fingerprint: minted.fingerprint,
        rotate_request: observation.rotate_request.clone(),
        expires_at,
        attempts: 0,
        next_attempt: observation.now,
    };
    match (
        pending::store(ctx, observation, pending).await,
        minted.anomaly,
    ) {
        // Stored, since the old credential is revoked; reported as the broker's failure.
        (
            Ok((
                Outcome::Issued {
                    record,
                    fingerprint,
                    ..
                },
                _,
            )),
            Some(anomaly),
        ) => {
            let mut outcome = failed(ctx, observation, policy, trigger, anomaly, revision).await;
            // The anomaly is the broker's answer, not an unknown outcome: nothing may land later.
            if let Outcome::Failed { verify_after, .. } = &mut outcome.0 {
                *verify_after = None;
            }
            if let Outcome::Failed { stored, .. } = &mut outcome.0 {
                *stored = Some((record, fingerprint));
            }
            outcome
        }
        (Ok(outcome) | Err(outcome), _) => outcome,
    }
}

/// The outcome of a stored credential: events, metrics, rollouts and the next renewal.
pub(super) async fn issued(
    ctx: &Context,
    observation: &Observation,
    pending: Pending,
) -> (Outcome, Action) {
    let policy = observation.policy.as_ref().ok();
    let renewal_time =
        policy.and_then(|p| planner::renewal_time(p, &pending.record, observation.jitter_seed));
    after_issue(ctx, observation, pending.trigger, &pending.record).await;
    // The token in hand goes to the delivery targets at once: the one they hold is dead.
    let deliveries = match HeldValues::read(
        &pending.data,
        &pending.meta.keys,
        pending.meta.credential_type,
    ) {
        Some(values) if super::deliver::wanted(observation) => {
            super::deliver::deliver(ctx, observation, &values, pending.record.revision).await
        }
        _ => Vec::new(),
    };
    let outcome = Outcome::Issued {
        record: pending.record,
        renewal_time,
        rotate_request: pending.rotate_request,
        trigger: pending.trigger,
        fingerprint: pending.fingerprint,
        deliveries,
    };
    (outcome, requeue_at(renewal_time, observation.now))
}

/// The fence stopped the generate before it was sent: nothing happened, so no metric or event;
/// the caller writes no status either ([`Failure::fenced`]). A replica shutting down or deposed
/// stops soon; the next leader looks again.
fn fenced(
    observation: &Observation,
    trigger: IssueReason,
    failure: Failure,
    revision: i64,
) -> (Outcome, Action) {
    tracing::info!(
        namespace = %observation.namespace(), name = %observation.name(),
        trigger = trigger.as_str(), detail = %failure.message,
        "generate not sent: fenced"
    );
    let outcome = Outcome::Failed {
        failure,
        trigger,
        next_retry: None,
        rotate_request: observation.rotate_request.clone(),
        revision,
        stored: None,
        verify_after: None,
    };
    (outcome, Action::requeue(FENCED_RETRY))
}

/// A failed attempt: its report and its backoff.
async fn failed(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
    trigger: IssueReason,
    failure: Failure,
    revision: i64,
) -> (Outcome, Action) {
    ctx.metrics.record_rotation(failure.reason.as_str());
    tracing::warn!(
        namespace = %observation.namespace(), name = %observation.name(),
        reason = %failure.reason, trigger = trigger.as_str(), detail = %failure.message,
        "issuing failed"
    );
    events::issue_failed(ctx, observation, &failure).await;
    let next_retry = next_retry(observation, policy, &failure);
    // A generate that went unanswered may still land at the broker, and revoke whatever the
    // Secret holds then: the stored token is checked once that can no longer happen.
    let verify_after = (failure.reason == FailureReason::RotationStateUnknown)
        .then(|| {
            observation
                .now
                .checked_add_signed(ctx.unknown_outcome_window)
        })
        .flatten();
    let outcome = Outcome::Failed {
        failure,
        trigger,
        next_retry,
        rotate_request: observation.rotate_request.clone(),
        revision,
        stored: None,
        verify_after,
    };
    (outcome, requeue_at(next_retry, observation.now))
}

/// When a failure is tried again: a slow backoff for one that needs a change (and at once when
/// the spec or the broker changes), a fast one otherwise. A broker's `Retry-After` is honoured
/// when it asks for longer.
fn next_retry(
    observation: &Observation,
    policy: &Policy,
    failure: &Failure,
) -> Option<DateTime<Utc>> {
    let mut input = observation.plan_input(policy, TimeDelta::zero());
    input.failures.attempts = input.failures.attempts.saturating_add(1);
    input.failures.last_failure_time = Some(observation.now);
    input.failures.category = Some(failure.category());
    input.failures.generation = Some(observation.generation());
    let backoff = planner::retry_time(&input)?;
    let asked = failure
        .retry_after
        .and_then(|d| TimeDelta::from_std(d).ok())
        .and_then(|d| observation.now.checked_add_signed(d));
    Some(asked.map_or(backoff, |asked| asked.max(backoff)))
}

/// The revision after the one in the Secret (or in status, when the Secret is gone).
fn next_revision(observation: &Observation) -> i64 {
    observation
        .current_revision()
        .unwrap_or(0)
        .saturating_add(1)
}

/// Events, metrics and rollout restarts after a successful write.
async fn after_issue(
    ctx: &Context,
    observation: &Observation,
    trigger: IssueReason,
    record: &Record,
) {
    let (reason, note) = events::issued(
        trigger,
        &observation.state,
        record,
        &observation.secret_name,
    );
    ctx.metrics.record_rotation("success");
    tracing::info!(
        namespace = %observation.namespace(), name = %observation.name(),
        revision = record.revision, trigger = trigger.as_str(), "credential issued"
    );
    events::publish(ctx, &observation.cr, EventType::Normal, reason, &note).await;
    rollout::restart_targets(ctx, &observation.cr, observation.now).await;
}
