//! Hostile input against a running operator: resources that pass the schema but are wrong or
//! abusive, and brokers that answer nonsense, applied with the stock `kubectl` beside valid
//! credentials (each in its own broker directory) that must keep rotating on schedule.
//!
//! One bounded run ([`RUN`] from the operator's start). At the end the operator still runs;
//! each valid credential advanced as its schedule demands, its token never expired and the
//! broker accepts it; each hostile credential ends with a condition that says what to fix; and
//! for every directory the generate calls stay within what its schedule allows (the formulas are
//! [`Allowance`]). The table of inputs, final reasons, generates and allowances is printed.

use std::collections::BTreeMap;
use std::fmt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, Endpoint, Fault, SyncClients};
use sync_client_operator::api::{Condition, ConditionStatus, SyncClientCredentialStatus};

use crate::harness::{
    BROKER_NAME, Env, Operator, VCENTER_PASSWORD, assert_no_secrets, crd_files, event_reasons,
    secret_value, token_is_live,
};
use crate::kubectl::Kubectl;

/// The whole observation, from the operator's start.
const RUN: Duration = Duration::from_secs(80);
/// The operator's `--min-issue-interval`.
const MIN_ISSUE_INTERVAL: f64 = 2.0;
/// How long the rotate-request annotation of `rotate-spam` changes every 100 ms.
const SPAM: Duration = Duration::from_secs(30);
const WRONG_PASSWORD: &str = "not-the-vcenter-password-7Yq";
/// What the broker's `access_token_expire_in` says to the `huge-expiry` credential.
const HUGE_EXPIRY: f64 = 1e30;
/// The expiry written into the tampered Secret's annotation.
const TAMPERED_EXPIRY: &str = "2099-12-31T23:59:59Z";

/// A directory id of its own per credential.
fn directory(n: u32) -> String {
    format!("0000cafe-0000-4000-8000-{n:012x}")
}

/// How many generate calls a directory may see in a window of `T` seconds, and why.
#[derive(Debug, Clone, Copy)]
enum Allowance {
    /// Blocked before any broker call.
    None,
    /// Tokens of `lifetime` seconds renewed when `before` (a fraction of the lifetime) remains.
    /// The broker reports the lifetime in whole seconds, truncated (`L = lifetime − 1` at
    /// worst), the operator records the issue time truncated to the second (up to 1 s early),
    /// and jitter advances a renewal by up to a tenth of its window. So two issues are at least
    /// `s = max(m, 0.9 · (1 − before) · L − 1)` apart (m: the minimum issue interval), and at
    /// most `2 + ⌊T / s⌋` happen (the first, one per spacing, one straddling the end).
    Renewal { lifetime: f64, before: f64 },
    /// At most one issue per minimum interval `m`, whatever asks: `base + 1 + ⌊T / m⌋`.
    Throttle { base: usize },
    /// Retryable failures back off 5 s · 2^(n−1), jittered down to 75 %: the attempts by `T`
    /// are `base + 1 + #{k ≥ 1 : 3.75 · (2^k − 1) ≤ T}` (`base` issues before the failures).
    Backoff { base: usize },
    /// A fixed number: one issue plus one repair per edit, ...
    Exactly(usize),
}

impl Allowance {
    /// The least time between two issues of a renewing credential.
    fn spacing(lifetime: f64, before: f64) -> f64 {
        let reported = lifetime - 1.0;
        (0.9 * (1.0 - before) * reported - 1.0).max(MIN_ISSUE_INTERVAL)
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn max(self, window: f64) -> usize {
        match self {
            Self::None => 0,
            Self::Renewal { lifetime, before } => {
                2 + (window / Self::spacing(lifetime, before)).floor() as usize
            }
            Self::Throttle { base } => base + 1 + (window / MIN_ISSUE_INTERVAL).floor() as usize,
            Self::Backoff { base } => {
                let retries = (1..32)
                    .take_while(|k| 3.75 * (f64::from(1_u32 << k) - 1.0) <= window)
                    .count();
                base + 1 + retries
            }
            Self::Exactly(n) => n,
        }
    }
}

impl fmt::Display for Allowance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => write!(f, "0 (blocked)"),
            Self::Renewal { lifetime, before } => write!(
                f,
                "2+T/{:.2} (0.9*(1-{before:.2})*({lifetime}-1)-1)",
                Self::spacing(*lifetime, *before)
            ),
            Self::Throttle { base } => write!(f, "{base}+1+T/{MIN_ISSUE_INTERVAL}"),
            Self::Backoff { base } => write!(f, "{base}+1+#{{k: 3.75(2^k-1)<=T}}"),
            Self::Exactly(n) => write!(f, "{n}"),
        }
    }
}

/// What a credential is, and what it must end as.
struct Input {
    name: &'static str,
    what: &'static str,
    /// The broker directory it rotates (`None`: it names none the broker knows).
    directory: Option<String>,
    /// The broker simulator serving that directory (0: HTTPS `env.broker`, 1: plain HTTP).
    broker: usize,
    /// A valid credential: it must rotate on schedule with a live token at the end.
    valid: bool,
    /// The reason its Ready or Issuing condition must end with, and words its message must hold.
    reason: &'static str,
    message: &'static [&'static str],
    allowance: Allowance,
    /// What its generate count is.
    count: Count,
    /// Seconds of the run the allowance covers.
    window: Window,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Successful rotations of its directory.
    Rotations,
    /// Generate requests for its directory, answered or not.
    Attempts,
    /// Its own issue attempts (status history; revision), for a directory another credential
    /// rotates.
    Own,
}

#[derive(Clone, Copy)]
enum Window {
    /// From the operator's start.
    Run,
    /// The rotate-request spam and one minimum interval after it (the last request is served
    /// then; the token lives ten minutes, so nothing else issues).
    Spam,
    /// From when the broker began answering 503 to `rotate-503`.
    Outage,
}

fn credential(name: &str, spec: &Value) -> Value {
    json!({"apiVersion": "syncclient.io/v1alpha1", "kind": "SyncClientCredential",
           "metadata": {"name": name}, "spec": spec})
}

fn spec_for(directory: &str, extra: &Value) -> Value {
    let mut spec = json!({
        "brokerRef": {"kind": "IdentityBroker", "name": BROKER_NAME},
        "directoryId": directory,
        "tokenTTL": "600m",
    });
    crate::harness::merge(&mut spec, extra);
    spec
}

fn inputs() -> Vec<Input> {
    let input = |name: &'static str,
                 what: &'static str,
                 n: u32,
                 reason: &'static str,
                 message: &'static [&'static str],
                 allowance: Allowance| Input {
        name,
        what,
        directory: Some(directory(n)),
        broker: 0,
        valid: false,
        reason,
        message,
        allowance,
        count: Count::Rotations,
        window: Window::Run,
    };
    let valid = |name: &'static str, what: &'static str, n: u32, allowance: Allowance| Input {
        valid: true,
        ..input(name, what, n, "CredentialCurrent", &[], allowance)
    };
    vec![
        valid(
            "valid-a",
            "valid: 20 s tokens, default renewal (1/3 before expiry)",
            1,
            Allowance::Renewal {
                lifetime: 20.0,
                before: 1.0 / 3.0,
            },
        ),
        valid(
            "valid-b",
            "valid: 12 s tokens, renewBeforePercentage 50",
            2,
            Allowance::Renewal {
                lifetime: 12.0,
                before: 0.5,
            },
        ),
        Input {
            broker: 1,
            ..valid(
                "valid-http",
                "valid: http:// broker with allowInsecureHttp (a warning is logged)",
                3,
                Allowance::Renewal {
                    lifetime: 20.0,
                    before: 1.0 / 3.0,
                },
            )
        },
        valid(
            "shared-older",
            "valid: the older of two credentials for one sync client",
            4,
            Allowance::Renewal {
                lifetime: 20.0,
                before: 1.0 / 3.0,
            },
        ),
        Input {
            count: Count::Own,
            ..input(
                "shared-newer",
                "the newer of two credentials for one sync client",
                4,
                "SyncClientInUse",
                &["shared-older"],
                Allowance::None,
            )
        },
        input(
            "bad-label-key",
            "template label key \"bad key!\"",
            5,
            "SpecInvalid",
            &["spec.secretTemplate.labels", "bad key!"],
            Allowance::None,
        ),
        input(
            "reserved-annotation",
            "template annotation syncclient.io/expires-at",
            6,
            "SpecInvalid",
            &["spec.secretTemplate.annotations", "syncclient.io/"],
            Allowance::None,
        ),
        input(
            "reserved-label",
            "template label app.kubernetes.io/managed-by",
            7,
            "SpecInvalid",
            &["app.kubernetes.io/managed-by", "set by the operator"],
            Allowance::None,
        ),
        input(
            "tls-type",
            "template type kubernetes.io/tls without tls keys",
            8,
            "SpecInvalid",
            &["kubernetes.io/tls", "tls.crt"],
            Allowance::None,
        ),
        input(
            "missing-broker",
            "brokerRef to a missing IdentityBroker",
            9,
            "BrokerNotFound",
            &["no-such-broker"],
            Allowance::None,
        ),
        input(
            "cib-directories",
            "ClusterIdentityBroker whose allowedDirectories exclude the directory",
            10,
            "BrokerNotAllowed",
            &["cib-other-directories"],
            Allowance::None,
        ),
        input(
            "cib-namespaces",
            "ClusterIdentityBroker whose namespaceSelector excludes the namespace",
            11,
            "BrokerNotAllowed",
            &["cib-other-team"],
            Allowance::None,
        ),
        input(
            "wrong-password",
            "IdentityBroker with a wrong vCenter password",
            12,
            "AuthenticationFailed",
            &[],
            Allowance::None,
        ),
        input(
            "missing-login",
            "IdentityBroker whose login Secret does not exist",
            13,
            "BrokerConfigInvalid",
            &["absent-login"],
            Allowance::None,
        ),
        Input {
            window: Window::Spam,
            ..input(
                "rotate-spam",
                "rotate-request changed every 100 ms for 30 s",
                14,
                "CredentialCurrent",
                &[],
                Allowance::Throttle { base: 1 },
            )
        },
        Input {
            count: Count::Attempts,
            window: Window::Outage,
            ..input(
                "rotate-503",
                "rotate request while the broker answers 503 for the directory",
                15,
                "BrokerUnavailable",
                &["503"],
                Allowance::Backoff { base: 1 },
            )
        },
        input(
            "huge-expiry",
            "broker answers access_token_expire_in 1e30",
            16,
            "CredentialCurrent",
            &[],
            Allowance::Exactly(1),
        ),
        input(
            "zero-expiry",
            "broker answers access_token_expire_in 0",
            17,
            "BrokerResponseInvalid",
            &["access_token_expire_in"],
            Allowance::Backoff { base: 0 },
        ),
        input(
            "negative-expiry",
            "broker answers access_token_expire_in -5",
            18,
            "BrokerResponseInvalid",
            &["access_token_expire_in"],
            Allowance::Backoff { base: 0 },
        ),
        Input {
            directory: None,
            ..input(
                "unreadable",
                "stored under an older schema: directoryId 12345 (a number)",
                0,
                "SpecInvalid",
                &["cannot be read"],
                Allowance::None,
            )
        },
        input(
            "tampered",
            "owned Secret's syncclient.io/expires-at edited",
            19,
            "CredentialCurrent",
            &[],
            Allowance::Exactly(2),
        ),
        input(
            "foreign-secret",
            "secretName naming a foreign Secret",
            20,
            "SecretNotOwned",
            &["foreign-config", "left untouched"],
            Allowance::None,
        ),
    ]
}

/// The spec of each credential (by name).
fn specs(http_broker: &str) -> BTreeMap<&'static str, Value> {
    let d = directory;
    BTreeMap::from([
        ("valid-a", spec_for(&d(1), &json!({"tokenTTL": "20m"}))),
        (
            "valid-b",
            spec_for(
                &d(2),
                &json!({"tokenTTL": "12m", "renewBeforePercentage": 50}),
            ),
        ),
        (
            "valid-http",
            spec_for(
                &d(3),
                &json!({"tokenTTL": "20m", "brokerRef": {"name": http_broker}}),
            ),
        ),
        ("shared-older", spec_for(&d(4), &json!({"tokenTTL": "20m"}))),
        ("shared-newer", spec_for(&d(4), &json!({"tokenTTL": "20m"}))),
        (
            "bad-label-key",
            spec_for(
                &d(5),
                &json!({"secretTemplate": {"labels": {"bad key!": "x"}}}),
            ),
        ),
        (
            "reserved-annotation",
            spec_for(
                &d(6),
                &json!({"secretTemplate": {"annotations": {"syncclient.io/expires-at": TAMPERED_EXPIRY}}}),
            ),
        ),
        (
            "reserved-label",
            spec_for(
                &d(7),
                &json!({"secretTemplate": {"labels": {"app.kubernetes.io/managed-by": "me"}}}),
            ),
        ),
        (
            "tls-type",
            spec_for(
                &d(8),
                &json!({"secretTemplate": {"type": "kubernetes.io/tls"}}),
            ),
        ),
        (
            "missing-broker",
            spec_for(&d(9), &json!({"brokerRef": {"name": "no-such-broker"}})),
        ),
        (
            "cib-directories",
            spec_for(
                &d(10),
                &json!({"brokerRef": {"kind": "ClusterIdentityBroker", "name": "cib-other-directories"}}),
            ),
        ),
        (
            "cib-namespaces",
            spec_for(
                &d(11),
                &json!({"brokerRef": {"kind": "ClusterIdentityBroker", "name": "cib-other-team"}}),
            ),
        ),
        (
            "wrong-password",
            spec_for(&d(12), &json!({"brokerRef": {"name": "wrong-password"}})),
        ),
        (
            "missing-login",
            spec_for(&d(13), &json!({"brokerRef": {"name": "missing-login"}})),
        ),
        ("rotate-spam", spec_for(&d(14), &json!({}))),
        ("rotate-503", spec_for(&d(15), &json!({}))),
        ("huge-expiry", spec_for(&d(16), &json!({}))),
        ("zero-expiry", spec_for(&d(17), &json!({}))),
        ("negative-expiry", spec_for(&d(18), &json!({}))),
        ("tampered", spec_for(&d(19), &json!({}))),
        (
            "foreign-secret",
            spec_for(&d(20), &json!({"secretName": "foreign-config"})),
        ),
    ])
}

/// Brokers, login Secrets and the foreign Secret the inputs refer to.
fn supporting_objects(env: &Env, http: &BrokerSim) -> Vec<Value> {
    let ca = env
        .broker
        .ca_pem()
        .expect("the broker simulator serves TLS");
    let login = |name: &str, password: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
               "stringData": {"username": env.broker.username(), "password": password}})
    };
    let broker = |name: &str, url: &str, login: &str, extra: Value| {
        let mut spec = json!({
            "url": url, "tenant": "CUSTOMER",
            "auth": {"vcenter": {"credentialsSecretRef": {"name": login}}},
            "limits": {"requestTimeout": "2s"},
        });
        crate::harness::merge(&mut spec, &extra);
        json!({"apiVersion": "syncclient.io/v1alpha1", "kind": "IdentityBroker",
               "metadata": {"name": name}, "spec": spec})
    };
    let cluster_broker = |name: &str, extra: Value| {
        let mut spec = json!({
            "url": env.broker.url(), "tenant": "CUSTOMER", "tls": {"caBundle": ca},
            "auth": {"vcenter": {"credentialsSecretRef": {"name": format!("{BROKER_NAME}-login")}}},
            "limits": {"requestTimeout": "2s"},
            "secretNamespace": env.namespace,
        });
        crate::harness::merge(&mut spec, &extra);
        json!({"apiVersion": "syncclient.io/v1alpha1", "kind": "ClusterIdentityBroker",
               "metadata": {"name": name}, "spec": spec})
    };
    vec![
        login("wrong-login", WRONG_PASSWORD),
        broker(
            "wrong-password",
            &env.broker.url(),
            "wrong-login",
            json!({"tls": {"caBundle": ca}}),
        ),
        broker(
            "missing-login",
            &env.broker.url(),
            "absent-login",
            json!({"tls": {"caBundle": ca}}),
        ),
        broker(
            "plain-http",
            &http.url(),
            &format!("{BROKER_NAME}-login"),
            json!({"allowInsecureHttp": true}),
        ),
        cluster_broker(
            "cib-other-directories",
            json!({"allowedDirectories": [directory(99)]}),
        ),
        cluster_broker(
            "cib-other-team",
            json!({"namespaceSelector": {"matchLabels": {"team": "somebody-else"}}}),
        ),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "foreign-config"},
               "stringData": {"access_token": "belongs-to-someone-else"}}),
    ]
}

/// Starts the operator binary with `--min-issue-interval 2s` (the harness passes 1s).
fn start_operator(env: &Env) -> Operator {
    let log = env.dir.path().join("hostile.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_sync-client-operator"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(["--log-format", "json"])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args(["--instance", "hostile"])
        .args(["--min-issue-interval", &format!("{MIN_ISSUE_INTERVAL}s")])
        .env(
            "RUST_LOG",
            "debug,kube=info,hyper=info,tower=info,rustls=info,h2=info,reqwest=info",
        )
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn operator");
    Operator::adopt(child, log, port)
}

/// A credential as stored, read without the operator's types: one of them cannot be.
struct Stored {
    rotate_request: Option<String>,
    status: SyncClientCredentialStatus,
}

impl Stored {
    fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// Every credential in the simulator, by name.
fn stored_credentials(env: &Env) -> BTreeMap<String, Stored> {
    let kube = env.kube.as_ref().expect("simulator");
    kube.list(
        "syncclient.io/v1alpha1",
        "syncclientcredentials",
        Some(&env.namespace),
    )
    .into_iter()
    .map(|object| {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stored = Stored {
            rotate_request: object
                .pointer("/metadata/annotations/syncclient.io~1rotate-request")
                .and_then(Value::as_str)
                .map(str::to_owned),
            status: object
                .get("status")
                .map(|s| serde_json::from_value(s.clone()).expect("a readable status"))
                .unwrap_or_default(),
        };
        (name, stored)
    })
    .collect()
}

fn revision_of(secret: &Secret) -> i64 {
    secret
        .annotations()
        .get("syncclient.io/revision")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Generate requests the broker received for a directory (answered or not).
fn generate_attempts(broker: &BrokerSim, directory: &str) -> usize {
    broker
        .requests()
        .iter()
        .filter(|r| {
            r.endpoint == Endpoint::Generate && r.directory_id.as_deref() == Some(directory)
        })
        .count()
}

/// What the sampler saw during the run.
#[derive(Default)]
struct Observed {
    /// Tokens seen in Secrets, for the log scan.
    tokens: Vec<String>,
    /// Problems seen while running (an expired stored token, a Ready=True that must never be).
    violations: Vec<String>,
    /// Credentials seen with Issuing reason `Throttled`.
    throttled: Vec<String>,
    samples: usize,
}

/// Every 500 ms until `end`: stored tokens of valid credentials never expire, credentials whose
/// broker answers nonsense are never Ready, the operator keeps running.
async fn sample(env: &Env, operator: &mut Operator, end: Instant, valid: &[&str]) -> Observed {
    let mut seen = Observed::default();
    let never_ready = ["zero-expiry", "negative-expiry"];
    while Instant::now() < end {
        seen.samples += 1;
        if operator.exited() {
            seen.violations.push("the operator exited".into());
            break;
        }
        let secrets = env
            .secrets()
            .list(&ListParams::default())
            .await
            .expect("list secrets");
        for secret in &secrets.items {
            if let Some(data) = &secret.data
                && let Some(token) = data.get("access_token")
            {
                let token = String::from_utf8_lossy(&token.0).into_owned();
                if !seen.tokens.contains(&token) {
                    seen.tokens.push(token);
                }
            }
            let name = secret.name_any();
            if valid.contains(&name.as_str())
                && let Some(expiry) = secret.annotations().get("syncclient.io/expires-at")
                && let Ok(expiry) = expiry.parse::<chrono::DateTime<Utc>>()
                && expiry <= Utc::now()
            {
                seen.violations.push(format!(
                    "{name}: the stored token expired at {expiry} before a renewal (revision {})",
                    revision_of(secret)
                ));
            }
        }
        for (name, cr) in stored_credentials(env) {
            if never_ready.contains(&name.as_str())
                && cr
                    .condition("Ready")
                    .is_some_and(|c| c.status == ConditionStatus::True)
            {
                seen.violations.push(format!(
                    "{name}: Ready=True although the broker's expiry is invalid"
                ));
            }
            if cr
                .condition("Issuing")
                .is_some_and(|c| c.reason == "Throttled")
                && !seen.throttled.contains(&name)
            {
                seen.throttled.push(name);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    seen
}

async fn wait_for_revision(env: &Env, name: &str, revision: i64, end: Instant) -> bool {
    while Instant::now() < end {
        if env
            .secret(name)
            .await
            .is_some_and(|s| revision_of(&s) >= revision)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The newer credential for a sync client another one already rotates.
async fn second_for_one_sync_client(env: &Env, kubectl: &Kubectl, spec: &Value, end: Instant) {
    assert!(
        wait_for_revision(env, "shared-older", 1, end).await,
        "shared-older never issued"
    );
    // Creation timestamps have one-second resolution: make "older" unambiguous.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    kubectl.apply_ok(&credential("shared-newer", spec)).await;
}

/// Changes the rotate-request annotation every 100 ms for [`SPAM`].
async fn rotate_request_spam(env: &Env, end: Instant) {
    assert!(
        wait_for_revision(env, "rotate-spam", 1, end).await,
        "rotate-spam never issued"
    );
    let began = Instant::now();
    let mut value = 0_u32;
    while began.elapsed() < SPAM {
        value += 1;
        let patch = json!({"metadata": {"annotations": {"syncclient.io/rotate-request": format!("spam-{value}")}}});
        env.credentials()
            .patch(
                "rotate-spam",
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .expect("annotate rotate-spam");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After the first issue the broker answers 503 to every generate for the directory; then a
/// rotate request. Returns when the 503s began.
async fn rotate_during_outage(env: &Env, kubectl: &Kubectl, end: Instant) -> Instant {
    assert!(
        wait_for_revision(env, "rotate-503", 1, end).await,
        "rotate-503 never issued"
    );
    env.broker.inject(
        Fault::on(Endpoint::Generate)
            .for_directory(&directory(15))
            .times(usize::MAX)
            .status(503),
    );
    let began = Instant::now();
    let run = kubectl
        .run(
            &[
                "annotate",
                "syncclientcredential",
                "rotate-503",
                "syncclient.io/rotate-request=during-outage",
            ],
            None,
        )
        .await;
    assert!(run.success, "kubectl annotate: {}", run.stderr);
    began
}

/// Edits the owned Secret's expiry annotation once the first credential is there.
async fn tamper_with_expiry(env: &Env, kubectl: &Kubectl, end: Instant) {
    assert!(
        wait_for_revision(env, "tampered", 1, end).await,
        "tampered never issued"
    );
    let run = kubectl
        .run(
            &[
                "annotate",
                "--overwrite",
                "secret",
                "tampered",
                &format!("syncclient.io/expires-at={TAMPERED_EXPIRY}"),
            ],
            None,
        )
        .await;
    assert!(run.success, "kubectl annotate: {}", run.stderr);
}

/// Stores a credential the operator cannot read: a permissive CRD version accepts
/// `directoryId: 12345`, then the real CRD comes back. Every step with `kubectl apply`.
async fn store_under_older_schema(env: &Env, kubectl: &Kubectl) {
    let path = crd_files()
        .into_iter()
        .find(|p| p.ends_with("syncclientcredentials.syncclient.io.yaml"))
        .expect("credential CRD");
    let text = std::fs::read_to_string(&path).expect("CRD file");
    let real: Value = serde_saphyr::from_str(&text).expect("CRD YAML");
    let mut older = real.clone();
    // The older schema took a directory id as a string or a number.
    older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["directoryId"] = json!({"x-kubernetes-int-or-string": true});
    kubectl.apply_ok(&older).await;
    let mut spec = spec_for("x", &json!({}));
    spec["directoryId"] = json!(12345);
    kubectl.apply_ok(&credential("unreadable", &spec)).await;
    let run = kubectl
        .run(&["apply", "-f", &path.display().to_string()], None)
        .await;
    assert!(run.success, "re-applying the real CRD: {}", run.stderr);
    let kube = env.kube.as_ref().expect("simulator");
    let stored = kube
        .get(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            None,
            "syncclientcredentials.syncclient.io",
        )
        .expect("CRD");
    let pointer = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/directoryId";
    assert_eq!(
        stored.pointer(pointer),
        real.pointer(pointer),
        "the real CRD is back"
    );
    let object = kube
        .get(
            "syncclient.io/v1alpha1",
            "syncclientcredentials",
            Some(&env.namespace),
            "unreadable",
        )
        .expect("the unreadable credential is stored");
    assert_eq!(object.pointer("/spec/directoryId"), Some(&json!(12345)));
    // Under the real schema now: clearing its status makes the operator report it again (a
    // `/status` write is checked against the status schema only, so the report goes through).
    let run = kubectl
        .run(
            &[
                "patch",
                "syncclientcredential",
                "unreadable",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":null}"#,
            ],
            None,
        )
        .await;
    assert!(run.success, "clearing the status: {}", run.stderr);
    let deadline = Instant::now() + crate::harness::WAIT;
    loop {
        let reported = stored_credentials(env).get("unreadable").is_some_and(|cr| {
            cr.condition("Ready")
                .is_some_and(|c| c.reason == "SpecInvalid")
        });
        if reported {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the unreadable credential was not reported again under the real schema"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One row of the report.
struct Row {
    ready_message: String,
    issuing_message: String,
    /// The last issue attempts, oldest first.
    history: Vec<String>,
    name: &'static str,
    what: &'static str,
    ready: String,
    issuing: String,
    generates: usize,
    allowed: usize,
    formula: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_resources_neither_crash_stall_loop_nor_mislead_the_operator() {
    let env = Env::start().await;
    if env.kube.is_none() {
        // CRD versions are swapped and ClusterIdentityBrokers used: the simulator only.
        return assert!(std::env::var_os("E2E_KUBECONFIG").is_some());
    }
    let http = BrokerSim::start(BrokerSimConfig {
        tls: false,
        ttl_unit: Duration::from_secs(1),
        password: VCENTER_PASSWORD.into(),
        ..BrokerSimConfig::default()
    })
    .await
    .expect("plain-http broker simulator");
    let inputs = inputs();
    for input in &inputs {
        if let Some(dir) = &input.directory {
            let broker = if input.broker == 1 {
                &http
            } else {
                &env.broker
            };
            broker.add_directory(
                dir,
                SyncClients::One {
                    generate_token: true,
                    token_ttl: 30,
                },
            );
        }
    }
    let expire_in = |n: u32, value: Value| {
        Fault::on(Endpoint::Generate)
            .for_directory(&directory(n))
            .times(usize::MAX)
            .access_token_expire_in(&value)
    };
    env.broker.inject(expire_in(16, json!(HUGE_EXPIRY)));
    env.broker.inject(expire_in(17, json!(0)));
    env.broker.inject(expire_in(18, json!(-5)));

    let kubectl = Kubectl::new(&env);
    for object in supporting_objects(&env, &http) {
        kubectl.apply_ok(&object).await;
    }
    let specs = specs("plain-http");

    let mut operator = start_operator(&env);
    let started = Instant::now();
    let end = started + RUN;
    // Everything but the scenario-driven ones, in one `kubectl apply`.
    let later = ["shared-newer", "unreadable"];
    let items: Vec<Value> = specs
        .iter()
        .filter(|(name, _)| !later.contains(name))
        .map(|(name, spec)| credential(name, spec))
        .collect();
    kubectl.apply_all_ok(&items).await;

    let valid: Vec<&str> = inputs.iter().filter(|i| i.valid).map(|i| i.name).collect();
    let second_kubectl = Kubectl::new(&env);
    let third_kubectl = Kubectl::new(&env);
    let (observed, (), (), outage_began, (), ()) = tokio::join!(
        sample(&env, &mut operator, end, &valid),
        second_for_one_sync_client(&env, &kubectl, &specs["shared-newer"], end),
        rotate_request_spam(&env, end),
        rotate_during_outage(&env, &second_kubectl, end),
        tamper_with_expiry(&env, &third_kubectl, end),
        async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            store_under_older_schema(&env, &Kubectl::new(&env)).await;
        },
    );
    let finished = Instant::now();

    // ---- the verdict ----
    let mut failures = observed.violations.clone();
    if operator.exited() {
        failures.push("the operator is not running at the end".into());
    }
    let credentials = stored_credentials(&env);
    let mut rows = Vec::new();
    let mut tokens = observed.tokens.clone();
    for input in &inputs {
        let Some(cr) = credentials.get(input.name) else {
            failures.push(format!("{}: the credential is missing", input.name));
            continue;
        };
        let ready = cr.condition("Ready");
        let issuing = cr.condition("Issuing");
        let show = |c: Option<&Condition>| {
            c.map_or_else(
                || "-".to_owned(),
                |c| format!("{:?}/{}", c.status, c.reason),
            )
        };
        let (generates, allowed, formula) = match &input.directory {
            Some(dir) => {
                let broker = if input.broker == 1 {
                    &http
                } else {
                    &env.broker
                };
                let generates = match input.count {
                    Count::Rotations => broker.generate_count(dir),
                    Count::Attempts => generate_attempts(broker, dir),
                    Count::Own => {
                        cr.status.history.len()
                            + usize::try_from(cr.status.revision.unwrap_or(0)).unwrap_or(0)
                    }
                };
                let window = match input.window {
                    Window::Run => finished - started,
                    Window::Spam => SPAM + Duration::from_secs_f64(MIN_ISSUE_INTERVAL),
                    Window::Outage => finished - outage_began,
                };
                let allowed = input.allowance.max(window.as_secs_f64());
                let formula = format!("{} with T={:.0}s", input.allowance, window.as_secs_f64());
                (generates, allowed, formula)
            }
            None => (0, 0, "0 (no directory)".to_owned()),
        };
        if generates > allowed {
            failures.push(format!(
                "{}: {generates} generate calls, at most {allowed} allowed ({formula})",
                input.name
            ));
        }
        rows.push(Row {
            ready_message: ready.map(|c| c.message.to_string()).unwrap_or_default(),
            issuing_message: issuing.map(|c| c.message.to_string()).unwrap_or_default(),
            history: cr
                .status
                .history
                .iter()
                .rev()
                .map(|h| format!("{} {} {}", h.time.format("%H:%M:%S"), h.trigger, h.outcome))
                .collect(),
            name: input.name,
            what: input.what,
            ready: show(ready),
            issuing: show(issuing),
            generates,
            allowed,
            formula,
        });
        // The condition says what happened and what to fix: the reason is the condition's, or
        // (while the Secret still holds a usable credential, or a backoff runs) the failure
        // named in its message.
        let said = [ready, issuing]
            .into_iter()
            .flatten()
            .find(|c| c.reason == input.reason)
            .or_else(|| {
                [ready, issuing]
                    .into_iter()
                    .flatten()
                    .find(|c| c.message.contains(&format!("({})", input.reason)))
            });
        match said {
            None => failures.push(format!(
                "{}: expected reason {} on Ready or Issuing, got Ready {} / Issuing {}: {:?}",
                input.name,
                input.reason,
                show(ready),
                show(issuing),
                ready.map(|c| &c.message)
            )),
            Some(c) => {
                for words in input.message {
                    if !c.message.contains(words) {
                        failures.push(format!(
                            "{}: the {} condition's message does not say {words:?}: {:?}",
                            input.name, c.type_, c.message
                        ));
                    }
                }
                if !input.valid
                    && input.reason != "CredentialCurrent"
                    && c.message.trim().is_empty()
                {
                    failures.push(format!("{}: an empty message", input.name));
                }
            }
        }
        if input.valid {
            let secret = env.secret(input.name).await;
            let Some(secret) = secret else {
                failures.push(format!("{}: no Secret", input.name));
                continue;
            };
            let token = secret_value(&secret, "access_token");
            tokens.push(token.clone());
            let live = if input.broker == 1 {
                http.token_is_valid(&token)
            } else {
                token_is_live(&env, &token).await
            };
            if !live {
                failures.push(format!(
                    "{}: the broker does not accept the stored token",
                    input.name
                ));
            }
            // Each lifetime needs at least one issue.
            if let Allowance::Renewal { lifetime, .. } = input.allowance {
                #[allow(clippy::cast_possible_truncation)]
                let needed =
                    1 + ((finished - started).as_secs_f64() * 0.8 / lifetime).floor() as i64;
                if revision_of(&secret) < needed {
                    failures.push(format!(
                        "{}: revision {} after {:.0}s of {lifetime}s tokens, expected at least {needed}",
                        input.name,
                        revision_of(&secret),
                        (finished - started).as_secs_f64()
                    ));
                }
            }
        }
    }
    failures.extend(scenario_checks(&env, &operator, &credentials, &observed, &http).await);

    print_table(&rows);
    for dir in (1..=20).map(directory) {
        tokens.extend(env.broker.current_token(&dir));
        tokens.extend(http.current_token(&dir));
    }
    assert_no_secrets(&operator.output(), &tokens);
    assert!(
        !operator.output().contains(WRONG_PASSWORD),
        "the wrong password appeared in the operator's output"
    );
    assert!(
        failures.is_empty(),
        "{} problems after {:.0}s ({} samples):\n{}",
        failures.len(),
        (finished - started).as_secs_f64(),
        observed.samples,
        failures.join("\n")
    );
}

/// Checks particular to some inputs, beyond the condition and the generate count.
async fn scenario_checks(
    env: &Env,
    operator: &Operator,
    credentials: &BTreeMap<String, Stored>,
    observed: &Observed,
    http: &BrokerSim,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failures.push(what);
        }
    };
    let status = |name: &str| {
        credentials
            .get(name)
            .map(|c| c.status.clone())
            .unwrap_or_default()
    };

    // Two for one sync client: the newer never issued.
    check(
        env.secret("shared-newer").await.is_none() && status("shared-newer").revision.is_none(),
        "shared-newer: it issued although shared-older rotates the sync client".into(),
    );
    // Wrong password: one refused login, then the cool-down holds every other attempt back.
    let refused = env.broker.count_with_status(Endpoint::Login, 401);
    check(
        refused == 1,
        format!("wrong-password: {refused} refused logins; after the first, none for 15 minutes"),
    );
    // Rotate spam: throttled, and the last request is served in the end.
    let spam = status("rotate-spam");
    check(
        observed.throttled.iter().any(|n| n == "rotate-spam"),
        "rotate-spam: never reported Issuing=Throttled".into(),
    );
    check(
        spam.observed_rotate_request.as_deref()
            == credentials["rotate-spam"].rotate_request.as_deref(),
        format!(
            "rotate-spam: the last rotate request was not served: {:?}",
            spam.observed_rotate_request
        ),
    );
    // Huge expiry: cut to ten years, Ready.
    let huge = status("huge-expiry").expires_at;
    let ten_years = Utc::now() + chrono::TimeDelta::days(3650);
    check(
        huge.is_some_and(|at| {
            at <= ten_years + chrono::TimeDelta::days(2)
                && at >= ten_years - chrono::TimeDelta::days(2)
        }),
        format!("huge-expiry: expiresAt {huge:?} is not cut to ten years"),
    );
    // Tampering: detected, repaired, the real expiry back.
    let tampered = env.secret("tampered").await;
    check(
        tampered.as_ref().is_some_and(|s| {
            revision_of(s) == 2
                && s.annotations()
                    .get("syncclient.io/expires-at")
                    .map(String::as_str)
                    != Some(TAMPERED_EXPIRY)
        }),
        "tampered: the edited Secret was not repaired with a new credential".into(),
    );
    check(
        event_reasons(env, "tampered")
            .await
            .iter()
            .any(|r| r == "SecretRepaired"),
        "tampered: no SecretRepaired event".into(),
    );
    // The foreign Secret is untouched.
    let foreign = env.secret("foreign-config").await;
    check(
        foreign.as_ref().is_some_and(|s| {
            secret_value(s, "access_token") == "belongs-to-someone-else"
                && s.metadata.owner_references.is_none()
        }),
        "foreign-secret: the foreign Secret was changed".into(),
    );
    check(
        !operator
            .output()
            .contains("could not report the unreadable resource"),
        "unreadable: a report on the unreadable credential was refused".into(),
    );
    // Nothing panicked, even contained.
    let metrics = operator.http_get("/metrics").await.map(|(_, body)| body);
    check(
        metrics.as_deref().is_some_and(|m| {
            m.lines()
                .any(|l| l == "sync_client_reconcile_panics_total 0")
        }),
        format!(
            "a reconcile panicked: {:?}",
            metrics.as_deref().and_then(|m| m
                .lines()
                .find(|l| l.starts_with("sync_client_reconcile_panics_total")))
        ),
    );
    // Plain http works and is warned about.
    check(
        operator
            .output()
            .contains("reached over plain http (allowInsecureHttp)"),
        "valid-http: no warning about plain http in the log".into(),
    );
    check(
        http.count(Endpoint::Generate) > 0,
        "valid-http: the plain-http broker saw no generate".into(),
    );
    failures
}

fn print_table(rows: &[Row]) {
    println!(
        "\n{:<20} {:<68} {:<32} {:<26} {:>4} {:>5}  allowance",
        "credential", "input", "Ready", "Issuing", "gen", "max"
    );
    for row in rows {
        println!(
            "{:<20} {:<68} {:<32} {:<26} {:>4} {:>5}  {}",
            row.name, row.what, row.ready, row.issuing, row.generates, row.allowed, row.formula
        );
    }
    println!("\nconditions' messages (Ready | Issuing) and the last issue attempts:");
    for row in rows {
        println!(
            "{:<20} {} | {}\n{:<20} {}",
            row.name,
            row.ready_message,
            row.issuing_message,
            "",
            row.history.join(", ")
        );
    }
}

/// While a token the broker said was already expired waits for its retry, Ready must keep
/// saying why (BrokerResponseInvalid, the broker's fault), not `Expired` (which reads as if the
/// operator had missed a renewal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_born_expired_keeps_ready_on_broker_response_invalid_through_the_backoff() {
    let env = Env::start().await;
    env.broker.inject(
        Fault::on(Endpoint::Generate)
            .times(usize::MAX)
            .access_token_expire_in(&json!(0)),
    );
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({"tokenTTL": "600m"}))
        .await;
    env.eventually("the first failed attempt", crate::harness::WAIT, || async {
        let cr = env.credentials().get_opt("app").await.ok()??;
        (cr.status?.failed_attempts >= 1).then_some(())
    })
    .await;
    // Through the first backoff (3.75 s to 5 s) and the retry after it.
    let mut seen = Vec::new();
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let cr = env.credential("app").await;
        let ready = cr
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| (c.status, c.reason.clone(), c.message.clone()));
        if let Some(ready) = ready
            && !seen.contains(&ready)
        {
            seen.push(ready);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.iter().all(|(status, reason, message)| {
            *status == ConditionStatus::False
                && reason == "BrokerResponseInvalid"
                && message.contains("access_token_expire_in 0")
        }),
        "Ready through the backoff: {seen:#?}"
    );
    let token = env.broker.current_token(crate::harness::DIRECTORY);
    assert_no_secrets(&operator.output(), &Vec::from_iter(token));
}
