//! The history of issue attempts in status: held in full, or (in the operator's watch cache) as
//! a digest and the attempts decisions read.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{digest_of, serialize_marker};
use crate::api::RotationRecord;

/// The last issue attempts, newest first.
///
/// The operator's watch cache holds only the attempts its decisions read and a digest of the
/// whole ([`History::elide`]); `Deref` then yields the attempts kept. Equality compares content.
#[derive(Clone, Default)]
pub struct History(HistoryRepr);

#[derive(Clone)]
enum HistoryRepr {
    Full(Vec<RotationRecord>),
    Elided {
        /// The digest of the whole history; `None` once an attempt was recorded on the elided
        /// history (the whole is then unknown until computed again from the full one).
        digest: Option<u64>,
        kept: Vec<RotationRecord>,
    },
}

impl Default for HistoryRepr {
    fn default() -> Self {
        Self::Full(Vec::new())
    }
}

impl History {
    /// Adds an attempt, newest first, keeping at most `max`.
    pub fn record(&mut self, attempt: RotationRecord, max: usize) {
        match &mut self.0 {
            HistoryRepr::Full(entries) => {
                entries.insert(0, attempt);
                entries.truncate(max);
            }
            HistoryRepr::Elided { digest, kept } => {
                *digest = None;
                kept.insert(0, attempt);
                kept.truncate(max);
            }
        }
    }

    /// Holds the history as its digest and the attempts `keep` selects.
    pub fn elide(&mut self, keep: impl Fn(&RotationRecord) -> bool) {
        if let HistoryRepr::Full(entries) = &mut self.0 {
            let digest = serde_json::to_value(&*entries).ok().map(|v| digest_of(&v));
            let kept: Vec<RotationRecord> = entries.drain(..).filter(|a| keep(a)).collect();
            self.0 = HistoryRepr::Elided { digest, kept };
        }
    }

    pub fn is_elided(&self) -> bool {
        matches!(self.0, HistoryRepr::Elided { .. })
    }

    fn digest(&self) -> Option<u64> {
        match &self.0 {
            HistoryRepr::Full(entries) => serde_json::to_value(entries).ok().map(|v| digest_of(&v)),
            HistoryRepr::Elided { digest, .. } => *digest,
        }
    }
}

impl Deref for History {
    type Target = [RotationRecord];
    fn deref(&self) -> &[RotationRecord] {
        match &self.0 {
            HistoryRepr::Full(entries) | HistoryRepr::Elided { kept: entries, .. } => entries,
        }
    }
}

impl From<Vec<RotationRecord>> for History {
    fn from(entries: Vec<RotationRecord>) -> Self {
        Self(HistoryRepr::Full(entries))
    }
}

impl PartialEq for History {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (HistoryRepr::Full(a), HistoryRepr::Full(b)) => a == b,
            _ => self.digest().is_some_and(|a| other.digest() == Some(a)),
        }
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            HistoryRepr::Full(entries) => fmt::Debug::fmt(entries, f),
            HistoryRepr::Elided { digest, kept } => f
                .debug_struct("Elided")
                .field("digest", digest)
                .field("kept", kept)
                .finish(),
        }
    }
}

impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            HistoryRepr::Full(entries) => entries.serialize(serializer),
            HistoryRepr::Elided { digest, .. } => serialize_marker(*digest, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<RotationRecord>::deserialize(deserializer).map(Self::from)
    }
}

super::schema_as!(History, Vec<RotationRecord>);
