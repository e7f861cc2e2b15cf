//! The controllers: credentials (the main one) and brokers (status only). They share one
//! [`Context`]: the Kubernetes client, the event recorder, the broker registry and metrics.

pub mod broker_status;
pub mod brokers;
pub mod credential;
pub mod failure;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

use crate::api::{BrokerKind, ClusterIdentityBroker, IdentityBroker, SyncClientCredential};
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::secret::FingerprintKey;
use brokers::BrokerRegistry;

/// Name the operator reports as in events and field managers.
pub const CONTROLLER_NAME: &str = "sync-client-operator";

/// Errors of a reconcile that are not the broker's: failed Kubernetes calls, named by step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading SyncClientCredential {namespace}/{name}: {source}")]
    GetCredential {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading Secret {namespace}/{name}: {source}")]
    GetSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating Secret {namespace}/{name}: {source}")]
    WriteSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing status of {namespace}/{name}: {source}")]
    WriteStatus {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// A short category, for metrics labels.
    pub fn category(&self) -> &'static str {
        match self {
            Self::GetCredential { .. } => "get_credential",
            Self::GetSecret { .. } => "get_secret",
            Self::WriteSecret { .. } => "write_secret",
            Self::WriteStatus { .. } => "write_status",
        }
    }
}

/// State shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub brokers: BrokerRegistry,
    pub fingerprint_key: FingerprintKey,
    pub metrics: Arc<Metrics>,
    /// The time, read once per reconcile.
    pub clock: Arc<dyn Clock>,
    /// Consecutive reconcile errors per object, for the error backoff.
    error_counts: Mutex<HashMap<String, u32>>,
}

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch only this namespace (and ignore ClusterIdentityBrokers).
    pub namespace: Option<String>,
    pub fingerprint_key: FingerprintKey,
    /// Identifies this replica in events.
    pub instance: Option<String>,
    /// Concurrent rotations per broker when the broker sets no limit.
    pub default_broker_concurrency: usize,
}

impl Context {
    pub fn new(client: Client, options: &Options, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: options.instance.clone(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            brokers: BrokerRegistry::new(
                Some(metrics.broker_observer()),
                options.namespace.is_some(),
                options.default_broker_concurrency,
            ),
            client,
            fingerprint_key: options.fingerprint_key.clone(),
            metrics,
            clock: Arc::new(SystemClock),
            error_counts: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the system clock (tests use one that stands still).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn error_backoff(&self, key: String) -> Duration {
        let mut counts = self
            .error_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        let exponent = (*count - 1).min(8);
        (Duration::from_secs(1) * (1 << exponent)).min(Duration::from_secs(300))
    }

    /// Backoff for a broker whose authentication failed: from 5 s, so an unreachable broker at
    /// start is reported soon, yet is polled at most every 5 minutes.
    fn broker_backoff(&self, key: &brokers::BrokerKey) -> Duration {
        (self.error_backoff(format!("broker:{key}")) * 5).min(Duration::from_secs(300))
    }

    fn clear_errors(&self, key: &str) {
        self.error_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

fn object_key<K: kube::Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn reconcile_credential(
    cr: Arc<SyncClientCredential>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = object_key(cr.as_ref());
    let action = credential::reconcile(cr, ctx.clone()).await?;
    ctx.clear_errors(&key);
    Ok(action)
}

#[allow(clippy::needless_pass_by_value)] // kube's Controller::run passes these by value
fn credential_error_policy(
    cr: Arc<SyncClientCredential>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let delay = ctx.error_backoff(object_key(cr.as_ref()));
    tracing::warn!(namespace = %cr.namespace().unwrap_or_default(), name = %cr.name_any(), error = %error, retry_in = ?delay, "reconcile failed");
    ctx.metrics.record_reconcile_error(error.category());
    Action::requeue(delay)
}

fn credentials_using(
    store: &kube::runtime::reflector::Store<SyncClientCredential>,
    kind: BrokerKind,
    namespace: Option<&str>,
    name: &str,
) -> Vec<ObjectRef<SyncClientCredential>> {
    store
        .state()
        .iter()
        .filter(|cr| {
            cr.spec.broker_ref.kind == kind
                && cr.spec.broker_ref.name == name
                && namespace.is_none_or(|ns| cr.namespace().as_deref() == Some(ns))
        })
        .map(|cr| ObjectRef::from_obj(cr.as_ref()))
        .collect()
}

/// Runs the controllers until `shutdown` resolves, then lets running reconciles finish.
pub async fn run(
    client: Client,
    options: Options,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Arc::new(Context::new(client.clone(), &options, metrics.clone()));
    let shutdown = futures::FutureExt::shared(shutdown);
    let controller = credential_controller(&client, &options);
    let store = controller.store();
    metrics.set_credential_store(store.clone());
    tokio::spawn(report_ready_once_synced(store, metrics));
    let credential_loop = controller
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_credential, credential_error_policy, ctx.clone())
        .for_each(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
            future::ready(())
        });
    let broker_loops = broker_status::run(client, &options, ctx.clone(), shutdown.clone());
    tracing::info!(
        namespace = options.namespace.as_deref().unwrap_or("<all>"),
        "controllers started"
    );
    future::join(credential_loop, broker_loops).await;
    tracing::info!("controllers stopped");
}

/// The credential controller: credentials, the metadata of their Secrets, and both broker kinds
/// (a broker change reconciles the credentials that use it).
fn credential_controller(client: &Client, options: &Options) -> Controller<SyncClientCredential> {
    let (credentials, secrets, brokers): (
        Api<SyncClientCredential>,
        Api<PartialObjectMeta<Secret>>,
        Api<IdentityBroker>,
    ) = match &options.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    // Only the metadata of our own Secrets is watched: no credential sits in the cache.
    let owned_secrets = watcher(
        secrets,
        watcher::Config::default().labels(&crate::secret::managed_selector()),
    )
    .default_backoff()
    .touched_objects();
    let mut controller =
        Controller::new(credentials, watcher::Config::default()).owns_stream(owned_secrets);
    let store = controller.store();
    controller = controller.watches(brokers, watcher::Config::default(), {
        let store = store.clone();
        move |broker: IdentityBroker| {
            credentials_using(
                &store,
                BrokerKind::IdentityBroker,
                broker.namespace().as_deref(),
                &broker.name_any(),
            )
        }
    });
    if options.namespace.is_none() {
        let cluster_brokers: Api<ClusterIdentityBroker> = Api::all(client.clone());
        controller = controller.watches(cluster_brokers, watcher::Config::default(), {
            move |broker: ClusterIdentityBroker| {
                credentials_using(
                    &store,
                    BrokerKind::ClusterIdentityBroker,
                    None,
                    &broker.name_any(),
                )
            }
        });
    }
    controller
}

/// Ready once the credential cache has synced. The store's readiness signal wakes only its
/// latest waiter (the controller's runner also waits on it), so it is re-polled briefly until
/// set; this loop runs only at start.
async fn report_ready_once_synced(
    store: kube::runtime::reflector::Store<SyncClientCredential>,
    metrics: Arc<Metrics>,
) {
    loop {
        match tokio::time::timeout(Duration::from_millis(50), store.wait_until_ready()).await {
            Ok(Ok(())) => {
                tracing::info!("credential cache synced; ready");
                metrics.set_ready(true);
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "credential cache will never sync");
                return;
            }
            Err(_elapsed) => {}
        }
    }
}
