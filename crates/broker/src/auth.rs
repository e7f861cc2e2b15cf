//! The vCenter session and the broker token: cached per client, refreshed single-flight.
//!
//! One tokio mutex guards both. It is held across the login and token requests on purpose: when
//! many callers need a token at once, the first fetches it and the others wait and reuse it.

use std::sync::PoisonError;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{ACCEPT, HeaderValue};
use sync_client_http::{ReportedLifetime, SecretString, single_line};

use crate::client::{Inner, MAX_BROKER_TOKEN_LIFETIME};
use crate::config::TokenClient;
use crate::error::{BrokerError, ErrorKind};
use crate::guard::Deadline;
use crate::outcome::Endpoint;
use crate::transport::{Answer, malformed_answer, status_error};
use crate::wire::{parse_session_id, parse_token_info};

/// Header that carries the vCenter session id.
pub(crate) const SESSION_HEADER: &str = "vmware-api-session-id";

/// Credentials for a vCenter login, borrowed from the configuration.
#[derive(Clone, Copy)]
pub(crate) struct VCenterLogin<'a> {
    pub(crate) username: &'a str,
    pub(crate) password: &'a SecretString,
    pub(crate) token_client: TokenClient,
}

/// What the client remembers between calls.
#[derive(Default)]
pub(crate) struct AuthState {
    session: Option<SecretString>,
    broker_token: Option<CachedToken>,
}

struct CachedToken {
    token: SecretString,
    expires_at: Instant,
    /// After this instant the token is replaced before use (`expires_in` minus the margin).
    refresh_at: Instant,
}

/// A broker token ready for use.
pub(crate) struct BrokerToken {
    pub(crate) token: SecretString,
    /// Remaining lifetime, at most [`MAX_BROKER_TOKEN_LIFETIME`], zero when vCenter reported it
    /// as already expired; `None` when vCenter did not say.
    pub(crate) expires_in: Option<Duration>,
}

/// No vCenter login until `until`: the last one was refused with 401.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoginBlock {
    until: Instant,
    /// The same moment on the wall clock, for messages and status.
    until_wall: SystemTime,
}

impl LoginBlock {
    fn starting_now(cooldown: Duration) -> Option<Self> {
        if cooldown.is_zero() {
            return None;
        }
        let now = Instant::now();
        let wall_now = SystemTime::now();
        Some(Self {
            until: now.checked_add(cooldown)?,
            until_wall: wall_now.checked_add(cooldown).unwrap_or(wall_now),
        })
    }

    /// The time left, if the block is still on at `now`.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .checked_duration_since(now)
            .filter(|left| !left.is_zero())
    }
}

impl AuthState {
    fn usable_token(&self, now: Instant) -> Option<BrokerToken> {
        let cached = self
            .broker_token
            .as_ref()
            .filter(|cached| now < cached.refresh_at)?;
        Some(BrokerToken {
            token: cached.token.clone(),
            expires_in: Some(cached.expires_at.saturating_duration_since(now)),
        })
    }

    /// Forgets the session and the token, returning the session so it can be deleted.
    pub(crate) fn forget(&mut self) -> Option<SecretString> {
        self.broker_token = None;
        self.session.take()
    }
}

impl Inner {
    /// A broker token: the cached one while it is fresh, otherwise a new one, by `deadline`.
    pub(crate) async fn broker_token(
        &self,
        login: VCenterLogin<'_>,
        deadline: Deadline,
    ) -> Result<BrokerToken, BrokerError> {
        let mut state = deadline.lock(&self.state, Endpoint::BrokerToken).await?;
        if let Some(token) = state.usable_token(Instant::now()) {
            return Ok(token);
        }
        self.renew_broker_token(&mut state, login, deadline).await
    }

    /// A broker token other than `rejected`, which the broker refused: another caller may have
    /// replaced it already, otherwise a new one is fetched.
    pub(crate) async fn replace_broker_token(
        &self,
        login: VCenterLogin<'_>,
        rejected: &SecretString,
        deadline: Deadline,
    ) -> Result<BrokerToken, BrokerError> {
        let mut state = deadline.lock(&self.state, Endpoint::BrokerToken).await?;
        if let Some(token) = state.usable_token(Instant::now())
            && token.token != *rejected
        {
            return Ok(token);
        }
        state.broker_token = None;
        self.renew_broker_token(&mut state, login, deadline).await
    }

    /// Fetches a token and caches it when its lifetime is known and longer than the margin.
    /// A token without `expires_in` is handed out for this one use only.
    async fn renew_broker_token(
        &self,
        state: &mut AuthState,
        login: VCenterLogin<'_>,
        deadline: Deadline,
    ) -> Result<BrokerToken, BrokerError> {
        let (token, reported) = self.fetch_with_session(state, login, deadline).await?;
        let received_at = Instant::now();
        // Negative counts as zero (used once, not cached); absurdly long is cut to a day.
        let lifetime = reported.clamped(MAX_BROKER_TOKEN_LIFETIME);
        state.broker_token = lifetime.and_then(|lifetime| {
            let refresh_after = lifetime
                .checked_sub(self.token_refresh_margin)
                .filter(|refresh_after| !refresh_after.is_zero())?;
            Some(CachedToken {
                token: token.clone(),
                expires_at: received_at.checked_add(lifetime)?,
                refresh_at: received_at.checked_add(refresh_after)?,
            })
        });
        Ok(BrokerToken {
            token,
            expires_in: lifetime,
        })
    }

    /// Fetches a broker token with the cached session, logging in first if there is none, and
    /// once more if vCenter no longer knows the cached session.
    async fn fetch_with_session(
        &self,
        state: &mut AuthState,
        login: VCenterLogin<'_>,
        deadline: Deadline,
    ) -> Result<(SecretString, ReportedLifetime), BrokerError> {
        let reused_session = state.session.is_some();
        let session = match &state.session {
            Some(session) => session.clone(),
            None => self.open_session(state, login, deadline).await?,
        };
        let result = match self.fetch_broker_token(&session, login, deadline).await {
            Err(error) if error.kind() == ErrorKind::Auth && reused_session => {
                tracing::debug!("vCenter session expired; logging in again");
                state.session = None;
                let session = self.open_session(state, login, deadline).await?;
                self.fetch_broker_token(&session, login, deadline).await
            }
            other => other,
        };
        if result
            .as_ref()
            .is_err_and(|error| error.kind() == ErrorKind::Auth)
        {
            state.session = None;
        }
        result
    }

    /// Logs in, unless a refused login blocks it; a refusal (401) starts the cool-down.
    async fn open_session(
        &self,
        state: &mut AuthState,
        login: VCenterLogin<'_>,
        deadline: Deadline,
    ) -> Result<SecretString, BrokerError> {
        if let Some(blocked) = self.login_blocked_error() {
            return Err(blocked);
        }
        match self.log_in(login, deadline).await {
            Ok(session) => {
                *self.lock_login_block() = None;
                state.session = Some(session.clone());
                Ok(session)
            }
            Err(error) if error.status() == Some(401) => {
                let block = LoginBlock::starting_now(self.login_cooldown);
                *self.lock_login_block() = block;
                Err(error.with_retry_after(block.map(|_| self.login_cooldown)))
            }
            Err(error) => Err(error),
        }
    }

    fn lock_login_block(&self) -> std::sync::MutexGuard<'_, Option<LoginBlock>> {
        self.login_block
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// When the login cool-down ends, if it is on.
    pub(crate) fn login_blocked_until(&self) -> Option<SystemTime> {
        let block = (*self.lock_login_block())?;
        block.remaining(Instant::now()).map(|_| block.until_wall)
    }

    /// The error for a call that needs a login while the cool-down is on; no HTTP is sent.
    fn login_blocked_error(&self) -> Option<BrokerError> {
        let block = (*self.lock_login_block())?;
        let left = block.remaining(Instant::now())?;
        let message = format!(
            "vCenter refused the user name or password; to avoid locking the account no login \
             is tried until {} (in {}); changing the login Secret retries at once",
            httpdate::fmt_http_date(block.until_wall),
            short_duration(left)
        );
        Some(
            BrokerError::call(ErrorKind::Auth, Endpoint::Session, &message)
                .with_retry_after(Some(left)),
        )
    }

    /// `POST /api/session` with Basic auth.
    async fn log_in(
        &self,
        login: VCenterLogin<'_>,
        deadline: Deadline,
    ) -> Result<SecretString, BrokerError> {
        let endpoint = Endpoint::Session;
        let request = self
            .transport
            .http()
            .post(self.url("/api/session"))
            .basic_auth(login.username, Some(login.password.expose()))
            .header(ACCEPT, "application/json");
        self.transport
            .call(endpoint, request, deadline, |answer| {
                if !answer.is_success() {
                    let hint = (answer.status.as_u16() == 401).then(|| {
                        let cooldown = if self.login_cooldown.is_zero() {
                            String::new()
                        } else {
                            format!(
                                " (no new login for {} unless the login Secret changes)",
                                short_duration(self.login_cooldown)
                            )
                        };
                        format!("user name or password rejected{cooldown}")
                    });
                    return Err(status_error(
                        endpoint,
                        &answer,
                        hint,
                        &self.config_secrets(),
                    ));
                }
                parse_session_id(&answer.body)
                    .map_err(|malformed| malformed_answer(endpoint, &answer, &malformed.0))
                    .and_then(|session| {
                        session_header(&session).map(|_| session).map_err(|_| {
                            malformed_answer(
                                endpoint,
                                &answer,
                                "the session id is not a valid header value",
                            )
                        })
                    })
            })
            .await
    }

    /// `GET` the operator-client or tenant admin-client token with a session.
    async fn fetch_broker_token(
        &self,
        session: &SecretString,
        login: VCenterLogin<'_>,
        deadline: Deadline,
    ) -> Result<(SecretString, ReportedLifetime), BrokerError> {
        let endpoint = Endpoint::BrokerToken;
        let path = match login.token_client {
            TokenClient::OperatorClient => {
                "/api/vcenter/identity/broker/tenants/operator-client".to_owned()
            }
            TokenClient::AdminClient => format!(
                "/api/vcenter/identity/broker/tenants/{}/admin-client",
                self.tenant_segment
            ),
        };
        let request = self
            .transport
            .http()
            .get(self.url(&path))
            .header(SESSION_HEADER, session_header(session)?)
            .header(ACCEPT, "application/json");
        self.transport
            .call(endpoint, request, deadline, |answer| {
                self.read_token_answer(&answer, session, login.token_client)
            })
            .await
    }

    fn read_token_answer(
        &self,
        answer: &Answer,
        session: &SecretString,
        token_client: TokenClient,
    ) -> Result<(SecretString, ReportedLifetime), BrokerError> {
        let endpoint = Endpoint::BrokerToken;
        if !answer.is_success() {
            let hint = match (answer.status.as_u16(), token_client) {
                (401, _) => Some("session not accepted".to_owned()),
                (403, _) => Some(
                    "the vCenter user lacks the privilege VcIdentityProviders.Manage".to_owned(),
                ),
                (404, TokenClient::OperatorClient) => Some("no operator client exists".to_owned()),
                (404, TokenClient::AdminClient) => Some(format!(
                    "no admin client exists for tenant {}",
                    single_line(&self.tenant, 64)
                )),
                _ => None,
            };
            let mut secrets = self.config_secrets();
            secrets.push(session.expose());
            return Err(status_error(endpoint, answer, hint, &secrets));
        }
        let info = parse_token_info(&answer.body)
            .map_err(|malformed| malformed_answer(endpoint, answer, &malformed.0))?;
        if let Some(token_type) = info
            .token_type
            .as_deref()
            .filter(|token_type| !token_type.eq_ignore_ascii_case("Bearer"))
        {
            return Err(BrokerError::call(
                ErrorKind::Spec,
                endpoint,
                &format!(
                    "vCenter issued a token of type {}; only Bearer tokens are supported",
                    single_line(token_type, 40)
                ),
            )
            .with_status(answer.status.as_u16()));
        }
        Ok((info.access_token, info.expires_in))
    }
}

/// "15m", "14m 58s", "2h 5m", "42s": for messages.
fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs().max(1);
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes, seconds) {
        (0, 0, seconds) => format!("{seconds}s"),
        (0, minutes, 0) => format!("{minutes}m"),
        (0, minutes, seconds) => format!("{minutes}m {seconds}s"),
        (hours, 0, _) => format!("{hours}h"),
        (hours, minutes, _) => format!("{hours}h {minutes}m"),
    }
}

/// The session id as a header value, marked sensitive so it is never logged by the HTTP stack.
pub(crate) fn session_header(session: &SecretString) -> Result<HeaderValue, BrokerError> {
    let mut value = HeaderValue::from_str(session.expose()).map_err(|_| {
        BrokerError::call(
            ErrorKind::Transient,
            Endpoint::Session,
            "the session id is not a valid header value",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_read_naturally() {
        let cases = [
            (0, "1s"),
            (42, "42s"),
            (900, "15m"),
            (898, "14m 58s"),
            (3600, "1h"),
            (7500, "2h 5m"),
            (86_400, "24h"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(short_duration(Duration::from_secs(seconds)), expected);
        }
    }

    #[test]
    fn a_zero_cooldown_blocks_nothing() {
        assert!(LoginBlock::starting_now(Duration::ZERO).is_none());
        let block = LoginBlock::starting_now(Duration::from_secs(60)).expect("block");
        assert!(block.remaining(Instant::now()).is_some());
        let later = Instant::now().checked_add(Duration::from_secs(61));
        assert!(later.is_none_or(|later| block.remaining(later).is_none()));
    }
}
