//! Measures the operator at scale: spawns the real `sync-client-operator` binary against both
//! simulators, creates N credentials, and reports the time to issue them all, the operator's
//! resident memory before and after (so memory per credential), API calls per issuance, and the
//! calls it makes while idle. Loopback only; bounded; exits by itself.
//!
//! `cargo build --bin sync-client-operator && cargo run --example scale -- --credentials 200`

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, SyncClients};
use sync_client_kube_sim::KubeSim;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    credentials: usize,
    /// Seconds to watch the idle operator after everything was issued.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let broker = BrokerSim::start(BrokerSimConfig::default()).await?;
    let kube = KubeSim::start().await?;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/crds"))? {
        kube.apply_yaml(&std::fs::read_to_string(entry?.path())?)
            .map_err(|e| format!("{e:?}"))?;
    }
    let dir = std::env::temp_dir().join(format!("scc-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig.yaml");
    kube.write_kubeconfig(&kubeconfig)?;
    let ca = broker
        .ca_pem()
        .unwrap_or_default()
        .replace('\n', "\n      ");
    kube.apply_yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: login, namespace: default}}\nstringData: {{username: {}, password: {}}}\n---\napiVersion: syncclient.io/v1alpha1\nkind: IdentityBroker\nmetadata: {{name: vc, namespace: default}}\nspec:\n  url: {}\n  tls:\n    caBundle: |\n      {ca}\n  auth: {{vcenter: {{credentialsSecretRef: {{name: login}}}}}}\n",
        broker.username(),
        broker.password(),
        broker.url()
    ))
    .map_err(|e| format!("{e:?}"))?;

    let binary = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/debug/sync-client-operator"
    );
    let binary = std::env::var("OPERATOR_BINARY").unwrap_or_else(|_| binary.to_owned());
    let mut child = Command::new(&binary)
        .args(["run", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--http-addr", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {binary}: {e} (build it first)"))?;
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = rss_kib(pid).unwrap_or(0);
    kube.clear_requests();

    let started = Instant::now();
    for i in 0..args.credentials {
        let directory = format!("00000000-0000-4000-8000-{i:012}");
        broker.add_directory(
            &directory,
            SyncClients::One {
                generate_token: true,
                token_ttl: 60,
            },
        );
        kube.apply_yaml(&format!(
            "apiVersion: syncclient.io/v1alpha1\nkind: SyncClientCredential\nmetadata: {{name: c{i}, namespace: default}}\nspec: {{brokerRef: {{name: vc}}, directoryId: {directory}}}\n"
        ))
        .map_err(|e| format!("{e:?}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let issued = loop {
        let issued = kube
            .list("v1", "secrets", Some("default"))
            .iter()
            .filter(|s| {
                s.pointer("/metadata/annotations/syncclient.io~1revision")
                    .is_some()
            })
            .count();
        if issued >= args.credentials || Instant::now() > deadline {
            break issued;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let issue_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_kib(pid).unwrap_or(0);
    let counts = kube.counts();
    let non_watch: usize = counts
        .iter()
        .filter(|(verb, _, _)| *verb != "watch")
        .map(|(_, _, n)| n)
        .sum();

    kube.clear_requests();
    let broker_before = broker.requests().len();
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let idle_calls = kube
        .requests()
        .iter()
        .filter(|r| r.verb.as_deref() != Some("watch"))
        .count();
    let idle_broker = broker.requests().len() - broker_before;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let n = args.credentials.max(1);
    println!(
        "credentials issued:            {issued}/{}",
        args.credentials
    );
    println!(
        "time to issue all:             {:.1} s",
        issue_time.as_secs_f64()
    );
    println!("operator RSS before / after:   {rss_before} KiB / {rss_after} KiB");
    #[allow(clippy::cast_precision_loss)]
    let per = (rss_after.saturating_sub(rss_before)) as f64 / n as f64;
    println!("memory per credential:         {per:.1} KiB");
    #[allow(clippy::cast_precision_loss)]
    let calls_per = non_watch as f64 / n as f64;
    println!("operator API calls (non-watch) per credential issued: {calls_per:.1}");
    println!(
        "broker generate calls:         {}",
        broker
            .requests()
            .iter()
            .filter(|r| r.endpoint == sync_client_broker_sim::Endpoint::Generate)
            .count()
    );
    println!(
        "idle for {} s: {idle_calls} Kubernetes calls (non-watch), {idle_broker} broker calls",
        args.idle_seconds
    );
    broker.shutdown().await;
    kube.shutdown().await;
    Ok(())
}
