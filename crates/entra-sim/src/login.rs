//! The token endpoint (ENTRA_API.md §0): client credentials with a client secret, a certificate
//! client assertion, or a federated (cluster-issued) token.
//!
//! Refusals and their codes (all `400`; the code is in `error_codes` and the description):
//!
//! | case | `error` | AADSTS |
//! |---|---|---|
//! | unknown tenant | `invalid_request` | 90002 |
//! | `grant_type` not `client_credentials` | `unsupported_grant_type` | 70003 |
//! | `client_id` or `scope` missing | `invalid_request` | 900144 |
//! | `scope` without `/.default` | `invalid_scope` | 1002012 |
//! | `scope` of an unknown resource | `invalid_resource` | 500011 |
//! | unknown app | `unauthorized_client` | 700016 |
//! | no credential | `invalid_client` | 7000216 |
//! | secret and assertion both, or a wrong `client_assertion_type` | `invalid_request` | 90014 |
//! | wrong secret | `invalid_client` | 7000215 |
//! | expired secret | `invalid_client` | 7000222 |
//! | assertion not a JWT, or without `jti`/`exp` | `invalid_client` | 50027 |
//! | certificate assertion not RS256/PS256 | `invalid_client` | 5002738 |
//! | unknown certificate, bad signature (both kinds) | `invalid_client` | 700027 |
//! | `sub` ≠ client id | `invalid_client` | 700021 |
//! | `aud` ≠ token URL | `invalid_client` | 50012 |
//! | expired or not yet valid (both kinds) | `invalid_client` | 700024 |
//! | `jti` used before (simulator's choice: the contract has no code) | `invalid_client` | 700236 |
//! | federated: no credential for `iss` / `sub` / `aud` | `invalid_client` | 700211 / 700213 / 700212 |

use std::time::{Instant, SystemTime};

use serde_json::json;

use crate::apps::{AppRegistration, FederatedCredential};
use crate::jwt::{JwtAlgorithm, ParsedJwt, parse};
use crate::keys::unix_seconds;
use crate::response::{OauthError, SimResponse};
use crate::state::SimState;

pub(crate) const INVALID_SECRET: &str = "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.";
pub(crate) const EXPIRED_SECRET: &str = "The provided client secret keys for app are expired. Visit the Azure portal to create new keys for your app.";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Roots of Microsoft Graph in each cloud (ENTRA_API.md §0), and Graph's app id.
const GRAPH_RESOURCES: [&str; 5] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    "00000003-0000-0000-c000-000000000000",
];

/// A token request as the form carried it.
pub(crate) struct TokenRequest<'a> {
    /// The tenant segment of the path.
    pub tenant: &'a str,
    /// `{simulator url}/{tenant}/oauth2/v2.0/token`: what a client assertion's `aud` must be.
    pub token_url: String,
    /// The simulator's URL: `{url}/.default` is accepted as the Graph scope too.
    pub base_url: &'a str,
    pub form: &'a [(String, String)],
}

impl TokenRequest<'_> {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }
}

/// Answers a token request: `200` with a new access token, or the OAuth error.
pub(crate) fn token(state: &mut SimState, request: &TokenRequest<'_>, now: Instant) -> SimResponse {
    match authenticate(state, request) {
        Ok(client_id) => {
            let (access_token, lifetime) = state.issue_token(&client_id, now);
            let body = json!({
                "token_type": "Bearer",
                "expires_in": lifetime.as_secs(),
                "ext_expires_in": lifetime.as_secs(),
                "access_token": access_token,
            });
            SimResponse::json(200, "application/json; charset=utf-8", &body)
        }
        Err(error) => error.response(),
    }
}

/// The client id the request proves to be, or why not.
fn authenticate(state: &mut SimState, request: &TokenRequest<'_>) -> Result<String, OauthError> {
    if !request.tenant.eq_ignore_ascii_case(&state.tenant_id) {
        return Err(OauthError::new(
            "invalid_request",
            90002,
            format!(
                "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
                request.tenant
            ),
        ));
    }
    if request.field("grant_type") != Some("client_credentials") {
        return Err(OauthError::new(
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ));
    }
    let client_id = request
        .field("client_id")
        .ok_or_else(|| missing("client_id"))?;
    check_scope(request, &state.tenant_id)?;
    let app = state.app(client_id).ok_or_else(|| {
        OauthError::new(
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                request.tenant
            ),
        )
    })?;
    match (
        request.field("client_secret"),
        request.field("client_assertion"),
    ) {
        (Some(secret), None) => check_secret(app, secret)?,
        (None, Some(assertion)) => {
            if request.field("client_assertion_type") != Some(JWT_BEARER) {
                return Err(both_or_wrong_type());
            }
            check_assertion(state, client_id, assertion, &request.token_url)?;
        }
        (None, None) => {
            return Err(OauthError::new(
                "invalid_client",
                7_000_216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            ));
        }
        (Some(_), Some(_)) => return Err(both_or_wrong_type()),
    }
    Ok(client_id.to_owned())
}

fn missing(parameter: &str) -> OauthError {
    OauthError::new(
        "invalid_request",
        900_144,
        format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

fn both_or_wrong_type() -> OauthError {
    OauthError::new(
        "invalid_request",
        90014,
        "Send either client_secret, or client_assertion with client_assertion_type jwt-bearer.",
    )
}

fn check_scope(request: &TokenRequest<'_>, tenant: &str) -> Result<(), OauthError> {
    let scope = request.field("scope").ok_or_else(|| missing("scope"))?;
    let Some(resource) = scope.strip_suffix("/.default") else {
        return Err(OauthError::new(
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let resource = resource.trim_end_matches('/');
    if resource == request.base_url || GRAPH_RESOURCES.contains(&resource) {
        Ok(())
    } else {
        Err(OauthError::new(
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}."
            ),
        ))
    }
}

fn check_secret(app: &AppRegistration, secret: &str) -> Result<(), OauthError> {
    let matching: Vec<_> = app
        .secrets
        .iter()
        .filter(|known| known.value == secret)
        .collect();
    if matching.is_empty() {
        return Err(OauthError::new("invalid_client", 7_000_215, INVALID_SECRET));
    }
    let now = SystemTime::now();
    if matching.iter().all(|known| known.is_expired(now)) {
        return Err(OauthError::new("invalid_client", 7_000_222, EXPIRED_SECRET));
    }
    Ok(())
}

fn assertion_error(code: u32, description: impl Into<String>) -> OauthError {
    OauthError::new("invalid_client", code, description)
}

/// A client assertion signed with a registered certificate (`iss` = client id), or else a
/// token of another issuer trusted through a federated credential.
fn check_assertion(
    state: &mut SimState,
    client_id: &str,
    assertion: &str,
    token_url: &str,
) -> Result<(), OauthError> {
    let jwt = parse(assertion)
        .ok_or_else(|| assertion_error(50027, "JWT token is invalid or is malformed."))?;
    let app = state
        .app(client_id)
        .ok_or_else(|| assertion_error(700_016, "Application not found."))?;
    let now = i64::try_from(unix_seconds(SystemTime::now())).unwrap_or(i64::MAX);
    if jwt.claim_str("iss") == Some(client_id) {
        check_certificate_assertion(app, &jwt, client_id, token_url)?;
        check_lifetime(&jwt, now)?;
        let jti = jwt.claim_str("jti").ok_or_else(|| {
            assertion_error(
                50027,
                "JWT token is invalid or is malformed: the client assertion has no 'jti'.",
            )
        })?;
        let exp = jwt.claim_seconds("exp").unwrap_or(now);
        if !state.use_assertion_id(client_id, jti, exp, now) {
            return Err(assertion_error(
                700_236,
                "The client assertion was already used: its 'jti' was seen before.",
            ));
        }
        Ok(())
    } else {
        let credential = matching_federated_credential(app, &jwt)?;
        if !jwt.verifies_with(
            &credential.key,
            &[
                JwtAlgorithm::Rs256,
                JwtAlgorithm::Ps256,
                JwtAlgorithm::Es256,
            ],
        ) {
            return Err(assertion_error(
                700_027,
                "Client assertion failed signature validation: the federated token's signature does not verify.",
            ));
        }
        check_lifetime(&jwt, now)
    }
}

fn check_certificate_assertion(
    app: &AppRegistration,
    jwt: &ParsedJwt,
    client_id: &str,
    token_url: &str,
) -> Result<(), OauthError> {
    let algorithm = jwt.header_str("alg").unwrap_or_default();
    if !matches!(
        jwt.algorithm(),
        Some(JwtAlgorithm::Rs256 | JwtAlgorithm::Ps256)
    ) {
        return Err(assertion_error(
            5_002_738,
            format!("Invalid JWT token. '{algorithm}' is not a supported signature algorithm."),
        ));
    }
    let certificate = match (jwt.header_str("x5t#S256"), jwt.header_str("x5t")) {
        (Some(sha256), _) => app.certificates.iter().find(|known| known.thumbprints.sha256 == sha256),
        (None, Some(sha1)) => app.certificates.iter().find(|known| known.thumbprints.sha1 == sha1),
        (None, None) => None,
    }
    .ok_or_else(|| {
        assertion_error(
            700_027,
            "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]",
        )
    })?;
    if !jwt.verifies_with(
        &certificate.key,
        &[JwtAlgorithm::Rs256, JwtAlgorithm::Ps256],
    ) {
        return Err(assertion_error(
            700_027,
            "Client assertion contains an invalid signature.",
        ));
    }
    if jwt.claim_str("sub") != Some(client_id) {
        return Err(assertion_error(
            700_021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    if jwt.audiences() != [token_url] {
        return Err(assertion_error(
            50012,
            format!(
                "Client assertion audience claim does not match the token endpoint '{token_url}'."
            ),
        ));
    }
    Ok(())
}

/// `exp` must lie ahead and `nbf`, when given, not ahead (no clock skew allowed).
fn check_lifetime(jwt: &ParsedJwt, now: i64) -> Result<(), OauthError> {
    let exp = jwt
        .claim_seconds("exp")
        .ok_or_else(|| assertion_error(50027, "JWT token is invalid or is malformed: no 'exp'."))?;
    let not_before = jwt.claim_seconds("nbf").unwrap_or(i64::MIN);
    if exp <= now || not_before > now {
        return Err(assertion_error(
            700_024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, expiry time of assertion {exp}."
            ),
        ));
    }
    Ok(())
}

fn no_federated_match(code: u32, claim: &str, value: &str) -> OauthError {
    assertion_error(
        code,
        format!(
            "No matching federated identity record found for presented assertion {claim} '{value}'."
        ),
    )
}

/// The federated credential matching the token's issuer, subject and audience.
fn matching_federated_credential<'a>(
    app: &'a AppRegistration,
    jwt: &ParsedJwt,
) -> Result<&'a FederatedCredential, OauthError> {
    let issuer = jwt.claim_str("iss").unwrap_or_default();
    let subject = jwt.claim_str("sub").unwrap_or_default();
    let audiences = jwt.audiences();
    let of_issuer: Vec<_> = app
        .federated_credentials
        .iter()
        .filter(|credential| credential.issuer == issuer)
        .collect();
    if of_issuer.is_empty() {
        return Err(no_federated_match(700_211, "issuer", issuer));
    }
    let of_subject: Vec<_> = of_issuer
        .into_iter()
        .filter(|credential| credential.subject == subject)
        .collect();
    if of_subject.is_empty() {
        return Err(no_federated_match(700_213, "subject", subject));
    }
    of_subject
        .into_iter()
        .find(|credential| {
            credential
                .audiences
                .iter()
                .any(|audience| audiences.contains(&audience.as_str()))
        })
        .ok_or_else(|| no_federated_match(700_212, "audience", &audiences.join(", ")))
}
