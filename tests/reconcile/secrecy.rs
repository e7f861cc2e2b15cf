//! Secrecy: no credential reaches logs, events, status, errors or Debug output.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use kube::runtime::events::EventType;
use sync_client_broker_sim::{Endpoint, SyncClients};
use sync_client_operator::api::ConditionStatus;
use sync_client_operator::controller::credential::{self};

use crate::broker_failures::permanent_broker_failure_before_generate;
use crate::issuing::client_secret_issuance;
use crate::mock_api::MockApi;
use crate::scenarios::{broker_unavailable, first_issuance, permanent_broker_failure};
use crate::world::{
    Evidence, NAME, NAMESPACE, ONE_TOKEN_CLIENT, TOKEN_TTL_MINUTES, World, assert_condition,
    new_credential, within_time,
};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
pub(crate) struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_credential_reaches_logs_events_status_errors_or_debug_output() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    // Global, not `set_default`: with one scoped dispatcher, tracing caches each callsite's
    // interest from whichever thread hits it first, and other tests run on other threads with
    // no subscriber, which would silence this one's lines. Other tests' lines land here too.
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other test installs a global subscriber");

    let evidence = within_time(async {
        let mut all = Vec::new();
        let world = World::start(ONE_TOKEN_CLIENT).await;
        all.push(first_issuance(&world).await);
        let world = World::start(SyncClients::None).await;
        all.push(permanent_broker_failure(&world, "SyncClientNotFound").await);
        let world = World::start(SyncClients::Two).await;
        all.push(permanent_broker_failure(&world, "SyncClientConflict").await);
        let world = World::start(ONE_TOKEN_CLIENT).await;
        world.sim.set_privilege(false);
        all.push(permanent_broker_failure_before_generate(&world).await);
        let world = World::start(ONE_TOKEN_CLIENT).await;
        all.push(broker_unavailable(&world).await);
        all.push(wrong_vcenter_password().await);
        let world = World::start(SyncClients::One {
            generate_token: false,
            token_ttl: TOKEN_TTL_MINUTES,
        })
        .await;
        all.push(client_secret_issuance(&world).await);
        all
    })
    .await;

    let logs = logs.text();
    // The capture works: the reconciler's own lines are there.
    assert!(
        logs.contains("credential issued") && logs.contains("issuing failed"),
        "the reconciler's lines were not captured ({} bytes of logs)",
        logs.len()
    );

    let mut checked = 0;
    for (scenario, found) in evidence.iter().enumerate() {
        let printed = found.printed.join("\n");
        assert!(!printed.is_empty());
        // Failure messages say where, never what: the credential itself is not printed.
        for (index, credential) in found.credentials.iter().enumerate() {
            assert!(credential.len() >= 8, "a credential worth checking");
            assert!(
                !logs.contains(credential.as_str()),
                "scenario {scenario}: credential {index} appears in the logs"
            );
            assert!(
                !printed.contains(credential.as_str()),
                "scenario {scenario}: credential {index} appears in a status, event, error or \
                 Debug output"
            );
            checked += 1;
        }
    }
    // Password, Basic header, session, broker token and issued token at least.
    assert!(checked >= 5, "only {checked} credentials were checked");
}

/// vCenter refuses the password: reported as an authentication failure, retried later.
pub(crate) async fn wrong_vcenter_password() -> Evidence {
    let world = World::start(ONE_TOKEN_CLIENT).await;
    let (api, client) = MockApi::start(NAMESPACE);
    let ctx = world.context(client);
    let cr = new_credential();
    let wrong_password = "Wr0ng-but-still-secret-passw0rd";
    api.expect_get_secret(NAME, None);
    world.expect_broker_resolution_with_password(&api, &cr, wrong_password);
    api.expect_dry_run_create_secret(|_| {});
    api.expect_event(EventType::Warning, "RotationFailed");
    api.expect_status_patch(&cr, |status| {
        assert_condition(
            status,
            "Ready",
            ConditionStatus::False,
            "AuthenticationFailed",
        );
    });
    let result = credential::reconcile(Arc::new(cr), ctx).await;
    api.checkpoint();
    assert_eq!(world.sim.count(Endpoint::Generate), 0);

    let mut evidence = Evidence::default();
    evidence.result(&result);
    evidence.api(&api);
    evidence.world(&world);
    evidence.credentials.push(wrong_password.to_owned());
    evidence
}
