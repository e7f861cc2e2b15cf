//! Runs the in-memory Kubernetes API simulator standalone, e.g. to poke at it with `kubectl`:
//!
//! ```text
//! cargo run --example kube-sim -- --port 6443 --kubeconfig out.yaml --crds crds/
//! KUBECONFIG=out.yaml kubectl get syncclientcredentials
//! ```

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use sync_client_kube_sim::KubeSim;

#[derive(Debug, Parser)]
#[command(about = "In-memory Kubernetes API server simulator (plain HTTP on 127.0.0.1)")]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write a kubeconfig pointing at the simulator.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Directory of CRD (or any) YAML manifests to apply before serving.
    #[arg(long)]
    crds: Option<PathBuf>,
    /// Stop by itself after this many seconds.
    #[arg(long)]
    exit_after_seconds: Option<u64>,
}

fn manifests_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    Ok(files)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let sim = KubeSim::start_on_port(args.port).await?;
    if let Some(dir) = &args.crds {
        for file in manifests_in(dir)? {
            let text = std::fs::read_to_string(&file)?;
            sim.apply_yaml(&text)
                .map_err(|e| format!("applying {}: {e}", file.display()))?;
            println!("applied {}", file.display());
        }
    }
    sim.write_kubeconfig(&args.kubeconfig)?;
    println!("kube-sim listening on {}", sim.url());
    println!("kubeconfig written to {}", args.kubeconfig.display());
    let stop_after = args
        .exit_after_seconds
        .map_or(Duration::MAX, Duration::from_secs);
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal?,
        () = tokio::time::sleep(stop_after) => println!("exiting after {}s", stop_after.as_secs()),
    }
    sim.shutdown().await;
    Ok(())
}
