//! The pure planner: from the spec, the Secret's record, the failure history and the current
//! time it decides to issue now, wait until a time, or stay blocked. No I/O and no clock reads:
//! `now` and the jitter seed are inputs, so every decision is reproducible in a table test.
//!
//! The decision is a chain of small policies, cert-manager style; the first trigger wins.

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::CredentialType;

/// Backoff after the first failure.
pub const BACKOFF_BASE: TimeDelta = TimeDelta::seconds(5);
/// Longest wait between two retries of a retryable failure.
pub const BACKOFF_CAP: TimeDelta = TimeDelta::minutes(10);
/// Shortest wait before a retry, whatever the expiry cap says.
pub const MIN_RETRY_DELAY: TimeDelta = TimeDelta::seconds(1);
/// Upper bound of the random advance applied to a renewal time.
pub const MAX_RENEWAL_JITTER: TimeDelta = TimeDelta::minutes(5);
/// Schedule used when the broker reported no expiry and no `rotationInterval` is set.
pub const UNKNOWN_EXPIRY_ROTATION: TimeDelta = TimeDelta::hours(24);

/// When to renew before expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewPolicy {
    /// One third of the issued lifetime before expiry.
    Default,
    Before(TimeDelta),
    /// Percentage (1-99) of the issued lifetime remaining at renewal.
    Percentage(i32),
}

/// The parts of the spec the planner needs, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub credential_type: CredentialType,
    pub renew: RenewPolicy,
    pub rotation_interval: Option<TimeDelta>,
    pub suspend: bool,
    /// Hash of every spec field that changes what is issued (broker, directory, type, TTL, keys).
    pub spec_hash: String,
}

/// What the Secret's annotations say about the credential it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    At(DateTime<Utc>),
    /// The broker answered without `access_token_expire_in` (or for a client secret).
    NotReported,
    /// The annotation is absent or unreadable.
    Missing,
}

/// The record the operator keeps in an owned Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub issued_at: DateTime<Utc>,
    pub expiry: Expiry,
    pub revision: i64,
    pub spec_hash: Option<String>,
    /// The data still matches the fingerprint written with it.
    pub data_intact: bool,
}

/// What the Secret with the configured name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretState {
    Missing,
    /// Exists without this resource as its controller owner: never overwritten.
    NotOwned,
    /// Owned, but its record annotations are absent or unreadable.
    Unreadable,
    Owned(Record),
}

/// How a failure is retried, from the broker client's and the Kubernetes layer's error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCategory {
    /// Needs a spec change: the broker rejected the request (400), denied it (403), found no sync
    /// client (404) or several (409).
    Permanent,
    /// May heal by itself: broker down, timeouts, auth (the broker's Secret may be fixed), a
    /// broker resource not ready yet, Kubernetes write errors.
    Retryable,
}

/// The failures since the last success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub attempts: u32,
    pub last_failure_time: Option<DateTime<Utc>>,
    pub category: Option<FailureCategory>,
    pub generation: Option<i64>,
}

/// Everything the planner decides from.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub now: DateTime<Utc>,
    pub generation: i64,
    pub policy: &'a Policy,
    pub secret: &'a SecretState,
    pub failures: Failures,
    pub rotate_request: Option<&'a str>,
    pub observed_rotate_request: Option<&'a str>,
    /// Stable per resource (derived from its uid); spreads renewals and retries.
    pub jitter_seed: u64,
}

/// Why a credential is issued now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueReason {
    SecretMissing,
    SecretUnreadable,
    DataTampered,
    SpecChanged,
    ExpiryUnknown,
    RotateRequested,
    Expired,
    RenewalDue,
}

impl IssueReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretMissing => "SecretMissing",
            Self::SecretUnreadable => "SecretUnreadable",
            Self::DataTampered => "DataTampered",
            Self::SpecChanged => "SpecChanged",
            Self::ExpiryUnknown => "ExpiryUnknown",
            Self::RotateRequested => "RotateRequested",
            Self::Expired => "Expired",
            Self::RenewalDue => "RenewalDue",
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
    /// A permanent failure at this generation; waits for a spec change or a new rotate request.
    PermanentFailure,
}

/// The planner's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Issue(IssueReason),
    /// Nothing to do until `until` (`None`: nothing is scheduled).
    Wait {
        until: Option<DateTime<Utc>>,
        /// Set when waiting out a backoff for this trigger.
        backoff_for: Option<IssueReason>,
    },
    Blocked(BlockReason),
}

/// Decides what to do now.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let policy = input.policy;
    if policy.suspend {
        return Plan::Blocked(BlockReason::Suspended);
    }
    if *input.secret == SecretState::NotOwned {
        return Plan::Blocked(BlockReason::SecretNotOwned);
    }
    let manual_request = is_new_rotate_request(input);
    let Some(trigger) = issue_trigger(input, manual_request) else {
        let until = match input.secret {
            SecretState::Owned(record) => renewal_time(policy, record, input.jitter_seed),
            _ => None,
        };
        return Plan::Wait {
            until,
            backoff_for: None,
        };
    };
    if manual_request || input.failures.attempts == 0 {
        return Plan::Issue(trigger);
    }
    match input.failures.category {
        Some(FailureCategory::Permanent) if input.failures.generation == Some(input.generation) => {
            Plan::Blocked(BlockReason::PermanentFailure)
        }
        Some(FailureCategory::Permanent) | None => Plan::Issue(trigger),
        Some(FailureCategory::Retryable) => match retry_time(input) {
            Some(at) if at > input.now => Plan::Wait {
                until: Some(at),
                backoff_for: Some(trigger),
            },
            _ => Plan::Issue(trigger),
        },
    }
}

fn is_new_rotate_request(input: &PlanInput<'_>) -> bool {
    input
        .rotate_request
        .is_some_and(|request| Some(request) != input.observed_rotate_request)
}

/// The first policy that says the Secret needs a new credential.
fn issue_trigger(input: &PlanInput<'_>, manual_request: bool) -> Option<IssueReason> {
    let record = match input.secret {
        SecretState::Missing => return Some(IssueReason::SecretMissing),
        SecretState::Unreadable => return Some(IssueReason::SecretUnreadable),
        SecretState::NotOwned => return None,
        SecretState::Owned(record) => record,
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
    if manual_request {
        return Some(IssueReason::RotateRequested);
    }
    if let Expiry::At(expires_at) = record.expiry
        && input.now >= expires_at
    {
        return Some(IssueReason::Expired);
    }
    match renewal_time(input.policy, record, input.jitter_seed) {
        Some(renewal) if input.now >= renewal => Some(IssueReason::RenewalDue),
        _ => None,
    }
}

/// When the credential in `record` should be renewed, jitter included; `None`: never scheduled.
pub fn renewal_time(policy: &Policy, record: &Record, jitter_seed: u64) -> Option<DateTime<Utc>> {
    let by_interval = policy
        .rotation_interval
        .map(|interval| record.issued_at + interval);
    let by_expiry = match (policy.credential_type, &record.expiry) {
        (CredentialType::AccessToken, Expiry::At(expires_at)) => {
            let lifetime = *expires_at - record.issued_at;
            let before = match policy.renew {
                RenewPolicy::Before(before) if before < lifetime => before,
                // A renewBefore longer than the lifetime would renew at once, forever: fall back
                // to the default, as cert-manager does.
                RenewPolicy::Default | RenewPolicy::Before(_) => lifetime / 3,
                RenewPolicy::Percentage(percent) => lifetime * percent / 100,
            };
            Some(*expires_at - before)
        }
        (CredentialType::AccessToken, Expiry::NotReported | Expiry::Missing) => {
            Some(record.issued_at + UNKNOWN_EXPIRY_ROTATION)
        }
        (CredentialType::ClientSecret, _) => None,
    };
    let renewal = match (by_interval, by_expiry) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let window = (renewal - record.issued_at).max(TimeDelta::zero());
    let bound = (window / 10).min(MAX_RENEWAL_JITTER);
    let advance = scale(
        bound,
        unit_fraction(mix(jitter_seed, record.revision.unsigned_abs())),
    );
    Some(renewal - advance)
}

/// When the next attempt after a retryable failure may run.
pub fn retry_time(input: &PlanInput<'_>) -> Option<DateTime<Utc>> {
    let last = input.failures.last_failure_time?;
    let attempts = input.failures.attempts.max(1);
    let exponent = (attempts - 1).min(16);
    let raw = (BACKOFF_BASE * (1_i32 << exponent)).min(BACKOFF_CAP);
    // Jitter in [75%, 100%] of the delay, so retries of many credentials spread out.
    let fraction = 0.75 + 0.25 * unit_fraction(mix(input.jitter_seed, u64::from(attempts)));
    let mut delay = scale(raw, fraction).max(MIN_RETRY_DELAY);
    // Retry at the latest halfway to the current credential's expiry, so several attempts still
    // happen while the old credential works.
    if let SecretState::Owned(Record {
        expiry: Expiry::At(expires_at),
        ..
    }) = input.secret
        && *expires_at > last
    {
        delay = delay.min(((*expires_at - last) / 2).max(MIN_RETRY_DELAY));
    }
    Some(last + delay)
}

fn scale(delta: TimeDelta, fraction: f64) -> TimeDelta {
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let ms = (delta.num_milliseconds() as f64 * fraction) as i64;
    TimeDelta::milliseconds(ms)
}

/// splitmix64: a fixed, well-spread mix of the seed and a counter.
fn mix(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps to [0, 1).
fn unit_fraction(value: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let fraction = (value >> 11) as f64 / (1_u64 << 53) as f64;
    fraction
}

#[cfg(test)]
mod tests;
