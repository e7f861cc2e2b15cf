//! Reading a Secret back: whether this resource controls it, its record and whether its data is
//! intact, as the planner's [`SecretState`]; and the credential it holds, to be written again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::{
    CredentialData, DATA_KEYS_ANNOTATION, EXPIRES_AT_ANNOTATION, EXPIRY_NOT_REPORTED,
    FINGERPRINT_ANNOTATION, FingerprintCheck, FingerprintKeys, HeldValues, ISSUE_ID_ANNOTATION,
    ISSUED_AT_ANNOTATION, KeyNames, REVISION_ANNOTATION, RecordMeta, RecordText,
    SERVED_ROTATE_REQUEST_ANNOTATION, SPEC_HASH_ANNOTATION, new_issue_id,
};
use crate::api::{CredentialType, SyncClientCredential};
use crate::planner::{Expiry, Record, SecretState};

/// Whether `secret` names `owner_uid` as its controller.
pub fn is_controlled_by(secret: &Secret, owner_uid: &str) -> bool {
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == owner_uid)
}

/// How far a Secret's data can be trusted.
#[derive(Debug, Clone, Copy)]
pub enum DataCheck<'a> {
    /// Check the data against the keyed fingerprint.
    Fingerprint(&'a FingerprintKeys),
    /// This process wrote exactly this version of the Secret: its data is what was rendered.
    WrittenByUs,
}

/// What the spec expects of its Secret now: the owner, the identity and the data keys.
#[derive(Debug, Clone)]
pub struct Expected {
    pub owner_uid: String,
    pub credential_type: CredentialType,
    /// The identity hash of the spec now.
    pub spec_hash: String,
    /// The identity hash 0.1.0 computed for this spec (it also covered the TTL, data keys and
    /// Secret name): a 0.1.0 record carrying it was issued for exactly this spec.
    pub legacy_spec_hash: String,
    pub keys: KeyNames,
}

impl Expected {
    pub fn of(owner: &SyncClientCredential) -> Self {
        Self {
            owner_uid: owner.uid().unwrap_or_default(),
            credential_type: owner.spec.credential_type,
            spec_hash: crate::api::spec_hash(owner),
            legacy_spec_hash: crate::api::legacy_spec_hash(owner),
            keys: KeyNames::from_spec(owner.spec.keys.as_ref()),
        }
    }
}

/// Reads a Secret (or its absence) into the planner's view, checking its fingerprint.
pub fn observe(
    secret: Option<&Secret>,
    expected: &Expected,
    keys: &FingerprintKeys,
) -> SecretState {
    observe_with(secret, expected, DataCheck::Fingerprint(keys))
}

/// Reads a Secret (or only its metadata, with [`DataCheck::WrittenByUs`]) into the planner's
/// view.
pub fn observe_with(
    secret: Option<&Secret>,
    expected: &Expected,
    check: DataCheck<'_>,
) -> SecretState {
    let Some(secret) = secret else {
        return SecretState::Missing;
    };
    if !is_controlled_by(secret, &expected.owner_uid) {
        return SecretState::NotOwned;
    }
    let annotations = secret.annotations();
    let issued_at = annotations
        .get(ISSUED_AT_ANNOTATION)
        .and_then(|v| parse_time(v));
    let revision = annotations
        .get(REVISION_ANNOTATION)
        .and_then(|v| v.parse::<i64>().ok());
    let (Some(issued_at), Some(revision)) = (issued_at, revision) else {
        return SecretState::Unreadable;
    };
    let expiry = match annotations.get(EXPIRES_AT_ANNOTATION).map(String::as_str) {
        Some(EXPIRY_NOT_REPORTED) => Expiry::NotReported,
        Some(value) => parse_time(value).map_or(Expiry::Missing, Expiry::At),
        None if expected.credential_type == CredentialType::ClientSecret => Expiry::NotReported,
        None => Expiry::Missing,
    };
    let text = read_record_text(annotations);
    let recorded_hash = annotations.get(SPEC_HASH_ANNOTATION).cloned();
    // A 0.1.0 record issued for exactly this spec: same identity, same data keys.
    let legacy_match = text.data_keys.is_empty()
        && recorded_hash.as_deref() == Some(expected.legacy_spec_hash.as_str());
    let fingerprint = match check {
        DataCheck::WrittenByUs => FingerprintCheck::Current,
        DataCheck::Fingerprint(keys) => {
            let data = data_of(secret);
            let layout = if legacy_match {
                Some(expected.keys.clone())
            } else {
                KeyNames::parse_layout(&text.data_keys, expected.credential_type)
            };
            // Values that cannot be read under the recorded keys are as good as edited.
            let readable = layout.is_none_or(|layout| {
                HeldValues::read(&data, &layout, expected.credential_type).is_some()
            });
            let found = keys.check(
                annotations.get(FINGERPRINT_ANNOTATION).map(String::as_str),
                &expected.owner_uid,
                &data,
                &text,
            );
            if readable {
                found
            } else {
                FingerprintCheck::Mismatch
            }
        }
    };
    let spec_hash = if legacy_match {
        Some(expected.spec_hash.clone())
    } else {
        recorded_hash
    };
    let layout_current = legacy_match
        || KeyNames::parse_layout(&text.data_keys, expected.credential_type)
            .is_some_and(|held| held.same_layout(&expected.keys, expected.credential_type));
    SecretState::Owned(Record {
        issued_at,
        expiry,
        revision,
        spec_hash,
        data_intact: fingerprint != FingerprintCheck::Mismatch,
        layout_current,
        fingerprint_current: fingerprint == FingerprintCheck::Current && !legacy_match,
    })
}

/// The record annotations of a Secret as written.
pub fn read_record_text(annotations: &BTreeMap<String, String>) -> RecordText {
    let get = |key: &str| annotations.get(key).cloned().unwrap_or_default();
    RecordText {
        issued_at: get(ISSUED_AT_ANNOTATION),
        expires_at: get(EXPIRES_AT_ANNOTATION),
        revision: get(REVISION_ANNOTATION),
        spec_hash: get(SPEC_HASH_ANNOTATION),
        rotate_request: get(SERVED_ROTATE_REQUEST_ANNOTATION),
        data_keys: get(DATA_KEYS_ANNOTATION),
        issue_id: get(ISSUE_ID_ANNOTATION),
    }
}

/// The credential an intact owned Secret holds, and the record to write it again under the
/// keys the spec names now (for a rename of the Secret or of its keys, or a new fingerprint).
/// `None` when the Secret does not hold a complete credential under its recorded keys.
pub fn held_record(
    secret: &Secret,
    expected: &Expected,
    record: &Record,
) -> Option<(RecordMeta, HeldValues)> {
    let annotations = secret.annotations();
    let text = read_record_text(annotations);
    let layout = if text.data_keys.is_empty() {
        // A 0.1.0 record, accepted only when issued for exactly this spec (its keys included).
        expected.keys.clone()
    } else {
        KeyNames::parse_layout(&text.data_keys, expected.credential_type)?
    };
    let values = HeldValues::read(&data_of(secret), &layout, expected.credential_type)?;
    let meta = RecordMeta {
        issued_at: record.issued_at,
        expires_at: match record.expiry {
            Expiry::At(at) => Some(at),
            _ => None,
        },
        revision: record.revision,
        spec_hash: expected.spec_hash.clone(),
        rotate_request: Some(text.rotate_request).filter(|r| !r.is_empty()),
        credential_type: expected.credential_type,
        keys: expected.keys.clone(),
        issue_id: if text.issue_id.is_empty() {
            new_issue_id()
        } else {
            text.issue_id
        },
    };
    Some((meta, values))
}

/// The Secret's data as text (`stringData` is folded in by the API server, so `data` is enough).
pub fn data_of(secret: &Secret) -> CredentialData {
    CredentialData(
        secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect(),
    )
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
