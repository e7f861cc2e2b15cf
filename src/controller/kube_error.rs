//! Kubernetes errors in words. `kube::Error`'s own `Display` repeats the API server's status as
//! Rust `Debug` text (`ApiError: … (Status { status: Some(Failure), code: 404, … })`); what a
//! person reads (events, status, the log's `error` fields) comes from here instead: the HTTP
//! status and what it means, the API server's own message, and for a refusal by RBAC who may not
//! do what.

use std::error::Error as _;

use kube::core::Status;

/// A Kubernetes call, as RBAC names it, for the words of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// `get`, `list`, `create`, `update`, `patch`, ...
    pub verb: &'a str,
    /// The resource as RBAC rules name it: `secrets`, `deployments`, `namespaces`, ...
    pub resource: &'a str,
    /// The namespace of a namespaced object; `None` for cluster-scoped ones.
    pub namespace: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn new(verb: &'a str, resource: &'a str, namespace: Option<&'a str>) -> Self {
        Self {
            verb,
            resource,
            namespace,
        }
    }
}

/// One short sentence for a failed Kubernetes call, without Rust `Debug` text: `not found
/// (404): …`, `forbidden (403): …`, `conflict (409): …`, `the API server could not be reached:
/// …`, with the API server's message.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => describe_status(status, None),
        other => describe_other(other),
    }
}

/// [`describe`], and for a refusal by RBAC, in words: which verb on which resource the operator
/// may not use, where, and that its RBAC rules decide it.
pub fn describe_call(error: &kube::Error, call: Call<'_>) -> String {
    match error {
        kube::Error::Api(status) => describe_status(status, Some(call)),
        other => describe_other(other),
    }
}

/// Whether the API server said the object does not exist.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether the API server refused the call (403: RBAC, or an admission plugin).
pub fn is_forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403)
}

fn describe_status(status: &Status, call: Option<Call<'_>>) -> String {
    let message = status.message.trim();
    let code = status.code;
    match code {
        403 => forbidden(message, call),
        401 => format!(
            "unauthorized (401): the API server did not accept the operator's credentials{}",
            suffix(message)
        ),
        404 => format!("not found (404){}", suffix(message)),
        409 => format!("conflict (409){}", suffix(message)),
        410 => format!("gone (410){}", suffix(message)),
        413 => format!("too large (413){}", suffix(message)),
        422 => format!("invalid (422){}", suffix(message)),
        429 => format!("too many requests (429){}", suffix(message)),
        400 => format!("bad request (400){}", suffix(message)),
        500..=599 => format!(
            "the API server failed ({code}{}){}",
            reason_suffix(&status.reason),
            suffix(message)
        ),
        _ => format!(
            "the API server answered {code}{}{}",
            reason_suffix(&status.reason),
            suffix(message)
        ),
    }
}

/// A 403. RBAC denials (`… is forbidden: User "…" cannot get resource "secrets" …`) are said in
/// the operator's terms when the call is known; other refusals (an admission plugin, a
/// namespace being deleted) keep the API server's words.
fn forbidden(message: &str, call: Option<Call<'_>>) -> String {
    let rbac = message.contains(" cannot ") && message.contains("resource \"");
    match call {
        Some(call) if rbac => {
            let place = call.namespace.map_or_else(
                || " (cluster-wide)".to_owned(),
                |ns| format!(" in namespace {ns}"),
            );
            format!(
                "forbidden (403): the operator may not {} {}{place}; check its RBAC rules (its ClusterRole, or its Role when it watches one namespace)",
                call.verb, call.resource
            )
        }
        _ if rbac => format!("forbidden (403): {message}; check the operator's RBAC rules"),
        _ => format!("forbidden (403){}", suffix(message)),
    }
}

fn suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    }
}

/// Everything but an answer of the API server: the connection, TLS, the client's own
/// credentials, or an answer that could not be read.
fn describe_other(error: &kube::Error) -> String {
    let cause = causes(error);
    match error {
        kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) => {
            format!("the API server's answer could not be read: {cause}")
        }
        kube::Error::Auth(_) => format!("the operator's credentials could not be used: {cause}"),
        kube::Error::BuildRequest(_) | kube::Error::HttpError(_) => {
            format!("the request could not be built: {cause}")
        }
        _ => format!("the API server could not be reached: {cause}"),
    }
}

/// The error's causes, outermost first, without kube's own prefixes (`HyperError: `, ...) and
/// without a cause that only repeats the one before it.
fn causes(error: &kube::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) && !text.is_empty() {
            parts.push(text);
        }
        next = cause.source();
    }
    if parts.is_empty() {
        // No source: the variant's own words are all there is.
        return error.to_string();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status {
            status: Some(kube::core::response::StatusSummary::Failure),
            code,
            message: message.to_owned(),
            reason: reason.to_owned(),
            ..Status::default()
        }))
    }

    /// The shapes of Rust `Debug` output that must never reach a person.
    fn assert_no_debug_text(text: &str) {
        for shape in [
            "Status {",
            "Some(",
            "None",
            "ApiError",
            "Failure)",
            "HyperError",
        ] {
            assert!(!text.contains(shape), "{shape:?} in {text:?}");
        }
    }

    #[test]
    fn a_missing_object_is_not_found_with_the_servers_words() {
        let error = api(
            404,
            "NotFound",
            "deployments.apps \"scim-pusher\" not found",
        );
        assert!(error.to_string().contains("Status {"), "kube's own words");
        let text = describe(&error);
        assert_eq!(
            text,
            "not found (404): deployments.apps \"scim-pusher\" not found"
        );
        assert_no_debug_text(&text);
        assert!(is_not_found(&error));
        assert!(!is_forbidden(&error));
    }

    #[test]
    fn an_rbac_refusal_says_who_may_not_do_what() {
        let error = api(
            403,
            "Forbidden",
            "secrets \"app\" is forbidden: User \"system:serviceaccount:ops:op\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-a\"",
        );
        let text = describe_call(&error, Call::new("get", "secrets", Some("team-a")));
        assert_eq!(
            text,
            "forbidden (403): the operator may not get secrets in namespace team-a; check its RBAC rules (its ClusterRole, or its Role when it watches one namespace)"
        );
        let cluster = describe_call(&error, Call::new("get", "namespaces", None));
        assert!(
            cluster.contains("may not get namespaces (cluster-wide)"),
            "{cluster}"
        );
        let unknown_call = describe(&error);
        assert!(
            unknown_call.starts_with("forbidden (403): secrets \"app\" is forbidden: User")
                && unknown_call.ends_with("check the operator's RBAC rules"),
            "{unknown_call}"
        );
        assert!(is_forbidden(&error));
    }

    #[test]
    fn a_refusal_by_admission_keeps_the_servers_words() {
        let error = api(
            403,
            "Forbidden",
            "unable to create new content in namespace team-a because it is being terminated",
        );
        assert_eq!(
            describe_call(&error, Call::new("create", "secrets", Some("team-a"))),
            "forbidden (403): unable to create new content in namespace team-a because it is being terminated"
        );
    }

    #[test]
    fn every_status_code_reads_as_words() {
        let cases = [
            (
                409,
                "Conflict",
                "the object has been modified",
                "conflict (409): the object has been modified",
            ),
            (
                422,
                "Invalid",
                "data: Too long",
                "invalid (422): data: Too long",
            ),
            (
                401,
                "Unauthorized",
                "",
                "unauthorized (401): the API server did not accept the operator's credentials",
            ),
            (
                429,
                "TooManyRequests",
                "slow down",
                "too many requests (429): slow down",
            ),
            (
                503,
                "ServiceUnavailable",
                "etcd",
                "the API server failed (503 ServiceUnavailable): etcd",
            ),
            (500, "", "boom", "the API server failed (500): boom"),
            (418, "Teapot", "", "the API server answered 418 Teapot"),
        ];
        for (code, reason, message, expected) in cases {
            let text = describe(&api(code, reason, message));
            assert_eq!(text, expected);
            assert_no_debug_text(&text);
        }
    }

    #[tokio::test]
    async fn an_unreachable_api_server_says_so() {
        // Nothing listens on the discard port of loopback.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
            kube::Api::namespaced(client, "default");
        let error = api.get("app").await.unwrap_err();
        let text = describe(&error);
        assert!(
            text.starts_with("the API server could not be reached: "),
            "{text}"
        );
        assert!(!text.contains("ServiceError"), "{text}");
        assert_no_debug_text(&text);
    }
}
