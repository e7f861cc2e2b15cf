//! The request as read: the parts the simulator looks at, what the authorizer sees, and
//! whether it asks for a dry run.

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{Method, header};
use serde_json::Value;

use crate::auth::{self, Attributes, User};
use crate::error::SimError;

use super::{BODY_LIMIT, Query, header_string};

/// The parts of an HTTP request the simulator looks at, body included.
pub(crate) struct Incoming {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) raw_query: String,
    pub(super) query: Query,
    pub(super) content_type: Option<String>,
    pub(super) accept: Option<String>,
    pub(super) user_agent: Option<String>,
    /// The `Authorization` header: never logged or recorded.
    pub(super) authorization: Option<String>,
    /// Who sent the request, when its token is one the simulator issued.
    pub(super) user: Option<User>,
    /// The fingerprint of the bearer token, whatever it is.
    pub(super) client: Option<String>,
    pub(super) body: Result<Bytes, SimError>,
}

impl Incoming {
    pub(super) async fn read(request: Request) -> Self {
        let (parts, body) = request.into_parts();
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        let query: Query = form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect();
        let body = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|e| SimError::bad_request(format!("reading the request body failed: {e}")));
        Self {
            path: parts.uri.path().to_owned(),
            raw_query,
            query,
            content_type: header_string(&parts.headers, header::CONTENT_TYPE),
            accept: header_string(&parts.headers, header::ACCEPT),
            user_agent: header_string(&parts.headers, header::USER_AGENT),
            authorization: header_string(&parts.headers, header::AUTHORIZATION),
            user: None,
            client: None,
            method: parts.method,
            body,
        }
    }

    pub(super) fn body(&self) -> &[u8] {
        self.body.as_ref().map_or(&[], |b| b.as_ref())
    }

    /// The request as the authorizer sees it.
    pub(super) fn attributes(&self) -> Attributes {
        let query: Vec<(String, String)> = form_urlencoded::parse(self.raw_query.as_bytes())
            .into_owned()
            .collect();
        auth::attributes(self.method.as_str(), &self.path, &query)
    }

    /// Every `dryRun` query parameter, in order (the parameter may repeat).
    pub(super) fn dry_run_values(&self) -> Vec<String> {
        form_urlencoded::parse(self.raw_query.as_bytes())
            .filter(|(k, _)| k == "dryRun")
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// Whether a write asks for a dry run: `dryRun=All` in the query, or for deletes in the
    /// `DeleteOptions` body (which, when present, replaces the query parameters).
    pub(super) fn asks_dry_run(&self, verb: &str) -> bool {
        if matches!(verb, "delete" | "deletecollection") && !is_blank(self.body()) {
            return self
                .delete_options_body()
                .ok()
                .and_then(|b| b.get("dryRun").and_then(Value::as_array).cloned())
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        }
        WRITE_VERBS.contains(&verb) && self.dry_run_values().iter().any(|v| v == "All")
    }

    /// The `DeleteOptions` of a delete's body, JSON or (as client-go's typed clients send
    /// them, helm's release storage among them) protobuf.
    pub(super) fn delete_options_body(&self) -> Result<Value, SimError> {
        let invalid = |e: &dyn std::fmt::Display| {
            SimError::bad_request(format!("invalid DeleteOptions: {e}"))
        };
        match self.content_type.as_deref() {
            Some(t) if t.starts_with("application/vnd.kubernetes.protobuf") => {
                crate::protobuf::decode(self.body()).map_err(|e| invalid(&e.message))
            }
            _ => serde_json::from_slice(self.body()).map_err(|e| invalid(&e)),
        }
    }
}

const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

pub(super) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}
