//! In-memory Kubernetes API server simulator for end-to-end tests.
//!
//! Serves on `127.0.0.1`, over plain HTTP ([`KubeSim::start`]) or HTTPS with bearer-token
//! authentication and RBAC authorization ([`KubeSim::start_with`]), what a kube-rs controller,
//! the stock `kubectl` and the stock `helm` (v4: install, upgrade, uninstall, release Secrets,
//! server-side apply or three-way merge) use: discovery (legacy and aggregated
//! `apidiscovery.k8s.io/v2`), a minimal `/openapi/v3`, CRUD on built-in kinds and on every
//! resource a `CustomResourceDefinition` created through it defines, the `/status`
//! subresource, merge / JSON / strategic merge / server-side apply patches, server-side dry
//! run (`dryRun=All`), label and field selectors, pagination, watches with resource-version
//! replay, bookmarks and `410 Gone`, `meta.k8s.io/v1 Table` output for `kubectl get`,
//! validation of custom resources against the CRD schema (with a CEL subset) and of object
//! metadata and Secrets as kube-apiserver validates them, owner-reference garbage collection,
//! finalizers, namespace termination, one store for both Event APIs,
//! `SelfSubjectAccessReview` (`kubectl auth can-i`), fault injection (failures with the real
//! `Status` bodies, latency, going offline; for every client or for one, by its bearer token)
//! and request accounting (verb, resource, user, client, dry run). A test can also start from
//! a cluster's saved state: [`KubeSim::restore`] loads objects as a restored etcd holds them
//! (uids, creation times, owner references, statuses kept). Objects are plain
//! `serde_json::Value`s.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sync_client_kube_sim::{Fault, KubeSim, KubeSimConfig};
//! let sim = KubeSim::start().await?;
//! sim.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! sim.apply_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n")?;
//! sim.inject(Fault::fail("patch", "secrets").times(1).status(500));
//! assert_eq!(sim.counts().get("patch", "secrets"), 0);
//! sim.shutdown().await;
//!
//! // In-cluster style: HTTPS, and a ServiceAccount that may do only what RBAC allows it.
//! let secure = KubeSim::start_with(KubeSimConfig { tls: true, rbac: true, port: None }).await?;
//! secure.apply_yaml("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: default}\n")?;
//! secure.service_account_files("default", "op", std::path::Path::new("/tmp/sa"))?;
//! # Ok(()) }
//! ```
//!
//! # Fidelity notes: what is simplified or not modelled
//!
//! - **Server-side apply** tracks ownership only for apply managers: each one owns the leaf
//!   fields (map keys, recursively) of its last applied configuration; **lists are atomic**
//!   (no `listType=map` merging by key). Applying merges the configuration into the live
//!   object, removes fields the manager stopped applying (unless another apply manager owns
//!   them) and reports conflicts only against other *apply* managers (`force=true` takes
//!   over). Updates and non-apply patches do not record managers.
//! - **Strategic merge patch** is a merge patch plus keyed merging of a fixed set of list
//!   fields (`containers`, `env`, `volumes`, `volumeMounts`, `ownerReferences`,
//!   `conditions`, ...), union of `finalizers`, and the `$patch`, `$retainKeys`,
//!   `$setElementOrder`, `$deleteFromPrimitiveList` directives. It is refused (415) for custom
//!   resources, as by the real server.
//! - **Dry run** (`dryRun=All` on create, update, patch, apply, delete and deletecollection,
//!   status included) validates, defaults and passes injected faults like the real write and
//!   answers with the object the write would produce, without storing, versioning, watch
//!   events, garbage collection, finalization or namespace termination. Any other `dryRun`
//!   value is a 422 about `CreateOptions`/`UpdateOptions`/`PatchOptions`/`DeleteOptions`.
//! - **Lists** always read the latest state: `resourceVersion`/`resourceVersionMatch` on a
//!   list are accepted and ignored; continue tokens page through the live state (no snapshot).
//! - **Watch history** keeps the last 10 000 changes (or less after
//!   [`KubeSim::expire_watch_history`]); older resource versions get a `410` ERROR event.
//! - **Validation** of custom resources: types, `required`, `enum`, `nullable`, formats
//!   (`date-time`, `date`, `int32`, `int64`, `uuid`, `duration`, `byte`), numeric bounds,
//!   string lengths and `pattern`, item/property counts, `x-kubernetes-list-type` set/map
//!   uniqueness, `allOf`/`anyOf`/`oneOf`/`not`, `x-kubernetes-int-or-string`,
//!   `x-kubernetes-preserve-unknown-fields`, pruning of unknown fields (400 under
//!   `fieldValidation=Strict`, a `Warning` header otherwise), `default`s, and
//!   `x-kubernetes-validations` CEL rules in the subset described in `cel.rs` (durations and
//!   timestamps as cel-go; no quantities, optionals or Kubernetes library functions: rules
//!   outside the subset are skipped with a log warning and counted, see
//!   [`KubeSim::cel_rule_runs`]; `messageExpression` is ignored). A `/status` write is
//!   checked against the status schema only (and the rules on the root), as kube-apiserver
//!   does: an object stored under an older schema can still get its status written.
//! - **Validation of built-in kinds** covers object metadata for every kind (name format,
//!   `generateName`, label keys and values, annotation keys and their 256 KiB total, owner
//!   references, finalizers, no new finalizers while deleting; see `objectmeta.rs`) and
//!   Secrets in full (`stringData` merged into `data`, base64 `data` as a 400 decoding
//!   error, data keys, the 1 MiB total, the rules of the `kubernetes.io/*` types, immutable
//!   `type`, `immutable` Secrets; see `secret.rs`), plus immutable ConfigMaps. Messages use
//!   Kubernetes 1.34 wording. Other fields of built-in kinds (pod specs, lease specs, ...) are
//!   not validated, and an update's metadata is checked once (the real Secret validation
//!   lists some metadata errors twice in `details.causes`).
//! - **CRD versions**: every served version reads and writes the same stored object (the
//!   `None` conversion strategy); no conversion webhooks. Only the `status` subresource exists
//!   (no `scale`).
//! - **Garbage collection** is synchronous and background-only: dependents go right after
//!   their owner; `propagationPolicy=Orphan` strips the owner reference instead; `Foreground`
//!   is treated as background. Objects whose owners (of a kind the simulator serves) all do
//!   not exist are deleted when written (disable with [`KubeSim::set_orphan_collection`]).
//!   Deleting a CRD removes its custom resources at once, ignoring their finalizers.
//! - **Deletes** answer with the object for every kind (200, or 202 while finalizers are
//!   pending); the real server answers a `Status` of `Success` for kinds without
//!   `ReturnDeletedObject` (Secrets, ConfigMaps, Leases, ...) and 202 only when
//!   `orphanDependents=false` was asked for.
//! - **Namespaces**: deletion marks the namespace `Terminating`, deletes its objects within
//!   the same request (objects with finalizers wait for them) and removes the namespace once
//!   it is empty; the real namespace controller does this asynchronously.
//! - **Authentication and authorization** only with [`KubeSimConfig::rbac`]: the admin token
//!   and tokens from [`KubeSim::service_account_token`] are accepted (a ServiceAccount token
//!   only while that ServiceAccount, same uid, exists); anything else is 401 (no anonymous
//!   user, no client certificates, no token expiry or audiences, no impersonation). RBAC
//!   reads the stored Roles, ClusterRoles and bindings on every request; ClusterRole
//!   `aggregationRule` is ignored (only a role's own `rules` count); the default
//!   `system:discovery`, `system:public-info-viewer` and `system:basic-user` bindings are
//!   built in. Without `rbac`, any token (or none) is accepted.
//! - **TLS** serves HTTP/2 and HTTP/1.1; the listener is on `127.0.0.1` only, although the
//!   certificate also names `::1`.
//! - **Events**: `events.k8s.io/v1` and core `v1` Events are one store, as in kube-apiserver:
//!   an Event written through either API is read, listed and watched through both, converted
//!   as kube-apiserver converts them (`regarding` ↔ `involvedObject`, `note` ↔ `message`,
//!   `reportingController` ↔ `reportingComponent`, `deprecatedSource` ↔ `source`,
//!   `deprecated{First,Last}Timestamp`/`deprecatedCount` ↔ `{first,last}Timestamp`/`count`;
//!   see `events.rs`), with each version's field selector labels (an unsupported label is a
//!   400) and `kubectl get events` columns. Events are not validated beyond object metadata
//!   (the real server requires e.g. `eventTime` and `reportingController` through
//!   `events.k8s.io/v1`), and server-side apply ownership of an Event is tracked in the form
//!   of the API that applied it (no conversion of `managedFields`).
//! - Built-in kinds have no defaulting beyond `Secret.type` and namespace labels.
//! - **helm** needs no `--disable-openapi-validation`: it reads `/openapi/v3` only to learn
//!   that the server validates fields itself, then sends `fieldValidation=Strict`, which the
//!   simulator applies to custom resources (fields of built-in kinds beyond those listed
//!   above are not validated, unknown ones included).
//! - No admission webhooks or quotas (inject them with [`Fault`]), `scale`/`exec`/`log`/
//!   `proxy` subresources, `SelfSubjectRulesReview` (`kubectl auth can-i --list`), pods or
//!   controllers that act on workloads, protobuf request bodies other than `v1` Secret,
//!   ConfigMap, Namespace, ServiceAccount, RBAC roles and bindings, `SelfSubjectAccessReview`
//!   and `DeleteOptions` (what `kubectl create ...`, `kubectl auth can-i` and client-go's
//!   typed clients, helm's release storage among them, send), CBOR,
//!   protobuf answers (JSON is served to every `Accept`), `/openapi/v2` (404; the v3 document
//!   carries paths and CRD schemas only), or `resourceVersionMatch=Exact` reads of old
//!   versions. The `authorization.k8s.io` group is not listed in discovery.

mod access;
mod accounting;
mod apply;
mod auth;
mod cel;
mod control;
mod discovery;
mod error;
mod events;
mod faults;
mod gc;
mod http;
mod objectmeta;
mod objects;
mod patch;
mod protobuf;
mod resources;
mod restore;
mod secret;
mod selectors;
mod server;
mod shared;
mod store;
mod table;
mod tls;
mod validation;
mod watch;
mod yaml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use accounting::{RecordedRequest, RequestCounts};
pub use error::{FieldCause, SimError};
pub use faults::{DryRunMatch, Fault};
pub use patch::PatchKind;
pub use validation::CelRuleRuns;

use auth::Tokens;
pub(crate) use shared::Shared;

/// How to start a simulator: [`KubeSim::start_with`].
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use sync_client_kube_sim::{KubeSim, KubeSimConfig};
/// let sim = KubeSim::start_with(KubeSimConfig { tls: true, rbac: true, ..KubeSimConfig::default() }).await?;
/// # let _ = sim; Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeSimConfig {
    /// Serve HTTPS with a certificate from a CA generated at start ([`KubeSim::ca_pem`]),
    /// valid for `127.0.0.1`, `::1`, `localhost` and the in-cluster `kubernetes[.default[.svc
    /// [.cluster.local]]]` names.
    pub tls: bool,
    /// Require a bearer token the simulator issued (401 otherwise) and authorize every request
    /// against the stored RBAC objects (403 otherwise). Without it every request is allowed,
    /// whatever its token.
    pub rbac: bool,
    /// Port on 127.0.0.1; `None` (or 0) picks a free one.
    pub port: Option<u16>,
}

/// A running simulator. The server stops on [`KubeSim::shutdown`] or when dropped.
pub struct KubeSim {
    shared: Arc<Shared>,
    address: SocketAddr,
    ca_pem: Option<String>,
    commands: mpsc::UnboundedSender<server::Command>,
    server: Option<JoinHandle<()>>,
}

impl KubeSim {
    /// Starts on an ephemeral port of 127.0.0.1: plain HTTP, every request allowed.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(KubeSimConfig::default()).await
    }

    /// Starts on a given port of 127.0.0.1 (0 = ephemeral): plain HTTP, every request allowed.
    pub async fn start_on_port(port: u16) -> std::io::Result<Self> {
        Self::start_with(KubeSimConfig {
            port: Some(port),
            ..KubeSimConfig::default()
        })
        .await
    }

    /// Starts with TLS and/or token authentication and RBAC authorization.
    pub async fn start_with(config: KubeSimConfig) -> std::io::Result<Self> {
        let address = SocketAddr::from(([127, 0, 0, 1], config.port.unwrap_or(0)));
        let listener = server::bind(address).await?;
        let address = listener.local_addr()?;
        let tls = if config.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let shared = Arc::new(Shared::new(address, config.rbac, Tokens::new()?));
        let router = http::router(Arc::clone(&shared));
        let (commands, receiver) = mpsc::unbounded_channel();
        let server = tokio::spawn(server::run(
            listener,
            router,
            tls.as_ref().map(|t| server::acceptor(&t.server_config)),
            receiver,
            shared.shutdown.subscribe(),
        ));
        Ok(Self {
            shared,
            address,
            ca_pem: tls.map(|t| t.ca_pem),
            commands,
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://...` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The PEM of the CA that signed the server certificate (`None` without TLS).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Makes the simulator unreachable (`true`): the listening socket closes, so new
    /// connections are refused, and every open connection (watches included) is dropped.
    /// `false` listens again on the same address. Returns once done; coming back fails if
    /// something else took the port meanwhile.
    pub async fn set_offline(&self, offline: bool) -> std::io::Result<()> {
        let gone = || std::io::Error::other("the simulator's server has stopped");
        if offline {
            let (done, finished) = oneshot::channel();
            self.commands
                .send(server::Command::Offline(done))
                .map_err(|_| gone())?;
            finished.await.map_err(|_| gone())
        } else {
            let (done, finished) = oneshot::channel();
            self.commands
                .send(server::Command::Online(done))
                .map_err(|_| gone())?;
            finished.await.map_err(|_| gone())?
        }
    }

    /// Stops the server: open watches end, then the listener closes (bounded wait).
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
