//! The SCIM probe's HTTP side: the fixed users, the one supported filter and SCIM errors.

use std::time::Instant;

use serde_json::{Value, json};

use crate::routes::query_param;
use crate::state::{ProbeError, SimState};

use super::{IncomingRequest, SCIM_JSON, SimResponse};

/// Users every tenant of the simulator holds, for the SCIM ListResponse.
pub(super) const SCIM_USERS: [(&str, &str); 2] = [
    ("0b4c1c3e-6f1a-4d43-9d38-2f6f0a3f4a11", "alice@example.com"),
    ("7d2e9a55-1c8b-4b7e-8f0d-5a6b7c8d9e22", "bob@example.com"),
];

pub(super) fn scim_probe(
    state: &SimState,
    request: &IncomingRequest<'_>,
    tenant: &str,
    now: Instant,
) -> SimResponse {
    let token = request.authorization(&["Bearer", "HZN"]);
    match state.probe(token, tenant, now) {
        Ok(()) => {
            let Ok(users) = filtered_users(query_param(request.query, "filter").as_deref()) else {
                return scim_error_of_type(400, "invalidFilter", "Unsupported filter");
            };
            let count = query_param(request.query, "count")
                .and_then(|count| count.parse::<usize>().ok())
                .unwrap_or(users.len());
            let resources: Vec<Value> = users
                .iter()
                .take(count)
                .map(|(id, name)| {
                    json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "id": id,
                        "userName": name,
                        "active": true,
                    })
                })
                .collect();
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": users.len(),
                "itemsPerPage": resources.len(),
                "startIndex": 1,
                "Resources": resources,
            });
            SimResponse::json(200, SCIM_JSON, &body)
        }
        Err(ProbeError::Unauthorized) => scim_error(401, "Unauthorized"),
        Err(ProbeError::UnknownTenant) => scim_error(404, "Tenant not found"),
    }
}

/// The users a SCIM `filter` selects: all without one; for `userName eq "value"` (the only
/// filter supported, as Entra ID's credential check sends it) those whose userName equals the
/// value ignoring case, as SCIM compares userName. `Err` for any other filter.
pub(super) fn filtered_users(
    filter: Option<&str>,
) -> Result<Vec<(&'static str, &'static str)>, ()> {
    let Some(filter) = filter else {
        return Ok(SCIM_USERS.to_vec());
    };
    let mut words = filter.trim().splitn(3, ' ');
    let (Some(attribute), Some(operator), Some(value)) = (words.next(), words.next(), words.next())
    else {
        return Err(());
    };
    let value = value
        .trim()
        .strip_prefix('"')
        .and_then(|value| value.strip_suffix('"'))
        .ok_or(())?;
    if !attribute.eq_ignore_ascii_case("userName") || !operator.eq_ignore_ascii_case("eq") {
        return Err(());
    }
    Ok(SCIM_USERS
        .iter()
        .copied()
        .filter(|(_, name)| name.eq_ignore_ascii_case(value))
        .collect())
}

fn scim_error(status: u16, detail: &str) -> SimResponse {
    scim_error_body(status, None, detail)
}

fn scim_error_of_type(status: u16, scim_type: &str, detail: &str) -> SimResponse {
    scim_error_body(status, Some(scim_type), detail)
}

fn scim_error_body(status: u16, scim_type: Option<&str>, detail: &str) -> SimResponse {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    });
    if let Some(scim_type) = scim_type {
        body["scimType"] = json!(scim_type);
    }
    SimResponse::json(status, SCIM_JSON, &body)
}
