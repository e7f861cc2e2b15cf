//! Everything that dies by time: sync-client tokens, sessions, broker tokens. Sleeps are short
//! and bounded (ttl_unit of one second, sub-second idle timeouts).

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    DIRECTORY, broker_token, fast_config, generate, generate_ok, login, operator_token_response,
    probe, start, sync_client_url, token_of,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_client_broker_sim::{BrokerSimConfig, ExpiresIn};
use tokio::time::sleep;

#[tokio::test]
async fn sync_client_token_expires_after_token_ttl_units() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let body = generate_ok(&client, &sim, &broker, Some(&json!({"token_ttl": 1}))).await;
    assert_eq!(body["access_token_expire_in"], 1, "1 minute is 1 s here");
    let token = token_of(&body);
    assert_eq!(probe(&client, &sim, &token).await, StatusCode::OK);

    sleep(Duration::from_millis(1_200)).await;
    assert_eq!(probe(&client, &sim, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sim.current_token(DIRECTORY), None);
    assert!(!sim.token_is_valid(&token));
}

#[tokio::test]
async fn read_reports_the_seconds_the_current_token_has_left() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    generate_ok(&client, &sim, &broker, Some(&json!({"token_ttl": 3}))).await;
    sleep(Duration::from_millis(1_100)).await;
    let read: Value = client
        .get(sync_client_url(&sim, DIRECTORY))
        .bearer_auth(&broker)
        .send()
        .await
        .expect("read answered")
        .json()
        .await
        .expect("configuration JSON");
    let left = read["access_token_expire_in"]
        .as_u64()
        .expect("seconds left");
    assert!((1..=2).contains(&left), "about 1.9 s left, got {left}");
    assert!(read.get("access_token").is_none());
}

#[tokio::test]
async fn session_expires_when_idle_and_each_use_refreshes_it() {
    let (sim, client) = start(BrokerSimConfig {
        session_idle_timeout: Duration::from_millis(600),
        ..fast_config()
    })
    .await;
    let session = login(&client, &sim).await;
    for _ in 0..2 {
        sleep(Duration::from_millis(350)).await;
        assert_eq!(
            operator_token_response(&client, &sim, &session)
                .await
                .status(),
            StatusCode::OK,
            "used within the idle timeout"
        );
    }
    sleep(Duration::from_millis(800)).await;
    let expired = operator_token_response(&client, &sim, &session).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: Value = expired.json().await.expect("vAPI error");
    assert_eq!(body["error_type"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn expire_sessions_forces_a_new_login() {
    let (sim, client) = start(fast_config()).await;
    let session = login(&client, &sim).await;
    sim.expire_sessions();
    assert_eq!(
        operator_token_response(&client, &sim, &session)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let again = login(&client, &sim).await;
    assert_eq!(
        operator_token_response(&client, &sim, &again)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn broker_token_expires_after_expires_in_seconds() {
    let (sim, client) = start(BrokerSimConfig {
        broker_token_expires_in: ExpiresIn::Seconds(1),
        ..fast_config()
    })
    .await;
    let broker = broker_token(&client, &sim).await;
    assert_eq!(
        generate(&client, &sim, &broker, DIRECTORY, None)
            .await
            .status(),
        StatusCode::OK
    );
    sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        generate(&client, &sim, &broker, DIRECTORY, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sim.generate_count(DIRECTORY), 1);
}

#[tokio::test]
async fn expire_broker_tokens_makes_generate_answer_401() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    sim.expire_broker_tokens();
    assert!(!sim.broker_token_is_valid(&broker));
    assert_eq!(
        generate(&client, &sim, &broker, DIRECTORY, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expires_in_can_be_missing_or_null_and_such_tokens_still_die() {
    let (sim, client) = start(BrokerSimConfig {
        broker_token_expires_in: ExpiresIn::Missing,
        unreported_broker_token_lifetime: Duration::from_millis(800),
        ..fast_config()
    })
    .await;
    let session = login(&client, &sim).await;
    let token_info = async || {
        let response = operator_token_response(&client, &sim, &session).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.expect("TokenInfo")
    };
    let missing = token_info().await;
    assert!(missing.get("expires_in").is_none());
    assert_eq!(missing["token_type"], "Bearer");

    sim.set_broker_token_expires_in(ExpiresIn::Null);
    let null = token_info().await;
    assert_eq!(null.get("expires_in"), Some(&Value::Null));
    let broker = null["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        generate(&client, &sim, &broker, DIRECTORY, None)
            .await
            .status(),
        StatusCode::OK
    );
    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        generate(&client, &sim, &broker, DIRECTORY, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    sim.set_broker_token_expires_in(ExpiresIn::Seconds(42));
    let seconds = token_info().await;
    assert_eq!(seconds["expires_in"], 42);
}
