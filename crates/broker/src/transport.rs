//! Sending one HTTP request through the shared [`HttpClient`], reporting it to the observer, and
//! turning failures into [`BrokerError`]s.

use std::time::Duration;

use reqwest::RequestBuilder;
use sync_client_http::{HttpClient, RequestFailure, TlsConfig};

pub(crate) use sync_client_http::Answer;

use crate::config::RequestObserver;
use crate::diagnostics::describe_error_body;
use crate::error::{BrokerError, ErrorKind};
use crate::guard::{Deadline, Limit};
use crate::outcome::{Endpoint, RequestOutcome};

pub(crate) struct Transport {
    client: HttpClient,
    observer: Option<RequestObserver>,
}

impl Transport {
    pub(crate) fn new(
        tls: &TlsConfig,
        needs_tls: bool,
        request_timeout: Duration,
        observer: Option<RequestObserver>,
    ) -> Result<Self, BrokerError> {
        let client = HttpClient::new(
            tls,
            needs_tls,
            request_timeout,
            concat!("sync-client-broker/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|message| BrokerError::configure(&message))?;
        Ok(Self { client, observer })
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        self.client.http()
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
        let limit = deadline.limit(endpoint, self.client.request_timeout())?;
        let observe = |status, result: &Result<T, BrokerError>, elapsed| {
            if let Some(observer) = &self.observer {
                observer(&RequestOutcome {
                    endpoint,
                    status,
                    result: result
                        .as_ref()
                        .map_or_else(|error| error.kind().as_str(), |_| "success"),
                    elapsed,
                });
            }
        };
        self.client
            .call_within(
                endpoint.as_str(),
                request,
                limit.timeout,
                read,
                |failure| failure_error(endpoint, failure, limit),
                observe,
            )
            .await
    }
}

/// The error for a request that got no usable answer. For generate calls, anything after
/// connecting leaves the outcome unknown: the broker may have rotated and the answer was lost.
fn failure_error(endpoint: Endpoint, failure: RequestFailure, limit: Limit) -> BrokerError {
    match failure {
        RequestFailure::InvalidRequest(message) => {
            BrokerError::call(ErrorKind::Spec, endpoint, &message)
        }
        RequestFailure::Network {
            status,
            before_sending,
            timed_out,
            message,
        } => {
            let message = if timed_out && limit.by_deadline {
                format!(
                    "the deadline of the whole call passed while the request was in flight ({} \
                     ms remained when it was sent)",
                    limit.timeout.as_millis()
                )
            } else {
                message
            };
            let error = BrokerError::call(ErrorKind::Transient, endpoint, &message)
                .with_outcome_unknown(endpoint == Endpoint::GenerateCredentials && !before_sending);
            match status {
                Some(status) => error.with_status(status),
                None => error,
            }
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
    let retry_after = answer.throttling_retry_after();
    let wait = retry_after.map(|wait| format!("retry after {}s", wait.as_secs()));
    let details: Vec<String> = hint.into_iter().chain(wait).chain(body.summary()).collect();
    let message = answer.status_message(endpoint.server_name(), &details);
    // A gateway error on a generate call may come after the broker already rotated.
    let maybe_rotated = endpoint == Endpoint::GenerateCredentials && matches!(status, 502 | 504);
    BrokerError::call(ErrorKind::from_status(status), endpoint, &message)
        .with_status(status)
        .with_error_type(body.code.as_deref())
        .with_outcome_unknown(maybe_rotated)
        .with_retry_after(retry_after)
}

/// An error for a success answer whose body cannot be used.
pub(crate) fn malformed_answer(endpoint: Endpoint, answer: &Answer, reason: &str) -> BrokerError {
    BrokerError::call(
        ErrorKind::Transient,
        endpoint,
        &format!(
            "malformed response ({} {})",
            answer.status.as_u16(),
            answer.unusable_reason(reason)
        ),
    )
    .with_status(answer.status.as_u16())
}
