//! End-to-end harness: the real `sync-client-operator run` binary against the project's
//! Kubernetes API simulator (or a real cluster, see below) and the stateful broker simulator, all
//! on loopback.
//!
//! Test-side reads and writes go through a real `kube::Client`, so the same tests run against a
//! real cluster: set `E2E_KUBECONFIG=/path/to/kubeconfig` and each test works in its own fresh
//! namespace there (the operator binary and the broker simulator still run on this machine; the
//! CRDs must be installed). Request accounting of the Kubernetes side is only asserted against
//! the simulator.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use serde_json::json;
use sync_client_broker::{BrokerAuth, BrokerClient, BrokerConfig, SecretString, TlsConfig};
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, SyncClients};
use sync_client_kube_sim::KubeSim;
use sync_client_operator::api::{IdentityBroker, SyncClientCredential};

/// User agent of the harness's Kubernetes client.
pub const TEST_CLIENT_AGENT: &str = "sync-client-e2e-harness";
pub const DIRECTORY: &str = "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f";
pub const BROKER_NAME: &str = "vcenter";
pub const VCENTER_PASSWORD: &str = "vc-password-Zq8!e2e";

/// How long a test waits for one expected state before failing.
pub const WAIT: Duration = Duration::from_secs(30);

static NEXT_NAMESPACE: AtomicU32 = AtomicU32::new(0);

/// One test's world.
pub struct Env {
    pub kube: Option<KubeSim>,
    pub broker: BrokerSim,
    pub client: Client,
    pub namespace: String,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Drop for Env {
    /// What the operator wrote for people into the simulator holds no Rust `Debug` text (unless
    /// the test already failed).
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Some(kube) = &self.kube {
            for (what, text) in words_for_people(kube) {
                crate::debug_text::assert_no_debug_text(&what, &text);
            }
        }
    }
}

/// Every text the operator wrote for people: event notes, and the messages of the conditions
/// and failures in the status of credentials and brokers, each with where it was found.
pub fn words_for_people(kube: &KubeSim) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let name = |object: &serde_json::Value| {
        format!(
            "{} {}/{}",
            object["kind"].as_str().unwrap_or_default(),
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        )
    };
    for event in kube.list("events.k8s.io/v1", "events", None) {
        if let Some(note) = event["note"].as_str() {
            words.push((format!("the note of {}", name(&event)), note.to_owned()));
        }
    }
    let plurals = [
        "syncclientcredentials",
        "identitybrokers",
        "clusteridentitybrokers",
    ];
    for plural in plurals {
        for object in kube.list("syncclient.io/v1alpha1", plural, None) {
            let status = &object["status"];
            for condition in status["conditions"].as_array().into_iter().flatten() {
                if let Some(message) = condition["message"].as_str() {
                    let what = format!("condition {} of {}", condition["type"], name(&object));
                    words.push((what, message.to_owned()));
                }
            }
            for field in ["lastFailureMessage", "lastVerifyResult"] {
                if let Some(text) = status[field].as_str() {
                    words.push((format!("{field} of {}", name(&object)), text.to_owned()));
                }
            }
        }
    }
    words
}

impl Env {
    /// Starts the simulators (or connects to `E2E_KUBECONFIG`), installs the CRDs, and creates an
    /// IdentityBroker pointing at the broker simulator over HTTPS with its CA.
    pub async fn start() -> Env {
        Self::start_with(BrokerSimConfig {
            ttl_unit: Duration::from_secs(1),
            password: VCENTER_PASSWORD.into(),
            ..BrokerSimConfig::default()
        })
        .await
    }

    pub async fn start_with(broker_config: BrokerSimConfig) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let broker = BrokerSim::start(broker_config)
            .await
            .expect("broker simulator");
        broker.add_directory(
            DIRECTORY,
            SyncClients::One {
                generate_token: true,
                token_ttl: 30,
            },
        );
        let (kube, kubeconfig, namespace) = if let Some(path) = std::env::var_os("E2E_KUBECONFIG") {
            let n = NEXT_NAMESPACE.fetch_add(1, Ordering::SeqCst);
            let ns = format!("scc-e2e-{}-{n}", std::process::id());
            (None, PathBuf::from(path), ns)
        } else {
            {
                let sim = KubeSim::start().await.expect("kube simulator");
                for crd in crd_files() {
                    sim.apply_yaml(&std::fs::read_to_string(&crd).expect("crd file"))
                        .expect("CRD accepted by the simulator");
                }
                let path = dir.path().join("kubeconfig.yaml");
                sim.write_kubeconfig(&path).expect("kubeconfig");
                (Some(sim), path, "default".to_owned())
            }
        };
        let client = client_for(&kubeconfig).await;
        let env = Env {
            kube,
            broker,
            client,
            namespace,
            dir,
            kubeconfig,
        };
        if env.kube.is_none() {
            let namespaces: Api<Namespace> = Api::all(env.client.clone());
            namespaces
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": env.namespace}})).unwrap(),
                )
                .await
                .expect("test namespace");
        }
        env.create_broker(BROKER_NAME, json!({})).await;
        env
    }

    /// Creates the vCenter credentials Secret and an IdentityBroker; `extra` is merged into spec.
    pub async fn create_broker(&self, name: &str, extra: serde_json::Value) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let secret_name = format!("{name}-login");
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": secret_name},
            "stringData": {"username": self.broker.username(), "password": VCENTER_PASSWORD},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("login secret");
        let mut spec = json!({
            "url": self.broker.url(),
            "tenant": "CUSTOMER",
            "tls": {"caBundle": self.broker.ca_pem().expect("the broker simulator serves TLS")},
            "auth": {"vcenter": {"credentialsSecretRef": {"name": secret_name}}},
            "limits": {"requestTimeout": "2s"},
        });
        merge(&mut spec, &extra);
        let broker: IdentityBroker = serde_json::from_value(json!({
            "apiVersion": "syncclient.io/v1alpha1", "kind": "IdentityBroker",
            "metadata": {"name": name}, "spec": spec,
        }))
        .expect("broker object");
        self.brokers()
            .create(&PostParams::default(), &broker)
            .await
            .expect("create broker");
    }

    pub fn credentials(&self) -> Api<SyncClientCredential> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn brokers(&self) -> Api<IdentityBroker> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Creates a credential; `extra` is merged into the default spec.
    pub async fn create_credential(
        &self,
        name: &str,
        extra: serde_json::Value,
    ) -> SyncClientCredential {
        let mut spec = json!({
            "brokerRef": {"kind": "IdentityBroker", "name": BROKER_NAME},
            "directoryId": DIRECTORY,
            "credentialType": "AccessToken",
            "tokenTTL": "30m",
        });
        merge(&mut spec, &extra);
        let cr: SyncClientCredential = serde_json::from_value(json!({
            "apiVersion": "syncclient.io/v1alpha1", "kind": "SyncClientCredential",
            "metadata": {"name": name}, "spec": spec,
        }))
        .expect("credential object");
        self.credentials()
            .create(&PostParams::default(), &cr)
            .await
            .expect("create credential")
    }

    pub async fn annotate(&self, name: &str, key: &str, value: &str) {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        self.credentials()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("annotate");
    }

    pub async fn delete_credential(&self, name: &str) {
        self.credentials()
            .delete(name, &DeleteParams::background())
            .await
            .expect("delete credential");
    }

    /// Polls `check` every 100 ms until it returns `Some`, failing after `timeout`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, timeout: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn secret(&self, name: &str) -> Option<Secret> {
        self.secrets().get_opt(name).await.expect("get secret")
    }

    pub async fn credential(&self, name: &str) -> SyncClientCredential {
        self.credentials().get(name).await.expect("get credential")
    }

    /// Waits until the credential's Secret holds a revision at least `revision`; returns it.
    pub async fn wait_for_revision(&self, name: &str, revision: i64) -> Secret {
        self.wait_for_revision_within(name, revision, WAIT).await
    }

    /// [`Env::wait_for_revision`] with another bound.
    pub async fn wait_for_revision_within(
        &self,
        name: &str,
        revision: i64,
        timeout: Duration,
    ) -> Secret {
        self.eventually(
            &format!("Secret {name} at revision {revision}"),
            timeout,
            || async {
                let secret = self.secret(name).await?;
                let current: i64 = secret
                    .annotations()
                    .get("syncclient.io/revision")?
                    .parse()
                    .ok()?;
                (current >= revision).then_some(secret)
            },
        )
        .await
    }

    /// Waits until the credential's Ready condition has `reason`.
    pub async fn wait_for_reason(&self, name: &str, reason: &str) -> SyncClientCredential {
        self.eventually(&format!("{name} Ready reason {reason}"), WAIT, || async {
            let cr = self.credentials().get_opt(name).await.ok()??;
            let ready = cr
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")?
                .clone();
            (ready.reason == reason).then_some(cr)
        })
        .await
    }

    /// Waits until the credential's stored token has been checked once: the first token through
    /// a broker is probed about 2 s after its issue (to learn whether the broker's probe can be
    /// believed), and tests that count calls let that happen first.
    pub async fn wait_for_first_probe(&self, name: &str) {
        self.eventually(&format!("{name}'s token verified"), WAIT, || async {
            self.credential(name)
                .await
                .status?
                .last_verify_time
                .map(|_| ())
        })
        .await;
    }

    /// Starts the operator binary against this world.
    pub fn operator(&self, name: &str, extra_args: &[&str]) -> Operator {
        Operator::spawn(self, name, extra_args)
    }
}

/// The operator's requests in the simulator's log: everything but the harness's own.
pub fn operator_requests(kube: &KubeSim) -> Vec<sync_client_kube_sim::RecordedRequest> {
    kube.requests()
        .into_iter()
        .filter(|r| r.user_agent.as_deref() != Some(TEST_CLIENT_AGENT))
        .collect()
}

/// The operator's calls other than watches, as `verb resource`, with ` (dry run)` for a dry run.
pub fn operator_calls(kube: &KubeSim) -> Vec<String> {
    operator_requests(kube)
        .into_iter()
        .filter(|r| r.verb.as_deref() != Some("watch"))
        .map(|r| {
            let dry_run = if r.query.split('&').any(|q| q.starts_with("dryRun=")) {
                " (dry run)"
            } else {
                ""
            };
            format!(
                "{} {}{dry_run}",
                r.verb.unwrap_or_default(),
                r.resource.unwrap_or(r.path)
            )
        })
        .collect()
}

/// The token held by a Secret.
pub fn secret_value(secret: &Secret, key: &str) -> String {
    let bytes = &secret.data.as_ref().expect("secret data")[key];
    String::from_utf8(bytes.0.clone()).expect("utf-8")
}

/// A running operator process; killed on drop. Its output goes to a file for scanning.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    pub http_port: u16,
}

impl Operator {
    fn spawn(env: &Env, name: &str, extra_args: &[&str]) -> Operator {
        let log = env.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let http_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sync-client-operator"));
        command
            .arg("run")
            .arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .args([
                "--log-format",
                "json",
                "--http-addr",
                &format!("127.0.0.1:{http_port}"),
            ])
            .args(["--instance", name])
            // Tokens here live seconds: allow an issue every second instead of every 30.
            .args(["--min-issue-interval", "1s"])
            .args(extra_args)
            .env(
                "RUST_LOG",
                "debug,kube=info,hyper=info,tower=info,rustls=info,h2=info,reqwest=info",
            )
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if env.kube.is_none() {
            command.args(["--namespace", &env.namespace]);
        }
        let child = command.spawn().expect("spawn operator");
        Operator {
            child: Some(child),
            log,
            http_port,
        }
    }

    /// Kills the process at once (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (bounded) for a graceful exit; returns the exit success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The process id, until it is killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GETs a path of the operator's HTTP server.
    pub async fn http_get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.http_port))
            .await
            .ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
            .await
            .ok()?
            .ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    }
}

impl Drop for Operator {
    /// Kills the process, then checks its whole log as a log pipeline would read it (unless the
    /// test already failed).
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            crate::logs::check(&self.log.display().to_string(), &self.output());
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub fn crd_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("crds/")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

async fn client_for(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
    // Marks the harness's own requests, so accounting can tell them from the operator's.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(TEST_CLIENT_AGENT),
    ));
    Client::try_from(config).expect("client")
}

/// Merges `extra` into `base` (objects recursively; null removes).
pub fn merge(base: &mut serde_json::Value, extra: &serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (b, e) => *b = e.clone(),
    }
}

/// Asks the broker simulator's SCIM endpoint, over HTTPS, whether a token is live.
pub async fn token_is_live(env: &Env, token: &str) -> bool {
    let mut config = BrokerConfig::new(
        env.broker.url(),
        "CUSTOMER",
        BrokerAuth::BearerToken(SecretString::from("unused")),
    );
    config.tls = TlsConfig {
        ca_bundle_pem: env.broker.ca_pem(),
        insecure_skip_verify: false,
    };
    let client = BrokerClient::new(config).expect("probe client");
    client
        .probe_token(&SecretString::from(token))
        .await
        .expect("probe answered")
}

/// The operator's output holds none of the credentials it handled: neither as written nor, in
/// a JSON log, once its strings are decoded.
pub fn assert_no_secrets(output: &str, secrets: &[String]) {
    assert!(!output.is_empty(), "the operator printed nothing");
    let decoded = crate::logs::decoded(output);
    for text in [output, decoded.as_str()] {
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(
                !text.contains(secret.as_str()),
                "a credential appeared in the operator's output"
            );
        }
        assert!(
            !text.contains(VCENTER_PASSWORD),
            "the vCenter password appeared in the operator's output"
        );
    }
}

pub async fn event_reasons(env: &Env, name: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.namespace);
    events
        .list(&ListParams::default())
        .await
        .map(|list| {
            list.items
                .into_iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .filter_map(|e| e.reason)
                .collect()
        })
        .unwrap_or_default()
}

pub async fn wait_for_event(env: &Env, name: &str, reason: &str) {
    env.eventually(&format!("event {reason} on {name}"), WAIT, || async {
        event_reasons(env, name)
            .await
            .iter()
            .any(|r| r == reason)
            .then_some(())
    })
    .await;
}

impl Operator {
    /// Wraps an operator process a test started itself (for example from a composed container
    /// command line); `log` holds its output, `http_port` its HTTP server's port on 127.0.0.1.
    pub fn adopt(child: Child, log: PathBuf, http_port: u16) -> Operator {
        Operator {
            child: Some(child),
            log,
            http_port,
        }
    }
}

/// GETs a path of an HTTP server on 127.0.0.1 (an operator in a container, say); `None` when it
/// does not answer.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}
