//! Deliveries: where a credential's token goes besides its Secret. The first (and so far only)
//! kind is a Microsoft Entra ID provisioning job, which keeps the token as its *Secret Token*:
//! after every rotation the operator saves the new token there, proves Entra ID reaches vCenter
//! with it, and lifts a quarantine the dead token caused.

use chrono::{DateTime, Utc};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Name, Text};

/// One place the token is delivered to; exactly one kind.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.entraId)").message("set the kind of delivery: entraId"))]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Names the delivery in status (unique in the list).
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// A Microsoft Entra ID provisioning job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra_id: Option<EntraIdDelivery>,
}

/// The provisioning job of an Entra ID enterprise application (its service principal).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EntraIdDelivery {
    /// The app registration the operator signs in with.
    pub connection_ref: EntraConnectionRef,
    /// Object id of the enterprise application's service principal (not its app id).
    #[schemars(regex(pattern = crate::api::UUID_PATTERN))]
    pub service_principal_id: String,
    /// The provisioning job; absent: the service principal's only job (`GET .../jobs`; an error
    /// when it has none or several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[A-Za-z0-9][-A-Za-z0-9._]*$"),
        length(min = 1, max = 256)
    )]
    pub job_id: Option<String>,
    /// The SCIM endpoint URL Entra ID calls (the job's *Tenant URL*); absent: the broker's URL
    /// followed by `/usergroup/t/{tenant}/scim/v2`. Set it when Entra ID reaches vCenter through a proxy or
    /// an application proxy that publishes another URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^https://[^\s/?#]+(/[^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub base_address: Option<String>,
}

/// An `EntraConnection` in the credential's namespace or a `ClusterEntraConnection`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct EntraConnectionRef {
    #[serde(default)]
    pub kind: EntraConnectionKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EntraConnectionKind {
    #[default]
    EntraConnection,
    ClusterEntraConnection,
}

/// What became of one delivery. No secret material: the token is named by its revision only.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryStatus {
    pub name: String,
    /// The provisioning job delivered to (found by listing the jobs when the spec names none).
    #[serde(default)]
    pub job_id: Option<String>,
    /// The credential revision the target holds (saved there by this operator).
    #[serde(default)]
    pub delivered_revision: Option<i64>,
    #[serde(default)]
    pub delivered_time: Option<DateTime<Utc>>,
    /// `Passed` (Entra ID reached the SCIM endpoint with the saved token), `Failed: ...`, or
    /// absent before the first validation of the delivered revision.
    #[serde(default)]
    pub validation: Option<Text>,
    /// The job's `status.code` when last read: `Active`, `Quarantine`, `Paused`, ...
    #[serde(default)]
    pub job_state: Option<Name>,
    /// Why Entra ID quarantined the job, while it is quarantined.
    #[serde(default)]
    pub quarantine_reason: Option<Text>,
    /// When the operator last lifted a quarantine of this job.
    #[serde(default)]
    pub quarantine_lifted_time: Option<DateTime<Utc>>,
    /// The reason of the last failure (one of the credential's failure reasons), cleared when a
    /// delivery completes.
    #[serde(default)]
    pub last_failure_reason: Option<Name>,
    /// What failed, bounded and without secrets.
    #[serde(default)]
    pub last_failure_message: Option<Text>,
    /// Failed attempts since the last complete delivery.
    #[serde(default)]
    pub failed_attempts: i32,
    #[serde(default)]
    pub last_attempt_time: Option<DateTime<Utc>>,
    /// When a failed delivery is tried again (backoff, or the target's `Retry-After`).
    #[serde(default)]
    pub next_attempt_time: Option<DateTime<Utc>>,
}
