//! Property tests: whatever the spec, the record, the failures and the clock say, the planner
//! never panics, never schedules into the past, renews before expiry and never issues twice
//! within the minimum interval.

use proptest::prelude::*;

use super::*;

fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        // Around now, where real values are.
        (1_700_000_000_i64..1_900_000_000).prop_map(|s| DateTime::from_timestamp(s, 0)),
        // Anywhere chrono can represent, edges included.
        any::<i64>().prop_map(|s| DateTime::from_timestamp(s / 1000, 0)),
        Just(Some(DateTime::<Utc>::MAX_UTC)),
        Just(Some(DateTime::<Utc>::MIN_UTC)),
    ]
    .prop_map(|t| t.unwrap_or(DateTime::<Utc>::MIN_UTC))
}

fn any_delta() -> impl Strategy<Value = TimeDelta> {
    prop_oneof![
        (0_i64..10_000_000).prop_map(TimeDelta::seconds),
        any::<i64>().prop_map(|ms| TimeDelta::try_milliseconds(ms).unwrap_or(TimeDelta::MAX)),
        Just(TimeDelta::MAX),
        Just(TimeDelta::MIN),
        Just(TimeDelta::zero()),
    ]
}

fn any_policy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![
            Just(CredentialType::AccessToken),
            Just(CredentialType::ClientSecret)
        ],
        prop_oneof![
            Just(RenewPolicy::Default),
            any_delta().prop_map(RenewPolicy::Before),
            any::<i32>().prop_map(RenewPolicy::Percentage),
        ],
        proptest::option::of(any_delta()),
        any::<bool>(),
        proptest::option::of(any_delta()),
    )
        .prop_map(
            |(credential_type, renew, rotation_interval, suspend, verify_interval)| Policy {
                credential_type,
                renew,
                rotation_interval,
                suspend,
                verify_interval,
                spec_hash: "h".into(),
            },
        )
}

fn any_record() -> impl Strategy<Value = Record> {
    (
        any_time(),
        prop_oneof![
            any_time().prop_map(Expiry::At),
            Just(Expiry::NotReported),
            Just(Expiry::Missing),
        ],
        any::<i64>(),
        prop_oneof![Just(Some("h".to_owned())), Just(None)],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(
                issued_at,
                expiry,
                revision,
                spec_hash,
                data_intact,
                layout_current,
                fingerprint_current,
            )| Record {
                issued_at,
                expiry,
                revision,
                spec_hash,
                data_intact,
                layout_current,
                fingerprint_current,
            },
        )
}

fn any_secret() -> impl Strategy<Value = SecretState> {
    let record = any_record();
    prop_oneof![
        Just(SecretState::Missing),
        Just(SecretState::NotOwned),
        Just(SecretState::Unreadable),
        record.prop_map(SecretState::Owned),
    ]
}

fn any_failures() -> impl Strategy<Value = Failures> {
    (
        any::<u32>(),
        proptest::option::of(any_time()),
        proptest::option::of(prop_oneof![
            Just(FailureCategory::Permanent),
            Just(FailureCategory::Retryable)
        ]),
        proptest::option::of(0_i64..5),
    )
        .prop_map(
            |(attempts, last_failure_time, category, generation)| Failures {
                attempts,
                last_failure_time,
                category,
                generation,
                not_before: last_failure_time,
            },
        )
}

fn any_request() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop_oneof![Just("a"), Just("b")])
}

/// Everything but the borrowed parts, so a strategy can own it.
#[derive(Debug, Clone)]
struct World {
    now: DateTime<Utc>,
    policy: Policy,
    secret: SecretState,
    failures: Failures,
    requests: [Option<&'static str>; 5],
    preflight_ran: bool,
    last_issued_at: Option<DateTime<Utc>>,
    last_verification: Option<Verification>,
    sync_client_taken: bool,
    min_issue_interval: TimeDelta,
    held_elsewhere: Option<Record>,
    broker_changed: bool,
    verify_after: Option<DateTime<Utc>>,
    delivery_due: Option<DateTime<Utc>>,
    seed: u64,
}

fn any_world() -> impl Strategy<Value = World> {
    (
        (any_time(), any_policy(), any_secret(), any_failures()),
        (
            [
                any_request(),
                any_request(),
                any_request(),
                any_request(),
                any_request(),
            ],
            any::<bool>(),
            proptest::option::of(any_time()),
            proptest::option::of(
                (any_time(), any::<bool>()).prop_map(|(at, revoked)| Verification { at, revoked }),
            ),
        ),
        (
            any::<bool>(),
            (0_i64..3600).prop_map(TimeDelta::seconds),
            any::<u64>(),
        ),
        (
            proptest::option::of(any_record()),
            any::<bool>(),
            proptest::option::of(any_time()),
            proptest::option::of(any_time()),
        ),
    )
        .prop_map(
            |(
                (now, policy, secret, failures),
                (requests, preflight_ran, last_issued_at, last_verification),
                (sync_client_taken, min_issue_interval, seed),
                (held_elsewhere, broker_changed, verify_after, delivery_due),
            )| World {
                now,
                policy,
                secret,
                failures,
                requests,
                preflight_ran,
                last_issued_at,
                last_verification,
                sync_client_taken,
                min_issue_interval,
                held_elsewhere,
                broker_changed,
                verify_after,
                delivery_due,
                seed,
            },
        )
}

impl World {
    fn input(&self) -> PlanInput<'_> {
        PlanInput {
            now: self.now,
            generation: 3,
            policy: &self.policy,
            secret: &self.secret,
            failures: self.failures,
            requests: Requests {
                rotate: self.requests[0],
                rotate_served: self.requests[1],
                rotate_attempted: self.requests[2],
                preflight: self.requests[3],
                preflight_served: self.requests[4],
                preflight_ran: self.preflight_ran,
            },
            last_issued_at: self.last_issued_at,
            last_verification: self.last_verification,
            sync_client_taken: self.sync_client_taken,
            min_issue_interval: self.min_issue_interval,
            held_elsewhere: self.held_elsewhere.as_ref(),
            broker_changed: self.broker_changed,
            verify_after: self.verify_after,
            delivery_due: self.delivery_due,
            jitter_seed: self.seed,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_planner_never_panics_and_never_waits_for_the_past(world in any_world()) {
        let input = world.input();
        match plan(&input) {
            Plan::Wait { until: Some(until), .. } => prop_assert!(until > input.now),
            Plan::Issue(_) | Plan::Wait { until: None, .. } | Plan::Blocked(_)
            | Plan::Rewrite(_) | Plan::Deliver | Plan::Verify | Plan::Preflight => {}
        }
        let _ = retry_time(&input);
    }

    /// No failure stops renewal for good: whatever failed before, a credential that is due is
    /// issued now or at a set time, unless a person's choice (suspend, a foreign Secret, an
    /// older owner) holds it.
    #[test]
    fn no_failure_stops_renewal_for_good(world in any_world()) {
        let input = world.input();
        let due = matches!(&input.secret, SecretState::Owned(record)
            if record.data_intact && matches!(record.expiry, Expiry::At(at) if at <= input.now));
        // At the end of what a date can hold no later time exists to wait for.
        let representable = input.now.checked_add_signed(TimeDelta::days(3660)).is_some();
        if due && representable && !input.policy.suspend && !input.sync_client_taken {
            match plan(&input) {
                Plan::Issue(_) | Plan::Wait { until: Some(_), .. } | Plan::Preflight | Plan::Deliver => {}
                other => prop_assert!(false, "an expired credential waits for nothing: {other:?}"),
            }
        }
    }

    #[test]
    fn no_issue_comes_within_the_minimum_interval_of_the_last(world in any_world()) {
        let input = world.input();
        if let (Plan::Issue(_), Some(last)) = (plan(&input), input.last_issued_at)
            && last <= input.now
        {
            let since = input.now.signed_duration_since(last);
            prop_assert!(since >= input.min_issue_interval, "issued {since} after the last");
        }
    }

    #[test]
    fn a_token_is_renewed_before_it_expires(
        policy in any_policy(),
        issued_at in any_time(),
        lifetime in (1_i64..=10 * 365 * 86_400).prop_map(TimeDelta::seconds),
        revision in any::<i64>(),
        seed in any::<u64>(),
    ) {
        let policy = Policy {
            credential_type: CredentialType::AccessToken,
            rotation_interval: policy.rotation_interval.filter(|d| *d > TimeDelta::zero()),
            ..policy
        };
        let Some(expires_at) = issued_at.checked_add_signed(lifetime) else {
            return Ok(());
        };
        let record = Record {
            issued_at,
            expiry: Expiry::At(expires_at),
            revision,
            spec_hash: Some("h".into()),
            data_intact: true,
            layout_current: true,
            fingerprint_current: true,
        };
        if let Some(renewal) = renewal_time(&policy, &record, seed) {
            prop_assert!(renewal <= expires_at, "renewal {renewal} after expiry {expires_at}");
            prop_assert!(renewal >= issued_at, "renewal {renewal} before issue {issued_at}");
        }
    }

    #[test]
    fn a_retry_is_never_before_the_failure(world in any_world()) {
        let input = world.input();
        if let (Some(at), Some(failed)) = (retry_time(&input), input.failures.last_failure_time) {
            prop_assert!(at > failed);
        }
    }
}
