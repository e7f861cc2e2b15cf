//! [`GraphClient`]: the provisioning calls, built on the shared HTTP client and the token cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sync_client_http::{
    Answer, HttpClient, Malformed, RequestFailure, SecretString, encode_path_segment, single_line,
};

use crate::assertion::CertificateSigner;
use crate::config::{ClientCredential, Endpoints, GraphConfig, GraphObserver};
use crate::error::{GraphError, GraphErrorKind};
use crate::jobs::{SynchronizationJob, parse_job, parse_job_list};
use crate::outcome::{GraphCall, GraphRequestOutcome};
use crate::token::{CachedToken, Credential};
use crate::wire::ErrorAnswer;

/// The only reset scope this client sends: "temporarily lifts the quarantine". Never `Full` or
/// `ConnectorDataStore`, which throw away the provisioning state.
const QUARANTINE_STATE: &str = "QuarantineState";

/// Client for the provisioning jobs of one tenant, as one application. Cheap to clone; clones
/// share the token cache.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: HttpClient,
    observer: Option<GraphObserver>,
    tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) credential: Credential,
    credential_kind: String,
    endpoints: Endpoints,
    /// `{login}/{tenant}/oauth2/v2.0/token`, also the `aud` of certificate assertions.
    pub(crate) token_url: String,
    /// `{graph}/.default`.
    pub(crate) scope: String,
    pub(crate) token_refresh_margin: std::time::Duration,
    pub(crate) token_cache: tokio::sync::Mutex<Option<CachedToken>>,
    pub(crate) token_requests: AtomicU64,
}

impl GraphClient {
    /// Checks the configuration (URLs, ids, the certificate and its key) and builds the HTTP
    /// client (rustls with the ring provider). No request is sent; a federated token file is
    /// first read by the first token request.
    pub fn new(config: GraphConfig) -> Result<Self, GraphError> {
        let configure = |message: String| GraphError::configure(&message);
        let login_base = https_base_url("login_base", &config.endpoints.login_base)?;
        let graph_base = https_base_url("graph_base", &config.endpoints.graph_base)?;
        let tenant = encode_path_segment("tenant id", &config.tenant_id).map_err(configure)?;
        if config.client_id.trim().is_empty() {
            return Err(GraphError::configure("the client id is empty"));
        }
        let credential = match &config.credential {
            ClientCredential::Secret(secret) if secret.expose().trim().is_empty() => {
                return Err(GraphError::configure("the client secret is empty"));
            }
            ClientCredential::Secret(secret) => Credential::Secret(secret.clone()),
            ClientCredential::Certificate {
                certificate_pem,
                private_key_pem,
            } => Credential::Certificate(Box::new(
                CertificateSigner::new(certificate_pem, private_key_pem).map_err(configure)?,
            )),
            ClientCredential::FederatedTokenFile(path) if path.as_os_str().is_empty() => {
                return Err(GraphError::configure(
                    "the federated token file path is empty",
                ));
            }
            ClientCredential::FederatedTokenFile(path) => {
                Credential::FederatedTokenFile(path.clone())
            }
        };
        let http = HttpClient::new(
            &config.tls,
            true,
            config.request_timeout,
            concat!("sync-client-graph/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(configure)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                observer: config.observer,
                token_url: format!("{login_base}/{tenant}/oauth2/v2.0/token"),
                scope: format!("{graph_base}/.default"),
                endpoints: Endpoints {
                    login_base,
                    graph_base,
                },
                tenant_id: config.tenant_id,
                client_id: config.client_id,
                credential_kind: config.credential.describe(),
                credential,
                token_refresh_margin: config.token_refresh_margin,
                token_cache: tokio::sync::Mutex::new(None),
                token_requests: AtomicU64::new(0),
            }),
        })
    }

    /// Makes sure an app-only access token is at hand: the cached one while it is fresh,
    /// otherwise a new one (concurrent callers share one token request).
    pub async fn authenticate(&self) -> Result<(), GraphError> {
        self.inner.token().await.map(|_| ())
    }

    /// `GET /jobs`: the provisioning jobs of the service principal (its object id, not the
    /// app id). Jobs without an id are left out; only the first page is read (a service
    /// principal has one job, or a few).
    pub async fn list_jobs(
        &self,
        service_principal_id: &str,
    ) -> Result<Vec<SynchronizationJob>, GraphError> {
        let target = Target::new(GraphCall::ListJobs, service_principal_id, None)?;
        self.inner.get_json(&target, "/jobs", parse_job_list).await
    }

    /// `GET /jobs/{jobId}`.
    pub async fn get_job(
        &self,
        service_principal_id: &str,
        job_id: &str,
    ) -> Result<SynchronizationJob, GraphError> {
        let target = Target::new(GraphCall::GetJob, service_principal_id, Some(job_id))?;
        self.inner.get_json(&target, "", parse_job).await
    }

    /// `PUT /secrets` with `BaseAddress` and `SecretToken` (both keys, always: whether Graph
    /// merges or replaces the list is not documented).
    pub async fn put_secrets(
        &self,
        service_principal_id: &str,
        base_address: &str,
        secret_token: &SecretString,
    ) -> Result<(), GraphError> {
        let target = Target::new(GraphCall::PutSecrets, service_principal_id, None)?;
        if base_address.trim().is_empty() || secret_token.expose().trim().is_empty() {
            return Err(target
                .configuration_error("the base address and the secret token must not be empty"));
        }
        let body = json!({"value": [
            {"key": "BaseAddress", "value": base_address},
            {"key": "SecretToken", "value": secret_token.expose()},
        ]});
        self.inner
            .send_json(&target, Method::PUT, "/secrets", &body, Some(secret_token))
            .await
    }

    /// `POST /jobs/{jobId}/validateCredentials` with `{"useSavedCredentials": true}`: Entra ID
    /// calls the SCIM endpoint with the saved base address and token. A refusal is
    /// [`GraphErrorKind::ValidationFailed`].
    pub async fn validate_saved_credentials(
        &self,
        service_principal_id: &str,
        job_id: &str,
    ) -> Result<(), GraphError> {
        let call = GraphCall::ValidateCredentials;
        let target = Target::new(call, service_principal_id, Some(job_id))?;
        let body = json!({"useSavedCredentials": true});
        self.inner
            .send_json(&target, Method::POST, "/validateCredentials", &body, None)
            .await
    }

    /// `POST /jobs/{jobId}/restart` with `{"criteria":{"resetScope":"QuarantineState"}}`: the
    /// only reset scope this client can send (never `Full`, never `ConnectorDataStore`; there is
    /// no `start`). Call it on a quarantined job only.
    pub async fn restart_quarantined_job(
        &self,
        service_principal_id: &str,
        job_id: &str,
    ) -> Result<(), GraphError> {
        let target = Target::new(GraphCall::RestartJob, service_principal_id, Some(job_id))?;
        let body = json!({"criteria": {"resetScope": QUARANTINE_STATE}});
        self.inner
            .send_json(&target, Method::POST, "/restart", &body, None)
            .await
    }

    /// Token requests sent so far by this client and its clones (for tests and metrics).
    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::Relaxed)
    }
}

/// Longest id quoted in a message (job ids are about 75 characters).
const MAX_ID_CHARS: usize = 100;

/// What a call is about: the service principal and perhaps a job, checked and percent-encoded
/// for the path and bounded for messages.
struct Target {
    call: GraphCall,
    /// `servicePrincipals/{id}/synchronization[/jobs/{jobId}]`.
    path: String,
    service_principal: String,
    job: Option<String>,
}

impl Target {
    fn new(
        call: GraphCall,
        service_principal_id: &str,
        job_id: Option<&str>,
    ) -> Result<Self, GraphError> {
        let error =
            |message: String| GraphError::new(GraphErrorKind::Configuration, call, &message);
        let service_principal =
            encode_path_segment("service principal id", service_principal_id).map_err(error)?;
        let job = match job_id {
            Some(job_id) => format!(
                "/jobs/{}",
                encode_path_segment("job id", job_id).map_err(error)?
            ),
            None => String::new(),
        };
        Ok(Self {
            call,
            path: format!("servicePrincipals/{service_principal}/synchronization{job}"),
            service_principal: single_line(service_principal_id, MAX_ID_CHARS),
            job: job_id.map(|job| single_line(job, MAX_ID_CHARS)),
        })
    }

    fn configuration_error(&self, message: &str) -> GraphError {
        GraphError::new(GraphErrorKind::Configuration, self.call, message)
    }
}

impl Inner {
    /// `{graph}/v1.0/{target}{rest}`.
    fn url(&self, target: &Target, rest: &str) -> String {
        format!("{}/v1.0/{}{rest}", self.endpoints.graph_base, target.path)
    }

    /// `GET`s JSON and parses it with `parse`.
    async fn get_json<T>(
        &self,
        target: &Target,
        rest: &str,
        parse: fn(&[u8]) -> Result<T, Malformed>,
    ) -> Result<T, GraphError> {
        let url = self.url(target, rest);
        self.send_authorized(
            target.call,
            |token| authorized(self.http.http().get(&url), token),
            |answer, token| {
                self.success(target, &answer, &[token])
                    .and_then(|()| read_body(target.call, &answer, parse))
            },
        )
        .await
    }

    /// Sends a JSON body; any success status will do. `secret` is in the body.
    async fn send_json(
        &self,
        target: &Target,
        method: Method,
        rest: &str,
        body: &Value,
        secret: Option<&SecretString>,
    ) -> Result<(), GraphError> {
        let url = self.url(target, rest);
        self.send_authorized(
            target.call,
            |token| authorized(self.http.http().request(method.clone(), &url), token).json(body),
            |answer, token| {
                let secrets: Vec<&SecretString> = std::iter::once(token).chain(secret).collect();
                self.success(target, &answer, &secrets)
            },
        )
        .await
    }

    /// Secrets from the configuration, in every form a server could echo them in.
    pub(crate) fn config_secrets(&self) -> Vec<String> {
        match &self.credential {
            Credential::Secret(secret) => secret_forms(secret.expose()),
            Credential::Certificate(_) | Credential::FederatedTokenFile(_) => Vec::new(),
        }
    }

    /// Sends one request and reports it to the observer once.
    pub(crate) async fn send<T>(
        &self,
        call: GraphCall,
        request: RequestBuilder,
        read: impl FnOnce(Answer) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        let observe = |status, result: &Result<T, GraphError>, duration| {
            if let Some(observer) = &self.observer {
                observer(&GraphRequestOutcome {
                    call,
                    status,
                    result: result
                        .as_ref()
                        .map_or_else(|error| error.kind().as_str(), |_| "success"),
                    duration,
                });
            }
        };
        self.http
            .call(
                call.as_str(),
                request,
                read,
                |failure| failure_error(call, failure),
                observe,
            )
            .await
    }

    /// Sends a request with the access token. A 401 drops the token, fetches a new one once
    /// and retries once.
    async fn send_authorized<T>(
        &self,
        call: GraphCall,
        request: impl Fn(&SecretString) -> RequestBuilder,
        read: impl Fn(Answer, &SecretString) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        let first = self.token().await?;
        let result = self
            .send(call, request(&first), |answer| read(answer, &first))
            .await;
        match result {
            Err(error) if error.kind() == GraphErrorKind::Unauthorized => {
                tracing::debug!(
                    call = call.as_str(),
                    "Graph refused the token; fetching a new one"
                );
                let second = self.replace_token(&first).await?;
                self.send(call, request(&second), |answer| read(answer, &second))
                    .await
            }
            other => other,
        }
    }

    /// `Ok` for a success answer, otherwise the error it means; `secrets` are scrubbed.
    fn success(
        &self,
        target: &Target,
        answer: &Answer,
        secrets: &[&SecretString],
    ) -> Result<(), GraphError> {
        if answer.is_success() {
            return Ok(());
        }
        let mut scrubbed = self.config_secrets();
        for secret in secrets {
            scrubbed.extend(secret_forms(secret.expose()));
        }
        Err(graph_error(target, answer, &scrubbed))
    }
}

/// `request` with the access token, asking for JSON.
fn authorized(request: RequestBuilder, token: &SecretString) -> RequestBuilder {
    request
        .bearer_auth(token.expose())
        .header(ACCEPT, "application/json")
}

/// The error a non-success Graph answer means: "Microsoft Graph answered 403 Forbidden: hint;
/// code: message".
fn graph_error(target: &Target, answer: &Answer, secrets: &[String]) -> GraphError {
    let read = ErrorAnswer::read(answer, secrets);
    let status = answer.status.as_u16();
    let validation_refused = target.call == GraphCall::ValidateCredentials
        && !matches!(status, 401 | 403 | 404 | 408 | 409 | 429)
        && (matches!(status, 400 | 422)
            || read
                .body
                .code
                .as_deref()
                .is_some_and(|code| code.contains("CredentialValidation")));
    let kind = if validation_refused {
        GraphErrorKind::ValidationFailed
    } else {
        GraphErrorKind::from_status(status)
    };
    read.into_error(kind, target.call, answer, status_hint(kind, target))
}

/// What an error kind means for the call's service principal and job.
fn status_hint(kind: GraphErrorKind, target: &Target) -> Option<String> {
    let service_principal = &target.service_principal;
    Some(match kind {
        GraphErrorKind::Unauthorized => "the access token was refused".to_owned(),
        GraphErrorKind::Forbidden => "the app needs Synchronization.ReadWrite.All, or \
                                      Application.ReadWrite.OwnedBy and to own the service \
                                      principal"
            .to_owned(),
        GraphErrorKind::NotFound => match &target.job {
            Some(job) => format!("no service principal {service_principal} or no job {job}"),
            None => format!("no service principal {service_principal}"),
        },
        GraphErrorKind::ValidationFailed => {
            "Entra ID could not reach the SCIM endpoint with the saved credentials".to_owned()
        }
        _ => return None,
    })
}

/// The error for a request that got no usable answer.
fn failure_error(call: GraphCall, failure: RequestFailure) -> GraphError {
    match failure {
        RequestFailure::InvalidRequest(message) => {
            GraphError::new(GraphErrorKind::Configuration, call, &message)
        }
        RequestFailure::Network {
            status, message, ..
        } => GraphError::new(GraphErrorKind::Transient, call, &message).with_status(status),
    }
}

/// The parsed body of a success answer, or an [`GraphErrorKind::InvalidResponse`] error.
fn read_body<T>(
    call: GraphCall,
    answer: &Answer,
    parse: impl FnOnce(&[u8]) -> Result<T, Malformed>,
) -> Result<T, GraphError> {
    if answer.truncated {
        return Err(malformed_answer(call, answer, "the answer is too large"));
    }
    parse(&answer.body).map_err(|malformed| malformed_answer(call, answer, &malformed.0))
}

/// An error for a success answer whose body cannot be used.
pub(crate) fn malformed_answer(call: GraphCall, answer: &Answer, reason: &str) -> GraphError {
    GraphError::new(
        GraphErrorKind::InvalidResponse,
        call,
        &format!(
            "malformed response ({} {})",
            answer.status.as_u16(),
            answer.unusable_reason(reason)
        ),
    )
    .with_status(Some(answer.status.as_u16()))
}

/// A secret as sent and as a server may echo it: raw, form-encoded (token requests) and
/// JSON-escaped (request bodies).
pub(crate) fn secret_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    let form_encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json_escaped = serde_json::to_string(secret).unwrap_or_default();
    let json_escaped = json_escaped
        .strip_prefix('"')
        .and_then(|text| text.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned();
    for form in [form_encoded, json_escaped] {
        if !form.is_empty() && !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}

/// The base URL without a trailing slash, if it is an absolute `https://` URL without
/// credentials, query or fragment. Plain `http://` is refused: the client secret and tokens
/// would travel unencrypted.
fn https_base_url(name: &str, raw: &str) -> Result<String, GraphError> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|error| GraphError::configure(&format!("{name} is not a valid URL: {error}")))?;
    let problem = if url.scheme() != "https" {
        Some("must start with https://")
    } else if url.host_str().is_none_or(str::is_empty) {
        Some("has no host")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("must not contain credentials")
    } else if url.query().is_some() || url.fragment().is_some() {
        Some("must not have a query or fragment")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(GraphError::configure(&format!("{name} {problem}"))),
        None => Ok(url.as_str().trim_end_matches('/').to_owned()),
    }
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("tenant_id", &self.inner.tenant_id)
            .field("client_id", &self.inner.client_id)
            .field("credential", &self.inner.credential_kind)
            .field("endpoints", &self.inner.endpoints)
            .field("token_refresh_margin", &self.inner.token_refresh_margin)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Microsoft Graph client for tenant {} (application {}, {})",
            self.inner.tenant_id, self.inner.client_id, self.inner.credential_kind
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_must_be_plain_https() {
        assert_eq!(
            https_base_url("graph_base", "https://graph.microsoft.com/").as_deref(),
            Ok("https://graph.microsoft.com")
        );
        assert_eq!(
            https_base_url("graph_base", " https://proxy.example:8443/graph/ ").as_deref(),
            Ok("https://proxy.example:8443/graph")
        );
        let cases = [
            (
                "http://graph.microsoft.com",
                "graph_base must start with https://",
            ),
            (
                "https://user:hunter2@graph.example",
                "graph_base must not contain credentials",
            ),
            (
                "https://graph.example/?x=1",
                "graph_base must not have a query or fragment",
            ),
        ];
        for (raw, expected) in cases {
            let error = https_base_url("graph_base", raw).expect_err("refused");
            assert_eq!(
                error.to_string(),
                format!("configure Microsoft Graph client: {expected}")
            );
        }
        assert!(https_base_url("graph_base", "graph.example").is_err());
    }

    #[test]
    fn secrets_are_scrubbed_in_every_form_they_travel_in() {
        assert_eq!(secret_forms("abc"), ["abc"]);
        assert_eq!(secret_forms("a~b c"), ["a~b c", "a%7Eb+c"]);
        assert_eq!(secret_forms("a\"b"), ["a\"b", "a%22b", "a\\\"b"]);
    }
}
