//! The test-facing controls: the request log and counts, injected faults, open watches and
//! their history, bookmarks, and orphan collection.

use std::time::Duration;

use crate::accounting::{RecordedRequest, RequestCounts};
use crate::faults::Fault;
use crate::shared::lock;
use crate::watch::Disconnect;
use crate::{KubeSim, auth};

impl KubeSim {
    /// Counts by verb and resource of the requests since the last [`KubeSim::clear_requests`].
    pub fn counts(&self) -> RequestCounts {
        RequestCounts::from_requests(&lock(&self.shared.requests))
    }

    /// [`KubeSim::counts`] of the requests that carried this bearer token only.
    pub fn counts_for_token(&self, token: &str) -> RequestCounts {
        let client = auth::token_fingerprint(token);
        let requests: Vec<RecordedRequest> = lock(&self.shared.requests)
            .iter()
            .filter(|r| r.client.as_deref() == Some(client.as_str()))
            .cloned()
            .collect();
        RequestCounts::from_requests(&requests)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the request log (and with it the counts).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.faults().add(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Aborts every open watch connection mid-stream, like a network failure.
    pub fn drop_watches(&self) {
        self.shared.disconnect_watches(Disconnect::Abort);
    }

    /// Ends every open watch cleanly, like a server-side watch timeout.
    pub fn close_watches(&self) {
        self.shared.disconnect_watches(Disconnect::Close);
    }

    /// Forgets watch history: a watch from any resource version older than the current one
    /// then gets 410 Gone.
    pub fn expire_watch_history(&self) {
        self.shared.lock_store().expire_history();
        // Running watches re-check history on a change signal.
        self.shared.changes.send_modify(|_| {});
    }

    /// How often watches with `allowWatchBookmarks=true` get a bookmark (default 1 s;
    /// applies to watches started afterwards).
    pub fn set_bookmark_interval(&self, interval: Duration) {
        *lock(&self.shared.bookmark_interval) = interval.max(Duration::from_millis(10));
    }

    /// Whether objects whose owners all do not exist are deleted when written (default true).
    pub fn set_orphan_collection(&self, enabled: bool) {
        self.shared.lock_store().collect_orphans = enabled;
    }
}
