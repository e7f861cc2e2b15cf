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
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub observed_generation: Option<i64>,
    pub secret_name: Option<String>,
    /// When the current access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The next time the operator will try to issue: the planned rotation, or, while a due
    /// rotation fails, its next retry.
    pub renewal_time: Option<DateTime<Utc>>,
    /// Since when the credential in the Secret has been due for renewal without being renewed
    /// (its planned rotation time, its expiry, or when it was found missing, tampered with or
    /// revoked); absent while nothing is due. The `SyncClientCredentialRenewalOverdue` alert
    /// watches it.
    #[serde(default)]
    pub renewal_due_time: Option<DateTime<Utc>>,
    pub last_rotation_time: Option<DateTime<Utc>>,
    /// Number of credentials issued into the Secret so far.
    pub revision: Option<i64>,
    /// Consecutive failed issuance attempts (0 after a success).
    #[serde(default)]
    pub failed_attempts: i32,
    pub last_failure_time: Option<DateTime<Utc>>,
    /// Category of the last failure: spec, auth, permission, not_found, conflict, transient.
    pub last_failure_reason: Option<Name>,
    /// The generation the last failure happened at; permanent failures wait for a new one.
    pub last_failure_generation: Option<i64>,
    pub next_retry_time: Option<DateTime<Utc>>,
    /// Bounded explanation of the last failure.
    pub last_failure_message: Option<Text>,
    /// The last `syncclient.io/rotate-request` value served.
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
    /// it cannot be shown to accept: the probe, not the token, may be at fault), or the reason
    /// it could not be made.
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
    /// Why it was issued: `SecretMissing`, `RenewalDue`, `RotateRequested`, `RevokedExternally`, ...
    pub trigger: Name,
    /// `Issued`, or the failure reason (`BrokerUnavailable`, `PermissionDenied`, ...).
    pub outcome: Name,
    /// `sha256:` and the first 12 hex digits of the SHA-256 of the issued token (or client
    /// secret), so two people can tell whether they hold the same one; only on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}
