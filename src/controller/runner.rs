//! Wires the controllers: the watches and their caches, the triggers between them, and the
//! guards around each credential reconcile (an object that cannot be read is reported and
//! skipped; a panic is contained to its object).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt, future};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};

use super::brokers::BrokerKey;
use super::caches::{Caches, DirectoryIndex};
use super::fence::Fence;
use super::{Context, Error, Options, broker_status, credential, kube_error, status};
use crate::api::{
    BrokerKind, ClusterIdentityBroker, IdentityBroker, SyncClientCredential, reasons, secret_name,
};
use crate::controller::status::bounded;
use crate::metrics::Metrics;

type Guarded<K> = DeserializeGuard<K>;

/// Runs the controllers until `shutdown` resolves, then lets running reconciles finish. No
/// generate starts after `shutdown` (nor while `fence` is closed).
pub async fn run(
    client: Client,
    options: Options,
    metrics: Arc<Metrics>,
    fence: Fence,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.shared();
    tokio::spawn(close_on(shutdown.clone(), fence.clone()));
    let (credentials, credential_writer) = reflector::store();
    let (identity_brokers, identity_writer) = reflector::store();
    let (cluster_brokers, cluster_writer) = reflector::store();
    let (secrets, secret_writer) = reflector::store();
    let ctx = Context::new(client.clone(), &options, metrics.clone()).with_fence(fence);
    let directories = Arc::new(DirectoryIndex::default());
    let caches = Caches {
        credentials: credentials.clone(),
        directories: directories.clone(),
        identity_brokers,
        cluster_brokers: options.namespace.is_none().then_some(cluster_brokers),
        secrets,
    };
    let _ = ctx.caches.set(caches.clone());
    let ctx = Arc::new(ctx);
    metrics.set_credential_store(credentials.clone());
    let synced = Arc::new(AtomicBool::new(false));
    tokio::spawn(report_ready_once_synced(
        credentials.clone(),
        metrics,
        synced.clone(),
    ));

    let scope = options.namespace.as_deref();
    let credential_events =
        credential_events(api(&client, scope), credential_writer, directories, &ctx);
    let (relist_tx, relist_rx) = mpsc::unbounded();
    let broker_triggers = ctx.triggers.connect(relist_tx.clone());
    let secret_events = owned_secret_events(
        api::<PartialObjectMeta<Secret>>(&client, scope),
        secret_writer,
        &ctx,
        relist_tx,
    );
    let mut controller = Controller::for_stream(credential_events, credentials.clone())
        .owns_stream(secret_events)
        .reconcile_on(relist_rx)
        .watches_stream(
            broker_events(api(&client, scope), identity_writer, &ctx),
            mapper(caches.clone(), BrokerKind::IdentityBroker),
        );
    if scope.is_none() {
        controller = controller.watches_stream(
            broker_events(Api::all(client.clone()), cluster_writer, &ctx),
            mapper(caches.clone(), BrokerKind::ClusterIdentityBroker),
        );
    }
    let credential_loop = controller
        .with_config(
            kube::runtime::controller::Config::default().concurrency(options.reconcile_concurrency),
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_credential, credential_error_policy, ctx.clone())
        .for_each(|result| {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
            future::ready(())
        });
    let broker_loops = broker_status::run(
        client,
        &options,
        ctx.clone(),
        broker_triggers,
        shutdown.clone(),
    );
    tracing::info!(namespace = scope.unwrap_or("<all>"), "controllers started");
    let loops = future::join(credential_loop, broker_loops);
    tokio::select! {
        _ = loops => tracing::info!("controllers stopped"),
        () = stop_deadline(shutdown, synced, ctx.fence.stop_wait()) => {}
    }
}

/// The credential watch, kept in its cache and the directory index. The cache holds each status
/// without the parts only people read ([`status::cached`]). A deleted credential's generated but
/// unstored credential has nowhere to go and is dropped.
fn credential_events(
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

/// No generate starts once a stop was asked for.
async fn close_on(shutdown: impl Future<Output = ()>, fence: Fence) {
    shutdown.await;
    fence.close();
}

/// Resolves when the process should stop even though the controllers have not: at once when
/// the caches never synced (nothing runs; kube's controller would wait for a sync that no
/// longer comes), else after `wait` ([`Fence::stop_wait`]: a generate chain started right
/// before the stop ends by its deadline, and its credential is still stored).
async fn stop_deadline(
    shutdown: impl Future<Output = ()>,
    synced: Arc<AtomicBool>,
    wait: Duration,
) {
    shutdown.await;
    if !synced.load(Ordering::SeqCst) {
        tracing::info!("stopped before the caches synced");
        return;
    }
    tracing::info!(at_most = ?wait, "stopping: no new generate; waiting for running reconciles");
    tokio::time::sleep(wait).await;
    tracing::warn!("stopping with reconciles still running after {wait:?}");
}

/// The metadata of owned Secrets, kept in their cache. After a re-list, the credentials whose
/// Secret vanished meanwhile are sent to `relist`; a deleted Secret's memo is dropped.
fn owned_secret_events(
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

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
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
fn broker_events<K>(
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
fn mapper<B: Resource>(
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

fn object_key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn reconcile_credential(
    guard: Arc<Guarded<SyncClientCredential>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = object_key(guard.as_ref());
    let cr = match &guard.0 {
        Ok(cr) => Arc::new(cr.clone()),
        Err(invalid) => {
            report_unreadable(&ctx, guard.meta(), &invalid.error).await;
            return Ok(Action::await_change());
        }
    };
    let reconcile = Box::pin(credential::reconcile(cr.clone(), ctx.clone()));
    let action = match contain_panics(&ctx, guard.meta(), reconcile).await {
        Err(error @ Error::Panicked { .. }) => {
            // Reported on the object too, where the people who own it look.
            credential::events::panicked(&ctx, &cr, &error).await;
            return Err(error);
        }
        result => result?,
    };
    ctx.clear_errors(&key);
    Ok(action)
}

/// Runs one reconcile; a panic in it becomes an error of that object (retried with backoff,
/// counted) instead of ending the process and stopping every other credential.
pub async fn contain_panics(
    ctx: &Context,
    meta: &kube::api::ObjectMeta,
    reconcile: impl Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    match std::panic::AssertUnwindSafe(reconcile).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            ctx.metrics.record_panic();
            let error = Error::Panicked {
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
                message: bounded(&message),
            };
            tracing::error!(%error, "reconcile panicked; contained to this object");
            Err(error)
        }
    }
}

/// A credential that cannot be deserialized (stored under an older schema, or written around
/// validation) is reported on itself, once per change, and otherwise skipped.
async fn report_unreadable(ctx: &Context, meta: &kube::api::ObjectMeta, error: &str) {
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let message = bounded(&format!(
        "the resource cannot be read by this operator version, so it is skipped; correct it: {error}"
    ));
    tracing::warn!(%namespace, %name, detail = %message, "skipping an unreadable SyncClientCredential");
    ctx.metrics.record_reconcile_error("unreadable");
    let now = crate::secret::rfc3339(ctx.clock.now());
    let patch = serde_json::json!({"status": {
        "observedGeneration": meta.generation,
        "conditions": [
            {"type": reasons::READY, "status": "False", "reason": "SpecInvalid",
             "message": message, "lastTransitionTime": now, "observedGeneration": meta.generation},
            {"type": reasons::ISSUING, "status": "False", "reason": "SpecInvalid",
             "message": message, "lastTransitionTime": now, "observedGeneration": meta.generation},
        ],
    }});
    let api: Api<Guarded<SyncClientCredential>> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(%namespace, %name, error = %kube_error::describe(&e), "could not report the unreadable resource");
    }
}

#[allow(clippy::needless_pass_by_value)] // kube's Controller::run passes these by value
fn credential_error_policy(
    guard: Arc<Guarded<SyncClientCredential>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let delay = ctx.error_backoff(object_key(guard.as_ref()));
    tracing::warn!(namespace = %guard.namespace().unwrap_or_default(), name = %guard.name_any(), error = %error, retry_in = ?delay, "reconcile failed");
    ctx.metrics.record_reconcile_error(error.category());
    Action::requeue(delay)
}

/// Ready once the credential cache has synced. The store's readiness signal wakes only its
/// latest waiter (the controller's runner also waits on it), so it is re-polled briefly until
/// set; this loop runs only at start.
async fn report_ready_once_synced(
    store: Store<Guarded<SyncClientCredential>>,
    metrics: Arc<Metrics>,
    synced: Arc<AtomicBool>,
) {
    loop {
        match tokio::time::timeout(Duration::from_millis(50), store.wait_until_ready()).await {
            Ok(Ok(())) => {
                tracing::info!("credential cache synced; ready");
                synced.store(true, Ordering::SeqCst);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::FingerprintKey;

    /// A context whose client points nowhere: the code under test makes no API call.
    fn context() -> Context {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        Context::new(
            client,
            &Options::new(FingerprintKey::new(b"k".to_vec())),
            Arc::new(Metrics::new()),
        )
    }

    #[tokio::test]
    async fn a_panicking_reconcile_is_an_error_of_its_object_and_is_counted() {
        let ctx = context();
        let meta = kube::api::ObjectMeta {
            name: Some("app".into()),
            namespace: Some("team".into()),
            ..Default::default()
        };
        let result = contain_panics(&ctx, &meta, async {
            let values: Vec<i32> = Vec::new();
            #[allow(clippy::indexing_slicing)]
            Ok(Action::requeue(Duration::from_secs(
                u64::try_from(values[3]).unwrap_or_default(),
            )))
        })
        .await;
        match result {
            Err(Error::Panicked {
                namespace, name, ..
            }) => assert_eq!((namespace.as_str(), name.as_str()), ("team", "app")),
            other => panic!("expected a contained panic, got {other:?}"),
        }
        assert!(
            ctx.metrics
                .encode()
                .contains("sync_client_reconcile_panics_total 1"),
            "{}",
            ctx.metrics.encode()
        );
        let fine = contain_panics(&ctx, &meta, async { Ok(Action::await_change()) }).await;
        assert_eq!(fine.ok(), Some(Action::await_change()));
    }
}
