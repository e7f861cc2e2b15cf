//! Issue: resolve the broker, generate (which revokes the live credential), and write the new one
//! into the Secret at once, with its record. Then events, metrics and rollouts; or, on failure,
//! the backoff the planner sets.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use sync_client_broker::{CredentialKind, GenerateRequest, IssuedCredential};

use super::gather::Observation;
use super::{events, requeue_at, rollout, write};
use crate::api::{CredentialType, token_ttl_minutes};
use crate::controller::Context;
use crate::controller::brokers::ResolvedBroker;
use crate::controller::failure::Failure;
use crate::controller::status::credential::Outcome;
use crate::planner::{self, Expiry, FailureCategory, IssueReason, Policy, Record, SecretState};
use crate::secret::{self, CredentialData, IssuedValues, KeyNames, RecordMeta};

/// The longest lifetime a broker may report for a credential; longer ones are cut to it.
pub const MAX_CREDENTIAL_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(10 * 365 * 24 * 3600);

/// Issues for `trigger` and says what happened and when to look again.
pub async fn run(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
    trigger: IssueReason,
) -> (Outcome, Action) {
    let now = observation.now;
    let rotate_request = observation.rotate_request.clone();
    match mint_and_store(ctx, observation, policy).await {
        Ok(record) => {
            let renewal_time = planner::renewal_time(policy, &record, observation.jitter_seed);
            after_issue(ctx, observation, trigger, &record).await;
            let outcome = Outcome::Issued {
                record,
                renewal_time,
                rotate_request,
            };
            (outcome, requeue_at(renewal_time, now))
        }
        Err(failure) => {
            ctx.metrics.record_rotation(failure.reason.as_str());
            tracing::warn!(
                namespace = %observation.namespace(), name = %observation.name(),
                reason = %failure.reason, trigger = trigger.as_str(), message = %failure.message,
                "issuing failed"
            );
            events::issue_failed(ctx, observation, &failure).await;
            let next_retry = next_retry(observation, policy, &failure);
            let outcome = Outcome::Failed {
                failure,
                trigger,
                next_retry,
                rotate_request,
            };
            (outcome, requeue_at(next_retry, now))
        }
    }
}

/// When a retryable failure is tried again (permanent ones wait for a change).
fn next_retry(
    observation: &Observation,
    policy: &Policy,
    failure: &Failure,
) -> Option<DateTime<Utc>> {
    if failure.category() == FailureCategory::Permanent {
        return None;
    }
    let mut input = observation.plan_input(policy);
    input.failures.attempts = input.failures.attempts.saturating_add(1);
    input.failures.last_failure_time = Some(observation.now);
    input.failures.category = Some(failure.category());
    input.failures.generation = Some(observation.generation());
    planner::retry_time(&input)
}

/// Resolves the broker, generates, and writes the Secret at once.
async fn mint_and_store(
    ctx: &Context,
    observation: &Observation,
    policy: &Policy,
) -> Result<Record, Failure> {
    let cr = &observation.cr;
    let broker = ctx
        .brokers
        .resolve(
            &ctx.client,
            &observation.namespace(),
            cr.spec.broker_ref.kind,
            &cr.spec.broker_ref.name,
        )
        .await
        .map_err(|e| Failure::from_resolve(&e))?;
    let request = GenerateRequest {
        kind: match cr.spec.credential_type {
            CredentialType::AccessToken => CredentialKind::AccessToken,
            CredentialType::ClientSecret => CredentialKind::ClientSecret,
        },
        token_ttl_minutes: token_ttl_minutes(cr).map_err(|e| Failure::from_spec(&e))?,
    };
    let issued = generate(&broker, &cr.spec.directory_id, &request).await?;
    // From here on the old credential is revoked: the new one must reach the Secret now.
    // Whole seconds: the Secret's annotations record seconds, and status must match them.
    let issued_at = observation.now.trunc_subsecs(0);
    let keys = KeyNames::from_spec(cr.spec.keys.as_ref());
    let (data, expires_at) = secret_data(&keys, &issued, issued_at, &broker.scim_url);
    let meta = RecordMeta {
        issued_at,
        expires_at,
        revision: next_revision(observation),
        spec_hash: policy.spec_hash.clone(),
    };
    let desired = secret::render(
        cr,
        &observation.secret_name,
        &data,
        &meta,
        &ctx.fingerprint_key,
    );
    write::store(ctx, observation, desired).await?;
    Ok(Record {
        issued_at,
        expiry: match (cr.spec.credential_type, expires_at) {
            (_, Some(at)) => Expiry::At(at),
            _ => Expiry::NotReported,
        },
        revision: meta.revision,
        spec_hash: Some(meta.spec_hash),
        data_intact: true,
    })
}

/// One `generate_credentials` call, within the broker's concurrency limit.
async fn generate(
    broker: &ResolvedBroker,
    directory_id: &str,
    request: &GenerateRequest,
) -> Result<IssuedCredential, Failure> {
    let _permit = broker.permits.acquire().await.map_err(|_| {
        Failure::new(
            crate::controller::failure::FailureReason::BrokerUnavailable,
            "the broker client is shutting down",
        )
    })?;
    broker
        .client
        .generate_credentials(directory_id, request)
        .await
        .map_err(|e| Failure::from_broker(&e))
}

/// The broker's answer as Secret data, and the expiry it reports.
fn secret_data(
    keys: &KeyNames,
    issued: &IssuedCredential,
    issued_at: DateTime<Utc>,
    scim_url: &str,
) -> (CredentialData, Option<DateTime<Utc>>) {
    match issued {
        IssuedCredential::AccessToken {
            access_token,
            expires_in,
        } => {
            let expires_at = expires_in
                .clamped(MAX_CREDENTIAL_LIFETIME)
                .and_then(|d| TimeDelta::from_std(d).ok())
                .and_then(|d| issued_at.checked_add_signed(d));
            let values = IssuedValues::AccessToken {
                token: access_token.expose(),
                expires_at,
                scim_url,
            };
            (secret::credential_data(keys, &values), expires_at)
        }
        IssuedCredential::ClientSecret {
            client_id,
            client_secret,
        } => {
            let values = IssuedValues::ClientSecret {
                client_id,
                client_secret: client_secret.expose(),
            };
            (secret::credential_data(keys, &values), None)
        }
    }
}

/// The revision after the one in the Secret (or in status, when the Secret is gone).
fn next_revision(observation: &Observation) -> i64 {
    let current = match &observation.state {
        SecretState::Owned(record) => record.revision,
        _ => observation
            .cr
            .status
            .as_ref()
            .and_then(|s| s.revision)
            .unwrap_or(0),
    };
    current.saturating_add(1)
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
