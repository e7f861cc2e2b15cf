//! Setup and inspection of the state, called by tests through `BrokerSim`: directories and
//! their sync clients, privileges and access, expiry, restored credentials, and what is live.

use std::time::Instant;

use crate::config::ExpiresIn;

use super::{Directory, LiveToken, SimState, SyncClient, SyncClientSetup, SyncClients, is_past};

impl SimState {
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
}
