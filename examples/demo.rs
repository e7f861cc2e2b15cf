//! A zero-setup demo: the Kubernetes API simulator, the broker simulator and the real controller
//! in one process. It applies a broker and two credentials (one with 12-second tokens), asks for a
//! manual rotation of the other half-way through, prints every issuance and rotation as it
//! happens, then a final table, and exits by itself.
//!
//! `cargo run --example demo [-- --seconds 40]`

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, SyncClients};
use sync_client_kube_sim::KubeSim;
use sync_client_operator::api::{ROTATE_REQUEST_ANNOTATION, SyncClientCredential};
use sync_client_operator::controller::fence::Fence;
use sync_client_operator::controller::{self, Options};
use sync_client_operator::metrics::Metrics;
use sync_client_operator::secret::FingerprintKey;

#[derive(Parser)]
struct Args {
    /// How long to run before printing the table and exiting.
    #[arg(long, default_value_t = 40)]
    seconds: u64,
}

const ORDERS: &str = "11111111-2222-4333-8444-555555555555";
const BILLING: &str = "66666666-7777-4888-9999-aaaaaaaaaaaa";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    // The simulator counts token_ttl in seconds instead of minutes, so "12m" lives 12 s.
    let broker = BrokerSim::start(BrokerSimConfig {
        ttl_unit: Duration::from_secs(1),
        ..BrokerSimConfig::default()
    })
    .await?;
    broker.add_directory(
        ORDERS,
        SyncClients::One {
            generate_token: true,
            token_ttl: 30,
        },
    );
    broker.add_directory(
        BILLING,
        SyncClients::One {
            generate_token: false,
            token_ttl: 30,
        },
    );
    let kube = KubeSim::start().await?;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/crds"))? {
        kube.apply_yaml(&std::fs::read_to_string(entry?.path())?)
            .map_err(|e| format!("applying CRDs: {e:?}"))?;
    }
    println!("kubernetes simulator: {}", kube.url());
    println!("broker simulator:     {} (tenant CUSTOMER)", broker.url());

    let ca = broker
        .ca_pem()
        .unwrap_or_default()
        .replace('\n', "\n      ");
    let manifest = format!(
        r"
apiVersion: v1
kind: Secret
metadata: {{name: vcenter-login, namespace: default}}
stringData: {{username: {user}, password: {password}}}
---
apiVersion: syncclient.io/v1alpha1
kind: IdentityBroker
metadata: {{name: vcenter, namespace: default}}
spec:
  url: {url}
  tls:
    caBundle: |
      {ca}
  auth:
    vcenter:
      credentialsSecretRef: {{name: vcenter-login}}
---
apiVersion: syncclient.io/v1alpha1
kind: SyncClientCredential
metadata: {{name: orders-scim, namespace: default}}
spec:
  brokerRef: {{name: vcenter}}
  directoryId: {ORDERS}
  tokenTTL: 12m
---
apiVersion: syncclient.io/v1alpha1
kind: SyncClientCredential
metadata: {{name: billing-scim, namespace: default}}
spec:
  brokerRef: {{name: vcenter}}
  directoryId: {BILLING}
  credentialType: ClientSecret
",
        user = broker.username(),
        password = broker.password(),
        url = broker.url(),
    );
    kube.apply_yaml(&manifest)
        .map_err(|e| format!("applying the example: {e:?}"))?;
    println!(
        "applied: IdentityBroker vcenter, SyncClientCredential orders-scim (12 s tokens), billing-scim (client secret, rotated on request half-way)\n"
    );

    let config = kube::Config::new(kube.url().parse()?);
    let client = Client::try_from(config)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let options = Options {
        instance: Some("demo".into()),
        // The demo's tokens live 12 s: allow an issue every 5 s instead of every 30 s.
        min_issue_interval: chrono::TimeDelta::seconds(5),
        ..Options::new(FingerprintKey::new(b"demo".to_vec()))
    };
    let controller = tokio::spawn(controller::run(
        client.clone(),
        options,
        Arc::new(Metrics::new()),
        Fence::default(),
        stop_rx.map(|_| ()),
    ));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let credentials: Api<SyncClientCredential> = Api::namespaced(client.clone(), "default");
    let started = tokio::time::Instant::now();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut requested = false;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        if !requested && started.elapsed() >= Duration::from_secs(args.seconds / 2) {
            // What `kubectl annotate scc billing-scim syncclient.io/rotate-request=... --overwrite`
            // does.
            let patch = serde_json::json!({"metadata": {"annotations": {
                ROTATE_REQUEST_ANNOTATION: "demo-half-way"
            }}});
            credentials
                .patch(
                    "billing-scim",
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            println!(
                "[{:>5.1}s] requested a rotation of billing-scim",
                started.elapsed().as_secs_f64()
            );
            requested = true;
        }
        for secret in secrets
            .list(
                &ListParams::default().labels("app.kubernetes.io/managed-by=sync-client-operator"),
            )
            .await?
            .items
        {
            let revision = secret
                .annotations()
                .get("syncclient.io/revision")
                .cloned()
                .unwrap_or_default();
            if seen.get(&secret.name_any()) != Some(&revision) {
                let expires = secret
                    .annotations()
                    .get("syncclient.io/expires-at")
                    .cloned()
                    .unwrap_or_default();
                let what = if revision == "1" {
                    "issued "
                } else {
                    "rotated"
                };
                println!(
                    "[{:>5.1}s] {what} {:<13} revision {revision:<3} expires {expires}",
                    started.elapsed().as_secs_f64(),
                    secret.name_any(),
                );
                seen.insert(secret.name_any(), revision);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!(
        "\n{:<14} {:<7} {:<9} {:<22} {:<22} LIVE AT BROKER",
        "NAME", "READY", "REVISION", "EXPIRES", "RENEWAL"
    );
    for cr in credentials.list(&ListParams::default()).await?.items {
        let status = cr.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map_or("?".into(), |c| format!("{:?}", c.status));
        let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or("-".to_owned(), |t| t.format("%H:%M:%S").to_string())
        };
        let secret = secrets.get_opt(&cr.name_any()).await?;
        let live = secret.and_then(|s| s.data).is_some_and(|data| {
            let value = |k: &str| {
                data.get(k)
                    .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            };
            match (value("access_token"), value("client_secret")) {
                (Some(token), _) => broker.token_is_valid(&token),
                (None, Some(secret)) => broker
                    .current_client_secret(&cr.spec.directory_id)
                    .is_some_and(|(_, s)| s == secret),
                _ => false,
            }
        });
        println!(
            "{:<14} {:<7} {:<9} {:<22} {:<22} {}",
            cr.name_any(),
            ready,
            status.revision.unwrap_or(0),
            fmt(status.expires_at),
            fmt(status.renewal_time),
            if live { "yes" } else { "NO" }
        );
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
    broker.shutdown().await;
    kube.shutdown().await;
    Ok(())
}
