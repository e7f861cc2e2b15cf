//! HTTP semantics of each endpoint: read headers, query and body, call the state transition,
//! render its outcome with the vendor's statuses, media types and bodies.
//!
//! Nothing here awaits: handling runs under the state lock and is plain code. This module keeps
//! the answer and request types, dispatch, login and broker tokens; the usergroup API, the SCIM
//! probe and the answers of injected faults have their own modules.

mod injected;
mod scim;
mod usergroup;

#[cfg(test)]
mod tests;

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;
use serde_json::{Value, json};

use crate::config::{ExpiresIn, UnusedFields};
use crate::routes::{Endpoint, Route};
use crate::state::{BrokerClient, BrokerTokenError, SessionError, SimState};
use crate::vapi;

pub(crate) use injected::{fault_response, malformed_success, oversized, set_field};
use scim::scim_probe;
use usergroup::{generate, sync_client_response};

/// The vendor media type of sync-client configurations (request and response).
pub const SYNC_CLIENT_MEDIA_TYPE: &str =
    "application/vnd.vmware.vidm.usergroup.broker.directory.syncclientconfiguration+json";
const JSON: &str = "application/json";
const SCIM_JSON: &str = "application/scim+json";
const SESSION_HEADER: &str = "vmware-api-session-id";

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
