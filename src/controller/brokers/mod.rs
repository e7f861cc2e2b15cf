//! Broker resolution and the per-broker client registry.
//!
//! Every credential that uses a broker shares one `BrokerClient` (and so one vCenter session and
//! one cached broker token) and one semaphore bounding concurrent rotations. A client is rebuilt
//! when the broker's settings or the material in its Secrets change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use sync_client_broker::{BrokerClient, RequestOutcome};
use tokio::sync::Semaphore;

mod config;
mod health;

use config::{MAX_CONCURRENT_REQUESTS, config_fingerprint, load_config, read_error};

use super::caches::Caches;
use super::failure::{Failure, FailureReason};
use super::kube_error::{self, Call};
use super::references::ReadError;
use crate::api::{BrokerConnection, BrokerKind, BrokerRef, ClusterIdentityBroker};

/// Default timeout of one broker request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Identifies a broker resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerKey {
    pub kind: BrokerKind,
    /// Empty for cluster brokers.
    pub namespace: String,
    pub name: String,
}

impl BrokerKey {
    /// The broker a credential in `namespace` refers to.
    pub fn of(namespace: &str, broker: &BrokerRef) -> Self {
        Self {
            kind: broker.kind,
            namespace: match broker.kind {
                BrokerKind::IdentityBroker => namespace.to_owned(),
                BrokerKind::ClusterIdentityBroker => String::new(),
            },
            name: broker.name.clone(),
        }
    }
}

impl std::fmt::Display for BrokerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            BrokerKind::IdentityBroker => {
                write!(f, "IdentityBroker {}/{}", self.namespace, self.name)
            }
            BrokerKind::ClusterIdentityBroker => write!(f, "ClusterIdentityBroker {}", self.name),
        }
    }
}

/// Why a broker cannot be used; all of these heal when the broker or its Secrets change.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{broker} not found")]
    NotFound { broker: BrokerKey },
    #[error("{broker} does not allow credentials from namespace {namespace}: {why}")]
    NotAllowed {
        broker: BrokerKey,
        namespace: String,
        why: String,
    },
    #[error("{broker} is misconfigured: {message}")]
    ConfigInvalid { broker: BrokerKey, message: String },
    #[error("reading {what} for {broker}: {detail}")]
    Kube {
        broker: BrokerKey,
        what: String,
        /// The failure in words ([`kube_error::describe_call`]).
        detail: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// A broker ready for use by one credential.
#[derive(Clone)]
pub struct ResolvedBroker {
    pub key: BrokerKey,
    pub client: BrokerClient,
    pub permits: Arc<Semaphore>,
    /// `{url}/usergroup/t/{tenant}/scim/v2`, written into access-token Secrets.
    pub scim_url: String,
    /// Timeout of one request to this broker.
    pub request_timeout: Duration,
}

impl ResolvedBroker {
    /// A place within the broker's concurrency limit, held while a call to it runs.
    pub async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        self.permits.acquire().await.map_err(|_| {
            Failure::new(
                FailureReason::BrokerUnavailable,
                "the broker client is shutting down",
            )
        })
    }
}

struct Entry {
    fingerprint: [u8; 32],
    /// Bumped whenever the client is rebuilt (its settings or Secrets changed).
    epoch: u64,
    resolved: ResolvedBroker,
    /// The settings and Secret namespace the client was built from, and when its Secrets were
    /// read: within [`SECRET_RELOAD_INTERVAL`] they are not read again.
    connection: BrokerConnection,
    secret_namespace: String,
    loaded_at: Instant,
}

/// How long a broker's Secrets (login, CA) are trusted before they are read again. Their
/// changes are noticed within this, without watching every Secret in the cluster.
pub const SECRET_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

pub(super) type Observer = Arc<dyn Fn(&RequestOutcome) + Send + Sync>;

/// Shared clients, one per broker resource.
pub struct BrokerRegistry {
    entries: Mutex<HashMap<BrokerKey, Entry>>,
    /// Brokers whose token probe accepted a token (and has not refused a fresh one since): only
    /// their refusals are believed.
    probe_trust: Mutex<HashMap<BrokerKey, bool>>,
    /// Brokers through which credentials fail for a reason that needs a change (`true`: an
    /// authentication failure among them): their login Secrets are looked at again every
    /// [`SECRET_RELOAD_INTERVAL`] until the credentials succeed.
    failing: Mutex<HashMap<BrokerKey, bool>>,
    observer: Option<Observer>,
    /// When set, ClusterIdentityBrokers are out of reach (the operator watches one namespace).
    namespaced_scope: bool,
    /// Concurrent rotations per broker when its resource sets no limit.
    default_max_concurrent: usize,
}

/// Which broker a credential asks for, and for what.
#[derive(Debug, Clone, Copy)]
pub struct BrokerRequest<'a> {
    /// The credential's namespace.
    pub namespace: &'a str,
    pub broker: &'a BrokerRef,
    pub directory_id: &'a str,
}

impl BrokerRegistry {
    pub fn new(
        observer: Option<Observer>,
        namespaced_scope: bool,
        default_max_concurrent: usize,
    ) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            probe_trust: Mutex::new(HashMap::new()),
            failing: Mutex::new(HashMap::new()),
            observer,
            namespaced_scope,
            default_max_concurrent,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerKey, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes whenever the broker's client is rebuilt because its settings or the material in
    /// its Secrets changed (0 before the first client).
    pub fn epoch(&self, key: &BrokerKey) -> u64 {
        self.lock().get(key).map_or(0, |entry| entry.epoch)
    }

    /// Drops a deleted broker's client and closes its vCenter session in the background.
    pub fn forget(&self, key: &BrokerKey) {
        self.trust().remove(key);
        self.failing_lock().remove(key);
        if let Some(old) = self.lock().remove(key) {
            tracing::info!(broker = %key, "broker deleted; closing its session");
            tokio::spawn(async move { old.resolved.client.logout().await });
        }
    }

    /// Keeps the clients of `kind` whose broker still exists (after a re-list); the keys of
    /// those that are gone.
    pub fn retain(&self, kind: BrokerKind, exists: impl Fn(&BrokerKey) -> bool) -> Vec<BrokerKey> {
        let gone: Vec<BrokerKey> = self
            .lock()
            .keys()
            .filter(|key| key.kind == kind && !exists(key))
            .cloned()
            .collect();
        for key in &gone {
            self.forget(key);
        }
        gone
    }

    /// Finds the broker a credential refers to (in the controllers' caches, which the broker
    /// watches keep; without them, from the API server), checks it may be used from the
    /// credential's namespace and for its directory, and returns the shared client.
    pub async fn resolve(
        &self,
        client: &Client,
        caches: Option<&Caches>,
        request: BrokerRequest<'_>,
    ) -> Result<ResolvedBroker, ResolveError> {
        let (namespace, name) = (request.namespace, request.broker.name.as_str());
        let key = BrokerKey::of(namespace, request.broker);
        let (connection, secret_namespace) = match request.broker.kind {
            BrokerKind::IdentityBroker => {
                let broker = match caches {
                    Some(caches) => {
                        caches.brokers_synced().await;
                        caches.identity_broker(namespace, name).ok_or_else(|| {
                            ResolveError::NotFound {
                                broker: key.clone(),
                            }
                        })?
                    }
                    None => get_broker(&Api::namespaced(client.clone(), namespace), &key).await?,
                };
                (broker.spec.connection, namespace.to_owned())
            }
            BrokerKind::ClusterIdentityBroker => {
                let broker = self.cluster_broker(client, caches, &key, request).await?;
                (broker.spec.connection, broker.spec.secret_namespace)
            }
        };
        self.client_for(client, key, &connection, &secret_namespace)
            .await
    }

    /// A cluster broker that allows the credential's namespace and directory.
    async fn cluster_broker(
        &self,
        client: &Client,
        caches: Option<&Caches>,
        key: &BrokerKey,
        request: BrokerRequest<'_>,
    ) -> Result<ClusterIdentityBroker, ResolveError> {
        let not_allowed = |why: String| ResolveError::NotAllowed {
            broker: key.clone(),
            namespace: request.namespace.to_owned(),
            why,
        };
        if self.namespaced_scope {
            return Err(not_allowed(
                "the operator watches a single namespace; use an IdentityBroker".into(),
            ));
        }
        let broker = match caches {
            Some(caches) => {
                caches.brokers_synced().await;
                caches
                    .cluster_broker(&key.name)
                    .ok_or_else(|| ResolveError::NotFound {
                        broker: key.clone(),
                    })?
            }
            None => get_broker(&Api::all(client.clone()), key).await?,
        };
        if let Some(selector) = &broker.spec.namespace_selector {
            super::references::namespace_allowed(client, request.namespace, selector)
                .await
                .map_err(|e| match e {
                    ReadError::Invalid(why) => not_allowed(why),
                    other @ ReadError::Kube { .. } => read_error(key, other),
                })?;
        }
        let allowed = &broker.spec.allowed_directories;
        if !allowed.is_empty()
            && !allowed
                .iter()
                .any(|d| d.eq_ignore_ascii_case(request.directory_id))
        {
            return Err(not_allowed(format!(
                "directory {} is not in its allowedDirectories",
                request.directory_id
            )));
        }
        Ok(broker)
    }

    /// Builds (or reuses) the client for a broker's settings.
    pub async fn client_for(
        &self,
        client: &Client,
        key: BrokerKey,
        connection: &BrokerConnection,
        secret_namespace: &str,
    ) -> Result<ResolvedBroker, ResolveError> {
        if let Some(entry) = self.lock().get(&key)
            && entry.connection == *connection
            && entry.secret_namespace == secret_namespace
            && entry.loaded_at.elapsed() < SECRET_RELOAD_INTERVAL
        {
            return Ok(entry.resolved.clone());
        }
        let secrets: Api<Secret> = Api::namespaced(client.clone(), secret_namespace);
        let config = load_config(&secrets, &key, connection, self.observer.clone()).await?;
        let max_concurrent = connection
            .limits
            .as_ref()
            .and_then(|l| l.max_concurrent_requests)
            .and_then(|n| usize::try_from(n).ok())
            // The schema's bounds, also for an object stored around validation.
            .map_or(self.default_max_concurrent, |n| {
                n.clamp(1, MAX_CONCURRENT_REQUESTS)
            });
        let fingerprint = config_fingerprint(&config, max_concurrent);
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(&key)
            && entry.fingerprint == fingerprint
        {
            entry.connection = connection.clone();
            secret_namespace.clone_into(&mut entry.secret_namespace);
            entry.loaded_at = Instant::now();
            return Ok(entry.resolved.clone());
        }
        let scim_url = format!(
            "{}/usergroup/t/{}/scim/v2",
            connection.url.trim_end_matches('/'),
            connection.tenant
        );
        let request_timeout = config.request_timeout;
        let broker_client = BrokerClient::new(config).map_err(|e| ResolveError::ConfigInvalid {
            broker: key.clone(),
            message: e.to_string(),
        })?;
        let epoch = entries.get(&key).map_or(1, |old| old.epoch.wrapping_add(1));
        let resolved = ResolvedBroker {
            key: key.clone(),
            client: broker_client,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            scim_url,
            request_timeout,
        };
        if let Some(old) = entries.insert(
            key,
            Entry {
                fingerprint,
                epoch,
                resolved: resolved.clone(),
                connection: connection.clone(),
                secret_namespace: secret_namespace.to_owned(),
                loaded_at: Instant::now(),
            },
        ) {
            // Settings changed: end the old session in the background.
            tokio::spawn(async move { old.resolved.client.logout().await });
        }
        Ok(resolved)
    }
}

async fn get_broker<K>(api: &Api<K>, key: &BrokerKey) -> Result<K, ResolveError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(&key.name).await {
        Ok(Some(broker)) => Ok(broker),
        Ok(None) => Err(ResolveError::NotFound {
            broker: key.clone(),
        }),
        Err(source) => Err(ResolveError::Kube {
            broker: key.clone(),
            what: "the broker".into(),
            detail: kube_error::describe_call(&source, broker_call(key)),
            source: Box::new(source),
        }),
    }
}

/// Reading a broker resource, as RBAC names it.
fn broker_call(key: &BrokerKey) -> Call<'_> {
    match key.kind {
        BrokerKind::IdentityBroker => Call::new("get", "identitybrokers", Some(&key.namespace)),
        BrokerKind::ClusterIdentityBroker => Call::new("get", "clusteridentitybrokers", None),
    }
}
