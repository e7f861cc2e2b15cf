//! Turning untrusted answers into short, single-line, secret-free text for error messages.

use serde_json::Value;

/// Longest excerpt of an error body that goes into a message.
const MAX_DETAIL_CHARS: usize = 160;
/// Longest HTML `<title>` shown for an HTML error page (a proxy or load balancer answered).
const MAX_TITLE_CHARS: usize = 80;

/// What an error answer said, as far as it could be understood.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    /// The vAPI `error_type` (e.g. `NOT_FOUND`), when the body was a vAPI error.
    pub(crate) error_type: Option<String>,
    /// First `default_message`, another description field, or a bounded excerpt of the text.
    pub(crate) detail: Option<String>,
}

impl ErrorBody {
    /// "ERROR_TYPE: detail", either part alone, or `None`.
    pub(crate) fn summary(&self) -> Option<String> {
        match (&self.error_type, &self.detail) {
            (Some(error_type), Some(detail)) => Some(format!("{error_type}: {detail}")),
            (Some(error_type), None) => Some(error_type.clone()),
            (None, Some(detail)) => Some(detail.clone()),
            (None, None) => None,
        }
    }
}

/// Reads an error body leniently: a vAPI error, another common JSON error shape, an HTML page,
/// plain text, or nothing. Known `secrets` are replaced before anything is kept.
pub(crate) fn describe_error_body(
    content_type: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> ErrorBody {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return ErrorBody::default();
    }
    let (error_type, detail) = if is_html(content_type, body) {
        (None, Some(describe_html(text)))
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(json) => (vapi_error_type(&json), json_error_message(&json)),
            Err(_) => (None, Some(text.to_owned())),
        }
    };
    ErrorBody {
        error_type: error_type
            .map(|value| single_line(&scrub(&value, secrets), MAX_DETAIL_CHARS))
            .filter(|value| !value.is_empty()),
        detail: detail
            .map(|value| single_line(&scrub(&value, secrets), MAX_DETAIL_CHARS))
            .filter(|value| !value.is_empty()),
    }
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
    if let Some(text) = json.as_str() {
        return Some(text.to_owned());
    }
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
    let first_error = json
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    ["message", "detail", "error_description", "error"]
        .iter()
        .find_map(|key| json.get(*key).and_then(Value::as_str))
        .or_else(|| first_error.and_then(|error| error.get("message")?.as_str()))
        .map(str::to_owned)
}

/// An HTML page rather than an API answer: markup (a body starting with `<`), or a body labelled
/// `text/html` that is not JSON. A JSON body is taken for JSON whatever its label says.
pub(crate) fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    let text = body.trim_ascii_start();
    if text.starts_with(b"<") {
        return true;
    }
    let labelled_html = content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| {
            let essence = essence.trim();
            essence.eq_ignore_ascii_case("text/html")
                || essence.eq_ignore_ascii_case("application/xhtml+xml")
        });
    labelled_html && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err()
}

/// "HTML page "Title"" or "HTML page": the markup itself is never useful in a message.
pub(crate) fn describe_html(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let title = lower.find("<title").and_then(|open| {
        let start = open + lower[open..].find('>')? + 1;
        let end = start + lower[start..].find("</title")?;
        text.get(start..end)
    });
    match title.map(|title| single_line(title, MAX_TITLE_CHARS)) {
        Some(title) if !title.is_empty() => format!("HTML page \"{title}\""),
        _ => "HTML page".to_owned(),
    }
}

/// Replaces every occurrence of a known secret with `<redacted>`.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, "<redacted>")
        })
}

/// Makes `text` one line (control characters and line separators become spaces, runs of
/// whitespace collapse) and cuts it to `max_chars`, marking the cut with an ellipsis.
pub(crate) fn single_line(text: &str, max_chars: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max_chars * 4));
    let mut pending_space = false;
    for character in text.chars() {
        if character.is_control() || character.is_whitespace() {
            pending_space = !line.is_empty();
            continue;
        }
        if pending_space {
            line.push(' ');
            pending_space = false;
        }
        line.push(character);
    }
    if line.chars().count() <= max_chars {
        return line;
    }
    let mut cut: String = line.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vapi_error_with_message_stack() {
        let body = br#"{"error_type":"NOT_FOUND","messages":[{"id":"x","default_message":"Tenant missing.","args":[]},{"default_message":"cause"}],"data":null}"#;
        let described = describe_error_body(None, body, &[]);
        assert_eq!(described.error_type.as_deref(), Some("NOT_FOUND"));
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
        assert_eq!(described.error_type.as_deref(), Some("UNAUTHENTICATED"));
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
    fn shows_only_the_title_of_html_pages() {
        let body =
            b"<html><head><TITLE>502 Bad\nGateway</TITLE></head><body>secret stuff</body></html>";
        let described = describe_error_body(None, body, &[]);
        assert_eq!(
            described.detail.as_deref(),
            Some("HTML page \"502 Bad Gateway\"")
        );
        let described = describe_error_body(None, b"<!doctype html><p>hi</p>", &[]);
        assert_eq!(described.detail.as_deref(), Some("HTML page"));
    }

    #[test]
    fn html_is_markup_or_a_non_json_body_labelled_html() {
        assert!(is_html(None, b"  <html>"));
        assert!(is_html(Some("text/html; charset=utf-8"), b"Bad gateway"));
        assert!(is_html(Some("Application/XHTML+XML"), b"oops"));
        assert!(!is_html(Some("text/html"), br#"{"access_token":"t"}"#));
        assert!(!is_html(Some("text/plain"), b"Bad gateway"));
        assert!(!is_html(None, b""));
        let described = describe_error_body(Some("text/html"), b"raw page text SECRET", &[]);
        assert_eq!(described.detail.as_deref(), Some("HTML page"));
    }

    #[test]
    fn bounds_plain_text_and_removes_secrets() {
        let body = format!("denied for hunter2 {}", "y".repeat(5000));
        let described = describe_error_body(None, body.as_bytes(), &["hunter2"]);
        let detail = described.detail.expect("detail");
        assert!(detail.starts_with("denied for <redacted> yyy"));
        assert!(detail.chars().count() <= MAX_DETAIL_CHARS);
        assert!(!detail.contains("hunter2"));
    }

    #[test]
    fn single_line_collapses_control_characters() {
        assert_eq!(
            single_line("  a\r\n\tb\u{1b}[31m c \u{2028} d ", 100),
            "a b [31m c d"
        );
        assert_eq!(single_line("abcdef", 4), "abc…");
    }
}
