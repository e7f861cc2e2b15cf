//! A connection's Graph client configuration, read from its resource and its Secrets: the
//! app's credential (client secret, certificate or workload identity), the clouds' hosts, TLS,
//! the request timeout, and the digest that tells when a client must be rebuilt.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use sha2::{Digest, Sha256};
use sync_client_graph::{ClientCredential, Cloud, Endpoints, GraphConfig, SecretString, TlsConfig};

use super::{DEFAULT_REQUEST_TIMEOUT, EntraKey, EntraRegistry, EntraResolveError};
use crate::api::{EntraAuth, EntraCloud, EntraConnectionKind, EntraSettings};
use crate::controller::references::{self, ReadError};

impl EntraRegistry {
    pub(super) async fn load_config(
        &self,
        client: &Client,
        key: &EntraKey,
        settings: &EntraSettings,
        secret_namespace: Option<&str>,
    ) -> Result<GraphConfig, EntraResolveError> {
        let secrets = || -> Result<Api<Secret>, EntraResolveError> {
            secret_namespace
                .map(|ns| Api::namespaced(client.clone(), ns))
                .ok_or_else(|| invalid(key, "set secretNamespace: the connection names Secrets"))
        };
        let credential = self.credential(key, &settings.auth, secrets).await?;
        let tls = settings.tls.clone().unwrap_or_default();
        let ca_bundle_pem = match (&tls.ca_bundle, &tls.ca_secret_ref) {
            (Some(pem), None) => Some(pem.clone()),
            (None, Some(r)) => {
                let [pem] = read(
                    key,
                    &secrets()?,
                    &r.name,
                    [r.key.as_deref().unwrap_or("ca.crt")],
                )
                .await?;
                Some(pem)
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    key,
                    "set tls.caBundle or tls.caSecretRef, not both",
                ));
            }
        };
        if tls.insecure_skip_verify {
            tracing::warn!(connection = %key, "TLS verification is disabled for this Entra ID connection (insecureSkipVerify): the Graph token and every delivered token can be intercepted");
        }
        let mut endpoints = Endpoints::for_cloud(cloud(settings.cloud));
        if let Some(overrides) = &settings.endpoints {
            if let Some(login) = &overrides.login {
                login
                    .trim_end_matches('/')
                    .clone_into(&mut endpoints.login_base);
            }
            if let Some(graph) = &overrides.graph {
                graph
                    .trim_end_matches('/')
                    .clone_into(&mut endpoints.graph_base);
            }
        }
        let mut config = GraphConfig::new(&settings.tenant_id, &settings.client_id, credential);
        config.endpoints = endpoints;
        config.tls = TlsConfig {
            ca_bundle_pem,
            insecure_skip_verify: tls.insecure_skip_verify,
        };
        config.request_timeout = request_timeout(key, settings)?;
        config.observer.clone_from(&self.observer);
        Ok(config)
    }

    async fn credential(
        &self,
        key: &EntraKey,
        auth: &EntraAuth,
        secrets: impl Fn() -> Result<Api<Secret>, EntraResolveError>,
    ) -> Result<ClientCredential, EntraResolveError> {
        match (
            &auth.client_secret,
            &auth.certificate,
            &auth.workload_identity,
        ) {
            (Some(r), None, None) => {
                let [secret] = read(
                    key,
                    &secrets()?,
                    &r.name,
                    [r.key.as_deref().unwrap_or("client-secret")],
                )
                .await?;
                Ok(ClientCredential::Secret(SecretString::from(
                    secret.trim().to_owned(),
                )))
            }
            (None, Some(r), None) => {
                let keys = [
                    r.certificate_key.as_deref().unwrap_or("tls.crt"),
                    r.private_key_key.as_deref().unwrap_or("tls.key"),
                ];
                let [certificate_pem, key_pem] = read(key, &secrets()?, &r.name, keys).await?;
                Ok(ClientCredential::Certificate {
                    certificate_pem,
                    private_key_pem: SecretString::from(key_pem),
                })
            }
            (None, None, Some(_)) if key.kind == EntraConnectionKind::ClusterEntraConnection => Ok(
                ClientCredential::FederatedTokenFile(self.workload_identity_token_file.clone()),
            ),
            (None, None, Some(_)) => Err(invalid(
                key,
                "workloadIdentity signs in as the operator itself: only a ClusterEntraConnection may use it",
            )),
            _ => Err(invalid(
                key,
                "set exactly one of auth.clientSecret, auth.certificate or auth.workloadIdentity",
            )),
        }
    }
}

async fn read<const N: usize>(
    key: &EntraKey,
    secrets: &Api<Secret>,
    name: &str,
    keys: [&str; N],
) -> Result<[String; N], EntraResolveError> {
    references::secret_values(secrets, name, keys)
        .await
        .map_err(|e| read_error(key, e))
}

pub(super) fn read_error(key: &EntraKey, error: ReadError) -> EntraResolveError {
    match error {
        ReadError::Invalid(message) => invalid(key, message),
        ReadError::Kube { what, source, .. } => EntraResolveError::Kube {
            connection: key.clone(),
            what,
            source: Box::new(source),
        },
    }
}

fn invalid(key: &EntraKey, message: impl Into<String>) -> EntraResolveError {
    EntraResolveError::ConfigInvalid {
        connection: key.clone(),
        message: message.into(),
    }
}

fn cloud(cloud: EntraCloud) -> Cloud {
    match cloud {
        EntraCloud::Global => Cloud::Global,
        EntraCloud::USGovernmentL4 => Cloud::UsGovernmentL4,
        EntraCloud::USGovernmentL5 => Cloud::UsGovernmentL5,
        EntraCloud::China => Cloud::China,
    }
}

fn request_timeout(
    key: &EntraKey,
    settings: &EntraSettings,
) -> Result<Duration, EntraResolveError> {
    let Some(text) = settings.request_timeout.as_deref() else {
        return Ok(DEFAULT_REQUEST_TIMEOUT);
    };
    crate::duration::parse(text)
        .ok()
        .and_then(|d| d.to_std().ok())
        .filter(|d| (Duration::from_secs(1)..=Duration::from_secs(300)).contains(d))
        .ok_or_else(|| {
            invalid(
                key,
                format!("requestTimeout {text:?} is not between 1s and 5m"),
            )
        })
}

/// A digest of everything that shapes a client, secrets included (kept in memory only).
pub(super) fn config_fingerprint(config: &GraphConfig) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(config.tenant_id.as_bytes());
    field(config.client_id.as_bytes());
    match &config.credential {
        ClientCredential::Secret(secret) => {
            field(b"secret");
            field(secret.expose().as_bytes());
        }
        ClientCredential::Certificate {
            certificate_pem,
            private_key_pem,
        } => {
            field(b"certificate");
            field(certificate_pem.as_bytes());
            field(private_key_pem.expose().as_bytes());
        }
        ClientCredential::FederatedTokenFile(path) => {
            field(b"federated");
            field(path.as_os_str().as_encoded_bytes());
        }
    }
    field(config.endpoints.login_base.as_bytes());
    field(config.endpoints.graph_base.as_bytes());
    field(config.tls.ca_bundle_pem.as_deref().unwrap_or("").as_bytes());
    field(&[u8::from(config.tls.insecure_skip_verify)]);
    field(&config.request_timeout.as_millis().to_be_bytes());
    hash.finalize().into()
}
