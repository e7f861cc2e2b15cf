//! Request and answer bodies of the vCenter and broker APIs, parsed leniently.
//!
//! Answers are read as loose JSON and picked apart by hand: a field of an unexpected type counts
//! as missing, and parse errors never quote the body (it may hold credentials).

use serde::Serialize;
use serde_json::Value;
pub(crate) use sync_client_http::Malformed;
use sync_client_http::{ReportedLifetime, SecretString, as_object, non_empty_string, parse_json};

/// Media type of the broker's sync-client configuration, sent as `Content-Type` and `Accept`.
pub(crate) const SYNC_CLIENT_MEDIA_TYPE: &str =
    "application/vnd.vmware.vidm.usergroup.broker.directory.syncclientconfiguration+json";

/// What a generate call should issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// An access token (`generate_token: true`).
    AccessToken,
    /// A client id and secret (`generate_token: false`).
    ClientSecret,
}

/// Parameters of one generate call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenerateRequest {
    pub kind: CredentialKind,
    /// Lifetime in minutes of access tokens issued from now on; `None` keeps the broker's saved value.
    pub token_ttl_minutes: Option<i32>,
}

/// A freshly issued credential. The previous one is already revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuedCredential {
    AccessToken {
        access_token: SecretString,
        /// `access_token_expire_in` as reported, counted from when the answer arrived. Not
        /// judged here: it may be zero, negative or absurdly large.
        expires_in: ReportedLifetime,
    },
    ClientSecret {
        client_id: String,
        client_secret: SecretString,
    },
}

/// A sync-client configuration as read from the broker (never includes secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncClientConfig {
    pub generate_token: Option<bool>,
    /// Minutes.
    pub token_ttl: Option<i32>,
    pub client_id: Option<String>,
    /// `access_token_expire_in`, if the broker reports it on reads.
    pub access_token_expires_in: ReportedLifetime,
}

/// Body of the generate request; output fields are never sent.
#[derive(Serialize)]
pub(crate) struct GenerateBody {
    generate_token: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_ttl: Option<i32>,
}

impl From<&GenerateRequest> for GenerateBody {
    fn from(request: &GenerateRequest) -> Self {
        Self {
            generate_token: request.kind == CredentialKind::AccessToken,
            token_ttl: request.token_ttl_minutes,
        }
    }
}

/// The session id from `POST /api/session`: a JSON string, or `{"value": "..."}` from older releases.
pub(crate) fn parse_session_id(body: &[u8]) -> Result<SecretString, Malformed> {
    let json = parse_json(body)?;
    let id = match &json {
        Value::String(id) => Some(id.as_str()),
        Value::Object(object) => object.get("value").and_then(Value::as_str),
        _ => None,
    };
    id.filter(|id| !id.trim().is_empty())
        .map(SecretString::from)
        .ok_or_else(|| Malformed::new("the answer holds no session id"))
}

/// The useful part of a vCenter `TokenInfo`.
#[derive(Debug)]
pub(crate) struct TokenInfo {
    pub(crate) token_type: Option<String>,
    pub(crate) access_token: SecretString,
    /// `NotReported` when `expires_in` is missing or null: the lifetime is unknown.
    pub(crate) expires_in: ReportedLifetime,
}

pub(crate) fn parse_token_info(body: &[u8]) -> Result<TokenInfo, Malformed> {
    let json = parse_json(body)?;
    let object = as_object(&json)?;
    let access_token = non_empty_string(object, "access_token")
        .ok_or_else(|| Malformed::new("the answer holds no access_token"))?;
    Ok(TokenInfo {
        token_type: non_empty_string(object, "token_type"),
        access_token: SecretString::new(access_token),
        expires_in: ReportedLifetime::from_field(object, "expires_in"),
    })
}

/// The fields of a `BrokerSyncClientConfigurationMedia` answer.
pub(crate) struct SyncClientMedia {
    pub(crate) generate_token: Option<bool>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) access_token: Option<SecretString>,
    pub(crate) access_token_expire_in: ReportedLifetime,
    pub(crate) token_ttl: Option<i32>,
}

pub(crate) fn parse_sync_client_media(body: &[u8]) -> Result<SyncClientMedia, Malformed> {
    let json = parse_json(body)?;
    let object = as_object(&json)?;
    Ok(SyncClientMedia {
        generate_token: object.get("generate_token").and_then(Value::as_bool),
        client_id: non_empty_string(object, "client_id"),
        client_secret: non_empty_string(object, "client_secret").map(SecretString::new),
        access_token: non_empty_string(object, "access_token").map(SecretString::new),
        access_token_expire_in: ReportedLifetime::from_field(object, "access_token_expire_in"),
        token_ttl: object
            .get("token_ttl")
            .and_then(Value::as_i64)
            .and_then(|minutes| i32::try_from(minutes).ok()),
    })
}

impl SyncClientMedia {
    /// The credential a generate call asked for, if the answer carries it.
    pub(crate) fn into_credential(
        self,
        kind: CredentialKind,
    ) -> Result<IssuedCredential, Malformed> {
        match kind {
            CredentialKind::AccessToken => {
                let access_token = self
                    .access_token
                    .ok_or_else(|| Malformed::new("the answer holds no access_token"))?;
                Ok(IssuedCredential::AccessToken {
                    access_token,
                    expires_in: self.access_token_expire_in,
                })
            }
            CredentialKind::ClientSecret => match (self.client_id, self.client_secret) {
                (Some(client_id), Some(client_secret)) => Ok(IssuedCredential::ClientSecret {
                    client_id,
                    client_secret,
                }),
                (None, _) => Err(Malformed::new("the answer holds no client_id")),
                (Some(_), None) => Err(Malformed::new("the answer holds no client_secret")),
            },
        }
    }

    pub(crate) fn into_config(self) -> SyncClientConfig {
        SyncClientConfig {
            generate_token: self.generate_token,
            token_ttl: self.token_ttl,
            client_id: self.client_id,
            access_token_expires_in: self.access_token_expire_in,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_is_a_json_string_or_legacy_value_object() {
        assert_eq!(
            parse_session_id(br#""abc""#).map(|id| id.expose().to_owned()),
            Ok("abc".to_owned())
        );
        assert_eq!(
            parse_session_id(br#"{"value":"abc"}"#).map(|id| id.expose().to_owned()),
            Ok("abc".to_owned())
        );
        assert!(parse_session_id(b"abc").is_err());
        assert!(parse_session_id(br#""""#).is_err());
        assert!(parse_session_id(b"").is_err());
    }

    #[test]
    fn token_info_expires_in_is_typed() {
        let info =
            parse_token_info(br#"{"token_type":"Bearer","access_token":"t","expires_in":3600}"#)
                .expect("valid");
        assert_eq!(info.expires_in, ReportedLifetime::Seconds(3600));
        for body in [
            &br#"{"access_token":"t","expires_in":null}"#[..],
            br#"{"access_token":"t"}"#,
        ] {
            assert_eq!(
                parse_token_info(body).expect("valid").expires_in,
                ReportedLifetime::NotReported
            );
        }
        let info = parse_token_info(br#"{"access_token":"t","expires_in":-5}"#).expect("valid");
        assert_eq!(info.expires_in, ReportedLifetime::Seconds(-5));
        let info =
            parse_token_info(br#"{"access_token":"t","expires_in":1.5e300}"#).expect("valid");
        assert_eq!(info.expires_in, ReportedLifetime::Seconds(i64::MAX));
        let info = parse_token_info(br#"{"access_token":"t","expires_in":"soon"}"#)
            .expect("a lifetime that is no number is not fatal");
        assert_eq!(info.expires_in, ReportedLifetime::Unreadable);
    }

    #[test]
    fn parse_errors_never_quote_the_body() {
        let error = parse_token_info(br#"{"access_token": "hunter2" "#).expect_err("invalid");
        assert!(!error.0.contains("hunter2"), "{}", error.0);
        let error = parse_token_info(br#"{"token_type":"Bearer"}"#).expect_err("no token");
        assert_eq!(error.0, "the answer holds no access_token");
    }

    #[test]
    fn generate_body_omits_unset_ttl() {
        let body = GenerateBody::from(&GenerateRequest {
            kind: CredentialKind::ClientSecret,
            token_ttl_minutes: None,
        });
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"generate_token":false}"#
        );
    }
}
