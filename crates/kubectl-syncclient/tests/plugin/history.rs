//! `history`: the operator's record of issue attempts as a table or a document.

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::harness::{World, deliveries_spec, delivering_status, history_entry, settled_status};
use crate::status::lines;

#[tokio::test]
async fn history_prints_attempts_newest_first() {
    let world = World::start().await;
    let mut status = settled_status();
    status["history"] = json!([
        history_entry(
            5,
            "RotateRequested",
            "Issued",
            TimeDelta::minutes(12) + TimeDelta::seconds(30)
        ),
        history_entry(
            5,
            "RotateRequested",
            "BrokerUnavailable",
            TimeDelta::minutes(40) + TimeDelta::seconds(30)
        ),
        history_entry(
            4,
            "RenewalDue",
            "Issued",
            TimeDelta::days(3) + TimeDelta::minutes(30)
        ),
    ]);
    world.credential("team-a", "okta-scim", &json!({}), Some(status));
    let run = world.run(&["history", "okta-scim", "-n", "team-a"]).await;
    let table = lines(run.ok());
    assert_eq!(
        table[0],
        [
            "TIME",
            "AGO",
            "REVISION",
            "TRIGGER",
            "OUTCOME",
            "FINGERPRINT"
        ]
    );
    let rest: Vec<Vec<String>> = table[1..].iter().map(|r| r[1..].to_vec()).collect();
    assert_eq!(
        rest,
        vec![
            vec![
                "12m ago",
                "5",
                "RotateRequested",
                "Issued",
                "sha256:000000000005"
            ],
            vec!["40m ago", "5", "RotateRequested", "BrokerUnavailable", "-"],
            vec!["3d ago", "4", "RenewalDue", "Issued", "sha256:000000000004"],
        ]
    );
    for row in &table[1..] {
        assert!(
            chrono::DateTime::parse_from_rfc3339(&row[0]).is_ok(),
            "{row:?}"
        );
        assert!(
            row[0].ends_with('Z') && !row[0].contains('.'),
            "whole seconds in UTC: {row:?}"
        );
    }
}

#[tokio::test]
async fn history_as_json_is_the_status_record() {
    let world = World::start().await;
    world.credential("team-a", "okta-scim", &json!({}), Some(settled_status()));
    let run = world
        .run(&["-n", "team-a", "history", "okta-scim", "-o", "json"])
        .await;
    let document: Value = serde_json::from_str(run.ok()).unwrap();
    let stored = world.get_credential("team-a", "okta-scim");
    assert_eq!(document["namespace"], "team-a");
    assert_eq!(document["name"], "okta-scim");
    let history = document["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0]["trigger"],
        stored["status"]["history"][0]["trigger"]
    );
    assert_eq!(history[0]["fingerprint"], "sha256:000000000003");
}

#[tokio::test]
async fn an_empty_history_says_so() {
    let world = World::start().await;
    world.credential("team-a", "fresh", &json!({}), None);
    let run = world.run(&["history", "fresh", "-n", "team-a"]).await;
    assert_eq!(run.ok(), "");
    assert!(
        run.stderr
            .contains("No issue attempts recorded for team-a/fresh yet."),
        "{run:?}"
    );
}

/// `2026-03-10T11:58:00Z (2m ago)`: a stored time as the table prints it.
fn printed(stored: &Value, ago: &str) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(stored.as_str().unwrap()).unwrap();
    format!(
        "{} ({ago})",
        at.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

#[tokio::test]
async fn history_shows_each_delivery_below_the_issue_attempts() {
    let world = World::start().await;
    world.credential(
        "team-a",
        "app",
        &json!({"deliveries": deliveries_spec()}),
        Some(delivering_status()),
    );
    let run = world.run(&["history", "app", "-n", "team-a"]).await;
    let table = lines(run.ok());
    let stored = world.get_credential("team-a", "app");
    let recorded = &stored["status"]["deliveries"];
    assert_eq!(table.len(), 6, "{run:?}");
    assert_eq!(table[0][0], "TIME");
    assert_eq!(
        table[1][1..],
        ["2h ago", "3", "RenewalDue", "Issued", "sha256:000000000003"]
    );
    assert!(
        table[2].is_empty(),
        "a blank line between the tables: {run:?}"
    );
    assert_eq!(
        table[3..],
        [
            vec![
                "DELIVERY".to_owned(),
                "REVISION".into(),
                "DELIVERED".into(),
                "LAST ATTEMPT".into(),
                "OUTCOME".into()
            ],
            vec![
                "entra".to_owned(),
                "3".into(),
                printed(&recorded[0]["deliveredTime"], "20m ago"),
                printed(&recorded[0]["lastAttemptTime"], "20m ago"),
                "DeliveredAndValidated".into()
            ],
            vec![
                "backup".to_owned(),
                "2".into(),
                printed(&recorded[1]["deliveredTime"], "3d ago"),
                printed(&recorded[1]["lastAttemptTime"], "15m ago"),
                "EntraThrottled".into()
            ],
        ]
    );

    let document: Value = serde_json::from_str(
        world
            .run(&["history", "app", "-n", "team-a", "-o", "json"])
            .await
            .ok(),
    )
    .unwrap();
    let deliveries = document["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[1]["name"], "backup");
    assert_eq!(deliveries[1]["deliveredRevision"], 2);
    assert_eq!(deliveries[1]["failedAttempts"], 2);
    assert_eq!(document["history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deliveries_not_yet_attempted_show_without_issue_attempts() {
    let world = World::start().await;
    world.credential(
        "team-a",
        "fresh",
        &json!({"deliveries": deliveries_spec()}),
        None,
    );
    let run = world.run(&["history", "fresh", "-n", "team-a"]).await;
    assert_eq!(
        lines(run.ok()),
        [
            vec![
                "DELIVERY",
                "REVISION",
                "DELIVERED",
                "LAST ATTEMPT",
                "OUTCOME"
            ],
            vec!["entra", "-", "-", "-", "-"],
            vec!["backup", "-", "-", "-", "-"],
        ]
    );
    assert!(
        run.stderr
            .contains("No issue attempts recorded for team-a/fresh yet."),
        "{run:?}"
    );
}
