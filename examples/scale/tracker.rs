//! What the benchmark sees of the world, through its own watches on the simulator (its own user
//! agent, so its requests are told from the operator's): each credential's readiness, revision,
//! served rotate request and planned renewal times, and each Secret's record annotations with
//! the moment the benchmark saw them change.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::Failure;

/// User agent of the benchmark's own Kubernetes client.
pub const BENCH_AGENT: &str = "sync-client-bench";

/// One credential as last seen.
#[derive(Default, Clone, Debug)]
pub struct Credential {
    pub ready: bool,
    pub revision: i64,
    pub observed_rotate: Option<String>,
    /// `status.renewalTime` by `status.revision` (the last few).
    pub renewals: Vec<(i64, DateTime<Utc>)>,
}

/// One Secret's record as last seen.
#[derive(Clone, Debug)]
pub struct SecretRecord {
    pub revision: i64,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A Secret moving from one revision to the next, as seen.
#[derive(Clone, Debug)]
pub struct Transition {
    /// Revisions skipped on the way (0 when the new revision is the next one).
    pub skipped: i64,
    /// When the benchmark's watch delivered the new revision (after the issue and the write).
    pub seen_at: DateTime<Utc>,
    /// The new record's `issued-at` (whole seconds, rounded down by the operator).
    pub issued_at: Option<DateTime<Utc>>,
    /// The `status.renewalTime` the operator planned for revision `from`.
    pub planned: Option<DateTime<Utc>>,
    /// When the token of revision `from` expired.
    pub previous_expiry: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct State {
    pub credentials: HashMap<String, Credential>,
    pub secrets: HashMap<String, SecretRecord>,
    /// Recorded only while `recording` is set.
    pub transitions: Vec<Transition>,
    pub recording: bool,
    pub watch_errors: usize,
}

impl State {
    /// Credentials Ready with at least `revision` (and, when given, this rotate request served).
    pub fn count_current(&self, revision: i64, rotate: Option<&str>) -> usize {
        self.credentials
            .values()
            .filter(|c| {
                c.ready
                    && c.revision >= revision
                    && rotate.is_none_or(|r| c.observed_rotate.as_deref() == Some(r))
            })
            .count()
    }
}

pub struct Tracker {
    state: Mutex<State>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Tracker {
    /// Starts the watches on credentials and Secrets in `namespace`.
    pub async fn start(kubeconfig: &Path, namespace: &str) -> Result<Arc<Self>, Failure> {
        let client = bench_client(kubeconfig).await?;
        let tracker = Arc::new(Self {
            state: Mutex::new(State::default()),
            tasks: Mutex::new(Vec::new()),
        });
        let gvk = GroupVersionKind::gvk("syncclient.io", "v1alpha1", "SyncClientCredential");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "syncclientcredentials");
        let credentials: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &resource);
        let secrets: Api<PartialObjectMeta<Secret>> = Api::namespaced(client, namespace);
        let on_credential = {
            let tracker = tracker.clone();
            tokio::spawn(async move {
                let mut events = watcher::watcher(credentials, watcher::Config::default())
                    .default_backoff()
                    .boxed();
                while let Some(event) = events.next().await {
                    tracker.on_credential_event(event);
                }
            })
        };
        let on_secret = {
            let tracker = tracker.clone();
            tokio::spawn(async move {
                let mut events = watcher::watcher(secrets, watcher::Config::default())
                    .default_backoff()
                    .boxed();
                while let Some(event) = events.next().await {
                    tracker.on_secret_event(event);
                }
            })
        };
        tracker.tasks().extend([on_credential, on_secret]);
        Ok(tracker)
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tasks(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn stop(&self) {
        for task in self.tasks().drain(..) {
            task.abort();
        }
    }

    fn on_credential_event(&self, event: Result<Event<DynamicObject>, watcher::Error>) {
        let mut state = self.lock();
        match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let Some(name) = obj.metadata.name.clone() else {
                    return;
                };
                let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
                let entry = state.credentials.entry(name).or_default();
                entry.ready = status
                    .get("conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                entry.revision = status["revision"].as_i64().unwrap_or(0);
                entry.observed_rotate = status["observedRotateRequest"].as_str().map(str::to_owned);
                if let Some(at) = status["renewalTime"].as_str().and_then(parse_time)
                    && !entry.renewals.iter().any(|(rev, _)| *rev == entry.revision)
                {
                    entry.renewals.push((entry.revision, at));
                    if entry.renewals.len() > 4 {
                        entry.renewals.remove(0);
                    }
                }
            }
            Ok(Event::Delete(obj)) => {
                if let Some(name) = &obj.metadata.name {
                    state.credentials.remove(name);
                }
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(_) => state.watch_errors += 1,
        }
    }

    fn on_secret_event(&self, event: Result<Event<PartialObjectMeta<Secret>>, watcher::Error>) {
        let seen_at = Utc::now();
        let mut state = self.lock();
        match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let Some(name) = obj.metadata.name.clone() else {
                    return;
                };
                let annotations = obj.metadata.annotations.unwrap_or_default();
                let Some(revision) = annotations
                    .get("syncclient.io/revision")
                    .and_then(|r| r.parse::<i64>().ok())
                else {
                    return;
                };
                let record = SecretRecord {
                    revision,
                    issued_at: annotations
                        .get("syncclient.io/issued-at")
                        .and_then(|t| parse_time(t)),
                    expires_at: annotations
                        .get("syncclient.io/expires-at")
                        .and_then(|t| parse_time(t)),
                };
                let previous = state.secrets.insert(name.clone(), record.clone());
                if state.recording
                    && let Some(previous) = previous
                    && previous.revision < revision
                {
                    let planned = state.credentials.get(&name).and_then(|c| {
                        c.renewals
                            .iter()
                            .find(|(rev, _)| *rev == previous.revision)
                            .map(|(_, at)| *at)
                    });
                    state.transitions.push(Transition {
                        skipped: revision - previous.revision - 1,
                        seen_at,
                        issued_at: record.issued_at,
                        planned,
                        previous_expiry: previous.expires_at,
                    });
                }
            }
            Ok(Event::Delete(obj)) => {
                if let Some(name) = &obj.metadata.name {
                    state.secrets.remove(name);
                }
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(_) => state.watch_errors += 1,
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A client whose requests carry [`BENCH_AGENT`].
pub async fn bench_client(kubeconfig: &Path) -> Result<Client, Failure> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig)?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(BENCH_AGENT),
    ));
    Ok(Client::try_from(config)?)
}
