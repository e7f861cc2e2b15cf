//! Sending one HTTP request, reading its answer within bounds, reporting it to the observer, and
//! turning failures into [`BrokerError`]s.

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, StatusCode};

use crate::config::{RequestObserver, TlsConfig};
use crate::diagnostics::{describe_error_body, single_line};
use crate::error::{BrokerError, ErrorKind};
use crate::outcome::{Endpoint, RequestOutcome};
use crate::tls;

/// Answers larger than this are cut off: no broker answer is legitimately this big.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Connecting gets at most this long (and at most half the request timeout).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest chain of network error causes kept in a message.
const MAX_CAUSE_CHARS: usize = 160;

/// A read answer.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
    /// The body was longer than [`MAX_BODY_BYTES`] and was cut.
    pub(crate) truncated: bool,
}

impl Answer {
    pub(crate) fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

pub(crate) struct Transport {
    http: reqwest::Client,
    request_timeout: Duration,
    observer: Option<RequestObserver>,
}

impl Transport {
    pub(crate) fn new(
        tls: &TlsConfig,
        needs_tls: bool,
        request_timeout: Duration,
        observer: Option<RequestObserver>,
    ) -> Result<Self, BrokerError> {
        if request_timeout.is_zero() {
            return Err(BrokerError::configure("request_timeout must be positive"));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls::client_config(tls, needs_tls)?)
            .timeout(request_timeout)
            .connect_timeout((request_timeout / 2).min(MAX_CONNECT_TIMEOUT))
            // A redirect means a wrong base URL; following it could send credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sync-client-broker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                BrokerError::configure(&format!(
                    "building the HTTP client failed: {}",
                    error_chain(&error)
                ))
            })?;
        Ok(Self {
            http,
            request_timeout,
            observer,
        })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request`, reads the answer and lets `read` interpret it. The observer hears about
    /// the request once, with the result `read` produced.
    pub(crate) async fn call<T>(
        &self,
        endpoint: Endpoint,
        request: RequestBuilder,
        read: impl FnOnce(Answer) -> Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let started = Instant::now();
        let (status, result) = match self.exchange(endpoint, request).await {
            Ok(answer) => (Some(answer.status.as_u16()), read(answer)),
            Err((status, error)) => (status, Err(error)),
        };
        if let Some(observer) = &self.observer {
            observer(&RequestOutcome {
                endpoint,
                status,
                result: result
                    .as_ref()
                    .map_or_else(|error| error.kind().as_str(), |_| "success"),
                elapsed: started.elapsed(),
            });
        }
        result
    }

    async fn exchange(
        &self,
        endpoint: Endpoint,
        request: RequestBuilder,
    ) -> Result<Answer, (Option<u16>, BrokerError)> {
        let request = request.build().map_err(|error| {
            let message = format!("invalid request: {}", error_chain(&error));
            (None, BrokerError::call(ErrorKind::Spec, endpoint, &message))
        })?;
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let mut response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%method, %path, endpoint = endpoint.as_str(), "broker request failed");
                return Err((None, self.network_error(endpoint, &error, None)));
            }
        };
        let status = response.status();
        tracing::debug!(%method, %path, status = status.as_u16(), "broker request");
        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY_BYTES - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    let status = status.as_u16();
                    return Err((
                        Some(status),
                        self.network_error(endpoint, &error, Some(status)),
                    ));
                }
            }
        }
        Ok(Answer {
            status,
            body,
            truncated,
        })
    }

    /// A failure to connect, send or read. For generate calls, anything after connecting leaves
    /// the outcome unknown: the broker may have rotated and the answer was lost.
    fn network_error(
        &self,
        endpoint: Endpoint,
        error: &reqwest::Error,
        status: Option<u16>,
    ) -> BrokerError {
        let before_sending = status.is_none() && error.is_connect();
        let message = if error.is_timeout() {
            let phase = if before_sending {
                "while connecting"
            } else {
                "waiting for the answer"
            };
            format!(
                "timed out {phase} (request timeout {:?})",
                self.request_timeout
            )
        } else if before_sending {
            format!("could not connect: {}", error_chain(error))
        } else if status.is_some() {
            format!(
                "connection failed while reading the answer: {}",
                error_chain(error)
            )
        } else {
            format!("request failed: {}", error_chain(error))
        };
        let error = BrokerError::call(ErrorKind::Transient, endpoint, &message)
            .with_outcome_unknown(endpoint == Endpoint::GenerateCredentials && !before_sending);
        match status {
            Some(status) => error.with_status(status),
            None => error,
        }
    }
}

/// An error for a non-success answer: "vCenter answered 404 Not Found: hint; ERROR_TYPE: message".
///
/// `hint` says what the status means for this endpoint; `secrets` are scrubbed from the body.
pub(crate) fn status_error(
    endpoint: Endpoint,
    answer: &Answer,
    hint: Option<String>,
    secrets: &[&str],
) -> BrokerError {
    let status = answer.status.as_u16();
    let body = describe_error_body(&answer.body, secrets);
    let mut message = format!(
        "{} answered {status} {}",
        endpoint.server_name(),
        answer.status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned();
    let details: Vec<String> = hint.into_iter().chain(body.summary()).collect();
    if !details.is_empty() {
        message.push_str(": ");
        message.push_str(&details.join("; "));
    }
    // A gateway error on a generate call may come after the broker already rotated.
    let maybe_rotated = endpoint == Endpoint::GenerateCredentials && matches!(status, 502 | 504);
    BrokerError::call(ErrorKind::from_status(status), endpoint, &message)
        .with_status(status)
        .with_error_type(body.error_type.as_deref())
        .with_outcome_unknown(maybe_rotated)
}

/// An error for a success answer whose body cannot be used.
pub(crate) fn malformed_answer(endpoint: Endpoint, answer: &Answer, reason: &str) -> BrokerError {
    let reason = if answer.truncated {
        "the answer is too large"
    } else {
        reason
    };
    BrokerError::call(
        ErrorKind::Transient,
        endpoint,
        &format!("malformed response ({} {reason})", answer.status.as_u16()),
    )
    .with_status(answer.status.as_u16())
}

/// The causes of a reqwest error without its first line, which repeats the URL.
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = error.source();
    while let Some(current) = cause {
        let text = current.to_string();
        // hyper-util's "client error (Connect)" wrapper says nothing the message does not.
        let wrapper = text.starts_with("client error (");
        if !wrapper && parts.last() != Some(&text) {
            parts.push(text);
        }
        cause = current.source();
    }
    if parts.is_empty() {
        parts.push(text_without_url(error));
    }
    single_line(&parts.join(": "), MAX_CAUSE_CHARS)
}

/// reqwest's own text, minus the "for url (...)" part.
fn text_without_url(error: &reqwest::Error) -> String {
    let text = error.to_string();
    match text.find(" for url (") {
        Some(position) => text[..position].to_owned(),
        None => text,
    }
}
