//! The CRDs refuse what they should, and only that: every validation of the three CRDs (each
//! pattern, bound, enum, length, count and CEL rule) meets an invalid resource it must refuse
//! and a near miss it must accept, each applied with the stock `kubectl apply -f -`.
//!
//! Against the simulator, every `x-kubernetes-validations` rule of the CRDs must also have been
//! evaluated both ways by it (held for a near miss, refused an invalid one) and none skipped as
//! outside its CEL subset: a rule the simulator cannot evaluate would pass everything silently.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::harness::{DIRECTORY, Env, crd_files, merge};
use crate::kubectl::{Kubectl, Run};

/// One resource and what the API server must do with it.
struct Case {
    /// What the case tries, for failure messages.
    what: String,
    manifest: Value,
    /// `None`: must be accepted. `Some(parts)`: must be refused, the error naming each part
    /// (the field and the violated rule, or the CEL rule's message).
    refused_with: Option<Vec<String>>,
}

/// Builds the cases; each resource gets a distinct name so accepted ones never collide.
struct Cases {
    cases: Vec<Case>,
    namespace: String,
}

const HTTP_MESSAGE: &str = "an http:// url sends the vCenter password and every credential in clear text: use https://, or set allowInsecureHttp: true (tests only)";
const TLS_MESSAGE: &str = "set caBundle or caSecretRef, not both";
const AUTH_MESSAGE: &str = "set exactly one of vcenter or bearerToken";
const TIMEOUT_MESSAGE: &str = "requestTimeout must be between 1s and 5m";
const TTL_MESSAGE: &str =
    "tokenTTL must be between 1m and 87600h (10 years); the broker counts it in minutes";
const RENEW_BEFORE_MESSAGE: &str = "renewBefore must be between 1m and 87600h (10 years)";
const ROTATION_MESSAGE: &str = "rotationInterval must be between 1m and 87600h (10 years): every rotation revokes the live credential";
const VERIFY_MESSAGE: &str = "verifyInterval must be 0s (off) or between 10s and 8760h";
const EXCLUSIVE_MESSAGE: &str = "renewBefore and renewBeforePercentage are mutually exclusive";
const ACCESS_TOKEN_ONLY_MESSAGE: &str =
    "renewBefore, renewBeforePercentage and tokenTTL apply only to credentialType AccessToken";
const KEYS_MESSAGE: &str = "keys must name distinct data keys: accessToken, expiresAt and scimUrl are written together, and so are clientId and clientSecret";
const TYPE_MESSAGE: &str =
    "type cannot hold a sync-client credential: the API server requires other data for it";

/// `kubectl` processes run at once.
const WORKERS: usize = 3;

/// Secret data key pattern of `spec.keys.*`.
const KEY_PATTERN: &str = "should match '^([-_a-zA-Z0-9][-._a-zA-Z0-9]*|";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Credential,
    Broker,
    ClusterBroker,
    Connection,
    ClusterConnection,
}

impl Cases {
    fn object(&self, kind: Kind, spec_patch: &Value) -> Value {
        let name = format!("case-{}", self.cases.len());
        let broker_spec = json!({
            "url": "https://vcenter.example.com",
            "auth": {"vcenter": {"credentialsSecretRef": {"name": "vcenter-login"}}},
        });
        let (kind_name, mut spec, metadata) = match kind {
            Kind::Credential => (
                "SyncClientCredential",
                json!({"brokerRef": {"name": "vcenter"}, "directoryId": DIRECTORY}),
                json!({"name": name, "namespace": self.namespace}),
            ),
            Kind::Broker => (
                "IdentityBroker",
                broker_spec,
                json!({"name": name, "namespace": self.namespace}),
            ),
            Kind::ClusterBroker => {
                let mut spec = broker_spec;
                spec["secretNamespace"] = json!("broker-secrets");
                // Cluster scoped: a name per test process, so runs never collide.
                let name = format!("{name}-{}", std::process::id());
                ("ClusterIdentityBroker", spec, json!({"name": name}))
            }
            Kind::Connection => (
                "EntraConnection",
                connection_spec(),
                json!({"name": name, "namespace": self.namespace}),
            ),
            Kind::ClusterConnection => {
                let mut spec = connection_spec();
                spec["secretNamespace"] = json!("entra-secrets");
                let name = format!("{name}-{}", std::process::id());
                ("ClusterEntraConnection", spec, json!({"name": name}))
            }
        };
        merge(&mut spec, spec_patch);
        json!({"apiVersion": "syncclient.io/v1alpha1", "kind": kind_name,
               "metadata": metadata, "spec": spec})
    }

    /// A resource that must be refused, the error containing each of `parts`.
    #[allow(clippy::needless_pass_by_value)] // cases read best as `json!` literals
    fn refuse(&mut self, kind: Kind, what: &str, spec_patch: Value, parts: &[&str]) {
        let manifest = self.object(kind, &spec_patch);
        self.cases.push(Case {
            what: what.to_owned(),
            manifest,
            refused_with: Some(parts.iter().map(|p| (*p).to_owned()).collect()),
        });
    }

    /// A near miss that must be accepted.
    #[allow(clippy::needless_pass_by_value)] // cases read best as `json!` literals
    fn accept(&mut self, kind: Kind, what: &str, spec_patch: Value) {
        let manifest = self.object(kind, &spec_patch);
        self.cases.push(Case {
            what: what.to_owned(),
            manifest,
            refused_with: None,
        });
    }

    /// A whole object (for cases about `spec` itself).
    fn refuse_object(&mut self, what: &str, manifest: Value, parts: &[&str]) {
        self.cases.push(Case {
            what: what.to_owned(),
            manifest,
            refused_with: Some(parts.iter().map(|p| (*p).to_owned()).collect()),
        });
    }
}

fn connection_spec() -> Value {
    json!({
        "tenantId": uuid(1),
        "clientId": uuid(2),
        "auth": {"clientSecret": {"name": "entra-app"}},
    })
}

const ENTRA_AUTH_MESSAGE: &str = "set exactly one of clientSecret, certificate or workloadIdentity";
const WORKLOAD_IDENTITY_MESSAGE: &str =
    "workloadIdentity signs in as the operator itself: only a ClusterEntraConnection may use it";
const DELIVERY_KIND_MESSAGE: &str = "set the kind of delivery: entraId";
const DELIVERY_TYPE_MESSAGE: &str =
    "deliveries carry an access token: they apply only to credentialType AccessToken";

/// Both Entra ID connection kinds: sign-in, hosts, timeout, trusted CAs.
fn entra_connection(c: &mut Cases, kind: Kind) {
    for (what, auth) in [
        ("no sign-in", json!({})),
        (
            "clientSecret and certificate",
            json!({"clientSecret": {"name": "a"}, "certificate": {"name": "b"}}),
        ),
        (
            "clientSecret and workloadIdentity",
            json!({"clientSecret": {"name": "a"}, "workloadIdentity": {}}),
        ),
    ] {
        let mut manifest = c.object(kind, &json!({}));
        manifest["spec"]["auth"] = auth;
        c.refuse_object(
            &format!("auth: {what}"),
            manifest,
            &["spec.auth", ENTRA_AUTH_MESSAGE],
        );
    }
    c.accept(
        kind,
        "auth: certificate only",
        json!({"auth": {"clientSecret": null, "certificate": {"name": "entra-cert"}}}),
    );
    for (what, patch) in [
        (
            "tenantId not a uuid",
            json!({"tenantId": "contoso.onmicrosoft.com"}),
        ),
        ("clientId not a uuid", json!({"clientId": "app"})),
    ] {
        let field = if what.starts_with("tenant") {
            "spec.tenantId"
        } else {
            "spec.clientId"
        };
        c.refuse(kind, what, patch, &[field, "should match"]);
    }
    c.refuse(
        kind,
        "requestTimeout 500ms",
        json!({"requestTimeout": "500ms"}),
        &[
            "spec.requestTimeout",
            "requestTimeout must be between 1s and 5m",
        ],
    );
    c.refuse(
        kind,
        "requestTimeout 6m",
        json!({"requestTimeout": "6m"}),
        &[
            "spec.requestTimeout",
            "requestTimeout must be between 1s and 5m",
        ],
    );
    c.accept(kind, "requestTimeout 5m", json!({"requestTimeout": "5m"}));
    c.refuse(
        kind,
        "tls with caBundle and caSecretRef",
        json!({"tls": {"caBundle": "x", "caSecretRef": {"name": "ca"}}}),
        &["spec.tls", TLS_MESSAGE],
    );
    c.accept(
        kind,
        "tls with caSecretRef",
        json!({"tls": {"caSecretRef": {"name": "ca"}}}),
    );
    c.accept(
        kind,
        "endpoints for a proxy",
        json!({"endpoints": {"login": "https://login.proxy.example", "graph": "https://graph.proxy.example"}}),
    );
    let workload_identity = json!({"auth": {"clientSecret": null, "workloadIdentity": {}}});
    if kind == Kind::Connection {
        c.refuse(
            kind,
            "workloadIdentity in a namespace",
            workload_identity,
            &["spec", WORKLOAD_IDENTITY_MESSAGE],
        );
    } else {
        c.accept(kind, "workloadIdentity for the cluster", workload_identity);
    }
}

/// Deliveries on a credential.
fn credential_deliveries(c: &mut Cases) {
    use Kind::Credential as K;
    let entra = |name: &str| {
        json!({"name": name, "entraId": {
            "connectionRef": {"name": "entra"},
            "servicePrincipalId": uuid(3),
        }})
    };
    c.accept(
        K,
        "one Entra ID delivery",
        json!({"deliveries": [entra("entra")]}),
    );
    c.accept(
        K,
        "a delivery through a ClusterEntraConnection with a job id",
        json!({"deliveries": [{"name": "entra", "entraId": {
            "connectionRef": {"kind": "ClusterEntraConnection", "name": "shared"},
            "servicePrincipalId": uuid(3),
            "jobId": "scim.0123456789abcdef",
        }}]}),
    );
    c.refuse(
        K,
        "a delivery of no kind",
        json!({"deliveries": [{"name": "entra"}]}),
        &["spec.deliveries[0]", DELIVERY_KIND_MESSAGE],
    );
    c.refuse(
        K,
        "deliveries of a client secret",
        json!({"credentialType": "ClientSecret", "deliveries": [entra("entra")]}),
        &["spec", DELIVERY_TYPE_MESSAGE],
    );
    c.accept(
        K,
        "no deliveries for a client secret",
        json!({"credentialType": "ClientSecret", "deliveries": []}),
    );
    c.refuse(
        K,
        "a servicePrincipalId that is not an object id",
        json!({"deliveries": [{"name": "entra", "entraId": {
            "connectionRef": {"name": "entra"}, "servicePrincipalId": "my-app"}}]}),
        &["servicePrincipalId", "should match"],
    );
}

/// `count` entries `prefix0: value`, `prefix1: value`, ...
fn entries(count: usize, value: &str) -> Value {
    Value::Object(
        (0..count)
            .map(|i| (format!("k{i}"), json!(value)))
            .collect(),
    )
}

fn uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

fn credential_durations(c: &mut Cases) {
    use Kind::Credential as C;
    // tokenTTL: pattern, length and CEL bounds (the broker counts minutes; 10 years at most).
    for (value, parts) in [
        ("59s", vec!["spec.tokenTTL", TTL_MESSAGE]),
        ("87600h1m", vec!["spec.tokenTTL", TTL_MESSAGE]),
        // Beyond Go's time.Duration: a CEL evaluation error that still names the rule.
        ("100000000000h", vec!["spec.tokenTTL", TTL_MESSAGE]),
        ("1d", vec!["spec.tokenTTL", "should match"]),
        ("1.5h", vec!["spec.tokenTTL", "should match"]),
        ("-1h", vec!["spec.tokenTTL", "should match"]),
        ("", vec!["spec.tokenTTL", "should match"]),
        (
            "1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1",
            vec!["spec.tokenTTL", "Too long"],
        ),
    ] {
        c.refuse(
            C,
            &format!("tokenTTL {value:?}"),
            json!({"tokenTTL": value}),
            &parts,
        );
    }
    for value in [
        "1m",
        "60s",
        "87600h",
        "720h",
        "1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h",
    ] {
        c.accept(
            C,
            &format!("tokenTTL {value:?}"),
            json!({"tokenTTL": value}),
        );
    }
    for (value, parts) in [
        ("30s", vec!["spec.renewBefore", RENEW_BEFORE_MESSAGE]),
        ("87601h", vec!["spec.renewBefore", RENEW_BEFORE_MESSAGE]),
        (
            "100000000000h",
            vec!["spec.renewBefore", RENEW_BEFORE_MESSAGE],
        ),
        ("5 m", vec!["spec.renewBefore", "should match"]),
    ] {
        c.refuse(
            C,
            &format!("renewBefore {value:?}"),
            json!({"renewBefore": value}),
            &parts,
        );
    }
    for value in ["1m", "87600h", "24h"] {
        c.accept(
            C,
            &format!("renewBefore {value:?}"),
            json!({"renewBefore": value}),
        );
    }
    for (value, parts) in [
        ("1s", vec!["spec.rotationInterval", ROTATION_MESSAGE]),
        ("59999ms", vec!["spec.rotationInterval", ROTATION_MESSAGE]),
        ("87601h", vec!["spec.rotationInterval", ROTATION_MESSAGE]),
        (
            "100000000000h",
            vec!["spec.rotationInterval", ROTATION_MESSAGE],
        ),
        ("1w", vec!["spec.rotationInterval", "should match"]),
    ] {
        c.refuse(
            C,
            &format!("rotationInterval {value:?}"),
            json!({"rotationInterval": value}),
            &parts,
        );
    }
    for value in ["1m", "60000ms", "87600h"] {
        c.accept(
            C,
            &format!("rotationInterval {value:?}"),
            json!({"rotationInterval": value}),
        );
    }
    for (value, parts) in [
        ("5s", vec!["spec.verifyInterval", VERIFY_MESSAGE]),
        ("9999ms", vec!["spec.verifyInterval", VERIFY_MESSAGE]),
        ("8761h", vec!["spec.verifyInterval", VERIFY_MESSAGE]),
        ("100000000000h", vec!["spec.verifyInterval", VERIFY_MESSAGE]),
        ("off", vec!["spec.verifyInterval", "should match"]),
    ] {
        c.refuse(
            C,
            &format!("verifyInterval {value:?}"),
            json!({"verifyInterval": value}),
            &parts,
        );
    }
    for value in ["0s", "0h0m", "10s", "8760h", "1h"] {
        c.accept(
            C,
            &format!("verifyInterval {value:?}"),
            json!({"verifyInterval": value}),
        );
    }
}

fn credential_renewal_and_type(c: &mut Cases) {
    use Kind::Credential as C;
    c.refuse(
        C,
        "renewBefore with renewBeforePercentage",
        json!({"renewBefore": "1h", "renewBeforePercentage": 30}),
        &["spec", EXCLUSIVE_MESSAGE],
    );
    c.accept(C, "renewBefore alone", json!({"renewBefore": "1h"}));
    c.accept(
        C,
        "renewBeforePercentage alone",
        json!({"renewBeforePercentage": 30}),
    );
    for (value, bound) in [
        (0, "should be greater than or equal to 1"),
        (100, "should be less than or equal to 99"),
        (-5, "should be greater than or equal to 1"),
    ] {
        c.refuse(
            C,
            &format!("renewBeforePercentage {value}"),
            json!({"renewBeforePercentage": value}),
            &["spec.renewBeforePercentage", bound],
        );
    }
    for value in [1, 99] {
        c.accept(
            C,
            &format!("renewBeforePercentage {value}"),
            json!({"renewBeforePercentage": value}),
        );
    }
    for field in [
        json!({"tokenTTL": "720h"}),
        json!({"renewBefore": "24h"}),
        json!({"renewBeforePercentage": 20}),
    ] {
        let mut spec = json!({"credentialType": "ClientSecret"});
        merge(&mut spec, &field);
        c.refuse(
            C,
            &format!("ClientSecret with {field}"),
            spec,
            &["spec", ACCESS_TOKEN_ONLY_MESSAGE],
        );
    }
    c.accept(
        C,
        "ClientSecret with rotationInterval and verifyInterval",
        json!({"credentialType": "ClientSecret", "rotationInterval": "720h", "verifyInterval": "1h"}),
    );
    c.accept(
        C,
        "AccessToken with tokenTTL and renewBefore",
        json!({"credentialType": "AccessToken", "tokenTTL": "720h", "renewBefore": "24h"}),
    );
    c.refuse(
        C,
        "credentialType Token",
        json!({"credentialType": "Token"}),
        &["spec.credentialType", "Unsupported value"],
    );
    c.refuse(
        C,
        "suspend \"yes\"",
        json!({"suspend": "yes"}),
        &["spec.suspend", "must be of type boolean"],
    );
}

fn credential_identity(c: &mut Cases) {
    use Kind::Credential as C;
    for value in [
        "12345",
        "6c3f8a521d2e4b7a9f102a4b6c8d0e1f",
        "{6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f}",
        "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1g",
        "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f\n",
    ] {
        c.refuse(
            C,
            &format!("directoryId {value:?}"),
            json!({"directoryId": value}),
            &["spec.directoryId", "should match"],
        );
    }
    c.accept(
        C,
        "directoryId in upper case",
        json!({"directoryId": DIRECTORY.to_uppercase()}),
    );
    c.refuse(
        C,
        "no directoryId",
        json!({"directoryId": null}),
        &["spec.directoryId", "Required value"],
    );
    c.refuse(
        C,
        "brokerRef kind Issuer",
        json!({"brokerRef": {"kind": "Issuer"}}),
        &["spec.brokerRef.kind", "Unsupported value"],
    );
    c.accept(
        C,
        "brokerRef kind ClusterIdentityBroker",
        json!({"brokerRef": {"kind": "ClusterIdentityBroker"}}),
    );
    c.refuse(
        C,
        "brokerRef name empty",
        json!({"brokerRef": {"name": ""}}),
        &["spec.brokerRef.name", "should be at least 1 chars long"],
    );
    c.refuse(
        C,
        "brokerRef name 254 characters",
        json!({"brokerRef": {"name": "b".repeat(254)}}),
        &["spec.brokerRef.name", "Too long"],
    );
    c.accept(
        C,
        "brokerRef name 253 characters",
        json!({"brokerRef": {"name": "b".repeat(253)}}),
    );
    c.refuse(
        C,
        "no brokerRef",
        json!({"brokerRef": null}),
        &["spec.brokerRef", "Required value"],
    );
    for value in ["Bad_Name", "-app", "app.", "a..b", "UPPER"] {
        c.refuse(
            C,
            &format!("secretName {value:?}"),
            json!({"secretName": value}),
            &["spec.secretName", "should match"],
        );
    }
    c.refuse(
        C,
        "secretName 254 characters",
        json!({"secretName": "s".repeat(254)}),
        &["spec.secretName", "Too long"],
    );
    for value in ["app-token", "a.b-c.d", "0"] {
        c.accept(
            C,
            &format!("secretName {value:?}"),
            json!({"secretName": value}),
        );
    }
    c.accept(
        C,
        "secretName 253 characters",
        json!({"secretName": "s".repeat(253)}),
    );
}

fn credential_keys(c: &mut Cases) {
    use Kind::Credential as C;
    for keys in [
        json!({"accessToken": "token", "scimUrl": "token"}),
        json!({"accessToken": "token", "expiresAt": "token"}),
        json!({"expiresAt": "scim_url"}),
        json!({"accessToken": "expires_at"}),
        json!({"clientId": "id", "clientSecret": "id"}),
        json!({"clientSecret": "client_id"}),
    ] {
        c.refuse(
            C,
            &format!("keys {keys}"),
            json!({"keys": keys}),
            &["spec.keys", KEYS_MESSAGE],
        );
    }
    for keys in [
        json!({"accessToken": "token", "scimUrl": "url"}),
        json!({"accessToken": "client_id", "clientId": "access_token"}),
        json!({"clientId": "id", "clientSecret": "secret"}),
        json!({"accessToken": "tls.crt", "expiresAt": "tls.key", "scimUrl": "ca.crt"}),
    ] {
        c.accept(C, &format!("keys {keys}"), json!({"keys": keys}));
    }
    for (field, value) in [
        ("accessToken", "."),
        ("expiresAt", ".."),
        ("scimUrl", "a/b"),
        ("clientId", ""),
        ("clientSecret", "a b"),
        ("accessToken", "tökén"),
    ] {
        c.refuse(
            C,
            &format!("keys.{field} {value:?}"),
            json!({"keys": {field: value}}),
            &[format!("spec.keys.{field}").as_str(), KEY_PATTERN],
        );
    }
    c.refuse(
        C,
        "keys.accessToken 254 characters",
        json!({"keys": {"accessToken": "k".repeat(254)}}),
        &["spec.keys.accessToken", "Too long"],
    );
    for value in [".a", "..a", "...", "a.b", "-", "_x"] {
        c.accept(
            C,
            &format!("keys.accessToken {value:?}"),
            json!({"keys": {"accessToken": value}}),
        );
    }
}

fn credential_template(c: &mut Cases) {
    use Kind::Credential as C;
    let long_value = "v".repeat(64);
    for value in ["-bad", "bad-", "a b", "a/b", long_value.as_str(), "é"] {
        let parts: &[&str] = if value.len() > 63 {
            &["spec.secretTemplate.labels.team", "Too long"]
        } else {
            &["spec.secretTemplate.labels.team", "should match"]
        };
        c.refuse(
            C,
            &format!("label value {value:?}"),
            json!({"secretTemplate": {"labels": {"team": value}}}),
            parts,
        );
    }
    for value in ["", "a", "a_b.c-D9", "v".repeat(63).as_str()] {
        c.accept(
            C,
            &format!("label value {value:?}"),
            json!({"secretTemplate": {"labels": {"team": value}}}),
        );
    }
    c.refuse(
        C,
        "65 labels",
        json!({"secretTemplate": {"labels": entries(65, "x")}}),
        &["spec.secretTemplate.labels", "Too many"],
    );
    c.accept(
        C,
        "64 labels",
        json!({"secretTemplate": {"labels": entries(64, "x")}}),
    );
    c.refuse(
        C,
        "annotation value of 4097 bytes",
        json!({"secretTemplate": {"annotations": {"note": "a".repeat(4097)}}}),
        &["spec.secretTemplate.annotations.note", "Too long"],
    );
    c.accept(
        C,
        "annotation value of 4096 bytes",
        json!({"secretTemplate": {"annotations": {"note": "a".repeat(4096)}}}),
    );
    c.refuse(
        C,
        "65 annotations",
        json!({"secretTemplate": {"annotations": entries(65, "x")}}),
        &["spec.secretTemplate.annotations", "Too many"],
    );
    c.accept(
        C,
        "64 annotations",
        json!({"secretTemplate": {"annotations": entries(64, "x")}}),
    );
    for type_ in [
        "kubernetes.io/service-account-token",
        "kubernetes.io/dockercfg",
        "kubernetes.io/dockerconfigjson",
        "bootstrap.kubernetes.io/token",
    ] {
        c.refuse(
            C,
            &format!("template type {type_}"),
            json!({"secretTemplate": {"type": type_}}),
            &["spec.secretTemplate", TYPE_MESSAGE],
        );
    }
    c.refuse(
        C,
        "template type empty",
        json!({"secretTemplate": {"type": ""}}),
        &[
            "spec.secretTemplate.type",
            "should be at least 1 chars long",
        ],
    );
    for type_ in [
        "Opaque",
        "kubernetes.io/tls",
        "kubernetes.io/basic-auth",
        "example.com/token",
    ] {
        c.accept(
            C,
            &format!("template type {type_}"),
            json!({"secretTemplate": {"type": type_}}),
        );
    }
    let targets = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"kind": "Deployment", "name": format!("app-{i}")}))
            .collect()
    };
    c.refuse(
        C,
        "17 rollout targets",
        json!({"rolloutRestartTargets": targets(17)}),
        &["spec.rolloutRestartTargets", "Too many"],
    );
    c.accept(
        C,
        "16 rollout targets",
        json!({"rolloutRestartTargets": targets(16)}),
    );
    c.refuse(
        C,
        "rollout kind Pod",
        json!({"rolloutRestartTargets": [{"kind": "Pod", "name": "app"}]}),
        &["spec.rolloutRestartTargets[0].kind", "Unsupported value"],
    );
    c.refuse(
        C,
        "rollout target without a name",
        json!({"rolloutRestartTargets": [{"kind": "Deployment"}]}),
        &["spec.rolloutRestartTargets[0].name", "Required value"],
    );
    c.refuse(
        C,
        "rollout target name empty",
        json!({"rolloutRestartTargets": [{"kind": "Deployment", "name": ""}]}),
        &[
            "spec.rolloutRestartTargets[0].name",
            "should be at least 1 chars long",
        ],
    );
    c.accept(
        C,
        "rollout targets of every kind",
        json!({"rolloutRestartTargets": [
            {"kind": "Deployment", "name": "a"}, {"kind": "StatefulSet", "name": "b"},
            {"kind": "DaemonSet", "name": "c"}]}),
    );
}

/// Rules shared by both broker kinds (`BrokerConnection`).
fn broker_connection(c: &mut Cases, kind: Kind) {
    for url in [
        "ftp://vcenter.example.com",
        "https://",
        "https://vcenter.example.com/?tenant=x",
        "https://vcenter.example.com/#x",
        "https://vcenter example.com",
        "vcenter.example.com",
    ] {
        c.refuse(
            kind,
            &format!("url {url:?}"),
            json!({"url": url}),
            &["spec.url", "should match"],
        );
    }
    c.refuse(
        kind,
        "url of 2049 characters",
        json!({"url": format!("https://v.example.com/{}", "p".repeat(2049 - 22))}),
        &["spec.url", "Too long"],
    );
    c.accept(
        kind,
        "url with port and path",
        json!({"url": "https://vcenter.example.com:8443/base/path"}),
    );
    c.refuse(
        kind,
        "http:// url",
        json!({"url": "http://vcenter.example.com"}),
        &["spec", HTTP_MESSAGE],
    );
    c.refuse(
        kind,
        "http:// url with allowInsecureHttp false",
        json!({"url": "http://vcenter.example.com", "allowInsecureHttp": false}),
        &["spec", HTTP_MESSAGE],
    );
    c.accept(
        kind,
        "http:// url with allowInsecureHttp",
        json!({"url": "http://vcenter.example.com", "allowInsecureHttp": true}),
    );
    c.accept(
        kind,
        "https:// url with allowInsecureHttp false",
        json!({"allowInsecureHttp": false}),
    );
    c.refuse(
        kind,
        "no url",
        json!({"url": null}),
        &["spec.url", "Required value"],
    );
    c.refuse(
        kind,
        "tenant empty",
        json!({"tenant": ""}),
        &["spec.tenant", "should be at least 1 chars long"],
    );
    c.refuse(
        kind,
        "tenant of 129 characters",
        json!({"tenant": "T".repeat(129)}),
        &["spec.tenant", "Too long"],
    );
    c.accept(
        kind,
        "tenant of 128 characters",
        json!({"tenant": "T".repeat(128)}),
    );
    c.refuse(
        kind,
        "caBundle and caSecretRef",
        json!({"tls": {"caBundle": "-----BEGIN CERTIFICATE-----", "caSecretRef": {"name": "ca"}}}),
        &["spec.tls", TLS_MESSAGE],
    );
    c.accept(
        kind,
        "caBundle alone",
        json!({"tls": {"caBundle": "-----BEGIN CERTIFICATE-----"}}),
    );
    c.accept(
        kind,
        "caSecretRef alone",
        json!({"tls": {"caSecretRef": {"name": "ca", "key": "bundle.pem"}}}),
    );
    c.refuse(
        kind,
        "caSecretRef name empty",
        json!({"tls": {"caSecretRef": {"name": ""}}}),
        &[
            "spec.tls.caSecretRef.name",
            "should be at least 1 chars long",
        ],
    );
    c.refuse(
        kind,
        "vcenter and bearerToken",
        json!({"auth": {"bearerToken": {"secretRef": {"name": "token"}}}}),
        &["spec.auth", AUTH_MESSAGE],
    );
    c.refuse(
        kind,
        "neither vcenter nor bearerToken",
        json!({"auth": {"vcenter": null}}),
        &["spec.auth", AUTH_MESSAGE],
    );
    c.accept(
        kind,
        "bearerToken alone",
        json!({"auth": {"vcenter": null, "bearerToken": {"secretRef": {"name": "token"}}}}),
    );
    c.refuse(
        kind,
        "bearerToken without secretRef",
        json!({"auth": {"vcenter": null, "bearerToken": {}}}),
        &["spec.auth.bearerToken.secretRef", "Required value"],
    );
    c.refuse(
        kind,
        "no auth",
        json!({"auth": null}),
        &["spec.auth", "Required value"],
    );
    c.refuse(
        kind,
        "tokenClient Other",
        json!({"auth": {"vcenter": {"tokenClient": "Other"}}}),
        &["spec.auth.vcenter.tokenClient", "Unsupported value"],
    );
    c.accept(
        kind,
        "tokenClient AdminClient",
        json!({"auth": {"vcenter": {"tokenClient": "AdminClient"}}}),
    );
    c.refuse(
        kind,
        "vcenter without credentialsSecretRef",
        json!({"auth": {"vcenter": {"credentialsSecretRef": null}}}),
        &["spec.auth.vcenter.credentialsSecretRef", "Required value"],
    );
    for (value, parts) in [
        ("0s", vec!["spec.limits.requestTimeout", TIMEOUT_MESSAGE]),
        ("999ms", vec!["spec.limits.requestTimeout", TIMEOUT_MESSAGE]),
        ("10m", vec!["spec.limits.requestTimeout", TIMEOUT_MESSAGE]),
        (
            "100000000000h",
            vec!["spec.limits.requestTimeout", TIMEOUT_MESSAGE],
        ),
        ("30", vec!["spec.limits.requestTimeout", "should match"]),
    ] {
        c.refuse(
            kind,
            &format!("requestTimeout {value:?}"),
            json!({"limits": {"requestTimeout": value}}),
            &parts,
        );
    }
    for value in ["1s", "1000ms", "5m", "30s"] {
        c.accept(
            kind,
            &format!("requestTimeout {value:?}"),
            json!({"limits": {"requestTimeout": value}}),
        );
    }
    for (value, bound) in [
        (0, "should be greater than or equal to 1"),
        (65, "should be less than or equal to 64"),
    ] {
        c.refuse(
            kind,
            &format!("maxConcurrentRequests {value}"),
            json!({"limits": {"maxConcurrentRequests": value}}),
            &["spec.limits.maxConcurrentRequests", bound],
        );
    }
    for value in [1, 64] {
        c.accept(
            kind,
            &format!("maxConcurrentRequests {value}"),
            json!({"limits": {"maxConcurrentRequests": value}}),
        );
    }
}

fn cluster_broker(c: &mut Cases) {
    use Kind::ClusterBroker as K;
    c.refuse(
        K,
        "no secretNamespace",
        json!({"secretNamespace": null}),
        &["spec.secretNamespace", "Required value"],
    );
    c.refuse(
        K,
        "secretNamespace empty",
        json!({"secretNamespace": ""}),
        &["spec.secretNamespace", "should be at least 1 chars long"],
    );
    c.refuse(
        K,
        "secretNamespace of 64 characters",
        json!({"secretNamespace": "n".repeat(64)}),
        &["spec.secretNamespace", "Too long"],
    );
    c.accept(
        K,
        "secretNamespace of 63 characters",
        json!({"secretNamespace": "n".repeat(63)}),
    );
    for value in ["not-a-uuid", "*", ""] {
        c.refuse(
            K,
            &format!("allowedDirectories [{value:?}]"),
            json!({"allowedDirectories": [DIRECTORY, value]}),
            &["spec.allowedDirectories[1]", "should match"],
        );
    }
    c.refuse(
        K,
        "1025 allowedDirectories",
        json!({"allowedDirectories": (0..1025).map(uuid).collect::<Vec<_>>()}),
        &["spec.allowedDirectories", "Too many"],
    );
    c.accept(
        K,
        "1024 allowedDirectories",
        json!({"allowedDirectories": (0..1024).map(uuid).collect::<Vec<_>>()}),
    );
    c.accept(
        K,
        "allowedDirectories empty",
        json!({"allowedDirectories": []}),
    );
    c.refuse(
        K,
        "namespaceSelector expression without operator",
        json!({"namespaceSelector": {"matchExpressions": [{"key": "team"}]}}),
        &[
            "spec.namespaceSelector.matchExpressions[0].operator",
            "Required value",
        ],
    );
    c.accept(
        K,
        "namespaceSelector",
        json!({"namespaceSelector": {"matchLabels": {"team": "blue"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["prod"]}]}}),
    );
}

fn all_cases(namespace: &str) -> Vec<Case> {
    let mut c = Cases {
        cases: Vec::new(),
        namespace: namespace.to_owned(),
    };
    credential_durations(&mut c);
    credential_renewal_and_type(&mut c);
    credential_identity(&mut c);
    credential_keys(&mut c);
    credential_template(&mut c);
    c.refuse_object(
        "a credential without spec",
        json!({"apiVersion": "syncclient.io/v1alpha1", "kind": "SyncClientCredential",
               "metadata": {"name": "no-spec", "namespace": namespace}}),
        &["spec", "Required value"],
    );
    broker_connection(&mut c, Kind::Broker);
    broker_connection(&mut c, Kind::ClusterBroker);
    cluster_broker(&mut c);
    credential_deliveries(&mut c);
    entra_connection(&mut c, Kind::Connection);
    entra_connection(&mut c, Kind::ClusterConnection);
    c.cases
}

/// Every `x-kubernetes-validations` rule of the CRDs: (`plural.group`, field, rule).
fn crd_rules() -> BTreeSet<(String, String, String)> {
    fn walk(
        schema: &Value,
        path: &str,
        resource: &str,
        out: &mut BTreeSet<(String, String, String)>,
    ) {
        for rule in schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = if path.is_empty() { "<nil>" } else { path };
            out.insert((
                resource.to_owned(),
                field.to_owned(),
                rule["rule"].as_str().expect("rule text").to_owned(),
            ));
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                let child_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                walk(child, &child_path, resource, out);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, &format!("{path}[*]"), resource, out);
        }
        if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            walk(additional, &format!("{path}[*]"), resource, out);
        }
    }
    let mut rules = BTreeSet::new();
    for file in crd_files() {
        let text = std::fs::read_to_string(&file).expect("CRD file");
        let crd: Value = serde_saphyr::from_str(&text).expect("CRD YAML");
        let resource = format!(
            "{}.{}",
            crd["spec"]["names"]["plural"].as_str().expect("plural"),
            crd["spec"]["group"].as_str().expect("group")
        );
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            walk(
                &version["schema"]["openAPIV3Schema"],
                "",
                &resource,
                &mut rules,
            );
        }
    }
    rules
}

/// How one case went.
fn judge(case: &Case, run: &Run) -> Option<String> {
    let output = format!("{}{}", run.stdout, run.stderr);
    match &case.refused_with {
        None if run.success => None,
        None => Some(format!(
            "{}: a valid resource was refused:\n{output}",
            case.what
        )),
        Some(_) if run.success => Some(format!(
            "{}: an invalid resource was accepted:\n{output}",
            case.what
        )),
        Some(parts) => {
            let missing: Vec<&String> = parts
                .iter()
                .filter(|p| !output.contains(p.as_str()))
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "{}: refused, but the error does not name {missing:?}:\n{output}",
                    case.what
                )
            })
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crds_refuse_every_invalid_resource_and_accept_each_near_miss() {
    let env = Env::start().await;
    let cases = all_cases(&env.namespace);
    let refusals = cases.iter().filter(|c| c.refused_with.is_some()).count();
    assert!(refusals >= 35, "only {refusals} invalid resources");

    // A few kubectl processes at once, each with its own discovery cache.
    let kubectls: Vec<Kubectl> = (0..WORKERS).map(|_| Kubectl::new(&env)).collect();
    let mut failures = Vec::new();
    for chunk in cases.chunks(WORKERS) {
        let runs = futures::future::join_all(
            chunk
                .iter()
                .zip(&kubectls)
                .map(|(case, kubectl)| kubectl.apply(&case.manifest)),
        )
        .await;
        for (case, run) in chunk.iter().zip(&runs) {
            failures.extend(judge(case, run));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases went wrong:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    println!(
        "{} resources: {refusals} refused, {} accepted",
        cases.len(),
        cases.len() - refusals
    );

    // The simulator really evaluated every rule, both ways, and skipped none.
    let Some(kube) = &env.kube else { return };
    let runs = kube.cel_rule_runs();
    let unsupported: Vec<_> = runs.iter().filter(|r| r.unsupported > 0).collect();
    assert!(
        unsupported.is_empty(),
        "rules the simulator skipped as outside its CEL subset: {unsupported:#?}"
    );
    let mut unproven = Vec::new();
    for (resource, field, rule) in crd_rules() {
        let run = runs
            .iter()
            .find(|r| r.resource == resource && r.field == field && r.rule == rule);
        match run {
            Some(r) if r.passed > 0 && r.failed > 0 => {}
            other => unproven.push(format!("{resource} {field}: {rule}\n  runs: {other:?}")),
        }
    }
    assert!(
        unproven.is_empty(),
        "rules not evaluated both ways (held for a near miss, refused an invalid resource):\n{}",
        unproven.join("\n")
    );
}
