//! What a [`GraphClient`](crate::GraphClient) needs to know: the cloud, the tenant, the
//! application and how it proves who it is.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sync_client_http::{SecretString, TlsConfig};

use crate::outcome::GraphRequestOutcome;

/// Upper bound for one HTTP request, from sending to the last byte of the answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A cached access token is replaced this long before it expires (at most half its lifetime).
pub const DEFAULT_TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Called once per HTTP request with its outcome (for metrics). Must be cheap and must not block.
pub type GraphObserver = Arc<dyn Fn(&GraphRequestOutcome) + Send + Sync>;

/// A Microsoft cloud: where its login and Graph live (ENTRA_API.md §0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cloud {
    /// `login.microsoftonline.com`, `graph.microsoft.com`.
    #[default]
    Global,
    /// US Government L4: `login.microsoftonline.us`, `graph.microsoft.us`.
    UsGovernmentL4,
    /// US Government L5 (DoD): `login.microsoftonline.us`, `dod-graph.microsoft.us`.
    UsGovernmentL5,
    /// China, operated by 21Vianet: `login.chinacloudapi.cn`, `microsoftgraph.chinacloudapi.cn`.
    China,
}

impl Cloud {
    /// The name used in configuration: `Global`, `UsGovernmentL4`, `UsGovernmentL5`, `China`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Global => "Global",
            Self::UsGovernmentL4 => "UsGovernmentL4",
            Self::UsGovernmentL5 => "UsGovernmentL5",
            Self::China => "China",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cloud {
    type Err = String;

    /// The names of [`Cloud::as_str`], case-insensitively.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            Self::Global,
            Self::UsGovernmentL4,
            Self::UsGovernmentL5,
            Self::China,
        ]
        .into_iter()
        .find(|cloud| cloud.as_str().eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| {
            "unknown cloud; expected Global, UsGovernmentL4, UsGovernmentL5 or China".to_owned()
        })
    }
}

/// The two hosts the client talks to, as `https://` base URLs without a trailing slash.
/// Both may be overridden (tests, proxies); the token scope is `{graph_base}/.default`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// e.g. `https://login.microsoftonline.com`
    pub login_base: String,
    /// e.g. `https://graph.microsoft.com`
    pub graph_base: String,
}

impl Endpoints {
    /// The documented hosts of `cloud`.
    pub fn for_cloud(cloud: Cloud) -> Self {
        let (login, graph) = match cloud {
            Cloud::Global => ("login.microsoftonline.com", "graph.microsoft.com"),
            Cloud::UsGovernmentL4 => ("login.microsoftonline.us", "graph.microsoft.us"),
            Cloud::UsGovernmentL5 => ("login.microsoftonline.us", "dod-graph.microsoft.us"),
            Cloud::China => ("login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"),
        };
        Self {
            login_base: format!("https://{login}"),
            graph_base: format!("https://{graph}"),
        }
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::for_cloud(Cloud::Global)
    }
}

/// How the application proves who it is to the login.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredential {
    /// A client secret (its value, not its id).
    Secret(SecretString),
    /// RSA certificate credential: client assertion JWT (PS256, header `x5t#S256` of the
    /// certificate DER). The key is PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`) PEM; the certificate is the one registered on the application.
    Certificate {
        certificate_pem: String,
        private_key_pem: SecretString,
    },
    /// Workload identity federation: the file (a projected ServiceAccount token) is read at
    /// every token request, since the kubelet rotates it, and sent as the client assertion.
    FederatedTokenFile(PathBuf),
}

impl ClientCredential {
    /// The kind of credential, for messages: never the credential itself.
    pub fn describe(&self) -> String {
        match self {
            Self::Secret(_) => "client secret".to_owned(),
            Self::Certificate { .. } => "certificate".to_owned(),
            Self::FederatedTokenFile(path) => {
                format!("federated token file {}", path.display())
            }
        }
    }
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(secret) => f.debug_tuple("Secret").field(secret).finish(),
            Self::Certificate {
                certificate_pem,
                private_key_pem,
            } => f
                .debug_struct("Certificate")
                .field(
                    "certificate_pem",
                    &format!("<{} bytes of PEM>", certificate_pem.len()),
                )
                .field("private_key_pem", private_key_pem)
                .finish(),
            Self::FederatedTokenFile(path) => {
                f.debug_tuple("FederatedTokenFile").field(path).finish()
            }
        }
    }
}

/// Everything a [`GraphClient`](crate::GraphClient) needs. `Debug` hides the credentials.
#[derive(Clone)]
pub struct GraphConfig {
    /// The directory (tenant) id or a verified domain of the tenant.
    pub tenant_id: String,
    /// The application (client) id of the operator's app registration.
    pub client_id: String,
    pub credential: ClientCredential,
    pub endpoints: Endpoints,
    pub tls: TlsConfig,
    pub request_timeout: Duration,
    /// Tokens are reused until this long before they expire (default 5 min, at most half the
    /// lifetime).
    pub token_refresh_margin: Duration,
    /// Called once per HTTP request, token requests included.
    pub observer: Option<GraphObserver>,
}

impl GraphConfig {
    /// A configuration for the global cloud with default TLS (system trust store), timeouts and
    /// no observer.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: ClientCredential,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            endpoints: Endpoints::default(),
            tls: TlsConfig::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            token_refresh_margin: DEFAULT_TOKEN_REFRESH_MARGIN,
            observer: None,
        }
    }
}

impl fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls)
            .field("request_timeout", &self.request_timeout)
            .field("token_refresh_margin", &self.token_refresh_margin)
            .field("observer", &self.observer.as_ref().map(|_| "<observer>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cloud_has_its_documented_hosts() {
        let cases = [
            (
                Cloud::Global,
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            (
                Cloud::UsGovernmentL4,
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            (
                Cloud::UsGovernmentL5,
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            (
                Cloud::China,
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        ];
        for (cloud, login, graph) in cases {
            let endpoints = Endpoints::for_cloud(cloud);
            assert_eq!(endpoints.login_base, login);
            assert_eq!(endpoints.graph_base, graph);
            assert_eq!(cloud.as_str().parse::<Cloud>(), Ok(cloud));
            assert_eq!(cloud.as_str().to_lowercase().parse::<Cloud>(), Ok(cloud));
        }
        assert!("Germany".parse::<Cloud>().is_err());
        assert_eq!(Endpoints::default(), Endpoints::for_cloud(Cloud::Global));
    }

    #[test]
    fn debug_hides_credentials() {
        let mut config = GraphConfig::new(
            "tenant",
            "client",
            ClientCredential::Secret(SecretString::from("hunter2")),
        );
        config.observer = Some(Arc::new(|_| {}));
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<observer>"), "{text}");
        let certificate = ClientCredential::Certificate {
            certificate_pem: "PEM".to_owned(),
            private_key_pem: SecretString::from("hunter2"),
        };
        assert_eq!(
            format!("{certificate:?}"),
            "Certificate { certificate_pem: \"<3 bytes of PEM>\", private_key_pem: <redacted> }"
        );
        assert_eq!(certificate.describe(), "certificate");
    }
}
