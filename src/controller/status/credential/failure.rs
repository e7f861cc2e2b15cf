//! The failure history in a credential's status: what a failed attempt records and what its
//! conditions say, what the planner reads back from it, and what a success clears.

use chrono::{DateTime, Utc};

use super::verdicts::trigger_action;
use super::{StatusInput, Verdict};
use crate::api::{ConditionStatus, SyncClientCredentialStatus, reasons};
use crate::controller::failure::{Failure, FailureReason};
use crate::controller::status::bounded;
use crate::planner::{FailureCategory, Failures, IssueReason};
use crate::secret::rfc3339;

/// The failure history the planner reads back from status.
pub fn failures_from_status(status: &SyncClientCredentialStatus) -> Failures {
    Failures {
        attempts: u32::try_from(status.failed_attempts).unwrap_or(0),
        last_failure_time: status.last_failure_time,
        category: stored_reason(status).map(FailureReason::category),
        generation: status.last_failure_generation,
        not_before: status.next_retry_time,
    }
}

pub(super) fn stored_reason(status: &SyncClientCredentialStatus) -> Option<FailureReason> {
    status
        .last_failure_reason
        .as_deref()
        .and_then(FailureReason::parse)
}

/// A failed attempt, as the status reports it.
pub(super) struct FailedAttempt<'a> {
    pub(super) failure: &'a Failure,
    pub(super) trigger: IssueReason,
    pub(super) next_retry: Option<DateTime<Utc>>,
    pub(super) rotate_request: Option<&'a str>,
}

pub(super) fn failed(
    status: &mut SyncClientCredentialStatus,
    input: &StatusInput<'_>,
    current: bool,
    attempt: &FailedAttempt<'_>,
) -> (Verdict, Verdict) {
    let FailedAttempt {
        failure,
        trigger,
        next_retry,
        rotate_request,
    } = *attempt;
    status.failed_attempts = status.failed_attempts.saturating_add(1);
    status.last_failure_time = Some(input.now);
    status.last_failure_reason = Some(failure.reason.as_str().into());
    status.last_failure_generation = Some(input.generation);
    status.last_failure_message = Some(bounded(&failure.message).into());
    status.next_retry_time = next_retry;
    if let Some(request) = rotate_request {
        match failure.category() {
            // Served, though it failed: a new value asks again.
            crate::planner::FailureCategory::Permanent => {
                status.observed_rotate_request = Some(request.to_owned());
            }
            // Attempted: its retries follow the backoff.
            crate::planner::FailureCategory::Retryable => {
                status.attempted_rotate_request = Some(request.to_owned());
            }
        }
    }
    let message = bounded(&format!(
        "{} failed ({}): {}",
        trigger_action(trigger),
        failure.reason,
        failure.message
    ));
    let ready = if current && !failure.outcome_unknown {
        Verdict::new(
            ConditionStatus::True,
            reasons::CREDENTIAL_CURRENT,
            bounded(&format!(
                "the Secret still holds a valid credential; {message}"
            )),
        )
    } else {
        Verdict::new(
            ConditionStatus::False,
            failure.reason.as_str(),
            message.clone(),
        )
    };
    if next_retry.is_some() {
        status.renewal_time = next_retry;
    }
    let issuing = match (next_retry, failure.category()) {
        (Some(at), FailureCategory::Permanent) => Verdict::new(
            ConditionStatus::True,
            failure.reason.as_str(),
            bounded(&format!(
                "{message}; {}; retried at {} and at once when the spec, the broker or its Secret changes, or on a new syncclient.io/rotate-request",
                failure.reason.hint(),
                rfc3339(at)
            )),
        ),
        (Some(at), FailureCategory::Retryable) => Verdict::new(
            ConditionStatus::True,
            reasons::BACKOFF,
            bounded(&format!("retrying at {}; {message}", rfc3339(at))),
        ),
        (None, _) => Verdict::new(
            ConditionStatus::False,
            failure.reason.as_str(),
            bounded(&format!("{message}; {}", failure.reason.hint())),
        ),
    };
    (ready, issuing)
}

pub(super) fn clear_failures(status: &mut SyncClientCredentialStatus) {
    status.failed_attempts = 0;
    status.last_failure_time = None;
    status.last_failure_reason = None;
    status.last_failure_generation = None;
    status.last_failure_message = None;
    status.next_retry_time = None;
}
