//! Table-driven planner tests with a fake clock: one case per trigger, timing rule, jitter bound
//! and backoff cap.

#![allow(clippy::too_many_lines)]

use super::*;

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn policy() -> Policy {
    Policy {
        credential_type: CredentialType::AccessToken,
        renew: RenewPolicy::Default,
        rotation_interval: None,
        suspend: false,
        verify_interval: None,
        spec_hash: "h1".into(),
    }
}

/// A token issued at t(0) expiring at t(3000), owned and intact.
fn record() -> Record {
    Record {
        issued_at: t(0),
        expiry: Expiry::At(t(3000)),
        revision: 1,
        spec_hash: Some("h1".into()),
        data_intact: true,
        layout_current: true,
        fingerprint_current: true,
    }
}

struct Case {
    name: &'static str,
    now: i64,
    policy: Policy,
    secret: SecretState,
    failures: Failures,
    rotate_request: Option<&'static str>,
    observed_rotate_request: Option<&'static str>,
    attempted_rotate_request: Option<&'static str>,
    last_issued_at: Option<i64>,
    expect: Plan,
}

impl Default for Case {
    fn default() -> Self {
        Case {
            name: "",
            now: 100,
            policy: policy(),
            secret: SecretState::Owned(record()),
            failures: Failures::default(),
            rotate_request: None,
            observed_rotate_request: None,
            attempted_rotate_request: None,
            last_issued_at: None,
            expect: Plan::Wait {
                until: None,
                why: WaitReason::Scheduled,
            },
        }
    }
}

/// Jitter is zero for seed 0? Not necessarily; these tests use a seed and bounds instead.
const SEED: u64 = 42;

/// An input at `now` with nothing requested, never issued before, no probes, no rival.
fn input<'a>(now: i64, policy: &'a Policy, secret: &'a SecretState, seed: u64) -> PlanInput<'a> {
    PlanInput {
        now: t(now),
        generation: 3,
        policy,
        secret,
        failures: Failures::default(),
        requests: Requests::default(),
        last_issued_at: None,
        last_verification: None,
        sync_client_taken: false,
        min_issue_interval: DEFAULT_MIN_ISSUE_INTERVAL,
        held_elsewhere: None,
        broker_changed: false,
        verify_after: None,
        delivery_due: None,
        jitter_seed: seed,
    }
}

fn run(case: &Case) -> Plan {
    plan(&PlanInput {
        failures: case.failures,
        requests: Requests {
            rotate: case.rotate_request,
            rotate_served: case.observed_rotate_request,
            rotate_attempted: case.attempted_rotate_request,
            ..Requests::default()
        },
        last_issued_at: case.last_issued_at.map(t),
        ..input(case.now, &case.policy, &case.secret, SEED)
    })
}

fn owned(f: impl FnOnce(&mut Record)) -> SecretState {
    let mut r = record();
    f(&mut r);
    SecretState::Owned(r)
}

fn retryable(attempts: u32, at: i64) -> Failures {
    Failures {
        attempts,
        last_failure_time: Some(t(at)),
        category: Some(FailureCategory::Retryable),
        generation: Some(3),
        not_before: None,
    }
}

fn permanent(generation: i64) -> Failures {
    Failures {
        attempts: 1,
        last_failure_time: Some(t(50)),
        category: Some(FailureCategory::Permanent),
        generation: Some(generation),
        not_before: None,
    }
}

#[test]
fn triggers_decide_issue_block_or_wait() {
    let cases = [
        Case {
            name: "issues_when_secret_is_missing",
            secret: SecretState::Missing,
            expect: Plan::Issue(IssueReason::SecretMissing),
            ..Case::default()
        },
        Case {
            name: "refuses_a_secret_it_does_not_own",
            secret: SecretState::NotOwned,
            expect: Plan::Blocked(BlockReason::SecretNotOwned),
            ..Case::default()
        },
        Case {
            name: "foreign_secret_blocks_even_when_rotation_is_requested",
            secret: SecretState::NotOwned,
            rotate_request: Some("now"),
            expect: Plan::Blocked(BlockReason::SecretNotOwned),
            ..Case::default()
        },
        Case {
            name: "reissues_when_record_is_unreadable",
            secret: SecretState::Unreadable,
            expect: Plan::Issue(IssueReason::SecretUnreadable),
            ..Case::default()
        },
        Case {
            name: "rotates_when_secret_was_edited",
            secret: owned(|r| r.data_intact = false),
            expect: Plan::Issue(IssueReason::DataTampered),
            ..Case::default()
        },
        Case {
            name: "rotates_when_credential_spec_changed",
            secret: owned(|r| r.spec_hash = Some("h0".into())),
            expect: Plan::Issue(IssueReason::SpecChanged),
            ..Case::default()
        },
        Case {
            name: "rotates_when_spec_hash_was_never_recorded",
            secret: owned(|r| r.spec_hash = None),
            expect: Plan::Issue(IssueReason::SpecChanged),
            ..Case::default()
        },
        Case {
            name: "issues_when_access_token_expiry_is_unknown",
            secret: owned(|r| r.expiry = Expiry::Missing),
            expect: Plan::Issue(IssueReason::ExpiryUnknown),
            ..Case::default()
        },
        Case {
            name: "serves_a_new_rotate_request",
            rotate_request: Some("2026-11-23"),
            observed_rotate_request: Some("2026-11-01"),
            expect: Plan::Issue(IssueReason::RotateRequested),
            ..Case::default()
        },
        Case {
            name: "ignores_an_already_served_rotate_request",
            rotate_request: Some("2026-11-23"),
            observed_rotate_request: Some("2026-11-23"),
            expect: Plan::Wait {
                until: renewal_time(&policy(), &record(), SEED),
                why: WaitReason::Scheduled,
            },
            ..Case::default()
        },
        Case {
            name: "issues_when_token_already_expired",
            now: 3000,
            expect: Plan::Issue(IssueReason::Expired),
            ..Case::default()
        },
        Case {
            name: "renews_at_the_default_two_thirds_of_lifetime",
            now: 2000,
            expect: Plan::Issue(IssueReason::RenewalDue),
            ..Case::default()
        },
        Case {
            name: "waits_until_renewal_time_before_it",
            now: 1000,
            expect: Plan::Wait {
                until: renewal_time(&policy(), &record(), SEED),
                why: WaitReason::Scheduled,
            },
            ..Case::default()
        },
        Case {
            name: "suspend_blocks_every_trigger",
            policy: Policy {
                suspend: true,
                ..policy()
            },
            secret: owned(|r| r.data_intact = false),
            expect: Plan::Blocked(BlockReason::Suspended),
            ..Case::default()
        },
        Case {
            name: "client_secret_without_interval_is_never_scheduled",
            policy: Policy {
                credential_type: CredentialType::ClientSecret,
                ..policy()
            },
            secret: owned(|r| r.expiry = Expiry::NotReported),
            now: 10_000_000,
            expect: Plan::Wait {
                until: None,
                why: WaitReason::Scheduled,
            },
            ..Case::default()
        },
        Case {
            name: "client_secret_rotates_every_rotation_interval",
            policy: Policy {
                credential_type: CredentialType::ClientSecret,
                rotation_interval: Some(TimeDelta::seconds(600)),
                ..policy()
            },
            secret: owned(|r| r.expiry = Expiry::NotReported),
            now: 600,
            expect: Plan::Issue(IssueReason::RenewalDue),
            ..Case::default()
        },
        Case {
            name: "client_secret_does_not_need_an_expiry",
            policy: Policy {
                credential_type: CredentialType::ClientSecret,
                ..policy()
            },
            secret: owned(|r| r.expiry = Expiry::Missing),
            expect: Plan::Wait {
                until: None,
                why: WaitReason::Scheduled,
            },
            ..Case::default()
        },
        Case {
            name: "a_permanent_failure_at_the_same_generation_is_retried_on_the_slow_backoff",
            secret: SecretState::Missing,
            failures: permanent(3),
            expect: Plan::Wait {
                until: retry_time(&PlanInput {
                    failures: permanent(3),
                    ..input(100, &policy(), &SecretState::Missing, SEED)
                }),
                why: WaitReason::Backoff(IssueReason::SecretMissing),
            },
            ..Case::default()
        },
        Case {
            name: "retries_permanent_failure_after_spec_change",
            secret: SecretState::Missing,
            failures: permanent(2),
            expect: Plan::Issue(IssueReason::SecretMissing),
            ..Case::default()
        },
        Case {
            name: "rotate_request_lifts_a_permanent_block",
            secret: SecretState::Missing,
            failures: permanent(3),
            rotate_request: Some("retry-1"),
            expect: Plan::Issue(IssueReason::SecretMissing),
            ..Case::default()
        },
        Case {
            name: "backs_off_after_a_retryable_failure",
            secret: SecretState::Missing,
            failures: retryable(1, 100),
            now: 101,
            expect: Plan::Wait {
                until: retry_time(&PlanInput {
                    failures: retryable(1, 100),
                    ..input(101, &policy(), &SecretState::Missing, SEED)
                }),
                why: WaitReason::Backoff(IssueReason::SecretMissing),
            },
            ..Case::default()
        },
        Case {
            name: "retries_once_the_backoff_has_passed",
            secret: SecretState::Missing,
            failures: retryable(1, 100),
            now: 106,
            expect: Plan::Issue(IssueReason::SecretMissing),
            ..Case::default()
        },
    ];
    for case in &cases {
        assert_eq!(run(case), case.expect, "case {}", case.name);
    }
}

#[test]
fn renewal_time_follows_renew_before_percentage_and_default() {
    // Lifetime 3000 s from t(0); jitter advances at most 10% of the window.
    let cases = [
        (RenewPolicy::Default, 2000),
        (RenewPolicy::Before(TimeDelta::seconds(600)), 2400),
        (RenewPolicy::Percentage(10), 2700),
        (RenewPolicy::Percentage(90), 300),
        // renewBefore longer than the lifetime falls back to one third.
        (RenewPolicy::Before(TimeDelta::seconds(5000)), 2000),
    ];
    for (renew, unjittered) in cases {
        let p = Policy { renew, ..policy() };
        for seed in 0..200 {
            let at = renewal_time(&p, &record(), seed).unwrap();
            let bound = TimeDelta::seconds(unjittered / 10);
            assert!(
                at <= t(unjittered),
                "{renew:?} seed {seed}: {at} after {unjittered}"
            );
            assert!(
                at >= t(unjittered) - bound,
                "{renew:?} seed {seed}: jitter beyond 10%"
            );
        }
    }
}

#[test]
fn rotation_interval_shortens_the_expiry_schedule() {
    let p = Policy {
        rotation_interval: Some(TimeDelta::seconds(900)),
        ..policy()
    };
    let at = renewal_time(&p, &record(), SEED).unwrap();
    assert!(at <= t(900) && at >= t(810), "{at}");
}

#[test]
fn unreported_expiry_rotates_daily() {
    let r = Record {
        expiry: Expiry::NotReported,
        ..record()
    };
    let at = renewal_time(&policy(), &r, SEED).unwrap();
    assert!(at <= t(0) + UNKNOWN_EXPIRY_ROTATION);
    assert!(at >= t(0) + UNKNOWN_EXPIRY_ROTATION - MAX_RENEWAL_JITTER);
}

#[test]
fn jitter_is_bounded_by_five_minutes_on_long_lifetimes() {
    let r = Record {
        expiry: Expiry::At(t(180 * 86_400)),
        ..record()
    };
    let unjittered = t(120 * 86_400);
    let mut advances = std::collections::BTreeSet::new();
    for seed in 0..500 {
        let at = renewal_time(&policy(), &r, seed).unwrap();
        assert!(at <= unjittered && at >= unjittered - MAX_RENEWAL_JITTER);
        advances.insert((unjittered - at).num_seconds());
    }
    // Credentials do not rotate in lockstep: the seeds spread over the window.
    assert!(
        advances.len() > 100,
        "only {} distinct renewal times",
        advances.len()
    );
}

#[test]
fn jitter_changes_with_each_revision() {
    let a = renewal_time(&policy(), &record(), SEED).unwrap();
    let b = renewal_time(
        &policy(),
        &Record {
            revision: 2,
            ..record()
        },
        SEED,
    )
    .unwrap();
    assert_ne!(a, b);
}

fn retry_after(attempts: u32, secret: &SecretState, seed: u64) -> TimeDelta {
    let policy = policy();
    let input = PlanInput {
        failures: retryable(attempts, 100),
        ..input(100, &policy, secret, seed)
    };
    retry_time(&input).unwrap() - t(100)
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap() {
    for attempts in 1..=20_u32 {
        let exponent = (attempts - 1).min(16);
        let raw = (BACKOFF_BASE * (1 << exponent)).min(BACKOFF_CAP);
        for seed in 0..50 {
            let delay = retry_after(attempts, &SecretState::Missing, seed);
            assert!(delay <= raw, "attempt {attempts}: {delay} > {raw}");
            assert!(
                delay >= raw * 3 / 4,
                "attempt {attempts}: {delay} < 75% of {raw}"
            );
            assert!(delay <= BACKOFF_CAP);
        }
    }
}

#[test]
fn backoff_is_capped_to_retry_well_before_expiry() {
    // Expires 60 s after the failure: retry within 30 s even after many failures.
    let secret = owned(|r| r.expiry = Expiry::At(t(160)));
    for attempts in [5, 10, 20] {
        let delay = retry_after(attempts, &secret, SEED);
        assert!(
            delay <= TimeDelta::seconds(30),
            "attempt {attempts}: {delay}"
        );
        assert!(delay >= MIN_RETRY_DELAY);
    }
    // Already expired: the normal backoff applies, never below the minimum.
    let expired = owned(|r| r.expiry = Expiry::At(t(50)));
    assert!(retry_after(3, &expired, SEED) >= TimeDelta::seconds(15));
}

#[test]
fn retry_just_before_expiry_waits_the_minimum_delay() {
    // Expires one second after the failure: half of that is below the floor of one second.
    let secret = owned(|r| r.expiry = Expiry::At(t(101)));
    assert_eq!(retry_after(4, &secret, SEED), MIN_RETRY_DELAY);
}

#[test]
fn no_trigger_issues_twice_within_the_minimum_interval() {
    let cases = [
        Case {
            name: "a deleted Secret is recreated only after the minimum interval",
            secret: SecretState::Missing,
            now: 110,
            last_issued_at: Some(100),
            expect: Plan::Wait {
                until: Some(t(130)),
                why: WaitReason::Throttled(IssueReason::SecretMissing),
            },
            ..Case::default()
        },
        Case {
            name: "a rotate request waits for the minimum interval too",
            rotate_request: Some("again"),
            observed_rotate_request: Some("before"),
            now: 10,
            last_issued_at: Some(0),
            expect: Plan::Wait {
                until: Some(t(30)),
                why: WaitReason::Throttled(IssueReason::RotateRequested),
            },
            ..Case::default()
        },
        Case {
            name: "an edited Secret is repaired once the interval has passed",
            secret: owned(|r| r.data_intact = false),
            now: 130,
            last_issued_at: Some(100),
            expect: Plan::Issue(IssueReason::DataTampered),
            ..Case::default()
        },
        Case {
            name: "an issue time in the future is not trusted to hold issues back",
            secret: SecretState::Missing,
            now: 100,
            last_issued_at: Some(1_000_000),
            expect: Plan::Issue(IssueReason::SecretMissing),
            ..Case::default()
        },
        Case {
            name: "a permanent failure is reported as its backoff, not as throttling",
            secret: SecretState::Missing,
            failures: permanent(3),
            now: 60,
            last_issued_at: Some(50),
            expect: Plan::Wait {
                until: retry_time(&PlanInput {
                    failures: permanent(3),
                    ..input(60, &policy(), &SecretState::Missing, SEED)
                }),
                why: WaitReason::Backoff(IssueReason::SecretMissing),
            },
            ..Case::default()
        },
    ];
    for case in &cases {
        assert_eq!(run(case), case.expect, "case {}", case.name);
    }
}

#[test]
fn a_rotate_request_is_tried_at_once_once_then_backs_off() {
    let cases = [
        Case {
            name: "a new request skips the backoff of an earlier failure",
            rotate_request: Some("r2"),
            attempted_rotate_request: Some("r1"),
            failures: retryable(3, 100),
            now: 101,
            expect: Plan::Issue(IssueReason::RotateRequested),
            ..Case::default()
        },
        Case {
            name: "a request that failed retries with the backoff",
            rotate_request: Some("r2"),
            attempted_rotate_request: Some("r2"),
            failures: retryable(1, 100),
            now: 101,
            expect: Plan::Wait {
                until: retry_time(&PlanInput {
                    failures: retryable(1, 100),
                    ..input(101, &policy(), &SecretState::Owned(record()), SEED)
                }),
                why: WaitReason::Backoff(IssueReason::RotateRequested),
            },
            ..Case::default()
        },
    ];
    for case in &cases {
        assert_eq!(run(case), case.expect, "case {}", case.name);
    }
}

#[test]
fn a_token_revoked_elsewhere_is_replaced_and_probes_follow_the_interval() {
    let verifying = Policy {
        verify_interval: Some(TimeDelta::seconds(600)),
        ..policy()
    };
    let owned = SecretState::Owned(record());
    let at = |now: i64, verification: Option<Verification>| {
        plan(&PlanInput {
            last_verification: verification,
            ..input(now, &verifying, &owned, SEED)
        })
    };
    // First probe: up to a tenth before 600 s after the issue.
    assert!(
        matches!(at(100, None), Plan::Wait { until: Some(u), .. } if u <= t(600) && u >= t(540))
    );
    assert_eq!(at(600, None), Plan::Verify);
    let valid = Verification {
        at: t(600),
        revoked: false,
    };
    assert!(matches!(at(700, Some(valid)), Plan::Wait { until: Some(u), .. } if u > t(1100)));
    let revoked = Verification {
        at: t(600),
        revoked: true,
    };
    // A probe in the second the credential was recorded as issued is the one it replaced.
    let same_second = Verification {
        at: t(0) + TimeDelta::milliseconds(552),
        revoked: true,
    };
    assert!(matches!(at(100, Some(same_second)), Plan::Wait { .. }));
    assert_eq!(
        at(601, Some(revoked)),
        Plan::Issue(IssueReason::RevokedExternally)
    );
    // A verdict from before the current credential was issued says nothing about it.
    let stale = Verification {
        at: t(-5),
        revoked: true,
    };
    assert!(matches!(at(100, Some(stale)), Plan::Wait { .. }));
    // Client secrets are never probed.
    let client_secret = Policy {
        credential_type: CredentialType::ClientSecret,
        ..verifying.clone()
    };
    let client_secret_record = SecretState::Owned(Record {
        expiry: Expiry::NotReported,
        ..record()
    });
    assert!(matches!(
        plan(&input(100_000, &client_secret, &client_secret_record, SEED)),
        Plan::Wait { .. }
    ));
}

#[test]
fn preflight_runs_on_request_and_once_for_a_staged_credential() {
    let suspended = Policy {
        suspend: true,
        ..policy()
    };
    let missing = SecretState::Missing;
    assert_eq!(
        plan(&input(0, &suspended, &missing, SEED)),
        Plan::Preflight,
        "created suspended: checked once"
    );
    let ran = Requests {
        preflight_ran: true,
        ..Requests::default()
    };
    assert_eq!(
        plan(&PlanInput {
            requests: ran,
            ..input(0, &suspended, &missing, SEED)
        }),
        Plan::Blocked(BlockReason::Suspended)
    );
    let requested = Requests {
        preflight: Some("p2"),
        preflight_served: Some("p1"),
        preflight_ran: true,
        ..Requests::default()
    };
    let owned = SecretState::Owned(record());
    assert_eq!(
        plan(&PlanInput {
            requests: requested,
            ..input(100, &policy(), &owned, SEED)
        }),
        Plan::Preflight
    );
    let served = Requests {
        preflight_served: Some("p2"),
        ..requested
    };
    assert!(matches!(
        plan(&PlanInput {
            requests: served,
            ..input(100, &policy(), &owned, SEED)
        }),
        Plan::Wait { .. }
    ));
}

#[test]
fn a_sync_client_owned_by_an_older_credential_is_never_issued() {
    let missing = SecretState::Missing;
    assert_eq!(
        plan(&PlanInput {
            sync_client_taken: true,
            requests: Requests {
                rotate: Some("now"),
                ..Requests::default()
            },
            ..input(0, &policy(), &missing, SEED)
        }),
        Plan::Blocked(BlockReason::SyncClientInUse)
    );
}

#[test]
fn absurd_records_never_overflow() {
    let far = Record {
        issued_at: DateTime::<Utc>::MAX_UTC - TimeDelta::seconds(10),
        expiry: Expiry::At(DateTime::<Utc>::MAX_UTC),
        ..record()
    };
    let longest = Policy {
        rotation_interval: Some(TimeDelta::MAX),
        verify_interval: Some(TimeDelta::MAX),
        renew: RenewPolicy::Percentage(99),
        ..policy()
    };
    let secret = SecretState::Owned(far.clone());
    let _ = plan(&input(0, &longest, &secret, SEED));
    let _ = renewal_time(&longest, &far, SEED);
    let ancient = Record {
        issued_at: DateTime::<Utc>::MIN_UTC,
        expiry: Expiry::At(DateTime::<Utc>::MAX_UTC),
        ..record()
    };
    let _ = renewal_time(&longest, &ancient, u64::MAX);
}

#[test]
fn a_retry_waits_as_long_as_the_broker_asked_within_an_hour() {
    let missing = SecretState::Missing;
    let at = |not_before: Option<i64>| {
        let policy = policy();
        retry_time(&PlanInput {
            failures: Failures {
                not_before: not_before.map(t),
                ..retryable(1, 100)
            },
            ..input(101, &policy, &missing, SEED)
        })
        .unwrap()
    };
    let backoff = at(None);
    assert_eq!(at(Some(108)), t(108).max(backoff), "Retry-After: 8");
    assert_eq!(at(Some(101)), backoff, "never earlier than the backoff");
    assert_eq!(
        at(Some(100 + 7200)),
        backoff,
        "beyond an hour is not trusted"
    );
}

/// Only a change of what the credential is mints: everything else writes the credential held.
#[test]
fn what_the_credential_is_decides_a_mint_everything_else_a_rewrite() {
    let held = record();
    let run_with = |secret: &SecretState, held: Option<&Record>, now: i64| {
        plan(&PlanInput {
            held_elsewhere: held,
            last_issued_at: Some(t(now - 1)),
            ..input(now, &policy(), secret, SEED)
        })
    };
    let cases = [
        (
            "renamed keys are rewritten, not issued, even right after an issue",
            owned(|r| r.layout_current = false),
            None,
            Plan::Rewrite(RewriteReason::KeysRenamed),
        ),
        (
            "a fingerprint of a previous key or format is made again",
            owned(|r| r.fingerprint_current = false),
            None,
            Plan::Rewrite(RewriteReason::RecordOutdated),
        ),
        (
            "a new Secret name moves the credential held in the old one",
            SecretState::Missing,
            Some(&held),
            Plan::Rewrite(RewriteReason::SecretRenamed),
        ),
        (
            "a new identity mints even when the keys changed too",
            owned(|r| {
                r.layout_current = false;
                r.spec_hash = Some("h0".into());
            }),
            None,
            Plan::Wait {
                until: Some(t(129)),
                why: WaitReason::Throttled(IssueReason::SpecChanged),
            },
        ),
    ];
    for (name, secret, held, expect) in cases {
        assert_eq!(run_with(&secret, held, 100), expect, "{name}");
    }
    // A moved credential keeps its schedule: due for renewal, it is issued into the new Secret.
    let due = plan(&PlanInput {
        held_elsewhere: Some(&held),
        ..input(2500, &policy(), &SecretState::Missing, SEED)
    });
    assert_eq!(due, Plan::Issue(IssueReason::RenewalDue));
    let mut tampered = record();
    tampered.data_intact = false;
    let repair = plan(&PlanInput {
        held_elsewhere: Some(&tampered),
        ..input(100, &policy(), &SecretState::Missing, SEED)
    });
    assert_eq!(
        repair,
        Plan::Issue(IssueReason::DataTampered),
        "never moves an edited one"
    );
}

/// A failure that needs a change is retried slowly, never given up, and at once when the broker
/// or the spec changed.
#[test]
fn a_failure_that_needs_a_change_is_retried_on_a_slow_backoff() {
    let missing = SecretState::Missing;
    for attempts in 1..=12 {
        let failures = Failures {
            attempts,
            ..permanent(3)
        };
        let at = retry_time(&PlanInput {
            failures,
            ..input(50, &policy(), &missing, SEED)
        })
        .unwrap();
        let delay = at.signed_duration_since(t(50));
        assert!(
            delay >= TimeDelta::seconds(90),
            "attempt {attempts}: {delay}"
        );
        assert!(delay <= SLOW_BACKOFF_CAP, "attempt {attempts}: {delay}");
        if attempts >= 7 {
            assert!(
                delay >= SLOW_BACKOFF_CAP * 3 / 4,
                "capped near an hour: {delay}"
            );
        }
    }
    let changed = plan(&PlanInput {
        failures: permanent(3),
        broker_changed: true,
        ..input(60, &policy(), &missing, SEED)
    });
    assert_eq!(
        changed,
        Plan::Issue(IssueReason::SecretMissing),
        "the broker changed"
    );
    // Near the expiry a refusal is still retried at least a minute apart, and the wait ends at
    // the expiry, where Ready turns False.
    let near = plan(&PlanInput {
        failures: Failures {
            last_failure_time: Some(t(2990)),
            ..permanent(3)
        },
        ..input(2991, &policy(), &SecretState::Owned(record()), SEED)
    });
    assert_eq!(
        near,
        Plan::Wait {
            until: Some(t(3000)),
            why: WaitReason::Backoff(IssueReason::RenewalDue),
        }
    );
}

/// A probe is owed after a generate went unanswered (and after a token replaced a revoked one),
/// whatever `verifyInterval` says; a client secret, which cannot be probed, is replaced instead.
#[test]
fn an_owed_probe_comes_when_the_late_generate_can_no_longer_land() {
    let secret = SecretState::Owned(record());
    let owed = |now: i64, policy: &Policy, verified: Option<i64>| {
        plan(&PlanInput {
            verify_after: Some(t(400)),
            last_verification: verified.map(|at| Verification {
                at: t(at),
                revoked: false,
            }),
            ..input(now, policy, &secret, SEED)
        })
    };
    assert_eq!(
        owed(100, &policy(), None),
        Plan::Wait {
            until: Some(t(400)),
            why: WaitReason::Scheduled,
        }
    );
    assert_eq!(owed(400, &policy(), None), Plan::Verify);
    assert_eq!(
        owed(400, &policy(), Some(300)),
        Plan::Verify,
        "a probe before does not count"
    );
    assert_ne!(
        owed(500, &policy(), Some(450)),
        Plan::Verify,
        "the owed probe happened"
    );
    let client_secret = Policy {
        credential_type: CredentialType::ClientSecret,
        ..policy()
    };
    assert_eq!(
        owed(400, &client_secret, None),
        Plan::Issue(IssueReason::OutcomeUnknown)
    );
}
