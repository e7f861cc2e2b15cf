//! A zero-setup demo: the Kubernetes API simulator, the broker simulator, the Microsoft Entra ID
//! simulator and the real controller in one process. It applies a broker and three credentials:
//! one with 12-second tokens, one client secret rotated on request half-way through, and one
//! delivered to a (simulated) Entra ID provisioning job. Half-way, that job is quarantined as it
//! happens in life: someone generates a new token at the broker out of band, which revokes the one
//! Entra ID holds, and the job's next provisioning cycle fails. A rotation then delivers a new
//! token and lifts the quarantine. The demo prints every issuance, rotation and delivery as it
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
use sync_client_entra_sim::{
    AppRegistration, ClientSecret, CycleOutcome, EntraSim, EntraSimConfig, JobStatusCode,
    Permission, ServicePrincipal,
};
use sync_client_kube_sim::KubeSim;
use sync_client_operator::api::{ROTATE_REQUEST_ANNOTATION, SyncClientCredential};
use sync_client_operator::controller::credential::deliver::complete_at;
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
const ENTRA_DIRECTORY: &str = "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff";
/// The Entra ID app registration the operator signs in as, and the enterprise application
/// (service principal) whose provisioning job pushes users into vCenter.
const ENTRA_CLIENT_ID: &str = "0e9d8c7b-6a5f-4e4d-8c3b-2a1f0e9d8c7b";
const SERVICE_PRINCIPAL: &str = "5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c";
const JOB: &str = "scim.5f4e3d2c1b0a";
/// The delivered credential and its delivery.
const DELIVERED: &str = "entra-scim";
const DELIVERY: &str = "entra";
/// How long the demo waits past `--seconds` for the quarantined job to be put back to work.
const GRACE: Duration = Duration::from_secs(30);

/// Where the quarantine scenario stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    /// Waiting for half-time and for the first delivery.
    NotStarted,
    /// The job is quarantined and a rotation requested: waiting for its delivery.
    Quarantined,
    /// The job is active again with the new token.
    Done,
}

/// What the demo last printed about the delivery, to print changes only.
#[derive(Default, PartialEq, Eq, Clone, Debug)]
struct DeliverySeen {
    complete_revision: Option<i64>,
    lifted: Option<chrono::DateTime<chrono::Utc>>,
    failure: Option<String>,
}

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
    broker.add_directory(
        ENTRA_DIRECTORY,
        SyncClients::One {
            generate_token: true,
            token_ttl: 30,
        },
    );
    // The Entra ID app's client secret: random, never printed (the simulator checks it).
    let entra_secret = sync_client_broker_sim::new_directory_id().replace('-', "");
    let entra = start_entra(&broker, &entra_secret).await?;
    let kube = KubeSim::start().await?;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/crds"))? {
        kube.apply_yaml(&std::fs::read_to_string(entry?.path())?)
            .map_err(|e| format!("applying CRDs: {e:?}"))?;
    }
    println!("kubernetes simulator: {}", kube.url());
    println!("broker simulator:     {} (tenant CUSTOMER)", broker.url());
    println!(
        "entra id simulator:   {} (tenant {})",
        entra.url(),
        entra.tenant_id()
    );

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
---
apiVersion: v1
kind: Secret
metadata: {{name: entra-app, namespace: default}}
stringData: {{client-secret: {entra_secret}}}
---
apiVersion: syncclient.io/v1alpha1
kind: EntraConnection
metadata: {{name: entra, namespace: default}}
spec:
  tenantId: {tenant}
  clientId: {ENTRA_CLIENT_ID}
  endpoints: {{login: {entra_url}, graph: {entra_url}}}
  tls:
    caBundle: |
      {entra_ca}
  auth:
    clientSecret: {{name: entra-app}}
---
apiVersion: syncclient.io/v1alpha1
kind: SyncClientCredential
metadata: {{name: {DELIVERED}, namespace: default}}
spec:
  brokerRef: {{name: vcenter}}
  directoryId: {ENTRA_DIRECTORY}
  tokenTTL: 600m
  deliveries:
  - name: {DELIVERY}
    entraId:
      connectionRef: {{name: entra}}
      servicePrincipalId: {SERVICE_PRINCIPAL}
",
        user = broker.username(),
        password = broker.password(),
        url = broker.url(),
        tenant = entra.tenant_id(),
        entra_url = entra.url(),
        entra_ca = entra.ca_pem().replace('\n', "\n      "),
    );
    kube.apply_yaml(&manifest)
        .map_err(|e| format!("applying the example: {e:?}"))?;
    println!(
        "applied: IdentityBroker vcenter, SyncClientCredential orders-scim (12 s tokens), billing-scim (client secret, rotated on request half-way)"
    );
    println!(
        "         EntraConnection entra, SyncClientCredential {DELIVERED} (delivered to Entra ID provisioning job {JOB})\n"
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
    let stamp = || format!("[{:>5.1}s]", started.elapsed().as_secs_f64());
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut delivery_seen = DeliverySeen::default();
    let mut requested = false;
    let mut scenario = Scenario::NotStarted;
    let half_way = Duration::from_secs(args.seconds / 2);
    let end = Duration::from_secs(args.seconds);
    // Past `--seconds`, only a quarantine scenario under way keeps the demo running, at most GRACE.
    while started.elapsed() < end
        || (scenario == Scenario::Quarantined && started.elapsed() < end + GRACE)
    {
        if !requested && started.elapsed() >= half_way {
            request_rotation(&credentials, "billing-scim").await?;
            println!("{} requested a rotation of billing-scim", stamp());
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
                    "{} {what} {:<13} revision {revision:<3} expires {expires}",
                    stamp(),
                    secret.name_any(),
                );
                seen.insert(secret.name_any(), revision);
            }
        }
        let delivered = credentials.get(DELIVERED).await?;
        let now_seen = delivery_seen_in(&delivered);
        for line in delivery_lines(&delivery_seen, &now_seen) {
            println!("{} {line}", stamp());
        }
        if now_seen.complete_revision.is_some() {
            delivery_seen.complete_revision = now_seen.complete_revision;
        }
        delivery_seen.lifted = now_seen.lifted;
        delivery_seen.failure = now_seen.failure;
        match scenario {
            Scenario::NotStarted
                if started.elapsed() >= half_way && delivery_seen.complete_revision.is_some() =>
            {
                quarantine_the_job(&broker, &entra, &stamp).await;
                request_rotation(&credentials, DELIVERED).await?;
                println!("{} requested a rotation of {DELIVERED}", stamp());
                scenario = Scenario::Quarantined;
            }
            Scenario::Quarantined if back_to_work(&broker, &entra, &delivered) => {
                let outcome = entra.run_provisioning_cycle(SERVICE_PRINCIPAL, JOB).await;
                let state = entra
                    .job(SERVICE_PRINCIPAL, JOB)
                    .map_or_else(|| "missing".to_owned(), |j| format!("{:?}", j.status_code));
                println!(
                    "{} Entra ID provisioning cycle of job {JOB}: {outcome:?}: the job is {state} again, holding the broker's current token of {DELIVERED}: {}",
                    stamp(),
                    yes_no(holds_current_token(&broker, &entra))
                );
                scenario = Scenario::Done;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!(
        "\n{:<14} {:<7} {:<9} {:<22} {:<22} {:<10} LIVE AT BROKER",
        "NAME", "READY", "REVISION", "EXPIRES", "RENEWAL", "DELIVERED"
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
            "{:<14} {:<7} {:<9} {:<22} {:<22} {:<10} {}",
            cr.name_any(),
            ready,
            status.revision.unwrap_or(0),
            fmt(status.expires_at),
            fmt(status.renewal_time),
            delivered_count(&cr),
            yes_no(live)
        );
    }
    let job = entra.job(SERVICE_PRINCIPAL, JOB);
    println!(
        "\nEntra ID job {JOB}: {}, restarted with QuarantineState {} time(s), holds the broker's current token of {DELIVERED}: {}",
        job.as_ref()
            .map_or_else(|| "missing".to_owned(), |j| format!("{:?}", j.status_code)),
        job.as_ref().map_or(0, |j| j
            .restart_count(sync_client_entra_sim::ResetFlag::QuarantineState)),
        yes_no(holds_current_token(&broker, &entra))
    );
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
    entra.shutdown().await;
    broker.shutdown().await;
    kube.shutdown().await;
    Ok(())
}

/// The Entra ID simulator: one app registration granted `Synchronization.ReadWrite.All`, one
/// enterprise application with one provisioning job, whose validations and provisioning cycles
/// call the broker simulator's SCIM endpoint with the token Entra ID holds.
async fn start_entra(broker: &BrokerSim, client_secret: &str) -> std::io::Result<EntraSim> {
    let entra = EntraSim::start(EntraSimConfig {
        scim_trusted_ca_pems: broker.ca_pem().into_iter().collect(),
        ..EntraSimConfig::default()
    })
    .await?;
    entra.register_app(
        AppRegistration::new(ENTRA_CLIENT_ID).with_secret(ClientSecret::new(client_secret)),
    );
    entra.grant(ENTRA_CLIENT_ID, Permission::SynchronizationReadWriteAll);
    entra.add_service_principal(ServicePrincipal::new(SERVICE_PRINCIPAL).with_job(JOB, "scim"));
    Ok(entra)
}

/// What `kubectl annotate scc NAME syncclient.io/rotate-request=... --overwrite` does.
async fn request_rotation(
    credentials: &Api<SyncClientCredential>,
    name: &str,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"metadata": {"annotations": {
        ROTATE_REQUEST_ANNOTATION: format!("demo-half-way-{name}")
    }}});
    credentials
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// The delivery's state as the operator recorded it.
fn delivery_seen_in(credential: &SyncClientCredential) -> DeliverySeen {
    let status = credential.status.clone().unwrap_or_default();
    let Some(delivery) = status.deliveries.iter().find(|d| d.name == DELIVERY) else {
        return DeliverySeen::default();
    };
    DeliverySeen {
        complete_revision: status.revision.filter(|r| complete_at(delivery, *r)),
        lifted: delivery.quarantine_lifted_time,
        failure: delivery.last_failure_reason.as_deref().map(str::to_owned),
    }
}

/// What changed since the last look.
fn delivery_lines(before: &DeliverySeen, now: &DeliverySeen) -> Vec<String> {
    let mut lines = Vec::new();
    if now.failure != before.failure
        && let Some(reason) = &now.failure
    {
        lines.push(format!(
            "delivery of {DELIVERED} failing: {reason} (retried, no new mint)"
        ));
    }
    if let Some(revision) = now.complete_revision
        && before.complete_revision != Some(revision)
    {
        lines.push(format!(
            "delivered {DELIVERED:<13} revision {revision:<3} to Entra ID job {JOB}: saved, validated, job active"
        ));
    }
    if now.lifted != before.lifted && now.lifted.is_some() {
        lines.push(format!(
            "lifted    the quarantine of Entra ID job {JOB} (restart with QuarantineState only)"
        ));
    }
    lines
}

/// Half-way, as it happens in life: someone presses "Generate" for the sync client at the broker,
/// which revokes the token Entra ID holds, and the job's next provisioning cycle fails.
async fn quarantine_the_job(broker: &BrokerSim, entra: &EntraSim, stamp: &impl Fn() -> String) {
    broker.generate_out_of_band(ENTRA_DIRECTORY);
    println!(
        "{} out of band: a new token generated for {DELIVERED}'s sync client at the broker revoked the one Entra ID holds",
        stamp()
    );
    let outcome = entra.run_provisioning_cycle(SERVICE_PRINCIPAL, JOB).await;
    let reason = entra
        .job(SERVICE_PRINCIPAL, JOB)
        .and_then(|job| job.quarantine)
        .map_or_else(|| "-".to_owned(), |q| format!("{:?}", q.reason));
    let verdict = if matches!(outcome, CycleOutcome::Quarantined(_)) {
        "quarantined"
    } else {
        "NOT quarantined"
    };
    println!(
        "{} Entra ID provisioning cycle of job {JOB} failed: job {verdict} ({reason})",
        stamp()
    );
}

/// Entra ID holds the token the broker accepts for the delivered credential's sync client.
fn holds_current_token(broker: &BrokerSim, entra: &EntraSim) -> bool {
    let held = entra.held_secret_token(SERVICE_PRINCIPAL);
    held.is_some() && held == broker.current_token(ENTRA_DIRECTORY)
}

fn yes_no(yes: bool) -> &'static str {
    if yes { "yes" } else { "NO" }
}

/// The job is active again, holds the broker's current token, and the operator says so.
fn back_to_work(broker: &BrokerSim, entra: &EntraSim, credential: &SyncClientCredential) -> bool {
    let active = entra
        .job(SERVICE_PRINCIPAL, JOB)
        .is_some_and(|job| job.status_code == JobStatusCode::Active);
    active
        && holds_current_token(broker, entra)
        && delivery_seen_in(credential).complete_revision.is_some()
}

/// `1/1`: deliveries holding the current revision, validated, their job not quarantined; `-`
/// without deliveries.
fn delivered_count(credential: &SyncClientCredential) -> String {
    let names: Vec<&str> = credential
        .spec
        .deliveries
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    if names.is_empty() {
        return "-".to_owned();
    }
    let status = credential.status.clone().unwrap_or_default();
    let done = status
        .deliveries
        .iter()
        .filter(|d| names.contains(&d.name.as_str()))
        .filter(|d| status.revision.is_some_and(|r| complete_at(d, r)))
        .count();
    format!("{done}/{}", names.len())
}
