//! Fault injection: a queue of misbehaviours, each applied to the next N matching requests.
//!
//! ```
//! # use sync_client_broker_sim::{Endpoint, Fault};
//! # use std::time::Duration;
//! let fault = Fault::on(Endpoint::Generate).times(2).status(500);
//! let lost_answer = Fault::on(Endpoint::Generate)
//!     .for_directory("3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c")
//!     .process_then_hang(Duration::from_secs(5));
//! let throttled = Fault::on(Endpoint::Login).too_many_requests(30);
//! let expired_on_arrival = Fault::on(Endpoint::Generate)
//!     .times(usize::MAX)
//!     .access_token_expire_in(&serde_json::json!(-5));
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use crate::routes::Endpoint;

/// Size of [`Fault::oversized_body`]'s default answer: far above any client's body limit.
pub const DEFAULT_OVERSIZED_BYTES: usize = 5 * 1024 * 1024;

/// The body of an injected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultBody {
    Empty,
    /// A vAPI standard error body with this `error_type` and first `default_message`.
    Vapi {
        error_type: String,
        message: String,
    },
    /// Any body with any content type (plain text from a proxy, HTML error page, wrong JSON).
    Raw {
        content_type: String,
        body: String,
    },
}

/// What happens to a request a fault matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Only the fault's delay applies; then the request is handled normally.
    Proceed,
    /// Answer with this status and body without handling the request.
    Respond { status: u16, body: FaultBody },
    /// Close the connection without answering and without handling the request.
    DropConnection,
    /// Handle the request (a generate rotates: old credentials revoked, new ones issued), then
    /// answer nothing for this long, then close the connection.
    ProcessThenHang(Duration),
    /// Handle the request, then close the connection without answering.
    ProcessThenDrop,
    /// Handle the request only after this long, whether or not the client still waits (a broker
    /// that completes a request its client already gave up on: a late generate revokes whatever
    /// was issued meanwhile), then answer if the connection is still open.
    ProcessLate(Duration),
    /// Handle the request, then answer `200` with a truncated JSON body of the endpoint's
    /// content type, whatever the real outcome was.
    MalformedSuccess,
    /// Handle the request (a generate rotates), then answer with this status and body instead of
    /// the real answer, like a proxy that lost the broker's answer and sent its own error page.
    ProcessThenRespond { status: u16, body: FaultBody },
    /// Handle the request, send the real answer's status, headers and the first half of its
    /// body (it announces the full `Content-Length`), then close the connection.
    ResetMidBody,
    /// Handle the request, send the real answer's status and headers at once, then trickle its
    /// body in small pieces spread evenly over this long.
    SlowBody(Duration),
    /// Handle the request, then answer its real status with a valid JSON body of at least this
    /// many bytes: the real JSON object padded with a long string field (or only that field).
    OversizedBody(usize),
    /// Handle the request, then send the real answer with this `Content-Type` instead.
    ContentType(String),
    /// Handle the request, then change one field of a JSON object answer: set it to this JSON
    /// text, or remove it (`None`). Answers that are not JSON objects are left alone.
    SetField { field: String, json: Option<String> },
}

/// One injected misbehaviour, built with [`Fault::on`] and the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    endpoint: Endpoint,
    directory_id: Option<String>,
    times: usize,
    delay: Duration,
    action: FaultAction,
    headers: Vec<(String, String)>,
}

impl Fault {
    /// A fault for the next request to `endpoint`; by default it changes nothing until an
    /// action or a delay is set.
    pub fn on(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            directory_id: None,
            times: 1,
            delay: Duration::ZERO,
            action: FaultAction::Proceed,
            headers: Vec::new(),
        }
    }

    /// Match only requests for this directory (generate and read).
    #[must_use]
    pub fn for_directory(mut self, directory_id: &str) -> Self {
        self.directory_id = Some(directory_id.to_owned());
        self
    }

    /// Apply to the next `times` matching requests (default 1).
    #[must_use]
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Wait this long before acting (alone: added latency before normal handling).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answer with `status` and an empty body.
    #[must_use]
    pub fn status(self, status: u16) -> Self {
        self.action(FaultAction::Respond {
            status,
            body: FaultBody::Empty,
        })
    }

    /// Answer with a vAPI standard error; the status follows vCenter's mapping of `error_type`.
    #[must_use]
    pub fn vapi_error(self, error_type: &str, message: &str) -> Self {
        let status = crate::vapi::status_for(error_type);
        self.action(FaultAction::Respond {
            status,
            body: FaultBody::Vapi {
                error_type: error_type.to_owned(),
                message: message.to_owned(),
            },
        })
    }

    /// Answer with `status` and a `text/plain` body.
    #[must_use]
    pub fn text(self, status: u16, body: &str) -> Self {
        self.raw(status, "text/plain; charset=utf-8", body)
    }

    /// Answer with `status` and a `text/html` body, like a proxy or load balancer error page.
    #[must_use]
    pub fn html(self, status: u16, body: &str) -> Self {
        self.raw(status, "text/html; charset=utf-8", body)
    }

    /// Answer with `status`, any content type and any body.
    #[must_use]
    pub fn raw(self, status: u16, content_type: &str, body: &str) -> Self {
        self.action(FaultAction::Respond {
            status,
            body: FaultBody::Raw {
                content_type: content_type.to_owned(),
                body: body.to_owned(),
            },
        })
    }

    #[must_use]
    pub fn drop_connection(self) -> Self {
        self.action(FaultAction::DropConnection)
    }

    /// The "timeout after generate" case: the work is done, the answer never arrives.
    /// Choose `hang_for` longer than the client's timeout.
    #[must_use]
    pub fn process_then_hang(self, hang_for: Duration) -> Self {
        self.action(FaultAction::ProcessThenHang(hang_for))
    }

    /// A generate the client gave up on that still lands: handled `after` this long even when
    /// the client closed the connection meanwhile.
    #[must_use]
    pub fn process_late(self, after: Duration) -> Self {
        self.action(FaultAction::ProcessLate(after))
    }

    #[must_use]
    pub fn process_then_drop(self) -> Self {
        self.action(FaultAction::ProcessThenDrop)
    }

    #[must_use]
    pub fn malformed_success(self) -> Self {
        self.action(FaultAction::MalformedSuccess)
    }

    /// Handle the request, then answer `status` with a `text/html` page instead of the real
    /// answer (a proxy error page after the broker already rotated).
    #[must_use]
    pub fn process_then_html(self, status: u16, body: &str) -> Self {
        self.action(FaultAction::ProcessThenRespond {
            status,
            body: FaultBody::Raw {
                content_type: "text/html; charset=utf-8".to_owned(),
                body: body.to_owned(),
            },
        })
    }

    /// `429 Too Many Requests` with `Retry-After: retry_after_seconds` and an empty body.
    #[must_use]
    pub fn too_many_requests(self, retry_after_seconds: u64) -> Self {
        self.status(429).retry_after(retry_after_seconds)
    }

    /// Adds `Retry-After: seconds` to the answer (combine with [`Fault::status`], e.g. 503).
    #[must_use]
    pub fn retry_after(self, seconds: u64) -> Self {
        self.header("retry-after", &seconds.to_string())
    }

    /// Adds a header to every answer this fault produces (an HTTP-date `Retry-After`, say).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The connection breaks after half of the (real, processed) answer's body.
    #[must_use]
    pub fn reset_mid_body(self) -> Self {
        self.action(FaultAction::ResetMidBody)
    }

    /// The (real, processed) answer's headers come at once, its body over `over`.
    #[must_use]
    pub fn slow_body(self, over: Duration) -> Self {
        self.action(FaultAction::SlowBody(over))
    }

    /// The (real, processed) answer padded to [`DEFAULT_OVERSIZED_BYTES`] of valid JSON.
    #[must_use]
    pub fn oversized_body(self) -> Self {
        self.action(FaultAction::OversizedBody(DEFAULT_OVERSIZED_BYTES))
    }

    /// The (real, processed) answer padded to at least `bytes` of valid JSON.
    #[must_use]
    pub fn oversized_body_of(self, bytes: usize) -> Self {
        self.action(FaultAction::OversizedBody(bytes))
    }

    /// The (real, processed) answer with another `Content-Type` (e.g. `text/plain`).
    #[must_use]
    pub fn content_type(self, content_type: &str) -> Self {
        self.action(FaultAction::ContentType(content_type.to_owned()))
    }

    /// The (real, processed) answer with `field` set to `value`.
    #[must_use]
    pub fn answer_field(self, field: &str, value: &serde_json::Value) -> Self {
        self.action(FaultAction::SetField {
            field: field.to_owned(),
            json: Some(value.to_string()),
        })
    }

    /// The (real, processed) answer without `field`.
    #[must_use]
    pub fn omit_field(self, field: &str) -> Self {
        self.action(FaultAction::SetField {
            field: field.to_owned(),
            json: None,
        })
    }

    /// For [`Endpoint::Generate`]: the rotation happens as usual (the old token is revoked and
    /// the new one lives its real `token_ttl`), but the answer reports this
    /// `access_token_expire_in` (huge, zero, negative, `null`, a float, a string...).
    #[must_use]
    pub fn access_token_expire_in(self, value: &serde_json::Value) -> Self {
        self.answer_field("access_token_expire_in", value)
    }

    /// For the token endpoints ([`Endpoint::OperatorClientToken`],
    /// [`Endpoint::AdminClientToken`]): the token is issued as usual, but TokenInfo reports this
    /// `expires_in`.
    #[must_use]
    pub fn expires_in(self, value: &serde_json::Value) -> Self {
        self.answer_field("expires_in", value)
    }

    #[must_use]
    pub fn action(mut self, action: FaultAction) -> Self {
        self.action = action;
        self
    }

    fn matches(&self, endpoint: Endpoint, directory_id: Option<&str>) -> bool {
        self.times > 0
            && self.endpoint == endpoint
            && self
                .directory_id
                .as_deref()
                .is_none_or(|wanted| Some(wanted) == directory_id)
    }
}

/// A fault as it applies to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppliedFault {
    pub delay: Duration,
    pub action: FaultAction,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct FaultQueue {
    faults: VecDeque<Fault>,
}

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.faults.push_back(fault);
        }
    }

    /// Consumes one use of the oldest fault matching the request.
    pub(crate) fn take(
        &mut self,
        endpoint: Endpoint,
        directory_id: Option<&str>,
    ) -> Option<AppliedFault> {
        let position = self
            .faults
            .iter()
            .position(|fault| fault.matches(endpoint, directory_id))?;
        let fault = &mut self.faults[position];
        fault.times -= 1;
        let applied = AppliedFault {
            delay: fault.delay,
            action: fault.action.clone(),
            headers: fault.headers.clone(),
        };
        if fault.times == 0 {
            self.faults.remove(position);
        }
        Some(applied)
    }

    pub(crate) fn pending(&self) -> usize {
        self.faults.iter().map(|fault| fault.times).sum()
    }

    pub(crate) fn clear(&mut self) {
        self.faults.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_applies_to_the_next_n_matching_requests_then_disappears() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::on(Endpoint::Generate).times(2).status(500));
        assert!(queue.take(Endpoint::Login, None).is_none());
        let applied = queue.take(Endpoint::Generate, Some("a")).expect("first");
        assert_eq!(
            applied.action,
            FaultAction::Respond {
                status: 500,
                body: FaultBody::Empty
            }
        );
        assert!(queue.take(Endpoint::Generate, Some("b")).is_some());
        assert!(queue.take(Endpoint::Generate, Some("a")).is_none());
        assert_eq!(queue.pending(), 0);
    }

    #[test]
    fn a_directory_fault_skips_other_directories_and_faults_keep_their_order() {
        let mut queue = FaultQueue::default();
        queue.push(
            Fault::on(Endpoint::Generate)
                .for_directory("a")
                .drop_connection(),
        );
        queue.push(Fault::on(Endpoint::Generate).status(503));
        let for_b = queue
            .take(Endpoint::Generate, Some("b"))
            .expect("general fault");
        assert!(matches!(
            for_b.action,
            FaultAction::Respond { status: 503, .. }
        ));
        assert!(queue.take(Endpoint::Generate, Some("b")).is_none());
        let for_a = queue
            .take(Endpoint::Generate, Some("a"))
            .expect("directory fault");
        assert_eq!(for_a.action, FaultAction::DropConnection);
    }

    #[test]
    fn vapi_error_faults_use_vcenter_status_mapping() {
        let fault = Fault::on(Endpoint::Login).vapi_error("SERVICE_UNAVAILABLE", "down");
        assert!(matches!(
            fault.action,
            FaultAction::Respond { status: 503, .. }
        ));
    }

    #[test]
    fn a_fault_used_zero_times_is_ignored() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::on(Endpoint::Login).times(0).status(500));
        assert!(queue.take(Endpoint::Login, None).is_none());
    }
}
