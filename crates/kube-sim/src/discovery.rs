//! Discovery documents: `/version`, legacy `/api` and `/apis` trees, aggregated discovery
//! (`apidiscovery.k8s.io/v2`), and a minimal `/openapi/v3` that tells `kubectl` the server
//! supports server-side field validation.

use serde_json::{Map, Value, json};

use crate::resources::{self, Registry, ResourceType};

pub(crate) const SERVER_MINOR: &str = "33";

pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": SERVER_MINOR,
        "emulationMajor": "1",
        "emulationMinor": SERVER_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": format!("v1.{SERVER_MINOR}.0-kubesim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

pub(crate) fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_entry(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn group(registry: &Registry, name: &str) -> Option<Value> {
    registry
        .groups()
        .iter()
        .find(|(g, _)| g == name && !g.is_empty())
        .map(|(g, vs)| {
            let mut entry = group_entry(g, vs);
            entry["kind"] = json!("APIGroup");
            entry["apiVersion"] = json!("v1");
            entry
        })
}

pub(crate) fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<&std::sync::Arc<ResourceType>> =
        registry.in_group_version(group, version).collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in types {
        let mut entry = json!({
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": resources::VERBS,
        });
        if !t.short_names.is_empty() {
            entry["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            entry["categories"] = json!(t.categories);
        }
        resources.push(entry);
        if t.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// Which aggregated discovery version an `Accept` header asks for, if any.
pub(crate) fn aggregated_version(accept: &str) -> Option<&'static str> {
    let wants = |version: &str| {
        accept.split(',').any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"g=apidiscovery.k8s.io")
                && params.contains(&"as=APIGroupDiscoveryList")
                && params.contains(&format!("v={version}").as_str())
        })
    };
    if wants("v2") {
        Some("v2")
    } else if wants("v2beta1") {
        Some("v2beta1")
    } else {
        None
    }
}

fn discovery_resource(t: &ResourceType, version: &str) -> Value {
    let response_kind = json!({"group": t.group, "version": version, "kind": t.kind});
    let mut entry = json!({
        "resource": t.plural,
        "responseKind": response_kind,
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": resources::VERBS,
    });
    if !t.short_names.is_empty() {
        entry["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        entry["categories"] = json!(t.categories);
    }
    if t.status_subresource {
        entry["subresources"] = json!([{
            "subresource": "status",
            "responseKind": response_kind,
            "verbs": ["get", "patch", "update"],
        }]);
    }
    entry
}

/// `APIGroupDiscoveryList` for `/api` (`core == true`) or `/apis`.
pub(crate) fn aggregated(registry: &Registry, core: bool, discovery_version: &str) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .in_group_version(g, v)
                        .map(|t| discovery_resource(t, v))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{discovery_version}"),
        "metadata": {},
        "items": items,
    })
}

pub(crate) fn aggregated_content_type(discovery_version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={discovery_version};as=APIGroupDiscoveryList")
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Parameters every write operation documents; `kubectl` looks for `fieldValidation`.
fn write_parameters() -> Value {
    json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
    ])
}

fn schema_name(t: &ResourceType, version: &str) -> String {
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    let group = if t.group.is_empty() {
        "io.k8s.api.core".to_owned()
    } else {
        reversed.join(".")
    };
    format!("{group}.{version}.{}", t.kind)
}

/// The OpenAPI v3 document of one group-version: paths with their operations, and for
/// custom resources the CRD's schema (so `kubectl explain` works).
pub(crate) fn openapi_v3_group_version(
    registry: &Registry,
    group: &str,
    version: &str,
) -> Option<Value> {
    let types: Vec<&std::sync::Arc<ResourceType>> =
        registry.in_group_version(group, version).collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
        let base = if t.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                t.plural
            )
        } else {
            format!("/{}/{}", gv_path(group, version), t.plural)
        };
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", t.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": write_parameters(),
                "responses": {"200": {"description": "OK"}},
            })
        };
        paths.insert(base.clone(), json!({"get": op("list"), "post": op("post")}));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
        if t.status_subresource {
            paths.insert(
                format!("{base}/{{name}}/status"),
                json!({"get": op("get"), "put": op("put"), "patch": op("patch")}),
            );
        }
        if let Some(schema) = t.version(version).and_then(|v| v.schema.clone()) {
            let mut schema = schema;
            schema["x-kubernetes-group-version-kind"] = json!([gvk]);
            schemas.insert(schema_name(t, version), schema);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{SERVER_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn fnv1a(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016X}")
}

pub(crate) fn openapi_v3_root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in registry.groups() {
        for version in versions {
            if let Some(doc) = openapi_v3_group_version(registry, &group, &version) {
                let path = gv_path(&group, &version);
                paths.insert(
                    path.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", fnv1a(&doc.to_string()))}),
                );
            }
        }
    }
    json!({"paths": paths})
}
