//! The one error type of the crate, with a short kind for retries, metrics and conditions.

use std::fmt;
use std::time::Duration;

use sync_client_http::single_line;

use crate::outcome::GraphCall;

/// Longest message kept in an error, so that "step: message" stays under 300 characters.
const MAX_MESSAGE_CHARS: usize = 250;
/// Longest error code kept (Graph codes are short identifiers).
const MAX_CODE_CHARS: usize = 80;
/// Longest request id kept (Graph request ids are GUIDs).
const MAX_REQUEST_ID_CHARS: usize = 64;

/// What kind of failure this is, which decides what the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GraphErrorKind {
    /// The login refused the application's credentials, or does not know the application or
    /// tenant (`invalid_client`, `unauthorized_client`, AADSTS7000215, 7000222, 700016, 90002,
    /// assertion or federation mismatches): only a configuration change helps.
    InvalidClient,
    /// Graph answered 401 again with a freshly fetched token.
    Unauthorized,
    /// Graph answered 403: a missing permission, or the application is not an owner of the
    /// service principal. Can be transient right after consent is granted.
    Forbidden,
    /// Graph answered 404: unknown service principal or job.
    NotFound,
    /// Graph answered 409 (transient, per Microsoft's tooling).
    Conflict,
    /// Graph or the login answered 429; see [`GraphError::retry_after`].
    Throttled,
    /// Network trouble, a timeout, 408 or a 5xx: retrying may help.
    Transient,
    /// A success answer that could not be used (not JSON, too large, an HTML page, fields missing).
    InvalidResponse,
    /// `validateCredentials` answered that Entra ID could not reach the SCIM endpoint with the
    /// saved credentials.
    ValidationFailed,
    /// The client's configuration is unusable (bad URL, unreadable key or token file), or the
    /// server refused the request as malformed (other 4xx): retrying the same request will not
    /// help.
    Configuration,
}

impl GraphErrorKind {
    /// Stable label for metrics and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidClient => "invalid_client",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Throttled => "throttled",
            Self::Transient => "transient",
            Self::InvalidResponse => "invalid_response",
            Self::ValidationFailed => "validation_failed",
            Self::Configuration => "configuration",
        }
    }

    /// Whether trying again later, unchanged, may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Forbidden
                | Self::Conflict
                | Self::Throttled
                | Self::Transient
                | Self::InvalidResponse
        )
    }

    /// The kind of an error status from Graph (not the login).
    pub(crate) fn from_status(status: u16) -> Self {
        match status {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            409 => Self::Conflict,
            429 => Self::Throttled,
            408 | 500..=599 => Self::Transient,
            // 400, the other 4xx, and redirects (never followed: a wrong base URL).
            _ => Self::Configuration,
        }
    }
}

impl fmt::Display for GraphErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed Graph operation.
///
/// `Display` is one line, at most about 300 characters: the step that failed, then why. It
/// never contains a secret the client holds or sends (client secret, assertion, access token,
/// the secret token being saved), even when a server echoes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    kind: GraphErrorKind,
    call: Option<GraphCall>,
    status: Option<u16>,
    code: Option<String>,
    aadsts: Option<u32>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    message: String,
}

impl GraphError {
    /// An error of `kind` in `call`; `message` is made single-line and bounded.
    pub(crate) fn new(kind: GraphErrorKind, call: GraphCall, message: &str) -> Self {
        Self::build(kind, Some(call), message)
    }

    /// A configuration problem found while building the client.
    pub(crate) fn configure(message: &str) -> Self {
        Self::build(GraphErrorKind::Configuration, None, message)
    }

    fn build(kind: GraphErrorKind, call: Option<GraphCall>, message: &str) -> Self {
        Self {
            kind,
            call,
            status: None,
            code: None,
            aadsts: None,
            request_id: None,
            retry_after: None,
            message: single_line(message, MAX_MESSAGE_CHARS),
        }
    }

    pub(crate) fn with_status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn with_code(mut self, code: Option<&str>) -> Self {
        self.code = code
            .map(|code| single_line(code, MAX_CODE_CHARS))
            .filter(|code| !code.is_empty());
        self
    }

    pub(crate) fn with_aadsts(mut self, aadsts: Option<u32>) -> Self {
        self.aadsts = aadsts;
        self
    }

    pub(crate) fn with_request_id(mut self, request_id: Option<&str>) -> Self {
        self.request_id = request_id
            .map(|id| single_line(id, MAX_REQUEST_ID_CHARS))
            .filter(|id| !id.is_empty());
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn kind(&self) -> GraphErrorKind {
        self.kind
    }

    /// The HTTP status of the answer that caused the error, if one was read.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The error code of the answer: Graph's `error.code` (e.g. `Authorization_RequestDenied`)
    /// or the login's OAuth `error` (e.g. `invalid_client`).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The login's AADSTS error number (`error_codes`, or the `AADSTS…` prefix of the
    /// description), e.g. 7000215 for a wrong client secret.
    pub fn aadsts(&self) -> Option<u32> {
        self.aadsts
    }

    /// Graph's `innerError.request-id` or the login's `trace_id`, for a support request.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// How long to wait before trying again, when the server said so: the `Retry-After` of a
    /// 429 or 503 answer (delta-seconds or HTTP date, bounded to 1 s ..= 1 h). `None` when the
    /// server did not say: the caller backs off on its own.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The call that failed; `None` for configuration errors from
    /// [`GraphClient::new`](crate::GraphClient::new).
    pub fn call(&self) -> Option<GraphCall> {
        self.call
    }

    /// The message without the step prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self
            .call
            .map_or("configure Microsoft Graph client", GraphCall::step);
        write!(f, "{step}: {}", self.message)
    }
}

impl std::error::Error for GraphError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_statuses_map_to_kinds() {
        let cases = [
            (400, GraphErrorKind::Configuration),
            (401, GraphErrorKind::Unauthorized),
            (403, GraphErrorKind::Forbidden),
            (404, GraphErrorKind::NotFound),
            (409, GraphErrorKind::Conflict),
            (429, GraphErrorKind::Throttled),
            (408, GraphErrorKind::Transient),
            (500, GraphErrorKind::Transient),
            (503, GraphErrorKind::Transient),
            (504, GraphErrorKind::Transient),
            (302, GraphErrorKind::Configuration),
            (422, GraphErrorKind::Configuration),
        ];
        for (status, kind) in cases {
            assert_eq!(GraphErrorKind::from_status(status), kind, "status {status}");
        }
    }

    #[test]
    fn display_is_one_bounded_line_naming_the_step() {
        let long = format!("first\nsecond\r\t{}", "x".repeat(1000));
        let error = GraphError::new(GraphErrorKind::Transient, GraphCall::GetJob, &long)
            .with_code(Some("code\nwith newline"));
        let text = error.to_string();
        assert!(
            text.starts_with("read provisioning job: first second"),
            "{text}"
        );
        assert!(!text.contains('\n') && !text.contains('\r') && !text.contains('\t'));
        assert!(
            text.chars().count() <= 300,
            "{} chars",
            text.chars().count()
        );
        assert_eq!(error.code(), Some("code with newline"));
        let error = GraphError::configure("bad");
        assert_eq!(error.to_string(), "configure Microsoft Graph client: bad");
        assert_eq!(error.call(), None);
    }
}
