//! Deliveries: where a credential's token goes besides its Secret (`spec.deliveries`, today
//! Microsoft Entra ID provisioning jobs) and what the operator recorded of each
//! (`status.deliveries`). Pure, like [`crate::summary`]: summaries hold absolute times, cells take
//! the clock.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sync_client_operator::api::{
    DeliveryStatus, EntraConnectionKind, EntraIdDelivery, SyncClientCredential, reasons,
};
use sync_client_operator::controller::credential::deliver::complete_at;

use crate::humanize::{ago, due, timestamp};
use crate::summary::one_line;

/// The job state Entra ID reports for a quarantined job.
const QUARANTINE: &str = "Quarantine";

/// One delivery of a credential: the target as the spec names it, what the operator recorded for
/// it, and whether it holds the credential's current revision.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySummary {
    pub name: String,
    /// `spec.deliveries[].entraId`.
    pub entra_id: Option<EntraIdDelivery>,
    /// Holds the credential's current revision, validated, its job not in quarantine (what the
    /// operator's `Delivered` condition counts).
    pub current: bool,
    /// `status.deliveries[]` of this name; null before the operator first tried it.
    pub status: Option<DeliveryStatus>,
}

/// The deliveries of `spec.deliveries`, in its order, each with its recorded status.
pub fn summarize(credential: &SyncClientCredential) -> Vec<DeliverySummary> {
    let status = credential.status.as_ref();
    let revision = status.and_then(|s| s.revision);
    credential
        .spec
        .deliveries
        .iter()
        .map(|delivery| {
            let recorded = status
                .and_then(|s| s.deliveries.iter().find(|d| d.name == delivery.name))
                .cloned();
            DeliverySummary {
                name: delivery.name.clone(),
                entra_id: delivery.entra_id.clone(),
                current: recorded
                    .as_ref()
                    .zip(revision)
                    .is_some_and(|(d, revision)| complete_at(d, revision)),
                status: recorded,
            }
        })
        .collect()
}

/// Why a delivery is not done, in the operator's words: its last failure's reason, else
/// `DeliveryPending`.
fn pending_reason(delivery: &DeliverySummary) -> &str {
    delivery
        .status
        .as_ref()
        .and_then(|s| s.last_failure_reason.as_deref())
        .unwrap_or(reasons::DELIVERY_PENDING)
}

/// The DELIVERED column: `2/2`; `1/2 EntraPermissionDenied` (why the first delivery behind is
/// behind); `-` without deliveries.
pub fn delivered_cell(deliveries: &[DeliverySummary]) -> String {
    let done = deliveries.iter().filter(|d| d.current).count();
    match deliveries.iter().find(|d| !d.current) {
        _ if deliveries.is_empty() => "-".to_owned(),
        None => format!("{done}/{}", deliveries.len()),
        Some(behind) => format!("{done}/{} {}", deliveries.len(), pending_reason(behind)),
    }
}

/// The DELIVERIES column of `-o wide`, per delivery: `entra: job Active, validation Passed`,
/// `entra: job Quarantine (EncounteredQuarantineException), validation Failed, next attempt in
/// 40s`, `entra: not attempted yet`; `; ` between deliveries, `-` without any.
pub fn details_cell(deliveries: &[DeliverySummary], now: DateTime<Utc>) -> String {
    if deliveries.is_empty() {
        return "-".to_owned();
    }
    deliveries
        .iter()
        .map(|delivery| match &delivery.status {
            Some(status) if status.last_attempt_time.is_some() => {
                let validation = status
                    .validation
                    .as_deref()
                    .and_then(|v| v.split(':').next())
                    .unwrap_or("-");
                let next = status
                    .next_attempt_time
                    .map(|at| format!(", next attempt {}", due(now, at)))
                    .unwrap_or_default();
                format!(
                    "{}: job {}, validation {validation}{next}",
                    delivery.name,
                    job_state(status)
                )
            }
            _ => format!("{}: not attempted yet", delivery.name),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `Active`, `Quarantine (EncounteredQuarantineException)`, `-` when never read.
fn job_state(status: &DeliveryStatus) -> String {
    match (status.job_state.as_deref(), &status.quarantine_reason) {
        (Some(QUARANTINE), Some(reason)) => format!("{QUARANTINE} ({reason})"),
        (Some(state), _) => state.to_owned(),
        (None, _) => "-".to_owned(),
    }
}

/// Headers of the deliveries table `status NAME` prints below the credential.
pub const STATUS_HEADERS: [&str; 10] = [
    "DELIVERY",
    "CONNECTION",
    "JOB",
    "REVISION",
    "DELIVERED",
    "VALIDATION",
    "JOB STATE",
    "FAILURES",
    "NEXT ATTEMPT",
    "LAST FAILURE",
];

/// One row per delivery of a credential at `revision`, matching [`STATUS_HEADERS`].
pub fn status_rows(
    deliveries: &[DeliverySummary],
    revision: Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Vec<String>> {
    deliveries
        .iter()
        .map(|delivery| {
            let status = delivery.status.clone().unwrap_or_default();
            let spec = delivery.entra_id.as_ref();
            vec![
                delivery.name.clone(),
                spec.map_or_else(|| "-".to_owned(), connection),
                status
                    .job_id
                    .clone()
                    .or_else(|| spec.and_then(|s| s.job_id.clone()))
                    .unwrap_or_else(|| "-".to_owned()),
                revision_cell(status.delivered_revision, revision),
                status
                    .delivered_time
                    .map_or_else(|| "-".to_owned(), |at| ago(now, at)),
                one_line(status.validation.as_deref()),
                job_state_detail(&status, now),
                status.failed_attempts.to_string(),
                status
                    .next_attempt_time
                    .map_or_else(|| "-".to_owned(), |at| due(now, at)),
                last_failure(&status),
            ]
        })
        .collect()
}

/// `EntraConnection/entra`, `ClusterEntraConnection/shared`.
fn connection(spec: &EntraIdDelivery) -> String {
    let kind = match spec.connection_ref.kind {
        EntraConnectionKind::EntraConnection => "EntraConnection",
        EntraConnectionKind::ClusterEntraConnection => "ClusterEntraConnection",
    };
    format!("{kind}/{}", spec.connection_ref.name)
}

/// `4`; `3 (behind 4)` when the credential holds a newer revision; `-` before the first save.
fn revision_cell(delivered: Option<i64>, current: Option<i64>) -> String {
    match (delivered, current) {
        (None, _) => "-".to_owned(),
        (Some(delivered), Some(current)) if delivered != current => {
            format!("{delivered} (behind {current})")
        }
        (Some(delivered), _) => delivered.to_string(),
    }
}

/// The job state, and when the operator last lifted a quarantine of it:
/// `Active (quarantine lifted 2m ago)`.
fn job_state_detail(status: &DeliveryStatus, now: DateTime<Utc>) -> String {
    let state = job_state(status);
    match status.quarantine_lifted_time {
        Some(at) if status.job_state.as_deref() != Some(QUARANTINE) => {
            format!("{state} (quarantine lifted {})", ago(now, at))
        }
        _ => state,
    }
}

/// `EntraThrottled: 429 from Graph ...`, `-`.
fn last_failure(status: &DeliveryStatus) -> String {
    match (&status.last_failure_reason, &status.last_failure_message) {
        (Some(reason), Some(message)) if !message.is_empty() => {
            format!("{reason}: {}", one_line(Some(message)))
        }
        (Some(reason), _) => reason.to_string(),
        (None, _) => "-".to_owned(),
    }
}

/// Headers of the deliveries table `history` prints below the issue attempts.
pub const HISTORY_HEADERS: [&str; 5] = [
    "DELIVERY",
    "REVISION",
    "DELIVERED",
    "LAST ATTEMPT",
    "OUTCOME",
];

/// One row per delivery, matching [`HISTORY_HEADERS`]: the revision it holds and when it was
/// saved; when it was last tried and how that ended (`DeliveredAndValidated`, the failure's
/// reason, or `DeliveryPending`: saved, its validation or a quarantine still open).
pub fn history_rows(deliveries: &[DeliverySummary], now: DateTime<Utc>) -> Vec<Vec<String>> {
    let when = |at: Option<DateTime<Utc>>| {
        at.map_or_else(
            || "-".to_owned(),
            |at| format!("{} ({})", timestamp(at), ago(now, at)),
        )
    };
    deliveries
        .iter()
        .map(|delivery| {
            let status = delivery.status.clone().unwrap_or_default();
            let outcome = match status.delivered_revision {
                _ if status.last_failure_reason.is_some() => pending_reason(delivery),
                Some(revision) if complete_at(&status, revision) => {
                    reasons::DELIVERED_AND_VALIDATED
                }
                _ => reasons::DELIVERY_PENDING,
            };
            vec![
                delivery.name.clone(),
                status
                    .delivered_revision
                    .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                when(status.delivered_time),
                when(status.last_attempt_time),
                if status.last_attempt_time.is_some() {
                    outcome.to_owned()
                } else {
                    "-".to_owned()
                },
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests;
