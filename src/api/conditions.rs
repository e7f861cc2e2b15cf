//! Conditions and their reasons, named in one place so status, events, metrics and tests agree.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Name, Text};

/// `True`, `False` or `Unknown`, as in every Kubernetes condition.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// A status condition in the standard Kubernetes shape.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Issuing` or `Preflight` (a broker has `Ready` only).
    #[serde(rename = "type")]
    pub type_: Name,
    /// `True`, `False`, or `Unknown` while a read the operator needs to tell fails.
    pub status: ConditionStatus,
    /// A CamelCase word naming what happened (`CredentialCurrent`, `BrokerUnavailable`,
    /// `SecretReadFailed`, ...; the README lists every reason).
    pub reason: Name,
    /// What happened and what to do, in words; never holds secret material.
    #[serde(default)]
    pub message: Text,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Condition types and reasons.
pub mod reasons {
    pub const READY: &str = "Ready";
    pub const ISSUING: &str = "Issuing";
    pub const PREFLIGHT: &str = "Preflight";
    /// Every delivery in `spec.deliveries` holds the current revision, validated.
    pub const DELIVERED: &str = "Delivered";

    // Ready=True
    pub const CREDENTIAL_CURRENT: &str = "CredentialCurrent";
    pub const AUTHENTICATED: &str = "Authenticated";
    // Ready=False / Issuing. Failure reasons are `controller::failure::FailureReason`.
    pub const SUSPENDED: &str = "Suspended";
    pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
    pub const PENDING: &str = "Pending";
    pub const IDLE: &str = "Idle";
    pub const BACKOFF: &str = "Backoff";
    pub const EXPIRED: &str = "Expired";
    pub const THROTTLED: &str = "Throttled";
    pub const SYNC_CLIENT_IN_USE: &str = "SyncClientInUse";
    /// Issuing=Unknown: the fresh read of the resource an issue is decided on failed.
    pub const CREDENTIAL_READ_FAILED: &str = "CredentialReadFailed";
    /// Event only: the status could not be written (so it cannot say so itself).
    pub const STATUS_WRITE_FAILED: &str = "StatusWriteFailed";
    // Preflight=True
    pub const PREFLIGHT_PASSED: &str = "PreflightPassed";
    // Delivered=True
    pub const DELIVERED_AND_VALIDATED: &str = "DeliveredAndValidated";
    // Delivered=False while a delivery waits for its first attempt
    pub const DELIVERY_PENDING: &str = "DeliveryPending";

    // Events
    pub const EVENT_ISSUED: &str = "Issued";
    pub const EVENT_ROTATED: &str = "Rotated";
    pub const EVENT_ROTATION_FAILED: &str = "RotationFailed";
    pub const EVENT_SECRET_REPAIRED: &str = "SecretRepaired";
    pub const EVENT_ROLLOUT_RESTARTED: &str = "RolloutRestarted";
    pub const EVENT_ROLLOUT_RESTART_FAILED: &str = "RolloutRestartFailed";
    pub const EVENT_SECRET_NOT_OWNED: &str = "SecretNotOwned";
    pub const EVENT_SYNC_CLIENT_IN_USE: &str = "SyncClientInUse";
    pub const EVENT_TOKEN_REVOKED: &str = "TokenRevoked";
    pub const EVENT_PREFLIGHT_PASSED: &str = "PreflightPassed";
    pub const EVENT_PREFLIGHT_FAILED: &str = "PreflightFailed";
    pub const EVENT_BROKER_ANOMALY: &str = "BrokerAnomaly";
    pub const EVENT_SECRET_MOVED: &str = "SecretMoved";
    pub const EVENT_SECRET_KEYS_RENAMED: &str = "SecretKeysRenamed";
    pub const EVENT_VERIFICATION_UNAVAILABLE: &str = "VerificationUnavailable";
    pub const EVENT_DELIVERED: &str = "Delivered";
    pub const EVENT_DELIVERY_VALIDATION_FAILED: &str = "DeliveryValidationFailed";
    pub const EVENT_QUARANTINE_LIFTED: &str = "QuarantineLifted";
    pub const EVENT_DELIVERY_FAILING: &str = "DeliveryFailing";
}

/// Sets a condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == new.type_) {
        if existing.status == new.status {
            new.last_transition_time = existing.last_transition_time;
        }
        *existing = new;
    } else {
        conditions.push(new);
    }
}
