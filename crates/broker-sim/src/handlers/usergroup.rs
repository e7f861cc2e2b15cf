//! The usergroup API's HTTP side (generate and read a sync client): the generate request's
//! media type, query and body, and the sync-client body or status-only error.

use std::time::Instant;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use crate::config::UnusedFields;
use crate::routes::query_param;
use crate::state::{GenerateRequest, SimState, SyncClientView, UsergroupError};

use super::{HandlerContext, IncomingRequest, SYNC_CLIENT_MEDIA_TYPE, SimResponse};

/// Characters escaped in one path segment of a `_links` href.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// Whether a `Content-Type` names the vendor media type (parameters such as charset allowed).
pub(super) fn is_sync_client_media_type(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(SYNC_CLIENT_MEDIA_TYPE))
}

/// Reads the optional generate body. `null` fields count as omitted; output fields are ignored.
pub(super) fn parse_generate_body(body: &[u8]) -> Result<GenerateRequest, UsergroupError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(GenerateRequest::default());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| UsergroupError::InvalidParameters)?;
    let fields = match &value {
        Value::Object(fields) => fields,
        Value::Null => return Ok(GenerateRequest::default()),
        _ => return Err(UsergroupError::InvalidParameters),
    };
    let generate_token = match fields.get("generate_token") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(flag)) => Some(*flag),
        Some(_) => return Err(UsergroupError::InvalidParameters),
    };
    let token_ttl = match fields.get("token_ttl") {
        None | Some(Value::Null) => None,
        Some(number) => Some(
            number
                .as_i64()
                .and_then(|ttl| i32::try_from(ttl).ok())
                .ok_or(UsergroupError::InvalidParameters)?,
        ),
    };
    Ok(GenerateRequest {
        generate_token,
        token_ttl,
    })
}

pub(super) fn generate(
    state: &mut SimState,
    context: &HandlerContext<'_>,
    request: &IncomingRequest<'_>,
    tenant: &str,
    directory_id: &str,
    now: Instant,
) -> SimResponse {
    if let Err(error) = state.authorize_usergroup(request.authorization(&["Bearer"]), tenant, now) {
        return usergroup_error(error);
    }
    if query_param(request.query, "action").as_deref() != Some("generate_credentials") {
        return usergroup_error(UsergroupError::InvalidParameters);
    }
    if !request.body.is_empty() && !is_sync_client_media_type(request.header("content-type")) {
        return SimResponse::empty(415);
    }
    let outcome = parse_generate_body(request.body)
        .and_then(|body| state.generate_credentials(tenant, directory_id, body, now));
    sync_client_response(context, outcome, tenant, directory_id)
}

/// Usergroup errors are documented as returning no data structure: status only.
fn usergroup_error(error: UsergroupError) -> SimResponse {
    SimResponse::empty(match error {
        UsergroupError::InvalidParameters => 400,
        UsergroupError::Unauthorized => 401,
        UsergroupError::Forbidden => 403,
        UsergroupError::NotFound => 404,
        UsergroupError::Conflict => 409,
    })
}

pub(super) fn sync_client_response(
    context: &HandlerContext<'_>,
    outcome: Result<SyncClientView, UsergroupError>,
    tenant: &str,
    directory_id: &str,
) -> SimResponse {
    let view = match outcome {
        Ok(view) => view,
        Err(error) => return usergroup_error(error),
    };
    let href = format!(
        "{}/usergroup/t/{}/broker/directories/{}/sync-client",
        context.base_url,
        utf8_percent_encode(tenant, PATH_SEGMENT),
        utf8_percent_encode(directory_id, PATH_SEGMENT),
    );
    let mut body = json!({
        "_links": {"self": {"href": href}},
        "generate_token": view.generate_token,
        "client_id": view.client_id,
        "token_ttl": view.token_ttl,
    });
    let optional_fields = [
        ("client_secret", view.client_secret.map(Value::from)),
        ("access_token", view.access_token.map(Value::from)),
        (
            "access_token_expire_in",
            view.access_token_expire_in.map(Value::from),
        ),
    ];
    for (name, value) in optional_fields {
        match (value, context.unused_fields) {
            (Some(value), _) => body[name] = value,
            (None, UnusedFields::Null) => body[name] = Value::Null,
            (None, UnusedFields::Absent) => {}
        }
    }
    SimResponse::json(200, SYNC_CLIENT_MEDIA_TYPE, &body)
}
