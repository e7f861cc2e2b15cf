//! [`RevokeGuard`]: what may stop a generate chain. Its check runs right before each generate
//! request is sent (the first and the retry after a 401), and its deadline bounds the whole
//! chain: waiting for the shared login, the vCenter login, the broker token, the generate, a
//! token refresh and the retry. Every request's timeout is cut to what remains.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{BrokerError, ErrorKind};
use crate::outcome::Endpoint;

/// The check a caller runs before each request that revokes: `Err` says why it may not (shown in
/// the error, so it must hold no secret).
pub type MayRevoke<'a> = dyn Fn() -> Result<(), String> + Send + Sync + 'a;

/// Stops a generate chain that may no longer revoke: see
/// [`BrokerClient::generate_credentials`](crate::BrokerClient::generate_credentials).
#[derive(Clone, Copy)]
pub struct RevokeGuard<'a> {
    deadline: Instant,
    may_revoke: &'a MayRevoke<'a>,
}

impl<'a> RevokeGuard<'a> {
    /// The chain ends by `deadline`; `may_revoke` is asked right before each generate request.
    pub fn new(deadline: Instant, may_revoke: &'a MayRevoke<'a>) -> Self {
        Self {
            deadline,
            may_revoke,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Right before a generate request: the deadline has not passed and the caller allows it.
    pub(crate) fn allow(&self, endpoint: Endpoint) -> Result<(), BrokerError> {
        Deadline::at(self.deadline).remaining(endpoint)?;
        (self.may_revoke)().map_err(|reason| {
            BrokerError::call(
                ErrorKind::GuardRefused,
                endpoint,
                &format!("not sent: {reason}"),
            )
        })
    }
}

impl fmt::Debug for RevokeGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevokeGuard")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The deadline of a chain of requests, if it has one.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Deadline(Option<Instant>);

/// The timeout of one request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    pub(crate) timeout: Duration,
    /// The chain's deadline, not the client's request timeout, set it.
    pub(crate) by_deadline: bool,
}

impl Deadline {
    /// No deadline: each request has the client's request timeout.
    pub(crate) const NONE: Self = Self(None);

    pub(crate) fn at(deadline: Instant) -> Self {
        Self(Some(deadline))
    }

    pub(crate) fn of(guard: Option<&RevokeGuard<'_>>) -> Self {
        guard.map_or(Self::NONE, |guard| Self::at(guard.deadline))
    }

    /// What remains, or the error of a request that was not sent because nothing does.
    fn remaining(self, endpoint: Endpoint) -> Result<Option<Duration>, BrokerError> {
        let Some(deadline) = self.0 else {
            return Ok(None);
        };
        match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(Self::passed(endpoint, "before the request was sent")),
        }
    }

    /// The timeout of a request sent now: `timeout`, cut to what remains of the deadline.
    pub(crate) fn limit(self, endpoint: Endpoint, timeout: Duration) -> Result<Limit, BrokerError> {
        Ok(match self.remaining(endpoint)? {
            Some(left) if left < timeout => Limit {
                timeout: left,
                by_deadline: true,
            },
            _ => Limit {
                timeout,
                by_deadline: false,
            },
        })
    }

    /// Waits for `mutex`, at most until the deadline.
    pub(crate) async fn lock<T>(
        self,
        mutex: &tokio::sync::Mutex<T>,
        endpoint: Endpoint,
    ) -> Result<tokio::sync::MutexGuard<'_, T>, BrokerError> {
        let Some(deadline) = self.0 else {
            return Ok(mutex.lock().await);
        };
        tokio::time::timeout_at(deadline.into(), mutex.lock())
            .await
            .map_err(|_| Self::passed(endpoint, "while waiting for the shared vCenter login"))
    }

    /// The chain's deadline passed before a request was sent: nothing reached the server.
    fn passed(endpoint: Endpoint, when: &str) -> BrokerError {
        BrokerError::call(
            ErrorKind::Transient,
            endpoint,
            &format!("the deadline of the whole call passed {when}"),
        )
    }
}
