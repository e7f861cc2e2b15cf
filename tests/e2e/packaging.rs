//! What ships, as the tests see it: the Dockerfile's runtime stage, the chart rendered by the real
//! `helm`, the plain manifests in `deploy/`, the static release binary, and the container command
//! line Kubernetes composes from the image and the pod spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Release name and namespace the rendered charts use (as `deploy/` does).
pub const RELEASE: &str = "sync-client-operator";
pub const RELEASE_NAMESPACE: &str = "sync-client-operator";
/// The Kubernetes version the project targets.
pub const KUBERNETES_VERSION: &str = "1.34.0";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/sync-client-operator")
}

/// A tool installed by `scripts/install-tools.sh` into `.tools/bin`; a missing one fails the test.
pub fn tool(name: &str) -> PathBuf {
    let path = repo_root().join(".tools/bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        path.display()
    );
    path
}

/// Runs a command to success and returns its standard output.
pub fn run_successfully(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A chart configuration: one of the chart's `ci/` values files, or the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartValues {
    Defaults,
    AllFeatures,
    NamespaceScoped,
}

impl ChartValues {
    pub const ALL: [Self; 3] = [Self::Defaults, Self::AllFeatures, Self::NamespaceScoped];

    fn file(self) -> Option<&'static str> {
        match self {
            Self::Defaults => None,
            Self::AllFeatures => Some("all-features-values.yaml"),
            Self::NamespaceScoped => Some("namespace-scoped-values.yaml"),
        }
    }
}

/// `helm template` of the chart, as parsed objects.
pub fn helm_template(values: ChartValues, sets: &[&str]) -> Vec<Value> {
    let mut command = Command::new(tool("helm"));
    command
        // Never talk to whatever cluster the developer's kubeconfig points at.
        .env("KUBECONFIG", repo_root().join(".tools/no-kubeconfig"))
        .arg("template")
        .arg(RELEASE)
        .arg(chart_dir())
        .args(["--namespace", RELEASE_NAMESPACE])
        .args(["--kube-version", KUBERNETES_VERSION]);
    if let Some(file) = values.file() {
        command
            .arg("--values")
            .arg(chart_dir().join("ci").join(file));
    }
    for set in sets {
        command.args(["--set", set]);
    }
    documents(&run_successfully(&mut command))
}

/// The objects of `deploy/sync-client-operator.yaml`.
pub fn deploy_manifests() -> Vec<Value> {
    let path = repo_root().join("deploy/sync-client-operator.yaml");
    documents(&std::fs::read_to_string(&path).expect("read deploy/sync-client-operator.yaml"))
}

pub fn documents(yaml: &str) -> Vec<Value> {
    let objects: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("manifests are YAML");
    objects.into_iter().filter(|o| !o.is_null()).collect()
}

/// The one object of a kind.
pub fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}");
    found[0]
}

/// The operator container of the (one) Deployment.
pub fn operator_container(objects: &[Value]) -> &Value {
    let containers = &only(objects, "Deployment")["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers.as_array().map(Vec::len),
        Some(1),
        "one container"
    );
    &containers[0]
}

/// The runtime (last) stage of the Dockerfile, as an image config.
#[derive(Debug)]
pub struct ImageConfig {
    pub from: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: String,
    pub env: BTreeMap<String, String>,
}

/// Parses the Dockerfile's last stage: `FROM`, exec-form `ENTRYPOINT`/`CMD`, `USER` and `ENV`
/// (`KEY=value` pairs, with `\` continuations).
pub fn dockerfile_runtime_stage() -> ImageConfig {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("read Dockerfile");
    let mut instructions: Vec<String> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(start) = trimmed.strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
        } else {
            pending.push_str(trimmed);
            instructions.push(std::mem::take(&mut pending));
        }
    }
    let last_from = instructions
        .iter()
        .rposition(|i| i.starts_with("FROM "))
        .expect("the Dockerfile has a FROM");
    let mut stage = ImageConfig {
        from: instructions[last_from]["FROM ".len()..].trim().to_owned(),
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        user: String::new(),
        env: BTreeMap::new(),
    };
    for instruction in &instructions[last_from + 1..] {
        let (keyword, rest) = instruction
            .split_once(' ')
            .unwrap_or((instruction.as_str(), ""));
        let exec_form = || -> Vec<String> {
            serde_json::from_str(rest.trim())
                .unwrap_or_else(|_| panic!("{keyword} must be in exec (JSON) form: {rest}"))
        };
        match keyword {
            "ENTRYPOINT" => stage.entrypoint = exec_form(),
            "CMD" => stage.cmd = exec_form(),
            "USER" => rest.trim().clone_into(&mut stage.user),
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (key, value) = pair.split_once('=').expect("ENV KEY=value");
                    stage.env.insert(key.to_owned(), value.to_owned());
                }
            }
            _ => {}
        }
    }
    stage
}

/// The process Kubernetes starts for a container of this image: `command` replaces the image's
/// ENTRYPOINT (and then the image's CMD is dropped), `args` replace CMD, and `$(VAR)` references
/// to the container's environment are expanded (`$$` escapes). Returns argv.
pub fn container_command_line(
    image: &ImageConfig,
    container: &Value,
    env: &BTreeMap<String, String>,
) -> Vec<String> {
    let list = |value: &Value| -> Option<Vec<String>> {
        value.as_array().map(|items| {
            items
                .iter()
                .map(|item| item.as_str().expect("a string").to_owned())
                .collect()
        })
    };
    let pod_command = list(&container["command"]);
    let pod_args = list(&container["args"]);
    let mut command_line = match (pod_command, pod_args) {
        (Some(command), Some(args)) => [command, args].concat(),
        (Some(command), None) => command,
        (None, Some(args)) => [image.entrypoint.clone(), args].concat(),
        (None, None) => [image.entrypoint.clone(), image.cmd.clone()].concat(),
    };
    for arg in &mut command_line {
        *arg = expand_dependent_vars(arg, env);
    }
    command_line
}

/// Kubernetes' `$(VAR)` expansion: defined variables are replaced, undefined references stay as
/// written, `$$` is a literal `$`.
fn expand_dependent_vars(input: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(reference) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            let (name, tail) = reference;
            if let Some(value) = env.get(name) {
                out.push_str(value);
            } else {
                out.push_str("$(");
                out.push_str(name);
                out.push(')');
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment as the kubelet sets it for a pod named `pod_name` in the release
/// namespace: the image's ENV, then the container's `env` (plain values and the downward API
/// fields the chart uses). Other sources (Secrets, ConfigMaps) are not used by the chart.
pub fn container_environment(
    image: &ImageConfig,
    container: &Value,
    pod_name: &str,
) -> BTreeMap<String, String> {
    let mut env = image.env.clone();
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().expect("env name").to_owned();
        let value = if let Some(value) = variable["value"].as_str() {
            expand_dependent_vars(value, &env)
        } else {
            match variable["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.namespace") => RELEASE_NAMESPACE.to_owned(),
                Some("metadata.name") => pod_name.to_owned(),
                other => panic!("env {name}: unsupported source {other:?} in {variable}"),
            }
        };
        env.insert(name, value);
    }
    env
}

/// The static release binary the image is built from (`make static-binary`). Fails the test with
/// the command to run when it is missing or older than the sources.
pub fn static_binary() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let path = target_dir
        .join(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
        .join("release/sync-client-operator");
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|error| {
            panic!(
                "the static release binary {} is missing ({error}): run `make static-binary` \
                 (make test builds it before the tests)",
                path.display()
            )
        });
    let root = repo_root();
    let newest_source = ["src", "crates/broker/src"]
        .iter()
        .map(|dir| root.join(dir))
        .chain([root.join("Cargo.toml"), root.join("Cargo.lock")])
        .filter_map(|path| newest_modification(&path))
        .max()
        .expect("sources exist");
    assert!(
        built >= newest_source,
        "the static release binary {} is older than the sources: run `make static-binary`",
        path.display()
    );
    path
}

fn newest_modification(path: &Path) -> Option<std::time::SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if metadata.is_file() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_modification(&entry.path()))
        .max()
}
