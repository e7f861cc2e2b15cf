//! Sending one HTTP request and reading its answer within bounds; describing what went wrong
//! in one short line.

use std::error::Error as StdError;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::diagnostics::{describe_html, is_html, single_line};
use crate::retry_after::parse_retry_after;
use crate::tls::{TlsConfig, client_config};

/// Answers larger than this (1 MiB) are not read further: no answer of the APIs spoken here is
/// legitimately this big. A success answer that large is malformed.
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
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    /// The `Content-Type` header, if it was readable text (bounded).
    pub content_type: Option<String>,
    /// The bounded `Retry-After` header, if it held delta-seconds or an HTTP date.
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_BODY_BYTES`] and was cut.
    pub truncated: bool,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// Whether the answer is an HTML page (a proxy, portal or load balancer answered).
    pub fn is_html(&self) -> bool {
        is_html(self.content_type.as_deref(), &self.body)
    }

    /// The `Retry-After` of a 429 or 503 answer: throttling and maintenance say when to come
    /// back; other statuses do not get to.
    pub fn throttling_retry_after(&self) -> Option<Duration> {
        self.retry_after
            .filter(|_| matches!(self.status.as_u16(), 429 | 503))
    }

    /// Why a success answer cannot be used: it was cut for being too large, it is an HTML page,
    /// or else `reason` (what the protocol's parser found).
    pub fn unusable_reason(&self, reason: &str) -> String {
        if self.truncated {
            format!(
                "the answer is too large (over {} MiB)",
                MAX_BODY_BYTES / (1024 * 1024)
            )
        } else if self.is_html() {
            format!(
                "the answer is an {}, not JSON; a proxy or login portal may have answered",
                describe_html(&String::from_utf8_lossy(&self.body))
            )
        } else {
            reason.to_owned()
        }
    }

    /// "{server} answered 404 Not Found", then ": " and the `details` joined by "; " if any.
    pub fn status_message(&self, server: &str, details: &[String]) -> String {
        let status = self.status.as_u16();
        let mut message = format!(
            "{server} answered {status} {}",
            self.status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_owned();
        if !details.is_empty() {
            message.push_str(": ");
            message.push_str(&details.join("; "));
        }
        message
    }
}

/// Why no usable answer was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestFailure {
    /// The request could not even be built (an invalid URL or header); nothing was sent.
    InvalidRequest(String),
    /// Connecting, sending or reading failed, or the request timed out.
    Network {
        /// The status, when the failure came while reading the body of an answer.
        status: Option<u16>,
        /// The failure came while connecting: the request never reached the server.
        before_sending: bool,
        /// The request's timeout ended it.
        timed_out: bool,
        /// One line: what failed, the causes, or which phase timed out.
        message: String,
    },
}

impl RequestFailure {
    /// The status of the answer whose body could not be read, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::InvalidRequest(_) => None,
            Self::Network { status, .. } => *status,
        }
    }
}

/// A reqwest client for one server (or a few): TLS from a [`TlsConfig`], a total timeout per
/// request, no redirects, bounded answers.
#[derive(Debug)]
pub struct HttpClient {
    http: reqwest::Client,
    request_timeout: Duration,
}

impl HttpClient {
    /// `needs_tls` is false when every URL is `http://` (tests): a missing system trust store is
    /// then no error. The error is a one-line message for the caller's configuration error.
    pub fn new(
        tls: &TlsConfig,
        needs_tls: bool,
        request_timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, String> {
        if request_timeout.is_zero() {
            return Err("request_timeout must be positive".to_owned());
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(tls, needs_tls)?)
            .timeout(request_timeout)
            .connect_timeout((request_timeout / 2).min(MAX_CONNECT_TIMEOUT))
            // A redirect means a wrong base URL; following it could send credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(|error| {
                format!("building the HTTP client failed: {}", error_chain(&error))
            })?;
        Ok(Self {
            http,
            request_timeout,
        })
    }

    /// The client, to build requests with.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Sends `request`, reads the answer and lets `read` interpret it, or `fail` describe why
    /// there is no usable answer; then tells `observe` once, with the status read (if any), the
    /// result and the time taken (for metrics).
    pub async fn call<T, E>(
        &self,
        call: &'static str,
        request: RequestBuilder,
        read: impl FnOnce(Answer) -> Result<T, E>,
        fail: impl FnOnce(RequestFailure) -> E,
        observe: impl FnOnce(Option<u16>, &Result<T, E>, Duration),
    ) -> Result<T, E> {
        let timeout = self.request_timeout;
        self.call_within(call, request, timeout, read, fail, observe)
            .await
    }

    /// [`HttpClient::call`] with `timeout` for this request instead of the client's (what
    /// remains of a deadline, say).
    pub async fn call_within<T, E>(
        &self,
        call: &'static str,
        request: RequestBuilder,
        timeout: Duration,
        read: impl FnOnce(Answer) -> Result<T, E>,
        fail: impl FnOnce(RequestFailure) -> E,
        observe: impl FnOnce(Option<u16>, &Result<T, E>, Duration),
    ) -> Result<T, E> {
        let started = Instant::now();
        let request = request.timeout(timeout);
        let (status, result) = match self.exchange_within(call, request, timeout).await {
            Ok(answer) => (Some(answer.status.as_u16()), read(answer)),
            Err(failure) => (failure.status(), Err(fail(failure))),
        };
        observe(status, &result, started.elapsed());
        result
    }

    /// Sends `request` and reads the answer: at most [`MAX_BODY_BYTES`] of the body, within the
    /// request timeout. `call` names the request in debug logs (method, path and status are
    /// logged; never headers, query or body).
    pub async fn exchange(
        &self,
        call: &'static str,
        request: RequestBuilder,
    ) -> Result<Answer, RequestFailure> {
        self.exchange_within(call, request, self.request_timeout)
            .await
    }

    /// [`HttpClient::exchange`] of a request whose timeout is `timeout`.
    async fn exchange_within(
        &self,
        call: &'static str,
        request: RequestBuilder,
        timeout: Duration,
    ) -> Result<Answer, RequestFailure> {
        let request = request.build().map_err(|error| {
            RequestFailure::InvalidRequest(format!("invalid request: {}", error_chain(&error)))
        })?;
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let mut response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(%method, %path, call, "HTTP request failed");
                return Err(Self::network_failure(&error, None, timeout));
            }
        };
        let status = response.status();
        tracing::debug!(%method, %path, call, status = status.as_u16(), "HTTP request");
        let headers = response.headers();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| single_line(value, MAX_CONTENT_TYPE_CHARS));
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|value| parse_retry_after(value.as_bytes(), SystemTime::now()));
        let (body, truncated) = Self::read_body(&mut response, timeout).await?;
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
        response: &mut Response,
        timeout: Duration,
    ) -> Result<(Vec<u8>, bool), RequestFailure> {
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
                Err(error) => return Err(Self::network_failure(&error, Some(status), timeout)),
            }
        }
    }

    /// A failure to connect, send or read, described in one line.
    fn network_failure(
        error: &reqwest::Error,
        status: Option<u16>,
        timeout: Duration,
    ) -> RequestFailure {
        let before_sending = status.is_none() && error.is_connect();
        let message = if error.is_timeout() {
            let phase = if before_sending {
                "while connecting"
            } else if status.is_some() {
                "while reading the answer"
            } else {
                "waiting for the answer"
            };
            format!("timed out {phase} (request timeout {timeout:?})")
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
        RequestFailure::Network {
            status,
            before_sending,
            timed_out: error.is_timeout(),
            message,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: Option<&str>, body: &[u8]) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            content_type: content_type.map(str::to_owned),
            retry_after: Some(Duration::from_secs(7)),
            body: body.to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn retry_after_counts_for_throttling_and_maintenance_only() {
        assert_eq!(
            answer(429, None, b"").throttling_retry_after(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            answer(503, None, b"").throttling_retry_after(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(answer(500, None, b"").throttling_retry_after(), None);
    }

    #[test]
    fn status_messages_name_the_server_and_join_details() {
        let answer = answer(404, None, b"");
        assert_eq!(
            answer.status_message("Graph", &[]),
            "Graph answered 404 Not Found"
        );
        assert_eq!(
            answer.status_message("Graph", &["a".to_owned(), "b".to_owned()]),
            "Graph answered 404 Not Found: a; b"
        );
        let unknown = Answer {
            status: StatusCode::from_u16(599).expect("status"),
            ..answer
        };
        assert_eq!(unknown.status_message("x", &[]), "x answered 599");
    }

    #[test]
    fn unusable_answers_say_why() {
        let mut big = answer(200, None, b"{");
        big.truncated = true;
        assert_eq!(
            big.unusable_reason("x"),
            "the answer is too large (over 1 MiB)"
        );
        let page = answer(200, Some("text/html"), b"<title>Sign in</title>");
        assert_eq!(
            page.unusable_reason("x"),
            "the answer is an HTML page \"Sign in\", not JSON; a proxy or login portal may have answered"
        );
        assert_eq!(answer(200, None, b"{").unusable_reason("bad"), "bad");
    }
}
