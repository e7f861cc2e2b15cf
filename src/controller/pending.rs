//! Credentials generated but not yet stored. Every generate revokes the live credential, so a new
//! one whose Secret write failed is kept here and the write is retried, never the generate. The
//! store is bounded, entries are dropped when their credential expires, and `Debug` shows no
//! credential.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;

use crate::planner::{IssueReason, Record};

/// Most credentials kept waiting at once; beyond it no new generate starts.
pub const MAX_PENDING: usize = 10_000;

/// A generated credential waiting to be written.
#[derive(Clone)]
pub struct Pending {
    /// The Secret to write, data included.
    pub secret: Secret,
    /// The record it carries.
    pub record: Record,
    /// The revision the Secret held when this credential was generated (`None`: no Secret).
    pub based_on: Option<i64>,
    pub trigger: IssueReason,
    /// `sha256:` prefix of the credential, for the history.
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
            .field("secret", &self.secret.metadata.name)
            .field("record", &self.record)
            .field("based_on", &self.based_on)
            .field("trigger", &self.trigger)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
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
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::planner::Expiry;

    fn pending(expires_at: Option<DateTime<Utc>>) -> Pending {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Pending {
            secret: Secret {
                metadata: ObjectMeta {
                    name: Some("app".into()),
                    ..ObjectMeta::default()
                },
                data: Some(BTreeMap::from([(
                    "access_token".to_owned(),
                    ByteString(b"pending-token-value".to_vec()),
                )])),
                ..Secret::default()
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
