//! The probe of a stored access token (`spec.verifyInterval`): the broker's SCIM endpoint is
//! called with the token. A refusal means someone revoked it (an administrator pressing
//! "Generate" in the vSphere Client, another tool): it is replaced at once. Any other failure
//! is reported and never triggers an issue. Nothing is minted.

use kube::runtime::events::EventType;
use sync_client_broker::SecretString;

use super::events::publish;
use super::gather::{Observation, VERIFY_REVOKED, VERIFY_VALID};
use crate::api::reasons;
use crate::controller::Context;
use crate::controller::failure::Failure;
use crate::controller::status::notes::VerifyNote;
use crate::planner::Verification;
use crate::secret::{self, KeyNames};

/// Probes the token in the observed Secret.
pub async fn probe(ctx: &Context, observation: &Observation) -> (VerifyNote, Verification) {
    let at = observation.now;
    let result = match probe_token(ctx, observation).await {
        Ok(true) => VERIFY_VALID.to_owned(),
        Ok(false) => {
            let note = format!(
                "the broker refused the token in Secret {}: it was revoked elsewhere and is replaced now",
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
        Err(failure) => {
            tracing::info!(namespace = %observation.namespace(), name = %observation.name(), reason = %failure.reason, message = %failure.message, "could not verify the stored token");
            format!("{}: {}", failure.reason, failure.message)
        }
    };
    let label = match result.as_str() {
        VERIFY_VALID => "valid",
        VERIFY_REVOKED => "revoked",
        _ => "failed",
    };
    ctx.metrics.record_verification(label);
    let revoked = result == VERIFY_REVOKED;
    (VerifyNote { at, result }, Verification { at, revoked })
}

async fn probe_token(ctx: &Context, observation: &Observation) -> Result<bool, Failure> {
    let keys = KeyNames::from_spec(observation.cr.spec.keys.as_ref());
    let read;
    let secret = if observation.secret_complete {
        observation.secret.as_ref()
    } else {
        // Only the metadata was cached: the token itself is read now.
        read = super::gather::read_secret(ctx, &observation.cr)
            .await
            .map_err(|e| {
                Failure::new(
                    crate::controller::failure::FailureReason::SecretWriteFailed,
                    e.to_string(),
                )
            })?;
        read.as_ref()
    };
    let token = secret
        .map(secret::data_of)
        .and_then(|data| data.get(&keys.access_token).map(SecretString::from))
        .ok_or_else(|| {
            Failure::new(
                crate::controller::failure::FailureReason::SpecInvalid,
                "the Secret holds no access token to verify",
            )
        })?;
    let broker = super::gather::broker(ctx, observation).await?;
    let _permit = broker.permit().await?;
    broker
        .client
        .probe_token(&token)
        .await
        .map_err(|e| Failure::from_broker(&e))
}
