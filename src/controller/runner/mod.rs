//! Wires the controllers: the watches and their caches, the triggers between them, and the
//! guards around each credential reconcile (an object that cannot be read is reported and
//! skipped; a panic is contained to its object).
//!
//! - [`watches`]: the watch streams, their caches and the side effects of their events;
//! - [`guard`]: the guards around each credential reconcile.

mod guard;
#[cfg(test)]
mod guard_tests;
mod watches;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt, future};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::Controller;
use kube::runtime::reflector::{self, Store};

use guard::{credential_error_policy, reconcile_credential};
use watches::{api, broker_events, credential_events, mapper, owned_secret_events};

use super::caches::{Caches, DirectoryIndex};
use super::fence::Fence;
use super::{Context, Options, broker_status};
use crate::api::{BrokerKind, SyncClientCredential};
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
