//! Fencing, against the running binary: only the leader mints, and only while it surely leads;
//! the whole generate chain has one deadline, which the shutdown wait follows; a reconcile the
//! fence stops reports nothing.
//!
//! Each replica's generates are counted from its own log (the broker client logs "the guard
//! allows the request; sending it" right before each generate request) and checked against the
//! broker simulator's request log, which misses nothing; times come from the log lines (both
//! processes run on this machine, one wall clock).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sync_client_broker_sim::{Endpoint, Fault, SyncClients};
use sync_client_kube_sim::KubeSim;

use crate::chaos_kit::{Identity, Process, revision_of, wait_for_leader};
use crate::harness::{
    BROKER_NAME, DIRECTORY, Env, WAIT, crd_files, event_reasons, secret_value, token_is_live,
};
use crate::leader::acquired;

/// What the broker client logs right before it sends a generate request.
const SENDING_GENERATE: &str = "the guard allows the request; sending it";
/// What the reconciler logs when the fence refused the generate.
const FENCED: &str = "generate not sent: fenced";

/// The timestamp of a log line: a JSON line's `timestamp`, or the time that starts a text line
/// (ANSI colour codes skipped).
fn line_time(line: &str) -> Option<DateTime<Utc>> {
    if line.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        return DateTime::parse_from_rfc3339(value["timestamp"].as_str()?)
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence `ESC [ ... m`.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    let first = plain.split_whitespace().next()?;
    DateTime::parse_from_rfc3339(first)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The times of the lines of `output` that contain `needle`.
fn times_of(output: &str, needle: &str) -> Vec<DateTime<Utc>> {
    output
        .lines()
        .filter(|line| line.contains(needle))
        .map(|line| line_time(line).unwrap_or_else(|| panic!("no timestamp in {line:?}")))
        .collect()
}

/// Waits (bounded) for the process to exit.
async fn wait_for_exit(env: &Env, process: &mut Process, within: Duration) {
    env.eventually("the process to exit", within, || {
        let exited = process.operator.exited();
        async move { exited.then_some(()) }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 1. A leader whose Lease writes fail

/// What the operator needs besides the lease (the chart's cluster-wide rules).
pub(crate) fn operator_rules() -> serde_json::Value {
    json!([
        {"apiGroups": ["syncclient.io"], "resources": ["syncclientcredentials"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["syncclient.io"], "resources": ["identitybrokers", "clusteridentitybrokers"], "verbs": ["list", "watch"]},
        {"apiGroups": ["syncclient.io"], "resources": ["syncclientcredentials/status", "identitybrokers/status", "clusteridentitybrokers/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "update", "patch"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["patch"]},
    ])
}

/// The API simulator with RBAC on, the CRDs and an IdentityBroker for the broker simulator.
pub(crate) async fn rbac_cluster_with_broker() -> Env {
    let env = crate::incluster::start_cluster().await;
    let kube = env.kube.as_ref().expect("simulator");
    for crd in crd_files() {
        kube.apply_yaml(&std::fs::read_to_string(&crd).expect("crd"))
            .expect("CRD");
    }
    env.create_broker(BROKER_NAME, json!({})).await;
    env
}

/// A ClusterRole `name` with `rules`, bound to the ServiceAccounts `accounts` of `default`
/// (applied again: its rules replaced).
pub(crate) fn bind_cluster_role(
    kube: &KubeSim,
    name: &str,
    accounts: &[&str],
    rules: &serde_json::Value,
) {
    let subjects: Vec<_> = accounts
        .iter()
        .map(|a| json!({"kind": "ServiceAccount", "name": a, "namespace": "default"}))
        .collect();
    let objects = [
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": name}, "rules": rules}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
               "subjects": subjects}),
    ];
    for object in objects {
        kube.apply_yaml(&object.to_string()).expect("RBAC object");
    }
}

/// Each account may do what the operator does; its permission on leases comes from a
/// RoleBinding of its own (`leases-<account>`), which the test can take away.
fn grant(kube: &KubeSim, accounts: &[&str]) {
    bind_cluster_role(kube, "operator", accounts, &operator_rules());
    let leases = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": "leases", "namespace": "default"},
           "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]}]});
    kube.apply_yaml(&leases.to_string()).expect("RBAC object");
    for account in accounts {
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("leases-{account}"), "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leases"},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "default"}]});
        kube.apply_yaml(&binding.to_string())
            .expect("lease binding");
    }
}

/// Credentials renewing every ~4 s each (6-second tokens), one directory each, created 0.7 s
/// apart: one is due about every 0.7 s, so the leader always has one due soon.
const CREDENTIALS: usize = 6;

/// A 6 s lease with the default grace (2 s): the leader counts itself deposed 4 s after its
/// last successful renewal; a standby takes over no earlier than 6 s after it saw that renewal.
/// The shortest issue deadline: a new leader settles 5 s.
const LEASE: &[&str] = &[
    "--leader-election",
    "--lease-namespace",
    "default",
    "--lease-duration-seconds",
    "6",
    "--issue-deadline",
    "5s",
];

fn directory(i: usize) -> String {
    format!("6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e{i:02x}")
}

/// Two replicas, each with its own ServiceAccount, on the simulator with RBAC. Once one leads and
/// renews credentials, its RoleBinding on leases is deleted: its Lease writes fail with 403
/// while all its other calls succeed. The standby takes over; the old leader counts itself
/// deposed `lease duration − grace` (4 s) after its last successful renewal, sends no generate
/// after that, stops and exits with an error. Then the new leader is stopped, so that both logs
/// and the broker's request log are final when compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_lease_writes_fail_mints_nothing_once_the_standby_holds_the_lease() {
    let env = rbac_cluster_with_broker().await;
    let kube = env.kube.as_ref().expect("simulator");
    let accounts = ["replica-a", "replica-b"];
    let ids = accounts.map(|account| Identity::new(&env, account));
    grant(kube, &accounts);
    let mut replicas = [
        ids[0].spawn(&env, "a", LEASE),
        ids[1].spawn(&env, "b", LEASE),
    ];
    let leader = wait_for_leader(&env, &replicas).await;
    let standby = 1 - leader;
    for i in 0..CREDENTIALS {
        env.broker.add_directory(
            &directory(i),
            SyncClients::One {
                generate_token: true,
                token_ttl: 30,
            },
        );
        env.create_credential(
            &format!("app-{i}"),
            json!({"directoryId": directory(i), "tokenTTL": "6m"}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // Steady renewals: every credential issued, then renewed once.
    for i in 0..CREDENTIALS {
        env.wait_for_revision(&format!("app-{i}"), 2).await;
    }

    // Take away the leader's permission on leases.
    kube.delete(
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        Some("default"),
        &format!("leases-{}", accounts[leader]),
    )
    .expect("delete the leader's lease binding");
    let cut = Utc::now();
    env.eventually("the standby to take the lease", WAIT, || async {
        acquired(&replicas[standby].output()).then_some(())
    })
    .await;
    // The new leader settles (5 s), then renews what is due.
    let from = times_of(&replicas[standby].output(), SENDING_GENERATE).len();
    env.eventually("the new leader's generates", WAIT, || async {
        (times_of(&replicas[standby].output(), SENDING_GENERATE).len() >= from + 3).then_some(())
    })
    .await;
    // The old leader stops on its own (else it is stopped here, so that its generates are
    // counted all the same).
    let give_up = Instant::now() + WAIT;
    while !replicas[leader].operator.exited() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exited_on_its_own = replicas[leader].operator.exited();
    for replica in [leader, standby] {
        if !replicas[replica].operator.exited() {
            replicas[replica].signal("TERM");
        }
        wait_for_exit(&env, &mut replicas[replica], WAIT).await;
    }

    let old_log = replicas[leader].output();
    let new_log = replicas[standby].output();
    let takeover = times_of(&new_log, "acquired the lease")[0];
    let old_sends = times_of(&old_log, SENDING_GENERATE);
    let new_sends = times_of(&new_log, SENDING_GENERATE);
    let late_sends: Vec<_> = old_sends.iter().filter(|t| **t >= takeover).collect();
    assert!(
        late_sends.is_empty(),
        "the old leader sent generates after the standby held the lease: {late_sends:?}"
    );
    // Every generate the broker received is in one of the two logs, and the broker's log
    // agrees: the old leader's generates all came first, then only the new leader's, which
    // carried other broker tokens.
    let generates = env.broker.requests();
    let generates: Vec<_> = generates
        .iter()
        .filter(|r| r.endpoint == Endpoint::Generate)
        .collect();
    assert_eq!(
        generates.len(),
        old_sends.len() + new_sends.len(),
        "the logs account for every generate"
    );
    let token = |r: &&sync_client_broker_sim::RecordedRequest| {
        r.header("authorization").unwrap_or_default().to_owned()
    };
    let old_tokens: BTreeSet<String> = generates[..old_sends.len()].iter().map(token).collect();
    let late = generates[old_sends.len()..]
        .iter()
        .filter(|r| old_tokens.contains(&token(r)))
        .count();
    assert_eq!(late, 0, "generates with the old leader's token came last");

    assert!(exited_on_its_own, "the deposed leader stopped by itself");
    assert!(
        old_log.contains("no renewal succeeded for 4s") && old_log.contains("operator failed"),
        "the old leader counted itself deposed and exited with an error"
    );
    let deposed = times_of(&old_log, "lost the lease")[0];
    let last_old = old_sends
        .iter()
        .max()
        .copied()
        .expect("the old leader issued");
    let first_new = new_sends
        .iter()
        .min()
        .copied()
        .expect("the new leader issued");
    let after_cut = old_sends.iter().filter(|t| **t > cut).count();
    println!(
        "lease writes of the leader refused at {cut}: the old leader sent {} generates \
         ({after_cut} after the cut, the last {} ms after it), had {} refused by the fence, \
         counted itself deposed {} ms after the cut; the standby took the lease {} ms after \
         the cut ({} ms after the deposition) and sent its first generate {} ms after taking \
         it; {} generates by the new leader",
        old_sends.len(),
        (last_old - cut).num_milliseconds(),
        times_of(&old_log, FENCED).len(),
        (deposed - cut).num_milliseconds(),
        (takeover - cut).num_milliseconds(),
        (takeover - deposed).num_milliseconds(),
        (first_new - takeover).num_milliseconds(),
        new_sends.len(),
    );
    assert!(
        last_old < deposed,
        "the old leader sent a generate after it counted itself deposed"
    );
    assert!(deposed < takeover, "deposed before the standby took over");
    assert!(
        first_new >= takeover + TimeDelta::seconds(5),
        "the new leader settled one issue deadline before its first generate"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. SIGTERM during a slow generate chain

/// Starts an operator with `args`, creates the credential `app`, and sends SIGTERM once a
/// request to `endpoint` is in flight at the broker (which holds it as the faults say).
async fn sigterm_while_in_flight(env: &Env, args: &[&str], endpoint: Endpoint) -> Process {
    let operator = env.operator("op", args);
    let process = Process {
        pid: operator.pid().expect("running"),
        operator,
    };
    env.create_credential("app", json!({})).await;
    env.eventually(
        &format!("a {endpoint:?} request in flight"),
        WAIT,
        || async {
            env.broker
                .requests()
                .iter()
                .any(|r| r.endpoint == endpoint && r.status.is_none())
                .then_some(())
        },
    )
    .await;
    process.signal("TERM");
    process
}

/// The chain takes about 55 s (a 5 s vCenter login, then a 50 s generate; the broker's request
/// timeout is 60 s, the issue deadline 80 s). SIGTERM comes once the generate is in flight:
/// longer than the 45 s the operator used to wait at shutdown remain. The process waits for
/// the chain (the stop wait is the deadline plus 15 s: 95 s), stores the credential and its
/// status, and exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_generate_chain_stores_the_credential_before_exiting() {
    let env = Env::start().await;
    env.brokers()
        .patch(
            BROKER_NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"limits": {"requestTimeout": "60s"}}})),
        )
        .await
        .expect("broker request timeout");
    env.broker
        .inject(Fault::on(Endpoint::Login).delay(Duration::from_secs(5)));
    env.broker
        .inject(Fault::on(Endpoint::Generate).delay(Duration::from_secs(50)));
    let mut process =
        sigterm_while_in_flight(&env, &["--issue-deadline", "80s"], Endpoint::Generate).await;
    let signalled = Instant::now();
    // The stop wait is 95 s; a bounded wait above it.
    wait_for_exit(&env, &mut process, Duration::from_secs(120)).await;
    let waited = signalled.elapsed();

    let output = process.output();
    let secret = env
        .secret("app")
        .await
        .unwrap_or_else(|| panic!("the credential was not stored: {output}"));
    assert_eq!(revision_of(&secret), 1);
    let token = secret_value(&secret, "access_token");
    assert_eq!(Some(token.clone()), env.broker.current_token(DIRECTORY));
    assert!(token_is_live(&env, &token).await);
    let status = env.credential("app").await.status.expect("status written");
    assert_eq!(status.revision, Some(1), "and its status");
    assert!(output.contains("controllers stopped"), "{output}");
    assert!(!output.contains("stopping with reconciles still running"));
    println!("SIGTERM during a slow generate chain: the process exited {waited:?} later");
    assert!(
        waited > Duration::from_secs(45),
        "the chain outlasted the old fixed 45 s stop wait ({waited:?})"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A reconcile stopped by the fence at shutdown

/// SIGTERM while the chain logs in to vCenter (5 s): the broker client asks the fence before
/// sending the generate and is refused. Nothing is minted, and the reconcile reports nothing: no
/// failure in status, no event, no failure log line (which comes with the rotation metric).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_stopped_by_the_fence_at_shutdown_writes_no_failure() {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::Login).delay(Duration::from_secs(5)));
    let mut process = sigterm_while_in_flight(&env, &[], Endpoint::Login).await;
    wait_for_exit(&env, &mut process, WAIT).await;

    let output = process.output();
    assert!(output.contains(FENCED), "{output}");
    assert_eq!(env.broker.count(Endpoint::Generate), 0, "nothing minted");
    assert!(env.secret("app").await.is_none());
    let status = env.credential("app").await.status.unwrap_or_default();
    assert_eq!(status.last_failure_reason, None, "{status:?}");
    assert_eq!(status.failed_attempts, 0);
    assert!(status.history.is_empty(), "{status:?}");
    let reasons = event_reasons(&env, "app").await;
    assert!(
        !reasons.iter().any(|r| r == "RotationFailed"),
        "{reasons:?}"
    );
    assert!(!output.contains("issuing failed"), "no failure reported");
    assert!(output.contains("controllers stopped"));
}
