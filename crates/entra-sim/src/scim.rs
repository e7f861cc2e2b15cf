//! The calls Entra ID makes to the SCIM endpoint, for `validateCredentials` and for provisioning
//! cycles: `GET {BaseAddress}/Users?filter=userName eq "<random guid>"` with
//! `Authorization: Bearer {SecretToken}`, expecting `200` with a SCIM `ListResponse`.
//!
//! Only loopback targets are contacted (127.0.0.0/8, ::1, `localhost` pinned to 127.0.0.1),
//! over HTTPS trusting only the configured CAs, without proxies or redirects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::Value;

const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Why the simulator called the SCIM endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimPurpose {
    ValidateCredentials,
    ProvisioningCycle,
}

/// What came of one SCIM call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScimOutcome {
    /// `200` with a `ListResponse`: the credentials work.
    Accepted,
    /// Another status (`401` for a revoked or expired token).
    Refused { status: u16 },
    /// `200`, but the body is not a SCIM `ListResponse`.
    NotAListResponse,
    /// `BaseAddress` or `SecretToken` is missing.
    MissingCredentials,
    /// `BaseAddress` is not an absolute `https` URL.
    InvalidBaseAddress,
    /// `BaseAddress` names a host that is not loopback: never contacted.
    NotLoopback,
    /// No answer: connection refused, TLS refused, timed out (the reason, without secrets).
    Unreachable(String),
}

impl ScimOutcome {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }
}

impl fmt::Display for ScimOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted => f.write_str("the SCIM endpoint answered 200 with a ListResponse"),
            Self::Refused { status } => write!(f, "the SCIM endpoint answered HTTP {status}"),
            Self::NotAListResponse => {
                f.write_str("the SCIM endpoint answered 200 without a SCIM ListResponse")
            }
            Self::MissingCredentials => f.write_str("BaseAddress or SecretToken is not set"),
            Self::InvalidBaseAddress => f.write_str("BaseAddress is not an absolute https URL"),
            Self::NotLoopback => f.write_str("BaseAddress is not reachable from the simulator"),
            Self::Unreachable(reason) => {
                write!(f, "the SCIM endpoint could not be reached: {reason}")
            }
        }
    }
}

/// One call the simulator made (or refused to make) to a SCIM endpoint. No secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimCall {
    pub purpose: ScimPurpose,
    pub service_principal: String,
    pub job: String,
    pub base_address: Option<String>,
    /// The `userName` the filter asked for (a random GUID); `None` when no request was sent.
    pub filtered_user_name: Option<String>,
    pub outcome: ScimOutcome,
}

/// Where to call and with what. No `Debug`: the token is a credential.
pub(crate) struct ScimCredentials {
    pub base_address: Option<String>,
    pub token: Option<String>,
}

/// How the simulator reaches SCIM endpoints.
#[derive(Clone)]
pub(crate) struct ScimClient {
    roots: Arc<rustls::RootCertStore>,
    timeout: Duration,
}

impl ScimClient {
    pub(crate) fn new(ca_pems: &[String], timeout: Duration) -> Self {
        let mut client = Self {
            roots: Arc::new(rustls::RootCertStore::empty()),
            timeout,
        };
        for pem in ca_pems {
            client.trust(pem);
        }
        client
    }

    /// Adds the certificates of a PEM to the trusted roots; returns how many were added.
    pub(crate) fn trust(&mut self, pem: &str) -> usize {
        crate::tls::add_pem_roots(Arc::make_mut(&mut self.roots), pem)
    }

    /// Calls `GET {BaseAddress}/Users?filter=userName eq "<user_name>"` with the token.
    pub(crate) async fn probe(
        &self,
        credentials: &ScimCredentials,
        user_name: &str,
    ) -> ScimOutcome {
        let (Some(base_address), Some(token)) = (&credentials.base_address, &credentials.token)
        else {
            return ScimOutcome::MissingCredentials;
        };
        let target = match loopback_target(base_address) {
            Ok(target) => target,
            Err(outcome) => return outcome,
        };
        let filter = format!("userName eq \"{user_name}\"");
        let url = format!(
            "{}/Users?filter={}",
            base_address.trim_end_matches('/'),
            utf8_percent_encode(&filter, NON_ALPHANUMERIC)
        );
        let client = match self.http_client(target) {
            Ok(client) => client,
            Err(reason) => return ScimOutcome::Unreachable(reason),
        };
        let answer = client
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/scim+json")
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => return ScimOutcome::Unreachable(describe(&error)),
        };
        let status = response.status().as_u16();
        if status != 200 {
            return ScimOutcome::Refused { status };
        }
        match response.bytes().await {
            Ok(body) if is_list_response(&body) => ScimOutcome::Accepted,
            Ok(_) => ScimOutcome::NotAListResponse,
            Err(error) => ScimOutcome::Unreachable(describe(&error)),
        }
    }

    fn http_client(&self, target: Option<SocketAddr>) -> Result<reqwest::Client, String> {
        let tls = crate::tls::client_config(Arc::clone(&self.roots))
            .map_err(|error| error.to_string())?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .redirect(Policy::none())
            .timeout(self.timeout);
        if let Some(address) = target {
            builder = builder.resolve("localhost", address);
        }
        builder.build().map_err(|error| describe(&error))
    }
}

/// Checks that `base_address` is an https URL on loopback. `Ok(Some(address))` pins `localhost`
/// to 127.0.0.1 (no name resolution that could leave the machine).
fn loopback_target(base_address: &str) -> Result<Option<SocketAddr>, ScimOutcome> {
    let url = Url::parse(base_address).map_err(|_| ScimOutcome::InvalidBaseAddress)?;
    if url.scheme() != "https" {
        return Err(ScimOutcome::InvalidBaseAddress);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    match url.host() {
        Some(url::Host::Ipv4(address)) if address.is_loopback() => Ok(None),
        Some(url::Host::Ipv6(address)) if address.is_loopback() => Ok(None),
        Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
            Ok(Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)))
        }
        Some(_) => Err(ScimOutcome::NotLoopback),
        None => Err(ScimOutcome::InvalidBaseAddress),
    }
}

fn is_list_response(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|body| {
        body["schemas"]
            .as_array()
            .is_some_and(|schemas| schemas.iter().any(|schema| schema == LIST_RESPONSE))
    })
}

/// An error and its causes in one line (reqwest errors carry the URL, never the headers).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_loopback_targets_pass() {
        assert_eq!(loopback_target("https://127.0.0.1:8443/scim/v2"), Ok(None));
        assert_eq!(loopback_target("https://127.1.2.3/scim"), Ok(None));
        assert_eq!(loopback_target("https://[::1]:9/scim"), Ok(None));
        assert_eq!(
            loopback_target("https://LOCALHOST:8443/x"),
            Ok(Some(SocketAddr::from(([127, 0, 0, 1], 8443))))
        );
        assert_eq!(
            loopback_target("https://example.com/scim"),
            Err(ScimOutcome::NotLoopback)
        );
        assert_eq!(
            loopback_target("https://10.0.0.1/scim"),
            Err(ScimOutcome::NotLoopback)
        );
        assert_eq!(
            loopback_target("http://127.0.0.1/scim"),
            Err(ScimOutcome::InvalidBaseAddress)
        );
        assert_eq!(
            loopback_target("not a url"),
            Err(ScimOutcome::InvalidBaseAddress)
        );
    }

    #[test]
    fn list_responses_are_recognised_by_their_schema() {
        assert!(is_list_response(
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0}"#
        ));
        assert!(!is_list_response(
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"]}"#
        ));
        assert!(!is_list_response(b"<html>"));
    }
}
