//! Requests for objects of one resource type: options, selectors and responses (tables,
//! metadata only, warnings), and the get, list, watch, create, update and patch handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::error::{FieldCause, SimError, Subject};
use crate::patch::PatchKind;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{ListQuery, Target, WriteOptions, WriteOutcome};
use crate::table::{self, IncludeObject};
use crate::validation::FieldValidation;
use crate::watch::{self, WatchRequest, WatchStart};

use super::delete::{delete_collection, delete_object};
use super::incoming::Incoming;
use super::route::ResourceRequest;
use super::{DEFAULT_WATCH_TIMEOUT, Query, flag, json_response, json_response_typed, parse_body};

/// The `dryRun` values a write asked for, checked as `ValidateDryRun`
/// (`k8s.io/apimachinery/pkg/api/validation`) does: only `All` is allowed, anything else is a
/// 422 about the options kind (`CreateOptions`, `UpdateOptions`, `PatchOptions`,
/// `DeleteOptions`), as the handlers in `k8s.io/apiserver/pkg/endpoints/handlers` answer.
pub(super) fn check_dry_run(options_kind: &str, values: &[String]) -> Result<bool, SimError> {
    if values.iter().all(|v| v == "All") {
        return Ok(!values.is_empty());
    }
    let quoted: Vec<String> = values.iter().map(|v| json!(v).to_string()).collect();
    let cause = FieldCause {
        reason: "FieldValueNotSupported",
        field: "dryRun".to_owned(),
        message: format!(
            "Unsupported value: []string{{{}}}: supported values: \"All\"",
            quoted.join(", ")
        ),
    };
    Err(SimError::invalid(
        Subject {
            group: "meta.k8s.io",
            plural: "",
            kind: options_kind,
            name: "",
        },
        &[cause],
    ))
}

fn write_options(call: &Call<'_>, options_kind: &str) -> Result<WriteOptions, SimError> {
    let query = call.query;
    Ok(WriteOptions {
        dry_run: check_dry_run(options_kind, &call.incoming.dry_run_values())?,
        field_validation: FieldValidation::parse(query.get("fieldValidation").map(String::as_str)),
        field_manager: query.get("fieldManager").cloned(),
        force: flag(query, "force"),
    })
}

pub(super) fn selectors(
    rt: &ResourceType,
    query: &Query,
    name: Option<&str>,
) -> Result<(LabelSelector, FieldSelector), SimError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))?;
    let mut fields = crate::events::field_selector(rt, fields)?;
    if let Some(name) = name {
        fields = fields.and(FieldSelector::name_equals(name));
    }
    Ok((labels, fields))
}

fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn object_response(
    r: &ResourceRequest,
    status: u16,
    object: &Value,
    accept: &str,
    query: &Query,
) -> Response {
    if table::wants_table(accept) {
        let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
        let doc = table::table(
            &r.rt,
            &r.version,
            std::slice::from_ref(object),
            &json!({}),
            include,
        );
        return json_response_typed(status, &doc, table::TABLE_CONTENT_TYPE);
    }
    if table::wants_metadata_only(accept) {
        let doc = table::partial_metadata(object);
        return json_response_typed(status, &doc, table::METADATA_CONTENT_TYPE);
    }
    json_response(status, object)
}

fn write_response(call: &Call<'_>, outcome: &WriteOutcome) -> Response {
    let status = if outcome.created { 201 } else { 200 };
    with_warnings(call.respond(status, &outcome.object), &outcome.warnings)
}

/// One request for objects of a resource type, with everything its handler needs.
pub(super) struct Call<'a> {
    pub(super) shared: &'a Arc<Shared>,
    pub(super) incoming: &'a Incoming,
    pub(super) r: &'a ResourceRequest,
    pub(super) query: &'a Query,
    pub(super) content_type: Option<&'a str>,
    pub(super) accept: &'a str,
    pub(super) body: &'a [u8],
}

impl Call<'_> {
    pub(super) fn name(&self) -> &str {
        self.r.name.as_deref().unwrap_or_default()
    }

    fn target(&self) -> Target<'_> {
        Target {
            rt: &self.r.rt,
            version: &self.r.version,
            namespace: self.r.namespace.as_deref(),
            name: self.name(),
            subresource: self.r.subresource.as_deref(),
        }
    }

    pub(super) fn respond(&self, status: u16, object: &Value) -> Response {
        object_response(self.r, status, object, self.accept, self.query)
    }
}

pub(super) fn list_metadata(resource_version: u64) -> Value {
    json!({"resourceVersion": resource_version.to_string()})
}

pub(super) fn resource_request(call: &Call<'_>) -> Result<Response, SimError> {
    let r = call.r;
    if let Some(sub) = r.subresource.as_deref()
        && !(sub == "status" && r.rt.status_subresource)
    {
        return Err(SimError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    match r.verb {
        "get" => get_object(call),
        "list" => list_objects(call),
        "watch" => watch_objects(call),
        "create" => create_object(call),
        "update" => update_object(call),
        "patch" => patch_object(call),
        "delete" => delete_object(call),
        "deletecollection" => delete_collection(call),
        _ => Err(SimError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn get_object(call: &Call<'_>) -> Result<Response, SimError> {
    let r = call.r;
    let object =
        call.shared
            .lock_store()
            .get(&r.rt, &r.version, r.namespace.as_deref(), call.name())?;
    Ok(call.respond(200, &object))
}

fn list_objects(call: &Call<'_>) -> Result<Response, SimError> {
    let (r, query, accept) = (call.r, call.query, call.accept);
    let (labels, fields) = selectors(&r.rt, query, None)?;
    let list_query = ListQuery {
        labels,
        fields,
        limit: query.get("limit").and_then(|l| l.parse().ok()),
        continue_token: query.get("continue").map(String::as_str),
    };
    let page =
        call.shared
            .lock_store()
            .list(&r.rt, &r.version, r.namespace.as_deref(), &list_query)?;
    let mut metadata = list_metadata(page.resource_version);
    if let Some(token) = &page.continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(remaining) = page.remaining {
        metadata["remainingItemCount"] = json!(remaining);
    }
    if table::wants_table(accept) {
        let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
        let doc = table::table(&r.rt, &r.version, &page.items, &metadata, include);
        return Ok(json_response_typed(200, &doc, table::TABLE_CONTENT_TYPE));
    }
    if table::wants_metadata_only(accept) {
        let items: Vec<Value> = page.items.iter().map(table::partial_metadata).collect();
        let doc = json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": items,
        });
        return Ok(json_response_typed(
            200,
            &doc,
            table::METADATA_LIST_CONTENT_TYPE,
        ));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": r.rt.list_kind,
            "apiVersion": r.rt.api_version(&r.version),
            "metadata": metadata,
            "items": page.items,
        }),
    ))
}

/// Where a watch starts, from `sendInitialEvents` and `resourceVersion`.
fn watch_start(query: &Query) -> Result<WatchStart, SimError> {
    let rv = query.get("resourceVersion").map_or("", String::as_str);
    Ok(if flag(query, "sendInitialEvents") {
        WatchStart::InitialEvents
    } else if rv.is_empty() || rv == "0" {
        WatchStart::Now
    } else {
        WatchStart::After(
            rv.parse()
                .map_err(|_| SimError::bad_request(format!("invalid resource version: {rv}")))?,
        )
    })
}

fn watch_objects(call: &Call<'_>) -> Result<Response, SimError> {
    let (r, query, accept) = (call.r, call.query, call.accept);
    let (labels, fields) = selectors(&r.rt, query, r.name.as_deref())?;
    let start = watch_start(query)?;
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let table = table::wants_table(accept)
        .then(|| IncludeObject::parse(query.get("includeObject").map(String::as_str)));
    let metadata_only = table.is_none() && table::wants_metadata_only(accept);
    let content_type = if table.is_some() {
        table::TABLE_CONTENT_TYPE
    } else if metadata_only {
        table::METADATA_CONTENT_TYPE
    } else {
        "application/json"
    };
    let rx = watch::spawn(
        Arc::clone(call.shared),
        WatchRequest {
            rt: Arc::clone(&r.rt),
            version: r.version.clone(),
            namespace: r.namespace.clone(),
            labels,
            fields,
            start,
            bookmarks: flag(query, "allowWatchBookmarks"),
            timeout,
            table,
            metadata_only,
        },
    );
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}

fn create_object(call: &Call<'_>) -> Result<Response, SimError> {
    let r = call.r;
    let object = parse_body(call.body, call.content_type)?;
    let options = write_options(call, "CreateOptions")?;
    let outcome = call
        .shared
        .write(|store| store.create(&r.rt, &r.version, r.namespace.as_deref(), object, &options))?;
    Ok(write_response(call, &outcome))
}

fn update_object(call: &Call<'_>) -> Result<Response, SimError> {
    let object = parse_body(call.body, call.content_type)?;
    let options = write_options(call, "UpdateOptions")?;
    let target = call.target();
    let outcome = call
        .shared
        .write(|store| store.update(&target, object, &options))?;
    Ok(write_response(call, &outcome))
}

fn patch_object(call: &Call<'_>) -> Result<Response, SimError> {
    let raw_type = call.content_type.unwrap_or("");
    let kind = PatchKind::from_content_type(raw_type).ok_or_else(|| {
        SimError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {raw_type:?})"
        ))
    })?;
    let patch = if kind == PatchKind::Apply {
        crate::yaml::parse_one(call.body)?
    } else {
        parse_body(call.body, Some("application/json"))?
    };
    let options = write_options(call, "PatchOptions")?;
    let target = call.target();
    let outcome = call
        .shared
        .write(|store| store.patch(&target, kind, &patch, &options))?;
    Ok(write_response(call, &outcome))
}
