//! Credentials never show up in `Debug` or `Display`. (Every error produced by the other test
//! files also passes through `support::checked`, which asserts the same for errors; logs are
//! checked in `logging.rs`.)

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use support::{
    MockBroker, PASSWORD, STATIC_BEARER, assert_no_secret, bearer_config, operator_client,
    vcenter_config,
};
use sync_client_broker::{
    BrokerAuth, BrokerClient, BrokerConfig, ErrorKind, IssuedCredential, SecretString, TlsConfig,
    TokenClient,
};

#[tokio::test]
async fn config_and_client_formatting_hides_credentials() {
    let broker = MockBroker::start().await;
    let mut vcenter = vcenter_config(&broker, TokenClient::AdminClient);
    let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    vcenter.tls = TlsConfig {
        ca_bundle_pem: Some(pem.to_owned()),
        insecure_skip_verify: false,
    };
    vcenter.observer = Some(Arc::new(|_| {}));
    let bearer = bearer_config(&broker);

    let vcenter_debug = format!("{vcenter:?}");
    let vcenter_display = format!("{vcenter}");
    let bearer_debug = format!("{bearer:?}");
    let bearer_display = format!("{bearer}");
    for text in [
        &vcenter_debug,
        &vcenter_display,
        &bearer_debug,
        &bearer_display,
    ] {
        assert_no_secret(text);
    }
    assert!(
        vcenter_debug.contains("password: <redacted>"),
        "{vcenter_debug}"
    );
    assert!(
        vcenter_debug.contains("operator@vsphere.local"),
        "the user name is not a secret"
    );
    assert!(
        vcenter_debug.contains("observer: Some(<observer>)"),
        "{vcenter_debug}"
    );
    assert!(
        vcenter_debug.contains(&format!("<{} bytes of PEM>", pem.len())),
        "{vcenter_debug}"
    );
    assert!(
        bearer_debug.contains("BearerToken(<redacted>)"),
        "{bearer_debug}"
    );
    assert_eq!(
        vcenter_display,
        format!(
            "broker {}/ (tenant CUSTOMER, vCenter user operator@vsphere.local, tenant admin client token)",
            broker.base_url()
        )
    );

    let client = operator_client(&broker);
    client.authenticate().await.expect("authenticated");
    let client_text = format!("{client:?} {client}");
    assert_no_secret(&client_text);
    assert!(client_text.contains(&broker.base_url()));
    let bearer_client = BrokerClient::new(bearer).expect("valid");
    assert_no_secret(&format!("{bearer_client:?} {bearer_client}"));
}

#[test]
fn credentials_in_the_base_url_are_never_printed() {
    let config = BrokerConfig::new(
        "https://admin:url-SECRET-pw@vcenter.test",
        "CUSTOMER",
        BrokerAuth::BearerToken(STATIC_BEARER.into()),
    );

    assert_no_secret(&format!("{config:?} {config}"));
    let error = support::checked(BrokerClient::new(config).expect_err("refused"));
    assert_eq!(
        error.to_string(),
        "configure broker client: base_url must not contain credentials; configure them in the auth settings"
    );
}

#[test]
fn issued_credentials_and_secrets_print_redacted() {
    let token = IssuedCredential::AccessToken {
        access_token: SecretString::from("sync-token-SECRET-d"),
        expires_in: sync_client_broker::ReportedLifetime::NotReported,
    };
    let secret = IssuedCredential::ClientSecret {
        client_id: "c1".to_owned(),
        client_secret: "client-secret-SECRET-d".into(),
    };
    assert_no_secret(&format!("{token:?} {secret:?}"));
    assert_eq!(format!("{}", SecretString::from(PASSWORD)), "<redacted>");
    assert_eq!(SecretString::new(PASSWORD.to_owned()).expose(), PASSWORD);
}

#[test]
fn configuration_errors_are_clear() {
    let auth = || BrokerAuth::VCenter {
        username: "u".to_owned(),
        password: "p-SECRET".into(),
        token_client: TokenClient::OperatorClient,
    };
    let cases = [
        (
            BrokerConfig::new("not a url", "T", auth()),
            "base_url is not a valid URL",
        ),
        (
            BrokerConfig::new("ftp://vcenter.test", "T", auth()),
            "base_url must start with https://",
        ),
        (
            BrokerConfig::new("https://vcenter.test?x=1", "T", auth()),
            "base_url must not have a query",
        ),
        (
            BrokerConfig::new("https://vcenter.test", "", auth()),
            "the tenant is empty",
        ),
        (
            BrokerConfig::new("https://vcenter.test", "..", auth()),
            "the tenant must not be \"..\"",
        ),
        (
            BrokerConfig::new(
                "https://vcenter.test",
                "T",
                BrokerAuth::VCenter {
                    username: " ".to_owned(),
                    password: "p-SECRET".into(),
                    token_client: TokenClient::AdminClient,
                },
            ),
            "the vCenter user name is empty",
        ),
        (
            BrokerConfig::new(
                "https://vcenter.test",
                "T",
                BrokerAuth::BearerToken("".into()),
            ),
            "the bearer token is empty",
        ),
        (
            BrokerConfig {
                request_timeout: std::time::Duration::ZERO,
                ..BrokerConfig::new("https://vcenter.test", "T", auth())
            },
            "request_timeout must be positive",
        ),
    ];
    for (config, expected) in cases {
        let error = support::checked(BrokerClient::new(config).expect_err("refused"));
        assert!(
            error.to_string().contains(expected),
            "{error} vs {expected}"
        );
        assert_eq!(error.kind(), ErrorKind::Spec, "{error}");
    }
}

#[tokio::test]
async fn a_blocked_login_and_its_client_print_no_password() {
    let broker = MockBroker::start().await;
    let mut config = vcenter_config(&broker, TokenClient::OperatorClient);
    config.auth = BrokerAuth::VCenter {
        username: "operator@vsphere.local".to_owned(),
        password: "refused-SECRET-password".into(),
        token_client: TokenClient::OperatorClient,
    };
    let config_debug = format!("{config:?}");
    assert!(
        config_debug.contains("allow_insecure_http: true"),
        "{config_debug}"
    );
    assert!(
        config_debug.contains("login_cooldown: 900s"),
        "{config_debug}"
    );
    let client = support::client(config);

    let refused = support::expect_error(client.authenticate().await);
    let blocked = support::expect_error(client.authenticate().await);

    for text in [
        format!("{refused:?} {refused}"),
        format!("{blocked:?} {blocked}"),
        format!("{client:?} {client}"),
        format!("{:?}", client.login_blocked_until()),
    ] {
        assert_no_secret(&text);
        assert!(!text.contains("refused-SECRET-password"), "{text}");
    }
    let lifetime = sync_client_broker::ReportedLifetime::Seconds(i64::MAX);
    let issued = IssuedCredential::AccessToken {
        access_token: SecretString::from("sync-token-SECRET-e"),
        expires_in: lifetime,
    };
    let printed = format!("{issued:?}");
    assert_no_secret(&printed);
    assert!(
        printed.contains("Seconds(9223372036854775807)"),
        "{printed}"
    );
}
