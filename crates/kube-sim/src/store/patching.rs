//! PATCH in the four formats, server-side apply among them (field ownership in `apply.rs`),
//! and the conflict an apply answers with.

use serde_json::{Value, json};

use crate::apply::{self, ApplyRequest, ApplyScope};
use crate::error::SimError;
use crate::patch::{self, PatchKind};

use super::{Store, Target, WriteOptions, WriteOutcome, meta, now, output, set_meta, with_meta};

impl Store {
    /// PATCH of an object or its status, in any of the four patch formats.
    pub fn patch(
        &mut self,
        target: &Target<'_>,
        kind: PatchKind,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, SimError> {
        let (rt, name) = (target.rt, target.name);
        if kind == PatchKind::Strategic && rt.is_custom() {
            return Err(SimError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let live = self.lookup(&target.key()).cloned();
        if kind == PatchKind::Apply {
            return self.apply(target, body, opts, live);
        }
        let Some(live) = live else {
            return Err(SimError::not_found(rt.subject(name)));
        };
        let current = output(rt, target.version, &live);
        let patched = match kind {
            PatchKind::Merge => {
                let mut patched = current;
                patch::merge_patch(&mut patched, body);
                patched
            }
            PatchKind::Strategic => {
                let mut patched = current;
                patch::strategic_merge_patch(&mut patched, body);
                patched
            }
            PatchKind::Json | PatchKind::Apply => {
                patch::json_patch(&current, body).map_err(|e| {
                    SimError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?
            }
        };
        if meta(&patched, "name").as_deref() != Some(name) {
            return Err(SimError::bad_request(
                "the name of an object cannot be changed by a patch",
            ));
        }
        let expected = meta(&patched, "resourceVersion").unwrap_or_default();
        if !expected.is_empty() && Some(&expected) != meta(&live, "resourceVersion").as_ref() {
            return Err(SimError::stale_resource_version(rt.subject(name)));
        }
        self.finish_update(target, live, patched, opts)
    }

    /// The checks of an applied configuration itself; returns the field manager.
    fn check_applied(
        target: &Target<'_>,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<String, SimError> {
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                SimError::bad_request(
                    "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                )
            })?;
        if !body.is_object() {
            return Err(SimError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        let blank = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        };
        if blank("apiVersion") || blank("kind") {
            return Err(SimError::bad_request(
                "apiVersion and kind must be set in an applied configuration",
            ));
        }
        Self::check_identity(target.rt, target.version, body)?;
        if let Some(body_name) = meta(body, "name").filter(|n| n != target.name) {
            return Err(SimError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                target.name
            )));
        }
        Ok(manager)
    }

    /// Server-side apply: creates the object when absent, else merges the configuration with
    /// field ownership (see `apply.rs`).
    fn apply(
        &mut self,
        target: &Target<'_>,
        body: &Value,
        opts: &WriteOptions,
        live: Option<Value>,
    ) -> Result<WriteOutcome, SimError> {
        let (rt, name) = (target.rt, target.name);
        let manager = Self::check_applied(target, body, opts)?;
        let scope = match target.subresource {
            Some("status") if rt.status_subresource => ApplyScope::Status,
            Some(_) => return Err(SimError::not_found(rt.subject(name))),
            None => ApplyScope::Main {
                without_status: rt.status_subresource,
            },
        };
        let mut applied = scope.restrict(body);
        if scope != ApplyScope::Status {
            with_meta(&mut applied, |m| m.remove("resourceVersion"));
        }
        let now = now();
        let api_version = rt.api_version(target.version);
        let mut request = ApplyRequest {
            live: &json!({"metadata": {}}),
            applied: &applied,
            manager: &manager,
            force: true,
            scope,
            api_version: &api_version,
            now: &now,
        };
        let Some(live) = live else {
            if scope == ApplyScope::Status {
                return Err(SimError::not_found(rt.subject(name)));
            }
            let mut obj = applied.clone();
            set_meta(&mut obj, "name", json!(name));
            let with_fields =
                apply::apply(&request).map_err(|_| SimError::bad_request("apply failed"))?;
            if let Some(managed) = with_fields.pointer("/metadata/managedFields") {
                set_meta(&mut obj, "managedFields", managed.clone());
            }
            return self.create(rt, target.version, target.namespace, obj, opts);
        };
        if let Some(expected) = meta(body, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(&expected) != meta(&live, "resourceVersion").as_ref()
        {
            return Err(SimError::stale_resource_version(rt.subject(name)));
        }
        let current = output(rt, target.version, &live);
        request.live = &current;
        request.force = opts.force;
        let merged =
            apply::apply(&request).map_err(|conflicts| apply_conflict_error(target, &conflicts))?;
        self.finish_update(target, live, merged, opts)
    }
}

/// The 409 an apply answers when other apply managers own fields it changes.
fn apply_conflict_error(target: &Target<'_>, conflicts: &[apply::ApplyConflict]) -> SimError {
    let summary: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
        .collect();
    let plural = if conflicts.len() == 1 { "" } else { "s" };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with \"{}\"", c.manager),
                   "field": c.field})
        })
        .collect();
    let mut error = SimError::conflict(target.subject(), "apply conflict");
    error.message = format!(
        "Apply failed with {} conflict{plural}: {}",
        conflicts.len(),
        summary.join("\n")
    );
    if let Some(details) = error.details.as_mut() {
        details["causes"] = Value::Array(causes);
    }
    error
}
