//! A credential's life, its status computed once from the server's full status and once from the
//! watch cache's view of it (texts and history as digests) and written by the writer's rules:
//! after every step the server holds exactly the same status either way, nothing is written when
//! nothing changed, and only a status built on an elided text needs a fresh read.

#![allow(clippy::too_many_lines)]

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::cached::{self, holds_digest, restore};
use super::credential::{Outcome, StatusInput, compute};
use super::notes::{Notes, PreflightNote, VerifyNote};
use crate::api::{ELIDED, MAX_HISTORY, SyncClientCredentialStatus};
use crate::controller::credential::deliver::{DeliveryNote, Validation};
use crate::controller::failure::{Failure, FailureReason};
use crate::planner::{BlockReason, Expiry, IssueReason, Record, RewriteReason, SecretState};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn record(revision: i64, issued: i64) -> Record {
    Record {
        issued_at: t(issued),
        expiry: Expiry::At(t(issued + 3000)),
        revision,
        spec_hash: Some("h".into()),
        data_intact: true,
        layout_current: true,
        fingerprint_current: true,
    }
}

/// What the writer did with the status computed from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Nothing,
    Patched,
    /// The patch would have carried a digest: computed again from a fresh read.
    Recomputed,
}

/// The server's status after a merge patch of `status`.
fn merged(server: &SyncClientCredentialStatus, status: &Value) -> SyncClientCredentialStatus {
    let mut json = serde_json::to_value(server).unwrap();
    for (key, value) in status.as_object().unwrap() {
        json[key] = value.clone();
    }
    serde_json::from_value(json).unwrap()
}

/// The writer's rules applied to a status computed from the cache's view of `server`.
fn via_cache(
    server: &SyncClientCredentialStatus,
    input: &StatusInput<'_>,
) -> (SyncClientCredentialStatus, Written) {
    let view = cached::view(server);
    let new = compute(&view, input);
    if view == new {
        return (server.clone(), Written::Nothing);
    }
    let patch = cached::patch(Some(&view), &new).unwrap();
    if !holds_digest(&patch) {
        return (merged(server, &patch), Written::Patched);
    }
    let old = restore(&view, server).unwrap();
    assert!(!holds_digest(&serde_json::to_value(&old).unwrap()));
    let again = compute(&old, input);
    let patch = cached::patch(Some(server), &again).unwrap();
    assert!(!holds_digest(&patch), "computed from the full status");
    (merged(server, &patch), Written::Recomputed)
}

struct Step {
    name: &'static str,
    now: i64,
    secret: SecretState,
    outcome: Outcome,
    notes: Notes,
}

fn waiting(renewal: i64) -> Outcome {
    Outcome::Waiting {
        renewal_time: Some(t(renewal)),
        held: None,
    }
}

fn failed(reason: FailureReason, revision: i64, retry: i64) -> Outcome {
    Outcome::Failed {
        failure: Failure::new(
            reason,
            "the broker answered 503 Service Unavailable after 30 s; the request may be retried",
        ),
        trigger: IssueReason::RenewalDue,
        next_retry: Some(t(retry)),
        rotate_request: None,
        revision,
        stored: None,
        verify_after: None,
    }
}

fn issued(revision: i64, trigger: IssueReason) -> Outcome {
    Outcome::Issued {
        record: record(revision, revision * 1000),
        renewal_time: Some(t(revision * 1000 + 2000)),
        rotate_request: (trigger == IssueReason::RotateRequested).then(|| "r1".to_owned()),
        trigger,
        fingerprint: format!("sha256:{revision:012}"),
        deliveries: Vec::new(),
    }
}

fn backoff(until: i64) -> Outcome {
    Outcome::Waiting {
        renewal_time: Some(t(2000)),
        held: Some((
            crate::planner::WaitReason::Backoff(IssueReason::RenewalDue),
            t(until),
        )),
    }
}

/// The steps of a credential's life; `preflight`: one preflight passes early on (its condition's
/// message is then carried by every later status).
fn life(preflight: bool) -> Vec<Step> {
    let owned = |revision, issued| SecretState::Owned(record(revision, issued));
    let step = |name, now, secret, outcome| Step {
        name,
        now,
        secret,
        outcome,
        notes: Notes::default(),
    };
    let mut steps = vec![
        step(
            "first issue",
            0,
            SecretState::Missing,
            issued(0, IssueReason::SecretMissing),
        ),
        step("nothing due", 100, owned(0, 0), waiting(2000)),
        Step {
            notes: Notes {
                verification: Some(VerifyNote {
                    at: t(200),
                    result: "Valid".into(),
                }),
                preflight: None,
                deliveries: Vec::new(),
            },
            ..step(
                "a probe finds the token valid",
                200,
                owned(0, 0),
                waiting(2000),
            )
        },
        Step {
            notes: Notes {
                verification: None,
                preflight: Some(PreflightNote {
                    at: t(300),
                    request: Some("p1".into()),
                    result: Ok("vCenter login, broker token and sync client read succeeded".into()),
                }),
                deliveries: Vec::new(),
            },
            ..step("a preflight passes", 300, owned(0, 0), waiting(2000))
        },
        step("nothing due", 400, owned(0, 0), waiting(2000)),
        step(
            "the renewal fails",
            2000,
            owned(0, 0),
            failed(FailureReason::BrokerUnavailable, 1, 2060),
        ),
        step("its backoff", 2030, owned(0, 0), backoff(2060)),
        step(
            "the token expires meanwhile",
            3100,
            owned(0, 0),
            waiting(2000),
        ),
        step(
            "a failure that needs a change",
            3200,
            owned(0, 0),
            failed(FailureReason::PermissionDenied, 1, 4000),
        ),
        step("waiting for the change", 3300, owned(0, 0), backoff(4000)),
        step(
            "suspended",
            3400,
            owned(0, 0),
            Outcome::Blocked(BlockReason::Suspended),
        ),
        step(
            "an invalid spec",
            3500,
            owned(0, 0),
            Outcome::SpecInvalid(
                "spec.tokenTTL: 30s is shorter than the broker's one minute".into(),
            ),
        ),
        step(
            "another credential owns the sync client",
            3600,
            owned(0, 0),
            Outcome::InUse {
                owner: "team/older".into(),
            },
        ),
        step(
            "a rotate request",
            3700,
            owned(0, 0),
            issued(1, IssueReason::RotateRequested),
        ),
    ];
    if !preflight {
        steps.retain(|step| step.notes.preflight.is_none());
    }
    for revision in 2..=12 {
        steps.push(step(
            "scheduled renewals fill the history",
            revision * 1000,
            owned(revision - 1, (revision - 1) * 1000),
            issued(revision, IssueReason::RenewalDue),
        ));
    }
    let mut unknown = Failure::new(
        FailureReason::RotationStateUnknown,
        "the generate went unanswered; it may still land and revoke the stored token",
    );
    unknown.outcome_unknown = true;
    steps.push(step(
        "a generate whose outcome is unknown",
        14_000,
        owned(12, 12_000),
        Outcome::Failed {
            failure: unknown,
            trigger: IssueReason::RenewalDue,
            next_retry: Some(t(14_060)),
            rotate_request: None,
            revision: 13,
            stored: None,
            verify_after: Some(t(14_300)),
        },
    ));
    steps.push(Step {
        notes: Notes {
            verification: Some(VerifyNote {
                at: t(14_400),
                result: "Unavailable: the probe answered 502 from the broker's SCIM gateway".into(),
            }),
            preflight: None,
            deliveries: Vec::new(),
        },
        ..step(
            "a probe that cannot tell",
            14_400,
            owned(12, 12_000),
            waiting(14_000),
        )
    });
    steps.push(step(
        "the keys are renamed",
        14_500,
        owned(12, 12_000),
        Outcome::Rewritten {
            record: record(12, 12_000),
            renewal_time: Some(t(14_100)),
            reason: RewriteReason::KeysRenamed,
        },
    ));
    steps
}

fn input<'a>(step: &'a Step, delivery_names: &[&str]) -> StatusInput<'a> {
    StatusInput {
        now: t(step.now),
        generation: 1,
        secret_name: "app",
        secret: &step.secret,
        outcome: &step.outcome,
        notes: &step.notes,
        served_rotate_request: None,
        scheduled_renewal: Some(t(2000)),
        delivery_names: delivery_names.iter().map(|&n| n.to_owned()).collect(),
        jitter_seed: 7,
        probe_fresh_token: false,
    }
}

/// Lives the steps both ways; returns the final status and what the writer did at each step.
fn live(steps: &[Step]) -> (SyncClientCredentialStatus, Vec<(&'static str, Written)>) {
    live_delivering(steps, &[])
}

/// [`live`] for a credential whose spec names the deliveries `delivery_names`.
fn live_delivering(
    steps: &[Step],
    delivery_names: &[&str],
) -> (SyncClientCredentialStatus, Vec<(&'static str, Written)>) {
    let mut server = SyncClientCredentialStatus::default();
    let mut written = Vec::new();
    for step in steps {
        let input = input(step, delivery_names);
        let truth = compute(&server, &input);
        let (result, how) = via_cache(&server, &input);
        assert_eq!(
            result, truth,
            "{}: the server holds what it would",
            step.name
        );
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            serde_json::to_value(&truth).unwrap(),
            "{}: in full",
            step.name
        );
        if truth == server {
            assert_eq!(how, Written::Nothing, "{}: nothing changed", step.name);
        } else {
            assert_ne!(how, Written::Nothing, "{}: a change is written", step.name);
        }
        written.push((step.name, how));
        server = truth;
    }
    (server, written)
}

#[test]
fn a_status_computed_from_the_cache_writes_what_the_full_status_would() {
    let (server, written) = live(&life(false));
    assert_eq!(server.history.len(), MAX_HISTORY, "the history filled up");
    // A fresh read only for what adds to the history (an issue, always decided on a fresh
    // read in the reconciler) and for Ready's message built on the last failure's message.
    for (name, how) in &written {
        let expected = match *name {
            "nothing due" | "its backoff" | "waiting for the change" => Written::Nothing,
            "first issue"
            | "the renewal fails"
            | "the token expires meanwhile"
            | "a failure that needs a change"
            | "a rotate request"
            | "scheduled renewals fill the history"
            | "a generate whose outcome is unknown" => Written::Recomputed,
            _ => Written::Patched,
        };
        assert_eq!(*how, expected, "{name}");
    }
}

#[test]
fn a_preflight_condition_carried_along_is_read_fresh_when_the_conditions_change() {
    let (_, written) = live(&life(true));
    let how = |name: &str| written.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(how("a probe finds the token valid"), Written::Patched);
    assert_eq!(how("a preflight passes"), Written::Patched);
    // Ready turns False: the array of conditions is written whole, the preflight's with it.
    assert_eq!(how("suspended"), Written::Recomputed);
}

#[test]
fn the_cache_keeps_what_decisions_read_and_digests_of_the_rest() {
    let (server, _) = live(&life(true));
    let view = cached::view(&server);
    assert_eq!(view, server, "the same content");
    assert_eq!(
        view.history.iter().map(|a| a.revision).collect::<Vec<_>>(),
        [13],
        "only the attempt whose outcome is unknown"
    );
    assert!(view.conditions.iter().all(|c| c.message.is_elided()));
    assert!(view.last_verify_result.as_ref().unwrap().is_elided());
    assert_eq!(
        view.last_failure_reason.as_deref(),
        Some("RotationStateUnknown")
    );
    let json = serde_json::to_value(&view).unwrap();
    assert!(json["history"][ELIDED].is_u64());
    // Cached again (a re-list), the view is the same.
    let mut again = view.clone();
    cached::elide(&mut again);
    assert_eq!(serde_json::to_value(&again).unwrap(), json);
}

#[test]
fn restore_takes_elided_parts_back_by_digest() {
    let (server, _) = live(&life(true)[..7]);
    let view = cached::view(&server);
    let back = restore(&view, &server).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&server).unwrap()
    );
    // The server's messages changed since: the fields whose parts it no longer holds are its.
    let mut changed = server.clone();
    changed.conditions[0].message = "edited by someone else".into();
    changed.revision = Some(99);
    let back = restore(&view, &changed).unwrap();
    assert_eq!(back.conditions, changed.conditions);
    assert_eq!(
        back.revision, server.revision,
        "fields without digests are the view's"
    );
}

/// A delivery attempt at `at` of revision 1 to `entra`: saved, then what validation and the job
/// said, and the failure if one.
fn delivery(
    at: i64,
    validation: Validation,
    job: (&str, Option<&str>),
    failure: Option<Failure>,
) -> Notes {
    Notes {
        deliveries: vec![DeliveryNote {
            name: "entra".into(),
            at: t(at),
            revision: 1,
            job_id: Some("scim.6c3f8a521d2e4b7a9f102a4b6c8d0e1f.0f8c".into()),
            saved: true,
            saved_now: at == 10,
            validation: Some(validation),
            job: Some((job.0.into(), job.1.map(str::to_owned))),
            quarantine_lifted: false,
            failure,
        }],
        ..Notes::default()
    }
}

/// A credential delivered to Entra ID whose delivery fails for a while: the same rule holds for
/// the deliveries' texts (validation, quarantine reason).
fn delivering_life() -> Vec<Step> {
    let owned = SecretState::Owned(record(1, 0));
    let failing = || {
        delivery(
            0,
            Validation::Failed(
                "Entra ID could not reach the SCIM endpoint with the saved token: 401 from vCenter"
                    .into(),
            ),
            (
                "Quarantine",
                Some("EncounteredQuarantineException: the credentials are not valid"),
            ),
            Some(Failure::new(
                FailureReason::EntraValidationFailed,
                "validateCredentials refused the saved token (401 from vCenter's SCIM endpoint)",
            )),
        )
    };
    let step = |name, now, notes| Step {
        name,
        now,
        secret: owned.clone(),
        outcome: waiting(2000),
        notes,
    };
    let mut first = failing();
    first.deliveries[0].at = t(10);
    let mut again = failing();
    again.deliveries[0].at = t(40);
    let mut passed = delivery(100, Validation::Passed, ("Active", None), None);
    passed.deliveries[0].saved_now = false;
    vec![
        step("the first look", 0, Notes::default()),
        step("the delivery fails", 10, first),
        step(
            "the next look at the failing delivery",
            11,
            Notes::default(),
        ),
        step("nothing due", 12, Notes::default()),
        step("it fails again", 40, again),
        step("the delivery completes", 100, passed),
        step("nothing due", 101, Notes::default()),
    ]
}

#[test]
fn a_delivery_status_computed_from_the_cache_writes_what_the_full_status_would() {
    let (server, written) = live_delivering(&delivering_life(), &["entra"]);
    // An attempt writes its own messages; a look between attempts rebuilds the `Delivered`
    // message on the failure's, which the cache keeps: nothing to read or write.
    for (name, how) in &written {
        let expected = match *name {
            "the first look"
            | "the delivery fails"
            | "it fails again"
            | "the delivery completes" => Written::Patched,
            _ => Written::Nothing,
        };
        assert_eq!(*how, expected, "{name}");
    }
    assert_eq!(server.deliveries.len(), 1);
    assert_eq!(server.deliveries[0].validation.as_deref(), Some("Passed"));
    assert!(server.deliveries[0].last_failure_message.is_none());
}

#[test]
fn the_cache_holds_delivery_messages_as_digests() {
    let (server, _) = live_delivering(&delivering_life()[..3], &["entra"]);
    let view = cached::view(&server);
    assert_eq!(view, server, "the same content");
    let delivery = &view.deliveries[0];
    assert!(delivery.validation.as_ref().unwrap().is_elided());
    assert!(delivery.quarantine_reason.as_ref().unwrap().is_elided());
    // The failure message stays: `Delivered` is built on it at every look.
    assert!(!delivery.last_failure_message.as_ref().unwrap().is_elided());
    // What decisions read stays.
    assert_eq!(delivery.job_state.as_deref(), Some("Quarantine"));
    assert_eq!(
        delivery.last_failure_reason.as_deref(),
        Some("EntraValidationFailed")
    );
    assert!(!crate::controller::credential::deliver::complete_at(
        delivery, 1
    ));
    let json = serde_json::to_value(&view).unwrap();
    assert!(json["deliveries"][0]["validation"][ELIDED].is_u64());
    // Restored from the full status, the view is the server's status again.
    let back = restore(&view, &server).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(&server).unwrap()
    );
}
