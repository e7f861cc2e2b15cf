//! Provisioning jobs: their state machine (cycles, quarantine, restart, start) and their Graph
//! JSON (`synchronizationJob`).
//!
//! This module keeps the job, its status types and its transitions; the `resetScope` flags and
//! the Graph JSON have their own modules.

mod json;
mod reset;

#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime};

pub use reset::{ResetFlag, ResetScope};

/// `status.code` of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatusCode {
    NotConfigured,
    NotRun,
    Active,
    Paused,
    Quarantine,
}

/// `schedule.state` of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleState {
    Active,
    Paused,
    Disabled,
}

/// `status.quarantine.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuarantineReason {
    EncounteredBaseEscrowThreshold,
    EncounteredTotalEscrowThreshold,
    EncounteredEscrowProportionThreshold,
    /// Invalid credentials, among other exceptions.
    EncounteredQuarantineException,
    QuarantinedOnDemand,
    TooManyDeletes,
    IngestionInterrupted,
    Unknown,
}

/// One `restart` call the job received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartRecord {
    /// `None` when the request gave no `criteria.resetScope`.
    pub scope: Option<ResetScope>,
    /// Whether `status.code` was `Active` when it came.
    pub was_active: bool,
    pub at: SystemTime,
}

/// One `start` call the job received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRecord {
    /// Whether `status.code` was `Active` when it came (Microsoft warns against that).
    pub was_active: bool,
    pub at: SystemTime,
}

/// `error` of an execution or a quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionError {
    pub code: String,
    pub message: String,
    pub tenant_actionable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionState {
    Succeeded,
    Failed,
}

/// `status.lastExecution` / `lastSuccessfulExecution`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub state: ExecutionState,
    pub time_began: SystemTime,
    pub time_ended: SystemTime,
    pub error: Option<ExecutionError>,
}

/// `status.quarantine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    pub reason: QuarantineReason,
    pub current_began: SystemTime,
    pub next_attempt: SystemTime,
    pub series_began: SystemTime,
    pub series_count: u32,
    pub error: Option<ExecutionError>,
}

/// Entra ID retries a quarantined job after 6 h, 12 h, 24 h, then daily.
fn retry_after(series_count: u32) -> Duration {
    const HOUR: u64 = 3600;
    Duration::from_secs(match series_count {
        0 | 1 => 6 * HOUR,
        2 => 12 * HOUR,
        _ => 24 * HOUR,
    })
}

/// A job quarantined this long is disabled.
const DISABLED_AFTER: Duration = Duration::from_secs(28 * 24 * 3600);

/// A provisioning job as the simulator holds it, with every restart and start it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSnapshot {
    pub id: String,
    pub template_id: String,
    pub status_code: JobStatusCode,
    pub schedule_state: ScheduleState,
    pub quarantine: Option<Quarantine>,
    pub last_execution: Option<Execution>,
    pub last_successful_execution: Option<Execution>,
    pub steady_state_last_achieved: Option<SystemTime>,
    pub successive_failures: u32,
    pub restarts: Vec<RestartRecord>,
    pub starts: Vec<StartRecord>,
}

impl JobSnapshot {
    pub(crate) fn new(id: &str, template_id: &str) -> Self {
        Self {
            id: id.to_owned(),
            template_id: template_id.to_owned(),
            status_code: JobStatusCode::Active,
            schedule_state: ScheduleState::Active,
            quarantine: None,
            last_execution: None,
            last_successful_execution: None,
            steady_state_last_achieved: None,
            successive_failures: 0,
            restarts: Vec::new(),
            starts: Vec::new(),
        }
    }

    /// Restarts whose `resetScope` named `flag` (`Full` counts only as `Full`: use
    /// [`JobSnapshot::restarts_resetting`] for what a restart reset).
    pub fn restart_count(&self, flag: ResetFlag) -> usize {
        self.restarts
            .iter()
            .filter(|restart| {
                restart
                    .scope
                    .as_ref()
                    .is_some_and(|scope| scope.names(flag))
            })
            .count()
    }

    /// Restarts that reset what `flag` resets (`Full` included for `ConnectorDataStore`).
    pub fn restarts_resetting(&self, flag: ResetFlag) -> usize {
        self.restarts
            .iter()
            .filter(|restart| {
                restart
                    .scope
                    .as_ref()
                    .is_some_and(|scope| scope.resets(flag))
            })
            .count()
    }

    /// `start` calls that came while the job was `Active`.
    pub fn starts_on_active_job(&self) -> usize {
        self.starts.iter().filter(|start| start.was_active).count()
    }

    /// Whether a provisioning cycle would run now (scheduled and not paused).
    pub(crate) fn runs_cycles(&self) -> bool {
        self.schedule_state == ScheduleState::Active && self.status_code != JobStatusCode::Paused
    }

    pub(crate) fn record_success(&mut self, began: SystemTime, now: SystemTime) {
        let execution = Execution {
            state: ExecutionState::Succeeded,
            time_began: began,
            time_ended: now,
            error: None,
        };
        self.last_execution = Some(execution.clone());
        self.last_successful_execution = Some(execution);
        self.steady_state_last_achieved = Some(now);
        self.successive_failures = 0;
        self.quarantine = None;
        self.status_code = JobStatusCode::Active;
    }

    /// A failed cycle: the job enters quarantine (or stays in it, one more in the series) and
    /// is disabled once the series is four weeks old.
    pub(crate) fn record_failure(
        &mut self,
        began: SystemTime,
        now: SystemTime,
        error: ExecutionError,
    ) {
        self.last_execution = Some(Execution {
            state: ExecutionState::Failed,
            time_began: began,
            time_ended: now,
            error: Some(error.clone()),
        });
        self.successive_failures = self.successive_failures.saturating_add(1);
        let (series_began, series_count) = match &self.quarantine {
            Some(quarantine) => (
                quarantine.series_began,
                quarantine.series_count.saturating_add(1),
            ),
            None => (now, 1),
        };
        self.quarantine = Some(Quarantine {
            reason: QuarantineReason::EncounteredQuarantineException,
            current_began: now,
            next_attempt: now + retry_after(series_count),
            series_began,
            series_count,
            error: Some(error),
        });
        self.status_code = JobStatusCode::Quarantine;
        if now.duration_since(series_began).unwrap_or_default() >= DISABLED_AFTER {
            self.schedule_state = ScheduleState::Disabled;
        }
    }

    pub(crate) fn restart(&mut self, scope: Option<ResetScope>, now: SystemTime) {
        let lifts_quarantine = scope
            .as_ref()
            .is_some_and(|scope| scope.resets(ResetFlag::QuarantineState));
        if scope
            .as_ref()
            .is_some_and(|scope| scope.resets(ResetFlag::ConnectorDataStore))
        {
            self.steady_state_last_achieved = None;
        }
        self.restarts.push(RestartRecord {
            scope,
            was_active: self.status_code == JobStatusCode::Active,
            at: now,
        });
        if lifts_quarantine && self.quarantine.take().is_some() {
            self.status_code = JobStatusCode::Active;
        }
    }

    pub(crate) fn start(&mut self, now: SystemTime) {
        self.starts.push(StartRecord {
            was_active: self.status_code == JobStatusCode::Active,
            at: now,
        });
        self.quarantine = None;
        self.status_code = JobStatusCode::Active;
        self.schedule_state = ScheduleState::Active;
    }

    /// Sets the state by hand; `Quarantine` without a quarantine gets one `QuarantinedOnDemand`.
    pub(crate) fn set_state(
        &mut self,
        code: JobStatusCode,
        schedule: ScheduleState,
        now: SystemTime,
    ) {
        self.status_code = code;
        self.schedule_state = schedule;
        if code != JobStatusCode::Quarantine {
            self.quarantine = None;
        } else if self.quarantine.is_none() {
            self.quarantine = Some(Quarantine {
                reason: QuarantineReason::QuarantinedOnDemand,
                current_began: now,
                next_attempt: now + retry_after(1),
                series_began: now,
                series_count: 1,
                error: None,
            });
        }
    }
}
