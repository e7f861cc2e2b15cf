//! One world: the Kubernetes API simulator and the broker simulator in this process, the CRDs,
//! one IdentityBroker, the benchmark's own watches, and credentials created in-process (so
//! their creation is not in the request log: every request there is the operator's or a watch of
//! the benchmark's).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, Endpoint, SyncClients};
use sync_client_kube_sim::{KubeSim, PatchKind, RecordedRequest};

use crate::Failure;
use crate::tracker::{BENCH_AGENT, Tracker};

pub const NAMESPACE: &str = "default";
pub const BROKER: &str = "vc";
/// The broker's vCenter login Secret.
pub const LOGIN_SECRET: &str = "login";

pub struct World {
    pub kube: KubeSim,
    pub broker: BrokerSim,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub tracker: Arc<Tracker>,
    /// Credentials created so far (named `c0`, `c1`, ...).
    pub credentials: usize,
    /// vCenter logins and broker-token fetches in broker logs cleared so far.
    sessions: std::sync::Mutex<(usize, usize)>,
}

/// The directory (sync client) of credential `i`.
pub fn directory(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

pub fn credential_name(i: usize) -> String {
    format!("c{i}")
}

impl World {
    /// Starts both simulators (the broker's one minute of `token_ttl` is `ttl_unit`), installs
    /// the CRDs and the broker, and starts the benchmark's watches.
    pub async fn start(label: &str, ttl_unit: Duration) -> Result<Self, Failure> {
        let broker = BrokerSim::start(BrokerSimConfig {
            ttl_unit,
            ..BrokerSimConfig::default()
        })
        .await?;
        let kube = KubeSim::start().await?;
        let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(crds)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for file in files {
            kube.apply_yaml(&std::fs::read_to_string(&file)?)
                .map_err(|e| format!("CRD {}: {e:?}", file.display()))?;
        }
        let dir = std::env::temp_dir().join(format!("scc-bench-{}-{label}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join("kubeconfig.yaml");
        kube.write_kubeconfig(&kubeconfig)?;
        let ca = broker.ca_pem().unwrap_or_default();
        kube.create(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": LOGIN_SECRET, "namespace": NAMESPACE},
            "stringData": {"username": broker.username(), "password": broker.password()},
        }))
        .map_err(|e| format!("login Secret: {e:?}"))?;
        kube.create(json!({
            "apiVersion": "syncclient.io/v1alpha1", "kind": "IdentityBroker",
            "metadata": {"name": BROKER, "namespace": NAMESPACE},
            "spec": {
                "url": broker.url(),
                "tls": {"caBundle": ca},
                "auth": {"vcenter": {"credentialsSecretRef": {"name": LOGIN_SECRET}}},
            },
        }))
        .map_err(|e| format!("IdentityBroker: {e:?}"))?;
        let tracker = Tracker::start(&kubeconfig, NAMESPACE).await?;
        Ok(Self {
            kube,
            broker,
            dir,
            kubeconfig,
            tracker,
            credentials: 0,
            sessions: std::sync::Mutex::new((0, 0)),
        })
    }

    /// Creates `count` more credentials (and their directories at the broker) with tokens of
    /// `ttl_minutes` broker minutes.
    pub async fn add_credentials(&mut self, count: usize, ttl_minutes: i32) -> Result<(), Failure> {
        let first = self.credentials;
        for i in first..first + count {
            let directory = directory(i);
            self.broker.add_directory(
                &directory,
                SyncClients::One {
                    generate_token: true,
                    token_ttl: ttl_minutes,
                },
            );
            self.kube
                .create(json!({
                    "apiVersion": "syncclient.io/v1alpha1", "kind": "SyncClientCredential",
                    "metadata": {"name": credential_name(i), "namespace": NAMESPACE},
                    "spec": {
                        "brokerRef": {"kind": "IdentityBroker", "name": BROKER},
                        "directoryId": directory,
                        "credentialType": "AccessToken",
                        "tokenTTL": format!("{ttl_minutes}m"),
                    },
                }))
                .map_err(|e| format!("credential {i}: {e:?}"))?;
            self.credentials = i + 1;
            if i % 200 == 199 {
                // Creates hold the simulator's store: let it serve the operator in between.
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }

    /// Sets the rotate-request annotation on the credentials `which`.
    pub async fn request_rotation(
        &self,
        value: &str,
        which: std::ops::Range<usize>,
    ) -> Result<(), Failure> {
        let patch = json!({"metadata": {"annotations": {"syncclient.io/rotate-request": value}}});
        for i in which {
            self.kube
                .patch(
                    "syncclient.io/v1alpha1",
                    "syncclientcredentials",
                    Some(NAMESPACE),
                    &credential_name(i),
                    PatchKind::Merge,
                    &patch,
                    None,
                )
                .map_err(|e| format!("rotate request on c{i}: {e:?}"))?;
            if i % 200 == 199 {
                tokio::task::yield_now().await;
            }
        }
        Ok(())
    }

    /// Waits until `predicate` holds for the tracker's view, checking every 100 ms; on timeout
    /// the error says how far it got.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut count: impl FnMut(&crate::tracker::State) -> usize,
        want: usize,
    ) -> Result<Duration, Failure> {
        let started = Instant::now();
        loop {
            let (have, errors) = {
                let state = self.tracker.lock();
                (count(&state), state.watch_errors)
            };
            if have >= want {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "{what}: {have}/{want} after {timeout:?} (benchmark watch errors: {errors})"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until neither simulator has logged a request for `quiet` (at most `timeout`).
    /// Returns whether it went quiet.
    pub async fn quiesce(&self, quiet: Duration, timeout: Duration) -> bool {
        let started = Instant::now();
        let mut last = (usize::MAX, usize::MAX);
        let mut since = Instant::now();
        while started.elapsed() < timeout {
            let now = (self.kube.counts().total(), self.broker_total());
            if now == last {
                if since.elapsed() >= quiet {
                    return true;
                }
            } else {
                last = now;
                since = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn broker_total(&self) -> usize {
        ENDPOINTS.iter().map(|e| self.broker.count(*e)).sum()
    }

    /// The operator's requests (everything in the log but the benchmark's watches).
    pub fn operator_requests(&self) -> Vec<RecordedRequest> {
        self.kube
            .requests()
            .into_iter()
            .filter(|r| r.user_agent.as_deref() != Some(BENCH_AGENT))
            .collect()
    }

    /// vCenter logins and broker-token fetches since the world started.
    pub fn session_calls(&self) -> (usize, usize) {
        let (logins, fetches) = crate::calls::BrokerCalls::of(&self.broker).session_calls();
        let cleared = *self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (cleared.0 + logins, cleared.1 + fetches)
    }

    pub fn clear_logs(&self) {
        *self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = self.session_calls();
        self.kube.clear_requests();
        self.broker.clear_requests();
    }

    pub async fn shutdown(self) {
        self.tracker.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        self.broker.shutdown().await;
        self.kube.shutdown().await;
    }
}

pub const ENDPOINTS: [Endpoint; 8] = [
    Endpoint::Login,
    Endpoint::Logout,
    Endpoint::OperatorClientToken,
    Endpoint::AdminClientToken,
    Endpoint::Generate,
    Endpoint::ReadSyncClient,
    Endpoint::ScimProbe,
    Endpoint::Unknown,
];
