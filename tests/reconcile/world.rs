//! The world of a scenario: a broker simulator, the resources pointing at it, contexts over the
//! mock API, and the assertions the scenarios share.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::ObjectMeta;
use kube::runtime::controller::Action;
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, SyncClients};
use sync_client_operator::api::{
    BrokerAuth, BrokerConnection, BrokerKind, BrokerRef, Condition, ConditionStatus,
    CredentialType, IdentityBroker, IdentityBrokerSpec, SyncClientCredential,
    SyncClientCredentialSpec, SyncClientCredentialStatus, TokenClient, VCenterAuth,
    VCenterCredentialsRef,
};
use sync_client_operator::clock::{Clock, FixedClock};
use sync_client_operator::controller::{Context, Error, Options};
use sync_client_operator::metrics::Metrics;
use sync_client_operator::secret::{
    self, EXPIRES_AT_ANNOTATION, FINGERPRINT_ANNOTATION, FingerprintKey, FingerprintKeys,
    IssuedValues, KeyNames, MANAGED_BY_LABEL, MANAGED_BY_VALUE, REVISION_ANNOTATION, RecordMeta,
};

use crate::mock_api::MockApi;

pub(crate) const NAMESPACE: &str = "team";
pub(crate) const NAME: &str = "app";
pub(crate) const UID: &str = "0d9f6c2e-5b1a-4c3d-8e7f-112233445566";
pub(crate) const BROKER: &str = "vcenter";
pub(crate) const CREDENTIALS_SECRET: &str = "vcenter-credentials";
pub(crate) const DIRECTORY: &str = "3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c";
/// Token lifetime the simulated sync client is saved with, in (simulated) minutes.
pub(crate) const TOKEN_TTL_MINUTES: i32 = 60;
pub(crate) const ONE_TOKEN_CLIENT: SyncClients = SyncClients::One {
    generate_token: true,
    token_ttl: TOKEN_TTL_MINUTES,
};

/// Every scenario finishes well within this.
pub(crate) const SCENARIO_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn within_time<T>(scenario: impl Future<Output = T>) -> T {
    tokio::time::timeout(SCENARIO_TIMEOUT, scenario)
        .await
        .expect("scenario timed out")
}

// The world: a broker simulator, the resources pointing at it, and contexts over a mock API.

pub(crate) struct World {
    pub(crate) sim: BrokerSim,
    pub(crate) key: FingerprintKeys,
    /// The operator's clock: it stands still at the second the world started.
    pub(crate) clock: Arc<FixedClock>,
}

impl World {
    pub(crate) async fn start(sync_clients: SyncClients) -> Self {
        let sim = BrokerSim::start(BrokerSimConfig {
            tls: false,
            ..BrokerSimConfig::default()
        })
        .await
        .expect("broker simulator starts");
        sim.add_directory(DIRECTORY, sync_clients);
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("valid time");
        Self {
            sim,
            clock: Arc::new(FixedClock::new(now)),
            key: FingerprintKey::new(b"reconcile-test-fingerprint-key".to_vec()).into(),
        }
    }

    pub(crate) fn identity_broker(&self) -> IdentityBroker {
        let mut broker = IdentityBroker::new(
            BROKER,
            IdentityBrokerSpec {
                connection: BrokerConnection {
                    url: self.sim.url(),
                    tenant: self.sim.tenant(),
                    allow_insecure_http: true,
                    tls: None,
                    auth: BrokerAuth {
                        vcenter: Some(VCenterAuth {
                            credentials_secret_ref: VCenterCredentialsRef {
                                name: CREDENTIALS_SECRET.into(),
                                username_key: "username".into(),
                                password_key: "password".into(),
                            },
                            token_client: TokenClient::OperatorClient,
                        }),
                        bearer_token: None,
                    },
                    limits: None,
                },
            },
        );
        broker.metadata.namespace = Some(NAMESPACE.into());
        broker
    }

    pub(crate) fn vcenter_credentials(&self, password: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(CREDENTIALS_SECRET.into()),
                namespace: Some(NAMESPACE.into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                (
                    "username".to_owned(),
                    ByteString(self.sim.username().as_bytes().to_vec()),
                ),
                (
                    "password".to_owned(),
                    ByteString(password.as_bytes().to_vec()),
                ),
            ])),
            ..Secret::default()
        }
    }

    pub(crate) fn scim_url(&self) -> String {
        format!(
            "{}/usergroup/t/{}/scim/v2",
            self.sim.url(),
            self.sim.tenant()
        )
    }

    pub(crate) fn context(&self, client: Client) -> Arc<Context> {
        let options = Options {
            instance: Some("reconcile-test".into()),
            ..Options::new(self.key.clone())
        };
        Arc::new(
            Context::new(client, &options, Arc::new(Metrics::new())).with_clock(self.clock.clone()),
        )
    }

    /// The time every reconcile of this world reads.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// `seconds` before [`World::now`].
    pub(crate) fn ago(&self, seconds: i64) -> DateTime<Utc> {
        self.now() - TimeDelta::seconds(seconds)
    }

    /// The action that requeues at `at`, as seen from [`World::now`].
    pub(crate) fn requeue_at(&self, at: DateTime<Utc>) -> Action {
        Action::requeue((at - self.now()).to_std().expect("a time in the future"))
    }

    /// What an issue reads before calling the broker: the credential itself (an issue is never
    /// decided on the cache), the IdentityBroker, then its credentials Secret.
    pub(crate) fn expect_broker_resolution(&self, api: &MockApi, cr: &SyncClientCredential) {
        self.expect_broker_resolution_with_password(api, cr, self.sim.password());
    }

    pub(crate) fn expect_broker_resolution_with_password(
        &self,
        api: &MockApi,
        cr: &SyncClientCredential,
        password: &str,
    ) {
        api.expect_get_credential(cr);
        api.expect_get_identity_broker(&self.identity_broker());
        api.expect_get_secret(CREDENTIALS_SECRET, Some(self.vcenter_credentials(password)));
    }

    /// A Secret as the operator writes it, issued at `issued_at` for `lifetime`, stored at
    /// resourceVersion 41.
    pub(crate) fn owned_secret(
        &self,
        cr: &SyncClientCredential,
        issued_at: DateTime<Utc>,
        lifetime: TimeDelta,
        revision: i64,
    ) -> Secret {
        let expires_at = issued_at + lifetime;
        let scim_url = self.scim_url();
        let data = secret::credential_data(
            &KeyNames::from_spec(None),
            &IssuedValues::AccessToken {
                token: "previously-issued-token-value",
                expires_at: Some(expires_at),
                scim_url: &scim_url,
            },
        );
        let meta = RecordMeta {
            issued_at,
            expires_at: Some(expires_at),
            revision,
            spec_hash: sync_client_operator::api::spec_hash(cr),
            rotate_request: None,
            credential_type: CredentialType::AccessToken,
            keys: KeyNames::from_spec(None),
            issue_id: "0123456789abcdef".into(),
        };
        let mut owned = secret::render(cr, NAME, &data, &meta, &self.key);
        owned.metadata.resource_version = Some("41".into());
        owned
    }

    /// Broker requests of any kind made so far.
    pub(crate) fn broker_requests(&self) -> usize {
        self.sim.requests().len()
    }

    /// The credentials that went over the wire to and from the simulator: the vCenter password
    /// and Basic header, session ids, broker tokens, and the directory's live token.
    pub(crate) fn wire_secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.sim.password().to_owned()];
        for request in self.sim.requests() {
            for (name, value) in &request.headers {
                match name.as_str() {
                    "authorization" => secrets.push(
                        value
                            .split_once(' ')
                            .map_or(value.as_str(), |(_, credential)| credential)
                            .to_owned(),
                    ),
                    "vmware-api-session-id" => secrets.push(value.clone()),
                    _ => {}
                }
            }
        }
        secrets.extend(self.sim.current_token(DIRECTORY));
        secrets
    }
}

/// The credential under test: an access token from the simulator's directory, default schedule.
pub(crate) fn new_credential() -> SyncClientCredential {
    let mut cr = SyncClientCredential::new(
        NAME,
        SyncClientCredentialSpec {
            broker_ref: BrokerRef {
                kind: BrokerKind::IdentityBroker,
                name: BROKER.into(),
            },
            directory_id: DIRECTORY.into(),
            credential_type: CredentialType::AccessToken,
            token_ttl: None,
            renew_before: None,
            renew_before_percentage: None,
            rotation_interval: None,
            verify_interval: None,
            secret_name: None,
            secret_template: None,
            keys: None,
            rollout_restart_targets: vec![],
            suspend: false,
            deliveries: vec![],
        },
    );
    cr.metadata.namespace = Some(NAMESPACE.into());
    cr.metadata.uid = Some(UID.into());
    cr.metadata.generation = Some(1);
    cr
}

pub(crate) fn annotation<'a>(secret: &'a Secret, key: &str) -> &'a str {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .unwrap_or_else(|| panic!("Secret has annotation {key}"))
}

pub(crate) fn data_text(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("Secret has data key {key}"));
    String::from_utf8(bytes.0.clone()).expect("UTF-8 data")
}

pub(crate) fn data_keys(secret: &Secret) -> Vec<String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect()
}

pub(crate) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

#[track_caller]
pub(crate) fn condition<'a>(status: &'a SyncClientCredentialStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("status has condition {type_}: {status:?}"))
}

#[track_caller]
pub(crate) fn assert_condition(
    status: &SyncClientCredentialStatus,
    type_: &str,
    expected: ConditionStatus,
    reason: &str,
) {
    let found = condition(status, type_);
    assert_eq!(
        (found.status, found.reason.as_str()),
        (expected, reason),
        "condition {type_}: {found:?}"
    );
}

/// Checks the Secret carries our record, labels and controller owner reference.
#[track_caller]
pub(crate) fn assert_owned_record(secret: &Secret, revision: i64) {
    assert_eq!(secret.metadata.name.as_deref(), Some(NAME));
    assert_eq!(
        data_keys(secret),
        ["access_token", "expires_at", "scim_url"],
        "data keys"
    );
    assert_eq!(
        annotation(secret, REVISION_ANNOTATION),
        revision.to_string()
    );
    assert_eq!(
        annotation(secret, EXPIRES_AT_ANNOTATION),
        data_text(secret, "expires_at"),
        "expiry annotation and data agree"
    );
    assert!(annotation(secret, FINGERPRINT_ANNOTATION).starts_with("v3:"));
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(MANAGED_BY_LABEL).map(String::as_str),
        Some(MANAGED_BY_VALUE)
    );
    assert_eq!(
        labels.get(secret::CREDENTIAL_LABEL).map(String::as_str),
        Some(NAME)
    );
    let owners = secret.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "one owner reference: {owners:?}");
    let owner = &owners[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("SyncClientCredential", NAME, UID, Some(true))
    );
}

pub(crate) fn seconds(delta: TimeDelta) -> f64 {
    delta.as_seconds_f64()
}

/// What a scenario returned and published, printed, plus the credentials it handled: the
/// secrecy test checks the one never contains the other.
#[derive(Default)]
pub(crate) struct Evidence {
    pub(crate) printed: Vec<String>,
    pub(crate) credentials: Vec<String>,
}

impl Evidence {
    pub(crate) fn result(&mut self, result: &Result<Action, Error>) {
        self.printed.push(format!("{result:?}"));
        if let Err(error) = result {
            self.printed.push(error.to_string());
        }
    }

    pub(crate) fn api(&mut self, api: &MockApi) {
        for status in api.status_patches() {
            self.printed.push(format!("{status:?}"));
            self.printed
                .push(serde_json::to_string(&status).expect("status serializes"));
        }
        for event in api.events() {
            self.printed
                .push(serde_json::to_string(&event).expect("event serializes"));
        }
        for written in api.written_secrets() {
            self.credentials.extend(
                written
                    .data
                    .iter()
                    .flatten()
                    .filter(|(key, _)| *key == "access_token")
                    .map(|(_, value)| String::from_utf8_lossy(&value.0).into_owned()),
            );
        }
    }

    pub(crate) fn world(&mut self, world: &World) {
        self.credentials.extend(world.wire_secrets());
    }
}
