//! Client for the VMware identity broker embedded in vCenter, as used by the sync-client operator.
//!
//! It logs in to vCenter (`POST /api/session`), fetches a broker token for the operator client or a
//! tenant's admin client, and calls the broker's sync-client API: generate credentials (which
//! revokes the previous ones at once), read a sync-client configuration, and probe whether an
//! issued access token still works. Sessions and broker tokens are cached per [`BrokerClient`] and
//! refreshed single-flight, so concurrent callers share one login.
//!
//! The crate knows nothing of Kubernetes. Credentials travel as [`SecretString`], which never
//! prints its value; errors ([`BrokerError`]) carry a short [`ErrorKind`] for retries and metrics
//! and a bounded, single-line message that is safe to show in a status or an event.
//!
//! TLS uses rustls with the `ring` provider, set explicitly: a configured CA bundle is the only
//! trust anchor when given, otherwise the system trust store is used. Plain `http://` needs
//! [`BrokerConfig::allow_insecure_http`].
//!
//! The broker, and anything in front of it, is untrusted. Every answer is read within the
//! request timeout and at most [`MAX_BODY_BYTES`]; reported lifetimes arrive as
//! [`ReportedLifetime`] (saturated, never overflowing) and a broker token is cached for at most
//! [`MAX_BROKER_TOKEN_LIFETIME`]; `Retry-After` on 429/503 is bounded and exposed as
//! [`BrokerError::retry_after`]; an HTML page is never taken for an answer nor shown raw. After
//! vCenter refuses the password (401) no login is tried for [`BrokerConfig::login_cooldown`], so
//! a wrong password cannot lock the account ([`BrokerClient::login_blocked_until`]).

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod client;
mod config;
mod diagnostics;
mod error;
mod guard;
mod outcome;
#[cfg(test)]
mod proptests;
mod transport;
mod wire;

pub use client::MAX_BROKER_TOKEN_LIFETIME;
pub use client::{AuthStatus, BrokerClient};
pub use config::{
    BrokerAuth, BrokerConfig, DEFAULT_LOGIN_COOLDOWN, DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TOKEN_REFRESH_MARGIN, MAX_LOGIN_COOLDOWN, RequestObserver, TokenClient,
};
pub use error::{BrokerError, ErrorKind};
pub use guard::{MayRevoke, RevokeGuard};
pub use outcome::{Endpoint, RequestOutcome};
/// Shared with the other HTTP clients of the operator (`sync_client_http`), re-exported here
/// so that users of this crate need not name that one.
pub use sync_client_http::{MAX_BODY_BYTES, ReportedLifetime, SecretString, TlsConfig};
pub use wire::{CredentialKind, GenerateRequest, IssuedCredential, SyncClientConfig};
