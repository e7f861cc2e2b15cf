//! A scripted Kubernetes API server for reconcile scenarios, in the style of kube-rs's
//! `controller-rs`: a `kube::Client` over a `tower_test` mock service, and a task that answers
//! each request with the next expectation of the script.
//!
//! Each expectation names the method and path it wants and checks the request body. A request
//! that is not the next expected one, or a check that panics, is recorded as a failure and
//! answered with a 500 `Status`, so the reconciler never hangs on a broken script;
//! [`MockApi::checkpoint`] then fails the test with every failure and every expectation that
//! never came.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::client::Body;
use kube::runtime::events::EventType;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sync_client_operator::api::{IdentityBroker, SyncClientCredential, SyncClientCredentialStatus};
use tokio::task::JoinHandle;

use crate::debug_text::assert_no_debug_text;

const JSON_PATCH: &str = "application/json-patch+json";

/// One request as the mock API server received it.
#[derive(Clone)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Captured {
    /// Whether this was a server-side dry run (`dryRun=All`).
    pub fn is_dry_run(&self) -> bool {
        self.query
            .as_deref()
            .is_some_and(|q| q.contains("dryRun=All"))
    }

    /// `METHOD /path`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The body parsed as `T`; panics (a script failure) when it is not.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not the expected JSON: {e}: {}",
                self.describe(),
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

// `Debug` prints the body length only: bodies of Secret writes hold credentials.
impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("content_type", &self.content_type)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The answer to one request.
pub struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl Reply {
    pub fn json(status: StatusCode, value: &impl Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_vec(value).expect("mock reply serializes"),
        }
    }

    /// A Kubernetes `Status` failure, as the API server sends for errors.
    pub fn failure(status: StatusCode, reason: &str, message: &str) -> Self {
        Self::json(
            status,
            &serde_json::json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": status.as_u16(),
            }),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::failure(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{what} not found"),
        )
    }

    fn into_response(self) -> Response<Body> {
        Response::builder()
            .status(self.status)
            .header("content-type", "application/json")
            .body(Body::from(self.body))
            .expect("mock response builds")
    }
}

type Handler = Box<dyn FnOnce(&Captured) -> Reply + Send>;

type Matcher = Box<dyn Fn(&Captured) -> bool + Send>;

struct Expectation {
    /// `METHOD /path`, for messages.
    what: String,
    matches: Matcher,
    handler: Handler,
    /// Skipped when the next request does not match it, and not missed when it never comes.
    optional: bool,
    /// A server-side dry run (`dryRun=All`) is expected; every other write must be real.
    dry_run: bool,
}

#[derive(Default)]
struct Script {
    expected: VecDeque<Expectation>,
    failures: Vec<String>,
    served: Vec<Captured>,
}

/// The scripted API server. Expectations can be added between two reconciles.
pub struct MockApi {
    namespace: String,
    script: Arc<Mutex<Script>>,
    server: JoinHandle<()>,
}

impl Drop for MockApi {
    /// Stops the server; then, unless the test already failed, checks that what the reconciler
    /// wrote for people (event notes, status messages) holds no Rust `Debug` text.
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            return;
        }
        for event in self.events() {
            let what = format!("the note of event {}", event.reason.unwrap_or_default());
            assert_no_debug_text(&what, event.note.as_deref().unwrap_or_default());
        }
        for status in self.status_patches() {
            for condition in &status.conditions {
                let what = format!("the message of condition {}", condition.type_);
                assert_no_debug_text(&what, &condition.message);
            }
            for (what, text) in [
                ("lastFailureMessage", &status.last_failure_message),
                ("lastVerifyResult", &status.last_verify_result),
            ] {
                assert_no_debug_text(what, text.as_deref().unwrap_or_default());
            }
        }
        for patch in self.condition_patches() {
            assert_no_debug_text("a condition patch", &patch.to_string());
        }
    }
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    script.lock().unwrap_or_else(PoisonError::into_inner)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "check panicked".to_owned())
}

impl MockApi {
    /// Starts the server task; the client's default namespace is `namespace`.
    pub fn start(namespace: &str) -> (Self, Client) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let script = Arc::new(Mutex::new(Script::default()));
        let server = tokio::spawn({
            let script = Arc::clone(&script);
            async move {
                while let Some((request, respond)) = handle.next_request().await {
                    let (parts, body) = request.into_parts();
                    let body = body.collect_bytes().await.map(|b| b.to_vec());
                    let captured = Captured {
                        method: parts.method,
                        path: parts.uri.path().to_owned(),
                        query: parts.uri.query().map(str::to_owned),
                        content_type: parts
                            .headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                        body: body.unwrap_or_default(),
                    };
                    let reply = Self::serve(&script, &captured);
                    respond.send_response(reply.into_response());
                }
            }
        });
        let client = Client::new(service, namespace.to_owned());
        (
            Self {
                namespace: namespace.to_owned(),
                script,
                server,
            },
            client,
        )
    }

    fn serve(script: &Mutex<Script>, captured: &Captured) -> Reply {
        let next = {
            let mut script = lock(script);
            script.served.push(captured.clone());
            loop {
                match script.expected.pop_front() {
                    Some(e) if e.optional && !(e.matches)(captured) => {}
                    other => break other,
                }
            }
        };
        let failure = |message: String| {
            lock(script).failures.push(message.clone());
            Reply::failure(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &message)
        };
        let Some(expectation) = next else {
            return failure(format!("unexpected request {}", captured.describe()));
        };
        if !(expectation.matches)(captured) {
            return failure(format!(
                "expected {}, got {}",
                expectation.what,
                captured.describe()
            ));
        }
        // A dry-run write looks like a real one here but changes nothing in a cluster: each
        // expectation says which one it is.
        let is_dry_run = captured.is_dry_run();
        if captured.method != Method::GET && is_dry_run != expectation.dry_run {
            return failure(format!(
                "{} {} a dry run: {:?}",
                captured.describe(),
                if is_dry_run { "is" } else { "is not" },
                captured.query
            ));
        }
        match catch_unwind(AssertUnwindSafe(|| (expectation.handler)(captured))) {
            Ok(reply) => reply,
            Err(payload) => failure(format!(
                "{}: {}",
                captured.describe(),
                panic_text(payload.as_ref())
            )),
        }
    }

    /// Expects `method path` next; `handler` checks the request and answers it.
    pub fn expect(
        &self,
        method: Method,
        path: impl Into<String>,
        handler: impl FnOnce(&Captured) -> Reply + Send + 'static,
    ) {
        let path = path.into();
        self.expect_matching(
            format!("{method} {path}"),
            move |request| request.method == method && request.path == path,
            handler,
        );
    }

    /// Expects a request `matches` accepts next; `what` describes it in failures.
    pub fn expect_matching(
        &self,
        what: String,
        matches: impl Fn(&Captured) -> bool + Send + 'static,
        handler: impl FnOnce(&Captured) -> Reply + Send + 'static,
    ) {
        lock(&self.script).expected.push_back(Expectation {
            what,
            matches: Box::new(matches),
            handler: Box::new(handler),
            optional: false,
            dry_run: false,
        });
    }

    /// Marks the expectation added last as optional: where the code may or may not make the
    /// call, and the scenario is about something else.
    fn make_last_optional(&self) {
        if let Some(last) = lock(&self.script).expected.back_mut() {
            last.optional = true;
        }
    }

    /// Fails the test when a request was unexpected, a check failed, or an expected request
    /// never came. Call it after each reconcile.
    #[track_caller]
    pub fn checkpoint(&self) {
        let mut script = lock(&self.script);
        let mut problems = std::mem::take(&mut script.failures);
        problems.extend(
            script
                .expected
                .drain(..)
                .filter(|e| !e.optional)
                .map(|e| format!("expected {} never came", e.what)),
        );
        let served: Vec<String> = script.served.iter().map(Captured::describe).collect();
        drop(script);
        assert!(
            problems.is_empty(),
            "mock API script failed:\n  {}\nrequests served:\n  {}",
            problems.join("\n  "),
            served.join("\n  ")
        );
    }

    /// Every request served so far, as `METHOD /path`.
    pub fn served(&self) -> Vec<String> {
        lock(&self.script)
            .served
            .iter()
            .map(Captured::describe)
            .collect()
    }

    // ---- paths ----

    pub fn secret_path(&self, name: &str) -> String {
        format!("{}/{name}", self.secrets_path())
    }

    fn secrets_path(&self) -> String {
        format!("/api/v1/namespaces/{}/secrets", self.namespace)
    }

    fn events_path(&self) -> String {
        format!(
            "/apis/events.k8s.io/v1/namespaces/{}/events",
            self.namespace
        )
    }

    fn credential_status_path(&self, name: &str) -> String {
        format!(
            "/apis/syncclient.io/v1alpha1/namespaces/{}/syncclientcredentials/{name}/status",
            self.namespace
        )
    }

    fn identity_broker_path(&self, name: &str) -> String {
        format!(
            "/apis/syncclient.io/v1alpha1/namespaces/{}/identitybrokers/{name}",
            self.namespace
        )
    }

    // ---- Secrets ----

    /// `GET` of a Secret the API server refuses with `reply`.
    pub fn expect_get_secret_failing(&self, name: &str, reply: Reply) {
        self.expect(Method::GET, self.secret_path(name), move |_| reply);
    }

    /// `GET` of a Secret, answered with `secret` or 404.
    pub fn expect_get_secret(&self, name: &str, secret: Option<Secret>) {
        let what = format!("Secret {name}");
        self.expect(Method::GET, self.secret_path(name), move |_| match secret {
            Some(secret) => Reply::json(StatusCode::OK, &secret),
            None => Reply::not_found(&what),
        });
    }

    /// `POST` of a new Secret; `check` inspects it; the answer echoes it with resourceVersion 1.
    pub fn expect_create_secret(&self, check: impl FnOnce(&Secret) + Send + 'static) {
        self.expect(Method::POST, self.secrets_path(), move |request| {
            let mut secret: Secret = request.json();
            check(&secret);
            secret.metadata.resource_version = Some("1".to_owned());
            secret.metadata.uid = Some("secret-uid-1".to_owned());
            Reply::json(StatusCode::CREATED, &secret)
        });
    }

    /// A dry-run `POST` of a new Secret (before the broker call); `check` inspects it.
    pub fn expect_dry_run_create_secret(&self, check: impl FnOnce(&Secret) + Send + 'static) {
        self.expect(Method::POST, self.secrets_path(), move |request| {
            let secret: Secret = request.json();
            check(&secret);
            Reply::json(StatusCode::CREATED, &secret)
        });
        self.mark_dry_run();
    }

    /// A dry-run `POST` of a new Secret answered with `reply` (e.g. 422, a quota's 403).
    pub fn expect_dry_run_create_secret_failing(&self, reply: Reply) {
        self.expect(Method::POST, self.secrets_path(), move |_| reply);
        self.mark_dry_run();
    }

    /// A dry-run `PUT` of a Secret whose shape changes; `check` inspects it.
    pub fn expect_dry_run_replace_secret(
        &self,
        name: &str,
        check: impl FnOnce(&Secret) + Send + 'static,
    ) {
        self.expect(Method::PUT, self.secret_path(name), move |request| {
            let secret: Secret = request.json();
            check(&secret);
            Reply::json(StatusCode::OK, &secret)
        });
        self.mark_dry_run();
    }

    fn mark_dry_run(&self) {
        if let Some(last) = lock(&self.script).expected.back_mut() {
            last.dry_run = true;
        }
    }

    /// `POST` of a new Secret answered with `reply` (e.g. 409 AlreadyExists).
    pub fn expect_create_secret_failing(&self, reply: Reply) {
        self.expect(Method::POST, self.secrets_path(), move |_| reply);
    }

    /// `PUT` of a Secret; `check` inspects it; the answer echoes it with the next resourceVersion.
    pub fn expect_replace_secret(&self, name: &str, check: impl FnOnce(&Secret) + Send + 'static) {
        self.expect(Method::PUT, self.secret_path(name), move |request| {
            let mut secret: Secret = request.json();
            check(&secret);
            let next = secret
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(1, |v| v + 1);
            secret.metadata.resource_version = Some(next.to_string());
            Reply::json(StatusCode::OK, &secret)
        });
    }

    /// `PUT` of a Secret answered with `reply` (e.g. 409 Conflict).
    pub fn expect_replace_secret_failing(&self, name: &str, reply: Reply) {
        self.expect(Method::PUT, self.secret_path(name), move |_| reply);
    }

    /// A merge `PATCH` of a Secret's metadata; `check` inspects the patch; `current` is
    /// answered.
    pub fn expect_secret_metadata_patch(
        &self,
        current: Secret,
        check: impl FnOnce(&serde_json::Value) + Send + 'static,
    ) {
        let name = current.metadata.name.clone().unwrap_or_default();
        self.expect(Method::PATCH, self.secret_path(&name), move |request| {
            assert_eq!(
                request.content_type.as_deref(),
                Some("application/merge-patch+json"),
                "Secret patch content type"
            );
            check(&request.json());
            Reply::json(StatusCode::OK, &current)
        });
    }

    /// Every Secret the reconciler created or replaced, as sent.
    pub fn written_secrets(&self) -> Vec<Secret> {
        lock(&self.script)
            .served
            .iter()
            .filter(|c| {
                ((c.method == Method::POST && c.path == self.secrets_path())
                    || (c.method == Method::PUT && c.path.starts_with(&self.secrets_path())))
                    && !c.is_dry_run()
            })
            .map(Captured::json)
            .collect()
    }

    // ---- the credential ----

    /// `GET` of the credential itself: the fresh read that precedes every issue.
    pub fn expect_get_credential(&self, cr: &SyncClientCredential) {
        let name = cr.metadata.name.clone().unwrap_or_default();
        let cr = cr.clone();
        let path = format!(
            "/apis/syncclient.io/v1alpha1/namespaces/{}/syncclientcredentials/{name}",
            self.namespace
        );
        self.expect(Method::GET, path, move |_| Reply::json(StatusCode::OK, &cr));
    }

    // ---- brokers ----

    /// `GET` of an `IdentityBroker` in the namespace.
    pub fn expect_get_identity_broker(&self, broker: &IdentityBroker) {
        let name = broker.metadata.name.clone().unwrap_or_default();
        let broker = broker.clone();
        self.expect(Method::GET, self.identity_broker_path(&name), move |_| {
            Reply::json(StatusCode::OK, &broker)
        });
    }

    /// `GET` of an `IdentityBroker` that does not exist.
    pub fn expect_get_missing_identity_broker(&self, name: &str) {
        let what = format!("IdentityBroker {name}");
        self.expect(Method::GET, self.identity_broker_path(name), move |_| {
            Reply::not_found(&what)
        });
    }

    // ---- events ----

    /// An event on the credential with this type and reason (created, or patched as a series).
    pub fn expect_event(&self, type_: EventType, reason: &'static str) {
        let expected_type = match type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let events = self.events_path();
        let check = move |request: &Captured| {
            let event: Event = request.json();
            assert_eq!(event.reason.as_deref(), Some(reason), "event reason");
            assert_eq!(event.type_.as_deref(), Some(expected_type), "event type");
            let regarding = event.regarding.clone().unwrap_or_default();
            assert_eq!(
                regarding.kind.as_deref(),
                Some("SyncClientCredential"),
                "event regards the credential"
            );
            Reply::json(StatusCode::CREATED, &event)
        };
        // The recorder POSTs a new event, or PATCHes its cached copy when the event repeats.
        self.expect_matching(
            format!("{expected_type} event {reason} (POST or PATCH {events})"),
            move |request| {
                (request.method == Method::POST && request.path == events)
                    || (request.method == Method::PATCH
                        && request.path.starts_with(&format!("{events}/")))
            },
            check,
        );
    }

    /// The events published so far, as sent.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.script)
            .served
            .iter()
            .filter(|c| c.path.starts_with(&self.events_path()))
            .map(Captured::json)
            .collect()
    }

    // ---- credential status ----

    /// A merge patch of `cr`'s status subresource holding only `status`; `check` inspects it.
    pub fn expect_status_patch(
        &self,
        cr: &SyncClientCredential,
        check: impl FnOnce(&SyncClientCredentialStatus) + Send + 'static,
    ) {
        self.expect_credential_status(cr, move |request, mut updated| {
            let status = status_of_patch(request);
            check(&status);
            updated.status = Some(status);
            updated
        });
    }

    /// A patch of `cr`'s status subresource; `answer` checks it and returns the credential the
    /// API server answers with.
    fn expect_credential_status(
        &self,
        cr: &SyncClientCredential,
        answer: impl FnOnce(&Captured, SyncClientCredential) -> SyncClientCredential + Send + 'static,
    ) {
        let name = cr.meta().name.clone().unwrap_or_default();
        let cr = cr.clone();
        self.expect(
            Method::PATCH,
            self.credential_status_path(&name),
            move |request| Reply::json(StatusCode::OK, &answer(request, cr)),
        );
    }

    /// A status patch that may or may not come; checked with `check` when it does.
    pub fn allow_status_patch(
        &self,
        cr: &SyncClientCredential,
        check: impl FnOnce(&SyncClientCredentialStatus) + Send + 'static,
    ) {
        self.expect_status_patch(cr, check);
        self.make_last_optional();
    }

    /// A status patch the API server refuses with `reply`.
    pub fn expect_status_patch_failing(&self, cr: &SyncClientCredential, reply: Reply) {
        let name = cr.meta().name.clone().unwrap_or_default();
        self.expect(
            Method::PATCH,
            self.credential_status_path(&name),
            move |request| {
                status_of_patch(request);
                reply
            },
        );
    }

    /// Every status patch served, JSON patches (of one condition) or not (the whole status).
    fn status_requests(&self, json_patch: bool) -> Vec<Captured> {
        lock(&self.script)
            .served
            .iter()
            .filter(|c| c.method == Method::PATCH && c.path.ends_with("/status"))
            .filter(|c| (c.content_type.as_deref() == Some(JSON_PATCH)) == json_patch)
            .cloned()
            .collect()
    }

    /// Every status the reconciler patched (merge patches of the whole status), in order.
    pub fn status_patches(&self) -> Vec<SyncClientCredentialStatus> {
        self.status_requests(false)
            .iter()
            .map(status_of_patch)
            .collect()
    }

    /// A JSON patch of one condition of `cr`'s status (what a reconcile error leaves unknown);
    /// `check` inspects its operations.
    pub fn expect_condition_patch(
        &self,
        cr: &SyncClientCredential,
        check: impl FnOnce(&serde_json::Value) + Send + 'static,
    ) {
        self.expect_credential_status(cr, move |request, unchanged| {
            assert_eq!(request.content_type.as_deref(), Some(JSON_PATCH));
            check(&request.json::<serde_json::Value>());
            unchanged
        });
    }

    /// The JSON patches of single conditions, in order.
    pub fn condition_patches(&self) -> Vec<serde_json::Value> {
        self.status_requests(true)
            .iter()
            .map(Captured::json)
            .collect()
    }

    /// The last status patched; panics when none was.
    #[track_caller]
    pub fn last_status(&self) -> SyncClientCredentialStatus {
        self.status_patches()
            .pop()
            .expect("the reconciler patched a status")
    }
}

/// The status of a `{"status": {...}}` merge patch, checking its shape.
fn status_of_patch(request: &Captured) -> SyncClientCredentialStatus {
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/merge-patch+json"),
        "status patch content type"
    );
    let body: serde_json::Value = request.json();
    let object = body.as_object().expect("status patch is an object");
    let keys: Vec<_> = object.keys().map(String::as_str).collect();
    assert!(
        keys == ["status"] || keys == ["metadata", "status"],
        "status patch holds only the status (and a resourceVersion precondition): {keys:?}"
    );
    if let Some(metadata) = object.get("metadata") {
        let fields: Vec<_> = metadata.as_object().expect("metadata").keys().collect();
        assert_eq!(
            fields,
            ["resourceVersion"],
            "only a precondition in metadata"
        );
    }
    serde_json::from_value(object["status"].clone()).expect("status patch parses")
}
