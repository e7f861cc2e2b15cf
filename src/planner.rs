//! The pure planner: from the spec, the Secret's record, the failure history, the requests on the
//! resource and the current time it decides to issue now, wait until a time, stay blocked, probe
//! the stored token, or run a preflight. No I/O and no clock reads: `now` and the jitter seed are
//! inputs, so every decision is reproducible in a table test.
//!
//! The decision is a chain of small policies, cert-manager style; the first that triggers wins.
//! All time arithmetic is checked: no spec, record or broker value can overflow it.

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::CredentialType;

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
    /// How often the stored token is probed with the broker (`None`: never).
    pub verify_interval: Option<TimeDelta>,
    /// Hash of the identity the credential is issued for (broker, directory, type).
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
    /// The data and the record still match the fingerprint written with them.
    pub data_intact: bool,
    /// The data is stored under the keys the spec names now.
    pub layout_current: bool,
    /// The fingerprint was made with the current key, in the current format.
    pub fingerprint_current: bool,
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

/// How a failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCategory {
    /// Needs a change (the spec, the broker or its Secrets, vCenter's privileges, the broker's
    /// sync clients): retried on a slow backoff, and at once when the spec or the broker changes
    /// or a new rotate request comes.
    Permanent,
    /// May heal by itself: broker down, timeouts, authentication, Kubernetes write errors.
    Retryable,
}

/// The failures since the last success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub attempts: u32,
    pub last_failure_time: Option<DateTime<Utc>>,
    pub category: Option<FailureCategory>,
    pub generation: Option<i64>,
    /// The retry time recorded with the last failure: a broker's `Retry-After` may have pushed it
    /// past the backoff, and it is kept (at most [`MAX_RETRY_AFTER`] after the failure).
    pub not_before: Option<DateTime<Utc>>,
}

/// Longest wait a broker's `Retry-After` may impose.
pub const MAX_RETRY_AFTER: TimeDelta = TimeDelta::hours(1);

/// Values people set in annotations, and what status says was done with them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests<'a> {
    /// `syncclient.io/rotate-request`.
    pub rotate: Option<&'a str>,
    /// The rotate request last served (issued, or failed for good).
    pub rotate_served: Option<&'a str>,
    /// The rotate request last attempted: its retries follow the backoff.
    pub rotate_attempted: Option<&'a str>,
    /// `syncclient.io/preflight-request`.
    pub preflight: Option<&'a str>,
    /// The preflight request last served.
    pub preflight_served: Option<&'a str>,
    /// Whether any preflight ever ran for this resource.
    pub preflight_ran: bool,
}

/// The last probe of the stored token with the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub at: DateTime<Utc>,
    /// The broker refused the token: someone else revoked it.
    pub revoked: bool,
}

/// Everything the planner decides from.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    pub now: DateTime<Utc>,
    pub generation: i64,
    pub policy: &'a Policy,
    pub secret: &'a SecretState,
    pub failures: Failures,
    pub requests: Requests<'a>,
    /// When a credential was last issued for this resource (from the Secret or status).
    pub last_issued_at: Option<DateTime<Utc>>,
    pub last_verification: Option<Verification>,
    /// An older credential rotates the same sync client: this one must never issue.
    pub sync_client_taken: bool,
    /// At most one issue per this interval, whatever asks for it.
    pub min_issue_interval: TimeDelta,
    /// The record of the credential held in the Secret the spec named before, when the Secret
    /// it names now is missing: that credential is moved, not re-issued.
    pub held_elsewhere: Option<&'a Record>,
    /// The broker or its Secrets changed since the last failure: a failure that waits for a
    /// change is retried at once.
    pub broker_changed: bool,
    /// A probe of the stored token is owed at this time, whatever `verifyInterval` says: a
    /// generate the operator gave up on may have landed at the broker until then, or the token
    /// replaced a revoked one and must be seen accepted.
    pub verify_after: Option<DateTime<Utc>>,
    /// The earliest time a delivery of the stored credential that is not complete may be tried
    /// (`None`: every delivery holds it, or there are none).
    pub delivery_due: Option<DateTime<Utc>>,
    /// Stable per resource (derived from its uid); spreads renewals, probes and retries.
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

/// When the credential in `record` should be renewed, jitter included; `None`: never scheduled.
pub fn renewal_time(policy: &Policy, record: &Record, jitter_seed: u64) -> Option<DateTime<Utc>> {
    let by_interval = policy
        .rotation_interval
        .and_then(|interval| record.issued_at.checked_add_signed(interval));
    let by_expiry = match (policy.credential_type, &record.expiry) {
        (CredentialType::AccessToken, Expiry::At(expires_at)) => {
            let lifetime = expires_at
                .signed_duration_since(record.issued_at)
                .max(TimeDelta::zero());
            let before = match policy.renew {
                RenewPolicy::Before(before) if before > TimeDelta::zero() && before < lifetime => {
                    Some(before)
                }
                // A renewBefore longer than the lifetime would renew at once, forever: fall back
                // to the default, as cert-manager does.
                RenewPolicy::Default | RenewPolicy::Before(_) => Some(lifetime / 3),
                RenewPolicy::Percentage(percent) => lifetime
                    .checked_mul(percent.clamp(1, 99))
                    .map(|scaled| scaled / 100),
            };
            before.and_then(|before| expires_at.checked_sub_signed(before))
        }
        (CredentialType::AccessToken, Expiry::NotReported | Expiry::Missing) => {
            record.issued_at.checked_add_signed(UNKNOWN_EXPIRY_ROTATION)
        }
        (CredentialType::ClientSecret, _) => None,
    };
    let renewal = match (by_interval, by_expiry) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let window = renewal
        .signed_duration_since(record.issued_at)
        .max(TimeDelta::zero());
    let bound = (window / 10).min(MAX_RENEWAL_JITTER);
    let advance = scale(
        bound,
        unit_fraction(mix(jitter_seed, record.revision.unsigned_abs())),
    );
    renewal.checked_sub_signed(advance)
}

/// When the stored access token is next probed: a probe owed since a given time (a generate
/// that may still have landed, a token that replaced a revoked one), else `verifyInterval` after
/// the last probe of this credential (or its issue), advanced by up to a tenth so probes of many
/// credentials spread.
fn next_verification(input: &PlanInput<'_>, record: &Record) -> Option<DateTime<Utc>> {
    if input.policy.credential_type != CredentialType::AccessToken || !record.data_intact {
        return None;
    }
    let last = input
        .last_verification
        .map(|v| v.at)
        .filter(|at| *at >= record.issued_at && *at <= input.now);
    let owed = input
        .verify_after
        .filter(|at| last.is_none_or(|last| last < *at));
    let interval = input.policy.verify_interval;
    let regular = interval.and_then(|interval| {
        let since = last.unwrap_or(record.issued_at);
        let advance = scale(
            interval / 10,
            unit_fraction(mix(
                input.jitter_seed ^ 0x5645_5249_4659,
                since.timestamp().unsigned_abs(),
            )),
        );
        since
            .checked_add_signed(interval)
            .and_then(|at| at.checked_sub_signed(advance))
    });
    match (owed, regular) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When the next attempt after a failure may run: jittered exponential backoff, slow for a
/// failure that needs a change, fast otherwise, and never later than halfway to the expiry of
/// the credential in the Secret, so several attempts still happen while it works.
pub fn retry_time(input: &PlanInput<'_>) -> Option<DateTime<Utc>> {
    let last = input.failures.last_failure_time?;
    let attempts = input.failures.attempts.max(1);
    let (base, cap, floor) = match input.failures.category {
        Some(FailureCategory::Permanent) => {
            (SLOW_BACKOFF_BASE, SLOW_BACKOFF_CAP, SLOW_MIN_RETRY_DELAY)
        }
        _ => (BACKOFF_BASE, BACKOFF_CAP, MIN_RETRY_DELAY),
    };
    let mut delay = jittered_backoff(base, cap, attempts, input.jitter_seed).max(floor);
    if let Some(Record {
        expiry: Expiry::At(expires_at),
        ..
    }) = effective_record(input)
        && *expires_at > last
    {
        delay = delay.min((expires_at.signed_duration_since(last) / 2).max(floor));
    }
    let backoff = last.checked_add_signed(delay)?;
    let asked = input.failures.not_before.filter(|at| {
        last.checked_add_signed(MAX_RETRY_AFTER)
            .is_some_and(|latest| *at <= latest)
    });
    Some(asked.map_or(backoff, |asked| asked.max(backoff)))
}

/// `base` doubled per attempt after the first, capped, then jittered down to between 75% and
/// 100%, so retries of many credentials spread out.
pub fn jittered_backoff(base: TimeDelta, cap: TimeDelta, attempts: u32, seed: u64) -> TimeDelta {
    let attempts = attempts.max(1);
    let exponent = (attempts - 1).min(16);
    let raw = base.checked_mul(1_i32 << exponent).unwrap_or(cap).min(cap);
    let fraction = 0.75 + 0.25 * unit_fraction(mix(seed, u64::from(attempts)));
    scale(raw, fraction)
}

fn scale(delta: TimeDelta, fraction: f64) -> TimeDelta {
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let ms = (delta.num_milliseconds() as f64 * fraction) as i64;
    TimeDelta::try_milliseconds(ms).unwrap_or(delta)
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
mod proptests;
#[cfg(test)]
mod tests;
