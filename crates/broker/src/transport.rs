//! Sending one HTTP request, reading its answer within bounds, reporting it to the observer, and
//! turning failures into [`BrokerError`]s.

use std::error::Error as StdError;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::config::{RequestObserver, TlsConfig};
use crate::diagnostics::{describe_error_body, describe_html, is_html, single_line};
use crate::error::{BrokerError, ErrorKind};
use crate::guard::{Deadline, Limit};
use crate::outcome::{Endpoint, RequestOutcome};
use crate::retry_after::parse_retry_after;
use crate::tls;

/// Answers larger than this (1 MiB) are not read further: no broker answer is legitimately this
/// big. A success answer that large is malformed.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest `Content-Type` kept from an answer.
const MAX_CONTENT_TYPE_CHARS: usize = 100;
/// Connecting gets at most this long (and at most half the request timeout).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest chain of network error causes kept in a message.
const MAX_CAUSE_CHARS: usize = 160;
/// Deepest error cause looked at.
const MAX_CAUSE_DEPTH: usize = 32;

/// A read answer.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// The `Content-Type` header, if it was readable text (bounded).
    pub(crate) content_type: Option<String>,
    /// The bounded `Retry-After` header, if it held delta-seconds or an HTTP date.
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
    /// The body was longer than [`MAX_BODY_BYTES`] and was cut.
    pub(crate) truncated: bool,
}

impl Answer {
    pub(crate) fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// Whether the answer is an HTML page (a proxy, portal or load balancer answered).
    pub(crate) fn is_html(&self) -> bool {
        is_html(self.content_type.as_deref(), &self.body)
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
    /// the request once, with the result `read` produced. The request's timeout is cut to what
    /// remains of `deadline`; once that has passed nothing is sent.
    pub(crate) async fn call<T>(
        &self,
        endpoint: Endpoint,
        request: RequestBuilder,
        deadline: Deadline,
        read: impl FnOnce(Answer) -> Result<T, BrokerError>,
    ) -> Result<T, BrokerError> {
        let limit = deadline.limit(endpoint, self.request_timeout)?;
        let request = request.timeout(limit.timeout);
        let started = Instant::now();
        let (status, result) = match self.exchange(endpoint, request, limit).await {
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
        limit: Limit,
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
                return Err((None, self.network_error(endpoint, &error, None, limit)));
            }
        };
        let status = response.status();
        tracing::debug!(%method, %path, status = status.as_u16(), "broker request");
        let headers = response.headers();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| single_line(value, MAX_CONTENT_TYPE_CHARS));
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|value| parse_retry_after(value.as_bytes(), SystemTime::now()));
        let (body, truncated) = self
            .read_body(endpoint, &mut response, limit)
            .await
            .map_err(|error| (Some(status.as_u16()), error))?;
        Ok(Answer {
            status,
            content_type,
            retry_after,
            body,
            truncated,
        })
    }

    /// Reads at most [`MAX_BODY_BYTES`] of the body; reports whether there was more. The
    /// client's total timeout covers this read too, so a trickling body times out.
    async fn read_body(
        &self,
        endpoint: Endpoint,
        response: &mut Response,
        limit: Limit,
    ) -> Result<(Vec<u8>, bool), BrokerError> {
        let status = response.status().as_u16();
        let announced_too_large = response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64);
        if announced_too_large {
            return Ok((Vec::new(), true));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY_BYTES - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        return Ok((body, true));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok((body, false)),
                Err(error) => {
                    return Err(self.network_error(endpoint, &error, Some(status), limit));
                }
            }
        }
    }

    /// A failure to connect, send or read. For generate calls, anything after connecting leaves
    /// the outcome unknown: the broker may have rotated and the answer was lost.
    fn network_error(
        &self,
        endpoint: Endpoint,
        error: &reqwest::Error,
        status: Option<u16>,
        limit: Limit,
    ) -> BrokerError {
        let before_sending = status.is_none() && error.is_connect();
        let message = if error.is_timeout() {
            let phase = if before_sending {
                "while connecting"
            } else if status.is_some() {
                "while reading the answer"
            } else {
                "waiting for the answer"
            };
            if limit.by_deadline {
                format!(
                    "timed out {phase}: the deadline of the whole call passed ({} ms remained \
                     when the request was sent)",
                    limit.timeout.as_millis()
                )
            } else {
                format!(
                    "timed out {phase} (request timeout {:?})",
                    self.request_timeout
                )
            }
        } else if before_sending {
            let chain = error_chain(error);
            if is_certificate_error(error) {
                // A re-issued server certificate, a wrong CA bundle or a name mismatch: say so
                // plainly, the operator's user has to act.
                format!("could not connect: TLS certificate verification failed: {chain}")
            } else {
                format!("could not connect: {chain}")
            }
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
    let body = describe_error_body(answer.content_type.as_deref(), &answer.body, secrets);
    let mut message = format!(
        "{} answered {status} {}",
        endpoint.server_name(),
        answer.status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned();
    // Throttling and maintenance say when to come back; other statuses do not get to.
    let retry_after = answer.retry_after.filter(|_| matches!(status, 429 | 503));
    let wait = retry_after.map(|wait| format!("retry after {}s", wait.as_secs()));
    let details: Vec<String> = hint.into_iter().chain(wait).chain(body.summary()).collect();
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
        .with_retry_after(retry_after)
}

/// An error for a success answer whose body cannot be used.
pub(crate) fn malformed_answer(endpoint: Endpoint, answer: &Answer, reason: &str) -> BrokerError {
    let reason = if answer.truncated {
        format!(
            "the answer is too large (over {} MiB)",
            MAX_BODY_BYTES / (1024 * 1024)
        )
    } else if answer.is_html() {
        format!(
            "the answer is an {}, not JSON; a proxy or login portal may have answered",
            describe_html(&String::from_utf8_lossy(&answer.body))
        )
    } else {
        reason.to_owned()
    };
    BrokerError::call(
        ErrorKind::Transient,
        endpoint,
        &format!("malformed response ({} {reason})", answer.status.as_u16()),
    )
    .with_status(answer.status.as_u16())
}

/// Whether a connection failed because the server's certificate was not accepted.
fn is_certificate_error(error: &reqwest::Error) -> bool {
    let mut cause = error.source();
    // Error chains are short; the bound only guards against a pathological one.
    for _ in 0..MAX_CAUSE_DEPTH {
        let Some(current) = cause else {
            return false;
        };
        if let Some(rustls_error) = current.downcast_ref::<rustls::Error>() {
            return matches!(rustls_error, rustls::Error::InvalidCertificate(_));
        }
        cause = next_cause(current);
    }
    false
}

/// The error's cause, looking inside `io::Error`s too: their `source()` skips the error they
/// wrap (which is where rustls's error sits).
fn next_cause<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(inner) = error
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        return Some(inner);
    }
    error.source()
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
