//! Upgrading from release 0.1.0, the chart part: the stock `helm` (v4) installs the 0.1.0 chart
//! (`tests/fixtures/upgrade-0.1.0/sync-client-operator-0.1.0.tgz`) into the Kubernetes API
//! simulator and upgrades it to the working tree's chart; the plain-manifest path does the same
//! with `kubectl apply --server-side` (0.1.0's render, then `deploy/sync-client-operator.yaml`).
//! After each: the CRDs are the working tree's `crds/`, every object the new version renders
//! exists, and nothing 0.1.0 created is left behind unless the new version has it too
//! (compared by kind, namespace and name); helm's release records agree; `helm uninstall`
//! keeps the CRDs and removes the rest. The operator does not run here.
//!
//! Only the charts' default values are used, so the test holds across renamed values.
//!
//! The plain path applies without `--prune`: kubectl refuses it with `--server-side` ("--prune
//! is in alpha and doesn't currently work on objects created by server-side apply"), and the
//! ApplySet alternative needs the applyset from the first apply on, which 0.1.0's instructions
//! did not create. So a release that drops an object from `deploy/` fails this test until the
//! upgrade notes tell users what to delete.
//!
//! The tools live in `<repo>/.tools/bin`, installed by `scripts/install-tools.sh`. A missing
//! tool fails the test with that instruction: these tests never skip.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::core::GroupVersionKind;
use serde_json::Value;
use sync_client_kube_sim::KubeSim;

const RELEASE: &str = "sync-client-operator";
const NAMESPACE: &str = "sync-client-operator";
/// How long one `helm` or `kubectl` run may take before the test fails.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
const RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";

/// An object's identity: kind, namespace ("" when cluster-scoped), name.
type Id = (String, String, String);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/upgrade-0.1.0").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .expect("manifests are YAML")
        .into_iter()
        .filter(Value::is_object)
        .collect()
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The simulator, a kubeconfig for it, and a home for the tools' caches and settings.
struct Cluster {
    sim: KubeSim,
    home: tempfile::TempDir,
    client: kube::Client,
}

impl Cluster {
    async fn start() -> Self {
        let sim = KubeSim::start().await.expect("the simulator starts");
        let home = tempfile::tempdir().expect("a home for helm and kubectl");
        sim.write_kubeconfig(&home.path().join("kubeconfig"))
            .expect("kubeconfig written");
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        Self { sim, home, client }
    }

    /// Runs `.tools/bin/<tool> ARGS` against the simulator (and nothing else: its own
    /// kubeconfig, home and caches), bounded by [`TOOL_TIMEOUT`]; it must succeed.
    async fn run(&self, tool: &str, args: &[&str]) -> String {
        let binary = repo_root().join(".tools/bin").join(tool);
        assert!(
            binary.is_file(),
            "{} is missing: run scripts/install-tools.sh",
            binary.display()
        );
        let home = self.home.path().to_owned();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || run_bounded(&binary, &args, &home))
            .await
            .expect("the tool's task")
    }

    async fn helm(&self, args: &[&str]) -> String {
        self.run("helm", args).await
    }

    async fn kubectl(&self, args: &[&str]) -> String {
        self.run("kubectl", args).await
    }

    /// The plural of a kind and whether it is namespaced, through discovery as a client
    /// finds them.
    async fn resource(&self, api_version: &str, kind: &str) -> (String, bool) {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("{api_version} {kind} is not served: {e}"));
        (
            resource.plural,
            capabilities.scope == kube::discovery::Scope::Namespaced,
        )
    }

    /// The identity of a manifest as stored: a namespaced object without a namespace goes to
    /// the release's, as helm installs it.
    async fn id_of(&self, object: &Value) -> Id {
        let (kind, mut namespace, name) = id(object);
        let (_, namespaced) = self.resource(text(object, "/apiVersion"), &kind).await;
        if namespaced && namespace.is_empty() {
            NAMESPACE.clone_into(&mut namespace);
        }
        (kind, namespace, name)
    }

    async fn ids(&self, objects: &[Value]) -> BTreeSet<Id> {
        let mut ids = BTreeSet::new();
        for object in objects {
            ids.insert(self.id_of(object).await);
        }
        ids
    }

    /// The objects of these kinds stored in the simulator that `selected` picks, by identity.
    async fn stored(
        &self,
        kinds: &BTreeSet<(String, String)>,
        selected: impl Fn(&Value) -> bool,
    ) -> BTreeMap<Id, Value> {
        let mut found = BTreeMap::new();
        for (api_version, kind) in kinds {
            let (plural, _) = self.resource(api_version, kind).await;
            for object in self.sim.list(api_version, &plural, None) {
                if selected(&object) {
                    found.insert(id(&object), object);
                }
            }
        }
        found
    }

    /// The CRDs stored, by name.
    fn crds(&self) -> BTreeMap<String, Value> {
        self.sim
            .list("apiextensions.k8s.io/v1", "customresourcedefinitions", None)
            .into_iter()
            .map(|crd| (text(&crd, "/metadata/name").to_owned(), crd))
            .collect()
    }
}

/// Runs `binary ARGS` with its own home and kubeconfig; output is read on threads so a full
/// pipe never blocks the child; killed after [`TOOL_TIMEOUT`].
fn run_bounded(binary: &Path, args: &[String], home: &Path) -> String {
    let mut child = Command::new(binary)
        .args(args)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env("HOME", home)
        .env("KUBECACHEDIR", home.join("kube-cache"))
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let pipes = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ];
    let [stdout, stderr] = pipes.map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_string(&mut text).ok();
            }
            text
        })
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the tool") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} did not finish within {TOOL_TIMEOUT:?}",
                binary.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success(),
        "{} {args:?} failed with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        binary.display()
    );
    stdout
}

fn id(object: &Value) -> Id {
    (
        text(object, "/kind").to_owned(),
        text(object, "/metadata/namespace").to_owned(),
        text(object, "/metadata/name").to_owned(),
    )
}

/// (apiVersion, kind) of every object.
fn kinds(objects: &[Value]) -> BTreeSet<(String, String)> {
    objects
        .iter()
        .map(|o| {
            (
                text(o, "/apiVersion").to_owned(),
                text(o, "/kind").to_owned(),
            )
        })
        .collect()
}

/// The working tree's generated CRDs, by name.
fn working_tree_crds() -> BTreeMap<String, Value> {
    let mut crds = BTreeMap::new();
    for entry in std::fs::read_dir(repo_root().join("crds")).unwrap() {
        for crd in documents(&read(&entry.unwrap().path())) {
            crds.insert(text(&crd, "/metadata/name").to_owned(), crd);
        }
    }
    assert!(!crds.is_empty(), "crds/ holds the CRDs");
    crds
}

/// The value with every number as a float, so that numbers compare as JSON numbers do: `64.0`
/// is `64` (`crds/` writes some bounds as floats; the API server's `float64` fields come back
/// as `64`).
fn numbers_as_numbers(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or_else(|| value.clone(), Value::from),
        Value::Array(items) => items.iter().map(numbers_as_numbers).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), numbers_as_numbers(v)))
            .collect(),
        other => other.clone(),
    }
}

/// The stored CRDs are the working tree's: the same names and, each, the same spec.
fn assert_crds_are_the_working_trees(cluster: &Cluster) -> BTreeMap<String, Value> {
    let stored = cluster.crds();
    let expected = working_tree_crds();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the CRDs"
    );
    for (name, crd) in &expected {
        assert!(
            numbers_as_numbers(&stored[name]["spec"]) == numbers_as_numbers(&crd["spec"]),
            "CRD {name} is not the working tree's (crds/{name}.yaml): stored {}",
            stored[name]["spec"]
        );
    }
    stored
}

/// Objects a helm release of ours owns: helm annotates each with the release's name.
fn in_release(object: &Value) -> bool {
    text(
        object,
        &format!(
            "/metadata/annotations/{}",
            RELEASE_ANNOTATION.replace('/', "~1")
        ),
    ) == RELEASE
}

/// Objects `kubectl apply --server-side` wrote: its field manager applied them.
fn applied_by_kubectl(object: &Value) -> bool {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e["manager"] == "kubectl" && e["operation"] == "Apply")
        })
}

/// Whether `stored` holds everything `rendered` says (the server may add fields; numbers
/// compare as numbers).
fn contains(stored: &Value, rendered: &Value) -> bool {
    match (stored, rendered) {
        (Value::Object(stored), Value::Object(rendered)) => rendered
            .iter()
            .all(|(key, value)| stored.get(key).is_some_and(|s| contains(s, value))),
        (Value::Array(stored), Value::Array(rendered)) => {
            stored.len() == rendered.len()
                && stored.iter().zip(rendered).all(|(s, r)| contains(s, r))
        }
        (stored, rendered) => numbers_as_numbers(stored) == numbers_as_numbers(rendered),
    }
}

/// Every object of `rendered` exists as rendered, and the objects of these kinds that
/// `selected` picks are exactly the rendered ones: nothing else is left (0.1.0's included).
async fn assert_exactly(
    cluster: &Cluster,
    rendered: &[Value],
    old: &[Value],
    selected: impl Fn(&Value) -> bool,
    what: &str,
) {
    let mut all_kinds = kinds(rendered);
    all_kinds.extend(kinds(old));
    let stored = cluster.stored(&all_kinds, selected).await;
    let expected = cluster.ids(rendered).await;
    let missing: Vec<&Id> = expected
        .iter()
        .filter(|i| !stored.contains_key(*i))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: rendered but not stored: {missing:?}"
    );
    for object in rendered {
        let id = cluster.id_of(object).await;
        assert!(
            contains(&stored[&id], object),
            "{what}: {id:?} is not as rendered:\nrendered {object}\nstored {}",
            stored[&id]
        );
    }
    let left: Vec<&Id> = stored.keys().filter(|i| !expected.contains(*i)).collect();
    assert!(
        left.is_empty(),
        "{what}: stored but no longer rendered (orphaned): {left:?}"
    );
    let everything = cluster.stored(&kinds(old), |_| true).await;
    for gone in cluster.ids(old).await.difference(&expected) {
        let (kind, namespace, name) = gone;
        assert!(
            !everything.contains_key(gone),
            "{what}: 0.1.0's {kind} {namespace}/{name} is left behind"
        );
    }
}

/// The manifest helm recorded for a revision of the release.
async fn recorded_manifest(cluster: &Cluster, revision: u32) -> Vec<Value> {
    let revision = revision.to_string();
    documents(
        &cluster
            .helm(&[
                "get",
                "manifest",
                RELEASE,
                "--namespace",
                NAMESPACE,
                "--revision",
                &revision,
            ])
            .await,
    )
}

/// The working tree's chart rendered with its default values.
async fn working_tree_render(cluster: &Cluster) -> Vec<Value> {
    let chart = repo_root().join("charts/sync-client-operator");
    documents(
        &cluster
            .helm(&[
                "template",
                RELEASE,
                &chart.display().to_string(),
                "--namespace",
                NAMESPACE,
            ])
            .await,
    )
}

/// The release Secrets helm keeps, by name, with their `status` label.
fn release_records(cluster: &Cluster) -> BTreeMap<String, String> {
    cluster
        .sim
        .list("v1", "secrets", Some(NAMESPACE))
        .into_iter()
        .filter(|s| text(s, "/type") == "helm.sh/release.v1")
        .map(|s| {
            (
                text(&s, "/metadata/name").to_owned(),
                text(&s, "/metadata/labels/status").to_owned(),
            )
        })
        .collect()
}

/// How helm writes objects: `application/apply-patch+yaml` patches (server-side apply) or
/// three-way strategic and JSON merge patches (client-side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    ServerSide,
    ClientSide,
}

/// Whether the objects written since `from` (an index into the request log) were written as
/// `method` says: server-side apply patches, or none of them (creates and merge patches; a
/// three-way merge with nothing to change sends nothing).
fn assert_written_with(cluster: &Cluster, from: usize, method: Method) {
    let applies = cluster.sim.requests()[from..]
        .iter()
        .filter(|r| r.content_type.as_deref() == Some("application/apply-patch+yaml"))
        .count();
    match method {
        Method::ServerSide => assert!(applies > 0, "helm applied server-side"),
        Method::ClientSide => assert_eq!(applies, 0, "helm merged client-side"),
    }
}

/// Installs 0.1.0 writing objects by `method`, upgrades to the working tree's chart (helm
/// keeps the release's method), checks the result, and uninstalls.
async fn upgrade_with_helm(method: Method) {
    let cluster = Cluster::start().await;
    let old_chart = fixture("sync-client-operator-0.1.0.tgz")
        .display()
        .to_string();
    let chart = repo_root()
        .join("charts/sync-client-operator")
        .display()
        .to_string();

    let server_side = format!("--server-side={}", method == Method::ServerSide);
    cluster
        .helm(&[
            "install",
            RELEASE,
            &old_chart,
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            &server_side,
        ])
        .await;
    assert_written_with(&cluster, 0, method);
    let installed = recorded_manifest(&cluster, 1).await;
    let rendered_0_1_0 = documents(&read(&fixture("rendered.yaml")));
    assert_eq!(
        cluster.ids(&installed).await,
        cluster.ids(&rendered_0_1_0).await,
        "helm recorded 0.1.0's default render"
    );
    assert_exactly(&cluster, &installed, &[], in_release, "0.1.0 installed").await;

    let upgrade_from = cluster.sim.requests().len();
    cluster
        .helm(&["upgrade", RELEASE, &chart, "--namespace", NAMESPACE])
        .await;
    assert_written_with(&cluster, upgrade_from, method);
    let upgraded = recorded_manifest(&cluster, 2).await;
    assert_eq!(
        cluster.ids(&upgraded).await,
        cluster.ids(&working_tree_render(&cluster).await).await,
        "helm recorded the working tree's default render"
    );
    assert_exactly(&cluster, &upgraded, &installed, in_release, "upgraded").await;
    let crds = assert_crds_are_the_working_trees(&cluster);
    for (name, crd) in &crds {
        assert_eq!(
            text(crd, "/metadata/annotations/helm.sh~1resource-policy"),
            "keep",
            "CRD {name} is kept on uninstall (crds.keep)"
        );
    }
    assert_eq!(
        release_records(&cluster),
        BTreeMap::from([
            (
                format!("sh.helm.release.v1.{RELEASE}.v1"),
                "superseded".to_owned()
            ),
            (
                format!("sh.helm.release.v1.{RELEASE}.v2"),
                "deployed".to_owned()
            ),
        ])
    );
    let history = cluster
        .helm(&["history", RELEASE, "--namespace", NAMESPACE, "-o", "json"])
        .await;
    let history: Vec<Value> = serde_json::from_str(&history).unwrap();
    let statuses: Vec<(i64, &str)> = history
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [(1, "superseded"), (2, "deployed")]);

    cluster
        .helm(&["uninstall", RELEASE, "--namespace", NAMESPACE])
        .await;
    let kept = cluster.crds();
    assert_eq!(kept.len(), crds.len(), "uninstall keeps every CRD");
    for (name, crd) in &crds {
        assert_eq!(
            text(&kept[name], "/metadata/uid"),
            text(crd, "/metadata/uid"),
            "CRD {name} is the same object"
        );
    }
    let left = cluster.stored(&kinds(&upgraded), in_release).await;
    let not_crds: Vec<&Id> = left
        .keys()
        .filter(|(kind, _, _)| kind != "CustomResourceDefinition")
        .collect();
    assert!(not_crds.is_empty(), "uninstall leaves {not_crds:?}");
    assert!(
        release_records(&cluster).is_empty(),
        "the release records are gone"
    );
    let releases = cluster.helm(&["list", "--all-namespaces", "-q"]).await;
    assert_eq!(releases.trim(), "", "no release is left");
}

/// Helm 4 installs with server-side apply by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_upgrades_a_0_1_0_release_applied_server_side_and_uninstalls_it() {
    upgrade_with_helm(Method::ServerSide).await;
}

/// A release Helm 3 installed (three-way merge); helm 4 upgrades it the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_upgrades_a_0_1_0_release_merged_client_side_and_uninstalls_it() {
    upgrade_with_helm(Method::ClientSide).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_upgrades_the_0_1_0_manifests_to_the_working_tree_deploy_file() {
    let cluster = Cluster::start().await;
    let rendered_0_1_0 = fixture("rendered.yaml");
    let deploy = repo_root().join("deploy/sync-client-operator.yaml");

    // 0.1.0's deploy file was this render plus the Namespace, which the render lacks.
    cluster.kubectl(&["create", "namespace", NAMESPACE]).await;
    cluster
        .kubectl(&[
            "apply",
            "--server-side",
            "-f",
            &rendered_0_1_0.display().to_string(),
        ])
        .await;
    let old = documents(&read(&rendered_0_1_0));
    assert_exactly(&cluster, &old, &[], applied_by_kubectl, "0.1.0 applied").await;

    cluster
        .kubectl(&[
            "apply",
            "--server-side",
            "-f",
            &deploy.display().to_string(),
        ])
        .await;
    let new = documents(&read(&deploy));
    assert_exactly(&cluster, &new, &old, applied_by_kubectl, "deploy/ applied").await;
    assert_crds_are_the_working_trees(&cluster);
}
