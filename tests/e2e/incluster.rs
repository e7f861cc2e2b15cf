//! The chart, executed in-cluster style: `helm template` of the chart; everything but the
//! Deployment applied with the stock `kubectl` (admin kubeconfig) to the Kubernetes simulator
//! serving HTTPS with token authentication and RBAC; the Deployment played with
//! `podman kube play` from the locally built image (the Dockerfile's shipped runtime stage,
//! [`operator_image_async`]) with only what a kubelet would add. The operator then finds the API
//! server the in-cluster way (`KUBERNETES_SERVICE_HOST`/`PORT`, the ServiceAccount token and CA),
//! is authorized by the chart's RBAC alone, and reaches the broker simulator over HTTPS with the
//! CA of the broker resource's `caBundle`. The simulators run on this machine's loopback, so the
//! pod runs on the host network.
//!
//! # What is played, compared with what the chart renders
//!
//! Chart values (no edit of the output): `image.repository`/`image.tag` name the local image
//! (`localhost/sync-client-operator-e2e:<pid>`, pull policy stays `IfNotPresent`: podman finds
//! it locally), and `http.port` is a free port of this machine (args, `containerPort` and the
//! probes all follow it), because pods on the host network share its ports. Everything else is
//! the chart's defaults (plus `replicas=2` for the leader election test).
//!
//! Then the rendered Deployment is changed as follows, and nothing else (the tests compute the
//! difference and check it is exactly this list, see [`expected_differences`]):
//!
//! 1. `metadata.name`: made unique (`sco-incluster-<pid>-<n>`). podman 4.3 names a
//!    Deployment's pods `<name>-pod-<i>` (a kubelet's are `<name>-<hash>-<suffix>`), and tests
//!    run concurrently. `POD_NAME` (the lease identity) is that pod name.
//! 2. `spec.template.metadata.labels`: plus the suite's owner label, so a killed test run's pods
//!    are removed by the next one.
//! 3. `spec.template.spec.hostNetwork: true`: the simulators listen on 127.0.0.1 only.
//! 4. `spec.template.spec.volumes` and the container's `volumeMounts`: a read-only `hostPath`
//!    volume at `/var/run/secrets/kubernetes.io/serviceaccount` holding `token`, `ca.crt` and
//!    `namespace` ([`KubeSim::service_account_files`], one token per pod, files 0644 as the
//!    kubelet's projected volume), standing in for the kubelet's `kube-api-access-*` volume
//!    (podman ignores `serviceAccountName` and `automountServiceAccountToken`).
//! 5. The container's `env`: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` added
//!    ([`KubeSim::in_cluster_env`]), as a kubelet sets them; `POD_NAMESPACE` becomes the plain
//!    value `sync-client-operator` (the release namespace, what its `fieldRef` to
//!    `metadata.namespace` yields): podman 4.3 refuses that `fieldRef` ("fieldPath
//!    metadata.namespace is either not valid or not supported"). `POD_NAME`'s `fieldRef` to
//!    `metadata.name` is kept: podman supports it.
//! 6. The container's `args` (leader election only): `--lease-namespace=$(POD_NAMESPACE)`
//!    expanded to `--lease-namespace=sync-client-operator` as a kubelet expands it; podman 4.3
//!    passes `$(...)` references through unexpanded.
//! 7. The container's `ports` removed: podman 4.3 refuses port mappings on the host network
//!    ("PortMappings can only be used with Bridge or slirp4netns networking"); on the host
//!    network the operator listens on the port anyway.
//! 8. The container's `livenessProbe` and `readinessProbe` removed: podman turns `httpGet` probes
//!    into `curl -f http://localhost:<port>/...` health checks run inside the container (this
//!    image has no `curl` and no shell; with the named port gone, podman even uses port 0) and
//!    restarts the container when they fail. The test probes as a kubelet does instead: GET of
//!    the readiness probe's path on the port its named port resolves to (in the rendered
//!    container), until 200.
//! 9. `spec.replicas` (two-replica test): 2 → 1, played twice (two Deployments from two renders
//!    that differ in `http.port` only): podman starts a Deployment's replicas from one spec, so
//!    on the host network both would bind the same port.
//!
//! # What podman 4.3 does with the chart's security context
//!
//! Applied, and checked by the tests on the running process (`/proc/<pid>/status`, `mountinfo`)
//! and with `podman inspect`: `runAsUser`/`runAsGroup` 65532 (real, effective, saved and
//! filesystem uid and gid 65532), `capabilities.drop: [ALL]` (effective and bounding sets empty),
//! `allowPrivilegeEscalation: false` (`no-new-privileges`, `NoNewPrivs: 1`),
//! `readOnlyRootFilesystem: true` (`/` mounted `ro`; podman adds no tmpfs: the writable mounts
//! are `/dev/pts`, `/dev/mqueue`, `/dev/shm`, the `/sys/fs/cgroup` tmpfs and podman's masks of
//! `/proc/keys` and `/proc/timer_list`; it bind-mounts `/etc/hosts`, `/etc/hostname`,
//! `/etc/resolv.conf` and `/run/.containerenv` read-only), `privileged: false`, and the
//! container's resource limits (memory 256 MiB, 0.5 CPU).
//!
//! Ignored by podman 4.3.1, found by playing variants of the Deployment by hand: `runAsNonRoot`
//! (not checked: with `runAsUser: 0` the process runs as uid 0) and `seccompProfile` (with
//! `type: Unconfined` the process still has a seccomp filter): podman applies its default seccomp
//! profile (`/usr/share/containers/seccomp.json`) whatever the field says, so the process runs
//! with a filter (`Seccomp: 2`, checked), which is what `RuntimeDefault` asks for. Also ignored:
//! `terminationGracePeriodSeconds` (the container's stop timeout stays podman's 10 s, and
//! `podman kube down` has no timeout option; the tests stop the pod with
//! `podman pod stop --time <terminationGracePeriodSeconds>`, then run `podman kube down`),
//! `serviceAccountName`/`automountServiceAccountToken` (see 4 above), `resources.requests`
//! (only the memory request becomes a cgroup soft limit), `enableServiceLinks` and
//! `revisionHistoryLimit`.
//!
//! # Hand-over
//!
//! A stopped leader releases the lease (its `holderIdentity` is cleared); the standby reads the
//! lease every retry period (2 s with the default 15 s lease) and takes it at its next look. It
//! then settles one issue deadline (60 s by default) before its first generate, so the test waits
//! for an issue longer than for other states. It waits for the hand-over (bounded) and prints
//! the time; it asserts no speed.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use sync_client_broker_sim::{BrokerSim, BrokerSimConfig, SyncClients};
use sync_client_kube_sim::{KubeSim, KubeSimConfig};

use crate::harness::{
    BROKER_NAME, DIRECTORY, Env, TEST_CLIENT_AGENT, VCENTER_PASSWORD, assert_no_secrets, http_get,
    secret_value, token_is_live,
};
use crate::packaging::{
    KUBERNETES_VERSION, RELEASE, RELEASE_NAMESPACE, chart_dir, documents, only, repo_root,
    run_successfully, tool,
};
use crate::podman::{Pod, Stopped, operator_image_async, unique_name};

/// Where a kubelet mounts the ServiceAccount's token, CA and namespace.
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The chart's ServiceAccount (the release's full name) as the API server names its user.
const OPERATOR_USER: &str = "system:serviceaccount:sync-client-operator:sync-client-operator";
/// The container of the chart's Deployment.
const CONTAINER: &str = "operator";
/// Bound on a pod becoming ready: the image starts at once, but the machine is shared and the
/// chart limits the container to half a CPU.
const POD_WAIT: Duration = Duration::from_secs(90);
/// Bound on the standby taking over a released lease (default lease duration 15 s).
const TAKEOVER_WAIT: Duration = Duration::from_secs(45);
/// Bound on an issue: a new leader settles the default issue deadline (60 s) first.
const ISSUE_WAIT: Duration = Duration::from_secs(100);
/// A token lifetime of 120 s with the simulator's 1-second minutes: above twice the operator's
/// default `--min-issue-interval` (30 s, which the chart keeps), and no renewal is due before the
/// tests end.
const TOKEN_TTL: &str = "2h";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// `helm template` of the chart with the local image and `http.port`, plus `sets`.
fn render_chart(image_reference: &str, http_port: u16, sets: &[&str]) -> Vec<Value> {
    let (repository, tag) = image_reference
        .rsplit_once(':')
        .expect("image reference with a tag");
    let mut command = Command::new(tool("helm"));
    command
        // Never talk to whatever cluster the developer's kubeconfig points at.
        .env("KUBECONFIG", repo_root().join(".tools/no-kubeconfig"))
        .arg("template")
        .arg(RELEASE)
        .arg(chart_dir())
        .args(["--namespace", RELEASE_NAMESPACE])
        .args(["--kube-version", KUBERNETES_VERSION])
        .args(["--set", &format!("image.repository={repository}")])
        // The tag is the test process id: a string, not the number `--set` would make of it.
        .args(["--set-string", &format!("image.tag={tag}")])
        .args(["--set", &format!("http.port={http_port}")]);
    for set in sets {
        command.args(["--set", set]);
    }
    documents(&run_successfully(&mut command))
}

/// The rendered objects other than the Deployment.
fn cluster_objects(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .filter(|object| object["kind"] != "Deployment")
        .cloned()
        .collect()
}

/// The stock `kubectl` with the admin kubeconfig of the simulator; returns stdout.
async fn kubectl(env: &Env, args: &[&str]) -> String {
    let home = env.dir.path().join("kubectl-home");
    std::fs::create_dir_all(&home).expect("kubectl home");
    let mut command = Command::new(tool("kubectl"));
    command
        .args(args)
        .env("KUBECONFIG", &env.kubeconfig)
        .env("HOME", &home)
        .env("KUBECACHEDIR", home.join("cache"));
    // Off the runtime's worker threads: the simulator answering kubectl runs on them.
    tokio::task::spawn_blocking(move || run_successfully(&mut command))
        .await
        .expect("kubectl task")
}

/// The Kubernetes simulator with TLS and RBAC, the broker simulator (HTTPS, 1-second minutes),
/// an admin client, and the credential namespace `default`. The CRDs come with the chart.
pub(crate) async fn start_cluster() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = BrokerSim::start(BrokerSimConfig {
        ttl_unit: Duration::from_secs(1),
        password: VCENTER_PASSWORD.into(),
        ..BrokerSimConfig::default()
    })
    .await
    .expect("broker simulator");
    assert!(
        broker.ca_pem().is_some(),
        "the broker simulator serves HTTPS"
    );
    broker.add_directory(
        DIRECTORY,
        SyncClients::One {
            generate_token: true,
            token_ttl: 30,
        },
    );
    let kube = KubeSim::start_with(KubeSimConfig {
        tls: true,
        rbac: true,
        ..KubeSimConfig::default()
    })
    .await
    .expect("kube simulator");
    let kubeconfig = dir.path().join("admin-kubeconfig.yaml");
    kube.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).expect("read kubeconfig"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("admin kubeconfig");
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(TEST_CLIENT_AGENT),
    ));
    let client = kube::Client::try_from(config).expect("admin client");
    Env {
        kube: Some(kube),
        broker,
        client,
        namespace: "default".to_owned(),
        dir,
        kubeconfig,
    }
}

/// What `helm install --create-namespace` would create, minus the Deployment, applied with
/// `kubectl`; then the broker (with the broker simulator's CA as `caBundle`) and its login.
async fn install_chart(env: &Env, objects: &[Value]) {
    kubectl(env, &["create", "namespace", RELEASE_NAMESPACE]).await;
    // One YAML document (in JSON, a YAML subset) per object, as `helm template` prints them.
    let manifest = env.dir.path().join("chart-without-deployment.yaml");
    let documents: Vec<String> = cluster_objects(objects)
        .iter()
        .map(|object| format!("---\n{object}\n"))
        .collect();
    std::fs::write(&manifest, documents.concat()).expect("manifest");
    let applied = kubectl(env, &["apply", "-f", &manifest.display().to_string()]).await;
    for object in cluster_objects(objects) {
        let name = object["metadata"]["name"].as_str().expect("name");
        assert!(
            applied
                .lines()
                .any(|line| line.contains(&format!("/{name} created"))),
            "{} {name} not created:\n{applied}",
            object["kind"]
        );
    }
    eprintln!("kubectl apply (chart without the Deployment):\n{applied}");
    env.create_broker(BROKER_NAME, json!({})).await;
}

/// What a kubelet mounts at [`SERVICE_ACCOUNT_DIR`] for one pod of the chart's ServiceAccount,
/// with the kubelet's file modes (0644 files in a 0755 directory).
fn service_account_volume(env: &Env, pod: &str) -> PathBuf {
    let dir = env.dir.path().join(format!("serviceaccount-{pod}"));
    let kube = env.kube.as_ref().expect("simulator");
    kube.service_account_files(RELEASE_NAMESPACE, RELEASE, &dir)
        .expect("service account files");
    for entry in std::fs::read_dir(&dir).expect("service account dir") {
        let path = entry.expect("entry").path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Kubernetes' `$(VAR)` expansion for the references the chart uses.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    env.iter().fold(arg.to_owned(), |arg, (name, value)| {
        arg.replace(&format!("$({name})"), value)
    })
}

/// The rendered Deployment as played: the module documentation's list, in order.
fn kubelet_view(
    rendered: &Value,
    name: &str,
    service_account_dir: &Path,
    in_cluster_env: &[(&'static str, String)],
) -> Value {
    let mut played = rendered.clone();
    played["metadata"]["name"] = json!(name);
    played["spec"]["replicas"] = json!(1);
    let (owner, pid) = Pod::owner_label();
    played["spec"]["template"]["metadata"]["labels"][owner] = json!(pid);
    let pod = &mut played["spec"]["template"]["spec"];
    pod["hostNetwork"] = json!(true);
    pod["volumes"] = json!([{
        "name": "kube-api-access",
        "hostPath": {"path": service_account_dir.display().to_string(), "type": "Directory"},
    }]);
    let container = &mut pod["containers"][0];
    assert_eq!(container["name"], CONTAINER);
    container["volumeMounts"] = json!([{
        "name": "kube-api-access", "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": true,
    }]);
    let mut values = BTreeMap::new();
    let env = container["env"].as_array_mut().expect("container env");
    for variable in env.iter_mut() {
        if variable["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace" {
            *variable = json!({"name": variable["name"], "value": RELEASE_NAMESPACE});
        }
        if let (Some(name), Some(value)) = (variable["name"].as_str(), variable["value"].as_str()) {
            values.insert(name.to_owned(), value.to_owned());
        }
    }
    for (key, value) in in_cluster_env {
        env.push(json!({"name": key, "value": value}));
    }
    for arg in container["args"].as_array_mut().expect("container args") {
        *arg = json!(expand(arg.as_str().expect("string arg"), &values));
    }
    let object = container.as_object_mut().expect("container");
    for field in ["ports", "livenessProbe", "readinessProbe"] {
        object.remove(field);
    }
    played
}

/// Differences between two objects as `path: before → after` lines. Lists whose items all have a
/// `name` are compared by name (`env[POD_NAME]`), other lists of equal length by index.
fn differences(path: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<String>) {
    let show =
        |value: Option<&Value>| value.map_or_else(|| "(absent)".to_owned(), Value::to_string);
    match (before, after) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                differences(&child, a.get(key), b.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            let named = |items: &[Value]| -> Option<BTreeMap<String, Value>> {
                items
                    .iter()
                    .map(|item| Some((item["name"].as_str()?.to_owned(), item.clone())))
                    .collect()
            };
            if let (Some(a), Some(b)) = (named(a), named(b)) {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys {
                    differences(&format!("{path}[{key}]"), a.get(key), b.get(key), out);
                }
            } else if a.len() == b.len() {
                for (index, (x, y)) in a.iter().zip(b).enumerate() {
                    differences(&format!("{path}[{index}]"), Some(x), Some(y), out);
                }
            } else if a != b {
                out.push(format!("{path}: {} → {}", show(before), show(after)));
            }
        }
        _ if before != after => out.push(format!("{path}: {} → {}", show(before), show(after))),
        _ => {}
    }
}

/// The paths [`kubelet_view`] changes; `leader_election`: the chart renders the
/// `$(POD_NAMESPACE)` argument, and the two-replica Deployment has `replicas: 2`.
fn expected_differences(leader_election: bool) -> BTreeSet<String> {
    let container = "spec.template.spec.containers[operator]";
    let mut paths: BTreeSet<String> = [
        "metadata.name".to_owned(),
        format!(
            "spec.template.metadata.labels.{}",
            crate::podman::OWNER_LABEL
        ),
        "spec.template.spec.hostNetwork".to_owned(),
        "spec.template.spec.volumes".to_owned(),
        format!("{container}.volumeMounts"),
        format!("{container}.env[POD_NAMESPACE].value"),
        format!("{container}.env[POD_NAMESPACE].valueFrom"),
        format!("{container}.env[KUBERNETES_SERVICE_HOST]"),
        format!("{container}.env[KUBERNETES_SERVICE_PORT]"),
        format!("{container}.ports"),
        format!("{container}.livenessProbe"),
        format!("{container}.readinessProbe"),
    ]
    .into_iter()
    .collect();
    if leader_election {
        paths.insert("spec.replicas".to_owned());
        paths.insert(format!("{container}.args[5]"));
    }
    paths
}

/// Writes the played Deployment next to the test's other files, prints and checks its
/// differences from the rendered one.
fn played_file(env: &Env, rendered: &Value, played: &Value, leader_election: bool) -> PathBuf {
    let mut lines = Vec::new();
    differences("", Some(rendered), Some(played), &mut lines);
    let name = played["metadata"]["name"].as_str().expect("name");
    eprintln!(
        "{name}: the played Deployment differs from the rendered one in:\n  {}",
        lines.join("\n  ")
    );
    let paths: BTreeSet<String> = lines
        .iter()
        .map(|line| line.split(": ").next().expect("path").to_owned())
        .collect();
    assert_eq!(paths, expected_differences(leader_election), "{lines:#?}");
    let file = env.dir.path().join(format!("{name}.json"));
    std::fs::write(&file, serde_json::to_string_pretty(played).expect("JSON")).expect("write");
    file
}

/// The port a container's `httpGet` probe targets, named ports resolved as a kubelet does.
fn probe_port(container: &Value, probe: &str) -> (u16, String) {
    let get = &container[probe]["httpGet"];
    let path = get["path"].as_str().expect("probe path").to_owned();
    let port = match &get["port"] {
        Value::String(name) => container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|port| port["name"] == *name)
            .and_then(|port| port["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("{probe}: no container port named {name}")),
        number => number.as_u64().expect("probe port"),
    };
    (u16::try_from(port).expect("port"), path)
}

/// One played pod and its probe endpoints.
struct PlayedPod {
    pod: Pod,
    /// The readiness probe's port (also the liveness probe's and the operator's listen port).
    port: u16,
    readiness_path: String,
    liveness_path: String,
    /// From `podman kube play` to the readiness probe's first 200.
    time_to_ready: Duration,
}

/// Plays the chart's Deployment as a kubelet would run it and waits until the readiness probe
/// passes.
async fn play(env: &Env, rendered: &[Value], leader_election: bool) -> PlayedPod {
    let deployment = only(rendered, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let (port, readiness_path) = probe_port(container, "readinessProbe");
    let (liveness_port, liveness_path) = probe_port(container, "livenessProbe");
    assert_eq!(liveness_port, port, "both probes use the http port");
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        args.contains(&format!("--http-addr=0.0.0.0:{port}").as_str()),
        "the operator listens on the probes' port: {args:?}"
    );
    let name = unique_name("sco-incluster");
    let pod_name = format!("{name}-pod-0");
    let service_account = service_account_volume(env, &pod_name);
    let kube = env.kube.as_ref().expect("simulator");
    let played = kubelet_view(deployment, &name, &service_account, &kube.in_cluster_env());
    let file = played_file(env, deployment, &played, leader_election);
    let started = Instant::now();
    let pod = Pod::play(&file, &name, CONTAINER).await;
    assert_eq!(pod.name, pod_name);
    let deadline = started + POD_WAIT;
    loop {
        if http_get(port, &readiness_path).await.map(|r| r.0) == Some(200) {
            break;
        }
        assert!(
            pod.running().await,
            "{}: the operator stopped:\n{}",
            pod.name,
            pod.logs().await
        );
        assert!(
            Instant::now() < deadline,
            "{}: readiness probe GET {readiness_path} on port {port} not 200 within {POD_WAIT:?}:\n{}",
            pod.name,
            pod.logs().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let time_to_ready = started.elapsed();
    eprintln!(
        "{}: from `podman kube play` to the readiness probe's 200: {:.2} s",
        pod.name,
        time_to_ready.as_secs_f64()
    );
    PlayedPod {
        pod,
        port,
        readiness_path,
        liveness_path,
        time_to_ready,
    }
}

/// A memory quantity of the forms the chart uses (`256Mi`, `1Gi`, plain bytes) in bytes.
fn memory_bytes(quantity: &str) -> u64 {
    let (number, unit) = quantity
        .find(|c: char| !c.is_ascii_digit())
        .map_or((quantity, ""), |at| quantity.split_at(at));
    let factor = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => panic!("memory unit {other} of {quantity}"),
    };
    number.parse::<u64>().expect("memory quantity") * factor
}

/// A CPU quantity (`500m`, `2`) in nanocores, as podman reports `NanoCpus`.
fn cpu_nanos(quantity: &str) -> u64 {
    match quantity.strip_suffix('m') {
        Some(millis) => millis.parse::<u64>().expect("CPU quantity") * 1_000_000,
        None => quantity.parse::<u64>().expect("CPU quantity") * 1_000_000_000,
    }
}

/// The hardening of the chart's securityContext, and its resource limits, on the running
/// process; `rendered` is the chart's Deployment.
async fn assert_hardened(pod: &Pod, rendered: &Value) {
    let security = pod.process_security().await;
    eprintln!("{}: {security:#?}", pod.name);
    let host_config = pod
        .inspect(
            "user={{.Config.User}} readonly={{.HostConfig.ReadonlyRootfs}} privileged={{.HostConfig.Privileged}} \
             securityopt={{.HostConfig.SecurityOpt}} capdrop={{.HostConfig.CapDrop}} memory={{.HostConfig.Memory}} \
             nanocpus={{.HostConfig.NanoCpus}} network={{.HostConfig.NetworkMode}} stoptimeout={{.Config.StopTimeout}} \
             healthcheck={{.Config.Healthcheck}}",
        )
        .await;
    eprintln!("{}: podman inspect: {host_config}", pod.name);
    // runAsUser / runAsGroup 65532 (real, effective, saved, filesystem ids).
    assert_eq!(security.uid, "65532 65532 65532 65532", "{security:?}");
    assert_eq!(security.gid, "65532 65532 65532 65532", "{security:?}");
    // capabilities.drop: [ALL]
    assert_eq!(security.cap_eff, "0000000000000000", "{security:?}");
    assert_eq!(security.cap_bnd, "0000000000000000", "{security:?}");
    // allowPrivilegeEscalation: false
    assert_eq!(security.no_new_privs, "1", "{security:?}");
    // A seccomp filter (podman's default profile; see the module documentation).
    assert_eq!(security.seccomp, "2", "{security:?}");
    // readOnlyRootFilesystem: true; the ServiceAccount volume is read-only too.
    assert!(
        security.root_mount_options.split(',').any(|o| o == "ro"),
        "{security:?}"
    );
    assert!(
        !security.writable_mounts.iter().any(|m| m == "/"
            || m == SERVICE_ACCOUNT_DIR
            || m.starts_with("/usr")
            || m.starts_with("/etc")
            || m == "/tmp"),
        "{security:?}"
    );
    assert!(
        host_config.contains("readonly=true")
            && host_config.contains("privileged=false")
            && host_config.contains("no-new-privileges")
            && host_config.contains("network=host"),
        "{host_config}"
    );
    let limits = &rendered["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"];
    let memory = memory_bytes(limits["memory"].as_str().expect("memory limit"));
    let cpu = cpu_nanos(limits["cpu"].as_str().expect("CPU limit"));
    assert!(
        host_config.contains(&format!("memory={memory} nanocpus={cpu} ")),
        "the chart's limits ({limits}) applied: {host_config}"
    );
}

/// The readiness and liveness probes answer 200.
async fn assert_probes_pass(played: &PlayedPod) {
    for path in [&played.readiness_path, &played.liveness_path] {
        let answer = http_get(played.port, path).await.map(|r| r.0);
        assert_eq!(answer, Some(200), "{}: GET {path}", played.pod.name);
    }
}

/// Every request of the operator's ServiceAccount was authenticated and authorized, and there
/// were some (of the kinds the operator reads).
fn assert_authorized_by_the_chart(env: &Env) {
    let kube = env.kube.as_ref().expect("simulator");
    let requests = kube.requests();
    let operator: Vec<_> = requests
        .iter()
        .filter(|r| r.user.as_deref() == Some(OPERATOR_USER))
        .collect();
    for resource in ["syncclientcredentials", "secrets", "identitybrokers"] {
        assert!(
            operator
                .iter()
                .any(|r| r.resource.as_deref() == Some(resource)),
            "the operator's ServiceAccount never read {resource}"
        );
    }
    let refused: Vec<String> = operator
        .iter()
        .filter(|r| r.status == 401 || r.status == 403)
        .map(|r| {
            format!(
                "{} {} {} → {}",
                r.verb.as_deref().unwrap_or("-"),
                r.resource.as_deref().unwrap_or("-"),
                r.path,
                r.status
            )
        })
        .collect();
    assert!(
        refused.is_empty(),
        "the chart's RBAC refused the operator:\n{}",
        refused.join("\n")
    );
    let unauthenticated: Vec<&str> = requests
        .iter()
        .filter(|r| r.status == 401)
        .map(|r| r.path.as_str())
        .collect();
    assert!(
        unauthenticated.is_empty(),
        "requests without a valid token: {unauthenticated:?}"
    );
    eprintln!(
        "{} requests of {OPERATOR_USER}, none refused",
        operator.len()
    );
}

/// The chart's `terminationGracePeriodSeconds`.
fn grace_period(rendered: &[Value]) -> Duration {
    let seconds =
        only(rendered, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds");
    Duration::from_secs(seconds)
}

/// SIGTERM to the pod, SIGKILL only after the chart's grace period; the operator exits 0 in time.
async fn stop_within_grace(pod: &Pod, grace: Duration) -> (Stopped, String) {
    let stopped = pod.stop(grace).await;
    let logs = pod.logs().await;
    assert_eq!(
        stopped.exit_code, 0,
        "{}: exit code after SIGTERM ({stopped:?}):\n{logs}",
        pod.name
    );
    assert!(!stopped.killed_after_grace, "{stopped:?}");
    assert!(
        stopped.elapsed < grace,
        "{}: stopped within the grace period: {stopped:?}",
        pod.name
    );
    assert!(logs.contains("shutdown requested"), "{logs}");
    eprintln!(
        "{}: podman pod stop --time {} → exit 0 after {:.2} s",
        pod.name,
        grace.as_secs(),
        stopped.elapsed.as_secs_f64()
    );
    (stopped, logs)
}

/// `podman kube down` removes the (stopped) pod.
async fn down(pod: &Pod) {
    let report = pod.down().await;
    assert!(report.contains("Pods removed"), "{report}");
    assert!(!pod.exists().await, "{} still exists", pod.name);
}

/// `kubectl get scc` prints the status' expiry and renewal times as RFC 3339 strings.
async fn assert_kubectl_shows_times(env: &Env, name: &str) {
    let kube = env.kube.as_ref().expect("simulator");
    let stored = kube
        .get(
            "syncclient.io/v1alpha1",
            "syncclientcredentials",
            Some(&env.namespace),
            name,
        )
        .expect("credential");
    let status_time = |field: &str| -> String {
        stored["status"][field]
            .as_str()
            .unwrap_or_else(|| panic!("status.{field} missing: {stored}"))
            .to_owned()
    };
    let expires = status_time("expiresAt");
    let renewal = status_time("renewalTime");
    let table = kubectl(env, &["get", "scc", name, "-n", &env.namespace]).await;
    eprintln!("kubectl get scc:\n{table}");
    assert!(!table.contains("<invalid>"), "{table}");
    let mut lines = table.lines();
    let headers: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    let row: Vec<&str> = lines.next().expect("row").split_whitespace().collect();
    assert_eq!(headers.len(), row.len(), "{table}");
    let cells: BTreeMap<&str, &str> = headers.into_iter().zip(row).collect();
    assert_eq!(cells["EXPIRES"], expires, "{table}");
    assert_eq!(cells["RENEWAL"], renewal, "{table}");
    let now = chrono::Utc::now();
    for column in ["EXPIRES", "RENEWAL"] {
        let time = chrono::DateTime::parse_from_rfc3339(cells[column])
            .unwrap_or_else(|e| panic!("{column} is not RFC 3339 ({e}): {table}"));
        assert!(time > now, "{column} lies ahead: {table}");
    }
}

/// The `reportingInstance` of the credential's `reason` events (events.k8s.io/v1).
async fn reporting_instances(env: &Env, name: &str, reason: &str) -> BTreeSet<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.namespace);
    events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|event| {
            event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && event.reason.as_deref() == Some(reason)
        })
        .map(|event| event.reporting_instance.unwrap_or_default())
        .collect()
}

/// The holder of the chart's Lease (`None`: released or never taken).
async fn lease_holder(env: &Env) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NAMESPACE);
    leases
        .get_opt(RELEASE)
        .await
        .expect("get lease")
        .and_then(|lease| lease.spec?.holder_identity)
        .filter(|holder| !holder.is_empty())
}

/// Issues a credential through the pod(s) and checks the Secret's token with the broker.
async fn issue(env: &Env, name: &str, directory: &str) -> String {
    env.create_credential(
        name,
        json!({"directoryId": directory, "tokenTTL": TOKEN_TTL}),
    )
    .await;
    // A new leader settles one issue deadline (60 s by default) before its first generate.
    let secret = env
        .eventually(&format!("Secret {name} issued"), ISSUE_WAIT, || async {
            env.secret(name)
                .await
                .filter(|secret| crate::chaos_kit::revision_of(secret) >= 1)
        })
        .await;
    let token = secret_value(&secret, "access_token");
    assert_eq!(Some(token.clone()), env.broker.current_token(directory));
    // One generate: no other replica issued too.
    assert_eq!(env.broker.generate_count(directory), 1);
    assert!(
        token_is_live(env, &token).await,
        "the broker accepts the token"
    );
    env.wait_for_reason(name, "CredentialCurrent").await;
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_played_in_cluster_style_issues_with_its_rbac_and_stops_cleanly() {
    let image = operator_image_async().await;
    let env = start_cluster().await;
    let rendered = render_chart(&image.reference, free_port(), &[]);
    assert!(
        !only(&rendered, "Deployment")
            .to_string()
            .contains("--leader-election"),
        "one replica: no leader election"
    );
    install_chart(&env, &rendered).await;
    let played = play(&env, &rendered, false).await;
    assert_probes_pass(&played).await;
    assert_hardened(&played.pod, only(&rendered, "Deployment")).await;

    let token = issue(&env, "app", DIRECTORY).await;
    assert_kubectl_shows_times(&env, "app").await;
    assert_eq!(
        reporting_instances(&env, "app", "Issued").await,
        BTreeSet::from([played.pod.name.clone()]),
        "events name the pod"
    );
    assert_authorized_by_the_chart(&env);

    let (_, logs) = stop_within_grace(&played.pod, grace_period(&rendered)).await;
    assert_no_secrets(&logs, &[token]);
    down(&played.pod).await;
    eprintln!(
        "image {}: {} bytes; `podman kube play` to ready: {:.2} s",
        image.reference,
        image.size_bytes,
        played.time_to_ready.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_the_chart_elect_one_leader_that_hands_over_on_stop() {
    let image = operator_image_async().await;
    let env = start_cluster().await;
    // One render per pod: they differ in http.port only (pods on the host network share ports).
    let renders = [
        render_chart(&image.reference, free_port(), &["replicas=2"]),
        render_chart(&image.reference, free_port(), &["replicas=2"]),
    ];
    assert_eq!(
        cluster_objects(&renders[0]),
        cluster_objects(&renders[1]),
        "the renders differ in the Deployment only"
    );
    for rendered in &renders {
        let deployment = only(rendered, "Deployment").to_string();
        assert!(
            deployment.contains("--leader-election")
                && deployment.contains("--lease-namespace=$(POD_NAMESPACE)"),
            "replicas=2 renders leader election: {deployment}"
        );
    }
    install_chart(&env, &renders[0]).await;
    let first = play(&env, &renders[0], true).await;
    let second = play(&env, &renders[1], true).await;

    let leader_name = env
        .eventually(
            "one pod to hold the lease",
            Duration::from_secs(60),
            || async { lease_holder(&env).await },
        )
        .await;
    let (leader, standby) = if leader_name == first.pod.name {
        (&first, &second)
    } else {
        assert_eq!(leader_name, second.pod.name, "the lease holder is a pod");
        (&second, &first)
    };
    eprintln!("leader {}, standby {}", leader.pod.name, standby.pod.name);
    let token = issue(&env, "app", DIRECTORY).await;
    assert_eq!(
        reporting_instances(&env, "app", "Issued").await,
        BTreeSet::from([leader.pod.name.clone()]),
        "only the leader issues"
    );
    assert!(leader.pod.logs().await.contains("acquired the lease"));
    let standby_logs = standby.pod.logs().await;
    assert!(
        standby_logs.contains("waiting to acquire the lease")
            && !standby_logs.contains("acquired the lease"),
        "{standby_logs}"
    );
    // The standby is alive and ready to take over.
    assert_probes_pass(standby).await;
    assert_hardened(&standby.pod, only(&renders[0], "Deployment")).await;

    // Stopping the leader releases the lease; the standby takes it and issues.
    let grace = grace_period(&renders[0]);
    let (_, leader_logs) = stop_within_grace(&leader.pod, grace).await;
    assert!(leader_logs.contains("released the lease"), "{leader_logs}");
    let stopped_at = Instant::now();
    env.eventually("the standby to take the lease", TAKEOVER_WAIT, || async {
        (lease_holder(&env).await.as_deref() == Some(standby.pod.name.as_str())).then_some(())
    })
    .await;
    eprintln!(
        "{} took the lease {:.2} s after the leader stopped",
        standby.pod.name,
        stopped_at.elapsed().as_secs_f64()
    );
    let other_directory = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    env.broker.add_directory(
        other_directory,
        SyncClients::One {
            generate_token: true,
            token_ttl: 30,
        },
    );
    let second_token = issue(&env, "second", other_directory).await;
    assert_eq!(
        reporting_instances(&env, "second", "Issued").await,
        BTreeSet::from([standby.pod.name.clone()]),
        "the new leader issues"
    );
    assert!(standby.pod.logs().await.contains("acquired the lease"));
    assert_authorized_by_the_chart(&env);

    let (_, new_leader_logs) = stop_within_grace(&standby.pod, grace).await;
    assert!(
        new_leader_logs.contains("released the lease"),
        "{new_leader_logs}"
    );
    assert_eq!(lease_holder(&env).await, None, "the lease is released");
    assert_no_secrets(
        &format!("{leader_logs}{new_leader_logs}"),
        &[token, second_token],
    );
    down(&first.pod).await;
    down(&second.pod).await;
}
