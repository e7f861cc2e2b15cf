//! Property tests: every parser of untrusted answers, fed arbitrary bytes and arbitrary JSON,
//! never panics, never quotes what it was given, and keeps its output bounded.

use proptest::prelude::*;
use serde_json::{Value, json};
use sync_client_http::strategies::{
    PLANTED_SECRET as MARKER, assert_not_quoted, body, content_type, json_value,
};
use sync_client_http::{MAX_DETAIL_CHARS, describe_error_body};

use crate::jobs::{parse_job, parse_job_list};
use crate::wire::{ErrorExtras, aadsts_prefix, parse_token_answer, read_error_json};

/// Keys the parsers look at, so that generated objects hit the interesting paths.
const KEYS: [&str; 32] = [
    "value",
    "id",
    "templateId",
    "schedule",
    "state",
    "status",
    "code",
    "quarantine",
    "reason",
    "currentBegan",
    "nextAttempt",
    "seriesBegan",
    "seriesCount",
    "error",
    "message",
    "tenantActionable",
    "lastExecution",
    "lastSuccessfulExecution",
    "timeBegan",
    "timeEnded",
    "steadyStateLastAchievedTime",
    "innerError",
    "innererror",
    "request-id",
    "error_description",
    "error_codes",
    "trace_id",
    "access_token",
    "token_type",
    "expires_in",
    "Error",
    "Code",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn job_parser_never_panics_or_quotes(body in body(&KEYS)) {
        match parse_job(&body) {
            Ok(job) => prop_assert!(!job.id.trim().is_empty()),
            Err(error) => assert_not_quoted(&error.0)?,
        }
    }

    #[test]
    fn job_list_parser_never_panics_or_quotes(body in body(&KEYS)) {
        match parse_job_list(&body) {
            Ok(jobs) => prop_assert!(jobs.iter().all(|job| !job.id.trim().is_empty())),
            Err(error) => assert_not_quoted(&error.0)?,
        }
    }

    #[test]
    fn jobs_inside_a_list_parse_like_single_jobs(job in json_value(&KEYS)) {
        let list = json!({"value": [job.clone()]}).to_string();
        let listed = parse_job_list(list.as_bytes()).map_err(|error| TestCaseError::fail(error.0))?;
        let single = parse_job(job.to_string().as_bytes()).ok();
        prop_assert_eq!(listed.first(), single.as_ref());
    }

    #[test]
    fn token_parser_never_panics_or_quotes(body in body(&KEYS)) {
        match parse_token_answer(&body) {
            Ok(answer) => prop_assert!(!answer.access_token.expose().trim().is_empty()),
            Err(error) => assert_not_quoted(&error.0)?,
        }
    }

    #[test]
    fn error_bodies_are_described_on_one_bounded_line_without_secrets(
        content_type in content_type(),
        body in body(&KEYS),
    ) {
        let mut extras = ErrorExtras::default();
        let described = describe_error_body(content_type.as_deref(), &body, &[MARKER], |json| {
            read_error_json(json, &mut extras)
        });
        for text in [&described.code, &described.detail].into_iter().flatten() {
            prop_assert!(!text.contains(MARKER), "{text}");
            prop_assert!(text.chars().count() <= MAX_DETAIL_CHARS, "{text}");
            prop_assert!(!text.contains('\n') && !text.contains('\r'), "{text:?}");
        }
    }

    #[test]
    fn error_json_of_any_shape_is_read_without_panic(json in json_value(&KEYS)) {
        let mut extras = ErrorExtras::default();
        let _ = read_error_json(&json, &mut extras);
        let wrapped = json!({"error": json});
        let _ = read_error_json(&wrapped, &mut extras);
        let _ = read_error_json(&Value::Null, &mut extras);
    }

    #[test]
    fn aadsts_prefixes_never_panic(text in ".{0,40}", number in any::<u32>()) {
        let _ = aadsts_prefix(&text);
        prop_assert_eq!(aadsts_prefix(&format!("AADSTS{number}: {text}")), Some(number));
    }
}
