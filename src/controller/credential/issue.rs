//! Issue: resolve the broker, prove the Secret write with a dry run, generate (which revokes the
//! live credential) only while this process may, and store the new credential at once. If that
//! write fails the credential is kept and the write retried, never the generate. Then events,
//! metrics and rollouts; or, on failure, the backoff the planner sets.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use sync_client_broker::{
    CredentialKind, GenerateRequest, IssuedCredential, ReportedLifetime, RevokeGuard,
};

use super::gather::{self, Observation};
use super::pending::{self, Pending};
use super::write::{SecretWrite, WriteError};
use super::{events, requeue_at, rollout};
use crate::api::{CredentialType, token_ttl_minutes};
use crate::controller::Context;
use crate::controller::brokers::ResolvedBroker;
use crate::controller::failure::{Failure, FailureReason};
use crate::controller::status::credential::Outcome;
use crate::planner::{self, Expiry, IssueReason, Policy, Record};
use crate::secret::{self, CredentialData, HeldValues, IssuedValues, KeyNames, RecordMeta};

/// The longest lifetime a broker may report for a credential; longer ones are cut to it.
pub const MAX_CREDENTIAL_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// When a reconcile the fence stopped looks again (if this replica still runs then).
const FENCED_RETRY: Duration = Duration::from_secs(5);

/// A credential the broker issued, ready to be written.
struct Minted {
    record: Record,
    fingerprint: String,
    data: CredentialData,
    meta: RecordMeta,
    /// The broker answered with a lifetime that cannot be used as is.
    anomaly: Option<Failure>,
}

/// Issues for `trigger` and says what happened and when to look again.
pub async fn run(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
    trigger: IssueReason,
) -> (Outcome, Action) {
    let revision = next_revision(observation);
    let minted = match mint(ctx, observation, policy, (revision, trigger)).await {
        Ok(minted) => minted,
        Err(failure) if failure.fenced => return fenced(observation, trigger, failure, revision),
        Err(failure) => return failed(ctx, observation, policy, trigger, failure, revision).await,
    };
    let expires_at = match minted.record.expiry {
        Expiry::At(at) => Some(at),
        _ => None,
    };
    let pending = Pending {
        data: minted.data,
        meta: minted.meta,
        record: minted.record,
        based_on: observation.current_revision(),
        trigger,
        fingerprint: minted.fingerprint,
        rotate_request: observation.rotate_request.clone(),
        expires_at,
        attempts: 0,
        next_attempt: observation.now,
    };
    match (
        pending::store(ctx, observation, pending).await,
        minted.anomaly,
    ) {
        // Stored, since the old credential is revoked; reported as the broker's failure.
        (
            Ok((
                Outcome::Issued {
                    record,
                    fingerprint,
                    ..
                },
                _,
            )),
            Some(anomaly),
        ) => {
            let mut outcome = failed(ctx, observation, policy, trigger, anomaly, revision).await;
            // The anomaly is the broker's answer, not an unknown outcome: nothing may land later.
            if let Outcome::Failed { verify_after, .. } = &mut outcome.0 {
                *verify_after = None;
            }
            if let Outcome::Failed { stored, .. } = &mut outcome.0 {
                *stored = Some((record, fingerprint));
            }
            outcome
        }
        (Ok(outcome) | Err(outcome), _) => outcome,
    }
}

/// The outcome of a stored credential: events, metrics, rollouts and the next renewal.
pub(super) async fn issued(
    ctx: &Context,
    observation: &Observation,
    pending: Pending,
) -> (Outcome, Action) {
    let policy = observation.policy.as_ref().ok();
    let renewal_time =
        policy.and_then(|p| planner::renewal_time(p, &pending.record, observation.jitter_seed));
    after_issue(ctx, observation, pending.trigger, &pending.record).await;
    // The token in hand goes to the delivery targets at once: the one they hold is dead.
    let deliveries = match HeldValues::read(
        &pending.data,
        &pending.meta.keys,
        pending.meta.credential_type,
    ) {
        Some(values) if super::deliver::wanted(observation) => {
            super::deliver::deliver(ctx, observation, &values, pending.record.revision).await
        }
        _ => Vec::new(),
    };
    let outcome = Outcome::Issued {
        record: pending.record,
        renewal_time,
        rotate_request: pending.rotate_request,
        trigger: pending.trigger,
        fingerprint: pending.fingerprint,
        deliveries,
    };
    (outcome, requeue_at(renewal_time, observation.now))
}

/// The fence stopped the generate before it was sent: nothing happened, so no metric or event;
/// the caller writes no status either ([`Failure::fenced`]). A replica shutting down or deposed
/// stops soon; the next leader looks again.
fn fenced(
    observation: &Observation,
    trigger: IssueReason,
    failure: Failure,
    revision: i64,
) -> (Outcome, Action) {
    tracing::info!(
        namespace = %observation.namespace(), name = %observation.name(),
        trigger = trigger.as_str(), detail = %failure.message,
        "generate not sent: fenced"
    );
    let outcome = Outcome::Failed {
        failure,
        trigger,
        next_retry: None,
        rotate_request: observation.rotate_request.clone(),
        revision,
        stored: None,
        verify_after: None,
    };
    (outcome, Action::requeue(FENCED_RETRY))
}

/// A failed attempt: its report and its backoff.
async fn failed(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
    trigger: IssueReason,
    failure: Failure,
    revision: i64,
) -> (Outcome, Action) {
    ctx.metrics.record_rotation(failure.reason.as_str());
    tracing::warn!(
        namespace = %observation.namespace(), name = %observation.name(),
        reason = %failure.reason, trigger = trigger.as_str(), detail = %failure.message,
        "issuing failed"
    );
    events::issue_failed(ctx, observation, &failure).await;
    let next_retry = next_retry(observation, policy, &failure);
    // A generate that went unanswered may still land at the broker, and revoke whatever the
    // Secret holds then: the stored token is checked once that can no longer happen.
    let verify_after = (failure.reason == FailureReason::RotationStateUnknown)
        .then(|| {
            observation
                .now
                .checked_add_signed(ctx.unknown_outcome_window)
        })
        .flatten();
    let outcome = Outcome::Failed {
        failure,
        trigger,
        next_retry,
        rotate_request: observation.rotate_request.clone(),
        revision,
        stored: None,
        verify_after,
    };
    (outcome, requeue_at(next_retry, observation.now))
}

/// When a failure is tried again: a slow backoff for one that needs a change (and at once when
/// the spec or the broker changes), a fast one otherwise. A broker's `Retry-After` is honoured
/// when it asks for longer.
fn next_retry(
    observation: &Observation,
    policy: &Policy,
    failure: &Failure,
) -> Option<DateTime<Utc>> {
    let mut input = observation.plan_input(policy, TimeDelta::zero());
    input.failures.attempts = input.failures.attempts.saturating_add(1);
    input.failures.last_failure_time = Some(observation.now);
    input.failures.category = Some(failure.category());
    input.failures.generation = Some(observation.generation());
    let backoff = planner::retry_time(&input)?;
    let asked = failure
        .retry_after
        .and_then(|d| TimeDelta::from_std(d).ok())
        .and_then(|d| observation.now.checked_add_signed(d));
    Some(asked.map_or(backoff, |asked| asked.max(backoff)))
}

/// Resolves the broker, proves the write, generates, and renders the Secret.
async fn mint(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
    (revision, trigger): (i64, IssueReason),
) -> Result<Minted, Failure> {
    let cr = &observation.cr;
    let broker = gather::broker(ctx, observation).await?;
    let request = GenerateRequest {
        kind: match cr.spec.credential_type {
            CredentialType::AccessToken => CredentialKind::AccessToken,
            CredentialType::ClientSecret => CredentialKind::ClientSecret,
        },
        token_ttl_minutes: token_ttl_minutes(cr).map_err(|e| Failure::from_spec(&e))?,
    };
    // Whole seconds: the Secret's annotations record seconds, and status must match them.
    let issued_at = observation.now.trunc_subsecs(0);
    let keys = KeyNames::from_spec(cr.spec.keys.as_ref());
    let issue_id = secret::new_issue_id();
    let meta = |expires_at| RecordMeta {
        issued_at,
        expires_at,
        revision,
        spec_hash: policy.spec_hash.clone(),
        rotate_request: observation.rotate_request.clone(),
        credential_type: cr.spec.credential_type,
        keys: keys.clone(),
        issue_id: issue_id.clone(),
    };
    prove_write(ctx, observation, &keys, &meta(None), &broker.scim_url).await?;
    // The delivery targets hold a token that still works: a mint is allowed only when each
    // could take the new one. (An expired or revoked token protects nothing.)
    if protects_a_working_token(trigger) && super::deliver::wanted(observation) {
        super::deliver::check_before_mint(ctx, observation).await?;
    }
    if !ctx.pending.has_room() {
        return Err(Failure::new(
            FailureReason::SecretWritesBacklogged,
            "too many generated credentials wait to be stored; none is generated until they are",
        ));
    }
    let issued = generate(ctx, &broker, &cr.spec.directory_id, &request).await?;
    // From here on the old credential is revoked: the new one must reach the Secret now.
    let floor = ctx
        .min_issue_interval
        .checked_mul(2)
        .unwrap_or(TimeDelta::MAX);
    let (lifetime, anomaly) = judge_lifetime(&issued, floor);
    let expires_at = lifetime
        .and_then(|d| TimeDelta::from_std(d).ok())
        .and_then(|d| issued_at.checked_add_signed(d));
    let data = secret_data(&keys, &issued, expires_at, &broker.scim_url);
    Ok(Minted {
        record: Record {
            issued_at,
            expiry: expires_at.map_or(Expiry::NotReported, Expiry::At),
            revision,
            spec_hash: Some(policy.spec_hash.clone()),
            data_intact: true,
            layout_current: true,
            fingerprint_current: true,
        },
        fingerprint: fingerprint(ctx, &issued),
        data,
        meta: meta(expires_at),
        anomaly,
    })
}

/// Sends the write that would store a credential as a server-side dry run, with placeholder
/// values, before every generate: an immutable Secret, a new admission policy or a quota would
/// otherwise be found only after the generate revoked the live credential. It costs one
/// request per issue.
async fn prove_write(
    ctx: &Context,
    observation: &Observation,
    keys: &KeyNames,
    meta: &RecordMeta,
    scim_url: &str,
) -> Result<(), Failure> {
    let placeholder = match observation.cr.spec.credential_type {
        CredentialType::AccessToken => IssuedValues::AccessToken {
            token: "dry-run",
            expires_at: Some(meta.issued_at),
            scim_url,
        },
        CredentialType::ClientSecret => IssuedValues::ClientSecret {
            client_id: "dry-run",
            client_secret: "dry-run",
        },
    };
    let desired = secret::render(
        &observation.cr,
        &observation.secret_name,
        &secret::credential_data(keys, &placeholder),
        meta,
        &ctx.fingerprint_keys,
    );
    let write = SecretWrite::new(ctx, observation, observation.current_revision());
    match write.dry_run(&desired).await {
        Ok(()) => Ok(()),
        Err(WriteError::Rejected(f) | WriteError::Failed(f) | WriteError::Foreign(f)) => Err(f),
        // Nothing was generated: the Secret is looked at again.
        Err(WriteError::Superseded(_)) => Err(Failure::new(
            FailureReason::SecretWriteFailed,
            "the dry run found the Secret changed meanwhile",
        )),
    }
}

/// One `generate_credentials` call, within the broker's concurrency limit. A new leader settles
/// first; then the fence is checked by the broker client right before each generate request,
/// and the whole chain has the issue deadline.
async fn generate(
    ctx: &Context,
    broker: &ResolvedBroker,
    directory_id: &str,
    request: &GenerateRequest,
) -> Result<IssuedCredential, Failure> {
    ctx.fence.settle().await;
    let _permit = broker.permit().await?;
    let may_revoke = || ctx.fence.may_revoke();
    let guard = RevokeGuard::new(ctx.fence.chain_deadline(), &may_revoke);
    broker
        .client
        .generate_credentials(directory_id, request, &guard)
        .await
        .map_err(|e| Failure::from_broker(&e))
}

/// The usable lifetime of an issued access token, cut to 10 years; zero, negative or below
/// `floor` is a broker anomaly (the token is stored, since the old one is revoked, and the issue
/// is retried with backoff).
fn judge_lifetime(
    issued: &IssuedCredential,
    floor: TimeDelta,
) -> (Option<Duration>, Option<Failure>) {
    let IssuedCredential::AccessToken { expires_in, .. } = issued else {
        return (None, None);
    };
    let lifetime = expires_in.clamped(MAX_CREDENTIAL_LIFETIME);
    let anomaly = |what: String| {
        Some(Failure {
            outcome_unknown: true,
            ..Failure::new(
                FailureReason::BrokerResponseInvalid,
                format!(
                    "the broker issued a token {what}; it is stored, and replaced with backoff"
                ),
            )
        })
    };
    match (*expires_in, lifetime) {
        (ReportedLifetime::Seconds(seconds), _) if seconds <= 0 => (
            lifetime,
            anomaly(format!(
                "already expired (access_token_expire_in {seconds})"
            )),
        ),
        (_, Some(d)) if TimeDelta::from_std(d).is_ok_and(|d| d < floor) => (
            lifetime,
            anomaly(format!(
                "that expires in {} s, too soon to rotate in time",
                d.as_secs()
            )),
        ),
        (ReportedLifetime::Unreadable, _) => {
            tracing::warn!(
                "the broker's access_token_expire_in is not a number; the token is rotated as one without an expiry"
            );
            (None, None)
        }
        _ => (lifetime, None),
    }
}

/// The broker's answer as Secret data.
fn secret_data(
    keys: &KeyNames,
    issued: &IssuedCredential,
    expires_at: Option<DateTime<Utc>>,
    scim_url: &str,
) -> CredentialData {
    let values = match issued {
        IssuedCredential::AccessToken { access_token, .. } => IssuedValues::AccessToken {
            token: access_token.expose(),
            expires_at,
            scim_url,
        },
        IssuedCredential::ClientSecret {
            client_id,
            client_secret,
        } => IssuedValues::ClientSecret {
            client_id,
            client_secret: client_secret.expose(),
        },
    };
    secret::credential_data(keys, &values)
}

/// A short keyed fingerprint of the credential for the history: enough to tell two apart,
/// useless to check guesses against.
fn fingerprint(ctx: &Context, issued: &IssuedCredential) -> String {
    let value = match issued {
        IssuedCredential::AccessToken { access_token, .. } => access_token.expose(),
        IssuedCredential::ClientSecret { client_secret, .. } => client_secret.expose(),
    };
    ctx.fingerprint_keys.short_mac(value)
}

/// Whether the credential the Secret (and the delivery targets) hold may still work before this
/// issue: then a target that could not take the new one blocks the issue.
fn protects_a_working_token(trigger: IssueReason) -> bool {
    !matches!(
        trigger,
        IssueReason::Expired | IssueReason::RevokedExternally | IssueReason::OutcomeUnknown
    )
}

/// The revision after the one in the Secret (or in status, when the Secret is gone).
fn next_revision(observation: &Observation) -> i64 {
    observation
        .current_revision()
        .unwrap_or(0)
        .saturating_add(1)
}

/// Events, metrics and rollout restarts after a successful write.
async fn after_issue(
    ctx: &Context,
    observation: &Observation,
    trigger: IssueReason,
    record: &Record,
) {
    let (reason, note) = events::issued(
        trigger,
        &observation.state,
        record,
        &observation.secret_name,
    );
    ctx.metrics.record_rotation("success");
    tracing::info!(
        namespace = %observation.namespace(), name = %observation.name(),
        revision = record.revision, trigger = trigger.as_str(), "credential issued"
    );
    events::publish(ctx, &observation.cr, EventType::Normal, reason, &note).await;
    rollout::restart_targets(ctx, &observation.cr, observation.now).await;
}
