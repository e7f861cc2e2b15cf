//! The simulated broker's memory: sessions, broker tokens, directories and their sync clients.
//!
//! Every transition is a plain method that takes the current instant, so the rules (expiry,
//! revocation, error precedence) are tested here without HTTP or sleeping. The HTTP layer only
//! parses requests, calls these methods and renders their outcomes.

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

    // ---- setup and inspection (called by tests through `BrokerSim`) ----

    pub(crate) fn tenant(&self) -> &str {
        &self.tenant
    }

    pub(crate) fn default_token_ttl(&self) -> i32 {
        self.default_token_ttl
    }

    /// Adds or replaces a directory. A new sync client starts without any credentials.
    pub(crate) fn add_directory(&mut self, id: &str, sync_clients: SyncClients) {
        let setup = match sync_clients {
            SyncClients::None => SyncClientSetup::None,
            SyncClients::Two => SyncClientSetup::Two,
            SyncClients::One {
                generate_token,
                token_ttl,
            } => SyncClientSetup::One(Box::new(SyncClient {
                generate_token,
                token_ttl,
                client_id: format!("sync-client-{id}"),
                token: None,
                client_secret: None,
            })),
        };
        self.directories.insert(
            id.to_owned(),
            Directory {
                setup,
                access_granted: true,
                generate_count: 0,
            },
        );
    }

    pub(crate) fn directory_ids(&self) -> Vec<String> {
        self.directories.keys().cloned().collect()
    }

    pub(crate) fn set_privilege(&mut self, granted: bool) {
        self.privilege_granted = granted;
    }

    pub(crate) fn set_broker_token_expires_in(&mut self, expires_in: ExpiresIn) {
        self.broker_token_expires_in = expires_in;
    }

    /// Grants or denies the usergroup API (generate, read) for every directory.
    pub(crate) fn set_usergroup_access(&mut self, granted: bool) {
        self.usergroup_access_granted = granted;
    }

    /// Grants or denies the usergroup API for one directory. Returns false for an unknown id.
    pub(crate) fn set_directory_access(&mut self, id: &str, granted: bool) -> bool {
        match self.directories.get_mut(id) {
            Some(directory) => {
                directory.access_granted = granted;
                true
            }
            None => false,
        }
    }

    /// Sessions that would still be accepted at `now`.
    pub(crate) fn open_sessions(&self, now: Instant) -> usize {
        self.sessions
            .values()
            .filter(|session| {
                now.saturating_duration_since(session.last_used) < self.session_idle_timeout
            })
            .count()
    }

    pub(crate) fn expire_sessions(&mut self) {
        self.sessions.clear();
    }

    pub(crate) fn expire_broker_tokens(&mut self) {
        self.broker_tokens.clear();
    }

    fn sync_client(&self, directory_id: &str) -> Option<&SyncClient> {
        match &self.directories.get(directory_id)?.setup {
            SyncClientSetup::One(client) => Some(client),
            SyncClientSetup::None | SyncClientSetup::Two => None,
        }
    }

    /// Makes `token` the directory's live token for `lifetime` (or a client secret live), as a
    /// broker restored from a backup holds what it issued before; no generate is counted.
    pub(crate) fn restore(
        &mut self,
        directory_id: &str,
        credential: crate::Restored,
        now: Instant,
    ) -> bool {
        let Some(SyncClientSetup::One(client)) = self
            .directories
            .get_mut(directory_id)
            .map(|directory| &mut directory.setup)
        else {
            return false;
        };
        match credential {
            crate::Restored::AccessToken { token, lifetime } => {
                client.generate_token = true;
                client.token = Some(LiveToken {
                    value: token,
                    expires_at: now.checked_add(lifetime),
                });
                client.client_secret = None;
            }
            crate::Restored::ClientSecret {
                client_id,
                client_secret,
            } => {
                client.generate_token = false;
                client.client_id = client_id;
                client.client_secret = Some(client_secret);
                client.token = None;
            }
        }
        true
    }

    /// The directory's live sync-client token, if one was issued and has not expired.
    pub(crate) fn current_token(&self, directory_id: &str, now: Instant) -> Option<String> {
        let token = self.sync_client(directory_id)?.token.as_ref()?;
        (!is_past(token.expires_at, now)).then(|| token.value.clone())
    }

    pub(crate) fn current_client_secret(&self, directory_id: &str) -> Option<(String, String)> {
        let client = self.sync_client(directory_id)?;
        let secret = client.client_secret.clone()?;
        Some((client.client_id.clone(), secret))
    }

    pub(crate) fn generate_count(&self, directory_id: &str) -> usize {
        self.directories
            .get(directory_id)
            .map_or(0, |directory| directory.generate_count)
    }

    pub(crate) fn token_is_valid(&self, token: &str, now: Instant) -> bool {
        self.directories
            .keys()
            .any(|id| self.current_token(id, now).as_deref() == Some(token))
    }

    pub(crate) fn broker_token_is_valid(&self, token: &str, now: Instant) -> bool {
        self.broker_tokens
            .get(token)
            .is_some_and(|broker_token| !is_past(broker_token.expires_at, now))
    }

    // ---- A: sessions ----

    /// Checks Basic credentials and opens a session; `None` when they do not match.
    pub(crate) fn login(&mut self, username: &str, password: &str, now: Instant) -> Option<String> {
        if username != self.username || password != self.password {
            return None;
        }
        let id = tokens::session_id();
        self.sessions.insert(id.clone(), Session { last_used: now });
        Some(id)
    }

    /// Validates a session and refreshes its idle timer.
    pub(crate) fn use_session(
        &mut self,
        session_id: Option<&str>,
        now: Instant,
    ) -> Result<(), SessionError> {
        let id = session_id.ok_or(SessionError::Unauthenticated)?;
        let session = self
            .sessions
            .get_mut(id)
            .ok_or(SessionError::Unauthenticated)?;
        if now.saturating_duration_since(session.last_used) >= self.session_idle_timeout {
            self.sessions.remove(id);
            return Err(SessionError::Unauthenticated);
        }
        session.last_used = now;
        Ok(())
    }

    pub(crate) fn logout(
        &mut self,
        session_id: Option<&str>,
        now: Instant,
    ) -> Result<(), SessionError> {
        self.use_session(session_id, now)?;
        if let Some(id) = session_id {
            self.sessions.remove(id);
        }
        Ok(())
    }

    // ---- B: broker tokens ----

    /// Issues a new broker token; earlier ones stay valid until they expire.
    pub(crate) fn issue_broker_token(
        &mut self,
        session_id: Option<&str>,
        client: BrokerClient,
        now: Instant,
    ) -> Result<IssuedBrokerToken, BrokerTokenError> {
        self.use_session(session_id, now)
            .map_err(|SessionError::Unauthenticated| BrokerTokenError::Unauthenticated)?;
        if !self.privilege_granted {
            return Err(BrokerTokenError::Unauthorized);
        }
        if let BrokerClient::AdminClient { tenant } = &client
            && *tenant != self.tenant
        {
            return Err(BrokerTokenError::UnknownTenant);
        }
        let lifetime = match self.broker_token_expires_in {
            ExpiresIn::Seconds(seconds) => Duration::from_secs(seconds),
            ExpiresIn::Missing | ExpiresIn::Null => self.unreported_broker_token_lifetime,
        };
        let subject = match &client {
            BrokerClient::OperatorClient => "operator-client".to_owned(),
            BrokerClient::AdminClient { tenant } => format!("{tenant}-admin-client"),
        };
        let access_token = tokens::jwt(&subject, Some(lifetime.as_secs()));
        self.broker_tokens
            .retain(|_, token| !is_past(token.expires_at, now));
        self.broker_tokens.insert(
            access_token.clone(),
            BrokerToken {
                client,
                expires_at: now.checked_add(lifetime),
            },
        );
        Ok(IssuedBrokerToken {
            access_token,
            expires_in: self.broker_token_expires_in,
        })
    }

    // ---- C, D: the usergroup API ----

    /// Checks the bearer token of a usergroup request for `tenant`. Runs before any parameter
    /// check, so a bad token is a 401 whatever else is wrong.
    pub(crate) fn authorize_usergroup(
        &mut self,
        bearer: Option<&str>,
        tenant: &str,
        now: Instant,
    ) -> Result<(), UsergroupError> {
        let token = bearer.ok_or(UsergroupError::Unauthorized)?;
        let broker_token = self
            .broker_tokens
            .get(token)
            .ok_or(UsergroupError::Unauthorized)?;
        if is_past(broker_token.expires_at, now) {
            self.broker_tokens.remove(token);
            return Err(UsergroupError::Unauthorized);
        }
        let accepted = match (&broker_token.client, self.accepted_broker_tokens) {
            (BrokerClient::OperatorClient, AcceptedBrokerTokens::AdminClientOnly)
            | (BrokerClient::AdminClient { .. }, AcceptedBrokerTokens::OperatorClientOnly) => false,
            // A tenant admin token only opens its own tenant.
            (BrokerClient::AdminClient { tenant: issued_for }, _) => issued_for == tenant,
            (BrokerClient::OperatorClient, _) => true,
        };
        if accepted {
            Ok(())
        } else {
            Err(UsergroupError::Unauthorized)
        }
    }

    /// Finds the one sync client of a directory, applying the documented error precedence.
    fn sync_client_for_usergroup(
        &mut self,
        tenant: &str,
        directory_id: &str,
    ) -> Result<&mut Directory, UsergroupError> {
        if tenant != self.tenant {
            return Err(UsergroupError::NotFound);
        }
        if !self.usergroup_access_granted {
            return Err(UsergroupError::Forbidden);
        }
        let directory = self
            .directories
            .get_mut(directory_id)
            .ok_or(UsergroupError::NotFound)?;
        if !directory.access_granted {
            return Err(UsergroupError::Forbidden);
        }
        match directory.setup {
            SyncClientSetup::None => Err(UsergroupError::NotFound),
            SyncClientSetup::Two => Err(UsergroupError::Conflict),
            SyncClientSetup::One(_) => Ok(directory),
        }
    }

    /// Rotates a sync client's credentials: saves the requested settings, revokes the previous
    /// token and secret at once, and issues a fresh token or secret.
    pub(crate) fn generate_credentials(
        &mut self,
        tenant: &str,
        directory_id: &str,
        request: GenerateRequest,
        now: Instant,
    ) -> Result<SyncClientView, UsergroupError> {
        if request.token_ttl.is_some_and(|ttl| ttl <= 0) {
            return Err(UsergroupError::InvalidParameters);
        }
        let ttl_unit = self.ttl_unit;
        let directory = self.sync_client_for_usergroup(tenant, directory_id)?;
        let SyncClientSetup::One(client) = &mut directory.setup else {
            return Err(UsergroupError::NotFound);
        };
        let view = client.rotate(request, ttl_unit, now);
        directory.generate_count += 1;
        Ok(view)
    }

    /// An administrator's rotation in the vSphere Client: no token, no access check, saved
    /// settings. Returns the new access token or client secret.
    pub(crate) fn generate_out_of_band(
        &mut self,
        directory_id: &str,
        now: Instant,
    ) -> Option<String> {
        let ttl_unit = self.ttl_unit;
        let directory = self.directories.get_mut(directory_id)?;
        let SyncClientSetup::One(client) = &mut directory.setup else {
            return None;
        };
        let view = client.rotate(GenerateRequest::default(), ttl_unit, now);
        directory.generate_count += 1;
        view.access_token.or(view.client_secret)
    }

    /// The saved configuration without credentials; `access_token_expire_in` tells how long
    /// the current token has left (0 once expired), absent when no token was ever issued.
    pub(crate) fn read_sync_client(
        &mut self,
        tenant: &str,
        directory_id: &str,
        now: Instant,
    ) -> Result<SyncClientView, UsergroupError> {
        let directory = self.sync_client_for_usergroup(tenant, directory_id)?;
        let SyncClientSetup::One(client) = &directory.setup else {
            return Err(UsergroupError::NotFound);
        };
        Ok(SyncClientView {
            generate_token: client.generate_token,
            client_id: client.client_id.clone(),
            client_secret: None,
            access_token: None,
            access_token_expire_in: client
                .token
                .as_ref()
                .map(|token| remaining_seconds(token.expires_at, now)),
            token_ttl: client.token_ttl,
        })
    }

    // ---- E: SCIM probe ----

    pub(crate) fn probe(
        &self,
        token: Option<&str>,
        tenant: &str,
        now: Instant,
    ) -> Result<(), ProbeError> {
        if tenant != self.tenant {
            return Err(ProbeError::UnknownTenant);
        }
        match token {
            Some(token) if self.token_is_valid(token, now) => Ok(()),
            _ => Err(ProbeError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECTORY: &str = "3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c";

    fn state_with(config: &BrokerSimConfig) -> SimState {
        let mut state = SimState::new(config);
        state.add_directory(
            DIRECTORY,
            SyncClients::One {
                generate_token: true,
                token_ttl: 10,
            },
        );
        state
    }

    fn fast_state() -> SimState {
        state_with(&BrokerSimConfig {
            ttl_unit: Duration::from_secs(1),
            ..BrokerSimConfig::default()
        })
    }

    fn broker_token(state: &mut SimState, now: Instant) -> String {
        let session = state
            .login("administrator@vsphere.local", "broker-sim-Passw0rd!", now)
            .expect("default credentials log in");
        state
            .issue_broker_token(Some(&session), BrokerClient::OperatorClient, now)
            .expect("token issued")
            .access_token
    }

    fn generate(state: &mut SimState, request: GenerateRequest, now: Instant) -> SyncClientView {
        state
            .generate_credentials("CUSTOMER", DIRECTORY, request, now)
            .expect("generate succeeds")
    }

    #[test]
    fn login_rejects_a_wrong_password() {
        let mut state = fast_state();
        assert!(
            state
                .login("administrator@vsphere.local", "wrong", Instant::now())
                .is_none()
        );
    }

    #[test]
    fn sessions_expire_after_being_idle_and_use_refreshes_them() {
        let mut state = state_with(&BrokerSimConfig {
            session_idle_timeout: Duration::from_secs(10),
            ..BrokerSimConfig::default()
        });
        let start = Instant::now();
        let session = state
            .login("administrator@vsphere.local", "broker-sim-Passw0rd!", start)
            .expect("logged in");
        let later = start + Duration::from_secs(8);
        assert_eq!(state.use_session(Some(&session), later), Ok(()));
        assert_eq!(
            state.use_session(Some(&session), later + Duration::from_secs(9)),
            Ok(())
        );
        assert_eq!(
            state.use_session(Some(&session), later + Duration::from_secs(30)),
            Err(SessionError::Unauthenticated)
        );
    }

    #[test]
    fn broker_token_needs_the_privilege_and_a_known_tenant() {
        let mut state = fast_state();
        let now = Instant::now();
        let session = state
            .login("administrator@vsphere.local", "broker-sim-Passw0rd!", now)
            .expect("logged in");
        let unknown = BrokerClient::AdminClient {
            tenant: "customer".to_owned(),
        };
        assert_eq!(
            state
                .issue_broker_token(Some(&session), unknown, now)
                .map(|_| ())
                .unwrap_err(),
            BrokerTokenError::UnknownTenant
        );
        state.set_privilege(false);
        assert_eq!(
            state
                .issue_broker_token(Some(&session), BrokerClient::OperatorClient, now)
                .map(|_| ())
                .unwrap_err(),
            BrokerTokenError::Unauthorized
        );
        assert_eq!(
            state
                .issue_broker_token(None, BrokerClient::OperatorClient, now)
                .map(|_| ())
                .unwrap_err(),
            BrokerTokenError::Unauthenticated
        );
    }

    #[test]
    fn broker_tokens_expire_after_expires_in_seconds() {
        let mut state = state_with(&BrokerSimConfig {
            broker_token_expires_in: ExpiresIn::Seconds(5),
            ..BrokerSimConfig::default()
        });
        let now = Instant::now();
        let token = broker_token(&mut state, now);
        assert_eq!(
            state.authorize_usergroup(Some(&token), "CUSTOMER", now + Duration::from_secs(4)),
            Ok(())
        );
        assert_eq!(
            state.authorize_usergroup(Some(&token), "CUSTOMER", now + Duration::from_secs(5)),
            Err(UsergroupError::Unauthorized)
        );
    }

    #[test]
    fn admin_client_token_opens_only_its_own_tenant() {
        let mut state = fast_state();
        let now = Instant::now();
        let session = state
            .login("administrator@vsphere.local", "broker-sim-Passw0rd!", now)
            .expect("logged in");
        let admin = BrokerClient::AdminClient {
            tenant: "CUSTOMER".to_owned(),
        };
        let token = state
            .issue_broker_token(Some(&session), admin, now)
            .expect("issued")
            .access_token;
        assert_eq!(
            state.authorize_usergroup(Some(&token), "CUSTOMER", now),
            Ok(())
        );
        assert_eq!(
            state.authorize_usergroup(Some(&token), "OTHER", now),
            Err(UsergroupError::Unauthorized)
        );
    }

    #[test]
    fn operator_token_is_refused_when_only_admin_tokens_are_accepted() {
        let mut state = state_with(&BrokerSimConfig {
            accepted_broker_tokens: AcceptedBrokerTokens::AdminClientOnly,
            ..BrokerSimConfig::default()
        });
        let now = Instant::now();
        let token = broker_token(&mut state, now);
        assert_eq!(
            state.authorize_usergroup(Some(&token), "CUSTOMER", now),
            Err(UsergroupError::Unauthorized)
        );
    }

    #[test]
    fn every_generate_revokes_the_previous_token_at_once() {
        let mut state = fast_state();
        let now = Instant::now();
        let first = generate(&mut state, GenerateRequest::default(), now)
            .access_token
            .expect("token mode");
        assert!(state.token_is_valid(&first, now));
        let second = generate(&mut state, GenerateRequest::default(), now)
            .access_token
            .expect("token mode");
        assert_ne!(first, second);
        assert!(!state.token_is_valid(&first, now));
        assert!(state.token_is_valid(&second, now));
        assert_eq!(state.generate_count(DIRECTORY), 2);
    }

    #[test]
    fn generated_token_lives_token_ttl_times_the_ttl_unit() {
        let mut state = fast_state();
        let now = Instant::now();
        let view = generate(
            &mut state,
            GenerateRequest {
                generate_token: None,
                token_ttl: Some(3),
            },
            now,
        );
        assert_eq!(view.access_token_expire_in, Some(3));
        assert_eq!(view.token_ttl, 3);
        let token = view.access_token.expect("token mode");
        assert!(state.token_is_valid(&token, now + Duration::from_millis(2_900)));
        assert!(!state.token_is_valid(&token, now + Duration::from_secs(3)));
        assert_eq!(
            state.current_token(DIRECTORY, now + Duration::from_secs(3)),
            None
        );
    }

    #[test]
    fn omitted_settings_reuse_the_saved_ones() {
        let mut state = fast_state();
        let now = Instant::now();
        generate(
            &mut state,
            GenerateRequest {
                generate_token: Some(false),
                token_ttl: Some(7),
            },
            now,
        );
        let view = generate(&mut state, GenerateRequest::default(), now);
        assert!(!view.generate_token);
        assert_eq!(view.token_ttl, 7);
        assert!(view.client_secret.is_some());
        assert!(view.access_token.is_none());
    }

    #[test]
    fn switching_to_client_secret_revokes_the_token_and_vice_versa() {
        let mut state = fast_state();
        let now = Instant::now();
        let token = generate(&mut state, GenerateRequest::default(), now)
            .access_token
            .expect("token mode");
        let secret_mode = GenerateRequest {
            generate_token: Some(false),
            token_ttl: None,
        };
        let secret = generate(&mut state, secret_mode, now)
            .client_secret
            .expect("secret mode");
        assert!(!state.token_is_valid(&token, now));
        assert_eq!(
            state.current_client_secret(DIRECTORY),
            Some((format!("sync-client-{DIRECTORY}"), secret))
        );
        let token_mode = GenerateRequest {
            generate_token: Some(true),
            token_ttl: None,
        };
        generate(&mut state, token_mode, now);
        assert_eq!(state.current_client_secret(DIRECTORY), None);
    }

    #[test]
    fn directory_errors_follow_the_documented_statuses() {
        let mut state = fast_state();
        let now = Instant::now();
        state.add_directory("empty", SyncClients::None);
        state.add_directory("double", SyncClients::Two);
        let outcome = |state: &mut SimState, tenant: &str, id: &str| {
            state
                .generate_credentials(tenant, id, GenerateRequest::default(), now)
                .map(|_| ())
                .unwrap_err()
        };
        assert_eq!(
            outcome(&mut state, "CUSTOMER", "unknown"),
            UsergroupError::NotFound
        );
        assert_eq!(
            outcome(&mut state, "CUSTOMER", "empty"),
            UsergroupError::NotFound
        );
        assert_eq!(
            outcome(&mut state, "CUSTOMER", "double"),
            UsergroupError::Conflict
        );
        assert_eq!(
            outcome(&mut state, "OTHER", DIRECTORY),
            UsergroupError::NotFound
        );
        state.set_directory_access(DIRECTORY, false);
        assert_eq!(
            outcome(&mut state, "CUSTOMER", DIRECTORY),
            UsergroupError::Forbidden
        );
        state.set_directory_access(DIRECTORY, true);
        state.set_usergroup_access(false);
        assert_eq!(
            outcome(&mut state, "CUSTOMER", "double"),
            UsergroupError::Forbidden
        );
        assert_eq!(state.generate_count(DIRECTORY), 0);
    }

    #[test]
    fn out_of_band_generate_revokes_the_live_token_and_keeps_the_settings() {
        let mut state = fast_state();
        let now = Instant::now();
        let old = generate(&mut state, GenerateRequest::default(), now)
            .access_token
            .expect("token mode");
        let new = state
            .generate_out_of_band(DIRECTORY, now)
            .expect("one sync client");
        assert_ne!(old, new);
        assert!(!state.token_is_valid(&old, now));
        assert_eq!(state.current_token(DIRECTORY, now), Some(new));
        assert_eq!(state.generate_count(DIRECTORY), 2);
        assert_eq!(state.generate_out_of_band("unknown", now), None);
        state.add_directory("double", SyncClients::Two);
        assert_eq!(state.generate_out_of_band("double", now), None);
    }

    #[test]
    fn open_sessions_counts_live_sessions_only() {
        let mut state = state_with(&BrokerSimConfig {
            session_idle_timeout: Duration::from_secs(10),
            ..BrokerSimConfig::default()
        });
        let start = Instant::now();
        let first = state
            .login("administrator@vsphere.local", "broker-sim-Passw0rd!", start)
            .expect("logged in");
        state
            .login("administrator@vsphere.local", "broker-sim-Passw0rd!", start)
            .expect("logged in");
        assert_eq!(state.open_sessions(start), 2);
        state.logout(Some(&first), start).expect("logged out");
        assert_eq!(state.open_sessions(start), 1);
        assert_eq!(state.open_sessions(start + Duration::from_secs(10)), 0);
    }

    #[test]
    fn non_positive_token_ttl_is_an_invalid_parameter() {
        let mut state = fast_state();
        let request = GenerateRequest {
            generate_token: None,
            token_ttl: Some(0),
        };
        assert_eq!(
            state
                .generate_credentials("CUSTOMER", DIRECTORY, request, Instant::now())
                .map(|_| ())
                .unwrap_err(),
            UsergroupError::InvalidParameters
        );
    }

    #[test]
    fn read_reports_the_remaining_lifetime_without_credentials() {
        let mut state = fast_state();
        let now = Instant::now();
        let before = state
            .read_sync_client("CUSTOMER", DIRECTORY, now)
            .expect("readable");
        assert_eq!(before.access_token_expire_in, None);
        generate(&mut state, GenerateRequest::default(), now);
        let after = state
            .read_sync_client("CUSTOMER", DIRECTORY, now + Duration::from_secs(4))
            .expect("readable");
        assert_eq!(after.access_token_expire_in, Some(6));
        assert_eq!(after.access_token, None);
        assert_eq!(after.client_secret, None);
    }

    #[test]
    fn probe_accepts_only_the_live_token_of_the_tenant() {
        let mut state = fast_state();
        let now = Instant::now();
        let token = generate(&mut state, GenerateRequest::default(), now)
            .access_token
            .expect("token mode");
        assert_eq!(state.probe(Some(&token), "CUSTOMER", now), Ok(()));
        assert_eq!(
            state.probe(Some(&token), "OTHER", now),
            Err(ProbeError::UnknownTenant)
        );
        assert_eq!(
            state.probe(Some("not-a-token"), "CUSTOMER", now),
            Err(ProbeError::Unauthorized)
        );
        let broker = broker_token(&mut state, now);
        assert_eq!(
            state.probe(Some(&broker), "CUSTOMER", now),
            Err(ProbeError::Unauthorized)
        );
    }
}
