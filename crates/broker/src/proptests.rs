//! Property tests: every parser of untrusted answers, fed arbitrary bytes and arbitrary JSON,
//! never panics, never quotes what it was given, and keeps its output bounded; reported
//! lifetimes round-trip. (`Retry-After`, lifetimes and one-line text in general are tested in
//! `sync_client_http`.)

use proptest::prelude::*;
use serde_json::{Value, json};
use sync_client_http::strategies::{PLANTED_SECRET as MARKER, assert_not_quoted, content_type};
use sync_client_http::{ReportedLifetime, is_html};

use crate::diagnostics::describe_error_body;
use crate::wire::{CredentialKind, parse_session_id, parse_sync_client_media, parse_token_info};

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

fn body() -> impl Strategy<Value = Vec<u8>> {
    sync_client_http::strategies::body(&KEYS)
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
        for text in [&described.code, &described.detail].into_iter().flatten() {
            prop_assert!(!text.contains(MARKER), "{text}");
            prop_assert!(text.chars().count() <= 160, "{text}");
            prop_assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
        }
        if let Some(summary) = described.summary() {
            prop_assert!(summary.chars().count() <= 2 * 160 + 2);
        }
        // Whatever is called HTML is never shown beyond its title.
        if is_html(content_type.as_deref(), &body) {
            prop_assert_eq!(described.code, None);
        }
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
