//! Answers of the login and of Graph, read leniently: error bodies (Graph's
//! `{"error":{"code","message","innerError"}}`, keys in any case, and the login's OAuth
//! `{"error","error_description","error_codes"}`) and token answers.
//!
//! Answers are read as loose JSON and picked apart by hand; parse errors never quote the body.

use serde_json::Value;
use sync_client_http::{
    Answer, ErrorBody, Malformed, ReportedLifetime, SecretString, as_object, common_error_message,
    describe_error_body, non_empty_string, parse_json,
};

use crate::error::{GraphError, GraphErrorKind};
use crate::outcome::GraphCall;

/// What an error body said, beyond its code and description.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorExtras {
    /// The AADSTS number: `error_codes[0]`, or the `AADSTS…:` prefix of a description.
    pub(crate) aadsts: Option<u32>,
    /// Graph's `innerError.request-id`, or the login's `trace_id`.
    pub(crate) request_id: Option<String>,
}

/// An error answer read with the login's and Graph's error shapes, secrets scrubbed.
pub(crate) struct ErrorAnswer {
    pub(crate) body: ErrorBody,
    pub(crate) extras: ErrorExtras,
}

impl ErrorAnswer {
    pub(crate) fn read(answer: &Answer, secrets: &[String]) -> Self {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let mut extras = ErrorExtras::default();
        let body = describe_error_body(
            answer.content_type.as_deref(),
            &answer.body,
            &secrets,
            |json| read_error_json(json, &mut extras),
        );
        Self { body, extras }
    }

    /// The error of `kind`: "{server} answered 403 Forbidden: hint; retry after 5s; code:
    /// description", with the status, code, AADSTS number, request id and `Retry-After`.
    pub(crate) fn into_error(
        self,
        kind: GraphErrorKind,
        call: GraphCall,
        answer: &Answer,
        hint: Option<String>,
    ) -> GraphError {
        let retry_after = answer.throttling_retry_after();
        let details: Vec<String> = hint
            .into_iter()
            .chain(retry_after.map(|wait| format!("retry after {}s", wait.as_secs())))
            .chain(self.body.summary())
            .collect();
        let message = answer.status_message(call.server_name(), &details);
        GraphError::new(kind, call, &message)
            .with_status(Some(answer.status.as_u16()))
            .with_code(self.body.code.as_deref())
            .with_aadsts(self.extras.aadsts)
            .with_request_id(self.extras.request_id.as_deref())
            .with_retry_after(retry_after)
    }
}

/// Reads `(code, description)` of an error body and fills `extras`.
pub(crate) fn read_error_json(
    json: &Value,
    extras: &mut ErrorExtras,
) -> (Option<String>, Option<String>) {
    let (code, description) = match get_ignoring_case(json, "error") {
        Some(error @ Value::Object(_)) => {
            let inner = get_ignoring_case(error, "innerError");
            extras.request_id = inner
                .and_then(|inner| get_ignoring_case(inner, "request-id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let message = get_ignoring_case(error, "message").and_then(|message| {
                // OData v3 spelled it {"lang": "en-US", "value": "..."}.
                message
                    .as_str()
                    .or_else(|| get_ignoring_case(message, "value")?.as_str())
            });
            (string_field(error, "code"), message.map(str::to_owned))
        }
        Some(Value::String(code)) => {
            extras.request_id = string_field(json, "trace_id");
            extras.aadsts = get_ignoring_case(json, "error_codes")
                .and_then(Value::as_array)
                .and_then(|codes| codes.first())
                .and_then(Value::as_u64)
                .and_then(|code| u32::try_from(code).ok());
            // The login appends "Trace ID: …", "Correlation ID: …" and "Timestamp: …" lines.
            let description = string_field(json, "error_description")
                .map(|text| text.lines().next().unwrap_or_default().to_owned());
            (Some(code.clone()), description)
        }
        _ => (None, common_error_message(json)),
    };
    if extras.aadsts.is_none() {
        extras.aadsts = description.as_deref().and_then(aadsts_prefix);
    }
    (code, description)
}

/// The number of a description starting with `AADSTS<digits>`.
pub(crate) fn aadsts_prefix(text: &str) -> Option<u32> {
    let digits: String = text
        .trim_start()
        .strip_prefix("AADSTS")?
        .chars()
        .take_while(char::is_ascii_digit)
        .take(10)
        .collect();
    digits.parse().ok()
}

/// `key` of a JSON object, matched without regard to ASCII case (an exact match wins).
pub(crate) fn get_ignoring_case<'a>(json: &'a Value, key: &str) -> Option<&'a Value> {
    let object = json.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

fn string_field(json: &Value, key: &str) -> Option<String> {
    get_ignoring_case(json, key)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The useful part of a token answer.
#[derive(Debug)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: SecretString,
    pub(crate) expires_in: ReportedLifetime,
}

pub(crate) fn parse_token_answer(body: &[u8]) -> Result<TokenAnswer, Malformed> {
    let json = parse_json(body)?;
    let object = as_object(&json)?;
    let access_token = non_empty_string(object, "access_token")
        .ok_or_else(|| Malformed::new("the answer holds no access_token"))?;
    let token_type = object.get("token_type").and_then(Value::as_str);
    if token_type.is_some_and(|token_type| !token_type.eq_ignore_ascii_case("Bearer")) {
        return Err(Malformed::new(
            "the token is not of type Bearer, the only type Graph accepts",
        ));
    }
    Ok(TokenAnswer {
        access_token: SecretString::new(access_token),
        expires_in: ReportedLifetime::from_field(object, "expires_in"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(json: &Value) -> (Option<String>, Option<String>, ErrorExtras) {
        let mut extras = ErrorExtras::default();
        let (code, description) = read_error_json(json, &mut extras);
        (code, description, extras)
    }

    #[test]
    fn graph_errors_are_read_in_any_case() {
        for inner in ["innerError", "innererror", "InnerError"] {
            let body = json!({"error": {
                "code": "Authorization_RequestDenied",
                "message": "Insufficient privileges to complete the operation.",
                inner: {"request-id": "3a1c", "date": "2024-01-01T00:00:00"}
            }});
            let (code, description, extras) = read(&body);
            assert_eq!(code.as_deref(), Some("Authorization_RequestDenied"));
            assert_eq!(
                description.as_deref(),
                Some("Insufficient privileges to complete the operation.")
            );
            assert_eq!(extras.request_id.as_deref(), Some("3a1c"), "{inner}");
        }
        let body = json!({"Error": {"Code": "X", "Message": {"lang": "en", "value": "old"}}});
        let (code, description, _) = read(&body);
        assert_eq!(code.as_deref(), Some("X"));
        assert_eq!(description.as_deref(), Some("old"));
    }

    #[test]
    fn login_errors_carry_their_aadsts_number() {
        let body = json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c",
            "error_codes": [7_000_215],
            "timestamp": "2024-01-01 00:00:00Z",
            "trace_id": "trace-1",
            "correlation_id": "corr-1"
        });
        let (code, description, extras) = read(&body);
        assert_eq!(code.as_deref(), Some("invalid_client"));
        assert_eq!(
            description.as_deref(),
            Some("AADSTS7000215: Invalid client secret provided.")
        );
        assert_eq!(extras.aadsts, Some(7_000_215));
        assert_eq!(extras.request_id.as_deref(), Some("trace-1"));
        let body = json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."});
        assert_eq!(read(&body).2.aadsts, Some(90_002));
        let body = json!({"error": "x", "error_codes": [-1, 5], "error_description": 7});
        assert_eq!(read(&body).2.aadsts, None);
    }

    #[test]
    fn aadsts_prefixes_are_bounded_numbers() {
        assert_eq!(aadsts_prefix("AADSTS700016: x"), Some(700_016));
        assert_eq!(aadsts_prefix("  AADSTS90002"), Some(90_002));
        assert_eq!(aadsts_prefix("AADSTS99999999999999: x"), None);
        assert_eq!(aadsts_prefix("AADSTS: x"), None);
        assert_eq!(aadsts_prefix("error AADSTS1"), None);
    }

    #[test]
    fn token_answers_need_a_bearer_access_token() {
        let answer = parse_token_answer(
            br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"t"}"#,
        )
        .expect("valid");
        assert_eq!(answer.access_token.expose(), "t");
        assert_eq!(answer.expires_in, ReportedLifetime::Seconds(3599));
        let answer =
            parse_token_answer(br#"{"access_token":"t","expires_in":"3599"}"#).expect("v1");
        assert_eq!(answer.expires_in, ReportedLifetime::Seconds(3599));
        for body in [
            &br#"{"token_type":"Bearer"}"#[..],
            br#"{"access_token":" "}"#,
            br#"{"access_token":"t","token_type":"pop"}"#,
            b"[]",
            b"",
            br#"{"access_token": "hunter2" "#,
        ] {
            let error = parse_token_answer(body).expect_err("refused");
            assert!(!error.0.contains("hunter2"), "{}", error.0);
        }
    }
}
