//! Fault injection: failing or slowing requests that match a verb and resource. Failures
//! answer with the `Status` body the real server sends for that code (quota and admission
//! refusals, validation errors, conflicts, internal errors), naming the addressed object.

use std::time::Duration;

use serde_json::json;

use crate::error::{FieldCause, SimError, reason_for_code};
use crate::resources::ResourceType;

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FaultAction {
    /// Answer with this HTTP status and a realistic `Status` body without touching the store.
    Fail(Failure),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
}

/// An injected failure: the code, the variable part of the message, and `Invalid` causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    status: u16,
    message: Option<String>,
    causes: Vec<(String, String)>,
}

/// The message of the quota admission plugin when a quota is used up.
fn quota_message(resource: &str) -> String {
    let plural = resource.split('/').next().unwrap_or(resource);
    format!(
        "exceeded quota: sim-quota, requested: count/{plural}=1, used: count/{plural}=10, limited: count/{plural}=10"
    )
}

impl Failure {
    /// The error the real server would answer with, about `name` of `rt` (`None` for
    /// collections and creates without a name).
    pub(crate) fn to_error(&self, rt: &ResourceType, name: Option<&str>) -> SimError {
        let subject = rt.subject(name.unwrap_or(""));
        let detail = |default: &str| self.message.clone().unwrap_or_else(|| default.to_owned());
        let mut error = match self.status {
            403 => SimError::forbidden(subject, &detail("injected fault")),
            404 => SimError::not_found(subject),
            409 => SimError::conflict(
                subject,
                &detail(
                    "the object has been modified; please apply your changes to the latest version and try again",
                ),
            ),
            422 => {
                let causes: Vec<FieldCause> = self
                    .causes
                    .iter()
                    .map(|(field, message)| FieldCause::custom(field, message))
                    .collect();
                let mut error = SimError::invalid(subject, &causes);
                if causes.is_empty() {
                    error.message = format!("{}: {}", error.message, detail("injected fault"));
                }
                error
            }
            500 => SimError::internal(&detail("injected fault")),
            429 => SimError {
                details: Some(json!({"retryAfterSeconds": 1})),
                ..SimError::new(
                    429,
                    "TooManyRequests",
                    detail("Too many requests, please try again later."),
                )
            },
            code => SimError::new(code, reason_for_code(code), detail("injected fault")),
        };
        if self.status == 404
            && let Some(message) = &self.message
        {
            error.message.clone_from(message);
        }
        error
    }
}

/// Which requests a fault matches by dry-run-ness. A real admission webhook or quota refuses a
/// dry run as it refuses the real write, hence the default [`DryRunMatch::Both`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DryRunMatch {
    /// Dry runs and real requests.
    #[default]
    Both,
    /// Only `dryRun=All` requests.
    DryRunOnly,
    /// Only requests that are not dry runs.
    RealOnly,
}

impl DryRunMatch {
    fn matches(self, dry_run: bool) -> bool {
        match self {
            Self::Both => true,
            Self::DryRunOnly => dry_run,
            Self::RealOnly => !dry_run,
        }
    }
}

/// A rule that matches requests by verb, resource and optionally name, namespace, client
/// (bearer token) and dry-run-ness.
///
/// ```
/// use std::time::Duration;
/// use sync_client_kube_sim::{DryRunMatch, Fault};
/// let fail = Fault::fail("patch", "secrets").times(2).status(500);
/// let slow = Fault::latency("list", "*", Duration::from_millis(200));
/// let quota = Fault::quota_exceeded("create", "secrets").always();
/// let webhook = Fault::fail("update", "secrets")
///     .status(422)
///     .cause("data[password]", "Invalid value: \"<redacted>\": too weak")
///     .dry_run(DryRunMatch::RealOnly);
/// let conflicts = Fault::fail(Fault::WRITES, "secrets").status(409).always();
/// // Only the client whose kubeconfig carries this token (one of two replicas).
/// let leader = Fault::fail("update|patch", "leases").for_token("replica-a").always();
/// # let _ = (fail, slow, quota, webhook, conflicts, leader);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    verb: String,
    resource: String,
    name: Option<String>,
    namespace: Option<String>,
    /// Only requests with this bearer token, by its fingerprint (the token itself is not kept,
    /// so `Debug` cannot show it).
    client: Option<String>,
    /// Remaining matches; `None` = unlimited.
    remaining: Option<usize>,
    dry_run: DryRunMatch,
    action: FaultAction,
}

impl Fault {
    /// The verb pattern of every write: create, update, patch, delete, deletecollection.
    pub const WRITES: &'static str = "create|update|patch|delete|deletecollection";

    /// Fails the next matching request (change with [`Fault::times`]) with 500 (change with
    /// [`Fault::status`]). `verb` is get, list, watch, create, update, patch, delete or
    /// deletecollection, several of them joined by `|` (see [`Fault::WRITES`]), or `*`;
    /// `resource` is a plural, optionally with a subresource (`syncclientcredentials/status`),
    /// or `*`.
    pub fn fail(verb: &str, resource: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            resource: resource.to_owned(),
            name: None,
            namespace: None,
            client: None,
            remaining: Some(1),
            dry_run: DryRunMatch::Both,
            action: FaultAction::Fail(Failure {
                status: 500,
                message: None,
                causes: Vec::new(),
            }),
        }
    }

    /// A 403 as the ResourceQuota admission plugin answers when a quota is used up:
    /// `secrets "x" is forbidden: exceeded quota: sim-quota, requested: count/secrets=1,
    /// used: count/secrets=10, limited: count/secrets=10` (replace the part after
    /// `is forbidden: ` with [`Fault::message`]).
    pub fn quota_exceeded(verb: &str, resource: &str) -> Self {
        Self::fail(verb, resource)
            .status(403)
            .message(&quota_message(resource))
    }

    /// Delays every matching request (limit with [`Fault::times`]).
    pub fn latency(verb: &str, resource: &str, delay: Duration) -> Self {
        Self {
            action: FaultAction::Delay(delay),
            remaining: None,
            ..Self::fail(verb, resource)
        }
    }

    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Matches any number of requests until the fault is cleared.
    #[must_use]
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }

    /// The HTTP status of the failure; the body is the `Status` kube-apiserver sends with it:
    /// 403 `Forbidden` (`<resource> "<name>" is forbidden: <message>`), 404 `NotFound`, 409
    /// `Conflict` (`Operation cannot be fulfilled on <resource> "<name>": <message>`, by
    /// default the stale-resourceVersion text), 422 `Invalid` (`<Kind> "<name>" is invalid:
    /// <causes>`, see [`Fault::cause`]), 429 `TooManyRequests` (with `Retry-After: 1`), 500
    /// `InternalError` (`Internal error occurred: <message>`), and for other codes the reason
    /// of the code with the message as given.
    #[must_use]
    pub fn status(mut self, status: u16) -> Self {
        if let FaultAction::Fail(failure) = &mut self.action {
            failure.status = status;
        }
        self
    }

    /// The variable part of the failure message (the reason after `is forbidden: `, the
    /// conflict, the internal error; for 404 and codes without a frame, the whole message).
    #[must_use]
    pub fn message(mut self, message: &str) -> Self {
        if let FaultAction::Fail(failure) = &mut self.action {
            failure.message = Some(message.to_owned());
        }
        self
    }

    /// Adds a cause to a 422 `Invalid` failure: `field` and its message as the real server
    /// words it (e.g. `Invalid value: "x": must be no more than 63 characters`).
    #[must_use]
    pub fn cause(mut self, field: &str, message: &str) -> Self {
        if let FaultAction::Fail(failure) = &mut self.action {
            failure.causes.push((field.to_owned(), message.to_owned()));
        }
        self
    }

    /// Whether dry runs, real requests or both (the default) match.
    #[must_use]
    pub fn dry_run(mut self, which: DryRunMatch) -> Self {
        self.dry_run = which;
        self
    }

    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Matches only requests of the client that sends this bearer token (with RBAC off any
    /// token is accepted, and still tells one client from another): e.g. one of two operator
    /// replicas, each with its own kubeconfig ([`crate::KubeSim::kubeconfig_yaml_with_token`]).
    #[must_use]
    pub fn for_token(mut self, token: &str) -> Self {
        self.client = Some(crate::auth::token_fingerprint(token));
        self
    }

    fn matches(&self, request: &RequestTarget<'_>) -> bool {
        let field = |pattern: &str, actual: &str| pattern == "*" || pattern == actual;
        let verb = self.verb == "*" || self.verb.split('|').any(|v| v == request.verb);
        verb && field(&self.resource, request.resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == request.name)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| Some(n) == request.namespace)
            && self.dry_run.matches(request.dry_run)
            && self
                .client
                .as_deref()
                .is_none_or(|c| Some(c) == request.client)
    }
}

/// The parts of a request faults match on.
pub(crate) struct RequestTarget<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub dry_run: bool,
    /// The fingerprint of the request's bearer token.
    pub client: Option<&'a str>,
}

/// The active faults, in the order they were injected.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: Vec<Fault>,
}

impl Faults {
    pub fn add(&mut self, fault: Fault) {
        self.active.push(fault);
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// The actions for a request: every matching delay, then at most one failure; each
    /// matching fault uses up one of its remaining matches.
    pub fn take(&mut self, request: &RequestTarget<'_>) -> (Duration, Option<Failure>) {
        let mut delay = Duration::ZERO;
        let mut failure = None;
        for fault in &mut self.active {
            if fault.remaining == Some(0) || !fault.matches(request) {
                continue;
            }
            match &fault.action {
                FaultAction::Delay(d) => delay += *d,
                FaultAction::Fail(f) => {
                    if failure.is_some() {
                        continue;
                    }
                    failure = Some(f.clone());
                }
            }
            if let Some(n) = fault.remaining.as_mut() {
                *n -= 1;
            }
        }
        self.active.retain(|f| f.remaining != Some(0));
        (delay, failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(verb: &'a str, resource: &'a str, name: Option<&'a str>) -> RequestTarget<'a> {
        RequestTarget {
            verb,
            resource,
            name,
            namespace: Some("default"),
            dry_run: false,
            client: None,
        }
    }

    #[test]
    fn failures_are_used_up_and_filtered_by_name() {
        let mut faults = Faults::default();
        faults.add(
            Fault::fail("patch", "secrets")
                .name("a")
                .times(2)
                .status(503),
        );
        assert_eq!(faults.take(&target("patch", "secrets", Some("b"))).1, None);
        assert_eq!(
            faults
                .take(&target("patch", "secrets", Some("a")))
                .1
                .map(|f| f.status),
            Some(503)
        );
        assert!(
            faults
                .take(&target("patch", "secrets", Some("a")))
                .1
                .is_some()
        );
        assert_eq!(faults.take(&target("patch", "secrets", Some("a"))).1, None);
    }

    #[test]
    fn verb_lists_match_each_verb() {
        let mut faults = Faults::default();
        faults.add(Fault::fail(Fault::WRITES, "secrets").always());
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert!(
                faults.take(&target(verb, "secrets", None)).1.is_some(),
                "{verb}"
            );
        }
        for verb in ["get", "list", "watch"] {
            assert!(
                faults.take(&target(verb, "secrets", None)).1.is_none(),
                "{verb}"
            );
        }
    }

    #[test]
    fn a_fault_for_a_token_matches_only_that_client_and_does_not_show_the_token() {
        let mut faults = Faults::default();
        let fault = Fault::fail("update", "leases")
            .for_token("replica-a")
            .always();
        assert!(!format!("{fault:?}").contains("replica-a"));
        faults.add(fault);
        let a = crate::auth::token_fingerprint("replica-a");
        let b = crate::auth::token_fingerprint("replica-b");
        for (client, fails) in [
            (Some(a.as_str()), true),
            (Some(b.as_str()), false),
            (None, false),
        ] {
            let request = RequestTarget {
                client,
                ..target("update", "leases", Some("lease"))
            };
            assert_eq!(faults.take(&request).1.is_some(), fails, "{client:?}");
        }
    }

    #[test]
    fn latency_applies_to_wildcards() {
        let mut faults = Faults::default();
        faults.add(Fault::latency("*", "*", Duration::from_millis(5)));
        assert_eq!(
            faults.take(&target("get", "leases", None)).0,
            Duration::from_millis(5)
        );
    }
}
