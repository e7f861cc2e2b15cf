//! Preflight: proves a credential would work without minting one. vCenter login, the broker
//! token, and a read of the directory's sync client (which tells whether it exists, is unique
//! and whether the privilege suffices). Asked for with `syncclient.io/preflight-request`, and
//! run once for a credential created with `suspend: true`, so teams can stage a credential and
//! see it would work before its first, revoking, issue.

use kube::runtime::events::EventType;

use super::events::publish;
use super::gather::Observation;
use crate::api::reasons;
use crate::controller::Context;
use crate::controller::failure::Failure;
use crate::controller::status::notes::PreflightNote;

/// Runs the preflight and reports it in an event.
pub async fn run(ctx: &Context, observation: &Observation) -> PreflightNote {
    let result = check(ctx, observation).await;
    let (type_, reason, note, label) = match &result {
        Ok(message) => (
            EventType::Normal,
            reasons::EVENT_PREFLIGHT_PASSED,
            message.clone(),
            "passed",
        ),
        Err(failure) => (
            EventType::Warning,
            reasons::EVENT_PREFLIGHT_FAILED,
            format!("{}: {}", failure.reason, failure.message),
            failure.reason.as_str(),
        ),
    };
    ctx.metrics.record_preflight(label);
    publish(ctx, &observation.cr, type_, reason, &note).await;
    PreflightNote {
        at: observation.now,
        request: observation
            .preflight_request
            .clone()
            .filter(|r| Some(r) != observation.preflight_served.as_ref()),
        result,
    }
}

async fn check(ctx: &Context, observation: &Observation) -> Result<String, Failure> {
    observation.policy.as_ref().map_err(Failure::from_spec)?;
    let cr = &observation.cr;
    let broker = super::gather::broker(ctx, observation).await?;
    let _permit = broker.permit().await?;
    broker
        .client
        .authenticate()
        .await
        .map_err(|e| Failure::from_broker(&e))?;
    broker
        .client
        .read_sync_client(&cr.spec.directory_id)
        .await
        .map_err(|e| Failure::from_broker(&e))?;
    Ok(format!(
        "vCenter login, broker token and the sync client of directory {} checked; nothing was issued",
        cr.spec.directory_id
    ))
}
