//! Chart tests: the real `helm` lints and renders `charts/sync-client-operator` in each supported
//! configuration; the rendered manifests pass strict Kubernetes 1.34 schema validation and the
//! checkov security scan; and the chart's promises (restricted pods, least-privilege RBAC,
//! namespace mode, leader election, kept CRDs, plain manifests in sync) are checked on the
//! rendered objects.
//!
//! The tools live in `<repo>/.tools/bin`, installed by `scripts/install-tools.sh`. A missing tool
//! fails the test with that instruction: these tests never skip.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]
// Each test reads as one scenario over a rendering, on purpose; a failed step fails the test.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Kubernetes version the project targets.
const KUBERNETES_VERSION: &str = "1.34.0";
const RELEASE: &str = "sync-client-operator";
const RELEASE_NAMESPACE: &str = "sync-client-operator";
/// `watchNamespace` in `ci/namespace-scoped-values.yaml`.
const WATCHED_NAMESPACE: &str = "team-a";
/// Kinds without a schema in kubernetes-validate: the Prometheus Operator's ServiceMonitor and
/// PrometheusRule are custom resources, and no copy of their CRDs is available offline.
/// Everything else, CRDs included, is validated. The PrometheusRule's content is checked instead
/// by the real `promtool` (`alert_rules_pass_promtool_check_and_unit_tests`) and its envelope
/// below; the ServiceMonitor's fields by `optional_features_render_only_when_enabled`.
const KINDS_WITHOUT_BUILT_IN_SCHEMA: &[&str] = &["ServiceMonitor", "PrometheusRule"];

/// The operator's Kubernetes API calls (group, resources, verbs): what the RBAC must grant,
/// exactly. The chart keeps the same list in `templates/_helpers.tpl`, and
/// `tests/e2e/rbac.rs` checks both against the calls an end-to-end run really makes.
const OPERATOR_RULES: &[(&str, &[&str], &[&str])] = &[
    // The fresh read before an issue gets the credential; brokers come from the watch caches.
    (
        "syncclient.io",
        &["syncclientcredentials"],
        &["get", "list", "watch"],
    ),
    (
        "syncclient.io",
        &["identitybrokers", "clusteridentitybrokers"],
        &["list", "watch"],
    ),
    // Entra ID connections are read when a delivery needs one (at most once a minute each).
    (
        "syncclient.io",
        &["entraconnections", "clusterentraconnections"],
        &["get"],
    ),
    (
        "syncclient.io",
        &[
            "syncclientcredentials/status",
            "identitybrokers/status",
            "clusteridentitybrokers/status",
        ],
        &["patch"],
    ),
    (
        "",
        &["secrets"],
        &["get", "list", "watch", "create", "update", "patch"],
    ),
    ("", &["namespaces"], &["get"]),
    ("events.k8s.io", &["events"], &["create", "patch"]),
    (
        "apps",
        &["deployments", "statefulsets", "daemonsets"],
        &["patch"],
    ),
];
/// Cluster-scoped resources: a namespaced Role cannot grant them, so namespace mode leaves them out.
const CLUSTER_SCOPED_RESOURCES: &[&str] = &[
    "clusterentraconnections",
    "clusteridentitybrokers",
    "clusteridentitybrokers/status",
    "namespaces",
];
const LEADER_ELECTION_RULES: &[(&str, &[&str], &[&str])] = &[(
    "coordination.k8s.io",
    &["leases"],
    &["get", "create", "patch"],
)];

#[derive(Clone, Copy, Debug)]
enum Configuration {
    Defaults,
    /// Every optional feature on: `ci/all-features-values.yaml`.
    AllFeatures,
    /// Namespace mode: `ci/namespace-scoped-values.yaml`.
    NamespaceScoped,
}

impl Configuration {
    const ALL: [Self; 3] = [Self::Defaults, Self::AllFeatures, Self::NamespaceScoped];

    fn values_args(self) -> Vec<String> {
        let file = match self {
            Self::Defaults => return Vec::new(),
            Self::AllFeatures => "all-features-values.yaml",
            Self::NamespaceScoped => "namespace-scoped-values.yaml",
        };
        let path = chart_dir().join("ci").join(file);
        vec!["--values".to_owned(), path.display().to_string()]
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    repo_root().join("charts/sync-client-operator")
}

fn tool(name: &str) -> PathBuf {
    let path = repo_root().join(".tools/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        path.display()
    );
    path
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"))
}

/// Runs the command and returns its standard output, failing the test when it fails.
fn run_successfully(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("tool output is UTF-8")
}

fn helm() -> Command {
    let mut command = Command::new(tool("helm"));
    // Never talk to whatever cluster the developer's kubeconfig points at.
    command.env("KUBECONFIG", repo_root().join(".tools/no-kubeconfig"));
    command
}

/// `helm template` of the chart with these `--values` arguments and `--set` values.
fn helm_template_command(values_args: &[String], sets: &[&str]) -> Command {
    let mut command = helm();
    command
        .arg("template")
        .arg(RELEASE)
        .arg(chart_dir())
        .args(["--namespace", RELEASE_NAMESPACE])
        .args(["--kube-version", KUBERNETES_VERSION])
        .args(values_args);
    for set in sets {
        command.args(["--set", set]);
    }
    command
}

fn helm_template(configuration: Configuration, sets: &[&str]) -> String {
    run_successfully(&mut helm_template_command(
        &configuration.values_args(),
        sets,
    ))
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("rendered manifests are YAML")
}

fn render(configuration: Configuration) -> Vec<Value> {
    documents(&helm_template(configuration, &[]))
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|object| object["kind"] == kind)
        .collect()
}

fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objects, kind);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, found {found:?}"
    );
    found[0]
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} named {name}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn operator_container(objects: &[Value]) -> &Value {
    let containers = &only(objects, "Deployment")["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    &containers[0]
}

fn operator_args(objects: &[Value]) -> Vec<&str> {
    strings(&operator_container(objects)["args"])
}

fn write_temp_yaml(content: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("create a temporary file");
    fs::write(file.path(), content).expect("write a temporary file");
    file
}

type Permission = (String, String, String);

/// Flattens RBAC rules into (group, resource, verb) triples, refusing anything beyond them.
fn permissions(rules: &Value) -> BTreeSet<Permission> {
    let mut granted = BTreeSet::new();
    for rule in rules.as_array().expect("rules is a list") {
        for field in rule.as_object().expect("a rule is a map").keys() {
            assert!(
                ["apiGroups", "resources", "verbs"].contains(&field.as_str()),
                "unexpected rule field {field} in {rule}"
            );
        }
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.to_owned(), resource.to_owned(), verb.to_owned()));
                }
            }
        }
    }
    granted
}

fn expected_permissions(
    rules: &[(&str, &[&str], &[&str])],
    include: impl Fn(&str) -> bool,
) -> BTreeSet<Permission> {
    let mut expected = BTreeSet::new();
    for (group, resources, verbs) in rules {
        for resource in resources.iter().filter(|resource| include(resource)) {
            for verb in *verbs {
                expected.insert((
                    (*group).to_owned(),
                    (*resource).to_owned(),
                    (*verb).to_owned(),
                ));
            }
        }
    }
    expected
}

#[test]
fn chart_lints_strictly_in_every_configuration() {
    for configuration in Configuration::ALL {
        let output = run_successfully(
            helm()
                .args(["lint", "--strict"])
                .arg(chart_dir())
                .args(["--namespace", RELEASE_NAMESPACE])
                .args(["--kube-version", KUBERNETES_VERSION])
                .args(configuration.values_args()),
        );
        assert!(
            output.contains("0 chart(s) failed"),
            "{configuration:?}: {output}"
        );
        assert!(!output.contains("[WARNING]"), "{configuration:?}: {output}");
    }
}

#[test]
fn values_schema_rejects_unknown_and_invalid_values() {
    for bad in [
        // Unknown keys: cert-manager's name for what the chart calls renewGrace, a typo.
        "leaderElection.renewDeadline=10s",
        "replicaCont=2",
        "logFormat=xml",
        "replicaCount=-1",
        "replicas=-1",
        "imagePullSecrets={registry-credentials}",
        "imagePullSecrets[0].secretName=registry-credentials",
        "leaderElection.enabled=sometimes",
        "leaderElection.leaseDuration=15",
        "leaderElection.renewGrace=5 seconds",
        "minIssueInterval=1 minute",
        "reconcileConcurrency=0",
        "reconcileConcurrency=1025",
        "brokerConcurrency=65",
        "fingerprintKey.secretName=Not_A_Secret",
        "fingerprintKey.key=a/b",
        "fingerprintKey.name=fingerprint-key",
        "extraVolumes[0].emptyDir.medium=Memory",
        "extraVolumeMounts[0].name=scratch",
        "watchNamespace=Not_A_Namespace",
        "image.pullPolicy=Sometimes",
        "podDisruptionBudget.maxUnavailable=0",
        "metrics.prometheusRule.alerts.rotationsFailing.window=15 minutes",
        "metrics.prometheusRule.alerts.unknownAlert.enabled=true",
        "metrics.dashboard.namespace=Not_A_Namespace",
        "terminationGracePeriodSeconds=-1",
    ] {
        let output = run(helm()
            .arg("template")
            .arg(RELEASE)
            .arg(chart_dir())
            .args(["--set", bad]));
        assert!(
            !output.status.success(),
            "helm template accepted --set {bad}"
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("schema"),
            "--set {bad} was not rejected by the values schema: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Every key of values.yaml has a schema entry and every schema entry has a default in values.yaml,
/// down to the free-form maps (resources, affinity, ...) the schema leaves open.
#[test]
fn values_schema_covers_every_value() {
    fn compare(path: &str, values: &Value, schema: &Value, problems: &mut Vec<String>) {
        let Some(properties) = schema["properties"].as_object() else {
            return;
        };
        let values = values.as_object().expect("an object in values.yaml");
        for key in values.keys() {
            match properties.get(key) {
                Some(property) => {
                    compare(&format!("{path}.{key}"), &values[key], property, problems);
                }
                None => problems.push(format!("{path}.{key} has no schema")),
            }
        }
        // `global` is Helm's own: allowed by the schema, never set by this chart.
        let helm_global = |key: &str| path.is_empty() && key == "global";
        for key in properties.keys() {
            if !values.contains_key(key) && !helm_global(key) {
                problems.push(format!("{path}.{key} has no default in values.yaml"));
            }
        }
        if schema["additionalProperties"] != false {
            problems.push(format!("{path} accepts unknown keys"));
        }
    }

    let values: Value = serde_saphyr::from_str(
        &fs::read_to_string(chart_dir().join("values.yaml")).expect("read values.yaml"),
    )
    .expect("values.yaml is YAML");
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(chart_dir().join("values.schema.json"))
            .expect("read values.schema.json"),
    )
    .expect("values.schema.json is JSON");
    let mut problems = Vec::new();
    compare("", &values, &schema, &mut problems);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn rendered_manifests_pass_strict_kubernetes_1_34_schema_validation() {
    let mut inputs: Vec<(String, String)> = Configuration::ALL
        .iter()
        .map(|configuration| {
            (
                format!("{configuration:?}"),
                helm_template(*configuration, &[]),
            )
        })
        .collect();
    inputs.push((
        "deploy/sync-client-operator.yaml".to_owned(),
        fs::read_to_string(repo_root().join("deploy/sync-client-operator.yaml"))
            .expect("read deploy/sync-client-operator.yaml"),
    ));
    for (name, manifests) in inputs {
        let objects = documents(&manifests);
        let file = write_temp_yaml(&manifests);
        let output = run(Command::new(tool("kubernetes-validate"))
            .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
            .arg(file.path()));
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name} failed validation:\n{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut validated = 0;
        for line in report.lines() {
            if line.starts_with("INFO ") && line.contains(" passed for resource ") {
                validated += 1;
            } else {
                let unvalidated_kind_is_allowed = KINDS_WITHOUT_BUILT_IN_SCHEMA
                    .iter()
                    .any(|kind| line.contains(&format!("Couldn't find schema for kind {kind} ")));
                assert!(
                    line.starts_with("WARN ") && unvalidated_kind_is_allowed,
                    "{name}: unexpected kubernetes-validate output: {line}"
                );
            }
        }
        let without_schema = objects
            .iter()
            .filter(|object| {
                KINDS_WITHOUT_BUILT_IN_SCHEMA
                    .iter()
                    .any(|kind| object["kind"] == *kind)
            })
            .count();
        assert_eq!(
            validated,
            objects.len() - without_schema,
            "{name}: not every resource was validated:\n{report}"
        );
    }
}

/// The skip list of `.checkov.yaml`, each entry with the comment that justifies it.
fn checkov_skips() -> Vec<String> {
    let path = chart_dir().join(".checkov.yaml");
    let text = fs::read_to_string(&path).expect("read .checkov.yaml");
    let config: Value = serde_saphyr::from_str(&text).expect(".checkov.yaml is YAML");
    let skips: Vec<String> = strings(&config["skip-check"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    for skip in &skips {
        let index = lines
            .iter()
            .position(|line| line.trim() == format!("- {skip}"))
            .unwrap_or_else(|| panic!("{skip} is not on its own line in {}", path.display()));
        assert!(
            index > 0 && lines[index - 1].trim_start().starts_with("# "),
            "{skip} in {} has no justification comment above it",
            path.display()
        );
    }
    skips
}

/// Runs checkov offline on one rendering and returns the ids of the failed checks.
fn checkov_failures(manifests: &str) -> BTreeSet<String> {
    let file = write_temp_yaml(manifests);
    let output = run(Command::new(tool("checkov"))
        // Offline: no update check, no platform mapping.
        .env("CKV_SKIP_PACKAGE_UPDATE_CHECK", "true")
        .env("BC_SKIP_MAPPING", "TRUE")
        .args(["--framework", "kubernetes", "--skip-download", "--quiet"])
        .args(["--output", "json", "--file"])
        .arg(file.path()));
    // checkov exits 1 when a check fails; the failures are judged against the skip list below.
    assert!(
        output.status.code().is_some_and(|code| code <= 1),
        "checkov crashed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "checkov output is not JSON ({error}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let summary = &report["summary"];
    assert_eq!(
        summary["parsing_errors"], 0,
        "checkov could not parse: {summary}"
    );
    assert!(
        summary["passed"].as_u64().is_some_and(|passed| passed > 50),
        "checkov ran too few checks: {summary}"
    );
    report["results"]["failed_checks"]
        .as_array()
        .expect("checkov lists failed checks")
        .iter()
        .map(|check| {
            format!(
                "{} {} ({})",
                check["check_id"].as_str().unwrap_or_default(),
                check["check_name"].as_str().unwrap_or_default(),
                check["resource"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn security_scan_finds_nothing_beyond_the_justified_skips() {
    let skips = checkov_skips();
    let renders: Vec<(Configuration, String)> = Configuration::ALL
        .iter()
        .map(|configuration| (*configuration, helm_template(*configuration, &[])))
        .collect();
    // checkov takes seconds per run: scan the configurations side by side.
    let findings: Vec<(Configuration, BTreeSet<String>)> = std::thread::scope(|scope| {
        let scans: Vec<_> = renders
            .iter()
            .map(|(configuration, manifests)| {
                scope.spawn(move || (*configuration, checkov_failures(manifests)))
            })
            .collect();
        scans
            .into_iter()
            .map(|scan| scan.join().expect("checkov scan thread"))
            .collect()
    });
    let mut fired = BTreeSet::new();
    for (configuration, failures) in &findings {
        let unexpected: Vec<&String> = failures
            .iter()
            .filter(|failure| {
                let id = failure.split(' ').next().unwrap_or_default();
                fired.insert(id.to_owned());
                !skips.iter().any(|skip| skip == id)
            })
            .collect();
        assert!(
            unexpected.is_empty(),
            "{configuration:?}: checkov findings not in .checkov.yaml: {unexpected:#?}"
        );
    }
    let stale: Vec<&String> = skips.iter().filter(|skip| !fired.contains(*skip)).collect();
    assert!(
        stale.is_empty(),
        "skips in .checkov.yaml that no configuration triggers any more (remove them): {stale:?}"
    );
}

#[test]
fn plain_manifests_equal_a_fresh_render() {
    tool("helm");
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let fresh = directory.path().join("sync-client-operator.yaml");
    run_successfully(
        Command::new("bash")
            .arg(repo_root().join("scripts/render-deploy.sh"))
            .arg(&fresh),
    );
    let committed_path = repo_root().join("deploy/sync-client-operator.yaml");
    let committed =
        fs::read_to_string(&committed_path).expect("read deploy/sync-client-operator.yaml");
    let fresh = fs::read_to_string(&fresh).expect("read the fresh render");
    assert!(
        committed == fresh,
        "{} is out of date: run scripts/render-deploy.sh",
        committed_path.display()
    );
    assert!(committed.starts_with("# GENERATED FILE"));
    let objects = documents(&committed);
    let namespace = only(&objects, "Namespace");
    assert_eq!(namespace["metadata"]["name"], RELEASE_NAMESPACE);
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    for object in &objects {
        let kind = object["kind"].as_str().unwrap_or_default();
        let cluster_scoped = [
            "Namespace",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
        ]
        .contains(&kind);
        if !cluster_scoped {
            assert_eq!(object["metadata"]["namespace"], RELEASE_NAMESPACE, "{kind}");
        }
    }
}

#[test]
fn operator_pod_runs_with_a_restricted_security_context() {
    for configuration in Configuration::ALL {
        let objects = render(configuration);
        let pod = &only(&objects, "Deployment")["spec"]["template"]["spec"];
        let context = format!("{configuration:?}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{context}");
        assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{context}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{context}"
        );
        assert_eq!(pod["automountServiceAccountToken"], true, "{context}");
        assert_eq!(pod["hostNetwork"], Value::Null, "{context}");
        assert_eq!(pod["hostPID"], Value::Null, "{context}");

        let container = operator_container(&objects);
        let security = &container["securityContext"];
        assert_eq!(security["runAsNonRoot"], true, "{context}");
        assert_eq!(security["runAsUser"], 65532, "{context}");
        assert_eq!(security["readOnlyRootFilesystem"], true, "{context}");
        assert_eq!(security["allowPrivilegeEscalation"], false, "{context}");
        assert_eq!(security["privileged"], false, "{context}");
        assert_eq!(
            strings(&security["capabilities"]["drop"]),
            ["ALL"],
            "{context}"
        );
        assert_eq!(security["capabilities"]["add"], Value::Null, "{context}");
        assert_eq!(
            security["seccompProfile"]["type"], "RuntimeDefault",
            "{context}"
        );

        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    container["resources"][kind][resource].is_string(),
                    "{context}: resources.{kind}.{resource} missing"
                );
            }
        }
        assert_eq!(container["ports"][0]["name"], "http", "{context}");
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{context}"
        );
        assert_eq!(
            container["livenessProbe"]["httpGet"]["port"], "http",
            "{context}"
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{context}"
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["port"], "http",
            "{context}"
        );
        assert_eq!(operator_args(&objects)[0], "run", "{context}");
    }
}

#[test]
fn rbac_grants_exactly_the_operator_api_calls_and_nothing_broad() {
    for configuration in Configuration::ALL {
        let objects = render(configuration);
        for kind in ["Role", "ClusterRole"] {
            for role in of_kind(&objects, kind) {
                for (group, resource, verb) in permissions(&role["rules"]) {
                    let name = &role["metadata"]["name"];
                    assert!(
                        ![&group, &resource, &verb].contains(&&"*".to_owned()),
                        "{configuration:?}: {kind} {name} grants a wildcard"
                    );
                    assert!(
                        !(resource == "secrets"
                            && ["delete", "deletecollection"].contains(&verb.as_str())),
                        "{configuration:?}: {kind} {name} may delete Secrets"
                    );
                }
            }
        }
    }

    let cluster_wide = render(Configuration::Defaults);
    assert_eq!(
        permissions(&named(&cluster_wide, "ClusterRole", RELEASE)["rules"]),
        expected_permissions(OPERATOR_RULES, |_| true)
    );
    let binding = named(&cluster_wide, "ClusterRoleBinding", RELEASE);
    assert_eq!(binding["roleRef"]["name"], RELEASE);
    assert_eq!(binding["subjects"][0]["name"], RELEASE);
    assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NAMESPACE);
    assert!(of_kind(&cluster_wide, "Role").is_empty());

    let namespaced = render(Configuration::NamespaceScoped);
    let role = named(&namespaced, "Role", RELEASE);
    assert_eq!(role["metadata"]["namespace"], WATCHED_NAMESPACE);
    assert_eq!(
        permissions(&role["rules"]),
        expected_permissions(OPERATOR_RULES, |resource| !CLUSTER_SCOPED_RESOURCES
            .contains(&resource))
    );
}

#[test]
fn namespace_mode_renders_a_role_in_the_watched_namespace_and_no_cluster_role() {
    let objects = render(Configuration::NamespaceScoped);
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());

    let binding = named(&objects, "RoleBinding", RELEASE);
    assert_eq!(binding["metadata"]["namespace"], WATCHED_NAMESPACE);
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], RELEASE);
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(binding["subjects"][0]["name"], RELEASE);
    assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NAMESPACE);

    let namespace_flag = format!("--namespace={WATCHED_NAMESPACE}");
    assert!(operator_args(&objects).contains(&namespace_flag.as_str()));
    assert!(
        !operator_args(&render(Configuration::Defaults))
            .iter()
            .any(|arg| arg.starts_with("--namespace")),
        "cluster-wide mode must watch all namespaces"
    );
}

#[test]
fn leader_election_follows_the_replica_count_or_the_forcing_value() {
    let lease_role = format!("{RELEASE}-leader-election");
    let expected_lease_permissions = expected_permissions(LEADER_ELECTION_RULES, |_| true);

    // (values, replicas, leader election, PodDisruptionBudget)
    for (sets, replicas, elected, budget) in [
        (&[][..], 1, false, false),
        (&["replicaCount=0"][..], 0, false, false),
        (&["replicaCount=2"][..], 2, true, true),
        (&["replicaCount=3"][..], 3, true, true),
        // Forced on with one replica.
        (&["leaderElection.enabled=true"][..], 1, true, false),
        // Forced off with one replica: the default made explicit.
        (&["leaderElection.enabled=false"][..], 1, false, false),
        // Off with more than one replica is ignored (deprecated; NOTES warns): two active
        // replicas would revoke each other's credentials.
        (
            &["replicaCount=2", "leaderElection.enabled=false"][..],
            2,
            true,
            true,
        ),
        (&["podDisruptionBudget.enabled=true"][..], 1, false, true),
    ] {
        let objects = documents(&helm_template(Configuration::Defaults, sets));
        let deployment = only(&objects, "Deployment");
        assert_eq!(deployment["spec"]["replicas"], replicas, "{sets:?}");
        let args = operator_args(&objects);
        assert_eq!(args.contains(&"--leader-election"), elected, "{sets:?}");
        assert_eq!(
            of_kind(&objects, "Role").len(),
            usize::from(elected),
            "{sets:?}: the lease Role"
        );
        assert_eq!(
            of_kind(&objects, "PodDisruptionBudget").len(),
            usize::from(budget),
            "{sets:?}"
        );
        if elected {
            // A new pod stands by until the old one releases the Lease: rolling is safe.
            assert_eq!(deployment["spec"]["strategy"], Value::Null, "{sets:?}");
        } else {
            assert_eq!(
                deployment["spec"]["strategy"]["type"], "Recreate",
                "{sets:?}: without leader election a rollout must not run two operators at once"
            );
        }
    }

    for (configuration, lease_name) in [
        (Configuration::AllFeatures, "sync-client-operator-leader"),
        (Configuration::NamespaceScoped, RELEASE),
    ] {
        let objects = render(configuration);
        let args = operator_args(&objects);
        assert!(
            args.contains(&"--leader-election"),
            "{configuration:?}: {args:?}"
        );
        let lease_flag = format!("--lease-name={lease_name}");
        assert!(
            args.contains(&lease_flag.as_str()),
            "{configuration:?}: {args:?}"
        );
        assert!(args.contains(&"--lease-namespace=$(POD_NAMESPACE)"));
        let env = &operator_container(&objects)["env"];
        assert!(
            env.as_array().is_some_and(|env| env.iter().any(|variable| {
                variable["name"] == "POD_NAMESPACE"
                    && variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            })),
            "{configuration:?}: POD_NAMESPACE comes from the downward API"
        );
        let role = named(&objects, "Role", &lease_role);
        assert_eq!(role["metadata"]["namespace"], RELEASE_NAMESPACE);
        assert_eq!(permissions(&role["rules"]), expected_lease_permissions);
        let binding = named(&objects, "RoleBinding", &lease_role);
        assert_eq!(binding["metadata"]["namespace"], RELEASE_NAMESPACE);
        assert_eq!(binding["roleRef"]["name"], lease_role.as_str());
        assert_eq!(
            only(&objects, "Deployment")["spec"]["strategy"],
            Value::Null
        );
    }

    let replicated = render(Configuration::AllFeatures);
    assert_eq!(only(&replicated, "Deployment")["spec"]["replicas"], 2);
    assert_eq!(
        only(&replicated, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );
}

/// `helm template` that must fail; returns its error output.
fn helm_template_error(sets: &[&str]) -> String {
    let output = run(&mut helm_template_command(&[], sets));
    assert!(!output.status.success(), "helm template accepted {sets:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The flags the tuning values become: nothing by default (the operator's defaults apply), each
/// value its flag otherwise; the lease flags only with leader election.
#[test]
fn operator_tuning_values_render_as_their_flags() {
    const TUNING_FLAGS: [&str; 6] = [
        "--lease-duration-seconds",
        "--lease-renew-grace-seconds",
        "--broker-concurrency",
        "--reconcile-concurrency",
        "--min-issue-interval",
        "--fingerprint-key-file",
    ];
    let defaults = render(Configuration::Defaults);
    for flag in TUNING_FLAGS {
        assert!(
            !operator_args(&defaults)
                .iter()
                .any(|arg| arg.starts_with(flag)),
            "{flag} rendered by default"
        );
    }

    // ci/all-features-values.yaml sets each of them (tests/e2e/entrypoint.rs runs these args).
    let objects = render(Configuration::AllFeatures);
    let args = operator_args(&objects);
    for flag in [
        "--lease-duration-seconds=30",
        "--lease-renew-grace-seconds=10",
        "--broker-concurrency=8",
        "--reconcile-concurrency=16",
        "--min-issue-interval=1m",
    ] {
        assert!(args.contains(&flag), "{flag} missing: {args:?}");
    }
    for flag in TUNING_FLAGS {
        assert_eq!(
            args.iter().filter(|arg| arg.starts_with(flag)).count(),
            1,
            "{flag} once: {args:?}"
        );
    }

    // Durations in any unit the schema admits become whole seconds; the lease flags need leader
    // election (they are still checked without it, below).
    for (sets, expected) in [
        (
            &[
                "leaderElection.enabled=true",
                "leaderElection.leaseDuration=3s",
            ][..],
            &["--lease-duration-seconds=3"][..],
        ),
        (
            &[
                "leaderElection.enabled=true",
                "leaderElection.leaseDuration=4m60s",
                "leaderElection.renewGrace=1m",
            ][..],
            &[
                "--lease-duration-seconds=300",
                "--lease-renew-grace-seconds=60",
            ][..],
        ),
        (
            // Below the operator's default lease duration of 15 s.
            &[
                "leaderElection.enabled=true",
                "leaderElection.renewGrace=14000ms",
            ][..],
            &["--lease-renew-grace-seconds=14"][..],
        ),
        (&["leaderElection.leaseDuration=30s"][..], &[][..]),
        (
            &["minIssueInterval=1s"][..],
            &["--min-issue-interval=1s"][..],
        ),
        (
            &["minIssueInterval=1h"][..],
            &["--min-issue-interval=1h"][..],
        ),
        (
            &["minIssueInterval=1500ms"][..],
            &["--min-issue-interval=1500ms"][..],
        ),
        (
            &["reconcileConcurrency=1024", "brokerConcurrency=64"][..],
            &["--broker-concurrency=64", "--reconcile-concurrency=1024"][..],
        ),
    ] {
        let objects = documents(&helm_template(Configuration::Defaults, sets));
        let tuning: Vec<&str> = operator_args(&objects)
            .into_iter()
            .filter(|arg| TUNING_FLAGS.iter().any(|flag| arg.starts_with(flag)))
            .collect();
        assert_eq!(tuning, expected, "{sets:?}");
    }

    // What the operator would refuse, the chart refuses when rendering, leader election or not.
    for (sets, message) in [
        (
            &["leaderElection.leaseDuration=2s"][..],
            "leaderElection.leaseDuration \"2s\": must be whole seconds from 3s to 5m",
        ),
        (
            &["leaderElection.leaseDuration=5m1s"][..],
            "must be whole seconds from 3s to 5m",
        ),
        (
            &["leaderElection.leaseDuration=3500ms"][..],
            "must be whole seconds from 3s to 5m",
        ),
        (
            &["leaderElection.renewGrace=15s"][..],
            "leaderElection.renewGrace \"15s\": must be whole seconds, at least 1s and below the lease duration (15s)",
        ),
        (
            &[
                "replicaCount=2",
                "leaderElection.leaseDuration=1m",
                "leaderElection.renewGrace=1m",
            ][..],
            "below the lease duration (60s)",
        ),
        (
            &["leaderElection.renewGrace=0s"][..],
            "at least 1s and below the lease duration",
        ),
        (
            &["minIssueInterval=999ms"][..],
            "minIssueInterval \"999ms\": must be from 1s to 1h",
        ),
        (&["minIssueInterval=1h1s"][..], "must be from 1s to 1h"),
    ] {
        let error = helm_template_error(sets);
        assert!(error.contains(message), "{sets:?}: {error}");
    }
}

/// The chart assumes the operator's default lease duration (for checking renewGrace) and refuses
/// the renewal grace the operator refuses: both checked against the binary itself.
#[test]
fn the_chart_checks_the_lease_values_as_the_operator_does() {
    let operator = env!("CARGO_BIN_EXE_sync-client-operator");
    let help = run_successfully(Command::new(operator).args(["run", "--help"]));
    let lease_help = help
        .split_once("--lease-duration-seconds <")
        .map(|(_, rest)| rest.lines().take(3).collect::<String>())
        .expect("--lease-duration-seconds in --help");
    assert!(lease_help.contains("[default: 15]"), "{lease_help}");
    let helper =
        fs::read_to_string(chart_dir().join("templates/_helpers.tpl")).expect("read _helpers.tpl");
    assert!(
        helper.contains(
            "{{- define \"sync-client-operator.operatorLeaseDurationSeconds\" -}}15{{- end }}"
        ),
        "the chart's copy of the operator's default lease duration"
    );

    for (lease, grace, accepted) in [(15, 14, true), (15, 15, false), (10, 11, false)] {
        let lease_value = format!("leaderElection.leaseDuration={lease}s");
        let grace_value = format!("leaderElection.renewGrace={grace}s");
        let sets = ["replicaCount=2", lease_value.as_str(), grace_value.as_str()];
        let output = run(Command::new(operator).args([
            "run".to_owned(),
            format!("--lease-duration-seconds={lease}"),
            format!("--lease-renew-grace-seconds={grace}"),
            // A kubeconfig that is never there: the operator stops before any network access.
            "--kubeconfig=/nonexistent/kubeconfig".to_owned(),
        ]));
        let stderr = String::from_utf8_lossy(&output.stderr);
        if accepted {
            documents(&helm_template(Configuration::Defaults, &sets));
            // Past the flags, stopped by the missing kubeconfig (logged on stdout).
            assert_eq!(output.status.code(), Some(1), "{lease}/{grace}: {stderr}");
            assert!(
                String::from_utf8_lossy(&output.stdout).contains("operator failed"),
                "{lease}/{grace}: {stderr}"
            );
        } else {
            helm_template_error(&sets);
            assert_eq!(output.status.code(), Some(2), "{lease}/{grace}: {stderr}");
            assert!(
                stderr.contains(&format!(
                    "--lease-renew-grace-seconds ({grace}) must be below --lease-duration-seconds ({lease})"
                )),
                "{stderr}"
            );
        }
    }
}

/// The fingerprint key Secret is mounted read-only and the flag names the file its key lands in.
#[test]
fn fingerprint_key_secret_is_mounted_and_passed_as_a_file() {
    let objects = render(Configuration::AllFeatures);
    let pod = &only(&objects, "Deployment")["spec"]["template"]["spec"];
    let container = operator_container(&objects);
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|volume| volume["secret"].is_object())
        .expect("the fingerprint key volume");
    assert_eq!(
        volume["secret"]["secretName"],
        "sync-client-operator-fingerprint-key"
    );
    let items = volume["secret"]["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        2,
        "only the key and the previous key are projected: {items:?}"
    );
    assert_eq!(items[0]["key"], "hmac-key");
    assert_eq!(
        (&items[1]["key"], &items[1]["path"]),
        (&Value::from("previous-hmac-key"), &Value::from("previous"))
    );
    let args = container["args"].as_array().expect("args");
    assert!(args.contains(&Value::from(
        "--fingerprint-previous-key-file=/etc/sync-client-operator/fingerprint-key/previous"
    )));
    assert_eq!(volume["secret"]["defaultMode"], 0o444);
    assert_eq!(
        volume["secret"]["optional"],
        Value::Null,
        "the key is required"
    );
    let mount = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|mount| mount["name"] == volume["name"])
        .expect("the key volume is mounted");
    assert_eq!(mount["readOnly"], true);
    let file = format!(
        "{}/{}",
        mount["mountPath"].as_str().expect("mountPath"),
        items[0]["path"].as_str().expect("path")
    );
    let flag = format!("--fingerprint-key-file={file}");
    assert!(
        operator_args(&objects).contains(&flag.as_str()),
        "{flag}: {:?}",
        operator_args(&objects)
    );

    // The workload identity token: projected for Entra ID, read-only, named by its flag.
    assert_eq!(pod["volumes"][1]["name"], "azure-identity-token");
    let token = &pod["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "api://AzureADTokenExchange");
    assert_eq!(container["volumeMounts"][1]["readOnly"], true);
    assert!(operator_args(&objects).contains(
        &"--workload-identity-token-file=/var/run/secrets/azure/tokens/azure-identity-token"
    ));

    // extraVolumes and extraVolumeMounts come after the chart's own.
    assert_eq!(pod["volumes"][2]["name"], "scratch");
    assert_eq!(pod["volumes"][2]["emptyDir"]["sizeLimit"], "16Mi");
    assert_eq!(container["volumeMounts"][2]["mountPath"], "/tmp");

    let defaults = render(Configuration::Defaults);
    assert_eq!(
        only(&defaults, "Deployment")["spec"]["template"]["spec"]["volumes"],
        Value::Null
    );
    assert_eq!(operator_container(&defaults)["volumeMounts"], Value::Null);
}

/// Each renamed value under its old name renders exactly what the new name renders (the old
/// names are read for one more release); both names with different values are refused.
#[test]
fn renamed_values_render_the_same_under_either_name() {
    for (old, new) in [
        (&["replicas=2"][..], &["replicaCount=2"][..]),
        (&["replicas=0"][..], &["replicaCount=0"][..]),
        (
            &["replicas=3", "replicaCount=3"][..],
            &["replicaCount=3"][..],
        ),
        (
            &["image.pullSecrets={registry-a,registry-b}"][..],
            &[
                "imagePullSecrets[0].name=registry-a",
                "imagePullSecrets[1].name=registry-b",
            ][..],
        ),
        (
            &[
                "image.pullSecrets={registry-a}",
                "imagePullSecrets[0].name=registry-a",
            ][..],
            &["imagePullSecrets[0].name=registry-a"][..],
        ),
    ] {
        let old_render = helm_template(Configuration::Defaults, old);
        let new_render = helm_template(Configuration::Defaults, new);
        assert!(old_render == new_render, "{old:?} renders unlike {new:?}");
        assert_ne!(
            new_render,
            helm_template(Configuration::Defaults, &[]),
            "{new:?} changes nothing"
        );
    }
    let by_old_name = documents(&helm_template(
        Configuration::Defaults,
        &["image.pullSecrets={registry-a,registry-b}"],
    ));
    let pod = &only(&by_old_name, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["imagePullSecrets"],
        serde_json::json!([{"name": "registry-a"}, {"name": "registry-b"}])
    );

    for (sets, message) in [
        (
            &["replicas=2", "replicaCount=3"][..],
            "replicaCount (3) and the deprecated replicas (2) differ: set only replicaCount",
        ),
        (
            &["replicas=1", "replicaCount=0"][..],
            "replicaCount (0) and the deprecated replicas (1) differ",
        ),
        (
            &[
                "image.pullSecrets={registry-a}",
                "imagePullSecrets[0].name=registry-b",
            ][..],
            "imagePullSecrets [{\"name\":\"registry-b\"}] and the deprecated image.pullSecrets [\"registry-a\"] differ: set only imagePullSecrets",
        ),
    ] {
        let error = helm_template_error(sets);
        assert!(error.contains(message), "{sets:?}: {error}");
    }
}

/// A values file written for 0.1.0 (its whole values.yaml, as `helm show values` gave it, then
/// edited) still renders, exactly as the same settings under the new names.
#[test]
fn a_values_file_of_release_0_1_0_renders_as_the_new_names_do() {
    let archive = repo_root().join("tests/fixtures/upgrade-0.1.0/sync-client-operator-0.1.0.tgz");
    let old_values = run_successfully(
        Command::new("tar")
            .arg("-xzOf")
            .arg(&archive)
            .arg("sync-client-operator/values.yaml"),
    );
    assert!(old_values.contains("\nreplicas: 1\n"), "{old_values}");
    assert!(old_values.contains("  enabled: false\n"), "{old_values}");
    let file = write_temp_yaml(&old_values);
    let values_args = ["--values".to_owned(), file.path().display().to_string()];
    let with_old_file =
        |sets: &[&str]| run_successfully(&mut helm_template_command(&values_args, sets));
    assert!(with_old_file(&[]) == helm_template(Configuration::Defaults, &[]));
    // Its `leaderElection.enabled: false` meant "not forced": two replicas still elect a leader.
    assert!(
        with_old_file(&["replicas=2", "image.pullSecrets={registry-a}"])
            == helm_template(
                Configuration::Defaults,
                &["replicaCount=2", "imagePullSecrets[0].name=registry-a"]
            )
    );
}

#[test]
fn optional_features_render_only_when_enabled() {
    let defaults = render(Configuration::Defaults);
    for kind in [
        "ServiceMonitor",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "ConfigMap",
    ] {
        assert!(
            of_kind(&defaults, kind).is_empty(),
            "{kind} rendered by default"
        );
    }
    assert_eq!(of_kind(&defaults, "ClusterRole").len(), 1);
    let service = only(&defaults, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        operator_container(&defaults)["image"],
        "ghcr.io/sync-client-operator/sync-client-operator:0.1.0"
    );

    let objects = render(Configuration::AllFeatures);
    let monitor = only(&objects, "ServiceMonitor");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(
        monitor["spec"]["endpoints"][0]["honorLabels"], true,
        "the credential gauges keep their namespace label"
    );

    let policy = &only(&objects, "NetworkPolicy")["spec"];
    assert_eq!(strings(&policy["policyTypes"]), ["Ingress", "Egress"]);
    assert_eq!(policy["ingress"][0]["ports"][0]["port"], "http");
    let egress_ports: BTreeSet<(String, String)> = policy["egress"]
        .as_array()
        .expect("egress rules")
        .iter()
        .flat_map(|rule| rule["ports"].as_array().cloned().unwrap_or_default())
        .map(|port| {
            let protocol = port["protocol"].as_str().unwrap_or_default().to_owned();
            (protocol, port["port"].to_string())
        })
        .collect();
    for (protocol, port) in [
        ("TCP", "443"),
        ("TCP", "6443"),
        ("UDP", "53"),
        ("TCP", "53"),
    ] {
        assert!(
            egress_ports.contains(&(protocol.to_owned(), port.to_owned())),
            "egress {protocol}/{port} missing: {egress_ports:?}"
        );
    }

    let aggregated: Vec<&Value> = of_kind(&objects, "ClusterRole")
        .into_iter()
        .filter(|role| {
            role["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
        })
        .collect();
    assert_eq!(
        aggregated.len(),
        2,
        "view and edit roles aggregate into edit"
    );

    let pod = &only(&objects, "Deployment")["spec"]["template"]["spec"];
    let container = operator_container(&objects);
    assert!(
        container["image"]
            .as_str()
            .is_some_and(|image| image.contains("@sha256:")),
        "image.digest pins the image: {}",
        container["image"]
    );
    assert_eq!(pod["imagePullSecrets"][0]["name"], "registry-credentials");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert!(pod["tolerations"].is_array());
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    assert!(pod["topologySpreadConstraints"].is_array());
    let template_metadata = &only(&objects, "Deployment")["spec"]["template"]["metadata"];
    assert_eq!(
        template_metadata["annotations"]["example.com/team"],
        "platform"
    );
    assert_eq!(
        template_metadata["labels"]["example.com/tier"],
        "control-plane"
    );
    let args = operator_args(&objects);
    assert!(args.contains(&"--broker-concurrency=8"), "{args:?}");
    assert!(args.contains(&"--log-format=text"), "{args:?}");
    for object in &objects {
        assert_eq!(
            object["metadata"]["labels"]["example.com/cost-center"], "platform",
            "commonLabels on {}",
            object["kind"]
        );
    }
}

#[test]
fn crds_are_installed_from_the_chart_files_and_kept_on_uninstall() {
    let crd_files: Vec<PathBuf> = fs::read_dir(chart_dir().join("files/crds"))
        .expect("read files/crds")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .collect();
    let mut expected_names = BTreeSet::new();
    for file in &crd_files {
        for crd in documents(&fs::read_to_string(file).expect("read a CRD file")) {
            expected_names.insert(crd["metadata"]["name"].as_str().map(str::to_owned));
        }
    }
    assert!(!expected_names.is_empty(), "files/crds holds no CRD");

    let kept = render(Configuration::Defaults);
    let crds = of_kind(&kept, "CustomResourceDefinition");
    let rendered_names: BTreeSet<Option<String>> = crds
        .iter()
        .map(|crd| crd["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(rendered_names, expected_names);
    for crd in &crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
        assert_eq!(crd["spec"]["group"], "syncclient.io");
    }

    let not_kept = documents(&helm_template(
        Configuration::Defaults,
        &["crds.keep=false"],
    ));
    for crd in of_kind(&not_kept, "CustomResourceDefinition") {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            Value::Null
        );
    }
    let without = documents(&helm_template(
        Configuration::Defaults,
        &["crds.enabled=false"],
    ));
    assert!(of_kind(&without, "CustomResourceDefinition").is_empty());
}

/// The chart may not read outside its folder, so it carries a copy of the generated CRDs.
#[test]
fn chart_crds_are_byte_identical_to_the_generated_crds() {
    fn yaml_files(directory: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(directory)
            .unwrap_or_else(|error| panic!("read {}: {error}", directory.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml")
            })
            .map(|path| {
                let name = path
                    .file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .into_owned();
                (name, fs::read(&path).expect("read a CRD file"))
            })
            .collect();
        files.sort();
        files
    }
    let generated = yaml_files(&repo_root().join("crds"));
    let in_chart = yaml_files(&chart_dir().join("files/crds"));
    assert!(!generated.is_empty(), "crds/ holds no CRD");
    assert!(
        generated == in_chart,
        "charts/sync-client-operator/files/crds differs from crds/: regenerate both"
    );
}

/// The NOTES `helm install` prints.
fn install_notes(configuration: Configuration, sets: &[&str]) -> String {
    let mut command = helm();
    command
        .args(["install", "--dry-run=client"])
        .arg(RELEASE)
        .arg(chart_dir())
        .args(["--namespace", RELEASE_NAMESPACE])
        .args(configuration.values_args());
    for set in sets {
        command.args(["--set", set]);
    }
    let output = run_successfully(&mut command);
    output
        .split_once("\nNOTES:\n")
        .map(|(_, notes)| notes.to_owned())
        .expect("helm install prints NOTES")
}

/// Each deprecated value in use gets its warning at the top of the NOTES, and only then.
#[test]
fn install_notes_warn_about_deprecated_values_in_use() {
    let replicas = "WARNING: `replicas` is deprecated; use `replicaCount`.";
    let pull_secrets = "WARNING: `image.pullSecrets` is deprecated; use `imagePullSecrets`";
    let ignored_false = "WARNING: `leaderElection.enabled: false` is ignored with 2 replicas: more than one replica";
    for (sets, expected) in [
        (&["replicas=1"][..], &[replicas][..]),
        (&["image.pullSecrets={registry-a}"][..], &[pull_secrets][..]),
        (
            &["replicaCount=2", "leaderElection.enabled=false"][..],
            &[ignored_false][..],
        ),
        (
            &[
                "replicas=2",
                "image.pullSecrets={registry-a}",
                "leaderElection.enabled=false",
            ][..],
            &[replicas, pull_secrets, ignored_false][..],
        ),
        (
            &[
                "replicaCount=2",
                "imagePullSecrets[0].name=registry-a",
                "leaderElection.enabled=true",
            ][..],
            &[][..],
        ),
        (&["leaderElection.enabled=false"][..], &[][..]),
    ] {
        let notes = install_notes(Configuration::Defaults, sets);
        let warnings: Vec<&str> = notes
            .lines()
            .filter(|line| line.starts_with("WARNING"))
            .collect();
        assert_eq!(warnings.len(), expected.len(), "{sets:?}: {notes}");
        for (warning, expected) in warnings.iter().zip(expected) {
            assert!(warning.starts_with(expected), "{sets:?}: {notes}");
        }
        if !expected.is_empty() {
            assert!(notes.starts_with("WARNING"), "warnings come first: {notes}");
        }
    }
    let notes = install_notes(Configuration::AllFeatures, &[]);
    assert!(!notes.contains("WARNING"), "{notes}");
    assert!(
        notes.contains(&format!(
            "Secret data fingerprints use the key in Secret {RELEASE_NAMESPACE}/sync-client-operator-fingerprint-key (data key hmac-key);"
        )),
        "{notes}"
    );
}

#[test]
fn install_notes_tell_the_user_to_create_a_broker_and_a_credential() {
    for (configuration, namespace) in [
        (Configuration::Defaults, "my-app"),
        (Configuration::NamespaceScoped, WATCHED_NAMESPACE),
    ] {
        let notes = install_notes(configuration, &[]);
        assert!(!notes.contains("WARNING"), "{configuration:?}: {notes}");
        let example = notes
            .split_once("<<'YAML'\n")
            .and_then(|(_, rest)| rest.split_once("\nYAML\n"))
            .map(|(example, _)| example)
            .expect("NOTES carry an example manifest");
        let objects = documents(example);
        let kinds: Vec<&str> = objects
            .iter()
            .filter_map(|object| object["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            ["IdentityBroker", "SyncClientCredential"],
            "{configuration:?}"
        );
        for object in &objects {
            assert_eq!(object["apiVersion"], "syncclient.io/v1alpha1");
            assert_eq!(
                object["metadata"]["namespace"], namespace,
                "{configuration:?}"
            );
        }
        let credential = &objects[1]["spec"];
        assert_eq!(
            credential["brokerRef"]["name"],
            objects[0]["metadata"]["name"]
        );
        assert!(notes.contains("create secret generic"), "{notes}");
        assert!(
            notes.contains(&format!("kubectl -n {namespace} get scc")),
            "{notes}"
        );
    }
}

/// The Dockerfile's runtime stage agrees with what the chart's pod expects: FROM scratch with the
/// files of one stage, the non-root user 65532, the binary as entrypoint (the pod's args start
/// with `run`). The e2e suite builds and runs it (`tests/e2e/image.rs`) and composes its
/// entrypoint with the chart's args (`tests/e2e/entrypoint.rs`).
#[test]
fn container_image_runs_the_operator_as_the_user_the_chart_expects() {
    let dockerfile = fs::read_to_string(repo_root().join("Dockerfile")).expect("read Dockerfile");
    let final_stage = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a multi-stage Dockerfile");
    assert!(final_stage.starts_with("scratch\n"), "{final_stage}");
    assert!(
        final_stage.contains("\nCOPY --from=runtime-files /rootfs/ /\n"),
        "{final_stage}"
    );
    assert!(
        final_stage.contains("\nUSER 65532:65532\n"),
        "{final_stage}"
    );
    assert!(
        final_stage.contains("\nENTRYPOINT [\"/usr/local/bin/sync-client-operator\"]\n"),
        "{final_stage}"
    );
    assert!(final_stage.contains("\nCMD [\"run\"]\n"), "{final_stage}");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("\nARG RUNTIME_FILES=builder\n"));
    assert!(dockerfile.contains("\nFROM ${RUNTIME_FILES} AS runtime-files\n"));
    for objects in [render(Configuration::Defaults), deploy_objects()] {
        let container = operator_container(&objects);
        assert_eq!(
            container["securityContext"]["runAsUser"], 65532,
            "the chart runs the image's user"
        );
        assert_eq!(
            container["command"],
            Value::Null,
            "the image's entrypoint runs"
        );
        assert_eq!(operator_args(&objects)[0], "run");
    }
}

/// `rust-toolchain.toml` pins the compiler of the Dockerfile's builder image (`rust:<x.y>-...`):
/// local builds and the image build compile with the same one.
#[test]
fn toolchain_file_pins_the_dockerfile_builder_version() {
    let dockerfile = fs::read_to_string(repo_root().join("Dockerfile")).expect("read Dockerfile");
    let builder = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("FROM rust:"))
        .and_then(|rest| rest.split_once(' ').map(|(tag, _)| tag))
        .expect("a FROM rust:<tag> builder stage");
    let (version, _) = builder.split_once('-').expect("rust:<version>-<os>");
    let toolchain = fs::read_to_string(repo_root().join("rust-toolchain.toml"))
        .expect("read rust-toolchain.toml");
    let channel = toolchain
        .lines()
        .find_map(|line| line.strip_prefix("channel = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("channel = \"...\" in rust-toolchain.toml");
    assert_eq!(
        channel,
        format!("{version}.0"),
        "rust-toolchain.toml pins {channel}, the Dockerfile builds with rust:{builder}"
    );
}

fn deploy_objects() -> Vec<Value> {
    documents(
        &fs::read_to_string(repo_root().join("deploy/sync-client-operator.yaml"))
            .expect("read deploy/sync-client-operator.yaml"),
    )
}

#[test]
fn termination_grace_period_outlasts_an_issue_in_flight() {
    let grace = |objects: &[Value]| {
        only(objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds")
    };
    // The operator waits one issue deadline (default 60 s) plus 15 s at SIGTERM, then releases
    // the lease: the pod gets the deadline plus 30 s.
    assert_eq!(grace(&render(Configuration::Defaults)), 90);
    assert_eq!(grace(&deploy_objects()), 90);
    assert_eq!(
        grace(&render(Configuration::AllFeatures)),
        120,
        "issueDeadlineSeconds 90"
    );
    let old_default = documents(&helm_template(
        Configuration::Defaults,
        &["terminationGracePeriodSeconds=60"],
    ));
    assert_eq!(grace(&old_default), 90, "0.1.0's 60 s is raised to fit");
    let longer = documents(&helm_template(
        Configuration::Defaults,
        &["terminationGracePeriodSeconds=300"],
    ));
    assert_eq!(grace(&longer), 300, "a longer one is kept");
}

fn prometheus_rule(objects: &[Value]) -> &Value {
    let rule = only(objects, "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["namespace"], RELEASE_NAMESPACE);
    let spec = rule["spec"].as_object().expect("spec");
    assert_eq!(
        spec.keys().collect::<Vec<_>>(),
        ["groups"],
        "a PrometheusRule spec holds groups only"
    );
    rule
}

fn alerts(rule: &Value) -> Vec<&Value> {
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").iter())
        .collect()
}

const ALERTS: [&str; 8] = [
    "SyncClientCredentialRenewalOverdue",
    "SyncClientCredentialExpiringSoon",
    "SyncClientCredentialNotReady",
    "SyncClientRotationsFailing",
    "SyncClientBrokerAuthenticationFailing",
    "SyncClientDeliveriesFailing",
    "SyncClientProvisioningJobQuarantined",
    "SyncClientOperatorAbsent",
];

/// `promtool check rules` on every rendering with the rules on, and `promtool test rules` with
/// the unit tests of `tests/alerts/alerts-test.yaml` (each alert fires and does not fire on
/// series shaped like the operator's) against the default rendering.
#[test]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let promtool = tool("promtool");
    let directory = tempfile::tempdir().expect("create a temporary directory");
    let rules_file = directory.path().join("rules.yaml");
    for (configuration, sets) in [
        (
            Configuration::Defaults,
            &["metrics.prometheusRule.enabled=true"][..],
        ),
        (Configuration::AllFeatures, &[][..]),
        (
            Configuration::NamespaceScoped,
            &["metrics.prometheusRule.enabled=true"][..],
        ),
    ] {
        let objects = documents(&helm_template(configuration, sets));
        let spec = &prometheus_rule(&objects)["spec"];
        fs::write(
            &rules_file,
            serde_json::to_string_pretty(spec).expect("rules as JSON"),
        )
        .expect("write the rules");
        let output = run_successfully(
            Command::new(&promtool)
                .args(["check", "rules"])
                .arg(&rules_file),
        );
        assert!(
            output.contains(&format!("SUCCESS: {} rules found", ALERTS.len())),
            "{configuration:?}: {output}"
        );
    }

    // The unit tests run against the default rendering.
    let objects = documents(&helm_template(
        Configuration::Defaults,
        &["metrics.prometheusRule.enabled=true"],
    ));
    fs::write(
        &rules_file,
        serde_json::to_string_pretty(&prometheus_rule(&objects)["spec"]).expect("rules as JSON"),
    )
    .expect("write the rules");
    let tests = directory.path().join("alerts-test.yaml");
    fs::copy(repo_root().join("tests/alerts/alerts-test.yaml"), &tests)
        .expect("copy the alert unit tests");
    let output = run_successfully(
        Command::new(&promtool)
            .args(["test", "rules"])
            .arg(&tests)
            .current_dir(directory.path()),
    );
    assert!(output.contains("SUCCESS"), "{output}");

    // Every alert has unit tests that expect it to fire and not to fire.
    let unit_tests: Value = serde_saphyr::from_str(
        &fs::read_to_string(repo_root().join("tests/alerts/alerts-test.yaml"))
            .expect("read the alert unit tests"),
    )
    .expect("alert unit tests are YAML");
    for alert in ALERTS {
        let cases: Vec<&Value> = unit_tests["tests"]
            .as_array()
            .expect("tests")
            .iter()
            .flat_map(|test| test["alert_rule_test"].as_array().expect("alert_rule_test"))
            .filter(|case| case["alertname"] == alert)
            .collect();
        let fires = |case: &&Value| case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
        assert!(cases.iter().any(fires), "no test where {alert} fires");
        assert!(
            cases.iter().any(|case| !fires(case)),
            "no test where {alert} stays quiet"
        );
    }
}

#[test]
fn each_alert_links_its_runbook_and_carries_its_thresholds() {
    let objects = render(Configuration::AllFeatures);
    let rule = prometheus_rule(&objects);
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let runbooks = fs::read_to_string(repo_root().join("docs/alerts.md")).expect("docs/alerts.md");
    let headings: BTreeSet<&str> = runbooks
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .collect();
    let alerts = alerts(rule);
    let names: Vec<&str> = alerts
        .iter()
        .map(|alert| alert["alert"].as_str().expect("alert name"))
        .collect();
    assert_eq!(names, ALERTS);
    assert_eq!(
        headings,
        ALERTS.iter().copied().collect::<BTreeSet<_>>(),
        "docs/alerts.md has one runbook section per alert"
    );
    for alert in &alerts {
        let name = alert["alert"].as_str().expect("alert name");
        let annotations = &alert["annotations"];
        assert_eq!(
            annotations["runbook_url"],
            format!(
                "https://github.com/sync-client-operator/sync-client-operator/blob/main/docs/alerts.md#{}",
                name.to_lowercase()
            )
        );
        for key in ["summary", "description"] {
            assert!(
                annotations[key]
                    .as_str()
                    .is_some_and(|text| !text.is_empty()),
                "{name}: {key}"
            );
        }
        assert_eq!(alert["labels"]["team"], "platform", "{name}: alertLabels");
        let expr = alert["expr"].as_str().expect("expr");
        assert!(
            expr.contains("job=\"sync-client-operator-metrics\""),
            "{name} selects the release's job: {expr}"
        );
    }
    // Values from ci/all-features-values.yaml reach the rules.
    let expiring = alerts
        .iter()
        .find(|alert| alert["alert"] == "SyncClientCredentialExpiringSoon")
        .expect("the expiring alert");
    assert!(
        expiring["expr"]
            .as_str()
            .is_some_and(|e| e.contains("< 172800"))
    );
    assert_eq!(expiring["labels"]["severity"], "page");
    let absent = alerts
        .iter()
        .find(|alert| alert["alert"] == "SyncClientOperatorAbsent")
        .expect("the absent alert");
    assert_eq!(absent["for"], "15m");

    // A custom selector replaces the job; a disabled alert is left out.
    let custom = documents(&helm_template(
        Configuration::Defaults,
        &[
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.selector=namespace=\"ops\"\\,service=\"sco\"",
            "metrics.prometheusRule.alerts.operatorAbsent.enabled=false",
        ],
    ));
    let alerts = self::alerts(prometheus_rule(&custom));
    assert_eq!(alerts.len(), ALERTS.len() - 1);
    for alert in alerts {
        let expr = alert["expr"].as_str().expect("expr");
        assert!(
            expr.contains("namespace=\"ops\",service=\"sco\"") && !expr.contains("job="),
            "{expr}"
        );
    }
}

#[test]
fn grafana_dashboard_config_map_carries_the_dashboard_for_the_sidecar() {
    let file = fs::read_to_string(chart_dir().join("files/dashboards/sync-client-operator.json"))
        .expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&file).expect("the dashboard is JSON");
    assert_eq!(dashboard["uid"], "sync-client-operator");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut titles = BTreeSet::new();
    for panel in panels.iter().filter(|panel| panel["type"] != "row") {
        let title = panel["title"].as_str().expect("a panel title");
        assert!(titles.insert(title), "two panels titled {title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert!(
                target["expr"]
                    .as_str()
                    .is_some_and(|expr| expr.contains("sync_client_") || expr.contains("up{")),
                "{title}: {target}"
            );
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    for wanted in [
        "Credentials by Ready state",
        "Time to expiry",
        "Rotations by result",
        "Failed rotations",
        "Broker requests",
        "Broker request latency (p95)",
    ] {
        assert!(titles.contains(wanted), "no panel {wanted}: {titles:?}");
    }

    let defaults = documents(&helm_template(
        Configuration::Defaults,
        &["metrics.dashboard.enabled=true"],
    ));
    let config_map = only(&defaults, "ConfigMap");
    assert_eq!(config_map["metadata"]["namespace"], RELEASE_NAMESPACE);
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value = serde_json::from_str(
        config_map["data"]["sync-client-operator.json"]
            .as_str()
            .expect("the dashboard in the ConfigMap"),
    )
    .expect("embedded dashboard is JSON");
    assert_eq!(embedded, dashboard);

    let configured = render(Configuration::AllFeatures);
    let config_map = only(&configured, "ConfigMap");
    assert_eq!(config_map["metadata"]["namespace"], "monitoring");
    assert_eq!(
        config_map["metadata"]["annotations"]["grafana_folder"],
        "Platform"
    );
    assert_eq!(
        config_map["metadata"]["labels"]["example.com/dashboards"],
        "platform"
    );
    let relabelled = documents(&helm_template(
        Configuration::Defaults,
        &[
            "metrics.dashboard.enabled=true",
            "metrics.dashboard.label=grafana_dashboards",
            "metrics.dashboard.labelValue=sync",
        ],
    ));
    let labels = &only(&relabelled, "ConfigMap")["metadata"]["labels"];
    assert_eq!(labels["grafana_dashboards"], "sync");
    assert_eq!(labels["grafana_dashboard"], Value::Null);
}
