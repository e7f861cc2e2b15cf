//! Property tests: every parser of untrusted answers, fed arbitrary bytes and arbitrary JSON,
//! never panics, never quotes what it was given, and keeps its output bounded; reported
//! lifetimes and `Retry-After` values round-trip.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::diagnostics::{describe_error_body, is_html, single_line};
use crate::lifetime::ReportedLifetime;
use crate::retry_after::{MAX_RETRY_AFTER, MIN_RETRY_AFTER, parse_retry_after};
use crate::wire::{CredentialKind, parse_session_id, parse_sync_client_media, parse_token_info};

/// Planted in generated strings; no error message may ever repeat it.
const MARKER: &str = "PLANTED-SECRET";

/// Keys the parsers look at, so that generated objects hit the interesting paths.
const KEYS: [&str; 20] = [
    "value",
    "token_type",
    "access_token",
    "expires_in",
    "generate_token",
    "client_id",
    "client_secret",
    "access_token_expire_in",
    "token_ttl",
    "_links",
    "error_type",
    "messages",
    "default_message",
    "type",
    "message",
    "detail",
    "error_description",
    "error",
    "errors",
    "challenge",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |number| number.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
        Just(Value::String(MARKER.to_owned())),
        Just(Value::String(format!("<html><title>{MARKER}</title>"))),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS.as_slice()).prop_map(str::to_owned),
        1 => ".{0,10}",
    ]
}

/// Any JSON value, nested a few levels, with objects favouring the keys the parsers read.
fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Answer bodies: raw bytes, JSON text (sometimes cut short), or JSON with a BOM or padding.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|value| value.to_string().into_bytes()),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(value, index)| {
            let text = value.to_string().into_bytes();
            let cut = index.index(text.len() + 1);
            text[..cut].to_vec()
        }),
        json_value().prop_map(|value| format!("\u{feff} {value}\n").into_bytes()),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("text/html; charset=utf-8".to_owned()),
        Just("TEXT/HTML".to_owned()),
        Just("text/plain".to_owned()),
        ".{0,30}",
    ])
}

fn assert_not_quoted(reason: &str) -> Result<(), TestCaseError> {
    prop_assert!(!reason.contains(MARKER), "quoted the body: {reason}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn session_id_parser_never_panics_or_quotes(body in body()) {
        match parse_session_id(&body) {
            Ok(id) => prop_assert!(!id.expose().trim().is_empty()),
            Err(error) => assert_not_quoted(&error.0)?,
        }
    }

    #[test]
    fn token_info_parser_never_panics_or_quotes(body in body()) {
        match parse_token_info(&body) {
            Ok(info) => prop_assert!(!info.access_token.expose().trim().is_empty()),
            Err(error) => assert_not_quoted(&error.0)?,
        }
    }

    #[test]
    fn sync_client_media_parser_never_panics_or_quotes(body in body()) {
        match parse_sync_client_media(&body) {
            Ok(media) => {
                let config = SyncClientMediaCopy::of(&body);
                for kind in [CredentialKind::AccessToken, CredentialKind::ClientSecret] {
                    let media = parse_sync_client_media(&body).map_err(|e| TestCaseError::fail(e.0))?;
                    if let Err(error) = media.into_credential(kind) {
                        assert_not_quoted(&error.0)?;
                    }
                }
                let read = media.into_config();
                prop_assert_eq!(read.generate_token, config.generate_token);
            }
            Err(error) => assert_not_quoted(&error.0)?,
        }
    }

    #[test]
    fn error_bodies_are_described_on_one_bounded_line_without_secrets(
        content_type in content_type(),
        body in body(),
    ) {
        let described = describe_error_body(content_type.as_deref(), &body, &[MARKER]);
        for text in [&described.error_type, &described.detail].into_iter().flatten() {
            prop_assert!(!text.contains(MARKER), "{text}");
            prop_assert!(text.chars().count() <= 160, "{text}");
            prop_assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
        }
        if let Some(summary) = described.summary() {
            prop_assert!(summary.chars().count() <= 2 * 160 + 2);
        }
        // Whatever is called HTML is never shown beyond its title.
        if is_html(content_type.as_deref(), &body) {
            prop_assert_eq!(described.error_type, None);
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
        let token_info = json!({"access_token": "t", "expires_in": seconds}).to_string();
        prop_assert_eq!(
            parse_token_info(token_info.as_bytes()).map(|info| info.expires_in),
            Ok(ReportedLifetime::Seconds(seconds))
        );
        let media = json!({"access_token": "t", "access_token_expire_in": seconds}).to_string();
        prop_assert_eq!(
            parse_sync_client_media(media.as_bytes()).map(|media| media.access_token_expire_in),
            Ok(ReportedLifetime::Seconds(seconds))
        );
    }

    #[test]
    fn fractional_lifetimes_round_down(whole in -1_000_000_000_i64..1_000_000_000, tenths in 1_u8..10) {
        let text = format!(r#"{{"access_token":"t","expires_in":{whole}.{tenths}}}"#);
        let expected = if whole < 0 { whole - 1 } else { whole };
        prop_assert_eq!(
            parse_token_info(text.as_bytes()).map(|info| info.expires_in),
            Ok(ReportedLifetime::Seconds(expected))
        );
    }

    #[test]
    fn any_lifetime_clamps_without_overflow(seconds in any::<i64>(), max_seconds in 0_u64..=86_400) {
        let max = Duration::from_secs(max_seconds);
        let clamped = ReportedLifetime::Seconds(seconds).clamped(max).expect("reported");
        prop_assert!(clamped <= max);
        prop_assert_eq!(clamped.is_zero(), seconds <= 0 || max.is_zero());
    }
}

/// What a read of the same body reports as `generate_token`, parsed independently.
struct SyncClientMediaCopy {
    generate_token: Option<bool>,
}

impl SyncClientMediaCopy {
    fn of(body: &[u8]) -> Self {
        let generate_token = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|value| value.get("generate_token").and_then(Value::as_bool));
        Self { generate_token }
    }
}
