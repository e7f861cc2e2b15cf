//! Answers, independent of hyper so that handlers stay plain functions, and the two error shapes
//! of the contract: OAuth errors of the token endpoint (ENTRA_API.md §0) and Graph errors (§1).

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::InnerErrorSpelling;
use crate::faults::FaultBody;
use crate::routes::Call;

const JSON: &str = "application/json; charset=utf-8";
/// What Graph sends as the content type of its JSON answers.
pub(crate) const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// An answer. No `Debug`: a token answer carries an access token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SimResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// For the request log: `AADSTS…` or Graph's `error.code`.
    pub error_code: Option<String>,
}

impl SimResponse {
    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            error_code: None,
        }
    }

    pub(crate) fn json(status: u16, content_type: &str, body: &Value) -> Self {
        Self {
            status,
            content_type: Some(content_type.to_owned()),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
            error_code: None,
        }
    }

    pub(crate) fn graph(body: &Value) -> Self {
        Self::json(200, GRAPH_JSON, body)
    }
}

/// A Graph error: status, `error.code` and `error.message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl GraphError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The usual code and message Graph gives with `status`.
    pub(crate) fn standard(status: u16) -> Self {
        let (code, message) = match status {
            400 => ("BadRequest", "Invalid request."),
            401 => (
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
            ),
            403 => (
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
            404 => (
                "Request_ResourceNotFound",
                "Resource does not exist or one of its queried reference-property objects are not present.",
            ),
            409 => (
                "Conflict",
                "The request conflicts with a concurrent change; try again.",
            ),
            429 => (
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
            503 => (
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            ),
            504 => (
                "GatewayTimeout",
                "The gateway did not receive a response in time.",
            ),
            _ => ("InternalServerError", "An internal server error occurred."),
        };
        Self::new(status, code, message)
    }

    /// The answer, with `innerError` (`request-id`, `date`) spelled as configured.
    pub(crate) fn response(&self, spelling: InnerErrorSpelling) -> SimResponse {
        let request_id = sync_client_broker_sim::new_directory_id();
        let inner = json!({
            "date": DateTime::<Utc>::from(SystemTime::now()).format("%Y-%m-%dT%H:%M:%S").to_string(),
            "request-id": request_id,
            "client-request-id": request_id,
        });
        let inner_name = match spelling {
            InnerErrorSpelling::CamelCase => "innerError",
            InnerErrorSpelling::Lowercase => "innererror",
        };
        let mut error = json!({"code": self.code, "message": self.message});
        error[inner_name] = inner;
        let mut response = SimResponse::json(self.status, JSON, &json!({"error": error}));
        response.headers.push(("request-id".to_owned(), request_id));
        if self.status == 401 {
            response.headers.push((
                "www-authenticate".to_owned(),
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"".to_owned(),
            ));
        }
        response.error_code = Some(self.code.clone());
        response
    }
}

/// An error of the token endpoint: `error`, an `AADSTS` code and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OauthError {
    pub status: u16,
    pub error: String,
    pub code: u32,
    pub description: String,
}

impl OauthError {
    pub(crate) fn new(error: &str, code: u32, description: impl Into<String>) -> Self {
        Self {
            status: 400,
            error: error.to_owned(),
            code,
            description: description.into(),
        }
    }

    /// What the token endpoint says with `status` when nothing more specific applies.
    pub(crate) fn standard(status: u16) -> Self {
        let (error, code, description) = match status {
            400 => (
                "invalid_request",
                90014,
                "A required field for a protocol message was missing.",
            ),
            401 => ("invalid_client", 7_000_215, crate::login::INVALID_SECRET),
            429 => (
                "temporarily_unavailable",
                50196,
                "The server terminated an operation because it encountered a client request loop.",
            ),
            _ => (
                "temporarily_unavailable",
                50000,
                "There was an error issuing a token or an issue with our sign-in service.",
            ),
        };
        Self {
            status,
            ..Self::new(error, code, description)
        }
    }

    pub(crate) fn response(&self) -> SimResponse {
        let now = DateTime::<Utc>::from(SystemTime::now());
        let trace_id = sync_client_broker_sim::new_directory_id();
        let correlation_id = sync_client_broker_sim::new_directory_id();
        let timestamp = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        let mut response = SimResponse::json(self.status, JSON, &body);
        response.error_code = Some(format!("AADSTS{}", self.code));
        response
    }
}

/// The answer of a `Respond` fault to a request for `call`.
pub(crate) fn fault_response(
    call: Call,
    status: u16,
    body: &FaultBody,
    spelling: InnerErrorSpelling,
) -> SimResponse {
    match body {
        FaultBody::Standard if call == Call::Token => OauthError::standard(status).response(),
        FaultBody::Standard => GraphError::standard(status).response(spelling),
        FaultBody::Empty => SimResponse::empty(status),
        FaultBody::Graph { code, message } => {
            GraphError::new(status, code, message.clone()).response(spelling)
        }
        FaultBody::Aadsts {
            error,
            code,
            description,
        } => OauthError {
            status,
            ..OauthError::new(error, *code, description.clone())
        }
        .response(),
        FaultBody::Raw { content_type, body } => SimResponse {
            status,
            content_type: Some(content_type.clone()),
            headers: Vec::new(),
            body: body.clone().into_bytes(),
            error_code: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &SimResponse) -> Value {
        serde_json::from_slice(&response.body).expect("JSON")
    }

    #[test]
    fn graph_errors_carry_code_message_and_inner_error_in_either_spelling() {
        let camel = GraphError::standard(403).response(InnerErrorSpelling::CamelCase);
        assert_eq!(camel.status, 403);
        let error = &body(&camel)["error"];
        assert_eq!(error["code"], "Authorization_RequestDenied");
        assert!(error["innerError"]["request-id"].is_string());
        assert!(error["innerError"]["date"].is_string());
        let lower = GraphError::standard(401).response(InnerErrorSpelling::Lowercase);
        assert!(body(&lower)["error"]["innererror"]["request-id"].is_string());
        assert!(
            lower
                .headers
                .iter()
                .any(|(name, _)| name == "www-authenticate")
        );
    }

    #[test]
    fn oauth_errors_name_their_aadsts_code() {
        let response = OauthError::new("invalid_client", 7_000_222, "expired").response();
        let body = body(&response);
        assert_eq!(response.status, 400);
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_codes"][0], 7_000_222);
        assert!(
            body["error_description"]
                .as_str()
                .expect("text")
                .starts_with("AADSTS7000222: expired")
        );
        assert_eq!(response.error_code.as_deref(), Some("AADSTS7000222"));
    }
}
