//! The test-facing controls: injected faults, the request log and its counts, and the log of
//! SCIM calls the simulator made.

use crate::server::lock;
use crate::{Call, EntraSim, Fault, RecordedRequest, ScimCall};

impl EntraSim {
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// How many faulty answers are still queued (each fault counts its remaining uses).
    pub fn pending_faults(&self) -> usize {
        lock(&self.shared.faults).pending()
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    // ---- recording ----

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.recorder).requests()
    }

    /// Requests to `call` since the last [`EntraSim::clear_requests`], whatever their answer.
    pub fn count(&self, call: Call) -> usize {
        lock(&self.shared.recorder).count(call)
    }

    pub fn count_with_status(&self, call: Call, status: u16) -> usize {
        lock(&self.shared.recorder).count_with_status(call, status)
    }

    /// Token requests naming this `client_id` since the last [`EntraSim::clear_requests`].
    pub fn token_requests_by(&self, client_id: &str) -> usize {
        lock(&self.shared.recorder).token_requests_by(client_id)
    }

    /// Forgets the request log and the SCIM call log.
    pub fn clear_requests(&self) {
        lock(&self.shared.recorder).clear();
        lock(&self.shared.scim_calls).clear();
    }

    /// Every SCIM call the simulator made (validations and cycles), oldest first.
    pub fn scim_calls(&self) -> Vec<ScimCall> {
        lock(&self.shared.scim_calls).clone()
    }
}
