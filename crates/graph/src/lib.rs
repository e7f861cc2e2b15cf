//! Client for Microsoft Graph's synchronization API: it delivers a rotated SCIM token to a
//! Microsoft Entra ID provisioning job (`ENTRA_API.md` in the project's shared docs).
//!
//! The client gets an app-only token from the Entra login (client secret, certificate
//! assertion signed with PS256, or a federated ServiceAccount token read from its file at every
//! request), caches it until shortly before it expires, and shares one token request among
//! concurrent callers. With it, it lists and reads provisioning jobs, saves `BaseAddress` and
//! `SecretToken` (`PUT /secrets`), asks Entra ID to validate the saved credentials against the
//! SCIM endpoint, and restarts a quarantined job with the `QuarantineState` reset scope (the
//! only one it can send). A 401 from Graph drops the token, fetches a new one and retries once.
//!
//! The crate knows nothing of Kubernetes. Errors ([`GraphError`]) carry a short
//! [`GraphErrorKind`] for retries, metrics and conditions, the status, Graph's error code, the
//! AADSTS number of login errors and the `Retry-After` of throttled answers, and a bounded,
//! single-line message that names the failed step and never holds a secret the client holds or
//! sends, even one a server echoes. `Debug` of the client, its configuration and credentials
//! never prints a secret.
//!
//! TLS is rustls with the `ring` provider; only `https://` endpoints are accepted; redirects are
//! not followed; every request has a timeout; answers are read up to
//! [`sync_client_http::MAX_BODY_BYTES`]; ids are percent-encoded into paths. Job answers are
//! parsed leniently ([`SynchronizationJob`]).

#![warn(clippy::unwrap_used, clippy::expect_used)]

mod assertion;
mod client;
mod config;
mod error;
mod jobs;
mod outcome;
#[cfg(test)]
mod proptests;
mod token;
mod wire;

pub use client::GraphClient;
pub use config::{
    ClientCredential, Cloud, DEFAULT_REQUEST_TIMEOUT, DEFAULT_TOKEN_REFRESH_MARGIN, Endpoints,
    GraphConfig, GraphObserver,
};
pub use error::{GraphError, GraphErrorKind};
pub use jobs::{
    Execution, ExecutionError, JobStatus, JobStatusCode, Quarantine, SynchronizationJob,
};
pub use outcome::{GraphCall, GraphRequestOutcome};
pub use sync_client_http::{SecretString, TlsConfig};
pub use token::MAX_TOKEN_LIFETIME;
