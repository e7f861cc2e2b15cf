//! Every Graph call and its success shape: method, path (ids percent-encoded), headers and the
//! exact bodies of the writes; job answers parsed leniently, from Microsoft's documented
//! example to unknown fields and enum values.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{
    BASE_ADDRESS, JOB_ID, MockEntra, Reply, Route, SCIM_TOKEN, SP_ID, client, config,
    documented_job, expect_error, observed_client,
};
use sync_client_graph::{
    Execution, ExecutionError, GraphErrorKind, JobStatusCode, Quarantine, SecretString,
};

fn synchronization_path(rest: &str) -> String {
    format!("/v1.0/servicePrincipals/{SP_ID}/synchronization{rest}")
}

/// Checks the headers every Graph request carries and returns the request.
fn only_request(mock: &MockEntra, route: Route) -> support::Recorded {
    let requests = mock.requests_to(route);
    assert_eq!(requests.len(), 1, "{route:?}");
    let request = requests.into_iter().next().unwrap();
    assert_eq!(request.bearer().as_deref(), Some("graph-token-SECRET-1"));
    assert_eq!(
        request.header("accept").as_deref(),
        Some("application/json")
    );
    assert!(
        request
            .header("user-agent")
            .is_some_and(|agent| agent.starts_with("sync-client-graph/"))
    );
    request
}

#[tokio::test]
async fn list_jobs_reads_the_value_list() {
    let mock = MockEntra::start().await;
    mock.set_jobs(
        SP_ID,
        vec![
            documented_job(JOB_ID, "Active"),
            documented_job("second.job", "Paused"),
        ],
    );
    let client = client(config(&mock));

    let jobs = client.list_jobs(SP_ID).await.expect("jobs");

    let summary: Vec<(&str, JobStatusCode)> = jobs
        .iter()
        .map(|job| (job.id.as_str(), job.status.code.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (JOB_ID, JobStatusCode::Active),
            ("second.job", JobStatusCode::Paused)
        ]
    );
    let request = only_request(&mock, Route::ListJobs);
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, synchronization_path("/jobs"));
    assert!(request.body.is_empty());
}

#[tokio::test]
async fn get_job_reads_microsofts_documented_example() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));

    let job = client.get_job(SP_ID, JOB_ID).await.expect("job");

    assert_eq!(job.id, JOB_ID);
    assert_eq!(job.template_id.as_deref(), Some("scim"));
    assert_eq!(job.schedule_state.as_deref(), Some("Active"));
    assert_eq!(job.status.code, JobStatusCode::Active);
    assert_eq!(job.status.quarantine, None);
    assert_eq!(job.status.last_execution, None);
    assert_eq!(
        job.status.steady_state_last_achieved_time, None,
        "0001-01-01T00:00:00Z means never"
    );
    assert!(!job.is_quarantined());
    let request = only_request(&mock, Route::GetJob);
    assert_eq!(
        request.path,
        synchronization_path(&format!("/jobs/{JOB_ID}"))
    );
}

#[tokio::test]
async fn a_quarantined_job_is_read_with_empty_timestamps_unknown_fields_and_enums() {
    let mock = MockEntra::start().await;
    let mut job = documented_job(JOB_ID, "Quarantine");
    job["schedule"]["state"] = json!("Disabled");
    job["status"]["quarantine"] = json!({
        "currentBegan": "2024-05-01T09:12:00Z",
        "nextAttempt": "",
        "reason": "EncounteredQuarantineException",
        "seriesBegan": "",
        "seriesCount": 3,
        "error": {
            "code": "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable",
            "message": "The SCIM endpoint refused the credentials.",
            "tenantActionable": true
        },
        "futureField": {"nested": [1, 2, 3]}
    });
    job["status"]["lastExecution"] = json!({
        "activityIdentifier": "a1b2",
        "countEntitled": 0,
        "countExported": 0,
        "error": {"code": "Unauthorized", "message": "401 from the SCIM endpoint", "tenantActionable": false},
        "state": "Failed",
        "timeBegan": "2024-05-01T09:10:00Z",
        "timeEnded": "2024-05-01T09:11:00Z"
    });
    job["status"]["lastSuccessfulExecution"] = json!({
        "state": "EntryLevelErrors",
        "timeBegan": "2024-04-30T09:10:00Z",
        "timeEnded": "0001-01-01T00:00:00Z",
        "error": null
    });
    job["status"]["steadyStateLastAchievedTime"] = json!("2024-04-30T09:11:00Z");
    job["status"]["newStatusField"] = json!("ignored");
    mock.set_jobs(SP_ID, vec![job]);
    let client = client(config(&mock));

    let job = client.get_job(SP_ID, JOB_ID).await.expect("job");

    assert!(job.is_quarantined());
    assert_eq!(job.schedule_state.as_deref(), Some("Disabled"));
    assert_eq!(
        job.status.quarantine,
        Some(Quarantine {
            reason: Some("EncounteredQuarantineException".to_owned()),
            current_began: Some("2024-05-01T09:12:00Z".to_owned()),
            next_attempt: None,
            series_began: None,
            series_count: Some(3),
            error: Some(ExecutionError {
                code: Some(
                    "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable"
                        .to_owned()
                ),
                message: Some("The SCIM endpoint refused the credentials.".to_owned()),
                tenant_actionable: Some(true),
            }),
        })
    );
    assert_eq!(
        job.status.last_execution,
        Some(Execution {
            state: Some("Failed".to_owned()),
            time_began: Some("2024-05-01T09:10:00Z".to_owned()),
            time_ended: Some("2024-05-01T09:11:00Z".to_owned()),
            error: Some(ExecutionError {
                code: Some("Unauthorized".to_owned()),
                message: Some("401 from the SCIM endpoint".to_owned()),
                tenant_actionable: Some(false),
            }),
        })
    );
    assert_eq!(
        job.status.last_successful_execution,
        Some(Execution {
            state: Some("EntryLevelErrors".to_owned()),
            time_began: Some("2024-04-30T09:10:00Z".to_owned()),
            time_ended: None,
            error: None,
        })
    );
    assert_eq!(
        job.status.steady_state_last_achieved_time.as_deref(),
        Some("2024-04-30T09:11:00Z")
    );

    let mut unknown = documented_job(JOB_ID, "Hibernating");
    unknown["status"]["quarantine"] = json!({"reason": "SomeFutureReason", "currentBegan": ""});
    mock.set_jobs(SP_ID, vec![unknown]);
    let job = client.get_job(SP_ID, JOB_ID).await.expect("job");
    assert_eq!(
        job.status.code,
        JobStatusCode::Other("Hibernating".to_owned())
    );
    assert!(!job.is_quarantined());
    let quarantine = job.status.quarantine.unwrap();
    assert_eq!(quarantine.reason.as_deref(), Some("SomeFutureReason"));
    assert_eq!(quarantine.current_began, None);
}

#[tokio::test]
async fn put_secrets_sends_both_keys_exactly() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));

    client
        .put_secrets(SP_ID, BASE_ADDRESS, &SecretString::from(SCIM_TOKEN))
        .await
        .expect("saved");

    let request = only_request(&mock, Route::PutSecrets);
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, synchronization_path("/secrets"));
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        request.json_body(),
        json!({"value": [
            {"key": "BaseAddress", "value": BASE_ADDRESS},
            {"key": "SecretToken", "value": SCIM_TOKEN}
        ]})
    );
}

#[tokio::test]
async fn empty_secrets_are_never_sent() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    for (base_address, token) in [("", SCIM_TOKEN), (BASE_ADDRESS, " ")] {
        let error = expect_error(
            client
                .put_secrets(SP_ID, base_address, &SecretString::from(token))
                .await,
        );
        assert_eq!(error.kind(), GraphErrorKind::Configuration);
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn validate_credentials_uses_the_saved_credentials() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));

    client
        .validate_saved_credentials(SP_ID, JOB_ID)
        .await
        .expect("valid");

    let request = only_request(&mock, Route::Validate);
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        synchronization_path(&format!("/jobs/{JOB_ID}/validateCredentials"))
    );
    assert_eq!(request.body, br#"{"useSavedCredentials":true}"#);
}

#[tokio::test]
async fn restart_lifts_the_quarantine_and_nothing_else() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));

    client
        .restart_quarantined_job(SP_ID, JOB_ID)
        .await
        .expect("restarted");

    let request = only_request(&mock, Route::Restart);
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        synchronization_path(&format!("/jobs/{JOB_ID}/restart"))
    );
    assert_eq!(
        request.body,
        br#"{"criteria":{"resetScope":"QuarantineState"}}"#
    );
    assert_eq!(mock.count(Route::Unknown), 0, "no start, nothing else");
}

#[tokio::test]
async fn ids_are_percent_encoded_path_segments() {
    let mock = MockEntra::start().await;
    let odd_principal = "sp/../x y?z#";
    let odd_job = "job%2F..";
    mock.set_jobs(
        "sp%2F..%2Fx%20y%3Fz%23",
        vec![documented_job(odd_job, "Active")],
    );
    let client = client(config(&mock));

    let job = client.get_job(odd_principal, odd_job).await.expect("job");

    assert_eq!(job.id, odd_job);
    let request = only_request(&mock, Route::GetJob);
    assert_eq!(
        request.path,
        "/v1.0/servicePrincipals/sp%2F..%2Fx%20y%3Fz%23/synchronization/jobs/job%252F.."
    );
    for (principal, job) in [("..", JOB_ID), (SP_ID, "."), ("", JOB_ID)] {
        let error = expect_error(client.get_job(principal, job).await);
        assert_eq!(error.kind(), GraphErrorKind::Configuration, "{error}");
    }
    assert_eq!(mock.count(Route::GetJob), 1);
}

#[tokio::test]
async fn the_observer_hears_every_request_once() {
    let mock = MockEntra::start().await;
    let (client, outcomes) = observed_client(&mock);
    mock.push(Route::GetJob, Reply::graph_error(404, "NotFound", "no job"));

    client.list_jobs(SP_ID).await.expect("jobs");
    let _ = client.get_job(SP_ID, JOB_ID).await;
    client
        .put_secrets(SP_ID, BASE_ADDRESS, &SecretString::from(SCIM_TOKEN))
        .await
        .expect("saved");
    client
        .validate_saved_credentials(SP_ID, JOB_ID)
        .await
        .expect("valid");
    client
        .restart_quarantined_job(SP_ID, JOB_ID)
        .await
        .expect("restarted");

    assert_eq!(
        outcomes.summary(),
        [
            ("token", Some(200), "success"),
            ("list_jobs", Some(200), "success"),
            ("get_job", Some(404), "not_found"),
            ("put_secrets", Some(204), "success"),
            ("validate_credentials", Some(204), "success"),
            ("restart_job", Some(204), "success"),
        ]
    );
}

#[tokio::test]
async fn answers_over_http2_and_http11_are_read_alike() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    client.get_job(SP_ID, JOB_ID).await.expect("job");
    let versions: Vec<_> = mock
        .requests()
        .iter()
        .map(|request| request.version)
        .collect();
    assert_eq!(
        versions,
        [hyper::Version::HTTP_2; 2],
        "ALPN negotiated HTTP/2"
    );
    // A chunked answer (no Content-Length) is read the same way.
    let body: Value = documented_job(JOB_ID, "Paused");
    mock.push(Route::GetJob, Reply::json(200, &body).chunked());
    let job = client.get_job(SP_ID, JOB_ID).await.expect("chunked job");
    assert_eq!(job.status.code, JobStatusCode::Paused);
}
