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

use std::collections::HashMap;

use base64::Engine as _;
use ring::hmac;
use ring::rand::SystemRandom;
use serde_json::{Value, json};

use crate::error::SimError;
use crate::store::{ObjectKey, Store};

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

/// A token issued for a ServiceAccount: valid while that ServiceAccount exists (and, when it
/// existed at issue time, while it is the same object, as a bound token is).
#[derive(Debug, Clone)]
struct ServiceAccountToken {
    namespace: String,
    name: String,
    uid: Option<String>,
}

/// The bearer tokens the simulator accepts: random (an HMAC of a counter under a key from the
/// system RNG), never logged.
pub(crate) struct Tokens {
    key: hmac::Key,
    issued: u64,
    admin: String,
    service_accounts: HashMap<String, ServiceAccountToken>,
}

impl Tokens {
    pub fn new() -> std::io::Result<Self> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| std::io::Error::other("the system random generator failed"))?;
        let mut tokens = Self {
            key,
            issued: 0,
            admin: String::new(),
            service_accounts: HashMap::new(),
        };
        tokens.admin = tokens.next_token();
        Ok(tokens)
    }

    fn next_token(&mut self) -> String {
        self.issued += 1;
        let tag = hmac::sign(&self.key, &self.issued.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// A new token for the ServiceAccount `namespace/name`, bound to `uid` when given.
    pub fn issue(&mut self, namespace: &str, name: &str, uid: Option<String>) -> String {
        let token = self.next_token();
        self.service_accounts.insert(
            token.clone(),
            ServiceAccountToken {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                uid,
            },
        );
        token
    }
}

/// The bearer token of an `Authorization` header.
pub(crate) fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, token) = header?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// What identifies a client by its bearer token without showing it: `sha256:` and the first
/// 16 hex digits of the token's SHA-256.
pub(crate) fn token_fingerprint(token: &str) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .fold("sha256:".to_owned(), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// The user behind an `Authorization` header, if its bearer token is one the simulator
/// issued (and, for a ServiceAccount token, the ServiceAccount still exists).
pub(crate) fn authenticate(tokens: &Tokens, store: &Store, header: Option<&str>) -> Option<User> {
    let token = bearer_token(header)?;
    if token == tokens.admin {
        return Some(User::admin());
    }
    let issued = tokens.service_accounts.get(token)?;
    let account = store.lookup(&ObjectKey {
        group: String::new(),
        plural: "serviceaccounts".to_owned(),
        namespace: issued.namespace.clone(),
        name: issued.name.clone(),
    })?;
    let uid = account.pointer("/metadata/uid").and_then(Value::as_str);
    if issued
        .uid
        .as_deref()
        .is_some_and(|bound| Some(bound) != uid)
    {
        return None;
    }
    Some(User::service_account(&issued.namespace, &issued.name))
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attributes {
    Resource(ResourceAttributes),
    NonResource { verb: String, path: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResourceAttributes {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

fn is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// `NewRequestInfo`: `/api/v1/...` and `/apis/<group>/<version>/...` with at least a resource
/// are resource requests; everything else is a non-resource request with the lowercased
/// method as verb.
pub(crate) fn attributes(method: &str, path: &str, query: &[(String, String)]) -> Attributes {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => {
            return Attributes::NonResource {
                verb: method.to_ascii_lowercase(),
                path: path.to_owned(),
            };
        }
    };
    let mut verb = match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    };
    if rest.first() == Some(&"watch") && rest.len() >= 2 {
        verb = "watch";
        rest = &rest[1..];
    }
    let mut namespace = "";
    if let ["namespaces", ns, tail @ ..] = rest {
        namespace = ns;
        // `namespaces/<ns>/<resource>...` unless the next part is a namespace subresource.
        if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") {
            rest = tail;
        }
    }
    let part = |i: usize| rest.get(i).copied().unwrap_or("");
    let mut name = part(1);
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if name.is_empty() && verb == "get" {
        verb = if param("watch").is_some_and(is_true) {
            "watch"
        } else {
            "list"
        };
        name = param("fieldSelector").and_then(selected_name).unwrap_or("");
    }
    if name.is_empty() && verb == "delete" {
        verb = "deletecollection";
    }
    Attributes::Resource(ResourceAttributes {
        verb: verb.to_owned(),
        group: group.to_owned(),
        version: version.to_owned(),
        namespace: namespace.to_owned(),
        resource: part(0).to_owned(),
        subresource: part(2).to_owned(),
        name: name.to_owned(),
    })
}

/// The name a field selector requires exactly (`metadata.name=<name>` alone), if a valid
/// path segment: a list or watch of one name is authorized as about that name.
fn selected_name(selector: &str) -> Option<&str> {
    let name = selector
        .strip_prefix("metadata.name==")
        .or_else(|| selector.strip_prefix("metadata.name="))?;
    let valid = !name.is_empty() && !name.contains([',', '/', '%']) && name != "." && name != "..";
    valid.then_some(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: &str, path: &str, query: &[(&str, &str)]) -> ResourceAttributes {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match attributes(method, path, &query) {
            Attributes::Resource(a) => a,
            other @ Attributes::NonResource { .. } => panic!("not a resource request: {other:?}"),
        }
    }

    #[test]
    fn request_info_follows_the_api_server() {
        let a = resource("GET", "/api/v1/namespaces/ns/secrets/s", &[]);
        assert_eq!(
            (
                a.verb.as_str(),
                a.namespace.as_str(),
                a.resource.as_str(),
                a.name.as_str()
            ),
            ("get", "ns", "secrets", "s")
        );
        let a = resource("GET", "/api/v1/namespaces/ns/secrets", &[("watch", "1")]);
        assert_eq!(a.verb, "watch");
        let a = resource("GET", "/api/v1/watch/namespaces/ns/secrets", &[]);
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("watch", "ns"));
        let a = resource(
            "GET",
            "/api/v1/secrets",
            &[("fieldSelector", "metadata.name=s")],
        );
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("list", "s", "")
        );
        let a = resource(
            "DELETE",
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
            &[],
        );
        assert_eq!(
            (a.verb.as_str(), a.group.as_str()),
            ("deletecollection", "coordination.k8s.io")
        );
        let a = resource("PATCH", "/apis/x.io/v1/namespaces/ns/things/t/status", &[]);
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str()),
            ("things", "status")
        );
        let a = resource("GET", "/api/v1/namespaces/ns", &[]);
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "ns", "ns")
        );
        assert_eq!(
            attributes("GET", "/apis/x.io/v1", &[]),
            Attributes::NonResource {
                verb: "get".to_owned(),
                path: "/apis/x.io/v1".to_owned()
            }
        );
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let attrs = Attributes::Resource(resource(
            "PUT",
            "/apis/x.io/v1/namespaces/ns/things/t/status",
            &[],
        ));
        let rule = |r: Value| rule_allows(&r, &attrs);
        assert!(rule(
            json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things/status"]})
        ));
        assert!(rule(
            json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/status"]})
        ));
        assert!(!rule(
            json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things"]})
        ));
        assert!(rule(
            json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things/status"], "resourceNames": ["t"]})
        ));
        assert!(!rule(
            json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things/status"], "resourceNames": ["u"]})
        ));
        assert!(!rule(
            json!({"verbs": ["get"], "apiGroups": ["x.io"], "resources": ["things/status"]})
        ));
        let list = Attributes::Resource(resource("GET", "/apis/x.io/v1/namespaces/ns/things", &[]));
        assert!(!rule_allows(
            &json!({"verbs": ["list"], "apiGroups": ["x.io"], "resources": ["things"], "resourceNames": ["t"]}),
            &list
        ));
        let metrics = Attributes::NonResource {
            verb: "get".to_owned(),
            path: "/metrics/x".to_owned(),
        };
        assert!(rule_allows(
            &json!({"verbs": ["get"], "nonResourceURLs": ["/metrics/*"]}),
            &metrics
        ));
        assert!(!rule_allows(
            &json!({"verbs": ["get"], "nonResourceURLs": ["/metrics"]}),
            &metrics
        ));
    }

    #[test]
    fn forbidden_messages_name_the_scope() {
        let user = User::service_account("ns", "sa");
        let attrs = Attributes::Resource(resource("PUT", "/api/v1/namespaces/ns/secrets/x", &[]));
        let error = forbidden(&user, &attrs);
        assert_eq!(
            error.message,
            "secrets \"x\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot update resource \"secrets\" in API group \"\" in the namespace \"ns\""
        );
        assert_eq!(error.details, Some(json!({"name": "x", "kind": "secrets"})));
        let cluster =
            Attributes::Resource(resource("GET", "/apis/coordination.k8s.io/v1/leases", &[]));
        assert_eq!(
            forbidden(&user, &cluster).message,
            "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:ns:sa\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" at the cluster scope"
        );
    }
}
