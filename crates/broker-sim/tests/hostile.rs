//! The hostile-broker faults the operator's chaos tests build on, each observed by a real
//! client: throttling, broken and slow bodies, oversized and mislabelled answers, anomalous
//! lifetimes that still rotate, out-of-band rotation, and a server certificate from a new CA.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    DIRECTORY, admin_token_response, broker_token, client, client_with, fast_config, generate,
    generate_ok, login, login_response, operator_token_response, probe, start, tls_config,
    token_of,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_client_broker_sim::{DEFAULT_OVERSIZED_BYTES, Endpoint, Fault, SYNC_CLIENT_MEDIA_TYPE};

#[tokio::test]
async fn throttling_answers_carry_retry_after() {
    let (sim, client) = start(fast_config()).await;
    sim.inject(Fault::on(Endpoint::Login).too_many_requests(30));
    sim.inject(Fault::on(Endpoint::Login).status(503).retry_after(7));
    sim.inject(
        Fault::on(Endpoint::Login)
            .status(503)
            .header("Retry-After", "Wed, 21 Oct 2037 07:28:00 GMT"),
    );

    let throttled = login_response(&client, &sim, sim.password()).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "30");
    let unavailable = login_response(&client, &sim, sim.password()).await;
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.headers()["retry-after"], "7");
    let dated = login_response(&client, &sim, sim.password()).await;
    assert_eq!(
        dated.headers()["retry-after"],
        "Wed, 21 Oct 2037 07:28:00 GMT"
    );
    assert_eq!(sim.count_with_status(Endpoint::Login, 429), 1);
    assert_eq!(sim.count_with_status(Endpoint::Login, 503), 2);
    assert_eq!(
        login_response(&client, &sim, sim.password()).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn reset_mid_body_rotates_sends_headers_and_half_the_body_then_breaks() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let old = token_of(&generate_ok(&client, &sim, &broker, None).await);
    sim.inject(Fault::on(Endpoint::Generate).reset_mid_body());

    let response = generate(&client, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::OK, "the headers arrived");
    let announced = response.content_length().expect("full length announced");
    assert!(announced > 100, "{announced}");
    let error = response.bytes().await.expect_err("the body breaks off");
    assert!(error.is_body() || error.is_decode(), "{error:?}");

    assert_eq!(sim.generate_count(DIRECTORY), 2, "the rotation happened");
    assert!(!sim.token_is_valid(&old));
    assert!(sim.current_token(DIRECTORY).is_some());
    let recorded = sim.requests();
    let cut = recorded.last().expect("recorded");
    assert!(cut.faulted);
    assert_eq!(cut.status, Some(200));
}

#[tokio::test]
async fn slow_body_sends_headers_at_once_and_the_body_later() {
    let (sim, _) = start(fast_config()).await;
    let patient = client_with(&sim, Duration::from_secs(20), &[b"http/1.1"]);
    let broker = broker_token(&patient, &sim).await;
    sim.inject(
        Fault::on(Endpoint::Generate)
            .times(2)
            .slow_body(Duration::from_secs(4)),
    );

    // A client whose whole-request timeout is shorter than the trickle gets the headers, then
    // times out reading the body; the broker rotated anyway.
    let impatient = client_with(&sim, Duration::from_millis(1_500), &[b"http/1.1"]);
    let response = generate(&impatient, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let error = response.bytes().await.expect_err("the body is too slow");
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(sim.generate_count(DIRECTORY), 1);

    // A patient client gets the whole, valid body.
    let response = generate(&patient, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("complete JSON");
    assert_eq!(sim.current_token(DIRECTORY), Some(token_of(&body)));
}

#[tokio::test]
async fn oversized_body_is_valid_json_on_any_endpoint() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let old = token_of(&generate_ok(&client, &sim, &broker, None).await);
    sim.inject(Fault::on(Endpoint::Generate).oversized_body());
    sim.inject(Fault::on(Endpoint::ScimProbe).oversized_body_of(2 * 1024 * 1024));

    let response = generate(&client, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], SYNC_CLIENT_MEDIA_TYPE);
    let bytes = response.bytes().await.expect("whole body");
    assert!(bytes.len() >= DEFAULT_OVERSIZED_BYTES, "{}", bytes.len());
    let body: Value = serde_json::from_slice(&bytes).expect("valid JSON");
    let new = token_of(&body);
    assert!(!sim.token_is_valid(&old), "the generate rotated");
    assert_eq!(sim.current_token(DIRECTORY), Some(new.clone()));

    let probe_answer = client
        .get(format!(
            "{}/usergroup/t/CUSTOMER/scim/v2/Users?count=1",
            sim.url()
        ))
        .bearer_auth(&new)
        .send()
        .await
        .expect("probe answered");
    assert_eq!(probe_answer.status(), StatusCode::OK);
    let bytes = probe_answer.bytes().await.expect("whole body");
    assert!(bytes.len() >= 2 * 1024 * 1024);
    let body: Value = serde_json::from_slice(&bytes).expect("valid JSON");
    assert_eq!(body["itemsPerPage"], 1);
}

#[tokio::test]
async fn content_type_can_be_anything_and_html_pages_can_follow_a_rotation() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    sim.inject(Fault::on(Endpoint::Generate).content_type("text/plain"));
    let response = generate(&client, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain");
    let body: Value = response.json().await.expect("still valid JSON");
    let first = token_of(&body);
    assert_eq!(sim.current_token(DIRECTORY), Some(first.clone()));

    sim.inject(
        Fault::on(Endpoint::Generate).process_then_html(200, "<html><title>Portal</title></html>"),
    );
    let response = generate(&client, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(response.text().await.expect("body").contains("Portal"));
    assert!(
        !sim.token_is_valid(&first),
        "the broker rotated behind the page"
    );
    assert_eq!(sim.generate_count(DIRECTORY), 2);

    sim.inject(Fault::on(Endpoint::Generate).html(502, "<html><title>Bad Gateway</title></html>"));
    let response = generate(&client, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        sim.generate_count(DIRECTORY),
        2,
        "a plain proxy page does not rotate"
    );
}

#[tokio::test]
async fn generate_can_report_any_lifetime_while_still_rotating() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let reported = [
        json!(1e30),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(0),
        json!(-5),
        Value::Null,
        json!(1.5),
        json!("soon"),
    ];
    let mut previous = token_of(&generate_ok(&client, &sim, &broker, None).await);
    for value in &reported {
        sim.inject(Fault::on(Endpoint::Generate).access_token_expire_in(value));
        let body = generate_ok(&client, &sim, &broker, None).await;
        assert_eq!(&body["access_token_expire_in"], value);
        let token = token_of(&body);
        assert!(!sim.token_is_valid(&previous), "{value}: old token revoked");
        assert_eq!(
            probe(&client, &sim, &token).await,
            StatusCode::OK,
            "{value}"
        );
        previous = token;
    }
    sim.inject(Fault::on(Endpoint::Generate).omit_field("access_token_expire_in"));
    let body = generate_ok(&client, &sim, &broker, None).await;
    assert!(body.get("access_token_expire_in").is_none());
    assert!(body["access_token"].is_string());

    // Without a fault the real remaining lifetime is reported again (10 "minutes" of 1 s).
    let body = generate_ok(&client, &sim, &broker, None).await;
    assert_eq!(body["access_token_expire_in"], 10);
    assert_eq!(sim.generate_count(DIRECTORY), reported.len() + 3);
}

#[tokio::test]
async fn token_endpoints_can_report_any_expires_in() {
    let (sim, client) = start(fast_config()).await;
    let session = login(&client, &sim).await;
    for value in [
        json!(i64::MAX),
        json!(-1),
        json!(0),
        json!(2.5),
        json!("never"),
    ] {
        sim.inject(Fault::on(Endpoint::OperatorClientToken).expires_in(&value));
        sim.inject(Fault::on(Endpoint::AdminClientToken).expires_in(&value));
        for response in [
            operator_token_response(&client, &sim, &session).await,
            admin_token_response(&client, &sim, &session, "CUSTOMER").await,
        ] {
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.expect("TokenInfo");
            assert_eq!(body["expires_in"], value);
            let token = body["access_token"].as_str().expect("token");
            assert!(sim.broker_token_is_valid(token), "the token itself is real");
        }
    }
    sim.inject(Fault::on(Endpoint::OperatorClientToken).omit_field("expires_in"));
    let response = operator_token_response(&client, &sim, &session).await;
    let body: Value = response.json().await.expect("TokenInfo");
    assert!(body.get("expires_in").is_none());
}

#[tokio::test]
async fn out_of_band_generate_revokes_what_the_operator_holds() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let held = token_of(&generate_ok(&client, &sim, &broker, None).await);
    sim.clear_requests();

    let new = sim
        .generate_out_of_band(DIRECTORY)
        .expect("one sync client");

    assert_ne!(new, held);
    assert_eq!(probe(&client, &sim, &held).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&client, &sim, &new).await, StatusCode::OK);
    assert_eq!(sim.current_token(DIRECTORY), Some(new));
    assert_eq!(sim.generate_count(DIRECTORY), 2);
    assert_eq!(sim.count(Endpoint::Generate), 0, "no HTTP request");
    assert_eq!(sim.generate_out_of_band("no-such-directory"), None);

    generate_ok(
        &client,
        &sim,
        &broker,
        Some(&json!({"generate_token": false})),
    )
    .await;
    let (_, secret) = sim.current_client_secret(DIRECTORY).expect("secret mode");
    let new_secret = sim
        .generate_out_of_band(DIRECTORY)
        .expect("secret mode rotates too");
    assert_ne!(new_secret, secret);
    assert_eq!(
        sim.current_client_secret(DIRECTORY)
            .map(|(_, secret)| secret),
        Some(new_secret)
    );
}

#[tokio::test]
async fn a_rotated_server_certificate_is_refused_by_clients_of_the_old_ca() {
    let (sim, pooled) = start(fast_config()).await;
    let old_ca = sim.ca_pem().expect("HTTPS");
    let session = login(&pooled, &sim).await;

    let new_ca = sim.rotate_server_certificate().expect("rotated");

    assert_ne!(new_ca, old_ca);
    assert_eq!(sim.ca_pem(), Some(new_ca.clone()));
    // A new connection trusting the old CA fails verification.
    let fresh_old = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(Some(&old_ca), &[b"http/1.1"]))
        .build()
        .expect("client");
    let error = fresh_old
        .post(format!("{}/api/session", sim.url()))
        .send()
        .await
        .expect_err("the new certificate is not trusted");
    assert!(error.is_connect(), "{error:?}");
    // The server notices the refused handshake just after the client gives up.
    for _ in 0..50 {
        if sim.failed_tls_handshakes() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sim.failed_tls_handshakes(), 1);
    // The pooled connection of the old client is closed by the server, so its next request
    // handshakes again and fails too (bounded wait for the close to be noticed).
    let mut refused = false;
    for _ in 0..50 {
        match operator_token_response_result(&pooled, &sim, &session).await {
            Err(error) if error.is_connect() => {
                refused = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(refused, "the old client kept working after the rotation");
    // A client of the new CA works, and the session survived the certificate change.
    let renewed = client(&sim);
    assert_eq!(
        operator_token_response(&renewed, &sim, &session)
            .await
            .status(),
        StatusCode::OK
    );
    sim.rotate_server_certificate().expect("rotates again");
    assert_ne!(sim.ca_pem(), Some(new_ca));
}

#[tokio::test]
async fn a_plain_http_simulator_has_no_certificate_to_rotate() {
    let (sim, _) = start(sync_client_broker_sim::BrokerSimConfig {
        tls: false,
        ..fast_config()
    })
    .await;
    let error = sim
        .rotate_server_certificate()
        .expect_err("nothing to rotate");
    assert_eq!(error.kind(), std::io::ErrorKind::Unsupported);
}

async fn operator_token_response_result(
    client: &reqwest::Client,
    sim: &sync_client_broker_sim::BrokerSim,
    session: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    client
        .get(format!(
            "{}/api/vcenter/identity/broker/tenants/operator-client",
            sim.url()
        ))
        .header("vmware-api-session-id", session)
        .send()
        .await
}
