//! The app-only token: the request as Entra expects it for each credential (client secret, a
//! certificate assertion the mock verifies with ring, a federated token file re-read at every
//! login), caching, single-flight, expiry, the 401 retry, and the login's AADSTS errors.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::{
    CLIENT_ID, CLIENT_SECRET, JOB_ID, MockEntra, Reply, Route, SP_ID, TENANT,
    certificate_key_and_thumbprint, client, config, config_with, expect_error, observed_client,
    test_certificate_pem, test_key_pem, verify_assertion,
};
use sync_client_graph::{ClientCredential, GraphClient, GraphErrorKind, SecretString};

#[tokio::test]
async fn a_client_secret_login_sends_the_documented_form() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));

    client.authenticate().await.expect("logged in");

    let requests = mock.requests_to(Route::Token);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/{TENANT}/oauth2/v2.0/token"));
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form = request.form();
    let expected = [
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("scope", format!("{}/.default", mock.base_url())),
        ("client_secret", CLIENT_SECRET.to_owned()),
    ];
    assert_eq!(form.len(), expected.len(), "{form:?}");
    for (key, value) in expected {
        assert_eq!(form.get(key), Some(&value), "{key}");
    }
    assert_eq!(client.token_requests(), 1);
}

#[tokio::test]
async fn one_token_serves_many_calls() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));

    for _ in 0..5 {
        client.get_job(SP_ID, JOB_ID).await.expect("job");
    }
    client.list_jobs(SP_ID).await.expect("jobs");
    client
        .clone()
        .authenticate()
        .await
        .expect("still logged in");

    assert_eq!(client.token_requests(), 1);
    assert_eq!(mock.count(Route::Token), 1);
    assert_eq!(mock.count(Route::GetJob), 5);
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let mock = MockEntra::start().await;
    mock.push(
        Route::Token,
        Reply::DefaultAfter(Duration::from_millis(300)),
    );
    let client = client(config(&mock));

    let calls: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_job(SP_ID, JOB_ID).await })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("job");
    }

    assert_eq!(client.token_requests(), 1);
    assert_eq!(mock.count(Route::Token), 1);
    assert_eq!(mock.count(Route::GetJob), 16);
}

#[tokio::test]
async fn a_token_is_fetched_again_when_it_is_about_to_expire() {
    let mock = MockEntra::start().await;
    // One second: the margin (5 minutes) is cut to half the lifetime, so it is reused for half
    // a second.
    mock.set_expires_in(json!(1));
    let client = client(config(&mock));

    client.get_job(SP_ID, JOB_ID).await.expect("job");
    client.get_job(SP_ID, JOB_ID).await.expect("job");
    let reused = client.token_requests();
    tokio::time::sleep(Duration::from_millis(700)).await;
    client.get_job(SP_ID, JOB_ID).await.expect("job");

    assert!(reused <= 2, "{reused}");
    assert_eq!(client.token_requests(), reused + 1);
    assert_eq!(
        mock.count(Route::Token),
        usize::try_from(reused + 1).unwrap()
    );
}

#[tokio::test]
async fn tokens_without_a_usable_lifetime_serve_one_call() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    for (round, expires_in) in [json!(0), json!(-5), json!("soon"), json!(null)]
        .into_iter()
        .enumerate()
    {
        mock.set_expires_in(expires_in);
        client.authenticate().await.expect("logged in");
        // The previous token was not cached: every round logs in.
        assert_eq!(client.token_requests(), u64::try_from(round).unwrap() + 1);
    }
    mock.set_expires_in(json!("3599"));
    client.authenticate().await.expect("logged in");
    client.authenticate().await.expect("cached");
    assert_eq!(client.token_requests(), 5);
}

#[tokio::test]
async fn a_refused_token_is_replaced_once_and_the_call_retried() {
    let mock = MockEntra::start().await;
    let (client, outcomes) = observed_client(&mock);
    client.authenticate().await.expect("logged in");
    mock.revoke_tokens();

    let job = client
        .get_job(SP_ID, JOB_ID)
        .await
        .expect("job after a new token");

    assert_eq!(job.id, JOB_ID);
    assert_eq!(client.token_requests(), 2);
    let bearers: Vec<_> = mock
        .requests_to(Route::GetJob)
        .iter()
        .map(|request| request.bearer().unwrap())
        .collect();
    assert_eq!(bearers, ["graph-token-SECRET-1", "graph-token-SECRET-2"]);
    assert_eq!(
        outcomes.summary(),
        [
            ("token", Some(200), "success"),
            ("get_job", Some(401), "unauthorized"),
            ("token", Some(200), "success"),
            ("get_job", Some(200), "success"),
        ]
    );
}

#[tokio::test]
async fn a_second_401_is_reported_without_looping() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    for _ in 0..2 {
        mock.push(
            Route::PutSecrets,
            Reply::graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired.",
            ),
        );
    }

    let error = expect_error(
        client
            .put_secrets(
                SP_ID,
                support::BASE_ADDRESS,
                &SecretString::from(support::SCIM_TOKEN),
            )
            .await,
    );

    assert_eq!(error.kind(), GraphErrorKind::Unauthorized);
    assert_eq!(error.status(), Some(401));
    assert_eq!(error.code(), Some("InvalidAuthenticationToken"));
    assert_eq!(
        error.to_string(),
        "save provisioning secret token: Microsoft Graph answered 401 Unauthorized: the access \
         token was refused; InvalidAuthenticationToken: Access token has expired."
    );
    assert_eq!(mock.count(Route::PutSecrets), 2);
    assert_eq!(client.token_requests(), 2);
}

#[tokio::test]
async fn login_errors_need_configuration_and_say_which() {
    let cases = [
        (
            "invalid_client",
            7_000_215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            "the client secret is wrong (give the secret's value, not its id)",
        ),
        (
            "invalid_client",
            7_000_222,
            "The provided client secret keys for app 'b7d1' are expired.",
            "the client secret has expired; create a new one",
        ),
        (
            "unauthorized_client",
            700_016,
            "Application with identifier 'b7d1' was not found in the directory 'Contoso'.",
            "no application with this client id exists in the tenant",
        ),
        (
            "invalid_request",
            90_002,
            "Tenant '3f8e' not found. Check to make sure you have the correct tenant ID.",
            "the tenant does not exist",
        ),
    ];
    for (code, aadsts, description, hint) in cases {
        let mock = MockEntra::start().await;
        mock.push(Route::Token, Reply::login_error(code, aadsts, description));
        let client = client(config(&mock));

        let error = expect_error(client.get_job(SP_ID, JOB_ID).await);

        assert_eq!(error.kind(), GraphErrorKind::InvalidClient, "{error}");
        assert!(!error.kind().is_retryable());
        assert_eq!(error.status(), Some(400));
        assert_eq!(error.code(), Some(code));
        assert_eq!(error.aadsts(), Some(aadsts));
        assert_eq!(error.request_id(), Some("0c4b-trace"));
        assert_eq!(error.call(), Some(sync_client_graph::GraphCall::Token));
        let prefix = format!(
            "get Microsoft Graph token: Microsoft Entra login answered 400 Bad Request: {hint}; {code}: AADSTS{aadsts}: "
        );
        assert!(error.to_string().starts_with(&prefix), "{error}");
        assert!(!error.to_string().contains("Trace ID"), "{error}");
        assert_eq!(mock.count(Route::Token), 1, "no retry of a refused login");
        assert_eq!(mock.count(Route::GetJob), 0);
    }
}

#[tokio::test]
async fn the_mock_refuses_a_wrong_secret_as_entra_does() {
    let mock = MockEntra::start().await;
    let client = client(config_with(
        &mock,
        ClientCredential::Secret(SecretString::from("wrong-SECRET")),
    ));
    let error = expect_error(client.authenticate().await);
    assert_eq!(error.kind(), GraphErrorKind::InvalidClient);
    assert_eq!(error.aadsts(), Some(7_000_215));
}

#[tokio::test]
async fn throttled_and_failing_logins_are_retryable() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    mock.push(
        Route::Token,
        Reply::json(429, &json!({"error": "temporarily_unavailable"})).header("retry-after", "17"),
    );
    mock.push(Route::Token, Reply::status(503).header("retry-after", "4"));
    mock.push(
        Route::Token,
        Reply::json(
            400,
            &json!({"error": "temporarily_unavailable", "error_description": "AADSTS50196: busy"}),
        ),
    );

    let throttled = expect_error(client.authenticate().await);
    let unavailable = expect_error(client.authenticate().await);
    let busy = expect_error(client.authenticate().await);

    assert_eq!(throttled.kind(), GraphErrorKind::Throttled);
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(17)));
    assert_eq!(unavailable.kind(), GraphErrorKind::Transient);
    assert_eq!(unavailable.retry_after(), Some(Duration::from_secs(4)));
    assert_eq!(busy.kind(), GraphErrorKind::Transient);
    assert_eq!(busy.aadsts(), Some(50_196));
    client.authenticate().await.expect("logged in at last");
}

/// Logs in with the committed test key (PKCS#8 or PKCS#1) and returns the assertion sent.
async fn certificate_login(pkcs1: bool) -> (MockEntra, String) {
    let mock = MockEntra::start().await;
    let certificate_pem = test_certificate_pem();
    mock.register_certificate(&certificate_pem);
    let client = client(config_with(
        &mock,
        ClientCredential::Certificate {
            certificate_pem,
            private_key_pem: SecretString::from(test_key_pem(pkcs1)),
        },
    ));

    client
        .get_job(SP_ID, JOB_ID)
        .await
        .expect("logged in with the certificate");

    assert_eq!(mock.assertion_refusals(), Vec::<String>::new());
    let form = mock.requests_to(Route::Token)[0].form();
    assert_eq!(form.get("client_secret"), None);
    assert_eq!(
        form.get("client_assertion_type").map(String::as_str),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    (mock, form["client_assertion"].clone())
}

#[tokio::test]
async fn a_certificate_assertion_is_signed_with_ps256_and_carries_every_claim() {
    for pkcs1 in [false, true] {
        let (mock, assertion) = certificate_login(pkcs1).await;
        // The mock verified it already; check again here, visibly.
        let (public_key, thumbprint) = certificate_key_and_thumbprint(&test_certificate_pem());
        let claims = verify_assertion(&assertion, &public_key, &thumbprint, &mock.token_url())
            .expect("valid assertion");
        assert_eq!(claims["aud"], json!(mock.token_url()));
        assert_eq!(claims["iss"], json!(CLIENT_ID));
        assert_eq!(claims["sub"], json!(CLIENT_ID));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
            600
        );
        assert_eq!(claims["iat"], claims["nbf"]);
        // A tampered signature does not verify.
        let mut tampered = assertion.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert!(verify_assertion(&tampered, &public_key, &thumbprint, &mock.token_url()).is_err());
    }
}

#[tokio::test]
async fn every_certificate_login_signs_a_fresh_assertion() {
    let mock = MockEntra::start().await;
    mock.set_expires_in(json!(0));
    let certificate_pem = test_certificate_pem();
    mock.register_certificate(&certificate_pem);
    let client = client(config_with(
        &mock,
        ClientCredential::Certificate {
            certificate_pem,
            private_key_pem: SecretString::from(test_key_pem(false)),
        },
    ));
    for _ in 0..3 {
        client.authenticate().await.expect("logged in");
    }
    let assertions: std::collections::HashSet<String> = mock
        .requests_to(Route::Token)
        .iter()
        .map(|request| request.form()["client_assertion"].clone())
        .collect();
    assert_eq!(assertions.len(), 3, "a new jti (and signature) each time");
    assert_eq!(mock.assertion_refusals(), Vec::<String>::new());
}

#[tokio::test]
async fn unusable_certificate_credentials_are_configuration_errors() {
    let mock = MockEntra::start().await;
    let other = rcgen::generate_simple_self_signed(vec!["other.example".to_owned()]).unwrap();
    let cases = [
        (
            test_certificate_pem(),
            other.signing_key.serialize_pem(),
            "the private key is not a usable RSA key",
        ),
        (
            other.cert.pem(),
            test_key_pem(false),
            "the private key does not belong to the certificate",
        ),
        (
            "not a certificate".to_owned(),
            test_key_pem(false),
            "the certificate PEM holds no certificate",
        ),
        (
            test_certificate_pem(),
            "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA==\n-----END EC PRIVATE KEY-----\n"
                .to_owned(),
            "PKCS#8 (BEGIN PRIVATE KEY) or PKCS#1",
        ),
    ];
    for (certificate_pem, key_pem, reason) in cases {
        let key = SecretString::from(key_pem.as_str());
        let error = GraphClient::new(config_with(
            &mock,
            ClientCredential::Certificate {
                certificate_pem,
                private_key_pem: key,
            },
        ))
        .expect_err("refused");
        assert_eq!(error.kind(), GraphErrorKind::Configuration);
        assert!(error.to_string().contains(reason), "{error}");
        assert!(!error.to_string().contains("PRIVATE KEY-----"), "{error}");
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn the_federated_token_file_is_read_again_at_every_login() {
    let mock = MockEntra::start().await;
    mock.set_expires_in(json!(1));
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("azure-identity-token");
    std::fs::write(&path, "federated-SECRET-1\n").unwrap();
    mock.trust_federated_token("federated-SECRET-1");
    let client = client(config_with(
        &mock,
        ClientCredential::FederatedTokenFile(path.clone()),
    ));

    client.authenticate().await.expect("first login");
    // The kubelet rotates the projected token; the app trusts the new one.
    std::fs::write(&path, "federated-SECRET-2").unwrap();
    mock.trust_federated_token("federated-SECRET-2");
    tokio::time::sleep(Duration::from_millis(700)).await;
    client
        .get_job(SP_ID, JOB_ID)
        .await
        .expect("second login with the new token");

    let assertions: Vec<String> = mock
        .requests_to(Route::Token)
        .iter()
        .map(|request| {
            let form = request.form();
            assert_eq!(
                form["client_assertion_type"],
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            );
            assert_eq!(form.get("client_secret"), None);
            form["client_assertion"].clone()
        })
        .collect();
    assert_eq!(assertions, ["federated-SECRET-1", "federated-SECRET-2"]);

    std::fs::remove_file(&path).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let error = expect_error(client.authenticate().await);
    assert_eq!(error.kind(), GraphErrorKind::Configuration);
    assert!(
        error.to_string().starts_with(&format!(
            "get Microsoft Graph token: cannot read the federated token file {}",
            path.display()
        )),
        "{error}"
    );
    assert_eq!(mock.count(Route::Token), 2, "no request without a token");
}

#[tokio::test]
async fn clones_share_the_token_and_the_count() {
    let mock = MockEntra::start().await;
    let client = client(config(&mock));
    let clones: Vec<Arc<GraphClient>> = (0..3).map(|_| Arc::new(client.clone())).collect();
    for clone in &clones {
        clone.authenticate().await.expect("logged in");
    }
    assert_eq!(client.token_requests(), 1);
    assert_eq!(clones[2].token_requests(), 1);
}
