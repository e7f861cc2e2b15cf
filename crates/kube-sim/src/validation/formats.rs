//! Checks of one value against its schema node's `type` and `format`, and how bounds print.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// How kube-apiserver prints schema bounds: `99`, not `99.0`.
pub(super) fn number_text(value: &Value) -> String {
    match value.as_f64() {
        #[allow(clippy::cast_possible_truncation)]
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => value.to_string(),
    }
}

pub(super) fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        _ => true,
    }
}

/// A regex compiled once; `None` (logged) if the pattern does not compile, which would be a bug
/// in the simulator: the check it serves is then skipped rather than failing every request.
fn cached_regex(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| {
        Regex::new(pattern)
            .map_err(|e| tracing::error!(pattern, error = %e, "built-in regex does not compile"))
            .ok()
    })
    .as_ref()
}

fn duration_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    cached_regex(&RE, r"^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$")
}

fn uuid_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    cached_regex(
        &RE,
        r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$",
    )
}

/// Checks of the `format`s the simulator knows; unknown formats pass, as in kube-apiserver.
pub(super) fn format_error(format: &str, value: &Value) -> Option<String> {
    match (format, value) {
        ("date-time", Value::String(s)) => s
            .parse::<jiff::Timestamp>()
            .is_err()
            .then(|| "a valid date-time".to_owned()),
        ("date", Value::String(s)) => s
            .parse::<jiff::civil::Date>()
            .is_err()
            .then(|| "a valid date".to_owned()),
        ("uuid", Value::String(s)) => uuid_regex()
            .is_some_and(|re| !re.is_match(s))
            .then(|| "a valid uuid".to_owned()),
        ("duration", Value::String(s)) => duration_regex()
            .is_some_and(|re| !re.is_match(s))
            .then(|| "a valid duration".to_owned()),
        ("byte", Value::String(s)) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .is_err()
                .then(|| "a valid byte".to_owned())
        }
        ("int32", Value::Number(n)) => n
            .as_i64()
            .is_none_or(|i| i32::try_from(i).is_err())
            .then(|| "a valid int32".to_owned()),
        ("int64", Value::Number(n)) => n.as_i64().is_none().then(|| "a valid int64".to_owned()),
        _ => None,
    }
}
