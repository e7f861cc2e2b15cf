//! The parts of a credential's status that record side results of a reconcile: the probe of the
//! stored token, the preflight, and the history of issue attempts.

use chrono::{DateTime, Utc};

use super::bounded;
use super::credential::{Outcome, StatusInput};
use crate::api::{
    Condition, ConditionStatus, MAX_HISTORY, RotationRecord, SyncClientCredentialStatus, reasons,
    set_condition,
};
use crate::controller::failure::Failure;

/// What a reconcile did besides its main outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    pub verification: Option<VerifyNote>,
    pub preflight: Option<PreflightNote>,
    /// Deliveries of the stored (or just issued) credential.
    pub deliveries: Vec<crate::controller::credential::deliver::DeliveryNote>,
}

/// A probe of the stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyNote {
    pub at: DateTime<Utc>,
    /// `Valid`, `Revoked`, or the reason the probe could not be made.
    pub result: String,
}

/// A preflight: login, broker token and a read of the sync client, nothing minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightNote {
    pub at: DateTime<Utc>,
    /// The request it served, if one asked for it.
    pub request: Option<String>,
    pub result: Result<String, Failure>,
}

/// Records the probe and the preflight.
pub fn apply_notes(status: &mut SyncClientCredentialStatus, input: &StatusInput<'_>) {
    if let Some(verification) = &input.notes.verification {
        status.last_verify_time = Some(verification.at);
        status.last_verify_result = Some(bounded(&verification.result).into());
    }
    if let Some(preflight) = &input.notes.preflight {
        status.last_preflight_time = Some(preflight.at);
        if preflight.request.is_some() {
            status
                .observed_preflight_request
                .clone_from(&preflight.request);
        }
        let (state, reason, message) = match &preflight.result {
            Ok(message) => (
                ConditionStatus::True,
                reasons::PREFLIGHT_PASSED,
                bounded(message),
            ),
            Err(failure) => (
                ConditionStatus::False,
                failure.reason.as_str(),
                bounded(&format!("{}: {}", failure.reason, failure.message)),
            ),
        };
        set_condition(
            &mut status.conditions,
            Condition {
                type_: reasons::PREFLIGHT.into(),
                status: state,
                reason: reason.into(),
                message: message.into(),
                last_transition_time: preflight.at,
                observed_generation: Some(input.generation),
            },
        );
    }
}

/// Adds an issue attempt to the history, newest first, keeping at most [`MAX_HISTORY`].
pub fn record_attempt(status: &mut SyncClientCredentialStatus, input: &StatusInput<'_>) {
    let entry = match input.outcome {
        Outcome::Issued {
            record,
            trigger,
            fingerprint,
            ..
        } => RotationRecord {
            time: input.now,
            revision: record.revision,
            trigger: trigger.as_str().into(),
            outcome: "Issued".into(),
            fingerprint: Some(fingerprint.clone()),
        },
        Outcome::Failed {
            failure,
            trigger,
            revision,
            stored,
            ..
        } => RotationRecord {
            time: input.now,
            revision: *revision,
            trigger: trigger.as_str().into(),
            outcome: failure.reason.as_str().into(),
            fingerprint: stored.as_ref().map(|(_, fingerprint)| fingerprint.clone()),
        },
        _ => return,
    };
    status.history.record(entry, MAX_HISTORY);
}
