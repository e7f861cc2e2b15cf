//! The stock `kubectl` against the test's cluster (the simulator, or `E2E_KUBECONFIG`), as a
//! person would use it: manifests go in with `kubectl apply -f -`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::Env;

/// How long one `kubectl` invocation may take before the test fails.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// `$KUBECTL`, else the worktree's `.tools/bin/kubectl` (`scripts/install-tools.sh`). A missing
/// binary fails the test: it is never skipped.
pub fn kubectl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl");
    assert!(
        tools.is_file(),
        "kubectl not found at {}: run scripts/install-tools.sh (or set KUBECTL)",
        tools.display()
    );
    tools
}

/// One finished `kubectl` run.
#[derive(Debug, Clone)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// A `kubectl` bound to one test's kubeconfig and namespace, with its own home and discovery
/// cache. Clones share them: run clones one after the other, or make another with
/// [`Kubectl::new`] to run in parallel.
#[derive(Clone)]
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    namespace: String,
    home: Arc<tempfile::TempDir>,
}

impl Kubectl {
    pub fn new(env: &Env) -> Self {
        Self::with_kubeconfig(env.kubeconfig.clone(), &env.namespace)
    }

    /// A `kubectl` for any kubeconfig (a simulator the test started as a process, say).
    pub fn with_kubeconfig(kubeconfig: PathBuf, namespace: &str) -> Self {
        Self {
            binary: kubectl_binary(),
            kubeconfig,
            namespace: namespace.to_owned(),
            home: Arc::new(tempfile::tempdir().expect("kubectl home")),
        }
    }

    /// Runs `kubectl -n <namespace> ARGS`, feeding `stdin`; bounded by [`KUBECTL_TIMEOUT`].
    pub fn run_blocking(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut child = Command::new(&self.binary)
            .args(["-n", &self.namespace])
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.home.path())
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running {} failed: {e}", self.binary.display()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("kubectl stdin");
            pipe.write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        // Output is read on threads so a full pipe never blocks the child.
        let mut out = child.stdout.take().expect("kubectl stdout");
        let mut err = child.stderr.take().expect("kubectl stderr");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut out, &mut text).ok();
            text
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut err, &mut text).ok();
            text
        });
        let deadline = Instant::now() + KUBECTL_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for kubectl") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kubectl {args:?} did not finish within {KUBECTL_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            success: status.success(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// `kubectl ARGS` off the async runtime.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let stdin = stdin.map(str::to_owned);
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            this.run_blocking(&args, stdin.as_deref())
        })
        .await
        .expect("kubectl task")
    }

    /// `kubectl apply -f -` of one manifest (JSON is YAML).
    pub async fn apply(&self, manifest: &Value) -> Run {
        self.run(&["apply", "-f", "-"], Some(&manifest.to_string()))
            .await
    }

    /// One `kubectl apply -f -` of several manifests (a YAML stream) that must succeed.
    pub async fn apply_all_ok(&self, manifests: &[Value]) -> String {
        let stream: Vec<String> = manifests.iter().map(Value::to_string).collect();
        let run = self
            .run(&["apply", "-f", "-"], Some(&stream.join("\n---\n")))
            .await;
        assert!(
            run.success,
            "kubectl apply of {} manifests failed:\n{}\n{}",
            manifests.len(),
            run.stdout,
            run.stderr
        );
        run.stdout
    }

    /// `kubectl apply -f -` that must succeed; returns its stdout.
    pub async fn apply_ok(&self, manifest: &Value) -> String {
        let run = self.apply(manifest).await;
        assert!(
            run.success,
            "kubectl apply of {manifest} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run.stdout
    }
}
