//! HTTP-level behaviour of the simulator: what a Kubernetes client sees on the wire.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Client, SECRETS, WIDGETS, secret, sim_with_fixtures, widget};
use sync_client_kube_sim::{Fault, KubeSim, PatchKind};

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn discovery_lists_builtin_kinds_and_every_created_crd() {
    let (sim, client) = sim_with_fixtures().await;
    let version = client.get("/version").await.json();
    assert_eq!(version["major"], "1");

    let core = client.get("/api/v1").await.json();
    let secrets = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "secrets")
        .cloned()
        .unwrap();
    assert_eq!(secrets["namespaced"], true);
    assert_eq!(secrets["kind"], "Secret");

    let groups = client.get("/apis").await.json();
    let test_group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "test.example")
        .cloned()
        .unwrap();
    assert_eq!(test_group["preferredVersion"]["version"], "v1");
    assert_eq!(test_group["versions"].as_array().unwrap().len(), 2);

    let resources = client.get("/apis/test.example/v1").await.json();
    let widgets = resources["resources"].as_array().unwrap();
    let widget = widgets.iter().find(|r| r["name"] == "widgets").unwrap();
    assert_eq!(widget["shortNames"], json!(["wdg"]));
    assert_eq!(widget["categories"], json!(["testing"]));
    assert!(widgets.iter().any(|r| r["name"] == "widgets/status"));
    let gadget = widgets.iter().find(|r| r["name"] == "gadgets").unwrap();
    assert_eq!(gadget["namespaced"], false);

    let aggregated = client
        .get_accept(
            "/apis",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .await;
    assert!(
        aggregated
            .header("content-type")
            .unwrap()
            .contains("as=APIGroupDiscoveryList")
    );
    let items = aggregated.json()["items"].as_array().unwrap().clone();
    let group = items
        .iter()
        .find(|g| g["metadata"]["name"] == "test.example")
        .unwrap();
    let scope = &group["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "gadgets")
        .unwrap()["scope"];
    assert_eq!(*scope, "Cluster");

    let openapi = client.get("/openapi/v3").await.json();
    assert!(openapi["paths"]["apis/test.example/v1"]["serverRelativeURL"].is_string());
    assert_eq!(client.get("/openapi/v2").await.status, 404);

    sim.delete(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        None,
        "gadgets.test.example",
    )
    .unwrap();
    let after = client.get("/apis/test.example/v1").await.json();
    assert!(
        !after["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "gadgets")
    );
    assert_eq!(
        client.get("/apis/test.example/v1/gadgets").await.status,
        404
    );
}

#[tokio::test]
async fn create_get_and_list_report_resource_versions_uids_and_timestamps() {
    let (_sim, client) = sim_with_fixtures().await;
    let created = client.post(SECRETS, &secret("one", &json!({}))).await;
    assert_eq!(created.status, 201);
    let created = created.json();
    assert!(created["metadata"]["uid"].as_str().unwrap().len() >= 32);
    assert!(
        created["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["type"], "Opaque");

    let fetched = client.get(&format!("{SECRETS}/one")).await.json();
    assert_eq!(fetched, created);

    let second = client
        .post(SECRETS, &secret("two", &json!({})))
        .await
        .json();
    assert!(
        rv(&second) > rv(&created),
        "one global counter for all writes"
    );
    let list = client.get(SECRETS).await.json();
    assert_eq!(list["kind"], "SecretList");
    assert_eq!(names(&list), vec!["one", "two"]);
    assert!(
        list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= rv(&second)
    );
}

#[tokio::test]
async fn errors_are_status_objects_with_the_real_codes_and_reasons() {
    let (_sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("dup", &json!({}))).await;

    let again = client.post(SECRETS, &secret("dup", &json!({}))).await;
    assert_eq!(again.status, 409);
    let status = again.json();
    assert_eq!(
        (
            status["kind"].as_str(),
            status["reason"].as_str(),
            status["code"].as_u64()
        ),
        (Some("Status"), Some("AlreadyExists"), Some(409))
    );
    assert_eq!(status["message"], "secrets \"dup\" already exists");

    let missing = client.get(&format!("{SECRETS}/nope")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["reason"], "NotFound");

    let no_namespace = client
        .post("/api/v1/namespaces/ghost/secrets", &secret("x", &json!({})))
        .await;
    assert_eq!(no_namespace.status, 404);
    assert_eq!(
        no_namespace.json()["message"],
        "namespaces \"ghost\" not found"
    );

    let bad_name = client.post(SECRETS, &secret("Not_Valid", &json!({}))).await;
    assert_eq!(bad_name.status, 422);
    assert_eq!(
        bad_name.json()["details"]["causes"][0]["field"],
        "metadata.name"
    );

    let bad_label = client
        .post(
            SECRETS,
            &secret("x", &json!({"when": "2024-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(bad_label.status, 422);

    let bad_data = client
        .post(
            SECRETS,
            &json!({"metadata": {"name": "b64"}, "data": {"k": "not base64!"}}),
        )
        .await;
    assert_eq!(bad_data.status, 400, "undecodable data is a decoding error");
    assert_eq!(
        bad_data.json()["message"],
        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
    );
}

#[tokio::test]
async fn update_with_a_stale_resource_version_conflicts() {
    let (_sim, client) = sim_with_fixtures().await;
    let created = client.post(SECRETS, &secret("s", &json!({}))).await.json();
    let mut first = created.clone();
    first["data"]["k"] = json!("Zmlyc3Q=");
    let updated = client.put(&format!("{SECRETS}/s"), &first).await;
    assert_eq!(updated.status, 200);
    assert!(rv(&updated.json()) > rv(&created));

    let mut stale = created;
    stale["data"]["k"] = json!("c3RhbGU=");
    let conflict = client.put(&format!("{SECRETS}/s"), &stale).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json()["reason"], "Conflict");

    let mut unconditional = stale;
    unconditional["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    assert_eq!(
        client
            .put(&format!("{SECRETS}/s"), &unconditional)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn leases_support_optimistic_concurrency_for_leader_election() {
    let (_sim, client) = sim_with_fixtures().await;
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    let created = client.post(leases, &lease).await.json();
    let mut take_over = created.clone();
    take_over["spec"]["holderIdentity"] = json!("b");
    assert_eq!(
        client
            .put(&format!("{leases}/leader"), &take_over)
            .await
            .status,
        200
    );
    let mut late = created;
    late["spec"]["holderIdentity"] = json!("c");
    assert_eq!(
        client.put(&format!("{leases}/leader"), &late).await.status,
        409
    );
    let patched = client
        .patch(
            &format!("{leases}/leader"),
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1"},"spec":{"holderIdentity":"d"}}"#,
        )
        .await;
    assert_eq!(
        patched.status, 409,
        "a patch carrying a stale resourceVersion conflicts"
    );
    assert_eq!(
        client.get(&format!("{leases}/leader")).await.json()["spec"]["holderIdentity"],
        "b"
    );
}

#[tokio::test]
async fn generation_tracks_spec_changes_and_the_status_subresource_is_separate() {
    let (_sim, client) = sim_with_fixtures().await;
    let created = client
        .post(WIDGETS, &widget("w", &json!({"owner": "team-a"})))
        .await
        .json();
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["spec"]["mode"], "Fast", "schema default applied");
    let path = format!("{WIDGETS}/w");

    let labelled = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
        )
        .await
        .json();
    assert_eq!(
        labelled["metadata"]["generation"], 1,
        "metadata changes keep the generation"
    );

    let resized = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"spec":{"size":3}}"#,
        )
        .await
        .json();
    assert_eq!(resized["metadata"]["generation"], 2);

    let ignored = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"status":{"phase":"Ignored"}}"#,
        )
        .await
        .json();
    assert!(
        ignored.get("status").is_none(),
        "the main resource ignores status"
    );
    assert_eq!(
        rv(&ignored),
        rv(&resized),
        "a no-op write does not bump the resourceVersion"
    );

    let status = client
        .patch(
            &format!("{path}/status"),
            "application/merge-patch+json",
            r#"{"spec":{"size":9},"status":{"phase":"Ready"}}"#,
        )
        .await
        .json();
    assert_eq!(status["status"]["phase"], "Ready");
    assert_eq!(status["spec"]["size"], 3, "/status ignores spec");
    assert_eq!(
        status["metadata"]["generation"], 2,
        "status writes keep the generation"
    );

    let mut replace = status.clone();
    replace["status"] = json!({"phase": "Overwritten"});
    replace["spec"]["size"] = json!(4);
    let replaced = client.put(&path, &replace).await.json();
    assert_eq!(replaced["status"]["phase"], "Ready");
    assert_eq!(replaced["metadata"]["generation"], 3);

    let mut status_put = replaced.clone();
    status_put["status"] =
        json!({"phase": "Done", "conditions": [{"type": "Ready", "status": "True"}]});
    let put = client.put(&format!("{path}/status"), &status_put).await;
    assert_eq!(put.status, 200);
    assert_eq!(put.json()["status"]["phase"], "Done");

    let beta = client
        .get("/apis/test.example/v1beta1/namespaces/default/widgets/w")
        .await
        .json();
    assert_eq!(
        beta["apiVersion"], "test.example/v1beta1",
        "other served versions read the same object"
    );
    assert_eq!(beta["spec"]["size"], 4);
}

#[tokio::test]
async fn merge_json_and_strategic_patches_apply_to_the_live_object() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("p", &json!({"a": "1"}))).await;
    let path = format!("{SECRETS}/p");

    let merged = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"a":null,"b":"2"}},"data":{"n":"bmV3"}}"#,
        )
        .await
        .json();
    assert_eq!(merged["metadata"]["labels"], json!({"b": "2"}));
    assert_eq!(merged["data"], json!({"k": "dg==", "n": "bmV3"}));

    let json_patched = client
        .patch(&path, "application/json-patch+json", r#"[{"op":"test","path":"/data/k","value":"dg=="},{"op":"remove","path":"/data/k"},{"op":"add","path":"/metadata/annotations","value":{"x":"y"}}]"#)
        .await
        .json();
    assert_eq!(json_patched["data"], json!({"n": "bmV3"}));
    assert_eq!(json_patched["metadata"]["annotations"]["x"], "y");

    let failed = client
        .patch(
            &path,
            "application/json-patch+json",
            r#"[{"op":"test","path":"/data/n","value":"x"}]"#,
        )
        .await;
    assert_eq!(failed.status, 422);

    sim.apply_yaml(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - {name: app, image: app:1, env: [{name: A, value: '1'}]}\n      - {name: side, image: side:1}\n",
    )
    .unwrap();
    let deployment = "/apis/apps/v1/namespaces/default/deployments/web";
    let restarted = client
        .patch(
            deployment,
            "application/strategic-merge-patch+json",
            r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2024-01-01T00:00:00Z"}},"spec":{"containers":[{"name":"app","env":[{"name":"B","value":"2"}]}]}}}}"#,
        )
        .await
        .json();
    let template = &restarted["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2024-01-01T00:00:00Z"
    );
    assert_eq!(
        template["spec"]["containers"].as_array().unwrap().len(),
        2,
        "containers merge by name"
    );
    assert_eq!(
        template["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(restarted["metadata"]["generation"], 2);

    let unsupported = client
        .patch(
            &format!("{WIDGETS}/none"),
            "application/strategic-merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(
        unsupported.status, 415,
        "custom resources refuse strategic merge patches"
    );
    let unknown = client.patch(&path, "text/plain", "{}").await;
    assert_eq!(unknown.status, 415);
    let absent = client
        .patch(
            &format!("{SECRETS}/absent"),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(absent.status, 404);
}

#[tokio::test]
async fn server_side_apply_creates_merges_prunes_and_detects_conflicts() {
    let (_sim, client) = sim_with_fixtures().await;
    let path = format!("{SECRETS}/applied");
    let apply = |manager: &str, force: bool| format!("{path}?fieldManager={manager}&force={force}");
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: applied\n  labels: {owner: op}\ndata:\n  a: YQ==\n  b: Yg==\n";

    let created = client
        .patch(
            &apply("operator", true),
            "application/apply-patch+yaml",
            yaml,
        )
        .await;
    assert_eq!(created.status, 201);
    let created = created.json();
    assert_eq!(created["data"], json!({"a": "YQ==", "b": "Yg=="}));
    assert_eq!(
        created["metadata"]["managedFields"][0]["manager"],
        "operator"
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]["f:a"],
        json!({})
    );

    client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"annotations":{"human":"note"}}}"#,
        )
        .await;
    let json_body =
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"applied"},"data":{"a":"QQ=="}}"#;
    let reapplied = client
        .patch(
            &apply("operator", true),
            "application/apply-patch+yaml",
            json_body,
        )
        .await
        .json();
    assert_eq!(
        reapplied["data"],
        json!({"a": "QQ=="}),
        "fields the manager stopped applying are removed"
    );
    assert!(
        reapplied["metadata"]
            .get("labels")
            .is_none_or(|l| l.as_object().unwrap().is_empty())
    );
    assert_eq!(
        reapplied["metadata"]["annotations"]["human"], "note",
        "fields set by others stay"
    );

    let other =
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"applied"},"data":{"a":"Wg=="}}"#;
    let conflict = client
        .patch(
            &apply("intruder", false),
            "application/apply-patch+yaml",
            other,
        )
        .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json()["details"]["causes"][0]["field"], ".data.a");
    let forced = client
        .patch(
            &apply("intruder", true),
            "application/apply-patch+yaml",
            other,
        )
        .await;
    assert_eq!(forced.status, 200);
    assert_eq!(forced.json()["data"]["a"], "Wg==");

    let no_manager = client
        .patch(&path, "application/apply-patch+yaml", other)
        .await;
    assert_eq!(no_manager.status, 400);

    client
        .post(WIDGETS, &widget("w", &json!({"owner": "team"})))
        .await;
    let status = client
        .patch(
            &format!("{WIDGETS}/w/status?fieldManager=operator&force=true"),
            "application/apply-patch+yaml",
            "apiVersion: test.example/v1\nkind: Widget\nmetadata: {name: w}\nstatus:\n  phase: Ready\n",
        )
        .await;
    assert_eq!(status.status, 200);
    let status = status.json();
    assert_eq!(status["status"]["phase"], "Ready");
    assert_eq!(status["metadata"]["generation"], 1);
    let entry = status["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "status")
        .cloned();
    assert!(
        entry.is_some(),
        "status applies are recorded per subresource"
    );
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (_sim, client) = sim_with_fixtures().await;
    client
        .post(
            SECRETS,
            &secret("a", &json!({"app": "web", "tier": "front"})),
        )
        .await;
    client
        .post(SECRETS, &secret("b", &json!({"app": "db"})))
        .await;
    client
        .post(SECRETS, &secret("c", &json!({"app": "web"})))
        .await;
    let cases = [
        ("labelSelector=app%3Dweb", vec!["a", "c"]),
        ("labelSelector=app%3D%3Dweb", vec!["a", "c"]),
        ("labelSelector=app!%3Dweb", vec!["b"]),
        ("labelSelector=app%20in%20(db,cache)", vec!["b"]),
        ("labelSelector=app%20notin%20(db)", vec!["a", "c"]),
        ("labelSelector=tier", vec!["a"]),
        ("labelSelector=!tier", vec!["b", "c"]),
        ("labelSelector=app%3Dweb,!tier", vec!["c"]),
        ("fieldSelector=metadata.name%3Db", vec!["b"]),
        (
            "fieldSelector=metadata.name!%3Db,metadata.namespace%3Ddefault",
            vec!["a", "c"],
        ),
    ];
    for (query, expected) in cases {
        let list = client.get(&format!("{SECRETS}?{query}")).await.json();
        assert_eq!(names(&list), expected, "{query}");
    }
    let all_namespaces = client
        .get("/api/v1/secrets?labelSelector=app%3Dweb")
        .await
        .json();
    assert_eq!(names(&all_namespaces).len(), 2);
    assert_eq!(
        client
            .get(&format!("{SECRETS}?labelSelector=a%20in%20b"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn limit_and_continue_page_through_a_list() {
    let (_sim, client) = sim_with_fixtures().await;
    for i in 0..5 {
        client
            .post(SECRETS, &secret(&format!("s{i}"), &json!({})))
            .await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut list_rv = None;
    for _ in 0..5 {
        let page = client
            .get(&format!("{SECRETS}?limit=2&continue={token}"))
            .await
            .json();
        seen.extend(names(&page));
        list_rv.get_or_insert(page["metadata"]["resourceVersion"].clone());
        match page["metadata"]["continue"].as_str() {
            Some(next) => {
                assert!(page["metadata"]["remainingItemCount"].as_u64().unwrap() > 0);
                token = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, vec!["s0", "s1", "s2", "s3", "s4"]);
    assert_eq!(
        client
            .get(&format!("{SECRETS}?limit=2&continue=zz"))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn custom_resources_are_validated_against_the_crd_schema() {
    let (_sim, client) = sim_with_fixtures().await;
    let invalid = |spec: Value| {
        let client = &client;
        async move {
            let reply = client.post(WIDGETS, &widget("bad", &spec)).await;
            assert_eq!(reply.status, 422, "{spec}: {}", reply.text);
            let status = reply.json();
            status["details"]["causes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    format!(
                        "{}|{}",
                        c["field"].as_str().unwrap(),
                        c["message"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(invalid(json!({})).await, vec!["spec.owner|Required value"]);
    let causes = invalid(json!({"owner": "x", "mode": "Turbo", "size": 11, "startAt": "soon", "id": "nope", "tags": ["a", "a"]})).await;
    let fields: Vec<&str> = causes
        .iter()
        .map(|c| c.split('|').next().unwrap())
        .collect();
    for field in [
        "spec.owner",
        "spec.mode",
        "spec.size",
        "spec.startAt",
        "spec.id",
        "spec.tags[1]",
    ] {
        assert!(fields.contains(&field), "{field} missing in {causes:?}");
    }
    assert!(
        invalid(json!({"owner": "ok", "size": "3"})).await[0].contains("must be of type integer")
    );
    assert!(
        invalid(json!({"owner": "ok", "size": 3_000_000_000_i64}))
            .await
            .iter()
            .any(|c| c.contains("int32"))
    );

    let cel = invalid(
        json!({"owner": "ok", "renewBefore": "1h", "renewBeforePercentage": 10, "ttl": "30s"}),
    )
    .await;
    assert_eq!(
        cel,
        vec![
            "spec|Invalid value: \"object\": renewBefore and renewBeforePercentage are mutually exclusive",
            "spec|Invalid value: \"object\": ttl must be at least 1m"
        ]
    );

    let strict = client
        .post(
            &format!("{WIDGETS}?fieldValidation=Strict"),
            &widget("strict", &json!({"owner": "ok", "color": "red"})),
        )
        .await;
    assert_eq!(strict.status, 400);
    assert!(
        strict.json()["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.color\"")
    );

    let warned = client
        .post(WIDGETS, &widget("pruned", &json!({"owner": "ok", "color": "red", "extra": {"any": {"thing": 1}}, "renewBefore": null})))
        .await;
    assert_eq!(warned.status, 201);
    assert!(warned.header("warning").unwrap().contains("unknown field"));
    let stored = warned.json();
    assert!(
        stored["spec"].get("color").is_none(),
        "unknown fields are pruned"
    );
    assert_eq!(
        stored["spec"]["extra"],
        json!({"any": {"thing": 1}}),
        "preserve-unknown-fields keeps them"
    );
    assert_eq!(
        stored["spec"]["renewBefore"],
        Value::Null,
        "nullable fields keep null"
    );

    let status_invalid = client
        .patch(
            &format!("{WIDGETS}/pruned/status"),
            "application/merge-patch+json",
            r#"{"status":{"conditions":[{"type":"Ready","status":"Yes"}]}}"#,
        )
        .await;
    assert_eq!(
        status_invalid.status, 422,
        "status writes are validated too"
    );
}

#[tokio::test]
async fn deleting_an_owner_garbage_collects_its_dependents() {
    let (_sim, client) = sim_with_fixtures().await;
    let owner = client
        .post(WIDGETS, &widget("owner", &json!({"owner": "team"})))
        .await
        .json();
    let reference = json!([{"apiVersion": "test.example/v1", "kind": "Widget", "name": "owner",
        "uid": owner["metadata"]["uid"], "controller": true}]);
    let mut dependent = secret("dependent", &json!({}));
    dependent["metadata"]["ownerReferences"] = reference.clone();
    client.post(SECRETS, &dependent).await;
    let mut grandchild = json!({"metadata": {"name": "grandchild"}, "data": {"x": "1"}});
    let dependent_uid =
        client.get(&format!("{SECRETS}/dependent")).await.json()["metadata"]["uid"].clone();
    grandchild["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "Secret", "name": "dependent", "uid": dependent_uid}]);
    assert_eq!(
        client
            .post("/api/v1/namespaces/default/configmaps", &grandchild)
            .await
            .status,
        201
    );
    client.post(SECRETS, &secret("unrelated", &json!({}))).await;

    assert_eq!(client.delete(&format!("{WIDGETS}/owner")).await.status, 200);
    assert_eq!(
        client.get(&format!("{SECRETS}/dependent")).await.status,
        404
    );
    assert_eq!(
        client
            .get("/api/v1/namespaces/default/configmaps/grandchild")
            .await
            .status,
        404,
        "cascades"
    );
    assert_eq!(
        client.get(&format!("{SECRETS}/unrelated")).await.status,
        200
    );

    let owner = client
        .post(WIDGETS, &widget("owner2", &json!({"owner": "team"})))
        .await
        .json();
    let mut kept = secret("kept", &json!({}));
    kept["metadata"]["ownerReferences"] = json!([{"apiVersion": "test.example/v1", "kind": "Widget", "name": "owner2", "uid": owner["metadata"]["uid"]}]);
    client.post(SECRETS, &kept).await;
    client
        .delete_with(
            &format!("{WIDGETS}/owner2"),
            &json!({"propagationPolicy": "Orphan"}),
        )
        .await;
    let orphan = client.get(&format!("{SECRETS}/kept")).await.json();
    assert!(
        orphan["metadata"]["ownerReferences"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let mut dangling = secret("dangling", &json!({}));
    dangling["metadata"]["ownerReferences"] = reference;
    assert_eq!(client.post(SECRETS, &dangling).await.status, 201);
    assert_eq!(
        client.get(&format!("{SECRETS}/dangling")).await.status,
        404,
        "owners that are gone mean garbage"
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_they_are_removed() {
    let (_sim, client) = sim_with_fixtures().await;
    let mut w = widget("held", &json!({"owner": "team"}));
    w["metadata"]["finalizers"] = json!(["test.example/cleanup"]);
    client.post(WIDGETS, &w).await;
    let path = format!("{WIDGETS}/held");
    let deleting = client.delete(&path).await;
    assert_eq!(deleting.status, 202);
    let held = client.get(&path).await.json();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let add = client
        .patch(
            &path,
            "application/json-patch+json",
            r#"[{"op":"add","path":"/metadata/finalizers/-","value":"more"}]"#,
        )
        .await;
    assert_eq!(add.status, 422, "no new finalizers while deleting");
    let released = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(released.status, 200);
    assert_eq!(client.get(&path).await.status, 404);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_everything_in_it() {
    let (_sim, client) = sim_with_fixtures().await;
    client
        .post("/api/v1/namespaces", &json!({"metadata": {"name": "team"}}))
        .await;
    let ns = client.get("/api/v1/namespaces/team").await.json();
    assert_eq!(ns["status"]["phase"], "Active");
    client
        .post("/api/v1/namespaces/team/secrets", &secret("s", &json!({})))
        .await;
    client
        .post(
            "/apis/test.example/v1/namespaces/team/widgets",
            &widget("w", &json!({"owner": "team"})),
        )
        .await;
    client.post(SECRETS, &secret("elsewhere", &json!({}))).await;

    client.delete("/api/v1/namespaces/team").await;
    assert_eq!(client.get("/api/v1/namespaces/team").await.status, 404);
    assert_eq!(
        client.get("/api/v1/namespaces/team/secrets/s").await.status,
        404
    );
    assert_eq!(
        client
            .get("/apis/test.example/v1/namespaces/team/widgets/w")
            .await
            .status,
        404
    );
    assert_eq!(
        client.get(&format!("{SECRETS}/elsewhere")).await.status,
        200
    );
}

#[tokio::test]
async fn injected_faults_fail_or_slow_matching_requests() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("f", &json!({}))).await;
    let path = format!("{SECRETS}/f");

    sim.inject(Fault::fail("get", "secrets").name("f").times(2).status(503));
    assert_eq!(
        client.get(&format!("{SECRETS}/other")).await.status,
        404,
        "other names are not affected"
    );
    let failed = client.get(&path).await;
    assert_eq!(failed.status, 503);
    assert_eq!(failed.json()["reason"], "ServiceUnavailable");
    assert_eq!(client.get(&path).await.status, 503);
    assert_eq!(client.get(&path).await.status, 200, "the fault is used up");

    sim.inject(Fault::fail("patch", "widgets/status").status(409));
    client
        .post(WIDGETS, &widget("w", &json!({"owner": "team"})))
        .await;
    let status_path = format!("{WIDGETS}/w/status");
    assert_eq!(
        client
            .patch(
                &status_path,
                "application/merge-patch+json",
                r#"{"status":{"phase":"x"}}"#
            )
            .await
            .status,
        409
    );
    assert_eq!(
        client
            .patch(
                &status_path,
                "application/merge-patch+json",
                r#"{"status":{"phase":"x"}}"#
            )
            .await
            .status,
        200
    );

    sim.inject(Fault::latency("list", "secrets", Duration::from_millis(300)).times(1));
    let started = Instant::now();
    assert_eq!(client.get(SECRETS).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    client.get(SECRETS).await;
    assert!(started.elapsed() < Duration::from_millis(300));

    sim.inject(Fault::fail("*", "*").always().status(500));
    assert_eq!(client.get(SECRETS).await.status, 500);
    sim.clear_faults();
    assert_eq!(client.get(SECRETS).await.status, 200);
}

#[tokio::test]
async fn requests_are_counted_by_verb_and_resource_and_logged() {
    let (sim, client) = sim_with_fixtures().await;
    sim.clear_requests();
    client
        .post(WIDGETS, &widget("w", &json!({"owner": "team"})))
        .await;
    client.get(&format!("{WIDGETS}/w")).await;
    client.get(WIDGETS).await;
    client
        .patch(
            &format!("{WIDGETS}/w/status"),
            "application/merge-patch+json",
            r#"{"status":{"phase":"a"}}"#,
        )
        .await;
    client
        .patch(
            &format!("{WIDGETS}/w"),
            "application/merge-patch+json",
            r#"{"spec":{"size":2}}"#,
        )
        .await;
    client.delete(&format!("{WIDGETS}/w")).await;
    client.get("/api").await;

    let counts = sim.counts();
    assert_eq!(counts.get("create", "widgets"), 1);
    assert_eq!(counts.get("get", "widgets"), 1);
    assert_eq!(counts.get("list", "widgets"), 1);
    assert_eq!(counts.get("patch", "widgets/status"), 1);
    assert_eq!(counts.get("patch", "widgets"), 1);
    assert_eq!(counts.get("delete", "widgets"), 1);
    assert_eq!(counts.get("*", "widgets"), 5);
    assert_eq!(counts.total_writes(), 4);
    assert_eq!(
        counts.iter().count(),
        6,
        "discovery requests are not counted"
    );

    let log = sim.requests();
    assert_eq!(log.len(), 7);
    let status_patch = log
        .iter()
        .find(|r| r.resource.as_deref() == Some("widgets/status"))
        .unwrap();
    assert_eq!(status_patch.method, "PATCH");
    assert_eq!(
        status_patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        status_patch.path,
        "/apis/test.example/v1/namespaces/default/widgets/w/status"
    );
    assert_eq!(status_patch.status, 200);
    client.get(&format!("{WIDGETS}?labelSelector=a%3Db")).await;
    assert_eq!(
        sim.requests()
            .last()
            .unwrap()
            .query_param("labelSelector")
            .as_deref(),
        Some("a=b")
    );
    sim.clear_requests();
    assert_eq!(sim.counts().total(), 0);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn kubectl_style_table_requests_get_printer_columns() {
    let (sim, client) = sim_with_fixtures().await;
    client
        .post(WIDGETS, &widget("w", &json!({"owner": "team", "size": 4})))
        .await;
    sim.patch(
        "test.example/v1",
        "widgets",
        Some("default"),
        "w",
        PatchKind::Merge,
        &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        Some("status"),
    )
    .unwrap();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let table = client.get_accept(WIDGETS, accept).await;
    assert!(table.header("content-type").unwrap().contains("as=Table"));
    let table = table.json();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, vec!["Name", "Ready", "Size", "Expires", "Age"]);
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], "w");
    assert_eq!(cells[1], "True");
    assert_eq!(cells[2], 4);
    assert_eq!(cells[3], Value::Null);
    assert!(cells[4].as_str().unwrap().ends_with('s'));
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    client.post(SECRETS, &secret("s", &json!({}))).await;
    let secrets = client
        .get_accept(&format!("{SECRETS}/s"), accept)
        .await
        .json();
    let columns: Vec<&str> = secrets["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, vec!["Name", "Type", "Data", "Age"]);
    assert_eq!(secrets["rows"][0]["cells"][2], 1);
}

#[tokio::test]
async fn dry_runs_persist_nothing_and_delete_collection_honours_selectors() {
    let (sim, client) = sim_with_fixtures().await;
    let before = sim.resource_version();
    let dry = client
        .post(&format!("{SECRETS}?dryRun=All"), &secret("dry", &json!({})))
        .await;
    assert_eq!(dry.status, 201);
    assert_eq!(dry.json()["metadata"]["name"], "dry");
    assert_eq!(client.get(&format!("{SECRETS}/dry")).await.status, 404);
    assert_eq!(sim.resource_version(), before);

    for (name, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        client
            .post(SECRETS, &secret(name, &json!({"app": app})))
            .await;
    }
    let generated = client
        .post(SECRETS, &json!({"metadata": {"generateName": "gen-"}}))
        .await
        .json();
    assert!(generated["metadata"]["name"].as_str().unwrap().len() > "gen-".len());
    let deleted = client
        .delete(&format!("{SECRETS}?labelSelector=app%3Dx"))
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(names(&deleted.json()), vec!["a", "b"]);
    let left = client
        .get(&format!("{SECRETS}?labelSelector=app"))
        .await
        .json();
    assert_eq!(names(&left), vec!["c"]);
}

#[tokio::test]
async fn events_of_both_apis_can_be_created() {
    let (_sim, client) = sim_with_fixtures().await;
    let modern = client
        .post(
            "/apis/events.k8s.io/v1/namespaces/default/events",
            &json!({"metadata": {"generateName": "w-"}, "eventTime": "2024-01-01T00:00:00.000000Z",
                "reason": "Issued", "note": "issued", "type": "Normal", "action": "Issue",
                "reportingController": "sync-client-operator", "reportingInstance": "pod-1",
                "regarding": {"kind": "Widget", "name": "w", "namespace": "default"}}),
        )
        .await;
    assert_eq!(modern.status, 201);
    assert!(
        modern.json()["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("w-")
    );
    let core = client
        .post(
            "/api/v1/namespaces/default/events",
            &json!({"metadata": {"name": "w.1"}, "reason": "Issued", "message": "m",
            "involvedObject": {"kind": "Widget", "name": "w"}}),
        )
        .await;
    assert_eq!(core.status, 201);
}

#[tokio::test]
async fn cluster_scoped_custom_resources_live_outside_namespaces() {
    let (_sim, client) = sim_with_fixtures().await;
    let gadget = json!({"apiVersion": "test.example/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"color": "red"}, "status": {"seen": true}});
    let created = client.post("/apis/test.example/v1/gadgets", &gadget).await;
    assert_eq!(created.status, 201);
    let created = created.json();
    assert!(created["metadata"].get("namespace").is_none());
    assert_eq!(
        created["status"]["seen"], true,
        "without a status subresource status is ordinary data"
    );
    let recolored = client
        .patch(
            "/apis/test.example/v1/gadgets/g",
            "application/merge-patch+json",
            r#"{"status":{"seen":false}}"#,
        )
        .await
        .json();
    assert_eq!(
        recolored["metadata"]["generation"], 2,
        "without a status subresource status changes bump generation"
    );
    assert_eq!(
        client
            .get("/apis/test.example/v1/gadgets/g/status")
            .await
            .status,
        404
    );
    assert_eq!(
        client
            .get("/apis/test.example/v1/namespaces/default/gadgets")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn the_direct_api_reads_and_writes_without_http() {
    let sim = KubeSim::start().await.unwrap();
    sim.apply_yaml(support::FIXTURE_CRDS).unwrap();
    sim.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\napiVersion: test.example/v1\nkind: Widget\nmetadata: {name: w, namespace: apps}\nspec: {owner: team}\nstatus: {phase: Seeded}\n")
        .unwrap();
    let w = sim
        .get("test.example/v1", "widgets", Some("apps"), "w")
        .unwrap();
    assert_eq!(
        w["status"]["phase"], "Seeded",
        "apply_yaml writes given statuses"
    );
    assert_eq!(w["spec"]["mode"], "Fast");

    let created = sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    assert_eq!(created["metadata"]["namespace"], "default");
    let duplicate = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert!(sim.create(duplicate).unwrap_err().is_conflict());

    let mut changed = created.clone();
    changed["data"]["a"] = json!("2");
    let replaced = sim.replace(changed).unwrap();
    assert_eq!(replaced["data"]["a"], "2");
    let mut stale = created;
    stale["data"]["a"] = json!("3");
    assert!(sim.replace(stale).unwrap_err().is_conflict());

    assert_eq!(sim.list("v1", "configmaps", Some("default")).len(), 1);
    assert!(sim.list("v1", "namespaces", None).len() >= 3);
    let invalid = sim.create(json!({"apiVersion": "test.example/v1", "kind": "Widget", "metadata": {"name": "x"}, "spec": {}})).unwrap_err();
    assert!(invalid.is_invalid());
    assert!(
        sim.create(json!({"apiVersion": "nope/v1", "kind": "Thing", "metadata": {"name": "x"}}))
            .unwrap_err()
            .is_not_found()
    );

    let waiter = sim.wait_for(
        "v1",
        "configmaps",
        Some("default"),
        "later",
        Duration::from_secs(5),
        |c| c["data"]["ready"] == "yes",
    );
    let writer = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}, "data": {"ready": "no"}})).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        sim.patch(
            "v1",
            "configmaps",
            Some("default"),
            "later",
            PatchKind::Merge,
            &json!({"data": {"ready": "yes"}}),
            None,
        )
        .unwrap();
    };
    let (ready, ()) = tokio::join!(waiter, writer);
    assert_eq!(ready.unwrap()["data"]["ready"], "yes");

    let timeout = sim
        .wait_for(
            "v1",
            "configmaps",
            Some("default"),
            "never",
            Duration::from_millis(100),
            |_| true,
        )
        .await;
    assert_eq!(timeout.unwrap_err().code, 504);

    sim.delete("v1", "configmaps", Some("default"), "c")
        .unwrap();
    assert!(sim.get("v1", "configmaps", Some("default"), "c").is_none());
    assert!(
        sim.delete("v1", "configmaps", Some("default"), "c")
            .unwrap_err()
            .is_not_found()
    );

    let kubeconfig = sim.kubeconfig_yaml();
    assert!(
        kubeconfig.contains(&sim.url())
            && kubeconfig.contains("token: sim-token")
            && kubeconfig.contains("current-context: sim")
    );
    let client = Client::new(&sim);
    assert_eq!(client.get("/api/v1/namespaces/apps").await.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn metadata_only_lists_and_watches_carry_no_secret_data() {
    let (_sim, client) = sim_with_fixtures().await;
    client
        .post(SECRETS, &secret("one", &json!({"team": "a"})))
        .await;
    let accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let list = client.get_accept(SECRETS, accept).await;
    assert!(
        list.header("content-type")
            .unwrap()
            .contains("PartialObjectMetadataList")
    );
    let list = list.json();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["kind"], "PartialObjectMetadata");
    assert_eq!(list["items"][0]["metadata"]["name"], "one");
    assert!(
        list["items"][0].get("data").is_none(),
        "no data in a metadata-only list"
    );
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut watch = client
        .watch_accept(
            &format!("{SECRETS}?watch=true&resourceVersion={rv}"),
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        )
        .await;
    client.post(SECRETS, &secret("two", &json!({}))).await;
    let event = watch.change().await;
    assert_eq!(event["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(event["object"]["metadata"]["name"], "two");
    assert!(
        event["object"].get("data").is_none(),
        "no data in a metadata-only watch"
    );
}
