//! Leader election between two operator processes.

use std::time::Duration;

use crate::harness::{DIRECTORY, Env, WAIT};
use kube::ResourceExt;
use serde_json::json;

/// A 3 s lease (renew grace 1 s), and the shortest issue deadline: a new leader settles 5 s.
pub(crate) const LEASE_ARGS: &[&str] = &[
    "--leader-election",
    "--lease-namespace",
    "default",
    "--lease-duration-seconds",
    "3",
    "--issue-deadline",
    "5s",
];

pub(crate) fn acquired(output: &str) -> bool {
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
