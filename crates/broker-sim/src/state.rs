//! The simulated broker's memory: sessions, broker tokens, directories and their sync clients.
//!
//! Every transition is a plain method that takes the current instant, so the rules (expiry,
//! revocation, error precedence) are tested here without HTTP or sleeping. The HTTP layer only
//! parses requests, calls these methods and renders their outcomes.

mod sessions;
mod setup;
mod usergroup;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::config::{AcceptedBrokerTokens, BrokerSimConfig, ExpiresIn};
use crate::tokens;

/// How many sync-client configurations a directory has. Zero and two exist to produce the
/// documented 404 and 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncClients {
    None,
    /// One sync client with its saved settings (`token_ttl` in minutes).
    One {
        generate_token: bool,
        token_ttl: i32,
    },
    Two,
}

/// Which vCenter endpoint issued a broker token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BrokerClient {
    OperatorClient,
    AdminClient { tenant: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionError {
    /// No session header, unknown id, or idle for too long.
    Unauthenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokerTokenError {
    Unauthenticated,
    /// The user lacks `VcIdentityProviders.Manage`.
    Unauthorized,
    UnknownTenant,
}

/// Failures of the usergroup API (generate, read), one per documented status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsergroupError {
    /// 400: invalid parameters.
    InvalidParameters,
    /// 401: bearer token missing, unknown, expired or not accepted here.
    Unauthorized,
    /// 403: the caller may not manage this directory's sync client.
    Forbidden,
    /// 404: unknown tenant or directory, or no sync client.
    NotFound,
    /// 409: more than one sync client for the directory.
    Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeError {
    /// The token is not the live, unexpired token of a sync client.
    Unauthorized,
    UnknownTenant,
}

/// A broker token as the TokenInfo body reports it. No `Debug`: it holds a credential.
#[derive(Clone)]
pub(crate) struct IssuedBrokerToken {
    pub access_token: String,
    pub expires_in: ExpiresIn,
}

/// What the optional generate body asks for; `None` means "reuse the saved value".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GenerateRequest {
    pub generate_token: Option<bool>,
    pub token_ttl: Option<i32>,
}

/// A sync-client configuration as generate (with fresh credentials) or read returns it.
/// No `Debug`: it holds credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SyncClientView {
    pub generate_token: bool,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub access_token: Option<String>,
    /// Whole seconds the current token has left (rounded down, as the vendor's 21599 suggests).
    pub access_token_expire_in: Option<u64>,
    pub token_ttl: i32,
}

struct Session {
    last_used: Instant,
}

struct BrokerToken {
    client: BrokerClient,
    expires_at: Option<Instant>,
}

struct LiveToken {
    value: String,
    /// `None` when the lifetime does not fit in an `Instant` (the token outlives the test).
    expires_at: Option<Instant>,
}

struct SyncClient {
    generate_token: bool,
    token_ttl: i32,
    client_id: String,
    token: Option<LiveToken>,
    client_secret: Option<String>,
}

impl SyncClient {
    /// Saves the requested settings, revokes the current token and secret, issues new ones.
    fn rotate(
        &mut self,
        request: GenerateRequest,
        ttl_unit: Duration,
        now: Instant,
    ) -> SyncClientView {
        if let Some(generate_token) = request.generate_token {
            self.generate_token = generate_token;
        }
        if let Some(token_ttl) = request.token_ttl {
            self.token_ttl = token_ttl;
        }
        self.token = None;
        self.client_secret = None;
        if self.generate_token {
            let minutes = u32::try_from(self.token_ttl.max(1)).unwrap_or(1);
            let lifetime = ttl_unit.checked_mul(minutes);
            let expires_at = lifetime.and_then(|lifetime| now.checked_add(lifetime));
            let value = tokens::jwt(&self.client_id, lifetime.map(|lifetime| lifetime.as_secs()));
            self.token = Some(LiveToken {
                value: value.clone(),
                expires_at,
            });
            SyncClientView {
                generate_token: true,
                client_id: self.client_id.clone(),
                client_secret: None,
                access_token: Some(value),
                access_token_expire_in: Some(remaining_seconds(expires_at, now)),
                token_ttl: self.token_ttl,
            }
        } else {
            let secret = tokens::client_secret();
            self.client_secret = Some(secret.clone());
            SyncClientView {
                generate_token: false,
                client_id: self.client_id.clone(),
                client_secret: Some(secret),
                access_token: None,
                access_token_expire_in: None,
                token_ttl: self.token_ttl,
            }
        }
    }
}

enum SyncClientSetup {
    None,
    One(Box<SyncClient>),
    Two,
}

struct Directory {
    setup: SyncClientSetup,
    access_granted: bool,
    generate_count: usize,
}

fn is_past(expires_at: Option<Instant>, now: Instant) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

/// What `access_token_expire_in` (an int64 on the wire) says for a token that never expires.
const NEVER_EXPIRES_SECONDS: u64 = 9_223_372_036_854_775_807;

fn remaining_seconds(expires_at: Option<Instant>, now: Instant) -> u64 {
    expires_at.map_or(NEVER_EXPIRES_SECONDS, |at| {
        at.saturating_duration_since(now).as_secs()
    })
}

pub(crate) struct SimState {
    tenant: String,
    username: String,
    password: String,
    session_idle_timeout: Duration,
    broker_token_expires_in: ExpiresIn,
    unreported_broker_token_lifetime: Duration,
    ttl_unit: Duration,
    default_token_ttl: i32,
    privilege_granted: bool,
    usergroup_access_granted: bool,
    accepted_broker_tokens: AcceptedBrokerTokens,
    sessions: HashMap<String, Session>,
    broker_tokens: HashMap<String, BrokerToken>,
    directories: BTreeMap<String, Directory>,
}

impl SimState {
    pub(crate) fn new(config: &BrokerSimConfig) -> Self {
        Self {
            tenant: config.tenant.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            session_idle_timeout: config.session_idle_timeout,
            broker_token_expires_in: config.broker_token_expires_in,
            unreported_broker_token_lifetime: config.unreported_broker_token_lifetime,
            ttl_unit: config.ttl_unit,
            default_token_ttl: config.default_token_ttl,
            privilege_granted: config.grant_privilege,
            usergroup_access_granted: true,
            accepted_broker_tokens: config.accepted_broker_tokens,
            sessions: HashMap::new(),
            broker_tokens: HashMap::new(),
            directories: BTreeMap::new(),
        }
    }
}
