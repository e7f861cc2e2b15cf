//! The token endpoint over real HTTPS: client secrets, certificate assertions and federated
//! credentials, accepted and refused; token lifetimes.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    CLIENT_ID, CLIENT_SECRET, aadsts, access_token, access_token_of, assertion_form, get,
    graph_error, secret_form, start, start_with, token_response,
};
use serde_json::{Value, json};
use sync_client_entra_sim::{
    AppRegistration, Call, ClientSecret, EntraSimConfig, FederatedCredential, GRAPH_SCOPE,
    JwtAlgorithm, JwtSigningKey, VerificationKey, client_assertion_claims, test_app_key,
};

const ISSUER: &str = "https://oidc.cluster.example/abc";
const SUBJECT: &str = "system:serviceaccount:sync-client-system:sync-client-operator";

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A certificate assertion of the test key for `CLIENT_ID` with these claims and header.
fn assertion_with(header: &Value, claims: &Value, algorithm: JwtAlgorithm) -> String {
    test_app_key()
        .signing_key()
        .unwrap()
        .sign(algorithm, header, claims)
        .unwrap()
}

fn sha256_header() -> Value {
    json!({"x5t#S256": test_app_key().thumbprints().unwrap().sha256})
}

#[tokio::test]
async fn a_client_secret_buys_a_bearer_token_with_expires_in() {
    let (sim, client) = start().await;
    assert!(sim.url().starts_with("https://127.0.0.1:"));
    let response = token_response(&client, &sim, &secret_form(CLIENT_ID, CLIENT_SECRET)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.len() >= 40, "an opaque random string");
    assert_ne!(
        token,
        access_token(&client, &sim).await,
        "every token is new"
    );

    // The simulator's own URL is a valid Graph resource too (the Graph root is overridden).
    let own_scope = format!("{}/.default", sim.url());
    let mut form = secret_form(CLIENT_ID, CLIENT_SECRET);
    form[2].1 = &own_scope;
    assert_eq!(token_response(&client, &sim, &form).await.status(), 200);
    assert_eq!(sim.token_requests_by(CLIENT_ID), 3);
    assert_eq!(sim.count_with_status(Call::Token, 200), 3);
}

type Form<'a> = Vec<(&'a str, &'a str)>;
/// Status, `error` and AADSTS code.
type Refusal<'a> = (u16, &'a str, u64);

#[tokio::test]
async fn client_secret_refusals_carry_the_documented_aadsts_codes() {
    let (sim, client) = start().await;
    let yesterday = SystemTime::now() - Duration::from_secs(86_400);
    sim.register_app(
        AppRegistration::new("expired-app")
            .with_secret(ClientSecret::new("old-secret").expiring_at(yesterday)),
    );
    let cases: Vec<(Form, Refusal)> = vec![
        (
            secret_form(CLIENT_ID, "wrong"),
            (400, "invalid_client", 7_000_215),
        ),
        (
            secret_form("expired-app", "old-secret"),
            (400, "invalid_client", 7_000_222),
        ),
        (
            secret_form("unknown-app", "x"),
            (400, "unauthorized_client", 700_016),
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("scope", GRAPH_SCOPE),
            ],
            (400, "invalid_client", 7_000_216),
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", CLIENT_ID),
                ("scope", GRAPH_SCOPE),
            ],
            (400, "unsupported_grant_type", 70003),
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                (
                    "scope",
                    "https://graph.microsoft.com/Synchronization.ReadWrite.All",
                ),
                ("client_secret", CLIENT_SECRET),
            ],
            (400, "invalid_scope", 1_002_012),
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("scope", "https://management.azure.com/.default"),
                ("client_secret", CLIENT_SECRET),
            ],
            (400, "invalid_resource", 500_011),
        ),
    ];
    for (form, (status, error, code)) in cases {
        let refused = aadsts(token_response(&client, &sim, &form).await).await;
        assert_eq!(refused, (status, error.to_owned(), code), "{form:?}");
    }

    let unknown_tenant = client
        .post(format!("{}/other-tenant/oauth2/v2.0/token", sim.url()))
        .body(format!("grant_type=client_credentials&client_id={CLIENT_ID}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret={CLIENT_SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        aadsts(unknown_tenant).await,
        (400, "invalid_request".to_owned(), 90002)
    );

    // A second, valid secret next to the expired one works (an app secret rotation).
    assert!(sim.add_client_secret("expired-app", ClientSecret::new("new-secret")));
    assert_eq!(
        token_response(&client, &sim, &secret_form("expired-app", "new-secret"))
            .await
            .status(),
        200
    );
    let codes: Vec<Option<String>> = sim
        .requests()
        .iter()
        .map(|request| request.error_code.clone())
        .collect();
    assert_eq!(codes[0].as_deref(), Some("AADSTS7000215"));
}

#[tokio::test]
async fn certificate_assertions_signed_rs256_or_ps256_are_accepted_by_either_thumbprint() {
    let (sim, client) = start().await;
    for algorithm in [JwtAlgorithm::Rs256, JwtAlgorithm::Ps256] {
        let assertion = test_app_key()
            .client_assertion(CLIENT_ID, &sim.token_url(), algorithm)
            .unwrap();
        let token = access_token_of(
            token_response(&client, &sim, &assertion_form(CLIENT_ID, &assertion)).await,
        )
        .await;
        assert_eq!(get(&client, &sim, &token, "/jobs").await.status(), 200);
    }
    let sha1_header = json!({"x5t": test_app_key().thumbprints().unwrap().sha1});
    let claims = client_assertion_claims(CLIENT_ID, &sim.token_url(), Duration::from_secs(300));
    let assertion = assertion_with(&sha1_header, &claims, JwtAlgorithm::Rs256);
    assert_eq!(
        token_response(&client, &sim, &assertion_form(CLIENT_ID, &assertion))
            .await
            .status(),
        200
    );
    let request = sim.requests().pop().unwrap();
    assert!(request.sent.client_assertion && !request.sent.client_secret);
}

#[tokio::test]
async fn certificate_assertions_are_refused_for_each_broken_check() {
    let (sim, client) = start().await;
    let url = sim.token_url();
    let valid = || client_assertion_claims(CLIENT_ID, &url, Duration::from_secs(300));
    let with = |field: &str, value: Value| {
        let mut claims = valid();
        claims[field] = value;
        claims
    };
    let signed = |claims: &Value| assertion_with(&sha256_header(), claims, JwtAlgorithm::Rs256);

    let tampered = {
        let good = signed(&valid());
        let (head, _) = good.rsplit_once('.').unwrap();
        let other = signed(&valid());
        let (_, foreign_signature) = other.rsplit_once('.').unwrap();
        format!("{head}.{foreign_signature}")
    };
    let unknown_certificate = assertion_with(
        &json!({"x5t#S256": "bm90LWEtcmVnaXN0ZXJlZC1jZXJ0aWZpY2F0ZQ"}),
        &valid(),
        JwtAlgorithm::Rs256,
    );
    let ec_key = JwtSigningKey::generate_es256().unwrap();
    let es256 = ec_key
        .sign(JwtAlgorithm::Es256, &sha256_header(), &valid())
        .unwrap();
    let mut no_jti = valid();
    no_jti.as_object_mut().unwrap().remove("jti");
    let past = now_seconds() - 600;
    let cases = [
        ("wrong signature", tampered, 700_027),
        ("unknown x5t#S256", unknown_certificate, 700_027),
        (
            "wrong aud",
            signed(&with(
                "aud",
                json!("https://login.microsoftonline.com/x/oauth2/v2.0/token"),
            )),
            50012,
        ),
        (
            "sub is not the client id",
            signed(&with("sub", json!("someone-else"))),
            700_021,
        ),
        ("expired", signed(&with("exp", json!(past))), 700_024),
        (
            "not yet valid",
            signed(&with("nbf", json!(now_seconds() + 600))),
            700_024,
        ),
        ("no jti", signed(&no_jti), 50027),
        ("ES256 for a certificate", es256, 5_002_738),
        ("not a JWT", "not-a-jwt".to_owned(), 50027),
    ];
    for (case, assertion, code) in cases {
        let refused =
            aadsts(token_response(&client, &sim, &assertion_form(CLIENT_ID, &assertion)).await)
                .await;
        assert_eq!(refused, (400, "invalid_client".to_owned(), code), "{case}");
    }

    // A valid assertion works once; its jti replayed is refused.
    let once = signed(&valid());
    assert_eq!(
        token_response(&client, &sim, &assertion_form(CLIENT_ID, &once))
            .await
            .status(),
        200
    );
    let replayed =
        aadsts(token_response(&client, &sim, &assertion_form(CLIENT_ID, &once)).await).await;
    assert_eq!(replayed, (400, "invalid_client".to_owned(), 700_236));

    // Both a secret and an assertion, or a wrong assertion type: refused.
    let mut both = assertion_form(CLIENT_ID, &once);
    both.push(("client_secret", CLIENT_SECRET));
    assert_eq!(
        aadsts(token_response(&client, &sim, &both).await).await.2,
        90014
    );
    let mut wrong_type = assertion_form(CLIENT_ID, &once);
    wrong_type[3].1 = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer";
    assert_eq!(
        aadsts(token_response(&client, &sim, &wrong_type).await)
            .await
            .2,
        90014
    );
}

#[tokio::test]
async fn federated_tokens_of_a_registered_issuer_subject_and_audience_are_accepted() {
    let (sim, client) = start().await;
    let cluster_ec = JwtSigningKey::generate_es256().unwrap();
    let cluster_rsa = test_app_key().signing_key().unwrap();
    sim.register_app(
        AppRegistration::new("wif-app")
            .with_federated_credential(FederatedCredential::new(
                ISSUER,
                SUBJECT,
                cluster_ec.verification_key().unwrap(),
            ))
            .with_federated_credential(FederatedCredential::new(
                "https://second.cluster.example",
                SUBJECT,
                VerificationKey::from_pem(test_app_key().certificate_pem).unwrap(),
            )),
    );
    let claims = |issuer: &str, subject: &str, audience: Value, exp: u64| json!({"iss": issuer, "sub": subject, "aud": audience, "iat": now_seconds(), "nbf": now_seconds(), "exp": exp, "kubernetes.io": {"namespace": "sync-client-system"}});
    let in_an_hour = now_seconds() + 3600;
    let service_account_token = cluster_ec
        .sign(
            JwtAlgorithm::Es256,
            &json!({"kid": "k1"}),
            &claims(
                ISSUER,
                SUBJECT,
                json!(["api://AzureADTokenExchange"]),
                in_an_hour,
            ),
        )
        .unwrap();
    for _ in 0..2 {
        // The kubelet's token is read again for every token request; re-use is fine.
        assert_eq!(
            token_response(
                &client,
                &sim,
                &assertion_form("wif-app", &service_account_token)
            )
            .await
            .status(),
            200
        );
    }
    let rsa_token = cluster_rsa
        .sign(
            JwtAlgorithm::Rs256,
            &json!({}),
            &claims(
                "https://second.cluster.example",
                SUBJECT,
                json!("api://AzureADTokenExchange"),
                in_an_hour,
            ),
        )
        .unwrap();
    assert_eq!(
        token_response(&client, &sim, &assertion_form("wif-app", &rsa_token))
            .await
            .status(),
        200
    );

    let other_key = JwtSigningKey::generate_es256().unwrap();
    let audience = json!("api://AzureADTokenExchange");
    let cases = [
        (
            "unknown issuer",
            cluster_ec
                .sign(
                    JwtAlgorithm::Es256,
                    &json!({}),
                    &claims(
                        "https://evil.example",
                        SUBJECT,
                        audience.clone(),
                        in_an_hour,
                    ),
                )
                .unwrap(),
            700_211,
        ),
        (
            "other subject",
            cluster_ec
                .sign(
                    JwtAlgorithm::Es256,
                    &json!({}),
                    &claims(
                        ISSUER,
                        "system:serviceaccount:default:other",
                        audience.clone(),
                        in_an_hour,
                    ),
                )
                .unwrap(),
            700_213,
        ),
        (
            "other audience",
            cluster_ec
                .sign(
                    JwtAlgorithm::Es256,
                    &json!({}),
                    &claims(
                        ISSUER,
                        SUBJECT,
                        json!("https://kubernetes.default.svc"),
                        in_an_hour,
                    ),
                )
                .unwrap(),
            700_212,
        ),
        (
            "signed by another key",
            other_key
                .sign(
                    JwtAlgorithm::Es256,
                    &json!({}),
                    &claims(ISSUER, SUBJECT, audience.clone(), in_an_hour),
                )
                .unwrap(),
            700_027,
        ),
        (
            "expired",
            cluster_ec
                .sign(
                    JwtAlgorithm::Es256,
                    &json!({}),
                    &claims(ISSUER, SUBJECT, audience.clone(), now_seconds() - 5),
                )
                .unwrap(),
            700_024,
        ),
    ];
    for (case, assertion, code) in cases {
        let refused =
            aadsts(token_response(&client, &sim, &assertion_form("wif-app", &assertion)).await)
                .await;
        assert_eq!(refused, (400, "invalid_client".to_owned(), code), "{case}");
    }
}

#[tokio::test]
async fn access_tokens_expire_by_time_and_on_demand() {
    let config = EntraSimConfig {
        access_token_lifetime: Duration::from_secs(1),
        ..EntraSimConfig::default()
    };
    let (sim, client) = start_with(config).await;
    let response = token_response(&client, &sim, &secret_form(CLIENT_ID, CLIENT_SECRET)).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 1);
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&client, &sim, &token, "/jobs").await.status(), 200);
    // Bounded wait for the one-second lifetime to pass.
    let mut status = 200;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = get(&client, &sim, &token, "/jobs").await.status().as_u16();
        if status == 401 {
            break;
        }
    }
    assert_eq!(status, 401, "the token died with its lifetime");
    assert_eq!(
        graph_error(get(&client, &sim, &token, "/jobs").await).await,
        (401, "InvalidAuthenticationToken".to_owned())
    );

    let (sim, client) = start().await;
    let token = access_token(&client, &sim).await;
    sim.expire_access_tokens();
    assert_eq!(get(&client, &sim, &token, "/jobs").await.status(), 401);
    let fresh = access_token(&client, &sim).await;
    assert_eq!(get(&client, &sim, &fresh, "/jobs").await.status(), 200);
}
