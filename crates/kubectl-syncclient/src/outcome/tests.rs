use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sync_client_operator::api::{SyncClientCredential, SyncClientCredentialStatus};

use super::*;

const NOW: &str = "2026-03-10T12:00:00Z";
const VALUE: &str = "2026-03-10T11:59:58.123456789Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW).unwrap().to_utc()
}

fn entry(time: &str, revision: i64, trigger: &str, outcome: &str) -> Value {
    let mut record =
        json!({"time": time, "revision": revision, "trigger": trigger, "outcome": outcome});
    if outcome == "Issued" {
        record["fingerprint"] = json!(format!("sha256:{revision:012}"));
    }
    record
}

fn status(value: Value) -> SyncClientCredentialStatus {
    serde_json::from_value(value).unwrap()
}

fn credential(status: &Value) -> SyncClientCredential {
    serde_json::from_value(json!({
        "apiVersion": "syncclient.io/v1alpha1", "kind": "SyncClientCredential",
        "metadata": {"name": "okta-scim", "namespace": "team-a"},
        "spec": {"brokerRef": {"name": "vcenter"}, "directoryId": "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f",
                 "secretName": "okta-scim-token"},
        "status": status,
    }))
    .unwrap()
}

/// Revision 3 issued on schedule, an hour ago.
fn before() -> Value {
    json!({
        "revision": 3,
        "expiresAt": "2026-03-15T15:00:30Z",
        "observedRotateRequest": "older",
        "history": [entry("2026-03-10T11:00:00Z", 3, "RenewalDue", "Issued")],
    })
}

fn baseline() -> Baseline {
    Baseline::of(Some(&status(before())))
}

#[test]
fn request_values_are_rfc3339_with_nanoseconds() {
    let at = DateTime::parse_from_rfc3339("2026-03-10T12:00:00.5Z")
        .unwrap()
        .to_utc();
    assert_eq!(request_value(at), "2026-03-10T12:00:00.500000000Z");
}

#[test]
fn nothing_new_is_no_outcome_yet() {
    assert_eq!(
        rotate_outcome(&baseline(), VALUE, Some(&status(before()))),
        None
    );
    assert_eq!(rotate_outcome(&baseline(), VALUE, None), None);
}

#[test]
fn a_served_request_with_a_new_issued_entry_is_issued() {
    let mut after = before();
    after["observedRotateRequest"] = json!(VALUE);
    after["revision"] = json!(4);
    after["history"] = json!([
        entry("2026-03-10T12:00:00Z", 4, "RotateRequested", "Issued"),
        entry("2026-03-10T11:00:00Z", 3, "RenewalDue", "Issued"),
    ]);
    let outcome = rotate_outcome(&baseline(), VALUE, Some(&status(after.clone()))).unwrap();
    let RotateOutcome::Issued {
        record: Some(record),
    } = &outcome
    else {
        panic!("issued with a record expected: {outcome:?}");
    };
    assert_eq!(record.revision, 4);
    assert_eq!(
        describe_rotation(&outcome, &credential(&after), now()),
        "Rotated team-a/okta-scim: new credential in Secret okta-scim-token (revision 4, sha256:000000000004, expires in 5d3h)."
    );
}

#[test]
fn an_issued_entry_before_the_request_is_marked_served_is_not_yet_the_outcome() {
    let mut after = before();
    after["history"] = json!([
        entry("2026-03-10T12:00:00Z", 4, "RotateRequested", "Issued"),
        entry("2026-03-10T11:00:00Z", 3, "RenewalDue", "Issued"),
    ]);
    assert_eq!(
        rotate_outcome(&baseline(), VALUE, Some(&status(after))),
        None
    );
}

#[test]
fn entries_already_there_or_of_other_triggers_do_not_count() {
    let old_failure = entry(
        "2026-03-10T11:30:00Z",
        4,
        "RotateRequested",
        "BrokerUnavailable",
    );
    let mut earlier = before();
    earlier["history"] = json!([
        old_failure,
        entry("2026-03-10T11:00:00Z", 3, "RenewalDue", "Issued")
    ]);
    let baseline = Baseline::of(Some(&status(earlier.clone())));
    let mut after = earlier;
    after["history"] = json!([
        entry("2026-03-10T12:00:00Z", 4, "SecretMissing", "Issued"),
        old_failure,
        entry("2026-03-10T11:00:00Z", 3, "RenewalDue", "Issued"),
    ]);
    assert_eq!(rotate_outcome(&baseline, VALUE, Some(&status(after))), None);
}

#[test]
fn a_retried_failure_is_failed_and_not_served() {
    let mut after = before();
    after["failedAttempts"] = json!(1);
    after["lastFailureReason"] = json!("BrokerUnavailable");
    after["lastFailureMessage"] = json!("the broker answered 503");
    after["lastFailureTime"] = json!("2026-03-10T12:00:00Z");
    after["nextRetryTime"] = json!("2026-03-10T12:00:30Z");
    after["history"] = json!([
        entry(
            "2026-03-10T12:00:00Z",
            4,
            "RotateRequested",
            "BrokerUnavailable"
        ),
        entry("2026-03-10T11:00:00Z", 3, "RenewalDue", "Issued"),
    ]);
    let outcome = rotate_outcome(&baseline(), VALUE, Some(&status(after.clone()))).unwrap();
    assert!(matches!(
        &outcome,
        RotateOutcome::Failed { reason, served: false, .. } if reason == "BrokerUnavailable"
    ));
    assert_eq!(
        describe_rotation(&outcome, &credential(&after), now()),
        "Rotation of team-a/okta-scim failed: BrokerUnavailable: the broker answered 503.\n\
         The operator retries at 2026-03-10T12:00:30Z (in 30s); the request stays set until it is served."
    );
}

#[test]
fn a_permanent_failure_is_served_and_not_retried() {
    let mut after = before();
    after["observedRotateRequest"] = json!(VALUE);
    after["lastFailureReason"] = json!("PermissionDenied");
    after["lastFailureTime"] = json!("2026-03-10T12:00:00Z");
    after["history"] = json!([
        entry(
            "2026-03-10T12:00:00Z",
            4,
            "RotateRequested",
            "PermissionDenied"
        ),
        entry("2026-03-10T11:00:00Z", 3, "RenewalDue", "Issued"),
    ]);
    let outcome = rotate_outcome(&baseline(), VALUE, Some(&status(after.clone()))).unwrap();
    assert!(matches!(
        &outcome,
        RotateOutcome::Failed { served: true, .. }
    ));
    assert!(
        describe_rotation(&outcome, &credential(&after), now()).ends_with(
            "The operator will not retry this request: fix the cause, then rotate again."
        )
    );
}

#[test]
fn without_history_a_served_request_is_judged_by_the_last_failure_time() {
    let plain = json!({"revision": 3, "observedRotateRequest": "older"});
    let baseline = Baseline::of(Some(&status(plain.clone())));
    let mut served = plain.clone();
    served["observedRotateRequest"] = json!(VALUE);
    served["revision"] = json!(4);
    assert_eq!(
        rotate_outcome(&baseline, VALUE, Some(&status(served.clone()))),
        Some(RotateOutcome::Issued { record: None })
    );
    served["lastFailureTime"] = json!("2026-03-10T12:00:00Z");
    served["lastFailureReason"] = json!("SyncClientConflict");
    assert_eq!(
        rotate_outcome(&baseline, VALUE, Some(&status(served))),
        Some(RotateOutcome::Failed {
            reason: "SyncClientConflict".into(),
            record: None,
            served: true
        })
    );
}

#[test]
fn the_warning_names_the_secret_the_revision_and_the_fingerprint() {
    let warning = rotate_warning(&credential(&before()), now());
    assert_eq!(
        warning,
        "Rotating SyncClientCredential team-a/okta-scim makes the broker issue a new credential and revoke the \
         sync client's current one at once.\nAnything still using the current credential from Secret okta-scim-token \
         (revision 3, sha256:000000000003, expires in 5d3h) fails until it reads the new one."
    );
    let mut suspended = credential(&json!({}));
    suspended.spec.suspend = true;
    let warning = rotate_warning(&suspended, now());
    assert!(warning.contains("from Secret okta-scim-token fails"));
    assert!(warning.ends_with("the operator serves the request only once it is false."));
}

fn preflight_status(observed: &str, condition: Option<(&str, &str, &str)>) -> Value {
    let mut value =
        json!({"observedPreflightRequest": observed, "lastPreflightTime": "2026-03-10T11:59:57Z"});
    if let Some((status, reason, message)) = condition {
        value["conditions"] = json!([{"type": "Preflight", "status": status, "reason": reason,
            "message": message, "lastTransitionTime": "2026-03-01T00:00:00Z"}]);
    }
    value
}

#[test]
fn a_preflight_is_served_when_its_value_is_observed() {
    let pending = status(preflight_status(
        "older",
        Some(("True", "PreflightPassed", "ok")),
    ));
    assert_eq!(preflight_outcome(VALUE, Some(&pending)), None);
    assert_eq!(preflight_outcome(VALUE, None), None);

    let passed = preflight_status(
        VALUE,
        Some(("True", "PreflightPassed", "login, token and read succeeded")),
    );
    let outcome = preflight_outcome(VALUE, Some(&status(passed.clone()))).unwrap();
    assert!(matches!(outcome, PreflightOutcome::Passed(_)));
    assert_eq!(
        describe_preflight(&outcome, &credential(&passed), now()),
        "Preflight of team-a/okta-scim passed.\n  \
         Condition: Preflight=True (PreflightPassed), checked 2026-03-10T11:59:57Z (3s ago)\n  \
         Message:   login, token and read succeeded"
    );
}

#[test]
fn a_failed_preflight_carries_its_reason() {
    let failed = preflight_status(
        VALUE,
        Some(("False", "PermissionDenied", "vCenter user lacks privilege")),
    );
    let outcome = preflight_outcome(VALUE, Some(&status(failed.clone()))).unwrap();
    assert!(
        matches!(&outcome, PreflightOutcome::Failed(Some(c)) if c.reason == "PermissionDenied")
    );
    let text = describe_preflight(&outcome, &credential(&failed), now());
    assert!(text.starts_with(
        "Preflight of team-a/okta-scim failed.\n  Condition: Preflight=False (PermissionDenied)"
    ));

    let bare = preflight_status(VALUE, None);
    let outcome = preflight_outcome(VALUE, Some(&status(bare.clone()))).unwrap();
    assert_eq!(outcome, PreflightOutcome::Failed(None));
    assert!(
        describe_preflight(&outcome, &credential(&bare), now())
            .contains("set no Preflight condition")
    );
}
