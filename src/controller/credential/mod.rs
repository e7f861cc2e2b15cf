//! Reconciles one `SyncClientCredential`: gather (the resource, its Secret, the policy, the
//! failures, the time), decide with the pure planner, act (at most one broker call and one Secret
//! write), then record the status, patched only when it changed.
//!
//! - [`gather`]: the observation, from the cache and, before any issue, fresh;
//! - [`issue`]: broker call, Secret data and the write that must not lose the new credential;
//! - [`rollout`]: restarts of the workloads that mount the Secret;
//! - [`events`]: what is published on the resource.

mod events;
mod gather;
mod issue;
mod rollout;
mod write;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;

pub use events::publish;
use gather::{Fresh, Observation, Source};
pub use rollout::RESTARTED_AT_ANNOTATION;

use super::status::credential::{Outcome, StatusInput, compute};
use super::status::{self, Guard, StatusWrite};
use super::{Context, Error};
use crate::api::{SpecError, SyncClientCredential};
use crate::planner::{self, BlockReason, Plan, Policy, SecretState};
use crate::secret;

/// How often a credential blocked by a foreign Secret looks again (that Secret is not watched).
pub const FOREIGN_SECRET_RECHECK: Duration = Duration::from_secs(300);
/// After a stale status write: retry soon, on the newer version the watch delivers.
pub const STALE_RETRY: Duration = Duration::from_millis(500);
/// After the spec named another Secret between two reads: its watch event follows.
const RENAMED_RETRY: Duration = Duration::from_secs(1);

/// Reconcile entry point.
pub async fn reconcile(cr: Arc<SyncClientCredential>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_at(cr, &ctx, ctx.clock.now()).await;
    ctx.metrics.observe_reconcile(started.elapsed());
    result
}

async fn reconcile_at(
    cr: Arc<SyncClientCredential>,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    let mut observation = gather::from_cache(ctx, cr, now).await?;
    let mut decision = decide(&observation);
    if matches!(decision, Decision::Plan(Plan::Issue(_), _)) {
        // Every issue revokes the previous credential: it is decided again on a fresh read.
        observation = match gather::fresh(ctx, &observation).await? {
            Fresh::Observed(fresh) => *fresh,
            Fresh::SecretRenamed => return Ok(Action::requeue(RENAMED_RETRY)),
            Fresh::Gone => return Ok(Action::await_change()),
        };
        decision = decide(&observation);
    }
    tracing::debug!(namespace = %observation.namespace(), name = %observation.name(), ?decision, "decided");
    let (outcome, action) = act(ctx, &observation, decision).await?;
    record(ctx, &observation, &outcome, action).await
}

/// What to do, decided purely from an observation.
#[derive(Debug)]
enum Decision {
    SpecInvalid(SpecError),
    Plan(Plan, Policy),
}

fn decide(observation: &Observation) -> Decision {
    match &observation.policy {
        Ok(policy) => Decision::Plan(
            planner::plan(&observation.plan_input(policy)),
            policy.clone(),
        ),
        Err(error) => Decision::SpecInvalid(error.clone()),
    }
}

async fn act(
    ctx: &Context,
    observation: &Observation,
    decision: Decision,
) -> Result<(Outcome, Action), Error> {
    let now = observation.now;
    match decision {
        Decision::SpecInvalid(error) => Ok((
            Outcome::SpecInvalid(error.to_string()),
            Action::await_change(),
        )),
        Decision::Plan(Plan::Wait { until, backoff_for }, policy) => {
            patch_metadata_drift(ctx, observation).await?;
            let renewal_time = match &observation.state {
                SecretState::Owned(record) => {
                    planner::renewal_time(&policy, record, observation.jitter_seed)
                }
                _ => None,
            };
            let outcome = Outcome::Waiting {
                renewal_time,
                backoff: backoff_for.zip(until),
            };
            Ok((outcome, requeue_at(until, now)))
        }
        Decision::Plan(Plan::Blocked(reason), _) => {
            let action = if reason == BlockReason::SecretNotOwned {
                events::secret_not_owned(ctx, observation).await;
                Action::requeue(FOREIGN_SECRET_RECHECK)
            } else {
                Action::await_change()
            };
            Ok((Outcome::Blocked(reason), action))
        }
        Decision::Plan(Plan::Issue(trigger), policy) => {
            Ok(issue::run(ctx, observation, &policy, trigger).await)
        }
    }
}

/// Brings template labels and annotations missing from an owned Secret in, without a new
/// credential.
async fn patch_metadata_drift(ctx: &Context, observation: &Observation) -> Result<(), Error> {
    let (Some(secret), SecretState::Owned(_)) = (&observation.secret, &observation.state) else {
        return Ok(());
    };
    let Some(patch) = secret::metadata_drift(&observation.cr, secret) else {
        return Ok(());
    };
    Api::<Secret>::namespaced(ctx.client.clone(), &observation.namespace())
        .patch(
            &observation.secret_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| Error::WriteSecret {
            namespace: observation.namespace(),
            name: observation.secret_name.clone(),
            source,
        })?;
    Ok(())
}

/// Writes the status the outcome leads to (guarded when computed from the cache).
async fn record(
    ctx: &Context,
    observation: &Observation,
    outcome: &Outcome,
    action: Action,
) -> Result<Action, Error> {
    let new = compute(
        &observation.old_status(),
        &StatusInput {
            now: observation.now,
            generation: observation.generation(),
            secret_name: &observation.secret_name,
            secret: &observation.state,
            outcome,
        },
    );
    let guard = match observation.source {
        Source::Cache => Guard::IfUnchanged,
        Source::Fresh => Guard::Always,
    };
    if status::write(&ctx.client, observation.cr.as_ref(), &new, guard).await? == StatusWrite::Stale
    {
        return Ok(Action::requeue(STALE_RETRY));
    }
    ctx.metrics.record_credential(&observation.cr, &new);
    Ok(action)
}

/// Requeue at a planned time (never earlier than one second from now).
pub(crate) fn requeue_at(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Action {
    match until {
        Some(at) => Action::requeue(
            (at - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_secs(1)),
        ),
        None => Action::await_change(),
    }
}
