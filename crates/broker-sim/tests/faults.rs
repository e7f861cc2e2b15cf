//! Each kind of injected fault, observed by a real client.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    DIRECTORY, broker_token, client_with, fast_config, generate, generate_ok, login_response,
    probe, send_generate, start, token_of,
};
use reqwest::{StatusCode, Version};
use serde_json::Value;
use sync_client_broker_sim::{Endpoint, Fault, SYNC_CLIENT_MEDIA_TYPE};

#[tokio::test]
async fn status_fault_answers_the_next_n_requests_without_rotating() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    sim.inject(Fault::on(Endpoint::Generate).times(2).status(500));
    assert_eq!(sim.pending_faults(), 2);
    for _ in 0..2 {
        let response = generate(&client, &sim, &broker, DIRECTORY, None).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.text().await.expect("body").is_empty());
    }
    assert_eq!(sim.generate_count(DIRECTORY), 0);
    assert_eq!(sim.pending_faults(), 0);
    generate_ok(&client, &sim, &broker, None).await;
    let faulted: Vec<bool> = sim
        .requests()
        .iter()
        .filter(|request| request.endpoint == Endpoint::Generate)
        .map(|request| request.faulted)
        .collect();
    assert_eq!(faulted, [true, true, false]);
}

#[tokio::test]
async fn vapi_text_and_html_fault_bodies_arrive_as_injected() {
    let (sim, client) = start(fast_config()).await;
    sim.inject(Fault::on(Endpoint::Login).vapi_error("SERVICE_UNAVAILABLE", "vCenter is starting"));
    sim.inject(Fault::on(Endpoint::Login).html(502, "<html><body>Bad Gateway</body></html>"));
    sim.inject(Fault::on(Endpoint::Login).text(503, "upstream connect error"));

    let unavailable = login_response(&client, &sim, sim.password()).await;
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = unavailable.json().await.expect("vAPI error");
    assert_eq!(body["error_type"], "SERVICE_UNAVAILABLE");
    assert_eq!(
        body["messages"][0]["default_message"],
        "vCenter is starting"
    );

    let gateway = login_response(&client, &sim, sim.password()).await;
    assert_eq!(gateway.status(), StatusCode::BAD_GATEWAY);
    assert!(
        gateway.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(gateway.text().await.expect("body").contains("Bad Gateway"));

    let text = login_response(&client, &sim, sim.password()).await;
    assert_eq!(text.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(text.text().await.expect("body"), "upstream connect error");

    assert_eq!(
        login_response(&client, &sim, sim.password()).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn latency_fault_delays_a_normal_answer() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    sim.inject(Fault::on(Endpoint::Generate).delay(Duration::from_millis(400)));
    let started = Instant::now();
    generate_ok(&client, &sim, &broker, None).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(sim.generate_count(DIRECTORY), 1);
}

#[tokio::test]
async fn dropped_connection_gets_no_answer_and_no_rotation() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    sim.inject(Fault::on(Endpoint::Generate).drop_connection());
    let error = send_generate(&client, &sim, &broker, DIRECTORY, None)
        .await
        .expect_err("the connection closes without an answer");
    assert!(!error.is_timeout());
    assert_eq!(sim.generate_count(DIRECTORY), 0);
    let recorded = sim.requests();
    let dropped = recorded.last().expect("recorded");
    assert_eq!(dropped.endpoint, Endpoint::Generate);
    assert_eq!(dropped.status, None);
    assert!(dropped.faulted);
    assert_eq!(sim.count(Endpoint::Generate), 1, "the client did not retry");
    generate_ok(&client, &sim, &broker, None).await;
}

#[tokio::test]
async fn timeout_after_generate_rotates_then_never_answers() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let old = token_of(&generate_ok(&client, &sim, &broker, None).await);
    sim.inject(Fault::on(Endpoint::Generate).process_then_hang(Duration::from_secs(3)));

    let impatient = client_with(&sim, Duration::from_millis(500), &[b"http/1.1"]);
    let error = send_generate(&impatient, &sim, &broker, DIRECTORY, None)
        .await
        .expect_err("no answer within the client timeout");
    assert!(error.is_timeout());

    assert_eq!(sim.generate_count(DIRECTORY), 2, "the rotation happened");
    let new = sim.current_token(DIRECTORY).expect("a live token exists");
    assert_ne!(new, old);
    assert_eq!(probe(&client, &sim, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&client, &sim, &new).await, StatusCode::OK);
}

#[tokio::test]
async fn a_late_generate_lands_after_its_client_gave_up_and_revokes_what_came_between() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let first = token_of(&generate_ok(&client, &sim, &broker, None).await);
    sim.inject(Fault::on(Endpoint::Generate).process_late(Duration::from_millis(1500)));

    let impatient = client_with(&sim, Duration::from_millis(300), &[b"http/1.1"]);
    let error = send_generate(&impatient, &sim, &broker, DIRECTORY, None)
        .await
        .expect_err("no answer within the client timeout");
    assert!(error.is_timeout());
    assert_eq!(sim.generate_count(DIRECTORY), 1, "not handled yet");
    // The client's retry is issued meanwhile...
    let retry = token_of(&generate_ok(&client, &sim, &broker, None).await);
    assert_ne!(retry, first);
    // ...and the late request, still running at the broker, revokes it.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(sim.generate_count(DIRECTORY), 3, "the late generate landed");
    assert!(!sim.token_is_valid(&retry), "the retry's token was revoked");
    assert_eq!(probe(&client, &sim, &retry).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn process_then_drop_rotates_and_closes_the_connection() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let old = token_of(&generate_ok(&client, &sim, &broker, None).await);
    sim.inject(Fault::on(Endpoint::Generate).process_then_drop());
    let error = send_generate(&client, &sim, &broker, DIRECTORY, None)
        .await
        .expect_err("no answer");
    assert!(!error.is_timeout());
    assert_eq!(sim.generate_count(DIRECTORY), 2);
    assert!(!sim.token_is_valid(&old));
    assert!(sim.current_token(DIRECTORY).is_some());
}

#[tokio::test]
async fn malformed_success_is_a_200_with_truncated_json_after_rotating() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    sim.inject(Fault::on(Endpoint::Generate).malformed_success());
    let response = generate(&client, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], SYNC_CLIENT_MEDIA_TYPE);
    let text = response.text().await.expect("body");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(sim.generate_count(DIRECTORY), 1);
    assert!(sim.current_token(DIRECTORY).is_some());
}

#[tokio::test]
async fn directory_scoped_fault_leaves_other_directories_alone() {
    let (sim, client) = start(fast_config()).await;
    let other = sync_client_broker_sim::new_directory_id();
    sim.add_directory_with_defaults(&other);
    let broker = broker_token(&client, &sim).await;
    sim.inject(
        Fault::on(Endpoint::Generate)
            .for_directory(DIRECTORY)
            .status(503),
    );
    let answer = generate(&client, &sim, &broker, &other, None).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("configuration JSON");
    assert_eq!(body["token_ttl"], 262_800, "configured default TTL");
    assert_eq!(
        generate(&client, &sim, &broker, DIRECTORY, None)
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    sim.inject(Fault::on(Endpoint::Generate).status(500));
    sim.clear_faults();
    assert_eq!(sim.pending_faults(), 0);
    generate_ok(&client, &sim, &broker, None).await;
}

#[tokio::test]
async fn dropping_an_http2_connection_fails_the_request() {
    let (sim, _) = start(fast_config()).await;
    let h2 = client_with(&sim, Duration::from_secs(5), &[b"h2"]);
    let broker = broker_token(&h2, &sim).await;
    let first = generate(&h2, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(first.version(), Version::HTTP_2, "ALPN negotiated h2");
    sim.inject(Fault::on(Endpoint::Generate).drop_connection());
    send_generate(&h2, &sim, &broker, DIRECTORY, None)
        .await
        .expect_err("no answer over HTTP/2 either");
    assert_eq!(sim.generate_count(DIRECTORY), 1);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let (sim, client) = start(fast_config()).await;
    let url = sim.url();
    sim.shutdown().await;
    let error = client
        .post(format!("{url}/api/session"))
        .send()
        .await
        .expect_err("nobody listens after shutdown");
    assert!(error.is_connect());
}
