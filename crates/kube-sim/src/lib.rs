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

mod accounting;
mod apply;
mod auth;
mod cel;
mod discovery;
mod error;
mod events;
mod faults;
mod gc;
mod http;
mod objectmeta;
mod patch;
mod protobuf;
mod resources;
mod restore;
mod secret;
mod selectors;
mod server;
mod store;
mod table;
mod tls;
mod validation;
mod watch;
mod yaml;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch as signal};
use tokio::task::JoinHandle;

pub use accounting::{RecordedRequest, RequestCounts};
pub use error::{FieldCause, SimError};
pub use faults::{DryRunMatch, Fault};
pub use patch::PatchKind;
pub use validation::CelRuleRuns;

use auth::Tokens;
use faults::Faults;
use store::{DeleteOptions, Store, Target, WriteOptions};
use watch::Disconnect;

/// State shared by the HTTP handlers, watch tasks and the test-facing handle.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// The latest resource version; watchers wake on every change.
    changes: signal::Sender<u64>,
    /// Bumped to end every open watch.
    disconnects: signal::Sender<(u64, Disconnect)>,
    shutdown: signal::Sender<bool>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<RecordedRequest>>,
    bookmark_interval: Mutex<Duration>,
    address: String,
    /// Require a valid token and authorize every request with RBAC.
    rbac: bool,
    tokens: Mutex<Tokens>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not hide this one's results.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn new(address: SocketAddr, rbac: bool, tokens: Tokens) -> Self {
        Self {
            store: Mutex::new(Store::new()),
            changes: signal::Sender::new(0),
            disconnects: signal::Sender::new((0, Disconnect::Close)),
            shutdown: signal::Sender::new(false),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            bookmark_interval: Mutex::new(Duration::from_secs(1)),
            address: address.to_string(),
            rbac,
            tokens: Mutex::new(tokens),
        }
    }

    pub(crate) fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    pub(crate) fn lock_store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Runs a store operation and wakes watchers if it changed anything.
    pub(crate) fn write<T>(
        &self,
        op: impl FnOnce(&mut Store) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let (result, before, after) = {
            let mut store = self.lock_store();
            let before = store.current_rv();
            let result = op(&mut store);
            (result, before, store.current_rv())
        };
        if after != before {
            self.changes.send_replace(after);
        }
        result
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn bookmark_interval(&self) -> Duration {
        *lock(&self.bookmark_interval)
    }

    pub(crate) fn record_request(&self, request: RecordedRequest) -> usize {
        let mut requests = lock(&self.requests);
        requests.push(request);
        requests.len() - 1
    }

    pub(crate) fn set_request_status(&self, index: usize, status: u16) {
        if let Some(request) = lock(&self.requests).get_mut(index) {
            request.status = status;
        }
    }

    fn disconnect_watches(&self, how: Disconnect) {
        self.disconnects.send_modify(|(epoch, mode)| {
            *epoch += 1;
            *mode = how;
        });
    }
}

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

fn object_name(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

fn unknown_resource(api_version: &str, what: &str) -> SimError {
    SimError::new(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({what} in {api_version})"),
    )
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

    /// The token of the user `admin` (groups `system:masters`, `system:authenticated`),
    /// allowed everything.
    pub fn admin_token(&self) -> String {
        self.shared.tokens().admin().to_owned()
    }

    /// A new bearer token for the ServiceAccount `namespace/name` (user
    /// `system:serviceaccount:<namespace>:<name>`). It is accepted only while that
    /// ServiceAccount exists; if it exists now, only while it is the same object (same uid).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let uid = self
            .get("v1", "serviceaccounts", Some(namespace), name)
            .and_then(|sa| {
                sa.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        self.shared.tokens().issue(namespace, name, uid)
    }

    /// Writes what a kubelet mounts at `/var/run/secrets/kubernetes.io/serviceaccount` for a
    /// pod of this ServiceAccount into `dir` (created if needed): `token` (a new
    /// [`KubeSim::service_account_token`]), `namespace` and, with TLS, `ca.crt`.
    pub fn service_account_files(
        &self,
        namespace: &str,
        name: &str,
        dir: &Path,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("token"),
            self.service_account_token(namespace, name),
        )?;
        std::fs::write(dir.join("namespace"), namespace)?;
        if let Some(ca) = &self.ca_pem {
            std::fs::write(dir.join("ca.crt"), ca)?;
        }
        Ok(())
    }

    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` as a pod would see them, for
    /// in-cluster clients (`kube::Config::incluster_env`).
    pub fn in_cluster_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KUBERNETES_SERVICE_HOST", self.address.ip().to_string()),
            ("KUBERNETES_SERVICE_PORT", self.address.port().to_string()),
        ]
    }

    /// A kubeconfig with cluster, user and context all named `sim`, default namespace
    /// `default`. The user's token is `sim-token` (any token is accepted) unless TLS or RBAC
    /// is on: then it is the [`KubeSim::admin_token`], and with TLS the cluster carries
    /// `certificate-authority-data`.
    pub fn kubeconfig_yaml(&self) -> String {
        let token = if self.ca_pem.is_some() || self.shared.rbac {
            self.admin_token()
        } else {
            "sim-token".to_owned()
        };
        self.kubeconfig_yaml_with_token(&token)
    }

    /// [`KubeSim::kubeconfig_yaml`] with the user's token replaced by `token`: one client's
    /// identity, e.g. one of two operator replicas. With RBAC off any token is accepted and
    /// still tells the client apart ([`Fault::for_token`], [`KubeSim::counts_for_token`],
    /// [`RecordedRequest::client`]); with RBAC on it must be a token the simulator issued.
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        let ca = self.ca_pem.as_ref().map_or_else(String::new, |pem| {
            format!(
                "    certificate-authority-data: {}\n",
                base64::engine::general_purpose::STANDARD.encode(pem)
            )
        });
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\n{ca}users:\n- name: sim\n  user:\n    token: {token}\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\n    namespace: default\ncurrent-context: sim\npreferences: {{}}\n",
            self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Writes [`KubeSim::kubeconfig_yaml_with_token`].
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml_with_token(token))
    }

    /// The fingerprint [`RecordedRequest::client`] records for requests with this bearer token:
    /// `sha256:` and the first 16 hex digits of the token's SHA-256.
    pub fn token_fingerprint(token: &str) -> String {
        auth::token_fingerprint(token)
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

    fn resource(
        &self,
        api_version: &str,
        plural: &str,
    ) -> Result<Arc<resources::ResourceType>, SimError> {
        let (group, version) = split_api_version(api_version);
        self.shared
            .lock_store()
            .registry
            .find(group, version, plural)
            .ok_or_else(|| unknown_resource(api_version, plural))
    }

    fn resource_of(&self, obj: &Value) -> Result<(Arc<resources::ResourceType>, String), SimError> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let (group, version) = split_api_version(api_version);
        let rt = self
            .shared
            .lock_store()
            .registry
            .find_kind(group, version, kind)
            .ok_or_else(|| unknown_resource(api_version, kind))?;
        Ok((rt, version.to_owned()))
    }

    fn namespace_of(rt: &resources::ResourceType, obj: &Value) -> Option<String> {
        rt.namespaced.then(|| {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .unwrap_or("default")
                .to_owned()
        })
    }

    /// One object as a client of `api_version` would read it.
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let rt = self.resource(api_version, plural).ok()?;
        let (_, version) = split_api_version(api_version);
        self.shared
            .lock_store()
            .get(&rt, version, namespace, name)
            .ok()
    }

    /// All objects of a type, in one namespace or (with `None`) all.
    pub fn list(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Ok(rt) = self.resource(api_version, plural) else {
            return Vec::new();
        };
        let (_, version) = split_api_version(api_version);
        let store = self.shared.lock_store();
        store
            .snapshot(
                &rt,
                namespace,
                &selectors::LabelSelector::default(),
                &selectors::FieldSelector::default(),
            )
            .iter()
            .map(|obj| store::output(&rt, version, obj))
            .collect()
    }

    /// Creates an object (`apiVersion`, `kind` and `metadata.namespace`, default `default`,
    /// from the object) as a POST would, including validation and defaulting.
    pub fn create(&self, obj: Value) -> Result<Value, SimError> {
        let (rt, version) = self.resource_of(&obj)?;
        let ns = Self::namespace_of(&rt, &obj);
        self.shared
            .write(|store| {
                store.create(&rt, &version, ns.as_deref(), obj, &WriteOptions::default())
            })
            .map(|o| o.object)
    }

    /// Replaces an object as a PUT would (a stale `metadata.resourceVersion` conflicts; an
    /// absent one replaces unconditionally); when the type has a status subresource and the
    /// object carries a status, the status is written too, so the stored object matches.
    pub fn replace(&self, obj: Value) -> Result<Value, SimError> {
        let (rt, version) = self.resource_of(&obj)?;
        let ns = Self::namespace_of(&rt, &obj);
        let name = object_name(&obj);
        let status = obj.get("status").cloned();
        let opts = WriteOptions::default();
        let mut target = Target {
            rt: &rt,
            version: &version,
            namespace: ns.as_deref(),
            name: &name,
            subresource: None,
        };
        self.shared.write(|store| {
            let mut written = store.update(&target, obj, &opts)?.object;
            if rt.status_subresource
                && let Some(status) = status
            {
                let mut with_status = written.clone();
                with_status["status"] = status;
                target.subresource = Some("status");
                written = store.update(&target, with_status, &opts)?.object;
            }
            Ok(written)
        })
    }

    /// Replaces only the status (PUT `/status`).
    pub fn replace_status(&self, obj: Value) -> Result<Value, SimError> {
        let (rt, version) = self.resource_of(&obj)?;
        let ns = Self::namespace_of(&rt, &obj);
        let name = object_name(&obj);
        let target = Target {
            rt: &rt,
            version: &version,
            namespace: ns.as_deref(),
            name: &name,
            subresource: Some("status"),
        };
        self.shared
            .write(|store| store.update(&target, obj, &WriteOptions::default()))
            .map(|o| o.object)
    }

    /// Patches an object (or, with `subresource = Some("status")`, its status). Apply patches
    /// are made by the field manager `kube-sim-test` with `force=true`.
    #[allow(clippy::too_many_arguments)] // a stable public signature the operator's tests use
    pub fn patch(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        subresource: Option<&str>,
    ) -> Result<Value, SimError> {
        let rt = self.resource(api_version, plural)?;
        let (_, version) = split_api_version(api_version);
        let opts = WriteOptions {
            field_manager: Some("kube-sim-test".to_owned()),
            force: true,
            ..WriteOptions::default()
        };
        let target = Target {
            rt: &rt,
            version,
            namespace,
            name,
            subresource,
        };
        self.shared
            .write(|store| store.patch(&target, kind, patch, &opts))
            .map(|o| o.object)
    }

    /// Create-or-replace every object of a (multi-document) YAML manifest, CRDs included;
    /// statuses given in the manifest are written too.
    pub fn apply_yaml(&self, yaml: &str) -> Result<(), SimError> {
        for obj in yaml::parse_manifests(yaml)? {
            let (rt, version) = self.resource_of(&obj)?;
            let ns = Self::namespace_of(&rt, &obj);
            let name = object_name(&obj);
            if self
                .shared
                .lock_store()
                .get(&rt, &version, ns.as_deref(), &name)
                .is_ok()
            {
                let mut unconditional = obj;
                if let Some(meta) = unconditional
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                {
                    meta.remove("resourceVersion");
                }
                self.replace(unconditional)?;
            } else {
                let status = obj.get("status").cloned();
                let created = self.create(obj)?;
                if let Some(status) = status.filter(|_| rt.status_subresource) {
                    let mut with_status = created;
                    with_status["status"] = status;
                    self.replace_status(with_status)?;
                }
            }
        }
        Ok(())
    }

    /// Loads objects as a restored etcd holds them, e.g. a cluster's state captured by an older
    /// release: `metadata.uid`, `creationTimestamp`, `generation`, labels, annotations, owner
    /// references, finalizers, `managedFields` and `status` are kept as given (a missing uid,
    /// creation time or generation is filled in as a create would); each object gets a new
    /// resource version. Every object is validated as a create validates it (object metadata,
    /// Secrets, custom resources against their CRD's schema and rules, status included), but
    /// stored as given: no defaulting or pruning. Custom resources need their CRD, stored
    /// before or in the same call; namespaced objects their namespace, likewise (CRDs, then
    /// namespaces, are stored first). An object that already exists (same name, or same uid)
    /// fails the call, and nothing is stored unless every object passes. Owner references
    /// between restored objects hold (no garbage collection of a dependent whose owner is in
    /// the same call); objects whose owners exist nowhere are collected afterwards, as usual
    /// (see [`KubeSim::set_orphan_collection`]). Watches see each object as `ADDED`.
    pub fn restore(&self, objects: Vec<Value>) -> Result<(), SimError> {
        self.shared.write(|store| store.restore(objects))
    }

    /// [`KubeSim::restore`] of every object of a (multi-document) YAML file.
    pub fn restore_yaml(&self, yaml: &str) -> Result<(), SimError> {
        self.restore(yaml::parse_manifests(yaml)?)
    }

    /// Deletes as a DELETE would: finalizers are honoured, dependents are garbage collected.
    pub fn delete(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), SimError> {
        let rt = self.resource(api_version, plural)?;
        let (_, version) = split_api_version(api_version);
        self.shared
            .write(|store| store.delete(&rt, version, namespace, name, &DeleteOptions::default()))
            .map(|_| ())
    }

    /// Waits until the object exists and satisfies `predicate`, at most `timeout`.
    pub async fn wait_for(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        timeout: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> Result<Value, SimError> {
        let mut last = None;
        let met = self
            .wait_until(timeout, |sim| {
                last = sim.get(api_version, plural, namespace, name);
                last.as_ref().is_some_and(&predicate)
            })
            .await;
        match (met, last) {
            (true, Some(obj)) => Ok(obj),
            (_, last) => Err(SimError::new(
                504,
                "Timeout",
                format!(
                    "{plural} {}/{name} did not reach the expected state within {timeout:?}; last seen: {}",
                    namespace.unwrap_or(""),
                    last.map_or_else(|| "absent".to_owned(), |o| o.to_string())
                ),
            )),
        }
    }

    /// Re-checks `condition` after every change until it holds; `false` after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> bool {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if condition(self) {
                return true;
            }
            let woke = tokio::time::timeout_at(deadline, changes.changed()).await;
            if woke.is_err() {
                return condition(self);
            }
        }
    }

    /// The current (latest) resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock_store().current_rv()
    }

    /// Every `x-kubernetes-validations` rule the simulator met since it started, per resource,
    /// field and rule, with how often it held, refused, failed to evaluate, or was skipped as
    /// outside the simulator's CEL subset (`unsupported`, also logged). A test can assert that
    /// each rule of its CRDs was really evaluated, both ways.
    pub fn cel_rule_runs(&self) -> Vec<CelRuleRuns> {
        self.shared
            .lock_store()
            .cel_rules
            .values()
            .cloned()
            .collect()
    }

    /// Counts by verb and resource of the requests since the last [`KubeSim::clear_requests`].
    pub fn counts(&self) -> RequestCounts {
        RequestCounts::from_requests(&lock(&self.shared.requests))
    }

    /// [`KubeSim::counts`] of the requests that carried this bearer token only.
    pub fn counts_for_token(&self, token: &str) -> RequestCounts {
        let client = auth::token_fingerprint(token);
        let requests: Vec<RecordedRequest> = lock(&self.shared.requests)
            .iter()
            .filter(|r| r.client.as_deref() == Some(client.as_str()))
            .cloned()
            .collect();
        RequestCounts::from_requests(&requests)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the request log (and with it the counts).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.faults().add(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Aborts every open watch connection mid-stream, like a network failure.
    pub fn drop_watches(&self) {
        self.shared.disconnect_watches(Disconnect::Abort);
    }

    /// Ends every open watch cleanly, like a server-side watch timeout.
    pub fn close_watches(&self) {
        self.shared.disconnect_watches(Disconnect::Close);
    }

    /// Forgets watch history: a watch from any resource version older than the current one
    /// then gets 410 Gone.
    pub fn expire_watch_history(&self) {
        self.shared.lock_store().expire_history();
        // Running watches re-check history on a change signal.
        self.shared.changes.send_modify(|_| {});
    }

    /// How often watches with `allowWatchBookmarks=true` get a bookmark (default 1 s;
    /// applies to watches started afterwards).
    pub fn set_bookmark_interval(&self, interval: Duration) {
        *lock(&self.shared.bookmark_interval) = interval.max(Duration::from_millis(10));
    }

    /// Whether objects whose owners all do not exist are deleted when written (default true).
    pub fn set_orphan_collection(&self, enabled: bool) {
        self.shared.lock_store().collect_orphans = enabled;
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
