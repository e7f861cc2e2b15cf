use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sync_client_operator::api::SyncClientCredential;

use super::*;
use crate::table;

const NOW: &str = "2026-03-10T12:00:00Z";
const SP: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW).unwrap().to_utc()
}

fn entra(name: &str, connection: &Value) -> Value {
    json!({"name": name, "entraId": {"connectionRef": connection, "servicePrincipalId": SP}})
}

/// Revision 4 in the Secret; `entra` holds it, validated, its job active again after a
/// quarantine; `backup` still holds 3: the app lost its permission, retried in 40 s, its job
/// quarantined; `new` was never tried.
fn credential(deliveries: &[&str]) -> SyncClientCredential {
    let spec = [
        entra("entra", &json!({"name": "entra"})),
        entra(
            "backup",
            &json!({"kind": "ClusterEntraConnection", "name": "shared"}),
        ),
        {
            let mut new = entra("new", &json!({"name": "entra"}));
            new["entraId"]["jobId"] = json!("scim.named");
            new
        },
    ];
    let recorded = json!([
        {"name": "entra", "jobId": "scim.0123", "deliveredRevision": 4,
         "deliveredTime": "2026-03-10T11:58:00Z", "validation": "Passed", "jobState": "Active",
         "quarantineLiftedTime": "2026-03-10T11:58:00Z", "failedAttempts": 0,
         "lastAttemptTime": "2026-03-10T11:58:00Z"},
        {"name": "backup", "jobId": "scim.4567", "deliveredRevision": 3,
         "deliveredTime": "2026-03-07T12:00:00Z", "validation": "Passed",
         "jobState": "Quarantine", "quarantineReason": "EncounteredQuarantineException",
         "lastFailureReason": "EntraPermissionDenied",
         "lastFailureMessage": "403 from Graph:\n  Authorization_RequestDenied",
         "failedAttempts": 2, "lastAttemptTime": "2026-03-10T11:59:00Z",
         "nextAttemptTime": "2026-03-10T12:00:40Z"},
    ]);
    let object = json!({
        "apiVersion": "syncclient.io/v1alpha1",
        "kind": "SyncClientCredential",
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {
            "brokerRef": {"kind": "IdentityBroker", "name": "vcenter"},
            "directoryId": "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f",
            "deliveries": spec.iter().filter(|d| deliveries.contains(&d["name"].as_str().unwrap())).collect::<Vec<_>>(),
        },
        "status": {"revision": 4, "deliveries": recorded},
    });
    serde_json::from_value(object).unwrap()
}

fn all() -> Vec<DeliverySummary> {
    summarize(&credential(&["entra", "backup", "new"]))
}

#[test]
fn deliveries_follow_the_spec_with_what_the_operator_recorded() {
    let deliveries = all();
    let names: Vec<&str> = deliveries.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["entra", "backup", "new"]);
    assert_eq!(
        deliveries.iter().map(|d| d.current).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(
        deliveries[1].status.as_ref().unwrap().delivered_revision,
        Some(3)
    );
    assert_eq!(deliveries[2].status, None, "never tried");
    assert_eq!(
        deliveries[2].entra_id.as_ref().unwrap().job_id.as_deref(),
        Some("scim.named")
    );
    // A status entry whose delivery left the spec is not shown.
    assert_eq!(summarize(&credential(&["backup"])).len(), 1);
}

#[test]
fn the_delivered_column_counts_current_deliveries_and_says_why_one_is_behind() {
    assert_eq!(delivered_cell(&[]), "-");
    assert_eq!(delivered_cell(&summarize(&credential(&["entra"]))), "1/1");
    assert_eq!(
        delivered_cell(&all()),
        "1/3 EntraPermissionDenied",
        "the first delivery behind"
    );
    assert_eq!(
        delivered_cell(&summarize(&credential(&["entra", "new"]))),
        "1/2 DeliveryPending"
    );
    let mut quarantined = summarize(&credential(&["entra"]));
    let status = quarantined[0].status.as_mut().unwrap();
    status.job_state = Some("Quarantine".into());
    quarantined[0].current = false;
    assert_eq!(delivered_cell(&quarantined), "0/1 DeliveryPending");
}

#[test]
fn wide_details_name_each_deliverys_job_validation_and_next_attempt() {
    assert_eq!(details_cell(&[], now()), "-");
    assert_eq!(
        details_cell(&all(), now()),
        "entra: job Active, validation Passed; \
         backup: job Quarantine (EncounteredQuarantineException), validation Passed, next attempt in 40s; \
         new: not attempted yet"
    );
    let mut failed = summarize(&credential(&["entra"]));
    let status = failed[0].status.as_mut().unwrap();
    status.validation = Some("Failed: the SCIM endpoint said 401".into());
    status.next_attempt_time = Some(now());
    assert_eq!(
        details_cell(&failed, now()),
        "entra: job Active, validation Failed, next attempt due"
    );
}

#[test]
fn one_credential_lists_each_delivery_in_full() {
    let text = table::render(&STATUS_HEADERS, &status_rows(&all(), Some(4), now()));
    assert_eq!(
        text,
        "DELIVERY   CONNECTION                      JOB          REVISION       DELIVERED   VALIDATION   JOB STATE                                     FAILURES   NEXT ATTEMPT   LAST FAILURE\n\
         entra      EntraConnection/entra           scim.0123    4              2m ago      Passed       Active (quarantine lifted 2m ago)             0          -              -\n\
         backup     ClusterEntraConnection/shared   scim.4567    3 (behind 4)   3d ago      Passed       Quarantine (EncounteredQuarantineException)   2          in 40s         EntraPermissionDenied: 403 from Graph: Authorization_RequestDenied\n\
         new        EntraConnection/entra           scim.named   -              -           -            -                                             0          -              -\n"
    );
}

#[test]
fn history_shows_what_each_delivery_holds_and_its_last_attempt() {
    let text = table::render(&HISTORY_HEADERS, &history_rows(&all(), now()));
    assert_eq!(
        text,
        "DELIVERY   REVISION   DELIVERED                       LAST ATTEMPT                    OUTCOME\n\
         entra      4          2026-03-10T11:58:00Z (2m ago)   2026-03-10T11:58:00Z (2m ago)   DeliveredAndValidated\n\
         backup     3          2026-03-07T12:00:00Z (3d ago)   2026-03-10T11:59:00Z (1m ago)   EntraPermissionDenied\n\
         new        -          -                               -                               -\n"
    );
    let mut pending = summarize(&credential(&["entra"]));
    pending[0].status.as_mut().unwrap().validation = Some("Pending: 401".into());
    assert_eq!(history_rows(&pending, now())[0][4], "DeliveryPending");
}

#[test]
fn summaries_serialize_the_spec_target_and_the_recorded_status() {
    let value = serde_json::to_value(all()).unwrap();
    assert_eq!(value[0]["name"], "entra");
    assert_eq!(value[0]["current"], true);
    assert_eq!(
        value[0]["entraId"],
        json!({"connectionRef": {"kind": "EntraConnection", "name": "entra"}, "servicePrincipalId": SP})
    );
    assert_eq!(value[0]["status"]["deliveredTime"], "2026-03-10T11:58:00Z");
    assert_eq!(
        value[1]["status"]["quarantineReason"],
        "EncounteredQuarantineException"
    );
    assert_eq!(value[2]["status"], Value::Null);
}
