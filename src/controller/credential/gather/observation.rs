//! The observation: one consistent view of a credential that a decision is made from, and its
//! reading into the planner's terms.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::api::{SpecError, SyncClientCredential, SyncClientCredentialStatus};
use crate::controller::credential::pending::Pending;
use crate::planner::{Failures, PlanInput, Policy, Record, Requests, SecretState, Verification};
use crate::secret::Expected;

/// Where the resource in an observation was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The controller's cache, which may lag behind this operator's own last status write.
    Cache,
    /// The API server, just now.
    Fresh,
}

/// What the status says was last verified (a probe done in this reconcile replaces it).
pub const VERIFY_VALID: &str = "Valid";
pub const VERIFY_REVOKED: &str = "Revoked";

/// A credential held in the Secret the spec named before (its name changed): it is moved to the
/// Secret named now rather than issued again.
#[derive(Clone)]
pub struct Held {
    pub secret_name: String,
    pub secret: Secret,
    pub record: Record,
}

/// One consistent view of a credential: the resource, its Secret, the parsed policy, the
/// failures so far, the requests on it, a credential waiting to be stored, and the time.
pub struct Observation {
    /// The resource as read (its status is what the API server holds).
    pub cr: Arc<SyncClientCredential>,
    /// The status decisions start from: the resource's, or a newer one this process computed
    /// and could not write yet (failures, history and served requests are never forgotten).
    pub status: SyncClientCredentialStatus,
    /// What the spec expects of its Secret now.
    pub expected: Expected,
    pub source: Source,
    pub now: DateTime<Utc>,
    pub secret_name: String,
    /// The spec read into the planner's terms, or why it cannot be.
    pub policy: Result<Policy, SpecError>,
    /// The Secret as read (not read when the spec is invalid).
    pub secret: Option<Secret>,
    /// Whether `secret` is the whole Secret; `false` when only its cached metadata was used
    /// (this process wrote exactly that version, so its data is known to be intact).
    pub secret_complete: bool,
    pub state: SecretState,
    pub failures: Failures,
    pub rotate_request: Option<String>,
    pub preflight_request: Option<String>,
    /// The last probe of the stored token (updated when this reconcile probes).
    pub verification: Option<Verification>,
    /// Whether a preflight ran for this resource (updated when this reconcile runs one).
    pub preflight_ran: bool,
    /// The preflight request served (updated when this reconcile serves one).
    pub preflight_served: Option<String>,
    /// An older credential that rotates the same sync client, `namespace/name`.
    pub sync_client_owner: Option<String>,
    /// A credential generated for this resource and not yet stored.
    pub pending: Option<Pending>,
    /// The rotate request the credential in the (intact) Secret served, from its record.
    pub served_by_secret: Option<String>,
    /// The credential in the Secret the spec named before, when the one it names now is missing.
    pub held: Option<Held>,
    /// Whether the broker resource's generation or its client's epoch differ from what they
    /// were after the last failure that needs a change: then it is retried at once.
    pub broker_changed: bool,
    pub jitter_seed: u64,
}

impl Observation {
    pub fn namespace(&self) -> String {
        self.cr.namespace().unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.cr.name_any()
    }

    pub fn generation(&self) -> i64 {
        self.cr.metadata.generation.unwrap_or_default()
    }

    pub fn uid(&self) -> String {
        self.cr.uid().unwrap_or_default()
    }

    /// The status decisions start from.
    pub fn old_status(&self) -> SyncClientCredentialStatus {
        self.status.clone()
    }

    fn status_field<'a, T: ?Sized>(
        &'a self,
        field: impl FnOnce(&'a SyncClientCredentialStatus) -> Option<&'a T>,
    ) -> Option<&'a T> {
        field(&self.status)
    }

    /// The record the schedule is read from: the Secret's, or the moved credential's.
    pub fn record(&self) -> Option<&Record> {
        match &self.state {
            SecretState::Owned(record) => Some(record),
            SecretState::Missing => self.held.as_ref().map(|held| &held.record),
            _ => None,
        }
    }

    /// The revision the Secret holds (or status remembers, when the Secret is gone).
    pub fn current_revision(&self) -> Option<i64> {
        match &self.state {
            SecretState::Owned(record) => Some(record.revision),
            _ => self.status.revision,
        }
    }

    /// When a credential was last issued for this resource.
    pub fn last_issued_at(&self) -> Option<DateTime<Utc>> {
        let from_secret = self.record().map(|record| record.issued_at);
        from_secret.max(self.status.last_rotation_time)
    }

    /// When a delivery of the stored credential is next due (none: all hold it, or none wanted).
    pub fn delivery_due(&self) -> Option<DateTime<Utc>> {
        if !crate::controller::credential::deliver::wanted(self) {
            return None;
        }
        let SecretState::Owned(record) = &self.state else {
            return None;
        };
        let names: Vec<String> = self
            .cr
            .spec
            .deliveries
            .iter()
            .map(|d| d.name.clone())
            .collect();
        crate::controller::status::delivery::next_delivery(
            &self.status,
            &names,
            record.revision,
            self.now,
        )
    }

    /// The planner's input for this observation under `policy`.
    pub fn plan_input<'a>(
        &'a self,
        policy: &'a Policy,
        min_issue_interval: chrono::TimeDelta,
    ) -> PlanInput<'a> {
        PlanInput {
            now: self.now,
            generation: self.generation(),
            policy,
            secret: &self.state,
            failures: self.failures,
            requests: Requests {
                rotate: self.rotate_request.as_deref(),
                // The Secret's record wins: the status recording a served request may not have
                // been written.
                rotate_served: self
                    .served_by_secret
                    .as_deref()
                    .filter(|served| self.rotate_request.as_deref() == Some(served))
                    .or_else(|| self.status_field(|s| s.observed_rotate_request.as_deref())),
                rotate_attempted: self.status_field(|s| s.attempted_rotate_request.as_deref()),
                preflight: self.preflight_request.as_deref(),
                preflight_served: self.preflight_served.as_deref(),
                preflight_ran: self.preflight_ran,
            },
            last_issued_at: self.last_issued_at(),
            last_verification: self.verification,
            sync_client_taken: self.sync_client_owner.is_some(),
            min_issue_interval,
            held_elsewhere: match &self.state {
                SecretState::Missing => self.held.as_ref().map(|held| &held.record),
                _ => None,
            },
            broker_changed: self.broker_changed,
            verify_after: self.status.verify_due_time,
            delivery_due: self.delivery_due(),
            jitter_seed: self.jitter_seed,
        }
    }
}
