//! Deletes of one object or a collection, with `DeleteOptions` from the body or the query.

use axum::response::Response;
use serde_json::{Value, json};

use crate::error::SimError;
use crate::store::DeleteOptions;

use super::incoming::is_blank;
use super::json_response;
use super::objects::{Call, check_dry_run, list_metadata, selectors};

pub(super) fn delete_object(call: &Call<'_>) -> Result<Response, SimError> {
    let r = call.r;
    let options = delete_options(call)?;
    let deleted = call.shared.write(|store| {
        store.delete(
            &r.rt,
            &r.version,
            r.namespace.as_deref(),
            call.name(),
            &options,
        )
    })?;
    let pending = deleted.pointer("/metadata/deletionTimestamp").is_some() && !options.dry_run;
    Ok(call.respond(if pending { 202 } else { 200 }, &deleted))
}

pub(super) fn delete_collection(call: &Call<'_>) -> Result<Response, SimError> {
    let r = call.r;
    let options = delete_options(call)?;
    let (labels, fields) = selectors(&r.rt, call.query, None)?;
    let deleted = call.shared.write(|store| {
        let names: Vec<(String, String)> = store
            .snapshot(&r.rt, r.namespace.as_deref(), &labels, &fields)
            .iter()
            .map(|o| {
                let m = |f: &str| {
                    o.pointer(&format!("/metadata/{f}"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                (m("namespace"), m("name"))
            })
            .collect();
        let mut deleted = Vec::new();
        for (obj_ns, name) in names {
            let obj_ns = (!obj_ns.is_empty()).then_some(obj_ns);
            deleted.push(store.delete(&r.rt, &r.version, obj_ns.as_deref(), &name, &options)?);
        }
        Ok(deleted)
    })?;
    let resource_version = call.shared.lock_store().current_rv();
    Ok(json_response(
        200,
        &json!({
            "kind": r.rt.list_kind,
            "apiVersion": r.rt.api_version(&r.version),
            "metadata": list_metadata(resource_version),
            "items": deleted,
        }),
    ))
}

/// `DeleteOptions` from the body or, without a body, from the query parameters: the real
/// handler decodes one or the other, never both.
fn delete_options(call: &Call<'_>) -> Result<DeleteOptions, SimError> {
    let options: Value = if is_blank(call.body) {
        let mut options = json!({"dryRun": call.incoming.dry_run_values()});
        for key in ["propagationPolicy", "orphanDependents"] {
            if let Some(value) = call.query.get(key) {
                options[key] = json!(value);
            }
        }
        options
    } else {
        call.incoming.delete_options_body()?
    };
    let dry_run_values: Vec<String> = options
        .get("dryRun")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    let text = |key: &str| options.get(key).and_then(Value::as_str).map(str::to_owned);
    let orphan = text("propagationPolicy").as_deref() == Some("Orphan")
        || options.get("orphanDependents") == Some(&Value::Bool(true))
        || text("orphanDependents").as_deref() == Some("true");
    Ok(DeleteOptions {
        dry_run: check_dry_run("DeleteOptions", &dry_run_values)?,
        uid: options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource_version: options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
        orphan,
    })
}
