//! validateCredentials and provisioning cycles against a real broker simulator's SCIM endpoint:
//! live tokens pass, revoked ones fail and quarantine the job, restart lifts the quarantine, and
//! a read lag after PUT shows the previous secrets for a while.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    DIRECTORY, JOB, SERVICE_PRINCIPAL, access_token, broker_with_live_token, get, graph_error,
    key_values, post, put_secrets, start_with,
};
use serde_json::{Value, json};
use sync_client_broker_sim::Endpoint;
use sync_client_entra_sim::{
    Call, CycleOutcome, EntraSim, EntraSimConfig, ExecutionState, Fault, JobStatusCode,
    QuarantineReason, ScheduleState, ScimOutcome, ScimPurpose, SecretMasking,
    VALIDATION_FAILURE_CODE,
};

fn trusting(ca_pem: String) -> EntraSimConfig {
    EntraSimConfig {
        scim_trusted_ca_pems: vec![ca_pem],
        ..EntraSimConfig::default()
    }
}

async fn validate(
    client: &reqwest::Client,
    sim: &EntraSim,
    token: &str,
    body: &Value,
) -> reqwest::Response {
    let path = format!("/jobs/{JOB}/validateCredentials");
    post(client, sim, token, &path, Some(body)).await
}

/// The error message of a failed validation, checking its code.
async fn validation_failure(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], VALIDATION_FAILURE_CODE, "{body}");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn given_credentials_are_tried_on_the_scim_endpoint_with_a_user_name_filter() {
    let (broker, live_token, base_address) = broker_with_live_token().await;
    let (sim, client) = start_with(trusting(broker.ca_pem().unwrap())).await;
    let token = access_token(&client, &sim).await;
    let given = |scim_token: &str| {
        key_values(
            "credentials",
            &[("BaseAddress", &base_address), ("SecretToken", scim_token)],
        )
    };

    let accepted = validate(&client, &sim, &token, &given(&live_token)).await;
    assert_eq!(accepted.status(), 204);
    let probe = broker
        .requests()
        .into_iter()
        .find(|request| request.endpoint == Endpoint::ScimProbe)
        .unwrap();
    assert_eq!(
        probe.header("authorization"),
        Some(format!("Bearer {live_token}").as_str())
    );
    let filter = probe.query_param("filter").unwrap();
    let calls = sim.scim_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].purpose, ScimPurpose::ValidateCredentials);
    assert_eq!(calls[0].outcome, ScimOutcome::Accepted);
    assert_eq!(
        filter,
        format!(
            "userName eq \"{}\"",
            calls[0].filtered_user_name.as_deref().unwrap()
        )
    );
    assert!(
        probe.query.as_deref().unwrap().contains("%22"),
        "the filter is URL-encoded"
    );
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL),
        None,
        "validating stores nothing"
    );

    // The broker revokes the token at the next rotation: the same check now fails.
    let rotated = broker.generate_out_of_band(DIRECTORY).unwrap();
    let message =
        validation_failure(validate(&client, &sim, &token, &given(&live_token)).await).await;
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(message.contains(&base_address), "{message}");
    assert!(!message.contains(&live_token) && !message.contains(&rotated));
    assert_eq!(
        validate(&client, &sim, &token, &given(&rotated))
            .await
            .status(),
        204
    );
    assert_eq!(broker.count_with_status(Endpoint::ScimProbe, 401), 1);
    let request = sim
        .requests()
        .into_iter()
        .find(|request| request.call == Call::ValidateCredentials)
        .unwrap();
    assert_eq!(request.secret_keys, ["BaseAddress", "SecretToken"]);
}

#[tokio::test]
async fn saved_credentials_are_validated_as_delivered() {
    let (broker, live_token, base_address) = broker_with_live_token().await;
    let (sim, client) = start_with(trusting(broker.ca_pem().unwrap())).await;
    let token = access_token(&client, &sim).await;
    let saved = json!({"useSavedCredentials": true});

    let message = validation_failure(validate(&client, &sim, &token, &saved).await).await;
    assert!(message.contains("not set"), "{message}");
    put_secrets(
        &client,
        &sim,
        &token,
        &[("BaseAddress", &base_address), ("SecretToken", &live_token)],
    )
    .await;
    assert_eq!(validate(&client, &sim, &token, &saved).await.status(), 204);
    broker.generate_out_of_band(DIRECTORY).unwrap();
    validation_failure(validate(&client, &sim, &token, &saved).await).await;
    assert_eq!(sim.count_with_status(Call::ValidateCredentials, 204), 1);
    assert_eq!(sim.count_with_status(Call::ValidateCredentials, 400), 2);
}

#[tokio::test]
async fn keys_are_case_sensitive_and_only_trusted_loopback_https_targets_are_called() {
    let (broker, live_token, base_address) = broker_with_live_token().await;
    let (sim, client) = start_with(EntraSimConfig::default()).await;
    let token = access_token(&client, &sim).await;
    let given = |base: &str| {
        key_values(
            "credentials",
            &[("BaseAddress", base), ("SecretToken", &live_token)],
        )
    };

    let lower = key_values(
        "credentials",
        &[("baseAddress", &base_address), ("SecretToken", &live_token)],
    );
    let response = validate(&client, &sim, &token, &lower).await;
    assert_eq!(
        graph_error(response).await,
        (500, "InternalServerError".to_owned())
    );
    let unknown = key_values("credentials", &[("Endpoint", &base_address)]);
    let response = validate(&client, &sim, &token, &unknown).await;
    assert_eq!(graph_error(response).await, (400, "BadRequest".to_owned()));

    // Not trusted yet: the TLS handshake fails.
    let message =
        validation_failure(validate(&client, &sim, &token, &given(&base_address)).await).await;
    assert!(message.contains("could not be reached"), "{message}");
    for base in [
        "https://example.com/scim/v2",
        "https://10.0.0.1/scim/v2",
        "http://127.0.0.1:1/scim/v2",
    ] {
        validation_failure(validate(&client, &sim, &token, &given(base)).await).await;
    }
    let outcomes: Vec<ScimOutcome> = sim
        .scim_calls()
        .into_iter()
        .map(|call| call.outcome)
        .collect();
    assert!(matches!(outcomes[0], ScimOutcome::Unreachable(_)));
    assert_eq!(
        outcomes[1..],
        [
            ScimOutcome::NotLoopback,
            ScimOutcome::NotLoopback,
            ScimOutcome::InvalidBaseAddress
        ]
    );
    assert_eq!(
        broker.count(Endpoint::ScimProbe),
        0,
        "nothing reached the broker"
    );

    assert_eq!(sim.trust_scim_ca(&broker.ca_pem().unwrap()), 1);
    assert_eq!(
        validate(&client, &sim, &token, &given(&base_address))
            .await
            .status(),
        204
    );
    let via_localhost = base_address.replace("127.0.0.1", "localhost");
    assert_eq!(
        validate(&client, &sim, &token, &given(&via_localhost))
            .await
            .status(),
        204
    );
    assert_eq!(broker.count(Endpoint::ScimProbe), 2);
}

#[tokio::test]
async fn a_cycle_with_a_revoked_token_quarantines_the_job_and_restart_lifts_it() {
    let (broker, live_token, base_address) = broker_with_live_token().await;
    let (sim, client) = start_with(trusting(broker.ca_pem().unwrap())).await;
    sim.store_secrets(
        SERVICE_PRINCIPAL,
        &[("BaseAddress", &base_address), ("SecretToken", &live_token)],
    );

    assert_eq!(
        sim.run_provisioning_cycle(SERVICE_PRINCIPAL, JOB).await,
        CycleOutcome::Succeeded
    );
    let job = sim.job(SERVICE_PRINCIPAL, JOB).unwrap();
    assert_eq!(
        job.last_successful_execution.as_ref().unwrap().state,
        ExecutionState::Succeeded
    );
    assert!(job.steady_state_last_achieved.is_some());

    // A rotation that never reached Entra ID: the held token is dead.
    let new_token = broker.generate_out_of_band(DIRECTORY).unwrap();
    for series_count in 1..=2 {
        assert_eq!(
            sim.run_provisioning_cycle(SERVICE_PRINCIPAL, JOB).await,
            CycleOutcome::Quarantined(ScimOutcome::Refused { status: 401 })
        );
        let quarantine = sim.job(SERVICE_PRINCIPAL, JOB).unwrap().quarantine.unwrap();
        assert_eq!(
            quarantine.reason,
            QuarantineReason::EncounteredQuarantineException
        );
        assert_eq!(quarantine.series_count, series_count);
        assert!(quarantine.next_attempt > quarantine.current_began);
        assert!(quarantine.error.unwrap().message.contains("HTTP 401"));
    }

    let token = access_token(&client, &sim).await;
    let job: Value = get(&client, &sim, &token, &format!("/jobs/{JOB}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"]["code"], "Quarantine");
    assert_eq!(
        job["status"]["quarantine"]["reason"],
        "EncounteredQuarantineException"
    );
    assert_eq!(job["status"]["quarantine"]["seriesCount"], 2);
    assert_eq!(job["status"]["lastExecution"]["state"], "Failed");
    assert!(job["status"]["lastSuccessfulExecution"]["timeEnded"].is_string());
    assert!(!job.to_string().contains(&live_token) && !job.to_string().contains(&new_token));

    // Deliver the new token, then lift the quarantine as the operator would.
    put_secrets(
        &client,
        &sim,
        &token,
        &[("BaseAddress", &base_address), ("SecretToken", &new_token)],
    )
    .await;
    let restart = json!({"criteria": {"resetScope": "QuarantineState"}});
    assert_eq!(
        post(
            &client,
            &sim,
            &token,
            &format!("/jobs/{JOB}/restart"),
            Some(&restart)
        )
        .await
        .status(),
        204
    );
    let job = sim.job(SERVICE_PRINCIPAL, JOB).unwrap();
    assert_eq!(job.status_code, JobStatusCode::Active);
    assert!(job.quarantine.is_none());
    assert_eq!(
        sim.run_provisioning_cycle(SERVICE_PRINCIPAL, JOB).await,
        CycleOutcome::Succeeded
    );
    assert_eq!(
        sim.job(SERVICE_PRINCIPAL, JOB).unwrap().successive_failures,
        0
    );
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL),
        broker.current_token(DIRECTORY)
    );

    sim.set_job_state(
        SERVICE_PRINCIPAL,
        JOB,
        JobStatusCode::Paused,
        ScheduleState::Paused,
    );
    assert_eq!(
        sim.run_provisioning_cycle(SERVICE_PRINCIPAL, JOB).await,
        CycleOutcome::NotScheduled
    );
    assert_eq!(
        sim.run_provisioning_cycle(SERVICE_PRINCIPAL, "other").await,
        CycleOutcome::UnknownJob
    );
    let cycles = sim
        .scim_calls()
        .iter()
        .filter(|call| call.purpose == ScimPurpose::ProvisioningCycle)
        .count();
    assert_eq!(cycles, 4);
}

#[tokio::test]
async fn after_a_lagging_put_readers_see_the_previous_secrets_for_a_while() {
    let (broker, old_token, base_address) = broker_with_live_token().await;
    let config = EntraSimConfig {
        secret_masking: SecretMasking::CredentialsOnly,
        ..trusting(broker.ca_pem().unwrap())
    };
    let (sim, client) = start_with(config).await;
    let token = access_token(&client, &sim).await;
    put_secrets(
        &client,
        &sim,
        &token,
        &[("BaseAddress", &base_address), ("SecretToken", &old_token)],
    )
    .await;
    let new_token = broker.generate_out_of_band(DIRECTORY).unwrap();

    sim.inject(Fault::on(Call::PutSecrets).read_lag(Duration::from_millis(700)));
    let moved = format!("{base_address}/");
    let put = put_secrets(
        &client,
        &sim,
        &token,
        &[("BaseAddress", &moved), ("SecretToken", &new_token)],
    )
    .await;
    assert_eq!(put.status(), 204);
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL).as_deref(),
        Some(new_token.as_str())
    );

    let base_seen = async || {
        let body: Value = get(&client, &sim, &token, "/secrets")
            .await
            .json()
            .await
            .unwrap();
        body["value"][0]["value"].as_str().unwrap().to_owned()
    };
    let saved = json!({"useSavedCredentials": true});
    assert_eq!(
        base_seen().await,
        base_address,
        "GET still shows the previous BaseAddress"
    );
    validation_failure(validate(&client, &sim, &token, &saved).await).await;
    assert!(matches!(
        sim.run_provisioning_cycle(SERVICE_PRINCIPAL, JOB).await,
        CycleOutcome::Quarantined(ScimOutcome::Refused { status: 401 })
    ));

    let mut validated = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if validate(&client, &sim, &token, &saved).await.status() == 204 {
            validated += 1;
            break;
        }
    }
    assert_eq!(
        validated, 1,
        "the new token became visible once the lag passed"
    );
    assert_eq!(base_seen().await, moved);
}
