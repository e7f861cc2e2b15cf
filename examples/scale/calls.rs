//! Counting the operator's calls: Kubernetes requests by verb and resource (dry runs on their
//! own) from the simulator's request log, and broker requests by endpoint.

use std::collections::BTreeMap;

use sync_client_broker_sim::{BrokerSim, Endpoint};
use sync_client_kube_sim::RecordedRequest;

use crate::report::{Rows, per};
use crate::world::{ENDPOINTS, LOGIN_SECRET, NAMESPACE};

/// The operator's Kubernetes requests, by (verb, resource, dry run).
#[derive(Default, Debug)]
pub struct KubeCalls {
    by: BTreeMap<(String, String, bool), usize>,
    /// Reads of the broker's login Secret: the operator re-reads a broker's Secrets at most once
    /// a minute while the broker is in use, so they are per broker and minute, not per issue.
    broker_secret_reads: usize,
    /// Answers other than 2xx, by (verb, resource, status).
    failed: BTreeMap<(String, String, u16), usize>,
}

const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

impl KubeCalls {
    pub fn of(requests: &[RecordedRequest]) -> Self {
        let mut calls = Self::default();
        for r in requests {
            let verb = r.verb.clone().unwrap_or_else(|| r.method.to_lowercase());
            let resource = r.resource.clone().unwrap_or_else(|| r.path.clone());
            if verb == "get"
                && resource == "secrets"
                && r.namespace.as_deref() == Some(NAMESPACE)
                && r.name.as_deref() == Some(LOGIN_SECRET)
            {
                calls.broker_secret_reads += 1;
                continue;
            }
            if !(200..300).contains(&r.status) {
                *calls
                    .failed
                    .entry((verb.clone(), resource.clone(), r.status))
                    .or_default() += 1;
            }
            *calls.by.entry((verb, resource, r.dry_run)).or_default() += 1;
        }
        calls
    }

    fn sum(&self, keep: impl Fn(&str, &str, bool) -> bool) -> usize {
        self.by
            .iter()
            .filter(|((verb, resource, dry), _)| keep(verb, resource, *dry))
            .map(|(_, n)| n)
            .sum()
    }

    /// Everything but watches (each watch is one long request), dry runs and events included.
    /// Every request but watches, the broker's login Secret reads included.
    pub fn non_watch(&self) -> usize {
        self.for_issues() + self.broker_secret_reads
    }

    /// The requests but watches that issues cost: all but the broker's periodic Secret reads.
    pub fn for_issues(&self) -> usize {
        self.sum(|verb, _, _| verb != "watch")
    }

    pub fn real_writes(&self) -> usize {
        self.sum(|verb, _, dry| !dry && WRITES.contains(&verb))
    }

    pub fn dry_runs(&self) -> usize {
        self.sum(|_, _, dry| dry)
    }

    pub fn lists(&self) -> usize {
        self.sum(|verb, _, _| verb == "list")
    }

    pub fn watches(&self) -> usize {
        self.sum(|verb, _, _| verb == "watch")
    }

    /// Breakdown rows: each (verb, resource) other than watches, divided by `unit_count`.
    pub fn breakdown(&self, rows: &mut Rows, unit: &str, unit_count: usize) {
        rows.info(
            "  broker login Secret reads (at most 1 a minute per broker; not in the figure)",
            self.broker_secret_reads.to_string(),
        );
        for ((verb, resource, dry), n) in &self.by {
            if verb == "watch" {
                continue;
            }
            let dry = if *dry { " (dry run)" } else { "" };
            rows.info(
                format!("  {verb} {resource}{dry} per {unit}"),
                format!("{:.2} ({n})", per(*n, unit_count)),
            );
        }
        for ((verb, resource, status), n) in &self.failed {
            rows.info(
                format!("  answered {status}: {verb} {resource}"),
                n.to_string(),
            );
        }
    }
}

/// The broker requests since the log was last cleared, by endpoint.
#[derive(Debug, Default)]
pub struct BrokerCalls {
    counts: Vec<(Endpoint, usize)>,
}

impl BrokerCalls {
    pub fn of(broker: &BrokerSim) -> Self {
        Self {
            counts: ENDPOINTS
                .iter()
                .map(|e| (*e, broker.count(*e)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }

    pub fn get(&self, endpoint: Endpoint) -> usize {
        self.counts
            .iter()
            .filter(|(e, _)| *e == endpoint)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total(&self) -> usize {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// Logins and broker-token fetches (both token kinds).
    pub fn session_calls(&self) -> (usize, usize) {
        (
            self.get(Endpoint::Login),
            self.get(Endpoint::OperatorClientToken) + self.get(Endpoint::AdminClientToken),
        )
    }

    /// Calls that act on one credential: generate, read, SCIM probe.
    pub fn credential_calls(&self) -> usize {
        self.get(Endpoint::Generate)
            + self.get(Endpoint::ReadSyncClient)
            + self.get(Endpoint::ScimProbe)
    }

    pub fn breakdown(&self) -> String {
        if self.counts.is_empty() {
            return "none".to_owned();
        }
        self.counts
            .iter()
            .map(|(e, n)| format!("{e:?} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
