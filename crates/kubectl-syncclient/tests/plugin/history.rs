//! `history`: the operator's record of issue attempts as a table or a document.

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::harness::{World, history_entry, settled_status};
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
