//! The deliveries part of a credential's status: what each target holds, its validation, its
//! job's state, the last failure and the next attempt; and the `Delivered` condition.

use chrono::{DateTime, TimeDelta, Utc};

use super::bounded;
use super::credential::StatusInput;
use crate::api::{
    Condition, ConditionStatus, DeliveryStatus, Name, SyncClientCredentialStatus, Text, reasons,
    set_condition,
};
use crate::controller::credential::deliver::{DeliveryNote, Validation, complete_at};
use crate::planner::{MAX_RETRY_AFTER, jittered_backoff};

/// Backoff of a failed delivery: from 5 s, doubling, at most 10 minutes.
const RETRY_BASE: TimeDelta = TimeDelta::seconds(5);
const RETRY_CAP: TimeDelta = TimeDelta::minutes(10);
/// A validation refused right after the save is asked again this soon (the read may lag).
const VALIDATION_RECHECK: TimeDelta = TimeDelta::seconds(5);

/// Records what the deliveries of this reconcile did and sets the `Delivered` condition.
pub fn apply_deliveries(status: &mut SyncClientCredentialStatus, input: &StatusInput<'_>) {
    status
        .deliveries
        .retain(|d| input.delivery_names.contains(&d.name));
    for note in input.deliveries() {
        let index = if let Some(index) = status.deliveries.iter().position(|d| d.name == note.name)
        {
            index
        } else {
            status.deliveries.push(DeliveryStatus {
                name: note.name.clone(),
                ..DeliveryStatus::default()
            });
            status.deliveries.len() - 1
        };
        record(&mut status.deliveries[index], note, input.jitter_seed);
    }
    status
        .deliveries
        .sort_by_key(|d| input.delivery_names.iter().position(|n| *n == d.name));
    delivered_condition(status, input);
}

fn record(status: &mut DeliveryStatus, note: &DeliveryNote, seed: u64) {
    status.last_attempt_time = Some(note.at);
    if note.job_id.is_some() {
        status.job_id.clone_from(&note.job_id);
    }
    if note.saved {
        if status.delivered_revision != Some(note.revision) {
            status.validation = None;
        }
        status.delivered_revision = Some(note.revision);
        if note.saved_now {
            status.delivered_time = Some(note.at);
        }
    }
    match &note.validation {
        Some(Validation::Passed) => status.validation = Some("Passed".into()),
        Some(Validation::Pending(message)) => {
            status.validation = Some(bounded(&format!("Pending: {message}")).into());
        }
        Some(Validation::Failed(message)) => {
            status.validation = Some(bounded(&format!("Failed: {message}")).into());
        }
        None => {}
    }
    if let Some((state, reason)) = &note.job {
        status.job_state = Some(if note.quarantine_lifted {
            "Active".into()
        } else {
            Name::intern(state)
        });
        status.quarantine_reason = reason
            .as_deref()
            .filter(|_| !note.quarantine_lifted)
            .map(Text::from);
    }
    if note.quarantine_lifted {
        status.quarantine_lifted_time = Some(note.at);
    }
    match &note.failure {
        Some(failure) => {
            status.failed_attempts = status.failed_attempts.saturating_add(1);
            status.last_failure_reason = Some(failure.reason.as_str().into());
            status.last_failure_message = Some(bounded(&failure.message).into());
            let attempts = u32::try_from(status.failed_attempts).unwrap_or(1);
            let backoff = jittered_backoff(RETRY_BASE, RETRY_CAP, attempts, seed);
            let asked = failure
                .retry_after
                .and_then(|d| TimeDelta::from_std(d).ok())
                .map(|d| d.min(MAX_RETRY_AFTER))
                .unwrap_or_default();
            status.next_attempt_time = note.at.checked_add_signed(backoff.max(asked));
        }
        None if matches!(note.validation, Some(Validation::Pending(_))) => {
            status.next_attempt_time = note.at.checked_add_signed(VALIDATION_RECHECK);
        }
        None => {
            status.failed_attempts = 0;
            status.last_failure_reason = None;
            status.last_failure_message = None;
            status.next_attempt_time = None;
        }
    }
}

/// `Delivered`: True once every delivery holds the current revision, validated, its job out of
/// quarantine; else False with the first failing delivery's reason (or pending).
fn delivered_condition(status: &mut SyncClientCredentialStatus, input: &StatusInput<'_>) {
    if input.delivery_names.is_empty() {
        status.conditions.retain(|c| c.type_ != reasons::DELIVERED);
        return;
    }
    let Some(revision) = status.revision else {
        return;
    };
    let targets = input.delivery_names.join(", ");
    let done = input.delivery_names.iter().all(|name| {
        status
            .deliveries
            .iter()
            .any(|d| d.name == *name && complete_at(d, revision))
    });
    let failing = status
        .deliveries
        .iter()
        .find(|d| d.last_failure_reason.is_some());
    // A failure's message is built on the delivery's last failure message: unknown while the
    // cache holds only its digest, so the status is then computed again from a fresh read.
    let (state, reason, message) = match failing {
        _ if done => (
            ConditionStatus::True,
            Name::new(reasons::DELIVERED_AND_VALIDATED),
            Text::from(bounded(&format!(
                "revision {revision} delivered to {targets} and validated"
            ))),
        ),
        Some(delivery) => (
            ConditionStatus::False,
            delivery
                .last_failure_reason
                .clone()
                .unwrap_or_else(|| Name::new("")),
            delivery
                .last_failure_message
                .clone()
                .unwrap_or_default()
                .map(|last| {
                    bounded(&format!(
                        "delivering revision {revision} to {}: {last}; retried at {}",
                        delivery.name,
                        delivery
                            .next_attempt_time
                            .map_or_else(|| "-".to_owned(), crate::secret::rfc3339)
                    ))
                }),
        ),
        None => (
            ConditionStatus::False,
            Name::new(reasons::DELIVERY_PENDING),
            Text::from(bounded(&format!(
                "revision {revision} is being delivered to {targets}"
            ))),
        ),
    };
    set_condition(
        &mut status.conditions,
        Condition {
            type_: Name::new(reasons::DELIVERED),
            status: state,
            reason,
            message,
            last_transition_time: input.now,
            observed_generation: Some(input.generation),
        },
    );
}

/// When the next delivery attempt is due, from a status: the earliest next attempt of a
/// delivery that does not hold `revision` complete (`now` when it never was tried).
pub fn next_delivery(
    status: &SyncClientCredentialStatus,
    names: &[String],
    revision: i64,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    names
        .iter()
        .filter_map(|name| {
            let delivery = status.deliveries.iter().find(|d| d.name == *name);
            match delivery {
                Some(d) if complete_at(d, revision) => None,
                Some(d) => Some(d.next_attempt_time.unwrap_or(now)),
                None => Some(now),
            }
        })
        .min()
}
