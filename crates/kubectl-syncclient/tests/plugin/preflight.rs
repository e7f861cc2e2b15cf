//! `preflight`: no confirmation, the request annotation, and `--wait` for the Preflight condition.

use chrono::TimeDelta;
use serde_json::{Value, json};

use crate::harness::{PREFLIGHT_REQUEST, World, condition, serve, settled_status, time_from_now};

async fn world() -> World {
    let world = World::start().await;
    world.broker("team-a", "vcenter", Some(("True", "Authenticated")));
    world.credential("team-a", "okta-scim", &json!({}), Some(settled_status()));
    world
}

/// The operator's answer to a preflight request: the Preflight condition beside Ready.
fn answered(
    status: &str,
    reason: &str,
    message: &str,
) -> impl Fn(&str, &Value) -> Value + Send + 'static {
    let preflight = condition("Preflight", status, reason, message);
    move |value, current| {
        let mut conditions: Vec<Value> = current["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] != "Preflight")
            .collect();
        conditions.push(preflight.clone());
        json!({
            "observedPreflightRequest": value,
            "lastPreflightTime": time_from_now(-TimeDelta::seconds(1)),
            "conditions": conditions,
        })
    }
}

#[tokio::test]
async fn preflight_needs_no_confirmation_and_sets_the_request() {
    let world = world().await;
    let run = world.run(&["preflight", "okta-scim", "-n", "team-a"]).await;
    let out = run.ok();
    let value = world.get_credential("team-a", "okta-scim")["metadata"]["annotations"]
        [PREFLIGHT_REQUEST]
        .as_str()
        .expect("annotation set")
        .to_owned();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&value).is_ok(),
        "{value}"
    );
    assert_eq!(
        out,
        format!(
            "Preflight requested: team-a/okta-scim annotated syncclient.io/preflight-request={value}\n"
        )
    );
    assert!(run.stderr.contains("nothing is minted"), "{run:?}");
    assert!(
        !run.stderr.contains("revoke"),
        "nothing is revoked: {run:?}"
    );
}

#[tokio::test]
async fn wait_prints_a_passed_preflight_condition() {
    let world = world().await;
    let operator = serve(
        &world.sim,
        "team-a",
        "okta-scim",
        PREFLIGHT_REQUEST,
        answered(
            "True",
            "PreflightPassed",
            "vCenter login, broker token and sync client read succeeded",
        ),
    );
    let run = world
        .run(&[
            "preflight",
            "okta-scim",
            "-n",
            "team-a",
            "--wait",
            "--timeout",
            "30s",
        ])
        .await;
    operator.await.unwrap().expect("served");
    let out = run.ok();
    assert!(
        out.contains("Preflight of team-a/okta-scim passed."),
        "{run:?}"
    );
    assert!(
        out.contains("Condition: Preflight=True (PreflightPassed), checked "),
        "{run:?}"
    );
    assert!(
        out.contains("Message:   vCenter login, broker token and sync client read succeeded"),
        "{run:?}"
    );
}

#[tokio::test]
async fn wait_reports_a_failed_preflight_with_exit_code_3() {
    let world = world().await;
    let operator = serve(
        &world.sim,
        "team-a",
        "okta-scim",
        PREFLIGHT_REQUEST,
        answered(
            "False",
            "AuthenticationFailed",
            "vCenter rejected the login (401)",
        ),
    );
    let run = world
        .run(&["preflight", "okta-scim", "-n", "team-a", "--wait"])
        .await;
    operator.await.unwrap().expect("served");
    run.assert_code(3);
    assert!(
        run.stdout.contains("Preflight of team-a/okta-scim failed."),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("Preflight=False (AuthenticationFailed)"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("vCenter rejected the login (401)"),
        "{run:?}"
    );
}

#[tokio::test]
async fn a_preflight_served_for_an_older_request_does_not_count() {
    let world = world().await;
    let mut status = settled_status();
    status["observedPreflightRequest"] = json!("2020-01-01T00:00:00Z");
    status["conditions"].as_array_mut().unwrap().push(condition(
        "Preflight",
        "True",
        "PreflightPassed",
        "old",
    ));
    world.credential("team-a", "okta-scim", &json!({}), Some(status));
    let run = world
        .run(&[
            "preflight",
            "okta-scim",
            "-n",
            "team-a",
            "--wait",
            "--timeout",
            "2s",
        ])
        .await;
    run.assert_code(4);
    assert!(run.stderr.contains("Timed out after 2s"), "{run:?}");
    assert!(
        run.stderr.contains("syncclient.io/preflight-request="),
        "{run:?}"
    );
    assert!(!run.stdout.contains("passed"), "{run:?}");
}
