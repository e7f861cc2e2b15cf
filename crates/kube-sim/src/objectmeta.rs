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

use serde_json::{Value, json};

use crate::error::FieldCause;

/// `DNS1123SubdomainMaxLength`.
const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// `DNS1123LabelMaxLength`.
const DNS1123_LABEL_MAX: usize = 63;
/// `qualifiedNameMaxLength`.
const QUALIFIED_NAME_MAX: usize = 63;
/// `LabelValueMaxLength`.
const LABEL_VALUE_MAX: usize = 63;
/// `TotalAnnotationSizeLimitB = 256 * (1 << 10)`: the sum of all annotation key and value
/// lengths.
pub(crate) const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// `RegexError`: the message, examples, and the regex (note Go's double space before `or`).
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{message} (regex used for validation is '{format}')");
    }
    let listed: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        listed.join(" or ")
    )
}

/// `MaxLenError` (1.34 wording; later releases say "bytes").
fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_dns1123_label_format(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    edge(s.chars().next())
        && edge(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `label(\.label)*`
fn is_dns1123_subdomain_format(s: &str) -> bool {
    s.split('.').all(is_dns1123_label_format)
}

/// `IsDNS1123Subdomain`
pub(crate) fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errors.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !is_dns1123_subdomain_format(value) {
        errors.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errors
}

/// `IsDNS1123Label`
pub(crate) fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errors.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !is_dns1123_label_format(value) {
        if is_dns1123_subdomain_format(value) {
            errors.push("must not contain dots".to_owned());
        } else {
            errors.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errors
}

/// `IsQualifiedName`: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters. Label keys, annotation keys (lowercased first) and finalizers use it.
pub(crate) fn qualified_name_errors(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let mut errors = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

/// `IsValidLabelValue`: empty, or a qualified-name part of at most 63 characters.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errors.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !(value.is_empty() || is_qualified_name_part(value)) {
        errors.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// `IsConfigMapKey` (Secret and ConfigMap data keys): `[-._a-zA-Z0-9]+`, at most 253
/// characters, not `.`, not `..`, not starting with `..`.
pub(crate) fn config_map_key_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errors.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    let format_ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !format_ok {
        errors.push(regex_error(
            CONFIG_MAP_KEY_ERR,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    // hasChDirPrefix
    if value == "." {
        errors.push("must not be '.'".to_owned());
    } else if value == ".." {
        errors.push("must not be '..'".to_owned());
    } else if value.starts_with("..") {
        errors.push("must not start with '..'".to_owned());
    }
    errors
}

/// `IsValidPathSegmentName`: the only rule for names of RBAC objects.
fn path_segment_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value == "." || value == ".." {
        errors.push(format!("may not be '{value}'"));
    }
    for banned in ['/', '%'] {
        if value.contains(banned) {
            errors.push(format!("may not contain '{banned}'"));
        }
    }
    errors
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_follow_apimachinery() {
        assert!(qualified_name_errors("example.com/My_Name-1").is_empty());
        assert!(qualified_name_errors("a").is_empty());
        assert_eq!(
            qualified_name_errors("/x"),
            vec!["prefix part must be non-empty".to_owned()]
        );
        assert_eq!(
            qualified_name_errors("Example.com/x")[0],
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(
            qualified_name_errors("a/"),
            vec![
                "name part must be non-empty".to_owned(),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_owned()
            ]
        );
        assert_eq!(
            qualified_name_errors(&"n".repeat(64)),
            vec!["name part must be no more than 63 characters".to_owned()]
        );
        assert!(qualified_name_errors("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(qualified_name_errors("-x").len(), 1);
    }

    #[test]
    fn label_values_and_config_keys() {
        assert!(label_value_errors("").is_empty());
        assert!(label_value_errors("v1.2_3-x").is_empty());
        assert_eq!(label_value_errors("a b").len(), 1);
        assert_eq!(
            label_value_errors(&"v".repeat(64)),
            vec!["must be no more than 63 characters".to_owned()]
        );
        assert!(config_map_key_errors(".dockercfg").is_empty());
        assert!(config_map_key_errors("tls.crt").is_empty());
        assert_eq!(
            config_map_key_errors(".."),
            vec!["must not be '..'".to_owned()]
        );
        assert_eq!(
            config_map_key_errors("..x"),
            vec!["must not start with '..'".to_owned()]
        );
        assert_eq!(config_map_key_errors("a/b").len(), 1);
        assert_eq!(config_map_key_errors("").len(), 1);
        assert_eq!(config_map_key_errors(&"k".repeat(254)).len(), 1);
    }

    #[test]
    fn object_meta_reports_each_problem() {
        let ok = json!({"metadata": {"name": "ok-name", "labels": {"a": "b"}}});
        assert!(validate_object_meta(&ok, NameRule::DnsSubdomain).is_empty());
        let bad_name = json!({"metadata": {"name": "Bad_Name"}});
        assert_eq!(
            validate_object_meta(&bad_name, NameRule::DnsSubdomain).len(),
            1
        );
        let bad_label = json!({"metadata": {"name": "x", "labels": {"t": "2024-01-01T00:00:00Z"}}});
        let causes = validate_object_meta(&bad_label, NameRule::DnsSubdomain);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.labels");
        let unnamed = json!({"metadata": {}});
        assert_eq!(
            validate_object_meta(&unnamed, NameRule::DnsSubdomain)[0].full_message(),
            "metadata.name: Required value: name or generateName is required"
        );
        let big = json!({"metadata": {"name": "x", "annotations": {"k": "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}}});
        assert_eq!(
            validate_object_meta(&big, NameRule::DnsSubdomain)[0].full_message(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn names_by_rule() {
        assert!(NameRule::DnsSubdomain.errors("a.b-c", false).is_empty());
        assert!(NameRule::DnsSubdomain.errors("gen-", true).is_empty());
        assert_eq!(NameRule::DnsSubdomain.errors("gen-", false).len(), 1);
        assert_eq!(
            NameRule::DnsLabel.errors("a.b", false),
            vec!["must not contain dots".to_owned()]
        );
        assert!(
            NameRule::PathSegment
                .errors("system:auth-delegator", false)
                .is_empty()
        );
        assert_eq!(
            NameRule::PathSegment.errors("a/b", false),
            vec!["may not contain '/'".to_owned()]
        );
    }
}
