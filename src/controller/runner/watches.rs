//! The watches and their caches: each kept lean (no `managedFields`, no last-applied copy), each
//! event's side effects (the directory index, forgotten brokers and memos, credentials whose
//! Secret vanished while the watch was down), and which credentials a broker change concerns.

use std::sync::Arc;

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};

use super::Guarded;
use crate::api::{
    BrokerKind, ClusterIdentityBroker, IdentityBroker, SyncClientCredential, secret_name,
};
use crate::controller::Context;
use crate::controller::brokers::BrokerKey;
use crate::controller::caches::{Caches, DirectoryIndex};
use crate::controller::status;

/// The credential watch, kept in its cache and the directory index. The cache holds each status
/// without the parts only people read ([`status::cached`]). A deleted credential's generated but
/// unstored credential has nowhere to go and is dropped.
pub(super) fn credential_events(
    api: Api<Guarded<SyncClientCredential>>,
    writer: reflector::store::Writer<Guarded<SyncClientCredential>>,
    directories: Arc<DirectoryIndex>,
    ctx: &Arc<Context>,
) -> impl Stream<Item = Result<Guarded<SyncClientCredential>, watcher::Error>> + Send + 'static {
    let ctx = ctx.clone();
    watcher(api, watcher::Config::default())
        .modify(|guard: &mut Guarded<SyncClientCredential>| {
            if let Ok(cr) = &mut guard.0
                && let Some(status) = &mut cr.status
            {
                status::cached::elide(status);
            }
        })
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                directories.observe(event);
            }
            if let Ok(Event::Delete(guard)) = event
                && let Some(uid) = guard.uid()
            {
                ctx.pending.remove(&uid);
            }
        })
        .applied_objects()
}

/// The metadata of owned Secrets, kept in their cache. After a re-list, the credentials whose
/// Secret vanished meanwhile are sent to `relist`; a deleted Secret's memo is dropped.
pub(super) fn owned_secret_events(
    api: Api<PartialObjectMeta<Secret>>,
    writer: reflector::store::Writer<PartialObjectMeta<Secret>>,
    ctx: &Arc<Context>,
    relist: mpsc::UnboundedSender<ObjectRef<Guarded<SyncClientCredential>>>,
) -> impl Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send + 'static {
    let ctx = ctx.clone();
    watcher(
        api,
        watcher::Config::default().labels(&crate::secret::managed_selector()),
    )
    .reflect(writer)
    .inspect(move |event| match event {
        Ok(Event::InitDone) => {
            if let Some(caches) = ctx.caches() {
                for missing in credentials_missing_their_secret(caches) {
                    let _ = relist.unbounded_send(missing);
                }
            }
        }
        // Garbage-collected with its credential (or deleted): nothing to remember.
        Ok(Event::Delete(secret)) => {
            for owner in secret.owner_references() {
                ctx.memo.forget(&owner.uid);
            }
        }
        _ => {}
    })
    .touched_objects()
}

pub(super) fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A watch with backoff whose objects are kept without `managedFields` and kubectl's
/// last-applied copy (never read, and the larger part of a small object).
fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, config)
        .default_backoff()
        .modify(|obj: &mut K| {
            obj.managed_fields_mut().clear();
            // `kubectl apply` keeps a copy of the whole object here; nothing reads it.
            obj.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
        })
}

const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A broker watch kept in its cache. A deleted broker's client is dropped and its vCenter session
/// closed; after a re-list, so are those of brokers deleted while the watch was down.
pub(super) fn broker_events<K>(
    api: Api<Guarded<K>>,
    writer: reflector::store::Writer<Guarded<K>>,
    ctx: &Arc<Context>,
) -> impl Stream<Item = Result<Guarded<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K: BrokerKindOf,
{
    let reader = writer.as_reader();
    let ctx = ctx.clone();
    watcher(api, watcher::Config::default())
        .reflect(writer)
        .inspect(move |event| match event {
            Ok(Event::Delete(broker)) => {
                let key = broker_key::<K>(broker.meta());
                ctx.metrics
                    .forget_broker(&format!("{:?}", K::KIND), &key.namespace, &key.name);
                ctx.brokers.forget(&key);
            }
            Ok(Event::InitDone) => {
                let live: Vec<BrokerKey> = reader
                    .state()
                    .iter()
                    .map(|b| broker_key::<K>(b.meta()))
                    .collect();
                for gone in ctx.brokers.retain(K::KIND, |key| live.contains(key)) {
                    ctx.metrics.forget_broker(
                        &format!("{:?}", K::KIND),
                        &gone.namespace,
                        &gone.name,
                    );
                }
            }
            _ => {}
        })
        .touched_objects()
}

/// The broker kind a resource type is.
pub trait BrokerKindOf {
    const KIND: BrokerKind;
}

impl BrokerKindOf for IdentityBroker {
    const KIND: BrokerKind = BrokerKind::IdentityBroker;
}

impl BrokerKindOf for ClusterIdentityBroker {
    const KIND: BrokerKind = BrokerKind::ClusterIdentityBroker;
}

fn broker_key<K: BrokerKindOf>(meta: &kube::api::ObjectMeta) -> BrokerKey {
    BrokerKey {
        kind: K::KIND,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
    }
}

/// Maps a broker change to the credentials that use it.
pub(super) fn mapper<B: Resource>(
    caches: Caches,
    kind: BrokerKind,
) -> impl Fn(B) -> Vec<ObjectRef<Guarded<SyncClientCredential>>> + Send + Sync + 'static {
    move |broker: B| {
        caches.credentials_using(&BrokerKey {
            kind,
            namespace: broker.meta().namespace.clone().unwrap_or_default(),
            name: broker.meta().name.clone().unwrap_or_default(),
        })
    }
}

/// After the owned-Secret watch re-listed: credentials that have issued before and whose Secret
/// is gone (deleted while the watch was down, so no deletion was seen).
fn credentials_missing_their_secret(
    caches: &Caches,
) -> Vec<ObjectRef<Guarded<SyncClientCredential>>> {
    caches
        .all_credentials()
        .iter()
        .filter(|guard| {
            guard.0.as_ref().is_ok_and(|cr| {
                cr.status.as_ref().is_some_and(|s| s.revision.is_some())
                    && !caches.has_secret(&cr.namespace().unwrap_or_default(), &secret_name(cr))
            })
        })
        .map(|guard| ObjectRef::from_obj(guard.as_ref()))
        .collect()
}
