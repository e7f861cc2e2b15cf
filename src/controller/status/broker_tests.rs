//! Table tests of the broker status.

use chrono::{DateTime, TimeDelta, Utc};

use super::broker::{AuthResult, compute, is_ready_at};
use crate::api::{BrokerStatus, ConditionStatus, reasons};
use crate::controller::failure::{Failure, FailureReason};

fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn authenticated_at(at: i64) -> BrokerStatus {
    compute(
        &BrokerStatus::default(),
        Some(1),
        &AuthResult::Authenticated {
            broker_token_expires_in: Some(TimeDelta::hours(1)),
        },
        t(at),
    )
}

struct Case {
    name: &'static str,
    old: BrokerStatus,
    result: AuthResult,
    ready: (ConditionStatus, &'static str),
    last_authentication: Option<DateTime<Utc>>,
    token_expires: Option<DateTime<Utc>>,
}

#[test]
fn broker_status_follows_the_authentication_result() {
    let cases = [
        Case {
            name: "authenticated with a token lifetime",
            old: BrokerStatus::default(),
            result: AuthResult::Authenticated {
                broker_token_expires_in: Some(TimeDelta::hours(1)),
            },
            ready: (ConditionStatus::True, reasons::AUTHENTICATED),
            last_authentication: Some(t(100)),
            token_expires: Some(t(3700)),
        },
        Case {
            name: "authenticated, the broker named no lifetime",
            old: BrokerStatus::default(),
            result: AuthResult::Authenticated {
                broker_token_expires_in: None,
            },
            ready: (ConditionStatus::True, reasons::AUTHENTICATED),
            last_authentication: Some(t(100)),
            token_expires: None,
        },
        Case {
            name: "a lifetime beyond the calendar is dropped, not added",
            old: BrokerStatus::default(),
            result: AuthResult::Authenticated {
                broker_token_expires_in: Some(TimeDelta::MAX),
            },
            ready: (ConditionStatus::True, reasons::AUTHENTICATED),
            last_authentication: Some(t(100)),
            token_expires: None,
        },
        Case {
            name: "a rejected login",
            old: BrokerStatus::default(),
            result: AuthResult::Failed(Failure::new(
                FailureReason::AuthenticationFailed,
                "vCenter answered 401",
            )),
            ready: (ConditionStatus::False, "AuthenticationFailed"),
            last_authentication: None,
            token_expires: None,
        },
        Case {
            name: "a failure after a success keeps when it last worked",
            old: authenticated_at(0),
            result: AuthResult::Failed(Failure::new(
                FailureReason::BrokerConfigInvalid,
                "Secret login not found",
            )),
            ready: (ConditionStatus::False, "BrokerConfigInvalid"),
            last_authentication: Some(t(0)),
            token_expires: Some(t(3600)),
        },
    ];
    for case in &cases {
        let status = compute(&case.old, Some(2), &case.result, t(100));
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == reasons::READY)
            .unwrap();
        assert_eq!(
            (ready.status, ready.reason.as_str()),
            case.ready,
            "{}",
            case.name
        );
        assert_eq!(ready.observed_generation, Some(2), "{}", case.name);
        assert_eq!(status.observed_generation, Some(2), "{}", case.name);
        assert_eq!(
            status.last_authentication_time, case.last_authentication,
            "{}",
            case.name
        );
        assert_eq!(
            status.broker_token_expires_at, case.token_expires,
            "{}",
            case.name
        );
    }
}

#[test]
fn the_transition_time_moves_only_when_readiness_changes() {
    let first = authenticated_at(0);
    let again = compute(
        &first,
        Some(1),
        &AuthResult::Authenticated {
            broker_token_expires_in: Some(TimeDelta::hours(1)),
        },
        t(500),
    );
    assert_eq!(
        again.conditions[0].last_transition_time,
        t(0),
        "still Ready: the transition time stays"
    );
    let failed = compute(
        &again,
        Some(1),
        &AuthResult::Failed(Failure::new(FailureReason::BrokerUnavailable, "503")),
        t(900),
    );
    assert_eq!(failed.conditions[0].last_transition_time, t(900));
}

#[test]
fn a_broker_is_left_alone_only_when_ready_at_its_generation() {
    let ready = authenticated_at(0);
    assert!(is_ready_at(&ready, Some(1)));
    assert!(!is_ready_at(&ready, Some(2)), "its spec changed");
    let failed = compute(
        &ready,
        Some(1),
        &AuthResult::Failed(Failure::new(FailureReason::BrokerUnavailable, "503")),
        t(10),
    );
    assert!(!is_ready_at(&failed, Some(1)));
    assert!(!is_ready_at(&BrokerStatus::default(), Some(1)));
}
