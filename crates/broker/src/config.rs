//! What a [`BrokerClient`](crate::BrokerClient) needs to know about one broker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sync_client_http::{SecretString, TlsConfig};

use crate::outcome::RequestOutcome;

/// Upper bound for one HTTP request, from sending to the last byte of the answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A cached broker token is replaced this long before vCenter says it expires.
pub const DEFAULT_TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// After vCenter refuses a login (401), no new login is tried for this long.
pub const DEFAULT_LOGIN_COOLDOWN: Duration = Duration::from_secs(15 * 60);

/// Longest login cool-down honoured; a longer configured value is cut to this.
pub const MAX_LOGIN_COOLDOWN: Duration = Duration::from_secs(24 * 3600);

/// Called once per HTTP request with its outcome (for metrics). Must be cheap and must not block.
pub type RequestObserver = Arc<dyn Fn(&RequestOutcome) + Send + Sync>;

/// Which vCenter broker client issues the token used for the sync-client API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenClient {
    /// `GET /api/vcenter/identity/broker/tenants/operator-client` (documented for tenant management).
    OperatorClient,
    /// `GET /api/vcenter/identity/broker/tenants/{tenant}/admin-client` (used inside a tenant).
    AdminClient,
}

/// How the client proves who it is.
#[derive(Clone, Debug, PartialEq)]
pub enum BrokerAuth {
    /// Log in to vCenter with a user and password, then fetch a broker token from `token_client`.
    VCenter {
        username: String,
        password: SecretString,
        token_client: TokenClient,
    },
    /// Use this broker token as is; no vCenter session is opened.
    BearerToken(SecretString),
}

/// Everything a [`BrokerClient`](crate::BrokerClient) needs. `Debug` hides the credentials.
#[derive(Clone)]
pub struct BrokerConfig {
    /// `https://host[:port]`, optionally with a path prefix; a trailing slash is tolerated.
    pub base_url: String,
    /// Broker tenant, sent exactly as configured (percent-encoded in paths).
    pub tenant: String,
    pub auth: BrokerAuth,
    pub tls: TlsConfig,
    pub request_timeout: Duration,
    /// Refresh a cached broker token this long before its `expires_in` runs out.
    pub token_refresh_margin: Duration,
    pub observer: Option<RequestObserver>,
    /// Allow a plain `http://` base URL (the password and tokens then travel unencrypted).
    /// Off by default: [`BrokerClient::new`](crate::BrokerClient::new) refuses `http://`
    /// without it. The resource field is `allowInsecureHttp`.
    pub allow_insecure_http: bool,
    /// After vCenter answers a login with 401, no new login is tried for this long, so that a
    /// wrong password cannot lock the vCenter account; calls that need a login fail at once
    /// meanwhile. A new client (built when the login Secret changes) starts without it. Zero
    /// turns the cool-down off; values above [`MAX_LOGIN_COOLDOWN`] count as that.
    pub login_cooldown: Duration,
}

impl BrokerConfig {
    /// A configuration with default TLS (system trust store), timeouts and no observer.
    pub fn new(base_url: impl Into<String>, tenant: impl Into<String>, auth: BrokerAuth) -> Self {
        Self {
            base_url: base_url.into(),
            tenant: tenant.into(),
            auth,
            tls: TlsConfig::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            token_refresh_margin: DEFAULT_TOKEN_REFRESH_MARGIN,
            observer: None,
            allow_insecure_http: false,
            login_cooldown: DEFAULT_LOGIN_COOLDOWN,
        }
    }
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("base_url", &url_without_userinfo(&self.base_url))
            .field("tenant", &self.tenant)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("request_timeout", &self.request_timeout)
            .field("token_refresh_margin", &self.token_refresh_margin)
            .field("observer", &self.observer.as_ref().map(|_| ObserverMarker))
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("login_cooldown", &self.login_cooldown)
            .finish()
    }
}

impl fmt::Display for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "broker {} (tenant {}, {})",
            url_without_userinfo(&self.base_url),
            self.tenant,
            AuthSummary(&self.auth)
        )
    }
}

/// One-line description of the authentication method, without secrets.
pub(crate) struct AuthSummary<'a>(pub(crate) &'a BrokerAuth);

impl fmt::Display for AuthSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            BrokerAuth::VCenter {
                username,
                token_client,
                ..
            } => {
                let client = match token_client {
                    TokenClient::OperatorClient => "operator client",
                    TokenClient::AdminClient => "tenant admin client",
                };
                write!(f, "vCenter user {username}, {client} token")
            }
            BrokerAuth::BearerToken(_) => f.write_str("static bearer token"),
        }
    }
}

struct ObserverMarker;

impl fmt::Debug for ObserverMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<observer>")
    }
}

/// A URL with any `user:password@` removed, for printing.
pub(crate) fn url_without_userinfo(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut url) => {
            if !url.username().is_empty() || url.password().is_some() {
                // Both fail only for URLs that cannot carry credentials anyway.
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            url.to_string()
        }
        Err(_) if raw.contains('@') => "<unparsable url>".to_owned(),
        Err(_) => raw.to_owned(),
    }
}
