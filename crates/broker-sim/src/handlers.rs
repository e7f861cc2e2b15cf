//! HTTP semantics of each endpoint: read headers, query and body, call the state transition,
//! render its outcome with the vendor's statuses, media types and bodies.
//!
//! Nothing here awaits: handling runs under the state lock and is plain code.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use crate::config::{ExpiresIn, UnusedFields};
use crate::faults::FaultBody;
use crate::routes::{Endpoint, Route, query_param};
use crate::state::{
    BrokerClient, BrokerTokenError, GenerateRequest, ProbeError, SessionError, SimState,
    SyncClientView, UsergroupError,
};
use crate::vapi;

/// The vendor media type of sync-client configurations (request and response).
pub const SYNC_CLIENT_MEDIA_TYPE: &str =
    "application/vnd.vmware.vidm.usergroup.broker.directory.syncclientconfiguration+json";
const JSON: &str = "application/json";
const SCIM_JSON: &str = "application/scim+json";
const SESSION_HEADER: &str = "vmware-api-session-id";

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

/// An answer, independent of hyper so that handlers stay plain functions. No `Debug`: bodies
/// carry tokens and secrets.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SimResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SimResponse {
    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn json(status: u16, content_type: &str, body: &Value) -> Self {
        Self {
            status,
            content_type: Some(content_type.to_owned()),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn vapi(status: u16, body: &Value) -> Self {
        let mut response = Self::json(status, JSON, body);
        if status == 401 {
            response
                .headers
                .push(("www-authenticate".to_owned(), vapi::CHALLENGE.to_owned()));
        }
        response
    }
}

/// The parts of a request the handlers read.
pub(crate) struct IncomingRequest<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

impl IncomingRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The credentials after an `Authorization` scheme (case-insensitive) among `schemes`.
    fn authorization(&self, schemes: &[&str]) -> Option<&str> {
        let (scheme, credentials) = self.header("authorization")?.trim().split_once(' ')?;
        schemes
            .iter()
            .any(|wanted| scheme.eq_ignore_ascii_case(wanted))
            .then(|| credentials.trim())
    }
}

/// What handlers need besides the state.
pub(crate) struct HandlerContext<'a> {
    pub base_url: &'a str,
    pub unused_fields: UnusedFields,
}

pub(crate) fn handle(
    state: &mut SimState,
    context: &HandlerContext<'_>,
    route: &Route,
    request: &IncomingRequest<'_>,
    now: Instant,
) -> SimResponse {
    let tenant = route.tenant.as_deref().unwrap_or_default();
    let directory_id = route.directory_id.as_deref().unwrap_or_default();
    match route.endpoint {
        Endpoint::Login => login(state, request, now),
        Endpoint::Logout => match state.logout(request.header(SESSION_HEADER), now) {
            Ok(()) => SimResponse::empty(204),
            Err(SessionError::Unauthenticated) => SimResponse::vapi(401, &vapi::unauthenticated()),
        },
        Endpoint::OperatorClientToken => {
            broker_token(state, request, BrokerClient::OperatorClient, now)
        }
        Endpoint::AdminClientToken => broker_token(
            state,
            request,
            BrokerClient::AdminClient {
                tenant: tenant.to_owned(),
            },
            now,
        ),
        Endpoint::Generate => generate(state, context, request, tenant, directory_id, now),
        Endpoint::ReadSyncClient => {
            let outcome = state
                .authorize_usergroup(request.authorization(&["Bearer"]), tenant, now)
                .and_then(|()| state.read_sync_client(tenant, directory_id, now));
            sync_client_response(context, outcome, tenant, directory_id)
        }
        Endpoint::ScimProbe => scim_probe(state, request, tenant, now),
        Endpoint::Unknown => SimResponse::vapi(404, &vapi::path_not_found()),
    }
}

fn login(state: &mut SimState, request: &IncomingRequest<'_>, now: Instant) -> SimResponse {
    let credentials = request
        .authorization(&["Basic"])
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let session = credentials.as_deref().and_then(|credentials| {
        let (username, password) = credentials.split_once(':')?;
        state.login(username, password, now)
    });
    match session {
        Some(id) => SimResponse::json(201, JSON, &json!(id)),
        None => SimResponse::vapi(401, &vapi::unauthenticated()),
    }
}

fn broker_token(
    state: &mut SimState,
    request: &IncomingRequest<'_>,
    client: BrokerClient,
    now: Instant,
) -> SimResponse {
    let tenant = match &client {
        BrokerClient::AdminClient { tenant } => tenant.clone(),
        BrokerClient::OperatorClient => String::new(),
    };
    match state.issue_broker_token(request.header(SESSION_HEADER), client, now) {
        Ok(issued) => {
            let mut body = json!({
                "token_type": "Bearer",
                "access_token": issued.access_token,
            });
            match issued.expires_in {
                ExpiresIn::Seconds(seconds) => body["expires_in"] = json!(seconds),
                ExpiresIn::Null => body["expires_in"] = Value::Null,
                ExpiresIn::Missing => {}
            }
            SimResponse::json(200, JSON, &body)
        }
        Err(BrokerTokenError::Unauthenticated) => SimResponse::vapi(401, &vapi::unauthenticated()),
        Err(BrokerTokenError::Unauthorized) => SimResponse::vapi(403, &vapi::unauthorized()),
        Err(BrokerTokenError::UnknownTenant) => {
            SimResponse::vapi(404, &vapi::tenant_not_found(&tenant))
        }
    }
}

/// Whether a `Content-Type` names the vendor media type (parameters such as charset allowed).
fn is_sync_client_media_type(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(SYNC_CLIENT_MEDIA_TYPE))
}

/// Reads the optional generate body. `null` fields count as omitted; output fields are ignored.
fn parse_generate_body(body: &[u8]) -> Result<GenerateRequest, UsergroupError> {
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

fn generate(
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

fn sync_client_response(
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

/// Users every tenant of the simulator holds, for the SCIM ListResponse.
const SCIM_USERS: [(&str, &str); 2] = [
    ("0b4c1c3e-6f1a-4d43-9d38-2f6f0a3f4a11", "alice@example.com"),
    ("7d2e9a55-1c8b-4b7e-8f0d-5a6b7c8d9e22", "bob@example.com"),
];

fn scim_probe(
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
fn filtered_users(filter: Option<&str>) -> Result<Vec<(&'static str, &'static str)>, ()> {
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

/// The answer of a `Respond` fault.
pub(crate) fn fault_response(status: u16, body: &FaultBody) -> SimResponse {
    match body {
        FaultBody::Empty => SimResponse::empty(status),
        FaultBody::Vapi {
            error_type,
            message,
        } => SimResponse::vapi(
            status,
            &vapi::error_body(error_type, "com.vmware.broker_sim.injected", message, &[]),
        ),
        FaultBody::Raw { content_type, body } => SimResponse {
            status,
            content_type: Some(content_type.clone()),
            headers: Vec::new(),
            body: body.clone().into_bytes(),
        },
    }
}

/// A `200` whose body is cut off mid-JSON, in the endpoint's own content type.
pub(crate) fn malformed_success(endpoint: Endpoint) -> SimResponse {
    let (content_type, body) = match endpoint {
        Endpoint::Login => (JSON, "\"b1f0c6d2"),
        Endpoint::OperatorClientToken | Endpoint::AdminClientToken => {
            (JSON, "{\"token_type\":\"Bearer\",\"access_token\":\"eyJ0eX")
        }
        Endpoint::Generate | Endpoint::ReadSyncClient => (
            SYNC_CLIENT_MEDIA_TYPE,
            "{\"generate_token\":true,\"access_token\":\"eyJ0eXAiOiJKV1Qi",
        ),
        Endpoint::ScimProbe => (SCIM_JSON, "{\"schemas\":[\"urn:ietf:params:scim"),
        Endpoint::Logout | Endpoint::Unknown => (JSON, "{\"value\":"),
    };
    SimResponse {
        status: 200,
        content_type: Some(content_type.to_owned()),
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

/// Name of the field [`oversized`] pads answers with.
const PADDING_FIELD: &str = "_padding";

/// `response` with a JSON body of at least `bytes` bytes: its JSON object (or an empty one)
/// plus a long string field. Status and headers stay; the content type becomes JSON if the
/// answer had none.
pub(crate) fn oversized(response: SimResponse, bytes: usize) -> SimResponse {
    let mut object = match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(object)) => object,
        _ => serde_json::Map::new(),
    };
    object.insert(PADDING_FIELD.to_owned(), Value::from("x".repeat(bytes)));
    SimResponse {
        content_type: response.content_type.or_else(|| Some(JSON.to_owned())),
        body: Value::Object(object).to_string().into_bytes(),
        ..response
    }
}

/// `response` with `field` of its JSON object body set to the JSON text `json`, or removed
/// (`None`). Bodies that are not JSON objects, and JSON text that does not parse, change nothing.
pub(crate) fn set_field(response: SimResponse, field: &str, json: Option<&str>) -> SimResponse {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    match json.map(serde_json::from_str::<Value>) {
        None => {
            object.remove(field);
        }
        Some(Ok(value)) => {
            object.insert(field.to_owned(), value);
        }
        Some(Err(_)) => return response,
    }
    SimResponse {
        body: Value::Object(object).to_string().into_bytes(),
        ..response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_check_allows_parameters_and_case() {
        assert!(is_sync_client_media_type(Some(SYNC_CLIENT_MEDIA_TYPE)));
        assert!(is_sync_client_media_type(Some(
            "Application/VND.vmware.vidm.usergroup.broker.directory.syncclientconfiguration+json; charset=utf-8"
        )));
        assert!(!is_sync_client_media_type(Some("application/json")));
        assert!(!is_sync_client_media_type(None));
    }

    #[test]
    fn generate_body_fields_are_optional_and_typed() {
        assert_eq!(parse_generate_body(b""), Ok(GenerateRequest::default()));
        assert_eq!(parse_generate_body(b"{}"), Ok(GenerateRequest::default()));
        assert_eq!(
            parse_generate_body(br#"{"generate_token":false,"token_ttl":5,"client_secret":"x"}"#),
            Ok(GenerateRequest {
                generate_token: Some(false),
                token_ttl: Some(5)
            })
        );
        assert_eq!(
            parse_generate_body(br#"{"generate_token":null,"token_ttl":null}"#),
            Ok(GenerateRequest::default())
        );
        for invalid in [
            &br#"{"generate_token":"yes"}"#[..],
            br#"{"token_ttl":1.5}"#,
            br#"{"token_ttl":3000000000}"#,
            br"[1]",
            br"{not json",
        ] {
            assert_eq!(
                parse_generate_body(invalid),
                Err(UsergroupError::InvalidParameters)
            );
        }
    }

    #[test]
    fn oversized_answers_keep_their_fields_and_stay_valid_json() {
        let real = SimResponse::json(200, SYNC_CLIENT_MEDIA_TYPE, &json!({"access_token": "t"}));
        let padded = oversized(real, 1000);
        assert!(padded.body.len() >= 1000);
        let body: Value = serde_json::from_slice(&padded.body).expect("valid JSON");
        assert_eq!(body["access_token"], "t");
        assert_eq!(padded.content_type.as_deref(), Some(SYNC_CLIENT_MEDIA_TYPE));
        let padded = oversized(SimResponse::empty(404), 10);
        assert_eq!(padded.status, 404);
        assert_eq!(padded.content_type.as_deref(), Some(JSON));
        assert!(serde_json::from_slice::<Value>(&padded.body).is_ok());
    }

    #[test]
    fn set_field_replaces_or_removes_one_field_of_json_objects_only() {
        let real = || SimResponse::json(200, JSON, &json!({"a": 1, "b": 2}));
        let changed = set_field(real(), "a", Some("1e30"));
        let body: Value = serde_json::from_slice(&changed.body).expect("JSON");
        assert_eq!(body, json!({"a": 1e30, "b": 2}));
        let removed = set_field(real(), "b", None);
        let body: Value = serde_json::from_slice(&removed.body).expect("JSON");
        assert_eq!(body, json!({"a": 1}));
        let untouched = set_field(SimResponse::empty(401), "a", Some("null"));
        assert!(untouched.body.is_empty());
    }

    #[test]
    fn scim_filters_select_users_by_user_name_ignoring_case() {
        assert_eq!(filtered_users(None).map(|users| users.len()), Ok(2));
        assert_eq!(
            filtered_users(Some("userName eq \"ALICE@example.com\"")),
            Ok(vec![SCIM_USERS[0]])
        );
        assert_eq!(
            filtered_users(Some("userName eq \"3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c\"")),
            Ok(Vec::new())
        );
        assert_eq!(
            filtered_users(Some("username EQ \"bob@example.com\"")).map(|users| users.len()),
            Ok(1)
        );
        for unsupported in [
            "userName co \"a\"",
            "displayName eq \"a\"",
            "userName eq a",
            "userName",
        ] {
            assert_eq!(filtered_users(Some(unsupported)), Err(()), "{unsupported}");
        }
    }

    #[test]
    fn malformed_success_bodies_do_not_parse_as_json() {
        for endpoint in [
            Endpoint::Login,
            Endpoint::OperatorClientToken,
            Endpoint::Generate,
            Endpoint::ScimProbe,
            Endpoint::Unknown,
        ] {
            let response = malformed_success(endpoint);
            assert_eq!(response.status, 200);
            assert!(serde_json::from_slice::<Value>(&response.body).is_err());
        }
    }
}
