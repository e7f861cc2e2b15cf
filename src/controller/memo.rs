//! What this process last wrote for each credential, so that a reconcile triggered by its own
//! writes costs no API call: the Secret version it wrote (its metadata in the watch cache then
//! answers for it, no GET), and a hash of the status it wrote (a cached status that differs right
//! after is the cache lagging behind, not news).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::api::{MAX_HISTORY, RotationRecord};

/// How long after a status write a differing cached status is taken for cache lag.
pub const CACHE_LAG: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Entry {
    secret_version: Option<String>,
    secret_written: Option<Instant>,
    status: Option<(u64, Instant)>,
    /// History entries whose status write failed, kept for the next write.
    unwritten_history: Vec<RotationRecord>,
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

    /// This process wrote (or found already written) `status`.
    pub fn status_written(&self, uid: &str, status: &impl Serialize) {
        let hash = hash_of(status);
        self.with(uid, |entry| entry.status = Some((hash, Instant::now())));
    }

    /// Whether `cached` differs from the status this process wrote a moment ago: the cache has
    /// not caught up with that write yet, and its watch event will bring a new reconcile.
    pub fn cache_lags(&self, uid: &str, cached: &impl Serialize) -> bool {
        self.read(uid, |entry| entry.status)
            .is_some_and(|(hash, at)| at.elapsed() < CACHE_LAG && hash != hash_of(cached))
    }

    /// History entries computed but not written (the status write failed or was stale).
    pub fn keep_unwritten_history(&self, uid: &str, entries: Vec<RotationRecord>) {
        if entries.is_empty() {
            return;
        }
        self.with(uid, |entry| {
            for record in entries {
                if !entry.unwritten_history.contains(&record) {
                    entry.unwritten_history.push(record);
                }
            }
            entry
                .unwritten_history
                .sort_by_key(|r| std::cmp::Reverse(r.time));
            entry.unwritten_history.truncate(MAX_HISTORY);
        });
    }

    /// The history entries still to be written.
    pub fn unwritten_history(&self, uid: &str) -> Vec<RotationRecord> {
        self.read(uid, |entry| Some(entry.unwritten_history.clone()))
            .unwrap_or_default()
    }

    /// The status carrying them was written.
    pub fn history_written(&self, uid: &str) {
        self.with(uid, |entry| entry.unwritten_history.clear());
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
}
