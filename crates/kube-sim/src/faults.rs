//! Fault injection: failing or slowing requests that match a verb and resource.

use std::time::Duration;

/// What an injected fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this HTTP status (and a matching `Status` body) without touching the store.
    Fail { status: u16, message: String },
    /// Wait this long, then handle the request normally.
    Delay(Duration),
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

/// A rule that matches requests by verb, resource and optionally name and namespace.
///
/// ```
/// use std::time::Duration;
/// use sync_client_kube_sim::Fault;
/// let fail = Fault::fail("patch", "secrets").times(2).status(500);
/// let slow = Fault::latency("list", "*", Duration::from_millis(200));
/// # let _ = (fail, slow);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    verb: String,
    resource: String,
    name: Option<String>,
    namespace: Option<String>,
    /// Remaining matches; `None` = unlimited.
    remaining: Option<usize>,
    dry_run: DryRunMatch,
    action: FaultAction,
}

impl Fault {
    /// Fails the next matching request (change with [`Fault::times`]) with 500 (change with
    /// [`Fault::status`]). `verb` is get, list, watch, create, update, patch, delete or
    /// deletecollection; `resource` is a plural, optionally with a subresource
    /// (`syncclientcredentials/status`). Either may be `*`.
    pub fn fail(verb: &str, resource: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            resource: resource.to_owned(),
            name: None,
            namespace: None,
            remaining: Some(1),
            dry_run: DryRunMatch::Both,
            action: FaultAction::Fail {
                status: 500,
                message: "injected fault".to_owned(),
            },
        }
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

    #[must_use]
    pub fn status(mut self, status: u16) -> Self {
        if let FaultAction::Fail { status: s, .. } = &mut self.action {
            *s = status;
        }
        self
    }

    #[must_use]
    pub fn message(mut self, message: &str) -> Self {
        if let FaultAction::Fail { message: m, .. } = &mut self.action {
            message.clone_into(m);
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

    fn matches(&self, request: &RequestTarget<'_>) -> bool {
        let field = |pattern: &str, actual: &str| pattern == "*" || pattern == actual;
        field(&self.verb, request.verb)
            && field(&self.resource, request.resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == request.name)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| Some(n) == request.namespace)
            && self.dry_run.matches(request.dry_run)
    }
}

/// The parts of a request faults match on.
pub(crate) struct RequestTarget<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub dry_run: bool,
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
    pub fn take(&mut self, request: &RequestTarget<'_>) -> (Duration, Option<(u16, String)>) {
        let mut delay = Duration::ZERO;
        let mut failure = None;
        for fault in &mut self.active {
            if fault.remaining == Some(0) || !fault.matches(request) {
                continue;
            }
            match &fault.action {
                FaultAction::Delay(d) => delay += *d,
                FaultAction::Fail { status, message } => {
                    if failure.is_some() {
                        continue;
                    }
                    failure = Some((*status, message.clone()));
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
                .map(|f| f.0),
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
    fn latency_applies_to_wildcards() {
        let mut faults = Faults::default();
        faults.add(Fault::latency("*", "*", Duration::from_millis(5)));
        assert_eq!(
            faults.take(&target("get", "leases", None)).0,
            Duration::from_millis(5)
        );
    }
}
