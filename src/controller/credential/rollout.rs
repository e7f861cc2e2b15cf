//! Rollout restarts: after a new credential is stored, the workloads named in
//! `spec.rolloutRestartTargets` get a new pod-template annotation, as `kubectl rollout restart`
//! does, so they pick up the new Secret data.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;

use super::events::publish;
use crate::api::{RolloutKind, SyncClientCredential, reasons};
use crate::controller::{Context, kube_error};
use crate::secret;

/// Annotation bumped on pod templates to restart workloads.
pub const RESTARTED_AT_ANNOTATION: &str = "syncclient.io/restartedAt";

/// Restarts every target of `cr`, publishing an event for each: `RolloutRestarted`, or
/// `RolloutRestartFailed` saying what went wrong and what to do (a failure is not retried: the
/// Secret already holds the new credential, and the workload reads it at its next start).
pub async fn restart_targets(ctx: &Context, cr: &SyncClientCredential, now: DateTime<Utc>) {
    let namespace = cr.metadata.namespace.clone().unwrap_or_default();
    for target in &cr.spec.rollout_restart_targets {
        let kind = kind_name(target.kind);
        let result = restart(ctx, &namespace, target.kind, &target.name, now).await;
        let (type_, reason, note) = match result {
            Ok(()) => (
                EventType::Normal,
                reasons::EVENT_ROLLOUT_RESTARTED,
                format!("restarted {kind} {}", target.name),
            ),
            Err(e) => {
                let note = failed_note(&e, target.kind, &target.name, &namespace);
                tracing::warn!(
                    %namespace, name = %cr.name_any(), workload = %target.name, kind,
                    error = %kube_error::describe(&e), "rollout restart failed"
                );
                (
                    EventType::Warning,
                    reasons::EVENT_ROLLOUT_RESTART_FAILED,
                    note,
                )
            }
        };
        publish(ctx, cr, type_, reason, &note).await;
    }
}

/// What went wrong restarting `kind name`, and what to do.
fn failed_note(error: &kube::Error, kind: RolloutKind, name: &str, namespace: &str) -> String {
    let kind_name = kind_name(kind);
    let detail = kube_error::describe_call(
        error,
        kube_error::Call::new("patch", resource(kind), Some(namespace)),
    );
    let what_to_do = if kube_error::is_not_found(error) {
        format!(
            "; create the {kind_name} or remove it from spec.rolloutRestartTargets; its pods read the new Secret data only when they restart"
        )
    } else if kube_error::is_forbidden(error) {
        "; its pods read the new Secret data only when they restart: restart them yourself until the operator may".to_owned()
    } else {
        "; it is not retried: restart its pods to read the new Secret data".to_owned()
    };
    format!("could not restart {kind_name} {name}: {detail}{what_to_do}")
}

fn kind_name(kind: RolloutKind) -> &'static str {
    match kind {
        RolloutKind::Deployment => "Deployment",
        RolloutKind::StatefulSet => "StatefulSet",
        RolloutKind::DaemonSet => "DaemonSet",
    }
}

/// The resource RBAC rules name.
fn resource(kind: RolloutKind) -> &'static str {
    match kind {
        RolloutKind::Deployment => "deployments",
        RolloutKind::StatefulSet => "statefulsets",
        RolloutKind::DaemonSet => "daemonsets",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.to_owned(),
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn a_missing_target_is_named_with_what_to_do() {
        let note = failed_note(
            &api(404, "deployments.apps \"scim-pusher\" not found"),
            RolloutKind::Deployment,
            "scim-pusher",
            "team-a",
        );
        assert_eq!(
            note,
            "could not restart Deployment scim-pusher: not found (404): deployments.apps \"scim-pusher\" not found; create the Deployment or remove it from spec.rolloutRestartTargets; its pods read the new Secret data only when they restart"
        );
    }

    #[test]
    fn a_refused_restart_says_the_operator_may_not() {
        let note = failed_note(
            &api(
                403,
                "statefulsets.apps \"db\" is forbidden: User \"system:serviceaccount:ops:op\" cannot patch resource \"statefulsets\" in API group \"apps\" in the namespace \"team-a\"",
            ),
            RolloutKind::StatefulSet,
            "db",
            "team-a",
        );
        assert!(
            note.starts_with(
                "could not restart StatefulSet db: forbidden (403): the operator may not patch statefulsets in namespace team-a; check its RBAC rules"
            ),
            "{note}"
        );
        assert!(
            note.ends_with("restart them yourself until the operator may"),
            "{note}"
        );
    }
}
