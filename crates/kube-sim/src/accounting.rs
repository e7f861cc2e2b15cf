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

/// Request counts by (verb, resource).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    counts: BTreeMap<(String, String), usize>,
}

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

impl RequestCounts {
    pub(crate) fn from_requests(requests: &[RecordedRequest]) -> Self {
        let mut counts = BTreeMap::new();
        for request in requests {
            if let (Some(verb), Some(resource)) = (&request.verb, &request.resource) {
                *counts.entry((verb.clone(), resource.clone())).or_insert(0) += 1;
            }
        }
        Self { counts }
    }

    /// Requests with this verb on this resource (`*` matches any verb or resource).
    pub fn get(&self, verb: &str, resource: &str) -> usize {
        self.counts
            .iter()
            .filter(|((v, r), _)| (verb == "*" || v == verb) && (resource == "*" || r == resource))
            .map(|(_, n)| n)
            .sum()
    }

    /// All create, update, patch and delete requests.
    pub fn total_writes(&self) -> usize {
        WRITE_VERBS.iter().map(|verb| self.get(verb, "*")).sum()
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
