//! The project's benchmark: the real `sync-client-operator` binary (release build) against the
//! Kubernetes API simulator and the broker simulator, both in this process on loopback. Each
//! scenario runs with bounded waits; one table at the end lists every figure with its target.
//!
//! `make bench` (or `cargo build --release --bin sync-client-operator && cargo run --release
//! --example scale -- [--credentials 10000] [--scenario issue,renew,...]`). See
//! docs/benchmarks.md for the scenarios, the figures and how each is measured.
//!
//! Scenarios (`--scenario`, comma separated; default all):
//! - `issue-small`: N/10 first issues on their own (the linearity reference);
//! - `issue`: N first issues: time until all Ready, memory, calls per issuance;
//! - `renew`: every credential renews once (rotate request): calls per renewal;
//! - `idle`: nothing due for `--idle-seconds`: no calls expected;
//! - `restart`: a new operator process takes over the N credentials: ready time, no writes;
//! - `history`: every credential rotated `--history-rounds` (10) times, so every history is
//!   full: the settled RSS, then again `restart` on that world;
//! - `punctuality`: `--punctuality-credentials` with 60-second tokens for
//!   `--punctuality-seconds`: lateness of each renewal, no expired token in any Secret.
//!
//! `renew`, `idle`, `restart` and `history` run on the world `issue` built, in that order, so
//! asking for any of them runs `issue` too.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

#[path = "scale/calls.rs"]
mod calls;
#[path = "scale/process.rs"]
mod process;
#[path = "scale/report.rs"]
mod report;
#[path = "scale/scenarios.rs"]
mod scenarios;
#[path = "scale/tracker.rs"]
mod tracker;
#[path = "scale/world.rs"]
mod world;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use process::{Operator, OperatorSpec};
use report::{Row, Rows};
use world::World;

/// Any failure of the benchmark itself (a wait that timed out, an operator that died).
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Clone, Debug)]
#[command(about = "Benchmarks the sync-client-operator binary against the simulators")]
pub struct Args {
    /// Credentials of the `issue`, `renew`, `idle` and `restart` scenarios (`issue-small`
    /// uses a tenth).
    #[arg(long, default_value_t = 10_000)]
    credentials: usize,
    /// Scenarios to run, comma separated: issue-small, issue, renew, idle, restart, history,
    /// punctuality (default: all).
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Length of the idle scenario.
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
    /// Credentials of the punctuality scenario (default: a tenth of --credentials).
    #[arg(long)]
    punctuality_credentials: Option<usize>,
    /// Length of the punctuality scenario.
    #[arg(long, default_value_t = 180)]
    punctuality_seconds: u64,
    /// The operator binary (default: target/release/sync-client-operator).
    #[arg(long)]
    operator_binary: Option<PathBuf>,
    /// Runs the operator under this command, split on spaces (`heaptrack -o /tmp/heap`).
    #[arg(long)]
    operator_wrapper: Option<String>,
    /// An extra argument for `sync-client-operator run` (repeat it).
    #[arg(long, allow_hyphen_values = true)]
    operator_arg: Vec<String>,
    /// `--min-issue-interval` of the operator: tokens here live one minute to an hour.
    #[arg(long, default_value = "1s")]
    min_issue_interval: String,
    /// End the operator of the N world with SIGKILL (not SIGTERM) and wait up to 10 minutes
    /// for its wrapper: under heaptrack, what is still allocated then is the settled state.
    #[arg(long)]
    end_with_sigkill: bool,
    /// Create the `issue` credentials in batches of this many, each batch Ready before the
    /// next (a setup for heaptrack runs; the issue time is then not the target's).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Rotate requests of the `renew` scenario go out in batches of this many.
    #[arg(long, default_value_t = 1000)]
    renew_batch_size: usize,
    /// Rotations of every credential in the `history` scenario.
    #[arg(long, default_value_t = 10)]
    history_rounds: usize,
    /// Longest wait for `n` credentials in a scenario: 60 s plus this many ms per credential.
    #[arg(long, default_value_t = 30)]
    timeout_ms_per_credential: u64,
    /// When the issue scenario misses its bound, how long it may still take to finish so that
    /// renew, idle and restart can run (not measured).
    #[arg(long, default_value_t = 1800)]
    setup_limit_seconds: u64,
    /// Print the table as Markdown too.
    #[arg(long)]
    markdown: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    IssueSmall,
    Issue,
    Renew,
    Idle,
    Restart,
    History,
    Punctuality,
}

impl Args {
    fn runs(&self, scenario: Scenario) -> bool {
        self.scenario.is_empty() || self.scenario.contains(&scenario)
    }

    fn small(&self) -> usize {
        (self.credentials / 10).max(1)
    }

    pub fn punctuality_credentials(&self) -> usize {
        self.punctuality_credentials.unwrap_or_else(|| self.small())
    }
}

/// What every scenario shares.
pub struct Bench {
    pub args: Args,
    pub spec: OperatorSpec,
}

impl Bench {
    /// The longest wait for `n` credentials to reach a state (bounded, generous: the
    /// figure is the time it took, this only ends a run that is stuck).
    pub fn timeout(&self, n: usize) -> Duration {
        Duration::from_secs(60)
            + Duration::from_millis(self.args.timeout_ms_per_credential)
                * u32::try_from(n).unwrap_or(u32::MAX)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    let binary = args.operator_binary.clone().unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")),
            PathBuf::from,
        );
        target.join("release/sync-client-operator")
    });
    let bench = Bench {
        spec: OperatorSpec {
            binary,
            wrapper: args
                .operator_wrapper
                .as_deref()
                .map(|w| w.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            extra_args: args.operator_arg.clone(),
            min_issue_interval: args.min_issue_interval.clone(),
        },
        args,
    };
    let mut all: Vec<Row> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut times = (None, None);

    if bench.args.runs(Scenario::IssueSmall) {
        let n = bench.args.small();
        let mut rows = Rows::new(format!("issue-{n}"));
        eprintln!("[bench] issue-small: {n} credentials");
        match issue_world(&bench, n, &mut rows).await {
            Ok(t) => times.0 = Some(t),
            Err(e) => failures.push(format!("issue-small: {e}")),
        }
        all.extend(rows.rows);
    }
    let big = [
        Scenario::Issue,
        Scenario::Renew,
        Scenario::Idle,
        Scenario::Restart,
        Scenario::History,
    ];
    if big.iter().any(|s| bench.args.runs(*s)) {
        times.1 = big_world(&bench, &mut all, &mut failures).await;
    }
    if let (Some(small), Some(large)) = times {
        let mut rows = Rows::new("linearity");
        let ratio = large / small;
        rows.target(
            format!(
                "time ratio {} / {}",
                bench.args.credentials,
                bench.args.small()
            ),
            format!("{ratio:.1}"),
            "≤ 11",
            Some(ratio <= 11.0),
        );
        all.extend(rows.rows);
    }
    if bench.args.runs(Scenario::Punctuality) {
        let mut rows = Rows::new(format!(
            "punctuality-{}",
            bench.args.punctuality_credentials()
        ));
        eprintln!("[bench] punctuality");
        if let Err(e) = punctuality_world(&bench, &mut rows).await {
            failures.push(format!("punctuality: {e}"));
        }
        all.extend(rows.rows);
    }

    println!("{}", report::text(&all));
    if bench.args.markdown {
        println!("{}", report::markdown(&all));
    }
    let missed = all.iter().filter(|r| r.met == report::Met::No).count();
    println!("{missed} target(s) not met.");
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for failure in &failures {
            eprintln!("[bench] FAILED {failure}");
        }
        ExitCode::FAILURE
    }
}

async fn issue_world(bench: &Bench, n: usize, rows: &mut Rows) -> Result<f64, Failure> {
    let mut world = World::start("small", Duration::from_secs(60)).await?;
    let result = async {
        let mut operator = scenarios::start_operator(bench, &world, "op-small").await?;
        scenarios::issue(bench, &mut world, &mut operator, n, rows).await
    }
    .await;
    world.shutdown().await;
    result
}

/// issue, then renew, idle and restart on the same world. Returns the issue time.
async fn big_world(bench: &Bench, all: &mut Vec<Row>, failures: &mut Vec<String>) -> Option<f64> {
    let n = bench.args.credentials;
    let mut world = match World::start("large", Duration::from_secs(60)).await {
        Ok(world) => world,
        Err(e) => {
            failures.push(format!("starting the simulators: {e}"));
            return None;
        }
    };
    let mut issue_time = None;
    let mut operator = None;
    let outcome = big_scenarios(bench, &mut world, all, &mut issue_time, &mut operator).await;
    if let Err(e) = outcome {
        failures.push(e.to_string());
    }
    if let Some(mut operator) = operator {
        end_operator(bench, &mut operator);
    }
    world.shutdown().await;
    eprintln!("[bench] world of {n} done");
    issue_time
}

async fn big_scenarios(
    bench: &Bench,
    world: &mut World,
    all: &mut Vec<Row>,
    issue_time: &mut Option<f64>,
    slot: &mut Option<Operator>,
) -> Result<(), Failure> {
    let n = bench.args.credentials;
    let operator = slot.insert(scenarios::start_operator(bench, world, "op").await?);
    eprintln!("[bench] issue: {n} credentials");
    let mut rows = Rows::new(format!("issue-{n}"));
    let result = scenarios::issue(bench, world, operator, n, &mut rows).await;
    all.append(&mut rows.rows);
    *issue_time = Some(result.map_err(|e| format!("issue: {e}"))?);
    if bench.args.runs(Scenario::Renew) {
        eprintln!("[bench] renew");
        let mut rows = Rows::new(format!("renew-{n}"));
        let result = scenarios::renew(bench, world, operator, &mut rows).await;
        all.append(&mut rows.rows);
        result.map_err(|e| format!("renew: {e}"))?;
    }
    if bench.args.runs(Scenario::Idle) {
        eprintln!("[bench] idle: {} s", bench.args.idle_seconds);
        let mut rows = Rows::new(format!("idle-{n}"));
        let result = scenarios::idle(bench, world, operator, &mut rows).await;
        all.append(&mut rows.rows);
        result.map_err(|e| format!("idle: {e}"))?;
    }
    let (logins, fetches) = world.session_calls();
    let mut rows = Rows::new(format!("sessions-{n}"));
    rows.target(
        "vCenter logins (one operator, all of the above)",
        logins.to_string(),
        "1 per broker per token lifetime",
        Some(logins == 1),
    );
    rows.target(
        "broker-token fetches (one operator, all of the above)",
        fetches.to_string(),
        "1 per broker per token lifetime",
        Some(fetches == 1),
    );
    all.append(&mut rows.rows);
    if bench.args.runs(Scenario::Restart) {
        eprintln!("[bench] restart");
        let mut rows = Rows::new(format!("restart-{n}"));
        let result = scenarios::restart(bench, world, operator, &mut rows).await;
        all.append(&mut rows.rows);
        *slot = Some(result.map_err(|e| format!("restart: {e}"))?);
    }
    if bench.args.runs(Scenario::History) {
        eprintln!(
            "[bench] history: {} rotations each",
            bench.args.history_rounds
        );
        let operator = slot.as_mut().ok_or("no operator")?;
        let mut rows = Rows::new(format!("history-{n}"));
        let result = scenarios::full_history(bench, world, operator, &mut rows).await;
        all.append(&mut rows.rows);
        result.map_err(|e| format!("history: {e}"))?;
        eprintln!("[bench] restart on full histories");
        let mut rows = Rows::new(format!("history-restart-{n}"));
        let result = scenarios::restart(bench, world, operator, &mut rows).await;
        all.append(&mut rows.rows);
        *slot = Some(result.map_err(|e| format!("restart on full histories: {e}"))?);
    }
    Ok(())
}

fn end_operator(bench: &Bench, operator: &mut Operator) {
    if bench.args.end_with_sigkill {
        let waited = operator.kill_and_wait(Duration::from_secs(600));
        eprintln!(
            "[bench] operator ended with SIGKILL; its wrapper exited after {:.1} s",
            waited.as_secs_f64()
        );
    } else {
        let (clean, took) = operator.terminate(Duration::from_secs(60));
        eprintln!(
            "[bench] operator stopped with SIGTERM in {:.1} s ({})",
            took.as_secs_f64(),
            if clean { "exit 0" } else { "not a clean exit" }
        );
    }
}

async fn punctuality_world(bench: &Bench, rows: &mut Rows) -> Result<(), Failure> {
    // One broker minute is one minute: `tokenTTL: 1m` is a 60-second token.
    let mut world = World::start("punctuality", Duration::from_secs(60)).await?;
    let result = async {
        let mut operator = scenarios::start_operator(bench, &world, "op-punctual").await?;
        let result = scenarios::punctuality(bench, &mut world, &mut operator, rows).await;
        end_operator(bench, &mut operator);
        result
    }
    .await;
    world.shutdown().await;
    result
}
