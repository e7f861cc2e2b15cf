//! What `status` shows, computed purely: a [`CredentialSummary`] from the resources (absolute
//! times, for `-o json|yaml`), and table cells from a summary and the clock (relative times).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sync_client_operator::api::{
    BrokerKind, BrokerStatus, Condition, ConditionStatus, CredentialType, SyncClientCredential,
    reasons,
};

use crate::delivery::{self, DeliverySummary};
use crate::humanize::{ago, due, until};

/// The condition the operator sets after a preflight check.
pub const PREFLIGHT_CONDITION: &str = "Preflight";

/// The broker a credential names, as read from its resource.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "state")]
pub enum BrokerState {
    /// Its `Ready` condition is `True`.
    Ready { reason: String },
    /// Its `Ready` condition is `False`.
    NotReady { reason: String, message: String },
    /// No `Ready` condition yet, or `Unknown`.
    Unknown,
    /// The broker resource does not exist.
    NotFound,
    /// It could not be read (for example, no permission to get brokers).
    Unreadable { error: String },
}

impl BrokerState {
    pub fn from_status(status: Option<&BrokerStatus>) -> Self {
        let ready = status.and_then(|s| condition(&s.conditions, reasons::READY));
        match ready {
            Some(c) if c.status == ConditionStatus::True => Self::Ready {
                reason: c.reason.to_string(),
            },
            Some(c) if c.status == ConditionStatus::False => Self::NotReady {
                reason: c.reason.to_string(),
                message: c.message.to_string(),
            },
            _ => Self::Unknown,
        }
    }

    /// `Ready`, `NotReady: AuthenticationFailed`, `Unknown`, `NotFound`, `Unreadable`.
    pub fn label(&self) -> String {
        match self {
            Self::Ready { .. } => "Ready".to_owned(),
            Self::NotReady { reason, .. } => format!("NotReady: {reason}"),
            Self::Unknown => "Unknown".to_owned(),
            Self::NotFound => "NotFound".to_owned(),
            Self::Unreadable { .. } => "Unreadable".to_owned(),
        }
    }
}

/// The broker reference and what was found there.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BrokerSummary {
    pub kind: BrokerKind,
    pub name: String,
    #[serde(flatten)]
    pub state: BrokerState,
}

/// The last preflight check.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreflightSummary {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    /// `status.lastPreflightTime`.
    pub time: Option<DateTime<Utc>>,
}

/// A condition's status, reason and message.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ConditionSummary {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

/// One credential at a glance; `-o json|yaml` prints these.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialSummary {
    pub namespace: String,
    pub name: String,
    /// The `Ready` condition's status, reason and message.
    pub ready: Option<ConditionStatus>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub credential_type: CredentialType,
    pub suspended: bool,
    pub secret_name: String,
    pub revision: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub renewal_time: Option<DateTime<Utc>>,
    pub last_rotation_time: Option<DateTime<Utc>>,
    pub failed_attempts: i32,
    pub last_failure_reason: Option<String>,
    pub next_retry_time: Option<DateTime<Utc>>,
    pub last_verify_time: Option<DateTime<Utc>>,
    pub last_verify_result: Option<String>,
    pub preflight: Option<PreflightSummary>,
    pub broker: BrokerSummary,
    /// `spec.deliveries` with what the operator recorded of each (`status.deliveries`).
    pub deliveries: Vec<DeliverySummary>,
    /// The `Delivered` condition (absent without deliveries).
    pub delivered: Option<ConditionSummary>,
}

/// The condition of a type, if set.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `True`, `False` or `Unknown`.
pub fn status_word(status: ConditionStatus) -> &'static str {
    match status {
        ConditionStatus::True => "True",
        ConditionStatus::False => "False",
        ConditionStatus::Unknown => "Unknown",
    }
}

/// Summarizes a credential; `broker` is what was found at its `brokerRef`.
pub fn summarize(credential: &SyncClientCredential, broker: BrokerState) -> CredentialSummary {
    let name = credential.metadata.name.clone().unwrap_or_default();
    let status = credential.status.clone().unwrap_or_default();
    let ready = condition(&status.conditions, reasons::READY);
    let preflight = condition(&status.conditions, PREFLIGHT_CONDITION).map(|c| PreflightSummary {
        status: c.status,
        reason: c.reason.to_string(),
        message: c.message.to_string(),
        time: status.last_preflight_time,
    });
    let delivered = condition(&status.conditions, reasons::DELIVERED).map(|c| ConditionSummary {
        status: c.status,
        reason: c.reason.to_string(),
        message: c.message.to_string(),
    });
    let spec = &credential.spec;
    CredentialSummary {
        namespace: credential.metadata.namespace.clone().unwrap_or_default(),
        secret_name: status
            .secret_name
            .clone()
            .or_else(|| spec.secret_name.clone())
            .unwrap_or_else(|| name.clone()),
        name,
        ready: ready.map(|c| c.status),
        reason: ready.map(|c| c.reason.to_string()),
        message: ready.map(|c| c.message.to_string()),
        credential_type: spec.credential_type,
        suspended: spec.suspend,
        revision: status.revision,
        expires_at: status.expires_at,
        renewal_time: status.renewal_time,
        last_rotation_time: status.last_rotation_time,
        failed_attempts: status.failed_attempts,
        last_failure_reason: status.last_failure_reason.map(|r| r.to_string()),
        next_retry_time: status.next_retry_time,
        last_verify_time: status.last_verify_time,
        last_verify_result: status.last_verify_result.map(|r| r.to_string()),
        preflight,
        broker: BrokerSummary {
            kind: spec.broker_ref.kind,
            name: spec.broker_ref.name.clone(),
            state: broker,
        },
        deliveries: delivery::summarize(credential),
        delivered,
    }
}

/// Column headers of the status table.
pub fn headers(wide: bool, all_namespaces: bool) -> Vec<&'static str> {
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.extend([
        "NAME",
        "READY",
        "REASON",
        "EXPIRES",
        "RENEWAL",
        "LAST ROTATION",
        "FAILURES",
        "DELIVERED",
        "BROKER",
    ]);
    if wide {
        headers.extend([
            "SECRET",
            "REVISION",
            "VERIFIED",
            "PREFLIGHT",
            "DELIVERIES",
            "MESSAGE",
        ]);
    }
    headers
}

/// One table row, matching [`headers`].
pub fn row(
    summary: &CredentialSummary,
    now: DateTime<Utc>,
    wide: bool,
    all_namespaces: bool,
) -> Vec<String> {
    let mut cells = Vec::new();
    if all_namespaces {
        cells.push(summary.namespace.clone());
    }
    cells.extend([
        summary.name.clone(),
        summary.ready.map_or("-", status_word).to_owned(),
        or_dash(summary.reason.as_deref()),
        expires_cell(summary, now),
        renewal_cell(summary, now),
        summary
            .last_rotation_time
            .map_or_else(|| "-".to_owned(), |at| ago(now, at)),
        failures_cell(summary, now),
        delivery::delivered_cell(&summary.deliveries),
        broker_cell(&summary.broker),
    ]);
    if wide {
        cells.extend([
            summary.secret_name.clone(),
            summary
                .revision
                .map_or_else(|| "-".to_owned(), |r| r.to_string()),
            verified_cell(summary, now),
            preflight_cell(summary, now),
            delivery::details_cell(&summary.deliveries, now),
            one_line(summary.message.as_deref()),
        ]);
    }
    cells
}

fn or_dash(text: Option<&str>) -> String {
    text.filter(|t| !t.is_empty()).unwrap_or("-").to_owned()
}

/// Messages may hold newlines; a table cell may not.
pub fn one_line(text: Option<&str>) -> String {
    or_dash(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `in 5d3h`, `expired 3m ago`; `never` for client secrets, which do not expire.
fn expires_cell(summary: &CredentialSummary, now: DateTime<Utc>) -> String {
    match (summary.expires_at, summary.credential_type) {
        (Some(at), _) => until(now, at, "expired"),
        (None, CredentialType::ClientSecret) if summary.revision.is_some() => "never".to_owned(),
        (None, _) => "-".to_owned(),
    }
}

/// `in 2d`, `due 3m ago`; `suspended` while the operator leaves the credential alone.
fn renewal_cell(summary: &CredentialSummary, now: DateTime<Utc>) -> String {
    if summary.suspended {
        return "suspended".to_owned();
    }
    summary
        .renewal_time
        .map_or_else(|| "-".to_owned(), |at| until(now, at, "due"))
}

/// `0`; `3 (retry in 40s)`; `3 (retry due)`; `3 (no retry)` when the operator waits for a fix
/// (a spec change or a rotate request).
fn failures_cell(summary: &CredentialSummary, now: DateTime<Utc>) -> String {
    let count = summary.failed_attempts;
    if count == 0 {
        return "0".to_owned();
    }
    match summary.next_retry_time {
        Some(at) => format!("{count} (retry {})", due(now, at)),
        None => format!("{count} (no retry)"),
    }
}

/// `IdentityBroker/vcenter (Ready)`.
fn broker_cell(broker: &BrokerSummary) -> String {
    let kind = match broker.kind {
        BrokerKind::IdentityBroker => "IdentityBroker",
        BrokerKind::ClusterIdentityBroker => "ClusterIdentityBroker",
    };
    format!("{kind}/{} ({})", broker.name, broker.state.label())
}

/// `Valid 20m ago`.
fn verified_cell(summary: &CredentialSummary, now: DateTime<Utc>) -> String {
    match (&summary.last_verify_result, summary.last_verify_time) {
        (Some(result), Some(at)) => format!("{result} {}", ago(now, at)),
        (Some(result), None) => result.clone(),
        (None, _) => "-".to_owned(),
    }
}

/// `PreflightPassed 3m ago`, or the failure reason.
fn preflight_cell(summary: &CredentialSummary, now: DateTime<Utc>) -> String {
    match &summary.preflight {
        Some(PreflightSummary {
            reason,
            time: Some(at),
            ..
        }) => format!("{reason} {}", ago(now, *at)),
        Some(p) => p.reason.clone(),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests;
