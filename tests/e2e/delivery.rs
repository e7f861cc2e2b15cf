//! Delivery to Microsoft Entra ID provisioning, end to end: the operator binary, the broker
//! simulator and the Entra ID simulator (whose `validateCredentials` and provisioning cycles call
//! the broker simulator's SCIM endpoint with the token they hold). Each scenario prints the Graph
//! calls one rotation made (`--nocapture`).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::PostParams;
use serde_json::json;
use sync_client_broker_sim::{SyncClients, new_directory_id};
use sync_client_entra_sim::{
    AppRegistration, Call, ClientSecret, EntraSim, EntraSimConfig, Fault, JobStatusCode,
    Permission, ResetFlag, ScheduleState, ServicePrincipal,
};

use crate::harness::{DIRECTORY, Env, WAIT, assert_no_secrets, secret_value};

const CLIENT_SECRET: &str = "entra-client-secret-Vq3!e2e-never-printed";

/// The Entra ID side of a test: one app (client secret), granted
/// `Synchronization.ReadWrite.All`, and service principals with one job each.
pub(crate) struct Entra {
    pub(crate) sim: EntraSim,
    pub(crate) client_id: String,
}

impl Entra {
    pub(crate) async fn start(env: &Env) -> Self {
        let sim = EntraSim::start(EntraSimConfig {
            scim_trusted_ca_pems: vec![env.broker.ca_pem().expect("broker CA")],
            ..EntraSimConfig::default()
        })
        .await
        .expect("entra simulator");
        let client_id = new_directory_id();
        sim.register_app(
            AppRegistration::new(&client_id).with_secret(ClientSecret::new(CLIENT_SECRET)),
        );
        sim.grant(&client_id, Permission::SynchronizationReadWriteAll);
        let secrets: kube::Api<Secret> = kube::Api::namespaced(env.client.clone(), &env.namespace);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "entra-app"},
            "stringData": {"client-secret": CLIENT_SECRET},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("client secret");
        let connection: sync_client_operator::api::EntraConnection =
            serde_json::from_value(json!({
                "apiVersion": "syncclient.io/v1alpha1", "kind": "EntraConnection",
                "metadata": {"name": "entra"},
                "spec": {
                    "tenantId": sim.tenant_id(),
                    "clientId": client_id,
                    "endpoints": {"login": sim.url(), "graph": sim.url()},
                    "tls": {"caBundle": sim.ca_pem()},
                    "auth": {"clientSecret": {"name": "entra-app"}},
                    "requestTimeout": "5s",
                },
            }))
            .unwrap();
        kube::Api::namespaced(env.client.clone(), &env.namespace)
            .create(&PostParams::default(), &connection)
            .await
            .expect("connection");
        Self { sim, client_id }
    }

    /// A service principal with one provisioning job; returns its object id and the job id.
    pub(crate) fn service_principal(&self) -> (String, String) {
        let id = new_directory_id();
        let job = format!("scim.{}", new_directory_id().replace('-', ""));
        self.sim
            .add_service_principal(ServicePrincipal::new(&id).with_job(&job, "scim"));
        (id, job)
    }

    fn calls(&self) -> String {
        [
            (Call::Token, "token"),
            (Call::ListJobs, "list jobs"),
            (Call::GetJob, "get job"),
            (Call::PutSecrets, "put secrets"),
            (Call::ValidateCredentials, "validate"),
            (Call::RestartJob, "restart"),
            (Call::StartJob, "start"),
        ]
        .iter()
        .map(|(call, name)| format!("{name} {}", self.sim.count(*call)))
        .collect::<Vec<_>>()
        .join(", ")
    }

    /// Every secret value that crossed a wire in this test.
    fn secrets(&self, env: &Env) -> Vec<String> {
        let mut all = vec![CLIENT_SECRET.to_owned()];
        all.extend(self.sim.issued_access_tokens());
        all.extend(env.broker.current_token(DIRECTORY));
        all
    }
}

pub(crate) fn delivery(service_principal: &str) -> serde_json::Value {
    json!([{"name": "entra", "entraId": {
        "connectionRef": {"name": "entra"},
        "servicePrincipalId": service_principal,
    }}])
}

/// Waits until Entra ID holds the broker's live token of `directory` and the credential says so.
pub(crate) async fn delivered(
    env: &Env,
    entra: &Entra,
    name: &str,
    sp: &str,
    directory: &str,
) -> String {
    env.eventually(&format!("{name} delivered"), WAIT, || async {
        let live = env.broker.current_token(directory)?;
        let cr = env.credential(name).await;
        let status = cr.status.as_ref()?;
        // Delivered (saved, validated, job not in quarantine) at the revision the Secret holds:
        // until the status records the new revision, the condition of the one before reads True.
        let revision: i64 = env
            .secret(name)
            .await?
            .annotations()
            .get("syncclient.io/revision")?
            .parse()
            .ok()?;
        let delivered = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Delivered" && format!("{:?}", c.status) == "True")
            && status.revision == Some(revision)
            && status
                .deliveries
                .iter()
                .all(|d| d.delivered_revision == Some(revision));
        (delivered && entra.sim.held_secret_token(sp).as_deref() == Some(live.as_str()))
            .then_some(live)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_issue_and_a_renewal_are_delivered_validated_and_the_job_stays_active() {
    let env = Env::start().await;
    let entra = Entra::start(&env).await;
    let (sp, job) = entra.service_principal();
    let operator = env.operator("op", &[]);
    env.create_credential(
        "app",
        json!({"tokenTTL": "600m", "deliveries": delivery(&sp)}),
    )
    .await;
    let first = delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    let scim_url = secret_value(&env.wait_for_revision("app", 1).await, "scim_url");
    assert_eq!(entra.sim.held_base_address(&sp), Some(scim_url));
    eprintln!("delivery | first issue | {}", entra.calls());
    let status = env.credential("app").await.status.unwrap();
    let delivery = &status.deliveries[0];
    assert_eq!(delivery.delivered_revision, Some(1));
    assert_eq!(delivery.validation.as_deref(), Some("Passed"));
    assert_eq!(
        delivery.job_id.as_deref(),
        Some(job.as_str()),
        "found by listing the jobs"
    );
    assert_eq!(delivery.job_state.as_deref(), Some("Active"));

    // Settled: the first token's probe (2 s after its issue) is behind us.
    env.wait_for_first_probe("app").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kube = env.kube.as_ref().expect("the Kubernetes simulator");
    kube.clear_requests();
    entra.sim.clear_requests();
    env.annotate("app", "syncclient.io/rotate-request", "renew-1")
        .await;
    env.wait_for_revision("app", 2).await;
    let second = delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    assert_ne!(first, second);
    eprintln!("delivery | a rotation | {}", entra.calls());
    env.eventually("the delivery recorded", WAIT, || async {
        let status = env.credential("app").await.status?;
        let delivery = status.deliveries.first()?;
        (delivery.delivered_revision == Some(2) && delivery.validation.as_deref() == Some("Passed"))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let calls = crate::harness::operator_calls(kube);
    eprintln!(
        "delivery | a rotation | kubernetes calls ({}): {calls:?}",
        calls.len()
    );
    // The rotation's own (dry run, Secret write, status, event) and the delivery's status.
    for (call, times) in [("update secrets (dry run)", 1), ("update secrets", 1)] {
        assert_eq!(
            calls.iter().filter(|c| *c == call).count(),
            times,
            "{call}: {calls:?}"
        );
    }
    assert!(
        calls.len() <= 12,
        "kubernetes calls per delivered rotation: {calls:?}"
    );
    assert_eq!(entra.sim.count(Call::PutSecrets), 1, "one PUT per rotation");
    assert_eq!(entra.sim.count(Call::ValidateCredentials), 1);
    assert_eq!(
        entra.sim.count(Call::GetJob),
        2,
        "the check before the mint, the job after"
    );
    assert_eq!(
        entra.sim.count(Call::ListJobs),
        0,
        "the job found before is remembered"
    );
    assert_eq!(entra.sim.count(Call::Token), 0, "the app token is cached");
    assert_eq!(
        entra.sim.count(Call::RestartJob) + entra.sim.count(Call::StartJob),
        0
    );
    let snapshot = entra.sim.job(&sp, &job).unwrap();
    assert_eq!(snapshot.status_code, JobStatusCode::Active);
    assert_eq!(
        entra.sim.run_provisioning_cycle(&sp, &job).await,
        sync_client_entra_sim::CycleOutcome::Succeeded,
        "a provisioning cycle works with the delivered token"
    );
    assert_no_secrets(&operator.output(), &entra.secrets(&env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_quarantined_by_the_dead_token_is_put_back_to_work() {
    let env = Env::start().await;
    let entra = Entra::start(&env).await;
    let (sp, job) = entra.service_principal();
    let operator = env.operator("op", &[]);
    env.create_credential(
        "app",
        json!({"tokenTTL": "600m", "deliveries": delivery(&sp)}),
    )
    .await;
    delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    // Someone presses "Generate" elsewhere: the token Entra ID holds dies, its next cycle
    // quarantines the job.
    env.broker.generate_out_of_band(DIRECTORY);
    let outcome = entra.sim.run_provisioning_cycle(&sp, &job).await;
    assert!(
        matches!(outcome, sync_client_entra_sim::CycleOutcome::Quarantined(_)),
        "{outcome:?}"
    );
    entra.sim.clear_requests();
    let started = Instant::now();
    env.annotate("app", "syncclient.io/rotate-request", "after-quarantine")
        .await;
    delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    eprintln!(
        "delivery | quarantined job lifted in {:.1} s | {}",
        started.elapsed().as_secs_f64(),
        entra.calls()
    );
    let snapshot = entra.sim.job(&sp, &job).unwrap();
    assert_eq!(
        snapshot.status_code,
        JobStatusCode::Active,
        "the quarantine is lifted"
    );
    assert_eq!(snapshot.restart_count(ResetFlag::QuarantineState), 1);
    assert_eq!(
        snapshot.restarts_resetting(ResetFlag::ConnectorDataStore),
        0,
        "never Full or ConnectorDataStore"
    );
    assert_eq!(snapshot.starts_on_active_job(), 0);
    let status = env.credential("app").await.status.unwrap();
    assert!(
        status.deliveries[0].quarantine_lifted_time.is_some(),
        "{:?}",
        status.deliveries
    );
    crate::harness::wait_for_event(&env, "app", "QuarantineLifted").await;
    assert_eq!(
        entra.sim.run_provisioning_cycle(&sp, &job).await,
        sync_client_entra_sim::CycleOutcome::Succeeded
    );
    assert_no_secrets(&operator.output(), &entra.secrets(&env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_is_found_before_minting() {
    let env = Env::start().await;
    let entra = Entra::start(&env).await;
    let (sp, _) = entra.service_principal();
    let _operator = env.operator("op", &[]);
    env.create_credential(
        "app",
        json!({"tokenTTL": "600m", "deliveries": delivery(&sp)}),
    )
    .await;
    let held = delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    entra
        .sim
        .revoke(&entra.client_id, Permission::SynchronizationReadWriteAll);
    let generates = env.broker.generate_count(DIRECTORY);
    let started = Instant::now();
    env.annotate("app", "syncclient.io/rotate-request", "no-permission")
        .await;
    env.eventually("the mint blocked", WAIT, || async {
        let cr = env.credential("app").await;
        cr.status?
            .conditions
            .iter()
            .find(|c| c.type_ == "Issuing" && c.reason == "EntraPermissionDenied")
            .map(|_| ())
    })
    .await;
    eprintln!(
        "delivery | missing permission shown after {:.1} s | generates {}",
        started.elapsed().as_secs_f64(),
        env.broker.generate_count(DIRECTORY) - generates
    );
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        generates,
        "nothing minted"
    );
    assert_eq!(entra.sim.held_secret_token(&sp), Some(held.clone()));
    assert!(
        env.broker.token_is_valid(&held),
        "the old token still works at both ends"
    );
    assert_eq!(
        entra.sim.count(Call::PutSecrets),
        1,
        "nothing delivered since the first"
    );
}

/// Every Graph fault on the save: the token ends up in Entra ID, nothing more is minted, the
/// backoff paces the retries and a `Retry-After` is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_faults_delay_the_delivery_but_never_mint_again() {
    let env = Env::start().await;
    let entra = Entra::start(&env).await;
    let (sp, _) = entra.service_principal();
    let operator = env.operator("op", &[]);
    env.create_credential(
        "app",
        json!({"tokenTTL": "600m", "deliveries": delivery(&sp)}),
    )
    .await;
    delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    let faults: [(&str, Fault); 7] = [
        ("500", Fault::on(Call::PutSecrets).times(1).status(500)),
        ("503", Fault::on(Call::PutSecrets).times(1).status(503)),
        ("409", Fault::on(Call::PutSecrets).times(1).conflict()),
        (
            "429 without Retry-After",
            Fault::on(Call::PutSecrets).times(1).too_many_requests(None),
        ),
        (
            "429 with Retry-After 3",
            Fault::on(Call::PutSecrets)
                .times(1)
                .too_many_requests(Some(3)),
        ),
        (
            "401 (the Graph token is refreshed)",
            Fault::on(Call::PutSecrets).times(1).unauthorized(),
        ),
        (
            "dropped connection",
            Fault::on(Call::PutSecrets).times(1).drop_connection(),
        ),
    ];
    for (revision, (what, fault)) in (2..).zip(faults) {
        entra.sim.clear_requests();
        entra.sim.inject(fault);
        let generates = env.broker.generate_count(DIRECTORY);
        let started = Instant::now();
        env.annotate(
            "app",
            "syncclient.io/rotate-request",
            &format!("fault-{revision}"),
        )
        .await;
        env.wait_for_revision("app", revision).await;
        delivered(&env, &entra, "app", &sp, DIRECTORY).await;
        let took = started.elapsed();
        eprintln!(
            "delivery | fault {what} | delivered in {:.1} s | generates {} | {}",
            took.as_secs_f64(),
            env.broker.generate_count(DIRECTORY) - generates,
            entra.calls()
        );
        assert_eq!(
            env.broker.generate_count(DIRECTORY),
            generates + 1,
            "{what}: one mint"
        );
        if what.contains("Retry-After 3") {
            assert!(
                took >= Duration::from_secs(3),
                "{what}: waited as asked ({took:?})"
            );
        }
        assert!(entra.sim.count(Call::PutSecrets) >= 2, "{what}: retried");
    }
    assert_no_secrets(&operator.output(), &entra.secrets(&env));
}

/// The Secret is the record of what must be delivered: killed after the Secret write and before
/// the save, the operator delivers after its restart, without a mint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_secret_write_and_the_save_it_delivers_after_restart() {
    let env = Env::start().await;
    let entra = Entra::start(&env).await;
    let (sp, _) = entra.service_principal();
    let mut first = env.operator("first", &[]);
    env.create_credential(
        "app",
        json!({"tokenTTL": "600m", "deliveries": delivery(&sp)}),
    )
    .await;
    delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    entra.sim.inject(
        Fault::on(Call::PutSecrets)
            .times(1)
            .delay(Duration::from_secs(30))
            .status(503),
    );
    env.annotate("app", "syncclient.io/rotate-request", "then-killed")
        .await;
    env.wait_for_revision("app", 2).await;
    env.eventually("the save under way", WAIT, || async {
        (entra.sim.count(Call::PutSecrets) >= 2).then_some(())
    })
    .await;
    first.kill();
    let generates = env.broker.generate_count(DIRECTORY);
    let second = env.operator("second", &[]);
    let live = delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    eprintln!(
        "delivery | killed before the save | generates after restart {}",
        env.broker.generate_count(DIRECTORY) - generates
    );
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        generates,
        "no mint after the restart"
    );
    assert!(env.broker.token_is_valid(&live));
    assert_no_secrets(&second.output(), &entra.secrets(&env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_change_during_a_delivery_completes_it_on_the_new_leader() {
    let env = Env::start().await;
    if env.kube.is_none() {
        return;
    }
    let entra = Entra::start(&env).await;
    let (sp, _) = entra.service_principal();
    let mut a = env.operator("a", crate::leader::LEASE_ARGS);
    let mut b = env.operator("b", crate::leader::LEASE_ARGS);
    env.create_credential(
        "app",
        json!({"tokenTTL": "600m", "deliveries": delivery(&sp)}),
    )
    .await;
    delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    entra.sim.inject(
        Fault::on(Call::PutSecrets)
            .times(1)
            .delay(Duration::from_secs(30))
            .status(503),
    );
    env.annotate("app", "syncclient.io/rotate-request", "leader-change")
        .await;
    env.wait_for_revision("app", 2).await;
    env.eventually("the save under way", WAIT, || async {
        (entra.sim.count(Call::PutSecrets) >= 2).then_some(())
    })
    .await;
    let generates = env.broker.generate_count(DIRECTORY);
    // Kill the leader; the standby takes over and delivers from the Secret.
    if crate::leader::acquired(&a.output()) {
        a.kill();
    } else {
        b.kill();
    }
    let live = delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    eprintln!(
        "delivery | leader change | generates by the new leader {}",
        env.broker.generate_count(DIRECTORY) - generates
    );
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        generates,
        "delivered without a mint"
    );
    assert!(env.broker.token_is_valid(&live));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_sharing_one_app_registration_sign_in_once() {
    let env = Env::start().await;
    let entra = Entra::start(&env).await;
    let other = "9c1e2d3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
    env.broker.add_directory(
        other,
        SyncClients::One {
            generate_token: true,
            token_ttl: 600,
        },
    );
    let (first_sp, _) = entra.service_principal();
    let (second_sp, _) = entra.service_principal();
    let operator = env.operator("op", &[]);
    env.create_credential(
        "first",
        json!({"tokenTTL": "600m", "deliveries": delivery(&first_sp)}),
    )
    .await;
    env.create_credential(
        "second",
        json!({"directoryId": other, "tokenTTL": "600m", "deliveries": delivery(&second_sp)}),
    )
    .await;
    delivered(&env, &entra, "first", &first_sp, DIRECTORY).await;
    delivered(&env, &entra, "second", &second_sp, other).await;
    eprintln!("delivery | two credentials, one app | {}", entra.calls());
    assert_eq!(
        entra.sim.token_requests_by(&entra.client_id),
        1,
        "one Graph login"
    );
    let mut secrets = entra.secrets(&env);
    secrets.extend(env.broker.current_token(other));
    assert_no_secrets(&operator.output(), &secrets);
    // Status and events hold none of them either.
    let objects = serde_json::to_string(
        &env.credentials()
            .list(&kube::api::ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let events = serde_json::to_string(
        &kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(
            env.client.clone(),
            &env.namespace,
        )
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items,
    )
    .unwrap();
    for secret in &secrets {
        assert!(
            !objects.contains(secret.as_str()) && !events.contains(secret.as_str()),
            "a secret in status or events"
        );
    }
}

/// A job paused or left alone is not started: an active job gets no `start`, and a quarantine is
/// only lifted with `QuarantineState`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_or_paused_job_is_never_started_or_reset() {
    let env = Env::start().await;
    let entra = Entra::start(&env).await;
    let (sp, job) = entra.service_principal();
    assert!(
        entra
            .sim
            .set_job_state(&sp, &job, JobStatusCode::Paused, ScheduleState::Paused)
    );
    let _operator = env.operator("op", &[]);
    env.create_credential(
        "app",
        json!({"tokenTTL": "600m", "deliveries": delivery(&sp)}),
    )
    .await;
    delivered(&env, &entra, "app", &sp, DIRECTORY).await;
    let snapshot = entra.sim.job(&sp, &job).unwrap();
    assert_eq!(
        snapshot.status_code,
        JobStatusCode::Paused,
        "left as the administrator left it"
    );
    assert!(snapshot.restarts.is_empty() && snapshot.starts.is_empty());
}
