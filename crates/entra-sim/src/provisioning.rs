//! The test-facing provisioning jobs: reading a job, setting its state by hand, and running a
//! provisioning cycle against the SCIM endpoint.

use std::time::{Instant, SystemTime};

use crate::scim::ScimCredentials;
use crate::secrets::{BASE_ADDRESS, SECRET_TOKEN};
use crate::server::{self, lock};
use crate::{
    EntraSim, ExecutionError, JobSnapshot, JobStatusCode, ScheduleState, ScimOutcome, ScimPurpose,
    VALIDATION_FAILURE_CODE,
};

/// What came of [`EntraSim::run_provisioning_cycle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleOutcome {
    /// The SCIM endpoint accepted the saved token: `lastSuccessfulExecution` recorded, any
    /// quarantine lifted.
    Succeeded,
    /// It did not: the job is quarantined (`EncounteredQuarantineException`).
    Quarantined(ScimOutcome),
    /// The schedule is not `Active` or the job is `Paused`: nothing ran.
    NotScheduled,
    UnknownJob,
}

impl EntraSim {
    pub fn job(&self, service_principal: &str, job_id: &str) -> Option<JobSnapshot> {
        lock(&self.shared.state)
            .principals
            .get(service_principal)
            .and_then(|principal| principal.jobs.iter().find(|job| job.id == job_id).cloned())
    }

    /// Sets a job's `status.code` and `schedule.state` by hand (`Quarantine` gets a quarantine
    /// `QuarantinedOnDemand` unless it has one). Returns false for an unknown job.
    pub fn set_job_state(
        &self,
        service_principal: &str,
        job_id: &str,
        code: JobStatusCode,
        schedule: ScheduleState,
    ) -> bool {
        let mut state = lock(&self.shared.state);
        let Some(job) = state
            .principals
            .get_mut(service_principal)
            .and_then(|principal| principal.job_mut(job_id))
        else {
            return false;
        };
        job.set_state(code, schedule, SystemTime::now());
        true
    }

    /// Runs one provisioning cycle now: calls the SCIM endpoint with the saved `BaseAddress`
    /// and `SecretToken`, as Entra ID does every 40 minutes. A refusal quarantines the job;
    /// success records `lastSuccessfulExecution` and lifts any quarantine.
    pub async fn run_provisioning_cycle(
        &self,
        service_principal: &str,
        job_id: &str,
    ) -> CycleOutcome {
        let began = SystemTime::now();
        let credentials = {
            let state = lock(&self.shared.state);
            let Some(principal) = state.principals.get(service_principal) else {
                return CycleOutcome::UnknownJob;
            };
            match principal.jobs.iter().find(|job| job.id == job_id) {
                None => return CycleOutcome::UnknownJob,
                Some(job) if !job.runs_cycles() => return CycleOutcome::NotScheduled,
                Some(_) => {}
            }
            let saved = principal.secrets.visible(Instant::now());
            ScimCredentials {
                base_address: saved.get(BASE_ADDRESS).cloned(),
                token: saved.get(SECRET_TOKEN).cloned(),
            }
        };
        let outcome = server::call_scim(
            &self.shared,
            ScimPurpose::ProvisioningCycle,
            service_principal,
            job_id,
            &credentials,
        )
        .await;
        let mut state = lock(&self.shared.state);
        let Some(job) = state
            .principals
            .get_mut(service_principal)
            .and_then(|principal| principal.job_mut(job_id))
        else {
            return CycleOutcome::UnknownJob;
        };
        if outcome.is_accepted() {
            job.record_success(began, SystemTime::now());
            CycleOutcome::Succeeded
        } else {
            job.record_failure(
                began,
                SystemTime::now(),
                ExecutionError {
                    code: VALIDATION_FAILURE_CODE.to_owned(),
                    message: format!("Provisioning could not reach the application: {outcome}."),
                    tenant_actionable: true,
                },
            );
            CycleOutcome::Quarantined(outcome)
        }
    }
}
