//! Request accounting: every request is logged; counts by verb and resource derive from the log.

use std::collections::BTreeMap;

/// One HTTP request the simulator received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Raw query string (without `?`), empty when absent.
    pub query: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    /// Tells the operator's requests from `kubectl`'s.
    pub user_agent: Option<String>,
    /// Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection);
    /// `None` for discovery and other non-resource requests.
    pub verb: Option<String>,
    /// Plural, with `/subresource` when one was addressed (`syncclientcredentials/status`).
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// A server-side dry run (`dryRun=All` in the query, or for deletes in the
    /// `DeleteOptions` body): validated and answered like the real write, nothing stored.
    pub dry_run: bool,
    /// The authenticated user (`admin`, `system:serviceaccount:<ns>:<name>`), when the request
    /// carried a token the simulator issued; `None` otherwise (with RBAC off, any token is
    /// accepted but only issued ones identify a user).
    pub user: Option<String>,
    /// The client, by the bearer token it sent (any token, issued or not): its fingerprint,
    /// never the token ([`crate::KubeSim::token_fingerprint`]). Tells apart clients that differ
    /// only by token, such as two operator replicas with their own kubeconfigs.
    pub client: Option<String>,
    /// HTTP status of the answer (for watches: of the response head).
    pub status: u16,
}

impl RecordedRequest {
    /// The value of one query parameter, decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// Request counts by (verb, resource). Dry runs count as requests of their verb and are also
/// counted on their own ([`RequestCounts::dry_runs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    counts: BTreeMap<(String, String), usize>,
    dry_runs: BTreeMap<(String, String), usize>,
}

fn matching(counts: &BTreeMap<(String, String), usize>, verb: &str, resource: &str) -> usize {
    counts
        .iter()
        .filter(|((v, r), _)| (verb == "*" || v == verb) && (resource == "*" || r == resource))
        .map(|(_, n)| n)
        .sum()
}

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

impl RequestCounts {
    pub(crate) fn from_requests(requests: &[RecordedRequest]) -> Self {
        let mut counts = BTreeMap::new();
        let mut dry_runs = BTreeMap::new();
        for request in requests {
            if let (Some(verb), Some(resource)) = (&request.verb, &request.resource) {
                let key = (verb.clone(), resource.clone());
                if request.dry_run {
                    *dry_runs.entry(key.clone()).or_insert(0) += 1;
                }
                *counts.entry(key).or_insert(0) += 1;
            }
        }
        Self { counts, dry_runs }
    }

    /// Requests with this verb on this resource (`*` matches any verb or resource), dry runs
    /// included.
    pub fn get(&self, verb: &str, resource: &str) -> usize {
        matching(&self.counts, verb, resource)
    }

    /// Dry-run requests with this verb on this resource (`*` matches any).
    pub fn dry_runs(&self, verb: &str, resource: &str) -> usize {
        matching(&self.dry_runs, verb, resource)
    }

    /// Requests with this verb on this resource that were not dry runs.
    pub fn real(&self, verb: &str, resource: &str) -> usize {
        self.get(verb, resource) - self.dry_runs(verb, resource)
    }

    /// All create, update, patch and delete requests, dry runs included.
    pub fn total_writes(&self) -> usize {
        WRITE_VERBS.iter().map(|verb| self.get(verb, "*")).sum()
    }

    /// All create, update, patch and delete requests that were not dry runs.
    pub fn total_real_writes(&self) -> usize {
        self.total_writes() - self.total_dry_runs()
    }

    /// All dry-run requests.
    pub fn total_dry_runs(&self) -> usize {
        self.dry_runs.values().sum()
    }

    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// ((verb, resource), count) in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, usize)> {
        self.counts
            .iter()
            .map(|((v, r), n)| (v.as_str(), r.as_str(), *n))
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (verb, resource, n) in self.iter() {
            writeln!(f, "{verb} {resource}: {n}")?;
        }
        Ok(())
    }
}
