//! Observed state of a `SyncClientCredential`: what people (and `kubectl syncclient`) read.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, History, Name, Text};

/// Observed state. Mirrors the Secret's record for people; holds no secret material.
///
/// `None` fields serialize as `null` so that a merge patch of the whole status clears them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncClientCredentialStatus {
    /// `Ready` (whether the Secret holds a valid credential), `Issuing` (whether an issue is due,
    /// retried or held, and why) and `Preflight` (the last check made without minting); `Unknown`
    /// while a read the operator needs fails. The README lists every reason.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was last computed from.
    pub observed_generation: Option<i64>,
    /// The Secret the credential is written to (the one the spec names).
    pub secret_name: Option<String>,
    /// When the credential in the Secret expires, as the broker reported it (access tokens;
    /// absent when it reported none).
    pub expires_at: Option<DateTime<Utc>>,
    /// The next time the operator will try to issue: the planned rotation, or, while an issue is
    /// due and held, the end of its backoff or of the minimum interval. Absent while nothing is
    /// planned (suspended, blocked, an invalid spec).
    pub renewal_time: Option<DateTime<Utc>>,
    /// Since when the credential in the Secret has been due for renewal without being renewed
    /// (its planned rotation time, its expiry, or when it was found missing, tampered with or
    /// revoked); absent while nothing is due. The `SyncClientCredentialRenewalOverdue` alert
    /// watches it.
    #[serde(default)]
    pub renewal_due_time: Option<DateTime<Utc>>,
    /// When the credential in the Secret was issued.
    pub last_rotation_time: Option<DateTime<Utc>>,
    /// The revision of the credential in the Secret: 1 for the first one issued, one more for
    /// each new one (moving it to another Secret or renaming its keys keeps it).
    pub revision: Option<i64>,
    /// Consecutive failed issue attempts (0 after a success).
    #[serde(default)]
    pub failed_attempts: i32,
    /// When the last failed issue attempt ended.
    pub last_failure_time: Option<DateTime<Utc>>,
    /// The reason of the last failed issue attempt, as the conditions name it
    /// (`BrokerUnavailable`, `PermissionDenied`, `SecretWriteFailed`, ...); the README says which
    /// are retried on their own and which wait for a change.
    pub last_failure_reason: Option<Name>,
    /// The generation the last failure happened at: a failure that needs a change is retried at
    /// once on a new one.
    pub last_failure_generation: Option<i64>,
    /// When the failed issue is tried again: after a backoff, or, for a failure that needs a
    /// change, after a slow one (and at once when the spec, the broker or its Secrets change).
    pub next_retry_time: Option<DateTime<Utc>>,
    /// What failed, in words: at most 300 characters, never secret material.
    pub last_failure_message: Option<Text>,
    /// The last `syncclient.io/rotate-request` value served: issued, or failed for a reason a
    /// retry cannot fix (a new value asks again).
    pub observed_rotate_request: Option<String>,
    /// The last `syncclient.io/rotate-request` value attempted; after a failure its retries
    /// follow the backoff (a new value is tried at once).
    #[serde(default)]
    pub attempted_rotate_request: Option<String>,
    /// The last `syncclient.io/preflight-request` value served.
    #[serde(default)]
    pub observed_preflight_request: Option<String>,
    /// When the last preflight check (login, broker token, sync-client read; nothing minted) ran.
    #[serde(default)]
    pub last_preflight_time: Option<DateTime<Utc>>,
    /// When the stored access token was last checked with the broker (`spec.verifyInterval`).
    #[serde(default)]
    pub last_verify_time: Option<DateTime<Utc>>,
    /// What that check found: `Valid`, `Revoked`, `Unavailable: ...` (the broker refused a token
    /// it cannot be shown to accept: the probe, not the token, may be at fault), or, when it
    /// could not be made, the reason and what failed (`BrokerUnavailable: ...`,
    /// `SecretReadFailed: ...`).
    #[serde(default)]
    pub last_verify_result: Option<Text>,
    /// A check of the stored token owed at this time, whatever `verifyInterval` says: the end of
    /// the window in which a generate the operator gave up on may still land at the broker (and
    /// revoke the stored token), or just after a token replaced a revoked one.
    #[serde(default)]
    pub verify_due_time: Option<DateTime<Utc>>,
    /// The last issue attempts, newest first; never longer than [`MAX_HISTORY`].
    #[serde(default)]
    pub history: History,
    /// What became of each delivery in `spec.deliveries`, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<super::DeliveryStatus>,
}

/// Issue attempts kept in [`SyncClientCredentialStatus::history`].
pub const MAX_HISTORY: usize = 10;

/// One issue attempt, for people comparing notes: never the credential itself.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RotationRecord {
    /// When the attempt ended.
    pub time: DateTime<Utc>,
    /// The revision written (or, for a failure, the one that was attempted).
    pub revision: i64,
    /// Why it was issued: `SecretMissing`, `SecretUnreadable`, `DataTampered`, `SpecChanged`,
    /// `ExpiryUnknown`, `RevokedExternally`, `RotateRequested`, `Expired`, `RenewalDue` or
    /// `OutcomeUnknown`.
    pub trigger: Name,
    /// `Issued`, or the failure reason (`BrokerUnavailable`, `PermissionDenied`, ...).
    pub outcome: Name,
    /// `hmac-sha256:` and 12 hex digits of an HMAC of the issued token (or client secret), keyed
    /// with the operator's fingerprint key: two people with access to the records can tell
    /// whether they hold the same one, nobody can check a guess. Only on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}
