//! Fencing: a generate starts only while this process may act for the cluster. With leader
//! election that means while it holds the lease, and only after the broker request timeout has
//! passed since it acquired it (an old leader's call still in flight cannot cross a new one).
//! After a shutdown request no new generate starts at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How often a leader's heartbeat records that the process runs.
const HEARTBEAT: Duration = Duration::from_millis(250);
/// The shortest gap taken for a frozen process (below it: scheduling delays on a busy machine).
const MIN_FROZEN_GAP: Duration = Duration::from_secs(2);

/// Whether this process may start a broker call that revokes a credential.
#[derive(Clone)]
pub struct Fence {
    inner: Arc<Inner>,
}

struct Inner {
    /// `Some` with leader election: `true` while this process holds the lease.
    leader: Option<watch::Receiver<bool>>,
    /// When the lease was acquired (or the process started, without election).
    since: Instant,
    closed: AtomicBool,
    /// Notices the process was frozen (SIGSTOP, a paused VM): the lease watch still says
    /// "leader" then, though a standby may have taken over meanwhile.
    liveness: std::sync::Mutex<Liveness>,
    lease_duration: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Liveness {
    /// The last tick of the heartbeat (or check) that found the process running.
    last_seen: Instant,
    /// Until then leadership is in doubt: the lease may have passed to another replica.
    doubtful_until: Option<Instant>,
}

/// Why a generate may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    #[error("the operator is shutting down")]
    ShuttingDown,
    #[error("this replica no longer holds the leader lease")]
    NotLeader,
}

impl Default for Fence {
    fn default() -> Self {
        Self::single()
    }
}

impl Fence {
    /// A process without leader election: open until shutdown.
    pub fn single() -> Self {
        Self::build(None, Duration::ZERO)
    }

    /// A leader: open while `leader` says so, and only once the request timeout has passed
    /// since now (when the lease was acquired). A heartbeat notices when the process was frozen
    /// for a good part of `lease_duration`: leadership is then in doubt for one lease duration
    /// (the lease manager either renews it or reports it lost meanwhile).
    pub fn leader(leader: watch::Receiver<bool>, lease_duration: Duration) -> Self {
        let fence = Self::build(Some(leader), lease_duration);
        let heartbeat = fence.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !heartbeat.inner.closed.load(Ordering::SeqCst) {
                ticks.tick().await;
                heartbeat.alive();
            }
        });
        fence
    }

    fn build(leader: Option<watch::Receiver<bool>>, lease_duration: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner: Arc::new(Inner {
                leader,
                since: now,
                closed: AtomicBool::new(false),
                liveness: std::sync::Mutex::new(Liveness {
                    last_seen: now,
                    doubtful_until: None,
                }),
                lease_duration,
            }),
        }
    }

    /// Records that the process runs now; a gap since the last record means it was frozen.
    fn alive(&self) -> bool {
        let now = Instant::now();
        let frozen_after = (self.inner.lease_duration / 2).max(MIN_FROZEN_GAP);
        let mut liveness = self
            .inner
            .liveness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.duration_since(liveness.last_seen) > frozen_after {
            tracing::warn!(gap = ?now.duration_since(liveness.last_seen), "this process was frozen; the lease may have passed to another replica");
            liveness.doubtful_until = Some(now + self.inner.lease_duration);
        }
        liveness.last_seen = now;
        liveness.doubtful_until.is_none_or(|until| now >= until)
    }

    /// No new generate starts after this.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
    }

    /// Checks right before a broker call.
    pub fn check(&self) -> Result<(), Fenced> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(Fenced::ShuttingDown);
        }
        if self.leading() {
            Ok(())
        } else {
            Err(Fenced::NotLeader)
        }
    }

    /// Whether this replica holds the lease (always, without election). Unlike [`Fence::check`]
    /// this stays true while shutting down: work in flight still records what it did.
    pub fn leading(&self) -> bool {
        match &self.inner.leader {
            None => true,
            Some(leader) => *leader.borrow() && self.alive(),
        }
    }

    /// A new leader waits until `request_timeout` has passed since it acquired the lease, so a
    /// call its predecessor may still have in flight has ended (answered or timed out).
    pub async fn settle(&self, request_timeout: Duration) {
        if self.inner.leader.is_some() {
            tokio::time::sleep_until(self.inner.since + request_timeout).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_single_process_is_open_until_it_closes() {
        let fence = Fence::single();
        assert_eq!(fence.check(), Ok(()));
        fence.settle(Duration::from_secs(3600)).await; // no wait without election
        fence.clone().close();
        assert_eq!(fence.check(), Err(Fenced::ShuttingDown));
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_is_open_while_leading_and_after_settling() {
        let (tx, rx) = watch::channel(true);
        let fence = Fence::leader(rx, Duration::from_secs(15));
        let started = Instant::now();
        fence.settle(Duration::from_secs(30)).await;
        assert!(started.elapsed() >= Duration::from_secs(30));
        assert_eq!(fence.check(), Ok(()));
        tx.send(false).unwrap();
        assert_eq!(fence.check(), Err(Fenced::NotLeader));
    }

    #[test]
    fn a_frozen_leader_doubts_its_lease_for_one_lease_duration() {
        let (_tx, rx) = watch::channel(true);
        let fence = Fence::build(Some(rx), Duration::from_secs(3));
        assert!(fence.leading());
        // As if SIGSTOPped for 4 s: the heartbeat's last record is that old.
        fence.inner.liveness.lock().unwrap().last_seen -= Duration::from_secs(4);
        assert!(!fence.leading(), "the lease may be another replica's now");
        assert_eq!(fence.check(), Err(Fenced::NotLeader));
    }
}
