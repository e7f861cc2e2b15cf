//! Sessions, logins, the SCIM probe (E) and the sync-client read (D) as the operator's tests
//! observe them: what vCenter answers after expiry, what is counted, what each status means.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    DIRECTORY, broker_token, fast_config, generate, generate_ok, login, login_response,
    operator_token_response, probe, probe_with_scheme, start, sync_client_url, token_of,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sync_client_broker_sim::{BrokerSim, Endpoint, SYNC_CLIENT_MEDIA_TYPE, SyncClients};

async fn read(client: &Client, sim: &BrokerSim, broker: &str, directory: &str) -> Response {
    client
        .get(sync_client_url(sim, directory))
        .bearer_auth(broker)
        .header("accept", SYNC_CLIENT_MEDIA_TYPE)
        .send()
        .await
        .expect("read answered")
}

async fn logout(client: &Client, sim: &BrokerSim, session: &str) -> StatusCode {
    client
        .delete(format!("{}/api/session", sim.url()))
        .header("vmware-api-session-id", session)
        .send()
        .await
        .expect("logout answered")
        .status()
}

fn assert_unauthenticated(body: &Value) {
    assert_eq!(body["error_type"], "UNAUTHENTICATED");
    assert_eq!(
        body["messages"][0]["default_message"],
        "Authentication required."
    );
    assert!(body["challenge"].as_str().is_some());
}

#[tokio::test]
async fn expired_sessions_answer_401_unauthenticated_like_vcenter() {
    let (sim, client) = start(fast_config()).await;
    let session = login(&client, &sim).await;
    sim.expire_sessions();

    let answer = operator_token_response(&client, &sim, &session).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(
        answer.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic realm=")
    );
    assert_unauthenticated(&answer.json().await.expect("vAPI error"));
    assert_eq!(
        logout(&client, &sim, &session).await,
        StatusCode::UNAUTHORIZED,
        "an expired session cannot be deleted either"
    );
}

#[tokio::test]
async fn expired_broker_tokens_answer_401_on_generate_and_read() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let held = token_of(&generate_ok(&client, &sim, &broker, None).await);
    sim.expire_broker_tokens();

    let generate_answer = generate(&client, &sim, &broker, DIRECTORY, None).await;
    assert_eq!(generate_answer.status(), StatusCode::UNAUTHORIZED);
    assert!(
        generate_answer.text().await.expect("body").is_empty(),
        "usergroup errors carry no data structure"
    );
    assert_eq!(
        read(&client, &sim, &broker, DIRECTORY).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sim.generate_count(DIRECTORY), 1, "nothing rotated");
    assert_eq!(
        probe(&client, &sim, &held).await,
        StatusCode::OK,
        "the sync-client token is not a broker token and survives"
    );
    let fresh = broker_token(&client, &sim).await;
    assert_eq!(
        read(&client, &sim, &fresh, DIRECTORY).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logouts_are_recorded_and_open_sessions_are_counted() {
    let (sim, client) = start(fast_config()).await;
    assert_eq!(sim.open_sessions(), 0);
    let first = login(&client, &sim).await;
    let second = login(&client, &sim).await;
    assert_eq!(sim.open_sessions(), 2);

    assert_eq!(logout(&client, &sim, &first).await, StatusCode::NO_CONTENT);
    assert_eq!(sim.open_sessions(), 1);
    assert_eq!(sim.count(Endpoint::Logout), 1);
    assert_eq!(sim.count_with_status(Endpoint::Logout, 204), 1);
    let recorded = sim.requests();
    let deletion = recorded
        .iter()
        .find(|request| request.endpoint == Endpoint::Logout)
        .expect("recorded");
    assert_eq!(deletion.method, "DELETE");
    assert_eq!(deletion.path, "/api/session");

    sim.expire_sessions();
    assert_eq!(sim.open_sessions(), 0);
    assert_eq!(
        logout(&client, &sim, &second).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sim.count(Endpoint::Logout), 2);
}

#[tokio::test]
async fn refused_logins_are_counted_so_tests_can_prove_a_cooldown() {
    let (sim, client) = start(fast_config()).await;
    for _ in 0..2 {
        let refused = login_response(&client, &sim, "wrong-password").await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_unauthenticated(&refused.json().await.expect("vAPI error"));
    }
    login(&client, &sim).await;
    assert_eq!(sim.count(Endpoint::Login), 3);
    assert_eq!(sim.count_with_status(Endpoint::Login, 401), 2);
    assert_eq!(sim.count_with_status(Endpoint::Login, 201), 1);
    assert_eq!(sim.open_sessions(), 1, "refused logins open nothing");
}

#[tokio::test]
async fn scim_probe_tells_live_from_dead_tokens() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let token = token_of(&generate_ok(&client, &sim, &broker, None).await);

    let live = probe_with_scheme(&client, &sim, "Bearer", &token).await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers()["content-type"], "application/scim+json");
    let users: Value = live.json().await.expect("ListResponse");
    assert_eq!(users["itemsPerPage"], 1, "count=1 is honoured");
    assert_eq!(users["startIndex"], 1);
    assert_eq!(
        users["Resources"][0]["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:User"
    );

    let dead = {
        let rotated = sim.generate_out_of_band(DIRECTORY).expect("rotated");
        assert_ne!(rotated, token);
        probe_with_scheme(&client, &sim, "Bearer", &token).await
    };
    assert_eq!(dead.status(), StatusCode::UNAUTHORIZED);
    let error: Value = dead.json().await.expect("SCIM error");
    assert_eq!(
        error["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(error["status"], "401");

    assert_eq!(
        probe(&client, &sim, &broker).await,
        StatusCode::UNAUTHORIZED,
        "a broker token is not a sync-client token"
    );
    let anonymous = client
        .get(format!(
            "{}/usergroup/t/CUSTOMER/scim/v2/Users?count=1",
            sim.url()
        ))
        .send()
        .await
        .expect("answered");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let current = sim.current_token(DIRECTORY).expect("live");
    let other_tenant = client
        .get(format!(
            "{}/usergroup/t/OTHER/scim/v2/Users?count=1",
            sim.url()
        ))
        .bearer_auth(&current)
        .send()
        .await
        .expect("answered");
    assert_eq!(other_tenant.status(), StatusCode::NOT_FOUND);
    assert_eq!(sim.count(Endpoint::ScimProbe), 5);
}

#[tokio::test]
async fn sync_client_read_answers_200_404_409_and_403_as_documented() {
    let (sim, client) = start(fast_config()).await;
    sim.add_directory("no-sync-client", SyncClients::None);
    sim.add_directory("two-sync-clients", SyncClients::Two);
    let broker = broker_token(&client, &sim).await;
    generate_ok(&client, &sim, &broker, Some(&json!({"token_ttl": 10}))).await;

    let found = read(&client, &sim, &broker, DIRECTORY).await;
    assert_eq!(found.status(), StatusCode::OK);
    assert_eq!(found.headers()["content-type"], SYNC_CLIENT_MEDIA_TYPE);
    let body: Value = found.json().await.expect("configuration");
    assert_eq!(body["generate_token"], true);
    assert_eq!(body["token_ttl"], 10);
    assert!(body["client_id"].is_string());
    assert!(body.get("client_secret").is_none(), "no secret on reads");
    assert!(body.get("access_token").is_none(), "no token on reads");
    assert!(body["access_token_expire_in"].as_u64().is_some());

    for (directory, status) in [
        ("unknown-directory", StatusCode::NOT_FOUND),
        ("no-sync-client", StatusCode::NOT_FOUND),
        ("two-sync-clients", StatusCode::CONFLICT),
    ] {
        let answer = read(&client, &sim, &broker, directory).await;
        assert_eq!(answer.status(), status, "{directory}");
        assert!(answer.text().await.expect("body").is_empty());
    }

    sim.set_directory_access(DIRECTORY, false);
    assert_eq!(
        read(&client, &sim, &broker, DIRECTORY).await.status(),
        StatusCode::FORBIDDEN
    );
    sim.set_directory_access(DIRECTORY, true);
    sim.set_usergroup_access(false);
    assert_eq!(
        read(&client, &sim, &broker, DIRECTORY).await.status(),
        StatusCode::FORBIDDEN
    );
    sim.set_usergroup_access(true);
    assert_eq!(sim.generate_count(DIRECTORY), 1, "reads never rotate");
}
