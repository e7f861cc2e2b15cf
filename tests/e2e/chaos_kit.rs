//! Tools of the chaos and fault tests: a seeded random source (a failure reproduces with the
//! printed seed), operator processes that each have their own Kubernetes identity (so the API
//! simulator's request log tells their calls apart), POSIX signals, a guard that watches every
//! Secret the operator owns for deletion or emptying, and readers of the attempt history.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, watcher};
use sync_client_operator::api::SyncClientCredential;

use crate::harness::{Env, Operator};

/// Label every Secret the operator writes carries.
pub const OWNED_SELECTOR: &str = "app.kubernetes.io/managed-by=sync-client-operator";
pub const REVISION: &str = "syncclient.io/revision";

/// xorshift64: a tiny deterministic random source. The seed comes from `CHAOS_SEED` when set
/// (to replay a failure), else from the caller's fixed default.
pub struct XorShift(u64);

impl XorShift {
    pub fn from_env_or(default_seed: u64) -> (Self, u64) {
        let seed = std::env::var("CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default_seed);
        (Self(seed.max(1)), seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[lo, hi]` milliseconds.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// A Kubernetes identity for operator processes: a ServiceAccount of the simulator, its token,
/// and a kubeconfig using it. The simulator records the user of every request it authenticated,
/// so requests of processes started with different identities can be told apart.
pub struct Identity {
    pub user: String,
    kubeconfig: PathBuf,
}

impl Identity {
    /// Needs the simulator (requests of a real cluster are not recorded).
    pub fn new(env: &Env, account: &str) -> Identity {
        let kube = env
            .kube
            .as_ref()
            .expect("identities need the API simulator");
        kube.apply_yaml(&format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {account}, namespace: default}}\n"
        ))
        .expect("service account");
        let token = kube.service_account_token("default", account);
        let yaml = kube.kubeconfig_yaml();
        // The placeholder of a plain simulator, or the admin token of one with RBAC.
        let with_token = yaml
            .replace("token: sim-token", &format!("token: {token}"))
            .replace(&kube.admin_token(), &token);
        assert_ne!(
            yaml, with_token,
            "the simulator's kubeconfig has a placeholder token"
        );
        let kubeconfig = env.dir.path().join(format!("{account}.kubeconfig"));
        std::fs::write(&kubeconfig, with_token).expect("kubeconfig");
        Identity {
            user: format!("system:serviceaccount:default:{account}"),
            kubeconfig,
        }
    }

    /// Starts the operator binary as the harness does, but with this identity; `instance` names
    /// the process (`--instance`, lease identity, log file).
    pub fn spawn(&self, env: &Env, instance: &str, extra_args: &[&str]) -> Process {
        let log = env.dir.path().join(format!("{instance}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let http_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_sync-client-operator"))
            .arg("run")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--log-format", "json"])
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(["--instance", instance])
            .args(["--min-issue-interval", "1s"])
            .args(extra_args)
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
        let pid = child.id();
        Process {
            operator: Operator::adopt(child, log, http_port),
            pid,
        }
    }
}

/// A running operator process with its pid (killed on drop, stopped or not).
pub struct Process {
    pub operator: Operator,
    pub pid: u32,
}

impl Process {
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid.to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -{signal} {}", self.pid);
    }

    pub fn output(&self) -> String {
        self.operator.output()
    }
}

/// Waits until exactly one of two replicas logged that it acquired the lease; returns which.
pub async fn wait_for_leader(env: &Env, replicas: &[Process; 2]) -> usize {
    env.eventually("one replica to lead", crate::harness::WAIT, || async {
        match (
            crate::leader::acquired(&replicas[0].output()),
            crate::leader::acquired(&replicas[1].output()),
        ) {
            (true, false) => Some(0),
            (false, true) => Some(1),
            _ => None,
        }
    })
    .await
}

/// Per Secret name: revision to its `issued-at` and `expires-at` annotations.
type Revisions = BTreeMap<String, BTreeMap<i64, (String, String)>>;

/// Watches every Secret the operator owns for the whole test: a deletion, a Secret that
/// vanished between two lists, or one with no data or an empty value is a violation. Deletion
/// requests are also looked up in the API simulator's request log, which misses nothing.
pub struct SecretGuard {
    violations: Arc<Mutex<Vec<String>>>,
    /// Every revision seen per Secret, with its `issued-at` and `expires-at` annotations.
    revisions: Arc<Mutex<Revisions>>,
    task: tokio::task::JoinHandle<()>,
}

impl SecretGuard {
    pub fn start(env: &Env) -> SecretGuard {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let revisions: Arc<Mutex<Revisions>> = Arc::new(Mutex::new(BTreeMap::new()));
        let config = watcher::Config::default().labels(OWNED_SELECTOR);
        let mut stream = watcher(env.secrets(), config).default_backoff().boxed();
        let (v, r) = (violations.clone(), revisions.clone());
        let task = tokio::spawn(async move {
            let mut known = BTreeSet::new();
            let mut listed = BTreeSet::new();
            while let Some(event) = stream.next().await {
                let seen = |secret: &Secret, known: &mut BTreeSet<String>| {
                    let name = secret.name_any();
                    if let Some(problem) = emptied(secret) {
                        v.lock().unwrap().push(format!("Secret {name} {problem}"));
                    }
                    let annotations = secret.annotations();
                    if let Some(rev) = annotations.get(REVISION).and_then(|r| r.parse().ok()) {
                        let text = |key: &str| annotations.get(key).cloned().unwrap_or_default();
                        r.lock().unwrap().entry(name.clone()).or_default().insert(
                            rev,
                            (
                                text("syncclient.io/issued-at"),
                                text("syncclient.io/expires-at"),
                            ),
                        );
                    }
                    known.insert(name);
                };
                match event {
                    Ok(watcher::Event::Apply(secret)) => seen(&secret, &mut known),
                    Ok(watcher::Event::InitApply(secret)) => {
                        listed.insert(secret.name_any());
                        seen(&secret, &mut known);
                    }
                    Ok(watcher::Event::Delete(secret)) => v
                        .lock()
                        .unwrap()
                        .push(format!("Secret {} was deleted", secret.name_any())),
                    Ok(watcher::Event::Init) => listed.clear(),
                    Ok(watcher::Event::InitDone) => {
                        for gone in known.difference(&listed) {
                            v.lock()
                                .unwrap()
                                .push(format!("Secret {gone} vanished between two lists"));
                        }
                        known.clone_from(&listed);
                    }
                    Err(_) => {} // retried by the backoff (the API server may be offline)
                }
            }
        });
        SecretGuard {
            violations,
            revisions,
            task,
        }
    }

    /// Every revision the guard saw of a Secret: revision, `issued-at`, `expires-at`.
    pub fn revisions(&self, name: &str) -> Vec<(i64, String, String)> {
        self.revisions
            .lock()
            .unwrap()
            .get(name)
            .map(|revs| {
                revs.iter()
                    .map(|(rev, (issued, expires))| (*rev, issued.clone(), expires.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts that no owned Secret was deleted or emptied; with the simulator, also that the
    /// operator sent no Secret deletion at all, and that each Secret seen still exists, full.
    pub async fn assert_intact(&self, env: &Env) {
        // Let the watch deliver what happened last.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let violations = self.violations.lock().unwrap().clone();
        assert!(
            violations.is_empty(),
            "owned Secrets damaged: {violations:?}"
        );
        if let Some(kube) = env.kube.as_ref() {
            let deletes: Vec<_> = crate::harness::operator_requests(kube)
                .into_iter()
                .filter(|r| {
                    r.resource.as_deref() == Some("secrets")
                        && matches!(r.verb.as_deref(), Some("delete" | "deletecollection"))
                })
                .collect();
            assert!(
                deletes.is_empty(),
                "the operator asked to delete Secrets: {deletes:?}"
            );
        }
        let names: Vec<String> = self.revisions.lock().unwrap().keys().cloned().collect();
        for name in names {
            let secret = env
                .secret(&name)
                .await
                .unwrap_or_else(|| panic!("Secret {name} is gone"));
            assert_eq!(emptied(&secret), None, "Secret {name}");
        }
    }
}

impl Drop for SecretGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why an owned Secret counts as emptied, if it does.
fn emptied(secret: &Secret) -> Option<String> {
    let data = secret.data.as_ref().filter(|d| !d.is_empty());
    let Some(data) = data else {
        return Some("has no data".to_owned());
    };
    data.iter()
        .find(|(_, v)| v.0.is_empty())
        .map(|(k, _)| format!("has an empty value under {k}"))
}

/// The attempts in status history, oldest first, as `Trigger: Outcome`, repeats of the same
/// attempt collapsed (how often a retry ran depends on timing; the sequence does not).
pub fn attempts(cr: &SyncClientCredential) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let history = cr
        .status
        .as_ref()
        .map(|s| s.history.clone())
        .unwrap_or_default();
    for record in history.iter().rev() {
        let line = format!("{}: {}", record.trigger, record.outcome);
        if out.last() != Some(&line) {
            out.push(line);
        }
    }
    out
}

/// The revision a Secret holds.
pub fn revision_of(secret: &Secret) -> i64 {
    secret
        .annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}
