//! `SyncClientCredential`: one sync client's credential, delivered as a Secret.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SyncClientCredentialStatus;

/// A directory id.
pub const UUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// Secret data keys: `[-._a-zA-Z0-9]+`, but not `.` or `..` (the API server's rule).
const SECRET_KEY_PATTERN: &str =
    r"^([-_a-zA-Z0-9][-._a-zA-Z0-9]*|\.[-_a-zA-Z0-9][-._a-zA-Z0-9]*|\.\.[-._a-zA-Z0-9]+)$";
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
    // Times in the future have no age: `date` columns would print `<invalid>`. RFC 3339 strings
    // read the same in every time zone.
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.expiresAt"),
    printcolumn(name = "Renewal", type_ = "string", json_path = ".status.renewalTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!(has(self.renewBefore) && has(self.renewBeforePercentage))").message("renewBefore and renewBeforePercentage are mutually exclusive"))]
#[x_kube(validation = Rule::new("self.credentialType == 'AccessToken' || (!has(self.renewBefore) && !has(self.renewBeforePercentage) && !has(self.tokenTTL))").message("renewBefore, renewBeforePercentage and tokenTTL apply only to credentialType AccessToken"))]
#[x_kube(validation = Rule::new("self.credentialType == 'AccessToken' || !has(self.deliveries) || size(self.deliveries) == 0").message("deliveries carry an access token: they apply only to credentialType AccessToken"))]
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
    /// the value saved for this sync client. A new value takes effect at the next issue (the
    /// scheduled renewal, or a `syncclient.io/rotate-request`): changing it mints nothing, since
    /// every issue revokes the token in use.
    #[serde(default, rename = "tokenTTL", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('87600h')").message("tokenTTL must be between 1m and 87600h (10 years); the broker counts it in minutes"))]
    pub token_ttl: Option<String>,
    /// Renew this long before expiry (e.g. `24h`). Mutually exclusive with
    /// `renewBeforePercentage`. Default: one third of the issued lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('87600h')").message("renewBefore must be between 1m and 87600h (10 years)"))]
    pub renew_before: Option<String>,
    /// Renew when this percentage of the issued lifetime remains (1-99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 99))]
    pub renew_before_percentage: Option<i32>,
    /// Rotate at least this often (e.g. `720h`). The schedule of `ClientSecret` credentials, which
    /// never expire; for access tokens it shortens the expiry-based schedule. Omitted for a
    /// `ClientSecret`: no scheduled rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m') && duration(self) <= duration('87600h')").message("rotationInterval must be between 1m and 87600h (10 years): every rotation revokes the live credential"))]
    pub rotation_interval: Option<String>,
    /// How often the stored access token is checked with the broker's SCIM endpoint, so a token
    /// revoked elsewhere is replaced at once (default `1h` for access tokens; `0s` turns the
    /// check off). Client secrets are not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) == duration('0s') || (duration(self) >= duration('10s') && duration(self) <= duration('8760h'))").message("verifyInterval must be 0s (off) or between 10s and 8760h"))]
    pub verify_interval: Option<String>,
    /// Name of the Secret to write (default: the name of this resource). A new name moves the
    /// credential held to the new Secret without issuing one; the old Secret is left in place
    /// (owned, so it is removed with this resource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DNS_SUBDOMAIN_PATTERN), length(max = 253))]
    pub secret_name: Option<String>,
    /// Labels, annotations and type of the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_template: Option<SecretTemplate>,
    /// Renames of the Secret's data keys. A change rewrites the Secret with the credential held,
    /// without issuing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<SecretKeys>,
    /// Workloads in this namespace restarted when the Secret's data changes (`RolloutRestarted`
    /// event; a restart that fails is reported as `RolloutRestartFailed` and not retried).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub rollout_restart_targets: Vec<RolloutTarget>,
    /// While true nothing is issued, so nothing is revoked (a token already held is still
    /// delivered: the one a delivery target holds is dead). A credential created suspended gets
    /// one preflight check (login, broker token, a read of the sync client), which mints nothing.
    #[serde(default)]
    pub suspend: bool,
    /// Where the token goes besides the Secret, after every rotation: checked before each mint
    /// (a target the token could not reach blocks the mint while the old token still works),
    /// delivered after the Secret write, retried from the Secret until delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub deliveries: Vec<super::Delivery>,
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
///
/// Values are validated by the schema; keys (which a structural schema cannot constrain without
/// CEL rules whose estimated cost a real API server may refuse) are checked by the operator before
/// any broker call, as are the keys a `type` requires.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.type) || !(self.type in ['kubernetes.io/service-account-token', 'kubernetes.io/dockercfg', 'kubernetes.io/dockerconfigjson', 'bootstrap.kubernetes.io/token'])").message("type cannot hold a sync-client credential: the API server requires other data for it"))]
#[serde(rename_all = "camelCase")]
pub struct SecretTemplate {
    /// Labels added to the Secret (at most 64; values as Kubernetes label values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "label_map_schema")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to the Secret (at most 64, values up to 4 KiB).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "annotation_map_schema")]
    pub annotations: BTreeMap<String, String>,
    /// Secret type (default `Opaque`). Applied when the Secret is created.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub type_: Option<String>,
}

/// Kubernetes label values: at most 63 characters, alphanumeric at both ends.
pub const LABEL_VALUE_PATTERN: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
/// Most labels or annotations a template may add.
pub const MAX_TEMPLATE_ENTRIES: u32 = 64;
/// Longest template annotation value; 64 of them stay within the API server's 256 KiB limit.
pub const MAX_TEMPLATE_ANNOTATION_VALUE: u32 = 4096;

fn label_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": MAX_TEMPLATE_ENTRIES,
        "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE_PATTERN},
    })
}

fn annotation_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": MAX_TEMPLATE_ENTRIES,
        "additionalProperties": {"type": "string", "maxLength": MAX_TEMPLATE_ANNOTATION_VALUE},
    })
}

/// Data key names; each defaults to the snake_case name of its field. The keys written together
/// (token, expiry and SCIM URL; or client id and secret) must differ, or one would overwrite
/// another in the Secret.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[x_kube(validation = Rule::new("(has(self.accessToken) ? self.accessToken : 'access_token') != (has(self.expiresAt) ? self.expiresAt : 'expires_at') && (has(self.accessToken) ? self.accessToken : 'access_token') != (has(self.scimUrl) ? self.scimUrl : 'scim_url') && (has(self.expiresAt) ? self.expiresAt : 'expires_at') != (has(self.scimUrl) ? self.scimUrl : 'scim_url') && (has(self.clientId) ? self.clientId : 'client_id') != (has(self.clientSecret) ? self.clientSecret : 'client_secret')").message("keys must name distinct data keys: accessToken, expiresAt and scimUrl are written together, and so are clientId and clientSecret"))]
#[serde(rename_all = "camelCase")]
pub struct SecretKeys {
    /// Default `access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN), length(max = 253))]
    pub access_token: Option<String>,
    /// Default `expires_at` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN), length(max = 253))]
    pub expires_at: Option<String>,
    /// Default `scim_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN), length(max = 253))]
    pub scim_url: Option<String>,
    /// Default `client_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN), length(max = 253))]
    pub client_id: Option<String>,
    /// Default `client_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SECRET_KEY_PATTERN), length(max = 253))]
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
