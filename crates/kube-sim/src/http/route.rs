//! Routing: a Kubernetes API path to discovery, the access review, or a request for objects
//! of one resource type (with its verb).

use std::sync::Arc;

use axum::http::Method;

use crate::Shared;
use crate::resources::ResourceType;

use super::{Query, flag};

/// A request for objects of one resource type.
pub(super) struct ResourceRequest {
    pub(super) rt: Arc<ResourceType>,
    pub(super) version: String,
    pub(super) namespace: Option<String>,
    pub(super) name: Option<String>,
    pub(super) subresource: Option<String>,
    pub(super) verb: &'static str,
}

impl ResourceRequest {
    pub(super) fn resource_label(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.rt.plural),
            None => self.rt.plural.clone(),
        }
    }
}

pub(super) enum Route {
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

pub(super) fn route(shared: &Shared, method: &Method, path: &str, query: &Query) -> Route {
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
