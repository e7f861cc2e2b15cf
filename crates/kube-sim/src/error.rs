//! Errors as the API server reports them: every failure carries the HTTP code, the
//! `meta.k8s.io/v1 Status` reason and a message shaped like the real server's.

use serde_json::{Value, json};

/// A failed simulator operation; the same value becomes the `Status` body of an HTTP error.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    /// HTTP status code (404, 409, 422, ...).
    pub code: u16,
    /// `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: String,
    /// Human readable message, formatted like kube-apiserver's.
    pub message: String,
    /// `Status.details` (name, group, kind, causes), when the real server sends them.
    pub details: Option<Value>,
}

/// One field-level problem of an `Invalid` (422) error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, ...
    pub reason: &'static str,
    /// Dotted field path, e.g. `spec.brokerRef.name`.
    pub field: String,
    /// Message without the field path, e.g. `Required value`.
    pub message: String,
}

/// Names of the resource an error is about, as `Status.details` reports them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub group: &'a str,
    pub plural: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    /// `secrets` or `syncclientcredentials.syncclient.io`: how messages name a resource.
    fn qualified_resource(&self) -> String {
        qualified(self.plural, self.group)
    }

    fn qualified_kind(&self) -> String {
        qualified(self.kind, self.group)
    }

    fn details(&self) -> Value {
        let mut details = json!({"kind": self.plural});
        if !self.name.is_empty() {
            details["name"] = json!(self.name);
        }
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details
    }
}

fn qualified(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_owned()
    } else {
        format!("{name}.{group}")
    }
}

impl SimError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn not_found(subject: Subject<'_>) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(
                404,
                "NotFound",
                format!(
                    "{} \"{}\" not found",
                    subject.qualified_resource(),
                    subject.name
                ),
            )
        }
    }

    pub(crate) fn namespace_not_found(namespace: &str) -> Self {
        Self {
            details: Some(json!({"name": namespace, "kind": "namespaces"})),
            ..Self::new(
                404,
                "NotFound",
                format!("namespaces \"{namespace}\" not found"),
            )
        }
    }

    pub(crate) fn already_exists(subject: Subject<'_>) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(
                409,
                "AlreadyExists",
                format!(
                    "{} \"{}\" already exists",
                    subject.qualified_resource(),
                    subject.name
                ),
            )
        }
    }

    pub(crate) fn conflict(subject: Subject<'_>, why: &str) -> Self {
        Self {
            details: Some(subject.details()),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {why}",
                    subject.qualified_resource(),
                    subject.name
                ),
            )
        }
    }

    pub(crate) fn stale_resource_version(subject: Subject<'_>) -> Self {
        Self::conflict(
            subject,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub(crate) fn invalid(subject: Subject<'_>, causes: &[FieldCause]) -> Self {
        // `ErrorList.ToAggregate`: one message per distinct error, bracketed when several.
        let mut messages: Vec<String> = Vec::new();
        for message in causes.iter().map(FieldCause::full_message) {
            if !messages.contains(&message) {
                messages.push(message);
            }
        }
        let summary = match messages.len() {
            0 => String::new(),
            1 => format!(": {}", messages.remove(0)),
            _ => format!(": [{}]", messages.join(", ")),
        };
        let mut details = json!({
            "kind": subject.kind,
            "causes": causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect::<Vec<_>>(),
        });
        if !subject.name.is_empty() {
            details["name"] = json!(subject.name);
        }
        if !subject.group.is_empty() {
            details["group"] = json!(subject.group);
        }
        Self {
            details: Some(details),
            ..Self::new(
                422,
                "Invalid",
                format!(
                    "{} \"{}\" is invalid{summary}",
                    subject.qualified_kind(),
                    subject.name
                ),
            )
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub(crate) fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    /// `NewForbidden`: `<resource> "<name>" is forbidden: <why>` (without a name:
    /// `<resource> is forbidden: <why>`), as admission plugins (quota, webhooks) answer.
    pub(crate) fn forbidden(subject: Subject<'_>, why: &str) -> Self {
        let resource = subject.qualified_resource();
        let message = if subject.name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} \"{}\" is forbidden: {why}", subject.name)
        };
        Self {
            details: Some(subject.details()),
            ..Self::new(403, "Forbidden", message)
        }
    }

    /// `NewInternalError`: `Internal error occurred: <why>`, the error as the only cause.
    pub(crate) fn internal(why: &str) -> Self {
        Self {
            details: Some(json!({"causes": [{"message": why}]})),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {why}"),
            )
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    pub fn is_conflict(&self) -> bool {
        self.code == 409
    }

    pub fn is_invalid(&self) -> bool {
        self.code == 422
    }

    /// The error as a `meta.k8s.io/v1 Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

pub(crate) fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for SimError {}

impl FieldCause {
    /// `field: message`, as the summary of an `Invalid` error lists causes.
    pub fn full_message(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }

    pub(crate) fn required(field: &str) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.to_owned(),
            message: "Required value".to_owned(),
        }
    }

    /// `field.Required` with a detail: `Required value: <detail>`.
    pub(crate) fn required_because(field: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.to_owned(),
            message: format!("Required value: {detail}"),
        }
    }

    /// A cause given as the real server words its message; the reason follows the message's
    /// error type (`Required value`, `Forbidden`, `Too long`, ...; `Invalid value` otherwise).
    pub(crate) fn custom(field: &str, message: &str) -> Self {
        let reason = [
            ("Required value", "FieldValueRequired"),
            ("Forbidden", "FieldValueForbidden"),
            ("Too long", "FieldValueTooLong"),
            ("Too many", "FieldValueTooMany"),
            ("Unsupported value", "FieldValueNotSupported"),
            ("Duplicate value", "FieldValueDuplicate"),
        ]
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or("FieldValueInvalid", |(_, reason)| reason);
        Self {
            reason,
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }

    pub(crate) fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.to_owned(),
            message: format!("Invalid value: {}: {detail}", describe_value(value)),
        }
    }

    pub(crate) fn type_invalid(field: &str, value: &Value, expected: &str) -> Self {
        Self {
            reason: "FieldValueTypeInvalid",
            field: field.to_owned(),
            message: format!(
                "Invalid value: {}: {field} in body must be of type {expected}: {}",
                describe_value(value),
                json_type_name(value).map_or_else(|| "null".to_owned(), |t| format!("\"{t}\""))
            ),
        }
    }

    pub(crate) fn not_supported(field: &str, value: &Value, allowed: &[Value]) -> Self {
        Self {
            reason: "FieldValueNotSupported",
            field: field.to_owned(),
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                allowed
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub(crate) fn too_long(field: &str, max: u64) -> Self {
        Self {
            reason: "FieldValueTooLong",
            field: field.to_owned(),
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }

    pub(crate) fn too_many(field: &str, max: u64) -> Self {
        Self {
            reason: "FieldValueTooMany",
            field: field.to_owned(),
            message: format!("Too many: must have at most {max} items"),
        }
    }

    pub(crate) fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.to_owned(),
            message: format!("Forbidden: {detail}"),
        }
    }
}

/// How kube-apiserver quotes a value in messages: strings quoted, objects as their type.
fn describe_value(value: &Value) -> String {
    match value {
        Value::Object(_) => "\"object\"".to_owned(),
        Value::Array(_) => "\"array\"".to_owned(),
        other => other.to_string(),
    }
}

pub(crate) fn json_type_name(value: &Value) -> Option<&'static str> {
    match value {
        Value::Null => None,
        Value::Bool(_) => Some("boolean"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
        Value::Number(_) => Some("number"),
        Value::String(_) => Some("string"),
        Value::Array(_) => Some("array"),
        Value::Object(_) => Some("object"),
    }
}
