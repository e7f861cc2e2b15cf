//! `status`: the table, its namespaces and contexts, and the documents.

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::harness::{
    BACKUP_SP, ENTRA_SP, World, condition, deliveries_spec, delivering_status, settled_status,
    time_from_now,
};

/// A table line's cells: columns are at least three spaces apart and cells hold single spaces.
pub fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn lines(text: &str) -> Vec<Vec<String>> {
    text.lines().map(cells).collect()
}

fn failing_status() -> Value {
    json!({
        "conditions": [condition("Ready", "False", "BrokerUnavailable", "renewal failed (BrokerUnavailable): 503")],
        "revision": 7,
        "expiresAt": time_from_now(-(TimeDelta::minutes(15) + TimeDelta::seconds(30))),
        "renewalTime": time_from_now(-(TimeDelta::hours(1) + TimeDelta::seconds(30))),
        "lastRotationTime": time_from_now(-(TimeDelta::days(9) + TimeDelta::minutes(30))),
        "failedAttempts": 3,
        "lastFailureReason": "BrokerUnavailable",
        "nextRetryTime": time_from_now(TimeDelta::minutes(12) + TimeDelta::seconds(30)),
    })
}

/// team-a: a settled credential and a failing one through a Ready broker; team-b: one through a
/// cluster broker that does not exist.
async fn world() -> World {
    let world = World::start().await;
    world.broker("team-a", "vcenter", Some(("True", "Authenticated")));
    world.credential(
        "team-a",
        "okta-scim",
        &json!({"secretName": "okta-scim-token"}),
        Some(settled_status()),
    );
    world.credential("team-a", "entra", &json!({}), Some(failing_status()));
    world.credential(
        "team-b",
        "ping",
        &json!({"brokerRef": {"kind": "ClusterIdentityBroker", "name": "shared"}}),
        None,
    );
    world
}

#[tokio::test]
async fn status_prints_a_table_of_the_namespace_with_times_from_now() {
    let world = world().await;
    let run = world.run(&["status", "-n", "team-a"]).await;
    assert_eq!(
        lines(run.ok()),
        vec![
            vec![
                "NAME",
                "READY",
                "REASON",
                "EXPIRES",
                "RENEWAL",
                "LAST ROTATION",
                "FAILURES",
                "DELIVERED",
                "BROKER"
            ],
            vec![
                "entra",
                "False",
                "BrokerUnavailable",
                "expired 15m ago",
                "due 1h ago",
                "9d ago",
                "3 (retry in 12m)",
                "-",
                "IdentityBroker/vcenter (Ready)"
            ],
            vec![
                "okta-scim",
                "True",
                "CredentialCurrent",
                "in 5d3h",
                "in 2d",
                "2h ago",
                "0",
                "-",
                "IdentityBroker/vcenter (Ready)"
            ],
        ]
    );
    let single = world
        .run(&["status", "okta-scim", "--namespace", "team-a"])
        .await;
    assert_eq!(lines(single.ok()).len(), 2, "{single:?}");
    assert!(single.stdout.contains("okta-scim"));
}

#[tokio::test]
async fn all_namespaces_adds_the_namespace_column_and_reads_each_broker() {
    let world = world().await;
    let run = world.run(&["status", "-A"]).await;
    let table = lines(run.ok());
    assert_eq!(table[0][0], "NAMESPACE");
    let rows: Vec<(String, String, String)> = table[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone(), r.last().unwrap().clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "team-a".into(),
                "entra".into(),
                "IdentityBroker/vcenter (Ready)".into()
            ),
            (
                "team-a".into(),
                "okta-scim".into(),
                "IdentityBroker/vcenter (Ready)".into()
            ),
            (
                "team-b".into(),
                "ping".into(),
                "ClusterIdentityBroker/shared (NotFound)".into()
            ),
        ]
    );
    let ping = &table[3];
    assert_eq!(
        ping[2..7],
        ["-", "-", "-", "-", "-"],
        "no status yet: {ping:?}"
    );
}

#[tokio::test]
async fn the_namespace_comes_from_the_flag_then_the_context_then_default() {
    let world = world().await;
    let from_context = world.run(&["--context", "team-b", "status"]).await;
    assert_eq!(lines(from_context.ok())[1][0], "ping");

    let flag_wins = world
        .run(&["status", "--context", "team-b", "-n", "team-a"])
        .await;
    let names: Vec<String> = lines(flag_wins.ok())[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(names, ["entra", "okta-scim"]);

    // The current context `sim` says `default`, where there are none.
    let current = world.run(&["status"]).await;
    assert_eq!(current.ok(), "");
    assert!(
        current
            .stderr
            .contains("No resources found in default namespace."),
        "{current:?}"
    );
}

#[tokio::test]
async fn wide_output_adds_secret_revision_verification_preflight_and_message() {
    let world = World::start().await;
    world.broker("team-a", "vcenter", Some(("False", "AuthenticationFailed")));
    let mut status = settled_status();
    status["lastVerifyTime"] = json!(time_from_now(
        -(TimeDelta::minutes(20) + TimeDelta::seconds(30))
    ));
    status["lastVerifyResult"] = json!("Valid");
    status["lastPreflightTime"] = json!(time_from_now(
        -(TimeDelta::minutes(13) + TimeDelta::seconds(30))
    ));
    status["conditions"].as_array_mut().unwrap().push(condition(
        "Preflight",
        "True",
        "PreflightPassed",
        "ok",
    ));
    world.credential("team-a", "okta-scim", &json!({}), Some(status));
    let run = world.run(&["-n", "team-a", "status", "-o", "wide"]).await;
    let table = lines(run.ok());
    assert_eq!(
        table[0][9..],
        [
            "SECRET",
            "REVISION",
            "VERIFIED",
            "PREFLIGHT",
            "DELIVERIES",
            "MESSAGE"
        ]
    );
    assert_eq!(
        table[1][7..],
        [
            "-",
            "IdentityBroker/vcenter (NotReady: AuthenticationFailed)",
            "okta-scim-token",
            "3",
            "Valid 20m ago",
            "PreflightPassed 13m ago",
            "-",
            "the Secret holds revision 3",
        ]
    );
}

#[tokio::test]
async fn json_and_yaml_carry_absolute_times_and_the_broker_state() {
    let world = world().await;
    let single: Value = serde_json::from_str(
        world
            .run(&["status", "okta-scim", "-n", "team-a", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    let stored = world.get_credential("team-a", "okta-scim");
    assert_eq!(single["name"], "okta-scim");
    assert_eq!(single["ready"], "True");
    assert_eq!(single["revision"], 3);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(single["expiresAt"].as_str().unwrap()).unwrap(),
        chrono::DateTime::parse_from_rfc3339(stored["status"]["expiresAt"].as_str().unwrap())
            .unwrap()
    );
    assert_eq!(
        single["broker"],
        json!({"kind": "IdentityBroker", "name": "vcenter", "state": "Ready", "reason": "Authenticated"})
    );

    let listed: Value =
        serde_saphyr::from_str(world.run(&["status", "-A", "-o", "yaml"]).await.ok()).unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["broker"]["state"], "NotFound");
    assert_eq!(items[1]["failedAttempts"], 0);
    assert_eq!(items[0]["failedAttempts"], 3);

    let empty: Value = serde_json::from_str(
        world
            .run(&["status", "-n", "default", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    assert_eq!(empty, json!({"items": []}));
}

#[tokio::test]
async fn a_label_selector_filters_the_list() {
    let world = world().await;
    let mut labelled = world.get_credential("team-a", "entra");
    labelled["metadata"]["labels"] = json!({"team": "identity"});
    world.sim.replace(labelled).unwrap();
    let run = world
        .run(&["status", "-n", "team-a", "-l", "team=identity"])
        .await;
    let names: Vec<String> = lines(run.ok())[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(names, ["entra"]);
}

/// team-a: `app` delivering to two Entra ID jobs (one current, one behind) next to `okta-scim`
/// without deliveries.
async fn delivering_world() -> World {
    let world = World::start().await;
    world.broker("team-a", "vcenter", Some(("True", "Authenticated")));
    world.credential(
        "team-a",
        "app",
        &json!({"deliveries": deliveries_spec()}),
        Some(delivering_status()),
    );
    world.credential("team-a", "okta-scim", &json!({}), Some(settled_status()));
    world
}

#[tokio::test]
async fn the_delivered_column_counts_deliveries_and_wide_details_each() {
    let world = delivering_world().await;
    let table = lines(world.run(&["status", "-n", "team-a"]).await.ok());
    assert_eq!(table[0][7], "DELIVERED");
    assert_eq!(
        table[1],
        [
            "app",
            "True",
            "CredentialCurrent",
            "in 5d3h",
            "in 2d",
            "2h ago",
            "0",
            "1/2 EntraThrottled",
            "IdentityBroker/vcenter (Ready)"
        ]
    );
    assert_eq!(table[2][0], "okta-scim");
    assert_eq!(table[2][7], "-", "no deliveries");

    let wide = lines(
        world
            .run(&["status", "-n", "team-a", "-o", "wide"])
            .await
            .ok(),
    );
    assert_eq!(wide[0][13], "DELIVERIES");
    assert_eq!(
        wide[1][13],
        "entra: job Active, validation Passed; \
         backup: job Quarantine (EncounteredQuarantineException), validation Passed, next attempt in 12m"
    );
    assert_eq!(wide[2][13], "-");
}

#[tokio::test]
async fn one_credential_lists_each_delivery_below_it() {
    let world = delivering_world().await;
    let run = world.run(&["status", "app", "-n", "team-a"]).await;
    let table = lines(run.ok());
    assert_eq!(table.len(), 6, "{run:?}");
    assert_eq!(table[1][0], "app");
    assert!(
        table[2].is_empty(),
        "a blank line between the tables: {run:?}"
    );
    assert_eq!(
        table[3..],
        [
            vec![
                "DELIVERY",
                "CONNECTION",
                "JOB",
                "REVISION",
                "DELIVERED",
                "VALIDATION",
                "JOB STATE",
                "FAILURES",
                "NEXT ATTEMPT",
                "LAST FAILURE"
            ],
            vec![
                "entra",
                "EntraConnection/entra",
                "scim.entra",
                "3",
                "20m ago",
                "Passed",
                "Active (quarantine lifted 20m ago)",
                "0",
                "-",
                "-"
            ],
            vec![
                "backup",
                "ClusterEntraConnection/shared",
                "scim.backup",
                "2 (behind 3)",
                "3d ago",
                "Passed",
                "Quarantine (EncounteredQuarantineException)",
                "2",
                "in 12m",
                "EntraThrottled: Graph answered 429 Too Many Requests"
            ],
        ]
    );
    // Wide shows the same deliveries table below the wide row.
    let wide = world
        .run(&["status", "app", "-n", "team-a", "-o", "wide"])
        .await;
    let wide_table = lines(wide.ok());
    assert_eq!(wide_table[1].len(), 15, "{wide:?}");
    assert_eq!(wide_table[3..], table[3..]);
    // A credential without deliveries is its row alone.
    let plain = world.run(&["status", "okta-scim", "-n", "team-a"]).await;
    assert_eq!(lines(plain.ok()).len(), 2, "{plain:?}");
}

/// An RFC 3339 time of a JSON document, for comparing times written with different precision.
fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time")).expect("RFC 3339")
}

#[tokio::test]
async fn json_and_yaml_carry_each_delivery_and_the_delivered_condition() {
    let world = delivering_world().await;
    let single: Value = serde_json::from_str(
        world
            .run(&["status", "app", "-n", "team-a", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    let stored = world.get_credential("team-a", "app");
    assert_eq!(single["delivered"]["status"], "False");
    assert_eq!(single["delivered"]["reason"], "EntraThrottled");
    let deliveries = single["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    for (i, (name, sp, current)) in [("entra", ENTRA_SP, true), ("backup", BACKUP_SP, false)]
        .into_iter()
        .enumerate()
    {
        let delivery = &deliveries[i];
        let recorded = &stored["status"]["deliveries"][i];
        assert_eq!(delivery["name"], name);
        assert_eq!(delivery["current"], current, "{name}");
        assert_eq!(
            delivery["entraId"],
            stored["spec"]["deliveries"][i]["entraId"]
        );
        assert_eq!(delivery["entraId"]["servicePrincipalId"], sp);
        let status = delivery["status"].as_object().unwrap();
        for (key, value) in recorded.as_object().unwrap() {
            if key.ends_with("Time") {
                assert_eq!(time(&status[key]), time(value), "{name} {key}");
            } else {
                assert_eq!(&status[key], value, "{name} {key}");
            }
        }
    }

    let listed: Value = serde_saphyr::from_str(
        world
            .run(&["status", "-n", "team-a", "-o", "yaml"])
            .await
            .ok(),
    )
    .unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items[0]["name"], "app");
    assert_eq!(
        items[0]["deliveries"][1]["status"]["lastFailureReason"],
        "EntraThrottled"
    );
    assert_eq!(items[1]["deliveries"], json!([]));
    assert_eq!(items[1]["delivered"], Value::Null);
}
