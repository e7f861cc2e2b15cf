//! What the simulated tenant holds: app registrations and their grants, issued access tokens,
//! used assertion ids, and service principals with their jobs and synchronization secrets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::apps::{AppRegistration, Permission};
use crate::config::EntraSimConfig;
use crate::jobs::JobSnapshot;
use crate::secrets::SecretStore;

/// A service principal to add: its object id, owners (client ids of apps) and jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipal {
    id: String,
    owners: Vec<String>,
    jobs: Vec<(String, String)>,
}

impl ServicePrincipal {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            owners: Vec::new(),
            jobs: Vec::new(),
        }
    }

    /// Makes the app with this client id an owner.
    #[must_use]
    pub fn owned_by(mut self, client_id: &str) -> Self {
        self.owners.push(client_id.to_owned());
        self
    }

    /// Adds a job (status `Active`, schedule `Active`) made from `template_id` (such as
    /// `"scim"` or `"customappsso"`).
    #[must_use]
    pub fn with_job(mut self, job_id: &str, template_id: &str) -> Self {
        self.jobs.push((job_id.to_owned(), template_id.to_owned()));
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A service principal as the simulator holds it.
#[derive(Clone)]
pub(crate) struct Principal {
    pub owners: BTreeSet<String>,
    pub jobs: Vec<JobSnapshot>,
    pub secrets: SecretStore,
}

impl Principal {
    pub(crate) fn job_mut(&mut self, job_id: &str) -> Option<&mut JobSnapshot> {
        self.jobs.iter_mut().find(|job| job.id == job_id)
    }
}

/// Whether a bearer token is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    Live { client_id: String },
    Expired { client_id: String },
    Unknown,
}

struct IssuedToken {
    client_id: String,
    expires_at: Instant,
}

/// Everything the tenant holds. No `Debug`: it holds secrets and tokens.
pub(crate) struct SimState {
    pub tenant_id: String,
    pub token_lifetime: Duration,
    apps: BTreeMap<String, AppRegistration>,
    /// When each grant takes effect.
    grants: BTreeMap<(String, Permission), Instant>,
    pub principals: BTreeMap<String, Principal>,
    tokens: HashMap<String, IssuedToken>,
    /// `(client id, jti)` of accepted client assertions, with their `exp`.
    used_assertion_ids: HashMap<(String, String), i64>,
}

impl SimState {
    pub(crate) fn new(config: &EntraSimConfig) -> Self {
        Self {
            tenant_id: config.tenant_id.clone(),
            token_lifetime: config.access_token_lifetime,
            apps: BTreeMap::new(),
            grants: BTreeMap::new(),
            principals: BTreeMap::new(),
            tokens: HashMap::new(),
            used_assertion_ids: HashMap::new(),
        }
    }

    pub(crate) fn register_app(&mut self, app: AppRegistration) {
        self.apps.insert(app.client_id.clone(), app);
    }

    pub(crate) fn app(&self, client_id: &str) -> Option<&AppRegistration> {
        self.apps.get(client_id)
    }

    pub(crate) fn app_mut(&mut self, client_id: &str) -> Option<&mut AppRegistration> {
        self.apps.get_mut(client_id)
    }

    pub(crate) fn grant(&mut self, client_id: &str, permission: Permission, effective_at: Instant) {
        self.grants
            .insert((client_id.to_owned(), permission), effective_at);
    }

    pub(crate) fn revoke(&mut self, client_id: &str, permission: Permission) {
        self.grants.remove(&(client_id.to_owned(), permission));
    }

    /// Whether the app holds `permission` now (granted, and in effect).
    pub(crate) fn holds(&self, client_id: &str, permission: Permission, now: Instant) -> bool {
        self.grants
            .get(&(client_id.to_owned(), permission))
            .is_some_and(|effective_at| *effective_at <= now)
    }

    pub(crate) fn add_principal(&mut self, principal: ServicePrincipal) {
        let jobs = principal
            .jobs
            .iter()
            .map(|(id, template)| JobSnapshot::new(id, template))
            .collect();
        self.principals.insert(
            principal.id,
            Principal {
                owners: principal.owners.into_iter().collect(),
                jobs,
                secrets: SecretStore::default(),
            },
        );
    }

    /// Issues an opaque access token for `client_id`; returns it with its lifetime.
    pub(crate) fn issue_token(&mut self, client_id: &str, now: Instant) -> (String, Duration) {
        self.tokens.retain(|_, token| token.expires_at > now);
        let token = random_token();
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                client_id: client_id.to_owned(),
                expires_at: now + self.token_lifetime,
            },
        );
        (token, self.token_lifetime)
    }

    /// Every access token still remembered (live or expired), for tests that scan output.
    pub(crate) fn access_tokens(&self) -> Vec<String> {
        self.tokens.keys().cloned().collect()
    }

    pub(crate) fn token_status(&self, token: &str, now: Instant) -> TokenStatus {
        match self.tokens.get(token) {
            Some(issued) if issued.expires_at > now => TokenStatus::Live {
                client_id: issued.client_id.clone(),
            },
            Some(issued) => TokenStatus::Expired {
                client_id: issued.client_id.clone(),
            },
            None => TokenStatus::Unknown,
        }
    }

    /// Ends the life of every access token issued so far.
    pub(crate) fn expire_tokens(&mut self, now: Instant) {
        for token in self.tokens.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }

    /// Remembers an accepted assertion id; false when it was used before (a replay).
    pub(crate) fn use_assertion_id(
        &mut self,
        client_id: &str,
        jti: &str,
        exp: i64,
        now: i64,
    ) -> bool {
        self.used_assertion_ids.retain(|_, expiry| *expiry >= now);
        self.used_assertion_ids
            .insert((client_id.to_owned(), jti.to_owned()), exp)
            .is_none()
    }
}

/// An opaque access token (not a JWT: clients must not read it): 244 random bits from two
/// random GUIDs, base64url.
fn random_token() -> String {
    let random = format!(
        "{}{}",
        sync_client_broker_sim::new_directory_id(),
        sync_client_broker_sim::new_directory_id()
    );
    URL_SAFE_NO_PAD.encode(random.replace('-', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_live_until_their_lifetime_or_until_expired_by_hand() {
        let mut state = SimState::new(&EntraSimConfig::default());
        let now = Instant::now();
        let (token, lifetime) = state.issue_token("app", now);
        assert_eq!(lifetime, Duration::from_secs(3599));
        assert_eq!(
            state.token_status(&token, now),
            TokenStatus::Live {
                client_id: "app".to_owned()
            }
        );
        assert!(matches!(
            state.token_status(&token, now + lifetime),
            TokenStatus::Expired { .. }
        ));
        assert_eq!(state.token_status("other", now), TokenStatus::Unknown);
        state.expire_tokens(now);
        assert!(matches!(
            state.token_status(&token, now),
            TokenStatus::Expired { .. }
        ));
    }

    #[test]
    fn grants_take_effect_when_due_and_assertion_ids_are_single_use() {
        let mut state = SimState::new(&EntraSimConfig::default());
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        state.grant("app", Permission::SynchronizationReadWriteAll, later);
        assert!(!state.holds("app", Permission::SynchronizationReadWriteAll, now));
        assert!(state.holds("app", Permission::SynchronizationReadWriteAll, later));
        assert!(!state.holds("app", Permission::ApplicationReadWriteOwnedBy, later));
        state.revoke("app", Permission::SynchronizationReadWriteAll);
        assert!(!state.holds("app", Permission::SynchronizationReadWriteAll, later));
        assert!(state.use_assertion_id("app", "j1", 100, 50));
        assert!(!state.use_assertion_id("app", "j1", 100, 60));
        assert!(state.use_assertion_id("other", "j1", 100, 60));
    }
}
