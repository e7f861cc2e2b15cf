//! Watch streams as kube-runtime's watcher and `kubectl get -w` use them.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{SECRETS, WatchItem, secret, sim_with_fixtures};
use sync_client_kube_sim::PatchKind;

fn event_summary(event: &serde_json::Value) -> (String, String) {
    (
        event["type"].as_str().unwrap_or_default().to_owned(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn pair(t: &str, name: &str) -> (String, String) {
    (t.to_owned(), name.to_owned())
}

#[tokio::test]
async fn watch_replays_every_change_after_the_given_resource_version() {
    let (sim, client) = sim_with_fixtures().await;
    let list = client.get(SECRETS).await.json();
    let from = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    client.post(SECRETS, &secret("a", &json!({}))).await;
    client
        .patch(
            &format!("{SECRETS}/a"),
            "application/merge-patch+json",
            r#"{"data":{"x":"eA=="}}"#,
        )
        .await;
    client
        .post(
            "/api/v1/namespaces/kube-system/secrets",
            &secret("other-ns", &json!({})),
        )
        .await;
    client.delete(&format!("{SECRETS}/a")).await;

    let mut watch = client
        .watch(&format!("{SECRETS}?watch=true&resourceVersion={from}"))
        .await;
    assert_eq!(watch.status, 200);
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(event_summary(&watch.change().await));
    }
    assert_eq!(
        seen,
        vec![
            pair("ADDED", "a"),
            pair("MODIFIED", "a"),
            pair("DELETED", "a")
        ]
    );

    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "live"}}))
        .unwrap();
    let live = watch.change().await;
    assert_eq!(event_summary(&live), pair("ADDED", "live"));
    assert_eq!(live["object"]["kind"], "Secret");
    assert_eq!(live["object"]["apiVersion"], "v1");
}

#[tokio::test]
async fn watch_from_zero_lists_the_current_state_first() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("existing", &json!({}))).await;
    let mut watch = client
        .watch(&format!("{SECRETS}?watch=1&resourceVersion=0"))
        .await;
    assert_eq!(
        event_summary(&watch.change().await),
        pair("ADDED", "existing")
    );
    sim.delete("v1", "secrets", Some("default"), "existing")
        .unwrap();
    assert_eq!(
        event_summary(&watch.change().await),
        pair("DELETED", "existing")
    );
}

#[tokio::test]
async fn bookmarks_arrive_periodically_and_the_watch_ends_at_its_timeout() {
    let (sim, client) = sim_with_fixtures().await;
    sim.set_bookmark_interval(Duration::from_millis(100));
    let current = sim.resource_version();
    let started = Instant::now();
    let mut watch = client
        .watch(&format!("{SECRETS}?watch=true&resourceVersion={current}&allowWatchBookmarks=true&timeoutSeconds=1"))
        .await;
    let bookmark = watch.event().await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "Secret");
    assert_eq!(
        bookmark["object"]["metadata"]["resourceVersion"],
        current.to_string()
    );

    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}}))
        .unwrap();
    let mut bookmarks_after_write = Vec::new();
    loop {
        match watch.next(Duration::from_secs(5)).await {
            WatchItem::Event(e) if e["type"] == "BOOKMARK" => {
                bookmarks_after_write.push(
                    e["object"]["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            WatchItem::Event(e) => assert_eq!(event_summary(&e), pair("ADDED", "b")),
            WatchItem::End => break,
            WatchItem::Failed(e) => panic!("watch failed: {e}"),
            WatchItem::TimedOut => panic!("watch did not honour timeoutSeconds"),
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        bookmarks_after_write.last(),
        Some(&sim.resource_version().to_string()),
        "a final bookmark at the end"
    );
}

#[tokio::test]
async fn an_expired_resource_version_gets_a_410_error_event() {
    let (sim, client) = sim_with_fixtures().await;
    let old = sim.resource_version();
    client.post(SECRETS, &secret("a", &json!({}))).await;
    sim.expire_watch_history();
    let mut watch = client
        .watch(&format!("{SECRETS}?watch=true&resourceVersion={old}"))
        .await;
    assert_eq!(watch.status, 200);
    let error = watch.event().await;
    assert_eq!(error["type"], "ERROR");
    assert_eq!(error["object"]["kind"], "Status");
    assert_eq!(error["object"]["code"], 410);
    assert_eq!(error["object"]["reason"], "Expired");
    assert!(matches!(
        watch.next(Duration::from_secs(5)).await,
        WatchItem::End
    ));

    let current = sim.resource_version();
    let mut fresh = client
        .watch(&format!("{SECRETS}?watch=true&resourceVersion={current}"))
        .await;
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "after"}}))
        .unwrap();
    assert_eq!(event_summary(&fresh.change().await), pair("ADDED", "after"));
}

#[tokio::test]
async fn expiring_history_spares_watches_that_are_up_to_date() {
    let (sim, client) = sim_with_fixtures().await;
    let old = sim.resource_version();
    let mut watch = client
        .watch(&format!("{SECRETS}?watch=true&resourceVersion={old}"))
        .await;
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}))
        .unwrap();
    assert_eq!(event_summary(&watch.change().await), pair("ADDED", "a"));
    sim.expire_watch_history();
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}}))
        .unwrap();
    // the watcher had seen everything up to the expiry, so it continues
    assert_eq!(event_summary(&watch.change().await), pair("ADDED", "b"));
}

#[tokio::test]
async fn send_initial_events_ends_with_an_annotated_bookmark() {
    let (sim, client) = sim_with_fixtures().await;
    client
        .post(SECRETS, &secret("one", &json!({"app": "x"})))
        .await;
    client
        .post(SECRETS, &secret("two", &json!({"app": "x"})))
        .await;
    client
        .post(SECRETS, &secret("three", &json!({"app": "y"})))
        .await;
    let mut watch = client
        .watch(&format!(
            "{SECRETS}?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0&labelSelector=app%3Dx"
        ))
        .await;
    let mut initial = Vec::new();
    let end = loop {
        let event = watch.event().await;
        if event["type"] == "BOOKMARK" {
            break event;
        }
        initial.push(event_summary(&event));
    };
    initial.sort();
    assert_eq!(initial, vec![pair("ADDED", "one"), pair("ADDED", "two")]);
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(
        end["object"]["metadata"]["resourceVersion"],
        sim.resource_version().to_string()
    );
}

#[tokio::test]
async fn selector_watches_see_objects_enter_and_leave_the_selection() {
    let (sim, client) = sim_with_fixtures().await;
    let from = sim.resource_version();
    let mut watch = client
        .watch(&format!(
            "{SECRETS}?watch=true&resourceVersion={from}&labelSelector=managed%3Dyes"
        ))
        .await;
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))
        .unwrap();
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "m", "labels": {"managed": "yes"}}})).unwrap();
    let label = |value: serde_json::Value| json!({"metadata": {"labels": {"managed": value}}});
    sim.patch(
        "v1",
        "secrets",
        Some("default"),
        "s",
        PatchKind::Merge,
        &label(json!("yes")),
        None,
    )
    .unwrap();
    sim.patch(
        "v1",
        "secrets",
        Some("default"),
        "m",
        PatchKind::Merge,
        &json!({"data": {"a": "YQ=="}}),
        None,
    )
    .unwrap();
    sim.patch(
        "v1",
        "secrets",
        Some("default"),
        "s",
        PatchKind::Merge,
        &label(serde_json::Value::Null),
        None,
    )
    .unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(event_summary(&watch.change().await));
    }
    assert_eq!(
        seen,
        vec![
            pair("ADDED", "m"),
            pair("ADDED", "s"),
            pair("MODIFIED", "m"),
            pair("DELETED", "s")
        ]
    );
}

#[tokio::test]
async fn watching_one_object_by_name_sees_only_it() {
    let (sim, client) = sim_with_fixtures().await;
    let from = sim.resource_version();
    let mut by_field = client
        .watch(&format!(
            "{SECRETS}?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Dtarget"
        ))
        .await;
    let mut by_path = client
        .watch(&format!(
            "/api/v1/watch/namespaces/default/secrets/target?resourceVersion={from}"
        ))
        .await;
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "noise"}}))
        .unwrap();
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "target"}}))
        .unwrap();
    assert_eq!(
        event_summary(&by_field.change().await),
        pair("ADDED", "target")
    );
    assert_eq!(
        event_summary(&by_path.change().await),
        pair("ADDED", "target")
    );
}

#[tokio::test]
async fn dropped_watches_fail_and_closed_watches_end() {
    let (sim, client) = sim_with_fixtures().await;
    let from = sim.resource_version();
    let path = format!("{SECRETS}?watch=true&resourceVersion={from}");
    let mut dropped = client.watch(&path).await;
    sim.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}}))
        .unwrap();
    assert_eq!(event_summary(&dropped.change().await), pair("ADDED", "a"));
    sim.drop_watches();
    assert!(matches!(
        dropped.next(Duration::from_secs(5)).await,
        WatchItem::Failed(_)
    ));

    let mut closed = client.watch(&path).await;
    assert_eq!(event_summary(&closed.change().await), pair("ADDED", "a"));
    sim.close_watches();
    assert!(matches!(
        closed.next(Duration::from_secs(5)).await,
        WatchItem::End
    ));

    let mut again = client.watch(&path).await;
    assert_eq!(
        event_summary(&again.change().await),
        pair("ADDED", "a"),
        "new watches work after a drop"
    );
    assert_eq!(sim.counts().get("watch", "secrets"), 3);
}

#[tokio::test]
async fn custom_resource_watches_carry_the_requested_version() {
    let (sim, client) = sim_with_fixtures().await;
    let from = sim.resource_version();
    let mut watch = client
        .watch(&format!(
            "/apis/test.example/v1beta1/widgets?watch=true&resourceVersion={from}"
        ))
        .await;
    sim.create(json!({"apiVersion": "test.example/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"owner": "team"}}))
        .unwrap();
    sim.patch(
        "test.example/v1",
        "widgets",
        Some("default"),
        "w",
        PatchKind::Merge,
        &json!({"status": {"phase": "Ready"}}),
        Some("status"),
    )
    .unwrap();
    let added = watch.change().await;
    assert_eq!(added["object"]["apiVersion"], "test.example/v1beta1");
    let modified = watch.change().await;
    assert_eq!(modified["type"], "MODIFIED");
    assert_eq!(modified["object"]["status"]["phase"], "Ready");
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let (sim, client) = sim_with_fixtures().await;
    let mut watch = client.watch(&format!("{SECRETS}?watch=true")).await;
    let started = Instant::now();
    sim.shutdown().await;
    assert!(!matches!(
        watch.next(Duration::from_secs(5)).await,
        WatchItem::TimedOut | WatchItem::Event(_)
    ));
    assert!(started.elapsed() < Duration::from_secs(4));
}

const CORE_EVENTS: &str = "/api/v1/namespaces/default/events";
const EVENTS_V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

/// Both Event APIs are one store: a watch on either sees writes through the other, converted
/// (`message` ↔ `note`, `involvedObject` ↔ `regarding`, ...), and field selectors use each
/// version's labels.
#[tokio::test]
async fn a_watch_on_one_event_api_sees_writes_through_the_other() {
    let (_sim, client) = sim_with_fixtures().await;
    let mut modern = client
        .watch(&format!(
            "{EVENTS_V1}?watch=true&fieldSelector=regarding.name%3Dw"
        ))
        .await;
    let mut core = client
        .watch(&format!(
            "{CORE_EVENTS}?watch=true&fieldSelector=involvedObject.kind%3DWidget,reason%3DIssued"
        ))
        .await;
    assert_eq!((modern.status, core.status), (200, 200));

    let created = client
        .post(
            CORE_EVENTS,
            &json!({"metadata": {"name": "w.1"}, "reason": "Issued", "message": "issued",
                    "type": "Normal", "count": 1, "firstTimestamp": "2026-01-01T00:00:00Z",
                    "source": {"component": "kubelet", "host": "node-1"},
                    "involvedObject": {"kind": "Widget", "name": "w", "namespace": "default"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let seen = modern.change().await;
    assert_eq!(seen["type"], "ADDED");
    let event = &seen["object"];
    assert_eq!(event["apiVersion"], "events.k8s.io/v1");
    assert_eq!(event["note"], "issued");
    assert_eq!(event["regarding"]["name"], "w");
    assert_eq!(event["deprecatedSource"]["host"], "node-1");
    assert_eq!(event["deprecatedCount"], 1);
    assert_eq!(event["deprecatedFirstTimestamp"], "2026-01-01T00:00:00Z");
    assert!(event.get("message").is_none() && event.get("involvedObject").is_none());
    assert_eq!(core.change().await["object"]["message"], "issued");

    // Written through events.k8s.io/v1, as kube-rs' Recorder writes, then patched into a series.
    let written = client
        .post(
            EVENTS_V1,
            &json!({"metadata": {"name": "w.2"}, "eventTime": "2026-01-01T00:00:00.000000Z",
                    "reason": "Issued", "note": "again", "type": "Normal", "action": "Issue",
                    "reportingController": "sync-client-operator", "reportingInstance": "pod-1",
                    "regarding": {"kind": "Widget", "name": "w", "namespace": "default"}}),
        )
        .await;
    assert_eq!(written.status, 201, "{}", written.text);
    let seen = core.change().await;
    assert_eq!(seen["type"], "ADDED");
    let event = &seen["object"];
    assert_eq!(event["apiVersion"], "v1");
    assert_eq!(event["message"], "again");
    assert_eq!(event["involvedObject"]["kind"], "Widget");
    assert_eq!(event["reportingComponent"], "sync-client-operator");
    assert_eq!(event["reportingInstance"], "pod-1");
    assert_eq!(event["eventTime"], "2026-01-01T00:00:00.000000Z");
    assert_eq!(event["source"], json!({}));
    assert_eq!(event["firstTimestamp"], serde_json::Value::Null);
    assert_eq!(modern.change().await["object"]["note"], "again");
    let patched = client
        .patch(
            &format!("{EVENTS_V1}/w.2"),
            "application/merge-patch+json",
            r#"{"series":{"count":2,"lastObservedTime":"2026-01-01T00:05:00.000000Z"}}"#,
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let seen = core.change().await;
    assert_eq!(seen["type"], "MODIFIED");
    assert_eq!(seen["object"]["series"]["count"], 2);
    assert_eq!(modern.change().await["object"]["series"]["count"], 2);

    let read = client.get(&format!("{CORE_EVENTS}/w.2")).await.json();
    assert_eq!(read["message"], "again");
    let listed = client
        .get(&format!(
            "{EVENTS_V1}?fieldSelector=reportingController%3Dsync-client-operator"
        ))
        .await
        .json();
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["w.2"]);
    let by_source = client
        .get(&format!(
            "{CORE_EVENTS}?fieldSelector=source%3Dsync-client-operator"
        ))
        .await
        .json();
    assert_eq!(by_source["items"].as_array().unwrap().len(), 1);
    let unsupported = client
        .get(&format!(
            "{EVENTS_V1}?fieldSelector=involvedObject.name%3Dw"
        ))
        .await;
    assert_eq!(unsupported.status, 400);
    assert!(
        unsupported.json()["message"]
            .as_str()
            .unwrap()
            .contains("field label not supported: involvedObject.name"),
        "{}",
        unsupported.text
    );

    // A delete through one API is a DELETED event on both watches.
    assert_eq!(client.delete(&format!("{EVENTS_V1}/w.1")).await.status, 200);
    assert_eq!(core.change().await["type"], "DELETED");
    let deleted = modern.change().await;
    assert_eq!(
        (
            deleted["type"].as_str(),
            deleted["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("w.1"))
    );
}
