//! Prometheus metrics, cert-manager style: per-credential expiry, renewal and ready gauges;
//! rotations and broker requests by result; reconcile durations and errors. Also the readiness
//! flag served on `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sync_client_broker::RequestOutcome;

use crate::api::{ConditionStatus, SyncClientCredential};

mod credentials;
use credentials::CredentialCollector;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerRequestLabels {
    endpoint: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerReadyLabels {
    kind: String,
    namespace: String,
    name: String,
    condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GraphRequestLabels {
    call: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    category: String,
}

/// All metrics of one operator process.
pub struct Metrics {
    registry: Registry,
    rotations: Family<ResultLabels, Counter>,
    broker_requests: Family<BrokerRequestLabels, Counter>,
    broker_request_duration: Family<EndpointLabels, Histogram>,
    broker_ready: Family<BrokerReadyLabels, Gauge>,
    reconcile_duration: Histogram,
    reconcile_errors: Family<ErrorLabels, Counter>,
    credentials: CredentialCollector,
    panics: Counter,
    verifications: Family<ResultLabels, Counter>,
    preflights: Family<ResultLabels, Counter>,
    deliveries: Family<ResultLabels, Counter>,
    graph_requests: Family<GraphRequestLabels, Counter>,
    ready_flag: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("sync_client"),
            rotations: Family::default(),
            broker_requests: Family::default(),
            broker_request_duration: Family::new_with_constructor(|| {
                Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
            }),
            broker_ready: Family::default(),
            reconcile_duration: Histogram::new([
                0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            reconcile_errors: Family::default(),
            credentials: CredentialCollector::default(),
            panics: Counter::default(),
            verifications: Family::default(),
            preflights: Family::default(),
            deliveries: Family::default(),
            graph_requests: Family::default(),
            ready_flag: AtomicBool::new(false),
        };
        metrics.register_credential_metrics();
        metrics.register_operation_metrics();
        metrics
    }

    fn register_credential_metrics(&mut self) {
        self.registry.register(
            "reconcile_panics",
            "Reconciles that panicked; each was contained to its object and retried",
            self.panics.clone(),
        );
        self.registry.register(
            "token_verifications",
            "Probes of stored access tokens by result (valid, revoked, or a failure reason)",
            self.verifications.clone(),
        );
        self.registry.register(
            "preflights",
            "Preflight checks by result (passed, or a failure reason)",
            self.preflights.clone(),
        );
        self.registry
            .register_collector(Box::new(self.credentials.clone()));
        self.registry.register(
            "rotations",
            "Issuance attempts by result (success or a failure reason)",
            self.rotations.clone(),
        );
    }

    fn register_operation_metrics(&mut self) {
        self.registry.register(
            "broker_requests",
            "HTTP requests to brokers by endpoint and result",
            self.broker_requests.clone(),
        );
        self.registry.register(
            "broker_request_duration_seconds",
            "Duration of HTTP requests to brokers by endpoint, until the whole answer was read",
            self.broker_request_duration.clone(),
        );
        self.registry.register(
            "broker_ready_status",
            "Ready condition of each broker resource (1 for the current condition value)",
            self.broker_ready.clone(),
        );
        self.registry.register(
            "deliveries",
            "Deliveries of a token to a target (Entra ID provisioning) by outcome: delivered, or a failure reason",
            self.deliveries.clone(),
        );
        self.registry.register(
            "graph_requests",
            "HTTP requests to Entra ID and Microsoft Graph by call and HTTP status (none: no answer)",
            self.graph_requests.clone(),
        );
        self.registry.register(
            "reconcile_duration_seconds",
            "Duration of credential reconciles",
            self.reconcile_duration.clone(),
        );
        self.registry.register(
            "reconcile_errors",
            "Reconciles that failed on a Kubernetes call, by step",
            self.reconcile_errors.clone(),
        );
    }

    /// Counts one delivery attempt by its outcome.
    pub fn record_delivery(&self, result: &str) {
        self.deliveries
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts one request of a Graph client.
    pub fn record_graph_request(&self, outcome: &sync_client_graph::GraphRequestOutcome) {
        self.graph_requests
            .get_or_create(&GraphRequestLabels {
                call: outcome.call.as_str().to_owned(),
                status: outcome
                    .status
                    .map_or_else(|| "none".to_owned(), |s| s.to_string()),
            })
            .inc();
    }

    /// The callback the broker clients report each HTTP request to.
    pub fn broker_observer(self: &Arc<Self>) -> Arc<dyn Fn(&RequestOutcome) + Send + Sync> {
        let metrics = Arc::clone(self);
        Arc::new(move |outcome: &RequestOutcome| {
            metrics
                .broker_requests
                .get_or_create(&BrokerRequestLabels {
                    endpoint: outcome.endpoint.as_str().to_owned(),
                    result: outcome.result.to_owned(),
                })
                .inc();
            metrics
                .broker_request_duration
                .get_or_create(&EndpointLabels {
                    endpoint: outcome.endpoint.as_str().to_owned(),
                })
                .observe(outcome.elapsed.as_secs_f64());
        })
    }

    /// Mirrors a broker resource's Ready condition (`kind` is `IdentityBroker` or
    /// `ClusterIdentityBroker`; `namespace` is empty for cluster brokers).
    pub fn record_broker(&self, kind: &str, namespace: &str, name: &str, ready: ConditionStatus) {
        for value in [
            ConditionStatus::True,
            ConditionStatus::False,
            ConditionStatus::Unknown,
        ] {
            self.broker_ready
                .get_or_create(&BrokerReadyLabels {
                    kind: kind.to_owned(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    condition: format!("{value:?}"),
                })
                .set(i64::from(value == ready));
        }
    }

    /// A deleted broker's series disappear with it.
    pub fn forget_broker(&self, kind: &str, namespace: &str, name: &str) {
        for value in [
            ConditionStatus::True,
            ConditionStatus::False,
            ConditionStatus::Unknown,
        ] {
            self.broker_ready.remove(&BrokerReadyLabels {
                kind: kind.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                condition: format!("{value:?}"),
            });
        }
    }

    pub fn observe_reconcile(&self, elapsed: Duration) {
        self.reconcile_duration.observe(elapsed.as_secs_f64());
    }

    pub fn record_reconcile_error(&self, category: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                category: category.to_owned(),
            })
            .inc();
    }

    pub fn record_panic(&self) {
        self.panics.inc();
    }

    pub fn record_verification(&self, result: &str) {
        self.verifications
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn record_preflight(&self, result: &str) {
        self.preflights
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn record_rotation(&self, result: &str) {
        self.rotations
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The cache the per-credential series are read from at scrape time.
    pub fn set_credential_store(&self, store: Store<DeserializeGuard<SyncClientCredential>>) {
        let _ = self.credentials.store.set(store);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready_flag.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready_flag.load(Ordering::SeqCst)
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            return String::new();
        }
        out
    }
}
