//! Record: the status an outcome leads to, written only by the leader and only when it changed,
//! and what the credential's broker learns from the outcome.

use chrono::{DateTime, Utc};
use kube::api::Api;
use kube::runtime::controller::Action;

use super::STALE_RETRY;
use super::gather::{self, Observation, Source};
use crate::api::{CredentialType, SyncClientCredential, SyncClientCredentialStatus};
use crate::controller::brokers::BrokerKey;
use crate::controller::failure::FailureReason;
use crate::controller::status::credential::{Outcome, StatusInput, compute};
use crate::controller::status::notes::Notes;
use crate::controller::status::{self, Guard, StatusWrite, cached};
use crate::controller::{Context, Error};
use crate::planner::{self, FailureCategory};

/// Writes the status the outcome leads to (guarded when computed from the cache). A status that
/// cannot be written is kept and is where the next decision starts, so no failure, retry time or
/// history entry is forgotten. A replica that lost the lease, or doubts it after a freeze, writes
/// nothing: the new leader owns the status now. It keeps the schedule, though: a doubt passes,
/// and a lease really lost ends the process.
pub(super) async fn record(
    ctx: &Context,
    observation: &Observation,
    outcome: &Outcome,
    notes: &Notes,
    action: Action,
) -> Result<Action, Error> {
    if !ctx.fence.leading() {
        return Ok(action);
    }
    let uid = observation.uid();
    note_to_broker(ctx, observation, outcome);
    let input = status_input(ctx, observation, outcome, notes);
    let new = compute(&observation.old_status(), &input);
    let guard = match observation.source {
        Source::Cache => Guard::IfUnchanged,
        Source::Fresh => Guard::Always,
    };
    let written = match status::write(&ctx.client, observation.cr.as_ref(), &new, guard).await {
        Ok(StatusWrite::Elided) => recompute_fresh(ctx, observation, &input).await,
        Ok(written) => Ok((written, new)),
        Err(error) => Err((error, new)),
    };
    match written {
        Ok((StatusWrite::Done, new)) => {
            ctx.memo.status_written(&uid, &Some(cached::view(&new)));
            Ok(action)
        }
        Ok((StatusWrite::Stale | StatusWrite::Elided, new)) => {
            ctx.memo.keep_unwritten_status(&uid, new);
            Ok(Action::requeue(STALE_RETRY))
        }
        Err((error, new)) => {
            ctx.memo.keep_unwritten_status(&uid, new);
            Err(error)
        }
    }
}

/// Everything the status is computed from.
fn status_input<'a>(
    ctx: &Context,
    observation: &'a Observation,
    outcome: &'a Outcome,
    notes: &'a Notes,
) -> StatusInput<'a> {
    StatusInput {
        now: observation.now,
        generation: observation.generation(),
        secret_name: &observation.secret_name,
        secret: &observation.state,
        outcome,
        notes,
        served_rotate_request: observation
            .served_by_secret
            .as_deref()
            .filter(|served| observation.rotate_request.as_deref() == Some(served)),
        scheduled_renewal: scheduled_renewal(observation),
        delivery_names: observation
            .cr
            .spec
            .deliveries
            .iter()
            .map(|d| d.name.clone())
            .collect(),
        jitter_seed: observation.jitter_seed,
        probe_fresh_token: matches!(outcome, Outcome::Issued { .. })
            && observation.cr.spec.credential_type == CredentialType::AccessToken
            && ctx.brokers.claim_trust_probe(&BrokerKey::of(
                &observation.namespace(),
                &observation.cr.spec.broker_ref,
            )),
    }
}

/// The status computed from the cache needs a part the cache holds only as a digest (a message
/// it keeps, a text it builds on): it is computed again from a fresh read of the same version,
/// and written under that version. A resource changed meanwhile is decided again (`Stale`).
async fn recompute_fresh(
    ctx: &Context,
    observation: &Observation,
    input: &StatusInput<'_>,
) -> Result<(StatusWrite, SyncClientCredentialStatus), (Error, SyncClientCredentialStatus)> {
    let from_cache = || compute(&observation.old_status(), input);
    let api: Api<SyncClientCredential> =
        Api::namespaced(ctx.client.clone(), &observation.namespace());
    let latest = match api.get_opt(&observation.name()).await {
        Ok(Some(latest)) => latest,
        Ok(None) => return Ok((StatusWrite::Done, from_cache())),
        Err(source) => {
            let error = Error::GetCredential {
                namespace: observation.namespace(),
                name: observation.name(),
                source,
            };
            return Err((error, from_cache()));
        }
    };
    if latest.metadata.resource_version != observation.cr.metadata.resource_version {
        return Ok((StatusWrite::Stale, from_cache()));
    }
    let full = latest.status.clone().unwrap_or_default();
    let old = cached::restore(&observation.status, &full).unwrap_or(full);
    let new = compute(&old, input);
    match status::write(&ctx.client, &latest, &new, Guard::IfUnchanged).await {
        Ok(written) => Ok((written, new)),
        Err(error) => Err((error, new)),
    }
}

/// What the credential's broker learns from this outcome: a failure that needs a change (or an
/// authentication failure) has the broker checked again and its Secrets watched until a
/// credential succeeds; the failure remembers the broker's state, so a change retries at once.
fn note_to_broker(ctx: &Context, observation: &Observation, outcome: &Outcome) {
    let uid = observation.uid();
    let key = BrokerKey::of(&observation.namespace(), &observation.cr.spec.broker_ref);
    match outcome {
        Outcome::Failed { failure, .. } if !failure.reason.is_delivery() => {
            // The state now, after the attempt: a client the attempt itself built is no change.
            ctx.memo
                .set_failure_broker_state(&uid, gather::broker_state(ctx, &observation.cr));
            let authentication = failure.reason == FailureReason::AuthenticationFailed;
            if authentication || failure.category() == FailureCategory::Permanent {
                let newly = ctx.brokers.credentials_failing(&key).is_none();
                ctx.brokers.credential_failed(&key, authentication);
                if newly || authentication {
                    ctx.triggers.broker(&key);
                }
            }
        }
        Outcome::Issued { .. } => {
            ctx.memo.set_failure_broker_state(&uid, None);
            ctx.brokers.credential_succeeded(&key);
        }
        _ => {}
    }
}

/// When the credential the schedule is read from is due for renewal.
fn scheduled_renewal(observation: &Observation) -> Option<DateTime<Utc>> {
    let policy = observation.policy.as_ref().ok()?;
    planner::renewal_time(policy, observation.record()?, observation.jitter_seed)
}
