//! The lease-health rule: a leader counts itself deposed once `lease duration − renew grace` has
//! passed since its last renewal that succeeded, whatever else it believes. The time of a
//! renewal is when its request was *sent*: the API server stored it no earlier, and a standby
//! starts its own clock only when it sees the change, so the standby cannot take the lease
//! before `duration` after that instant, and this replica stops `grace` before that.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Whether this replica surely holds the lease. Shared by the renewal loop (which records
/// renewals) and the fence (which asks).
#[derive(Clone, Debug)]
pub struct LeaseHealth {
    state: Arc<Mutex<State>>,
    /// `lease duration − renew grace`.
    valid_for: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// When the last successful renewal (or the acquisition) was sent.
    renewed_at: Option<Instant>,
    /// The lease was lost (taken, released, or this replica was deposed): for good.
    lost: bool,
}

impl LeaseHealth {
    /// A replica that does not hold the lease yet; it leads for `valid_for` after each renewal.
    pub fn new(valid_for: Duration) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            valid_for,
        }
    }

    pub fn valid_for(&self) -> Duration {
        self.valid_for
    }

    /// The acquisition or a renewal sent at `sent_at` succeeded. One sent once this replica was
    /// already deposed does not make it lead again: it is deposed for good.
    pub fn renewed(&self, sent_at: Instant) {
        let mut state = self.lock();
        match state.renewed_at {
            Some(at) if sent_at >= at + self.valid_for => state.lost = true,
            Some(at) if sent_at <= at => {}
            _ if state.lost => {}
            _ => state.renewed_at = Some(sent_at),
        }
    }

    /// The lease is no longer this replica's; nothing makes it lead again.
    pub fn lose(&self) {
        self.lock().lost = true;
    }

    /// Until when this replica surely leads; `None` when it never held the lease or lost it.
    pub fn leads_until(&self) -> Option<Instant> {
        let state = self.lock();
        if state.lost {
            return None;
        }
        state.renewed_at.map(|at| at + self.valid_for)
    }

    /// Whether this replica surely leads at `now`.
    pub fn leads_at(&self, now: Instant) -> bool {
        self.leads_until().is_some_and(|until| now < until)
    }

    /// Whether this replica surely leads now.
    pub fn leads(&self) -> bool {
        self.leads_at(Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_replica_leads_until_valid_for_after_its_last_renewal_was_sent() {
        let health = LeaseHealth::new(Duration::from_secs(10));
        assert!(!health.leads(), "not before it acquired the lease");
        let acquired = Instant::now();
        health.renewed(acquired);
        tokio::time::advance(Duration::from_secs(4)).await;
        let renewed = Instant::now();
        health.renewed(renewed);
        // An older renewal answered late does not move the time back.
        health.renewed(acquired);
        assert_eq!(
            health.leads_until(),
            Some(renewed + Duration::from_secs(10))
        );
        assert!(health.leads_at(renewed + Duration::from_millis(9_999)));
        assert!(!health.leads_at(renewed + Duration::from_secs(10)));
        // A renewal sent once deposed does not revive it.
        health.renewed(renewed + Duration::from_secs(10));
        assert!(!health.leads_at(renewed));
        assert_eq!(health.leads_until(), None);

        let health = LeaseHealth::new(Duration::from_secs(10));
        health.renewed(Instant::now());
        health.lose();
        assert!(!health.leads());
        health.renewed(Instant::now());
        assert_eq!(health.leads_until(), None, "lost for good");
    }
}
