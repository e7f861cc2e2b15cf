//! podman for the e2e suite: the operator image, built once per test process from the
//! Dockerfile's shipped runtime stage (`RUNTIME_FILES=local`, fed the static release binary of
//! `make static-binary`), and containers that are always removed, even when a test fails.
//!
//! Every podman call gets `tests/containers/containers.conf` through `CONTAINERS_CONF` (runc, no
//! rlimits: what these machines allow). Images and containers carry the label
//! [`OWNER_LABEL`]`=<pid>`; the first build of a process removes those of processes that are gone
//! (a test run killed before its cleanup), so nothing piles up. Each process keeps its one image
//! until then, as one `podman images` entry.
//!
//! Pods come from `podman kube play` of a Deployment ([`Pod`]); they carry the same label (in
//! the pod template's labels) and are removed the same ways.
//!
//! podman needs root here (CI and the developer machines run as root); `scripts/install-tools.sh`
//! installs it. A missing podman or binary fails the test with that instruction: nothing skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::packaging::{repo_root, static_binary};

/// Label on every image and container the suite creates; the value is the test process id.
pub const OWNER_LABEL: &str = "io.syncclient.e2e.owner";
/// The CA bundle put into the image (the builder stage takes its own image's).
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

static NEXT_CONTAINER: AtomicU32 = AtomicU32::new(0);

/// A podman command with the suite's configuration.
pub fn podman() -> Command {
    let mut command = Command::new("podman");
    command.env(
        "CONTAINERS_CONF",
        repo_root().join("tests/containers/containers.conf"),
    );
    command
}

fn output(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|error| {
        panic!(
            "cannot run {command:?} ({error}): podman is missing; run scripts/install-tools.sh as root"
        )
    })
}

/// Runs podman to success and returns its standard output.
pub fn podman_ok(args: &[&str]) -> String {
    let mut command = podman();
    command.args(args);
    let out = output(&mut command);
    assert!(
        out.status.success(),
        "{command:?} failed with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The same off the async runtime's worker threads (podman calls can take seconds, and the
/// simulators the container talks to run on those threads).
pub async fn podman_ok_async(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        podman_ok(&args)
    })
    .await
    .expect("podman task")
}

/// The operator image of this test process.
#[derive(Debug)]
pub struct Image {
    /// `localhost/sync-client-operator-e2e:<pid>`.
    pub reference: String,
    /// Uncompressed size as podman reports it.
    pub size_bytes: u64,
    /// How long `podman build` took.
    pub build_time: Duration,
}

/// Builds the operator image on first use (once per test process) and returns it. Blocking: call
/// it through `tokio::task::spawn_blocking` from async tests ([`operator_image_async`]).
pub fn operator_image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        remove_leftovers();
        build_operator_image()
    })
}

pub async fn operator_image_async() -> &'static Image {
    tokio::task::spawn_blocking(operator_image)
        .await
        .expect("image build task")
}

fn build_operator_image() -> Image {
    let binary = static_binary();
    assert!(
        Path::new(HOST_CA_BUNDLE).is_file(),
        "{HOST_CA_BUNDLE} is missing: install Debian's ca-certificates"
    );
    let context = tempfile::tempdir().expect("temp dir");
    let rootfs = context.path().join("rootfs");
    let mut assemble = Command::new(repo_root().join("scripts/image-rootfs.sh"));
    assemble.arg(&binary).arg(HOST_CA_BUNDLE).arg(&rootfs);
    let out = output(&mut assemble);
    assert!(
        out.status.success(),
        "scripts/image-rootfs.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = format!("localhost/sync-client-operator-e2e:{}", std::process::id());
    let dockerfile = repo_root().join("Dockerfile");
    let label = format!("{OWNER_LABEL}={}", std::process::id());
    let started = Instant::now();
    podman_ok(&[
        "build",
        "--quiet",
        // No registry is reachable: FROM scratch needs none, and nothing may be pulled.
        "--pull=never",
        // No intermediate images left behind.
        "--layers=false",
        "--file",
        path_str(&dockerfile),
        "--build-arg",
        "RUNTIME_FILES=local",
        "--label",
        &label,
        "--tag",
        &reference,
        path_str(&rootfs),
    ]);
    let build_time = started.elapsed();
    let size_bytes = podman_ok(&["image", "inspect", "--format", "{{.Size}}", &reference])
        .trim()
        .parse()
        .expect("image size");
    Image {
        reference,
        size_bytes,
        build_time,
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Whether a process with this id is running on this machine.
fn process_alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

/// Removes pods, containers and images left by test processes that are gone.
fn remove_leftovers() {
    let filter = format!("label={OWNER_LABEL}");
    // Pods first: their containers go with them (an infra container cannot be removed alone).
    let pods: serde_json::Value = serde_json::from_str(&podman_ok(&[
        "pod", "ps", "--filter", &filter, "--format", "json",
    ]))
    .expect("podman pod ps JSON");
    for pod in pods.as_array().into_iter().flatten() {
        let owner = pod["Labels"][OWNER_LABEL].as_str().unwrap_or_default();
        if !process_alive(owner) {
            let id = pod["Id"].as_str().expect("pod id");
            let _ = podman()
                .args(["pod", "rm", "--force", "--time", "0", id])
                .output();
        }
    }
    let containers: serde_json::Value = serde_json::from_str(&podman_ok(&[
        "ps", "--all", "--filter", &filter, "--format", "json",
    ]))
    .expect("podman ps JSON");
    for container in containers.as_array().into_iter().flatten() {
        let owner = container["Labels"][OWNER_LABEL]
            .as_str()
            .unwrap_or_default();
        if !process_alive(owner) {
            let id = container["Id"].as_str().expect("container id");
            let _ = podman().args(["rm", "--force", "--time", "0", id]).output();
        }
    }
    let images: serde_json::Value = serde_json::from_str(&podman_ok(&[
        "images", "--filter", &filter, "--format", "json",
    ]))
    .expect("podman images JSON");
    for image in images.as_array().into_iter().flatten() {
        let owner = image["Labels"][OWNER_LABEL].as_str().unwrap_or_default();
        if !process_alive(owner) {
            let id = image["Id"].as_str().expect("image id");
            let _ = podman().args(["rmi", "--force", id]).output();
        }
    }
}

/// A name no other container, pod or test process uses: `<hint>-<pid>-<n>`.
pub fn unique_name(hint: &str) -> String {
    format!(
        "{hint}-{}-{}",
        std::process::id(),
        NEXT_CONTAINER.fetch_add(1, Ordering::SeqCst)
    )
}

/// How a container is run: the hardening of the chart's pod by default.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Arguments after the image (the pod's `args`).
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Read-only bind mounts: (host path, container path).
    pub read_only_mounts: Vec<(PathBuf, String)>,
    /// More `podman run` options.
    pub podman_args: Vec<String>,
}

impl RunOptions {
    /// The chart's securityContext as podman options: read-only root filesystem (without the
    /// tmpfs mounts podman would add), every capability dropped, user 65532, no privilege
    /// escalation; host network, so the container reaches the simulators on this machine's
    /// loopback.
    pub fn hardened(args: &[&str]) -> RunOptions {
        RunOptions {
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            env: Vec::new(),
            read_only_mounts: Vec::new(),
            podman_args: [
                "--read-only",
                "--read-only-tmpfs=false",
                "--cap-drop",
                "ALL",
                "--user",
                "65532:65532",
                "--security-opt",
                "no-new-privileges",
                "--network",
                "host",
            ]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect(),
        }
    }
}

/// A container of this test process; removed (forcibly) when dropped.
#[derive(Debug)]
pub struct Container {
    pub name: String,
}

/// How a container ended after [`Container::stop`].
#[derive(Debug)]
pub struct Stopped {
    pub exit_code: i64,
    /// Whether podman had to kill it after the grace period.
    pub killed_after_grace: bool,
    pub elapsed: Duration,
}

impl Container {
    /// `podman run --detach` of `image` with a [`unique_name`].
    pub async fn run(image: &Image, hint: &str, options: &RunOptions) -> Container {
        let name = unique_name(hint);
        let mut args: Vec<String> = vec![
            "run".into(),
            "--detach".into(),
            "--pull=never".into(),
            "--name".into(),
            name.clone(),
            "--label".into(),
            format!("{OWNER_LABEL}={}", std::process::id()),
        ];
        args.extend(options.podman_args.iter().cloned());
        for (key, value) in &options.env {
            args.push("--env".into());
            args.push(format!("{key}={value}"));
        }
        for (host, inside) in &options.read_only_mounts {
            args.push("--volume".into());
            args.push(format!("{}:{inside}:ro", host.display()));
        }
        args.push(image.reference.clone());
        args.extend(options.args.iter().cloned());
        // The guard exists before the run, so even a half-created container is removed.
        let container = Container { name };
        podman_ok_async(args).await;
        container
    }

    /// The container's output so far (stdout and stderr).
    pub async fn logs(&self) -> String {
        container_logs(&self.name).await
    }

    /// Whether the container is running.
    pub async fn running(&self) -> bool {
        container_running(&self.name).await
    }

    /// `podman stop --time <grace>`: SIGTERM, then SIGKILL after the grace period.
    pub async fn stop(&self, grace: Duration) -> Stopped {
        let started = Instant::now();
        podman_ok_async(vec![
            "stop".into(),
            "--time".into(),
            grace.as_secs().to_string(),
            self.name.clone(),
        ])
        .await;
        stopped(&self.name, started.elapsed()).await
    }
}

/// A container's output so far (stdout and stderr).
async fn container_logs(name: &str) -> String {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = output(podman().args(["logs", &name]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .expect("podman logs task")
}

/// Whether a container is running.
async fn container_running(name: &str) -> bool {
    podman_ok_async(vec![
        "inspect".into(),
        "--format".into(),
        "{{.State.Running}}".into(),
        name.to_owned(),
    ])
    .await
    .trim()
        == "true"
}

/// How a container that was just stopped ended.
async fn stopped(name: &str, elapsed: Duration) -> Stopped {
    let state = podman_ok_async(vec![
        "inspect".into(),
        "--format".into(),
        "{{.State.ExitCode}} {{.State.OOMKilled}}".into(),
        name.to_owned(),
    ])
    .await;
    let exit_code: i64 = state
        .split_whitespace()
        .next()
        .and_then(|code| code.parse().ok())
        .expect("exit code");
    Stopped {
        exit_code,
        // 137 = 128 + SIGKILL: podman killed it when the grace period ran out.
        killed_after_grace: exit_code == 137,
        elapsed,
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // Blocking, but short: the container is killed at once.
        let _ = podman()
            .args(["rm", "--force", "--time", "0", &self.name])
            .output();
    }
}

/// A pod made by `podman kube play` of a one-replica Deployment, with its one container; removed
/// (forcibly, with every container) when dropped.
///
/// podman 4.3 names the pods of a Deployment `<deployment>-pod-<i>` and their containers
/// `<pod>-<container>`; a Deployment's name must therefore be unique among running tests (see
/// [`unique_name`]). The pod template's labels become the pod's and the containers' labels: put
/// [`OWNER_LABEL`] there ([`Pod::owner_label`]) so a killed test run's pods are removed later.
#[derive(Debug)]
pub struct Pod {
    /// `<deployment>-pod-0`.
    pub name: String,
    /// `<deployment>-pod-0-<container>`.
    pub container: String,
    /// The file played.
    pub file: PathBuf,
}

/// What a process of a container runs with, from `/proc/<pid>/status` and `mountinfo` on the
/// host (podman runs as root in the host's PID namespace here).
#[derive(Debug)]
pub struct ProcessSecurity {
    pub uid: String,
    pub gid: String,
    /// Effective and bounding capability sets (hex masks).
    pub cap_eff: String,
    pub cap_bnd: String,
    pub no_new_privs: String,
    /// `2` is a seccomp filter.
    pub seccomp: String,
    /// Mount options of `/` as the process sees it (`ro,...`).
    pub root_mount_options: String,
    /// Mount points the process can write to (`rw`), apart from `/proc` and `/dev` themselves.
    pub writable_mounts: Vec<String>,
}

impl Pod {
    /// The `(key, value)` to add to the pod template's labels.
    pub fn owner_label() -> (String, String) {
        (OWNER_LABEL.to_owned(), std::process::id().to_string())
    }

    /// `podman kube play <file>` of a Deployment named `deployment` with one replica and a
    /// container named `container`; returns when podman has started the pod.
    pub async fn play(file: &Path, deployment: &str, container: &str) -> Pod {
        let name = format!("{deployment}-pod-0");
        // The guard exists before the play, so even a half-created pod is removed.
        let pod = Pod {
            container: format!("{name}-{container}"),
            name,
            file: file.to_owned(),
        };
        let args = vec![
            "kube".to_owned(),
            "play".to_owned(),
            path_str(file).to_owned(),
        ];
        let played = tokio::task::spawn_blocking(move || {
            let mut command = podman();
            command.args(&args);
            output(&mut command)
        })
        .await
        .expect("podman kube play task");
        let stderr = String::from_utf8_lossy(&played.stderr);
        assert!(
            played.status.success(),
            "podman kube play {} failed with {}:{}\n{}{stderr}",
            file.display(),
            played.status,
            if stderr.contains("catatonit") {
                " podman builds its pod infra image from catatonit: run scripts/install-tools.sh as root"
            } else {
                ""
            },
            String::from_utf8_lossy(&played.stdout),
        );
        pod
    }

    /// The container's output so far.
    pub async fn logs(&self) -> String {
        container_logs(&self.container).await
    }

    /// Whether the container is running.
    pub async fn running(&self) -> bool {
        container_running(&self.container).await
    }

    /// `podman inspect --format <format>` of the container, trimmed.
    pub async fn inspect(&self, format: &str) -> String {
        podman_ok_async(vec![
            "inspect".into(),
            "--format".into(),
            format.to_owned(),
            self.container.clone(),
        ])
        .await
        .trim()
        .to_owned()
    }

    /// The security settings the container's process runs with.
    pub async fn process_security(&self) -> ProcessSecurity {
        let pid = self.inspect("{{.State.Pid}}").await;
        let proc_dir = Path::new("/proc").join(&pid);
        let status = std::fs::read_to_string(proc_dir.join("status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status of {}: {e}", self.container));
        let field = |key: &str| -> String {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                .map_or_else(
                    || panic!("no {key} in /proc/{pid}/status"),
                    |value| value.split_whitespace().collect::<Vec<_>>().join(" "),
                )
        };
        let mountinfo = std::fs::read_to_string(proc_dir.join("mountinfo"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/mountinfo of {}: {e}", self.container));
        // Fields: id parent major:minor root mount-point mount-options ...
        let mounts: Vec<(String, String)> = mountinfo
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace().skip(4);
                Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
            })
            .collect();
        let root_mount_options = mounts
            .iter()
            .find(|(point, _)| point == "/")
            .map(|(_, options)| options.clone())
            .expect("a root mount");
        let writable_mounts = mounts
            .into_iter()
            .filter(|(point, options)| {
                options.split(',').any(|option| option == "rw")
                    && point != "/proc"
                    && point != "/dev"
            })
            .map(|(point, _)| point)
            .collect();
        ProcessSecurity {
            uid: field("Uid"),
            gid: field("Gid"),
            cap_eff: field("CapEff"),
            cap_bnd: field("CapBnd"),
            no_new_privs: field("NoNewPrivs"),
            seccomp: field("Seccomp"),
            root_mount_options,
            writable_mounts,
        }
    }

    /// `podman pod stop --time <grace>`: SIGTERM to every container, SIGKILL after `grace`;
    /// returns how the operator container ended.
    pub async fn stop(&self, grace: Duration) -> Stopped {
        let started = Instant::now();
        podman_ok_async(vec![
            "pod".into(),
            "stop".into(),
            "--time".into(),
            grace.as_secs().to_string(),
            self.name.clone(),
        ])
        .await;
        stopped(&self.container, started.elapsed()).await
    }

    /// `podman kube down <file>`: removes the pods of the file (stopping what still runs);
    /// returns podman's report.
    pub async fn down(&self) -> String {
        podman_ok_async(vec![
            "kube".into(),
            "down".into(),
            path_str(&self.file).to_owned(),
        ])
        .await
    }

    /// Whether podman still knows the pod.
    pub async fn exists(&self) -> bool {
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || {
            output(podman().args(["pod", "exists", &name]))
                .status
                .success()
        })
        .await
        .expect("podman pod exists task")
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        // Blocking, but short: the containers are killed at once.
        let _ = podman()
            .args(["pod", "rm", "--force", "--time", "0", &self.name])
            .output();
    }
}
