//! Table tests of the credential status: one row per outcome and Secret state.

#![allow(clippy::too_many_lines)]

use chrono::{DateTime, Utc};

use super::credential::{Outcome, StatusInput, compute};
use super::notes::Notes;
use crate::api::{ConditionStatus, SyncClientCredentialStatus, reasons};
use crate::controller::failure::{Failure, FailureReason};
use crate::planner::{BlockReason, Expiry, IssueReason, Record, SecretState, WaitReason};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

/// Issued at t(0), expiring at t(3000).
fn record(revision: i64) -> Record {
    Record {
        issued_at: t(0),
        expiry: Expiry::At(t(3000)),
        revision,
        spec_hash: Some("h".into()),
        data_intact: true,
        layout_current: true,
        fingerprint_current: true,
    }
}

fn failure(reason: FailureReason) -> Failure {
    Failure::new(reason, "the broker said no")
}

fn failed_before(reason: &str) -> SyncClientCredentialStatus {
    SyncClientCredentialStatus {
        failed_attempts: 2,
        last_failure_time: Some(t(50)),
        last_failure_reason: Some(crate::api::Name::intern(reason)),
        last_failure_generation: Some(1),
        last_failure_message: Some("earlier failure".into()),
        ..SyncClientCredentialStatus::default()
    }
}

struct Case {
    name: &'static str,
    now: i64,
    old: SyncClientCredentialStatus,
    secret: SecretState,
    outcome: Outcome,
    ready: (ConditionStatus, &'static str),
    issuing: (ConditionStatus, &'static str),
    check: fn(&SyncClientCredentialStatus),
}

impl Default for Case {
    fn default() -> Self {
        Self {
            name: "",
            now: 100,
            old: SyncClientCredentialStatus::default(),
            secret: SecretState::Owned(record(1)),
            outcome: Outcome::Waiting {
                renewal_time: None,
                held: None,
            },
            ready: (ConditionStatus::True, reasons::CREDENTIAL_CURRENT),
            issuing: (ConditionStatus::False, reasons::IDLE),
            check: |_| {},
        }
    }
}

fn run(case: &Case) -> SyncClientCredentialStatus {
    compute(
        &case.old,
        &StatusInput {
            now: t(case.now),
            generation: 1,
            secret_name: "app",
            secret: &case.secret,
            outcome: &case.outcome,
            notes: &Notes::default(),
            served_rotate_request: None,
            scheduled_renewal: Some(t(2000)),
            probe_fresh_token: false,
            delivery_names: Vec::new(),
            jitter_seed: 7,
        },
    )
}

fn condition(status: &SyncClientCredentialStatus, type_: &str) -> (ConditionStatus, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status, c.reason.to_string())
}

#[test]
fn status_follows_the_outcome_and_the_secret() {
    let cases = [
        Case {
            name: "a first credential is ready and idle until its renewal",
            secret: SecretState::Missing,
            outcome: Outcome::Issued {
                record: record(1),
                renewal_time: Some(t(2000)),
                rotate_request: None,
                trigger: IssueReason::SecretMissing,
                fingerprint: "sha256:abc".into(),
                deliveries: Vec::new(),
            },
            check: |s| {
                assert_eq!(s.revision, Some(1));
                assert_eq!(s.expires_at, Some(t(3000)));
                assert_eq!(s.renewal_time, Some(t(2000)));
                assert_eq!(s.last_rotation_time, Some(t(0)));
                assert_eq!(s.failed_attempts, 0);
            },
            ..Case::default()
        },
        Case {
            name: "an issue clears earlier failures and acknowledges the rotate request",
            old: failed_before("BrokerUnavailable"),
            outcome: Outcome::Issued {
                record: record(2),
                renewal_time: Some(t(2000)),
                rotate_request: Some("r1".into()),
                trigger: IssueReason::RotateRequested,
                fingerprint: "sha256:abc".into(),
                deliveries: Vec::new(),
            },
            check: |s| {
                assert_eq!(s.failed_attempts, 0);
                assert_eq!(s.last_failure_reason, None);
                assert_eq!(s.last_failure_message, None);
                assert_eq!(s.next_retry_time, None);
                assert_eq!(s.observed_rotate_request.as_deref(), Some("r1"));
                assert_eq!(s.revision, Some(2));
            },
            ..Case::default()
        },
        Case {
            name: "a retryable failure with a valid Secret keeps Ready and backs off",
            outcome: Outcome::Failed {
                failure: failure(FailureReason::BrokerUnavailable),
                trigger: IssueReason::RenewalDue,
                next_retry: Some(t(200)),
                rotate_request: Some("r".into()),
                revision: 2,
                stored: None,
                verify_after: None,
            },
            issuing: (ConditionStatus::True, reasons::BACKOFF),
            check: |s| {
                assert_eq!(s.failed_attempts, 1);
                assert_eq!(s.last_failure_time, Some(t(100)));
                assert_eq!(s.last_failure_reason.as_deref(), Some("BrokerUnavailable"));
                assert_eq!(s.next_retry_time, Some(t(200)));
                assert_eq!(
                    s.observed_rotate_request, None,
                    "a retried request is not served yet"
                );
            },
            ..Case::default()
        },
        Case {
            name: "a failure that may have rotated makes Ready false",
            outcome: Outcome::Failed {
                failure: Failure {
                    outcome_unknown: true,
                    ..failure(FailureReason::RotationStateUnknown)
                },
                trigger: IssueReason::RenewalDue,
                next_retry: Some(t(105)),
                rotate_request: None,
                revision: 2,
                stored: None,
                verify_after: None,
            },
            ready: (ConditionStatus::False, "RotationStateUnknown"),
            issuing: (ConditionStatus::True, reasons::BACKOFF),
            ..Case::default()
        },
        Case {
            name: "a permanent failure without a Secret waits and serves the request",
            secret: SecretState::Missing,
            outcome: Outcome::Failed {
                failure: failure(FailureReason::SyncClientNotFound),
                trigger: IssueReason::SecretMissing,
                next_retry: None,
                rotate_request: Some("r".into()),
                revision: 2,
                stored: None,
                verify_after: None,
            },
            ready: (ConditionStatus::False, "SyncClientNotFound"),
            issuing: (ConditionStatus::False, "SyncClientNotFound"),
            check: |s| {
                assert_eq!(s.observed_rotate_request.as_deref(), Some("r"));
                assert_eq!(s.next_retry_time, None);
                assert_eq!(s.last_failure_generation, Some(1));
            },
            ..Case::default()
        },
        Case {
            name: "waiting with a valid Secret shows the renewal time",
            outcome: Outcome::Waiting {
                renewal_time: Some(t(2000)),
                held: None,
            },
            check: |s| assert_eq!(s.renewal_time, Some(t(2000))),
            ..Case::default()
        },
        Case {
            name: "waiting with an expired Secret is not ready",
            now: 3000,
            ready: (ConditionStatus::False, reasons::EXPIRED),
            ..Case::default()
        },
        Case {
            name: "an expired Secret whose replacement failed shows the failure, not just expiry",
            now: 3000,
            old: failed_before("BrokerResponseInvalid"),
            outcome: Outcome::Waiting {
                renewal_time: None,
                held: Some((WaitReason::Backoff(IssueReason::Expired), t(3010))),
            },
            ready: (ConditionStatus::False, "BrokerResponseInvalid"),
            issuing: (ConditionStatus::True, reasons::BACKOFF),
            ..Case::default()
        },
        Case {
            name: "an edited Secret is not ready",
            secret: SecretState::Owned(Record {
                data_intact: false,
                ..record(1)
            }),
            ready: (ConditionStatus::False, reasons::EXPIRED),
            ..Case::default()
        },
        Case {
            name: "waiting out a backoff without a Secret shows the stored reason",
            old: failed_before("BrokerUnavailable"),
            secret: SecretState::Missing,
            outcome: Outcome::Waiting {
                renewal_time: None,
                held: Some((WaitReason::Backoff(IssueReason::SecretMissing), t(300))),
            },
            ready: (ConditionStatus::False, "BrokerUnavailable"),
            issuing: (ConditionStatus::True, reasons::BACKOFF),
            check: |s| assert_eq!(s.next_retry_time, Some(t(300))),
            ..Case::default()
        },
        Case {
            name: "nothing issued and nothing failed is pending",
            secret: SecretState::Missing,
            ready: (ConditionStatus::False, reasons::PENDING),
            ..Case::default()
        },
        Case {
            name: "a stored reason this version does not know reads as pending",
            old: failed_before("FromANewerVersion"),
            secret: SecretState::Missing,
            ready: (ConditionStatus::False, reasons::PENDING),
            ..Case::default()
        },
        Case {
            name: "a suspended credential with a valid Secret stays ready",
            outcome: Outcome::Blocked(BlockReason::Suspended),
            issuing: (ConditionStatus::False, reasons::SUSPENDED),
            check: |s| assert_eq!(s.renewal_time, None),
            ..Case::default()
        },
        Case {
            name: "a foreign Secret is reported on both conditions",
            secret: SecretState::NotOwned,
            outcome: Outcome::Blocked(BlockReason::SecretNotOwned),
            ready: (ConditionStatus::False, reasons::SECRET_NOT_OWNED),
            issuing: (ConditionStatus::False, reasons::SECRET_NOT_OWNED),
            ..Case::default()
        },
        Case {
            name: "a renewal refused for good is retried: Issuing names the reason, renewalTime the retry",
            now: 2100,
            outcome: Outcome::Failed {
                failure: failure(FailureReason::PermissionDenied),
                trigger: IssueReason::RenewalDue,
                next_retry: Some(t(2400)),
                rotate_request: None,
                revision: 2,
                stored: None,
                verify_after: None,
            },
            issuing: (ConditionStatus::True, "PermissionDenied"),
            check: |s| {
                assert_eq!(s.renewal_time, Some(t(2400)), "the next try");
                assert_eq!(s.next_retry_time, Some(t(2400)));
                assert_eq!(
                    s.renewal_due_time,
                    Some(t(2000)),
                    "due since the planned renewal"
                );
                let issuing = s.conditions.iter().find(|c| c.type_ == "Issuing").unwrap();
                assert!(
                    issuing
                        .message
                        .contains("grant the vCenter account the privilege"),
                    "{}",
                    issuing.message
                );
            },
            ..Case::default()
        },
        Case {
            name: "waiting out that retry keeps the reason and the times",
            now: 2200,
            old: SyncClientCredentialStatus {
                renewal_due_time: Some(t(2000)),
                ..failed_before("PermissionDenied")
            },
            outcome: Outcome::Waiting {
                renewal_time: Some(t(2000)),
                held: Some((WaitReason::Backoff(IssueReason::RenewalDue), t(2400))),
            },
            issuing: (ConditionStatus::True, "PermissionDenied"),
            check: |s| {
                assert_eq!(s.renewal_time, Some(t(2400)));
                assert_eq!(s.renewal_due_time, Some(t(2000)));
            },
            ..Case::default()
        },
        Case {
            name: "Ready is False from the moment the stored token has expired",
            now: 3000,
            old: SyncClientCredentialStatus {
                renewal_due_time: Some(t(2000)),
                ..failed_before("PermissionDenied")
            },
            outcome: Outcome::Waiting {
                renewal_time: Some(t(2000)),
                held: Some((WaitReason::Backoff(IssueReason::Expired), t(3100))),
            },
            ready: (ConditionStatus::False, "PermissionDenied"),
            issuing: (ConditionStatus::True, "PermissionDenied"),
            check: |s| assert_eq!(s.renewal_due_time, Some(t(2000)), "still due since then"),
            ..Case::default()
        },
        Case {
            name: "a generate that went unanswered owes a probe at the end of its window",
            outcome: Outcome::Failed {
                failure: Failure {
                    outcome_unknown: true,
                    ..failure(FailureReason::RotationStateUnknown)
                },
                trigger: IssueReason::RenewalDue,
                next_retry: Some(t(105)),
                rotate_request: None,
                revision: 2,
                stored: None,
                verify_after: Some(t(400)),
            },
            ready: (ConditionStatus::False, "RotationStateUnknown"),
            issuing: (ConditionStatus::True, reasons::BACKOFF),
            check: |s| assert_eq!(s.verify_due_time, Some(t(400))),
            ..Case::default()
        },
        Case {
            name: "an invalid spec is reported on both conditions",
            outcome: Outcome::SpecInvalid("spec.rotationInterval: bad".into()),
            ready: (ConditionStatus::False, FailureReason::SpecInvalid.as_str()),
            issuing: (ConditionStatus::False, FailureReason::SpecInvalid.as_str()),
            check: |s| assert_eq!(s.renewal_time, None),
            ..Case::default()
        },
    ];
    for case in &cases {
        let status = run(case);
        let ready = condition(&status, reasons::READY);
        let issuing = condition(&status, reasons::ISSUING);
        assert_eq!(
            (ready.0, ready.1.as_str()),
            case.ready,
            "{}: Ready",
            case.name
        );
        assert_eq!(
            (issuing.0, issuing.1.as_str()),
            case.issuing,
            "{}: Issuing",
            case.name
        );
        assert_eq!(status.observed_generation, Some(1), "{}", case.name);
        assert_eq!(status.secret_name.as_deref(), Some("app"), "{}", case.name);
        (case.check)(&status);
    }
}

#[test]
fn the_same_outcome_twice_changes_nothing() {
    for outcome in [
        Outcome::Waiting {
            renewal_time: Some(t(2000)),
            held: None,
        },
        Outcome::Blocked(BlockReason::Suspended),
        Outcome::SpecInvalid("bad".into()),
    ] {
        let case = Case {
            outcome,
            ..Case::default()
        };
        let first = run(&case);
        let again = Case {
            old: first.clone(),
            now: 500,
            ..case
        };
        assert_eq!(run(&again), first, "transition times and messages are kept");
    }
}

#[test]
fn waiting_out_a_backoff_keeps_the_message_written_with_the_failure() {
    let failed = run(&Case {
        secret: SecretState::Missing,
        outcome: Outcome::Failed {
            failure: failure(FailureReason::BrokerUnavailable),
            trigger: IssueReason::SecretMissing,
            next_retry: Some(t(200)),
            rotate_request: None,
            revision: 2,
            stored: None,
            verify_after: None,
        },
        ..Case::default()
    });
    let waiting = run(&Case {
        old: failed.clone(),
        now: 150,
        secret: SecretState::Missing,
        outcome: Outcome::Waiting {
            renewal_time: None,
            held: Some((WaitReason::Backoff(IssueReason::SecretMissing), t(200))),
        },
        ..Case::default()
    });
    assert_eq!(waiting.conditions, failed.conditions);
}

#[test]
fn failure_messages_are_bounded_to_one_line() {
    let status = run(&Case {
        outcome: Outcome::Failed {
            failure: Failure::new(
                FailureReason::BrokerUnavailable,
                format!("line one\nline two {}", "x".repeat(1000)),
            ),
            trigger: IssueReason::RenewalDue,
            next_retry: Some(t(200)),
            rotate_request: None,
            revision: 2,
            stored: None,
            verify_after: None,
        },
        ..Case::default()
    });
    let message = status.last_failure_message.unwrap();
    assert!(message.chars().count() <= super::MAX_MESSAGE_LEN);
    assert!(!message.contains('\n'));
    for condition in &status.conditions {
        assert!(condition.message.chars().count() <= super::MAX_MESSAGE_LEN);
    }
}
