//! A scripted mock of vCenter and the identity broker on 127.0.0.1, plus helpers shared by the
//! integration tests.
//!
//! By default the mock behaves like a small, consistent vCenter: it checks Basic credentials,
//! issues session ids and broker tokens, accepts only the ones it issued, and rotates sync-client
//! credentials (revoking the previous access token). Tests queue scripted replies per route to
//! override single answers, and inspect every recorded request.
//!
//! Every credential the mock or the tests use contains `SECRET`, and nothing else does, so a
//! leak check is a substring search.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};
use sync_client_broker::{
    BrokerAuth, BrokerClient, BrokerConfig, BrokerError, RequestOutcome, SecretString, TokenClient,
};
use tokio::net::TcpListener;

pub const USERNAME: &str = "operator@vsphere.local";
pub const PASSWORD: &str = "pa55-w0rd-SECRET-1";
pub const STATIC_BEARER: &str = "static-bearer-SECRET-1";
pub const TENANT: &str = "CUSTOMER";
pub const DIRECTORY: &str = "1b2c3d4e-0f1a-4b2c-8d3e-4f5a6b7c8d9e";
pub const SYNC_MEDIA_TYPE: &str =
    "application/vnd.vmware.vidm.usergroup.broker.directory.syncclientconfiguration+json";
/// Substring of every credential in the tests.
pub const SECRET_MARKER: &str = "SECRET";

/// Default request timeout in tests: long enough for a loaded CI machine, short enough to end.
pub const TEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which API a recorded request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Session,
    SessionDelete,
    BrokerToken,
    Generate,
    Read,
    Probe,
    Unknown,
}

impl Route {
    fn of(method: &str, path: &str) -> Self {
        match (method, path) {
            ("POST", "/api/session") => Self::Session,
            ("DELETE", "/api/session") => Self::SessionDelete,
            ("GET", path) if path.starts_with("/api/vcenter/identity/broker/tenants/") => {
                Self::BrokerToken
            }
            ("POST", path) if path.ends_with("/sync-client") => Self::Generate,
            ("GET", path) if path.ends_with("/sync-client") => Self::Read,
            ("GET", path) if path.ends_with("/scim/v2/Users") => Self::Probe,
            _ => Self::Unknown,
        }
    }
}

/// One request as the mock received it (path still percent-encoded).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub route: Route,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("ASCII header").to_owned())
    }

    pub fn json_body(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON request body")
    }

    fn bearer(&self) -> Option<String> {
        self.header("authorization")?
            .strip_prefix("Bearer ")
            .map(str::to_owned)
    }
}

/// A scripted answer, used once, in the order queued for its route.
#[derive(Clone, Debug)]
pub enum Reply {
    Respond {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
        delay: Duration,
    },
    /// Behave normally, but only after waiting.
    DefaultAfter(Duration),
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status,
            content_type: None,
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: &Value) -> Self {
        Self::raw(status, "application/json", body.to_string().into_bytes())
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::Respond {
            status,
            content_type: Some(content_type.to_owned()),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// A vAPI standard error body.
    pub fn vapi(status: u16, error_type: &str, message: &str) -> Self {
        Self::json(status, &vapi_error(error_type, message))
    }

    pub fn after(self, wait: Duration) -> Self {
        match self {
            Self::Respond {
                status,
                content_type,
                body,
                ..
            } => Self::Respond {
                status,
                content_type,
                body,
                delay: wait,
            },
            Self::DefaultAfter(_) => Self::DefaultAfter(wait),
        }
    }
}

pub fn vapi_error(error_type: &str, message: &str) -> Value {
    let mut body = json!({
        "error_type": error_type,
        "messages": [
            {"id": "com.vmware.vapi.test", "default_message": message, "args": [], "params": null, "localized": null},
            {"id": "com.vmware.vapi.cause", "default_message": "Underlying cause.", "args": []}
        ],
        "data": null
    });
    if error_type == "UNAUTHENTICATED" {
        body["challenge"] = json!("Basic realm=\"VAPI endpoint\",SIGN realm=\"challenge-realm\"");
    }
    body
}

/// The mock's state: recorded requests, scripts, and the simulated vCenter and broker.
struct Sim {
    requests: Vec<Recorded>,
    scripts: HashMap<Route, VecDeque<Reply>>,
    sessions: HashSet<String>,
    sessions_issued: u32,
    broker_tokens: HashSet<String>,
    broker_tokens_issued: u32,
    /// `None`: the `expires_in` field is left out.
    token_expires_in: Option<Value>,
    token_type: String,
    sync_token: Option<String>,
    credentials_issued: u32,
}

impl Sim {
    fn new() -> Self {
        Self {
            requests: Vec::new(),
            scripts: HashMap::new(),
            sessions: HashSet::new(),
            sessions_issued: 0,
            broker_tokens: HashSet::new(),
            broker_tokens_issued: 0,
            token_expires_in: Some(json!(3600)),
            token_type: "Bearer".to_owned(),
            sync_token: None,
            credentials_issued: 0,
        }
    }

    fn answer(&mut self, request: &Recorded) -> (u16, Option<String>, Vec<u8>) {
        match request.route {
            Route::Session => {
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{USERNAME}:{PASSWORD}"))
                );
                if request.header("authorization") != Some(expected) {
                    return json_answer(
                        401,
                        &vapi_error("UNAUTHENTICATED", "Authentication required."),
                    );
                }
                self.sessions_issued += 1;
                let session = format!("session-SECRET-{}", self.sessions_issued);
                self.sessions.insert(session.clone());
                json_answer(201, &json!(session))
            }
            Route::SessionDelete => match request.header("vmware-api-session-id") {
                Some(session) if self.sessions.remove(&session) => (204, None, Vec::new()),
                _ => json_answer(
                    401,
                    &vapi_error("UNAUTHENTICATED", "Authentication required."),
                ),
            },
            Route::BrokerToken => {
                let known = request
                    .header("vmware-api-session-id")
                    .is_some_and(|session| self.sessions.contains(&session));
                if !known {
                    return json_answer(
                        401,
                        &vapi_error("UNAUTHENTICATED", "Authentication required."),
                    );
                }
                self.broker_tokens_issued += 1;
                let token = format!("broker-jwt-SECRET-{}", self.broker_tokens_issued);
                self.broker_tokens.insert(token.clone());
                let mut body = json!({"token_type": self.token_type, "access_token": token});
                if let Some(expires_in) = &self.token_expires_in {
                    body["expires_in"] = expires_in.clone();
                }
                json_answer(200, &body)
            }
            Route::Generate | Route::Read => {
                if !request
                    .bearer()
                    .is_some_and(|token| self.broker_tokens.contains(&token))
                {
                    return (401, None, Vec::new());
                }
                if request.route == Route::Read {
                    return media_answer(&json!({
                        "_links": {"self": {"href": "https://broker.test/self"}},
                        "generate_token": true,
                        "client_id": "sync-client-1",
                        "token_ttl": 1800,
                        "access_token_expire_in": 21599
                    }));
                }
                let generate_token = request.json_body()["generate_token"]
                    .as_bool()
                    .unwrap_or(true);
                self.credentials_issued += 1;
                let n = self.credentials_issued;
                if generate_token {
                    let token = format!("sync-token-SECRET-{n}");
                    self.sync_token = Some(token.clone());
                    media_answer(&json!({
                        "_links": {"self": {"href": "https://broker.test/self"}},
                        "generate_token": true,
                        "client_id": "sync-client-1",
                        "client_secret": null,
                        "access_token": token,
                        "access_token_expire_in": 21599,
                        "token_ttl": request.json_body().get("token_ttl").cloned().unwrap_or(json!(262_800))
                    }))
                } else {
                    self.sync_token = None;
                    media_answer(&json!({
                        "_links": {"self": {"href": "https://broker.test/self"}},
                        "generate_token": false,
                        "client_id": "sync-client-1",
                        "client_secret": format!("client-secret-SECRET-{n}")
                    }))
                }
            }
            Route::Probe => {
                if request.bearer().is_some() && request.bearer() == self.sync_token {
                    json_answer(
                        200,
                        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1, "Resources": []}),
                    )
                } else {
                    (401, None, Vec::new())
                }
            }
            Route::Unknown => (404, None, Vec::new()),
        }
    }
}

fn json_answer(status: u16, body: &Value) -> (u16, Option<String>, Vec<u8>) {
    (
        status,
        Some("application/json".to_owned()),
        body.to_string().into_bytes(),
    )
}

fn media_answer(body: &Value) -> (u16, Option<String>, Vec<u8>) {
    (
        200,
        Some(SYNC_MEDIA_TYPE.to_owned()),
        body.to_string().into_bytes(),
    )
}

/// A running mock server.
#[derive(Clone)]
pub struct MockBroker {
    address: SocketAddr,
    scheme: &'static str,
    sim: Arc<Mutex<Sim>>,
}

impl MockBroker {
    /// Serves plain HTTP on 127.0.0.1 (ephemeral port) until the test's runtime ends.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let broker = Self {
            address: listener.local_addr().expect("local address"),
            scheme: "http",
            sim: Arc::new(Mutex::new(Sim::new())),
        };
        let router = broker.router();
        tokio::spawn(async move {
            axum::serve(listener, router).await.expect("mock server");
        });
        broker
    }

    /// A mock whose router the caller serves itself (over TLS).
    pub fn unstarted(address: SocketAddr) -> Self {
        Self {
            address,
            scheme: "https",
            sim: Arc::new(Mutex::new(Sim::new())),
        }
    }

    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.sim.clone())
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    pub fn push(&self, route: Route, reply: Reply) {
        self.sim()
            .scripts
            .entry(route)
            .or_default()
            .push_back(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.sim().requests.clone()
    }

    pub fn requests_to(&self, route: Route) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.route == route)
            .collect()
    }

    pub fn count(&self, route: Route) -> usize {
        self.requests_to(route).len()
    }

    /// vCenter forgets every session (idle expiry).
    pub fn expire_sessions(&self) {
        self.sim().sessions.clear();
    }

    /// The broker no longer accepts any broker token issued so far.
    pub fn revoke_broker_tokens(&self) {
        self.sim().broker_tokens.clear();
    }

    /// `None` leaves `expires_in` out of TokenInfo.
    pub fn set_token_expires_in(&self, expires_in: Option<Value>) {
        self.sim().token_expires_in = expires_in;
    }

    pub fn set_token_type(&self, token_type: &str) {
        token_type.clone_into(&mut self.sim().token_type);
    }

    /// The sync-client access token the broker currently accepts.
    pub fn current_sync_token(&self) -> Option<String> {
        self.sim().sync_token.clone()
    }

    fn sim(&self) -> std::sync::MutexGuard<'_, Sim> {
        self.sim.lock().expect("mock state")
    }
}

async fn handle(State(sim): State<Arc<Mutex<Sim>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .expect("request body");
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let recorded = Recorded {
        route: Route::of(&method, &path),
        method,
        path,
        query: parts.uri.query().map(str::to_owned),
        version: parts.version,
        headers: parts.headers,
        body: body.to_vec(),
    };
    let script = {
        let mut sim = sim.lock().expect("mock state");
        sim.requests.push(recorded.clone());
        sim.scripts
            .get_mut(&recorded.route)
            .and_then(VecDeque::pop_front)
    };
    let (status, content_type, body) = match script {
        Some(Reply::Respond {
            status,
            content_type,
            body,
            delay,
        }) => {
            tokio::time::sleep(delay).await;
            (status, content_type, body)
        }
        Some(Reply::DefaultAfter(delay)) => {
            tokio::time::sleep(delay).await;
            sim.lock().expect("mock state").answer(&recorded)
        }
        None => sim.lock().expect("mock state").answer(&recorded),
    };
    let mut response = Response::builder().status(StatusCode::from_u16(status).expect("status"));
    if let Some(content_type) = content_type {
        response = response.header("content-type", content_type);
    }
    response.body(Body::from(body)).expect("response")
}

/// A vCenter-login configuration for `broker`.
pub fn vcenter_config(broker: &MockBroker, token_client: TokenClient) -> BrokerConfig {
    let mut config = BrokerConfig::new(
        broker.base_url(),
        TENANT,
        BrokerAuth::VCenter {
            username: USERNAME.to_owned(),
            password: SecretString::from(PASSWORD),
            token_client,
        },
    );
    config.request_timeout = TEST_REQUEST_TIMEOUT;
    config.allow_insecure_http = broker.scheme == "http";
    config
}

/// A static-bearer configuration for `broker`.
pub fn bearer_config(broker: &MockBroker) -> BrokerConfig {
    let mut config = BrokerConfig::new(
        broker.base_url(),
        TENANT,
        BrokerAuth::BearerToken(SecretString::from(STATIC_BEARER)),
    );
    config.request_timeout = TEST_REQUEST_TIMEOUT;
    config.allow_insecure_http = broker.scheme == "http";
    config
}

pub fn client(config: BrokerConfig) -> BrokerClient {
    let text = format!("{config:?} {config}");
    assert_no_secret(&text);
    let client = BrokerClient::new(config).expect("valid config");
    assert_no_secret(&format!("{client:?} {client}"));
    client
}

pub fn operator_client(broker: &MockBroker) -> BrokerClient {
    client(vcenter_config(broker, TokenClient::OperatorClient))
}

/// Fails when `text` holds any credential of the tests.
pub fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET_MARKER), "credential leaked: {text}");
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
}

/// Checks what every error of the suite must satisfy and returns it: no credential in `Debug`
/// or `Display`, one line, at most 300 characters.
pub fn checked(error: BrokerError) -> BrokerError {
    let display = error.to_string();
    assert_no_secret(&display);
    assert_no_secret(&format!("{error:?}"));
    assert!(
        !display.contains('\n') && !display.contains('\r'),
        "multi-line: {display:?}"
    );
    assert!(
        display.chars().count() <= 300,
        "too long ({}): {display}",
        display.chars().count()
    );
    assert!(!display.is_empty());
    error
}

/// The error of `result`, checked; fails the test on success.
pub fn expect_error<T: std::fmt::Debug>(result: Result<T, BrokerError>) -> BrokerError {
    match result {
        Ok(value) => {
            assert_no_secret(&format!("{value:?}"));
            panic!("expected an error, got {value:?}");
        }
        Err(error) => checked(error),
    }
}

/// Records what the client's observer hears.
#[derive(Clone, Default)]
pub struct ObservedOutcomes(Arc<Mutex<Vec<RequestOutcome>>>);

impl ObservedOutcomes {
    pub fn attach(&self, config: &mut BrokerConfig) {
        let outcomes = self.0.clone();
        config.observer = Some(Arc::new(move |outcome: &RequestOutcome| {
            outcomes.lock().expect("outcomes").push(outcome.clone());
        }));
    }

    /// (endpoint label, status, result) of every request so far.
    pub fn summary(&self) -> Vec<(&'static str, Option<u16>, &'static str)> {
        self.0
            .lock()
            .expect("outcomes")
            .iter()
            .map(|outcome| (outcome.endpoint.as_str(), outcome.status, outcome.result))
            .collect()
    }
}

/// A guard that always allows the generate, with a deadline far beyond every test's timeouts.
pub fn unguarded() -> sync_client_broker::RevokeGuard<'static> {
    sync_client_broker::RevokeGuard::new(
        std::time::Instant::now() + Duration::from_secs(300),
        &|| Ok(()),
    )
}
