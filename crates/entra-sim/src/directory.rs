//! The test-facing directory: app registrations and their permissions, access tokens, service
//! principals, their owners and the secrets Entra ID holds for them.

use std::time::{Duration, Instant};

use crate::secrets::{BASE_ADDRESS, SECRET_TOKEN};
use crate::server::lock;
use crate::{AppRegistration, ClientSecret, EntraSim, Permission, ServicePrincipal};

impl EntraSim {
    /// Adds an app registration, or replaces the one with the same client id.
    pub fn register_app(&self, app: AppRegistration) {
        lock(&self.shared.state).register_app(app);
    }

    /// Adds a client secret to an app (as a rotation of the app's secret would); false for an
    /// unknown app.
    pub fn add_client_secret(&self, client_id: &str, secret: ClientSecret) -> bool {
        lock(&self.shared.state)
            .app_mut(client_id)
            .map(|app| app.secrets.push(secret))
            .is_some()
    }

    /// Grants an application permission, in effect at once.
    pub fn grant(&self, client_id: &str, permission: Permission) {
        self.grant_after(client_id, permission, Duration::ZERO);
    }

    /// Grants a permission that takes effect only after `delay`, as consent does: Graph answers
    /// `403` meanwhile.
    pub fn grant_after(&self, client_id: &str, permission: Permission, delay: Duration) {
        lock(&self.shared.state).grant(client_id, permission, Instant::now() + delay);
    }

    pub fn revoke(&self, client_id: &str, permission: Permission) {
        lock(&self.shared.state).revoke(client_id, permission);
    }

    /// The access tokens issued and not yet forgotten (tests scan output for them).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        lock(&self.shared.state).access_tokens()
    }

    /// Ends the life of every access token issued so far (Graph answers `401` to them).
    pub fn expire_access_tokens(&self) {
        lock(&self.shared.state).expire_tokens(Instant::now());
    }

    // ---- service principals ----

    /// Adds a service principal, or replaces the one with the same id.
    pub fn add_service_principal(&self, service_principal: ServicePrincipal) {
        lock(&self.shared.state).add_principal(service_principal);
    }

    /// Makes an app an owner of a service principal (`true`) or no longer one (`false`).
    /// Returns false for an unknown service principal.
    pub fn set_owner(&self, service_principal: &str, client_id: &str, owner: bool) -> bool {
        let mut state = lock(&self.shared.state);
        let Some(principal) = state.principals.get_mut(service_principal) else {
            return false;
        };
        if owner {
            principal.owners.insert(client_id.to_owned());
        } else {
            principal.owners.remove(client_id);
        }
        true
    }

    /// Stores secrets as an administrator pasting them in the portal would (no request
    /// recorded, no lag). Returns false for an unknown service principal.
    pub fn store_secrets(&self, service_principal: &str, pairs: &[(&str, &str)]) -> bool {
        let mut state = lock(&self.shared.state);
        let Some(principal) = state.principals.get_mut(service_principal) else {
            return false;
        };
        let pairs = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        principal.secrets.upsert(pairs, Instant::now(), None);
        true
    }

    /// The `SecretToken` Entra ID holds for the service principal (the latest write, whatever
    /// a read lag shows readers).
    pub fn held_secret_token(&self, service_principal: &str) -> Option<String> {
        self.held(service_principal, SECRET_TOKEN)
    }

    /// The `BaseAddress` Entra ID holds for the service principal.
    pub fn held_base_address(&self, service_principal: &str) -> Option<String> {
        self.held(service_principal, BASE_ADDRESS)
    }

    /// The keys held for the service principal, sorted.
    pub fn held_secret_keys(&self, service_principal: &str) -> Vec<String> {
        lock(&self.shared.state)
            .principals
            .get(service_principal)
            .map(|principal| principal.secrets.held().keys().cloned().collect())
            .unwrap_or_default()
    }

    fn held(&self, service_principal: &str, key: &str) -> Option<String> {
        lock(&self.shared.state)
            .principals
            .get(service_principal)
            .and_then(|principal| principal.secrets.held().get(key).cloned())
    }
}
