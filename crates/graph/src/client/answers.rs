//! The errors Graph's answers mean: a refusal with its hint, a request without an answer, an
//! unusable success, and the forms a secret is scrubbed in.

use sync_client_http::{Answer, RequestFailure};

use crate::error::{GraphError, GraphErrorKind};
use crate::outcome::GraphCall;
use crate::wire::ErrorAnswer;

use super::request::Target;

/// The error a non-success Graph answer means: "Microsoft Graph answered 403 Forbidden: hint;
/// code: message".
pub(super) fn graph_error(target: &Target, answer: &Answer, secrets: &[String]) -> GraphError {
    let read = ErrorAnswer::read(answer, secrets);
    let status = answer.status.as_u16();
    let validation_refused = target.call == GraphCall::ValidateCredentials
        && !matches!(status, 401 | 403 | 404 | 408 | 409 | 429)
        && (matches!(status, 400 | 422)
            || read
                .body
                .code
                .as_deref()
                .is_some_and(|code| code.contains("CredentialValidation")));
    let kind = if validation_refused {
        GraphErrorKind::ValidationFailed
    } else {
        GraphErrorKind::from_status(status)
    };
    read.into_error(kind, target.call, answer, status_hint(kind, target))
}

/// What an error kind means for the call's service principal and job.
fn status_hint(kind: GraphErrorKind, target: &Target) -> Option<String> {
    let service_principal = &target.service_principal;
    Some(match kind {
        GraphErrorKind::Unauthorized => "the access token was refused".to_owned(),
        GraphErrorKind::Forbidden => "the app needs Synchronization.ReadWrite.All, or \
                                      Application.ReadWrite.OwnedBy and to own the service \
                                      principal"
            .to_owned(),
        GraphErrorKind::NotFound => match &target.job {
            Some(job) => format!("no service principal {service_principal} or no job {job}"),
            None => format!("no service principal {service_principal}"),
        },
        GraphErrorKind::ValidationFailed => {
            "Entra ID could not reach the SCIM endpoint with the saved credentials".to_owned()
        }
        _ => return None,
    })
}

/// The error for a request that got no usable answer.
pub(super) fn failure_error(call: GraphCall, failure: RequestFailure) -> GraphError {
    match failure {
        RequestFailure::InvalidRequest(message) => {
            GraphError::new(GraphErrorKind::Configuration, call, &message)
        }
        RequestFailure::Network {
            status, message, ..
        } => GraphError::new(GraphErrorKind::Transient, call, &message).with_status(status),
    }
}

/// An error for a success answer whose body cannot be used.
pub(crate) fn malformed_answer(call: GraphCall, answer: &Answer, reason: &str) -> GraphError {
    GraphError::new(
        GraphErrorKind::InvalidResponse,
        call,
        &format!(
            "malformed response ({} {})",
            answer.status.as_u16(),
            answer.unusable_reason(reason)
        ),
    )
    .with_status(Some(answer.status.as_u16()))
}

/// A secret as sent and as a server may echo it: raw, form-encoded (token requests) and
/// JSON-escaped (request bodies).
pub(crate) fn secret_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    let form_encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json_escaped = serde_json::to_string(secret).unwrap_or_default();
    let json_escaped = json_escaped
        .strip_prefix('"')
        .and_then(|text| text.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned();
    for form in [form_encoded, json_escaped] {
        if !form.is_empty() && !forms.contains(&form) {
            forms.push(form);
        }
    }
    forms
}
