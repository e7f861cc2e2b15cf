//! The mint: resolve the broker, prove the Secret write with a dry run, check the delivery
//! targets, generate under the fence (this revokes the live credential), judge the lifetime the
//! broker reported, and render the Secret data and the fingerprint for the history.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use sync_client_broker::{
    CredentialKind, GenerateRequest, IssuedCredential, ReportedLifetime, RevokeGuard,
};

use crate::api::{CredentialType, token_ttl_minutes};
use crate::controller::Context;
use crate::controller::brokers::ResolvedBroker;
use crate::controller::credential::deliver;
use crate::controller::credential::gather::{self, Observation};
use crate::controller::credential::write::{SecretWrite, WriteError};
use crate::controller::failure::{Failure, FailureReason};
use crate::planner::{Expiry, IssueReason, Policy, Record};
use crate::secret::{self, CredentialData, IssuedValues, KeyNames, RecordMeta};

/// The longest lifetime a broker may report for a credential; longer ones are cut to it.
pub const MAX_CREDENTIAL_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A credential the broker issued, ready to be written.
pub(super) struct Minted {
    pub(super) record: Record,
    pub(super) fingerprint: String,
    pub(super) data: CredentialData,
    pub(super) meta: RecordMeta,
    /// The broker answered with a lifetime that cannot be used as is.
    pub(super) anomaly: Option<Failure>,
}

/// Resolves the broker, proves the write, generates, and renders the Secret.
pub(super) async fn mint(
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
    if protects_a_working_token(trigger) && deliver::wanted(observation) {
        deliver::check_before_mint(ctx, observation).await?;
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
