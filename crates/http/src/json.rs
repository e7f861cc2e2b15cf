//! Reading untrusted JSON answers by hand: a field of an unexpected type counts as missing, and
//! parse errors never quote the body (it may hold credentials).

use serde_json::{Map, Value};

/// Why an answer could not be used. The text never quotes the body.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub String);

impl Malformed {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// The body as JSON; empty and invalid bodies are [`Malformed`], with line and column only.
pub fn parse_json(body: &[u8]) -> Result<Value, Malformed> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Malformed::new("the answer is empty"));
    }
    serde_json::from_slice(body).map_err(|error| {
        // Line and column only: serde's message may quote a value from the body.
        Malformed::new(format!(
            "the answer is not JSON (line {}, column {})",
            error.line(),
            error.column()
        ))
    })
}

/// The answer as a JSON object.
pub fn as_object(json: &Value) -> Result<&Map<String, Value>, Malformed> {
    json.as_object()
        .ok_or_else(|| Malformed::new("the answer is not a JSON object"))
}

/// A string field that is not blank.
pub fn non_empty_string(object: &Map<String, Value>, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|value| !value.trim().is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parse_errors_never_quote_the_body() {
        let error = parse_json(br#"{"access_token": "hunter2" "#).expect_err("invalid");
        assert_eq!(error.0, "the answer is not JSON (line 1, column 27)");
        assert_eq!(
            parse_json(b" \n").expect_err("empty").0,
            "the answer is empty"
        );
        assert_eq!(
            as_object(&json!([1])).expect_err("array").0,
            "the answer is not a JSON object"
        );
    }

    #[test]
    fn blank_and_mistyped_strings_are_missing() {
        let object = json!({"a": " ", "b": 7, "c": "x"});
        let object = object.as_object().expect("object");
        assert_eq!(non_empty_string(object, "a"), None);
        assert_eq!(non_empty_string(object, "b"), None);
        assert_eq!(non_empty_string(object, "c").as_deref(), Some("x"));
        assert_eq!(non_empty_string(object, "d"), None);
    }
}
