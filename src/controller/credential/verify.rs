//! The probe of a stored access token (`spec.verifyInterval`, and the probes owed after a
//! generate went unanswered or after a token replaced a revoked one): the broker's SCIM endpoint
//! is called with the token. Nothing is minted.
//!
//! A refusal re-issues only when the operator is sure the token, not the probe, is at fault:
//! a second probe a few seconds later must agree, and the probe must have accepted this very
//! token before, or this broker's probe a token (and not have refused one minted a moment ago). Otherwise the credential reports
//! that verification is unavailable and keeps its token: a proxy, or an account that may not
//! read users, would otherwise revoke a working token at every probe. Any other failure is only
//! reported.

use std::time::Duration;

use chrono::TimeDelta;
use kube::runtime::events::EventType;
use sync_client_broker::SecretString;

use super::events::publish;
use super::gather::{Observation, VERIFY_REVOKED, VERIFY_VALID};
use crate::api::reasons;
use crate::controller::Context;
use crate::controller::brokers::ResolvedBroker;
use crate::controller::failure::{Failure, FailureReason};
use crate::controller::status::notes::VerifyNote;
use crate::planner::Verification;
use crate::secret::{self, KeyNames};

/// How long the second probe waits after a refusal.
pub const CONFIRM_DELAY: Duration = Duration::from_secs(3);
/// A token issued less than this long ago is fresh: a probe refusing it is itself at fault.
const FRESH: TimeDelta = TimeDelta::minutes(2);
/// What `lastVerifyResult` starts with when the probe cannot be trusted.
pub const VERIFY_UNAVAILABLE: &str = "Unavailable";

/// Probes the token in the observed Secret.
pub async fn probe(ctx: &Context, observation: &Observation) -> (VerifyNote, Verification) {
    let at = observation.now;
    let result = match verdict(ctx, observation).await {
        Ok(Verdict::Valid) => VERIFY_VALID.to_owned(),
        Ok(Verdict::Revoked) => {
            let note = format!(
                "the broker refused the token in Secret {} twice, and its probe accepts tokens: it was revoked elsewhere and is replaced now",
                observation.secret_name
            );
            tracing::warn!(namespace = %observation.namespace(), name = %observation.name(), "stored token was revoked elsewhere");
            publish(
                ctx,
                &observation.cr,
                EventType::Warning,
                reasons::EVENT_TOKEN_REVOKED,
                &note,
            )
            .await;
            VERIFY_REVOKED.to_owned()
        }
        Ok(Verdict::Unavailable(why)) => {
            let note = format!(
                "{VERIFY_UNAVAILABLE}: the broker refused the token in Secret {} twice, but {why}: the probe itself may be at fault (a proxy, an account that may not read users); the token is kept",
                observation.secret_name
            );
            tracing::warn!(namespace = %observation.namespace(), name = %observation.name(), %why, "token verification unavailable");
            publish(
                ctx,
                &observation.cr,
                EventType::Warning,
                reasons::EVENT_VERIFICATION_UNAVAILABLE,
                &note,
            )
            .await;
            note
        }
        Err(failure) => {
            tracing::info!(namespace = %observation.namespace(), name = %observation.name(), reason = %failure.reason, detail = %failure.message, "could not verify the stored token");
            format!("{}: {}", failure.reason, failure.message)
        }
    };
    let label = match result.as_str() {
        VERIFY_VALID => "valid",
        VERIFY_REVOKED => "revoked",
        other if other.starts_with(VERIFY_UNAVAILABLE) => "unavailable",
        _ => "failed",
    };
    ctx.metrics.record_verification(label);
    let revoked = result == VERIFY_REVOKED;
    (VerifyNote { at, result }, Verification { at, revoked })
}

enum Verdict {
    Valid,
    Revoked,
    Unavailable(&'static str),
}

async fn verdict(ctx: &Context, observation: &Observation) -> Result<Verdict, Failure> {
    let token = stored_token(ctx, observation).await?;
    let broker = super::gather::broker(ctx, observation).await?;
    if probe_once(&broker, &token).await? {
        ctx.brokers.probe_accepted(&broker.key);
        return Ok(Verdict::Valid);
    }
    tokio::time::sleep(CONFIRM_DELAY).await;
    if probe_once(&broker, &token).await? {
        ctx.brokers.probe_accepted(&broker.key);
        return Ok(Verdict::Valid);
    }
    if probe_accepted_this_token(observation) {
        // The same probe accepted this very token: it works, and the token no longer does.
        return Ok(Verdict::Revoked);
    }
    let fresh = observation
        .record()
        .is_some_and(|record| observation.now.signed_duration_since(record.issued_at) < FRESH);
    if fresh && !late_generate_may_have_landed(ctx, observation) {
        // A token minted a moment ago is refused: the probe, not the token, is at fault.
        ctx.brokers.probe_refused_fresh_token(&broker.key);
        return Ok(Verdict::Unavailable(
            "it was issued moments ago, so the probe refuses valid tokens",
        ));
    }
    if ctx.brokers.probe_trusted(&broker.key) {
        Ok(Verdict::Revoked)
    } else {
        Ok(Verdict::Unavailable(
            "its probe has not been seen to accept a token since the operator started",
        ))
    }
}

/// Whether the last check of the stored token, made after it was issued, found it valid.
fn probe_accepted_this_token(observation: &Observation) -> bool {
    let Some(issued_at) = observation.record().map(|record| record.issued_at) else {
        return false;
    };
    observation.status.last_verify_result.as_deref() == Some(VERIFY_VALID)
        && observation
            .status
            .last_verify_time
            .is_some_and(|verified| verified >= issued_at)
}

/// Whether a generate that went unanswered may have landed after the stored token was issued
/// (then a refusal of even a fresh token is explained, and believed).
fn late_generate_may_have_landed(ctx: &Context, observation: &Observation) -> bool {
    let Some(issued_at) = observation.record().map(|record| record.issued_at) else {
        return false;
    };
    observation.status.history.iter().any(|attempt| {
        attempt.outcome == FailureReason::RotationStateUnknown.as_str()
            && attempt
                .time
                .checked_add_signed(ctx.unknown_outcome_window)
                .is_some_and(|until| until >= issued_at)
    })
}

async fn probe_once(broker: &ResolvedBroker, token: &SecretString) -> Result<bool, Failure> {
    let _permit = broker.permit().await?;
    broker
        .client
        .probe_token(token)
        .await
        .map_err(|e| Failure::from_broker(&e))
}

/// The access token in the Secret (read now when only its metadata was cached).
async fn stored_token(ctx: &Context, observation: &Observation) -> Result<SecretString, Failure> {
    let keys = KeyNames::from_spec(observation.cr.spec.keys.as_ref());
    let read;
    let secret = if observation.secret_complete {
        observation.secret.as_ref()
    } else {
        read = super::gather::read_secret(ctx, &observation.cr)
            .await
            .map_err(|e| Failure::new(FailureReason::SecretReadFailed, e.to_string()))?;
        // Deleted or edited since this process wrote it: its watch event brings the repair.
        read.as_ref()
    };
    secret
        .map(secret::data_of)
        .and_then(|data| data.get(&keys.access_token).map(SecretString::from))
        .ok_or_else(|| {
            Failure::new(
                FailureReason::SecretDataMissing,
                format!(
                    "Secret {} holds no access token under key {} to verify",
                    observation.secret_name, keys.access_token
                ),
            )
        })
}
