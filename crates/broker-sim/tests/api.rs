//! The documented endpoints over real HTTP(S): success paths, error statuses and recording.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    DIRECTORY, access_token, admin_token_response, broker_token, client, fast_config, generate,
    generate_ok, login, login_response, operator_token_response, probe, probe_with_scheme, start,
    sync_client_url, token_of,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sync_client_broker_sim::{
    AcceptedBrokerTokens, BrokerSimConfig, Endpoint, SYNC_CLIENT_MEDIA_TYPE, SyncClients,
    UnusedFields,
};

#[tokio::test]
async fn rotates_and_probes_end_to_end_over_https() {
    let (sim, client) = start(BrokerSimConfig::default()).await;
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    assert!(
        sim.ca_pem()
            .expect("HTTPS has a CA")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    let session = login(&client, &sim).await;
    let token_response = operator_token_response(&client, &sim, &session).await;
    assert_eq!(token_response.status(), StatusCode::OK);
    let token_info: Value = token_response.json().await.expect("TokenInfo");
    assert_eq!(token_info["token_type"], "Bearer");
    assert_eq!(token_info["expires_in"], 3600);
    let broker = token_info["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert!(sim.broker_token_is_valid(&broker));

    let response = generate(
        &client,
        &sim,
        &broker,
        DIRECTORY,
        Some(&json!({"generate_token": true, "token_ttl": 10})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        SYNC_CLIENT_MEDIA_TYPE,
        "generate answers with the vendor media type"
    );
    let body: Value = response.json().await.expect("configuration JSON");
    let token = token_of(&body);
    assert_eq!(token.split('.').count(), 3, "token looks like a JWT");
    assert_eq!(body["generate_token"], true);
    assert_eq!(body["token_ttl"], 10);
    assert_eq!(body["access_token_expire_in"], 600, "10 minutes of 60 s");
    assert_eq!(
        body["_links"]["self"]["href"],
        sync_client_url(&sim, DIRECTORY)
    );
    assert!(body.get("client_secret").is_none());
    assert_eq!(sim.current_token(DIRECTORY), Some(token.clone()));
    assert_eq!(sim.generate_count(DIRECTORY), 1);

    let probe_response = probe_with_scheme(&client, &sim, "Bearer", &token).await;
    assert_eq!(probe_response.status(), StatusCode::OK);
    let users: Value = probe_response.json().await.expect("ListResponse");
    assert_eq!(
        users["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    assert_eq!(users["itemsPerPage"], 1);
    assert_eq!(users["Resources"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        probe_with_scheme(&client, &sim, "HZN", &token)
            .await
            .status(),
        StatusCode::OK,
        "the HZN scheme is accepted too"
    );

    let logout = |session: String| {
        let request = client
            .delete(format!("{}/api/session", sim.url()))
            .header("vmware-api-session-id", session);
        async move { request.send().await.expect("logout answered").status() }
    };
    assert_eq!(logout(session.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(logout(session).await, StatusCode::UNAUTHORIZED);
    sim.shutdown().await;
}

#[tokio::test]
async fn serves_plain_http_and_accepts_the_tenant_admin_token() {
    let (sim, client) = start(BrokerSimConfig {
        tls: false,
        ..BrokerSimConfig::default()
    })
    .await;
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    assert_eq!(sim.ca_pem(), None);
    let session = login(&client, &sim).await;
    let admin = access_token(admin_token_response(&client, &sim, &session, "CUSTOMER").await).await;
    let body = generate_ok(&client, &sim, &admin, None).await;
    assert_eq!(probe(&client, &sim, &token_of(&body)).await, StatusCode::OK);
}

#[tokio::test]
async fn a_second_generate_revokes_the_first_token_at_once() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let first = token_of(&generate_ok(&client, &sim, &broker, None).await);
    let second = token_of(&generate_ok(&client, &sim, &broker, None).await);
    assert_ne!(first, second);
    assert_eq!(probe(&client, &sim, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&client, &sim, &second).await, StatusCode::OK);
    assert!(!sim.token_is_valid(&first));
    assert!(sim.token_is_valid(&second));
    assert_eq!(sim.generate_count(DIRECTORY), 2);
}

#[tokio::test]
async fn client_secret_mode_is_saved_and_reused_when_the_body_is_omitted() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    let token = token_of(&generate_ok(&client, &sim, &broker, None).await);

    let first = generate_ok(
        &client,
        &sim,
        &broker,
        Some(&json!({"generate_token": false})),
    )
    .await;
    assert!(first.get("access_token").is_none());
    assert!(first.get("access_token_expire_in").is_none());
    let first_secret = first["client_secret"].as_str().expect("secret").to_owned();
    let client_id = first["client_id"].as_str().expect("client id").to_owned();
    assert_eq!(
        probe(&client, &sim, &token).await,
        StatusCode::UNAUTHORIZED,
        "switching to a secret revokes the token"
    );

    let second = generate_ok(&client, &sim, &broker, None).await;
    assert_eq!(second["generate_token"], false, "saved mode reused");
    assert_eq!(second["token_ttl"], 10, "saved TTL reused");
    let second_secret = second["client_secret"].as_str().expect("secret").to_owned();
    assert_ne!(first_secret, second_secret);
    assert_eq!(
        sim.current_client_secret(DIRECTORY),
        Some((client_id, second_secret))
    );

    let read = client
        .get(sync_client_url(&sim, DIRECTORY))
        .bearer_auth(&broker)
        .header("accept", SYNC_CLIENT_MEDIA_TYPE)
        .send()
        .await
        .expect("read answered");
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["content-type"], SYNC_CLIENT_MEDIA_TYPE);
    let read: Value = read.json().await.expect("configuration JSON");
    assert_eq!(read["generate_token"], false);
    assert!(
        read.get("client_secret").is_none(),
        "read never shows the secret"
    );
    assert_eq!(sim.count(Endpoint::ReadSyncClient), 1);
}

#[tokio::test]
async fn unused_fields_are_null_when_so_configured() {
    let (sim, client) = start(BrokerSimConfig {
        unused_fields: UnusedFields::Null,
        ..fast_config()
    })
    .await;
    let broker = broker_token(&client, &sim).await;
    let body = generate_ok(&client, &sim, &broker, None).await;
    assert_eq!(body.get("client_secret"), Some(&Value::Null));
    let body = generate_ok(
        &client,
        &sim,
        &broker,
        Some(&json!({"generate_token": false})),
    )
    .await;
    assert_eq!(body.get("access_token"), Some(&Value::Null));
    assert_eq!(body.get("access_token_expire_in"), Some(&Value::Null));
}

#[tokio::test]
async fn directory_problems_answer_404_409_and_403_with_empty_bodies() {
    let (sim, client) = start(fast_config()).await;
    sim.add_directory("no-sync-client", SyncClients::None);
    sim.add_directory("two-sync-clients", SyncClients::Two);
    let broker = broker_token(&client, &sim).await;
    let status_and_body = |directory: &'static str| {
        let request = common::send_generate(&client, &sim, &broker, directory, None);
        async move {
            let response = request.await.expect("generate answered");
            let status = response.status();
            (status, response.text().await.expect("body"))
        }
    };
    assert_eq!(
        status_and_body("unknown").await,
        (StatusCode::NOT_FOUND, String::new())
    );
    assert_eq!(
        status_and_body("no-sync-client").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_and_body("two-sync-clients").await.0,
        StatusCode::CONFLICT
    );

    assert!(sim.set_directory_access(DIRECTORY, false));
    assert_eq!(
        status_and_body(DIRECTORY).await,
        (StatusCode::FORBIDDEN, String::new())
    );
    sim.set_directory_access(DIRECTORY, true);
    sim.set_usergroup_access(false);
    assert_eq!(status_and_body(DIRECTORY).await.0, StatusCode::FORBIDDEN);
    sim.set_usergroup_access(true);

    let read_two = client
        .get(sync_client_url(&sim, "two-sync-clients"))
        .bearer_auth(&broker)
        .send()
        .await
        .expect("read answered");
    assert_eq!(read_two.status(), StatusCode::CONFLICT);
    let other_tenant = client
        .post(format!(
            "{}/usergroup/t/customer/broker/directories/{DIRECTORY}/sync-client?action=generate_credentials",
            sim.url()
        ))
        .bearer_auth(&broker)
        .send()
        .await
        .expect("generate answered");
    assert_eq!(
        other_tenant.status(),
        StatusCode::NOT_FOUND,
        "tenant names are case-sensitive"
    );
    assert_eq!(sim.generate_count(DIRECTORY), 0);
}

#[tokio::test]
async fn generate_rejects_bad_requests_without_rotating() {
    let (sim, client) = start(fast_config()).await;
    let session = login(&client, &sim).await;
    let broker = access_token(operator_token_response(&client, &sim, &session).await).await;
    let url = sync_client_url(&sim, DIRECTORY);
    let post = |query: &'static str,
                auth: Option<String>,
                content_type: &'static str,
                body: &'static str| {
        let mut request = client.post(format!("{url}{query}"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if !body.is_empty() {
            request = request.header("content-type", content_type).body(body);
        }
        async move { request.send().await.expect("generate answered").status() }
    };
    let bearer = Some(format!("Bearer {broker}"));
    let action = "?action=generate_credentials";
    let vendor = SYNC_CLIENT_MEDIA_TYPE;

    assert_eq!(
        post(action, None, vendor, "").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(action, Some("Bearer forged".to_owned()), vendor, "").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(action, Some(format!("Bearer {session}")), vendor, "").await,
        StatusCode::UNAUTHORIZED,
        "a session id is not a broker token"
    );
    assert_eq!(
        post("", bearer.clone(), vendor, "").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post("?action=rotate", bearer.clone(), vendor, "").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(action, bearer.clone(), "application/json", "{}").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        post(action, bearer.clone(), vendor, "{\"token_ttl\": \"ten\"}").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(action, bearer.clone(), vendor, "{\"token_ttl\": 0}").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(sim.generate_count(DIRECTORY), 0);
    assert_eq!(
        post(
            action,
            bearer,
            "application/vnd.vmware.vidm.usergroup.broker.directory.syncclientconfiguration+json; charset=utf-8",
            "{}"
        )
        .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn vcenter_errors_are_vapi_standard_errors() {
    let (sim, client) = start(fast_config()).await;
    let rejected = login_response(&client, &sim, "wrong password").await;
    assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
    assert!(
        rejected.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic realm=")
    );
    let body: Value = rejected.json().await.expect("vAPI error");
    assert_eq!(body["error_type"], "UNAUTHENTICATED");
    assert_eq!(
        body["messages"][0]["default_message"],
        "Authentication required."
    );
    assert!(body["challenge"].as_str().is_some());

    let no_session = operator_token_response(&client, &sim, "not-a-session").await;
    assert_eq!(no_session.status(), StatusCode::UNAUTHORIZED);

    let session = login(&client, &sim).await;
    let unknown_tenant = admin_token_response(&client, &sim, &session, "NOPE").await;
    assert_eq!(unknown_tenant.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown_tenant.json().await.expect("vAPI error");
    assert_eq!(body["error_type"], "NOT_FOUND");
    assert!(body.get("challenge").is_none());

    sim.set_privilege(false);
    let forbidden = operator_token_response(&client, &sim, &session).await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let body: Value = forbidden.json().await.expect("vAPI error");
    assert_eq!(body["error_type"], "UNAUTHORIZED");
    sim.set_privilege(true);
    assert_eq!(
        operator_token_response(&client, &sim, &session)
            .await
            .status(),
        StatusCode::OK
    );

    let unknown_path = client
        .get(format!("{}/api/vcenter/vm", sim.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(unknown_path.status(), StatusCode::NOT_FOUND);
    assert_eq!(sim.count(Endpoint::Unknown), 1);
}

#[tokio::test]
async fn only_admin_client_tokens_open_the_usergroup_api_when_so_configured() {
    let (sim, client) = start(BrokerSimConfig {
        accepted_broker_tokens: AcceptedBrokerTokens::AdminClientOnly,
        ..fast_config()
    })
    .await;
    let session = login(&client, &sim).await;
    let operator = access_token(operator_token_response(&client, &sim, &session).await).await;
    let admin = access_token(admin_token_response(&client, &sim, &session, "CUSTOMER").await).await;
    assert_eq!(
        generate(&client, &sim, &operator, DIRECTORY, None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        generate(&client, &sim, &admin, DIRECTORY, None)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn records_method_path_query_headers_body_and_status() {
    let (sim, client) = start(fast_config()).await;
    let broker = broker_token(&client, &sim).await;
    sim.clear_requests();
    let body = json!({"generate_token": true, "token_ttl": 5});
    generate_ok(&client, &sim, &broker, Some(&body)).await;
    generate(&client, &sim, &broker, "unknown", None).await;

    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    let rotation = &requests[0];
    assert_eq!(rotation.method, "POST");
    assert_eq!(
        rotation.path,
        format!("/usergroup/t/CUSTOMER/broker/directories/{DIRECTORY}/sync-client")
    );
    assert_eq!(
        rotation.query.as_deref(),
        Some("action=generate_credentials")
    );
    assert_eq!(
        rotation.query_param("action").as_deref(),
        Some("generate_credentials")
    );
    assert_eq!(
        rotation.header("Authorization"),
        Some(format!("Bearer {broker}").as_str())
    );
    assert_eq!(
        rotation.header("content-type"),
        Some(SYNC_CLIENT_MEDIA_TYPE)
    );
    assert_eq!(rotation.body_json(), Some(body));
    assert_eq!(rotation.endpoint, Endpoint::Generate);
    assert_eq!(rotation.directory_id.as_deref(), Some(DIRECTORY));
    assert_eq!(rotation.status, Some(200));
    assert!(!rotation.faulted);
    assert!(
        !format!("{rotation:?}").contains(&broker),
        "Debug hides the bearer token"
    );
    assert_eq!(requests[1].status, Some(404));
    assert!(requests[1].body.is_empty());

    assert_eq!(sim.count(Endpoint::Generate), 2);
    assert_eq!(sim.count(Endpoint::Login), 0, "cleared before");
    sim.clear_requests();
    assert!(sim.requests().is_empty());
    assert_eq!(sim.count(Endpoint::Generate), 0);
    assert_eq!(
        sim.generate_count(DIRECTORY),
        1,
        "rotations are not requests"
    );
}

#[tokio::test]
async fn ca_pem_is_the_only_trust_needed_and_other_cas_are_refused() {
    let (sim, trusting) = start(fast_config()).await;
    assert_eq!(
        login_response(&trusting, &sim, sim.password())
            .await
            .status(),
        StatusCode::CREATED
    );
    let (other, _) = start(fast_config()).await;
    let mistrusting = client(&other);
    let refused = mistrusting
        .post(format!("{}/api/session", sim.url()))
        .send()
        .await
        .expect_err("a certificate from another CA is refused");
    assert!(refused.is_connect());
}
