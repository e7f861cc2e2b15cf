//! Entra ID connections and their Graph clients. Every credential that delivers through one
//! connection shares one `GraphClient`, so one app token (one login) serves them all until it
//! nears its expiry. A client is rebuilt when the connection or the material in its Secrets
//! changes; Secrets are read again at most every [`SECRET_RELOAD_INTERVAL`].
//!
//! The tenancy rules are the brokers': an `EntraConnection` serves credentials in its own
//! namespace and reads Secrets there; a `ClusterEntraConnection` reads Secrets in the namespace
//! it names, serves the namespaces its `namespaceSelector` allows, and alone may sign in with the
//! operator's workload identity.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::Api;
use sync_client_graph::{GraphClient, GraphConfig, GraphObserver};

mod config;

use config::{config_fingerprint, read_error};

use super::brokers::SECRET_RELOAD_INTERVAL;
use super::references::{self, ReadError};
use crate::api::{
    ClusterEntraConnection, EntraConnection, EntraConnectionKind, EntraConnectionRef, EntraSettings,
};

/// Default timeout of one request to Entra ID or Graph.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Where the operator's projected ServiceAccount token for workload identity is mounted by
/// default (the path Azure's workload identity webhook uses).
pub const DEFAULT_WORKLOAD_IDENTITY_TOKEN_FILE: &str =
    "/var/run/secrets/azure/tokens/azure-identity-token";

/// Identifies a connection resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntraKey {
    pub kind: EntraConnectionKind,
    /// Empty for cluster connections.
    pub namespace: String,
    pub name: String,
}

impl EntraKey {
    /// The connection a credential in `namespace` refers to.
    pub fn of(namespace: &str, reference: &EntraConnectionRef) -> Self {
        Self {
            kind: reference.kind,
            namespace: match reference.kind {
                EntraConnectionKind::EntraConnection => namespace.to_owned(),
                EntraConnectionKind::ClusterEntraConnection => String::new(),
            },
            name: reference.name.clone(),
        }
    }
}

impl std::fmt::Display for EntraKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            EntraConnectionKind::EntraConnection => {
                write!(f, "EntraConnection {}/{}", self.namespace, self.name)
            }
            EntraConnectionKind::ClusterEntraConnection => {
                write!(f, "ClusterEntraConnection {}", self.name)
            }
        }
    }
}

/// Why a connection cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EntraResolveError {
    #[error("{connection} not found")]
    NotFound { connection: EntraKey },
    #[error("{connection} does not allow credentials from namespace {namespace}: {why}")]
    NotAllowed {
        connection: EntraKey,
        namespace: String,
        why: String,
    },
    #[error("{connection} is misconfigured: {message}")]
    ConfigInvalid {
        connection: EntraKey,
        message: String,
    },
    #[error(
        "reading {what} for {connection}: {}",
        super::kube_error::describe(source)
    )]
    Kube {
        connection: EntraKey,
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
}

struct Entry {
    fingerprint: [u8; 32],
    client: GraphClient,
    settings: EntraSettings,
    loaded_at: Instant,
}

/// Shared Graph clients, one per connection resource.
pub struct EntraRegistry {
    entries: Mutex<HashMap<EntraKey, Entry>>,
    /// Jobs found by listing a service principal's jobs, so a delivery right after the check
    /// before a mint does not list them again.
    jobs: Mutex<HashMap<(EntraKey, String), String>>,
    observer: Option<GraphObserver>,
    /// When set, ClusterEntraConnections are out of reach (the operator watches one namespace).
    namespaced_scope: bool,
    workload_identity_token_file: PathBuf,
}

impl EntraRegistry {
    pub fn new(
        observer: Option<GraphObserver>,
        namespaced_scope: bool,
        workload_identity_token_file: PathBuf,
    ) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            jobs: Mutex::new(HashMap::new()),
            observer,
            namespaced_scope,
            workload_identity_token_file,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EntraKey, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<(EntraKey, String), String>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The job found earlier for a service principal through this connection.
    pub fn known_job(&self, key: &EntraKey, service_principal_id: &str) -> Option<String> {
        self.jobs()
            .get(&(key.clone(), service_principal_id.to_owned()))
            .cloned()
    }

    pub fn remember_job(&self, key: &EntraKey, service_principal_id: &str, job_id: &str) {
        self.jobs().insert(
            (key.clone(), service_principal_id.to_owned()),
            job_id.to_owned(),
        );
    }

    /// The shared client of the connection a credential in `namespace` refers to, after checking
    /// it may be used from there.
    pub async fn resolve(
        &self,
        client: &Client,
        namespace: &str,
        reference: &EntraConnectionRef,
    ) -> Result<GraphClient, EntraResolveError> {
        let key = EntraKey::of(namespace, reference);
        if let Some(entry) = self.lock().get(&key)
            && entry.loaded_at.elapsed() < SECRET_RELOAD_INTERVAL
        {
            return Ok(entry.client.clone());
        }
        let (settings, secret_namespace) = match key.kind {
            EntraConnectionKind::EntraConnection => {
                let connection: EntraConnection =
                    get(&Api::namespaced(client.clone(), namespace), &key).await?;
                (connection.spec.settings, Some(namespace.to_owned()))
            }
            EntraConnectionKind::ClusterEntraConnection => {
                self.cluster_connection(client, &key, namespace).await?
            }
        };
        let config = self
            .load_config(client, &key, &settings, secret_namespace.as_deref())
            .await?;
        self.client_for(key, settings, config)
    }

    /// A cluster connection that allows `namespace`: its settings and Secret namespace.
    async fn cluster_connection(
        &self,
        client: &Client,
        key: &EntraKey,
        namespace: &str,
    ) -> Result<(EntraSettings, Option<String>), EntraResolveError> {
        if self.namespaced_scope {
            return Err(EntraResolveError::NotAllowed {
                connection: key.clone(),
                namespace: namespace.to_owned(),
                why: "the operator watches a single namespace; use an EntraConnection".into(),
            });
        }
        let connection: ClusterEntraConnection = get(&Api::all(client.clone()), key).await?;
        if let Some(selector) = &connection.spec.namespace_selector {
            references::namespace_allowed(client, namespace, selector)
                .await
                .map_err(|e| match e {
                    ReadError::Invalid(why) => EntraResolveError::NotAllowed {
                        connection: key.clone(),
                        namespace: namespace.to_owned(),
                        why,
                    },
                    other @ ReadError::Kube { .. } => read_error(key, other),
                })?;
        }
        Ok((connection.spec.settings, connection.spec.secret_namespace))
    }

    /// Reuses the client when nothing that shapes it changed, else builds a new one.
    fn client_for(
        &self,
        key: EntraKey,
        settings: EntraSettings,
        config: GraphConfig,
    ) -> Result<GraphClient, EntraResolveError> {
        let fingerprint = config_fingerprint(&config);
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(&key)
            && entry.fingerprint == fingerprint
        {
            entry.settings = settings;
            entry.loaded_at = Instant::now();
            return Ok(entry.client.clone());
        }
        let client = GraphClient::new(config).map_err(|e| EntraResolveError::ConfigInvalid {
            connection: key.clone(),
            message: e.to_string(),
        })?;
        entries.insert(
            key,
            Entry {
                fingerprint,
                client: client.clone(),
                settings,
                loaded_at: Instant::now(),
            },
        );
        Ok(client)
    }
}

async fn get<K>(api: &Api<K>, key: &EntraKey) -> Result<K, EntraResolveError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(&key.name).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(EntraResolveError::NotFound {
            connection: key.clone(),
        }),
        Err(source) => Err(EntraResolveError::Kube {
            connection: key.clone(),
            what: "the connection".into(),
            source: Box::new(source),
        }),
    }
}

/// The Graph observer for the operator's metrics, if any.
pub fn observer(metrics: &Arc<crate::metrics::Metrics>) -> GraphObserver {
    let metrics = metrics.clone();
    Arc::new(move |outcome| metrics.record_graph_request(outcome))
}
