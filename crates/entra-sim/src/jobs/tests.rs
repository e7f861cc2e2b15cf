//! The job state machine (quarantine series, restarts, starts), `resetScope` parsing and the
//! job's Graph JSON.

use super::json::NEVER;
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
