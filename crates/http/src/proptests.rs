//! Property tests: error bodies of any shape are described on one bounded line without the
//! secrets they echo; `Retry-After` values and reported lifetimes stay bounded and round-trip.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::diagnostics::{
    MAX_DETAIL_CHARS, common_error_message, describe_error_body, is_html, single_line,
};
use crate::lifetime::ReportedLifetime;
use crate::retry_after::{MAX_RETRY_AFTER, MIN_RETRY_AFTER, parse_retry_after};
use crate::strategies::{PLANTED_SECRET as MARKER, body, content_type, json_value};

/// Keys the readers of error bodies and lifetimes look at.
const KEYS: [&str; 8] = [
    "message",
    "detail",
    "error_description",
    "error",
    "errors",
    "code",
    "expires_in",
    "value",
];

/// Bodies of any kind, and text with the planted secret somewhere in the middle.
fn error_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        body(&KEYS),
        (".{0,200}", ".{0,200}")
            .prop_map(|(before, after)| format!("{before}{MARKER}{after}").into_bytes()),
    ]
}

fn read_common(json: &Value) -> (Option<String>, Option<String>) {
    (
        json.get("code").and_then(Value::as_str).map(str::to_owned),
        common_error_message(json),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn error_bodies_are_described_on_one_bounded_line_without_secrets(
        content_type in content_type(),
        body in error_body(),
    ) {
        let described = describe_error_body(content_type.as_deref(), &body, &[MARKER], read_common);
        for text in [&described.code, &described.detail].into_iter().flatten() {
            prop_assert!(!text.contains(MARKER), "{text}");
            prop_assert!(text.chars().count() <= MAX_DETAIL_CHARS, "{text}");
            prop_assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
        }
        // Whatever is called HTML is never shown beyond its title.
        if is_html(content_type.as_deref(), &body) {
            prop_assert_eq!(described.code, None);
        }
    }

    #[test]
    fn single_line_is_bounded_and_one_line(text in ".{0,400}", max in 1_usize..200) {
        let line = single_line(&text, max);
        prop_assert!(line.chars().count() <= max);
        prop_assert!(!line.chars().any(char::is_control));
    }

    #[test]
    fn retry_after_is_none_or_bounded(value in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Some(wait) = parse_retry_after(&value, SystemTime::now()) {
            prop_assert!((MIN_RETRY_AFTER..=MAX_RETRY_AFTER).contains(&wait));
        }
    }

    #[test]
    fn retry_after_text_is_none_or_bounded(value in "[ 0-9A-Za-z,:-]{0,40}") {
        if let Some(wait) = parse_retry_after(value.as_bytes(), SystemTime::now()) {
            prop_assert!((MIN_RETRY_AFTER..=MAX_RETRY_AFTER).contains(&wait));
        }
    }

    #[test]
    fn retry_after_delta_seconds_round_trip(seconds in 1_u64..=3600) {
        prop_assert_eq!(
            parse_retry_after(seconds.to_string().as_bytes(), SystemTime::now()),
            Some(Duration::from_secs(seconds))
        );
    }

    #[test]
    fn retry_after_dates_round_trip(seconds in 1_u64..=3600, epoch in 0_u64..4_000_000_000) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(seconds));
        prop_assert_eq!(
            parse_retry_after(date.as_bytes(), now),
            Some(Duration::from_secs(seconds))
        );
    }

    #[test]
    fn integer_lifetimes_round_trip(seconds in any::<i64>()) {
        let object = json!({"expires_in": seconds});
        let object = object.as_object().ok_or_else(|| TestCaseError::fail("object"))?;
        prop_assert_eq!(
            ReportedLifetime::from_field(object, "expires_in"),
            ReportedLifetime::Seconds(seconds)
        );
    }

    #[test]
    fn any_lifetime_value_parses_without_panic(value in json_value(&KEYS)) {
        let object = json!({"expires_in": value});
        let object = object.as_object().ok_or_else(|| TestCaseError::fail("object"))?;
        let lifetime = ReportedLifetime::from_field(object, "expires_in");
        if let Some(clamped) = lifetime.clamped(Duration::from_secs(3600)) {
            prop_assert!(clamped <= Duration::from_secs(3600));
        }
    }

    #[test]
    fn any_lifetime_clamps_without_overflow(seconds in any::<i64>(), max_seconds in 0_u64..=86_400) {
        let max = Duration::from_secs(max_seconds);
        let clamped = ReportedLifetime::Seconds(seconds).clamped(max).ok_or_else(|| TestCaseError::fail("reported"))?;
        prop_assert!(clamped <= max);
        prop_assert_eq!(clamped.is_zero(), seconds <= 0 || max.is_zero());
    }
}
