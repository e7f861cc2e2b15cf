//! Fencing: a generate starts only while this process may act for the cluster. With leader
//! election that means while it holds the lease, and only after the broker request timeout has
//! passed since it acquired it (an old leader's call still in flight cannot cross a new one).
//! After a shutdown request no new generate starts at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

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
        Self::build(None)
    }

    /// A leader: open while `leader` says so, and only once the request timeout has passed
    /// since now (when the lease was acquired).
    pub fn leader(leader: watch::Receiver<bool>) -> Self {
        Self::build(Some(leader))
    }

    fn build(leader: Option<watch::Receiver<bool>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                leader,
                since: Instant::now(),
                closed: AtomicBool::new(false),
            }),
        }
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
        match &self.inner.leader {
            Some(leader) if !*leader.borrow() => Err(Fenced::NotLeader),
            _ => Ok(()),
        }
    }

    /// Whether this replica holds the lease (always, without election). Unlike [`Fence::check`]
    /// this stays true while shutting down: work in flight still records what it did.
    pub fn leading(&self) -> bool {
        self.inner.leader.as_ref().is_none_or(|leader| *leader.borrow())
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
        let fence = Fence::leader(rx);
        let started = Instant::now();
        fence.settle(Duration::from_secs(30)).await;
        assert!(started.elapsed() >= Duration::from_secs(30));
        assert_eq!(fence.check(), Ok(()));
        tx.send(false).unwrap();
        assert_eq!(fence.check(), Err(Fenced::NotLeader));
    }
}
