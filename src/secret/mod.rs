//! The Secret is the record: one write stores the credential with its issue time, expiry,
//! revision, the identity it was issued for, the data keys it is stored under, an issue id and a
//! keyed fingerprint of it all, so a restarted operator knows the schedule without calling the
//! broker. This module renders that Secret and reads it back into the planner's
//! [`SecretState`](crate::planner::SecretState); it does no I/O.
//!
//! This module owns the record's vocabulary (labels, annotations) and the credential's data;
//! `render` owns the Secret written, `read` owns reading one back, `layout` the data keys and
//! `fingerprint` the keyed fingerprint.

mod fingerprint;
mod layout;
mod read;
mod render;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

pub use fingerprint::{FingerprintCheck, FingerprintKey, FingerprintKeys, RecordText};
pub use layout::{HeldValues, KeyNames};
pub use read::{
    DataCheck, Expected, data_of, held_record, is_controlled_by, observe, observe_with,
    read_record_text,
};
pub use render::{metadata_drift, render, template_metadata};

use crate::api::CredentialType;

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

#[cfg(test)]
mod tests;
