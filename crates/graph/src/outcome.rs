//! Which request a call made and how it ended, for metrics.

use std::fmt;
use std::time::Duration;

/// One kind of HTTP request the client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GraphCall {
    /// `POST {login}/{tenant}/oauth2/v2.0/token` (app-only access token).
    Token,
    /// `GET .../synchronization/jobs`.
    ListJobs,
    /// `GET .../synchronization/jobs/{jobId}`.
    GetJob,
    /// `PUT .../synchronization/secrets`.
    PutSecrets,
    /// `POST .../synchronization/jobs/{jobId}/validateCredentials`.
    ValidateCredentials,
    /// `POST .../synchronization/jobs/{jobId}/restart`.
    RestartJob,
}

impl GraphCall {
    /// Stable snake_case label (metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::ListJobs => "list_jobs",
            Self::GetJob => "get_job",
            Self::PutSecrets => "put_secrets",
            Self::ValidateCredentials => "validate_credentials",
            Self::RestartJob => "restart_job",
        }
    }

    /// The step as a person would name it; starts every error message of this call.
    pub fn step(self) -> &'static str {
        match self {
            Self::Token => "get Microsoft Graph token",
            Self::ListJobs => "list provisioning jobs",
            Self::GetJob => "read provisioning job",
            Self::PutSecrets => "save provisioning secret token",
            Self::ValidateCredentials => "validate provisioning credentials",
            Self::RestartJob => "restart quarantined provisioning job",
        }
    }

    /// Who answers this call, for messages ("Microsoft Graph answered 403 ...").
    pub(crate) fn server_name(self) -> &'static str {
        match self {
            Self::Token => "Microsoft Entra login",
            _ => "Microsoft Graph",
        }
    }
}

impl fmt::Display for GraphCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one HTTP request ended with; handed to the configured observer once per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphRequestOutcome {
    pub call: GraphCall,
    /// HTTP status, `None` when no answer was read (network error, timeout).
    pub status: Option<u16>,
    /// `"success"` or the [`GraphErrorKind`](crate::GraphErrorKind) label of the error this
    /// answer produced.
    pub result: &'static str,
    /// Time from sending the request to reading the whole answer (or failing).
    pub duration: Duration,
}
