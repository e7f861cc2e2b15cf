//! A reconcile the fence stops (the operator shutting down, or no longer surely the leader):
//! the broker client asks the fence right before the generate request and is refused, so
//! nothing is sent, and the reconcile reports nothing: no Secret write, no event, no status
//! patch, no rotation metric.

use std::sync::Arc;

use chrono::TimeDelta;
use sync_client_broker_sim::Endpoint;
use sync_client_operator::controller::credential;
use sync_client_operator::controller::fence::Fence;
use sync_client_operator::controller::{Context, Options};
use sync_client_operator::metrics::Metrics;

use crate::mock_api::MockApi;
use crate::world::{NAME, NAMESPACE, ONE_TOKEN_CLIENT, World, new_credential, within_time};

#[tokio::test]
async fn a_reconcile_stopped_by_the_fence_at_shutdown_reports_nothing() {
    within_time(async {
        let world = World::start(ONE_TOKEN_CLIENT).await;
        let (api, client) = MockApi::start(NAMESPACE);
        let fence = Fence::default();
        let ctx = Arc::new(
            Context::new(
                client,
                &Options::new(world.key.clone()),
                Arc::new(Metrics::new()),
            )
            .with_clock(world.clock.clone())
            .with_fence(fence.clone()),
        );
        let cr = new_credential();
        // Issued 50 minutes ago for an hour: the renewal is due.
        let existing = world.owned_secret(&cr, world.ago(50 * 60), TimeDelta::hours(1), 3);
        api.expect_get_secret(NAME, Some(existing));
        world.expect_broker_resolution(&api, &cr);
        api.expect_dry_run_replace_secret(NAME, |_| {});
        // SIGTERM: the fence closes before the broker client sends the generate.
        fence.close();

        let action = credential::reconcile(Arc::new(cr), ctx.clone())
            .await
            .expect("a fenced reconcile is no error");
        // No Secret write, event or status patch came (the mock fails on any request it was
        // not told to expect).
        api.checkpoint();

        assert_eq!(world.sim.count(Endpoint::Generate), 0, "nothing was sent");
        assert_eq!(world.sim.generate_count(crate::world::DIRECTORY), 0);
        let metrics = ctx.metrics.encode();
        assert!(
            !metrics.contains("sync_client_rotations_total{"),
            "no rotation counted: {metrics}"
        );
        assert!(
            action != kube::runtime::controller::Action::await_change(),
            "it looks again if this replica still runs"
        );
    })
    .await;
}
