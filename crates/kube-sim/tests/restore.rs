//! Restoring objects as a restored etcd holds them: the cluster state release 0.1.0 left
//! (`tests/fixtures/upgrade-0.1.0/state.yaml`) comes back with its uids, times, owner
//! references, statuses and Secret data, and behaves like the cluster it came from.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::{FIXTURE_CRDS, WIDGETS, sim_with_fixtures, widget};
use sync_client_kube_sim::KubeSim;

fn upgrade_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/upgrade-0.1.0")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The three CRDs of 0.1.0.
fn crds() -> Vec<Value> {
    let mut crds = Vec::new();
    for entry in std::fs::read_dir(upgrade_fixtures().join("crds")).unwrap() {
        crds.extend(documents(&read(&entry.unwrap().path())));
    }
    assert_eq!(crds.len(), 3);
    crds
}

fn state() -> Vec<Value> {
    documents(&read(&upgrade_fixtures().join("state.yaml")))
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// (apiVersion, plural) of the kinds in the fixture.
fn plural(obj: &Value) -> (&str, &'static str) {
    let plural = match text(obj, "/kind") {
        "Namespace" => "namespaces",
        "Secret" => "secrets",
        "SyncClientCredential" => "syncclientcredentials",
        "IdentityBroker" => "identitybrokers",
        "ClusterIdentityBroker" => "clusteridentitybrokers",
        other => panic!("unexpected kind {other} in the fixture"),
    };
    (text(obj, "/apiVersion"), plural)
}

fn stored(sim: &KubeSim, obj: &Value) -> Option<Value> {
    let (api_version, plural) = plural(obj);
    let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str);
    sim.get(api_version, plural, namespace, text(obj, "/metadata/name"))
}

fn without_resource_version(obj: &Value) -> Value {
    let mut copy = obj.clone();
    copy["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    copy
}

#[tokio::test]
async fn the_state_0_1_0_left_is_restored_verbatim() {
    let sim = KubeSim::start().await.unwrap();
    let state = state();
    assert!(state.len() > 10, "the fixture holds the whole state");

    // Without the CRDs the custom resources cannot be stored: nothing is.
    let missing = sim.restore(state.clone()).unwrap_err();
    assert_eq!(missing.code, 404, "{missing:?}");
    assert!(
        missing.message.contains("in syncclient.io/v1alpha1"),
        "{missing:?}"
    );
    assert!(sim.get("v1", "namespaces", None, "team-a").is_none());

    for crd in crds() {
        sim.create(crd).unwrap();
    }
    let before = sim.resource_version();
    sim.restore(state.clone()).unwrap();

    let mut versions = BTreeSet::new();
    for obj in &state {
        let name = text(obj, "/metadata/name");
        let restored = stored(&sim, obj).unwrap_or_else(|| panic!("{name} was not restored"));
        assert_eq!(
            without_resource_version(&restored),
            without_resource_version(obj),
            "{} {name} is stored as it was",
            text(obj, "/kind")
        );
        let version: u64 = text(&restored, "/metadata/resourceVersion")
            .parse()
            .unwrap();
        assert!(version > before, "{name} has a new resource version");
        versions.insert(version);
    }
    assert_eq!(versions.len(), state.len(), "one resource version each");

    // The restored uids are the ones owner references name: deleting a credential collects
    // the Secret it owns, and nothing else.
    let secrets = || sim.list("v1", "secrets", Some("team-a")).len();
    let count = secrets();
    sim.delete(
        "syncclient.io/v1alpha1",
        "syncclientcredentials",
        Some("team-a"),
        "okta-scim",
    )
    .unwrap();
    assert!(
        sim.get("v1", "secrets", Some("team-a"), "okta-scim")
            .is_none()
    );
    assert_eq!(secrets(), count - 1);

    // Restoring again: every object exists already, and the call stores nothing.
    let again = sim.restore(state).unwrap_err();
    assert_eq!(again.code, 409, "{again:?}");
    assert_eq!(again.reason, "AlreadyExists");
    assert!(
        sim.get(
            "syncclient.io/v1alpha1",
            "syncclientcredentials",
            Some("team-a"),
            "okta-scim"
        )
        .is_none()
    );
}

#[tokio::test]
async fn crds_restored_in_the_same_call_serve_their_resources_and_owners_keep_dependents() {
    let sim = KubeSim::start().await.unwrap();
    // The dependents first and the CRDs last: a restore stores CRDs, then namespaces, first.
    let mut objects = state();
    objects.extend(crds());
    sim.restore(objects).unwrap();
    for secret in state().iter().filter(|o| o["kind"] == "Secret") {
        assert!(stored(&sim, secret).is_some(), "{secret}");
    }
    let crd = sim
        .get(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            None,
            "syncclientcredentials.syncclient.io",
        )
        .unwrap();
    assert_eq!(
        crd.pointer("/status/conditions/1/type"),
        Some(&json!("Established"))
    );
    assert_eq!(
        sim.list("syncclient.io/v1alpha1", "syncclientcredentials", None)
            .len(),
        6
    );
}

#[tokio::test]
async fn a_restore_validates_like_a_create_but_does_not_default() {
    let (sim, client) = sim_with_fixtures().await;
    let uid = "0a1b2c3d-0000-4000-8000-00000000000a";
    let restored = json!({
        "apiVersion": "test.example/v1", "kind": "Widget",
        "metadata": {"name": "old", "namespace": "default", "uid": uid,
                     "creationTimestamp": "2020-01-01T00:00:00Z", "generation": 7,
                     "resourceVersion": "12345", "finalizers": ["test.example/keep"]},
        "spec": {"owner": "team"},
        "status": {"phase": "Ready", "expiresAt": "2030-01-01T00:00:00Z"},
    });
    sim.restore(vec![restored.clone()]).unwrap();
    let read = client.get(&format!("{WIDGETS}/old")).await.json();
    assert!(read["spec"].get("mode").is_none(), "no default: {read}");
    assert_eq!(read["metadata"]["uid"], uid);
    assert_eq!(read["metadata"]["generation"], 7);
    assert_eq!(
        read["metadata"]["creationTimestamp"],
        "2020-01-01T00:00:00Z"
    );
    assert_eq!(read["status"]["phase"], "Ready");
    assert_ne!(read["metadata"]["resourceVersion"], "12345");
    // A create of the same spec is defaulted, as the schema says.
    let created = client
        .post(WIDGETS, &widget("new", &json!({"owner": "team"})))
        .await;
    assert_eq!(created.json()["spec"]["mode"], "Fast");

    // Validation as for a create, the status included; nothing of a failed call is stored.
    let mut invalid_status = restored.clone();
    invalid_status["metadata"]["name"] = json!("bad-status");
    invalid_status["metadata"]["uid"] = json!("0a1b2c3d-0000-4000-8000-00000000000b");
    invalid_status["status"]["expiresAt"] = json!("soon");
    let mut fine = restored.clone();
    fine["metadata"]["name"] = json!("fine");
    fine["metadata"]["uid"] = json!("0a1b2c3d-0000-4000-8000-00000000000c");
    let refused = sim.restore(vec![fine.clone(), invalid_status]).unwrap_err();
    assert_eq!((refused.code, refused.reason.as_str()), (422, "Invalid"));
    assert!(refused.message.contains("status.expiresAt"), "{refused:?}");
    assert_eq!(client.get(&format!("{WIDGETS}/fine")).await.status, 404);
    let mut cel = fine.clone();
    cel["spec"] = json!({"owner": "team", "renewBefore": "1h", "renewBeforePercentage": 30});
    let refused = sim.restore(vec![cel]).unwrap_err();
    assert!(
        refused.message.contains("mutually exclusive"),
        "{refused:?}"
    );
    let mut secret = json!({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "s", "namespace": "default"},
                            "data": {"k": "not base64!"}});
    assert_eq!(sim.restore(vec![secret.clone()]).unwrap_err().code, 400);
    secret["data"]["k"] = json!("dg==");
    secret["metadata"]["namespace"] = json!("nowhere");
    assert_eq!(sim.restore(vec![secret]).unwrap_err().code, 404);

    // A uid in use is a conflict: etcd holds one object per uid.
    let mut same_uid = fine;
    same_uid["metadata"]["uid"] = json!(uid);
    let conflict = sim.restore(vec![same_uid]).unwrap_err();
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));

    // An owner that exists nowhere: the dependent is collected, as the garbage collector would.
    let orphan = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "orphan", "namespace": "default", "ownerReferences": [
            {"apiVersion": "test.example/v1", "kind": "Widget", "name": "gone",
             "uid": "0a1b2c3d-0000-4000-8000-0000000000ff"}]}});
    sim.restore(vec![orphan]).unwrap();
    assert!(
        sim.get("v1", "configmaps", Some("default"), "orphan")
            .is_none()
    );
    // The fixture CRDs are stored by name; restoring one again is refused.
    let crd = serde_saphyr::from_multiple::<Value>(FIXTURE_CRDS).unwrap()[0].clone();
    assert_eq!(sim.restore(vec![crd]).unwrap_err().code, 409);
}
