//! HTTPS with a generated CA: kube-rs clients configured from the kubeconfig and the
//! in-cluster way (token, CA and namespace files, `KUBERNETES_SERVICE_*` address).
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::json;
use sync_client_kube_sim::{KubeSim, KubeSimConfig};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn tls_sim(rbac: bool) -> KubeSim {
    KubeSim::start_with(KubeSimConfig {
        tls: true,
        rbac,
        port: None,
    })
    .await
    .expect("simulator starts")
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|block| {
            let body: String = block
                .split("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        })
        .collect()
}

/// What `kube::Config::incluster_env` builds, with the files read from `dir` instead of
/// `/var/run/secrets/kubernetes.io/serviceaccount`.
fn in_cluster_config(sim: &KubeSim, dir: &Path) -> Config {
    let env: BTreeMap<&str, String> = sim.in_cluster_env().into_iter().collect();
    let url = format!(
        "https://{}:{}",
        env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]
    );
    let mut config = Config::new(url.parse().unwrap());
    config.default_namespace = std::fs::read_to_string(dir.join("namespace")).unwrap();
    config.root_cert = Some(pem_certificates(
        &std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
    ));
    config.root_cert_file = Some(dir.join("ca.crt"));
    config.auth_info.token_file = Some(dir.join("token").display().to_string());
    config
}

async fn timed<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("request timed out")
}

#[tokio::test]
async fn kube_client_works_with_the_admin_kubeconfig() {
    let sim = tls_sim(true).await;
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = timed(namespaces.list(&ListParams::default()))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_owned()), "{names:?}");
    let secrets: Api<Secret> = Api::default_namespaced(client);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s"}, "stringData": {"k": "v"}
    }))
    .unwrap();
    timed(secrets.create(&PostParams::default(), &secret))
        .await
        .unwrap();
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.user.as_deref() == Some("admin"))
    );
}

#[tokio::test]
async fn an_in_cluster_client_is_allowed_by_its_role_and_refused_without() {
    let sim = tls_sim(true).await;
    sim.apply_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ops}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: ops}\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("serviceaccount");
    sim.service_account_files("ops", "op", &mount).unwrap();
    assert_eq!(
        std::fs::read_to_string(mount.join("namespace")).unwrap(),
        "ops"
    );
    assert_eq!(
        std::fs::read_to_string(mount.join("ca.crt")).unwrap(),
        sim.ca_pem().unwrap()
    );
    let client = Client::try_from(in_cluster_config(&sim, &mount)).unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());

    let denied = timed(secrets.list(&ListParams::default()))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = denied else {
        panic!("expected an API error, got {denied:?}");
    };
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert_eq!(
        status.message,
        "secrets is forbidden: User \"system:serviceaccount:ops:op\" cannot list resource \"secrets\" in API group \"\" in the namespace \"ops\""
    );
    assert_eq!(status.details.as_ref().unwrap().kind, "secrets");

    sim.apply_yaml(
        r"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: op, namespace: ops}
rules:
- {apiGroups: [''], resources: [secrets], verbs: [get, list, watch, create]}
- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, create, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: op, namespace: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: op}
subjects: [{kind: ServiceAccount, name: op, namespace: ops}]
",
    )
    .unwrap();
    assert!(
        timed(secrets.list(&ListParams::default()))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A watch streams over TLS.
    let mut events = timed(secrets.watch(&WatchParams::default(), "0"))
        .await
        .unwrap()
        .boxed();
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    timed(secrets.create(&PostParams::default(), &secret))
        .await
        .unwrap();
    match timed(events.next()).await {
        Some(Ok(WatchEvent::Added(added))) => {
            assert_eq!(added.metadata.name.as_deref(), Some("s"));
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
    let leases: Api<Lease> = Api::default_namespaced(client);
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "lock"}})).unwrap();
    timed(leases.create(&PostParams::default(), &lease))
        .await
        .unwrap();
    let operator_calls = sim
        .requests()
        .iter()
        .filter(|r| r.user.as_deref() == Some("system:serviceaccount:ops:op"))
        .count();
    assert_eq!(operator_calls, 5, "{:#?}", sim.requests());
}

#[tokio::test]
async fn the_certificate_names_the_in_cluster_service() {
    let sim = tls_sim(false).await;
    let dir = tempfile::tempdir().unwrap();
    sim.apply_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: default}\n",
    )
    .unwrap();
    sim.service_account_files("default", "op", dir.path())
        .unwrap();
    for name in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ] {
        let mut config = in_cluster_config(&sim, dir.path());
        config.tls_server_name = Some(name.to_owned());
        let client = Client::try_from(config).unwrap();
        let namespaces: Api<Namespace> = Api::all(client);
        timed(namespaces.get("default"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let mut config = in_cluster_config(&sim, dir.path());
    config.tls_server_name = Some("elsewhere.example".to_owned());
    let namespaces: Api<Namespace> = Api::all(Client::try_from(config).unwrap());
    assert!(
        timed(namespaces.get("default")).await.is_err(),
        "a name the certificate does not carry fails verification"
    );
}
