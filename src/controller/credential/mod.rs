//! Reconciles one `SyncClientCredential`: gather (the resource, its Secret, the policy, the
//! failures, the requests, the time), decide with the pure planner, act (at most one broker call
//! that revokes, and the Secret write that must not lose its result), then record the status,
//! patched only when it changed.
//!
//! - [`gather`]: the observation, from the cache and, before any issue, fresh;
//! - [`decide`]: what to do, purely from the observation;
//! - [`act`]: the checks and the one action the decision asks for;
//! - [`record`]: the status the outcome leads to, and what the broker learns from it;
//! - [`issue`]: broker call and the Secret data, proven writable first;
//! - [`write`]: the Secret write (and its dry run), never taking over a foreign Secret;
//! - [`rewrite`]: the credential already held, written again (moved, keys renamed, a new
//!   fingerprint): nothing is minted;
//! - [`verify`], [`preflight`]: broker checks that mint nothing;
//! - [`ownership`]: one sync client, one owner;
//! - [`rollout`], [`events`]: what follows an issue.

mod act;
mod decide;
pub mod deliver;
pub(crate) mod events;
mod gather;
mod issue;
mod ownership;
pub mod pending;
mod preflight;
mod record;
mod report;
mod rewrite;
mod rollout;
mod verify;
mod write;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::runtime::controller::Action;

use decide::decide;
pub use events::publish;
use gather::Fresh;
pub use rollout::RESTARTED_AT_ANNOTATION;

use super::status::cached;
use super::status::credential::Outcome;
use super::status::notes::Notes;
use super::{Context, Error};
use crate::api::SyncClientCredential;

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
        if !act::check(ctx, &mut observation, &mut notes, &decision).await {
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
    let (mut outcome, action) = act::act(ctx, &observation, decision, &mut notes).await?;
    if matches!(&outcome, Outcome::Failed { failure, .. } if failure.fenced) {
        return Ok(action); // stopped by the fence: nothing happened, nothing to record
    }
    if let Outcome::Issued { deliveries, .. } = &mut outcome {
        notes.deliveries.append(deliveries);
    }
    record::record(ctx, &observation, &outcome, &notes, action).await
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
