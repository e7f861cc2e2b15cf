//! Upgrading from release 0.1.0, the operator part: today's operator takes over what 0.1.0
//! wrote (`tests/fixtures/upgrade-0.1.0/state.yaml`: credentials with their statuses, Secrets with
//! their 0.1.0 records and `v2:` fingerprints, brokers), restored into the Kubernetes API
//! simulator as a restored etcd would hold them, with today's CRDs (the chart upgrade installs
//! them), against a broker that holds the same live credentials (`broker.yaml`). The broker moved
//! (its URL, CA and login are this run's), which is a change of the broker, not of any credential.
//!
//! Nothing is minted, whatever record or fingerprint format changed since: every Secret is
//! fingerprinted again (`v3:`) with its data unchanged, and every credential that was current is
//! still Ready at the same revision.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, Endpoint, Restored, SyncClients};
use sync_client_kube_sim::{KubeSim, PatchKind};

const OKTA: &str = "0a1b2c3d-0001-4000-8000-000000000001";
const ENTRA: &str = "0a1b2c3d-0002-4000-8000-000000000002";
const PUSHER: &str = "0a1b2c3d-0003-4000-8000-000000000003";
const SHARED: &str = "0a1b2c3d-0004-4000-8000-000000000004";
const STAGED: &str = "0a1b2c3d-0005-4000-8000-000000000005";
const EMPTY: &str = "0a1b2c3d-0006-4000-8000-000000000006";
const CREDENTIALS: &str = "syncclientcredentials";
const GROUP_VERSION: &str = "syncclient.io/v1alpha1";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade-0.1.0")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decoded(secret: &Value, key: &str) -> String {
    use base64::Engine as _;
    let encoded = secret["data"][key].as_str().unwrap_or_default();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

/// The broker of this run, holding the credentials 0.1.0's broker held at the capture.
async fn restored_broker(secrets: &[Value]) -> BrokerSim {
    let broker = BrokerSim::start(BrokerSimConfig::default())
        .await
        .expect("broker simulator");
    for directory in [OKTA, ENTRA, SHARED, STAGED] {
        broker.add_directory(
            directory,
            SyncClients::One {
                generate_token: true,
                token_ttl: 262_800,
            },
        );
    }
    broker.add_directory(
        PUSHER,
        SyncClients::One {
            generate_token: false,
            token_ttl: 262_800,
        },
    );
    broker.add_directory(EMPTY, SyncClients::None);
    let live: BTreeMap<String, Value> = serde_saphyr::from_str(&fixture("broker.yaml")).unwrap();
    let secret_of = |token: &str| secrets.iter().find(|s| secret_holds(s, token));
    for (directory, held) in &live {
        if let Some(token) = held["accessToken"].as_str().filter(|t| !t.is_empty()) {
            let secret = secret_of(token).expect("the Secret holding the captured token");
            let expires: chrono::DateTime<chrono::Utc> =
                secret["metadata"]["annotations"]["syncclient.io/expires-at"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
            let lifetime = (expires - chrono::Utc::now())
                .to_std()
                .expect("not expired");
            assert!(broker.restore(
                directory,
                Restored::AccessToken {
                    token: token.to_owned(),
                    lifetime,
                }
            ));
        } else if let Some(client_secret) = held["clientSecret"].as_str() {
            assert!(broker.restore(
                directory,
                Restored::ClientSecret {
                    client_id: held["clientId"].as_str().unwrap().to_owned(),
                    client_secret: client_secret.to_owned(),
                }
            ));
        }
    }
    broker
}

fn secret_holds(secret: &Value, token: &str) -> bool {
    secret["data"]
        .as_object()
        .is_some_and(|data| data.keys().any(|key| decoded(secret, key) == token))
}

/// Points both brokers at this run's broker: URL, CA, login.
fn move_brokers(kube: &KubeSim, broker: &BrokerSim) {
    let ca = broker.ca_pem().unwrap();
    let patch = |api: &str, plural: &str, namespace: Option<&str>, name: &str, body: Value| {
        kube.patch(api, plural, namespace, name, PatchKind::Merge, &body, None)
            .unwrap_or_else(|e| panic!("patch {plural} {name}: {e:?}"));
    };
    patch(
        GROUP_VERSION,
        "identitybrokers",
        Some("team-a"),
        "vcenter",
        json!({"spec": {"url": broker.url()}}),
    );
    patch(
        GROUP_VERSION,
        "clusteridentitybrokers",
        None,
        "shared",
        json!({"spec": {"url": broker.url(), "tls": {"caBundle": ca}}}),
    );
    patch(
        "v1",
        "secrets",
        Some("team-a"),
        "broker-ca",
        json!({"stringData": {"ca.crt": ca}}),
    );
    for (namespace, user, pass) in [
        ("team-a", "username", "password"),
        ("platform", "user", "pass"),
    ] {
        patch(
            "v1",
            "secrets",
            Some(namespace),
            "vcenter-login",
            json!({"stringData": {user: broker.username(), pass: broker.password()}}),
        );
    }
}

fn credential(kube: &KubeSim, namespace: &str, name: &str) -> Value {
    kube.get(GROUP_VERSION, CREDENTIALS, Some(namespace), name)
        .expect("credential")
}

fn ready_reason(credential: &Value) -> String {
    credential["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_operator_takes_over_what_0_1_0_wrote_without_a_mint() {
    let kube = KubeSim::start().await.expect("kube simulator");
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("crds");
    for entry in std::fs::read_dir(&crds).unwrap() {
        kube.apply_yaml(&std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .expect("today's CRDs");
    }
    kube.restore_yaml(&fixture("state.yaml"))
        .expect("0.1.0's objects restored");
    let before: Vec<Value> = kube
        .list("v1", "secrets", None)
        .into_iter()
        .filter(|s| s["metadata"]["ownerReferences"].is_array())
        .collect();
    assert_eq!(before.len(), 4, "the Secrets 0.1.0 wrote");
    let broker = restored_broker(&before).await;
    move_brokers(&kube, &broker);

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).unwrap();
    let log = dir.path().join("operator.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut operator = Command::new(env!("CARGO_BIN_EXE_sync-client-operator"))
        .args(["run", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--http-addr", "127.0.0.1:0", "--log-format", "json"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("operator");

    // Every Secret fingerprinted again, every status seen by today's operator.
    let taken_over = kube
        .wait_until(Duration::from_secs(60), |kube| {
            let secrets = kube.list("v1", "secrets", None);
            let fingerprinted = before.iter().all(|old| {
                secrets.iter().any(|s| {
                    s["metadata"]["name"] == old["metadata"]["name"]
                        && s["metadata"]["namespace"] == old["metadata"]["namespace"]
                        && s["metadata"]["annotations"]["syncclient.io/fingerprint"]
                            .as_str()
                            .is_some_and(|f| f.starts_with("v3:"))
                })
            });
            fingerprinted
                && ["okta-scim", "entra-scim", "pusher-client"]
                    .iter()
                    .all(|name| {
                        ready_reason(&credential(kube, "team-a", name)) == "CredentialCurrent"
                    })
                && ready_reason(&credential(kube, "team-b", "cluster-scim")) == "CredentialCurrent"
        })
        .await;
    // A moment more: anything that would mint has had its chance.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &operator.id().to_string()])
        .status();
    let _ = operator.wait();
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(taken_over, "not taken over within a minute:\n{output}");

    for directory in [OKTA, ENTRA, PUSHER, SHARED, STAGED, EMPTY] {
        assert_eq!(
            broker.generate_count(directory),
            0,
            "directory {directory}: nothing minted"
        );
    }
    for old in &before {
        let (namespace, name) = (
            old["metadata"]["namespace"].as_str().unwrap(),
            old["metadata"]["name"].as_str().unwrap(),
        );
        let new = kube.get("v1", "secrets", Some(namespace), name).unwrap();
        assert_eq!(
            new["data"], old["data"],
            "{namespace}/{name}: the data is 0.1.0's"
        );
        for kept in [
            "syncclient.io/revision",
            "syncclient.io/issued-at",
            "syncclient.io/expires-at",
        ] {
            assert_eq!(
                new["metadata"]["annotations"][kept], old["metadata"]["annotations"][kept],
                "{namespace}/{name}: {kept}"
            );
        }
        assert!(
            new["metadata"]["annotations"]["syncclient.io/data-keys"].is_string(),
            "{namespace}/{name}: the record names its data keys now"
        );
    }
    // The staged credential stays suspended, the one without a sync client still says so.
    assert_eq!(
        ready_reason(&credential(&kube, "team-a", "staged")),
        "Suspended"
    );
    let blocked = credential(&kube, "team-a", "no-sync-client");
    assert_eq!(
        blocked["status"]["lastFailureReason"], "SyncClientNotFound",
        "{blocked}"
    );
    // The captured tokens were probed and are live.
    assert!(
        broker.count(Endpoint::ScimProbe) >= 1,
        "the stored tokens were verified"
    );
    let mut tokens: Vec<String> = before
        .iter()
        .flat_map(|s| {
            s["data"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| decoded(s, k))
                .collect::<Vec<_>>()
        })
        .filter(|v| v.len() > 30)
        .collect();
    tokens.push(broker.password().to_owned());
    for token in &tokens {
        assert!(!output.contains(token.as_str()), "a credential in the log");
    }
}
