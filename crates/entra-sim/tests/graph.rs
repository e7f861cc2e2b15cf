//! The Graph synchronization calls over real HTTPS: authorization, permissions, lookups, secrets
//! (upsert, key case, masking), restart and start with their records.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    CLIENT_ID, CLIENT_SECRET, JOB, SERVICE_PRINCIPAL, access_token, get, graph, graph_error,
    graph_url, post, put_secrets, secret_form, start, start_with, token_response,
};
use reqwest::Method;
use serde_json::{Value, json};
use sync_client_entra_sim::{
    AppRegistration, Call, ClientSecret, EntraSimConfig, InnerErrorSpelling, JobStatusCode,
    Permission, ResetFlag, ScheduleState, SecretMasking, ServicePrincipal,
};

const OWNER: &str = "owner-app";
const STRANGER: &str = "stranger-app";

#[tokio::test]
async fn jobs_are_listed_and_read_with_the_documented_fields() {
    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    let listed = get(&client, &sim, &token, "/jobs").await;
    assert_eq!(listed.status(), 200);
    assert!(
        listed.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = listed.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["id"], JOB);

    let job: Value = get(&client, &sim, &token, &format!("/jobs/{JOB}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["id"], JOB);
    assert_eq!(job["templateId"], "scim");
    assert_eq!(job["schedule"]["state"], "Active");
    assert_eq!(job["status"]["code"], "Active");
    assert_eq!(job["status"]["quarantine"], Value::Null);
    assert_eq!(
        job["status"]["steadyStateLastAchievedTime"],
        "0001-01-01T00:00:00Z"
    );

    // Graph's fixed segments ignore case.
    let url = format!(
        "{}/v1.0/serviceprincipals/{SERVICE_PRINCIPAL}/Synchronization/Jobs/{JOB}",
        sim.url()
    );
    assert_eq!(
        graph(&client, Method::GET, Some(&token), &url, None)
            .await
            .status(),
        200
    );

    sim.set_job_state(
        SERVICE_PRINCIPAL,
        JOB,
        JobStatusCode::Quarantine,
        ScheduleState::Active,
    );
    let job: Value = get(&client, &sim, &token, &format!("/jobs/{JOB}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"]["code"], "Quarantine");
    assert_eq!(job["status"]["quarantine"]["reason"], "QuarantinedOnDemand");
    assert_eq!(sim.count_with_status(Call::GetJob, 200), 3);
    assert_eq!(sim.count(Call::ListJobs), 1);
}

#[tokio::test]
async fn http2_is_served_and_shutdown_stops_serving() {
    let (sim, _) = start().await;
    let mut tls = sim.client_tls_config().unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let h2 = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(common::CLIENT_TIMEOUT)
        .build()
        .unwrap();
    let token = access_token(&h2, &sim).await;
    let response = get(&h2, &sim, &token, "/jobs").await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let url = graph_url(&sim, SERVICE_PRINCIPAL, "/jobs");
    sim.shutdown().await;
    let after = h2.get(&url).bearer_auth(&token).send().await;
    assert!(after.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn unknown_service_principals_and_jobs_are_404_request_resource_not_found() {
    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    let unknown_principal = graph_url(&sim, "00000000-0000-0000-0000-000000000000", "/jobs");
    let response = graph(&client, Method::GET, Some(&token), &unknown_principal, None).await;
    assert_eq!(
        graph_error(response).await,
        (404, "Request_ResourceNotFound".to_owned())
    );
    for (method, suffix, body) in [
        (Method::GET, "/jobs/no-such-job", None),
        (
            Method::POST,
            "/jobs/no-such-job/restart",
            Some(json!({"criteria": {"resetScope": "QuarantineState"}})),
        ),
        (Method::POST, "/jobs/no-such-job/start", None),
        (
            Method::POST,
            "/jobs/no-such-job/validateCredentials",
            Some(json!({"useSavedCredentials": true})),
        ),
    ] {
        let url = graph_url(&sim, SERVICE_PRINCIPAL, suffix);
        let response = graph(&client, method, Some(&token), &url, body.as_ref()).await;
        assert_eq!(
            graph_error(response).await,
            (404, "Request_ResourceNotFound".to_owned()),
            "{suffix}"
        );
    }
    let unknown_path = graph_url(&sim, SERVICE_PRINCIPAL, "/templates");
    let response = graph(&client, Method::GET, Some(&token), &unknown_path, None).await;
    assert_eq!(graph_error(response).await, (400, "BadRequest".to_owned()));
}

#[tokio::test]
async fn graph_wants_a_live_token_of_the_tenant() {
    let (sim, client) = start().await;
    let url = graph_url(&sim, SERVICE_PRINCIPAL, "/jobs");
    for token in [None, Some("not-a-token-the-simulator-issued")] {
        let response = graph(&client, Method::GET, token, &url, None).await;
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(
            graph_error(response).await,
            (401, "InvalidAuthenticationToken".to_owned())
        );
    }
    let requests = sim.requests();
    assert!(!requests[0].sent.bearer_token);
    assert!(requests[1].sent.bearer_token);
    assert_eq!(requests[1].client_id, None);
}

#[tokio::test]
async fn permissions_all_or_owned_by_with_ownership() {
    let (sim, client) = start().await;
    for app in [OWNER, STRANGER] {
        sim.register_app(AppRegistration::new(app).with_secret(ClientSecret::new(CLIENT_SECRET)));
        sim.grant(app, Permission::ApplicationReadWriteOwnedBy);
    }
    sim.register_app(
        AppRegistration::new("no-permission").with_secret(ClientSecret::new(CLIENT_SECRET)),
    );
    sim.add_service_principal(
        ServicePrincipal::new(SERVICE_PRINCIPAL)
            .owned_by(OWNER)
            .with_job(JOB, "scim"),
    );
    let token_of = async |app: &str| {
        common::access_token_of(
            token_response(&client, &sim, &secret_form(app, CLIENT_SECRET)).await,
        )
        .await
    };
    let owner = token_of(OWNER).await;
    let stranger = token_of(STRANGER).await;
    let nobody = token_of("no-permission").await;

    assert_eq!(get(&client, &sim, &owner, "/jobs").await.status(), 200);
    for token in [&stranger, &nobody] {
        assert_eq!(
            graph_error(get(&client, &sim, token, "/jobs").await).await,
            (403, "Authorization_RequestDenied".to_owned())
        );
    }
    // Ownership and permissions are read at every request.
    assert!(sim.set_owner(SERVICE_PRINCIPAL, STRANGER, true));
    assert_eq!(get(&client, &sim, &stranger, "/jobs").await.status(), 200);
    sim.revoke(STRANGER, Permission::ApplicationReadWriteOwnedBy);
    assert_eq!(get(&client, &sim, &stranger, "/jobs").await.status(), 403);
    sim.grant("no-permission", Permission::SynchronizationReadWriteAll);
    assert_eq!(get(&client, &sim, &nobody, "/jobs").await.status(), 200);
    assert!(!sim.set_owner("unknown", OWNER, true));
}

#[tokio::test]
async fn a_grant_that_takes_effect_late_answers_403_meanwhile() {
    let (sim, client) = start().await;
    sim.revoke(CLIENT_ID, Permission::SynchronizationReadWriteAll);
    sim.grant_after(
        CLIENT_ID,
        Permission::SynchronizationReadWriteAll,
        Duration::from_millis(300),
    );
    let token = access_token(&client, &sim).await;
    assert_eq!(get(&client, &sim, &token, "/jobs").await.status(), 403);
    let mut status = 403;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = get(&client, &sim, &token, "/jobs").await.status().as_u16();
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "the same token works once consent took effect");
}

#[tokio::test]
async fn put_secrets_upserts_per_key_and_get_masks_every_value() {
    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    assert_eq!(sim.held_secret_token(SERVICE_PRINCIPAL), None);
    let response = put_secrets(
        &client,
        &sim,
        &token,
        &[
            ("BaseAddress", "https://127.0.0.1:8443/scim/v2"),
            ("SecretToken", "first"),
        ],
    )
    .await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        put_secrets(&client, &sim, &token, &[("SecretToken", "second")])
            .await
            .status(),
        204
    );
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL).as_deref(),
        Some("second")
    );
    assert_eq!(
        sim.held_base_address(SERVICE_PRINCIPAL).as_deref(),
        Some("https://127.0.0.1:8443/scim/v2")
    );
    assert_eq!(
        sim.held_secret_keys(SERVICE_PRINCIPAL),
        ["BaseAddress", "SecretToken"]
    );

    let shown: Value = get(&client, &sim, &token, "/secrets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["value"],
        json!([{"key": "BaseAddress", "value": "*"}, {"key": "SecretToken", "value": "*"}])
    );

    for bad in [
        json!({"value": [{"key": "secretToken", "value": "x"}]}),
        json!({"value": [{"key": "Token", "value": "x"}]}),
        json!({"value": [{"key": "SecretToken", "value": 5}]}),
        json!({"values": []}),
    ] {
        let url = graph_url(&sim, SERVICE_PRINCIPAL, "/secrets");
        let response = graph(&client, Method::PUT, Some(&token), &url, Some(&bad)).await;
        assert_eq!(
            graph_error(response).await,
            (400, "BadRequest".to_owned()),
            "{bad}"
        );
    }
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL).as_deref(),
        Some("second"),
        "refused writes change nothing"
    );
    assert!(sim.store_secrets(SERVICE_PRINCIPAL, &[("SecretToken", "pasted")]));
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL).as_deref(),
        Some("pasted")
    );
}

#[tokio::test]
async fn masking_can_leave_settings_readable_and_errors_can_spell_innererror() {
    let config = EntraSimConfig {
        secret_masking: SecretMasking::CredentialsOnly,
        inner_error_spelling: InnerErrorSpelling::Lowercase,
        ..EntraSimConfig::default()
    };
    let (sim, client) = start_with(config).await;
    let token = access_token(&client, &sim).await;
    put_secrets(
        &client,
        &sim,
        &token,
        &[
            ("BaseAddress", "https://127.0.0.1:1/scim"),
            ("SecretToken", "t"),
        ],
    )
    .await;
    let shown: Value = get(&client, &sim, &token, "/secrets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        shown["value"],
        json!([{"key": "BaseAddress", "value": "https://127.0.0.1:1/scim"}, {"key": "SecretToken", "value": "*"}])
    );
    let body: Value = get(&client, &sim, &token, "/jobs/missing")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        body["error"]["innererror"]["request-id"].is_string(),
        "{body}"
    );
    assert!(body["error"].get("innerError").is_none());
}

#[tokio::test]
async fn restart_and_start_are_recorded_by_scope_and_by_whether_the_job_was_active() {
    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    let restart_job = async |scope: Option<&str>| {
        let body = scope.map(|scope| json!({"criteria": {"resetScope": scope}}));
        post(
            &client,
            &sim,
            &token,
            &format!("/jobs/{JOB}/restart"),
            body.as_ref(),
        )
        .await
    };
    let start_job = async || post(&client, &sim, &token, &format!("/jobs/{JOB}/start"), None).await;
    sim.set_job_state(
        SERVICE_PRINCIPAL,
        JOB,
        JobStatusCode::Quarantine,
        ScheduleState::Active,
    );
    let response = restart_job(Some("QuarantineState")).await;
    assert_eq!(response.status(), 204);
    let job = sim.job(SERVICE_PRINCIPAL, JOB).unwrap();
    assert_eq!(job.status_code, JobStatusCode::Active);
    assert!(job.quarantine.is_none());

    for scope in [
        "Watermark, Escrows",
        "Full",
        "ConnectorDataStore,QuarantineState",
    ] {
        assert_eq!(restart_job(Some(scope)).await.status(), 204);
    }
    assert_eq!(restart_job(None).await.status(), 204);
    let invalid = restart_job(Some("quarantinestate")).await;
    assert_eq!(graph_error(invalid).await, (400, "BadRequest".to_owned()));

    sim.set_job_state(
        SERVICE_PRINCIPAL,
        JOB,
        JobStatusCode::Paused,
        ScheduleState::Paused,
    );
    assert_eq!(start_job().await.status(), 204);
    assert_eq!(start_job().await.status(), 204);

    let job = sim.job(SERVICE_PRINCIPAL, JOB).unwrap();
    assert_eq!(job.restarts.len(), 5);
    assert_eq!(job.restart_count(ResetFlag::QuarantineState), 2);
    assert_eq!(job.restart_count(ResetFlag::Full), 1);
    assert_eq!(job.restart_count(ResetFlag::ConnectorDataStore), 1);
    assert_eq!(
        job.restarts_resetting(ResetFlag::ConnectorDataStore),
        2,
        "Full includes it"
    );
    assert!(job.restarts[4].scope.is_none());
    assert!(!job.restarts[0].was_active && job.restarts[1].was_active);
    assert_eq!(job.starts.len(), 2);
    assert_eq!(
        job.starts_on_active_job(),
        1,
        "the second start came on an Active job"
    );
    assert_eq!(
        (job.status_code, job.schedule_state),
        (JobStatusCode::Active, ScheduleState::Active)
    );
    assert_eq!(sim.count(Call::RestartJob), 6);
    assert_eq!(sim.count(Call::StartJob), 2);
}
