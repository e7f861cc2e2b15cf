//! A scripted mock of the Microsoft Entra login and Microsoft Graph over HTTPS on 127.0.0.1
//! (a throwaway rcgen CA), plus helpers shared by the integration tests.
//!
//! By default the mock behaves like a small, consistent Entra ID: the login checks the form and
//! the credential (client secret, a certificate assertion verified with ring against the
//! registered certificate, or the expected federated token), issues tokens and accepts only
//! live ones; Graph serves one service principal with one job and answers 204 to the writes.
//! Tests queue scripted replies per route to override single answers, and inspect every
//! recorded request.
//!
//! Every secret the mock or the tests use contains `SECRET`, and nothing else does, so a leak
//! check is a substring search (assertions, which are base64, are checked by value).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use sync_client_graph::{
    ClientCredential, Endpoints, GraphClient, GraphConfig, GraphError, GraphRequestOutcome,
    SecretString, TlsConfig,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

pub const TENANT: &str = "3f8e2a61-5c1d-4b7e-9a20-6d4c8b1e7f05";
pub const CLIENT_ID: &str = "b7d1c3e5-2f4a-4c6e-8a0b-1d3f5e7a9c2b";
/// Has a `~` and a space so that its form-encoded spelling differs from the raw one.
pub const CLIENT_SECRET: &str = "cs~SECRET.value 1";
pub const SP_ID: &str = "8c2b6e4a-1d3f-4a5b-9c7d-0e2f4a6b8c1d";
pub const JOB_ID: &str =
    "scim.4b5e7f1a2c3d4e5f6a7b8c9d0e1f2a3b.3f8e2a61-5c1d-4b7e-9a20-6d4c8b1e7f05";
pub const BASE_ADDRESS: &str = "https://vcenter.example/usergroup/t/CUSTOMER/scim/v2";
pub const SCIM_TOKEN: &str = "scim-jwt-SECRET-1";
/// Substring of every secret in the tests.
pub const SECRET_MARKER: &str = "SECRET";

/// Default request timeout in tests: long enough for a loaded machine, short enough to end.
pub const TEST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// The committed test-only certificate (not a secret, see tests/data/README.md).
pub fn test_certificate_pem() -> String {
    std::fs::read_to_string(format!(
        "{TEST_DATA}/TEST-ONLY-NOT-A-SECRET-graph-client.cert.pem"
    ))
    .expect("test certificate")
}

/// The committed test-only RSA key, PKCS#8 or PKCS#1 PEM.
pub fn test_key_pem(pkcs1: bool) -> String {
    let suffix = if pkcs1 { "key.pkcs1.pem" } else { "key.pem" };
    std::fs::read_to_string(format!(
        "{TEST_DATA}/TEST-ONLY-NOT-A-SECRET-graph-client.{suffix}"
    ))
    .expect("test key")
}

/// Which API a recorded request went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Token,
    ListJobs,
    GetJob,
    PutSecrets,
    Validate,
    Restart,
    Unknown,
}

impl Route {
    fn of(method: &str, path: &str) -> Self {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", [_, "oauth2", "v2.0", "token"]) => Self::Token,
            ("GET", ["v1.0", "servicePrincipals", _, "synchronization", "jobs"]) => Self::ListJobs,
            ("GET", ["v1.0", "servicePrincipals", _, "synchronization", "jobs", _]) => Self::GetJob,
            ("PUT", ["v1.0", "servicePrincipals", _, "synchronization", "secrets"]) => {
                Self::PutSecrets
            }
            (
                "POST",
                [
                    "v1.0",
                    "servicePrincipals",
                    _,
                    "synchronization",
                    "jobs",
                    _,
                    "validateCredentials",
                ],
            ) => Self::Validate,
            (
                "POST",
                [
                    "v1.0",
                    "servicePrincipals",
                    _,
                    "synchronization",
                    "jobs",
                    _,
                    "restart",
                ],
            ) => Self::Restart,
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

    /// The form fields of a token request.
    pub fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn bearer(&self) -> Option<String> {
        self.header("authorization")?
            .strip_prefix("Bearer ")
            .map(str::to_owned)
    }

    /// The `{id}` segment after `servicePrincipals` (percent-encoded).
    pub fn path_segment(&self, index: usize) -> String {
        self.path
            .trim_start_matches('/')
            .split('/')
            .nth(index)
            .expect("segment")
            .to_owned()
    }
}

/// A scripted answer, used once, in the order queued for its route.
#[derive(Clone, Debug)]
pub enum Reply {
    Respond(Scripted),
    /// Close the connection without answering.
    Drop,
    /// Behave normally, but only after waiting.
    DefaultAfter(Duration),
    /// Answer `status` with everything the request carried (its body raw and form-decoded,
    /// its `Authorization` header), as a hostile or careless server might: in the error shape
    /// of the route (`json`) or as plain text.
    Echo {
        status: u16,
        json: bool,
    },
}

/// What a [`Reply::Respond`] sends.
#[derive(Clone, Debug, Default)]
pub struct Scripted {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Sent without `Content-Length`, in pieces.
    chunked: bool,
    /// Half the body, then a broken connection.
    cut: bool,
    delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self::Respond(Scripted {
            status,
            ..Scripted::default()
        })
    }

    pub fn json(status: u16, body: &Value) -> Self {
        Self::raw(status, "application/json", body.to_string().into_bytes())
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        Self::status(status)
            .header("content-type", content_type)
            .edit(|scripted| scripted.body = body)
    }

    /// A Graph error body: `{"error":{"code","message","innerError":{"request-id","date"}}}`.
    pub fn graph_error(status: u16, code: &str, message: &str) -> Self {
        Self::json(status, &graph_error_body(code, message))
    }

    /// A login error as Entra sends it: 400 with `error`, `error_description` and `error_codes`.
    pub fn login_error(error: &str, aadsts: u32, description: &str) -> Self {
        Self::json(
            400,
            &json!({
                "error": error,
                "error_description": format!(
                    "AADSTS{aadsts}: {description}\r\nTrace ID: 0c4b\r\nCorrelation ID: 9d2e\r\nTimestamp: 2024-05-01 10:00:00Z"
                ),
                "error_codes": [aadsts],
                "timestamp": "2024-05-01 10:00:00Z",
                "trace_id": "0c4b-trace",
                "correlation_id": "9d2e-correlation",
                "error_uri": "https://login.microsoftonline.com/error?code=0"
            }),
        )
    }

    pub fn header(self, name: &str, value: &str) -> Self {
        self.edit(|scripted| scripted.headers.push((name.to_owned(), value.to_owned())))
    }

    /// Sent in pieces without `Content-Length`.
    pub fn chunked(self) -> Self {
        self.edit(|scripted| scripted.chunked = true)
    }

    /// Half the body, then the connection breaks.
    pub fn cut(self) -> Self {
        self.edit(|scripted| scripted.cut = true)
    }

    pub fn after(self, wait: Duration) -> Self {
        match self {
            Self::DefaultAfter(_) => Self::DefaultAfter(wait),
            other => other.edit(|scripted| scripted.delay = wait),
        }
    }

    fn edit(self, change: impl FnOnce(&mut Scripted)) -> Self {
        match self {
            Self::Respond(mut scripted) => {
                change(&mut scripted);
                Self::Respond(scripted)
            }
            other => other,
        }
    }
}

pub fn graph_error_body(code: &str, message: &str) -> Value {
    json!({"error": {
        "code": code,
        "message": message,
        "innerError": {"request-id": "5a1f0c2e-request", "date": "2024-05-01T10:00:00", "client-request-id": "5a1f0c2e-request"}
    }})
}

/// A provisioning job shaped like Microsoft's documented example (Get synchronizationJob), with
/// `id` and `status.code` set.
pub fn documented_job(id: &str, code: &str) -> Value {
    json!({
        "id": id,
        "templateId": "scim",
        "schedule": {"expiration": null, "interval": "PT40M", "state": "Active"},
        "status": {
            "countSuccessiveCompleteFailures": 0,
            "escrowsPruned": false,
            "code": code,
            "lastExecution": null,
            "lastSuccessfulExecution": null,
            "lastSuccessfulExecutionWithExports": null,
            "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z",
            "steadyStateLastAchievedTime": "0001-01-01T00:00:00Z",
            "quarantine": null,
            "synchronizedEntryCountByType": [],
            "progress": [],
            "troubleshootingUrl": ""
        },
        "synchronizationJobSettings": [{"name": "QuarantineTooManyDeletesThreshold", "value": "500"}]
    })
}

/// How the login judges credentials.
#[derive(Default)]
struct Login {
    /// The RSA public key (PKCS#1 DER) and `x5t#S256` of the registered certificate.
    certificate: Option<(Vec<u8>, String)>,
    /// The federated (ServiceAccount) token the app trusts.
    federated_token: Option<String>,
    seen_jti: HashSet<String>,
    /// Why assertions were refused, for tests to show.
    refusals: Vec<String>,
}

/// The mock's state.
struct Sim {
    base_url: String,
    requests: Vec<Recorded>,
    scripts: HashMap<Route, VecDeque<Reply>>,
    login: Login,
    live_tokens: HashSet<String>,
    tokens_issued: u32,
    expires_in: Value,
    /// Jobs per service principal id (percent-encoded, as in paths).
    jobs: HashMap<String, Vec<Value>>,
}

impl Sim {
    fn new(base_url: String) -> Self {
        let mut jobs = HashMap::new();
        jobs.insert(SP_ID.to_owned(), vec![documented_job(JOB_ID, "Active")]);
        Self {
            base_url,
            requests: Vec::new(),
            scripts: HashMap::new(),
            login: Login::default(),
            live_tokens: HashSet::new(),
            tokens_issued: 0,
            expires_in: json!(3599),
            jobs,
        }
    }

    fn answer(&mut self, request: &Recorded) -> (u16, Value) {
        match request.route {
            Route::Token => self.token(request),
            Route::Unknown => (404, graph_error_body("UnknownError", "no such route")),
            route => {
                if !request
                    .bearer()
                    .is_some_and(|token| self.live_tokens.contains(&token))
                {
                    return (
                        401,
                        graph_error_body(
                            "InvalidAuthenticationToken",
                            "Access token is empty or invalid.",
                        ),
                    );
                }
                self.graph(route, request)
            }
        }
    }

    fn graph(&self, route: Route, request: &Recorded) -> (u16, Value) {
        let Some(jobs) = self.jobs.get(&request.path_segment(2)) else {
            return (
                404,
                graph_error_body(
                    "Request_ResourceNotFound",
                    "Resource does not exist or one of its queried reference-property objects are not present.",
                ),
            );
        };
        if route == Route::ListJobs {
            return (200, json!({"value": jobs}));
        }
        if route == Route::PutSecrets {
            return (204, Value::Null);
        }
        let job_id = percent_encoding::percent_decode_str(&request.path_segment(5))
            .decode_utf8()
            .expect("UTF-8 job id")
            .into_owned();
        match jobs.iter().find(|job| job["id"] == json!(job_id)) {
            None => (
                404,
                graph_error_body("NotFound", "The requested job was not found."),
            ),
            Some(job) if route == Route::GetJob => (200, job.clone()),
            Some(_) => (204, Value::Null),
        }
    }

    fn token(&mut self, request: &Recorded) -> (u16, Value) {
        let form = request.form();
        let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", self.base_url);
        let well_formed = request.path == format!("/{TENANT}/oauth2/v2.0/token")
            && form.get("grant_type").map(String::as_str) == Some("client_credentials")
            && form.get("scope") == Some(&format!("{}/.default", self.base_url))
            && form.get("client_id").map(String::as_str) == Some(CLIENT_ID);
        if !well_formed {
            return login_error_body("invalid_request", 900_144, "malformed request");
        }
        let accepted = match (
            form.get("client_secret"),
            form.get("client_assertion_type").map(String::as_str),
            form.get("client_assertion"),
        ) {
            (Some(secret), None, None) => secret == CLIENT_SECRET,
            (None, Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(jwt)) => {
                match self.check_assertion(jwt, &token_url) {
                    Ok(()) => true,
                    Err(reason) => {
                        self.login.refusals.push(reason);
                        false
                    }
                }
            }
            _ => false,
        };
        if !accepted {
            return login_error_body(
                "invalid_client",
                7_000_215,
                "Invalid client secret provided.",
            );
        }
        self.tokens_issued += 1;
        let token = format!("graph-token-SECRET-{}", self.tokens_issued);
        self.live_tokens.insert(token.clone());
        (
            200,
            json!({"token_type": "Bearer", "expires_in": self.expires_in, "ext_expires_in": 3599, "access_token": token}),
        )
    }

    fn check_assertion(&mut self, jwt: &str, token_url: &str) -> Result<(), String> {
        if let Some(expected) = &self.login.federated_token {
            return (jwt == expected)
                .then_some(())
                .ok_or_else(|| "not the federated token".to_owned());
        }
        let (public_key, thumbprint) = self
            .login
            .certificate
            .clone()
            .ok_or("no certificate registered")?;
        let claims = verify_assertion(jwt, &public_key, &thumbprint, token_url)?;
        let jti = claims["jti"].as_str().ok_or("no jti")?.to_owned();
        if !self.login.seen_jti.insert(jti) {
            return Err("jti replayed".to_owned());
        }
        Ok(())
    }
}

fn login_error_body(error: &str, aadsts: u32, description: &str) -> (u16, Value) {
    (
        400,
        json!({
            "error": error,
            "error_description": format!("AADSTS{aadsts}: {description}"),
            "error_codes": [aadsts],
            "trace_id": "trace",
            "correlation_id": "correlation"
        }),
    )
}

/// Checks a certificate assertion as Entra ID does and returns its claims: header `alg` PS256,
/// `typ` JWT, `x5t#S256` of the registered certificate; the RSA-PSS signature against the
/// certificate's key; `aud` the token URL, `iss` = `sub` = the client id, `jti` a UUID, `nbf`
/// and `iat` not in the future, `exp` 5 to 10 minutes after `nbf` and not past.
pub fn verify_assertion(
    jwt: &str,
    public_key: &[u8],
    thumbprint: &str,
    token_url: &str,
) -> Result<Value, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err("not three parts".to_owned());
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|error| error.to_string())
    };
    let header_json: Value =
        serde_json::from_slice(&decode(header)?).map_err(|error| error.to_string())?;
    let claims_json: Value =
        serde_json::from_slice(&decode(claims)?).map_err(|error| error.to_string())?;
    let expected_header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumbprint});
    if header_json != expected_header {
        return Err(format!("header {header_json}"));
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PSS_2048_8192_SHA256, public_key)
        .verify(format!("{header}.{claims}").as_bytes(), &decode(signature)?)
        .map_err(|_| "bad signature".to_owned())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let number = |name: &str| claims_json[name].as_u64().ok_or(format!("no {name}"));
    let (nbf, iat, exp) = (number("nbf")?, number("iat")?, number("exp")?);
    let jti = claims_json["jti"].as_str().ok_or("no jti")?;
    let checks = [
        (claims_json["aud"] == json!(token_url), "aud"),
        (claims_json["iss"] == json!(CLIENT_ID), "iss"),
        (claims_json["sub"] == json!(CLIENT_ID), "sub"),
        (
            jti.len() == 36 && jti.chars().filter(|c| *c == '-').count() == 4,
            "jti",
        ),
        (nbf <= now + 5 && iat <= now + 5, "nbf/iat"),
        (
            (300..=600).contains(&exp.saturating_sub(nbf)) && exp > now,
            "exp",
        ),
        (
            claims_json.as_object().map(serde_json::Map::len) == Some(7),
            "claim count",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, claim)) => Err(format!("claim {claim} wrong: {claims_json}")),
        None => Ok(claims_json),
    }
}

/// The RSA public key (PKCS#1 DER, as ring verifies it) and `x5t#S256` of a certificate PEM.
pub fn certificate_key_and_thumbprint(certificate_pem: &str) -> (Vec<u8>, String) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let der = CertificateDer::from_pem_slice(certificate_pem.as_bytes()).expect("certificate PEM");
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).expect("certificate");
    let public_key = parsed.public_key().subject_public_key.data.to_vec();
    let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    (public_key, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// A running mock server.
#[derive(Clone)]
pub struct MockEntra {
    address: SocketAddr,
    ca_pem: String,
    sim: Arc<Mutex<Sim>>,
}

impl MockEntra {
    /// Serves HTTPS (HTTP/1.1 and HTTP/2) on 127.0.0.1 (ephemeral port) until the test's
    /// runtime ends.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("local address");
        let (ca_pem, server_config) = test_pki();
        let mock = Self {
            address,
            ca_pem,
            sim: Arc::new(Mutex::new(Sim::new(format!("https://{address}")))),
        };
        let acceptor = TlsAcceptor::from(Arc::new(server_config));
        let sim = mock.sim.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve_connection(tcp, acceptor.clone(), sim.clone()));
            }
        });
        mock
    }

    pub fn base_url(&self) -> String {
        format!("https://{}", self.address)
    }

    pub fn token_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0/token", self.base_url())
    }

    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
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

    /// Graph no longer accepts any token issued so far.
    pub fn revoke_tokens(&self) {
        self.sim().live_tokens.clear();
    }

    /// The `expires_in` of tokens issued from now on.
    pub fn set_expires_in(&self, expires_in: Value) {
        self.sim().expires_in = expires_in;
    }

    /// Registers the certificate whose key must sign assertions.
    pub fn register_certificate(&self, certificate_pem: &str) {
        self.sim().login.certificate = Some(certificate_key_and_thumbprint(certificate_pem));
    }

    /// Trusts this federated token as the assertion.
    pub fn trust_federated_token(&self, token: &str) {
        self.sim().login.federated_token = Some(token.to_owned());
    }

    /// Why assertions were refused so far.
    pub fn assertion_refusals(&self) -> Vec<String> {
        self.sim().login.refusals.clone()
    }

    /// Replaces the jobs of a service principal (`id` as it appears in paths).
    pub fn set_jobs(&self, service_principal_path_id: &str, jobs: Vec<Value>) {
        self.sim()
            .jobs
            .insert(service_principal_path_id.to_owned(), jobs);
    }

    fn sim(&self) -> std::sync::MutexGuard<'_, Sim> {
        self.sim.lock().expect("mock state")
    }
}

/// A CA and a server certificate it signed for 127.0.0.1.
fn test_pki() -> (String, ServerConfig) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sync-client-graph test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_certificate = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_certificate = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut server_config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![server_certificate.der().clone()], key)
            .expect("server TLS config");
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca_certificate.pem(), server_config)
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

async fn serve_connection(tcp: tokio::net::TcpStream, acceptor: TlsAcceptor, sim: Arc<Mutex<Sim>>) {
    // Handshake failures are what some tests expect: nothing to report.
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let kill = Arc::new(Notify::new());
    let service_kill = kill.clone();
    let service = service_fn(move |request| handle(sim.clone(), service_kill.clone(), request));
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        _ = connection => {}
        () = kill.notified() => {}
    }
}

async fn handle(
    sim: Arc<Mutex<Sim>>,
    kill: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<MockBody>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|_| Dropped)?
        .to_bytes()
        .to_vec();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let recorded = Recorded {
        route: Route::of(&method, &path),
        method,
        path,
        version: parts.version,
        headers: parts.headers,
        body,
    };
    let script = {
        let mut sim = sim.lock().expect("mock state");
        sim.requests.push(recorded.clone());
        sim.scripts
            .get_mut(&recorded.route)
            .and_then(VecDeque::pop_front)
    };
    let default_answer = |sim: &Mutex<Sim>| {
        let (status, body) = sim.lock().expect("mock state").answer(&recorded);
        match body {
            Value::Null => Reply::status(status),
            body => Reply::json(status, &body),
        }
    };
    let scripted = match script {
        Some(Reply::Drop) => {
            kill.notify_one();
            return Err(Dropped);
        }
        Some(Reply::Respond(scripted)) => {
            tokio::time::sleep(scripted.delay).await;
            Reply::Respond(scripted)
        }
        Some(Reply::DefaultAfter(delay)) => {
            tokio::time::sleep(delay).await;
            default_answer(&sim)
        }
        Some(Reply::Echo { status, json }) => echo(&recorded, status, json),
        None => default_answer(&sim),
    };
    let Reply::Respond(Scripted {
        status,
        headers,
        body,
        chunked,
        cut,
        ..
    }) = scripted
    else {
        unreachable!("default answers respond");
    };
    let mut response = Response::builder().status(StatusCode::from_u16(status).expect("status"));
    for (name, value) in headers {
        response = response.header(name, value);
    }
    Ok(response
        .body(MockBody::new(body, chunked, cut))
        .expect("response"))
}

/// Everything `request` carried, sent back in an error answer.
fn echo(request: &Recorded, status: u16, json: bool) -> Reply {
    let form = request.form();
    let credential = ["client_secret", "client_assertion"]
        .iter()
        .find_map(|key| form.get(*key))
        .cloned()
        .unwrap_or_default();
    // The secrets first, so that they are within what a bounded message keeps.
    let everything = format!(
        "echo {credential} {} | {}",
        request.header("authorization").unwrap_or_default(),
        String::from_utf8_lossy(&request.body),
    );
    match (json, request.route) {
        (false, _) => Reply::raw(status, "text/plain", everything),
        (true, Route::Token) => Reply::json(
            status,
            &json!({"error": everything, "error_description": everything}),
        ),
        (true, _) => Reply::json(status, &graph_error_body(&everything, &everything)),
    }
}

/// An answer body: whole (with `Content-Length`), in pieces (without), or cut off.
struct MockBody {
    pieces: VecDeque<Piece>,
    length: Option<u64>,
}

enum Piece {
    Data(Bytes),
    /// Lets what was sent so far reach the client before the connection breaks.
    Pause(Pin<Box<tokio::time::Sleep>>),
    Break,
}

impl MockBody {
    fn new(body: Vec<u8>, chunked: bool, cut: bool) -> Self {
        let length = u64::try_from(body.len()).expect("length");
        let bytes = Bytes::from(body);
        let mut pieces = VecDeque::new();
        if cut {
            pieces.push_back(Piece::Data(bytes.slice(..bytes.len() / 2)));
            pieces.push_back(Piece::Pause(Box::pin(tokio::time::sleep(
                Duration::from_millis(100),
            ))));
            pieces.push_back(Piece::Break);
        } else if chunked {
            for start in (0..bytes.len()).step_by(64 * 1024) {
                let end = (start + 64 * 1024).min(bytes.len());
                pieces.push_back(Piece::Data(bytes.slice(start..end)));
            }
        } else if !bytes.is_empty() {
            pieces.push_back(Piece::Data(bytes));
        }
        Self {
            pieces,
            length: (!chunked && !cut).then_some(length),
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Dropped;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Dropped>>> {
        if let Some(Piece::Pause(sleep)) = self.pieces.front_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pieces.pop_front();
        }
        Poll::Ready(match self.pieces.pop_front() {
            None => None,
            Some(Piece::Data(bytes)) => Some(Ok(Frame::data(bytes))),
            Some(Piece::Break | Piece::Pause(_)) => Some(Err(Dropped)),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// A client-secret configuration for `mock`.
pub fn config(mock: &MockEntra) -> GraphConfig {
    config_with(
        mock,
        ClientCredential::Secret(SecretString::from(CLIENT_SECRET)),
    )
}

pub fn config_with(mock: &MockEntra, credential: ClientCredential) -> GraphConfig {
    let mut config = GraphConfig::new(TENANT, CLIENT_ID, credential);
    config.endpoints = Endpoints {
        login_base: mock.base_url(),
        graph_base: format!("{}/", mock.base_url()),
    };
    config.tls = TlsConfig {
        ca_bundle_pem: Some(mock.ca_pem()),
        insecure_skip_verify: false,
    };
    config.request_timeout = TEST_REQUEST_TIMEOUT;
    config
}

/// Builds a client, checking that neither the configuration nor the client prints a secret.
pub fn client(config: GraphConfig) -> GraphClient {
    assert_no_secret(&format!("{config:?}"));
    let client = GraphClient::new(config).expect("valid config");
    assert_no_secret(&format!("{client:?} {client}"));
    client
}

/// A client-secret client for `mock` whose observer records into the returned outcomes.
pub fn observed_client(mock: &MockEntra) -> (GraphClient, ObservedOutcomes) {
    let outcomes = ObservedOutcomes::default();
    let mut config = config(mock);
    outcomes.attach(&mut config);
    (client(config), outcomes)
}

/// Fails when `text` holds any secret of the tests.
pub fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET_MARKER), "secret leaked: {text}");
    assert!(
        !text.contains(CLIENT_SECRET),
        "client secret leaked: {text}"
    );
}

/// Checks what every error of the suite must satisfy and returns it: no secret in `Debug` or
/// `Display`, one line, at most 300 characters.
pub fn checked(error: GraphError) -> GraphError {
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
pub fn expect_error<T: std::fmt::Debug>(result: Result<T, GraphError>) -> GraphError {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => checked(error),
    }
}

/// Records what the client's observer hears.
#[derive(Clone, Default)]
pub struct ObservedOutcomes(Arc<Mutex<Vec<GraphRequestOutcome>>>);

impl ObservedOutcomes {
    pub fn attach(&self, config: &mut GraphConfig) {
        let outcomes = self.0.clone();
        config.observer = Some(Arc::new(move |outcome: &GraphRequestOutcome| {
            outcomes.lock().expect("outcomes").push(outcome.clone());
        }));
    }

    /// (call label, status, result) of every request so far.
    pub fn summary(&self) -> Vec<(&'static str, Option<u16>, &'static str)> {
        self.0
            .lock()
            .expect("outcomes")
            .iter()
            .map(|outcome| (outcome.call.as_str(), outcome.status, outcome.result))
            .collect()
    }
}
