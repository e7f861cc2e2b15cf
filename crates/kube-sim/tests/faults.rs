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
    use kube::config::{KubeConfigOptions, Kubeconfig};

    let sim = KubeSim::start_with(KubeSimConfig {
        tls: true,
        rbac: true,
        port: None,
    })
    .await
    .unwrap();
    let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(kube::Client::try_from(config).unwrap());
    let get = || tokio::time::timeout(Duration::from_secs(10), namespaces.get("default"));

    get().await.unwrap().unwrap();
    sim.set_offline(true).await.unwrap();
    let failed = get().await.unwrap();
    assert!(failed.is_err(), "reached an offline simulator: {failed:?}");
    sim.set_offline(false).await.unwrap();
    get().await.unwrap().unwrap();
}
