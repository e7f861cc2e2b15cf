//! `SyncClientCredential`: one sync client's credential, delivered as a Secret.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

const UUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";
const DNS_SUBDOMAIN_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Desired state of one sync client's credential.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "syncclient.io",
    version = "v1alpha1",
    kind = "SyncClientCredential",
    namespaced,
    status = "SyncClientCredentialStatus",
    shortname = "scc",
    category = "syncclient",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".status.secretName",
        priority = 1
    ),
    printcolumn(name = "Expires", type_ = "date", json_path = ".status.expiresAt"),
    printcolumn(name = "Renewal", type_ = "date", json_path = ".status.renewalTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!(has(self.renewBefore) && has(self.renewBeforePercentage))").message("renewBefore and renewBeforePercentage are mutually exclusive"))]
#[x_kube(validation = Rule::new("self.credentialType == 'AccessToken' || (!has(self.renewBefore) && !has(self.renewBeforePercentage) && !has(self.tokenTTL))").message("renewBefore, renewBeforePercentage and tokenTTL apply only to credentialType AccessToken"))]
#[x_kube(validation = Rule::new("!has(self.tokenTTL) || duration(self.tokenTTL) >= duration('1m')").message("tokenTTL must be at least 1m (the broker counts it in minutes)"))]
#[serde(rename_all = "camelCase")]
pub struct SyncClientCredentialSpec {
    /// The broker that issues this credential.
    pub broker_ref: BrokerRef,
    /// UUID of the broker directory whose sync client is rotated.
    #[schemars(regex(pattern = UUID_PATTERN))]
    pub directory_id: String,
    /// `AccessToken` (a bearer token with an expiry) or `ClientSecret` (client id and secret).
    #[serde(default)]
    pub credential_type: CredentialType,
    /// Lifetime of issued access tokens (whole minutes, e.g. `720h`). Omitted: the broker keeps
    /// the value saved for this sync client.
    #[serde(default, rename = "tokenTTL", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN))]
    pub token_ttl: Option<String>,
    /// Renew this long before expiry (e.g. `24h`). Mutually exclusive with
    /// `renewBeforePercentage`. Default: one third of the issued lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN))]
    pub renew_before: Option<String>,
    /// Renew when this percentage of the issued lifetime remains (1-99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 99))]
    pub renew_before_percentage: Option<i32>,
    /// Rotate at least this often (e.g. `720h`). The schedule of `ClientSecret` credentials, which
    /// never expire; for access tokens it shortens the expiry-based schedule. Omitted for a
    /// `ClientSecret`: no scheduled rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN))]
    pub rotation_interval: Option<String>,
    /// Name of the Secret to write (default: the name of this resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DNS_SUBDOMAIN_PATTERN), length(max = 253))]
    pub secret_name: Option<String>,
    /// Labels, annotations and type of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,
    /// Renames of the Secret's data keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<SecretKeys>,
    /// Workloads in this namespace restarted when the Secret's data changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub rollout_restart_targets: Vec<RolloutTarget>,
    /// While true the operator makes no broker calls for this credential.
    #[serde(default)]
    pub suspend: bool,
}

/// Reference to an `IdentityBroker` in the same namespace or a `ClusterIdentityBroker`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRef {
    #[serde(default)]
    pub kind: BrokerKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Which broker resource a credential refers to.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    #[default]
    IdentityBroker,
    ClusterIdentityBroker,
}

/// The kind of credential the broker issues (`generate_token` true or false).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CredentialType {
    #[default]
    AccessToken,
    ClientSecret,
}

/// Metadata and type given to the Secret.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Secret type (default `Opaque`). Applied when the Secret is created.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// Data key names; each defaults to the snake_case name of its field.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    /// Default `access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN))]
    pub access_token: Option<String>,
    /// Default `expires_at` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN))]
    pub expires_at: Option<String>,
    /// Default `scim_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN))]
    pub scim_url: Option<String>,
    /// Default `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN))]
    pub client_id: Option<String>,
    /// Default `client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN))]
    pub client_secret: Option<String>,
}

/// A workload restarted (pod template annotation bumped) after a rotation.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct RolloutTarget {
    pub kind: RolloutKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Workload kinds that can be restarted.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// Observed state. Mirrors the Secret's record for people; holds no secret material.
///
/// `None` fields serialize as `null` so that a merge patch of the whole status clears them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncClientCredentialStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub observed_generation: Option<i64>,
    pub secret_name: Option<String>,
    /// When the current access token expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the next rotation is planned.
    pub renewal_time: Option<DateTime<Utc>>,
    pub last_rotation_time: Option<DateTime<Utc>>,
    /// Number of credentials issued into the Secret so far.
    pub revision: Option<i64>,
    /// Consecutive failed issuance attempts (0 after a success).
    #[serde(default)]
    pub failed_attempts: i32,
    pub last_failure_time: Option<DateTime<Utc>>,
    /// Category of the last failure: spec, auth, permission, not_found, conflict, transient.
    pub last_failure_reason: Option<String>,
    /// The generation the last failure happened at; permanent failures wait for a new one.
    pub last_failure_generation: Option<i64>,
    pub next_retry_time: Option<DateTime<Utc>>,
    /// Bounded explanation of the last failure.
    pub last_failure_message: Option<String>,
    /// The last `syncclient.io/rotate-request` value served.
    pub observed_rotate_request: Option<String>,
}
