//! Act: carries out what was decided. A check (a probe of the stored token, a preflight) mints
//! nothing and its result joins the observation; otherwise the one action runs and says what
//! happened and when to look again.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;

use super::decide::{Decision, pending_is_superseded};
use super::gather::Observation;
use super::{
    FOREIGN_SECRET_RECHECK, deliver, events, issue, pending, preflight, requeue_at, rewrite, verify,
};
use crate::controller::status::credential::Outcome;
use crate::controller::status::notes::Notes;
use crate::controller::{Context, Error};
use crate::planner::{self, BlockReason, Plan, SecretState, WaitReason};
use crate::secret;

/// Runs the check the decision asks for, if it is one; `false` when it is not.
pub(super) async fn check(
    ctx: &Context,
    observation: &mut Observation,
    notes: &mut Notes,
    decision: &Decision,
) -> bool {
    match decision {
        Decision::Plan(Plan::Verify, _) => {
            let (note, verification) = verify::probe(ctx, observation).await;
            observation.verification = Some(verification);
            notes.verification = Some(note);
        }
        Decision::Plan(Plan::Preflight, _) => {
            let note = preflight::run(ctx, observation).await;
            observation.preflight_ran = true;
            if note.request.is_some() {
                observation.preflight_served.clone_from(&note.request);
            }
            notes.preflight = Some(note);
        }
        _ => return false,
    }
    true
}

pub(super) async fn act(
    ctx: &Context,
    observation: &Observation,
    decision: Decision,
    notes: &mut Notes,
) -> Result<(Outcome, Action), Error> {
    let now = observation.now;
    if let Some(pending) = &observation.pending
        && pending_is_superseded(observation, pending)
    {
        ctx.pending.remove(&observation.uid());
    }
    Ok(match decision {
        Decision::SpecInvalid(error) => (
            Outcome::SpecInvalid(error.to_string()),
            Action::await_change(),
        ),
        Decision::StorePending(pending) => pending::store_pending(ctx, observation, *pending).await,
        Decision::HoldPending { until, trigger } => (
            Outcome::Waiting {
                renewal_time: None,
                held: Some((WaitReason::Backoff(trigger), until)),
            },
            requeue_at(Some(until), now),
        ),
        Decision::Plan(Plan::Wait { until, why }, policy) => {
            patch_metadata_drift(ctx, observation).await?;
            let renewal_time = match &observation.state {
                SecretState::Owned(record) => {
                    planner::renewal_time(&policy, record, observation.jitter_seed)
                }
                _ => None,
            };
            let held = match why {
                WaitReason::Scheduled => None,
                reason => until.map(|at| (reason, at)),
            };
            let outcome = Outcome::Waiting { renewal_time, held };
            (outcome, requeue_at(until, now))
        }
        Decision::Plan(Plan::Blocked(BlockReason::SyncClientInUse), _) => {
            let owner = observation.sync_client_owner.clone().unwrap_or_default();
            events::sync_client_in_use(ctx, observation, &owner).await;
            (Outcome::InUse { owner }, Action::await_change())
        }
        Decision::Plan(Plan::Blocked(reason), _) => {
            let action = if reason == BlockReason::SecretNotOwned {
                events::secret_not_owned(ctx, observation).await;
                Action::requeue(FOREIGN_SECRET_RECHECK)
            } else {
                Action::await_change()
            };
            (Outcome::Blocked(reason), action)
        }
        Decision::Plan(Plan::Issue(trigger), policy) => {
            issue::run(ctx, observation, &policy, trigger).await
        }
        Decision::Plan(Plan::Rewrite(reason), policy) => {
            rewrite::run(ctx, observation, &policy, reason).await?
        }
        Decision::Plan(Plan::Deliver, policy) => {
            if let Some((values, revision)) = deliver::held_in_secret(ctx, observation).await {
                notes.deliveries = deliver::deliver(ctx, observation, &values, revision).await;
            }
            let renewal_time = observation
                .record()
                .and_then(|r| planner::renewal_time(&policy, r, observation.jitter_seed));
            (
                Outcome::Waiting {
                    renewal_time,
                    held: None,
                },
                // The next decision reads what the deliveries recorded.
                Action::requeue(Duration::from_secs(1)),
            )
        }
        // Checks already ran in this reconcile; their next turn is planned by the next one.
        Decision::Plan(Plan::Verify | Plan::Preflight, _) => (
            Outcome::Waiting {
                renewal_time: None,
                held: None,
            },
            Action::requeue(Duration::from_secs(1)),
        ),
    })
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
