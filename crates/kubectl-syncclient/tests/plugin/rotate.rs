//! `rotate`: confirmation, the request annotation, and `--wait` until served, failed or timed out.

use std::io::Write;
use std::process::Stdio;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::harness::{
    ROTATE_REQUEST, World, finish, history_entry, plugin_binary, settled_status, time_from_now,
    with_entry,
};

async fn world() -> World {
    let world = World::start().await;
    world.broker("team-a", "vcenter", Some(("True", "Authenticated")));
    world.credential(
        "team-a",
        "okta-scim",
        &json!({"secretName": "okta-scim-token"}),
        Some(settled_status()),
    );
    world
}

fn request_of(world: &World) -> Option<String> {
    world.get_credential("team-a", "okta-scim")["metadata"]["annotations"][ROTATE_REQUEST]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn without_a_terminal_and_without_yes_it_refuses_and_changes_nothing() {
    let world = world().await;
    let run = world.run(&["rotate", "okta-scim", "-n", "team-a"]).await;
    run.assert_code(1);
    assert!(
        run.stderr
            .contains("revoke the sync client's current one at once"),
        "the warning explains the revocation: {run:?}"
    );
    assert!(
        run.stderr
            .contains("standard input is not a terminal; pass --yes to confirm"),
        "{run:?}"
    );
    assert_eq!(request_of(&world), None);
    assert_eq!(world.sim.counts().get("patch", "syncclientcredentials"), 0);
}

#[tokio::test]
async fn yes_sets_a_fresh_rfc3339_request_with_a_merge_patch_and_keeps_other_annotations() {
    let world = world().await;
    let mut credential = world.get_credential("team-a", "okta-scim");
    credential["metadata"]["annotations"] = json!({"team": "identity"});
    world.sim.replace(credential).unwrap();

    let before = Utc::now();
    let run = world
        .run(&["rotate", "okta-scim", "-n", "team-a", "--yes"])
        .await;
    assert!(run.ok().starts_with(
        "Rotation requested: team-a/okta-scim annotated syncclient.io/rotate-request="
    ));
    let first = request_of(&world).expect("annotation set");
    let at = DateTime::parse_from_rfc3339(&first).unwrap().to_utc();
    assert!(
        at >= before - TimeDelta::seconds(1) && at <= Utc::now(),
        "{first}"
    );
    assert!(
        first.ends_with('Z') && first.len() == "2026-03-10T12:00:00.123456789Z".len(),
        "{first}"
    );
    assert!(run.stdout.contains(&first));
    assert_eq!(
        world.get_credential("team-a", "okta-scim")["metadata"]["annotations"]["team"],
        "identity"
    );
    let patches: Vec<_> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.verb.as_deref() == Some("patch"))
        .collect();
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        patches[0].query_param("fieldManager").as_deref(),
        Some("kubectl-syncclient")
    );

    let again = world
        .run(&["rotate", "okta-scim", "-n", "team-a", "-y"])
        .await;
    again.ok();
    let second = request_of(&world).unwrap();
    assert_ne!(first, second, "every request is a new value");
}

/// The operator's answer to a served rotate request: revision 4 issued.
fn issued(value: &str, status: &Value) -> Value {
    json!({
        "observedRotateRequest": value,
        "revision": 4,
        "lastRotationTime": time_from_now(TimeDelta::zero()),
        "expiresAt": time_from_now(TimeDelta::days(30) + TimeDelta::minutes(30)),
        "history": with_entry(status, history_entry(4, "RotateRequested", "Issued", TimeDelta::zero())),
    })
}

#[tokio::test]
async fn wait_prints_the_new_revision_once_the_operator_served_the_request() {
    let world = world().await;
    let operator = crate::harness::serve_with(
        &world.sim,
        "team-a",
        "okta-scim",
        ROTATE_REQUEST,
        true,
        issued,
    );
    let run = world
        .run(&[
            "rotate",
            "okta-scim",
            "-n",
            "team-a",
            "--yes",
            "--wait",
            "--timeout",
            "30s",
        ])
        .await;
    let served = operator
        .await
        .unwrap()
        .expect("the request reached the operator");
    let out = run.ok();
    assert!(out.contains(&served), "{run:?}");
    assert!(
        out.contains(
            "Rotated team-a/okta-scim: new credential in Secret okta-scim-token (revision 4, sha256:000000000004, expires in 30d)."
        ),
        "{run:?}"
    );
    let watches: Vec<_> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.verb.as_deref() == Some("watch"))
        .collect();
    assert!(!watches.is_empty(), "it watched");
    for watch in watches {
        assert_eq!(
            watch.query_param("fieldSelector").as_deref(),
            Some("metadata.name=okta-scim"),
            "only the one credential is watched"
        );
    }
}

#[tokio::test]
async fn wait_reports_a_failure_the_operator_retries_with_exit_code_3() {
    let world = world().await;
    let operator = crate::harness::serve(
        &world.sim,
        "team-a",
        "okta-scim",
        ROTATE_REQUEST,
        |_value, status| {
            // Transient: the request is not marked served; the operator retries.
            json!({
                "failedAttempts": 1,
                "lastFailureTime": time_from_now(TimeDelta::zero()),
                "lastFailureReason": "BrokerUnavailable",
                "lastFailureMessage": "the broker answered 503",
                "nextRetryTime": time_from_now(TimeDelta::minutes(20) + TimeDelta::seconds(30)),
                "history": with_entry(status, history_entry(4, "RotateRequested", "BrokerUnavailable", TimeDelta::zero())),
            })
        },
    );
    let run = world
        .run(&["rotate", "okta-scim", "-n", "team-a", "--yes", "--wait"])
        .await;
    operator.await.unwrap().expect("served");
    run.assert_code(3);
    assert!(
        run.stdout.contains(
            "Rotation of team-a/okta-scim failed: BrokerUnavailable: the broker answered 503."
        ),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("(in 20m); the request stays set until it is served."),
        "{run:?}"
    );
}

#[tokio::test]
async fn wait_reports_a_permanent_failure_that_marks_the_request_served() {
    let world = world().await;
    let operator = crate::harness::serve(
        &world.sim,
        "team-a",
        "okta-scim",
        ROTATE_REQUEST,
        |value, status| {
            json!({
                "observedRotateRequest": value,
                "failedAttempts": 1,
                "lastFailureTime": time_from_now(TimeDelta::zero()),
                "lastFailureReason": "PermissionDenied",
                "lastFailureMessage": "the vCenter user lacks the privilege",
                "history": with_entry(status, history_entry(4, "RotateRequested", "PermissionDenied", TimeDelta::zero())),
            })
        },
    );
    let run = world
        .run(&["rotate", "okta-scim", "-n", "team-a", "--yes", "--wait"])
        .await;
    operator.await.unwrap().expect("served");
    run.assert_code(3);
    assert!(
        run.stdout
            .contains("failed: PermissionDenied: the vCenter user lacks the privilege."),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("will not retry this request"),
        "{run:?}"
    );
}

#[tokio::test]
async fn wait_times_out_with_exit_code_4_and_leaves_the_request_set() {
    let world = world().await;
    // An unrelated change while waiting is not an outcome.
    let sim = std::sync::Arc::clone(&world.sim);
    let unrelated = tokio::spawn(async move {
        let pointer = format!(
            "/metadata/annotations/{}",
            ROTATE_REQUEST.replace('/', "~1")
        );
        sim.wait_for(
            crate::harness::API_VERSION,
            "syncclientcredentials",
            Some("team-a"),
            "okta-scim",
            crate::harness::SERVE_LIMIT,
            |o| o.pointer(&pointer).is_some(),
        )
        .await
        .expect("request seen");
        sim.patch(crate::harness::API_VERSION, "syncclientcredentials", Some("team-a"), "okta-scim",
                  sync_client_kube_sim::PatchKind::Merge,
                  &json!({"status": {"lastVerifyResult": "Valid", "lastVerifyTime": time_from_now(TimeDelta::zero())}}),
                  Some("status"))
            .expect("status patch");
    });
    let run = world
        .run(&[
            "rotate",
            "okta-scim",
            "-n",
            "team-a",
            "--yes",
            "--wait",
            "--timeout",
            "3s",
        ])
        .await;
    unrelated.await.unwrap();
    run.assert_code(4);
    let value = request_of(&world).expect("the request stays set");
    assert!(
        run.stderr.contains(&format!(
            "Timed out after 3s: the operator has not yet served syncclient.io/rotate-request={value} on team-a/okta-scim."
        )),
        "{run:?}"
    );
    assert!(!run.stdout.contains("Rotated"), "{run:?}");
}

/// Runs `rotate` with standard input on a pseudo-terminal and types `answer`.
async fn rotate_on_a_terminal(world: &World, answer: &[u8]) -> crate::harness::Run {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let path = ptsname(&controller, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.to_str().unwrap())
        .unwrap();
    let args = [
        "--kubeconfig",
        world.kubeconfig.to_str().unwrap(),
        "rotate",
        "okta-scim",
        "-n",
        "team-a",
    ];
    let mut command = tokio::process::Command::new(plugin_binary());
    command
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", world.dir.path())
        .stdin(Stdio::from(terminal))
        .kill_on_drop(true);
    let mut keyboard = std::fs::File::from(controller);
    keyboard.write_all(answer).unwrap();
    let run = finish(command, &args).await;
    drop(keyboard);
    run
}

#[tokio::test]
async fn on_a_terminal_it_asks_and_rotates_only_after_yes() {
    let world = world().await;
    let declined = rotate_on_a_terminal(&world, b"n\n").await;
    declined.assert_code(1);
    assert!(
        declined
            .stderr
            .contains("Rotate team-a/okta-scim now? [y/N]: "),
        "{declined:?}"
    );
    assert!(
        declined
            .stderr
            .contains("not rotating team-a/okta-scim: not confirmed"),
        "{declined:?}"
    );
    assert_eq!(request_of(&world), None);

    let confirmed = rotate_on_a_terminal(&world, b"yes\n").await;
    assert!(
        confirmed.ok().contains("Rotation requested"),
        "{confirmed:?}"
    );
    assert!(request_of(&world).is_some());
}
