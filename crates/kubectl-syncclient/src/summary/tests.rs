use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sync_client_operator::api::{BrokerStatus, SyncClientCredential};

use super::*;
use crate::table;

const NOW: &str = "2026-03-10T12:00:00Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW).unwrap().to_utc()
}

fn credential(name: &str, spec: &Value, status: Option<Value>) -> SyncClientCredential {
    let mut spec_value = json!({
        "brokerRef": {"kind": "IdentityBroker", "name": "vcenter"},
        "directoryId": "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f",
    });
    for (key, value) in spec.as_object().unwrap() {
        spec_value[key] = value.clone();
    }
    let mut object = json!({
        "apiVersion": "syncclient.io/v1alpha1",
        "kind": "SyncClientCredential",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": spec_value,
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    serde_json::from_value(object).unwrap()
}

fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({"type": "Ready", "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-03-01T00:00:00Z"})
}

fn current() -> SyncClientCredential {
    credential(
        "okta-scim",
        &json!({}),
        Some(json!({
            "conditions": [
                ready("True", "CredentialCurrent", "Secret okta-scim holds revision 3"),
                {"type": "Preflight", "status": "True", "reason": "PreflightPassed", "message": "ok",
                 "lastTransitionTime": "2026-03-10T11:00:00Z"},
            ],
            "secretName": "okta-scim-token",
            "revision": 3,
            "expiresAt": "2026-03-15T15:00:30Z",
            "renewalTime": "2026-03-12T12:00:00Z",
            "lastRotationTime": "2026-03-10T10:00:00Z",
            "failedAttempts": 0,
            "lastVerifyTime": "2026-03-10T11:40:00Z",
            "lastVerifyResult": "Valid",
            "lastPreflightTime": "2026-03-10T11:57:00Z",
        })),
    )
}

fn ready_broker() -> BrokerState {
    BrokerState::Ready {
        reason: "Authenticated".into(),
    }
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

#[test]
fn a_current_credential_reads_as_times_from_now() {
    let summary = summarize(&current(), ready_broker());
    assert_eq!(
        row(&summary, now(), false, false),
        strings(&[
            "okta-scim",
            "True",
            "CredentialCurrent",
            "in 5d3h",
            "in 2d",
            "2h ago",
            "0",
            "-",
            "IdentityBroker/vcenter (Ready)",
        ])
    );
}

#[test]
fn wide_rows_add_secret_revision_verification_preflight_and_message() {
    let summary = summarize(&current(), ready_broker());
    let cells = row(&summary, now(), true, true);
    assert_eq!(cells[0], "team-a");
    assert_eq!(
        cells[10..],
        strings(&[
            "okta-scim-token",
            "3",
            "Valid 20m ago",
            "PreflightPassed 3m ago",
            "-",
            "Secret okta-scim holds revision 3",
        ])
    );
    assert_eq!(cells.len(), headers(true, true).len());
}

#[test]
fn a_failing_credential_shows_expiry_past_due_renewal_and_next_retry() {
    let failing = credential(
        "okta-scim",
        &json!({}),
        Some(json!({
            "conditions": [ready("False", "BrokerUnavailable", "renewal failed (BrokerUnavailable):\n  503")],
            "revision": 3,
            "expiresAt": "2026-03-10T11:57:00Z",
            "renewalTime": "2026-03-10T11:00:00Z",
            "lastRotationTime": "2026-03-01T12:00:00Z",
            "failedAttempts": 3,
            "lastFailureReason": "BrokerUnavailable",
            "nextRetryTime": "2026-03-10T12:00:40Z",
        })),
    );
    let summary = summarize(
        &failing,
        BrokerState::NotReady {
            reason: "AuthenticationFailed".into(),
            message: "401".into(),
        },
    );
    let cells = row(&summary, now(), true, false);
    assert_eq!(
        cells[..9],
        strings(&[
            "okta-scim",
            "False",
            "BrokerUnavailable",
            "expired 3m ago",
            "due 1h ago",
            "9d ago",
            "3 (retry in 40s)",
            "-",
            "IdentityBroker/vcenter (NotReady: AuthenticationFailed)",
        ])
    );
    assert_eq!(
        cells.last().unwrap(),
        "renewal failed (BrokerUnavailable): 503"
    );
}

#[test]
fn failures_say_whether_and_when_the_operator_retries() {
    let with = |attempts: i32, retry: Option<&str>| {
        let mut status = json!({"failedAttempts": attempts});
        if let Some(retry) = retry {
            status["nextRetryTime"] = json!(retry);
        }
        let summary = summarize(
            &credential("c", &json!({}), Some(status)),
            BrokerState::Unknown,
        );
        row(&summary, now(), false, false)[6].clone()
    };
    assert_eq!(with(0, None), "0");
    assert_eq!(with(2, Some("2026-03-10T12:05:00Z")), "2 (retry in 5m)");
    assert_eq!(with(2, Some("2026-03-10T11:59:00Z")), "2 (retry due)");
    assert_eq!(with(2, Some("2026-03-10T12:00:00.500Z")), "2 (retry due)");
    assert_eq!(with(5, None), "5 (no retry)");
}

#[test]
fn a_new_credential_without_status_is_all_dashes() {
    let summary = summarize(
        &credential("fresh", &json!({}), None),
        BrokerState::NotFound,
    );
    assert_eq!(
        row(&summary, now(), true, false),
        strings(&[
            "fresh",
            "-",
            "-",
            "-",
            "-",
            "-",
            "0",
            "-",
            "IdentityBroker/vcenter (NotFound)",
            "fresh",
            "-",
            "-",
            "-",
            "-",
            "-",
        ])
    );
}

#[test]
fn client_secrets_never_expire_and_suspended_credentials_have_no_renewal() {
    let secret = credential(
        "client",
        &json!({"credentialType": "ClientSecret", "suspend": true, "secretName": "client-creds",
                "brokerRef": {"kind": "ClusterIdentityBroker", "name": "shared"}}),
        Some(json!({"revision": 1, "renewalTime": "2026-04-01T00:00:00Z"})),
    );
    let summary = summarize(
        &secret,
        BrokerState::Unreadable {
            error: "forbidden".into(),
        },
    );
    let cells = row(&summary, now(), true, false);
    assert_eq!(cells[3], "never");
    assert_eq!(cells[4], "suspended");
    assert_eq!(cells[8], "ClusterIdentityBroker/shared (Unreadable)");
    assert_eq!(cells[9], "client-creds");
}

#[test]
fn the_table_lines_up_under_its_headers() {
    let rows = vec![
        row(&summarize(&current(), ready_broker()), now(), false, true),
        row(
            &summarize(&credential("b", &json!({}), None), BrokerState::Unknown),
            now(),
            false,
            true,
        ),
    ];
    let text = table::render(&headers(false, true), &rows);
    assert_eq!(
        text,
        "NAMESPACE   NAME        READY   REASON              EXPIRES   RENEWAL   LAST ROTATION   FAILURES   DELIVERED   BROKER\n\
         team-a      okta-scim   True    CredentialCurrent   in 5d3h   in 2d     2h ago          0          -           IdentityBroker/vcenter (Ready)\n\
         team-a      b           -       -                   -         -         -               0          -           IdentityBroker/vcenter (Unknown)\n"
    );
}

#[test]
fn broker_state_follows_its_ready_condition() {
    let status = |conditions: Value| -> BrokerStatus {
        serde_json::from_value(json!({"conditions": conditions})).unwrap()
    };
    assert_eq!(BrokerState::from_status(None), BrokerState::Unknown);
    assert_eq!(
        BrokerState::from_status(Some(&status(json!([ready("True", "Authenticated", "")])))),
        ready_broker()
    );
    assert_eq!(
        BrokerState::from_status(Some(&status(json!([ready(
            "False",
            "AuthenticationFailed",
            "401 from vCenter"
        )])))),
        BrokerState::NotReady {
            reason: "AuthenticationFailed".into(),
            message: "401 from vCenter".into()
        }
    );
    assert_eq!(
        BrokerState::from_status(Some(&status(json!([ready("Unknown", "Pending", "")])))),
        BrokerState::Unknown
    );
}

#[test]
fn summaries_serialize_with_absolute_times_and_the_broker_state() {
    let value = serde_json::to_value(summarize(&current(), ready_broker())).unwrap();
    assert_eq!(value["namespace"], "team-a");
    assert_eq!(value["ready"], "True");
    assert_eq!(value["expiresAt"], "2026-03-15T15:00:30Z");
    assert_eq!(value["secretName"], "okta-scim-token");
    assert_eq!(value["preflight"]["reason"], "PreflightPassed");
    assert_eq!(
        value["broker"],
        json!({"kind": "IdentityBroker", "name": "vcenter", "state": "Ready", "reason": "Authenticated"})
    );
}

/// `current()` with one delivery holding revision 3 and one the app lost its permission for.
fn delivering() -> SyncClientCredential {
    let mut credential = current();
    credential.spec.deliveries = serde_json::from_value(json!([
        {"name": "entra", "entraId": {"connectionRef": {"name": "entra"},
         "servicePrincipalId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}},
        {"name": "backup", "entraId": {"connectionRef": {"name": "entra"},
         "servicePrincipalId": "1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}},
    ]))
    .unwrap();
    let status = credential.status.as_mut().unwrap();
    status.deliveries = serde_json::from_value(json!([
        {"name": "entra", "jobId": "scim.0123", "deliveredRevision": 3, "validation": "Passed",
         "jobState": "Active", "lastAttemptTime": "2026-03-10T10:00:00Z"},
        {"name": "backup", "jobId": "scim.4567", "deliveredRevision": 2, "validation": "Passed",
         "jobState": "Active", "lastFailureReason": "EntraPermissionDenied",
         "failedAttempts": 1, "lastAttemptTime": "2026-03-10T11:59:00Z",
         "nextAttemptTime": "2026-03-10T12:00:05Z"},
    ]))
    .unwrap();
    status.conditions.push(
        serde_json::from_value(json!({"type": "Delivered", "status": "False",
            "reason": "EntraPermissionDenied", "message": "delivering revision 3 to backup: 403",
            "lastTransitionTime": "2026-03-10T11:59:00Z"}))
        .unwrap(),
    );
    credential
}

#[test]
fn deliveries_show_as_a_count_and_in_wide_per_delivery() {
    let summary = summarize(&delivering(), ready_broker());
    let cells = row(&summary, now(), true, false);
    let headers = headers(true, false);
    let cell = |header: &str| cells[headers.iter().position(|h| *h == header).unwrap()].clone();
    assert_eq!(cell("DELIVERED"), "1/2 EntraPermissionDenied");
    assert_eq!(
        cell("DELIVERIES"),
        "entra: job Active, validation Passed; \
         backup: job Active, validation Passed, next attempt in 5s"
    );
    assert_eq!(cells.len(), headers.len());
}

#[test]
fn summaries_carry_the_deliveries_and_the_delivered_condition() {
    let value = serde_json::to_value(summarize(&delivering(), ready_broker())).unwrap();
    assert_eq!(
        value["delivered"],
        json!({"status": "False", "reason": "EntraPermissionDenied",
               "message": "delivering revision 3 to backup: 403"})
    );
    let deliveries = value["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0]["current"], true);
    assert_eq!(deliveries[0]["status"]["jobId"], "scim.0123");
    assert_eq!(deliveries[1]["current"], false);
    assert_eq!(
        deliveries[1]["status"]["nextAttemptTime"],
        "2026-03-10T12:00:05Z"
    );
    let plain = serde_json::to_value(summarize(&current(), ready_broker())).unwrap();
    assert_eq!(plain["deliveries"], json!([]));
    assert_eq!(plain["delivered"], Value::Null);
}
