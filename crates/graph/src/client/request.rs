//! Sending a provisioning request: the call's target path, the access token with one retry
//! after a 401, the observer, and reading the answer.

use reqwest::header::ACCEPT;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use sync_client_http::{Answer, Malformed, SecretString, encode_path_segment, single_line};

use crate::error::{GraphError, GraphErrorKind};
use crate::outcome::{GraphCall, GraphRequestOutcome};
use crate::token::Credential;

use super::Inner;
use super::answers::{failure_error, graph_error, malformed_answer, secret_forms};

/// Longest id quoted in a message (job ids are about 75 characters).
const MAX_ID_CHARS: usize = 100;

/// What a call is about: the service principal and perhaps a job, checked and percent-encoded
/// for the path and bounded for messages.
pub(super) struct Target {
    pub(super) call: GraphCall,
    /// `servicePrincipals/{id}/synchronization[/jobs/{jobId}]`.
    path: String,
    pub(super) service_principal: String,
    pub(super) job: Option<String>,
}

impl Target {
    pub(super) fn new(
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

    pub(super) fn configuration_error(&self, message: &str) -> GraphError {
        GraphError::new(GraphErrorKind::Configuration, self.call, message)
    }
}

impl Inner {
    /// `{graph}/v1.0/{target}{rest}`.
    fn url(&self, target: &Target, rest: &str) -> String {
        format!("{}/v1.0/{}{rest}", self.endpoints.graph_base, target.path)
    }

    /// `GET`s JSON and parses it with `parse`.
    pub(super) async fn get_json<T>(
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
    pub(super) async fn send_json(
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
