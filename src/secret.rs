//! The Secret is the record: one write stores the credential with its issue time, expiry,
//! revision, spec hash and a keyed fingerprint of the data, so a restarted operator knows the
//! schedule without calling the broker. This module renders that Secret and reads it back into
//! the planner's [`SecretState`]; it does no I/O.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::{CredentialType, SecretKeys, SyncClientCredential};
use crate::planner::{Expiry, Record, SecretState};

/// Label on every Secret the operator writes; its watch is filtered by it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "sync-client-operator";
/// Label naming the credential resource that owns the Secret.
pub const CREDENTIAL_LABEL: &str = "syncclient.io/credential";
pub const ISSUED_AT_ANNOTATION: &str = "syncclient.io/issued-at";
pub const EXPIRES_AT_ANNOTATION: &str = "syncclient.io/expires-at";
pub const REVISION_ANNOTATION: &str = "syncclient.io/revision";
pub const SPEC_HASH_ANNOTATION: &str = "syncclient.io/spec-hash";
pub const FINGERPRINT_ANNOTATION: &str = "syncclient.io/fingerprint";
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

/// The data keys in use for a spec (defaults overridden by `spec.keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    pub access_token: String,
    pub expires_at: String,
    pub scim_url: String,
    pub client_id: String,
    pub client_secret: String,
}

impl KeyNames {
    pub fn from_spec(keys: Option<&SecretKeys>) -> Self {
        let pick = |value: Option<&String>, default: &str| {
            value.cloned().unwrap_or_else(|| default.to_owned())
        };
        let keys = keys.cloned().unwrap_or_default();
        Self {
            access_token: pick(keys.access_token.as_ref(), "access_token"),
            expires_at: pick(keys.expires_at.as_ref(), "expires_at"),
            scim_url: pick(keys.scim_url.as_ref(), "scim_url"),
            client_id: pick(keys.client_id.as_ref(), "client_id"),
            client_secret: pick(keys.client_secret.as_ref(), "client_secret"),
        }
    }
}

/// A freshly issued credential, as plain values.
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

/// Builds the data map for an issued credential.
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
    pub spec_hash: String,
    /// The `syncclient.io/rotate-request` value this credential served, so a request is never
    /// served twice even when the status recording it could not be written.
    pub rotate_request: Option<String>,
}

/// Keyed fingerprint of the data: detects edits without storing anything derived from the
/// credential that could be checked offline against guesses.
#[derive(Clone)]
pub struct FingerprintKey(Vec<u8>);

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

impl FingerprintKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// HMAC-SHA256 over the owner's uid, the data and the record annotations (so that editing
    /// `expires-at` cannot postpone a rotation unnoticed), keyed by the operator key.
    pub fn fingerprint(
        &self,
        owner_uid: &str,
        data: &CredentialData,
        record: &RecordText,
    ) -> String {
        #[allow(clippy::expect_used)] // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_be_bytes());
            mac.update(bytes);
        };
        field(owner_uid.as_bytes());
        for (key, value) in &data.0 {
            field(key.as_bytes());
            field(value.as_bytes());
        }
        for value in [
            &record.issued_at,
            &record.expires_at,
            &record.revision,
            &record.spec_hash,
            &record.rotate_request,
        ] {
            field(value.as_bytes());
        }
        format!("v2:{}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// The record annotations as written (what the fingerprint covers besides the data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordText {
    pub issued_at: String,
    pub expires_at: String,
    pub revision: String,
    pub spec_hash: String,
    pub rotate_request: String,
}

impl RecordText {
    fn of(record: &RecordMeta) -> Self {
        Self {
            issued_at: rfc3339(record.issued_at),
            expires_at: record
                .expires_at
                .map_or_else(|| EXPIRY_NOT_REPORTED.to_owned(), rfc3339),
            revision: record.revision.to_string(),
            spec_hash: record.spec_hash.clone(),
            rotate_request: record.rotate_request.clone().unwrap_or_default(),
        }
    }

    fn read(annotations: &BTreeMap<String, String>) -> Self {
        let get = |key: &str| annotations.get(key).cloned().unwrap_or_default();
        Self {
            issued_at: get(ISSUED_AT_ANNOTATION),
            expires_at: get(EXPIRES_AT_ANNOTATION),
            revision: get(REVISION_ANNOTATION),
            spec_hash: get(SPEC_HASH_ANNOTATION),
            rotate_request: get(SERVED_ROTATE_REQUEST_ANNOTATION),
        }
    }
}

/// The Secret to write for an issued credential: data, record annotations, template metadata
/// and the controller owner reference, all in one object.
pub fn render(
    owner: &SyncClientCredential,
    secret_name: &str,
    data: &CredentialData,
    record: &RecordMeta,
    key: &FingerprintKey,
) -> Secret {
    let uid = owner.uid().unwrap_or_default();
    let (labels, mut annotations) = template_metadata(owner);
    let text = RecordText::of(record);
    annotations.insert(
        FINGERPRINT_ANNOTATION.into(),
        key.fingerprint(&uid, data, &text),
    );
    annotations.insert(ISSUED_AT_ANNOTATION.into(), text.issued_at);
    annotations.insert(EXPIRES_AT_ANNOTATION.into(), text.expires_at);
    annotations.insert(REVISION_ANNOTATION.into(), text.revision);
    annotations.insert(SPEC_HASH_ANNOTATION.into(), text.spec_hash);
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
    Fingerprint(&'a FingerprintKey),
    /// This process wrote exactly this version of the Secret: its data is what was rendered.
    WrittenByUs,
}

/// Reads a Secret (or its absence) into the planner's view.
pub fn observe(
    secret: Option<&Secret>,
    owner_uid: &str,
    credential_type: CredentialType,
    key: &FingerprintKey,
) -> SecretState {
    observe_with(
        secret,
        owner_uid,
        credential_type,
        DataCheck::Fingerprint(key),
    )
}

/// Reads a Secret (or only its metadata, with [`DataCheck::WrittenByUs`]) into the planner's
/// view.
pub fn observe_with(
    secret: Option<&Secret>,
    owner_uid: &str,
    credential_type: CredentialType,
    check: DataCheck<'_>,
) -> SecretState {
    let Some(secret) = secret else {
        return SecretState::Missing;
    };
    if !is_controlled_by(secret, owner_uid) {
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
        None if credential_type == CredentialType::ClientSecret => Expiry::NotReported,
        None => Expiry::Missing,
    };
    let data_intact = match check {
        DataCheck::WrittenByUs => true,
        DataCheck::Fingerprint(key) => {
            let data = data_of(secret);
            let record_text = RecordText::read(annotations);
            annotations
                .get(FINGERPRINT_ANNOTATION)
                .is_some_and(|recorded| {
                    *recorded == key.fingerprint(owner_uid, &data, &record_text)
                })
        }
    };
    SecretState::Owned(Record {
        issued_at,
        expiry,
        revision,
        spec_hash: annotations.get(SPEC_HASH_ANNOTATION).cloned(),
        data_intact,
    })
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
