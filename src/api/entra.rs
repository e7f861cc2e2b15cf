//! `EntraConnection` (namespaced) and `ClusterEntraConnection` (cluster scoped): one Microsoft
//! Entra ID app registration the operator signs in with to deliver rotated tokens to provisioning
//! jobs through Microsoft Graph. Named once, used by many credentials; the tenancy rules are the
//! brokers': a namespaced connection reads Secrets only in its own namespace and serves only
//! credentials there; a cluster connection names the namespace of its Secrets and limits which
//! namespaces may use it, and alone may sign in with the operator's workload identity.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{BrokerTls, Condition};

/// Where Microsoft hosts the tenant: picks the login and Graph hosts.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EntraCloud {
    /// `login.microsoftonline.com`, `graph.microsoft.com`.
    #[default]
    Global,
    /// `login.microsoftonline.us`, `graph.microsoft.us`.
    USGovernmentL4,
    /// `login.microsoftonline.us`, `dod-graph.microsoft.us`.
    USGovernmentL5,
    /// `login.chinacloudapi.cn`, `microsoftgraph.chinacloudapi.cn`.
    China,
}

/// How to reach and sign in to Entra ID; shared by both connection kinds.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EntraSettings {
    /// The directory (tenant) id.
    #[schemars(regex(pattern = crate::api::UUID_PATTERN))]
    pub tenant_id: String,
    /// The application (client) id of the app registration the operator signs in as.
    #[schemars(regex(pattern = crate::api::UUID_PATTERN))]
    pub client_id: String,
    #[serde(default)]
    pub cloud: EntraCloud,
    /// Other hosts than the cloud's (a proxy, a test): both `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<EntraEndpoints>,
    /// Trusted CAs for those hosts (a TLS-inspecting proxy); absent: the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BrokerTls>,
    pub auth: EntraAuth,
    /// Timeout of one request to Entra ID or Graph (default `30s`; 1s to 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::duration::DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('5m')").message("requestTimeout must be between 1s and 5m"))]
    pub request_timeout: Option<String>,
}

/// Login and Graph hosts replacing the cloud's.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EntraEndpoints {
    /// e.g. `https://login.microsoftonline.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^https://[^\s/?#]+(/[^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub login: Option<String>,
    /// e.g. `https://graph.microsoft.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^https://[^\s/?#]+(/[^\s?#]*)?$"),
        length(max = 2048)
    )]
    pub graph: Option<String>,
}

/// How the operator proves it is the app: exactly one of a client secret, a certificate, or
/// (cluster connections only) the operator's workload identity.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("(has(self.clientSecret) ? 1 : 0) + (has(self.certificate) ? 1 : 0) + (has(self.workloadIdentity) ? 1 : 0) == 1").message("set exactly one of clientSecret, certificate or workloadIdentity"))]
#[serde(rename_all = "camelCase")]
pub struct EntraAuth {
    /// A client secret kept in a Secret (key defaults to `client-secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<EntraSecretRef>,
    /// A certificate credential: the app's certificate and its RSA private key (PKCS#8 or
    /// PKCS#1 PEM) in a Secret, e.g. a `kubernetes.io/tls` Secret; the operator signs a client
    /// assertion with it (PS256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<EntraCertificateRef>,
    /// Workload identity federation: the operator's projected ServiceAccount token (audience
    /// `api://AzureADTokenExchange`, the file `--workload-identity-token-file` names) is sent as the
    /// client assertion; no secret to rotate. Cluster connections only: the operator's identity is
    /// the platform team's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentity>,
}

/// A Secret key holding a client secret.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EntraSecretRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A Secret holding a certificate and its private key.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EntraCertificateRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the PEM certificate (default `tls.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<String>,
    /// Key of the PEM private key (default `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_key: Option<String>,
}

/// The operator's workload identity (nothing to configure here: the token file is the
/// operator's).
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkloadIdentity {}

/// An app registration usable by credentials in its own namespace; its Secrets live there too.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "syncclient.io",
    version = "v1alpha1",
    kind = "EntraConnection",
    namespaced,
    status = "EntraConnectionStatus",
    shortname = "ec",
    category = "syncclient",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantId"),
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
#[x_kube(validation = Rule::new("!has(self.auth.workloadIdentity)").message("workloadIdentity signs in as the operator itself: only a ClusterEntraConnection may use it"))]
pub struct EntraConnectionSpec {
    #[serde(flatten)]
    pub settings: EntraSettings,
}

/// An app registration usable from many namespaces; it names the namespace of its Secrets.
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "syncclient.io",
    version = "v1alpha1",
    kind = "ClusterEntraConnection",
    status = "EntraConnectionStatus",
    shortname = "cec",
    category = "syncclient",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantId"),
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
pub struct ClusterEntraConnectionSpec {
    #[serde(flatten)]
    pub settings: EntraSettings,
    /// Namespace holding the Secrets this connection references (not needed with
    /// workloadIdentity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub secret_namespace: Option<String>,
    /// Namespaces whose credentials may deliver through this connection (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// Observed state of a connection; never holds secret material.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EntraConnectionStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub observed_generation: Option<i64>,
    /// Last time the operator signed in to Entra ID with this connection.
    pub last_authentication_time: Option<DateTime<Utc>>,
}
