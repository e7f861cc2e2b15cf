//! The state the HTTP handlers, the watch tasks and the test-facing handle share: the store,
//! the change signals, faults, the request log and the tokens.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch as signal;

use crate::accounting::RecordedRequest;
use crate::auth::Tokens;
use crate::error::SimError;
use crate::faults::Faults;
use crate::store::Store;
use crate::watch::Disconnect;

/// State shared by the HTTP handlers, watch tasks and the test-facing handle.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    /// The latest resource version; watchers wake on every change.
    pub(crate) changes: signal::Sender<u64>,
    /// Bumped to end every open watch.
    pub(crate) disconnects: signal::Sender<(u64, Disconnect)>,
    pub(crate) shutdown: signal::Sender<bool>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) bookmark_interval: Mutex<Duration>,
    pub(crate) address: String,
    /// Require a valid token and authorize every request with RBAC.
    pub(crate) rbac: bool,
    pub(crate) tokens: Mutex<Tokens>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not hide this one's results.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(address: SocketAddr, rbac: bool, tokens: Tokens) -> Self {
        Self {
            store: Mutex::new(Store::new()),
            changes: signal::Sender::new(0),
            disconnects: signal::Sender::new((0, Disconnect::Close)),
            shutdown: signal::Sender::new(false),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            bookmark_interval: Mutex::new(Duration::from_secs(1)),
            address: address.to_string(),
            rbac,
            tokens: Mutex::new(tokens),
        }
    }

    pub(crate) fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    pub(crate) fn lock_store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Runs a store operation and wakes watchers if it changed anything.
    pub(crate) fn write<T>(
        &self,
        op: impl FnOnce(&mut Store) -> Result<T, SimError>,
    ) -> Result<T, SimError> {
        let (result, before, after) = {
            let mut store = self.lock_store();
            let before = store.current_rv();
            let result = op(&mut store);
            (result, before, store.current_rv())
        };
        if after != before {
            self.changes.send_replace(after);
        }
        result
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn bookmark_interval(&self) -> Duration {
        *lock(&self.bookmark_interval)
    }

    pub(crate) fn record_request(&self, request: RecordedRequest) -> usize {
        let mut requests = lock(&self.requests);
        requests.push(request);
        requests.len() - 1
    }

    pub(crate) fn set_request_status(&self, index: usize, status: u16) {
        if let Some(request) = lock(&self.requests).get_mut(index) {
            request.status = status;
        }
    }

    pub(crate) fn disconnect_watches(&self, how: Disconnect) {
        self.disconnects.send_modify(|(epoch, mode)| {
            *epoch += 1;
            *mode = how;
        });
    }
}
