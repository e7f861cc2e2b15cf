//! Graph v1.0 calls on a service principal's synchronization (ENTRA_API.md §1): authorization,
//! permission, lookup, then the call itself.
//!
//! Order of checks: a live access token of the tenant (else `401 InvalidAuthenticationToken`);
//! one of the two permissions in effect (else `403 Authorization_RequestDenied`); the service
//! principal (else `404 Request_ResourceNotFound`); ownership when only
//! `Application.ReadWrite.OwnedBy` is held (else `403`); the job (else `404`).

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::apps::Permission;
use crate::config::SecretMasking;
use crate::jobs::ResetScope;
use crate::response::{GraphError, SimResponse};
use crate::routes::{Call, Route};
use crate::scim::ScimCredentials;
use crate::secrets::{BASE_ADDRESS, KeyCheck, SECRET_TOKEN, check_key};
use crate::state::{Principal, SimState, TokenStatus};

/// The error code and message of a failed `validateCredentials` (the contract leaves the shape
/// unknown; this is the simulator's choice, named after what the portal shows).
pub const VALIDATION_FAILURE_CODE: &str =
    "SystemForCrossDomainIdentityManagementCredentialValidationFailure";

/// A Graph request, as the handlers read it.
pub(crate) struct GraphRequest<'a> {
    pub route: &'a Route,
    pub bearer: Option<&'a str>,
    pub body: &'a [u8],
    /// For `PUT /secrets`: how long reads keep seeing the previous values.
    pub read_lag: Option<Duration>,
    pub masking: SecretMasking,
}

/// What a Graph request comes to: an answer now, or a SCIM call to make first (outside the
/// state lock) for `validateCredentials`.
pub(crate) enum Handled {
    Answer(Result<SimResponse, GraphError>),
    Validate(ScimCredentials),
}

pub(crate) fn handle(state: &mut SimState, request: &GraphRequest<'_>, now: Instant) -> Handled {
    let service_principal = request
        .route
        .service_principal
        .as_deref()
        .unwrap_or_default();
    let principal = match authorize(state, request.bearer, service_principal, now) {
        Ok(principal) => principal,
        Err(error) => return Handled::Answer(Err(error)),
    };
    let job_id = request.route.job.as_deref().unwrap_or_default();
    let context = format!(
        "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('{service_principal}')/synchronization"
    );
    let answer = match request.route.call {
        Call::ListJobs => {
            let jobs: Vec<Value> = principal
                .jobs
                .iter()
                .map(crate::jobs::JobSnapshot::to_json)
                .collect();
            Ok(SimResponse::graph(
                &json!({"@odata.context": format!("{context}/jobs"), "value": jobs}),
            ))
        }
        Call::GetJob => job(principal, job_id).map(|job| {
            let mut body = job.to_json();
            body["@odata.context"] = Value::from(format!("{context}/jobs/$entity"));
            SimResponse::graph(&body)
        }),
        Call::PutSecrets => put_secrets(principal, request, now),
        Call::GetSecrets => {
            let value: Vec<Value> = principal
                .secrets
                .masked(now, request.masking)
                .into_iter()
                .map(|(key, value)| json!({"key": key, "value": value}))
                .collect();
            Ok(SimResponse::graph(
                &json!({"@odata.context": format!("{context}/secrets"), "value": value}),
            ))
        }
        Call::ValidateCredentials => {
            return match job(principal, job_id)
                .and_then(|_| validation_credentials(principal, request.body, now))
            {
                Ok(credentials) => Handled::Validate(credentials),
                Err(error) => Handled::Answer(Err(error)),
            };
        }
        Call::RestartJob => restart(principal, job_id, request.body),
        Call::StartJob => principal
            .job_mut(job_id)
            .ok_or_else(|| job_not_found(job_id))
            .map(|job| {
                job.start(SystemTime::now());
                SimResponse::empty(204)
            }),
        Call::Token | Call::Unknown => Err(unknown_route()),
    };
    Handled::Answer(answer)
}

pub(crate) fn unknown_route() -> GraphError {
    GraphError::new(400, "BadRequest", "Resource not found for the segment.")
}

/// The service principal the token's app may work on, or why not.
fn authorize<'a>(
    state: &'a mut SimState,
    bearer: Option<&str>,
    service_principal: &str,
    now: Instant,
) -> Result<&'a mut Principal, GraphError> {
    let token = bearer.ok_or_else(|| {
        GraphError::new(401, "InvalidAuthenticationToken", "Access token is empty.")
    })?;
    let client_id = match state.token_status(token, now) {
        TokenStatus::Live { client_id } => client_id,
        TokenStatus::Expired { .. } => {
            return Err(GraphError::new(
                401,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            ));
        }
        TokenStatus::Unknown => {
            return Err(GraphError::new(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            ));
        }
    };
    let all = state.holds(&client_id, Permission::SynchronizationReadWriteAll, now);
    let owned_by = state.holds(&client_id, Permission::ApplicationReadWriteOwnedBy, now);
    if !all && !owned_by {
        return Err(GraphError::standard(403));
    }
    let principal = state.principals.get_mut(service_principal).ok_or_else(|| {
        GraphError::new(
            404,
            "Request_ResourceNotFound",
            format!("Resource '{service_principal}' does not exist or one of its queried reference-property objects are not present."),
        )
    })?;
    if !all && !principal.owners.contains(&client_id) {
        return Err(GraphError::standard(403));
    }
    Ok(principal)
}

fn job_not_found(job_id: &str) -> GraphError {
    GraphError::new(
        404,
        "Request_ResourceNotFound",
        format!("The synchronization job '{job_id}' was not found."),
    )
}

fn job<'a>(
    principal: &'a Principal,
    job_id: &str,
) -> Result<&'a crate::jobs::JobSnapshot, GraphError> {
    principal
        .jobs
        .iter()
        .find(|job| job.id == job_id)
        .ok_or_else(|| job_not_found(job_id))
}

fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError::new(400, "BadRequest", message)
}

/// The `{"key":…,"value":…}` pairs of a list; keys checked, values never echoed.
fn key_value_pairs(
    list: Option<&Value>,
    field: &str,
) -> Result<Vec<(String, String, KeyCheck)>, GraphError> {
    let items = list.and_then(Value::as_array).ok_or_else(|| {
        bad_request(format!(
            "The request body must hold '{field}': a list of key and value pairs."
        ))
    })?;
    items
        .iter()
        .map(
            |item| match (item["key"].as_str(), item["value"].as_str()) {
                (Some(key), Some(value)) => Ok((key.to_owned(), value.to_owned(), check_key(key))),
                _ => Err(bad_request(format!(
                    "Every item of '{field}' needs a string 'key' and a string 'value'."
                ))),
            },
        )
        .collect()
}

fn parse_json(body: &[u8]) -> Result<Value, GraphError> {
    serde_json::from_slice(body).map_err(|_| bad_request("The request body is not valid JSON."))
}

fn put_secrets(
    principal: &mut Principal,
    request: &GraphRequest<'_>,
    now: Instant,
) -> Result<SimResponse, GraphError> {
    let body = parse_json(request.body)?;
    let pairs = key_value_pairs(body.get("value"), "value")?;
    if let Some((key, ..)) = pairs.iter().find(|(_, _, check)| *check != KeyCheck::Known) {
        return Err(bad_request(format!(
            "Invalid synchronization secret key '{key}' (keys are case sensitive)."
        )));
    }
    let pairs = pairs
        .into_iter()
        .map(|(key, value, _)| (key, value))
        .collect();
    principal
        .secrets
        .upsert(pairs, now, request.read_lag.map(|lag| now + lag));
    Ok(SimResponse::empty(204))
}

/// The credentials `validateCredentials` is to try: the saved (visible) ones, or those given.
fn validation_credentials(
    principal: &Principal,
    body: &[u8],
    now: Instant,
) -> Result<ScimCredentials, GraphError> {
    let body = parse_json(body)?;
    if body["useSavedCredentials"].as_bool() == Some(true) {
        let saved = principal.secrets.visible(now);
        return Ok(ScimCredentials {
            base_address: saved.get(BASE_ADDRESS).cloned(),
            token: saved.get(SECRET_TOKEN).cloned(),
        });
    }
    let pairs = key_value_pairs(body.get("credentials"), "credentials")?;
    let mut credentials = ScimCredentials {
        base_address: None,
        token: None,
    };
    for (key, value, check) in pairs {
        match check {
            // What was seen of the real service with `baseAddress` (ENTRA_API.md §1).
            KeyCheck::WrongCase => return Err(GraphError::standard(500)),
            KeyCheck::Unknown => {
                return Err(bad_request(format!(
                    "Invalid synchronization secret key '{key}'."
                )));
            }
            KeyCheck::Known if key == BASE_ADDRESS => credentials.base_address = Some(value),
            KeyCheck::Known if key == SECRET_TOKEN => credentials.token = Some(value),
            KeyCheck::Known => {}
        }
    }
    Ok(credentials)
}

fn restart(
    principal: &mut Principal,
    job_id: &str,
    body: &[u8],
) -> Result<SimResponse, GraphError> {
    let scope = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match &parse_json(body)?["criteria"]["resetScope"] {
            Value::Null => None,
            Value::String(text) => Some(ResetScope::parse(text).map_err(|part| {
                bad_request(format!(
                    "'{part}' is not a member of synchronizationJobRestartScope."
                ))
            })?),
            _ => {
                return Err(bad_request(
                    "criteria.resetScope must be a string of flags.",
                ));
            }
        }
    };
    let job = principal
        .job_mut(job_id)
        .ok_or_else(|| job_not_found(job_id))?;
    job.restart(scope, SystemTime::now());
    Ok(SimResponse::empty(204))
}

/// The answer to `validateCredentials` once the SCIM endpoint was tried.
pub(crate) fn validation_answer(
    outcome: &crate::scim::ScimOutcome,
    base_address: Option<&str>,
) -> Result<SimResponse, GraphError> {
    if outcome.is_accepted() {
        return Ok(SimResponse::empty(204));
    }
    Err(GraphError::new(
        400,
        VALIDATION_FAILURE_CODE,
        format!(
            "You appear to have entered invalid credentials: {outcome} (BaseAddress '{}').",
            base_address.unwrap_or("not set")
        ),
    ))
}

/// Names of the secret keys a `PUT /secrets` or `validateCredentials` body carries, for the
/// request log (never the values).
pub(crate) fn keys_in_body(call: Call, body: &[u8]) -> Vec<String> {
    let field = match call {
        Call::PutSecrets => "value",
        Call::ValidateCredentials => "credentials",
        _ => return Vec::new(),
    };
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|body| {
            body.get(field).and_then(Value::as_array).map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["key"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}
