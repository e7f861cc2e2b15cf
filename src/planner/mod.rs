//! The pure planner: from the spec, the Secret's record, the failure history, the requests on the
//! resource and the current time it decides to issue now, wait until a time, stay blocked, probe
//! the stored token, or run a preflight. No I/O and no clock reads: `now` and the jitter seed are
//! inputs, so every decision is reproducible in a table test.
//!
//! The decision is a chain of small policies, cert-manager style; the first that triggers wins.
//! All time arithmetic is checked: no spec, record or broker value can overflow it.

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::CredentialType;

mod input;
mod schedule;

pub use input::{
    Expiry, FailureCategory, Failures, MAX_RETRY_AFTER, PlanInput, Policy, Record, RenewPolicy,
    Requests, SecretState, Verification,
};

use schedule::next_verification;
pub use schedule::{jittered_backoff, renewal_time, retry_time};

/// Backoff after the first failure.
pub const BACKOFF_BASE: TimeDelta = TimeDelta::seconds(5);
/// Longest wait between two retries of a retryable failure.
pub const BACKOFF_CAP: TimeDelta = TimeDelta::minutes(10);
/// Backoff after the first failure that needs a change (a refused permission, a missing sync
/// client): such a failure is retried slowly, never given up.
pub const SLOW_BACKOFF_BASE: TimeDelta = TimeDelta::minutes(2);
/// Longest wait between two retries of a failure that needs a change.
pub const SLOW_BACKOFF_CAP: TimeDelta = TimeDelta::hours(1);
/// Shortest wait before retrying a failure that needs a change, however close the expiry.
pub const SLOW_MIN_RETRY_DELAY: TimeDelta = TimeDelta::minutes(1);
/// Shortest wait before a retry, whatever the expiry cap says.
pub const MIN_RETRY_DELAY: TimeDelta = TimeDelta::seconds(1);
/// Upper bound of the random advance applied to a renewal time.
pub const MAX_RENEWAL_JITTER: TimeDelta = TimeDelta::minutes(5);
/// Schedule used when the broker reported no expiry and no `rotationInterval` is set.
pub const UNKNOWN_EXPIRY_ROTATION: TimeDelta = TimeDelta::hours(24);
/// Default of the operator's minimum interval between two issues of one credential.
pub const DEFAULT_MIN_ISSUE_INTERVAL: TimeDelta = TimeDelta::seconds(30);

/// Why a credential is issued now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueReason {
    SecretMissing,
    SecretUnreadable,
    DataTampered,
    SpecChanged,
    ExpiryUnknown,
    RevokedExternally,
    RotateRequested,
    Expired,
    RenewalDue,
    /// A generate whose outcome is unknown may have revoked the stored client secret, which
    /// cannot be probed.
    OutcomeUnknown,
}

impl IssueReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretMissing => "SecretMissing",
            Self::SecretUnreadable => "SecretUnreadable",
            Self::DataTampered => "DataTampered",
            Self::SpecChanged => "SpecChanged",
            Self::ExpiryUnknown => "ExpiryUnknown",
            Self::RevokedExternally => "RevokedExternally",
            Self::RotateRequested => "RotateRequested",
            Self::Expired => "Expired",
            Self::RenewalDue => "RenewalDue",
            Self::OutcomeUnknown => "OutcomeUnknown",
        }
    }

    /// The Secret held ours but its data was changed or lost: the issue repairs it.
    pub fn is_repair(self) -> bool {
        matches!(self, Self::SecretUnreadable | Self::DataTampered)
    }
}

/// Why nothing is issued although something may be due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockReason {
    Suspended,
    SecretNotOwned,
    /// An older credential rotates the same sync client.
    SyncClientInUse,
}

/// Why the Secret is written again without a new credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteReason {
    /// The spec names another Secret: the credential held in the one it named before moves.
    SecretRenamed,
    /// The spec names other data keys.
    KeysRenamed,
    /// The fingerprint was made with a previous key or in an older format.
    RecordOutdated,
}

impl RewriteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretRenamed => "SecretRenamed",
            Self::KeysRenamed => "KeysRenamed",
            Self::RecordOutdated => "RecordOutdated",
        }
    }
}

/// Why the planner waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Nothing is due before the next renewal (or probe).
    Scheduled,
    /// A retryable failure: the next attempt for this trigger waits out the backoff.
    Backoff(IssueReason),
    /// An issue for this trigger would come sooner than the minimum interval allows.
    Throttled(IssueReason),
}

/// The planner's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Issue(IssueReason),
    /// Nothing to do until `until` (`None`: nothing is scheduled).
    Wait {
        until: Option<DateTime<Utc>>,
        why: WaitReason,
    },
    Blocked(BlockReason),
    /// Write the Secret again from the credential already held: nothing is minted.
    Rewrite(RewriteReason),
    /// Deliver the stored credential to the targets that do not hold it yet.
    Deliver,
    /// Probe the stored token with the broker.
    Verify,
    /// Check login, broker token and sync client without minting.
    Preflight,
}

/// Decides what to do now.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    if preflight_due(input) {
        return Plan::Preflight;
    }
    if input.policy.suspend {
        return Plan::Blocked(BlockReason::Suspended);
    }
    if *input.secret == SecretState::NotOwned {
        return Plan::Blocked(BlockReason::SecretNotOwned);
    }
    // A target holding a dead token comes first; it mints nothing.
    if delivery_due(input) {
        return Plan::Deliver;
    }
    if input.sync_client_taken {
        return Plan::Blocked(BlockReason::SyncClientInUse);
    }
    let manual = is_new_rotate_request(input);
    if let Some(trigger) = issue_trigger(input, manual) {
        return match issue_or_hold(input, trigger, manual) {
            Plan::Issue(trigger) if is_throttled(input) => Plan::Wait {
                until: throttle_end(input).map(|at| wake(input, at)),
                why: WaitReason::Throttled(trigger),
            },
            decision => decision,
        };
    }
    if let Some(reason) = rewrite_due(input) {
        return Plan::Rewrite(reason);
    }
    scheduled(input)
}

/// A trigger is there: issue, unless a failure holds it back. No failure holds it back for
/// good: one that needs a change is retried on a slow backoff, and at once when the spec or the
/// broker changed or a new rotate request came.
fn issue_or_hold(input: &PlanInput<'_>, trigger: IssueReason, manual: bool) -> Plan {
    // A rotate request is attempted at once once; after a failure its retries back off.
    let fresh_request = manual && input.requests.rotate != input.requests.rotate_attempted;
    let failures = &input.failures;
    let changed = failures.generation != Some(input.generation) || input.broker_changed;
    if fresh_request || failures.attempts == 0 || failures.category.is_none() {
        return Plan::Issue(trigger);
    }
    if failures.category == Some(FailureCategory::Permanent) && changed {
        return Plan::Issue(trigger);
    }
    match retry_time(input) {
        Some(at) if at > input.now => Plan::Wait {
            until: Some(wake(input, at)),
            why: WaitReason::Backoff(trigger),
        },
        _ => Plan::Issue(trigger),
    }
}

/// The Secret holds the right credential but not in the right place or form: write it again.
fn rewrite_due(input: &PlanInput<'_>) -> Option<RewriteReason> {
    match input.secret {
        SecretState::Missing if input.held_elsewhere.is_some() => {
            Some(RewriteReason::SecretRenamed)
        }
        SecretState::Owned(record) if !record.layout_current => Some(RewriteReason::KeysRenamed),
        SecretState::Owned(record) if !record.fingerprint_current => {
            Some(RewriteReason::RecordOutdated)
        }
        _ => None,
    }
}

/// The record the schedule is read from: the Secret's, or, when the Secret the spec names is
/// missing, the one of the credential held in the Secret it named before.
fn effective_record<'a>(input: &PlanInput<'a>) -> Option<&'a Record> {
    match input.secret {
        SecretState::Owned(record) => Some(record),
        SecretState::Missing => input.held_elsewhere,
        SecretState::Unreadable | SecretState::NotOwned => None,
    }
}

/// Nothing to issue: probe the token if that is due, else wait for the renewal, the probe or
/// the expiry (Ready turns False at the expiry, whatever else holds).
fn scheduled(input: &PlanInput<'_>) -> Plan {
    let Some(record) = effective_record(input) else {
        return Plan::Wait {
            until: input.delivery_due,
            why: WaitReason::Scheduled,
        };
    };
    let renewal = renewal_time(input.policy, record, input.jitter_seed);
    let verify = next_verification(input, record);
    if verify.is_some_and(|at| at <= input.now) {
        return Plan::Verify;
    }
    let until = match (renewal, verify) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Plan::Wait {
        until: until.or(input.delivery_due).map(|at| wake(input, at)),
        why: WaitReason::Scheduled,
    }
}

/// `at`, or what comes first and is still ahead: the expiry of the stored credential (Ready
/// turns False then) or the next delivery attempt.
fn wake(input: &PlanInput<'_>, at: DateTime<Utc>) -> DateTime<Utc> {
    let mut at = at;
    if let Some(Expiry::At(expires_at)) = effective_record(input).map(|r| &r.expiry)
        && *expires_at > input.now
    {
        at = at.min(*expires_at);
    }
    if let Some(delivery) = input.delivery_due.filter(|due| *due > input.now) {
        at = at.min(delivery);
    }
    at
}

/// A delivery of the intact stored credential is due now.
fn delivery_due(input: &PlanInput<'_>) -> bool {
    input.delivery_due.is_some_and(|at| at <= input.now)
        && matches!(input.secret, SecretState::Owned(record) if record.data_intact)
}

fn is_new_rotate_request(input: &PlanInput<'_>) -> bool {
    input
        .requests
        .rotate
        .is_some_and(|request| Some(request) != input.requests.rotate_served)
}

/// A new preflight request, or a credential created suspended that was never checked.
fn preflight_due(input: &PlanInput<'_>) -> bool {
    let requested = input
        .requests
        .preflight
        .is_some_and(|request| Some(request) != input.requests.preflight_served);
    let staged = input.policy.suspend
        && !input.requests.preflight_ran
        && *input.secret == SecretState::Missing;
    requested || staged
}

/// The first policy that says a new credential is needed. Only these mint: no credential yet, a
/// different identity (broker, directory, type), the schedule, a rotate request, a credential
/// missing, unreadable, tampered with, proven revoked, or whose fate is unknown.
fn issue_trigger(input: &PlanInput<'_>, manual_request: bool) -> Option<IssueReason> {
    let record = match (input.secret, input.held_elsewhere) {
        (SecretState::Missing, None) => return Some(IssueReason::SecretMissing),
        (SecretState::Missing, Some(held)) => held,
        (SecretState::Unreadable, _) => return Some(IssueReason::SecretUnreadable),
        (SecretState::NotOwned, _) => return None,
        (SecretState::Owned(record), _) => record,
    };
    if !record.data_intact {
        return Some(IssueReason::DataTampered);
    }
    if record.spec_hash.as_deref() != Some(input.policy.spec_hash.as_str()) {
        return Some(IssueReason::SpecChanged);
    }
    if input.policy.credential_type == CredentialType::AccessToken
        && record.expiry == Expiry::Missing
    {
        return Some(IssueReason::ExpiryUnknown);
    }
    // The record keeps whole seconds: only a probe a full second after the recorded issue time
    // is certainly about this credential (not the one it replaced in the same second).
    if input.last_verification.is_some_and(|v| {
        v.revoked
            && record
                .issued_at
                .checked_add_signed(TimeDelta::seconds(1))
                .is_some_and(|issued| v.at >= issued)
    }) {
        return Some(IssueReason::RevokedExternally);
    }
    if manual_request {
        return Some(IssueReason::RotateRequested);
    }
    if let Expiry::At(expires_at) = record.expiry
        && input.now >= expires_at
    {
        return Some(IssueReason::Expired);
    }
    // A client secret cannot be probed: once a generate that may have revoked it can no longer
    // land, it is replaced.
    if input.policy.credential_type == CredentialType::ClientSecret
        && input
            .verify_after
            .is_some_and(|at| input.now >= at && record.issued_at < at)
    {
        return Some(IssueReason::OutcomeUnknown);
    }
    match renewal_time(input.policy, record, input.jitter_seed) {
        Some(renewal) if input.now >= renewal => Some(IssueReason::RenewalDue),
        _ => None,
    }
}

/// Whether the minimum interval since the last issue holds a new one back. An issue time in the
/// future (a clock jump, an edited status) is not trusted: it would hold issues forever.
fn is_throttled(input: &PlanInput<'_>) -> bool {
    last_trusted_issue(input)
        .is_some_and(|last| input.now.signed_duration_since(last) < input.min_issue_interval)
}

/// When the minimum interval since the last issue ends (`None`: beyond what a date holds).
fn throttle_end(input: &PlanInput<'_>) -> Option<DateTime<Utc>> {
    last_trusted_issue(input)?.checked_add_signed(input.min_issue_interval)
}

fn last_trusted_issue(input: &PlanInput<'_>) -> Option<DateTime<Utc>> {
    input.last_issued_at.filter(|at| *at <= input.now)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
