//! Acceptance: the stock `kubectl` works against the simulator with the project's real CRDs
//! and example resources.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};
use sync_client_kube_sim::{KubeSim, KubeSimConfig};

const KUBECTL_TIMEOUT: Duration = Duration::from_secs(20);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$KUBECTL`, else the workspace's `.tools/bin/kubectl`, else `kubectl` on `PATH`.
fn kubectl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let tools = workspace().join(".tools/bin/kubectl");
    if tools.is_file() {
        return tools;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!("kubectl not found: set KUBECTL, or run `make tools` to install it into .tools/bin, or put it on PATH")
    })
}

struct Kubectl {
    binary: PathBuf,
    home: tempfile::TempDir,
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn new(sim: &KubeSim) -> Self {
        let home = tempfile::tempdir().expect("temp dir");
        sim.write_kubeconfig(&home.path().join("kubeconfig"))
            .expect("kubeconfig written");
        Self {
            binary: kubectl_binary(),
            home,
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args(args)
            .env("KUBECONFIG", self.home.path().join("kubeconfig"))
            .env("HOME", self.home.path())
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .kill_on_drop(true);
        let output: Output = tokio::time::timeout(KUBECTL_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| {
                panic!("kubectl {args:?} did not finish within {KUBECTL_TIMEOUT:?}")
            })
            .unwrap_or_else(|e| panic!("running {} failed: {e}", self.binary.display()));
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args).await;
        assert!(
            run.success,
            "kubectl {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, text).expect("manifest written");
        path.display().to_string()
    }
}

fn path_of(relative: &str) -> String {
    let path = workspace().join(relative);
    assert!(path.exists(), "{} is missing", path.display());
    path.display().to_string()
}

#[tokio::test]
async fn kubectl_applies_crds_and_examples_gets_and_deletes() {
    let sim = KubeSim::start().await.expect("simulator starts");
    let kubectl = Kubectl::new(&sim);

    let applied = kubectl.ok(&["apply", "-f", &path_of("crds")]).await;
    for crd in [
        "syncclientcredentials",
        "identitybrokers",
        "clusteridentitybrokers",
    ] {
        assert!(
            applied.contains(&format!("{crd}.syncclient.io created")),
            "{applied}"
        );
    }
    let resources = kubectl
        .ok(&["api-resources", "--api-group=syncclient.io", "--no-headers"])
        .await;
    for plural in [
        "syncclientcredentials",
        "identitybrokers",
        "clusteridentitybrokers",
    ] {
        assert!(resources.contains(plural), "{resources}");
    }

    let broker = path_of("deploy/examples/identitybroker.yaml");
    let credential = path_of("deploy/examples/syncclientcredential.yaml");
    kubectl
        .ok(&["apply", "-f", &broker, "-f", &credential])
        .await;
    let again = kubectl
        .ok(&["apply", "-f", &broker, "-f", &credential])
        .await;
    assert!(
        again.contains("unchanged"),
        "re-applying is idempotent: {again}"
    );

    let credentials = sim.list("syncclient.io/v1alpha1", "syncclientcredentials", None);
    assert!(!credentials.is_empty(), "the example credential was stored");
    let name = credentials[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let namespace = credentials[0]["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        sim.list("syncclient.io/v1alpha1", "identitybrokers", None)
            .len(),
        1
    );

    let table = kubectl
        .ok(&["get", "syncclientcredentials", "-n", &namespace])
        .await;
    let header = table.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "EXPIRES", "RENEWAL", "AGE"] {
        assert!(header.contains(column), "column {column} missing: {table}");
    }
    assert!(table.contains(&name), "{table}");

    let mut with_status = credentials[0].clone();
    with_status["status"] = json!({
        "conditions": [{"type": "Ready", "status": "True", "reason": "Issued", "message": "",
                        "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        "expiresAt": "2099-01-01T00:00:00Z",
    });
    sim.replace_status(with_status).expect("status written");
    let ready = kubectl
        .ok(&[
            "get",
            "syncclientcredentials",
            &name,
            "-n",
            &namespace,
            "--no-headers",
        ])
        .await;
    assert!(
        ready.split_whitespace().any(|cell| cell == "True"),
        "{ready}"
    );

    let yaml = kubectl
        .ok(&[
            "get",
            "syncclientcredentials",
            &name,
            "-n",
            &namespace,
            "-o",
            "yaml",
        ])
        .await;
    assert!(
        yaml.contains("kind: SyncClientCredential") && yaml.contains("directoryId:"),
        "{yaml}"
    );
    let all: Value = serde_json::from_str(
        &kubectl
            .ok(&["get", "syncclientcredentials", "-A", "-o", "json"])
            .await,
    )
    .expect("kubectl -o json prints JSON");
    assert_eq!(
        all["items"].as_array().map(Vec::len),
        Some(credentials.len())
    );

    let unknown_field = kubectl.write(
        "unknown.yaml",
        &format!("apiVersion: syncclient.io/v1alpha1\nkind: SyncClientCredential\nmetadata: {{name: typo, namespace: {namespace}}}\nspec:\n  notAField: 1\n"),
    );
    let rejected = kubectl.run(&["apply", "-f", &unknown_field]).await;
    assert!(!rejected.success);
    assert!(
        rejected.stderr.contains("unknown field \"spec.notAField\""),
        "{}",
        rejected.stderr
    );

    let mut bad: Value = credentials[0]["spec"].clone();
    bad["credentialType"] = json!("Bogus");
    let bad_manifest = kubectl.write(
        "bad.json",
        &json!({"apiVersion": "syncclient.io/v1alpha1", "kind": "SyncClientCredential",
                "metadata": {"name": "bad", "namespace": namespace}, "spec": bad})
        .to_string(),
    );
    let invalid = kubectl.run(&["apply", "-f", &bad_manifest]).await;
    assert!(!invalid.success);
    assert!(
        invalid.stderr.contains("is invalid") && invalid.stderr.contains("spec.credentialType"),
        "{}",
        invalid.stderr
    );

    kubectl
        .ok(&[
            "create",
            "secret",
            "generic",
            "kubectl-made",
            "--from-literal=token=abc",
        ])
        .await;
    let secret = kubectl
        .ok(&["get", "secret", "kubectl-made", "-o", "yaml"])
        .await;
    assert!(
        secret.contains("token: YWJj") && secret.contains("type: Opaque"),
        "{secret}"
    );
    kubectl.ok(&["delete", "secret", "kubectl-made"]).await;
    assert!(
        sim.get("v1", "secrets", Some("default"), "kubectl-made")
            .is_none()
    );

    let deleted = kubectl.ok(&["delete", "-f", &credential]).await;
    assert!(deleted.contains("deleted"), "{deleted}");
    assert!(
        sim.list("syncclient.io/v1alpha1", "syncclientcredentials", None)
            .is_empty()
    );
    let empty = kubectl
        .run(&["get", "syncclientcredentials", "-n", &namespace])
        .await;
    assert!(
        empty.success && empty.stderr.contains("No resources found"),
        "{}",
        empty.stderr
    );

    let requests = sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.query_param("fieldValidation").as_deref() == Some("Strict")),
        "kubectl asked for server-side field validation"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.accept.as_deref().is_some_and(|a| a.contains("as=Table")))
    );
    sim.shutdown().await;
}

/// The cells of one row of `kubectl get` output, by column header. kubectl aligns every cell
/// with its header, and leaves a cell blank when the column's path is absent: cut each line at
/// the headers' offsets.
fn row_cells(table: &str, name: &str) -> std::collections::BTreeMap<String, String> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for word in header.split_whitespace() {
        let at = offset + header[offset..].find(word).unwrap();
        starts.push((at, word));
        offset = at + word.len();
    }
    let cell = |line: &str, column: usize| -> String {
        let from = starts[column].0.min(line.len());
        let to = starts
            .get(column + 1)
            .map_or(line.len(), |(next, _)| (*next).min(line.len()));
        line[from..to].trim().to_owned()
    };
    let name_column = starts
        .iter()
        .position(|(_, header)| *header == "NAME")
        .unwrap_or_else(|| panic!("no NAME column:\n{table}"));
    let row = lines
        .find(|line| cell(line, name_column) == name)
        .unwrap_or_else(|| panic!("no row {name}:\n{table}"));
    starts
        .iter()
        .enumerate()
        .map(|(column, (_, header))| ((*header).to_owned(), cell(row, column)))
        .collect()
}

/// `Expires` and `Renewal` are `string` columns holding the status' RFC 3339 times: a `date`
/// column prints an age, `<invalid>` for any time in the future (which both always are for a
/// healthy credential).
#[tokio::test]
async fn kubectl_get_scc_prints_expiry_and_renewal_as_rfc3339_times() {
    let sim = KubeSim::start().await.expect("simulator starts");
    let kubectl = Kubectl::new(&sim);
    kubectl.ok(&["apply", "-f", &path_of("crds")]).await;
    kubectl
        .ok(&[
            "apply",
            "-f",
            &path_of("deploy/examples/syncclientcredential.yaml"),
        ])
        .await;
    let stored = sim.list("syncclient.io/v1alpha1", "syncclientcredentials", None);
    let name = stored[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let namespace = stored[0]["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();

    // Before the first issue there are no times: kubectl leaves the cells blank.
    let fresh = kubectl.ok(&["get", "scc", &name, "-n", &namespace]).await;
    let cells = row_cells(&fresh, &name);
    assert_eq!(cells["EXPIRES"], "", "{fresh}");
    assert_eq!(cells["RENEWAL"], "", "{fresh}");
    assert!(
        cells["AGE"].ends_with('s') && !cells["AGE"].contains("invalid"),
        "{fresh}"
    );

    // RFC 3339 in UTC with fractional seconds, as the operator writes them; expiry an hour
    // ahead, renewal 40 minutes ahead: a `date` column would print <invalid> for both.
    let now = jiff::Timestamp::now();
    let expires = now
        .checked_add(jiff::SignedDuration::from_secs(3600))
        .unwrap()
        .to_string();
    let renewal = now
        .checked_add(jiff::SignedDuration::from_secs(2400))
        .unwrap()
        .to_string();
    let mut with_status = stored[0].clone();
    with_status["status"] = json!({
        "conditions": [{"type": "Ready", "status": "True", "reason": "CredentialCurrent",
                        "message": "", "lastTransitionTime": now.to_string()}],
        "expiresAt": expires,
        "renewalTime": renewal,
    });
    sim.replace_status(with_status).expect("status written");
    for args in [
        vec!["get", "scc", name.as_str(), "-n", namespace.as_str()],
        vec!["get", "scc", "-A"],
        vec![
            "get",
            "scc",
            name.as_str(),
            "-n",
            namespace.as_str(),
            "-o",
            "wide",
        ],
    ] {
        let table = kubectl.ok(&args).await;
        assert!(!table.contains("<invalid>"), "kubectl {args:?}:\n{table}");
        let cells = row_cells(&table, &name);
        assert_eq!(cells["EXPIRES"], expires, "kubectl {args:?}:\n{table}");
        assert_eq!(cells["RENEWAL"], renewal, "kubectl {args:?}:\n{table}");
        for column in ["EXPIRES", "RENEWAL"] {
            let printed: jiff::Timestamp = cells[column]
                .parse()
                .unwrap_or_else(|e| panic!("{column} is not RFC 3339 ({e}):\n{table}"));
            assert!(printed > now, "{column} lies ahead:\n{table}");
        }
        assert_eq!(cells["READY"], "True", "{table}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn kubectl_talks_to_the_tls_simulator_and_is_authorized_by_rbac() {
    let sim = KubeSim::start_with(KubeSimConfig {
        tls: true,
        rbac: true,
        ..KubeSimConfig::default()
    })
    .await
    .expect("simulator starts");
    let admin = Kubectl::new(&sim);
    let namespaces = admin.ok(&["get", "ns", "-o", "name"]).await;
    assert!(namespaces.contains("namespace/default"), "{namespaces}");
    admin.ok(&["create", "namespace", "ops"]).await;
    admin
        .ok(&["create", "serviceaccount", "op", "-n", "ops"])
        .await;
    assert_eq!(
        admin
            .ok(&["auth", "can-i", "delete", "secrets", "-n", "ops"])
            .await
            .trim(),
        "yes"
    );

    // The same kubeconfig with the ServiceAccount's token instead of the admin's.
    let operator = Kubectl::new(&sim);
    operator.write(
        "kubeconfig",
        &sim.kubeconfig_yaml_with_token(&sim.service_account_token("ops", "op")),
    );
    let denied = operator.run(&["get", "secrets", "-n", "ops"]).await;
    assert!(!denied.success);
    assert!(
        denied.stderr.contains(
            "secrets is forbidden: User \"system:serviceaccount:ops:op\" cannot list resource \"secrets\" in API group \"\" in the namespace \"ops\""
        ),
        "{}",
        denied.stderr
    );
    let can = operator
        .run(&["auth", "can-i", "list", "secrets", "-n", "ops"])
        .await;
    assert_eq!(can.stdout.trim(), "no", "{}", can.stderr);
    admin
        .ok(&[
            "create",
            "role",
            "op",
            "-n",
            "ops",
            "--verb=get,list",
            "--resource=secrets",
        ])
        .await;
    admin
        .ok(&[
            "create",
            "rolebinding",
            "op",
            "-n",
            "ops",
            "--role=op",
            "--serviceaccount=ops:op",
        ])
        .await;
    assert_eq!(
        operator
            .ok(&["auth", "can-i", "list", "secrets", "-n", "ops"])
            .await
            .trim(),
        "yes"
    );
    operator.ok(&["get", "secrets", "-n", "ops"]).await;
    let users: Vec<Option<String>> = sim
        .requests()
        .into_iter()
        .filter(|r| r.verb.as_deref() == Some("list") && r.resource.as_deref() == Some("secrets"))
        .map(|r| r.user)
        .collect();
    assert_eq!(
        users.last().cloned().flatten().as_deref(),
        Some("system:serviceaccount:ops:op")
    );
}

/// The reference kube-rs' `Resource::object_ref` builds for a stored object.
fn object_reference(object: &Value) -> k8s_openapi::api::core::v1::ObjectReference {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: text("/apiVersion"),
        kind: text("/kind"),
        name: text("/metadata/name"),
        namespace: text("/metadata/namespace"),
        uid: text("/metadata/uid"),
        resource_version: text("/metadata/resourceVersion"),
        field_path: None,
    }
}

/// The rows of the `Events:` table at the end of `kubectl describe`.
fn described_events(described: &str) -> Vec<String> {
    described
        .lines()
        .skip_while(|line| !line.starts_with("Events:"))
        .skip(3)
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect()
}

/// kube-apiserver keeps one store for both Event APIs: what kube-rs' `Recorder` writes through
/// `events.k8s.io/v1` (as the operator does) is what `kubectl describe` and `kubectl get
/// events` read through core `v1`, found by the field selectors `kubectl describe` sends.
#[tokio::test]
async fn kubectl_describe_and_get_events_show_what_a_kube_rs_recorder_wrote() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let sim = KubeSim::start().await.expect("simulator starts");
    let kubectl = Kubectl::new(&sim);
    kubectl.ok(&["apply", "-f", &path_of("crds")]).await;
    let example = path_of("deploy/examples/syncclientcredential.yaml");
    kubectl.ok(&["apply", "-f", &example]).await;
    let credential = sim.list("syncclient.io/v1alpha1", "syncclientcredentials", None)[0].clone();
    let name = credential["metadata"]["name"].as_str().unwrap().to_owned();
    let namespace = credential["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    // An object of another kind with the same name: its events are not the credential's.
    sim.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": name, "namespace": namespace}}))
        .unwrap();
    let config_map = sim
        .get("v1", "configmaps", Some(&namespace), &name)
        .unwrap();

    let recorder = Recorder::new(
        support::kube_client(&sim.kubeconfig_yaml()).await,
        Reporter {
            controller: "sync-client-operator".to_owned(),
            instance: Some("operator-pod-1".to_owned()),
        },
    );
    let unreachable = Event {
        type_: EventType::Warning,
        reason: "BrokerUnreachable".to_owned(),
        note: Some("the broker did not answer within 10s".to_owned()),
        action: "Issue".to_owned(),
        secondary: None,
    };
    let reference = object_reference(&credential);
    recorder.publish(&unreachable, &reference).await.unwrap();
    recorder
        .publish(
            &Event {
                type_: EventType::Normal,
                reason: "Other".to_owned(),
                note: Some("about the ConfigMap".to_owned()),
                action: "Noop".to_owned(),
                secondary: None,
            },
            &object_reference(&config_map),
        )
        .await
        .unwrap();

    let described = kubectl
        .ok(&["describe", "syncclientcredential", &name, "-n", &namespace])
        .await;
    let rows = described_events(&described);
    assert_eq!(rows.len(), 1, "{described}");
    let row: Vec<&str> = rows[0].splitn(4, ' ').collect();
    assert_eq!(row[..2], ["Warning", "BrokerUnreachable"], "{described}");
    assert!(
        row[3].ends_with("sync-client-operator the broker did not answer within 10s"),
        "{described}"
    );
    let describe = sim
        .requests()
        .into_iter()
        .rfind(|r| r.resource.as_deref() == Some("events"))
        .unwrap();
    assert_eq!(
        describe.path,
        format!("/api/v1/namespaces/{namespace}/events")
    );
    let selector = describe.query_param("fieldSelector").unwrap();
    for term in [
        format!("involvedObject.name={name}"),
        format!("involvedObject.namespace={namespace}"),
        "involvedObject.kind=SyncClientCredential".to_owned(),
        format!("involvedObject.uid={}", reference.uid.as_deref().unwrap()),
    ] {
        assert!(
            selector.split(',').any(|t| t == term),
            "{selector} lacks {term}"
        );
    }

    // A repeat is a series: the recorder patches the event through events.k8s.io/v1, and
    // kubectl reads the count from the core form.
    recorder.publish(&unreachable, &reference).await.unwrap();
    let described = kubectl
        .ok(&["describe", "scc", &name, "-n", &namespace])
        .await;
    let rows = described_events(&described);
    assert_eq!(rows.len(), 1, "{described}");
    assert!(rows[0].contains("(x2 over "), "{described}");

    let table = kubectl.ok(&["get", "events", "-n", &namespace]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{table}"
    );
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    let row = rows
        .iter()
        .find(|row| row.contains("BrokerUnreachable"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains(&format!(
            "Warning   BrokerUnreachable   syncclientcredential/{name}   the broker did not answer within 10s"
        )),
        "{table}"
    );
    let wide = kubectl
        .ok(&[
            "get",
            "events",
            "-n",
            &namespace,
            "-o",
            "wide",
            "--field-selector",
            "reason=BrokerUnreachable",
        ])
        .await;
    assert!(
        wide.contains("sync-client-operator, operator-pod-1"),
        "{wide}"
    );
    assert_eq!(wide.lines().count(), 2, "one event: {wide}");
    sim.shutdown().await;
}
