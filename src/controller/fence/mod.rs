//! Fencing: only the leader generates (every generate revokes the live credential), and only
//! while it surely leads. Everything that decides it lives here:
//!
//! - [`election`] and [`lease`]: leader election on a `Lease`, with our own renewal loop, so that
//!   the time of the last *successful* renewal is known;
//! - [`health`]: the rule: a leader counts itself deposed once `lease duration − renew grace`
//!   has passed since its last successful renewal, whatever else it believes. A process that was
//!   frozen (SIGSTOP, a paused VM) finds its renewals that old when it runs again, so no
//!   separate heartbeat is needed: the rule covers it, and unlike a heartbeat it does not need
//!   the freeze to be long enough to notice;
//! - [`Fence`]: the check the broker client runs right before each generate request (leader,
//!   not shutting down), the deadline of one generate chain (`--issue-deadline`), the settle of a
//!   new leader, and the wait at shutdown, both derived from that deadline.
//!
//! Why the settle and the deadline keep two leaders apart: the old leader sends no generate
//! after it counts itself deposed (at `T`), and every chain it started ends by its deadline, so
//! by `T + deadline`. A standby takes the lease no earlier than `T + grace` (it waits a full lease
//! duration by its own clock after the last renewal it saw) and then waits `deadline` more before
//! its first generate.

pub mod election;
pub mod health;
pub mod lease;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

pub use health::LeaseHealth;

/// Default of `--issue-deadline`: the whole chain of one issue (login, broker token, generate,
/// refresh, retry).
pub const DEFAULT_ISSUE_DEADLINE: Duration = Duration::from_secs(60);
/// How long storing an issued credential may take after its chain ended: the Secret write (with
/// a re-read and one retry on a conflict), the rollout restarts, the event and the status patch,
/// each one or two API calls of milliseconds on a healthy API server; 15 s leaves room for a
/// slow one.
pub const STORE_GRACE: Duration = Duration::from_secs(15);

/// Whether this process may send a request that revokes a credential.
#[derive(Clone)]
pub struct Fence {
    inner: Arc<Inner>,
}

struct Inner {
    /// With leader election: whether the lease surely is this replica's.
    lease: Option<LeaseHealth>,
    /// When the lease was acquired (or the process started, without election).
    since: Instant,
    /// The deadline of one generate chain.
    issue_deadline: Duration,
    closed: AtomicBool,
    /// Wakes a settle when the fence closes.
    closing: Notify,
}

/// Why a generate may not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    #[error("the operator is shutting down")]
    ShuttingDown,
    #[error("this replica is not sure it still holds the leader lease")]
    NotLeader,
}

impl Default for Fence {
    fn default() -> Self {
        Self::single(DEFAULT_ISSUE_DEADLINE)
    }
}

impl Fence {
    /// A process without leader election: open until shutdown.
    pub fn single(issue_deadline: Duration) -> Self {
        Self::build(None, issue_deadline)
    }

    /// A leader that acquired its lease just now: open while `lease` says it surely leads.
    pub fn leader(lease: LeaseHealth, issue_deadline: Duration) -> Self {
        Self::build(Some(lease), issue_deadline)
    }

    fn build(lease: Option<LeaseHealth>, issue_deadline: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                lease,
                since: Instant::now(),
                issue_deadline,
                closed: AtomicBool::new(false),
                closing: Notify::new(),
            }),
        }
    }

    /// No generate is sent after this.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.closing.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Checks right before a generate request is sent.
    pub fn check(&self) -> Result<(), Fenced> {
        if self.is_closed() {
            return Err(Fenced::ShuttingDown);
        }
        if self.leading() {
            Ok(())
        } else {
            Err(Fenced::NotLeader)
        }
    }

    /// [`Fence::check`] as the broker client's guard asks it.
    pub fn may_revoke(&self) -> Result<(), String> {
        self.check().map_err(|fenced| fenced.to_string())
    }

    /// Whether this replica surely holds the lease (always, without election). Unlike
    /// [`Fence::check`] this stays true while shutting down: work in flight still records what
    /// it did.
    pub fn leading(&self) -> bool {
        self.inner.lease.as_ref().is_none_or(LeaseHealth::leads)
    }

    /// The deadline of one generate chain starting now.
    pub fn chain_deadline(&self) -> std::time::Instant {
        std::time::Instant::now() + self.inner.issue_deadline
    }

    pub fn issue_deadline(&self) -> Duration {
        self.inner.issue_deadline
    }

    /// How long a stop waits for running reconciles: a chain started right before it ends by
    /// its deadline, and its credential must still be stored.
    pub fn stop_wait(&self) -> Duration {
        self.inner.issue_deadline + STORE_GRACE
    }

    /// A new leader waits one issue deadline after it acquired the lease before its first
    /// generate: every chain the old leader started has ended by then. Ends early when the fence
    /// closes (nothing is sent after that anyway).
    pub async fn settle(&self) {
        if self.inner.lease.is_none() {
            return;
        }
        let closing = self.inner.closing.notified();
        let mut closing = std::pin::pin!(closing);
        closing.as_mut().enable();
        if self.is_closed() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(self.inner.since + self.inner.issue_deadline) => {}
            () = closing => {}
        }
    }
}

#[cfg(test)]
mod tests;
