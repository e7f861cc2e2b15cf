//! The life of a credential that was generated and not yet stored. Every generate revokes the
//! live credential, so a new one is written at once and, if that write fails, kept here and the
//! write retried (1 s to 30 s backoff), never the generate. It goes to the Secret the spec names
//! when the write happens. When another writer stored a credential meanwhile (a newer revision,
//! or the same revision with another issue id), exactly one of the two is live at the broker: the
//! stored token is probed before either is dropped. The store is bounded, entries are dropped
//! when their credential expires, and `Debug` shows no credential.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use sync_client_broker::SecretString;

use super::gather::Observation;
use super::write::{SecretWrite, WriteError};
use super::{events, issue, requeue_at};
use crate::api::CredentialType;
use crate::controller::Context;
use crate::controller::failure::Failure;
use crate::controller::status::credential::Outcome;
use crate::planner::{IssueReason, Record};
use crate::secret::{self, CredentialData, RecordMeta};

/// Most credentials kept waiting at once; beyond it no new generate starts.
pub const MAX_PENDING: usize = 10_000;
/// Short backoff of a write retried for a credential already generated.
const RETRY_BASE: TimeDelta = TimeDelta::seconds(1);
const RETRY_CAP: TimeDelta = TimeDelta::seconds(30);

/// A generated credential waiting to be written.
#[derive(Clone)]
pub struct Pending {
    /// The data (`Debug` shows its keys only) and the record it is written with.
    pub data: CredentialData,
    pub meta: RecordMeta,
    /// The planner's view of that record.
    pub record: Record,
    /// The revision the Secret held when this credential was generated (`None`: no Secret).
    pub based_on: Option<i64>,
    pub trigger: IssueReason,
    /// Short keyed fingerprint of the credential, for the history.
    pub fingerprint: String,
    /// The rotate request served by this credential, if any.
    pub rotate_request: Option<String>,
    /// After this the credential is useless: it is dropped.
    pub expires_at: Option<DateTime<Utc>>,
    /// Failed writes so far.
    pub attempts: u32,
    /// When the write is tried again.
    pub next_attempt: DateTime<Utc>,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("data", &self.data)
            .field("record", &self.record)
            .field("based_on", &self.based_on)
            .field("trigger", &self.trigger)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// The Secret to write, under the name the spec gives now.
    fn secret(&self, ctx: &Context, observation: &Observation) -> Secret {
        secret::render(
            &observation.cr,
            &observation.secret_name,
            &self.data,
            &self.meta,
            &ctx.fingerprint_keys,
        )
    }

    /// Kept for another write attempt after a short backoff.
    fn retry_later(mut self, now: DateTime<Utc>) -> Self {
        self.attempts = self.attempts.saturating_add(1);
        let delay = RETRY_BASE
            .checked_mul(1_i32 << self.attempts.min(5))
            .unwrap_or(RETRY_CAP)
            .min(RETRY_CAP);
        self.next_attempt = now.checked_add_signed(delay).unwrap_or(now);
        self
    }
}

/// Stores `pending` now. On success: events, rollouts, and the next renewal; on failure the
/// credential is kept for a retry with a short backoff (`Err`).
pub async fn store(
    ctx: &Context,
    observation: &Observation,
    pending: Pending,
) -> Result<(Outcome, Action), (Outcome, Action)> {
    let uid = observation.uid();
    let write = SecretWrite::new(ctx, observation, pending.based_on);
    let (failure, kept) = match write.store(&pending.secret(ctx, observation)).await {
        Ok(version) => {
            ctx.pending.remove(&uid);
            ctx.memo.secret_written(&uid, version);
            return Ok(issue::issued(ctx, observation, pending).await);
        }
        Err(WriteError::Superseded(theirs)) => {
            return settle(ctx, observation, pending, &theirs).await;
        }
        Err(
            WriteError::Rejected(failure)
            | WriteError::Failed(failure)
            | WriteError::Foreign(failure),
        ) => {
            let kept = pending.retry_later(observation.now);
            ctx.pending.keep(&uid, kept.clone());
            (failure, kept)
        }
    };
    Err(write_failed(ctx, observation, &kept, failure, None).await)
}

/// Writes a credential generated earlier whose write failed.
pub async fn store_pending(
    ctx: &Context,
    observation: &Observation,
    pending: Pending,
) -> (Outcome, Action) {
    match store(ctx, observation, pending).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

/// Another writer stored a credential meanwhile. Exactly one of the two is live at the broker
/// (each generate revokes the one before): ours is probed. Accepted: theirs is dead, ours is
/// written on top (a newer revision). Refused: theirs is the live one and ours is dropped. A
/// client secret cannot be probed: ours is dropped and a new one issued soon, so the Secret
/// holds a credential known to be live. Without an answer ours is kept and the write retried.
async fn settle(
    ctx: &Context,
    observation: &Observation,
    mut pending: Pending,
    theirs: &Secret,
) -> Result<(Outcome, Action), (Outcome, Action)> {
    let uid = observation.uid();
    let their_revision = theirs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(secret::REVISION_ANNOTATION))
        .and_then(|r| r.parse::<i64>().ok())
        .unwrap_or_default();
    let verdict = match observation.cr.spec.credential_type {
        CredentialType::AccessToken => probe_ours(ctx, observation, &pending).await,
        CredentialType::ClientSecret => Ok(false),
    };
    let (failure, verify_after) = match verdict {
        Ok(true) => {
            tracing::warn!(namespace = %observation.namespace(), name = %observation.name(), their_revision, "another writer stored a credential, but ours is the live one: it is written on top");
            pending.meta.revision = their_revision.saturating_add(1);
            pending.record.revision = pending.meta.revision;
            pending.based_on = Some(their_revision);
            return Box::pin(store(ctx, observation, pending)).await;
        }
        Ok(false) => {
            ctx.pending.remove(&uid);
            tracing::warn!(namespace = %observation.namespace(), name = %observation.name(), their_revision, "another writer stored a newer credential; ours was revoked by it and is dropped");
            let unknown = observation.cr.spec.credential_type == CredentialType::ClientSecret;
            (
                Failure::secret_write(format!(
                    "another writer stored revision {their_revision} meanwhile{}",
                    if unknown {
                        "; a client secret cannot be checked, so a new one is issued to be sure"
                    } else {
                        ", and the broker refused ours: theirs is kept"
                    }
                )),
                unknown.then_some(observation.now),
            )
        }
        Err(failure) => {
            let kept = pending.retry_later(observation.now);
            ctx.pending.keep(&uid, kept.clone());
            return Err(write_failed(ctx, observation, &kept, failure, None).await);
        }
    };
    Err(write_failed(ctx, observation, &pending, failure, verify_after).await)
}

/// Whether the broker accepts our token (`Err`: it could not tell).
async fn probe_ours(
    ctx: &Context,
    observation: &Observation,
    pending: &Pending,
) -> Result<bool, Failure> {
    let keys = &pending.meta.keys;
    let token = pending
        .data
        .get(&keys.access_token)
        .map(SecretString::from)
        .ok_or_else(|| Failure::secret_write("the generated credential holds no access token"))?;
    let broker = super::gather::broker(ctx, observation).await?;
    let _permit = broker.permit().await?;
    broker
        .client
        .probe_token(&token)
        .await
        .map_err(|e| Failure::from_broker(&e))
}

/// The report of a write that did not store the credential.
async fn write_failed(
    ctx: &Context,
    observation: &Observation,
    pending: &Pending,
    failure: Failure,
    verify_after: Option<DateTime<Utc>>,
) -> (Outcome, Action) {
    ctx.metrics.record_rotation(failure.reason.as_str());
    events::issue_failed(ctx, observation, &failure).await;
    let kept = ctx
        .pending
        .get(&observation.uid(), observation.now)
        .is_some();
    let next_retry = kept.then_some(pending.next_attempt);
    let outcome = Outcome::Failed {
        failure,
        trigger: pending.trigger,
        next_retry,
        rotate_request: pending.rotate_request.clone(),
        revision: pending.record.revision,
        stored: None,
        verify_after,
    };
    let action = match next_retry.or(verify_after) {
        Some(at) => requeue_at(Some(at), observation.now),
        None => Action::requeue(std::time::Duration::from_secs(1)),
    };
    (outcome, action)
}

/// Waiting credentials by the uid of their resource.
#[derive(Default)]
pub struct PendingStore {
    entries: Mutex<HashMap<String, Pending>>,
}

impl fmt::Debug for PendingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingStore")
            .field("len", &self.len())
            .finish()
    }
}

impl PendingStore {
    /// The credential waiting for `uid`, unless it has expired (then it is dropped).
    pub fn get(&self, uid: &str, now: DateTime<Utc>) -> Option<Pending> {
        let mut entries = self.lock();
        let pending = entries.get(uid)?;
        if pending.expires_at.is_some_and(|at| at <= now) {
            tracing::warn!(
                uid,
                "dropping a generated credential that expired before it could be stored"
            );
            entries.remove(uid);
            return None;
        }
        Some(pending.clone())
    }

    /// Keeps a credential until it is stored. Always: it was generated, so the one before it is
    /// revoked. The bound is kept before a generate ([`PendingStore::has_room`]); reconciles that
    /// passed that check together may take the store a little past it.
    pub fn keep(&self, uid: &str, pending: Pending) {
        self.lock().insert(uid.to_owned(), pending);
    }

    /// Whether another credential can be kept if its write fails (checked before a generate).
    pub fn has_room(&self) -> bool {
        self.lock().len() < MAX_PENDING
    }

    pub fn remove(&self, uid: &str) {
        self.lock().remove(uid);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::Expiry;
    use crate::secret::{IssuedValues, KeyNames};

    fn pending(expires_at: Option<DateTime<Utc>>) -> Pending {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let keys = KeyNames::from_spec(None);
        Pending {
            data: secret::credential_data(
                &keys,
                &IssuedValues::AccessToken {
                    token: "pending-token-value",
                    expires_at: None,
                    scim_url: "https://b/scim",
                },
            ),
            meta: RecordMeta {
                issued_at: at,
                expires_at: None,
                revision: 2,
                spec_hash: "v2:0".into(),
                rotate_request: None,
                credential_type: CredentialType::AccessToken,
                keys,
                issue_id: "0".into(),
            },
            record: Record {
                issued_at: at,
                expiry: Expiry::NotReported,
                revision: 2,
                spec_hash: None,
                data_intact: true,
                layout_current: true,
                fingerprint_current: true,
            },
            based_on: Some(1),
            trigger: IssueReason::RenewalDue,
            fingerprint: "sha256:0".into(),
            rotate_request: None,
            expires_at,
            attempts: 0,
            next_attempt: at,
        }
    }

    #[test]
    fn a_pending_credential_is_kept_until_it_expires_and_never_printed() {
        let store = PendingStore::default();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        store.keep("u", pending(Some(now + chrono::TimeDelta::seconds(10))));
        assert!(store.get("u", now).is_some());
        let printed = format!("{:?} {store:?}", store.get("u", now).unwrap());
        assert!(!printed.contains("pending-token-value"), "{printed}");
        assert!(
            store
                .get("u", now + chrono::TimeDelta::seconds(10))
                .is_none()
        );
        assert!(store.is_empty(), "dropped at expiry");
    }
}
