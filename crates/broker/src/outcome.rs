//! Which API a request went to and how it ended, for metrics.

use std::fmt;
use std::time::Duration;

/// One broker or vCenter API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /api/session` (log in).
    Session,
    /// `DELETE /api/session` (log out).
    SessionDelete,
    /// `GET /api/vcenter/identity/broker/tenants/...` (operator or admin client token).
    BrokerToken,
    /// `POST .../sync-client?action=generate_credentials`.
    GenerateCredentials,
    /// `GET .../sync-client`.
    ReadSyncClient,
    /// `GET /usergroup/t/{tenant}/scim/v2/Users?count=1` with an issued token.
    ProbeToken,
}

impl Endpoint {
    /// Stable snake_case label (metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::SessionDelete => "session_delete",
            Self::BrokerToken => "broker_token",
            Self::GenerateCredentials => "generate_credentials",
            Self::ReadSyncClient => "read_sync_client",
            Self::ProbeToken => "probe_token",
        }
    }

    /// The step as a person would name it; starts every error message.
    pub fn step(self) -> &'static str {
        match self {
            Self::Session => "log in to vCenter",
            Self::SessionDelete => "log out of vCenter",
            Self::BrokerToken => "get broker token",
            Self::GenerateCredentials => "generate credentials",
            Self::ReadSyncClient => "read sync-client configuration",
            Self::ProbeToken => "probe access token",
        }
    }

    /// Who answers this endpoint, for messages ("vCenter answered 503 ...").
    pub(crate) fn server_name(self) -> &'static str {
        match self {
            Self::Session | Self::SessionDelete | Self::BrokerToken => "vCenter",
            Self::GenerateCredentials | Self::ReadSyncClient | Self::ProbeToken => "broker",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one HTTP request ended with; handed to the configured observer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestOutcome {
    pub endpoint: Endpoint,
    /// HTTP status, `None` when no answer was read (network error, timeout).
    pub status: Option<u16>,
    /// `"success"` or the [`ErrorKind`](crate::ErrorKind) label of the error this answer produced.
    pub result: &'static str,
    /// Time from sending the request to reading the whole answer (or failing).
    pub elapsed: Duration,
}
