//! The guards around each credential reconcile: an object that cannot be read is reported on
//! itself and skipped, a panic is contained to its object, and a failed reconcile is retried
//! with its object's backoff.

use std::sync::Arc;

use futures::FutureExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::Guarded;
use crate::api::{SyncClientCredential, reasons};
use crate::controller::status::bounded;
use crate::controller::{Context, Error, credential, kube_error};

fn object_key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

pub(super) async fn reconcile_credential(
    guard: Arc<Guarded<SyncClientCredential>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = object_key(guard.as_ref());
    let cr = match &guard.0 {
        Ok(cr) => Arc::new(cr.clone()),
        Err(invalid) => {
            report_unreadable(&ctx, guard.meta(), &invalid.error).await;
            return Ok(Action::await_change());
        }
    };
    let reconcile = Box::pin(credential::reconcile(cr.clone(), ctx.clone()));
    let action = match contain_panics(&ctx, guard.meta(), reconcile).await {
        Err(error @ Error::Panicked { .. }) => {
            // Reported on the object too, where the people who own it look.
            credential::events::panicked(&ctx, &cr, &error).await;
            return Err(error);
        }
        result => result?,
    };
    ctx.clear_errors(&key);
    Ok(action)
}

/// Runs one reconcile; a panic in it becomes an error of that object (retried with backoff,
/// counted) instead of ending the process and stopping every other credential.
pub async fn contain_panics(
    ctx: &Context,
    meta: &kube::api::ObjectMeta,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    match std::panic::AssertUnwindSafe(reconcile).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            ctx.metrics.record_panic();
            let error = Error::Panicked {
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
                message: bounded(&message),
            };
            tracing::error!(%error, "reconcile panicked; contained to this object");
            Err(error)
        }
    }
}

/// A credential that cannot be deserialized (stored under an older schema, or written around
/// validation) is reported on itself, once per change, and otherwise skipped.
async fn report_unreadable(ctx: &Context, meta: &kube::api::ObjectMeta, error: &str) {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let message = bounded(&format!(
        "the resource cannot be read by this operator version, so it is skipped; correct it: {error}"
    ));
    tracing::warn!(%namespace, %name, detail = %message, "skipping an unreadable SyncClientCredential");
    ctx.metrics.record_reconcile_error("unreadable");
    let now = crate::secret::rfc3339(ctx.clock.now());
    let patch = serde_json::json!({"status": {
        "observedGeneration": meta.generation,
        "conditions": [
            {"type": reasons::READY, "status": "False", "reason": "SpecInvalid",
             "message": message, "lastTransitionTime": now, "observedGeneration": meta.generation},
            {"type": reasons::ISSUING, "status": "False", "reason": "SpecInvalid",
             "message": message, "lastTransitionTime": now, "observedGeneration": meta.generation},
        ],
    }});
    let api: Api<Guarded<SyncClientCredential>> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(%namespace, %name, error = %kube_error::describe(&e), "could not report the unreadable resource");
    }
}

#[allow(clippy::needless_pass_by_value)] // kube's Controller::run passes these by value
pub(super) fn credential_error_policy(
    guard: Arc<Guarded<SyncClientCredential>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let delay = ctx.error_backoff(object_key(guard.as_ref()));
    tracing::warn!(namespace = %guard.namespace().unwrap_or_default(), name = %guard.name_any(), error = %error, retry_in = ?delay, "reconcile failed");
    ctx.metrics.record_reconcile_error(error.category());
    Action::requeue(delay)
}
