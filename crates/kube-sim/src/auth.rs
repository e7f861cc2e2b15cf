//! Authentication by bearer token and RBAC authorization against the Role, ClusterRole,
//! RoleBinding and ClusterRoleBinding objects in the store.
//!
//! Follows kube-apiserver 1.34: request attributes as `RequestInfoFactory.NewRequestInfo`
//! (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`) derives them; rule and subject
//! matching as `plugin/pkg/auth/authorizer/rbac` (`rbac.go`, `RuleAllows`, `appliesToUser`);
//! `system:masters` is the privileged group the authorizer chain allows everything; the
//! default `system:discovery`, `system:public-info-viewer` and `system:basic-user` bindings
//! (discovery paths, health and version, self access reviews for every authenticated user)
//! are built in rather than stored. Denials are `responsewriters.Forbidden` bodies.
//!
//! Not modelled: ClusterRole `aggregationRule` (only a ClusterRole's own `rules` count),
//! anonymous requests (with RBAC on, a request without a valid token is 401, as with
//! `--anonymous-auth=false`), impersonation, client certificates, token expiry and audiences.
//!
//! - this module: RBAC rule and subject matching, the authorizer and its denials;
//! - [`tokens`]: authentication; [`attributes`]: what a request asks to do.

mod attributes;
mod tokens;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use crate::error::SimError;
use crate::store::{ObjectKey, Store};

pub(crate) use attributes::{Attributes, ResourceAttributes, attributes};
pub(crate) use tokens::{Tokens, authenticate, bearer_token, token_fingerprint};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// `user.SystemPrivilegedGroup`
const PRIVILEGED_GROUP: &str = "system:masters";
const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The `system:discovery` and `system:public-info-viewer` ClusterRoles' paths.
const PUBLIC_PATHS: &[&str] = &[
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
];

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    fn admin() -> Self {
        Self {
            name: "admin".to_owned(),
            groups: vec![PRIVILEGED_GROUP.to_owned(), AUTHENTICATED_GROUP.to_owned()],
        }
    }

    fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED_GROUP.to_owned(),
            ],
        }
    }
}

fn strings<'a>(rule: &'a Value, key: &str) -> Vec<&'a str> {
    rule.get(key)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `ResourceMatches`: `*`, the exact `resource[/subresource]`, or `*/subresource`.
fn resource_matches(rule_resources: &[&str], attrs: &ResourceAttributes) -> bool {
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    rule_resources.iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty()
                && r.strip_prefix("*/") == Some(attrs.subresource.as_str()))
    })
}

/// `RuleAllows` for one PolicyRule.
fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verbs = strings(rule, "verbs");
    match attrs {
        Attributes::Resource(a) => {
            let names = strings(rule, "resourceNames");
            (verbs.contains(&"*") || verbs.contains(&a.verb.as_str()))
                && strings(rule, "apiGroups")
                    .iter()
                    .any(|g| *g == "*" || *g == a.group)
                && resource_matches(&strings(rule, "resources"), a)
                && (names.is_empty() || (!a.name.is_empty() && names.contains(&a.name.as_str())))
        }
        Attributes::NonResource { verb, path } => {
            (verbs.contains(&"*") || verbs.contains(&verb.as_str()))
                && strings(rule, "nonResourceURLs")
                    .iter()
                    .any(|url| non_resource_url_matches(url, path))
        }
    }
}

fn non_resource_url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == "*"
        || rule_url == path
        || rule_url
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// `appliesToUser` for one subject of a binding in `binding_namespace` ("" for a
/// ClusterRoleBinding).
fn subject_matches(subject: &Value, user: &User, binding_namespace: &str) -> bool {
    let text = |key: &str| subject.get(key).and_then(Value::as_str).unwrap_or("");
    match text("kind") {
        "User" => user.name == text("name"),
        "Group" => user.groups.iter().any(|g| g == text("name")),
        "ServiceAccount" => {
            let namespace = if text("namespace").is_empty() {
                binding_namespace
            } else {
                text("namespace")
            };
            !namespace.is_empty()
                && user.name == format!("system:serviceaccount:{namespace}:{}", text("name"))
        }
        _ => false,
    }
}

fn rbac_key(plural: &str, namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        group: RBAC_GROUP.to_owned(),
        plural: plural.to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

/// The rules of the role a binding refers to: a Role in the binding's namespace, or a
/// ClusterRole. A missing role grants nothing.
fn bound_rules<'a>(store: &'a Store, binding: &Value, namespace: &str) -> Vec<&'a Value> {
    let text = |key: &str| {
        binding
            .pointer(&format!("/roleRef/{key}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let role = match text("kind") {
        "Role" if !namespace.is_empty() => {
            store.lookup(&rbac_key("roles", namespace, text("name")))
        }
        "ClusterRole" => store.lookup(&rbac_key("clusterroles", "", text("name"))),
        _ => None,
    };
    role.and_then(|r| r.get("rules"))
        .and_then(Value::as_array)
        .map(|rules| rules.iter().collect())
        .unwrap_or_default()
}

/// Why RBAC allows the request (`allowed by RoleBinding "x/ns" of Role "y" to User "z"`),
/// or `None` when no binding does.
fn rbac_allows(store: &Store, user: &User, attrs: &Attributes) -> Option<String> {
    let namespace = match attrs {
        Attributes::Resource(a) => a.namespace.as_str(),
        Attributes::NonResource { .. } => "",
    };
    let mut scopes = vec![("clusterrolebindings", "")];
    if !namespace.is_empty() {
        scopes.push(("rolebindings", namespace));
    }
    for (plural, scope) in scopes {
        for binding in store.objects_in(RBAC_GROUP, plural, scope) {
            let applies = binding
                .get("subjects")
                .and_then(Value::as_array)
                .is_some_and(|subjects| subjects.iter().any(|s| subject_matches(s, user, scope)));
            if applies
                && bound_rules(store, binding, scope)
                    .iter()
                    .any(|rule| rule_allows(rule, attrs))
            {
                return Some(allow_reason(binding, plural, scope, user));
            }
        }
    }
    None
}

fn allow_reason(binding: &Value, plural: &str, scope: &str, user: &User) -> String {
    let text = |pointer: &str| {
        binding
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let binding_name = if scope.is_empty() {
        text("/metadata/name").to_owned()
    } else {
        format!("{}/{scope}", text("/metadata/name"))
    };
    let kind = if plural == "rolebindings" {
        "RoleBinding"
    } else {
        "ClusterRoleBinding"
    };
    format!(
        "RBAC: allowed by {kind} \"{binding_name}\" of {} \"{}\" to User \"{}\"",
        text("/roleRef/kind"),
        text("/roleRef/name"),
        user.name
    )
}

/// Whether `user` may do `attrs`: privileged group, the built-in public bindings, then RBAC.
/// `Some(reason)` when allowed.
pub(crate) fn authorize(store: &Store, user: &User, attrs: &Attributes) -> Option<String> {
    if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
        return Some(String::new());
    }
    let authenticated = user.groups.iter().any(|g| g == AUTHENTICATED_GROUP);
    match attrs {
        Attributes::NonResource { verb, path }
            if authenticated
                && verb == "get"
                && PUBLIC_PATHS
                    .iter()
                    .any(|url| non_resource_url_matches(url, path)) =>
        {
            return Some(
                "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\"".to_owned(),
            );
        }
        Attributes::Resource(a)
            if authenticated
                && a.group == "authorization.k8s.io"
                && a.verb == "create"
                && matches!(
                    a.resource.as_str(),
                    "selfsubjectaccessreviews" | "selfsubjectrulesreviews"
                ) =>
        {
            return Some(
                "RBAC: allowed by ClusterRoleBinding \"system:basic-user\" of ClusterRole \"system:basic-user\" to Group \"system:authenticated\"".to_owned(),
            );
        }
        _ => {}
    }
    rbac_allows(store, user, attrs)
}

/// 401 for a request without a valid token.
pub(crate) fn unauthorized() -> SimError {
    SimError::new(401, "Unauthorized", "Unauthorized")
}

/// The 403 `responsewriters.Forbidden` writes: `<resource> "<name>" is forbidden: User "<u>"
/// cannot <verb> resource "<resource[/sub]>" in API group "<g>" in the namespace "<ns>"`
/// (or `at the cluster scope`), details {name, group, kind: resource}.
pub(crate) fn forbidden(user: &User, attrs: &Attributes) -> SimError {
    match attrs {
        Attributes::NonResource { verb, path } => SimError {
            details: Some(json!({})),
            ..SimError::new(
                403,
                "Forbidden",
                format!(
                    "forbidden: User \"{}\" cannot {verb} path \"{path}\"",
                    user.name
                ),
            )
        },
        Attributes::Resource(a) => {
            let resource = if a.subresource.is_empty() {
                a.resource.clone()
            } else {
                format!("{}/{}", a.resource, a.subresource)
            };
            let scope = if a.namespace.is_empty() {
                "at the cluster scope".to_owned()
            } else {
                format!("in the namespace \"{}\"", a.namespace)
            };
            let why = format!(
                "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
                user.name, a.verb, a.group
            );
            let qualified = if a.group.is_empty() {
                a.resource.clone()
            } else {
                format!("{}.{}", a.resource, a.group)
            };
            let message = if a.name.is_empty() {
                format!("{qualified} is forbidden: {why}")
            } else {
                format!("{qualified} \"{}\" is forbidden: {why}", a.name)
            };
            let mut details = json!({"kind": a.resource});
            if !a.name.is_empty() {
                details["name"] = json!(a.name);
            }
            if !a.group.is_empty() {
                details["group"] = json!(a.group);
            }
            SimError {
                details: Some(details),
                ..SimError::new(403, "Forbidden", message)
            }
        }
    }
}
