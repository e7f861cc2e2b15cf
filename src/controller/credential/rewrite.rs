//! Rewrite: the credential already held is written again, never minted anew. Under the Secret
//! name the spec names now (moved from the Secret it named before, which keeps its ownership and
//! is removed with the credential), under the data keys it names now, or with a fingerprint made
//! by the current key in the current format (a key rotation, a record written by 0.1.0).

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::gather::Observation;
use super::write::{SecretWrite, WriteError};
use super::{events, requeue_at, rollout};
use crate::api::reasons;
use crate::controller::status::credential::Outcome;
use crate::controller::{Context, Error};
use crate::planner::{self, Policy, Record, RewriteReason, SecretState};
use crate::secret::{self, RecordMeta};

/// What to write, and where it comes from.
struct Source {
    secret: k8s_openapi::api::core::v1::Secret,
    record: Record,
    /// The Secret it was read from, when it is another one than the spec names now.
    moved_from: Option<String>,
}

/// Writes the held credential again; `None` when the Secret does not hold a complete credential
/// under its recorded keys after all (then it is repaired by an issue).
pub async fn run(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
    reason: RewriteReason,
) -> Result<(Outcome, Action), Error> {
    let Some(source) = source(ctx, observation).await? else {
        return Ok(gone(observation));
    };
    // `observe` counts a Secret whose values cannot be read under its recorded keys as
    // tampered with, so an intact one always has them.
    let Some((meta, values)) =
        secret::held_record(&source.secret, &observation.expected, &source.record)
    else {
        return Ok(gone(observation));
    };
    let desired = secret::render(
        &observation.cr,
        &observation.secret_name,
        &values.data(&meta.keys),
        &meta,
        &ctx.fingerprint_keys,
    );
    let write = SecretWrite::new(ctx, observation, observation.current_revision());
    match write.store(&desired).await {
        Ok(version) => ctx.memo.secret_written(&observation.uid(), version),
        Err(WriteError::Superseded(_)) => {
            // A newer credential landed meanwhile: its watch event brings the next reconcile.
            return Ok(waiting(observation));
        }
        Err(
            WriteError::Rejected(failure)
            | WriteError::Failed(failure)
            | WriteError::Foreign(failure),
        ) => {
            // Reported (event, log, metric) with every reconcile error.
            return Err(Error::RewriteSecret {
                namespace: observation.namespace(),
                name: observation.secret_name.clone(),
                why: reason.as_str(),
                reason: failure.reason,
                message: failure.message,
            });
        }
    }
    let record = Record {
        layout_current: true,
        fingerprint_current: true,
        ..source.record
    };
    announce(
        ctx,
        observation,
        reason,
        &meta,
        source.moved_from.as_deref(),
    )
    .await;
    let renewal_time = planner::renewal_time(policy, &record, observation.jitter_seed);
    let outcome = Outcome::Rewritten {
        record,
        renewal_time,
        reason,
    };
    Ok((outcome, requeue_at(renewal_time, observation.now)))
}

/// The Secret holding the credential, read in full (the cache holds metadata only).
async fn source(ctx: &Context, observation: &Observation) -> Result<Option<Source>, Error> {
    match (&observation.state, &observation.held) {
        (SecretState::Missing, Some(held)) => Ok(Some(Source {
            secret: held.secret.clone(),
            record: held.record.clone(),
            moved_from: Some(held.secret_name.clone()),
        })),
        (SecretState::Owned(record), _) => {
            let secret = if observation.secret_complete {
                observation.secret.clone()
            } else {
                super::gather::read_secret(ctx, &observation.cr).await?
            };
            Ok(secret.map(|secret| Source {
                secret,
                record: record.clone(),
                moved_from: None,
            }))
        }
        _ => Ok(None),
    }
}

/// Events and rollouts: the workloads see new data for a moved Secret or renamed keys; a new
/// fingerprint changes nothing they read, and is only logged (a key rotation touches every
/// Secret at once).
async fn announce(
    ctx: &Context,
    observation: &Observation,
    reason: RewriteReason,
    meta: &RecordMeta,
    moved_from: Option<&str>,
) {
    tracing::info!(
        namespace = %observation.namespace(), name = %observation.name(),
        secret = %observation.secret_name, revision = meta.revision, reason = reason.as_str(),
        "credential written again without a new one"
    );
    let (event, note) = match (reason, moved_from) {
        (RewriteReason::SecretRenamed, Some(from)) => (
            reasons::EVENT_SECRET_MOVED,
            format!(
                "revision {} moved from Secret {from} to Secret {}; nothing was issued, the old Secret keeps the credential until it is deleted",
                meta.revision, observation.secret_name
            ),
        ),
        (RewriteReason::KeysRenamed, _) => (
            reasons::EVENT_SECRET_KEYS_RENAMED,
            format!(
                "revision {} rewritten in Secret {} under the data keys spec.keys names now; nothing was issued",
                meta.revision, observation.secret_name
            ),
        ),
        _ => return,
    };
    events::publish(ctx, &observation.cr, EventType::Normal, event, &note).await;
    rollout::restart_targets(ctx, &observation.cr, observation.now).await;
}

/// The Secret holding the credential changed since it was observed (deleted, or its data
/// edited): its watch event brings the next reconcile, which sees what it holds now.
fn gone(observation: &Observation) -> (Outcome, Action) {
    tracing::info!(
        namespace = %observation.namespace(), name = %observation.name(),
        secret = %observation.secret_name,
        "the Secret holding the credential changed meanwhile; looking again"
    );
    waiting(observation)
}

fn waiting(observation: &Observation) -> (Outcome, Action) {
    (
        Outcome::Waiting {
            renewal_time: None,
            held: None,
        },
        requeue_at(
            Some(observation.now + chrono::TimeDelta::seconds(1)),
            observation.now,
        ),
    )
}
