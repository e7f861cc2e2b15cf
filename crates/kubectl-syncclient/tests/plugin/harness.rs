//! The world each test runs in: the Kubernetes API simulator on loopback with the operator's
//! CRDs, a kubeconfig with two contexts, and the built plugin binary. The tests play the
//! operator themselves: they write statuses through the simulator, as the operator would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use sync_client_kube_sim::{KubeSim, PatchKind};

pub const API_VERSION: &str = "syncclient.io/v1alpha1";
pub const CREDENTIALS: &str = "syncclientcredentials";
pub const DIRECTORY: &str = "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f";
pub const ROTATE_REQUEST: &str = "syncclient.io/rotate-request";
pub const PREFLIGHT_REQUEST: &str = "syncclient.io/preflight-request";

/// Longest a plugin run may take before the test fails (every run is bounded).
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Longest the role-played operator waits for a request.
pub const SERVE_LIMIT: Duration = Duration::from_secs(30);

pub struct World {
    pub sim: Arc<KubeSim>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// One finished run of the plugin.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0 and returns standard output.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        &self.stdout
    }

    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}: {self:#?}"
        );
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-syncclient"))
}

/// `2026-03-10T12:00:00Z`-style time `offset` from now.
pub fn time_from_now(offset: TimeDelta) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A condition in the operator's shape.
pub fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": time_from_now(TimeDelta::hours(-1))})
}

impl World {
    /// The simulator with the CRDs of `<repo>/crds`, namespaces `team-a` and `team-b`, and a
    /// kubeconfig with contexts `sim` (namespace `default`, current) and `team-b`.
    pub async fn start() -> World {
        let world = Self::without_crds().await;
        let mut crds: Vec<PathBuf> = std::fs::read_dir(workspace().join("crds"))
            .expect("crds/")
            .map(|e| e.expect("entry").path())
            .collect();
        crds.sort();
        let names: Vec<String> = crds
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "clusterentraconnections.syncclient.io.yaml",
                "clusteridentitybrokers.syncclient.io.yaml",
                "entraconnections.syncclient.io.yaml",
                "identitybrokers.syncclient.io.yaml",
                "syncclientcredentials.syncclient.io.yaml",
            ],
            "the operator's CRDs"
        );
        for crd in crds {
            world
                .sim
                .apply_yaml(&std::fs::read_to_string(&crd).expect("crd file"))
                .expect("CRD accepted by the simulator");
        }
        for namespace in ["team-a", "team-b"] {
            world
                .sim
                .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
                .expect("namespace");
        }
        world
    }

    /// The simulator as a cluster without the operator installed.
    pub async fn without_crds() -> World {
        let sim = KubeSim::start().await.expect("kube simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {url}\n\
             users:\n- name: sim\n  user:\n    token: sim-token\n\
             contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\n    namespace: default\n\
             - name: team-b\n  context:\n    cluster: sim\n    user: sim\n    namespace: team-b\n\
             current-context: sim\npreferences: {{}}\n",
            url = sim.url()
        );
        std::fs::write(&kubeconfig, yaml).expect("kubeconfig");
        World {
            sim: Arc::new(sim),
            dir,
            kubeconfig,
        }
    }

    /// An IdentityBroker, with a Ready condition when `ready` is `Some((status, reason))`.
    pub fn broker(&self, namespace: &str, name: &str, ready: Option<(&str, &str)>) {
        let mut broker = json!({
            "apiVersion": API_VERSION, "kind": "IdentityBroker",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"url": "https://vcenter.example.com",
                     "auth": {"vcenter": {"credentialsSecretRef": {"name": "vcenter-login"}}}},
        });
        if let Some((status, reason)) = ready {
            broker["status"] = json!({"conditions": [condition("Ready", status, reason, "")]});
        }
        self.sim
            .apply_yaml(&broker.to_string())
            .expect("broker accepted");
    }

    /// A SyncClientCredential naming IdentityBroker `vcenter`; `spec` is merged into the spec,
    /// `status` written through the status subresource.
    pub fn credential(&self, namespace: &str, name: &str, spec: &Value, status: Option<Value>) {
        let mut full_spec = json!({"brokerRef": {"kind": "IdentityBroker", "name": "vcenter"},
                                   "directoryId": DIRECTORY});
        for (key, value) in spec.as_object().expect("spec object") {
            full_spec[key] = value.clone();
        }
        let mut credential = json!({
            "apiVersion": API_VERSION, "kind": "SyncClientCredential",
            "metadata": {"name": name, "namespace": namespace},
            "spec": full_spec,
        });
        if let Some(status) = status {
            credential["status"] = status;
        }
        self.sim
            .apply_yaml(&credential.to_string())
            .expect("credential accepted");
    }

    pub fn get_credential(&self, namespace: &str, name: &str) -> Value {
        self.sim
            .get(API_VERSION, CREDENTIALS, Some(namespace), name)
            .expect("credential exists")
    }

    /// Runs the plugin with `--kubeconfig`, no terminal, and a home without other kubeconfigs.
    pub async fn run(&self, args: &[&str]) -> Run {
        let mut full = vec![
            "--kubeconfig",
            self.kubeconfig.to_str().expect("utf-8 path"),
        ];
        full.extend_from_slice(args);
        self.run_raw(&plugin_binary(), &full, &[]).await
    }

    /// Runs `program` with exactly `args` and extra environment variables; standard input is
    /// empty (not a terminal).
    pub async fn run_raw(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env_remove("KUBECONFIG")
            // Not "in a cluster", whatever machine runs the tests.
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .env("HOME", self.dir.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        finish(command, args).await
    }
}

/// Waits for a command with a bound.
pub async fn finish(mut command: tokio::process::Command, args: &[&str]) -> Run {
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not finish within {RUN_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{args:?} could not run: {e}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The role-played operator: waits until `annotation` is set on the credential, then merges
/// `status(value)` into its status, as the operator does after serving the request. Returns the
/// value it served (None if the request never came).
pub fn serve(
    sim: &Arc<KubeSim>,
    namespace: &str,
    name: &str,
    annotation: &'static str,
    status: impl Fn(&str, &Value) -> Value + Send + 'static,
) -> tokio::task::JoinHandle<Option<String>> {
    serve_with(sim, namespace, name, annotation, false, status)
}

/// [`serve`]; with `after_watch`, the answer waits until the plugin has started a watch.
pub fn serve_with(
    sim: &Arc<KubeSim>,
    namespace: &str,
    name: &str,
    annotation: &'static str,
    after_watch: bool,
    status: impl Fn(&str, &Value) -> Value + Send + 'static,
) -> tokio::task::JoinHandle<Option<String>> {
    let sim = Arc::clone(sim);
    let namespace = namespace.to_owned();
    let name = name.to_owned();
    tokio::spawn(async move {
        let pointer = format!("/metadata/annotations/{}", annotation.replace('/', "~1"));
        let seen = sim
            .wait_for(
                API_VERSION,
                CREDENTIALS,
                Some(&namespace),
                &name,
                SERVE_LIMIT,
                |o| o.pointer(&pointer).is_some(),
            )
            .await
            .ok()?;
        let value = seen.pointer(&pointer)?.as_str()?.to_owned();
        if after_watch {
            // Answer only once the plugin watches, so the answer arrives as a watch event.
            let mut watching = false;
            for _ in 0..300 {
                watching = sim.requests().iter().any(|r| {
                    r.verb.as_deref() == Some("watch") && r.resource.as_deref() == Some(CREDENTIALS)
                });
                if watching {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(watching, "the plugin never watched the credential");
        }
        let current_status = seen.get("status").cloned().unwrap_or_else(|| json!({}));
        let patch = json!({"status": status(&value, &current_status)});
        sim.patch(
            API_VERSION,
            CREDENTIALS,
            Some(&namespace),
            &name,
            PatchKind::Merge,
            &patch,
            Some("status"),
        )
        .expect("status patch accepted");
        Some(value)
    })
}

/// A history entry.
pub fn history_entry(revision: i64, trigger: &str, outcome: &str, ago: TimeDelta) -> Value {
    let mut entry = json!({"time": time_from_now(-ago), "revision": revision,
                           "trigger": trigger, "outcome": outcome});
    if outcome == "Issued" {
        entry["fingerprint"] = json!(format!("sha256:{revision:012x}"));
    }
    entry
}

/// Prepends `entry` to the history in `status`.
pub fn with_entry(status: &Value, entry: Value) -> Value {
    let mut history = vec![entry];
    if let Some(old) = status.get("history").and_then(Value::as_array) {
        history.extend(old.iter().cloned());
    }
    Value::Array(history)
}

/// A settled credential's status: revision 3 issued `2h` ago on schedule, Ready.
pub fn settled_status() -> Value {
    json!({
        "conditions": [condition("Ready", "True", "CredentialCurrent", "the Secret holds revision 3")],
        "secretName": "okta-scim-token",
        "revision": 3,
        "expiresAt": time_from_now(TimeDelta::days(5) + TimeDelta::hours(3) + TimeDelta::seconds(30)),
        "renewalTime": time_from_now(TimeDelta::days(2) + TimeDelta::seconds(30)),
        "lastRotationTime": time_from_now(-(TimeDelta::hours(2) + TimeDelta::seconds(30))),
        "failedAttempts": 0,
        "history": [history_entry(3, "RenewalDue", "Issued", TimeDelta::hours(2) + TimeDelta::seconds(30))],
    })
}

/// Object ids of the service principals the delivery fixtures name.
pub const ENTRA_SP: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const BACKUP_SP: &str = "1a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// `spec.deliveries`: `entra` through EntraConnection `entra` (its job found by listing),
/// `backup` through ClusterEntraConnection `shared` naming job `scim.backup`.
pub fn deliveries_spec() -> Value {
    json!([
        {"name": "entra", "entraId": {"connectionRef": {"name": "entra"},
                                      "servicePrincipalId": ENTRA_SP}},
        {"name": "backup", "entraId": {
            "connectionRef": {"kind": "ClusterEntraConnection", "name": "shared"},
            "servicePrincipalId": BACKUP_SP, "jobId": "scim.backup"}},
    ])
}

/// [`settled_status`] with its deliveries: `entra` holds revision 3, validated, its job active
/// again after a quarantine lifted `20m` ago; `backup` still holds revision 2: Graph throttled
/// the save, retried in `12m`, its job quarantined by the dead token.
pub fn delivering_status() -> Value {
    let mut status = settled_status();
    // Ten minutes and more read in whole minutes: a slow run still prints the same.
    let twenty_minutes_ago = time_from_now(-(TimeDelta::minutes(20) + TimeDelta::seconds(30)));
    status["deliveries"] = json!([
        {"name": "entra", "jobId": "scim.entra", "deliveredRevision": 3,
         "deliveredTime": twenty_minutes_ago, "validation": "Passed", "jobState": "Active",
         "quarantineLiftedTime": twenty_minutes_ago, "failedAttempts": 0,
         "lastAttemptTime": twenty_minutes_ago},
        {"name": "backup", "jobId": "scim.backup", "deliveredRevision": 2,
         "deliveredTime": time_from_now(-(TimeDelta::days(3) + TimeDelta::minutes(30))),
         "validation": "Passed", "jobState": "Quarantine",
         "quarantineReason": "EncounteredQuarantineException",
         "lastFailureReason": "EntraThrottled",
         "lastFailureMessage": "Graph answered 429 Too Many Requests",
         "failedAttempts": 2,
         "lastAttemptTime": time_from_now(-(TimeDelta::minutes(15) + TimeDelta::seconds(30))),
         "nextAttemptTime": time_from_now(TimeDelta::minutes(12) + TimeDelta::seconds(30))},
    ]);
    status["conditions"]
        .as_array_mut()
        .expect("conditions")
        .push(condition(
            "Delivered",
            "False",
            "EntraThrottled",
            "delivering revision 3 to backup: Graph answered 429 Too Many Requests",
        ));
    status
}
