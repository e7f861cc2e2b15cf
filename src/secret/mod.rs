//! The Secret is the record: one write stores the credential with its issue time, expiry,
//! revision, the identity it was issued for, the data keys it is stored under, an issue id and a
//! keyed fingerprint of it all, so a restarted operator knows the schedule without calling the
//! broker. This module renders that Secret and reads it back into the planner's
//! [`SecretState`]; it does no I/O.

mod fingerprint;
mod layout;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

pub use fingerprint::{FingerprintCheck, FingerprintKey, FingerprintKeys, RecordText};
pub use layout::{HeldValues, KeyNames};

use crate::api::{CredentialType, SyncClientCredential};
use crate::planner::{Expiry, Record, SecretState};

/// Label on every Secret the operator writes; its watch is filtered by it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "sync-client-operator";
/// Label naming the credential resource that owns the Secret.
pub const CREDENTIAL_LABEL: &str = "syncclient.io/credential";
pub const ISSUED_AT_ANNOTATION: &str = "syncclient.io/issued-at";
pub const EXPIRES_AT_ANNOTATION: &str = "syncclient.io/expires-at";
pub const REVISION_ANNOTATION: &str = "syncclient.io/revision";
/// The identity the credential was issued for (broker, directory, credential type), hashed.
pub const SPEC_HASH_ANNOTATION: &str = "syncclient.io/spec-hash";
pub const FINGERPRINT_ANNOTATION: &str = "syncclient.io/fingerprint";
/// Which data key holds which value, so renamed keys are rewritten without a new credential.
pub const DATA_KEYS_ANNOTATION: &str = "syncclient.io/data-keys";
/// A random id per issue: two writers of one revision are told apart by it.
pub const ISSUE_ID_ANNOTATION: &str = "syncclient.io/issue-id";
/// The rotate request the credential in the Secret served.
pub const SERVED_ROTATE_REQUEST_ANNOTATION: &str = "syncclient.io/served-rotate-request";
/// Value of the expiry annotation when the broker reported none.
pub const EXPIRY_NOT_REPORTED: &str = "not-reported";

/// The label selector of the owned-Secret watch.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
}

/// Secret data in plain text, keyed by data key. `Debug` shows the keys only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CredentialData(BTreeMap<String, String>);

impl fmt::Debug for CredentialData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl CredentialData {
    /// The value of a key, e.g. to check which token a Secret holds.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// A credential as plain values.
pub enum IssuedValues<'a> {
    AccessToken {
        token: &'a str,
        expires_at: Option<DateTime<Utc>>,
        scim_url: &'a str,
    },
    ClientSecret {
        client_id: &'a str,
        client_secret: &'a str,
    },
}

/// Builds the data map for a credential.
pub fn credential_data(keys: &KeyNames, values: &IssuedValues<'_>) -> CredentialData {
    let mut data = BTreeMap::new();
    match values {
        IssuedValues::AccessToken {
            token,
            expires_at,
            scim_url,
        } => {
            data.insert(keys.access_token.clone(), (*token).to_owned());
            if let Some(at) = expires_at {
                data.insert(keys.expires_at.clone(), rfc3339(*at));
            }
            data.insert(keys.scim_url.clone(), (*scim_url).to_owned());
        }
        IssuedValues::ClientSecret {
            client_id,
            client_secret,
        } => {
            data.insert(keys.client_id.clone(), (*client_id).to_owned());
            data.insert(keys.client_secret.clone(), (*client_secret).to_owned());
        }
    }
    CredentialData(data)
}

/// The record stored with the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revision: i64,
    /// The identity hash (`crate::api::spec_hash`).
    pub spec_hash: String,
    /// The `syncclient.io/rotate-request` value this credential served, so a request is never
    /// served twice even when the status recording it could not be written.
    pub rotate_request: Option<String>,
    pub credential_type: CredentialType,
    /// The data keys the values are stored under.
    pub keys: KeyNames,
    /// Random per issue; kept when the Secret is only rewritten.
    pub issue_id: String,
}

impl RecordMeta {
    fn text(&self) -> RecordText {
        RecordText {
            issued_at: rfc3339(self.issued_at),
            expires_at: self
                .expires_at
                .map_or_else(|| EXPIRY_NOT_REPORTED.to_owned(), rfc3339),
            revision: self.revision.to_string(),
            spec_hash: self.spec_hash.clone(),
            rotate_request: self.rotate_request.clone().unwrap_or_default(),
            data_keys: self.keys.layout_text(self.credential_type),
            issue_id: self.issue_id.clone(),
        }
    }
}

/// A random id for one issue (16 hex digits).
pub fn new_issue_id() -> String {
    let mut bytes = [0_u8; 8];
    // The ids only tell two issues apart; any failure of the system RNG falls back to the time.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_be_bytes()[8..]);
    }
    hex::encode(bytes)
}

/// The Secret to write for a credential: data, record annotations, template metadata and the
/// controller owner reference, all in one object.
pub fn render(
    owner: &SyncClientCredential,
    secret_name: &str,
    data: &CredentialData,
    record: &RecordMeta,
    keys: &FingerprintKeys,
) -> Secret {
    let uid = owner.uid().unwrap_or_default();
    let (labels, mut annotations) = template_metadata(owner);
    let text = record.text();
    annotations.insert(FINGERPRINT_ANNOTATION.into(), keys.sign(&uid, data, &text));
    annotations.insert(ISSUED_AT_ANNOTATION.into(), text.issued_at);
    annotations.insert(EXPIRES_AT_ANNOTATION.into(), text.expires_at);
    annotations.insert(REVISION_ANNOTATION.into(), text.revision);
    annotations.insert(SPEC_HASH_ANNOTATION.into(), text.spec_hash);
    annotations.insert(DATA_KEYS_ANNOTATION.into(), text.data_keys);
    annotations.insert(ISSUE_ID_ANNOTATION.into(), text.issue_id);
    if !text.rotate_request.is_empty() {
        annotations.insert(SERVED_ROTATE_REQUEST_ANNOTATION.into(), text.rotate_request);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_owned()),
            namespace: owner.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: owner.controller_owner_ref(&()).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        type_: Some(
            owner
                .spec
                .secret_template
                .as_ref()
                .and_then(|t| t.type_.clone())
                .unwrap_or_else(|| "Opaque".to_owned()),
        ),
        data: Some(
            data.0
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Labels and annotations the template asks for, plus the operator's own labels (which a
/// template cannot override: the owned-Secret watch depends on them).
pub fn template_metadata(
    owner: &SyncClientCredential,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let template = owner.spec.secret_template.clone().unwrap_or_default();
    let mut labels = template.labels;
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    labels.insert(CREDENTIAL_LABEL.into(), owner.name_any());
    // The record annotations are the operator's: a template never writes them (the spec check
    // refuses such a template; this keeps a metadata patch from touching the record anyway).
    let mut annotations = template.annotations;
    annotations.retain(|key, _| !key.starts_with(crate::api::shape::RESERVED_ANNOTATION_PREFIX));
    (labels, annotations)
}

/// Template labels or annotations missing from (or different in) an owned Secret: a metadata
/// patch brings them in without a new credential. Returns `None` when nothing is missing.
pub fn metadata_drift(owner: &SyncClientCredential, secret: &Secret) -> Option<serde_json::Value> {
    let (labels, annotations) = template_metadata(owner);
    let missing = |want: &BTreeMap<String, String>, have: Option<&BTreeMap<String, String>>| {
        want.iter()
            .filter(|(k, v)| have.and_then(|h| h.get(*k)) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let labels = missing(&labels, secret.metadata.labels.as_ref());
    let annotations = missing(&annotations, secret.metadata.annotations.as_ref());
    if labels.is_empty() && annotations.is_empty() {
        return None;
    }
    Some(serde_json::json!({"metadata": {"labels": labels, "annotations": annotations}}))
}

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

/// A stable seed per resource for the planner's jitter.
pub fn jitter_seed(owner_uid: &str) -> u64 {
    let digest = Sha256::digest(owner_uid.as_bytes());
    let mut bytes = [0_u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
