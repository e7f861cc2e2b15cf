//! A reconcile error where the people who own the credential look, not only in the operator's
//! log and metrics: a Warning event that names the object and the verb that failed, and, when
//! the failed call was a read the decision needed, the condition it leaves unknown (`Ready` when
//! the Secret could not be read, `Issuing` when the fresh read of the resource an issue is
//! decided on failed). That condition is patched alone (a JSON patch of one list entry), so the
//! status the reconciler writes is neither overwritten nor raced. A failed status write is told
//! by the event only.

use chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::events;
use crate::api::{ConditionStatus, SyncClientCredential, reasons};
use crate::controller::status::bounded;
use crate::controller::{Context, Error, kube_error};
use crate::secret::rfc3339;

/// Reports `error` on `cr`. Best effort: what cannot be reported is logged.
pub async fn error(ctx: &Context, cr: &SyncClientCredential, error: &Error) {
    if !ctx.fence.leading() {
        // The new leader reports what happens now.
        return;
    }
    let note = bounded(&format!("{error}; {}", error.hint()));
    events::publish(ctx, cr, EventType::Warning, error.reason(), &note).await;
    let condition = match error {
        Error::GetSecret { .. } => reasons::READY,
        Error::GetCredential { .. } => reasons::ISSUING,
        _ => return,
    };
    let Some(patch) = unknown_condition(cr, condition, error.reason(), &note, ctx.clock.now())
    else {
        return; // it already says so
    };
    let api: Api<SyncClientCredential> =
        Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
    if let Err(e) = api
        .patch_status(&cr.name_any(), &PatchParams::default(), &patch)
        .await
    {
        tracing::info!(
            namespace = %cr.namespace().unwrap_or_default(), name = %cr.name_any(),
            condition, error = %kube_error::describe(&e),
            "could not set the condition the failed read leaves unknown"
        );
    }
}

/// The patch that sets `type_` to `Unknown` with `reason` and `message`: a JSON patch replacing
/// that one entry of the conditions (checked to still be the one at that place) or appending
/// it, or, when there are none yet, a merge patch of the conditions alone; `None` when the
/// condition already says exactly that.
pub fn unknown_condition(
    cr: &SyncClientCredential,
    type_: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Option<Patch<serde_json::Value>> {
    let conditions = cr
        .status
        .as_ref()
        .map(|status| status.conditions.as_slice())
        .unwrap_or_default();
    let found = conditions.iter().position(|c| c.type_ == type_);
    let existing = found.and_then(|i| conditions.get(i));
    if existing.is_some_and(|c| {
        c.status == ConditionStatus::Unknown && c.reason == reason && c.message == message
    }) {
        return None;
    }
    let since = existing
        .filter(|c| c.status == ConditionStatus::Unknown)
        .map_or(now, |c| c.last_transition_time);
    let condition = json!({
        "type": type_,
        "status": "Unknown",
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(since),
        "observedGeneration": cr.meta().generation,
    });
    let operations = match found {
        Some(i) => json!([
            {"op": "test", "path": format!("/status/conditions/{i}/type"), "value": type_},
            {"op": "replace", "path": format!("/status/conditions/{i}"), "value": condition},
        ]),
        None if !conditions.is_empty() => {
            json!([{"op": "add", "path": "/status/conditions/-", "value": condition}])
        }
        // Nothing else in the status is touched.
        None => return Some(Patch::Merge(json!({"status": {"conditions": [condition]}}))),
    };
    serde_json::from_value(operations).ok().map(Patch::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Condition, SyncClientCredentialStatus};

    fn credential(conditions: Vec<Condition>) -> SyncClientCredential {
        let mut cr: SyncClientCredential = serde_json::from_value(json!({
            "apiVersion": "syncclient.io/v1alpha1", "kind": "SyncClientCredential",
            "metadata": {"name": "app", "namespace": "team", "generation": 3},
            "spec": {"brokerRef": {"kind": "IdentityBroker", "name": "b"},
                     "directoryId": "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f",
                     "credentialType": "AccessToken"},
        }))
        .unwrap();
        cr.status = Some(SyncClientCredentialStatus {
            conditions,
            ..SyncClientCredentialStatus::default()
        });
        cr
    }

    fn condition(
        type_: &'static str,
        status: ConditionStatus,
        reason: &'static str,
        at: i64,
    ) -> Condition {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: "m".into(),
            last_transition_time: DateTime::from_timestamp(at, 0).unwrap(),
            observed_generation: Some(3),
        }
    }

    fn apply(doc: &mut serde_json::Value, patch: &Patch<serde_json::Value>) {
        match patch {
            Patch::Json(patch) => json_patch::patch(doc, patch).unwrap(),
            Patch::Merge(patch) => json_patch::merge(doc, patch),
            _ => panic!("a JSON or merge patch"),
        }
    }

    fn applied(cr: &SyncClientCredential, patch: &Patch<serde_json::Value>) -> serde_json::Value {
        let mut doc = serde_json::to_value(cr).unwrap();
        apply(&mut doc, patch);
        doc["status"]["conditions"].clone()
    }

    #[test]
    fn the_condition_is_replaced_in_place_and_the_others_are_left_alone() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let cr = credential(vec![
            condition("Ready", ConditionStatus::True, "CredentialCurrent", 10),
            condition("Issuing", ConditionStatus::False, "Idle", 20),
        ]);
        let patch = unknown_condition(&cr, "Ready", "SecretReadFailed", "reading…", now).unwrap();
        let conditions = applied(&cr, &patch);
        assert_eq!(conditions[0]["type"], "Ready");
        assert_eq!(conditions[0]["status"], "Unknown");
        assert_eq!(conditions[0]["reason"], "SecretReadFailed");
        assert_eq!(conditions[0]["message"], "reading…");
        assert_eq!(conditions[0]["lastTransitionTime"], "1970-01-01T00:16:40Z");
        assert_eq!(conditions[0]["observedGeneration"], 3);
        assert_eq!(conditions[1]["reason"], "Idle", "Issuing untouched");
        assert_eq!(conditions.as_array().unwrap().len(), 2);
    }

    #[test]
    fn an_unknown_condition_keeps_its_time_and_is_not_written_again() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let mut same = condition("Ready", ConditionStatus::Unknown, "SecretReadFailed", 10);
        same.message = "reading…".into();
        let cr = credential(vec![same.clone()]);
        assert!(unknown_condition(&cr, "Ready", "SecretReadFailed", "reading…", now).is_none());
        let patch = unknown_condition(&cr, "Ready", "SecretReadFailed", "other", now).unwrap();
        assert_eq!(
            applied(&cr, &patch)[0]["lastTransitionTime"],
            "1970-01-01T00:00:10Z"
        );
    }

    #[test]
    fn a_missing_condition_or_status_is_added() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        let cr = credential(vec![condition("Ready", ConditionStatus::True, "x", 10)]);
        let patch = unknown_condition(&cr, "Issuing", "CredentialReadFailed", "m", now).unwrap();
        let conditions = applied(&cr, &patch);
        assert_eq!(conditions[1]["type"], "Issuing");
        let mut bare = credential(vec![]);
        bare.status.as_mut().unwrap().revision = Some(4);
        let patch = unknown_condition(&bare, "Ready", "SecretReadFailed", "m", now).unwrap();
        let mut doc = serde_json::to_value(&bare).unwrap();
        apply(&mut doc, &patch);
        assert_eq!(doc["status"]["conditions"][0]["status"], "Unknown");
        assert_eq!(
            doc["status"]["revision"], 4,
            "the rest of the status is kept"
        );
        bare.status = None;
        let patch = unknown_condition(&bare, "Ready", "SecretReadFailed", "m", now).unwrap();
        let mut doc = serde_json::to_value(&bare).unwrap();
        doc.as_object_mut().unwrap().remove("status");
        apply(&mut doc, &patch);
        assert_eq!(doc["status"]["conditions"][0]["status"], "Unknown");
    }
}
