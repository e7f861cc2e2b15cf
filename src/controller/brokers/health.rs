//! What the registry learns about each broker from its credentials: whether they fail through
//! it for a reason that needs a change, and whether its token probe can be believed.

use std::collections::HashMap;

use super::{BrokerKey, BrokerRegistry};

impl BrokerRegistry {
    pub(super) fn trust(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerKey, bool>> {
        self.probe_trust
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn failing_lock(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerKey, bool>> {
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A credential failed through this broker for a reason that needs a change.
    pub fn credential_failed(&self, key: &BrokerKey, authentication: bool) {
        *self.failing_lock().entry(key.clone()).or_default() |= authentication;
    }

    /// A credential issued through this broker.
    pub fn credential_succeeded(&self, key: &BrokerKey) {
        self.failing_lock().remove(key);
    }

    /// Whether credentials fail through this broker (`Some(true)`: authentication among them).
    pub fn credentials_failing(&self, key: &BrokerKey) -> Option<bool> {
        self.failing_lock().get(key).copied()
    }

    /// The broker's token probe accepted a token: its refusals mean something.
    pub fn probe_accepted(&self, key: &BrokerKey) {
        self.trust().insert(key.clone(), true);
    }

    /// The broker's token probe refused a token minted moments ago: it cannot be believed until
    /// it accepts one again.
    pub fn probe_refused_fresh_token(&self, key: &BrokerKey) {
        self.trust().insert(key.clone(), false);
    }

    /// Whether a freshly issued token should be probed to learn whether the broker's probe can
    /// be trusted: `true` once per broker while nothing is known of its probe, so one probe per
    /// broker (not per credential) establishes it.
    pub fn claim_trust_probe(&self, key: &BrokerKey) -> bool {
        let mut trust = self.trust();
        if trust.contains_key(key) {
            return false;
        }
        // Not trusted until the probe answers; claimed, so no other credential probes for it.
        trust.insert(key.clone(), false);
        true
    }

    /// Whether a refusal by the broker's token probe proves a token revoked.
    pub fn probe_trusted(&self, key: &BrokerKey) -> bool {
        self.trust().get(key).copied().unwrap_or(false)
    }
}
