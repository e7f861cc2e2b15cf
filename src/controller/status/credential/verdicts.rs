//! What each outcome says of the `Ready` and `Issuing` conditions, with the status fields it
//! sets on the way, and the sentences those conditions carry.

use chrono::{DateTime, Utc};

use super::failure::{FailedAttempt, clear_failures, failed, stored_reason};
use super::{Outcome, StatusInput, Verdict, is_current, record_fields};
use crate::api::{ConditionStatus, SyncClientCredentialStatus, reasons};
use crate::controller::failure::FailureReason;
use crate::controller::status::bounded;
use crate::planner::{BlockReason, Expiry, FailureCategory, IssueReason, Record, WaitReason};
use crate::secret::rfc3339;

/// What the outcome says of both conditions, with the status fields it sets.
pub(super) fn verdicts(
    status: &mut SyncClientCredentialStatus,
    old: &SyncClientCredentialStatus,
    input: &StatusInput<'_>,
    record: Option<&Record>,
    current: bool,
) -> (Verdict, Verdict) {
    match input.outcome {
        Outcome::Issued {
            record,
            renewal_time,
            rotate_request,
            ..
        } => issued(
            status,
            input,
            record,
            *renewal_time,
            rotate_request.as_deref(),
        ),
        Outcome::Rewritten {
            record,
            renewal_time,
            ..
        } => {
            record_fields(status, record);
            status.renewal_time = *renewal_time;
            let ready = ready_from_record(
                input.secret_name,
                Some(record),
                is_current(record, input.now),
                old,
            );
            let issuing = waiting_issuing(status, old, *renewal_time, None);
            (ready, issuing)
        }
        Outcome::Failed {
            failure,
            trigger,
            next_retry,
            rotate_request,
            stored,
            ..
        } => {
            let current = match stored {
                Some((record, _)) => {
                    record_fields(status, record);
                    false
                }
                None => current,
            };
            let attempt = FailedAttempt {
                failure,
                trigger: *trigger,
                next_retry: *next_retry,
                rotate_request: rotate_request.as_deref(),
            };
            failed(status, input, current, &attempt)
        }
        Outcome::Waiting { renewal_time, held } => {
            // The next try: the planned rotation, or the end of the backoff or throttle.
            status.renewal_time = held.map(|(_, at)| at).or(*renewal_time);
            let ready = ready_from_record(input.secret_name, record, current, old);
            (ready, waiting_issuing(status, old, *renewal_time, *held))
        }
        Outcome::Blocked(reason) => blocked(status, input, current, *reason),
        Outcome::InUse { owner } => in_use(status, owner),
        Outcome::SpecInvalid(message) => {
            status.renewal_time = None;
            status.next_retry_time = None;
            let message = bounded(message);
            let verdict = Verdict::new(
                ConditionStatus::False,
                FailureReason::SpecInvalid.as_str(),
                message,
            );
            (verdict.clone(), verdict)
        }
    }
}

fn in_use(status: &mut SyncClientCredentialStatus, owner: &str) -> (Verdict, Verdict) {
    status.renewal_time = None;
    status.next_retry_time = None;
    let message = bounded(&format!(
        "SyncClientCredential {owner} already rotates this sync client (same broker endpoint, tenant and directory) and is older: this one issues nothing, or each would revoke the other's token. Delete one of them"
    ));
    let verdict = Verdict::new(ConditionStatus::False, reasons::SYNC_CLIENT_IN_USE, message);
    (verdict.clone(), verdict)
}

fn issued(
    status: &mut SyncClientCredentialStatus,
    input: &StatusInput<'_>,
    record: &Record,
    renewal_time: Option<DateTime<Utc>>,
    rotate_request: Option<&str>,
) -> (Verdict, Verdict) {
    record_fields(status, record);
    status.renewal_time = renewal_time;
    clear_failures(status);
    if let Some(request) = rotate_request {
        status.observed_rotate_request = Some(request.to_owned());
        status.attempted_rotate_request = None;
    }
    (
        Verdict::new(
            ConditionStatus::True,
            reasons::CREDENTIAL_CURRENT,
            current_message(input.secret_name, record),
        ),
        Verdict::new(
            ConditionStatus::False,
            reasons::IDLE,
            schedule_message(renewal_time),
        ),
    )
}

fn waiting_issuing(
    status: &mut SyncClientCredentialStatus,
    old: &SyncClientCredentialStatus,
    renewal_time: Option<DateTime<Utc>>,
    held: Option<(WaitReason, DateTime<Utc>)>,
) -> Verdict {
    match held {
        Some((WaitReason::Backoff(trigger), at)) => {
            status.next_retry_time = Some(at);
            // A failure that needs a change is named: it says what to fix.
            let reason = stored_reason(old)
                .filter(|r| r.category() == FailureCategory::Permanent)
                .map_or(reasons::BACKOFF, FailureReason::as_str);
            Verdict::new(
                ConditionStatus::True,
                reason,
                bounded(&format!(
                    "{} after {} failed attempt(s); retrying at {}",
                    trigger_action(trigger),
                    status.failed_attempts,
                    rfc3339(at)
                )),
            )
        }
        Some((WaitReason::Throttled(trigger), at)) => Verdict::new(
            ConditionStatus::True,
            reasons::THROTTLED,
            bounded(&format!(
                "{} waits until {}: a credential is issued at most once per minimum interval",
                trigger_action(trigger),
                rfc3339(at)
            )),
        ),
        // The last attempt failed for a reason that needs a change (a rotate request refused,
        // say): nothing is due now, but the reason stays in view until an issue succeeds.
        Some((WaitReason::Scheduled, _)) | None => {
            match stored_reason(status).filter(|r| r.category() == FailureCategory::Permanent) {
                Some(reason) => Verdict::new(
                    ConditionStatus::False,
                    reason.as_str(),
                    bounded(&format!(
                        "the last attempt failed: {}; {}; {}",
                        status.last_failure_message.as_deref().unwrap_or_default(),
                        reason.hint(),
                        schedule_message(renewal_time)
                    )),
                ),
                None => Verdict::new(
                    ConditionStatus::False,
                    reasons::IDLE,
                    schedule_message(renewal_time),
                ),
            }
        }
    }
}

fn blocked(
    status: &mut SyncClientCredentialStatus,
    input: &StatusInput<'_>,
    current: bool,
    reason: BlockReason,
) -> (Verdict, Verdict) {
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
        BlockReason::SyncClientInUse => (
            reasons::SYNC_CLIENT_IN_USE,
            "another, older SyncClientCredential rotates this sync client".to_owned(),
        ),
    };
    status.renewal_time = None;
    status.next_retry_time = None;
    let ready = if current && reason != BlockReason::SecretNotOwned {
        Verdict::new(
            ConditionStatus::True,
            reasons::CREDENTIAL_CURRENT,
            bounded(&format!("the Secret holds a valid credential; {message}")),
        )
    } else {
        Verdict::new(ConditionStatus::False, why, bounded(&message))
    };
    (
        ready,
        Verdict::new(ConditionStatus::False, why, bounded(&message)),
    )
}

fn ready_from_record(
    secret_name: &str,
    record: Option<&Record>,
    current: bool,
    old: &SyncClientCredentialStatus,
) -> Verdict {
    match record {
        Some(record) if current => Verdict::new(
            ConditionStatus::True,
            reasons::CREDENTIAL_CURRENT,
            current_message(secret_name, record),
        ),
        // Not current, and a failure is being retried: say why it is not replaced yet.
        // (Built on the last failure's message: unknown while the cache holds only its digest,
        // so the status is then computed again from a fresh read.)
        Some(_) => match stored_reason(old) {
            Some(reason) => Verdict::new(
                ConditionStatus::False,
                reason.as_str(),
                old.last_failure_message
                    .clone()
                    .unwrap_or_default()
                    .map(|last| {
                        bounded(&format!(
                            "the credential in the Secret is not valid; {last}"
                        ))
                    }),
            ),
            None => Verdict::new(
                ConditionStatus::False,
                reasons::EXPIRED,
                "the credential in the Secret has expired",
            ),
        },
        None => Verdict::new(
            ConditionStatus::False,
            stored_reason(old).map_or(reasons::PENDING, FailureReason::as_str),
            old.last_failure_message
                .clone()
                .unwrap_or_else(|| "no credential issued yet".into()),
        ),
    }
}

fn current_message(secret_name: &str, record: &Record) -> String {
    match record.expiry {
        Expiry::At(at) => format!(
            "Secret {secret_name} holds revision {} (expires {})",
            record.revision,
            rfc3339(at)
        ),
        _ => format!("Secret {secret_name} holds revision {}", record.revision),
    }
}

fn schedule_message(renewal: Option<DateTime<Utc>>) -> String {
    renewal.map_or_else(
        || "no rotation scheduled".to_owned(),
        |at| format!("next rotation at {}", rfc3339(at)),
    )
}

/// What was being attempted, for messages.
pub fn trigger_action(trigger: IssueReason) -> &'static str {
    match trigger {
        IssueReason::SecretMissing => "issuing the first credential",
        IssueReason::SecretUnreadable | IssueReason::DataTampered => "repairing the Secret",
        IssueReason::SpecChanged => "issuing for the changed spec",
        IssueReason::ExpiryUnknown => "issuing (expiry unknown)",
        IssueReason::RotateRequested => "rotating on request",
        IssueReason::RevokedExternally => "replacing the token revoked elsewhere",
        IssueReason::Expired => "replacing the expired credential",
        IssueReason::RenewalDue => "scheduled rotation",
        IssueReason::OutcomeUnknown => {
            "replacing a client secret a generate that went unanswered may have revoked"
        }
    }
}
