//! The usergroup API (`BROKER_API.md` C and D: authorization, generate, read) and the SCIM probe
//! (E), with the documented error precedence.

use std::time::Instant;

use crate::config::AcceptedBrokerTokens;

use super::{
    BrokerClient, Directory, GenerateRequest, ProbeError, SimState, SyncClientSetup,
    SyncClientView, UsergroupError, is_past, remaining_seconds,
};

impl SimState {
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
