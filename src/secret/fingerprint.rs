//! The keyed fingerprint of a Secret's data and record: detects edits without storing anything
//! derived from the credential that could be checked offline against guesses.
//!
//! A fingerprint names the key that made it (`v3:<key id>:<hmac>`), so the key can be rotated
//! without a new credential: the operator keeps accepting the previous keys and re-fingerprints
//! every Secret it meets with the current one. 0.1.0 wrote `v2:<hmac>` without a key id and
//! without the newer record annotations; such a fingerprint is accepted once, from any key of
//! the ring, on a record that has none of the newer annotations, and is then replaced.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::CredentialData;

/// One fingerprint key and its id (a short hash of it: tells keys apart, reveals nothing).
#[derive(Clone)]
pub struct FingerprintKey {
    id: String,
    bytes: Vec<u8>,
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FingerprintKey({}, <redacted>)", self.id)
    }
}

impl FingerprintKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes = bytes.into();
        let mut digest = Sha256::new();
        digest.update(b"syncclient.io/fingerprint-key-id\0");
        digest.update(&bytes);
        let id = hex::encode(&digest.finalize()[..4]);
        Self { id, bytes }
    }

    /// Eight hex digits naming the key.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)] // HMAC accepts keys of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("any key length")
    }
}

/// The current key (which signs) and the previous ones (still accepted, so a key rotation
/// costs no new credential).
#[derive(Clone, Debug)]
pub struct FingerprintKeys {
    current: FingerprintKey,
    previous: Vec<FingerprintKey>,
}

impl From<FingerprintKey> for FingerprintKeys {
    fn from(current: FingerprintKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
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
    /// Which data key holds which value (`accessToken=...,expiresAt=...`); empty in 0.1.0.
    pub data_keys: String,
    /// A random id per issue, so two writers of one revision can be told apart; empty in 0.1.0.
    pub issue_id: String,
}

impl RecordText {
    /// Whether the record has none of the annotations 0.1.0 did not write.
    fn is_legacy(&self) -> bool {
        self.data_keys.is_empty() && self.issue_id.is_empty()
    }
}

/// What checking a recorded fingerprint found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintCheck {
    /// Made by the current key in the current format.
    Current,
    /// The data and record are intact, but the fingerprint was made by a previous key or in
    /// 0.1.0's format: it should be made again with the current key.
    Outdated,
    /// Absent or not matching any key: the data or the record was edited.
    Mismatch,
}

const PREFIX: &str = "v3:";
const LEGACY_PREFIX: &str = "v2:";

impl FingerprintKeys {
    /// Adds a key that is still accepted.
    #[must_use]
    pub fn with_previous(mut self, key: FingerprintKey) -> Self {
        if key.id != self.current.id && !self.previous.iter().any(|k| k.id == key.id) {
            self.previous.push(key);
        }
        self
    }

    pub fn current(&self) -> &FingerprintKey {
        &self.current
    }

    fn all(&self) -> impl Iterator<Item = &FingerprintKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// The fingerprint to write: HMAC-SHA256 with the current key over the owner's uid, the data
    /// and every record annotation (so editing `expires-at` cannot postpone a rotation unnoticed).
    pub fn sign(&self, owner_uid: &str, data: &CredentialData, record: &RecordText) -> String {
        format!(
            "{PREFIX}{}:{}",
            self.current.id,
            mac_v3(&self.current, owner_uid, data, record)
        )
    }

    /// Checks a recorded fingerprint against the data and record it claims to cover.
    pub fn check(
        &self,
        recorded: Option<&str>,
        owner_uid: &str,
        data: &CredentialData,
        record: &RecordText,
    ) -> FingerprintCheck {
        let Some(recorded) = recorded else {
            return FingerprintCheck::Mismatch;
        };
        if let Some(rest) = recorded.strip_prefix(PREFIX) {
            let Some((id, mac)) = rest.split_once(':') else {
                return FingerprintCheck::Mismatch;
            };
            return match self.all().find(|key| key.id == id) {
                Some(key) if mac_v3(key, owner_uid, data, record) == mac => {
                    if key.id == self.current.id {
                        FingerprintCheck::Current
                    } else {
                        FingerprintCheck::Outdated
                    }
                }
                _ => FingerprintCheck::Mismatch,
            };
        }
        // 0.1.0's format covers fewer annotations: it is accepted only on a record that has
        // none of the newer ones, so they cannot be added unnoticed under an old fingerprint.
        if let Some(mac) = recorded.strip_prefix(LEGACY_PREFIX)
            && record.is_legacy()
            && self
                .all()
                .any(|key| mac_v2(key, owner_uid, data, record) == mac)
        {
            return FingerprintCheck::Outdated;
        }
        FingerprintCheck::Mismatch
    }

    /// `hmac-sha256:` and 12 hex digits of the value, keyed with the current key: enough for two
    /// people with access to the operator's records to tell two credentials apart, useless to
    /// anyone checking guesses offline.
    pub fn short_mac(&self, value: &str) -> String {
        let mut mac = self.current.mac();
        mac.update(b"syncclient.io/history\0");
        mac.update(value.as_bytes());
        let digest = hex::encode(mac.finalize().into_bytes());
        format!("hmac-sha256:{}", &digest[..12])
    }
}

/// Length-prefixed fields keep ("ab","c") and ("a","bc") apart.
fn field(mac: &mut Hmac<Sha256>, bytes: &[u8]) {
    mac.update(&(bytes.len() as u64).to_be_bytes());
    mac.update(bytes);
}

fn covered(mac: &mut Hmac<Sha256>, owner_uid: &str, data: &CredentialData, record: &RecordText) {
    field(mac, owner_uid.as_bytes());
    for (key, value) in &data.0 {
        field(mac, key.as_bytes());
        field(mac, value.as_bytes());
    }
    for value in [
        &record.issued_at,
        &record.expires_at,
        &record.revision,
        &record.spec_hash,
        &record.rotate_request,
    ] {
        field(mac, value.as_bytes());
    }
}

/// 0.1.0's fingerprint (without the `v2:` prefix).
fn mac_v2(
    key: &FingerprintKey,
    owner_uid: &str,
    data: &CredentialData,
    record: &RecordText,
) -> String {
    let mut mac = key.mac();
    covered(&mut mac, owner_uid, data, record);
    hex::encode(mac.finalize().into_bytes())
}

fn mac_v3(
    key: &FingerprintKey,
    owner_uid: &str,
    data: &CredentialData,
    record: &RecordText,
) -> String {
    let mut mac = key.mac();
    field(&mut mac, b"v3");
    covered(&mut mac, owner_uid, data, record);
    field(&mut mac, record.data_keys.as_bytes());
    field(&mut mac, record.issue_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
