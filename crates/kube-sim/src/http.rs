//! HTTP front end: routes Kubernetes API paths to discovery, the store and watches; records
//! every request (with its user and whether it is a dry run); with RBAC on, authenticates and
//! authorizes it; applies injected faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::accounting::RecordedRequest;
use crate::auth::{self, Attributes, User};
use crate::discovery;
use crate::error::{FieldCause, SimError, Subject};
use crate::faults::RequestTarget;
use crate::patch::PatchKind;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, ListQuery, Target, WriteOptions, WriteOutcome};
use crate::table::{self, IncludeObject};
use crate::validation::FieldValidation;
use crate::watch::{self, WatchRequest, WatchStart};

const BODY_LIMIT: usize = 16 * 1024 * 1024;
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

/// A request for objects of one resource type.
struct ResourceRequest {
    rt: Arc<ResourceType>,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    verb: &'static str,
}

impl ResourceRequest {
    fn resource_label(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.rt.plural),
            None => self.rt.plural.clone(),
        }
    }
}

enum Route {
    Version,
    Health,
    CoreVersions,
    GroupList,
    Group(String),
    GroupVersion(String, String),
    OpenApiV3Root,
    OpenApiV3(String, String),
    /// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` (`kubectl auth can-i`).
    SelfSubjectAccessReview,
    Resource(ResourceRequest),
    NotFound,
}

type Query = HashMap<String, String>;

fn flag(query: &Query, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v.eq_ignore_ascii_case("true"))
}

fn route(shared: &Shared, method: &Method, path: &str, query: &Query) -> Route {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Route::Version,
        ["healthz" | "livez" | "readyz", ..] => return Route::Health,
        ["openapi", "v3"] => return Route::OpenApiV3Root,
        ["openapi", "v3", "api", v] => return Route::OpenApiV3(String::new(), (*v).to_owned()),
        ["openapi", "v3", "apis", g, v] => {
            return Route::OpenApiV3((*g).to_owned(), (*v).to_owned());
        }
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] if *method == Method::POST => {
            return Route::SelfSubjectAccessReview;
        }
        ["api"] => return Route::CoreVersions,
        ["apis"] => return Route::GroupList,
        ["apis", g] => return Route::Group((*g).to_owned()),
        ["api", v] => return Route::GroupVersion(String::new(), (*v).to_owned()),
        ["apis", g, v] => return Route::GroupVersion((*g).to_owned(), (*v).to_owned()),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let store = shared.lock_store();
    let registry = &store.registry;
    let (namespace, plural, name, subresource) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if registry
                .find(group, version, plural)
                .is_some_and(|t| t.namespaced) =>
        {
            (Some((*ns).to_owned()), *plural, tail.first(), tail.get(1))
        }
        [plural, tail @ ..] => (None, *plural, tail.first(), tail.get(1)),
        [] => return Route::NotFound,
    };
    if rest.len() > 5 {
        return Route::NotFound;
    }
    let Some(rt) = registry.find(group, version, plural) else {
        return Route::NotFound;
    };
    let name = name.map(|n| (*n).to_owned());
    let watching = watch_path || flag(query, "watch");
    let verb = match (method, name.is_some()) {
        (&Method::GET, _) if watching => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return Route::NotFound,
    };
    // Namespaced objects are addressed inside a namespace; only list/watch span namespaces.
    if rt.namespaced && namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Route::NotFound;
    }
    Route::Resource(ResourceRequest {
        rt,
        version: version.to_owned(),
        namespace,
        name,
        subresource: subresource.map(|s| (*s).to_owned()),
        verb,
    })
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(crate) fn json_response(status: u16, body: &Value) -> Response {
    json_response_typed(status, body, "application/json")
}

fn json_response_typed(status: u16, body: &Value, content_type: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

pub(crate) fn error_response(error: &SimError) -> Response {
    json_response(error.code, &error.to_status())
}

fn not_found_response() -> Response {
    error_response(&SimError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    ))
}

/// The parts of an HTTP request the simulator looks at, body included.
pub(crate) struct Incoming {
    method: Method,
    path: String,
    raw_query: String,
    query: Query,
    content_type: Option<String>,
    accept: Option<String>,
    user_agent: Option<String>,
    /// The `Authorization` header: never logged or recorded.
    authorization: Option<String>,
    /// Who sent the request, when its token is one the simulator issued.
    user: Option<User>,
    /// The fingerprint of the bearer token, whatever it is.
    client: Option<String>,
    body: Result<Bytes, SimError>,
}

impl Incoming {
    async fn read(request: Request) -> Self {
        let (parts, body) = request.into_parts();
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        let query: Query = form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect();
        let body = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|e| SimError::bad_request(format!("reading the request body failed: {e}")));
        Self {
            path: parts.uri.path().to_owned(),
            raw_query,
            query,
            content_type: header_string(&parts.headers, header::CONTENT_TYPE),
            accept: header_string(&parts.headers, header::ACCEPT),
            user_agent: header_string(&parts.headers, header::USER_AGENT),
            authorization: header_string(&parts.headers, header::AUTHORIZATION),
            user: None,
            client: None,
            method: parts.method,
            body,
        }
    }

    fn body(&self) -> &[u8] {
        self.body.as_ref().map_or(&[], |b| b.as_ref())
    }

    /// The request as the authorizer sees it.
    fn attributes(&self) -> Attributes {
        let query: Vec<(String, String)> = form_urlencoded::parse(self.raw_query.as_bytes())
            .into_owned()
            .collect();
        auth::attributes(self.method.as_str(), &self.path, &query)
    }

    /// Every `dryRun` query parameter, in order (the parameter may repeat).
    fn dry_run_values(&self) -> Vec<String> {
        form_urlencoded::parse(self.raw_query.as_bytes())
            .filter(|(k, _)| k == "dryRun")
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// Whether a write asks for a dry run: `dryRun=All` in the query, or for deletes in the
    /// `DeleteOptions` body (which, when present, replaces the query parameters).
    fn asks_dry_run(&self, verb: &str) -> bool {
        if matches!(verb, "delete" | "deletecollection") && !is_blank(self.body()) {
            return self
                .delete_options_body()
                .ok()
                .and_then(|b| b.get("dryRun").and_then(Value::as_array).cloned())
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        }
        WRITE_VERBS.contains(&verb) && self.dry_run_values().iter().any(|v| v == "All")
    }

    /// The `DeleteOptions` of a delete's body, JSON or (as client-go's typed clients send
    /// them, helm's release storage among them) protobuf.
    fn delete_options_body(&self) -> Result<Value, SimError> {
        let invalid = |e: &dyn std::fmt::Display| {
            SimError::bad_request(format!("invalid DeleteOptions: {e}"))
        };
        match self.content_type.as_deref() {
            Some(t) if t.starts_with("application/vnd.kubernetes.protobuf") => {
                crate::protobuf::decode(self.body()).map_err(|e| invalid(&e.message))
            }
            _ => serde_json::from_slice(self.body()).map_err(|e| invalid(&e)),
        }
    }
}

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let mut incoming = Incoming::read(request).await;
    incoming.user = {
        let tokens = shared.tokens();
        auth::authenticate(
            &tokens,
            &shared.lock_store(),
            incoming.authorization.as_deref(),
        )
    };
    incoming.client =
        auth::bearer_token(incoming.authorization.as_deref()).map(auth::token_fingerprint);
    let route = route(&shared, &incoming.method, &incoming.path, &incoming.query);
    let (verb, resource, namespace, name) = match &route {
        Route::Resource(r) => (
            Some(r.verb.to_owned()),
            Some(r.resource_label()),
            r.namespace.clone(),
            r.name.clone(),
        ),
        Route::SelfSubjectAccessReview => (
            Some("create".to_owned()),
            Some("selfsubjectaccessreviews".to_owned()),
            None,
            None,
        ),
        _ => (None, None, None, None),
    };
    let dry_run = verb.as_deref().is_some_and(|v| incoming.asks_dry_run(v));
    let log_index = shared.record_request(RecordedRequest {
        method: incoming.method.to_string(),
        path: incoming.path.clone(),
        query: incoming.raw_query.clone(),
        content_type: incoming.content_type.clone(),
        accept: incoming.accept.clone(),
        user_agent: incoming.user_agent.clone(),
        verb,
        resource,
        namespace,
        name,
        dry_run,
        user: incoming.user.as_ref().map(|u| u.name.clone()),
        client: incoming.client.clone(),
        status: 0,
    });
    let response = match check_access(&shared, &incoming) {
        Ok(()) => answer(&shared, route, &incoming, dry_run).await,
        Err(error) => error_response(&error),
    };
    shared.set_request_status(log_index, response.status().as_u16());
    response
}

/// With RBAC on: 401 without a valid token, 403 unless the user may make the request.
fn check_access(shared: &Shared, incoming: &Incoming) -> Result<(), SimError> {
    if !shared.rbac {
        return Ok(());
    }
    let user = incoming.user.as_ref().ok_or_else(auth::unauthorized)?;
    let attrs = incoming.attributes();
    match auth::authorize(&shared.lock_store(), user, &attrs) {
        Some(_) => Ok(()),
        None => Err(auth::forbidden(user, &attrs)),
    }
}

/// Injected faults first (delays, then at most one failure), then the real handler.
async fn answer(
    shared: &Arc<Shared>,
    route: Route,
    incoming: &Incoming,
    dry_run: bool,
) -> Response {
    if let Route::Resource(r) = &route {
        let resource = r.resource_label();
        let (delay, failure) = shared.faults().take(&RequestTarget {
            verb: r.verb,
            resource: &resource,
            name: r.name.as_deref(),
            namespace: r.namespace.as_deref(),
            dry_run,
            client: incoming.client.as_deref(),
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(failure) = failure {
            let mut response = error_response(&failure.to_error(&r.rt, r.name.as_deref()));
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return response;
        }
    }
    dispatch(shared, route, incoming)
}

fn dispatch(shared: &Arc<Shared>, route: Route, incoming: &Incoming) -> Response {
    let accept = incoming.accept.as_deref().unwrap_or("application/json");
    match route {
        Route::Version => json_response(200, &discovery::version()),
        Route::Health => {
            let mut response = Response::new(Body::from("ok"));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        Route::CoreVersions => match discovery::aggregated_version(accept) {
            Some(v) => json_response_typed(
                200,
                &discovery::aggregated(&shared.lock_store().registry, true, v),
                &discovery::aggregated_content_type(v),
            ),
            None => json_response(200, &discovery::core_versions(&shared.address)),
        },
        Route::GroupList => match discovery::aggregated_version(accept) {
            Some(v) => json_response_typed(
                200,
                &discovery::aggregated(&shared.lock_store().registry, false, v),
                &discovery::aggregated_content_type(v),
            ),
            None => json_response(200, &discovery::group_list(&shared.lock_store().registry)),
        },
        Route::Group(group) => discovery::group(&shared.lock_store().registry, &group)
            .map_or_else(not_found_response, |doc| json_response(200, &doc)),
        Route::GroupVersion(group, version) => {
            discovery::resource_list(&shared.lock_store().registry, &group, &version)
                .map_or_else(not_found_response, |doc| json_response(200, &doc))
        }
        Route::OpenApiV3Root => json_response(
            200,
            &discovery::openapi_v3_root(&shared.lock_store().registry),
        ),
        Route::OpenApiV3(group, version) => {
            discovery::openapi_v3_group_version(&shared.lock_store().registry, &group, &version)
                .map_or_else(not_found_response, |doc| json_response(200, &doc))
        }
        Route::NotFound => not_found_response(),
        Route::SelfSubjectAccessReview => self_subject_access_review(shared, incoming)
            .unwrap_or_else(|error| error_response(&error)),
        Route::Resource(r) => {
            let body = match &incoming.body {
                Ok(body) => body,
                Err(error) => return error_response(error),
            };
            let call = Call {
                shared,
                incoming,
                r: &r,
                query: &incoming.query,
                content_type: incoming.content_type.as_deref(),
                accept,
                body,
            };
            resource_request(&call).unwrap_or_else(|error| error_response(&error))
        }
    }
}

/// Answers whether the requesting user may do what the review's `spec` describes.
fn self_subject_access_review(shared: &Shared, incoming: &Incoming) -> Result<Response, SimError> {
    let review = parse_body(incoming.body(), incoming.content_type.as_deref())?;
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let text = |pointer: &str| {
        spec.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let attrs = if spec.get("nonResourceAttributes").is_some() {
        Attributes::NonResource {
            verb: text("/nonResourceAttributes/verb"),
            path: text("/nonResourceAttributes/path"),
        }
    } else {
        Attributes::Resource(auth::ResourceAttributes {
            verb: text("/resourceAttributes/verb"),
            group: text("/resourceAttributes/group"),
            version: text("/resourceAttributes/version"),
            namespace: text("/resourceAttributes/namespace"),
            resource: text("/resourceAttributes/resource"),
            subresource: text("/resourceAttributes/subresource"),
            name: text("/resourceAttributes/name"),
        })
    };
    let decision = match (&incoming.user, shared.rbac) {
        (_, false) => Some(String::new()),
        (Some(user), true) => auth::authorize(&shared.lock_store(), user, &attrs),
        (None, true) => None,
    };
    let mut status = json!({"allowed": decision.is_some()});
    if let Some(reason) = decision.filter(|r| !r.is_empty()) {
        status["reason"] = json!(reason);
    }
    Ok(json_response(
        201,
        &json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": spec,
            "status": status,
        }),
    ))
}

fn parse_body(body: &[u8], content_type: Option<&str>) -> Result<Value, SimError> {
    let essence = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    match essence {
        "application/yaml" | "application/apply-patch+yaml" => crate::yaml::parse_one(body),
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body),
        "application/cbor" | "application/apply-patch+cbor" => {
            Err(SimError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({essence} is not supported by the simulator)"
            )))
        }
        _ => serde_json::from_slice(body)
            .map_err(|e| SimError::bad_request(format!("the request body is not valid JSON: {e}"))),
    }
}

/// The `dryRun` values a write asked for, checked as `ValidateDryRun`
/// (`k8s.io/apimachinery/pkg/api/validation`) does: only `All` is allowed, anything else is a
/// 422 about the options kind (`CreateOptions`, `UpdateOptions`, `PatchOptions`,
/// `DeleteOptions`), as the handlers in `k8s.io/apiserver/pkg/endpoints/handlers` answer.
fn check_dry_run(options_kind: &str, values: &[String]) -> Result<bool, SimError> {
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

fn selectors(
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
struct Call<'a> {
    shared: &'a Arc<Shared>,
    incoming: &'a Incoming,
    r: &'a ResourceRequest,
    query: &'a Query,
    content_type: Option<&'a str>,
    accept: &'a str,
    body: &'a [u8],
}

impl Call<'_> {
    fn name(&self) -> &str {
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

    fn respond(&self, status: u16, object: &Value) -> Response {
        object_response(self.r, status, object, self.accept, self.query)
    }
}

fn list_metadata(resource_version: u64) -> Value {
    json!({"resourceVersion": resource_version.to_string()})
}

fn resource_request(call: &Call<'_>) -> Result<Response, SimError> {
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

fn delete_object(call: &Call<'_>) -> Result<Response, SimError> {
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

fn delete_collection(call: &Call<'_>) -> Result<Response, SimError> {
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
