//! The chart's RBAC compared with the API calls the operator really makes.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::harness::{Env, WAIT};
use crate::leader::LEASE_ARGS;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sync_client_broker_sim::{Endpoint, Fault};

/// (apiGroup, resource, verb) triples.
type Rules = BTreeSet<(String, String, String)>;

/// The rules the chart grants with leader election on, in cluster-wide mode.
pub(crate) fn chart_rules() -> Rules {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let helm = root.join(".tools/bin/helm");
    assert!(
        helm.exists(),
        "{} is missing: run scripts/install-tools.sh",
        helm.display()
    );
    let output = std::process::Command::new(helm)
        .args([
            "template",
            "t",
            "charts/sync-client-operator",
            "--namespace",
            "ops",
            "--set",
            "replicas=2",
        ])
        .current_dir(root)
        .output()
        .expect("helm template");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut rules = Rules::new();
    for doc in text.split("\n---") {
        let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(doc) else {
            continue;
        };
        if !matches!(value["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        // Aggregated user-facing roles are not the operator's.
        if value["metadata"]["labels"].as_object().is_some_and(|l| {
            l.keys()
                .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate"))
        }) {
            continue;
        }
        for rule in value["rules"].as_array().into_iter().flatten() {
            for group in rule["apiGroups"].as_array().into_iter().flatten() {
                for resource in rule["resources"].as_array().into_iter().flatten() {
                    for verb in rule["verbs"].as_array().into_iter().flatten() {
                        rules.insert((
                            group.as_str().unwrap().into(),
                            resource.as_str().unwrap().into(),
                            verb.as_str().unwrap().into(),
                        ));
                    }
                }
            }
        }
    }
    rules
}

/// What the operator (every client but the harness's) called, from the simulator's log.
pub(crate) fn used_rules(kube: &sync_client_kube_sim::KubeSim) -> Rules {
    crate::harness::operator_requests(kube)
        .into_iter()
        .filter_map(|r| {
            let verb = r.verb?;
            let resource = r.resource?;
            let group = match r.path.strip_prefix("/apis/") {
                Some(rest) => rest.split('/').next().unwrap_or_default().to_owned(),
                None => String::new(),
            };
            Some((group, resource, verb))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_grants_exactly_the_calls_the_operator_makes() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return;
    };
    // Every code path that talks to the API: issue, rotate (replace), repair, metadata patch,
    // events (create, then patch of a repeated one), rollouts of all kinds, cluster broker with a
    // namespace selector, broker status, leader election.
    for (kind, plural) in [
        ("Deployment", "deployments"),
        ("StatefulSet", "statefulsets"),
        ("DaemonSet", "daemonsets"),
    ] {
        kube.create(json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "pusher", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "p"}}, "template": {"metadata": {"labels": {"app": "p"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}
        }))
        .unwrap_or_else(|e| panic!("{plural}: {e:?}"));
    }
    let cluster_broker = json!({
        "apiVersion": "syncclient.io/v1alpha1", "kind": "ClusterIdentityBroker",
        "metadata": {"name": "shared"},
        "spec": {
            "url": env.broker.url(), "secretNamespace": "default",
            "tls": {"caBundle": env.broker.ca_pem().unwrap()},
            "auth": {"vcenter": {"credentialsSecretRef": {"name": "vcenter-login"}}},
            // A new leader waits out the request timeout before its first generate.
            "limits": {"requestTimeout": "2s"},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}
        }
    });
    let cluster_brokers: Api<sync_client_operator::api::ClusterIdentityBroker> =
        Api::all(env.client.clone());
    cluster_brokers
        .create(
            &PostParams::default(),
            &serde_json::from_value(cluster_broker).unwrap(),
        )
        .await
        .unwrap();
    env.broker
        .inject(Fault::on(Endpoint::Generate).times(2).status(500));
    // Deliveries through both connection kinds: the operator reads them and their Secrets.
    let entra = crate::delivery::Entra::start(&env).await;
    let cluster_connection = json!({
        "apiVersion": "syncclient.io/v1alpha1", "kind": "ClusterEntraConnection",
        "metadata": {"name": "shared-entra"},
        "spec": {
            "tenantId": entra.sim.tenant_id(),
            "clientId": entra.client_id,
            "endpoints": {"login": entra.sim.url(), "graph": entra.sim.url()},
            "tls": {"caBundle": entra.sim.ca_pem()},
            "auth": {"clientSecret": {"name": "entra-app"}},
            "secretNamespace": env.namespace,
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": env.namespace}},
        }
    });
    let cluster_connections: Api<sync_client_operator::api::ClusterEntraConnection> =
        Api::all(env.client.clone());
    cluster_connections
        .create(
            &PostParams::default(),
            &serde_json::from_value(cluster_connection).unwrap(),
        )
        .await
        .unwrap();
    let (app_principal, _) = entra.service_principal();
    let (local_principal, _) = entra.service_principal();
    let _operator = env.operator("rbac", LEASE_ARGS);
    env.create_credential(
        "app",
        json!({
            "deliveries": [{"name": "entra", "entraId": {
                "connectionRef": {"kind": "ClusterEntraConnection", "name": "shared-entra"},
                "servicePrincipalId": app_principal,
            }}],
            "brokerRef": {"kind": "ClusterIdentityBroker", "name": "shared"},
            "rolloutRestartTargets": [
                {"kind": "Deployment", "name": "pusher"}, {"kind": "StatefulSet", "name": "pusher"}, {"kind": "DaemonSet", "name": "pusher"}
            ]
        }),
    )
    .await;
    env.wait_for_revision("app", 1).await;
    // And one through the namespaced IdentityBroker, for another directory: two credentials for
    // one sync client would revoke each other, so the newer one would never issue.
    let other_directory = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    env.broker.add_directory(
        other_directory,
        sync_client_broker_sim::SyncClients::One {
            generate_token: true,
            token_ttl: 30,
        },
    );
    env.create_credential(
        "local",
        json!({
            "directoryId": other_directory,
            "deliveries": crate::delivery::delivery(&local_principal),
        }),
    )
    .await;
    env.wait_for_revision("local", 1).await;
    crate::delivery::delivered(&env, &entra, "local", &local_principal, other_directory).await;
    let patch = json!({"spec": {"secretTemplate": {"labels": {"team": "blue"}}}});
    env.credentials()
        .patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    env.eventually("the template label on the Secret", WAIT, || async {
        env.secret("app")
            .await
            .filter(|s| s.labels().get("team").is_some_and(|v| v == "blue"))
            .map(|_| ())
    })
    .await;
    env.annotate("app", "syncclient.io/rotate-request", "1")
        .await;
    env.wait_for_revision("app", 2).await;
    crate::delivery::delivered(
        &env,
        &entra,
        "app",
        &app_principal,
        crate::harness::DIRECTORY,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let used = used_rules(kube);
    let granted = chart_rules();
    let not_granted: Vec<_> = used.difference(&granted).collect();
    assert!(
        not_granted.is_empty(),
        "the operator called without a grant: {not_granted:?}"
    );
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "the chart grants what the operator never calls: {unused:?}"
    );
}
