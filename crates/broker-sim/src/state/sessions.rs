//! Sessions (vCenter login, `BROKER_API.md` A) and broker tokens (B): who may call the usergroup
//! API.

use std::time::{Duration, Instant};

use crate::config::ExpiresIn;
use crate::tokens;

use super::{
    BrokerClient, BrokerToken, BrokerTokenError, IssuedBrokerToken, Session, SessionError,
    SimState, is_past,
};

impl SimState {
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
}
