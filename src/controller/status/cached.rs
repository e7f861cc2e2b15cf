//! What the watch cache keeps of a credential's status, and how a status computed from it is
//! written without losing what it does not keep.
//!
//! The cache holds one object per credential, so it keeps what decisions read and holds the
//! rest, which only people read, as digests ([`elide`]): long texts (condition messages, the
//! last failure message, a check's result; each delivery's validation and quarantine reason)
//! and the history, of which it keeps only the attempts whose outcome is
//! unknown (a later probe asks whether one may explain a refusal).
//!
//! The rule, for every part of a status held this way (a new part is elided here and needs
//! nothing else):
//! - a status computed from the cache is compared with it by content (a text equals its digest),
//!   so an unchanged status is not written;
//! - its patch ([`patch`]) leaves out the fields it left as the cache holds them with a digest,
//!   under the cached version as a precondition, so the server keeps them in full;
//! - a patch that would carry a digest is not sent ([`holds_digest`]): the status is computed
//!   again from a fresh read, whose parts a status computed from the cache gets back by digest
//!   ([`restore`]). Every issue is decided on a fresh read anyway, so the history, which only an
//!   issue adds to, is always recorded on the full one.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{Condition, ELIDED, SyncClientCredentialStatus, digest_of};
use crate::controller::failure::FailureReason;

/// Holds the parts of a credential's status that decisions do not read as digests.
pub fn elide(status: &mut SyncClientCredentialStatus) {
    elide_conditions(&mut status.conditions);
    for text in [
        &mut status.last_failure_message,
        &mut status.last_verify_result,
    ]
    .into_iter()
    .flatten()
    {
        text.elide();
    }
    status
        .history
        .elide(|attempt| attempt.outcome == FailureReason::RotationStateUnknown.as_str());
    // A delivery's last failure message stays: the `Delivered` condition is built on it at every
    // look while the delivery fails (eliding it would cost a fresh read each time), and only a
    // failing delivery has one.
    for delivery in &mut status.deliveries {
        for text in [&mut delivery.validation, &mut delivery.quarantine_reason]
            .into_iter()
            .flatten()
        {
            text.elide();
        }
    }
}

/// Holds the conditions' long messages as digests.
pub fn elide_conditions(conditions: &mut [Condition]) {
    for condition in conditions {
        condition.message.elide();
    }
}

/// The cache's view of `status`.
pub fn view(status: &SyncClientCredentialStatus) -> SyncClientCredentialStatus {
    let mut view = status.clone();
    elide(&mut view);
    view
}

/// What an elided part in JSON stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elided {
    /// Whatever has this digest.
    Digest(u64),
    /// Content built on an elided part: equal to nothing.
    Unknown,
}

/// The elided part `value` is, if it is one.
fn elided(value: &Value) -> Option<Elided> {
    let object = value.as_object().filter(|o| o.len() == 1)?;
    let digest = object.get(ELIDED)?;
    Some(digest.as_u64().map_or(Elided::Unknown, Elided::Digest))
}

/// Whether two JSON values have the same content, an elided part standing for whatever has
/// its digest.
pub fn same(a: &Value, b: &Value) -> bool {
    match (elided(a), elided(b)) {
        (Some(Elided::Digest(x)), Some(Elided::Digest(y))) => x == y,
        (Some(Elided::Unknown), _) | (_, Some(Elided::Unknown)) => false,
        (Some(Elided::Digest(x)), None) => x == digest_of(b),
        (None, Some(Elided::Digest(y))) => y == digest_of(a),
        (None, None) => match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(key, v)| y.get(key).is_some_and(|w| same(v, w)))
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
            }
            _ => a == b,
        },
    }
}

/// The `status` of a merge patch from `current` to `new`: all of `new` but the fields it left
/// as `current` holds them with a part elided (the server holds them in full).
pub fn patch<S: Serialize>(current: Option<&S>, new: &S) -> Result<Value, serde_json::Error> {
    let mut new = serde_json::to_value(new)?;
    let base = current.map(serde_json::to_value).transpose()?;
    if let (Value::Object(fields), Some(Value::Object(base))) = (&mut new, base) {
        fields.retain(|key, value| {
            !(holds_digest(value) && base.get(key).is_some_and(|old| same(old, value)))
        });
    }
    Ok(new)
}

/// Whether `value` holds an elided part anywhere.
pub fn holds_digest(value: &Value) -> bool {
    if elided(value).is_some() {
        return true;
    }
    match value {
        Value::Object(map) => map.values().any(holds_digest),
        Value::Array(items) => items.iter().any(holds_digest),
        _ => false,
    }
}

/// `partial` with each elided part replaced by the part of `full` that has its digest. A
/// top-level field with a part `full` no longer holds takes `full`'s value of that field (the
/// server's status changed there since the digest was taken).
pub fn restore<S: Serialize + DeserializeOwned>(partial: &S, full: &S) -> Option<S> {
    let (Ok(Value::Object(mut partial)), Ok(full)) =
        (serde_json::to_value(partial), serde_json::to_value(full))
    else {
        return None;
    };
    let mut known = std::collections::HashMap::new();
    collect_digests(&full, &mut known);
    for (key, value) in &mut partial {
        if !fill(value, &known) {
            *value = full.get(key).cloned().unwrap_or(Value::Null);
        }
    }
    serde_json::from_value(Value::Object(partial)).ok()
}

fn collect_digests<'a>(value: &'a Value, known: &mut std::collections::HashMap<u64, &'a Value>) {
    known.insert(digest_of(value), value);
    match value {
        Value::Object(map) => map.values().for_each(|v| collect_digests(v, known)),
        Value::Array(items) => items.iter().for_each(|v| collect_digests(v, known)),
        _ => {}
    }
}

/// Replaces the elided parts in `value` from `known`; `false` when one is not there.
fn fill(value: &mut Value, known: &std::collections::HashMap<u64, &Value>) -> bool {
    if let Some(part) = elided(value) {
        return match part {
            Elided::Digest(digest) => known.get(&digest).is_some_and(|found| {
                *value = (*found).clone();
                true
            }),
            Elided::Unknown => false,
        };
    }
    match value {
        Value::Object(map) => map.values_mut().all(|v| fill(v, known)),
        Value::Array(items) => items.iter_mut().all(|v| fill(v, known)),
        _ => true,
    }
}
