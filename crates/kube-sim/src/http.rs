//! HTTP front end: routes Kubernetes API paths to discovery, the store and watches; records
//! every request (with its user and whether it is a dry run); with RBAC on, authenticates and
//! authorizes it; applies injected faults.
//!
//! - this module: the handler (record, authorize, faults), dispatch, discovery answers and the
//!   access review;
//! - [`route`]: path to route; [`incoming`]: the request as read;
//! - [`objects`]: requests for objects (get, list, watch, create, update, patch); [`delete`].

mod delete;
mod incoming;
mod objects;
mod route;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::Shared;
use crate::accounting::RecordedRequest;
use crate::auth::{self, Attributes};
use crate::discovery;
use crate::error::SimError;
use crate::faults::RequestTarget;

use incoming::Incoming;
use objects::{Call, resource_request};
use route::{Route, route};

const BODY_LIMIT: usize = 16 * 1024 * 1024;
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

type Query = HashMap<String, String>;

fn flag(query: &Query, key: &str) -> bool {
    query
        .get(key)
        .is_some_and(|v| v == "true" || v == "1" || v.eq_ignore_ascii_case("true"))
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
