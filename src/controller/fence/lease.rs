//! The leader lease on `coordination.k8s.io/v1` `Lease`, kept as client-go's leader election
//! keeps it, so that the renewal loop knows when its last renewal succeeded:
//!
//! - a candidate reads the lease every retry period. It takes the lease when it has no holder,
//!   or when the record it last saw has not changed for the holder's `leaseDurationSeconds` by
//!   the candidate's *own* clock (it never compares another machine's `renewTime` with its own
//!   time). A lease whose holder has this replica's identity counts as another's: it may be a
//!   process of the same name that still runs.
//! - the holder renews every retry period (a fifth of `duration − grace`: 2 s with the defaults,
//!   as client-go) with the `resourceVersion` it last wrote as a precondition; on a conflict it
//!   re-reads: another holder means the lease is lost.
//! - it counts itself deposed once `duration − grace` has passed since the last renewal that
//!   succeeded ([`LeaseHealth`]); a renewal still in flight then is abandoned.
//! - a graceful stop releases the lease by clearing its holder.
//!
//! `leaseTransitions` counts changes of holder, `acquireTime` is when the current holder took it,
//! `renewTime` when it last renewed. Writes are JSON merge patches (the chart grants `get`,
//! `create` and `patch` on leases).

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::health::LeaseHealth;

/// The shortest retry period, whatever the lease duration.
const MIN_RETRY_PERIOD: Duration = Duration::from_millis(100);
/// Longest wait for the release of the lease at a graceful stop.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed call to the lease API.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The lease changed since it was read (409: stale `resourceVersion`, or created meanwhile).
    #[error("the lease changed meanwhile")]
    Conflict,
    #[error("{0}")]
    Failed(String),
}

/// What the lease loop needs of the API server (unit tests use an in-memory lease).
pub trait LeaseStore: Send + Sync {
    fn get(&self) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;
    fn create(&self, lease: Lease) -> impl Future<Output = Result<Lease, StoreError>> + Send;
    /// A JSON merge patch; `metadata.resourceVersion` in it is a precondition.
    fn patch(&self, patch: Value) -> impl Future<Output = Result<Lease, StoreError>> + Send;
}

/// The lease of a Kubernetes API server.
pub struct KubeLeases {
    pub api: Api<Lease>,
    pub name: String,
}

impl LeaseStore for KubeLeases {
    async fn get(&self) -> Result<Option<Lease>, StoreError> {
        self.api.get_opt(&self.name).await.map_err(store_error)
    }

    async fn create(&self, lease: Lease) -> Result<Lease, StoreError> {
        self.api
            .create(&PostParams::default(), &lease)
            .await
            .map_err(store_error)
    }

    async fn patch(&self, patch: Value) -> Result<Lease, StoreError> {
        self.api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(store_error)
    }
}

fn store_error(error: kube::Error) -> StoreError {
    match error {
        kube::Error::Api(status) if status.code == 409 => StoreError::Conflict,
        other => StoreError::Failed(crate::controller::kube_error::describe(&other)),
    }
}

/// Why the lease is no longer this replica's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    #[error("no renewal succeeded for {0:?} (lease duration minus renew grace)")]
    Deposed(Duration),
    #[error("another replica ({0}) holds it")]
    Taken(String),
}

/// The lease as this candidate last saw it, and since when by its own clock.
struct Seen {
    spec: LeaseSpec,
    since: Instant,
}

/// One replica's side of the election.
pub struct Elector<S> {
    store: S,
    name: String,
    namespace: String,
    identity: String,
    duration: Duration,
    health: LeaseHealth,
}

impl<S: LeaseStore> Elector<S> {
    /// `health` says for how long a renewal keeps this replica leading (`duration − grace`).
    pub fn new(
        store: S,
        (namespace, name): (&str, &str),
        identity: &str,
        duration: Duration,
        health: LeaseHealth,
    ) -> Self {
        Self {
            store,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            identity: identity.to_owned(),
            duration,
            health,
        }
    }

    /// How often a candidate looks and a holder renews.
    pub fn retry_period(&self) -> Duration {
        (self.health.valid_for() / 5).max(MIN_RETRY_PERIOD)
    }

    /// Waits until this replica holds the lease (the `resourceVersion` it wrote), or `None` when
    /// `stop` resolves first.
    pub async fn acquire(&self, stop: impl Future<Output = ()>) -> Option<String> {
        let mut stop = std::pin::pin!(stop);
        let mut seen = None;
        let mut failing = false;
        loop {
            // Bounded: a look that hangs must not keep a standby from the next one.
            let attempt = tokio::time::timeout(self.duration, self.try_acquire(&mut seen));
            match attempt
                .await
                .unwrap_or_else(|_| Err(StoreError::Failed("the lease API did not answer".into())))
            {
                Ok(Some(version)) => return Some(version),
                Ok(None) => failing = false,
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, lease = %self.name, "reading or taking the lease failed; retrying");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                () = &mut stop => return None,
                () = tokio::time::sleep(self.retry_period()) => {}
            }
        }
    }

    /// Takes the lease if it is free or expired by this replica's clock.
    async fn try_acquire(&self, seen: &mut Option<Seen>) -> Result<Option<String>, StoreError> {
        let Some(lease) = self.store.get().await? else {
            let sent = Instant::now();
            return match self.store.create(self.new_lease()?).await {
                Ok(lease) => Ok(Some(self.took(sent, &lease))),
                Err(StoreError::Conflict) => Ok(None),
                Err(error) => Err(error),
            };
        };
        let now = Instant::now();
        let spec = lease.spec.clone().unwrap_or_default();
        if seen.as_ref().is_none_or(|seen| seen.spec != spec) {
            *seen = Some(Seen {
                spec: spec.clone(),
                since: now,
            });
        }
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        if holder.is_some() {
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.duration, Duration::from_secs);
            let since = seen.as_ref().map_or(now, |seen| seen.since);
            if now < since + duration {
                return Ok(None);
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let transitions = if holder == Some(self.identity.as_str()) {
            transitions
        } else {
            transitions.saturating_add(1)
        };
        let at = micro_time();
        let patch = json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {
                "holderIdentity": self.identity, "leaseDurationSeconds": self.duration_seconds(),
                "acquireTime": at, "renewTime": at, "leaseTransitions": transitions,
            },
        });
        let sent = Instant::now();
        match self.store.patch(patch).await {
            Ok(lease) => Ok(Some(self.took(sent, &lease))),
            Err(StoreError::Conflict) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn took(&self, sent: Instant, lease: &Lease) -> String {
        self.health.renewed(sent);
        lease.metadata.resource_version.clone().unwrap_or_default()
    }

    fn new_lease(&self) -> Result<Lease, StoreError> {
        let at = micro_time();
        serde_json::from_value(json!({
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity, "leaseDurationSeconds": self.duration_seconds(),
                "acquireTime": at, "renewTime": at, "leaseTransitions": 0,
            },
        }))
        .map_err(|e| StoreError::Failed(format!("building the lease: {e}")))
    }

    fn duration_seconds(&self) -> u64 {
        self.duration.as_secs()
    }

    /// Renews the lease held at `version` until `done` resolves (then releases it), or until it
    /// is lost: taken by another replica, or no renewal succeeded for `duration − grace`.
    pub async fn hold(&self, version: String, done: impl Future<Output = ()>) -> Result<(), Lost> {
        let mut done = std::pin::pin!(done);
        let mut version = version;
        loop {
            let Some(until) = self.health.leads_until() else {
                return Err(self.deposed());
            };
            tokio::select! {
                () = &mut done => {
                    self.release(&version).await;
                    return Ok(());
                }
                () = sleep_until(until) => return Err(self.deposed()),
                () = tokio::time::sleep(self.retry_period()) => {}
            }
            let sent = Instant::now();
            match timeout_at(until, self.renew(&version)).await {
                Ok(Ok(lease)) => version = self.took(sent, &lease),
                Ok(Err(StoreError::Conflict)) => version = self.reread(version).await?,
                Ok(Err(error)) => {
                    tracing::warn!(%error, lease = %self.name, "renewing the lease failed; retrying");
                }
                Err(_elapsed) => return Err(self.deposed()),
            }
        }
    }

    async fn renew(&self, version: &str) -> Result<Lease, StoreError> {
        self.store
            .patch(json!({
                "metadata": {"resourceVersion": version},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": self.duration_seconds(),
                    "renewTime": micro_time(),
                },
            }))
            .await
    }

    /// After a conflict: the version to renew next while this replica still holds the lease.
    async fn reread(&self, version: String) -> Result<String, Lost> {
        match self.store.get().await {
            Ok(Some(lease)) => {
                let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone());
                if holder.as_deref() == Some(self.identity.as_str()) {
                    Ok(lease.metadata.resource_version.unwrap_or(version))
                } else {
                    self.health.lose();
                    Err(Lost::Taken(holder.unwrap_or_else(|| "<none>".to_owned())))
                }
            }
            Ok(None) => {
                self.health.lose();
                Err(Lost::Taken("<deleted>".to_owned()))
            }
            Err(error) => {
                tracing::warn!(%error, lease = %self.name, "re-reading the lease failed; retrying");
                Ok(version)
            }
        }
    }

    fn deposed(&self) -> Lost {
        self.health.lose();
        Lost::Deposed(self.health.valid_for())
    }

    /// Clears the holder, so a standby takes over at its next look. Best effort and bounded.
    async fn release(&self, version: &str) {
        self.health.lose();
        let patch = json!({
            "metadata": {"resourceVersion": version},
            "spec": {"holderIdentity": null, "renewTime": micro_time()},
        });
        match tokio::time::timeout(RELEASE_TIMEOUT, self.store.patch(patch)).await {
            Ok(Ok(_)) => tracing::info!(lease = %self.name, "released the lease"),
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %self.name, "could not release the lease; it expires");
            }
            Err(_) => {
                tracing::warn!(lease = %self.name, "releasing the lease timed out; it expires");
            }
        }
    }
}

/// Now, as a `MicroTime`.
fn micro_time() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}
