//! What the planner decides from: the spec's policy, the Secret's record, the failures so far,
//! the requests on the resource and the last probe, gathered into one [`PlanInput`].

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::CredentialType;

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
