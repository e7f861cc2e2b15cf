//! Reconciles one `SyncClientCredential`: gather (the resource, its Secret, the policy, the
//! failures, the requests, the time), decide with the pure planner, act (at most one broker call
//! that revokes, and the Secret write that must not lose its result), then record the status,
//! patched only when it changed.
//!
//! - [`gather`]: the observation, from the cache and, before any issue, fresh;
//! - [`issue`]: broker call and the Secret data, proven writable first;
//! - [`write`]: the Secret write (and its dry run), never taking over a foreign Secret;
//! - [`rewrite`]: the credential already held, written again (moved, keys renamed, a new
//!   fingerprint): nothing is minted;
//! - [`verify`], [`preflight`]: broker checks that mint nothing;
//! - [`ownership`]: one sync client, one owner;
//! - [`rollout`], [`events`]: what follows an issue.

pub mod deliver;
pub(crate) mod events;
mod gather;
mod issue;
mod ownership;
pub mod pending;
mod preflight;
mod report;
mod rewrite;
mod rollout;
mod verify;
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

use super::brokers::BrokerKey;
use super::failure::FailureReason;
use super::status::credential::{Outcome, StatusInput, compute};
use super::status::notes::Notes;
use super::status::{self, Guard, StatusWrite, cached};
use super::{Context, Error};
use crate::api::{CredentialType, SpecError, SyncClientCredential, SyncClientCredentialStatus};
use crate::planner::{self, BlockReason, FailureCategory, Plan, Policy, SecretState, WaitReason};
use crate::secret;
use pending::Pending;

/// How often a credential blocked by a foreign Secret looks again (that Secret is not watched).
pub const FOREIGN_SECRET_RECHECK: Duration = Duration::from_secs(300);
/// After a stale status write: retry soon, on the newer version the watch delivers.
pub const STALE_RETRY: Duration = Duration::from_millis(500);
/// After the spec named another Secret between two reads: its watch event follows.
const RENAMED_RETRY: Duration = Duration::from_secs(1);

/// Reconcile entry point.
pub async fn reconcile(cr: Arc<SyncClientCredential>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_at(cr.clone(), &ctx, ctx.clock.now()).await;
    if let Err(error) = &result {
        report::error(&ctx, &cr, error).await;
    }
    ctx.metrics.observe_reconcile(started.elapsed());
    result
}

async fn reconcile_at(
    cr: Arc<SyncClientCredential>,
    ctx: &Context,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    if caches_lag(ctx, &cr) {
        // Triggered by this operator's own write before the caches have it: the watch event of
        // that write brings the next reconcile; deciding on this view would only be undone.
        return Ok(Action::requeue(STALE_RETRY));
    }
    let mut observation = gather::from_cache(ctx, cr, now).await?;
    let mut notes = Notes::default();
    let mut decision = decide(ctx, &observation);
    // A probe of the stored token or a preflight is an action the planner chooses like any
    // other; it mints nothing, its result joins the observation, and the planner decides again
    // (each runs at most once per reconcile).
    for _ in 0..2 {
        if !check(ctx, &mut observation, &mut notes, &decision).await {
            break;
        }
        decision = decide(ctx, &observation);
    }
    if decision.needs_fresh_read() {
        // Every issue revokes the previous credential: it is decided again on a fresh read.
        observation = match gather::fresh(ctx, &observation).await? {
            Fresh::Observed(fresh) => *fresh,
            Fresh::SecretRenamed => return Ok(Action::requeue(RENAMED_RETRY)),
            Fresh::Gone => {
                ctx.pending.remove(&observation.uid());
                return Ok(Action::await_change());
            }
        };
        decision = decide(ctx, &observation);
    }
    tracing::debug!(namespace = %observation.namespace(), name = %observation.name(), decision = %decision.describe(), "decided");
    let (mut outcome, action) = act(ctx, &observation, decision, &mut notes).await?;
    if matches!(&outcome, Outcome::Failed { failure, .. } if failure.fenced) {
        return Ok(action); // stopped by the fence: nothing happened, nothing to record
    }
    if let Outcome::Issued { deliveries, .. } = &mut outcome {
        notes.deliveries.append(deliveries);
    }
    record(ctx, &observation, &outcome, &notes, action).await
}

/// Whether the credential's status or its Secret in the watch caches lag behind what this
/// process wrote a moment ago.
fn caches_lag(ctx: &Context, cr: &SyncClientCredential) -> bool {
    let Some(uid) = &cr.metadata.uid else {
        return false;
    };
    // Compared as the cache holds statuses (the memo keeps the hash of the view it wrote).
    if ctx
        .memo
        .cache_lags(uid, &cr.status.as_ref().map(cached::view))
    {
        return true;
    }
    let Some(caches) = ctx.caches() else {
        return false;
    };
    let namespace = cr.metadata.namespace.as_deref().unwrap_or_default();
    let meta = caches.secret(namespace, &crate::api::secret_name(cr));
    let version = meta
        .as_ref()
        .and_then(|meta| meta.metadata.resource_version.as_deref());
    ctx.memo.secret_cache_lags(uid, version)
}

/// What to do, decided purely from an observation.
#[derive(Debug)]
enum Decision {
    SpecInvalid(SpecError),
    /// Write a credential generated earlier whose write failed; never generate again for it.
    StorePending(Box<Pending>),
    /// Wait out the short backoff before writing that credential again.
    HoldPending {
        until: DateTime<Utc>,
        trigger: planner::IssueReason,
    },
    Plan(Plan, Policy),
}

impl Decision {
    /// The decision in words, for the debug log.
    fn describe(&self) -> String {
        let at = |until: Option<DateTime<Utc>>| {
            until.map_or_else(|| "nothing scheduled".to_owned(), secret::rfc3339)
        };
        match self {
            Self::SpecInvalid(error) => format!("report the invalid spec ({error})"),
            Self::StorePending(pending) => format!(
                "store the generated revision {} ({})",
                pending.record.revision,
                pending.trigger.as_str()
            ),
            Self::HoldPending { until, trigger } => format!(
                "hold the generated credential ({}) until {}",
                trigger.as_str(),
                at(Some(*until))
            ),
            Self::Plan(Plan::Issue(trigger), _) => format!("issue ({})", trigger.as_str()),
            Self::Plan(Plan::Wait { until, why }, _) => {
                let why = match why {
                    WaitReason::Scheduled => "scheduled".to_owned(),
                    WaitReason::Backoff(trigger) => format!("backoff of {}", trigger.as_str()),
                    WaitReason::Throttled(trigger) => format!("{} throttled", trigger.as_str()),
                };
                format!("wait until {} ({why})", at(*until))
            }
            Self::Plan(Plan::Blocked(reason), _) => format!(
                "blocked ({})",
                match reason {
                    BlockReason::Suspended => "suspended",
                    BlockReason::SecretNotOwned => "Secret not owned",
                    BlockReason::SyncClientInUse => "sync client in use",
                }
            ),
            Self::Plan(Plan::Rewrite(reason), _) => format!("write again ({})", reason.as_str()),
            Self::Plan(Plan::Verify, _) => "probe the stored token".to_owned(),
            Self::Plan(Plan::Preflight, _) => "preflight".to_owned(),
            Self::Plan(Plan::Deliver, _) => "deliver the stored token".to_owned(),
        }
    }

    /// Issues, and holds of an issue, are decided on a fresh read: the cache may miss the issue
    /// this operator recorded a moment ago (and report a served request as due).
    fn needs_fresh_read(&self) -> bool {
        matches!(
            self,
            Self::Plan(
                Plan::Issue(_)
                    | Plan::Wait {
                        why: WaitReason::Throttled(_),
                        ..
                    },
                _
            ) | Self::StorePending(_)
        )
    }
}

fn decide(ctx: &Context, observation: &Observation) -> Decision {
    if let Some(pending) = &observation.pending
        && !pending_is_superseded(observation, pending)
        && observation.state != SecretState::NotOwned
    {
        if pending.next_attempt > observation.now {
            return Decision::HoldPending {
                until: pending.next_attempt,
                trigger: pending.trigger,
            };
        }
        return Decision::StorePending(Box::new(pending.clone()));
    }
    match &observation.policy {
        Ok(policy) => Decision::Plan(
            planner::plan(&observation.plan_input(policy, ctx.min_issue_interval)),
            policy.clone(),
        ),
        Err(error) => Decision::SpecInvalid(error.clone()),
    }
}

/// The Secret already holds this credential (its write landed after all) or a newer one.
fn pending_is_superseded(observation: &Observation, pending: &Pending) -> bool {
    matches!(&observation.state, SecretState::Owned(record) if record.revision >= pending.record.revision)
}

/// Runs the check the decision asks for, if it is one; `false` when it is not.
async fn check(
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

async fn act(
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

/// Writes the status the outcome leads to (guarded when computed from the cache). A status that
/// cannot be written is kept and is where the next decision starts, so no failure, retry time or
/// history entry is forgotten. A replica that lost the lease, or doubts it after a freeze, writes
/// nothing: the new leader owns the status now. It keeps the schedule, though: a doubt passes,
/// and a lease really lost ends the process.
async fn record(
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
