//! `metadata` rules every kind shares, with kube-apiserver's messages.
//!
//! Sources (Kubernetes 1.34): `ValidateObjectMetaAccessor`, `ValidateAnnotations`,
//! `ValidateOwnerReferences`, `ValidateFinalizers` and `ValidateNoNewFinalizers` in
//! `k8s.io/apimachinery/pkg/api/validation/objectmeta.go`; `ValidateLabels` in
//! `k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go`; the name formats
//! (`IsQualifiedName`, `IsValidLabelValue`, `IsDNS1123Subdomain`, `IsDNS1123Label`,
//! `IsConfigMapKey`) and their messages (`RegexError`, `MaxLenError`, `EmptyError`) in
//! `k8s.io/apimachinery/pkg/util/validation/validation.go`; `IsValidPathSegmentName` in
//! `k8s.io/apimachinery/pkg/api/validation/path/name.go`. Keys are checked in sorted order
//! (Go iterates maps in random order, so the real server's order varies anyway).

mod names;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use crate::error::FieldCause;

use names::path_segment_errors;
pub(crate) use names::{
    config_map_key_errors, dns1123_label_errors, dns1123_subdomain_errors, label_value_errors,
    qualified_name_errors,
};

/// `TotalAnnotationSizeLimitB = 256 * (1 << 10)`: the sum of all annotation key and value
/// lengths.
pub(crate) const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Which `ValidateNameFunc` a kind uses for `metadata.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// `NameIsDNSSubdomain`: most kinds, custom resources included.
    DnsSubdomain,
    /// `NameIsDNSLabel`: namespaces.
    DnsLabel,
    /// `ValidatePathSegmentName`: RBAC roles and bindings.
    PathSegment,
}

impl NameRule {
    /// The messages for a name (`prefix`: a `generateName`, whose trailing `-` is allowed).
    fn errors(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.ends_with('-') {
            masked = format!("{}a", &name[..name.len() - 1]);
            masked.as_str()
        } else {
            name
        };
        match self {
            Self::DnsSubdomain => dns1123_subdomain_errors(name),
            Self::DnsLabel => dns1123_label_errors(name),
            Self::PathSegment => path_segment_errors(name),
        }
    }
}

fn invalid_each(field: &str, value: &str, messages: Vec<String>) -> Vec<FieldCause> {
    messages
        .into_iter()
        .map(|m| FieldCause::invalid(field, &json!(value), &m))
        .collect()
}

fn metadata_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `ValidateObjectMetaAccessor` for a new object (name generation already done): name and
/// `generateName`, labels, annotations, owner references, finalizers.
pub(crate) fn validate_object_meta(obj: &Value, rule: NameRule) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let generate_name = metadata_str(obj, "generateName");
    if !generate_name.is_empty() {
        causes.extend(invalid_each(
            "metadata.generateName",
            generate_name,
            rule.errors(generate_name, true),
        ));
    }
    let name = metadata_str(obj, "name");
    if name.is_empty() {
        causes.push(FieldCause::required_because(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        causes.extend(invalid_each(
            "metadata.name",
            name,
            rule.errors(name, false),
        ));
    }
    causes.extend(validate_labels(obj));
    causes.extend(validate_annotations(obj));
    causes.extend(validate_owner_references(obj));
    causes.extend(validate_finalizers(obj));
    causes
}

/// `ValidateLabels`: every key a qualified name, every value a label value.
fn validate_labels(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) else {
        return causes;
    };
    for (key, value) in labels {
        causes.extend(invalid_each(
            "metadata.labels",
            key,
            qualified_name_errors(key),
        ));
        match value.as_str() {
            Some(v) => causes.extend(invalid_each("metadata.labels", v, label_value_errors(v))),
            None => causes.push(FieldCause::type_invalid(
                &format!("metadata.labels.{key}"),
                value,
                "string",
            )),
        }
    }
    causes
}

/// `ValidateAnnotations`: keys are qualified names once lowercased; keys and values together
/// are at most [`TOTAL_ANNOTATION_SIZE_LIMIT`] bytes.
fn validate_annotations(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    else {
        return causes;
    };
    let mut total = 0;
    for (key, value) in annotations {
        causes.extend(invalid_each(
            "metadata.annotations",
            key,
            qualified_name_errors(&key.to_ascii_lowercase()),
        ));
        match value.as_str() {
            Some(v) => total += key.len() + v.len(),
            None => causes.push(FieldCause::type_invalid(
                &format!("metadata.annotations.{key}"),
                value,
                "string",
            )),
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(FieldCause::too_long(
            "metadata.annotations",
            TOTAL_ANNOTATION_SIZE_LIMIT as u64,
        ));
    }
    causes
}

/// `ValidateOwnerReferences`: apiVersion with a version, kind, name and uid present; at most
/// one controller.
fn validate_owner_references(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(refs) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    else {
        return causes;
    };
    let field = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for reference in refs {
        let text = |key: &str| reference.get(key).and_then(Value::as_str).unwrap_or("");
        let api_version = text("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            causes.push(FieldCause::invalid(
                &format!("{field}.apiVersion"),
                &json!(api_version),
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if text(key).is_empty() {
                causes.push(FieldCause::invalid(
                    &format!("{field}.{key}"),
                    &json!(text(key)),
                    "must not be empty",
                ));
            }
        }
        if reference.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", text("kind"), text("name"));
            match &first_controller {
                Some(first) => causes.push(FieldCause::invalid(
                    field,
                    &Value::Array(refs.clone()),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    causes
}

/// `ValidateFinalizers`: each a qualified name; `orphan` and `foregroundDeletion` exclusive.
fn validate_finalizers(obj: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let Some(finalizers) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    else {
        return causes;
    };
    let names: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
    for name in &names {
        causes.extend(invalid_each(
            "metadata.finalizers",
            name,
            qualified_name_errors(name),
        ));
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        causes.push(FieldCause::invalid(
            "metadata.finalizers",
            &Value::Array(finalizers.clone()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    causes
}

/// `ValidateNoNewFinalizers`, part of `ValidateObjectMetaAccessorUpdate`: while an object is
/// being deleted, finalizers can only be removed.
pub(crate) fn validate_no_new_finalizers(new: &Value, old: &Value) -> Vec<FieldCause> {
    if old.pointer("/metadata/deletionTimestamp").is_none() {
        return Vec::new();
    }
    let list = |obj: &Value| -> Vec<String> {
        obj.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_finalizers = list(old);
    let mut extra: Vec<String> = list(new)
        .into_iter()
        .filter(|f| !old_finalizers.contains(f))
        .collect();
    extra.sort();
    extra.dedup();
    if extra.is_empty() {
        return Vec::new();
    }
    let quoted: Vec<String> = extra.iter().map(|f| json!(f).to_string()).collect();
    vec![FieldCause::forbidden(
        "metadata.finalizers",
        &format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            quoted.join(", ")
        ),
    )]
}
