//! A broker resource's status, computed from one authentication attempt. Pure; the broker
//! reconciler writes it with the guarded writer.

use chrono::{DateTime, TimeDelta, Utc};

use super::bounded;
use crate::api::{BrokerStatus, Condition, ConditionStatus, reasons, set_condition};
use crate::controller::failure::Failure;

/// How authenticating to the broker went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    Authenticated {
        /// Lifetime of the broker token, if the broker said.
        broker_token_expires_in: Option<TimeDelta>,
    },
    Failed(Failure),
}

/// The new status after an attempt at `generation`; conditions keep their transition time when
/// their status did not change.
pub fn compute(
    old: &BrokerStatus,
    generation: Option<i64>,
    result: &AuthResult,
    now: DateTime<Utc>,
) -> BrokerStatus {
    let mut status = old.clone();
    status.observed_generation = generation;
    let (condition_status, reason, message) = match result {
        AuthResult::Authenticated {
            broker_token_expires_in,
        } => {
            status.last_authentication_time = Some(now);
            status.broker_token_expires_at =
                broker_token_expires_in.and_then(|lifetime| now.checked_add_signed(lifetime));
            (
                ConditionStatus::True,
                reasons::AUTHENTICATED,
                "authenticated to the broker".to_owned(),
            )
        }
        AuthResult::Failed(failure) => (
            ConditionStatus::False,
            failure.reason.as_str(),
            bounded(&failure.message),
        ),
    };
    set_condition(
        &mut status.conditions,
        Condition {
            type_: reasons::READY.into(),
            status: condition_status,
            reason: reason.into(),
            message: message.into(),
            last_transition_time: now,
            observed_generation: generation,
        },
    );
    status
}

/// Whether the broker is Ready at its current generation: then it is not contacted again.
pub fn is_ready_at(status: &BrokerStatus, generation: Option<i64>) -> bool {
    status.observed_generation == generation
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == reasons::READY && c.status == ConditionStatus::True)
}
