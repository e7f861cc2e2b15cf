//! The times a credential's status keeps for what is owed: since when a renewal has been due
//! (the overdue alert watches it) and when the stored token must be checked whatever
//! `verifyInterval` says.

use chrono::{DateTime, Utc};

use super::credential::{Outcome, StatusInput};
use crate::api::SyncClientCredentialStatus;
use crate::planner::{IssueReason, WaitReason};

/// After a token replaced one revoked elsewhere (or is the first through a broker whose probe is
/// not known yet), it is probed this soon: a probe that refuses a token minted a moment ago is at
/// fault itself and must not cause re-issues, and one that accepts it has shown it works, for
/// this token and its broker.
pub const FRESH_TOKEN_PROBE_DELAY: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Since when the credential in the Secret has been due for renewal without being renewed.
pub fn renewal_due(
    old: &SyncClientCredentialStatus,
    input: &StatusInput<'_>,
) -> Option<DateTime<Utc>> {
    let trigger = match input.outcome {
        Outcome::Failed { trigger, .. }
        | Outcome::Waiting {
            held: Some((WaitReason::Backoff(trigger) | WaitReason::Throttled(trigger), _)),
            ..
        } => *trigger,
        _ => return None,
    };
    let since = match trigger {
        IssueReason::RenewalDue => input.scheduled_renewal?,
        IssueReason::Expired => input.scheduled_renewal.unwrap_or(input.now),
        IssueReason::DataTampered
        | IssueReason::SecretUnreadable
        | IssueReason::RevokedExternally
        | IssueReason::ExpiryUnknown
        | IssueReason::OutcomeUnknown => input.now,
        // Missing with a credential issued before: the workload lost it.
        IssueReason::SecretMissing if old.revision.is_some() => input.now,
        // A first issue, a new identity or a request: the credential held (if any) is fine.
        IssueReason::SecretMissing | IssueReason::SpecChanged | IssueReason::RotateRequested => {
            return None;
        }
    };
    Some(old.renewal_due_time.map_or(since, |kept| kept.min(since)))
}

/// A check of the stored token owed whatever `verifyInterval` says.
pub fn verify_due(
    old: &SyncClientCredentialStatus,
    input: &StatusInput<'_>,
) -> Option<DateTime<Utc>> {
    let new = match input.outcome {
        Outcome::Failed { verify_after, .. } => *verify_after,
        // A token that replaced a revoked one, or the first one through a broker whose probe
        // has not been seen to accept a token: the probe must be shown to accept it.
        Outcome::Issued { trigger, .. }
            if *trigger == IssueReason::RevokedExternally || input.probe_fresh_token =>
        {
            input.now.checked_add_signed(FRESH_TOKEN_PROBE_DELAY)
        }
        _ => None,
    };
    let kept = old.verify_due_time.filter(|at| {
        // Kept until a check at or after it happened.
        old.last_verify_time.is_none_or(|verified| verified < *at)
            && input
                .notes
                .verification
                .as_ref()
                .is_none_or(|note| note.at < *at)
    });
    match (kept, new) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
