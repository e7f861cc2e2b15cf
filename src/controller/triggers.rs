//! Reconciles asked for from inside another reconcile. A credential that fails to authenticate,
//! or fails for a reason that needs a change, has its broker checked again (the broker's `Ready`
//! follows what its credentials see); a broker whose client changed (its spec, its login Secret)
//! has its failing credentials retried at once.

use std::sync::OnceLock;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::ObjectRef;

use super::brokers::BrokerKey;
use super::caches::Caches;
use crate::api::{BrokerKind, ClusterIdentityBroker, IdentityBroker, SyncClientCredential};

type CredentialRef = ObjectRef<DeserializeGuard<SyncClientCredential>>;

/// The senders into the controllers' queues (set once they run; absent in reconcile tests).
#[derive(Default)]
pub struct Triggers {
    credentials: OnceLock<UnboundedSender<CredentialRef>>,
    identity_brokers: OnceLock<UnboundedSender<ObjectRef<IdentityBroker>>>,
    cluster_brokers: OnceLock<UnboundedSender<ObjectRef<ClusterIdentityBroker>>>,
}

/// The receiving ends, for the controllers' `reconcile_on`.
pub struct TriggerStreams {
    pub identity_brokers: UnboundedReceiver<ObjectRef<IdentityBroker>>,
    pub cluster_brokers: UnboundedReceiver<ObjectRef<ClusterIdentityBroker>>,
}

impl Triggers {
    /// Connects the triggers to the controllers: credentials through `credentials` (their queue
    /// is shared with the re-list trigger), brokers through the returned streams.
    pub fn connect(&self, credentials: UnboundedSender<CredentialRef>) -> TriggerStreams {
        let (identity_tx, identity_rx) = unbounded();
        let (cluster_tx, cluster_rx) = unbounded();
        let _ = self.credentials.set(credentials);
        let _ = self.identity_brokers.set(identity_tx);
        let _ = self.cluster_brokers.set(cluster_tx);
        TriggerStreams {
            identity_brokers: identity_rx,
            cluster_brokers: cluster_rx,
        }
    }

    /// Asks for a reconcile of the broker `key`.
    pub fn broker(&self, key: &BrokerKey) {
        match key.kind {
            BrokerKind::IdentityBroker => {
                if let Some(tx) = self.identity_brokers.get() {
                    let _ = tx.unbounded_send(ObjectRef::new(&key.name).within(&key.namespace));
                }
            }
            BrokerKind::ClusterIdentityBroker => {
                if let Some(tx) = self.cluster_brokers.get() {
                    let _ = tx.unbounded_send(ObjectRef::new(&key.name));
                }
            }
        }
    }

    /// Asks for a reconcile of every cached credential that uses the broker `key`.
    pub fn credentials_of(&self, caches: &Caches, key: &BrokerKey) {
        let Some(tx) = self.credentials.get() else {
            return;
        };
        for credential in caches.credentials_using(key) {
            let _ = tx.unbounded_send(credential);
        }
    }
}
