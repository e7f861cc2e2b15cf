//! Configuration of one simulator instance.

use std::time::Duration;

/// Which secret values `GET …/synchronization/secrets` hides behind `"*"`.
///
/// ENTRA_API.md infers that values come back masked without saying which; clients must never
/// compare a token by reading it back, so the default masks every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretMasking {
    /// Every value is `"*"`.
    #[default]
    All,
    /// Only credential keys (`SecretToken`, `Password`, `ClientSecret`, …) are `"*"`;
    /// `BaseAddress` and other settings come back as stored.
    CredentialsOnly,
}

/// How Graph error bodies spell the inner error object (both are seen in the wild).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InnerErrorSpelling {
    /// `"innerError"`.
    #[default]
    CamelCase,
    /// `"innererror"`.
    Lowercase,
}

/// Everything that shapes one simulator. `Default` gives one tenant on an ephemeral HTTPS port.
#[derive(Debug, Clone)]
pub struct EntraSimConfig {
    /// The tenant (directory) id served under `/{tenant}/oauth2/v2.0/token`.
    pub tenant_id: String,
    /// Port on 127.0.0.1; 0 picks an ephemeral one.
    pub port: u16,
    /// `expires_in` of issued access tokens, and their real lifetime.
    pub access_token_lifetime: Duration,
    /// CA certificates (PEM, several per string allowed) trusted when the simulator calls a SCIM
    /// endpoint for `validateCredentials` or a provisioning cycle: the broker simulator's CA.
    pub scim_trusted_ca_pems: Vec<String>,
    /// How long one SCIM call may take before it counts as unreachable.
    pub scim_timeout: Duration,
    pub secret_masking: SecretMasking,
    pub inner_error_spelling: InnerErrorSpelling,
}

/// A fixed tenant id, so that demo output stays the same from run to run.
pub const DEFAULT_TENANT_ID: &str = "6e1d7c5b-2f4a-4b8e-9c3d-0a1b2c3d4e5f";

impl Default for EntraSimConfig {
    fn default() -> Self {
        Self {
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            port: 0,
            access_token_lifetime: Duration::from_secs(3599),
            scim_trusted_ca_pems: Vec::new(),
            scim_timeout: Duration::from_secs(10),
            secret_masking: SecretMasking::default(),
            inner_error_spelling: InnerErrorSpelling::default(),
        }
    }
}
