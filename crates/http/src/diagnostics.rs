//! Turning untrusted answers into short, single-line, secret-free text for error messages.

use serde_json::Value;

/// Longest excerpt of an error body that goes into a message.
pub const MAX_DETAIL_CHARS: usize = 160;
/// Longest HTML `<title>` shown for an HTML error page (a proxy or load balancer answered).
const MAX_TITLE_CHARS: usize = 80;

/// What an error answer said, as far as it could be understood.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The protocol's short error code (a vAPI `error_type`, a Graph `error.code`, an OAuth
    /// `error`), bounded and single-line.
    pub code: Option<String>,
    /// A description: the protocol's message field, or a bounded excerpt of the text.
    pub detail: Option<String>,
}

impl ErrorBody {
    /// "code: detail", either part alone, or `None`.
    pub fn summary(&self) -> Option<String> {
        match (&self.code, &self.detail) {
            (Some(code), Some(detail)) => Some(format!("{code}: {detail}")),
            (Some(code), None) => Some(code.clone()),
            (None, Some(detail)) => Some(detail.clone()),
            (None, None) => None,
        }
    }
}

/// Reads an error body leniently: JSON (interpreted by `read_json`, which returns the code and
/// the detail it finds), an HTML page (its title only), plain text, or nothing. Known `secrets`
/// are replaced before anything is kept; both parts are single-line and at most
/// [`MAX_DETAIL_CHARS`] long.
pub fn describe_error_body(
    content_type: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    read_json: impl FnOnce(&Value) -> (Option<String>, Option<String>),
) -> ErrorBody {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return ErrorBody::default();
    }
    let (code, detail) = if is_html(content_type, body) {
        (None, Some(describe_html(text)))
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(json) => read_json(&json),
            Err(_) => (None, Some(text.to_owned())),
        }
    };
    let clean = |value: String| {
        Some(single_line(&scrub(&value, secrets), MAX_DETAIL_CHARS))
            .filter(|value| !value.is_empty())
    };
    ErrorBody {
        code: code.and_then(clean),
        detail: detail.and_then(clean),
    }
}

/// A description in one of the common JSON error shapes: a bare string, a top-level `message`,
/// `detail`, `error_description` or string `error` (OAuth, SCIM, vIDM), or the `message` of the
/// first of `errors`.
pub fn common_error_message(json: &Value) -> Option<String> {
    if let Some(text) = json.as_str() {
        return Some(text.to_owned());
    }
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
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
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
pub fn describe_html(text: &str) -> String {
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
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, "<redacted>")
        })
}

/// Makes `text` one line (control characters and line separators become spaces, runs of
/// whitespace collapse) and cuts it to `max_chars`, marking the cut with an ellipsis.
pub fn single_line(text: &str, max_chars: usize) -> String {
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

    fn plain(json: &Value) -> (Option<String>, Option<String>) {
        (
            json.get("code").and_then(Value::as_str).map(str::to_owned),
            common_error_message(json),
        )
    }

    #[test]
    fn json_is_read_by_the_protocol_and_bounded() {
        let described = describe_error_body(
            None,
            br#"{"code":"E1","message":"first\nsecond"}"#,
            &[],
            plain,
        );
        assert_eq!(described.code.as_deref(), Some("E1"));
        assert_eq!(described.detail.as_deref(), Some("first second"));
        assert_eq!(described.summary().as_deref(), Some("E1: first second"));
        let described = describe_error_body(None, br#"{"code":"","message":" "}"#, &[], plain);
        assert_eq!(described, ErrorBody::default());
    }

    #[test]
    fn common_shapes_are_understood() {
        let cases = [
            (r#""plain JSON string""#, Some("plain JSON string")),
            (
                r#"{"errors":[{"code":"x","message":"bad id"}]}"#,
                Some("bad id"),
            ),
            (
                r#"{"error":"invalid_client","error_description":"AADSTS1"}"#,
                Some("AADSTS1"),
            ),
            (r#"{"error":"invalid_client"}"#, Some("invalid_client")),
            (r#"{"error":{"code":"x"}}"#, None),
            ("42", None),
        ];
        for (body, expected) in cases {
            let json: Value = serde_json::from_str(body).expect("JSON");
            assert_eq!(common_error_message(&json).as_deref(), expected, "{body}");
        }
    }

    #[test]
    fn shows_only_the_title_of_html_pages() {
        let body =
            b"<html><head><TITLE>502 Bad\nGateway</TITLE></head><body>secret stuff</body></html>";
        let described = describe_error_body(None, body, &[], plain);
        assert_eq!(
            described.detail.as_deref(),
            Some("HTML page \"502 Bad Gateway\"")
        );
        let described = describe_error_body(None, b"<!doctype html><p>hi</p>", &[], plain);
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
        let described = describe_error_body(Some("text/html"), b"raw page text SECRET", &[], plain);
        assert_eq!(described.detail.as_deref(), Some("HTML page"));
    }

    #[test]
    fn bounds_plain_text_and_removes_secrets() {
        let body = format!("denied for hunter2 {}", "y".repeat(5000));
        let described = describe_error_body(None, body.as_bytes(), &["hunter2"], plain);
        let detail = described.detail.expect("detail");
        assert!(detail.starts_with("denied for <redacted> yyy"));
        assert!(detail.chars().count() <= MAX_DETAIL_CHARS);
        assert!(!detail.contains("hunter2"));
        let described = describe_error_body(
            None,
            br#"{"code":"hunter2","message":"x"}"#,
            &["hunter2", ""],
            plain,
        );
        assert_eq!(described.code.as_deref(), Some("<redacted>"));
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
