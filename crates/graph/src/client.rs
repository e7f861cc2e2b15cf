//! [`GraphClient`]: the provisioning calls, built on the shared HTTP client and the token cache.
//!
//! This module keeps the client, its configuration checks and the public calls; sending a
//! request with the token and the errors of Graph's answers have their own modules.

mod answers;
mod request;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use serde_json::json;
use sync_client_http::{HttpClient, SecretString, encode_path_segment};

use crate::assertion::CertificateSigner;
use crate::config::{ClientCredential, Endpoints, GraphConfig, GraphObserver};
use crate::error::GraphError;
use crate::jobs::{SynchronizationJob, parse_job, parse_job_list};
use crate::outcome::GraphCall;
use crate::token::{CachedToken, Credential};

pub(crate) use answers::{malformed_answer, secret_forms};
use request::Target;

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
    /// [`GraphErrorKind::ValidationFailed`](crate::GraphErrorKind::ValidationFailed).
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
