//! What the README tells a new user to run, run as written: `cargo run --example demo`, and the
//! "run them by hand" walkthrough (the simulators as their example programs, the stock `kubectl`
//! applying `deploy/examples/`, then `sync-client-operator run`). Ports are free ones instead of
//! the README's fixed ports; everything else is the README's commands.
//!
//! The example programs are the ones `cargo test` builds next to this test
//! (`target/<profile>/examples/`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Operator, free_port};
use crate::kubectl::Kubectl;
use crate::packaging::repo_root;

/// The directory of `deploy/examples/syncclientcredential.yaml`.
const EXAMPLE_DIRECTORY: &str = "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f";
/// Every wait here is bounded by this.
const BOUND: Duration = Duration::from_secs(90);

/// An example program `cargo test` built; a missing one fails the test.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/examples/<name>
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "example {name} not built at {}: `cargo test --workspace` (make test) builds it, or `cargo build --examples`",
        path.display()
    );
    path
}

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts an example program and reads its standard output until `last` appears in a line;
/// returns the lines read so far.
fn start_example(name: &str, args: &[&str], last: &str) -> (Running, Vec<String>) {
    let mut child = Command::new(example(name))
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting example {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + BOUND;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains(last)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = receiver
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("example {name} did not print {last:?}: {lines:?}"));
        lines.push(line);
    }
    (running, lines)
}

/// The value of a `key:   value` line the broker simulator printed.
fn printed(lines: &[String], key: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map_or_else(|| panic!("no {key} in {lines:?}"), |v| v.trim().to_owned())
}

#[test]
fn the_demo_issues_and_rotates_and_exits_by_itself() {
    let mut child = Command::new(example("demo"))
        .args(["--seconds", "15"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo");
    let deadline = Instant::now() + BOUND;
    while child.try_wait().expect("demo status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not exit by itself within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("demo output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {stdout}");
    for line in [
        "issued  billing-scim  revision 1",
        "issued  orders-scim   revision 1",
        "rotated billing-scim  revision 2",
    ] {
        assert!(stdout.contains(line), "{line:?} missing: {stdout}");
    }
    // Delivered to the Entra ID job; half-way the job is quarantined by a token generated out of
    // band; a rotation delivers a new token and lifts the quarantine; the job works again.
    let job = "scim.5f4e3d2c1b0a";
    let story = [
        format!(
            "delivered entra-scim    revision 1   to Entra ID job {job}: saved, validated, job active"
        ),
        format!(
            "Entra ID provisioning cycle of job {job} failed: job quarantined (EncounteredQuarantineException)"
        ),
        "requested a rotation of entra-scim".to_owned(),
        format!(
            "delivered entra-scim    revision 2   to Entra ID job {job}: saved, validated, job active"
        ),
        format!(
            "lifted    the quarantine of Entra ID job {job} (restart with QuarantineState only)"
        ),
        format!(
            "Entra ID provisioning cycle of job {job}: Succeeded: the job is Active again, holding the broker's current token of entra-scim: yes"
        ),
    ];
    let mut at = 0;
    for line in &story {
        let found = stdout[at..]
            .find(line.as_str())
            .unwrap_or_else(|| panic!("{line:?} missing, or out of order: {stdout}"));
        at += found + line.len();
    }
    // The final table: every credential Ready, the broker still accepts what each Secret holds,
    // and the delivered one is delivered.
    for (name, delivered) in [
        ("billing-scim", "-"),
        ("entra-scim", "1/1"),
        ("orders-scim", "-"),
    ] {
        let row = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no table row for {name}: {stdout}"));
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(columns.get(1), Some(&"True"), "{row}");
        assert_eq!(columns.get(5), Some(&delivered), "DELIVERED: {row}");
        assert_eq!(columns.last(), Some(&"yes"), "{row}");
    }
    assert!(
        stdout.lines().last().is_some_and(|l| l
            == format!("Entra ID job {job}: Active, restarted with QuarantineState 1 time(s), holds the broker's current token of entra-scim: yes")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_by_hand_issues_the_example_credential() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("broker-ca.pem");
    let kubeconfig = dir.path().join("sim.kubeconfig");
    let (broker_port, kube_port) = (free_port().to_string(), free_port().to_string());

    // cargo run --example broker-sim -- --port 8443 --ca-out /tmp/broker-ca.pem \
    //   --directory 6c3f8a52-... --ttl-unit-seconds 1
    let (_broker, printed_lines) = start_example(
        "broker-sim",
        &[
            "--port",
            &broker_port,
            "--ca-out",
            ca.to_str().expect("path"),
            "--directory",
            EXAMPLE_DIRECTORY,
            "--ttl-unit-seconds",
            "1",
        ],
        "directory:",
    );
    let url = printed(&printed_lines, "url");
    let username = printed(&printed_lines, "username");
    let password = printed(&printed_lines, "password");

    // cargo run --example kube-sim -- --port 6443 --kubeconfig /tmp/sim.kubeconfig --crds crds
    let (_kube, _) = start_example(
        "kube-sim",
        &[
            "--port",
            &kube_port,
            "--kubeconfig",
            kubeconfig.to_str().expect("path"),
            "--crds",
            "crds",
        ],
        "kubeconfig written",
    );

    let kubectl = Kubectl::with_kubeconfig(kubeconfig.clone(), "default");
    let deploy_examples = repo_root().join("deploy/examples/");
    let ca_file = format!("ca.crt={}", ca.display());
    let patch =
        format!(r#"{{"spec":{{"url":"{url}","tls":{{"caSecretRef":{{"name":"broker-ca"}}}}}}}}"#);
    let (user_literal, password_literal) = (
        format!("username={username}"),
        format!("password={password}"),
    );
    let steps: [&[&str]; 4] = [
        &["apply", "-f", deploy_examples.to_str().expect("path")],
        &[
            "create",
            "secret",
            "generic",
            "broker-ca",
            "--from-file",
            &ca_file,
        ],
        &["patch", "ib", "vcenter", "--type", "merge", "-p", &patch],
        &[
            "create",
            "secret",
            "generic",
            "vcenter-credentials",
            "--from-literal",
            &user_literal,
            "--from-literal",
            &password_literal,
            "--dry-run=client",
            "-o",
            "yaml",
        ],
    ];
    let mut login_manifest = String::new();
    for step in steps {
        let run = kubectl.run(step, None).await;
        assert!(run.success, "kubectl {step:?}: {}", run.stderr);
        login_manifest = run.stdout;
    }
    // ... | kubectl apply -f -
    let run = kubectl
        .run(&["apply", "-f", "-"], Some(&login_manifest))
        .await;
    assert!(
        run.success,
        "kubectl apply of the login Secret: {}",
        run.stderr
    );

    // cargo run -- run --kubeconfig /tmp/sim.kubeconfig --http-addr 127.0.0.1:8080 --log-format text
    let log = dir.path().join("operator.log");
    let out = std::fs::File::create(&log).expect("log file");
    let http_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_sync-client-operator"))
        .args(["run", "--kubeconfig", kubeconfig.to_str().expect("path")])
        .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
        .args(["--log-format", "text"])
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .expect("start the operator");
    let operator = Operator::adopt(child, log, http_port);

    // kubectl get scc: Ready, and the Secret holds the broker's token.
    let deadline = Instant::now() + BOUND;
    let ready = "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}";
    loop {
        let run = kubectl
            .run(&["get", "scc", "okta-scim", "-o", ready], None)
            .await;
        if run.stdout.trim() == "True" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "okta-scim not Ready within {BOUND:?}: {} {}\n{}",
            run.stdout,
            run.stderr,
            operator.output()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let table = kubectl.run(&["get", "scc"], None).await;
    assert!(
        table.success && table.stdout.contains("okta-scim"),
        "{table:?}"
    );
    let token = kubectl
        .run(
            &[
                "get",
                "secret",
                "okta-scim-token",
                "-o",
                "jsonpath={.data.access_token}",
            ],
            None,
        )
        .await;
    assert!(
        token.success && !token.stdout.trim().is_empty(),
        "the Secret holds no access_token: {token:?}"
    );
    let output = operator.output();
    assert!(
        !output.contains(&password),
        "the vCenter password was printed"
    );
    let decoded = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        token.stdout.trim(),
    )
    .expect("base64 token");
    let decoded = String::from_utf8(decoded).expect("utf-8 token");
    assert!(!output.contains(&decoded), "the token was printed");
}
