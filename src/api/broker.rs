//! `IdentityBroker` (namespaced) and `ClusterIdentityBroker` (cluster scoped): how to reach and
//! authenticate to one broker. Mirrors cert-manager's Issuer and ClusterIssuer.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// How to reach and authenticate to a broker; shared by both broker kinds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!self.url.startsWith('http://') || (has(self.allowInsecureHttp) && self.allowInsecureHttp)").message("an http:// url sends the vCenter password and every credential in clear text: use https://, or set allowInsecureHttp: true (tests only)"))]
#[serde(rename_all = "camelCase")]
pub struct BrokerConnection {
    /// Base URL of the broker (the `{api_host}`), e.g. `https://vcenter.example.com`.
    #[schemars(
        regex(pattern = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub url: String,
    /// Allow a plain `http://` url. The vCenter password and every credential then cross the
    /// network unencrypted: only for tests and local simulators. A warning is logged whenever the
    /// broker is used.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_http: bool,
    /// Tenant name, sent exactly as written.
    #[serde(default = "default_tenant")]
    #[schemars(length(min = 1, max = 128))]
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BrokerTls>,
    pub auth: BrokerAuth,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BrokerLimits>,
}

fn default_tenant() -> String {
    "CUSTOMER".to_owned()
}

/// TLS settings; verification is on unless `insecureSkipVerify`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!(has(self.caBundle) && has(self.caSecretRef))").message("set caBundle or caSecretRef, not both"))]
#[serde(rename_all = "camelCase")]
pub struct BrokerTls {
    /// PEM bundle of CA certificates trusted for the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// A Secret key holding the PEM bundle (key defaults to `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Skip certificate verification. Dangerous: anyone on the path can read the credentials.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// How the operator authenticates; exactly one of `vcenter` and `bearerToken`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.vcenter) != has(self.bearerToken)").message("set exactly one of vcenter or bearerToken"))]
#[serde(rename_all = "camelCase")]
pub struct BrokerAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcenter: Option<VCenterAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<BearerTokenAuth>,
}

/// vCenter session login, then a broker token from the operator or admin client endpoint.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VCenterAuth {
    pub credentials_secret_ref: VCenterCredentialsRef,
    #[serde(default)]
    pub token_client: TokenClient,
}

/// The Secret with the vCenter user name and password.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VCenterCredentialsRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default = "default_username_key")]
    pub username_key: String,
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".to_owned()
}
fn default_password_key() -> String {
    "password".to_owned()
}

/// Which vCenter endpoint issues the broker token.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenClient {
    /// `GET /api/vcenter/identity/broker/tenants/operator-client`.
    #[default]
    OperatorClient,
    /// `GET /api/vcenter/identity/broker/tenants/{tenant}/admin-client`.
    AdminClient,
}

/// A ready broker token kept in a Secret.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BearerTokenAuth {
    pub secret_ref: SecretKeyRef,
}

/// A key of a Secret in the broker's Secret namespace.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret's data; defaults per use (`token`, `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Request limits towards this broker.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerLimits {
    /// Timeout of one HTTP request (default `30s`; 1s to 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('5m')").message("requestTimeout must be between 1s and 5m"))]
    pub request_timeout: Option<String>,
    /// Rotations through this broker running at once (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent_requests: Option<i32>,
}

/// A broker usable by credentials in its own namespace; its Secrets live there too.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "syncclient.io",
    version = "v1alpha1",
    kind = "IdentityBroker",
    namespaced,
    status = "BrokerStatus",
    shortname = "ib",
    category = "syncclient",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct IdentityBrokerSpec {
    #[serde(flatten)]
    pub connection: BrokerConnection,
}

/// A broker usable from many namespaces; it names the namespace of its Secrets explicitly.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "syncclient.io",
    version = "v1alpha1",
    kind = "ClusterIdentityBroker",
    status = "BrokerStatus",
    shortname = "cib",
    category = "syncclient",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
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
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIdentityBrokerSpec {
    #[serde(flatten)]
    pub connection: BrokerConnection,
    /// Namespace holding the Secrets this broker references.
    #[schemars(length(min = 1, max = 63))]
    pub secret_namespace: String,
    /// Namespaces whose credentials may use this broker (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Directory ids (UUIDs) whose sync clients this broker may rotate (absent or empty: all).
    /// Keeps a namespace that may use the broker from rotating another team's directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024), inner(regex(pattern = crate::api::UUID_PATTERN)))]
    pub allowed_directories: Vec<String>,
}

/// Observed state of a broker; never holds secret material.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// `Ready`: whether the operator could log in with the broker's current settings and
    /// Secrets (`Authenticated`, or the failure's reason: `AuthenticationFailed`,
    /// `BrokerUnavailable`, `BrokerReadFailed`, `BrokerConfigInvalid`, ...).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the last login attempt used.
    pub observed_generation: Option<i64>,
    /// Last time the operator authenticated to this broker successfully.
    pub last_authentication_time: Option<DateTime<Utc>>,
    /// When the cached broker token expires, if the broker said.
    pub broker_token_expires_at: Option<DateTime<Utc>>,
}
