//! Reconcile scenarios, kube-rs `controller-rs` style: `credential::reconcile` runs against a
//! scripted Kubernetes API (see `support/mock_api.rs`) that checks every request in order, and
//! against the real broker simulator over loopback HTTP.
//!
//! The request sequence follows the code: GET the Secret; plan; to issue, GET the
//! IdentityBroker and (twice: user name, then password) its vCenter credentials Secret, call the
//! broker, POST or PUT the Secret, publish the event; finally merge-patch the status, unless it
//! is unchanged.

// Scenario futures hold a whole world and run once per test: boxing them would add noise only.
#![allow(clippy::large_futures)]

#[path = "support/mock_api.rs"]
mod mock_api;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use http::{Method, StatusCode};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::ObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, Endpoint, Fault, SyncClients};
use sync_client_operator::api::{
    BrokerAuth, BrokerConnection, BrokerKind, BrokerRef, Condition, ConditionStatus,
    CredentialType, IdentityBroker, IdentityBrokerSpec, ROTATE_REQUEST_ANNOTATION, RolloutKind,
    RolloutTarget, SecretTemplate, SyncClientCredential, SyncClientCredentialSpec,
    SyncClientCredentialStatus, TokenClient, VCenterAuth, VCenterCredentialsRef,
};
use sync_client_operator::controller::credential::{
    self, FOREIGN_SECRET_RECHECK, RESTARTED_AT_ANNOTATION,
};
use sync_client_operator::controller::{Context, Error, Options};
use sync_client_operator::metrics::Metrics;
use sync_client_operator::secret::{
    self, EXPIRES_AT_ANNOTATION, FINGERPRINT_ANNOTATION, FingerprintKey, ISSUED_AT_ANNOTATION,
    IssuedValues, KeyNames, MANAGED_BY_LABEL, MANAGED_BY_VALUE, REVISION_ANNOTATION, RecordMeta,
};

use mock_api::{MockApi, Reply};

const NAMESPACE: &str = "team";
const NAME: &str = "app";
const UID: &str = "0d9f6c2e-5b1a-4c3d-8e7f-112233445566";
const BROKER: &str = "vcenter";
const CREDENTIALS_SECRET: &str = "vcenter-credentials";
const DIRECTORY: &str = "3f1c2a5e-0b7d-4c2e-9a44-1d2e3f4a5b6c";
/// Token lifetime the simulated sync client is saved with, in (simulated) minutes.
const TOKEN_TTL_MINUTES: i32 = 60;
const ONE_TOKEN_CLIENT: SyncClients = SyncClients::One {
    generate_token: true,
    token_ttl: TOKEN_TTL_MINUTES,
};

/// Every scenario finishes well within this.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(10);

async fn within_time<T>(scenario: impl Future<Output = T>) -> T {
    tokio::time::timeout(SCENARIO_TIMEOUT, scenario)
        .await
        .expect("scenario timed out")
}

// ---------------------------------------------------------------------------------------------
// The world: a broker simulator, the resources pointing at it, and contexts over a mock API.
// ---------------------------------------------------------------------------------------------

struct World {
    sim: BrokerSim,
    key: FingerprintKey,
}

impl World {
    async fn start(sync_clients: SyncClients) -> Self {
        let sim = BrokerSim::start(BrokerSimConfig {
            tls: false,
            ..BrokerSimConfig::default()
        })
        .await
        .expect("broker simulator starts");
        sim.add_directory(DIRECTORY, sync_clients);
        Self {
            sim,
            key: FingerprintKey::new(b"reconcile-test-fingerprint-key".to_vec()),
        }
    }

    fn identity_broker(&self) -> IdentityBroker {
        let mut broker = IdentityBroker::new(
            BROKER,
            IdentityBrokerSpec {
                connection: BrokerConnection {
                    url: self.sim.url(),
                    tenant: self.sim.tenant(),
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

    fn vcenter_credentials(&self, password: &str) -> Secret {
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

    fn scim_url(&self) -> String {
        format!(
            "{}/usergroup/t/{}/scim/v2",
            self.sim.url(),
            self.sim.tenant()
        )
    }

    fn context(&self, client: Client) -> Arc<Context> {
        let options = Options {
            namespace: None,
            fingerprint_key: self.key.clone(),
            instance: Some("reconcile-test".into()),
            default_broker_concurrency: 4,
        };
        Arc::new(Context::new(client, &options, Arc::new(Metrics::new())))
    }

    /// What an issue reads before calling the broker: the credential itself (an issue is never
    /// decided on the cache), the IdentityBroker, then its credentials Secret.
    fn expect_broker_resolution(&self, api: &MockApi, cr: &SyncClientCredential) {
        self.expect_broker_resolution_with_password(api, cr, self.sim.password());
    }

    fn expect_broker_resolution_with_password(
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
    fn owned_secret(
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
            spec_hash: secret::spec_hash(cr),
        };
        let mut owned = secret::render(cr, NAME, &data, &meta, &self.key);
        owned.metadata.resource_version = Some("41".into());
        owned
    }

    /// Broker requests of any kind made so far.
    fn broker_requests(&self) -> usize {
        self.sim.requests().len()
    }

    /// The credentials that went over the wire to and from the simulator: the vCenter password
    /// and Basic header, session ids, broker tokens, and the directory's live token.
    fn wire_secrets(&self) -> Vec<String> {
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
fn new_credential() -> SyncClientCredential {
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
            secret_name: None,
            secret_template: None,
            keys: None,
            rollout_restart_targets: vec![],
            suspend: false,
        },
    );
    cr.metadata.namespace = Some(NAMESPACE.into());
    cr.metadata.uid = Some(UID.into());
    cr.metadata.generation = Some(1);
    cr
}

fn seconds_ago(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() - seconds, 0).expect("valid time")
}

fn annotation<'a>(secret: &'a Secret, key: &str) -> &'a str {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .unwrap_or_else(|| panic!("Secret has annotation {key}"))
}

fn data_text(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("Secret has data key {key}"));
    String::from_utf8(bytes.0.clone()).expect("UTF-8 data")
}

fn data_keys(secret: &Secret) -> Vec<String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect()
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

#[track_caller]
fn condition<'a>(status: &'a SyncClientCredentialStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("status has condition {type_}: {status:?}"))
}

#[track_caller]
fn assert_condition(
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
fn assert_owned_record(secret: &Secret, revision: i64) {
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
    assert!(annotation(secret, FINGERPRINT_ANNOTATION).starts_with("v1:"));
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

/// `Action` keeps its delay private; its `Debug` output (`Action { requeue_after: Some(1.5s) }`)
/// is the only way to read it.
fn requeue_after(action: &Action) -> Option<Duration> {
    let printed = format!("{action:?}");
    let inner = printed.split("Some(").nth(1)?.split(')').next()?;
    let (number, unit_seconds) = [("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0)]
        .into_iter()
        .find_map(|(unit, scale)| inner.strip_suffix(unit).map(|n| (n, scale)))
        .unwrap_or_else(|| panic!("unexpected Duration format {inner}"));
    let value: f64 = number.parse().expect("duration number");
    Some(Duration::from_secs_f64(value * unit_seconds))
}

#[track_caller]
fn assert_requeue_within(action: &Action, low: Duration, high: Duration) -> Duration {
    let after = requeue_after(action).unwrap_or_else(|| panic!("expected a requeue: {action:?}"));
    assert!(
        low <= after && after <= high,
        "requeue after {after:?} not within {low:?}..={high:?}"
    );
    after
}

fn seconds(delta: TimeDelta) -> f64 {
    delta.as_seconds_f64()
}

/// What a scenario returned and published, printed, plus the credentials it handled: the
/// secrecy test checks the one never contains the other.
#[derive(Default)]
struct Evidence {
    printed: Vec<String>,
    credentials: Vec<String>,
}

impl Evidence {
    fn result(&mut self, result: &Result<Action, Error>) {
        self.printed.push(format!("{result:?}"));
        if let Err(error) = result {
            self.printed.push(error.to_string());
        }
    }

    fn api(&mut self, api: &MockApi) {
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

    fn world(&mut self, world: &World) {
        self.credentials.extend(world.wire_secrets());
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios shared by their own test and the secrecy test.
// ---------------------------------------------------------------------------------------------

async fn first_issuance(world: &World) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();

    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_create_secret(|secret| {
        assert_owned_record(secret, 1);
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    });
    api.expect_event(EventType::Normal, "Issued");
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        assert_condition(status, "Issuing", ConditionStatus::False, "Idle");
        assert_eq!(status.revision, Some(1));
        assert_eq!(status.failed_attempts, 0);
        assert_eq!(status.secret_name.as_deref(), Some(NAME));
        assert_eq!(status.observed_generation, Some(1));
        assert!(status.expires_at.is_some() && status.renewal_time.is_some());
    });

    let started = Utc::now();
    let result = credential::reconcile(Arc::new(cr), ctx).await;
    api.checkpoint();
    let action = result.as_ref().expect("reconcile succeeds").clone();

    let written = api.written_secrets().remove(0);
    let live = world
        .sim
        .current_token(DIRECTORY)
        .expect("the broker issued a token");
    assert_eq!(data_text(&written, "access_token"), live, "the live token");
    assert_eq!(data_text(&written, "scim_url"), world.scim_url());
    assert_eq!(world.sim.generate_count(DIRECTORY), 1);

    // The broker reports the sync client's saved lifetime of 60 minutes.
    let expires_at = parse_time(annotation(&written, EXPIRES_AT_ANNOTATION));
    let issued_at = parse_time(annotation(&written, ISSUED_AT_ANNOTATION));
    let lifetime = seconds(expires_at - issued_at);
    assert!(
        (3590.0..=3600.0).contains(&lifetime),
        "lifetime {lifetime}s"
    );

    // Renewal at two thirds of the lifetime, advanced by at most a tenth of that (jitter).
    let status = api.last_status();
    let renewal = status.renewal_time.expect("renewal time");
    let renewal_after_issue = seconds(renewal - started);
    assert!(
        (2400.0 - 240.0 - 15.0..=2401.0).contains(&renewal_after_issue),
        "renewal {renewal_after_issue}s after issue"
    );
    assert_eq!(
        status.expires_at.map(|at| at.timestamp()),
        Some(expires_at.timestamp())
    );
    let requeue = requeue_after(&action).expect("requeued at the renewal time");
    let until_renewal = seconds(renewal - Utc::now());
    assert!(
        (requeue.as_secs_f64() - until_renewal).abs() < 3.0,
        "requeue after {requeue:?}, renewal in {until_renewal}s"
    );

    let mut evidence = Evidence::default();
    evidence.result(&result);
    evidence.api(&api);
    evidence.world(world);
    evidence
}

/// A broker refusal that retrying cannot fix: reported, then not retried until something changes.
async fn permanent_broker_failure(world: &World, reason: &'static str) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();

    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_event(EventType::Warning, "RotationFailed");
    api.expect_status_patch(&cr, move |status| {
        assert_condition(status, "Ready", ConditionStatus::False, reason);
        assert_condition(status, "Issuing", ConditionStatus::False, reason);
        assert_eq!(status.failed_attempts, 1);
        assert_eq!(status.last_failure_reason.as_deref(), Some(reason));
        assert_eq!(status.last_failure_generation, Some(1));
        assert!(status.last_failure_time.is_some());
        assert_eq!(status.next_retry_time, None, "no retry is scheduled");
        assert!(status.last_failure_message.is_some());
    });
    let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone()).await;
    api.checkpoint();
    assert_eq!(
        first.as_ref().expect("reconcile succeeds"),
        &Action::await_change(),
        "a permanent failure waits for a change"
    );
    assert_eq!(world.sim.count(Endpoint::Generate), 1);
    assert_eq!(world.sim.generate_count(DIRECTORY), 0);
    let event = api.events().remove(0);
    assert!(
        event.note.as_deref().is_some_and(|n| n.contains(reason)),
        "event note names the reason: {:?}",
        event.note
    );

    // Reconciled again (any watch event), with the status it wrote: no new broker call.
    let mut again = cr;
    again.status = Some(api.last_status());
    let requests_before = world.broker_requests();
    api.expect_get_secret(NAME, None);
    api.allow_status_patch(&again, move |status| {
        assert_condition(status, "Ready", ConditionStatus::False, reason);
        assert_eq!(status.failed_attempts, 1);
    });
    let second = credential::reconcile(Arc::new(again), ctx).await;
    api.checkpoint();
    assert_eq!(
        second.as_ref().expect("reconcile succeeds"),
        &Action::await_change()
    );
    assert_eq!(
        world.broker_requests(),
        requests_before,
        "no broker call after a permanent failure"
    );
    assert_eq!(world.sim.count(Endpoint::Generate), 1);

    let mut evidence = Evidence::default();
    evidence.result(&first);
    evidence.result(&second);
    evidence.api(&api);
    evidence.world(world);
    evidence
}

async fn broker_unavailable(world: &World) -> Evidence {
    world
        .sim
        .inject(Fault::on(Endpoint::Generate).text(500, "internal error"));
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();

    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_event(EventType::Warning, "RotationFailed");
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::False, "BrokerUnavailable");
        assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
        assert_eq!(status.failed_attempts, 1);
        assert_eq!(
            status.last_failure_reason.as_deref(),
            Some("BrokerUnavailable")
        );
        assert!(status.next_retry_time.is_some());
    });
    let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone()).await;
    api.checkpoint();
    assert_eq!(world.sim.count(Endpoint::Generate), 1);

    // The first retry waits 5 s, jittered down to no less than 3.75 s.
    let status = api.last_status();
    let failed_at = status.last_failure_time.expect("failure time");
    let retry_at = status.next_retry_time.expect("retry time");
    let backoff = seconds(retry_at - failed_at);
    assert!((3.75..=5.0).contains(&backoff), "backoff {backoff}s");
    assert_requeue_within(
        first.as_ref().expect("reconcile succeeds"),
        Duration::from_secs(3),
        Duration::from_secs(5),
    );

    // Reconciled again before the retry time (its own status patch is a watch event): waits.
    let mut again = cr;
    again.status = Some(status);
    api.expect_get_secret(NAME, None);
    api.allow_status_patch(&again, |status| {
        assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
        assert_eq!(status.failed_attempts, 1);
    });
    let second = credential::reconcile(Arc::new(again), ctx).await;
    api.checkpoint();
    assert_eq!(
        world.sim.count(Endpoint::Generate),
        1,
        "no retry before the backoff"
    );
    let left = seconds(retry_at - Utc::now());
    let requeue = requeue_after(second.as_ref().expect("reconcile succeeds"))
        .expect("requeued at the retry time");
    assert!(
        (requeue.as_secs_f64() - left).abs() < 1.5,
        "requeue after {requeue:?}, retry in {left}s"
    );

    let mut evidence = Evidence::default();
    evidence.result(&first);
    evidence.result(&second);
    evidence.api(&api);
    evidence.world(world);
    evidence
}

// ---------------------------------------------------------------------------------------------
// Issuing and rotating.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn first_reconcile_creates_the_secret_with_the_issued_token_and_reports_ready() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        first_issuance(&world).await;
    })
    .await;
}

#[tokio::test]
async fn secret_past_its_renewal_time_is_replaced_with_the_next_revision() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        // Issued 50 minutes ago for an hour: renewal (at 40 minutes at the latest) has passed.
        let mut existing = world.owned_secret(&cr, seconds_ago(50 * 60), TimeDelta::hours(1), 3);
        existing
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("team.example/owner".into(), "payments".into());

        api.expect_get_secret(NAME, Some(existing));
        world.expect_broker_resolution(&api, &cr);
        api.expect_replace_secret(NAME, |secret| {
            assert_eq!(
                secret.metadata.resource_version.as_deref(),
                Some("41"),
                "replace is conditional on the version read"
            );
            assert_owned_record(secret, 4);
            assert_eq!(
                annotation(secret, "team.example/owner"),
                "payments",
                "others' annotations are kept"
            );
        });
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.revision, Some(4));
        });

        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        let written = api.written_secrets().remove(0);
        assert_eq!(
            Some(data_text(&written, "access_token")),
            world.sim.current_token(DIRECTORY),
            "the Secret holds the new live token"
        );
        assert_eq!(world.sim.generate_count(DIRECTORY), 1);
        let note = api.events()[0].note.clone().unwrap_or_default();
        assert!(note.contains("revision 4"), "event note: {note}");
        // Next rotation: about 40 minutes from now.
        assert_requeue_within(
            &action,
            Duration::from_secs(2400 - 245),
            Duration::from_secs(2400),
        );
    })
    .await;
}

#[tokio::test]
async fn owned_intact_secret_not_yet_due_only_reads_and_does_not_rewrite_an_unchanged_status() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let existing = world.owned_secret(&cr, seconds_ago(5 * 60), TimeDelta::hours(1), 2);

        // First sight (no status yet): the status is written from the Secret's record.
        api.expect_get_secret(NAME, Some(existing.clone()));
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_condition(status, "Issuing", ConditionStatus::False, "Idle");
            assert_eq!(status.revision, Some(2));
            assert!(status.renewal_time.is_some());
        });
        let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        let status = api.last_status();
        let renewal = status.renewal_time.expect("renewal time");
        let requeue = requeue_after(&first).expect("requeued at the renewal time");
        assert!((requeue.as_secs_f64() - seconds(renewal - Utc::now())).abs() < 3.0);

        // Again with that status: one GET, nothing written.
        let mut again = cr;
        again.status = Some(status);
        api.expect_get_secret(NAME, Some(existing));
        let second = credential::reconcile(Arc::new(again), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            api.served().len(),
            3,
            "GET, PATCH status, GET: {:?}",
            api.served()
        );
        assert!(requeue_after(&second).is_some());
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}

#[tokio::test]
async fn secret_with_edited_data_is_reissued_and_reported_as_repaired() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let mut tampered = world.owned_secret(&cr, seconds_ago(5 * 60), TimeDelta::hours(1), 2);
        tampered.data.get_or_insert_default().insert(
            "access_token".into(),
            ByteString(b"pasted-by-hand".to_vec()),
        );

        api.expect_get_secret(NAME, Some(tampered));
        world.expect_broker_resolution(&api, &cr);
        api.expect_replace_secret(NAME, |secret| {
            assert_eq!(secret.metadata.resource_version.as_deref(), Some("41"));
            assert_owned_record(secret, 3);
            assert_ne!(data_text(secret, "access_token"), "pasted-by-hand");
        });
        api.expect_event(EventType::Normal, "SecretRepaired");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.revision, Some(3));
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        let written = api.written_secrets().remove(0);
        assert_eq!(
            Some(data_text(&written, "access_token")),
            world.sim.current_token(DIRECTORY)
        );
        assert_eq!(world.sim.generate_count(DIRECTORY), 1);
    })
    .await;
}

#[tokio::test]
async fn new_rotate_request_rotates_once_and_is_not_served_twice() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        cr.metadata
            .annotations
            .get_or_insert_default()
            .insert(ROTATE_REQUEST_ANNOTATION.into(), "1".into());
        let existing = world.owned_secret(&cr, seconds_ago(5 * 60), TimeDelta::hours(1), 2);

        api.expect_get_secret(NAME, Some(existing));
        world.expect_broker_resolution(&api, &cr);
        api.expect_replace_secret(NAME, |secret| assert_owned_record(secret, 3));
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_eq!(status.observed_rotate_request.as_deref(), Some("1"));
            assert_eq!(status.revision, Some(3));
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.generate_count(DIRECTORY), 1);
        let note = api.events()[0].note.clone().unwrap_or_default();
        assert!(note.contains("RotateRequested"), "event note: {note}");

        // The same request value again, with the status and Secret the first pass wrote.
        let mut rotated = api.written_secrets().remove(0);
        rotated.metadata.resource_version = Some("42".into());
        let mut again = cr;
        again.status = Some(api.last_status());
        api.expect_get_secret(NAME, Some(rotated));
        api.allow_status_patch(&again, |status| {
            assert_eq!(status.observed_rotate_request.as_deref(), Some("1"));
            assert_eq!(status.revision, Some(3));
        });
        credential::reconcile(Arc::new(again), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.sim.generate_count(DIRECTORY), 1, "rotated only once");
        assert_eq!(api.written_secrets().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn changed_token_ttl_reissues_with_the_new_lifetime() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        // The Secret was issued for the spec before tokenTTL was set.
        let existing = world.owned_secret(
            &new_credential(),
            seconds_ago(5 * 60),
            TimeDelta::hours(1),
            2,
        );
        let mut cr = new_credential();
        cr.spec.token_ttl = Some("2h".into());
        cr.metadata.generation = Some(2);

        api.expect_get_secret(NAME, Some(existing));
        world.expect_broker_resolution(&api, &cr);
        api.expect_replace_secret(NAME, |secret| assert_owned_record(secret, 3));
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.observed_generation, Some(2));
        });
        credential::reconcile(Arc::new(cr.clone()), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        let generate = world
            .sim
            .requests()
            .into_iter()
            .find(|r| r.endpoint == Endpoint::Generate)
            .expect("a generate request");
        assert_eq!(
            generate.body_json(),
            Some(serde_json::json!({"generate_token": true, "token_ttl": 120}))
        );
        let written = api.written_secrets().remove(0);
        assert_eq!(
            annotation(&written, secret::SPEC_HASH_ANNOTATION),
            secret::spec_hash(&cr)
        );
        let lifetime = seconds(
            parse_time(annotation(&written, EXPIRES_AT_ANNOTATION))
                - parse_time(annotation(&written, ISSUED_AT_ANNOTATION)),
        );
        assert!(
            (7190.0..=7200.0).contains(&lifetime),
            "lifetime {lifetime}s"
        );
        let note = api.events()[0].note.clone().unwrap_or_default();
        assert!(note.contains("SpecChanged"), "event note: {note}");
    })
    .await;
}

async fn client_secret_issuance(world: &World) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let mut cr = new_credential();
    cr.spec.credential_type = CredentialType::ClientSecret;

    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_create_secret(|secret| {
        assert_eq!(data_keys(secret), ["client_id", "client_secret"]);
        assert_eq!(annotation(secret, EXPIRES_AT_ANNOTATION), "not-reported");
        assert_eq!(annotation(secret, REVISION_ANNOTATION), "1");
    });
    api.expect_event(EventType::Normal, "Issued");
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        assert_eq!((status.expires_at, status.renewal_time), (None, None));
    });
    let result = credential::reconcile(Arc::new(cr), ctx).await;
    api.checkpoint();
    assert_eq!(
        result.as_ref().expect("reconcile succeeds"),
        &Action::await_change(),
        "a client secret without rotationInterval is never rotated on a schedule"
    );
    let (client_id, client_secret) = world
        .sim
        .current_client_secret(DIRECTORY)
        .expect("the broker issued a client secret");
    let written = api.written_secrets().remove(0);
    assert_eq!(data_text(&written, "client_id"), client_id);
    assert_eq!(data_text(&written, "client_secret"), client_secret);

    let mut evidence = Evidence::default();
    evidence.result(&result);
    evidence.api(&api);
    evidence.world(world);
    evidence.credentials.push(client_secret);
    evidence
}

#[tokio::test]
async fn client_secret_credential_is_stored_without_expiry_and_not_scheduled() {
    within_time(async {
        let world = World::start(SyncClients::One {
            generate_token: false,
            token_ttl: TOKEN_TTL_MINUTES,
        })
        .await;
        client_secret_issuance(&world).await;
    })
    .await;
}

#[tokio::test]
async fn issuing_restarts_the_listed_deployment_after_writing_the_secret() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        cr.spec.rollout_restart_targets = vec![RolloutTarget {
            kind: RolloutKind::Deployment,
            name: "web".into(),
        }];

        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_create_secret(|_| {});
        api.expect_event(EventType::Normal, "Issued");
        api.expect(
            Method::PATCH,
            format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web"),
            |request| {
                assert_eq!(
                    request.content_type.as_deref(),
                    Some("application/strategic-merge-patch+json")
                );
                let patch: serde_json::Value = request.json();
                let restarted_at =
                    &patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT_ANNOTATION];
                assert!(restarted_at.is_string(), "restart annotation in {patch}");
                Reply::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": NAMESPACE},
                    }),
                )
            },
        );
        api.expect_event(EventType::Normal, "RolloutRestarted");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
    })
    .await;
}

#[tokio::test]
async fn template_labels_missing_from_the_owned_secret_are_patched_without_a_new_credential() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let existing = world.owned_secret(
            &new_credential(),
            seconds_ago(5 * 60),
            TimeDelta::hours(1),
            2,
        );
        let mut cr = new_credential();
        cr.spec.secret_template = Some(SecretTemplate {
            labels: BTreeMap::from([("team.example/name".into(), "payments".into())]),
            annotations: BTreeMap::new(),
            type_: None,
        });

        api.expect_get_secret(NAME, Some(existing.clone()));
        api.expect_secret_metadata_patch(existing, |patch| {
            assert_eq!(
                patch,
                &serde_json::json!({"metadata": {
                    "labels": {"team.example/name": "payments"},
                    "annotations": {},
                }})
            );
        });
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_eq!(status.revision, Some(2));
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(world.broker_requests(), 0, "no broker call");
        assert!(api.written_secrets().is_empty(), "no new credential");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Refusing and waiting.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn secret_controlled_by_someone_else_is_left_untouched_and_reported() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        // Same name, left by an earlier credential of the same name (another uid).
        let foreign = Secret {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(NAMESPACE.into()),
                resource_version: Some("7".into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "syncclient.io/v1alpha1".into(),
                    kind: "SyncClientCredential".into(),
                    name: NAME.into(),
                    uid: "11111111-2222-4333-8444-555555555555".into(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "access_token".to_owned(),
                ByteString(b"someone-elses-token".to_vec()),
            )])),
            ..Secret::default()
        };

        api.expect_get_secret(NAME, Some(foreign));
        api.expect_event(EventType::Warning, "SecretNotOwned");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "SecretNotOwned");
            assert_condition(status, "Issuing", ConditionStatus::False, "SecretNotOwned");
            assert_eq!(status.revision, None);
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(action, Action::requeue(FOREIGN_SECRET_RECHECK));
        assert!(api.written_secrets().is_empty(), "no write to the Secret");
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}

#[tokio::test]
async fn suspended_credential_makes_no_broker_call_and_reports_suspended() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        cr.spec.suspend = true;

        api.expect_get_secret(NAME, None);
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "Suspended");
            assert_condition(status, "Issuing", ConditionStatus::False, "Suspended");
            assert_eq!(status.renewal_time, None);
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(action, Action::await_change());
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}

#[tokio::test]
async fn suspended_credential_with_a_due_secret_keeps_it_and_says_why_it_does_not_rotate() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let mut cr = new_credential();
        cr.spec.suspend = true;
        let due = world.owned_secret(&cr, seconds_ago(50 * 60), TimeDelta::hours(1), 5);

        api.expect_get_secret(NAME, Some(due));
        api.expect_status_patch(&cr, |status| {
            // The token still works: Ready stays true, Issuing says why nothing happens.
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_condition(status, "Issuing", ConditionStatus::False, "Suspended");
            assert!(condition(status, "Ready").message.contains("suspend"));
            assert_eq!(status.revision, Some(5));
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(action, Action::await_change());
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Broker failures.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn directory_without_sync_client_is_reported_as_not_found_and_not_retried() {
    within_time(async {
        let world = World::start(SyncClients::None).await;
        permanent_broker_failure(&world, "SyncClientNotFound").await;
    })
    .await;
}

#[tokio::test]
async fn directory_with_two_sync_clients_is_reported_as_a_conflict_and_not_retried() {
    within_time(async {
        let world = World::start(SyncClients::Two).await;
        permanent_broker_failure(&world, "SyncClientConflict").await;
    })
    .await;
}

#[tokio::test]
async fn directory_access_denied_is_reported_as_permission_denied_and_not_retried() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        assert!(world.sim.set_directory_access(DIRECTORY, false));
        permanent_broker_failure(&world, "PermissionDenied").await;
    })
    .await;
}

#[tokio::test]
async fn missing_broker_privilege_is_reported_as_permission_denied_and_not_retried() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world.sim.set_privilege(false);
        permanent_broker_failure_before_generate(&world).await;
    })
    .await;
}

/// Like [`permanent_broker_failure`] for a refusal of the broker-token request (vCenter's 403
/// for a user without `VcIdentityProviders.Manage`): generate is never reached.
async fn permanent_broker_failure_before_generate(world: &World) -> Evidence {
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();
    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution(&api, &cr);
    api.expect_event(EventType::Warning, "RotationFailed");
    api.expect_status_patch(&cr, |status| {
        assert_condition(status, "Ready", ConditionStatus::False, "PermissionDenied");
        assert_eq!(status.failed_attempts, 1);
        assert_eq!(status.next_retry_time, None);
    });
    let first = credential::reconcile(Arc::new(cr.clone()), ctx.clone()).await;
    api.checkpoint();
    assert_eq!(
        first.as_ref().expect("reconcile succeeds"),
        &Action::await_change()
    );
    assert_eq!(world.sim.count(Endpoint::Generate), 0);

    let mut again = cr;
    again.status = Some(api.last_status());
    let requests_before = world.broker_requests();
    api.expect_get_secret(NAME, None);
    api.allow_status_patch(&again, |_| {});
    let second = credential::reconcile(Arc::new(again), ctx).await;
    api.checkpoint();
    assert_eq!(world.broker_requests(), requests_before, "no broker call");

    let mut evidence = Evidence::default();
    evidence.result(&first);
    evidence.result(&second);
    evidence.api(&api);
    evidence.world(world);
    evidence
}

#[tokio::test]
async fn broker_server_error_backs_off_about_five_seconds_before_retrying() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        broker_unavailable(&world).await;
    })
    .await;
}

#[tokio::test]
async fn missing_identity_broker_is_reported_and_retried_with_backoff() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        api.expect_get_credential(&cr);
        api.expect_get_missing_identity_broker(BROKER);
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "BrokerNotFound");
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
            assert!(status.next_retry_time.is_some());
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_requeue_within(&action, Duration::from_secs(3), Duration::from_secs(5));
        assert_eq!(world.broker_requests(), 0);
    })
    .await;
}

#[tokio::test]
async fn broker_failure_at_renewal_keeps_the_current_secret_and_ready_true() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world
            .sim
            .inject(Fault::on(Endpoint::Generate).text(503, "maintenance"));
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        // Due for renewal, 10 minutes before expiry.
        let due = world.owned_secret(&cr, seconds_ago(50 * 60), TimeDelta::hours(1), 3);
        api.expect_get_secret(NAME, Some(due));
        world.expect_broker_resolution(&api, &cr);
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
            assert_eq!(status.revision, Some(3));
            assert_eq!(status.failed_attempts, 1);
        });
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert!(api.written_secrets().is_empty(), "the Secret is kept");
        assert_requeue_within(&action, Duration::from_secs(3), Duration::from_secs(5));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Kubernetes write trouble.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn replace_conflict_rereads_the_secret_and_replaces_at_its_new_version() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let due = world.owned_secret(&cr, seconds_ago(50 * 60), TimeDelta::hours(1), 3);
        let mut changed = due.clone();
        changed.metadata.resource_version = Some("45".into());

        api.expect_get_secret(NAME, Some(due));
        world.expect_broker_resolution(&api, &cr);
        api.expect_replace_secret_failing(
            NAME,
            Reply::failure(
                StatusCode::CONFLICT,
                "Conflict",
                "the object has been modified",
            ),
        );
        api.expect_get_secret(NAME, Some(changed));
        api.expect_replace_secret(NAME, |secret| {
            assert_eq!(secret.metadata.resource_version.as_deref(), Some("45"));
            assert_owned_record(secret, 4);
        });
        api.expect_event(EventType::Normal, "Rotated");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::True, "CredentialCurrent");
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(
            world.sim.generate_count(DIRECTORY),
            1,
            "one broker rotation"
        );
        let written = api.written_secrets().pop().expect("a write");
        assert_eq!(
            Some(data_text(&written, "access_token")),
            world.sim.current_token(DIRECTORY)
        );
    })
    .await;
}

#[tokio::test]
async fn secret_created_by_someone_else_meanwhile_is_not_overwritten() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        let intruder = Secret {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(NAMESPACE.into()),
                resource_version: Some("9".into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };

        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_create_secret_failing(Reply::failure(
            StatusCode::CONFLICT,
            "AlreadyExists",
            "secrets \"app\" already exists",
        ));
        api.expect_get_secret(NAME, Some(intruder));
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |status| {
            assert_condition(status, "Ready", ConditionStatus::False, "SecretWriteFailed");
            assert_condition(status, "Issuing", ConditionStatus::True, "Backoff");
            assert!(
                status
                    .last_failure_message
                    .as_deref()
                    .is_some_and(|m| m.contains("someone else"))
            );
        });
        credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("reconcile succeeds");
        api.checkpoint();
        assert_eq!(api.written_secrets().len(), 1, "only the refused create");
    })
    .await;
}

#[tokio::test]
async fn refused_status_patch_is_returned_as_a_write_status_error() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_create_secret(|_| {});
        api.expect_event(EventType::Normal, "Issued");
        api.expect_status_patch_failing(
            &cr,
            Reply::failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "etcd",
            ),
        );
        let error = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect_err("the status write fails");
        api.checkpoint();
        assert!(matches!(error, Error::WriteStatus { .. }), "{error:?}");
        assert_eq!(error.category(), "write_status");
        assert!(error.to_string().contains("team/app"), "{error}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Status idempotency: a reconcile that changes nothing writes nothing. Each status write is a
// watch event that triggers the next reconcile, so a status that differs the second time costs
// an extra write and reconcile every time.
// ---------------------------------------------------------------------------------------------

/// Reconciles `cr` again with the status its last reconcile wrote and the Secret as `secret`,
/// and fails listing what changed when the status is written again.
async fn assert_next_reconcile_keeps_the_status(
    api: &MockApi,
    ctx: Arc<Context>,
    cr: SyncClientCredential,
    secret: Option<Secret>,
) {
    let written = api.last_status();
    let mut again = cr;
    again.status = Some(written.clone());
    api.expect_get_secret(NAME, secret);
    api.allow_status_patch(&again, |_| {});
    credential::reconcile(Arc::new(again), ctx)
        .await
        .expect("reconcile succeeds");
    api.checkpoint();
    let rewritten = api.last_status();
    assert!(
        api.status_patches().len() == 1,
        "the status was written again although nothing happened:\n  {}",
        status_changes(&written, &rewritten).join("\n  ")
    );
}

/// Field-by-field differences of two statuses (conditions by type), as `field: old -> new`.
fn status_changes(
    old: &SyncClientCredentialStatus,
    new: &SyncClientCredentialStatus,
) -> Vec<String> {
    let flatten = |status: &SyncClientCredentialStatus| {
        let mut fields = BTreeMap::new();
        let value = serde_json::to_value(status).expect("status serializes");
        for (key, field) in value.as_object().into_iter().flatten() {
            if key == "conditions" {
                for condition in field.as_array().into_iter().flatten() {
                    let type_ = condition["type"].as_str().unwrap_or_default();
                    for (name, part) in condition.as_object().into_iter().flatten() {
                        fields.insert(format!("conditions[{type_}].{name}"), part.to_string());
                    }
                }
            } else {
                fields.insert(key.clone(), field.to_string());
            }
        }
        fields
    };
    let (old, new) = (flatten(old), flatten(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| old.get(*key) != new.get(*key))
        .map(|key| {
            let show = |map: &BTreeMap<String, String>| map.get(key).cloned().unwrap_or_default();
            format!("{key}: {} -> {}", show(&old), show(&new))
        })
        .collect()
}

#[tokio::test]
async fn status_written_after_issuing_is_not_rewritten_by_the_next_reconcile() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_create_secret(|_| {});
        api.expect_event(EventType::Normal, "Issued");
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        // The owned-Secret watch reconciles at once, with what was just written.
        let mut created = api.written_secrets().remove(0);
        created.metadata.resource_version = Some("1".into());
        assert_next_reconcile_keeps_the_status(&api, ctx, cr, Some(created)).await;
    })
    .await;
}

#[tokio::test]
async fn status_after_a_permanent_failure_is_not_rewritten_by_the_next_reconcile() {
    within_time(async {
        let world = World::start(SyncClients::None).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        assert_next_reconcile_keeps_the_status(&api, ctx, cr, None).await;
    })
    .await;
}

#[tokio::test]
async fn status_during_a_retry_backoff_is_not_rewritten_by_the_next_reconcile() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world
            .sim
            .inject(Fault::on(Endpoint::Generate).text(500, "internal error"));
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        let cr = new_credential();
        api.expect_get_secret(NAME, None);
        world.expect_broker_resolution(&api, &cr);
        api.expect_event(EventType::Warning, "RotationFailed");
        api.expect_status_patch(&cr, |_| {});
        credential::reconcile(Arc::new(cr.clone()), ctx.clone())
            .await
            .expect("reconcile succeeds");
        api.checkpoint();

        assert_next_reconcile_keeps_the_status(&api, ctx, cr, None).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Secrecy.
// ---------------------------------------------------------------------------------------------

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_credential_reaches_logs_events_status_errors_or_debug_output() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    // Global, not `set_default`: with one scoped dispatcher, tracing caches each callsite's
    // interest from whichever thread hits it first, and other tests run on other threads with
    // no subscriber, which would silence this one's lines. Other tests' lines land here too.
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test installs a global subscriber");

    let evidence = within_time(async {
        let mut all = Vec::new();
        let world = World::start(ONE_TOKEN_CLIENT).await;
        all.push(first_issuance(&world).await);
        let world = World::start(SyncClients::None).await;
        all.push(permanent_broker_failure(&world, "SyncClientNotFound").await);
        let world = World::start(SyncClients::Two).await;
        all.push(permanent_broker_failure(&world, "SyncClientConflict").await);
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world.sim.set_privilege(false);
        all.push(permanent_broker_failure_before_generate(&world).await);
        let world = World::start(ONE_TOKEN_CLIENT).await;
        all.push(broker_unavailable(&world).await);
        all.push(wrong_vcenter_password().await);
        let world = World::start(SyncClients::One {
            generate_token: false,
            token_ttl: TOKEN_TTL_MINUTES,
        })
        .await;
        all.push(client_secret_issuance(&world).await);
        all
    })
    .await;

    let logs = logs.text();
    // The capture works: the reconciler's own lines are there.
    assert!(
        logs.contains("credential issued") && logs.contains("issuing failed"),
        "the reconciler's lines were not captured ({} bytes of logs)",
        logs.len()
    );

    let mut checked = 0;
    for (scenario, found) in evidence.iter().enumerate() {
        let printed = found.printed.join("\n");
        assert!(!printed.is_empty());
        // Failure messages say where, never what: the credential itself is not printed.
        for (index, credential) in found.credentials.iter().enumerate() {
            assert!(credential.len() >= 8, "a credential worth checking");
            assert!(
                !logs.contains(credential.as_str()),
                "scenario {scenario}: credential {index} appears in the logs"
            );
            assert!(
                !printed.contains(credential.as_str()),
                "scenario {scenario}: credential {index} appears in a status, event, error or \
                 Debug output"
            );
            checked += 1;
        }
    }
    // Password, Basic header, session, broker token and issued token at least.
    assert!(checked >= 5, "only {checked} credentials were checked");
}

/// vCenter refuses the password: reported as an authentication failure, retried later.
async fn wrong_vcenter_password() -> Evidence {
    let world = World::start(ONE_TOKEN_CLIENT).await;
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();
    let wrong_password = "Wr0ng-but-still-secret-passw0rd";
    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution_with_password(&api, &cr, wrong_password);
    api.expect_event(EventType::Warning, "RotationFailed");
    api.expect_status_patch(&cr, |status| {
        assert_condition(
            status,
            "Ready",
            ConditionStatus::False,
            "AuthenticationFailed",
        );
    });
    let result = credential::reconcile(Arc::new(cr), ctx).await;
    api.checkpoint();
    assert_eq!(world.sim.count(Endpoint::Generate), 0);

    let mut evidence = Evidence::default();
    evidence.result(&result);
    evidence.api(&api);
    evidence.world(&world);
    evidence.credentials.push(wrong_password.to_owned());
    evidence
}

#[tokio::test]
async fn status_computed_from_a_stale_cache_is_not_written_over_a_newer_one() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let ctx = world.context(client);
        // The cached copy is at resourceVersion 7; the operator has written a newer status since.
        let mut cr = new_credential();
        cr.metadata.resource_version = Some("7".into());
        let existing = world.owned_secret(&cr, seconds_ago(5 * 60), TimeDelta::hours(1), 2);

        api.expect_get_secret(NAME, Some(existing));
        api.expect(
            Method::PATCH,
            format!("/apis/syncclient.io/v1alpha1/namespaces/{NAMESPACE}/syncclientcredentials/{NAME}/status"),
            |request| {
                let body: serde_json::Value = request.json();
                assert_eq!(
                    body["metadata"]["resourceVersion"], "7",
                    "a status computed from the cache carries its resourceVersion as a precondition"
                );
                Reply::failure(StatusCode::CONFLICT, "Conflict", "the object has been modified")
            },
        );
        let action = credential::reconcile(Arc::new(cr), ctx)
            .await
            .expect("a stale status is not an error");
        api.checkpoint();
        let retry = requeue_after(&action).expect("retried soon on the newer version");
        assert!(retry <= Duration::from_secs(1), "{retry:?}");
        assert_eq!(world.broker_requests(), 0, "no broker call");
    })
    .await;
}
