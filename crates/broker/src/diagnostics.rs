//! Reading vAPI error bodies: the protocol-independent part (HTML pages, plain text, bounds,
//! redaction) is `sync_client_http`'s.

use serde_json::Value;
pub(crate) use sync_client_http::ErrorBody;
use sync_client_http::common_error_message;

/// Reads an error body leniently: a vAPI error, another common JSON error shape, an HTML page,
/// plain text, or nothing. Known `secrets` are replaced before anything is kept; the vAPI
/// `error_type` becomes the [`ErrorBody::code`].
pub(crate) fn describe_error_body(
    content_type: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> ErrorBody {
    sync_client_http::describe_error_body(content_type, body, secrets, |json| {
        (vapi_error_type(json), json_error_message(json))
    })
}

/// `error_type`, or the type of the older `{"type": "com.vmware.vapi.std.errors.x", "value": ..}` shape.
fn vapi_error_type(json: &Value) -> Option<String> {
    if let Some(error_type) = json.get("error_type").and_then(Value::as_str) {
        return Some(error_type.to_owned());
    }
    let legacy = json.get("type").and_then(Value::as_str)?;
    legacy
        .strip_prefix("com.vmware.vapi.std.errors.")
        .map(str::to_ascii_uppercase)
}

/// The first vAPI `default_message`, or a description in another common error shape.
fn json_error_message(json: &Value) -> Option<String> {
    let messages = json
        .get("messages")
        .or_else(|| json.get("value").and_then(|value| value.get("messages")));
    let first_default_message = messages
        .and_then(Value::as_array)
        .and_then(|stack| stack.first())
        .and_then(|message| message.get("default_message"))
        .and_then(Value::as_str);
    if let Some(text) = first_default_message {
        return Some(text.to_owned());
    }
    // Broker (vIDM), SCIM and OAuth error shapes.
    common_error_message(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vapi_error_with_message_stack() {
        let body = br#"{"error_type":"NOT_FOUND","messages":[{"id":"x","default_message":"Tenant missing.","args":[]},{"default_message":"cause"}],"data":null}"#;
        let described = describe_error_body(None, body, &[]);
        assert_eq!(described.code.as_deref(), Some("NOT_FOUND"));
        assert_eq!(described.detail.as_deref(), Some("Tenant missing."));
        assert_eq!(
            described.summary().as_deref(),
            Some("NOT_FOUND: Tenant missing.")
        );
    }

    #[test]
    fn reads_legacy_vapi_error_shape() {
        let body = br#"{"type":"com.vmware.vapi.std.errors.unauthenticated","value":{"messages":[{"default_message":"Authentication required."}]}}"#;
        let described = describe_error_body(None, body, &[]);
        assert_eq!(described.code.as_deref(), Some("UNAUTHENTICATED"));
        assert_eq!(
            described.detail.as_deref(),
            Some("Authentication required.")
        );
    }

    #[test]
    fn tolerates_missing_and_mistyped_fields() {
        let described = describe_error_body(None, br#"{"error_type":42,"messages":"oops"}"#, &[]);
        assert_eq!(described, ErrorBody::default());
        let described = describe_error_body(
            None,
            br#"{"errors":[{"code":"x","message":"bad id"}]}"#,
            &[],
        );
        assert_eq!(described.detail.as_deref(), Some("bad id"));
    }

    #[test]
    fn html_pages_and_secrets_are_handled_as_for_any_protocol() {
        let described =
            describe_error_body(None, b"<title>Bad gateway</title> hunter2", &["hunter2"]);
        assert_eq!(
            described.detail.as_deref(),
            Some("HTML page \"Bad gateway\"")
        );
        let described = describe_error_body(
            None,
            br#"{"error_type":"hunter2","messages":[{"default_message":"hunter2 refused"}]}"#,
            &["hunter2"],
        );
        assert_eq!(
            described.summary().as_deref(),
            Some("<redacted>: <redacted> refused")
        );
    }
}
