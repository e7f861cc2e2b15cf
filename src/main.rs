//! Wires the operator together: command line, logging, Kubernetes client, the controllers and
//! the HTTP server, running side by side until a termination signal.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use futures::FutureExt;
use sync_client_operator::controller::fence::Fence;
use sync_client_operator::controller::fence::election::{self, ElectionConfig};
use sync_client_operator::controller::{self, Options};
use sync_client_operator::metrics::Metrics;
use sync_client_operator::secret::{FingerprintKey, FingerprintKeys};
use sync_client_operator::{api, http};

/// jemalloc, built with background purging (`.cargo/config.toml`): the memory of a rotation
/// burst goes back to the system within seconds, where glibc's malloc kept it resident.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Rotates VMware identity broker SCIM sync-client credentials into Kubernetes Secrets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions (or write one file each into a directory).
    Crd {
        #[arg(long)]
        output_dir: Vec<PathBuf>,
    },
    /// Run the controllers.
    Run(Box<RunArgs>),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster config).
    #[arg(long, env = "KUBECONFIG_PATH")]
    kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (ClusterIdentityBrokers are then unavailable).
    #[arg(long, env = "WATCH_NAMESPACE", value_parser = non_empty)]
    namespace: Option<String>,
    /// Log format; `auto` is text on a terminal and JSON otherwise.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// File with a key for the Secret data fingerprints (default: a built-in key; the
    /// fingerprint is then a tamper check, not a secret).
    #[arg(long, env = "FINGERPRINT_KEY_FILE")]
    fingerprint_key_file: Option<PathBuf>,
    /// File with a previous fingerprint key, still accepted: Secrets it fingerprinted are
    /// fingerprinted again with the current key, without a new credential. Repeat for several.
    /// To move from the built-in key to your own, give the built-in key
    /// (`sync-client-operator/fingerprint/v1`) as a previous key.
    #[arg(long, env = "FINGERPRINT_PREVIOUS_KEY_FILES", value_delimiter = ',')]
    fingerprint_previous_key_file: Vec<PathBuf>,
    /// Name of this replica, shown in events and used as its lease identity.
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
    /// Rotations through one broker at once, for brokers that set no limits.maxConcurrentRequests.
    #[arg(long, env = "BROKER_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    broker_concurrency: u16,
    /// Reconcile only while holding a Lease, so several replicas can run with one active.
    #[arg(long, env = "LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "LEASE_NAME", default_value = "sync-client-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, then `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Credential reconciles running at once; the rest wait in the queue.
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = controller::DEFAULT_RECONCILE_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024))]
    reconcile_concurrency: u16,
    /// At most one issue per credential per this interval, whatever asks for it (Go duration,
    /// 1s to 1h). Every issue revokes the live credential.
    #[arg(long, env = "MIN_ISSUE_INTERVAL", default_value = "30s", value_parser = issue_interval)]
    min_issue_interval: chrono::TimeDelta,
    /// How long a generate that went unanswered (a timeout, a dropped connection) may still land
    /// at the broker and revoke the credential stored since; the stored token is checked once
    /// this has passed since the attempt (Go duration, 10s to 1h).
    #[arg(long, env = "UNKNOWN_OUTCOME_WINDOW", default_value = "5m", value_parser = outcome_window)]
    unknown_outcome_window: chrono::TimeDelta,
    /// The projected ServiceAccount token (audience `api://AzureADTokenExchange`) a
    /// ClusterEntraConnection with `workloadIdentity` signs in with.
    #[arg(long, env = "AZURE_FEDERATED_TOKEN_FILE", default_value = sync_client_operator::controller::entra::DEFAULT_WORKLOAD_IDENTITY_TOKEN_FILE)]
    workload_identity_token_file: PathBuf,
    /// Seconds a leader's claim is valid without renewal; a standby takes over after this.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    lease_duration_seconds: u64,
    /// A leader whose renewals fail counts itself deposed this many seconds before a standby may
    /// take over, and issues nothing more; below --lease-duration-seconds (default: a third of
    /// it, at least 1).
    #[arg(long, env = "LEASE_RENEW_GRACE_SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    lease_renew_grace_seconds: Option<u64>,
    /// Longest time one issue may take, from the vCenter login to the broker's answer, retry
    /// included (Go duration, 5s to 10m). A new leader waits this long before its first issue, and
    /// a stop waits this long plus 15 s for running issues.
    #[arg(long, env = "ISSUE_DEADLINE", default_value = "60s", value_parser = issue_deadline)]
    issue_deadline: std::time::Duration,
}

impl RunArgs {
    /// The renewal grace: the flag's, or a third of the lease duration (at least 1). It must be
    /// below the lease duration (a leader would count itself deposed at once), so a larger one
    /// is refused.
    fn renew_grace_seconds(&self) -> Result<u64, String> {
        let lease = self.lease_duration_seconds;
        match self.lease_renew_grace_seconds {
            None => Ok((lease / 3).max(1)),
            Some(grace) if grace < lease => Ok(grace),
            Some(grace) => Err(format!(
                "--lease-renew-grace-seconds ({grace}) must be below --lease-duration-seconds ({lease})"
            )),
        }
    }
}

fn issue_deadline(value: &str) -> Result<std::time::Duration, String> {
    let deadline = sync_client_operator::duration::parse(value).map_err(|e| e.to_string())?;
    if deadline < chrono::TimeDelta::seconds(5) || deadline > chrono::TimeDelta::minutes(10) {
        return Err("must be between 5s and 10m".into());
    }
    deadline.to_std().map_err(|e| e.to_string())
}

fn issue_interval(value: &str) -> Result<chrono::TimeDelta, String> {
    let interval = sync_client_operator::duration::parse(value).map_err(|e| e.to_string())?;
    if interval < chrono::TimeDelta::seconds(1) || interval > chrono::TimeDelta::hours(1) {
        return Err("must be between 1s and 1h".into());
    }
    Ok(interval)
}

fn outcome_window(value: &str) -> Result<chrono::TimeDelta, String> {
    let window = sync_client_operator::duration::parse(value).map_err(|e| e.to_string())?;
    if window < chrono::TimeDelta::seconds(10) || window > chrono::TimeDelta::hours(1) {
        return Err("must be between 10s and 1h".into());
    }
    Ok(window)
}

fn non_empty(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(value.to_owned())
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Auto,
    Json,
    Text,
}

/// Used when no key file is given; keeps fingerprints stable across restarts.
const DEFAULT_FINGERPRINT_KEY: &[u8] = b"sync-client-operator/fingerprint/v1";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { output_dir } => match print_crds(&output_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            if let Err(message) = args.renew_grace_seconds() {
                Cli::command()
                    .error(clap::error::ErrorKind::ArgumentConflict, message)
                    .exit();
            }
            init_logging(args.log_format);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: starting the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "operator failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_crds(output_dirs: &[PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
    let crds = api::crds();
    if output_dirs.is_empty() {
        for crd in &crds {
            print!("{}", api::crd_yaml(crd)?);
        }
        return Ok(());
    }
    for dir in output_dirs {
        std::fs::create_dir_all(dir)?;
        for crd in &crds {
            std::fs::write(dir.join(api::crd_file_name(crd)), api::crd_yaml(crd)?)?;
        }
    }
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().flatten_event(true).init();
        // The default report of a panic is plain text on stderr: in a JSON log it is one more
        // JSON line (a contained reconcile panic is also logged where it is caught).
        std::panic::set_hook(Box::new(|info| {
            tracing::error!(panic = %info, "panicked");
        }));
    } else {
        builder.init();
    }
}

async fn run(args: Box<RunArgs>) -> Result<(), Box<dyn std::error::Error>> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await?
        }
        None => kube::Config::infer().await?,
    };
    let client = kube::Client::try_from(config)?;
    let fingerprint_keys = fingerprint_keys(&args)?;
    let identity = args.instance.clone().unwrap_or_else(default_identity);
    let options = Options {
        namespace: args.namespace.clone(),
        fingerprint_keys,
        instance: Some(identity.clone()),
        default_broker_concurrency: usize::from(args.broker_concurrency),
        min_issue_interval: args.min_issue_interval,
        reconcile_concurrency: args.reconcile_concurrency,
        unknown_outcome_window: args.unknown_outcome_window,
        workload_identity_token_file: args.workload_identity_token_file.clone(),
    };
    let metrics = Arc::new(Metrics::new());
    let shutdown = shutdown_signal().shared();
    let server = tokio::spawn(http::serve(
        args.http_addr,
        metrics.clone(),
        shutdown.clone(),
    ));
    let issue_deadline = args.issue_deadline;
    let result = if args.leader_election {
        let election = ElectionConfig {
            lease_name: args.lease_name.clone(),
            lease_namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            identity,
            lease_duration: std::time::Duration::from_secs(args.lease_duration_seconds),
            renew_grace: std::time::Duration::from_secs(args.renew_grace_seconds()?),
        };
        let standby_metrics = metrics.clone();
        election::run_as_leader(
            client.clone(),
            &election,
            shutdown.clone(),
            // A standby is healthy and ready to take over.
            move || standby_metrics.set_ready(true),
            |stop, lease| {
                controller::run(
                    client,
                    options,
                    metrics,
                    Fence::leader(lease, issue_deadline),
                    stop,
                )
            },
        )
        .await
        .map_err(Into::into)
    } else {
        let fence = Fence::single(issue_deadline);
        controller::run(client, options, metrics, fence, shutdown.clone()).await;
        Ok(())
    };
    if result.is_err() {
        // Stop serving too: the process is about to exit.
        server.abort();
        return result;
    }
    match server.await {
        Ok(outcome) => outcome?,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The current fingerprint key (the file's, else the built-in one) and the previous ones. An
/// empty or unreadable key file stops the operator: a wrong key would re-issue every credential.
fn fingerprint_keys(args: &RunArgs) -> Result<FingerprintKeys, Box<dyn std::error::Error>> {
    let read = |path: &PathBuf| -> Result<FingerprintKey, Box<dyn std::error::Error>> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("reading fingerprint key file {}: {e}", path.display()))?;
        // The bytes as they are (a trailing newline included), as 0.1.0 read them.
        if bytes.trim_ascii().is_empty() {
            return Err(format!("fingerprint key file {} is empty", path.display()).into());
        }
        Ok(FingerprintKey::new(bytes))
    };
    let current = match &args.fingerprint_key_file {
        Some(path) => read(path)?,
        None => FingerprintKey::new(DEFAULT_FINGERPRINT_KEY.to_vec()),
    };
    let mut keys = FingerprintKeys::from(current);
    for path in &args.fingerprint_previous_key_file {
        keys = keys.with_previous(read(path)?);
    }
    Ok(keys)
}

/// A lease identity unique per process when no pod name is given.
fn default_identity() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("sync-client-operator-{}-{nanos:x}", std::process::id())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the operator");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from([&["sync-client-operator", "run"], args].concat())
            .expect("valid arguments");
        match cli.command {
            Command::Run(args) => *args,
            Command::Crd { .. } => panic!("not run"),
        }
    }

    #[test]
    fn renew_grace_defaults_to_a_third_of_the_lease_and_at_least_one_second() {
        assert_eq!(run_args(&[]).renew_grace_seconds(), Ok(5));
        let short = run_args(&["--lease-duration-seconds=3"]);
        assert_eq!(short.renew_grace_seconds(), Ok(1));
        let long = run_args(&["--lease-duration-seconds=300"]);
        assert_eq!(long.renew_grace_seconds(), Ok(100));
    }

    #[test]
    fn renew_grace_is_taken_when_below_the_lease_and_refused_otherwise() {
        let args = run_args(&[
            "--lease-duration-seconds=20",
            "--lease-renew-grace-seconds=19",
        ]);
        assert_eq!(args.renew_grace_seconds(), Ok(19));
        for grace in ["15", "16"] {
            let args = run_args(&["--lease-renew-grace-seconds", grace]);
            assert_eq!(
                args.renew_grace_seconds(),
                Err(format!(
                    "--lease-renew-grace-seconds ({grace}) must be below --lease-duration-seconds (15)"
                ))
            );
        }
        assert!(
            Cli::try_parse_from([
                "sync-client-operator",
                "run",
                "--lease-renew-grace-seconds=0"
            ])
            .is_err()
        );
    }

    /// The memory figures of docs/benchmarks.md depend on the allocator's build configuration
    /// (`.cargo/config.toml`): a build without it keeps every burst resident again.
    #[test]
    fn the_allocator_returns_freed_memory_in_the_background() {
        let conf = tikv_jemalloc_ctl::config::malloc_conf::read().expect("jemalloc answers");
        for option in [
            "background_thread:true",
            "dirty_decay_ms:1000",
            "muzzy_decay_ms:0",
        ] {
            assert!(conf.contains(option), "{option} missing from {conf:?}");
        }
        assert!(tikv_jemalloc_ctl::opt::background_thread::read().expect("jemalloc answers"));
    }
}
