//! Custom resources: the resource type a `CustomResourceDefinition` defines, the structural
//! checks kube-apiserver makes on a CRD, and the status a served CRD gets.

use serde_json::{Value, json};

use crate::error::{FieldCause, SimError, Subject};

use super::{ResourceType, VersionInfo};

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn resource_from_crd(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let kind = names.get("kind")?.as_str()?.to_owned();
    let plural = names.get("plural")?.as_str()?.to_owned();
    let mut versions: Vec<(bool, VersionInfo)> = Vec::new();
    let mut status_subresource = false;
    for v in spec.get("versions")?.as_array()? {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let storage = v.get("storage").and_then(Value::as_bool).unwrap_or(false);
        if storage {
            status_subresource = v.pointer("/subresources/status").is_some();
        }
        versions.push((
            storage,
            VersionInfo {
                name: v.get("name")?.as_str()?.to_owned(),
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            },
        ));
    }
    // Storage version first: it is the preferred version in discovery.
    versions.sort_by_key(|(storage, _)| !*storage);
    let group = spec.get("group")?.as_str()?.to_owned();
    Some(ResourceType {
        storage_group: group.clone(),
        group,
        versions: versions.into_iter().map(|(_, v)| v).collect(),
        singular: names
            .get("singular")
            .and_then(Value::as_str)
            .map_or_else(|| kind.to_ascii_lowercase(), str::to_owned),
        list_kind: names
            .get("listKind")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{kind}List"), str::to_owned),
        short_names: strings(names.get("shortNames").unwrap_or(&Value::Null)),
        categories: strings(names.get("categories").unwrap_or(&Value::Null)),
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        status_subresource,
        tracks_generation: true,
        crd: Some(crd.pointer("/metadata/name")?.as_str()?.to_owned()),
        kind,
        plural,
    })
}

/// Structural checks kube-apiserver makes on a CRD before serving it.
pub(crate) fn validate_crd(crd: &Value) -> Result<(), SimError> {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let subject = Subject {
        group: "apiextensions.k8s.io",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        name,
    };
    let mut causes = Vec::new();
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let plural = spec
        .pointer("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() {
        causes.push(FieldCause::required("spec.group"));
    }
    if plural.is_empty() {
        causes.push(FieldCause::required("spec.names.plural"));
    }
    if spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .is_none()
    {
        causes.push(FieldCause::required("spec.names.kind"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(FieldCause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced" | "Cluster") => {}
        Some(other) => causes.push(FieldCause::not_supported(
            "spec.scope",
            &json!(other),
            &[json!("Cluster"), json!("Namespaced")],
        )),
        None => causes.push(FieldCause::required("spec.scope")),
    }
    let versions = spec.get("versions").and_then(Value::as_array);
    match versions {
        Some(versions) if !versions.is_empty() => {
            let storage = versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .count();
            if storage != 1 {
                causes.push(FieldCause::invalid(
                    "spec.versions",
                    &Value::Null,
                    "must have exactly one version marked as storage version",
                ));
            }
        }
        _ => causes.push(FieldCause::required("spec.versions")),
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(SimError::invalid(subject, &causes))
    }
}

/// The status a CRD gets once it is served: names accepted, established.
pub(crate) fn crd_status(crd: &Value, now: &str) -> Value {
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": storage,
    })
}
