//! The one error type of the crate, with a short kind for retries, metrics and events.

use std::fmt;
use std::time::Duration;

use sync_client_http::single_line;

use crate::outcome::Endpoint;

/// Longest message kept in an error, so that "step: message" stays well under 300 characters.
const MAX_MESSAGE_CHARS: usize = 250;
const MAX_ERROR_TYPE_CHARS: usize = 64;

/// What kind of failure this is, which decides whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request or configuration is wrong (400, other 4xx, bad TLS or URL settings).
    Spec,
    /// Credentials were rejected (401).
    Auth,
    /// The credentials lack a privilege (403).
    Permission,
    /// The tenant, client or directory does not exist (404).
    NotFound,
    /// The broker holds more than one sync-client configuration (409).
    Conflict,
    /// Network trouble, timeouts, 5xx, 408, 429 or a malformed answer: retrying may help.
    Transient,
    /// The caller's [`RevokeGuard`](crate::RevokeGuard) refused a generate request before it was
    /// sent: nothing was revoked.
    GuardRefused,
}

impl ErrorKind {
    /// Stable label for metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Auth => "auth",
            Self::Permission => "permission",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Transient => "transient",
            Self::GuardRefused => "guard_refused",
        }
    }

    /// The kind of an HTTP error status.
    pub(crate) fn from_status(status: u16) -> Self {
        match status {
            401 => Self::Auth,
            403 => Self::Permission,
            404 => Self::NotFound,
            409 => Self::Conflict,
            408 | 429 | 500..=599 => Self::Transient,
            // 400, the other 4xx, and redirects (which the client never follows: a wrong base URL).
            _ => Self::Spec,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The step that failed: building the client, or a call to one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Configure,
    Call(Endpoint),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Configure => f.write_str("configure broker client"),
            Self::Call(endpoint) => f.write_str(endpoint.step()),
        }
    }
}

/// A failed broker operation.
///
/// `Display` is one line, at most about 300 characters, names the step that failed and never
/// contains credentials or raw response bodies beyond a short sanitized excerpt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct BrokerError {
    kind: ErrorKind,
    step: Step,
    status: Option<u16>,
    error_type: Option<String>,
    message: String,
    outcome_unknown: bool,
    retry_after: Option<Duration>,
}

impl BrokerError {
    /// An error of `kind` in `endpoint`; `message` is made single-line and bounded.
    pub(crate) fn call(kind: ErrorKind, endpoint: Endpoint, message: &str) -> Self {
        Self::build(kind, Step::Call(endpoint), message)
    }

    /// A configuration problem found while building the client.
    pub(crate) fn configure(message: &str) -> Self {
        Self::build(ErrorKind::Spec, Step::Configure, message)
    }

    fn build(kind: ErrorKind, step: Step, message: &str) -> Self {
        Self {
            kind,
            step,
            status: None,
            error_type: None,
            message: single_line(message, MAX_MESSAGE_CHARS),
            outcome_unknown: false,
            retry_after: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_error_type(mut self, error_type: Option<&str>) -> Self {
        self.error_type = error_type
            .map(|value| single_line(value, MAX_ERROR_TYPE_CHARS))
            .filter(|value| !value.is_empty());
        self
    }

    pub(crate) fn with_outcome_unknown(mut self, unknown: bool) -> Self {
        self.outcome_unknown = unknown;
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status of the answer that caused the error, if one was read.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The vAPI `error_type` of the answer (e.g. `UNAUTHENTICATED`), if it had one.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type.as_deref()
    }

    /// True when a generate request may have reached the broker but its answer was lost or
    /// unreadable: the broker may have rotated, so the stored credential may already be revoked.
    pub fn outcome_unknown(&self) -> bool {
        self.outcome_unknown
    }

    /// The endpoint whose call failed; `None` for configuration errors from
    /// [`BrokerClient::new`](crate::BrokerClient::new).
    pub fn endpoint(&self) -> Option<Endpoint> {
        match self.step {
            Step::Configure => None,
            Step::Call(endpoint) => Some(endpoint),
        }
    }

    /// How long to wait before trying again, when the other side said so or the client knows:
    /// the `Retry-After` of a 429 or 503 answer (delta-seconds or HTTP date, bounded to
    /// 1 s ..= 1 h), or, for a vCenter login refused with 401, the time left of the login
    /// cool-down (see [`BrokerConfig::login_cooldown`](crate::BrokerConfig::login_cooldown)).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The message without the step prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_kinds() {
        let cases = [
            (400, ErrorKind::Spec),
            (401, ErrorKind::Auth),
            (403, ErrorKind::Permission),
            (404, ErrorKind::NotFound),
            (409, ErrorKind::Conflict),
            (408, ErrorKind::Transient),
            (429, ErrorKind::Transient),
            (500, ErrorKind::Transient),
            (503, ErrorKind::Transient),
            (504, ErrorKind::Transient),
            (405, ErrorKind::Spec),
            (422, ErrorKind::Spec),
            (302, ErrorKind::Spec),
        ];
        for (status, kind) in cases {
            assert_eq!(ErrorKind::from_status(status), kind, "status {status}");
        }
    }

    #[test]
    fn display_is_one_bounded_line() {
        let long = format!("first\nsecond\r\t{}", "x".repeat(1000));
        let error = BrokerError::call(ErrorKind::Transient, Endpoint::ReadSyncClient, &long);
        let text = error.to_string();
        assert!(text.starts_with("read sync-client configuration: first second"));
        assert!(!text.contains('\n') && !text.contains('\r') && !text.contains('\t'));
        assert!(
            text.chars().count() <= 300,
            "{} chars",
            text.chars().count()
        );
    }
}
