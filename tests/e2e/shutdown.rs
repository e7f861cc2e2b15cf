//! Stopping: SIGTERM ends the process promptly and cleanly, even before the caches synced.

use std::time::Duration;

use sync_client_kube_sim::Fault;

use crate::harness::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_before_the_caches_synced_exits_at_once() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return;
    };
    // The credential list hangs, so the cache cannot sync while the process is stopped.
    kube.inject(Fault::latency("list", "syncclientcredentials", Duration::from_secs(60)).always());
    let mut operator = env.operator("early-stop", &[]);
    env.eventually(
        "the controllers to start",
        Duration::from_secs(30),
        || async {
            operator
                .output()
                .contains("controllers started")
                .then_some(())
        },
    )
    .await;
    // `terminate` waits a bounded 10 s for the exit; before the fix the process never exited.
    assert!(
        operator.terminate(),
        "graceful exit on SIGTERM: {}",
        operator.output()
    );
    assert!(
        operator
            .output()
            .contains("stopped before the caches synced")
    );
}
