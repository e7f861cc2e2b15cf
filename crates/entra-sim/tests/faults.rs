//! Each kind of injected fault, observed by a real client.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    CLIENT_ID, CLIENT_SECRET, JOB, SERVICE_PRINCIPAL, aadsts, access_token, client_with_timeout,
    get, graph, graph_error, graph_url, put_secrets, secret_form, start, token_response,
};
use reqwest::Method;
use serde_json::Value;
use sync_client_entra_sim::{Call, Fault, ServicePrincipal};

#[tokio::test]
async fn token_faults_refuse_a_right_secret_as_wrong_or_expired() {
    let (sim, client) = start().await;
    sim.inject(Fault::on(Call::Token).invalid_client_secret());
    sim.inject(Fault::on(Call::Token).expired_client_secret());
    let form = secret_form(CLIENT_ID, CLIENT_SECRET);
    assert_eq!(
        aadsts(token_response(&client, &sim, &form).await).await,
        (400, "invalid_client".to_owned(), 7_000_215)
    );
    assert_eq!(
        aadsts(token_response(&client, &sim, &form).await).await,
        (400, "invalid_client".to_owned(), 7_000_222)
    );
    sim.inject(Fault::on(Call::Token).status(503).retry_after(5));
    let unavailable = token_response(&client, &sim, &form).await;
    assert_eq!(unavailable.headers()["retry-after"], "5");
    assert_eq!(
        aadsts(unavailable).await,
        (503, "temporarily_unavailable".to_owned(), 50000)
    );
    assert_eq!(token_response(&client, &sim, &form).await.status(), 200);
    let faulted: Vec<bool> = sim
        .requests()
        .iter()
        .map(|request| request.faulted)
        .collect();
    assert_eq!(faulted, [true, true, true, false]);
}

#[tokio::test]
async fn graph_status_faults_answer_with_graph_error_bodies() {
    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    let cases = [
        (
            Fault::on(Call::GetJob).unauthorized(),
            401,
            "InvalidAuthenticationToken",
        ),
        (
            Fault::on(Call::GetJob).forbidden(),
            403,
            "Authorization_RequestDenied",
        ),
        (
            Fault::on(Call::GetJob).not_found(),
            404,
            "Request_ResourceNotFound",
        ),
        (Fault::on(Call::GetJob).conflict(), 409, "Conflict"),
        (
            Fault::on(Call::GetJob).too_many_requests(None),
            429,
            "TooManyRequests",
        ),
        (
            Fault::on(Call::GetJob).status(500),
            500,
            "InternalServerError",
        ),
        (
            Fault::on(Call::GetJob).status(503),
            503,
            "ServiceUnavailable",
        ),
        (Fault::on(Call::GetJob).status(504), 504, "GatewayTimeout"),
        (
            Fault::on(Call::GetJob).graph_error(403, "Custom_Code", "custom"),
            403,
            "Custom_Code",
        ),
    ];
    let path = format!("/jobs/{JOB}");
    for (fault, status, code) in cases {
        sim.inject(fault);
        let response = get(&client, &sim, &token, &path).await;
        assert!(!response.headers().contains_key("retry-after"));
        assert_eq!(graph_error(response).await, (status, code.to_owned()));
    }
    sim.inject(Fault::on(Call::GetJob).too_many_requests(Some(2)));
    let throttled = get(&client, &sim, &token, &path).await;
    assert_eq!(throttled.headers()["retry-after"], "2");
    assert_eq!(
        graph_error(throttled).await,
        (429, "TooManyRequests".to_owned())
    );
    sim.inject(Fault::on(Call::GetJob).raw(502, "text/html", "<html>Bad Gateway</html>"));
    let page = get(&client, &sim, &token, &path).await;
    assert_eq!(page.status(), 502);
    assert_eq!(page.text().await.unwrap(), "<html>Bad Gateway</html>");
    assert_eq!(get(&client, &sim, &token, &path).await.status(), 200);
    assert_eq!(sim.count(Call::GetJob), 12);
    assert_eq!(sim.count_with_status(Call::GetJob, 200), 1);
}

#[tokio::test]
async fn faults_count_down_and_match_only_their_service_principal_or_client() {
    let (sim, client) = start().await;
    sim.add_service_principal(ServicePrincipal::new("other-sp").with_job(JOB, "scim"));
    let token = access_token(&client, &sim).await;
    sim.inject(
        Fault::on(Call::ListJobs)
            .for_service_principal("other-sp")
            .times(2)
            .status(503),
    );
    sim.inject(
        Fault::on(Call::Token)
            .for_client("someone-else")
            .invalid_client_secret(),
    );
    assert_eq!(sim.pending_faults(), 3);
    assert_eq!(get(&client, &sim, &token, "/jobs").await.status(), 200);
    let other = graph_url(&sim, "other-sp", "/jobs");
    for _ in 0..2 {
        assert_eq!(
            graph(&client, Method::GET, Some(&token), &other, None)
                .await
                .status(),
            503
        );
    }
    assert_eq!(
        graph(&client, Method::GET, Some(&token), &other, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        token_response(&client, &sim, &secret_form(CLIENT_ID, CLIENT_SECRET))
            .await
            .status(),
        200
    );
    assert_eq!(sim.pending_faults(), 1);
    sim.clear_faults();
    assert_eq!(sim.pending_faults(), 0);

    // A Graph fault for a client matches the app whose token the request carries.
    sim.inject(
        Fault::on(Call::GetSecrets)
            .for_client(CLIENT_ID)
            .forbidden(),
    );
    assert_eq!(get(&client, &sim, &token, "/secrets").await.status(), 403);
    assert_eq!(get(&client, &sim, &token, "/secrets").await.status(), 200);
}

#[tokio::test]
async fn a_slow_answer_outlasts_a_short_client_timeout_and_still_arrives_for_a_patient_one() {
    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    let impatient = client_with_timeout(&sim, Duration::from_millis(200));
    sim.inject(Fault::on(Call::GetJob).delay(Duration::from_secs(2)));
    let error = impatient
        .get(graph_url(&sim, SERVICE_PRINCIPAL, &format!("/jobs/{JOB}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");

    sim.inject(Fault::on(Call::GetJob).delay(Duration::from_millis(300)));
    assert_eq!(
        get(&client, &sim, &token, &format!("/jobs/{JOB}"))
            .await
            .status(),
        200
    );
    let faulted: Vec<bool> = sim
        .requests()
        .iter()
        .filter(|request| request.call == Call::GetJob)
        .map(|request| request.faulted)
        .collect();
    assert_eq!(faulted, [true, true]);
}

#[tokio::test]
async fn dropped_connections_lose_the_answer_with_or_without_the_write() {
    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    let url = graph_url(&sim, SERVICE_PRINCIPAL, "/secrets");
    let body = common::key_values("value", &[("SecretToken", "first")]);
    let put = || client.put(&url).bearer_auth(&token).json(&body).send();

    sim.inject(Fault::on(Call::PutSecrets).drop_connection());
    let lost = put().await;
    assert!(lost.is_err(), "no answer");
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL),
        None,
        "nothing was stored"
    );

    sim.inject(Fault::on(Call::PutSecrets).process_then_drop());
    let lost = put().await;
    assert!(lost.is_err(), "no answer");
    assert_eq!(
        sim.held_secret_token(SERVICE_PRINCIPAL).as_deref(),
        Some("first"),
        "the write happened"
    );

    assert_eq!(
        put_secrets(&client, &sim, &token, &[("SecretToken", "second")])
            .await
            .status(),
        204
    );
    let statuses: Vec<Option<u16>> = sim
        .requests()
        .iter()
        .filter(|request| request.call == Call::PutSecrets)
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses, [None, None, Some(204)]);
    let body: Value = get(&client, &sim, &token, "/secrets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"][0]["value"], "*");
}
