//! Answers of injected faults: a fault's own answer, a success cut off mid-JSON, and real
//! answers padded past a size or with one field changed.

use serde_json::Value;

use crate::faults::FaultBody;
use crate::routes::Endpoint;
use crate::vapi;

use super::{JSON, SCIM_JSON, SYNC_CLIENT_MEDIA_TYPE, SimResponse};

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
