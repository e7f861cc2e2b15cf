//! Rollout restarts: after a new credential is stored, the workloads named in
//! `spec.rolloutRestartTargets` get a new pod-template annotation, as `kubectl rollout restart`
//! does, so they pick up the new Secret data.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;

use super::events::publish;
use crate::api::{RolloutKind, SyncClientCredential, reasons};
use crate::controller::Context;
use crate::secret;

/// Annotation bumped on pod templates to restart workloads.
pub const RESTARTED_AT_ANNOTATION: &str = "syncclient.io/restartedAt";

/// Restarts every target of `cr`, publishing an event for each (a failure is reported, not
/// retried: the Secret already holds the new credential).
pub async fn restart_targets(ctx: &Context, cr: &SyncClientCredential, now: DateTime<Utc>) {
    let namespace = cr.metadata.namespace.clone().unwrap_or_default();
    for target in &cr.spec.rollout_restart_targets {
        let result = restart(ctx, &namespace, target.kind, &target.name, now).await;
        let (type_, note) = match result {
            Ok(()) => (
                EventType::Normal,
                format!("restarted {:?} {}", target.kind, target.name),
            ),
            Err(e) => (
                EventType::Warning,
                format!("could not restart {:?} {}: {e}", target.kind, target.name),
            ),
        };
        publish(ctx, cr, type_, reasons::EVENT_ROLLOUT_RESTARTED, &note).await;
    }
}

async fn restart(
    ctx: &Context,
    namespace: &str,
    kind: RolloutKind,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT_ANNOTATION: secret::rfc3339(now)
    }}}}});
    let params = PatchParams::default();
    let patch = Patch::Strategic(&patch);
    let client = ctx.client.clone();
    match kind {
        RolloutKind::Deployment => Api::<Deployment>::namespaced(client, namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
        RolloutKind::StatefulSet => Api::<StatefulSet>::namespaced(client, namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
        RolloutKind::DaemonSet => Api::<DaemonSet>::namespaced(client, namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
    }
}
