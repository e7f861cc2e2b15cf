//! A job's Graph JSON (`synchronizationJob`) and Graph's timestamps.

use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::{Execution, ExecutionError, JobSnapshot, Quarantine};

impl JobSnapshot {
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
pub(super) const NEVER: &str = "0001-01-01T00:00:00Z";

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
