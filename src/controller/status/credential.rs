//! A credential's status, computed from what the reconcile did. Pure, so the writer can compare it
//! with the current status and patch only when something changed, and so each rule is a table
//! test. [`compute`] fills the record fields from the Secret, then lets the outcome set its fields
//! and say what the `Ready` and `Issuing` conditions are.

use chrono::{DateTime, Utc};

use super::bounded;
use super::due::{renewal_due, verify_due};
use super::notes::{Notes, apply_notes, record_attempt};
use crate::api::{
    Condition, ConditionStatus, Name, SyncClientCredentialStatus, Text, reasons, set_condition,
};
use crate::controller::failure::{Failure, FailureReason};
use crate::planner::{
    BlockReason, Expiry, FailureCategory, Failures, IssueReason, Record, RewriteReason,
    SecretState, WaitReason,
};
use crate::secret::rfc3339;

/// What the reconcile did, for the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Issued {
        record: Record,
        renewal_time: Option<DateTime<Utc>>,
        rotate_request: Option<String>,
        trigger: IssueReason,
        /// Short fingerprint of the new credential, for the history.
        fingerprint: String,
        /// What delivering it to the targets in `spec.deliveries` did.
        deliveries: Vec<crate::controller::credential::deliver::DeliveryNote>,
    },
    /// The credential already held was written again (moved, keys renamed, fingerprinted anew).
    Rewritten {
        record: Record,
        renewal_time: Option<DateTime<Utc>>,
        reason: RewriteReason,
    },
    Failed {
        failure: Failure,
        trigger: IssueReason,
        next_retry: Option<DateTime<Utc>>,
        rotate_request: Option<String>,
        /// The revision that was being issued.
        revision: i64,
        /// A credential stored although the attempt failed (a broker anomaly), with its
        /// fingerprint.
        stored: Option<(Record, String)>,
        /// The generate's outcome is unknown: it may still land at the broker (and revoke what
        /// the Secret holds then) until this time, when the stored token is checked.
        verify_after: Option<DateTime<Utc>>,
    },
    Waiting {
        renewal_time: Option<DateTime<Utc>>,
        /// Why an issue that is due waits (backoff or the minimum interval), and until when.
        held: Option<(WaitReason, DateTime<Utc>)>,
    },
    Blocked(BlockReason),
    /// An older credential rotates the same sync client (`namespace/name`).
    InUse {
        owner: String,
    },
    SpecInvalid(String),
}

/// Everything the status is computed from.
pub struct StatusInput<'a> {
    pub now: DateTime<Utc>,
    pub generation: i64,
    pub secret_name: &'a str,
    /// The Secret as observed before acting.
    pub secret: &'a SecretState,
    pub outcome: &'a Outcome,
    /// What else this reconcile did: a probe of the token, a preflight.
    pub notes: &'a Notes,
    /// A rotate request the Secret's record says was served (its status may not say so yet).
    pub served_rotate_request: Option<&'a str>,
    /// When the credential the schedule is read from is due for renewal (jitter included).
    pub scheduled_renewal: Option<DateTime<Utc>>,
    /// A token issued now is probed soon after: its broker's probe has not yet been seen to
    /// accept a token, and only a probe known to accept tokens may prove one revoked.
    pub probe_fresh_token: bool,
    /// The names of `spec.deliveries`, in order.
    pub delivery_names: Vec<String>,
    /// Stable per resource: spreads delivery retries.
    pub jitter_seed: u64,
}

impl StatusInput<'_> {
    /// The delivery attempts of this reconcile.
    pub fn deliveries(
        &self,
    ) -> impl Iterator<Item = &crate::controller::credential::deliver::DeliveryNote> {
        self.notes.deliveries.iter()
    }
}

/// One condition's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: ConditionStatus,
    pub reason: &'static str,
    pub message: Text,
}

impl Verdict {
    fn new(status: ConditionStatus, reason: &'static str, message: impl Into<Text>) -> Self {
        Self {
            status,
            reason,
            message: message.into(),
        }
    }
}

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

fn stored_reason(status: &SyncClientCredentialStatus) -> Option<FailureReason> {
    status
        .last_failure_reason
        .as_deref()
        .and_then(FailureReason::parse)
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
        record_fields(&mut status, record);
    }
    let current = record.is_some_and(|r| is_current(r, input.now));
    status.renewal_due_time = renewal_due(old, input);
    status.verify_due_time = verify_due(old, input);
    if let Some(served) = input.served_rotate_request {
        status.observed_rotate_request = Some(served.to_owned());
    }
    apply_notes(&mut status, input);
    record_attempt(&mut status, input);
    let (ready, issuing) = verdicts(&mut status, old, input, record, current);
    set_conditions(&mut status, old, input, ready, issuing);
    super::delivery::apply_deliveries(&mut status, input);
    status
}

/// What the outcome says of both conditions, with the status fields it sets.
fn verdicts(
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

/// Mirrors the Secret's record for people.
fn record_fields(status: &mut SyncClientCredentialStatus, record: &Record) {
    status.expires_at = match record.expiry {
        Expiry::At(at) => Some(at),
        _ => None,
    };
    status.last_rotation_time = Some(record.issued_at);
    status.revision = Some(record.revision);
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

/// A failed attempt, as the status reports it.
struct FailedAttempt<'a> {
    failure: &'a Failure,
    trigger: IssueReason,
    next_retry: Option<DateTime<Utc>>,
    rotate_request: Option<&'a str>,
}

fn failed(
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

/// Sets both conditions. While waiting out a backoff or blocked by a permanent failure, the
/// message written with the failure (which says what was attempted and what to do) stays.
fn set_conditions(
    status: &mut SyncClientCredentialStatus,
    old: &SyncClientCredentialStatus,
    input: &StatusInput<'_>,
    ready: Verdict,
    issuing: Verdict,
) {
    let keep_messages = matches!(
        input.outcome,
        Outcome::Waiting {
            held: Some((WaitReason::Backoff(_), _)),
            ..
        }
    );
    for (type_, mut verdict) in [(reasons::READY, ready), (reasons::ISSUING, issuing)] {
        if keep_messages
            && let Some(existing) = old.conditions.iter().find(|c| {
                c.type_ == type_ && c.status == verdict.status && c.reason == verdict.reason
            })
        {
            verdict.message.clone_from(&existing.message);
        }
        set_condition(
            &mut status.conditions,
            Condition {
                type_: Name::new(type_),
                status: verdict.status,
                reason: Name::new(verdict.reason),
                message: verdict.message,
                last_transition_time: input.now,
                observed_generation: Some(input.generation),
            },
        );
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

/// Intact and not expired: Ready is False from the moment the stored token has expired,
/// whatever else holds.
fn is_current(record: &Record, now: DateTime<Utc>) -> bool {
    record.data_intact && !is_expired(record, now)
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
