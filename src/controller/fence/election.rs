//! Leader election, so several replicas can run with exactly one reconciling.
//!
//! A replica stands by until it holds the lease ([`super::lease`]), then runs the controllers
//! until shutdown or until it loses the lease. Losing it (taken by another replica, or no renewal
//! succeeded for `lease duration − renew grace`) stops the controllers and ends the process with
//! an error (the usual practice: the pod restarts with fresh caches and stands by again). A
//! graceful shutdown lets the controllers finish, then releases the lease (clears its holder); a
//! standby looks every retry period, so it takes a released lease within about one (2 s with the
//! default 15 s lease) and an abandoned one within the lease duration plus one.

use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kube::{Api, Client};

use super::health::LeaseHealth;
use super::lease::{Elector, KubeLeases, Lost};

/// How to elect.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    /// How long a holder's claim is valid without renewal, as a standby measures it.
    pub lease_duration: Duration,
    /// How long before that the holder counts itself deposed when its renewals fail.
    pub renew_grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error(
        "the renew grace ({grace:?}) must be at least 1 s and below the lease duration ({duration:?})"
    )]
    Config { duration: Duration, grace: Duration },
    #[error(
        "lost the lease {namespace}/{name}: {why}; stopping so that only one replica reconciles"
    )]
    LostLease {
        namespace: String,
        name: String,
        why: Lost,
    },
}

/// What the controllers stop on: shutdown, or the lease lost.
pub type Stop = Shared<BoxFuture<'static, ()>>;

/// Runs `work` while this replica holds the lease. `work` receives a future that resolves when it
/// must stop (shutdown requested or lease lost) and the lease's health for fencing; the lease is
/// renewed until `work` has returned.
pub async fn run_as_leader<S, W, F>(
    client: Client,
    config: &ElectionConfig,
    shutdown: S,
    on_standby: impl FnOnce(),
    work: W,
) -> Result<(), LeaderError>
where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
    W: FnOnce(Stop, LeaseHealth) -> F,
    F: Future<Output = ()>,
{
    let valid_for = config
        .lease_duration
        .checked_sub(config.renew_grace)
        .filter(|valid| !valid.is_zero() && config.renew_grace >= Duration::from_secs(1))
        .ok_or(LeaderError::Config {
            duration: config.lease_duration,
            grace: config.renew_grace,
        })?;
    let health = LeaseHealth::new(valid_for);
    let elector = Elector::new(
        KubeLeases {
            api: Api::namespaced(client, &config.lease_namespace),
            name: config.lease_name.clone(),
        },
        (&config.lease_namespace, &config.lease_name),
        &config.identity,
        config.lease_duration,
        health.clone(),
    );
    on_standby();
    tracing::info!(lease = %config.lease_name, identity = %config.identity, "waiting to acquire the lease");
    let Some(version) = elector.acquire(shutdown.clone()).await else {
        return Ok(());
    };
    tracing::info!(lease = %config.lease_name, identity = %config.identity, "acquired the lease; starting controllers");
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let stop: Stop = async move {
        tokio::select! {
            () = shutdown => {},
            _ = lost_rx => {},
        }
    }
    .boxed()
    .shared();
    let holding = async {
        let held = elector
            .hold(version, async {
                let _ = done_rx.await;
            })
            .await;
        if let Err(why) = &held {
            tracing::error!(lease = %config.lease_name, %why, "lost the lease; no credential is issued any more");
            let _ = lost_tx.send(());
        }
        held
    };
    let working = async {
        work(stop, health).await;
        let _ = done_tx.send(());
    };
    let (held, ()) = futures::future::join(holding, working).await;
    held.map_err(|why| LeaderError::LostLease {
        namespace: config.lease_namespace.clone(),
        name: config.lease_name.clone(),
        why,
    })
}
