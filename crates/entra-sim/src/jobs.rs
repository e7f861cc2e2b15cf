//! Provisioning jobs: their state machine (cycles, quarantine, restart, start) and their Graph
//! JSON (`synchronizationJob`).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

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

/// One flag of `restart`'s `resetScope` (documented members of
/// `synchronizationJobRestartScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResetFlag {
    None,
    ConnectorDataStore,
    Escrows,
    Watermark,
    QuarantineState,
    /// Includes `ConnectorDataStore`.
    Full,
    ForceDeletes,
}

const RESET_FLAGS: [ResetFlag; 7] = [
    ResetFlag::None,
    ResetFlag::ConnectorDataStore,
    ResetFlag::Escrows,
    ResetFlag::Watermark,
    ResetFlag::QuarantineState,
    ResetFlag::Full,
    ResetFlag::ForceDeletes,
];

impl ResetFlag {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::ConnectorDataStore => "ConnectorDataStore",
            Self::Escrows => "Escrows",
            Self::Watermark => "Watermark",
            Self::QuarantineState => "QuarantineState",
            Self::Full => "Full",
            Self::ForceDeletes => "ForceDeletes",
        }
    }
}

/// A parsed `resetScope`: the comma-separated flags string Graph uses for flags enums
/// (`"Watermark, Escrows, QuarantineState"`). Names are case-sensitive; spaces around them are
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetScope {
    flags: Vec<ResetFlag>,
}

impl ResetScope {
    /// `Err` names the first part that is not a flag.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut flags = Vec::new();
        for part in text.split(',').map(str::trim) {
            let flag = RESET_FLAGS
                .into_iter()
                .find(|flag| flag.name() == part)
                .ok_or_else(|| part.to_owned())?;
            if !flags.contains(&flag) {
                flags.push(flag);
            }
        }
        Ok(Self { flags })
    }

    /// Whether the string named `flag` itself.
    pub fn names(&self, flag: ResetFlag) -> bool {
        self.flags.contains(&flag)
    }

    /// Whether the restart resets what `flag` resets (`Full` resets everything but
    /// `ForceDeletes`).
    pub fn resets(&self, flag: ResetFlag) -> bool {
        self.names(flag) || (self.names(ResetFlag::Full) && flag != ResetFlag::ForceDeletes)
    }

    pub fn flags(&self) -> &[ResetFlag] {
        &self.flags
    }
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

    /// The Graph `synchronizationJob` JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "templateId": self.template_id,
            "schedule": {
                "expiration": null,
                "interval": "PT40M",
                "state": format!("{:?}", self.schedule_state),
            },
            "status": {
                "code": format!("{:?}", self.status_code),
                "countSuccessiveCompleteFailures": self.successive_failures,
                "escrowsPruned": false,
                "lastExecution": self.last_execution.as_ref().map(execution_json),
                "lastSuccessfulExecution": self.last_successful_execution.as_ref().map(execution_json),
                "lastSuccessfulExecutionWithExports": null,
                "progress": [],
                "quarantine": self.quarantine.as_ref().map(quarantine_json),
                "steadyStateFirstAchievedTime": NEVER,
                "steadyStateLastAchievedTime": self.steady_state_last_achieved.map_or_else(|| NEVER.to_owned(), timestamp),
                "synchronizedEntryCountByType": [],
                "troubleshootingUrl": null,
            },
            "synchronizationJobSettings": [],
        })
    }
}

/// Graph's "never" timestamp.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// An ISO 8601 UTC timestamp as Graph writes them.
pub(crate) fn timestamp(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn error_json(error: &ExecutionError) -> Value {
    json!({
        "code": error.code,
        "message": error.message,
        "tenantActionable": error.tenant_actionable,
    })
}

fn execution_json(execution: &Execution) -> Value {
    json!({
        "activityIdentifier": null,
        "countEntitled": 0,
        "countExported": 0,
        "countImported": 0,
        "state": format!("{:?}", execution.state),
        "timeBegan": timestamp(execution.time_began),
        "timeEnded": timestamp(execution.time_ended),
        "error": execution.error.as_ref().map(error_json),
    })
}

fn quarantine_json(quarantine: &Quarantine) -> Value {
    json!({
        "currentBegan": timestamp(quarantine.current_began),
        "nextAttempt": timestamp(quarantine.next_attempt),
        "reason": format!("{:?}", quarantine.reason),
        "seriesBegan": timestamp(quarantine.series_began),
        "seriesCount": quarantine.series_count,
        "error": quarantine.error.as_ref().map(error_json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> ExecutionError {
        ExecutionError {
            code: "X".to_owned(),
            message: "refused".to_owned(),
            tenant_actionable: true,
        }
    }

    #[test]
    fn reset_scope_parses_flag_strings_case_sensitively() {
        let scope = ResetScope::parse("Watermark, Escrows,QuarantineState").expect("flags");
        assert_eq!(
            scope.flags(),
            [
                ResetFlag::Watermark,
                ResetFlag::Escrows,
                ResetFlag::QuarantineState
            ]
        );
        assert!(
            ResetScope::parse("Full")
                .expect("flag")
                .resets(ResetFlag::ConnectorDataStore)
        );
        assert!(
            !ResetScope::parse("Full")
                .expect("flag")
                .names(ResetFlag::ConnectorDataStore)
        );
        assert_eq!(
            ResetScope::parse("quarantineState"),
            Err("quarantineState".to_owned())
        );
        assert_eq!(ResetScope::parse(""), Err(String::new()));
    }

    #[test]
    fn failures_quarantine_with_a_growing_series_and_success_lifts_it() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut job = JobSnapshot::new("job", "scim");
        job.record_failure(start, start, failure());
        let quarantine = job.quarantine.clone().expect("quarantined");
        assert_eq!(job.status_code, JobStatusCode::Quarantine);
        assert_eq!(
            quarantine.reason,
            QuarantineReason::EncounteredQuarantineException
        );
        assert_eq!(quarantine.series_count, 1);
        assert_eq!(
            quarantine.next_attempt,
            start + Duration::from_secs(6 * 3600)
        );
        let later = start + Duration::from_secs(6 * 3600);
        job.record_failure(later, later, failure());
        let quarantine = job.quarantine.clone().expect("quarantined");
        assert_eq!(
            (quarantine.series_count, quarantine.series_began),
            (2, start)
        );
        assert_eq!(
            quarantine.next_attempt,
            later + Duration::from_secs(12 * 3600)
        );
        assert_eq!(job.successive_failures, 2);
        let four_weeks = start + DISABLED_AFTER;
        job.record_failure(four_weeks, four_weeks, failure());
        assert_eq!(job.schedule_state, ScheduleState::Disabled);
        job.record_success(four_weeks, four_weeks);
        assert_eq!(job.status_code, JobStatusCode::Active);
        assert!(job.quarantine.is_none());
        assert_eq!(job.successive_failures, 0);
    }

    #[test]
    fn only_quarantine_resetting_restarts_lift_a_quarantine() {
        let now = SystemTime::now();
        let mut job = JobSnapshot::new("job", "scim");
        job.record_failure(now, now, failure());
        job.restart(Some(ResetScope::parse("Watermark").expect("flag")), now);
        job.restart(None, now);
        assert_eq!(job.status_code, JobStatusCode::Quarantine);
        job.restart(
            Some(ResetScope::parse("QuarantineState").expect("flag")),
            now,
        );
        assert_eq!(job.status_code, JobStatusCode::Active);
        assert_eq!(job.restart_count(ResetFlag::QuarantineState), 1);
        assert_eq!(
            job.restarts
                .iter()
                .filter(|restart| restart.was_active)
                .count(),
            0
        );
        job.start(now);
        assert_eq!(job.starts_on_active_job(), 1);
    }

    #[test]
    fn job_json_has_the_documented_fields() {
        let now = SystemTime::UNIX_EPOCH;
        let mut job = JobSnapshot::new("job", "scim");
        assert_eq!(
            job.to_json()["status"]["steadyStateLastAchievedTime"],
            NEVER
        );
        job.record_failure(now, now, failure());
        let body = job.to_json();
        assert_eq!(body["status"]["code"], "Quarantine");
        assert_eq!(
            body["status"]["quarantine"]["reason"],
            "EncounteredQuarantineException"
        );
        assert_eq!(
            body["status"]["quarantine"]["currentBegan"],
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            body["status"]["quarantine"]["error"]["tenantActionable"],
            true
        );
        assert_eq!(body["status"]["lastExecution"]["state"], "Failed");
        assert_eq!(body["schedule"]["state"], "Active");
    }
}
