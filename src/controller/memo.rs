//! What this process last wrote for each credential, so that a reconcile triggered by its own
//! writes costs no API call: the Secret version it wrote (its metadata in the watch cache then
//! answers for it, no GET), and a hash of the status it wrote (a cached status that differs right
//! after is the cache lagging behind, not news).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::api::SyncClientCredentialStatus;

/// How long after a status write a differing cached status is taken for cache lag.
pub const CACHE_LAG: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Entry {
    secret_version: Option<String>,
    secret_written: Option<Instant>,
    status: Option<(u64, Instant)>,
    /// A status computed and not written (the write failed or was stale): failures, history
    /// and served requests in it are the start of the next decision. Boxed: an entry is held
    /// for every credential, and this is rarely there.
    unwritten_status: Option<Box<SyncClientCredentialStatus>>,
    /// The broker's state when the last failure happened.
    failure_broker_state: Option<String>,
}

/// Per credential uid.
#[derive(Debug, Default)]
pub struct Memo {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Memo {
    fn with<T>(&self, uid: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        f(entries.entry(uid.to_owned()).or_default())
    }

    fn read<T>(&self, uid: &str, f: impl FnOnce(&Entry) -> Option<T>) -> Option<T> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(uid).and_then(f)
    }

    /// This process wrote the credential's Secret, which the API server stored at `version`.
    pub fn secret_written(&self, uid: &str, version: Option<String>) {
        self.with(uid, |entry| {
            entry.secret_version = version;
            entry.secret_written = Some(Instant::now());
        });
    }

    /// Whether the watch cache has not caught up with the Secret this process wrote a moment ago
    /// (it shows `cached`, another version or none): the write's own watch event brings the next
    /// reconcile, so reading the Secret now would be a wasted call.
    pub fn secret_cache_lags(&self, uid: &str, cached: Option<&str>) -> bool {
        self.read(uid, |entry| {
            let written = entry.secret_version.as_deref()?;
            let at = entry.secret_written?;
            Some(at.elapsed() < CACHE_LAG && cached != Some(written))
        })
        .unwrap_or(false)
    }

    /// The Secret version this process wrote last, if any.
    pub fn secret_version(&self, uid: &str) -> Option<String> {
        self.read(uid, |entry| entry.secret_version.clone())
    }

    /// This process wrote (or found already written) `status`; nothing is left unwritten.
    pub fn status_written(&self, uid: &str, status: &impl Serialize) {
        let hash = hash_of(status);
        self.with(uid, |entry| {
            entry.status = Some((hash, Instant::now()));
            entry.unwritten_status = None;
        });
    }

    /// Whether `cached` differs from the status this process wrote a moment ago: the cache has
    /// not caught up with that write yet, and its watch event will bring a new reconcile.
    pub fn cache_lags(&self, uid: &str, cached: &impl Serialize) -> bool {
        self.read(uid, |entry| entry.status)
            .is_some_and(|(hash, at)| at.elapsed() < CACHE_LAG && hash != hash_of(cached))
    }

    /// A status computed but not written (the write failed or was stale).
    pub fn keep_unwritten_status(&self, uid: &str, status: SyncClientCredentialStatus) {
        self.with(uid, |entry| entry.unwritten_status = Some(Box::new(status)));
    }

    /// The status still to be written, if any.
    pub fn unwritten_status(&self, uid: &str) -> Option<SyncClientCredentialStatus> {
        self.read(uid, |entry| entry.unwritten_status.as_deref().cloned())
    }

    /// The broker's state at a failure (`None`: the last attempt did not fail).
    pub fn set_failure_broker_state(&self, uid: &str, state: Option<String>) {
        self.with(uid, |entry| entry.failure_broker_state = state);
    }

    pub fn failure_broker_state(&self, uid: &str) -> Option<String> {
        self.read(uid, |entry| entry.failure_broker_state.clone())
    }

    /// The credential is gone.
    pub fn forget(&self, uid: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(uid);
    }

    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn hash_of(value: &impl Serialize) -> u64 {
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(value)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_differing_status_right_after_a_write_is_cache_lag() {
        let memo = Memo::default();
        assert!(!memo.cache_lags("u", &"old"), "nothing written yet");
        memo.status_written("u", &"new");
        assert!(memo.cache_lags("u", &"old"));
        assert!(!memo.cache_lags("u", &"new"));
        memo.secret_written("u", Some("7".into()));
        assert_eq!(memo.secret_version("u").as_deref(), Some("7"));
        memo.forget("u");
        assert!(memo.is_empty());
    }

    #[test]
    fn an_entry_stays_small() {
        // One entry is held for every credential: a status (hundreds of bytes) inline in each
        // would cost megabytes at 10,000 credentials.
        let size = std::mem::size_of::<Entry>();
        assert!(size <= 128, "{size} bytes");
    }
}
