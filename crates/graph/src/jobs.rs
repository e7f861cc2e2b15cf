//! Provisioning (synchronization) jobs as Graph reports them, parsed leniently: unknown fields
//! are ignored, unknown enum values kept as text, fields of the wrong type count as missing,
//! and empty or `0001-01-01T00:00:00Z` timestamps read as `None` (Microsoft's own examples
//! have both).

use std::fmt;

use serde_json::{Map, Value};

use sync_client_http::{Malformed, as_object, non_empty_string as text, parse_json};

/// A provisioning job of a service principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynchronizationJob {
    pub id: String,
    /// The template the job was made from (e.g. `scim`, `customappsso`).
    pub template_id: Option<String>,
    /// `schedule.state`: `Active`, `Disabled` or `Paused` (kept as sent).
    pub schedule_state: Option<String>,
    pub status: JobStatus,
}

impl SynchronizationJob {
    /// Whether the job is quarantined (`status.code` is `Quarantine`).
    pub fn is_quarantined(&self) -> bool {
        self.status.code == JobStatusCode::Quarantine
    }
}

/// `status` of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStatus {
    pub code: JobStatusCode,
    /// Present while the job is quarantined (and sometimes, empty, when it is not).
    pub quarantine: Option<Quarantine>,
    pub last_execution: Option<Execution>,
    pub last_successful_execution: Option<Execution>,
    /// When the job last reached steady state; `None` when never.
    pub steady_state_last_achieved_time: Option<String>,
}

/// `status.code` of a job.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobStatusCode {
    NotConfigured,
    NotRun,
    Active,
    Paused,
    Quarantine,
    /// A value this client does not know, as sent; empty when the answer had none.
    Other(String),
}

impl Default for JobStatusCode {
    fn default() -> Self {
        Self::Other(String::new())
    }
}

impl JobStatusCode {
    /// The known values case-insensitively; anything else as [`JobStatusCode::Other`].
    pub fn parse(text: &str) -> Self {
        [
            Self::NotConfigured,
            Self::NotRun,
            Self::Active,
            Self::Paused,
            Self::Quarantine,
        ]
        .into_iter()
        .find(|code| code.as_str().eq_ignore_ascii_case(text))
        .unwrap_or_else(|| Self::Other(text.to_owned()))
    }

    /// The value as Graph spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::NotConfigured => "NotConfigured",
            Self::NotRun => "NotRun",
            Self::Active => "Active",
            Self::Paused => "Paused",
            Self::Quarantine => "Quarantine",
            Self::Other(text) => text,
        }
    }
}

impl fmt::Display for JobStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `status.quarantine` of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quarantine {
    /// e.g. `EncounteredQuarantineException` (invalid credentials), `TooManyDeletes` (as sent).
    pub reason: Option<String>,
    pub current_began: Option<String>,
    pub next_attempt: Option<String>,
    pub series_began: Option<String>,
    pub series_count: Option<i64>,
    pub error: Option<ExecutionError>,
}

/// `status.lastExecution` or `status.lastSuccessfulExecution` of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Execution {
    /// `Succeeded`, `Failed` or `EntryLevelErrors` (as sent).
    pub state: Option<String>,
    pub time_began: Option<String>,
    pub time_ended: Option<String>,
    pub error: Option<ExecutionError>,
}

/// An `error` of a quarantine or an execution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub tenant_actionable: Option<bool>,
}

/// The jobs of `GET /jobs`: `{"value": [job, …]}`. Entries that are not objects or have no
/// `id` cannot be addressed and are left out.
pub(crate) fn parse_job_list(body: &[u8]) -> Result<Vec<SynchronizationJob>, Malformed> {
    let json = parse_json(body)?;
    let jobs = as_object(&json)?
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| Malformed::new("the answer holds no job list (value)"))?;
    Ok(jobs.iter().filter_map(|job| read_job(job).ok()).collect())
}

/// The job of `GET /jobs/{jobId}`.
pub(crate) fn parse_job(body: &[u8]) -> Result<SynchronizationJob, Malformed> {
    read_job(&parse_json(body)?)
}

fn read_job(json: &Value) -> Result<SynchronizationJob, Malformed> {
    let object = as_object(json)?;
    let id = text(object, "id").ok_or_else(|| Malformed::new("the job has no id"))?;
    let status = object.get("status").and_then(Value::as_object);
    Ok(SynchronizationJob {
        id,
        template_id: text(object, "templateId"),
        schedule_state: object
            .get("schedule")
            .and_then(Value::as_object)
            .and_then(|schedule| text(schedule, "state")),
        status: status.map(read_status).unwrap_or_default(),
    })
}

fn read_status(status: &Map<String, Value>) -> JobStatus {
    JobStatus {
        code: text(status, "code")
            .map_or_else(JobStatusCode::default, |code| JobStatusCode::parse(&code)),
        quarantine: child(status, "quarantine").map(|quarantine| Quarantine {
            reason: text(quarantine, "reason"),
            current_began: timestamp(quarantine, "currentBegan"),
            next_attempt: timestamp(quarantine, "nextAttempt"),
            series_began: timestamp(quarantine, "seriesBegan"),
            series_count: integer(quarantine, "seriesCount"),
            error: child(quarantine, "error").map(read_error),
        }),
        last_execution: child(status, "lastExecution").map(read_execution),
        last_successful_execution: child(status, "lastSuccessfulExecution").map(read_execution),
        steady_state_last_achieved_time: timestamp(status, "steadyStateLastAchievedTime"),
    }
}

fn read_execution(execution: &Map<String, Value>) -> Execution {
    Execution {
        state: text(execution, "state"),
        time_began: timestamp(execution, "timeBegan"),
        time_ended: timestamp(execution, "timeEnded"),
        error: child(execution, "error").map(read_error),
    }
}

fn read_error(error: &Map<String, Value>) -> ExecutionError {
    ExecutionError {
        code: text(error, "code"),
        message: text(error, "message"),
        tenant_actionable: match error.get("tenantActionable") {
            Some(Value::Bool(flag)) => Some(*flag),
            Some(Value::String(flag)) => flag.trim().parse().ok(),
            _ => None,
        },
    }
}

fn child<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    object.get(key).and_then(Value::as_object)
}

/// A timestamp: `None` when blank or `0001-01-01…` (.NET's `DateTime.MinValue`, "never").
fn timestamp(object: &Map<String, Value>, key: &str) -> Option<String> {
    text(object, key).filter(|value| !value.trim_start().starts_with("0001-01-01"))
}

/// An integer, or a string holding one.
fn integer(object: &Map<String, Value>, key: &str) -> Option<i64> {
    match object.get(key)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_codes_are_known_or_kept() {
        assert_eq!(
            JobStatusCode::parse("Quarantine"),
            JobStatusCode::Quarantine
        );
        assert_eq!(JobStatusCode::parse("notRun"), JobStatusCode::NotRun);
        assert_eq!(
            JobStatusCode::parse("Warming"),
            JobStatusCode::Other("Warming".to_owned())
        );
        assert_eq!(
            JobStatusCode::Other("Warming".to_owned()).to_string(),
            "Warming"
        );
    }

    #[test]
    fn a_job_needs_an_id_and_nothing_else() {
        let job = parse_job(br#"{"id":"j1"}"#).expect("minimal job");
        assert_eq!(job.id, "j1");
        assert_eq!(job.status, JobStatus::default());
        assert!(!job.is_quarantined());
        for body in [&br#"{"id":""}"#[..], br#"{"id":7}"#, b"[]", b"null", b""] {
            assert!(parse_job(body).is_err());
        }
    }

    #[test]
    fn wrong_types_count_as_missing() {
        let body = json!({
            "id": "j1",
            "templateId": 5,
            "schedule": "Active",
            "status": {
                "code": ["Active"],
                "quarantine": {"seriesCount": "12", "error": {"tenantActionable": "true"}},
                "lastExecution": "yesterday",
                "steadyStateLastAchievedTime": 0
            }
        });
        let job = parse_job(body.to_string().as_bytes()).expect("lenient");
        assert_eq!(job.template_id, None);
        assert_eq!(job.schedule_state, None);
        assert_eq!(job.status.code, JobStatusCode::default());
        let quarantine = job.status.quarantine.expect("quarantine");
        assert_eq!(quarantine.series_count, Some(12));
        assert_eq!(
            quarantine.error.and_then(|error| error.tenant_actionable),
            Some(true)
        );
        assert_eq!(job.status.last_execution, None);
        assert_eq!(job.status.steady_state_last_achieved_time, None);
    }

    #[test]
    fn lists_leave_out_entries_without_an_id() {
        let body = json!({"value": [{"id": "a"}, {"templateId": "scim"}, 7, {"id": "b"}]});
        let jobs = parse_job_list(body.to_string().as_bytes()).expect("list");
        let ids: Vec<&str> = jobs.iter().map(|job| job.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(parse_job_list(br#"{"jobs":[]}"#).is_err());
        assert!(
            parse_job_list(br#"{"value":[]}"#)
                .expect("empty")
                .is_empty()
        );
    }
}
