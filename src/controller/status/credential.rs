//! Computes a credential's status from what happened; pure, so the writer can compare it with
//! the current status and patch only when something changed.

use chrono::{DateTime, Utc};

use crate::api::{Condition, ConditionStatus, SyncClientCredentialStatus, reasons, set_condition};
use crate::planner::{
    BlockReason, Expiry, FailureCategory, Failures, IssueReason, Record, SecretState,
};

/// Longest failure message kept in status and events.
pub const MAX_MESSAGE_LEN: usize = 300;

/// A failed attempt, described for people and classified for the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A condition reason from [`reasons`].
    pub reason: &'static str,
    pub message: String,
    pub category: FailureCategory,
    /// The broker may have rotated although no answer arrived: the Secret may hold a dead token.
    pub outcome_unknown: bool,
}

/// Whether a stored failure reason waits for a spec change.
pub fn category_of_reason(reason: &str) -> FailureCategory {
    match reason {
        reasons::SPEC_INVALID
        | reasons::PERMISSION_DENIED
        | reasons::SYNC_CLIENT_NOT_FOUND
        | reasons::SYNC_CLIENT_CONFLICT => FailureCategory::Permanent,
        _ => FailureCategory::Retryable,
    }
}

/// The failure history the planner reads back from status.
pub fn failures_from_status(status: &SyncClientCredentialStatus) -> Failures {
    Failures {
        attempts: u32::try_from(status.failed_attempts).unwrap_or(0),
        last_failure_time: status.last_failure_time,
        category: status
            .last_failure_reason
            .as_deref()
            .map(category_of_reason),
        generation: status.last_failure_generation,
    }
}

/// Cuts a message to [`MAX_MESSAGE_LEN`] characters on one line.
pub fn bounded(message: &str) -> String {
    let single_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if single_line.chars().count() <= MAX_MESSAGE_LEN {
        return single_line;
    }
    let mut cut: String = single_line.chars().take(MAX_MESSAGE_LEN - 1).collect();
    cut.push('…');
    cut
}

/// What the reconcile did, for the status.
pub enum Outcome<'a> {
    Issued {
        record: &'a Record,
        renewal_time: Option<DateTime<Utc>>,
        rotate_request: Option<&'a str>,
    },
    Failed {
        failure: &'a Failure,
        trigger: IssueReason,
        next_retry: Option<DateTime<Utc>>,
        rotate_request: Option<&'a str>,
    },
    Waiting {
        renewal_time: Option<DateTime<Utc>>,
        backoff: Option<(IssueReason, DateTime<Utc>)>,
    },
    Blocked(BlockReason),
    SpecInvalid(&'a str),
}

/// Everything the status is computed from.
pub struct StatusInput<'a> {
    pub now: DateTime<Utc>,
    pub generation: i64,
    pub secret_name: &'a str,
    /// The Secret as observed before acting.
    pub secret: &'a SecretState,
    pub outcome: Outcome<'a>,
}

/// The new status; equal to `old` when nothing changed (condition times are kept).
pub fn compute(
    old: &SyncClientCredentialStatus,
    input: &StatusInput<'_>,
) -> SyncClientCredentialStatus {
    let mut status = old.clone();
    status.observed_generation = Some(input.generation);
    status.secret_name = Some(input.secret_name.to_owned());
    let record = match input.secret {
        SecretState::Owned(record) => Some(record),
        _ => None,
    };
    if let Some(record) = record {
        status.expires_at = match record.expiry {
            Expiry::At(at) => Some(at),
            _ => None,
        };
        status.last_rotation_time = Some(record.issued_at);
        status.revision = Some(record.revision);
    }
    let current = record.is_some_and(|r| r.data_intact && !is_expired(r, input.now));
    let (ready, issuing) = match &input.outcome {
        Outcome::Issued {
            record,
            renewal_time,
            rotate_request,
        } => {
            status.expires_at = match record.expiry {
                Expiry::At(at) => Some(at),
                _ => None,
            };
            status.last_rotation_time = Some(record.issued_at);
            status.revision = Some(record.revision);
            status.renewal_time = *renewal_time;
            clear_failures(&mut status);
            if let Some(request) = rotate_request {
                status.observed_rotate_request = Some((*request).to_owned());
            }
            (
                (
                    ConditionStatus::True,
                    reasons::CREDENTIAL_CURRENT,
                    current_message(input.secret_name, record),
                ),
                (
                    ConditionStatus::False,
                    reasons::IDLE,
                    schedule_message(*renewal_time),
                ),
            )
        }
        Outcome::Failed {
            failure,
            trigger,
            next_retry,
            rotate_request,
        } => {
            status.failed_attempts = status.failed_attempts.saturating_add(1);
            status.last_failure_time = Some(input.now);
            status.last_failure_reason = Some(failure.reason.to_owned());
            status.last_failure_generation = Some(input.generation);
            status.last_failure_message = Some(bounded(&failure.message));
            status.next_retry_time = *next_retry;
            if failure.category == FailureCategory::Permanent
                && let Some(request) = rotate_request
            {
                // Served, though it failed: a new value asks again.
                status.observed_rotate_request = Some((*request).to_owned());
            }
            let message = bounded(&format!(
                "{} failed ({}): {}",
                trigger_action(*trigger),
                failure.reason,
                failure.message
            ));
            let ready = if current && !failure.outcome_unknown {
                (
                    ConditionStatus::True,
                    reasons::CREDENTIAL_CURRENT,
                    format!("the Secret still holds a valid credential; {message}"),
                )
            } else {
                (ConditionStatus::False, failure.reason, message.clone())
            };
            let issuing = match next_retry {
                Some(at) => (
                    ConditionStatus::True,
                    reasons::BACKOFF,
                    bounded(&format!(
                        "retrying at {}; {message}",
                        crate::secret::rfc3339(*at)
                    )),
                ),
                None => (
                    ConditionStatus::False,
                    failure.reason,
                    bounded(&format!(
                        "{message}; fix the cause, then change the spec or set the syncclient.io/rotate-request annotation"
                    )),
                ),
            };
            (ready, issuing)
        }
        Outcome::Waiting {
            renewal_time,
            backoff,
        } => {
            status.renewal_time = *renewal_time;
            let ready = ready_from_record(input, record, current, old);
            let issuing = match backoff {
                Some((trigger, at)) => {
                    status.next_retry_time = Some(*at);
                    (
                        ConditionStatus::True,
                        reasons::BACKOFF,
                        bounded(&format!(
                            "{} after {} failed attempt(s); retrying at {}",
                            trigger_action(*trigger),
                            status.failed_attempts,
                            crate::secret::rfc3339(*at)
                        )),
                    )
                }
                None => (
                    ConditionStatus::False,
                    reasons::IDLE,
                    schedule_message(*renewal_time),
                ),
            };
            (ready, issuing)
        }
        Outcome::Blocked(reason) => {
            let (why, message) = match reason {
                BlockReason::Suspended => (
                    reasons::SUSPENDED,
                    "spec.suspend is true: no broker calls are made".to_owned(),
                ),
                BlockReason::SecretNotOwned => (
                    reasons::SECRET_NOT_OWNED,
                    format!(
                        "Secret {} exists and is not controlled by this SyncClientCredential; it is left untouched. Delete or rename it, or set spec.secretName",
                        input.secret_name
                    ),
                ),
                BlockReason::PermanentFailure => (
                    old.last_failure_reason
                        .as_deref()
                        .map_or(reasons::SPEC_INVALID, reason_constant),
                    old.last_failure_message.clone().unwrap_or_default(),
                ),
            };
            status.renewal_time = None;
            status.next_retry_time = None;
            let ready = if current && *reason != BlockReason::SecretNotOwned {
                (
                    ConditionStatus::True,
                    reasons::CREDENTIAL_CURRENT,
                    bounded(&format!("the Secret holds a valid credential; {message}")),
                )
            } else {
                (ConditionStatus::False, why, bounded(&message))
            };
            (ready, (ConditionStatus::False, why, bounded(&message)))
        }
        Outcome::SpecInvalid(message) => {
            status.renewal_time = None;
            status.next_retry_time = None;
            let message = bounded(message);
            (
                (
                    ConditionStatus::False,
                    reasons::SPEC_INVALID,
                    message.clone(),
                ),
                (ConditionStatus::False, reasons::SPEC_INVALID, message),
            )
        }
    };
    // While waiting out a backoff or blocked by a permanent failure, the message written with the
    // failure (which says what was attempted and what to do) stays as it is.
    let keep_messages = matches!(
        input.outcome,
        Outcome::Waiting {
            backoff: Some(_),
            ..
        } | Outcome::Blocked(BlockReason::PermanentFailure)
    );
    for (type_, (state, reason, mut message)) in
        [(reasons::READY, ready), (reasons::ISSUING, issuing)]
    {
        if keep_messages
            && let Some(existing) = old
                .conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == state && c.reason == reason)
        {
            message.clone_from(&existing.message);
        }
        set_condition(
            &mut status.conditions,
            Condition {
                type_: type_.to_owned(),
                status: state,
                reason: reason.to_owned(),
                message,
                last_transition_time: input.now,
                observed_generation: Some(input.generation),
            },
        );
    }
    status
}

fn ready_from_record(
    input: &StatusInput<'_>,
    record: Option<&Record>,
    current: bool,
    old: &SyncClientCredentialStatus,
) -> (ConditionStatus, &'static str, String) {
    match record {
        Some(record) if current => (
            ConditionStatus::True,
            reasons::CREDENTIAL_CURRENT,
            current_message(input.secret_name, record),
        ),
        Some(_) => (
            ConditionStatus::False,
            reasons::EXPIRED,
            "the credential in the Secret has expired".to_owned(),
        ),
        None => (
            ConditionStatus::False,
            old.last_failure_reason
                .as_deref()
                .map_or(reasons::PENDING, reason_constant),
            old.last_failure_message
                .clone()
                .unwrap_or_else(|| "no credential issued yet".to_owned()),
        ),
    }
}

fn clear_failures(status: &mut SyncClientCredentialStatus) {
    status.failed_attempts = 0;
    status.last_failure_time = None;
    status.last_failure_reason = None;
    status.last_failure_generation = None;
    status.last_failure_message = None;
    status.next_retry_time = None;
}

fn is_expired(record: &Record, now: DateTime<Utc>) -> bool {
    matches!(record.expiry, Expiry::At(at) if now >= at)
}

fn current_message(secret_name: &str, record: &Record) -> String {
    match record.expiry {
        Expiry::At(at) => format!(
            "Secret {secret_name} holds revision {} (expires {})",
            record.revision,
            crate::secret::rfc3339(at)
        ),
        _ => format!("Secret {secret_name} holds revision {}", record.revision),
    }
}

fn schedule_message(renewal: Option<DateTime<Utc>>) -> String {
    renewal.map_or_else(
        || "no rotation scheduled".to_owned(),
        |at| format!("next rotation at {}", crate::secret::rfc3339(at)),
    )
}

fn trigger_action(trigger: IssueReason) -> &'static str {
    match trigger {
        IssueReason::SecretMissing => "issuing the first credential",
        IssueReason::SecretUnreadable | IssueReason::DataTampered => "repairing the Secret",
        IssueReason::SpecChanged => "issuing for the changed spec",
        IssueReason::ExpiryUnknown => "issuing (expiry unknown)",
        IssueReason::RotateRequested => "rotating on request",
        IssueReason::Expired => "replacing the expired credential",
        IssueReason::RenewalDue => "scheduled rotation",
    }
}

/// Maps a stored reason back to its constant (statuses written by older versions may differ).
fn reason_constant(reason: &str) -> &'static str {
    [
        reasons::SPEC_INVALID,
        reasons::AUTH_FAILED,
        reasons::PERMISSION_DENIED,
        reasons::SYNC_CLIENT_NOT_FOUND,
        reasons::SYNC_CLIENT_CONFLICT,
        reasons::BROKER_UNAVAILABLE,
        reasons::ROTATION_STATE_UNKNOWN,
        reasons::SECRET_WRITE_FAILED,
        reasons::BROKER_NOT_FOUND,
        reasons::BROKER_NOT_ALLOWED,
        reasons::BROKER_CONFIG_INVALID,
    ]
    .into_iter()
    .find(|known| *known == reason)
    .unwrap_or(reasons::PENDING)
}
