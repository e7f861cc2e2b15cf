//! Requests made through annotations and how to tell, from a credential's status alone, that the
//! operator has served them; and what to tell the user. Pure: the clock is a parameter.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use sync_client_operator::api::{
    Condition, ConditionStatus, CredentialType, RotationRecord, SyncClientCredential,
    SyncClientCredentialStatus,
};

use crate::humanize::{ago, timestamp, until};
use crate::summary::{PREFLIGHT_CONDITION, condition};

/// `status.history[].trigger` of a rotation asked for with the rotate-request annotation.
pub const ROTATE_TRIGGER: &str = "RotateRequested";
/// `status.history[].outcome` of a successful issue.
pub const ISSUED: &str = "Issued";

/// A fresh annotation value: the time as RFC 3339 with nanoseconds, which also tells a reader
/// when the request was made.
pub fn request_value(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// `namespace/name`.
pub fn qualified(credential: &SyncClientCredential) -> String {
    format!(
        "{}/{}",
        credential.metadata.namespace.as_deref().unwrap_or_default(),
        credential.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The status right after the request was written: whatever the operator records later is new.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    history: Vec<RotationRecord>,
    last_failure_time: Option<DateTime<Utc>>,
}

impl Baseline {
    pub fn of(status: Option<&SyncClientCredentialStatus>) -> Self {
        status.map_or_else(Self::default, |s| Self {
            history: s.history.to_vec(),
            last_failure_time: s.last_failure_time,
        })
    }
}

/// What became of a rotate request.
#[derive(Debug, Clone, PartialEq)]
pub enum RotateOutcome {
    /// Served with a new credential; `record` is its history entry (absent from an operator
    /// that keeps no history).
    Issued { record: Option<RotationRecord> },
    /// An attempt for it failed. `served`: the operator marked the request served anyway (a
    /// permanent failure it will not retry without a new request); otherwise it retries.
    Failed {
        reason: String,
        record: Option<RotationRecord>,
        served: bool,
    },
}

/// Whether the rotate request `value` has been served or has failed, judged against the status
/// right after it was made. A history entry with trigger `RotateRequested` that was not there
/// then is the attempt for this request (entries are compared whole, so clocks do not matter);
/// `status.observedRotateRequest == value` marks it served.
pub fn rotate_outcome(
    baseline: &Baseline,
    value: &str,
    status: Option<&SyncClientCredentialStatus>,
) -> Option<RotateOutcome> {
    let status = status?;
    let served = status.observed_rotate_request.as_deref() == Some(value);
    let attempt = status
        .history
        .iter()
        .find(|r| r.trigger == ROTATE_TRIGGER && !baseline.history.contains(r));
    match attempt {
        Some(record) if record.outcome == ISSUED => served.then(|| RotateOutcome::Issued {
            record: Some(record.clone()),
        }),
        Some(record) => Some(RotateOutcome::Failed {
            reason: record.outcome.to_string(),
            record: Some(record.clone()),
            served,
        }),
        None if served => {
            let failed_since = status.last_failure_time.is_some()
                && status.last_failure_time != baseline.last_failure_time;
            Some(if failed_since {
                RotateOutcome::Failed {
                    reason: status
                        .last_failure_reason
                        .as_ref()
                        .map_or_else(|| "Failed".to_owned(), ToString::to_string),
                    record: None,
                    served,
                }
            } else {
                RotateOutcome::Issued { record: None }
            })
        }
        None => None,
    }
}

/// The newest successful issue on record.
fn last_issued(status: &SyncClientCredentialStatus) -> Option<&RotationRecord> {
    status.history.iter().find(|r| r.outcome == ISSUED)
}

/// `Secret s (revision 3, sha256:0123456789ab, expires in 5d3h)`.
fn credential_phrase(credential: &SyncClientCredential, now: DateTime<Utc>) -> String {
    let status = credential.status.clone().unwrap_or_default();
    let secret = status
        .secret_name
        .clone()
        .or_else(|| credential.spec.secret_name.clone())
        .or_else(|| credential.metadata.name.clone())
        .unwrap_or_default();
    let mut details = Vec::new();
    if let Some(revision) = status.revision {
        details.push(format!("revision {revision}"));
    }
    if let Some(fingerprint) = last_issued(&status).and_then(|r| r.fingerprint.clone()) {
        details.push(fingerprint);
    }
    match (status.expires_at, credential.spec.credential_type) {
        (Some(at), _) => details.push(format!("expires {}", until(now, at, "expired"))),
        (None, CredentialType::ClientSecret) if status.revision.is_some() => {
            details.push("does not expire".to_owned());
        }
        (None, _) => {}
    }
    if details.is_empty() {
        format!("Secret {secret}")
    } else {
        format!("Secret {secret} ({})", details.join(", "))
    }
}

/// What a rotation does, said before asking for confirmation.
pub fn rotate_warning(credential: &SyncClientCredential, now: DateTime<Utc>) -> String {
    let mut text = format!(
        "Rotating SyncClientCredential {} makes the broker issue a new credential and revoke the \
         sync client's current one at once.\nAnything still using the current credential from {} \
         fails until it reads the new one.",
        qualified(credential),
        credential_phrase(credential, now)
    );
    if credential.spec.suspend {
        text.push_str(
            "\nNote: spec.suspend is true; the operator serves the request only once it is false.",
        );
    }
    text
}

/// The result of a rotate request, for the user.
pub fn describe_rotation(
    outcome: &RotateOutcome,
    credential: &SyncClientCredential,
    now: DateTime<Utc>,
) -> String {
    let target = qualified(credential);
    let status = credential.status.clone().unwrap_or_default();
    match outcome {
        RotateOutcome::Issued { .. } => {
            format!(
                "Rotated {target}: new credential in {}.",
                credential_phrase(credential, now)
            )
        }
        RotateOutcome::Failed { reason, served, .. } => {
            let mut text = format!("Rotation of {target} failed: {reason}");
            if let Some(message) = status.last_failure_message.filter(|m| !m.is_empty()) {
                let _ = write!(text, ": {message}");
            }
            text.push('.');
            match (served, status.next_retry_time) {
                (true, _) => text.push_str(
                    "\nThe operator will not retry this request: fix the cause, then rotate again.",
                ),
                (false, Some(at)) => {
                    let _ = write!(
                        text,
                        "\nThe operator retries at {} ({}); the request stays set until it is served.",
                        timestamp(at),
                        until(now, at, "due")
                    );
                }
                (false, None) => {
                    text.push_str("\nThe request stays set until the operator serves it.");
                }
            }
            text
        }
    }
}

/// What became of a preflight request.
#[derive(Debug, Clone, PartialEq)]
pub enum PreflightOutcome {
    Passed(Condition),
    /// Failed with this condition, or served without one.
    Failed(Option<Condition>),
}

/// Whether the preflight request `value` has been served (`status.observedPreflightRequest`),
/// and with what result (the `Preflight` condition).
pub fn preflight_outcome(
    value: &str,
    status: Option<&SyncClientCredentialStatus>,
) -> Option<PreflightOutcome> {
    let status = status?;
    if status.observed_preflight_request.as_deref() != Some(value) {
        return None;
    }
    Some(match condition(&status.conditions, PREFLIGHT_CONDITION) {
        Some(c) if c.status == ConditionStatus::True => PreflightOutcome::Passed(c.clone()),
        other => PreflightOutcome::Failed(other.cloned()),
    })
}

/// The result of a preflight request and its condition, for the user.
pub fn describe_preflight(
    outcome: &PreflightOutcome,
    credential: &SyncClientCredential,
    now: DateTime<Utc>,
) -> String {
    let target = qualified(credential);
    let (verdict, condition) = match outcome {
        PreflightOutcome::Passed(c) => ("passed", Some(c)),
        PreflightOutcome::Failed(c) => ("failed", c.as_ref()),
    };
    let Some(condition) = condition else {
        return format!(
            "Preflight of {target} failed: the operator served the request but set no {PREFLIGHT_CONDITION} condition."
        );
    };
    let checked = credential
        .status
        .as_ref()
        .and_then(|s| s.last_preflight_time)
        .unwrap_or(condition.last_transition_time);
    let status = crate::summary::status_word(condition.status);
    let mut text = format!(
        "Preflight of {target} {verdict}.\n  Condition: {PREFLIGHT_CONDITION}={status} ({}), checked {} ({})",
        condition.reason,
        timestamp(checked),
        ago(now, checked)
    );
    if !condition.message.is_empty() {
        let _ = write!(text, "\n  Message:   {}", condition.message);
    }
    text
}

#[cfg(test)]
mod tests;
