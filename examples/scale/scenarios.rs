//! The scenarios. Each runs against one world, with bounded waits, and adds its rows.

use std::time::{Duration, Instant};

use chrono::Utc;
use sync_client_broker_sim::Endpoint;
use sync_client_operator::api::MAX_HISTORY;

use crate::calls::{BrokerCalls, KubeCalls};
use crate::process::{Operator, cpu_seconds_of};
use crate::report::{Rows, kib_per, mib, per};
use crate::world::{NAMESPACE, World};
use crate::{Bench, Failure};

/// The reference size the targets are stated for.
pub const REFERENCE_N: usize = 10_000;
const QUIET: Duration = Duration::from_secs(2);

/// CPU seconds of the operator and of this process (the simulators), from a starting point.
struct Cpu {
    operator: Option<f64>,
    simulators: Option<f64>,
}

impl Cpu {
    fn mark(operator: &Operator) -> Self {
        Self {
            operator: operator.cpu_seconds(),
            simulators: cpu_seconds_of("self"),
        }
    }

    fn rows(&self, operator: &Operator, rows: &mut Rows) {
        let spent = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(b), Some(a)) => format!("{:.1} s", a - b),
            _ => "unknown".to_owned(),
        };
        rows.info(
            "operator CPU time",
            spent(self.operator, operator.cpu_seconds()),
        );
        rows.info(
            "simulators + benchmark CPU time",
            spent(self.simulators, cpu_seconds_of("self")),
        );
    }
}

/// Seconds with two significant decimals below 10 s.
fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

fn kib_text(kib: Option<u64>) -> String {
    kib.map_or_else(|| "unknown".into(), |k| format!("{:.1} MiB", mib(k)))
}

/// Starts an operator and waits until it is ready and its start-up requests are over.
pub async fn start_operator(bench: &Bench, world: &World, name: &str) -> Result<Operator, Failure> {
    let mut operator = Operator::spawn(&bench.spec, &world.kubeconfig, &world.dir, name)?;
    operator.wait_ready(Duration::from_secs(60)).await?;
    world.quiesce(QUIET, Duration::from_secs(30)).await;
    Ok(operator)
}

/// Issues `n` first credentials with a running, idle operator; adds the figures. Returns the
/// time until all were Ready. When that takes longer than the bound, the figures so far are
/// reported (NOT MET) and the world is still brought to all Ready (bounded by the setup limit)
/// so that the scenarios after it can run.
pub async fn issue(
    bench: &Bench,
    world: &mut World,
    operator: &mut Operator,
    n: usize,
    rows: &mut Rows,
) -> Result<f64, Failure> {
    let baseline = operator.rss_kib();
    world.clear_logs();
    let cpu = Cpu::mark(operator);
    let started = Instant::now();
    let mut progress = Progress::default();
    let batch = bench.args.batch_size.filter(|b| *b > 0 && *b < n);
    if let Some(batch) = batch {
        while world.credentials < n {
            world
                .add_credentials(batch.min(n - world.credentials), 60)
                .await?;
            let want = world.credentials;
            world
                .wait_for(
                    "batch Ready",
                    bench.timeout(batch),
                    |s| s.count_current(1, None),
                    want,
                )
                .await
                .map_err(|e| operator.died(&e.to_string()))?;
        }
    } else {
        world.add_credentials(n, 60).await?;
    }
    let created = started.elapsed();
    let reached = progress
        .follow(world, bench.timeout(n), started, n, |s| {
            s.count_current(1, None)
        })
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let target = 20.0 * per(n, REFERENCE_N);
    let how = batch.map_or_else(String::new, |b| format!(" (in batches of {b})"));
    rows.target(
        format!("time until all Ready{how}"),
        if reached {
            secs(elapsed)
        } else {
            format!("not within {}", secs(elapsed))
        },
        format!("≤ {} (20 s at 10,000, linear)", secs(target)),
        Some(reached && elapsed <= target),
    );
    if batch.is_none() {
        progress.rows(rows, n);
        rows.info(
            "credentials created in-process (within that time)",
            secs(created.as_secs_f64()),
        );
    }
    let ready_now = world.tracker.lock().count_current(1, None);
    rows.info(
        "first issues per second",
        format!("{:.0}", per(ready_now, 1) / elapsed),
    );
    let quiet = reached && world.quiesce(QUIET, Duration::from_secs(60)).await;
    let settled = operator.rss_kib();
    let calls = KubeCalls::of(&world.operator_requests());
    let broker = BrokerCalls::of(&world.broker);
    memory_rows(
        rows,
        baseline,
        settled.filter(|_| reached),
        operator.hwm_kib(),
        n,
    );
    per_issue_rows(
        rows,
        &calls,
        &broker,
        ready_now,
        "first issuance",
        6.0,
        reached,
    );
    rows.info(
        "operator list / watch requests meanwhile (re-lists)",
        format!("{} / {}", calls.lists(), calls.watches()),
    );
    cpu.rows(operator, rows);
    if reached && !quiet {
        rows.info("quiet afterwards", "no: requests went on for 60 s");
    }
    if !reached {
        // Not measured any more: only so that renew, idle and restart can run on this world.
        world
            .wait_for(
                "credentials Ready (setup for the next scenarios)",
                Duration::from_secs(bench.args.setup_limit_seconds),
                |s| s.count_current(1, None),
                n,
            )
            .await
            .map_err(|e| operator.died(&e.to_string()))?;
        world.quiesce(QUIET, Duration::from_secs(60)).await;
        let total = started.elapsed().as_secs_f64();
        rows.info("all Ready in the end after", secs(total));
    }
    Ok(elapsed)
}

/// How many were done over time: at the target time and in each half of the run, to show
/// whether the rate holds up as the run goes on.
#[derive(Default)]
struct Progress {
    samples: Vec<(f64, usize)>,
}

impl Progress {
    /// Samples every 500 ms until `count` reaches `want` or `timeout`; true when reached.
    async fn follow(
        &mut self,
        world: &World,
        timeout: Duration,
        started: Instant,
        want: usize,
        count: impl Fn(&crate::tracker::State) -> usize,
    ) -> bool {
        loop {
            let done = count(&world.tracker.lock());
            self.samples.push((started.elapsed().as_secs_f64(), done));
            if done >= want {
                return true;
            }
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn at(&self, t: f64) -> usize {
        self.samples
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |(_, n)| *n)
    }

    fn rows(&self, rows: &mut Rows, n: usize) {
        let Some(&(end, done)) = self.samples.last() else {
            return;
        };
        let at20 = 20.0 * per(n, REFERENCE_N).max(0.1);
        rows.info(
            format!("Ready after {}", secs(at20)),
            format!("{}/{n}", self.at(at20)),
        );
        let half = end / 2.0;
        let first = self.at(half);
        rows.info(
            "rate in the first / second half of the run",
            format!(
                "{:.0} / {:.0} per s",
                per(first, 1) / half.max(0.001),
                per(done.saturating_sub(first), 1) / (end - half).max(0.001)
            ),
        );
    }
}

fn memory_rows(
    rows: &mut Rows,
    baseline: Option<u64>,
    settled: Option<u64>,
    peak: Option<u64>,
    n: usize,
) {
    let at_reference = n >= REFERENCE_N;
    rows.info("operator RSS idle, no credentials", kib_text(baseline));
    rss_target(rows, "operator RSS settled", settled, n);
    rows.info("operator peak RSS (VmHWM)", kib_text(peak));
    if let (Some(base), Some(now)) = (baseline, settled) {
        let each = kib_per(now.saturating_sub(base), n);
        // Like the settled RSS, judged at the reference size: at smaller sizes the connection
        // buffers and in-flight reconciles (bounded by concurrency, not by N) dominate.
        rows.target(
            "RSS per credential above idle",
            format!("{each:.1} KiB"),
            "≤ 8 KiB at 10,000",
            Some(each <= 8.0).filter(|_| at_reference),
        );
    }
}

fn per_issue_rows(
    rows: &mut Rows,
    calls: &KubeCalls,
    broker: &BrokerCalls,
    n: usize,
    unit: &str,
    target: f64,
    exact: bool,
) {
    let each = per(calls.for_issues(), n);
    // The first token through the broker is probed once; recording that probe costs a status
    // patch and a read, once per broker rather than per credential. Over a time window, a
    // renewal at each edge is counted in part (its reads in, its writes out, or the reverse).
    let edge_renewals = if exact { 0 } else { 2 };
    let met = per(calls.for_issues().saturating_sub(2), n + edge_renewals) <= target;
    let allowance = if exact {
        "+ 2 per broker for its first probe"
    } else {
        "+ 2 per broker for its first probe, + 1 renewal at each edge of the window"
    };
    rows.target(
        format!("Kubernetes calls per {unit}"),
        format!(
            "{each:.2} ({} calls, {} dry runs)",
            calls.for_issues(),
            calls.dry_runs()
        ),
        format!("≤ {target:.0} (events and dry runs included; {allowance})"),
        Some(met),
    );
    calls.breakdown(rows, unit, n);
    let generates = broker.get(Endpoint::Generate);
    let each = per(broker.credential_calls(), n);
    // Over a time window (not a set of credentials) an issue may straddle its start or end.
    // The first token through a broker is probed once, to learn whether its probe can be
    // believed: one probe per broker (the world has one), not per credential.
    let probes = broker.get(Endpoint::ScimProbe);
    let met = if exact {
        generates == n && probes <= 1 && broker.credential_calls() == n + probes
    } else {
        (per(generates, n) - 1.0).abs() <= 0.01 && broker.credential_calls() == generates + probes
    };
    rows.target(
        format!("broker calls per {unit} (generate, read, probe)"),
        format!("{each:.3}"),
        if exact {
            "1 generate each; 1 probe per broker"
        } else {
            "1 generate (±1% at the window's edges); probes once per broker and verifyInterval"
        },
        Some(met),
    );
    rows.info("broker calls", broker.breakdown());
}

/// Asks every credential to rotate (rotate request `value`), `batch` at a time, each batch
/// served before the next.
async fn rotate_all(
    bench: &Bench,
    world: &World,
    operator: &Operator,
    value: &str,
    batch: usize,
) -> Result<(), Failure> {
    let n = world.credentials;
    let batch = batch.clamp(1, n.max(1));
    let mut asked = 0;
    while asked < n {
        let next = (asked + batch).min(n);
        world.request_rotation(value, asked..next).await?;
        asked = next;
        world
            .wait_for(
                "credentials renewed for the rotate request",
                bench.timeout(batch),
                |s| s.count_current(2, Some(value)),
                asked,
            )
            .await
            .map_err(|e| operator.died(&e.to_string()))?;
    }
    Ok(())
}

/// Every credential renews once (a new rotate-request value on each).
pub async fn renew(
    bench: &Bench,
    world: &World,
    operator: &Operator,
    rows: &mut Rows,
) -> Result<(), Failure> {
    let n = world.credentials;
    world.clear_logs();
    let cpu = Cpu::mark(operator);
    let started = Instant::now();
    let batch = bench.args.renew_batch_size.clamp(1, n.max(1));
    rotate_all(bench, world, operator, "bench-renew", batch).await?;
    let elapsed = started.elapsed().as_secs_f64();
    world.quiesce(QUIET, Duration::from_secs(60)).await;
    let calls = KubeCalls::of(&world.operator_requests());
    let broker = BrokerCalls::of(&world.broker);
    rows.info(
        format!("time until all renewed (rotate requests in batches of {batch})"),
        secs(elapsed),
    );
    // One dry run of the Secret write before each generate (a refused write is found before
    // the mint revokes the working token): 6 calls, one more than a renewal without it.
    per_issue_rows(rows, &calls, &broker, n, "renewal", 6.0, true);
    rows.info("operator RSS after renewal", kib_text(operator.rss_kib()));
    cpu.rows(operator, rows);
    Ok(())
}

/// Nothing is due: the operator should make no call at all besides its watches.
pub async fn idle(
    bench: &Bench,
    world: &World,
    operator: &Operator,
    rows: &mut Rows,
) -> Result<(), Failure> {
    world.quiesce(QUIET, Duration::from_secs(60)).await;
    world.clear_logs();
    let cpu = Cpu::mark(operator);
    tokio::time::sleep(Duration::from_secs(bench.args.idle_seconds)).await;
    let calls = KubeCalls::of(&world.operator_requests());
    let broker = BrokerCalls::of(&world.broker);
    let seconds = bench.args.idle_seconds;
    rows.target(
        format!("Kubernetes calls besides watches in {seconds} s"),
        calls.non_watch().to_string(),
        "0",
        Some(calls.non_watch() == 0),
    );
    calls.breakdown(rows, "idle run", 1);
    rows.info("watch requests (re-watches)", calls.watches().to_string());
    rows.target(
        format!("broker calls in {seconds} s"),
        broker.total().to_string(),
        "0",
        Some(broker.total() == 0),
    );
    let settled = format!(
        "operator RSS settled with {} credentials",
        world.credentials
    );
    settled_rows(rows, &settled, operator, world.credentials, &cpu);
    Ok(())
}

/// Every credential rotated `--history-rounds` times (each round asks all of them at once), so
/// that every history holds its most attempts; then the operator's RSS, settled.
pub async fn full_history(
    bench: &Bench,
    world: &World,
    operator: &Operator,
    rows: &mut Rows,
) -> Result<(), Failure> {
    let n = world.credentials;
    let rounds = bench.args.history_rounds;
    let cpu = Cpu::mark(operator);
    let started = Instant::now();
    for round in 1..=rounds {
        rotate_all(bench, world, operator, &format!("bench-history-{round}"), n).await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    world.quiesce(QUIET, Duration::from_secs(60)).await;
    rows.info(
        format!("time until every credential rotated {rounds} times (all at once each time)"),
        secs(elapsed),
    );
    let full = world
        .kube
        .list(
            "syncclient.io/v1alpha1",
            "syncclientcredentials",
            Some(NAMESPACE),
        )
        .iter()
        .filter(|cr| {
            cr.pointer("/status/history")
                .and_then(|h| h.as_array())
                .is_some_and(|h| h.len() == MAX_HISTORY)
        })
        .count();
    rows.target(
        format!("credentials whose history holds {MAX_HISTORY} attempts"),
        format!("{full}/{n}"),
        "all",
        Some(full == n),
    );
    settled_rows(
        rows,
        "operator RSS settled with every history full",
        operator,
        n,
        &cpu,
    );
    Ok(())
}

/// A new operator process takes over the issued world: it must issue and write nothing.
pub async fn restart(
    bench: &Bench,
    world: &World,
    previous: &mut Operator,
    rows: &mut Rows,
) -> Result<Operator, Failure> {
    let n = world.credentials;
    let (clean, stopped_in) = previous.terminate(Duration::from_secs(60));
    rows.info(
        "previous operator: SIGTERM to exit",
        format!(
            "{:.1} s ({})",
            stopped_in.as_secs_f64(),
            if clean { "exit 0" } else { "NOT a clean exit" }
        ),
    );
    world.clear_logs();
    let mut operator = Operator::spawn(&bench.spec, &world.kubeconfig, &world.dir, "op-restarted")?;
    let ready_in = operator.wait_ready(Duration::from_secs(120)).await?;
    let target = 10.0;
    rows.target(
        "time until /readyz 200",
        format!("{:.1} s", ready_in.as_secs_f64()),
        format!("≤ {target:.0} s"),
        Some(ready_in.as_secs_f64() <= target),
    );
    // Give the restarted operator time to look at every credential, then until it is quiet.
    tokio::time::sleep(Duration::from_secs(5)).await;
    world
        .quiesce(Duration::from_secs(3), bench.timeout(n))
        .await;
    let calls = KubeCalls::of(&world.operator_requests());
    let broker = BrokerCalls::of(&world.broker);
    rows.target(
        "generates after restart",
        broker.get(Endpoint::Generate).to_string(),
        "0",
        Some(broker.get(Endpoint::Generate) == 0),
    );
    rows.target(
        "Kubernetes writes after restart (dry runs and events included)",
        (calls.real_writes() + calls.dry_runs()).to_string(),
        "0",
        Some(calls.real_writes() + calls.dry_runs() == 0),
    );
    rows.info(
        "Kubernetes calls per credential at restart",
        format!("{:.2}", per(calls.non_watch(), n)),
    );
    calls.breakdown(rows, "credential", n);
    rows.info("broker calls at restart", broker.breakdown());
    let still = world.tracker.lock().count_current(1, None);
    rows.target(
        "credentials still Ready",
        format!("{still}/{n}"),
        "all",
        Some(still == n),
    );
    rss_target(
        rows,
        "restarted operator RSS settled",
        operator.rss_kib(),
        n,
    );
    Ok(operator)
}

/// Lateness figures of the punctuality run.
struct Lateness {
    upper_ms: Vec<i64>,
    lower_ms: Vec<i64>,
    unplanned: usize,
    expired_on_replace: usize,
    skipped: i64,
}

fn lateness(world: &World) -> (usize, Lateness) {
    let state = world.tracker.lock();
    let mut figures = Lateness {
        upper_ms: Vec::new(),
        lower_ms: Vec::new(),
        unplanned: 0,
        expired_on_replace: 0,
        skipped: 0,
    };
    for t in &state.transitions {
        figures.skipped += t.skipped;
        if t.previous_expiry.is_some_and(|exp| t.seen_at > exp) {
            figures.expired_on_replace += 1;
        }
        let Some(planned) = t.planned else {
            figures.unplanned += 1;
            continue;
        };
        figures
            .upper_ms
            .push((t.seen_at - planned).num_milliseconds());
        if let Some(issued) = t.issued_at {
            figures.lower_ms.push((issued - planned).num_milliseconds());
        }
    }
    figures.upper_ms.sort_unstable();
    figures.lower_ms.sort_unstable();
    (state.transitions.len(), figures)
}

fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn seconds(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "none".to_owned(),
        |ms| {
            format!(
                "{}{}.{:02} s",
                if ms < 0 { "-" } else { "" },
                ms.abs() / 1000,
                ms.abs() % 1000 / 10
            )
        },
    )
}

/// Samples the Secrets (in-process) every second for `window`: how many samples found a Secret
/// whose `expires-at` had passed. Stops early when the operator dies.
async fn sample_expiry(
    world: &World,
    operator: &mut Operator,
    window: Duration,
) -> Result<(usize, usize), Failure> {
    let started = Instant::now();
    let (mut samples, mut expired) = (0, 0);
    while started.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !operator.alive() {
            return Err(operator.died("the operator exited during the punctuality run"));
        }
        let now = Utc::now();
        for secret in world.kube.list("v1", "secrets", Some(NAMESPACE)) {
            let expiry = secret
                .pointer("/metadata/annotations/syncclient.io~1expires-at")
                .and_then(|v| v.as_str())
                .and_then(crate::tracker::parse_time);
            samples += 1;
            if expiry.is_some_and(|at| at <= now) {
                expired += 1;
            }
        }
    }
    Ok((samples, expired))
}

/// Credentials with 60-second tokens renew continuously; how late is each renewal?
pub async fn punctuality(
    bench: &Bench,
    world: &mut World,
    operator: &mut Operator,
    rows: &mut Rows,
) -> Result<(), Failure> {
    let n = bench.args.punctuality_credentials();
    world.add_credentials(n, 1).await?;
    world
        .wait_for(
            "credentials Ready",
            bench.timeout(n),
            |s| s.count_current(1, None),
            n,
        )
        .await
        .map_err(|e| operator.died(&e.to_string()))?;
    world.clear_logs();
    world.tracker.lock().recording = true;
    let cpu = Cpu::mark(operator);
    let window = Duration::from_secs(bench.args.punctuality_seconds);
    let outcome = sample_expiry(world, operator, window).await;
    world.tracker.lock().recording = false;
    let (samples, expired) = outcome?;
    let calls = KubeCalls::of(&world.operator_requests());
    let broker = BrokerCalls::of(&world.broker);
    let (renewals, late) = lateness(world);

    rows.info(
        format!("renewals in {} s", window.as_secs()),
        format!("{renewals} ({n} credentials)"),
    );
    let p99 = percentile(&late.upper_ms, 99);
    rows.target(
        "lateness p99 (seen written minus planned)",
        seconds(p99),
        "< 1 s",
        p99.map(|ms| ms < 1000),
    );
    rows.info(
        "lateness p50 / max (seen written minus planned)",
        format!(
            "{} / {}",
            seconds(percentile(&late.upper_ms, 50)),
            seconds(late.upper_ms.last().copied())
        ),
    );
    rows.info(
        "lateness p50 / p99 by issued-at (rounded down: a lower bound)",
        format!(
            "{} / {}",
            seconds(percentile(&late.lower_ms, 50)),
            seconds(percentile(&late.lower_ms, 99))
        ),
    );
    if late.skipped > 0 {
        rows.info(
            "revisions the benchmark's watch did not see",
            late.skipped.to_string(),
        );
    }
    if late.unplanned > 0 {
        rows.info(
            "renewals without a seen planned time",
            late.unplanned.to_string(),
        );
    }
    rows.target(
        "tokens replaced after they expired",
        late.expired_on_replace.to_string(),
        "0",
        Some(late.expired_on_replace == 0),
    );
    rows.target(
        "sampled Secrets holding an expired token",
        format!("{expired} of {samples}"),
        "0",
        Some(expired == 0),
    );
    per_issue_rows(
        rows,
        &calls,
        &broker,
        renewals.max(1),
        "scheduled renewal",
        6.0,
        false,
    );
    cpu.rows(operator, rows);
    Ok(())
}

/// A settled RSS against the memory target, judged at the reference size only.
fn rss_target(rows: &mut Rows, figure: &str, settled: Option<u64>, n: usize) {
    rows.target(
        figure,
        kib_text(settled),
        "≤ 96 MiB at 10,000 (stretch 64)",
        settled.filter(|_| n >= REFERENCE_N).map(|k| mib(k) <= 96.0),
    );
}

/// The end of a scenario that leaves the operator running: its settled RSS against the target,
/// its peak, and the CPU time spent since `cpu`.
fn settled_rows(rows: &mut Rows, figure: &str, operator: &Operator, n: usize, cpu: &Cpu) {
    rss_target(rows, figure, operator.rss_kib(), n);
    rows.info(
        "operator peak RSS so far (VmHWM)",
        kib_text(operator.hwm_kib()),
    );
    cpu.rows(operator, rows);
}
