//! The controllers: credentials (the main one) and brokers (status only). They share one
//! [`Context`]: the Kubernetes client, the event recorder, the broker registry and metrics.

pub mod broker_status;
pub mod brokers;
pub mod caches;
pub mod credential;
pub mod entra;
pub mod failure;
pub mod fence;
pub mod kube_error;
pub mod memo;
pub mod recorder;
pub mod references;
mod runner;
pub mod status;
pub mod triggers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::TimeDelta;
use kube::Client;

use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::planner::DEFAULT_MIN_ISSUE_INTERVAL;
use crate::secret::FingerprintKeys;
use brokers::BrokerRegistry;
use caches::Caches;
use credential::pending::PendingStore;
use fence::Fence;
use kube_error::{Call, describe_call};
pub use runner::run;

/// Name the operator reports as in events and field managers.
pub const CONTROLLER_NAME: &str = "sync-client-operator";

/// Errors of a reconcile that are not the broker's: failed Kubernetes calls, named by the object
/// and the verb. Their words come from [`kube_error`], never kube's `Debug` text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "reading SyncClientCredential {namespace}/{name}: {}",
        describe_call(source, Call::new("get", "syncclientcredentials", Some(namespace)))
    )]
    GetCredential {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "reading Secret {namespace}/{name}: {}",
        describe_call(source, Call::new("get", "secrets", Some(namespace)))
    )]
    GetSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "patching the labels and annotations of Secret {namespace}/{name}: {}",
        describe_call(source, Call::new("patch", "secrets", Some(namespace)))
    )]
    WriteSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "writing the credential it holds again into Secret {namespace}/{name} ({why}) failed; it is kept where it is and the write retried: {message}"
    )]
    RewriteSecret {
        namespace: String,
        name: String,
        /// Why it was written again (`SecretRenamed`, `KeysRenamed`, ...).
        why: &'static str,
        /// [`FailureReason::SecretWriteFailed`] or [`FailureReason::SecretWriteRejected`].
        reason: failure::FailureReason,
        message: String,
    },
    #[error(
        "writing the status of {namespace}/{name}: {}",
        kube_error::describe(source)
    )]
    WriteStatus {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reconciling {namespace}/{name} panicked: {message}")]
    Panicked {
        namespace: String,
        name: String,
        message: String,
    },
}

impl Error {
    /// A short category, for metrics labels.
    pub fn category(&self) -> &'static str {
        match self {
            Self::GetCredential { .. } => "get_credential",
            Self::GetSecret { .. } => "get_secret",
            Self::WriteSecret { .. } | Self::RewriteSecret { .. } => "write_secret",
            Self::WriteStatus { .. } => "write_status",
            Self::Panicked { .. } => "panic",
        }
    }

    /// The event (and condition) reason that says what failed.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::GetCredential { .. } => crate::api::reasons::CREDENTIAL_READ_FAILED,
            Self::GetSecret { .. } => failure::FailureReason::SecretReadFailed.as_str(),
            Self::WriteSecret { .. } => failure::FailureReason::SecretWriteFailed.as_str(),
            Self::RewriteSecret { reason, .. } => reason.as_str(),
            Self::WriteStatus { .. } => crate::api::reasons::STATUS_WRITE_FAILED,
            Self::Panicked { .. } => failure::FailureReason::ReconcilePanicked.as_str(),
        }
    }

    /// What happens next, or what a person can do.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::GetCredential { .. } => {
                "an issue waits for this fresh read of the resource; it is retried with backoff"
            }
            Self::GetSecret { .. } => {
                "nothing is decided about the credential until its Secret can be read; it is retried with backoff"
            }
            Self::WriteSecret { .. } => {
                "the credential in the Secret is unchanged; the patch is retried with backoff"
            }
            Self::RewriteSecret { .. } => "it is retried with backoff; nothing is issued meanwhile",
            Self::WriteStatus { .. } => {
                "what happened is kept in memory and written with the next status; it is retried with backoff"
            }
            Self::Panicked { .. } => failure::FailureReason::ReconcilePanicked.hint(),
        }
    }
}

/// State shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: recorder::Recorder,
    pub brokers: BrokerRegistry,
    /// The Graph clients of Entra ID connections, one per connection.
    pub entra: entra::EntraRegistry,
    /// Signs and checks the Secrets' fingerprints (the current key and the previous ones).
    pub fingerprint_keys: FingerprintKeys,
    pub metrics: Arc<Metrics>,
    /// The time, read once per reconcile.
    pub clock: Arc<dyn Clock>,
    /// Whether a generate may start (leader, not shutting down).
    pub fence: Fence,
    /// Credentials generated but not yet stored.
    pub pending: PendingStore,
    /// What this process last wrote per credential.
    pub memo: memo::Memo,
    /// Reconciles asked for from inside another reconcile.
    pub triggers: triggers::Triggers,
    /// At most one issue per credential per this interval.
    pub min_issue_interval: TimeDelta,
    /// How long after a generate went unanswered it may still land at the broker: the stored
    /// token is checked once this has passed.
    pub unknown_outcome_window: TimeDelta,
    /// The controllers' caches, once they run (absent in reconcile tests: everything is read).
    caches: OnceLock<Caches>,
    /// Consecutive reconcile errors per object, for the error backoff.
    error_counts: Mutex<HashMap<String, u32>>,
}

/// How the controllers run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Watch only this namespace (and ignore ClusterIdentityBrokers).
    pub namespace: Option<String>,
    pub fingerprint_keys: FingerprintKeys,
    /// Identifies this replica in events.
    pub instance: Option<String>,
    /// Concurrent rotations per broker when the broker sets no limit.
    pub default_broker_concurrency: usize,
    /// At most one issue per credential per this interval, whatever asks for it.
    pub min_issue_interval: TimeDelta,
    /// Credential reconciles running at once (the rest wait in the queue).
    pub reconcile_concurrency: u16,
    /// How long a generate that went unanswered may still land at the broker.
    pub unknown_outcome_window: TimeDelta,
    /// The operator's projected ServiceAccount token for Entra ID workload identity.
    pub workload_identity_token_file: std::path::PathBuf,
}

/// Default of [`Options::unknown_outcome_window`]: longer than any request a broker or the
/// proxies in front of vCenter keep alive once their client gave up on it.
pub const DEFAULT_UNKNOWN_OUTCOME_WINDOW: TimeDelta = TimeDelta::minutes(5);

/// Default of [`Options::reconcile_concurrency`]: enough to keep the API server and the brokers
/// busy, few enough that thousands of credentials do not hold thousands of requests in flight.
pub const DEFAULT_RECONCILE_CONCURRENCY: u16 = 64;

impl Options {
    /// Cluster-wide, with the default limits.
    pub fn new(fingerprint_keys: impl Into<FingerprintKeys>) -> Self {
        Self {
            namespace: None,
            fingerprint_keys: fingerprint_keys.into(),
            instance: None,
            default_broker_concurrency: 4,
            min_issue_interval: DEFAULT_MIN_ISSUE_INTERVAL,
            reconcile_concurrency: DEFAULT_RECONCILE_CONCURRENCY,
            unknown_outcome_window: DEFAULT_UNKNOWN_OUTCOME_WINDOW,
            workload_identity_token_file: entra::DEFAULT_WORKLOAD_IDENTITY_TOKEN_FILE.into(),
        }
    }
}

impl Context {
    pub fn new(client: Client, options: &Options, metrics: Arc<Metrics>) -> Self {
        Self {
            recorder: recorder::Recorder::new(
                client.clone(),
                CONTROLLER_NAME,
                options.instance.as_deref(),
            ),
            brokers: BrokerRegistry::new(
                Some(metrics.broker_observer()),
                options.namespace.is_some(),
                options.default_broker_concurrency,
            ),
            entra: entra::EntraRegistry::new(
                Some(entra::observer(&metrics)),
                options.namespace.is_some(),
                options.workload_identity_token_file.clone(),
            ),
            client,
            fingerprint_keys: options.fingerprint_keys.clone(),
            metrics,
            clock: Arc::new(SystemClock),
            fence: Fence::default(),
            pending: PendingStore::default(),
            memo: memo::Memo::default(),
            triggers: triggers::Triggers::default(),
            min_issue_interval: options.min_issue_interval,
            unknown_outcome_window: options.unknown_outcome_window,
            caches: OnceLock::new(),
            error_counts: Mutex::new(HashMap::new()),
        }
    }

    /// Replaces the fence (a leader's, under leader election).
    #[must_use]
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }

    /// The controllers' caches, once they run.
    pub fn caches(&self) -> Option<&Caches> {
        self.caches.get()
    }

    /// Replaces the system clock (tests use one that stands still).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn error_backoff(&self, key: String) -> Duration {
        let mut counts = self
            .error_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        let exponent = (*count - 1).min(8);
        (Duration::from_secs(1) * (1 << exponent)).min(Duration::from_secs(300))
    }

    /// Backoff for a broker whose authentication failed: from 5 s, so an unreachable broker at
    /// start is reported soon, yet is polled at most every 5 minutes.
    fn broker_backoff(&self, key: &brokers::BrokerKey) -> Duration {
        (self.error_backoff(format!("broker:{key}")) * 5).min(Duration::from_secs(300))
    }

    fn clear_errors(&self, key: &str) {
        self.error_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}
