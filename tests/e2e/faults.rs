//! The fault matrix: one broker or Kubernetes fault per test, each with its expected attempts,
//! final reason and a bound on broker calls, while a guard watches that no owned Secret is
//! deleted or emptied. Each test writes its row of `docs/reliability.md` (see `reliability.rs`).
//!
//! Credentials here live 600 s (`tokenTTL: 600m` with the simulator's 1 s minutes), so no
//! scheduled renewal falls inside a test unless the case asks for one; mid-run faults are
//! followed by a rotate request, which is served at once.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};

use kube::api::{Patch, PatchParams};
use serde_json::json;
use sync_client_broker_sim::{Endpoint, Fault};
use sync_client_kube_sim::{DryRunMatch, Fault as KubeFault};
use sync_client_operator::api::SyncClientCredential;

use crate::chaos_kit::{SecretGuard, attempts};
use crate::harness::{BROKER_NAME, DIRECTORY, Env, Operator, WAIT};
use crate::harness::{assert_no_secrets, secret_value, token_is_live};
use crate::reliability::{Row, record};

const APP: &str = "app";
const ROTATE: &str = "syncclient.io/rotate-request";
/// After the final state: long enough for a retry storm or a late duplicate call to show.
const QUIET: Duration = Duration::from_secs(3);
const CURRENT: &str = "CredentialCurrent";
const RETRY_AFTER_SECONDS: u64 = 8;

/// The Ready condition's reason and message.
pub fn ready(cr: &SyncClientCredential) -> Option<(String, String)> {
    cr.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.reason.to_string(), c.message.to_string()))
}

/// What a case must end with.
struct Expect {
    attempts: &'static [&'static str],
    ready: &'static str,
    generates: usize,
    broker_calls: usize,
}

/// One running case: its world, the operator, the Secret guard.
struct Scenario {
    env: Env,
    guard: SecretGuard,
    operator: Operator,
    case: &'static str,
    /// When the fault took effect, for the printed time to recovery.
    fault_at: std::cell::Cell<Instant>,
    /// Credentials seen, for the scan of the operator's output.
    tokens: Vec<String>,
}

impl Scenario {
    /// Starts the operator (faults injected into `env` before are in place from the start) and
    /// creates the credential `app` with `extra` merged into its spec.
    async fn start(case: &'static str, env: Env, extra: serde_json::Value) -> Scenario {
        let guard = SecretGuard::start(&env);
        let operator = env.operator(case, &[]);
        let mut spec = json!({"tokenTTL": "600m"});
        crate::harness::merge(&mut spec, &extra);
        env.create_credential(APP, spec).await;
        Scenario {
            env,
            guard,
            operator,
            case,
            fault_at: std::cell::Cell::new(Instant::now()),
            tokens: Vec::new(),
        }
    }

    /// Waits for the first credential, before a mid-run fault.
    async fn issued(&mut self) {
        let secret = self.env.wait_for_revision(APP, 1).await;
        self.tokens.push(secret_value(&secret, "access_token"));
        self.env.wait_for_reason(APP, CURRENT).await;
    }

    fn fault_now(&self) {
        self.fault_at.set(Instant::now());
    }

    async fn rotate(&self, value: &str) {
        self.env.annotate(APP, ROTATE, value).await;
    }

    async fn credential(&self) -> SyncClientCredential {
        self.env.credential(APP).await
    }

    /// Waits until the history shows `attempt` (`Trigger: Outcome`).
    async fn wait_for_attempt(&self, attempt: &str) -> SyncClientCredential {
        self.env
            .eventually(&format!("attempt {attempt}"), WAIT, || async {
                let cr = self.env.credentials().get_opt(APP).await.ok()??;
                attempts(&cr).iter().any(|a| a == attempt).then_some(cr)
            })
            .await
    }

    /// Waits (bounded) until the history and the Ready reason are the expected ones.
    async fn settled(&self, expect: &Expect) -> SyncClientCredential {
        let deadline = Instant::now() + WAIT;
        loop {
            let cr = self.env.credentials().get_opt(APP).await.ok().flatten();
            let seen = cr.as_ref().map(|cr| (attempts(cr), ready(cr)));
            if let (Some(cr), Some((attempts, Some((reason, _))))) = (&cr, &seen)
                && attempts == expect.attempts
                && reason == expect.ready
            {
                return cr.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out after {WAIT:?} waiting for attempts {:?} and Ready {}; last seen \
                 {seen:?}",
                self.case,
                expect.attempts,
                expect.ready
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn finish(self, expect: &Expect) {
        let reached = self.settled(expect).await;
        let recovery = self.fault_at.get().elapsed();
        tokio::time::sleep(QUIET).await;
        let generates = self.env.broker.count(Endpoint::Generate);
        let broker_calls = self.env.broker.requests().len();
        let cr = self.credential().await;
        let seen = attempts(&cr);
        println!(
            "{}: Ready {} after {recovery:.1?} from the fault; attempts {seen:?}; generate calls \
             {generates}, broker calls {broker_calls}; last message: {}",
            self.case,
            expect.ready,
            ready(&reached).map(|r| r.1).unwrap_or_default()
        );
        assert_eq!(seen, expect.attempts, "{}: attempts", self.case);
        assert_eq!(
            ready(&cr).map(|r| r.0).as_deref(),
            Some(expect.ready),
            "{}: the final reason held through the quiet window",
            self.case
        );
        assert_eq!(generates, expect.generates, "{}: generate calls", self.case);
        assert_eq!(
            broker_calls, expect.broker_calls,
            "{}: broker calls",
            self.case
        );
        let mut tokens = self.tokens.clone();
        if expect.ready == CURRENT {
            let secret = self.env.secret(APP).await.expect("the Secret");
            let token = secret_value(&secret, "access_token");
            assert_eq!(
                self.env.broker.current_token(DIRECTORY).as_deref(),
                Some(token.as_str()),
                "{}: the Secret holds the broker's current token",
                self.case
            );
            assert!(self.env.broker.token_is_valid(&token));
            assert!(
                token_is_live(&self.env, &token).await,
                "{}: the SCIM probe accepts the stored token",
                self.case
            );
            tokens.push(token);
        }
        self.guard.assert_intact(&self.env).await;
        assert_no_secrets(&self.operator.output(), &tokens);
        record(&Row {
            case: self.case,
            attempts: seen,
            ready: expect.ready.to_owned(),
            generates: expect.generates,
            broker_calls: expect.broker_calls,
        });
    }
}

/// A case whose fault hits the first issue and heals by itself: one failed attempt (with
/// `failure`), then the credential.
async fn first_issue_fails_once(case: &'static str, fault: Fault, failure: &'static str) {
    let env = Env::start().await;
    env.broker.inject(fault);
    let scenario = Scenario::start(case, env, json!({})).await;
    // One login and one broker token (shared by the broker's status check and the credential),
    // the failed generate and the one that worked; after a refusal the first token through the
    // broker is probed 2 s after its issue, after an unknown outcome the probe waits for the end
    // of the window a late generate may still land in (beyond this scenario).
    let (attempts, broker_calls): (&'static [&'static str], usize) = match failure {
        "BrokerUnavailable" => (
            &["SecretMissing: BrokerUnavailable", "SecretMissing: Issued"],
            5,
        ),
        "RotationStateUnknown" => (
            &[
                "SecretMissing: RotationStateUnknown",
                "SecretMissing: Issued",
            ],
            4,
        ),
        other => panic!("no expectation for {other}"),
    };
    scenario
        .finish(&Expect {
            attempts,
            ready: CURRENT,
            generates: 2,
            broker_calls,
        })
        .await;
}

// ---- broker faults at the first issue ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_503() {
    first_issue_fails_once(
        "generate-503",
        Fault::on(Endpoint::Generate).status(503),
        "BrokerUnavailable",
    )
    .await;
}

/// Generate answers 429 with `Retry-After`; returns the scenario once the retry reached the
/// broker, the failure time, every retry time the status planned meanwhile, and when the retry
/// was seen (after it arrived, so `seen - failed` is at least the real gap).
async fn throttled_by_429(
    case: &'static str,
) -> (
    Scenario,
    chrono::DateTime<Utc>,
    Vec<chrono::DateTime<Utc>>,
    chrono::DateTime<Utc>,
) {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::Generate).too_many_requests(RETRY_AFTER_SECONDS));
    let scenario = Scenario::start(case, env, json!({})).await;
    let failed = scenario
        .wait_for_attempt("SecretMissing: BrokerUnavailable")
        .await;
    let failed_at = failed
        .status
        .and_then(|s| s.last_failure_time)
        .expect("lastFailureTime");
    let mut planned = Vec::new();
    let deadline = Instant::now() + WAIT;
    let retry_seen = loop {
        if scenario.env.broker.count(Endpoint::Generate) >= 2 {
            break Utc::now();
        }
        let status = scenario.credential().await.status.expect("status");
        if let Some(at) = status
            .next_retry_time
            .filter(|_| status.failed_attempts > 0)
            && !planned.contains(&at)
        {
            planned.push(at);
        }
        assert!(Instant::now() < deadline, "no retry within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "{case}: failed {failed_at}, planned retries {planned:?}, retry seen {:.1} s after the \
         failure (Retry-After {RETRY_AFTER_SECONDS} s)",
        (retry_seen - failed_at).as_seconds_f64()
    );
    (scenario, failed_at, planned, retry_seen)
}

const AFTER_429: Expect = Expect {
    attempts: &["SecretMissing: BrokerUnavailable", "SecretMissing: Issued"],
    ready: CURRENT,
    generates: 2,
    broker_calls: 5,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_429_retry_after() {
    let (scenario, ..) = throttled_by_429("generate-429-retry-after").await;
    scenario.finish(&AFTER_429).await;
}

/// BUG (see the report): `Retry-After` is honoured only by the reconcile that failed (its
/// requeue and the status it writes). That status write triggers the next reconcile at once,
/// whose planner (`planner::retry_time` via `issue_or_hold`) knows only the exponential backoff
/// (5 s, jittered): it overwrites `nextRetryTime` and the requeue, and the retry comes after
/// 3.75-5 s instead of 8 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_429_retry_after_is_honoured() {
    let (scenario, failed_at, planned, retry_seen) =
        throttled_by_429("generate-429-retry-after-honoured").await;
    let wanted = TimeDelta::seconds(RETRY_AFTER_SECONDS.cast_signed());
    assert!(
        planned.iter().all(|at| *at - failed_at >= wanted),
        "every planned retry honours Retry-After: failed {failed_at}, planned {planned:?}"
    );
    // 1 s slack: status times may be cut to whole seconds.
    assert!(
        retry_seen - failed_at >= wanted - TimeDelta::seconds(1),
        "the retry came {:.1} s after the failure; Retry-After asked for {RETRY_AFTER_SECONDS} s",
        (retry_seen - failed_at).as_seconds_f64()
    );
    scenario.finish(&AFTER_429).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_html_error_page() {
    first_issue_fails_once(
        "generate-html-error-page",
        Fault::on(Endpoint::Generate).html(
            502,
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        ),
        // A gateway error on generate may come after the broker rotated: the operator cannot
        // tell, so it resolves the state quickly.
        "RotationStateUnknown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_dropped_connection() {
    first_issue_fails_once(
        "generate-dropped-connection",
        Fault::on(Endpoint::Generate).drop_connection(),
        "RotationStateUnknown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_reset_mid_body() {
    first_issue_fails_once(
        "generate-reset-mid-body",
        Fault::on(Endpoint::Generate).reset_mid_body(),
        "RotationStateUnknown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_slow_body() {
    first_issue_fails_once(
        "generate-slow-body",
        Fault::on(Endpoint::Generate).slow_body(Duration::from_secs(5)),
        "RotationStateUnknown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_malformed_body() {
    first_issue_fails_once(
        "generate-malformed-body",
        Fault::on(Endpoint::Generate).malformed_success(),
        "RotationStateUnknown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_oversized_body() {
    first_issue_fails_once(
        "generate-oversized-body",
        Fault::on(Endpoint::Generate).oversized_body(),
        "RotationStateUnknown",
    )
    .await;
}

/// The body is the real JSON answer under a wrong `Content-Type`: the operator reads it, so no
/// rotation is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_wrong_content_type() {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::Generate).content_type("text/plain; charset=utf-8"));
    let scenario = Scenario::start("generate-wrong-content-type", env, json!({})).await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued"],
            ready: CURRENT,
            generates: 1,
            broker_calls: 4,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_html_after_rotation() {
    first_issue_fails_once(
        "generate-html-after-rotation",
        Fault::on(Endpoint::Generate).process_then_html(
            502,
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        ),
        "RotationStateUnknown",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_expired_on_arrival() {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::Generate).access_token_expire_in(&json!(-5)));
    let scenario = Scenario::start("generate-expired-on-arrival", env, json!({})).await;
    // The token is stored anyway (the old one is revoked), and replaced with backoff.
    let failed = scenario
        .wait_for_attempt("SecretMissing: BrokerResponseInvalid")
        .await;
    let status = failed.status.unwrap();
    assert!(status.next_retry_time.is_some());
    assert_eq!(status.revision, Some(1));
    let stored = scenario.env.wait_for_revision(APP, 1).await;
    assert_eq!(
        scenario.env.broker.current_token(DIRECTORY).as_deref(),
        Some(secret_value(&stored, "access_token").as_str()),
        "the token of the anomalous answer is stored"
    );
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: BrokerResponseInvalid", "Expired: Issued"],
            ready: CURRENT,
            generates: 2,
            broker_calls: 5,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_403() {
    let env = Env::start().await;
    env.broker
        .inject(Fault::on(Endpoint::Generate).vapi_error("UNAUTHORIZED", "Permission denied."));
    let scenario = Scenario::start("generate-403", env, json!({})).await;
    scenario.env.wait_for_reason(APP, "PermissionDenied").await;
    // Permanent: no retry although the broker would answer now.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(scenario.env.broker.count(Endpoint::Generate), 1);
    assert!(scenario.env.secret(APP).await.is_none());
    scenario.rotate("after-grant").await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: PermissionDenied", "SecretMissing: Issued"],
            ready: CURRENT,
            generates: 2,
            broker_calls: 5,
        })
        .await;
}

// ---- broker faults mid-run ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_token_expired() {
    let env = Env::start().await;
    let mut scenario = Scenario::start("broker-token-expired", env, json!({})).await;
    scenario.issued().await;
    scenario.env.broker.expire_broker_tokens();
    scenario.fault_now();
    scenario.rotate("r1").await;
    // Generate answers 401 once; the client fetches a new broker token and retries once.
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued", "RotateRequested: Issued"],
            ready: CURRENT,
            generates: 3,
            broker_calls: 7,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expired() {
    let env = Env::start().await;
    let mut scenario = Scenario::start("session-expired", env, json!({})).await;
    scenario.issued().await;
    scenario.env.broker.expire_sessions();
    scenario.env.broker.expire_broker_tokens();
    scenario.fault_now();
    scenario.rotate("r1").await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued", "RotateRequested: Issued"],
            ready: CURRENT,
            generates: 3,
            broker_calls: 9,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expired_login_503() {
    let env = Env::start().await;
    let mut scenario = Scenario::start("session-expired-login-503", env, json!({})).await;
    scenario.issued().await;
    scenario.env.broker.expire_sessions();
    scenario.env.broker.expire_broker_tokens();
    scenario.env.broker.inject(
        Fault::on(Endpoint::Login).vapi_error("SERVICE_UNAVAILABLE", "vCenter is starting."),
    );
    scenario.fault_now();
    scenario.rotate("r1").await;
    // Login, token and generate for the first credential; then generate (401), token (401,
    // the session is gone), login (503): a failure; after the backoff login, token, generate.
    scenario
        .finish(&Expect {
            attempts: &[
                "SecretMissing: Issued",
                "RotateRequested: BrokerUnavailable",
                "RotateRequested: Issued",
            ],
            ready: CURRENT,
            generates: 3,
            broker_calls: 10,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_rotated() {
    let env = Env::start().await;
    let mut scenario = Scenario::start("tls-certificate-rotated", env, json!({})).await;
    scenario.issued().await;
    let new_ca = scenario
        .env
        .broker
        .rotate_server_certificate()
        .expect("new certificate");
    scenario.fault_now();
    scenario.rotate("r1").await;
    scenario
        .wait_for_attempt("RotateRequested: BrokerUnavailable")
        .await;
    assert!(
        scenario.env.broker.failed_tls_handshakes() >= 1 || {
            tokio::time::sleep(Duration::from_secs(1)).await;
            scenario.env.broker.failed_tls_handshakes() >= 1
        },
        "the operator refused the unknown certificate"
    );
    // The administrator trusts the new CA.
    let patch = json!({"spec": {"tls": {"caBundle": new_ca}}});
    scenario
        .env
        .brokers()
        .patch(BROKER_NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("update the broker's CA");
    scenario
        .finish(&Expect {
            attempts: &[
                "SecretMissing: Issued",
                "RotateRequested: BrokerUnavailable",
                "RotateRequested: Issued",
            ],
            ready: CURRENT,
            // Failed handshakes never reach the broker (nor does the old client's logout, made
            // with the old CA): 3 calls before, then login, token and generate with the new CA.
            generates: 2,
            broker_calls: 7,
        })
        .await;
}

// ---- Kubernetes faults ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_offline_30s() {
    let env = Env::start().await;
    if env.kube.is_none() {
        return; // the simulator's fault; a real cluster stays online
    }
    // 45-second tokens: the renewal (at two thirds, at most 10 % earlier) falls while offline.
    let mut scenario = Scenario::start("kube-offline-30s", env, json!({"tokenTTL": "45m"})).await;
    scenario.issued().await;
    let kube = scenario.env.kube.as_ref().unwrap();
    kube.set_offline(true).await.expect("offline");
    scenario.fault_now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    // Every issue is decided on a fresh read: none while the API server cannot be read.
    assert_eq!(
        scenario.env.broker.count(Endpoint::Generate),
        1,
        "no generate while the API server was unreachable"
    );
    kube.set_offline(false).await.expect("online");
    scenario.env.wait_for_revision(APP, 2).await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued", "RenewalDue: Issued"],
            ready: CURRENT,
            generates: 2,
            broker_calls: 4,
        })
        .await;
}

async fn rotation_after_watch_fault(case: &'static str, expire_history: bool) {
    let env = Env::start().await;
    if env.kube.is_none() {
        return;
    }
    let mut scenario = Scenario::start(case, env, json!({})).await;
    scenario.issued().await;
    // The first token through the broker is probed 2 s after its issue: let that happen first,
    // so the count does not depend on whether the rotation came before it.
    scenario.env.wait_for_first_probe(APP).await;
    let kube = scenario.env.kube.as_ref().unwrap();
    if expire_history {
        kube.expire_watch_history();
    }
    kube.drop_watches();
    scenario.fault_now();
    scenario.rotate("r1").await;
    scenario.env.wait_for_revision(APP, 2).await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued", "RotateRequested: Issued"],
            ready: CURRENT,
            generates: 2,
            broker_calls: 5,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watches_dropped() {
    rotation_after_watch_fault("kube-watches-dropped", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watch_history_expired() {
    rotation_after_watch_fault("kube-watch-history-expired", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_409_every_secret_write() {
    let env = Env::start().await;
    if env.kube.is_none() {
        return;
    }
    let mut scenario = Scenario::start("kube-409-every-secret-write", env, json!({})).await;
    scenario.issued().await;
    let kube = scenario.env.kube.as_ref().unwrap();
    // Real writes only: the dry run before the generate passes, as it does when a conflict
    // comes from another writer after it.
    kube.inject(
        KubeFault::fail(KubeFault::WRITES, "secrets")
            .status(409)
            .always()
            .dry_run(DryRunMatch::RealOnly),
    );
    scenario.fault_now();
    scenario.rotate("r1").await;
    scenario
        .wait_for_attempt("RotateRequested: SecretWriteFailed")
        .await;
    // The credential waits in memory; its write is retried, the generate is not.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scenario.env.broker.count(Endpoint::Generate), 2);
    kube.clear_faults();
    scenario.env.wait_for_revision(APP, 2).await;
    scenario
        .finish(&Expect {
            attempts: &[
                "SecretMissing: Issued",
                "RotateRequested: SecretWriteFailed",
                "RotateRequested: Issued",
            ],
            ready: CURRENT,
            generates: 2,
            broker_calls: 5,
        })
        .await;
}

/// The real write fails twice with 500 (dry runs pass): exactly one generate, and the
/// credential is stored once the write succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_500_secret_write() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return;
    };
    kube.inject(
        KubeFault::fail("create|update", "secrets")
            .status(500)
            .times(2)
            .dry_run(DryRunMatch::RealOnly),
    );
    let scenario = Scenario::start("kube-500-secret-write", env, json!({})).await;
    scenario
        .wait_for_attempt("SecretMissing: SecretWriteFailed")
        .await;
    scenario.env.wait_for_revision(APP, 1).await;
    let kube = scenario.env.kube.as_ref().unwrap();
    let counts = kube.counts();
    assert!(
        counts.real("create", "secrets") >= 3,
        "two refused real writes and the one that landed:\n{counts}"
    );
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: SecretWriteFailed", "SecretMissing: Issued"],
            ready: CURRENT,
            generates: 1,
            broker_calls: 4,
        })
        .await;
}

/// The API server refuses the Secret (dry run included): no generate while it lasts, the
/// reason carries the server's message, and the credential issues once the fault is gone.
async fn secret_refused_at_first_issue(case: &'static str, fault: KubeFault, message: &str) {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return;
    };
    kube.inject(fault);
    let scenario = Scenario::start(case, env, json!({})).await;
    let refused = scenario
        .env
        .wait_for_reason(APP, "SecretWriteRejected")
        .await;
    let (_, said) = ready(&refused).unwrap();
    assert!(
        said.contains(message),
        "the reason carries the API server's message {message:?}: {said}"
    );
    // It lasts across a retry (backoff from 5 s): still nothing generated.
    let kube = scenario.env.kube.as_ref().unwrap();
    scenario
        .env
        .eventually("a second refused dry run", WAIT, || async {
            (kube.counts().dry_runs("create", "secrets") >= 2).then_some(())
        })
        .await;
    assert_eq!(scenario.env.broker.count(Endpoint::Generate), 0);
    assert_eq!(scenario.env.broker.generate_count(DIRECTORY), 0);
    assert!(scenario.env.secret(APP).await.is_none());
    kube.clear_faults();
    scenario.env.wait_for_revision(APP, 1).await;
    scenario
        .finish(&Expect {
            attempts: &[
                "SecretMissing: SecretWriteRejected",
                "SecretMissing: Issued",
            ],
            ready: CURRENT,
            generates: 1,
            broker_calls: 4,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_422_secret_create() {
    secret_refused_at_first_issue(
        "kube-422-secret-create",
        KubeFault::fail("create", "secrets")
            .status(422)
            .message("denied by the secret-policy webhook")
            .always(),
        "denied by the secret-policy webhook",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_quota_secret_create() {
    secret_refused_at_first_issue(
        "kube-quota-secret-create",
        KubeFault::quota_exceeded("create", "secrets").always(),
        "exceeded quota: sim-quota",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_status_write_500() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return;
    };
    kube.inject(
        KubeFault::fail("patch", "syncclientcredentials/status")
            .status(500)
            .times(2),
    );
    let scenario = Scenario::start("kube-status-write-500", env, json!({})).await;
    scenario.env.wait_for_revision(APP, 1).await;
    // The issue's history entry was in the refused writes; it is carried into the next one.
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued"],
            ready: CURRENT,
            generates: 1,
            broker_calls: 4,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_secret_read_500() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return;
    };
    // Only the credential's Secret (the broker's login Secret reads normally).
    kube.inject(
        KubeFault::fail("get", "secrets")
            .name(APP)
            .status(500)
            .times(3),
    );
    let scenario = Scenario::start("kube-secret-read-500", env, json!({})).await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued"],
            ready: CURRENT,
            generates: 1,
            broker_calls: 4,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_slow_api() {
    let env = Env::start().await;
    let Some(kube) = env.kube.as_ref() else {
        return;
    };
    kube.inject(KubeFault::latency("*", "*", Duration::from_millis(700)).always());
    let scenario = Scenario::start("kube-slow-api", env, json!({})).await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued"],
            ready: CURRENT,
            generates: 1,
            broker_calls: 4,
        })
        .await;
}

/// BUG (see the report): a rotate request is served twice when the status write after its issue
/// fails. The served request is recorded only in status (`observedRotateRequest`, read back in
/// `gather.rs`), so the next reconcile finds the request unserved and issues again, revoking the
/// credential it just stored (and the history loses the first issue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_status_write_500_after_rotate_request() {
    let env = Env::start().await;
    if env.kube.is_none() {
        return;
    }
    let mut scenario =
        Scenario::start("kube-status-write-500-after-rotate-request", env, json!({})).await;
    scenario.issued().await;
    scenario.env.kube.as_ref().unwrap().inject(
        KubeFault::fail("patch", "syncclientcredentials/status")
            .status(500)
            .times(2),
    );
    scenario.fault_now();
    scenario.rotate("r1").await;
    scenario.env.wait_for_revision(APP, 2).await;
    scenario
        .finish(&Expect {
            attempts: &["SecretMissing: Issued", "RotateRequested: Issued"],
            ready: CURRENT,
            generates: 2,
            broker_calls: 5,
        })
        .await;
}
