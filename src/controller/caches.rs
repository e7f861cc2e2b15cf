//! The controllers' caches: credentials, both broker kinds and the metadata of owned Secrets,
//! each kept by a reflector from its watch. Reconciles read brokers here instead of calling the
//! API server, and find other credentials that name the same sync client.

use k8s_openapi::api::core::v1::Secret;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::api::{
    BrokerConnection, BrokerKind, BrokerRef, ClusterIdentityBroker, IdentityBroker,
    SyncClientCredential,
};

/// The readers of every cache the controllers keep.
#[derive(Clone)]
pub struct Caches {
    pub credentials: Store<DeserializeGuard<SyncClientCredential>>,
    /// Credentials by directory, for the one-owner-per-sync-client rule.
    pub directories: std::sync::Arc<DirectoryIndex>,
    pub identity_brokers: Store<DeserializeGuard<IdentityBroker>>,
    /// Absent when the operator watches one namespace.
    pub cluster_brokers: Option<Store<DeserializeGuard<ClusterIdentityBroker>>>,
    /// Metadata of the Secrets the operator owns (label selected).
    pub secrets: Store<PartialObjectMeta<Secret>>,
}

impl Caches {
    /// Waits (briefly) until both broker caches have listed once: before that a broker missing
    /// from them may exist.
    pub async fn brokers_synced(&self) {
        let wait = |store: Store<DeserializeGuard<IdentityBroker>>| async move {
            for _ in 0..100 {
                let poll = tokio::time::timeout(
                    std::time::Duration::from_millis(50),
                    store.wait_until_ready(),
                );
                if !matches!(poll.await, Err(_elapsed)) {
                    return;
                }
            }
        };
        wait(self.identity_brokers.clone()).await;
        if let Some(cluster) = &self.cluster_brokers {
            for _ in 0..100 {
                let poll = tokio::time::timeout(
                    std::time::Duration::from_millis(50),
                    cluster.wait_until_ready(),
                );
                if !matches!(poll.await, Err(_elapsed)) {
                    return;
                }
            }
        }
    }

    /// The cached IdentityBroker `namespace/name`, when the cache holds a readable one.
    pub fn identity_broker(&self, namespace: &str, name: &str) -> Option<IdentityBroker> {
        let found = self
            .identity_brokers
            .get(&ObjectRef::new(name).within(namespace))?;
        found.0.clone().ok()
    }

    /// The cached ClusterIdentityBroker `name`.
    pub fn cluster_broker(&self, name: &str) -> Option<ClusterIdentityBroker> {
        let found = self.cluster_brokers.as_ref()?.get(&ObjectRef::new(name))?;
        found.0.clone().ok()
    }

    /// How the broker a credential in `namespace` refers to is reached, from the cache.
    pub fn connection_of(&self, namespace: &str, broker: &BrokerRef) -> Option<BrokerConnection> {
        match broker.kind {
            BrokerKind::IdentityBroker => self
                .identity_broker(namespace, &broker.name)
                .map(|b| b.spec.connection),
            BrokerKind::ClusterIdentityBroker => {
                self.cluster_broker(&broker.name).map(|b| b.spec.connection)
            }
        }
    }

    /// The generation of the broker a credential in `namespace` refers to (spec changes only).
    pub fn broker_generation(&self, namespace: &str, broker: &BrokerRef) -> Option<i64> {
        let meta = match broker.kind {
            BrokerKind::IdentityBroker => self
                .identity_brokers
                .get(&ObjectRef::new(&broker.name).within(namespace))
                .map(|b| b.meta().generation),
            BrokerKind::ClusterIdentityBroker => self
                .cluster_brokers
                .as_ref()?
                .get(&ObjectRef::new(&broker.name))
                .map(|b| b.meta().generation),
        };
        meta.flatten()
    }

    /// The cached credentials that use the broker `key`.
    pub fn credentials_using(&self, key: &super::brokers::BrokerKey) -> Vec<CredentialRef> {
        self.credentials
            .state()
            .iter()
            .filter(|guard| {
                guard.0.as_ref().is_ok_and(|cr| {
                    cr.spec.broker_ref.kind == key.kind
                        && cr.spec.broker_ref.name == key.name
                        && (key.kind == BrokerKind::ClusterIdentityBroker
                            || cr.namespace().as_deref() == Some(key.namespace.as_str()))
                })
            })
            .map(|guard| ObjectRef::from_obj(guard.as_ref()))
            .collect()
    }

    /// Every readable credential in the cache.
    pub fn all_credentials(&self) -> Vec<std::sync::Arc<DeserializeGuard<SyncClientCredential>>> {
        self.credentials.state()
    }

    /// The cached credentials that rotate a sync client of `directory`.
    pub fn credentials_in_directory(
        &self,
        directory: &str,
    ) -> Vec<std::sync::Arc<DeserializeGuard<SyncClientCredential>>> {
        self.directories
            .in_directory(directory)
            .iter()
            .filter_map(|key| self.credentials.get(key))
            .collect()
    }

    /// Whether the cache holds owned-Secret metadata named `name` in `namespace`.
    pub fn has_secret(&self, namespace: &str, name: &str) -> bool {
        self.secret(namespace, name).is_some()
    }

    /// The cached metadata of the owned Secret `namespace/name`.
    pub fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<std::sync::Arc<PartialObjectMeta<Secret>>> {
        self.secrets.get(&ObjectRef::new(name).within(namespace))
    }
}

type CredentialRef = ObjectRef<DeserializeGuard<SyncClientCredential>>;

/// Credentials by the directory they rotate (lowercase), kept in step with the credential
/// watch, so finding another credential for the same sync client does not scan them all. Keys
/// are compact (`namespace/name`): the index is held for every credential.
#[derive(Default)]
pub struct DirectoryIndex {
    inner: std::sync::Mutex<IndexState>,
}

#[derive(Default)]
struct IndexState {
    live: Index,
    /// Being rebuilt by a re-list; replaces `live` when the list is complete.
    relisting: Option<Index>,
}

#[derive(Default)]
struct Index {
    by_directory: std::collections::HashMap<Box<str>, Vec<Box<str>>>,
    directory_of: std::collections::HashMap<Box<str>, Box<str>>,
}

fn index_key(guard: &DeserializeGuard<SyncClientCredential>) -> Box<str> {
    format!(
        "{}/{}",
        guard.namespace().unwrap_or_default(),
        guard.name_any()
    )
    .into_boxed_str()
}

impl Index {
    fn remove(&mut self, key: &str) {
        if let Some(directory) = self.directory_of.remove(key)
            && let Some(keys) = self.by_directory.get_mut(&directory)
        {
            keys.retain(|k| &**k != key);
            if keys.is_empty() {
                self.by_directory.remove(&directory);
            }
        }
    }

    fn insert(&mut self, guard: &DeserializeGuard<SyncClientCredential>) {
        let key = index_key(guard);
        self.remove(&key);
        if let Ok(cr) = &guard.0 {
            let directory: Box<str> = cr.spec.directory_id.to_ascii_lowercase().into();
            self.by_directory
                .entry(directory.clone())
                .or_default()
                .push(key.clone());
            self.directory_of.insert(key, directory);
        }
    }
}

impl DirectoryIndex {
    /// Follows one event of the credential watch.
    pub fn observe(
        &self,
        event: &kube::runtime::watcher::Event<DeserializeGuard<SyncClientCredential>>,
    ) {
        use kube::runtime::watcher::Event;
        let mut state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Apply(guard) => state.live.insert(guard),
            Event::Delete(guard) => state.live.remove(&index_key(guard)),
            Event::Init => state.relisting = Some(Index::default()),
            Event::InitApply(guard) => {
                if let Some(index) = &mut state.relisting {
                    index.insert(guard);
                }
            }
            Event::InitDone => {
                if let Some(index) = state.relisting.take() {
                    state.live = index;
                }
            }
        }
    }

    /// The credentials that rotate a sync client of `directory`.
    pub fn in_directory(&self, directory: &str) -> Vec<CredentialRef> {
        let state = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .live
            .by_directory
            .get(directory.to_ascii_lowercase().as_str())
            .map(|keys| {
                keys.iter()
                    .filter_map(|key| key.split_once('/'))
                    .map(|(namespace, name)| ObjectRef::new(name).within(namespace))
                    .collect()
            })
            .unwrap_or_default()
    }
}
