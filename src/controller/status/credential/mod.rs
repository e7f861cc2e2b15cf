//! A credential's status, computed from what the reconcile did. Pure, so the writer can compare it
//! with the current status and patch only when something changed, and so each rule is a table
//! test. [`compute`] fills the record fields from the Secret, then lets the outcome set its fields
//! and say what the `Ready` and `Issuing` conditions are.
//!
//! - [`verdicts`]: what each outcome says of both conditions, and their sentences;
//! - [`failure`]: the failure history a failed attempt records and the planner reads back.

mod failure;
mod verdicts;

use chrono::{DateTime, Utc};

pub use failure::failures_from_status;
pub use verdicts::trigger_action;

use super::due::{renewal_due, verify_due};
use super::notes::{Notes, apply_notes, record_attempt};
use crate::api::{
    Condition, ConditionStatus, Name, SyncClientCredentialStatus, Text, reasons, set_condition,
};
use crate::controller::failure::Failure;
use crate::planner::{
    BlockReason, Expiry, IssueReason, Record, RewriteReason, SecretState, WaitReason,
};

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
    let (ready, issuing) = verdicts::verdicts(&mut status, old, input, record, current);
    set_conditions(&mut status, old, input, ready, issuing);
    super::delivery::apply_deliveries(&mut status, input);
    status
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

fn is_expired(record: &Record, now: DateTime<Utc>) -> bool {
    matches!(record.expiry, Expiry::At(at) if now >= at)
}

/// Intact and not expired: Ready is False from the moment the stored token has expired,
/// whatever else holds.
fn is_current(record: &Record, now: DateTime<Utc>) -> bool {
    record.data_intact && !is_expired(record, now)
}
