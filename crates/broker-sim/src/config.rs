//! Configuration of one simulator instance.

use std::fmt;
use std::time::Duration;

/// How the vCenter token endpoints report `expires_in` in their TokenInfo body.
///
/// The vendor documents the field as "missing or null if not applicable"; the simulator can
/// produce all three shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    /// `"expires_in": N` and the broker token dies N seconds after it was issued.
    Seconds(u64),
    /// The field is left out; the token lives for [`BrokerSimConfig::unreported_broker_token_lifetime`].
    Missing,
    /// `"expires_in": null`; the token lives for [`BrokerSimConfig::unreported_broker_token_lifetime`].
    Null,
}

/// Whether a sync-client response carries the fields that do not apply to its mode
/// (`access_token` in client-secret mode, `client_secret` in token mode) as `null` or leaves
/// them out. The vendor does not say; clients must accept both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnusedFields {
    #[default]
    Absent,
    Null,
}

/// Which vCenter-issued broker tokens the usergroup API (generate, read) accepts.
///
/// BROKER_API.md infers, without proof, that `generate_credentials` needs the tenant admin-client
/// token; the operator-client token is the documented one. Default: both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptedBrokerTokens {
    #[default]
    Both,
    OperatorClientOnly,
    AdminClientOnly,
}

/// Everything that shapes one simulator. `Default` gives a vCenter-like setup on an
/// ephemeral HTTPS port.
#[derive(Clone)]
pub struct BrokerSimConfig {
    /// The tenant served under `/usergroup/t/{tenant}`; compared case-sensitively.
    pub tenant: String,
    pub username: String,
    pub password: String,
    /// Serve HTTPS with a freshly generated CA (true) or plain HTTP (false).
    pub tls: bool,
    /// Port on 127.0.0.1; 0 picks an ephemeral one.
    pub port: u16,
    /// A session dies when unused for this long.
    pub session_idle_timeout: Duration,
    /// What the token endpoints report as `expires_in` (and, for `Seconds`, the real lifetime).
    pub broker_token_expires_in: ExpiresIn,
    /// Real lifetime of broker tokens whose `expires_in` is missing or null.
    pub unreported_broker_token_lifetime: Duration,
    /// What one minute of `token_ttl` means to the simulator (60 s in production; 1 s in tests).
    pub ttl_unit: Duration,
    /// `token_ttl` of directories added with [`crate::BrokerSim::add_directory_with_defaults`],
    /// in minutes. Vendor default is about six months.
    pub default_token_ttl: i32,
    /// Whether the configured user holds `VcIdentityProviders.Manage` (otherwise B answers 403).
    pub grant_privilege: bool,
    pub accepted_broker_tokens: AcceptedBrokerTokens,
    pub unused_fields: UnusedFields,
}

impl Default for BrokerSimConfig {
    fn default() -> Self {
        Self {
            tenant: "CUSTOMER".to_owned(),
            username: "administrator@vsphere.local".to_owned(),
            password: "broker-sim-Passw0rd!".to_owned(),
            tls: true,
            port: 0,
            session_idle_timeout: Duration::from_secs(30 * 60),
            broker_token_expires_in: ExpiresIn::Seconds(3600),
            unreported_broker_token_lifetime: Duration::from_secs(3600),
            ttl_unit: Duration::from_secs(60),
            default_token_ttl: 262_800,
            grant_privilege: true,
            accepted_broker_tokens: AcceptedBrokerTokens::Both,
            unused_fields: UnusedFields::Absent,
        }
    }
}

impl fmt::Debug for BrokerSimConfig {
    // Hand-written so that the password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerSimConfig")
            .field("tenant", &self.tenant)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("tls", &self.tls)
            .field("port", &self.port)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("broker_token_expires_in", &self.broker_token_expires_in)
            .field(
                "unreported_broker_token_lifetime",
                &self.unreported_broker_token_lifetime,
            )
            .field("ttl_unit", &self.ttl_unit)
            .field("default_token_ttl", &self.default_token_ttl)
            .field("grant_privilege", &self.grant_privilege)
            .field("accepted_broker_tokens", &self.accepted_broker_tokens)
            .field("unused_fields", &self.unused_fields)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let config = BrokerSimConfig::default();
        let printed = format!("{config:?}");
        assert!(!printed.contains(&config.password));
        assert!(printed.contains("<redacted>"));
    }
}
