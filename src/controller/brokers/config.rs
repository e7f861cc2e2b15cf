//! A broker's client configuration, read from its resource and its Secrets: the login, the CA
//! bundle, the request timeout, and the digest that tells when a client must be rebuilt.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use sha2::{Digest, Sha256};
use sync_client_broker::{
    BrokerAuth as ClientAuth, BrokerConfig, SecretString, TlsConfig,
    TokenClient as ClientTokenClient,
};

use super::{BrokerKey, DEFAULT_REQUEST_TIMEOUT, Observer, ResolveError};
use crate::api::{BrokerConnection, SecretKeyRef, TokenClient};
use crate::controller::references::ReadError;

/// Reads keys of one Secret in the broker's Secret namespace.
async fn secret_values<const N: usize>(
    secrets: &Api<Secret>,
    broker: &BrokerKey,
    name: &str,
    keys: [&str; N],
) -> Result<[String; N], ResolveError> {
    crate::controller::references::secret_values(secrets, name, keys)
        .await
        .map_err(|e| read_error(broker, e))
}

pub(super) fn read_error(broker: &BrokerKey, error: ReadError) -> ResolveError {
    match error {
        ReadError::Invalid(message) => ResolveError::ConfigInvalid {
            broker: broker.clone(),
            message,
        },
        ReadError::Kube {
            what,
            detail,
            source,
        } => ResolveError::Kube {
            broker: broker.clone(),
            what,
            detail,
            source: Box::new(source),
        },
    }
}

pub(super) async fn load_config(
    secrets: &Api<Secret>,
    key: &BrokerKey,
    connection: &BrokerConnection,
    observer: Option<Observer>,
) -> Result<BrokerConfig, ResolveError> {
    let tls = connection.tls.clone().unwrap_or_default();
    if tls.insecure_skip_verify {
        tracing::warn!(broker = %key, "TLS verification is disabled for this broker (insecureSkipVerify): credentials can be intercepted");
    }
    if connection.allow_insecure_http && connection.url.starts_with("http://") {
        tracing::warn!(broker = %key, "this broker is reached over plain http (allowInsecureHttp): the vCenter password and every credential cross the network unencrypted");
    }
    Ok(BrokerConfig {
        base_url: connection.url.clone(),
        tenant: connection.tenant.clone(),
        auth: load_auth(secrets, key, connection).await?,
        tls: TlsConfig {
            ca_bundle_pem: load_ca_bundle(secrets, key, &tls).await?,
            insecure_skip_verify: tls.insecure_skip_verify,
        },
        request_timeout: request_timeout(key, connection)?,
        token_refresh_margin: Duration::from_secs(60),
        observer,
        allow_insecure_http: connection.allow_insecure_http,
        login_cooldown: sync_client_broker::DEFAULT_LOGIN_COOLDOWN,
    })
}

fn invalid(key: &BrokerKey, message: impl Into<String>) -> ResolveError {
    ResolveError::ConfigInvalid {
        broker: key.clone(),
        message: message.into(),
    }
}

/// The login from the broker's Secret: vCenter user and password, or a ready bearer token.
async fn load_auth(
    secrets: &Api<Secret>,
    key: &BrokerKey,
    connection: &BrokerConnection,
) -> Result<ClientAuth, ResolveError> {
    match (&connection.auth.vcenter, &connection.auth.bearer_token) {
        (Some(vcenter), None) => {
            let r = &vcenter.credentials_secret_ref;
            let [username, password] =
                secret_values(secrets, key, &r.name, [&r.username_key, &r.password_key]).await?;
            Ok(ClientAuth::VCenter {
                username,
                password: SecretString::from(password),
                token_client: match vcenter.token_client {
                    TokenClient::OperatorClient => ClientTokenClient::OperatorClient,
                    TokenClient::AdminClient => ClientTokenClient::AdminClient,
                },
            })
        }
        (None, Some(bearer)) => {
            let SecretKeyRef {
                name,
                key: data_key,
            } = &bearer.secret_ref;
            let [token] =
                secret_values(secrets, key, name, [data_key.as_deref().unwrap_or("token")]).await?;
            Ok(ClientAuth::BearerToken(SecretString::from(
                token.trim().to_owned(),
            )))
        }
        _ => Err(invalid(
            key,
            "set exactly one of auth.vcenter and auth.bearerToken",
        )),
    }
}

/// The CA bundle to trust, from the resource or its Secret (`None`: the system roots).
async fn load_ca_bundle(
    secrets: &Api<Secret>,
    key: &BrokerKey,
    tls: &crate::api::BrokerTls,
) -> Result<Option<String>, ResolveError> {
    match (&tls.ca_bundle, &tls.ca_secret_ref) {
        (Some(pem), None) => Ok(Some(pem.clone())),
        (None, Some(r)) => {
            let [pem] = secret_values(
                secrets,
                key,
                &r.name,
                [r.key.as_deref().unwrap_or("ca.crt")],
            )
            .await?;
            Ok(Some(pem))
        }
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(invalid(
            key,
            "set tls.caBundle or tls.caSecretRef, not both",
        )),
    }
}

fn request_timeout(
    key: &BrokerKey,
    connection: &BrokerConnection,
) -> Result<Duration, ResolveError> {
    let Some(text) = connection
        .limits
        .as_ref()
        .and_then(|l| l.request_timeout.as_deref())
    else {
        return Ok(DEFAULT_REQUEST_TIMEOUT);
    };
    // The schema's bounds, also for an object stored around validation (the issue deadline cuts
    // each request of a generate chain to what remains of it anyway).
    crate::duration::parse(text)
        .ok()
        .and_then(|d| d.to_std().ok())
        .filter(|d| REQUEST_TIMEOUT_BOUNDS.contains(d))
        .ok_or_else(|| {
            invalid(
                key,
                format!("limits.requestTimeout {text:?} is not between 1s and 5m"),
            )
        })
}

const REQUEST_TIMEOUT_BOUNDS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(300);
/// The most concurrent requests a broker resource may ask for (its schema's maximum).
pub(super) const MAX_CONCURRENT_REQUESTS: usize = 64;

/// A digest of everything that shapes a client, secrets included (kept in memory only).
pub(super) fn config_fingerprint(config: &BrokerConfig, max_concurrent: usize) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(config.base_url.as_bytes());
    field(config.tenant.as_bytes());
    match &config.auth {
        ClientAuth::VCenter {
            username,
            password,
            token_client,
        } => {
            field(b"vcenter");
            field(username.as_bytes());
            field(password.expose().as_bytes());
            field(format!("{token_client:?}").as_bytes());
        }
        ClientAuth::BearerToken(token) => {
            field(b"bearer");
            field(token.expose().as_bytes());
        }
    }
    field(config.tls.ca_bundle_pem.as_deref().unwrap_or("").as_bytes());
    field(&[u8::from(config.tls.insecure_skip_verify)]);
    field(&config.request_timeout.as_millis().to_be_bytes());
    field(&[u8::from(config.allow_insecure_http)]);
    field(&config.login_cooldown.as_millis().to_be_bytes());
    field(&max_concurrent.to_be_bytes());
    hash.finalize().into()
}
