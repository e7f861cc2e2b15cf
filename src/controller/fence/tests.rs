//! The fence on a paused clock: the lease-health rule with the real renewal loop against an
//! in-memory lease, a standby's own observation clock, the guard's answers, and the settle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::lease::{Elector, LeaseStore, Lost, StoreError};
use super::*;

const DURATION: Duration = Duration::from_secs(15);
/// `DURATION` minus the renew grace (5 s).
const VALID_FOR: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(60);

/// One lease in memory, with the API server's `resourceVersion` precondition on patches.
#[derive(Default)]
struct Memory {
    state: Mutex<Stored>,
}

#[derive(Default)]
struct Stored {
    lease: Option<Value>,
    version: u64,
    /// Writes fail (as a 403 would) while set.
    failing: bool,
    /// When each successful write arrived.
    writes: Vec<Instant>,
}

impl Memory {
    fn fail_writes(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    fn writes(&self) -> Vec<Instant> {
        self.state.lock().unwrap().writes.clone()
    }

    fn spec(&self) -> Value {
        self.state.lock().unwrap().lease.as_ref().unwrap()["spec"].clone()
    }

    /// Another writer changes the spec (a renewal or a takeover by another replica).
    fn overwrite(&self, spec: &Value) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        let version = state.version.to_string();
        let lease = state.lease.as_mut().unwrap();
        lease["metadata"]["resourceVersion"] = json!(version);
        for (key, value) in spec.as_object().unwrap() {
            lease["spec"][key] = value.clone();
        }
    }

    fn stored(state: &mut Stored, mut lease: Value) -> Result<Lease, StoreError> {
        state.version += 1;
        lease["metadata"]["resourceVersion"] = json!(state.version.to_string());
        state.writes.push(Instant::now());
        state.lease = Some(lease.clone());
        serde_json::from_value(lease).map_err(|e| StoreError::Failed(e.to_string()))
    }
}

impl LeaseStore for Arc<Memory> {
    async fn get(&self) -> Result<Option<Lease>, StoreError> {
        let state = self.state.lock().unwrap();
        Ok(state
            .lease
            .clone()
            .map(|lease| serde_json::from_value(lease).unwrap()))
    }

    async fn create(&self, lease: Lease) -> Result<Lease, StoreError> {
        let mut state = self.state.lock().unwrap();
        if state.failing {
            return Err(StoreError::Failed("forbidden".into()));
        }
        if state.lease.is_some() {
            return Err(StoreError::Conflict);
        }
        Memory::stored(&mut state, serde_json::to_value(lease).unwrap())
    }

    async fn patch(&self, patch: Value) -> Result<Lease, StoreError> {
        let mut state = self.state.lock().unwrap();
        if state.failing {
            return Err(StoreError::Failed("forbidden".into()));
        }
        let mut lease = state.lease.clone().ok_or(StoreError::Conflict)?;
        if patch["metadata"]["resourceVersion"] != lease["metadata"]["resourceVersion"] {
            return Err(StoreError::Conflict);
        }
        for (key, value) in patch["spec"].as_object().unwrap() {
            let spec = lease["spec"].as_object_mut().unwrap();
            if value.is_null() {
                spec.remove(key);
            } else {
                spec.insert(key.clone(), value.clone());
            }
        }
        Memory::stored(&mut state, lease)
    }
}

fn elector(leases: &Arc<Memory>, identity: &str) -> (Elector<Arc<Memory>>, LeaseHealth) {
    let health = LeaseHealth::new(VALID_FOR);
    let elector = Elector::new(
        leases.clone(),
        ("default", "sync-client-operator"),
        identity,
        DURATION,
        health.clone(),
    );
    (elector, health)
}

/// Holds the lease in a task until `done` is sent; returns how holding ended.
fn hold(
    elector: Elector<Arc<Memory>>,
    version: String,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), Lost>>,
) {
    let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        elector
            .hold(version, async {
                let _ = done_rx.await;
            })
            .await
    });
    (done, task)
}

#[tokio::test(start_paused = true)]
async fn a_leader_is_deposed_exactly_duration_minus_grace_after_its_last_successful_renewal() {
    let leases = Arc::new(Memory::default());
    let (elector, health) = elector(&leases, "a");
    assert_eq!(elector.retry_period(), Duration::from_secs(2));
    let version = elector.acquire(std::future::pending()).await.unwrap();
    let fence = Fence::leader(health, DEADLINE);
    let (_done, holding) = hold(elector, version);

    // Renewals succeed every 2 s for a while...
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        leases.writes().len(),
        4,
        "the acquisition and three renewals"
    );
    assert_eq!(fence.check(), Ok(()));
    // ...then every write fails, as when this replica's permission on leases is gone.
    leases.fail_writes(true);
    let last = *leases.writes().last().unwrap();
    tokio::time::sleep_until(last + VALID_FOR - Duration::from_millis(1)).await;
    assert_eq!(fence.check(), Ok(()), "not deposed before");
    assert!(fence.leading());
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(Instant::now(), last + VALID_FOR);
    assert_eq!(
        fence.check(),
        Err(Fenced::NotLeader),
        "deposed exactly then"
    );
    assert!(!fence.leading(), "nor does it write status or events");
    assert_eq!(holding.await.unwrap(), Err(Lost::Deposed(VALID_FOR)));
    // Writes work again: the deposed replica stays deposed.
    leases.fail_writes(false);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(fence.check(), Err(Fenced::NotLeader));
    assert_eq!(leases.writes().last(), Some(&last), "it stopped renewing");
}

#[tokio::test(start_paused = true)]
async fn the_guard_refuses_after_deposition_and_after_shutdown() {
    let health = LeaseHealth::new(VALID_FOR);
    health.renewed(Instant::now());
    let deposed = Fence::leader(health, DEADLINE);
    assert_eq!(deposed.may_revoke(), Ok(()));
    tokio::time::sleep(VALID_FOR).await;
    assert_eq!(
        deposed.may_revoke(),
        Err("this replica is not sure it still holds the leader lease".to_owned())
    );

    let health = LeaseHealth::new(VALID_FOR);
    health.renewed(Instant::now());
    let leader = Fence::leader(health, DEADLINE);
    leader.clone().close();
    assert_eq!(
        leader.may_revoke(),
        Err("the operator is shutting down".to_owned())
    );
    assert!(leader.leading(), "work in flight still records what it did");

    let single = Fence::single(DEADLINE);
    assert_eq!(single.may_revoke(), Ok(()));
    single.close();
    assert_eq!(single.check(), Err(Fenced::ShuttingDown));
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_settles_for_one_issue_deadline_unless_the_fence_closes() {
    let health = LeaseHealth::new(VALID_FOR);
    health.renewed(Instant::now());
    let fence = Fence::leader(health.clone(), DEADLINE);
    let started = Instant::now();
    fence.settle().await;
    assert_eq!(started.elapsed(), DEADLINE);

    let fence = Fence::leader(health, DEADLINE);
    let settling = tokio::spawn({
        let fence = fence.clone();
        async move {
            fence.settle().await;
            Instant::now()
        }
    });
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    fence.close();
    assert_eq!(settling.await.unwrap() - started, Duration::from_secs(5));
    fence.settle().await;
    assert_eq!(started.elapsed(), Duration::from_secs(5), "closed: no wait");

    let single = Fence::single(DEADLINE);
    single.settle().await;
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "no settle without election"
    );
}

#[test]
fn the_stop_wait_is_the_deadline_plus_the_time_to_store() {
    assert_eq!(Fence::single(DEADLINE).stop_wait(), Duration::from_secs(75));
    assert!(Fence::default().chain_deadline() > std::time::Instant::now() + DEADLINE / 2);
}

#[tokio::test(start_paused = true)]
async fn a_standby_takes_an_abandoned_lease_a_full_duration_after_it_last_saw_it_change() {
    let leases = Arc::new(Memory::default());
    let (a, _) = elector(&leases, "a");
    a.acquire(std::future::pending()).await.unwrap();
    let acquired_by_a = leases.spec()["acquireTime"].clone();
    // "a" stops renewing (as if frozen or cut off); "b" starts looking now.
    let (b, b_health) = elector(&leases, "b");
    let started = Instant::now();
    let taking = tokio::spawn(async move {
        b.acquire(std::future::pending()).await.unwrap();
        Instant::now()
    });
    // At 10 s "a" renews once more: b's clock starts again when it sees that.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(!b_health.leads());
    leases.overwrite(&json!({"renewTime": "2030-01-01T00:00:10.000000Z"}));
    let taken_at = taking.await.unwrap() - started;
    assert!(
        taken_at >= Duration::from_secs(10) + DURATION
            && taken_at <= Duration::from_secs(10) + DURATION + Duration::from_secs(2),
        "taken {taken_at:?} after b started looking"
    );
    assert!(b_health.leads());
    let spec = leases.spec();
    assert_eq!(spec["holderIdentity"], "b");
    assert_eq!(spec["leaseTransitions"], 1);
    assert_eq!(spec["leaseDurationSeconds"], 15);
    assert_ne!(spec["acquireTime"], acquired_by_a);
    assert_eq!(spec["acquireTime"], spec["renewTime"]);
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_taken_at_the_next_look_and_a_taken_one_is_lost() {
    let leases = Arc::new(Memory::default());
    let (a, a_health) = elector(&leases, "a");
    let version = a.acquire(std::future::pending()).await.unwrap();
    let (done, holding) = hold(a, version);
    let (b, b_health) = elector(&leases, "b");
    let taking = tokio::spawn(async move {
        let version = b.acquire(std::future::pending()).await.unwrap();
        (b, version, Instant::now())
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(a_health.leads() && !b_health.leads(), "a renews: b waits");

    done.send(()).unwrap();
    assert_eq!(holding.await.unwrap(), Ok(()));
    let released = Instant::now();
    assert!(!a_health.leads());
    let (b, version, taken) = taking.await.unwrap();
    assert!(
        taken - released <= Duration::from_secs(2),
        "released: taken at the next look, not a lease duration later"
    );
    assert_eq!(leases.spec()["holderIdentity"], "b");
    assert_eq!(leases.spec()["leaseTransitions"], 1);

    // Someone else writes itself in: b's next renewal conflicts, it re-reads and gives up.
    let (_done, holding) = hold(b, version);
    leases.overwrite(&json!({"holderIdentity": "c"}));
    assert_eq!(holding.await.unwrap(), Err(Lost::Taken("c".to_owned())));
    assert!(!b_health.leads());
}
