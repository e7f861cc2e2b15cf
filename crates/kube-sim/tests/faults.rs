//! Faults for the reliability suite: realistic failure bodies, conflicts on every write, and
//! an unreachable API server that comes back on the same port.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{SECRETS, WIDGETS, WatchItem, secret, sim_with_fixtures, widget};
use sync_client_kube_sim::{Fault, KubeSim, KubeSimConfig};

fn status(code: u16, reason: &str, message: &str, details: &Value) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code,
    })
}

#[tokio::test]
async fn failures_carry_the_status_bodies_of_the_real_server() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("s", &json!({}))).await;
    let secret_path = format!("{SECRETS}/s");
    let patch_s = || client.patch(&secret_path, "application/merge-patch+json", "{}");

    sim.inject(Fault::quota_exceeded("create", "secrets"));
    let quota = client.post(SECRETS, &secret("new", &json!({}))).await;
    assert_eq!(quota.status, 403);
    assert_eq!(
        quota.json(),
        status(
            403,
            "Forbidden",
            "secrets is forbidden: exceeded quota: sim-quota, requested: count/secrets=1, used: count/secrets=10, limited: count/secrets=10",
            &json!({"kind": "secrets"}),
        )
    );

    sim.inject(
        Fault::fail("patch", "secrets")
            .status(403)
            .message("admission webhook \"policy.example.com\" denied the request: no"),
    );
    assert_eq!(
        patch_s().await.json()["message"],
        "secrets \"s\" is forbidden: admission webhook \"policy.example.com\" denied the request: no"
    );

    sim.inject(
        Fault::fail("patch", "secrets")
            .status(422)
            .cause("data[password]", "Invalid value: \"<redacted>\": too weak")
            .cause("metadata.labels", "Required value"),
    );
    assert_eq!(
        patch_s().await.json(),
        status(
            422,
            "Invalid",
            "Secret \"s\" is invalid: [data[password]: Invalid value: \"<redacted>\": too weak, metadata.labels: Required value]",
            &json!({"name": "s", "kind": "Secret", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: \"<redacted>\": too weak", "field": "data[password]"},
                {"reason": "FieldValueRequired", "message": "Required value", "field": "metadata.labels"},
            ]}),
        )
    );
    sim.inject(Fault::fail("patch", "widgets/status").status(422));
    client
        .post(WIDGETS, &widget("w", &json!({"owner": "team"})))
        .await;
    let widget_status = client
        .patch(
            &format!("{WIDGETS}/w/status"),
            "application/merge-patch+json",
            "{}",
        )
        .await
        .json();
    assert_eq!(
        widget_status["message"],
        "Widget.test.example \"w\" is invalid: injected fault"
    );
    assert_eq!(widget_status["details"]["group"], "test.example");

    sim.inject(
        Fault::fail("patch", "secrets")
            .status(500)
            .message("etcdserver: request timed out"),
    );
    assert_eq!(
        patch_s().await.json(),
        status(
            500,
            "InternalError",
            "Internal error occurred: etcdserver: request timed out",
            &json!({"causes": [{"message": "etcdserver: request timed out"}]}),
        )
    );

    sim.inject(Fault::fail("patch", "secrets").status(409));
    assert_eq!(
        patch_s().await.json(),
        status(
            409,
            "Conflict",
            "Operation cannot be fulfilled on secrets \"s\": the object has been modified; please apply your changes to the latest version and try again",
            &json!({"name": "s", "kind": "secrets"}),
        )
    );

    sim.inject(Fault::fail("get", "secrets").status(429));
    let throttled = client.get(&secret_path).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after").as_deref(), Some("1"));
    assert_eq!(throttled.json()["reason"], "TooManyRequests");

    sim.inject(
        Fault::fail("get", "secrets")
            .status(503)
            .message("maintenance"),
    );
    let unavailable = client.get(&secret_path).await.json();
    assert_eq!(
        (
            unavailable["reason"].as_str(),
            unavailable["message"].as_str()
        ),
        (Some("ServiceUnavailable"), Some("maintenance"))
    );
    assert_eq!(patch_s().await.status, 200, "every fault was used up");
}

#[tokio::test]
async fn every_write_of_a_resource_can_conflict_until_cleared() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("s", &json!({}))).await;
    let path = format!("{SECRETS}/s");
    sim.inject(Fault::fail(Fault::WRITES, "secrets").status(409).always());
    let live = client.get(&path).await.json();
    for _ in 0..3 {
        assert_eq!(client.put(&path, &live).await.status, 409);
        assert_eq!(
            client
                .patch(&path, "application/merge-patch+json", "{}")
                .await
                .status,
            409
        );
        assert_eq!(
            client.post(SECRETS, &secret("t", &json!({}))).await.status,
            409
        );
        assert_eq!(client.delete(&path).await.status, 409);
    }
    assert_eq!(client.get(&path).await.status, 200, "reads are not writes");
    assert_eq!(
        client
            .patch(
                &format!("{WIDGETS}/none"),
                "application/merge-patch+json",
                "{}"
            )
            .await
            .status,
        404,
        "other resources are not affected"
    );
    sim.clear_faults();
    assert_eq!(client.delete(&path).await.status, 200);
}

async fn connect_refused(sim: &KubeSim) -> bool {
    matches!(
        tokio::net::TcpStream::connect(sim.address()).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[tokio::test]
async fn an_offline_simulator_refuses_connections_and_comes_back_on_the_same_port() {
    let (sim, client) = sim_with_fixtures().await;
    client.post(SECRETS, &secret("s", &json!({}))).await;
    let mut watch = client.watch(&format!("{SECRETS}?watch=true")).await;
    assert_eq!(watch.change().await["type"], "ADDED");
    let address = sim.address();

    sim.set_offline(true).await.unwrap();
    assert!(connect_refused(&sim).await);
    match watch.next(Duration::from_secs(5)).await {
        WatchItem::End | WatchItem::Failed(_) => {}
        WatchItem::Event(e) => panic!("the watch survived going offline: {e}"),
        WatchItem::TimedOut => panic!("the watch was not dropped"),
    }
    sim.set_offline(true).await.unwrap();
    sim.clear_requests();

    sim.set_offline(false).await.unwrap();
    assert_eq!(sim.address(), address);
    // The same pooled client reconnects.
    assert_eq!(client.get(&format!("{SECRETS}/s")).await.status, 200);
    let mut watch = client.watch(&format!("{SECRETS}?watch=true")).await;
    assert_eq!(watch.change().await["object"]["metadata"]["name"], "s");
    sim.set_offline(false).await.unwrap();
    assert_eq!(sim.requests().len(), 2, "nothing arrived while offline");
}

#[tokio::test]
async fn a_kube_client_over_tls_fails_while_offline_and_recovers() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::Api;

    let sim = KubeSim::start_with(KubeSimConfig {
        tls: true,
        rbac: true,
        port: None,
    })
    .await
    .unwrap();
    let namespaces: Api<Namespace> = Api::all(support::kube_client(&sim.kubeconfig_yaml()).await);
    let get = || tokio::time::timeout(Duration::from_secs(10), namespaces.get("default"));

    get().await.unwrap().unwrap();
    sim.set_offline(true).await.unwrap();
    let failed = get().await.unwrap();
    assert!(failed.is_err(), "reached an offline simulator: {failed:?}");
    sim.set_offline(false).await.unwrap();
    get().await.unwrap().unwrap();
}

/// Two operator replicas against one simulator, each with its own kubeconfig and token: a
/// fault for one token fails only that replica's Lease writes, and the request log tells the
/// replicas apart by a fingerprint of their token, never the token.
#[tokio::test]
async fn a_fault_for_one_token_fails_only_that_clients_lease_writes() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Api, Patch, PatchParams, PostParams};

    let sim = KubeSim::start().await.unwrap();
    let leases = |client: kube::Client| Api::<Lease>::namespaced(client, "default");
    let leader =
        leases(support::kube_client(&sim.kubeconfig_yaml_with_token("replica-a-token")).await);
    let standby =
        leases(support::kube_client(&sim.kubeconfig_yaml_with_token("replica-b-token")).await);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "operator"},
        "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15},
    }))
    .unwrap();
    leader.create(&PostParams::default(), &lease).await.unwrap();

    sim.inject(
        Fault::fail("update|patch", "leases")
            .for_token("replica-a-token")
            .always(),
    );
    let renew = Patch::Merge(json!({"spec": {"renewTime": "2026-01-01T00:00:00.000000Z"}}));
    let params = PatchParams::default();
    for _ in 0..2 {
        let refused = leader.patch("operator", &params, &renew).await.unwrap_err();
        let kube::Error::Api(status) = refused else {
            panic!("not an API error: {refused:?}")
        };
        assert_eq!(status.code, 500);
    }
    let mut current = leader.get("operator").await.unwrap();
    current.spec.as_mut().unwrap().holder_identity = Some("replica-a".to_owned());
    assert!(
        leader
            .replace("operator", &PostParams::default(), &current)
            .await
            .is_err()
    );
    let take_over = Patch::Merge(json!({"spec": {"holderIdentity": "replica-b"}}));
    standby
        .patch("operator", &params, &take_over)
        .await
        .unwrap();
    assert_eq!(
        sim.get(
            "coordination.k8s.io/v1",
            "leases",
            Some("default"),
            "operator"
        )
        .unwrap()["spec"]["holderIdentity"],
        "replica-b"
    );

    let (a, b) = (
        sim.counts_for_token("replica-a-token"),
        sim.counts_for_token("replica-b-token"),
    );
    assert_eq!(
        (
            a.get("create", "leases"),
            a.get("patch", "leases"),
            a.get("get", "leases")
        ),
        (1, 2, 1)
    );
    assert_eq!(a.get("update", "leases"), 1);
    assert_eq!((b.total(), b.get("patch", "leases")), (1, 1));
    let fingerprint = KubeSim::token_fingerprint("replica-a-token");
    let requests = sim.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.client.as_deref() == Some(fingerprint.as_str()) && r.status == 500)
            .count(),
        3
    );
    let log = format!("{requests:?}");
    assert!(log.contains(&fingerprint), "{log}");
    assert!(
        !log.contains("replica-a-token") && !log.contains("replica-b-token"),
        "{log}"
    );
    assert_ne!(fingerprint, KubeSim::token_fingerprint("replica-b-token"));

    // The kubeconfig file carries the token it was asked for, and nothing else changes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig_with_token(&path, "replica-c-token")
        .unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        written,
        sim.kubeconfig_yaml()
            .replace("sim-token", "replica-c-token")
    );
}

/// With RBAC on, a fault can target one ServiceAccount's token too, and the log names its user.
#[tokio::test]
async fn a_fault_for_one_service_account_token_spares_the_admin() {
    let sim = KubeSim::start_with(KubeSimConfig {
        tls: false,
        rbac: true,
        port: None,
    })
    .await
    .unwrap();
    sim.apply_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: default}\n",
    )
    .unwrap();
    let operator_token = sim.service_account_token("default", "op");
    sim.inject(
        Fault::fail("list", "secrets")
            .for_token(&operator_token)
            .always()
            .status(503),
    );
    let operator = support::Client::with_token(&sim, Some(&operator_token));
    let admin = support::Client::with_token(&sim, Some(&sim.admin_token()));
    // Authorization comes first: the ServiceAccount has no role yet.
    assert_eq!(operator.get(SECRETS).await.status, 403);
    sim.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: op}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: op, namespace: default}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cluster-admin}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n",
    )
    .unwrap();
    assert_eq!(operator.get(SECRETS).await.status, 503);
    assert_eq!(admin.get(SECRETS).await.status, 200);
    let last = sim.requests().pop().unwrap();
    assert_eq!(last.user.as_deref(), Some("admin"));
    let listed: Vec<(Option<String>, u16)> = sim
        .requests()
        .into_iter()
        .filter(|r| r.client == Some(KubeSim::token_fingerprint(&operator_token)))
        .map(|r| (r.user, r.status))
        .collect();
    let user = Some("system:serviceaccount:default:op".to_owned());
    assert_eq!(listed, [(user.clone(), 403), (user, 503)]);
}
