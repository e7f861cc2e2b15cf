//! Operating the operator: leader election between two processes, the metrics endpoint, and
//! the chart's RBAC compared with the API calls the operator really makes.

mod harness;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use harness::{DIRECTORY, Env, WAIT};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sync_client_broker_sim::{Endpoint, Fault};

const LEASE_ARGS: &[&str] = &[
    "--leader-election",
    "--lease-namespace",
    "default",
    "--lease-duration-seconds",
    "3",
];

fn acquired(output: &str) -> bool {
    output.contains("acquired the lease")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_replicas_reconciles_and_the_standby_takes_over() {
    let env = Env::start().await;
    if env.kube.is_none() {
        return; // needs --lease-namespace default; the cluster variant is covered by the chart
    }
    let mut a = env.operator("a", LEASE_ARGS);
    let mut b = env.operator("b", LEASE_ARGS);
    // 9-second tokens: rotations every ~6 s while the replicas change.
    env.create_credential("app", json!({"tokenTTL": "9m"}))
        .await;
    env.wait_for_revision("app", 1).await;
    let (leader, standby) = env
        .eventually("one replica to hold the lease", WAIT, || async {
            match (acquired(&a.output()), acquired(&b.output())) {
                (true, false) => Some(("a", "b")),
                (false, true) => Some(("b", "a")),
                _ => None,
            }
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (leader_proc, standby_proc) = if leader == "a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        !acquired(&standby_proc.output()),
        "{standby} must stand by while {leader} leads"
    );
    assert!(
        !standby_proc.output().contains("credential issued"),
        "the standby reconciled"
    );

    // The leader dies without releasing: the standby takes over within the lease duration.
    leader_proc.kill();
    let killed_at = tokio::time::Instant::now();
    env.eventually(
        "the standby to take the lease",
        Duration::from_secs(15),
        || async { acquired(&standby_proc.output()).then_some(()) },
    )
    .await;
    let takeover = killed_at.elapsed();
    println!("standby took over {takeover:?} after the leader was killed (lease duration 3 s)");
    assert!(
        takeover <= Duration::from_secs(10),
        "takeover took {takeover:?} with a 3 s lease"
    );
    let revision_now: i64 =
        env.secret("app").await.unwrap().annotations()["syncclient.io/revision"]
            .parse()
            .unwrap();
    env.wait_for_revision("app", revision_now + 1).await;

    // No credential was rotated twice: one generate per revision, across both replicas.
    let secret = env.secret("app").await.unwrap();
    let revision: usize = secret.annotations()["syncclient.io/revision"]
        .parse()
        .unwrap();
    let generates = env.broker.generate_count(DIRECTORY);
    assert!(
        generates == revision || generates == revision + 1,
        "{generates} generates for revision {revision}"
    );
    assert!(
        standby_proc.output().contains("credential issued"),
        "the new leader reconciles"
    );

    // A graceful stop releases the lease.
    assert!(standby_proc.terminate(), "graceful exit on SIGTERM");
    assert!(standby_proc.output().contains("released the lease"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_the_secret_expiry_and_readiness() {
    let env = Env::start().await;
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({})).await;
    let secret = env.wait_for_revision("app", 1).await;
    env.wait_for_reason("app", "CredentialCurrent").await;
    let expires: chrono::DateTime<chrono::Utc> = secret.annotations()["syncclient.io/expires-at"]
        .parse()
        .unwrap();
    let ns = env.namespace.clone();
    let body = env
        .eventually("metrics with the expiry gauge", WAIT, || async {
            let (status, body) = operator.http_get("/metrics").await?;
            (status == 200 && body.contains("sync_client_credential_expiration_timestamp_seconds{"))
                .then_some(body)
        })
        .await;
    let gauge = |name: &str| -> Option<i64> {
        body.lines()
            .find(|l| {
                l.starts_with(name)
                    && l.contains(&format!("namespace=\"{ns}\""))
                    && l.contains("name=\"app\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        gauge("sync_client_credential_expiration_timestamp_seconds{"),
        Some(expires.timestamp())
    );
    assert!(
        gauge("sync_client_credential_renewal_timestamp_seconds{")
            .is_some_and(|t| t < expires.timestamp())
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("sync_client_credential_ready_status{")
                && l.contains("condition=\"True\"")
                && l.ends_with(" 1"))
    );
    assert!(body.contains("sync_client_rotations_total{result=\"success\"} 1"));
    assert!(body.contains(
        "sync_client_broker_requests_total{endpoint=\"generate_credentials\",result=\"success\"} 1"
    ));
    assert!(body.contains("sync_client_reconcile_duration_seconds_count"));
    assert_eq!(operator.http_get("/healthz").await.map(|r| r.0), Some(200));
    env.eventually("/readyz to answer 200", WAIT, || async {
        (operator.http_get("/readyz").await?.0 == 200).then_some(())
    })
    .await;

    // A deleted credential's series disappear.
    env.delete_credential("app").await;
    env.eventually("series of the deleted credential to go", WAIT, || async {
        let (_, body) = operator.http_get("/metrics").await?;
        (!body.contains("name=\"app\"")).then_some(())
    })
    .await;
}

/// (apiGroup, resource, verb) triples.
type Rules = BTreeSet<(String, String, String)>;

/// The rules the chart grants with leader election on, in cluster-wide mode.
fn chart_rules() -> Rules {
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
fn used_rules(kube: &sync_client_kube_sim::KubeSim) -> Rules {
    harness::operator_requests(kube)
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
    let _operator = env.operator("rbac", LEASE_ARGS);
    env.create_credential(
        "app",
        json!({
            "brokerRef": {"kind": "ClusterIdentityBroker", "name": "shared"},
            "rolloutRestartTargets": [
                {"kind": "Deployment", "name": "pusher"}, {"kind": "StatefulSet", "name": "pusher"}, {"kind": "DaemonSet", "name": "pusher"}
            ]
        }),
    )
    .await;
    env.wait_for_revision("app", 1).await;
    // And one through the namespaced IdentityBroker.
    env.create_credential("local", json!({"directoryId": DIRECTORY}))
        .await;
    env.wait_for_revision("local", 1).await;
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
