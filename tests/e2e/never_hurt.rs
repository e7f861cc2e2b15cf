//! Every mint revokes the token the consumer holds: nothing mints without need, no renewal
//! stalls in silence, and a probe re-issues only when it is sure. Each scenario prints the
//! generates it caused and how long the status took to show it (`--nocapture`).

use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sync_client_broker_sim::{Endpoint, Fault, SyncClients};

use crate::harness::{DIRECTORY, Env, WAIT, assert_no_secrets, secret_value, token_is_live};
use crate::reliability::record_mints;

/// Prints a scenario's generates and how long the status took to show it.
fn report(scenario: &str, generates: usize, shown_after: Option<Duration>) {
    eprintln!(
        "never-hurt | {scenario} | generates {generates} | status after {}",
        shown_after.map_or_else(|| "-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
}

/// Patches the spec and waits until the status has seen the new generation.
async fn edit_spec(env: &Env, name: &str, spec: serde_json::Value) {
    let patched = env
        .credentials()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": spec })),
        )
        .await
        .expect("patch spec");
    let generation = patched.metadata.generation;
    env.eventually(&format!("{name} observed {spec}"), WAIT, || async {
        let cr = env.credential(name).await;
        let status = cr.status?;
        (status.observed_generation == generation
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.observed_generation == generation))
        .then_some(())
    })
    .await;
}

fn condition(
    cr: &sync_client_operator::api::SyncClientCredential,
    type_: &str,
) -> Option<(String, String)> {
    let c = cr
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((format!("{:?}", c.status), c.reason.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_that_change_nothing_mint_nothing() {
    let env = Env::start().await;
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({"tokenTTL": "720h"}))
        .await;
    let secret = env.wait_for_revision("app", 1).await;
    let token = secret_value(&secret, "access_token");
    for (case, what, spec) in [
        (
            "edit-ttl-spelling",
            "tokenTTL 720h written as 43200m",
            json!({"tokenTTL": "43200m"}),
        ),
        (
            "edit-default-secret-name",
            "the default secretName written out",
            json!({"secretName": "app"}),
        ),
        ("edit-empty-keys", "keys: {}", json!({"keys": {}})),
        (
            "edit-directory-case",
            "the directory id in upper case",
            json!({"directoryId": DIRECTORY.to_uppercase()}),
        ),
        (
            "edit-renew-before",
            "renewBeforePercentage",
            json!({"renewBeforePercentage": 40}),
        ),
    ] {
        edit_spec(&env, "app", spec).await;
        // A mint would follow the status at once: give it a moment to show.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let generates = env.broker.generate_count(DIRECTORY);
        report(what, generates - 1, None);
        assert_eq!(generates, 1, "{what} minted");
        record_mints(case, generates - 1);
    }
    let secret = env.secret("app").await.expect("secret");
    assert_eq!(secret_value(&secret, "access_token"), token);
    assert!(token_is_live(&env, &token).await);
    assert_no_secrets(&operator.output(), &[token]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_secret_name_keys_or_template_move_the_credential_held_without_a_mint() {
    let env = Env::start().await;
    let operator = env.operator("op", &[]);
    env.create_credential("app", json!({"tokenTTL": "720h"}))
        .await;
    let token = secret_value(&env.wait_for_revision("app", 1).await, "access_token");

    let started = Instant::now();
    edit_spec(&env, "app", json!({"secretName": "renamed"})).await;
    let moved = env
        .eventually("the renamed Secret", WAIT, || async {
            env.secret("renamed").await
        })
        .await;
    let moved_mints = env.broker.generate_count(DIRECTORY) - 1;
    report("secretName changed", moved_mints, Some(started.elapsed()));
    assert_eq!(
        secret_value(&moved, "access_token"),
        token,
        "the live token moved"
    );
    assert_eq!(moved.annotations()["syncclient.io/revision"], "1");
    assert!(
        env.secret("app").await.is_some(),
        "the old Secret is kept (owned, garbage collected with the credential)"
    );

    let started = Instant::now();
    edit_spec(&env, "app", json!({"keys": {"accessToken": "token"}})).await;
    let renamed = env
        .eventually("the token under its new key", WAIT, || async {
            let secret = env.secret("renamed").await?;
            secret
                .data
                .as_ref()?
                .contains_key("token")
                .then_some(secret)
        })
        .await;
    let renamed_mints = env.broker.generate_count(DIRECTORY) - 1;
    report(
        "keys.accessToken renamed",
        renamed_mints,
        Some(started.elapsed()),
    );
    assert_eq!(secret_value(&renamed, "token"), token);
    assert!(!renamed.data.as_ref().unwrap().contains_key("access_token"));

    let started = Instant::now();
    edit_spec(
        &env,
        "app",
        json!({"secretTemplate": {"labels": {"team": "blue"}, "annotations": {"owner": "identity"}}}),
    )
    .await;
    env.eventually("the template on the Secret", WAIT, || async {
        let secret = env.secret("renamed").await?;
        (secret.labels().get("team").map(String::as_str) == Some("blue")).then_some(())
    })
    .await;
    let template_mints = env.broker.generate_count(DIRECTORY) - 1;
    report(
        "secretTemplate changed",
        template_mints,
        Some(started.elapsed()),
    );
    assert_eq!(env.broker.generate_count(DIRECTORY), 1, "nothing minted");
    assert!(
        token_is_live(&env, &token).await,
        "the Secret holds the live token"
    );
    let cr = env.wait_for_reason("app", "CredentialCurrent").await;
    assert_eq!(cr.status.unwrap().secret_name.as_deref(), Some("renamed"));
    assert_no_secrets(&operator.output(), &[token]);
    record_mints("secret-renamed", moved_mints);
    record_mints("key-renamed", renamed_mints);
    record_mints("template-changed", template_mints);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fingerprint_key_rotation_mints_nothing() {
    let env = Env::start().await;
    let old = env.dir.path().join("old-key");
    let new = env.dir.path().join("new-key");
    std::fs::write(&old, "the-old-fingerprint-key").unwrap();
    std::fs::write(&new, "the-new-fingerprint-key").unwrap();
    let mut first = env.operator("first", &["--fingerprint-key-file", old.to_str().unwrap()]);
    env.create_credential("app", json!({"tokenTTL": "720h"}))
        .await;
    let before = env.wait_for_revision("app", 1).await;
    let old_fingerprint = before.annotations()["syncclient.io/fingerprint"].clone();
    assert!(first.terminate(), "a clean stop");

    let started = Instant::now();
    let second = env.operator(
        "second",
        &[
            "--fingerprint-key-file",
            new.to_str().unwrap(),
            "--fingerprint-previous-key-file",
            old.to_str().unwrap(),
        ],
    );
    let after = env
        .eventually(
            "the Secret fingerprinted with the new key",
            WAIT,
            || async {
                let secret = env.secret("app").await?;
                let fingerprint = secret.annotations()["syncclient.io/fingerprint"].clone();
                (fingerprint != old_fingerprint).then_some(secret)
            },
        )
        .await;
    report(
        "fingerprint key rotated",
        env.broker.generate_count(DIRECTORY) - 1,
        Some(started.elapsed()),
    );
    let key_id = |f: &str| f.split(':').nth(1).unwrap_or_default().to_owned();
    assert_ne!(
        key_id(&after.annotations()["syncclient.io/fingerprint"]),
        key_id(&old_fingerprint)
    );
    assert_eq!(after.data, before.data, "the data did not change");
    assert_eq!(after.annotations()["syncclient.io/revision"], "1");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.broker.generate_count(DIRECTORY), 1, "nothing minted");
    assert_no_secrets(&second.output(), &[secret_value(&after, "access_token")]);
    record_mints(
        "fingerprint-key-rotated",
        env.broker.generate_count(DIRECTORY) - 1,
    );
}

/// A renewal refused once (403, then 404 for another directory) is retried on the slow backoff
/// before the token expires; meanwhile the status names the reason and the metrics show it due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_renewal_is_retried_before_expiry_and_shows_meanwhile() {
    const DENIED: &str = "7b3d0a9e-4c1f-4e2a-9b8d-0a1b2c3d4e51";
    const MISSING: &str = "7b3d0a9e-4c1f-4e2a-9b8d-0a1b2c3d4e52";
    let env = Env::start().await;
    for directory in [DENIED, MISSING] {
        env.broker.add_directory(
            directory,
            SyncClients::One {
                generate_token: true,
                token_ttl: 150,
            },
        );
    }
    let operator = env.operator("op", &[]);
    // 150-second tokens, renewed at half their lifetime: 75 s to retry before they expire.
    for (name, directory) in [("denied", DENIED), ("missing", MISSING)] {
        env.create_credential(
            name,
            json!({"directoryId": directory, "tokenTTL": "150m", "renewBeforePercentage": 50}),
        )
        .await;
        env.wait_for_revision(name, 1).await;
    }
    env.broker.inject(
        Fault::on(Endpoint::Generate)
            .for_directory(DENIED)
            .times(1)
            .status(403),
    );
    env.broker.inject(
        Fault::on(Endpoint::Generate)
            .for_directory(MISSING)
            .times(1)
            .status(404),
    );
    let cases = [
        ("denied", "PermissionDenied"),
        ("missing", "SyncClientNotFound"),
    ];
    let mut planned = Vec::new();
    for (name, _) in cases {
        let first = env
            .wait_for_reason(name, "CredentialCurrent")
            .await
            .status
            .unwrap();
        planned.push((first.renewal_time.unwrap(), first.expires_at.unwrap()));
    }
    for ((name, reason), (due, expires_at)) in cases.into_iter().zip(planned.clone()) {
        let refused = refused_and_retrying(&env, name, reason).await;
        let shown = chrono::Utc::now() - due;
        let status = refused.status.as_ref().unwrap();
        assert_eq!(
            condition(&refused, "Ready"),
            Some(("True".into(), "CredentialCurrent".into())),
            "the token still works"
        );
        let retry = status.renewal_time.expect("the next try");
        assert!(
            retry > due && retry < expires_at,
            "{name}: retried at {retry}, after {due} and before the expiry {expires_at}"
        );
        assert!(
            status.renewal_due_time.is_some_and(|since| since <= due),
            "{name}: due since the planned renewal: {status:?}"
        );
        // The metrics are computed from the operator's cache, a moment behind the API.
        env.eventually(&format!("{name}: the due gauge"), WAIT, || async {
            let (_, metrics) = operator.http_get("/metrics").await?;
            metrics
                .lines()
                .any(|l| {
                    l.starts_with("sync_client_credential_renewal_due_timestamp_seconds")
                        && l.contains(&format!("name=\"{name}\""))
                })
                .then_some(())
        })
        .await;
        report(
            &format!("renewal refused once with {reason}: shown"),
            0,
            shown.to_std().ok(),
        );
    }
    for ((name, reason), (_, expires_at)) in cases.into_iter().zip(planned) {
        let renewed = env
            .wait_for_revision_within(name, 2, Duration::from_secs(90))
            .await;
        let issued: chrono::DateTime<chrono::Utc> =
            renewed.annotations()["syncclient.io/issued-at"]
                .parse()
                .unwrap();
        assert!(
            issued < expires_at,
            "{name}: renewed at {issued}, before the expiry {expires_at}"
        );
        report(
            &format!("renewal refused once with {reason}: retried"),
            1,
            None,
        );
        let after = env
            .wait_for_reason(name, "CredentialCurrent")
            .await
            .status
            .unwrap();
        assert_eq!(after.renewal_due_time, None, "{name}: nothing due any more");
    }
    assert_eq!(env.broker.generate_count(DENIED), 2);
    assert_eq!(env.broker.generate_count(MISSING), 2);
    record_mints("renewal-refused-403", env.broker.generate_count(DENIED) - 1);
    record_mints(
        "renewal-refused-404",
        env.broker.generate_count(MISSING) - 1,
    );
}

async fn refused_and_retrying(
    env: &Env,
    name: &str,
    reason: &str,
) -> sync_client_operator::api::SyncClientCredential {
    env.eventually(
        &format!("{name} refused and retrying"),
        Duration::from_secs(120),
        || async {
            let cr = env.credential(name).await;
            (condition(&cr, "Issuing") == Some(("True".into(), reason.into()))).then_some(cr)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_false_the_moment_the_stored_token_expires() {
    let env = Env::start().await;
    let _operator = env.operator("op", &[]);
    env.create_credential("app", json!({"tokenTTL": "20m"}))
        .await;
    env.wait_for_revision("app", 1).await;
    env.broker
        .inject(Fault::on(Endpoint::Generate).times(10_000).status(503));
    let expires_at = env
        .credential("app")
        .await
        .status
        .unwrap()
        .expires_at
        .unwrap();
    let ready = env
        .eventually("Ready False", Duration::from_secs(40), || async {
            let cr = env.credential("app").await;
            let ready = cr
                .status
                .as_ref()?
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")?
                .clone();
            (format!("{:?}", ready.status) == "False").then_some(ready)
        })
        .await;
    let late = ready.last_transition_time - expires_at;
    report(
        "token expired while renewal fails",
        env.broker.generate_count(DIRECTORY),
        late.to_std().ok(),
    );
    assert!(
        ready.last_transition_time >= expires_at,
        "not before the expiry"
    );
    assert!(
        late <= chrono::TimeDelta::seconds(3),
        "Ready turned False {late} after the expiry"
    );
    record_mints(
        "expired-while-failing",
        env.broker.generate_count(DIRECTORY) - 1,
    );
}

/// A generate the operator gave up on (the request timeout is 2 s) lands at the broker 12 s
/// later and revokes the token the retry stored; once the late request can no longer land (the
/// window, 20 s here), the stored token is probed and replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generate_that_lands_late_is_found_and_replaced_within_the_window() {
    let env = Env::start().await;
    let operator = env.operator("op", &["--unknown-outcome-window", "20s"]);
    env.create_credential("app", json!({"tokenTTL": "600m"}))
        .await;
    env.wait_for_revision("app", 1).await;
    // The first token is probed soon after it is issued: the broker's probe is seen to work.
    env.eventually("the first probe", WAIT, || async {
        let status = env.credential("app").await.status?;
        (status.last_verify_result.as_deref() == Some("Valid")).then_some(())
    })
    .await;
    env.broker.inject(
        Fault::on(Endpoint::Generate)
            .times(1)
            .process_late(Duration::from_secs(12)),
    );
    let started = Instant::now();
    env.annotate("app", "syncclient.io/rotate-request", "late-1")
        .await;
    let retried = env.wait_for_revision("app", 2).await;
    let stored = secret_value(&retried, "access_token");
    env.eventually(
        "the late generate landing",
        Duration::from_secs(30),
        || async { (!env.broker.token_is_valid(&stored)).then_some(()) },
    )
    .await;
    let Ok(replaced) = tokio::time::timeout(
        Duration::from_secs(60),
        env.wait_for_revision_within("app", 3, Duration::from_secs(120)),
    )
    .await
    else {
        let _ = std::fs::copy(&operator.log, "/tmp/late-op.log");
        panic!("not replaced");
    };
    let live = secret_value(&replaced, "access_token");
    report(
        "generate answered after the request timeout, late mint",
        env.broker.generate_count(DIRECTORY),
        Some(started.elapsed()),
    );
    assert!(
        token_is_live(&env, &live).await,
        "the Secret holds the live token again"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "within the window and its probe"
    );
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        4,
        "first, late, retry, replacement"
    );
    assert_no_secrets(&operator.output(), &[stored, live]);
    record_mints("late-generate", env.broker.generate_count(DIRECTORY) - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_refuses_every_token_revokes_nothing() {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::ScimProbe).times(10_000).status(401));
    let _operator = env.operator("op", &[]);
    env.create_credential("app", json!({"tokenTTL": "600m", "verifyInterval": "10s"}))
        .await;
    let token = secret_value(&env.wait_for_revision("app", 1).await, "access_token");
    let started = Instant::now();
    let status = env
        .eventually("verification reported unavailable", WAIT, || async {
            let status = env.credential("app").await.status?;
            status
                .last_verify_result
                .as_deref()
                .is_some_and(|r| r.starts_with("Unavailable"))
                .then_some(status)
        })
        .await;
    let shown = started.elapsed();
    // Several regular probes later, still nothing minted.
    tokio::time::sleep(Duration::from_secs(25)).await;
    report(
        "probe answers 401 for every token",
        env.broker.generate_count(DIRECTORY),
        Some(shown),
    );
    assert_eq!(
        env.broker.generate_count(DIRECTORY),
        1,
        "the token was kept"
    );
    assert!(
        env.broker.count(Endpoint::ScimProbe) >= 4,
        "probed again and again"
    );
    assert!(env.broker.token_is_valid(&token));
    assert_eq!(
        condition(&env.credential("app").await, "Ready"),
        Some(("True".into(), "CredentialCurrent".into()))
    );
    assert!(
        status
            .last_verify_result
            .unwrap()
            .contains("the probe itself may be at fault")
    );
    record_mints(
        "probe-refuses-every-token",
        env.broker.generate_count(DIRECTORY) - 1,
    );
}
