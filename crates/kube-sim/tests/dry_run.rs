//! Server-side dry run (`dryRun=All`): every write verb validates and answers like the real
//! write, and nothing is stored, versioned, watched or garbage collected.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, SECRETS, WIDGETS, WatchItem, secret, sim_with_fixtures, widget};
use sync_client_kube_sim::{DryRunMatch, Fault, KubeSim};

const DRY: &str = "dryRun=All";

fn with_dry(path: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{DRY}")
}

/// A watch on secrets and widgets started now; the first change it reports must be `marker`.
async fn assert_no_event_before(client: &Client, sim: &KubeSim, from: u64, marker: &str) {
    client.post(SECRETS, &secret(marker, &json!({}))).await;
    let mut watch = client
        .watch(&format!("{SECRETS}?watch=true&resourceVersion={from}"))
        .await;
    let first = watch.change().await;
    assert_eq!(
        first["object"]["metadata"]["name"], marker,
        "a dry run produced a watch event: {first}"
    );
    match watch.next(Duration::from_millis(100)).await {
        WatchItem::TimedOut => {}
        WatchItem::Event(e) => panic!("unexpected event after the marker: {e}"),
        WatchItem::End | WatchItem::Failed(_) => panic!("watch ended"),
    }
    assert!(sim.resource_version() > from);
}

#[tokio::test]
async fn every_write_verb_answers_like_the_real_write_and_stores_nothing() {
    let (sim, client) = sim_with_fixtures().await;
    let live = client.post(SECRETS, &secret("s", &json!({"a": "1"}))).await;
    assert_eq!(live.status, 201);
    let live = live.json();
    let rv = live["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = sim.resource_version();

    // create
    let created = client
        .post(&with_dry(SECRETS), &secret("new", &json!({"a": "1"})))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    assert_eq!(created["metadata"]["name"], "new");
    assert_eq!(created["type"], "Opaque", "defaulting runs");
    assert!(created["metadata"]["uid"].is_string());
    assert!(created["metadata"]["creationTimestamp"].is_string());
    assert!(
        created["metadata"].get("resourceVersion").is_none(),
        "a dry-run create has no resource version"
    );
    let generated = client
        .post(
            &with_dry(SECRETS),
            &json!({"metadata": {"generateName": "gen-"}, "stringData": {"k": "v"}}),
        )
        .await
        .json();
    assert!(
        generated["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("gen-")
    );
    assert_eq!(generated["data"]["k"], "dg==", "stringData is folded in");

    // update (PUT)
    let mut changed = live.clone();
    changed["data"]["k"] = json!("Y2hhbmdlZA==");
    let updated = client
        .put(&with_dry(&format!("{SECRETS}/s")), &changed)
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json()["data"]["k"], "Y2hhbmdlZA==");
    assert_eq!(updated.json()["metadata"]["resourceVersion"], rv.as_str());

    // every patch type
    let path = with_dry(&format!("{SECRETS}/s"));
    for (content_type, body) in [
        ("application/merge-patch+json", r#"{"data":{"m":"bQ=="}}"#),
        (
            "application/strategic-merge-patch+json",
            r#"{"data":{"m":"bQ=="}}"#,
        ),
        (
            "application/json-patch+json",
            r#"[{"op":"add","path":"/data/m","value":"bQ=="}]"#,
        ),
    ] {
        let patched = client.patch(&path, content_type, body).await;
        assert_eq!(patched.status, 200, "{content_type}: {}", patched.text);
        assert_eq!(patched.json()["data"]["m"], "bQ==", "{content_type}");
        assert_eq!(patched.json()["metadata"]["resourceVersion"], rv.as_str());
    }
    let applied = client
        .patch(
            &format!("{path}&fieldManager=test"),
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {m: bQ==}\n",
        )
        .await;
    assert_eq!(applied.status, 200, "{}", applied.text);
    assert_eq!(applied.json()["data"]["m"], "bQ==");
    let applied_new = client
        .patch(
            &with_dry(&format!("{SECRETS}/applied?fieldManager=test")),
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: applied}\n",
        )
        .await;
    assert_eq!(applied_new.status, 201, "{}", applied_new.text);

    // delete, by query and by DeleteOptions body
    let deleted = client.delete(&with_dry(&format!("{SECRETS}/s"))).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json()["metadata"]["name"], "s");
    let deleted = client
        .delete_with(&format!("{SECRETS}/s"), &json!({"dryRun": ["All"]}))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let collection = client
        .delete(&with_dry(&format!("{SECRETS}?labelSelector=a%3D1")))
        .await;
    assert_eq!(collection.status, 200, "{}", collection.text);
    assert_eq!(collection.json()["items"][0]["metadata"]["name"], "s");

    // nothing happened
    assert_eq!(sim.resource_version(), before);
    let stored = client.get(&format!("{SECRETS}/s")).await.json();
    assert_eq!(stored, live);
    for absent in ["new", "applied"] {
        assert_eq!(client.get(&format!("{SECRETS}/{absent}")).await.status, 404);
    }
    let list = client.get(SECRETS).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_no_event_before(&client, &sim, before, "marker").await;
}

#[tokio::test]
async fn custom_resources_and_their_status_dry_run_too() {
    let (sim, client) = sim_with_fixtures().await;
    let created = client
        .post(WIDGETS, &widget("w", &json!({"owner": "team", "size": 2})))
        .await
        .json();
    let before = sim.resource_version();

    let dry = client
        .post(&with_dry(WIDGETS), &widget("d", &json!({"owner": "team"})))
        .await;
    assert_eq!(dry.status, 201, "{}", dry.text);
    assert_eq!(dry.json()["spec"]["mode"], "Fast", "schema defaults apply");
    let invalid = client
        .post(
            &with_dry(WIDGETS),
            &widget("bad", &json!({"owner": "team", "size": 99})),
        )
        .await;
    assert_eq!(invalid.status, 422, "validation runs on dry runs");
    assert_eq!(invalid.json()["details"]["causes"][0]["field"], "spec.size");

    let status_path = with_dry(&format!("{WIDGETS}/w/status"));
    let status = client
        .patch(
            &status_path,
            "application/merge-patch+json",
            r#"{"status":{"phase":"Ready"}}"#,
        )
        .await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!(status.json()["status"]["phase"], "Ready");
    let mut with_status = created.clone();
    with_status["status"] = json!({"phase": "Put"});
    let put = client.put(&status_path, &with_status).await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json()["status"]["phase"], "Put");
    let spec_change = client
        .patch(
            &with_dry(&format!("{WIDGETS}/w")),
            "application/merge-patch+json",
            r#"{"spec":{"size":3}}"#,
        )
        .await
        .json();
    assert_eq!(
        spec_change["metadata"]["generation"], 2,
        "generation as the write would set it"
    );

    assert_eq!(sim.resource_version(), before);
    let stored = client.get(&format!("{WIDGETS}/w")).await.json();
    assert_eq!(stored, created);
    assert_no_event_before(&client, &sim, before, "marker").await;
}

#[tokio::test]
async fn dry_run_deletes_do_not_finalize_terminate_or_collect() {
    let (sim, client) = sim_with_fixtures().await;
    let owner = client
        .post(WIDGETS, &widget("owner", &json!({"owner": "team"})))
        .await
        .json();
    let mut dependent = secret("dependent", &json!({}));
    dependent["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "test.example/v1", "kind": "Widget", "name": "owner",
        "uid": owner["metadata"]["uid"],
    }]);
    assert_eq!(client.post(SECRETS, &dependent).await.status, 201);
    let mut guarded = widget("guarded", &json!({"owner": "team"}));
    guarded["metadata"]["finalizers"] = json!(["test.example/keep"]);
    client.post(WIDGETS, &guarded).await;
    let before = sim.resource_version();

    let deleted = client.delete(&with_dry(&format!("{WIDGETS}/owner"))).await;
    assert_eq!(deleted.status, 200);
    let finalizing = client
        .delete(&with_dry(&format!("{WIDGETS}/guarded")))
        .await;
    assert_eq!(finalizing.status, 200, "{}", finalizing.text);
    assert!(
        finalizing.json()["metadata"]["deletionTimestamp"].is_string(),
        "the answer shows the deletion the real request would start"
    );
    let namespace = client.delete(&with_dry("/api/v1/namespaces/default")).await;
    assert_eq!(namespace.status, 200, "{}", namespace.text);
    assert_eq!(namespace.json()["status"]["phase"], "Terminating");

    assert_eq!(sim.resource_version(), before);
    assert_eq!(
        client.get(&format!("{SECRETS}/dependent")).await.status,
        200
    );
    let guarded = client.get(&format!("{WIDGETS}/guarded")).await.json();
    assert!(guarded["metadata"].get("deletionTimestamp").is_none());
    let default = client.get("/api/v1/namespaces/default").await.json();
    assert_eq!(default["status"]["phase"], "Active");
}

#[tokio::test]
async fn a_dry_run_create_of_a_crd_serves_nothing() {
    let (sim, client) = sim_with_fixtures().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.dry.example"},
        "spec": {
            "group": "dry.example",
            "names": {"kind": "Gizmo", "plural": "gizmos"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    });
    let created = client
        .post(
            &with_dry("/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
            &crd,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(client.get("/apis/dry.example/v1").await.status, 404);
    assert!(
        sim.get(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            None,
            "gizmos.dry.example"
        )
        .is_none()
    );
}

fn unsupported(kind: &str, values: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "{kind}.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{{{values}}}: supported values: \"All\""
        ),
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": kind,
            "causes": [{
                "reason": "FieldValueNotSupported",
                "message": format!("Unsupported value: []string{{{values}}}: supported values: \"All\""),
                "field": "dryRun",
            }],
        },
        "code": 422,
    })
}

#[tokio::test]
async fn unknown_dry_run_values_are_refused_like_the_real_server() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("s", &json!({}))).await;
    let before = sim.resource_version();

    let create = client
        .post(&format!("{SECRETS}?dryRun=Yes"), &secret("x", &json!({})))
        .await;
    assert_eq!(create.json(), unsupported("CreateOptions", r#""Yes""#));
    let live = client.get(&format!("{SECRETS}/s")).await.json();
    let update = client
        .put(&format!("{SECRETS}/s?dryRun=All&dryRun=Server"), &live)
        .await;
    assert_eq!(
        update.json(),
        unsupported("UpdateOptions", r#""All", "Server""#)
    );
    let patch = client
        .patch(
            &format!("{SECRETS}/s?dryRun="),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(patch.json(), unsupported("PatchOptions", r#""""#));
    let delete = client
        .delete_with(&format!("{SECRETS}/s"), &json!({"dryRun": ["true"]}))
        .await;
    assert_eq!(delete.json(), unsupported("DeleteOptions", r#""true""#));
    assert_eq!(delete.status, 422);
    assert_eq!(sim.resource_version(), before);
    assert_eq!(client.get(&format!("{SECRETS}/s")).await.status, 200);
}

#[tokio::test]
async fn the_request_log_tells_dry_runs_from_real_writes() {
    let (sim, client) = sim_with_fixtures().await;
    sim.clear_requests();
    client
        .post(&with_dry(SECRETS), &secret("s", &json!({})))
        .await;
    client.post(SECRETS, &secret("s", &json!({}))).await;
    client
        .patch(
            &with_dry(&format!("{SECRETS}/s")),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    client
        .delete_with(&format!("{SECRETS}/s"), &json!({"dryRun": ["All"]}))
        .await;
    client.get(&format!("{SECRETS}/s?{DRY}")).await;

    let flags: Vec<(String, bool)> = sim
        .requests()
        .iter()
        .map(|r| (r.verb.clone().unwrap_or_default(), r.dry_run))
        .collect();
    assert_eq!(
        flags,
        vec![
            ("create".to_owned(), true),
            ("create".to_owned(), false),
            ("patch".to_owned(), true),
            ("delete".to_owned(), true),
            ("get".to_owned(), false),
        ]
    );
    let counts = sim.counts();
    assert_eq!(counts.get("create", "secrets"), 2);
    assert_eq!(counts.dry_runs("create", "secrets"), 1);
    assert_eq!(counts.real("create", "secrets"), 1);
    assert_eq!(counts.total_writes(), 4);
    assert_eq!(counts.total_dry_runs(), 3);
    assert_eq!(counts.total_real_writes(), 1);
}

#[tokio::test]
async fn faults_match_dry_runs_real_writes_or_both() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("s", &json!({}))).await;
    let object_path = format!("{SECRETS}/s");
    let patch = |dry: bool| {
        let path = if dry {
            with_dry(&object_path)
        } else {
            object_path.clone()
        };
        let client = &client;
        async move {
            client
                .patch(
                    &path,
                    "application/merge-patch+json",
                    r#"{"data":{"x":"eA=="}}"#,
                )
                .await
                .status
        }
    };

    sim.inject(
        Fault::fail("patch", "secrets")
            .status(422)
            .always()
            .dry_run(DryRunMatch::RealOnly),
    );
    assert_eq!(patch(true).await, 200, "a real-only fault spares dry runs");
    assert_eq!(patch(false).await, 422);
    sim.clear_faults();

    sim.inject(
        Fault::fail("patch", "secrets")
            .status(403)
            .always()
            .dry_run(DryRunMatch::DryRunOnly),
    );
    assert_eq!(
        patch(false).await,
        200,
        "a dry-run-only fault spares real writes"
    );
    assert_eq!(patch(true).await, 403);
    sim.clear_faults();

    sim.inject(Fault::fail("patch", "secrets").status(500).times(2));
    assert_eq!(
        patch(true).await,
        500,
        "by default a fault matches dry runs"
    );
    assert_eq!(patch(false).await, 500, "and real writes");
    assert_eq!(patch(false).await, 200);
}
