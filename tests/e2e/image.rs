//! The real image: built with podman from the Dockerfile's shipped runtime stage, run hardened
//! (read-only root, no capabilities, user 65532) against the simulators, it issues a credential the
//! broker accepts and stops cleanly on `podman stop`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{
    DIRECTORY, Env, WAIT, assert_no_secrets, http_get, secret_value, token_is_live,
};
use crate::packaging::{ChartValues, helm_template, only};
use crate::podman::{Container, RunOptions, operator_image_async, podman_ok_async};

/// What a pod of the chart gets to shut down: its terminationGracePeriodSeconds.
fn chart_grace_period() -> Duration {
    let objects = helm_template(ChartValues::Defaults, &[]);
    let seconds =
        only(&objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds");
    Duration::from_secs(seconds)
}

/// Where the kubeconfig is mounted in the container.
const KUBECONFIG_IN_CONTAINER: &str = "/etc/sync-client-operator/kubeconfig";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Waits until the operator in the container answers `/readyz` with 200, failing early (with its
/// logs) when the container stops.
async fn wait_until_ready(container: &Container, port: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        if http_get(port, "/readyz").await.map(|r| r.0) == Some(200) {
            return;
        }
        assert!(
            container.running().await,
            "the container stopped:\n{}",
            container.logs().await
        );
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 within {WAIT:?}:\n{}",
            container.logs().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_issues_a_credential_read_only_without_capabilities_and_stops_cleanly() {
    let image = operator_image_async().await;
    let config = podman_ok_async(vec![
        "image".into(),
        "inspect".into(),
        "--format".into(),
        "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}".into(),
        image.reference.clone(),
    ])
    .await;
    assert_eq!(
        config.trim(),
        r#"65532:65532 ["/usr/local/bin/sync-client-operator"] ["run"]"#
    );
    eprintln!(
        "image {}: {} bytes ({} KiB), built in {:.1} s",
        image.reference,
        image.size_bytes,
        image.size_bytes / 1024,
        image.build_time.as_secs_f64()
    );
    // A static binary, a CA bundle and two small files: far below any base image.
    assert!(
        image.size_bytes < 64 * 1024 * 1024,
        "image of {} bytes",
        image.size_bytes
    );

    let env = Env::start().await;
    let port = free_port();
    let http_addr = format!("--http-addr=127.0.0.1:{port}");
    let mut args = vec!["run", &http_addr, "--log-format=json"];
    let namespace_flag = format!("--namespace={}", env.namespace);
    if env.kube.is_none() {
        // A real cluster: stay in the test's namespace.
        args.push(&namespace_flag);
    }
    let mut options = RunOptions::hardened(&args);
    options
        .read_only_mounts
        .push((env.kubeconfig.clone(), KUBECONFIG_IN_CONTAINER.to_owned()));
    options.env.extend([
        (
            "KUBECONFIG_PATH".to_owned(),
            KUBECONFIG_IN_CONTAINER.to_owned(),
        ),
        ("POD_NAME".to_owned(), "image-e2e".to_owned()),
        (
            "RUST_LOG".to_owned(),
            "debug,kube=info,hyper=info,tower=info,rustls=info,h2=info,reqwest=info".to_owned(),
        ),
    ]);
    let started = Instant::now();
    let container = Container::run(image, "sco-image", &options).await;
    wait_until_ready(&container, port).await;
    eprintln!(
        "from `podman run` to /readyz 200: {:.2} s",
        started.elapsed().as_secs_f64()
    );

    env.create_credential("app", json!({})).await;
    let secret = env.wait_for_revision("app", 1).await;
    let token = secret_value(&secret, "access_token");
    assert_eq!(Some(token.clone()), env.broker.current_token(DIRECTORY));
    assert!(
        token_is_live(&env, &token).await,
        "the broker accepts the token"
    );
    env.wait_for_reason("app", "CredentialCurrent").await;
    let (status, metrics) = http_get(port, "/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("sync_client_rotations_total{result=\"success\"} 1"),
        "{metrics}"
    );

    let grace = chart_grace_period();
    let stopped = container.stop(grace).await;
    let logs = container.logs().await;
    assert_eq!(
        stopped.exit_code, 0,
        "exit code after podman stop ({stopped:?}):\n{logs}"
    );
    assert!(!stopped.killed_after_grace, "{stopped:?}");
    assert!(
        stopped.elapsed < grace,
        "stopped within the grace period: {stopped:?}"
    );
    assert!(logs.contains("shutdown requested"), "{logs}");
    assert_no_secrets(&logs, &[token]);
    eprintln!(
        "podman stop → exit 0 after {:.2} s",
        stopped.elapsed.as_secs_f64()
    );
}
