//! [`BrokerClient`]: the public operations, built on the transport and the auth cache.
//!
//! This module keeps the client, its configuration checks, the SCIM probe and logout; the
//! usergroup API calls and sending with the broker token have their own modules.

mod authorized;
mod usergroup;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use percent_encoding::utf8_percent_encode;
use reqwest::header::ACCEPT;
use sync_client_http::{PATH_SEGMENT, SecretString, check_path_value};

use crate::auth::{AuthState, LoginBlock, SESSION_HEADER, VCenterLogin, session_header};
use crate::config::{AuthSummary, BrokerAuth, BrokerConfig, MAX_LOGIN_COOLDOWN};
use crate::error::BrokerError;
use crate::guard::Deadline;
use crate::outcome::Endpoint;
use crate::transport::{Transport, status_error};

/// A broker token is trusted for at most this long (24 h), whatever `expires_in` says: it is
/// cached and reported for no longer.
pub const MAX_BROKER_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What [`BrokerClient::authenticate`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthStatus {
    /// Remaining lifetime of the broker token, at most [`MAX_BROKER_TOKEN_LIFETIME`]; zero when
    /// vCenter reported it as already expired (zero or negative `expires_in`); `None` when
    /// vCenter did not say, or with a static bearer token.
    pub broker_token_expires_in: Option<Duration>,
}

/// Client for one broker. Cheap to clone; clones share the session and token cache.
#[derive(Clone)]
pub struct BrokerClient {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) transport: Transport,
    /// Base URL without a trailing slash.
    base_url: String,
    pub(crate) tenant: String,
    /// The tenant, percent-encoded for use in a path.
    pub(crate) tenant_segment: String,
    auth: BrokerAuth,
    pub(crate) token_refresh_margin: Duration,
    pub(crate) login_cooldown: Duration,
    /// Outside `state`, whose lock is held across requests, so status can read it at once.
    pub(crate) login_block: Mutex<Option<LoginBlock>>,
    pub(crate) state: tokio::sync::Mutex<AuthState>,
}

impl BrokerClient {
    /// Checks the configuration and builds the HTTP client (rustls with the ring provider;
    /// certificates are verified unless `insecure_skip_verify`). No request is sent.
    pub fn new(config: BrokerConfig) -> Result<Self, BrokerError> {
        let base_url = normalize_base_url(&config.base_url, config.allow_insecure_http)?;
        check_path_value("tenant", &config.tenant)
            .map_err(|reason| BrokerError::configure(&reason))?;
        match &config.auth {
            BrokerAuth::VCenter { username, .. } if username.trim().is_empty() => {
                return Err(BrokerError::configure("the vCenter user name is empty"));
            }
            BrokerAuth::BearerToken(token) if token.expose().trim().is_empty() => {
                return Err(BrokerError::configure("the bearer token is empty"));
            }
            _ => {}
        }
        let transport = Transport::new(
            &config.tls,
            base_url.starts_with("https:"),
            config.request_timeout,
            config.observer,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                base_url,
                tenant_segment: utf8_percent_encode(&config.tenant, PATH_SEGMENT).to_string(),
                tenant: config.tenant,
                auth: config.auth,
                token_refresh_margin: config.token_refresh_margin,
                login_cooldown: config.login_cooldown.min(MAX_LOGIN_COOLDOWN),
                login_block: Mutex::new(None),
                state: tokio::sync::Mutex::new(AuthState::default()),
            }),
        })
    }

    /// Makes sure a valid broker token is at hand (logging in and fetching one as needed) and
    /// reports its remaining lifetime. With a static bearer token nothing is sent.
    pub async fn authenticate(&self) -> Result<AuthStatus, BrokerError> {
        let Some(login) = self.inner.vcenter_login() else {
            return Ok(AuthStatus::default());
        };
        let token = self.inner.broker_token(login, Deadline::NONE).await?;
        Ok(AuthStatus {
            broker_token_expires_in: token.expires_in,
        })
    }

    /// Asks the tenant's SCIM API whether `access_token` still works: `Ok(true)` on 200,
    /// `Ok(false)` on 401 (revoked or expired), an error otherwise.
    pub async fn probe_token(&self, access_token: &SecretString) -> Result<bool, BrokerError> {
        let endpoint = Endpoint::ProbeToken;
        let url = self.inner.url(&format!(
            "/usergroup/t/{}/scim/v2/Users?count=1",
            self.inner.tenant_segment
        ));
        let request = self
            .inner
            .transport
            .http()
            .get(url)
            .bearer_auth(access_token.expose())
            .header(ACCEPT, "application/scim+json, application/json");
        self.inner
            .transport
            .call(endpoint, request, Deadline::NONE, |answer| {
                match answer.status.as_u16() {
                    200..=299 => Ok(true),
                    401 => Ok(false),
                    status => {
                        let hint = (status == 403)
                            .then(|| "the token may not read users of this tenant".to_owned());
                        let mut secrets = self.inner.config_secrets();
                        secrets.push(access_token.expose());
                        Err(status_error(endpoint, &answer, hint, &secrets))
                    }
                }
            })
            .await
    }

    /// While vCenter's refusal of the login (401) holds back new logins: when the cool-down
    /// ends. Calls that need a login fail at once until then, without any request; a new client
    /// (built when the login Secret changes) is not held back. `None` when logins are allowed.
    pub fn login_blocked_until(&self) -> Option<SystemTime> {
        self.inner.login_blocked_until()
    }

    /// Ends the vCenter session, if one is open, and forgets the cached broker token.
    /// Errors are ignored: the session expires on its own anyway.
    pub async fn logout(&self) {
        let session = self.inner.state.lock().await.forget();
        let Some(session) = session else {
            return;
        };
        let endpoint = Endpoint::SessionDelete;
        let Ok(session_value) = session_header(&session) else {
            return;
        };
        let request = self
            .inner
            .transport
            .http()
            .delete(self.inner.url("/api/session"))
            .header(SESSION_HEADER, session_value);
        let result = self
            .inner
            .transport
            .call(endpoint, request, Deadline::NONE, |answer| {
                if answer.is_success() {
                    Ok(())
                } else {
                    let mut secrets = self.inner.config_secrets();
                    secrets.push(session.expose());
                    Err(status_error(endpoint, &answer, None, &secrets))
                }
            })
            .await;
        if let Err(error) = result {
            tracing::debug!(
                kind = error.kind().as_str(),
                "vCenter logout failed; ignored"
            );
        }
    }
}

impl Inner {
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    pub(crate) fn vcenter_login(&self) -> Option<VCenterLogin<'_>> {
        match &self.auth {
            BrokerAuth::VCenter {
                username,
                password,
                token_client,
            } => Some(VCenterLogin {
                username,
                password,
                token_client: *token_client,
            }),
            BrokerAuth::BearerToken(_) => None,
        }
    }

    /// Secrets from the configuration, scrubbed from any error body.
    pub(crate) fn config_secrets(&self) -> Vec<&str> {
        match &self.auth {
            BrokerAuth::VCenter { password, .. } => vec![password.expose()],
            BrokerAuth::BearerToken(token) => vec![token.expose()],
        }
    }
}

impl fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerClient")
            .field("base_url", &self.inner.base_url)
            .field("tenant", &self.inner.tenant)
            .field("auth", &self.inner.auth)
            .field("token_refresh_margin", &self.inner.token_refresh_margin)
            .field("login_cooldown", &self.inner.login_cooldown)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for BrokerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "broker client for {} (tenant {}, {})",
            self.inner.base_url,
            self.inner.tenant,
            AuthSummary(&self.inner.auth)
        )
    }
}

/// The base URL without a trailing slash, if it is an absolute https URL (or http, when
/// allowed) without credentials, query or fragment.
fn normalize_base_url(raw: &str, allow_insecure_http: bool) -> Result<String, BrokerError> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|error| {
        BrokerError::configure(&format!("base_url is not a valid URL: {error}"))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http => {}
        "http" => {
            return Err(BrokerError::configure(
                "base_url uses plain http://, which would send the password and tokens \
                 unencrypted; use https:// or set allowInsecureHttp",
            ));
        }
        _ => {
            return Err(BrokerError::configure(
                "base_url must start with https:// (or http:// with allowInsecureHttp)",
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BrokerError::configure("base_url has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BrokerError::configure(
            "base_url must not contain credentials; configure them in the auth settings",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BrokerError::configure(
            "base_url must not have a query or fragment",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}
