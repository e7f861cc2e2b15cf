//! The validation shared by every write of a full object: type identity, decoding and
//! defaulting of built-in kinds, their update rules, object metadata, and custom resources
//! against their CRD's schema and CEL rules.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{FieldCause, SimError};
use crate::objectmeta::{self, NameRule};
use crate::resources::{self, ResourceType};
use crate::secret;
use crate::validation::{self, FieldValidation};

use super::{Store, WriteOptions, meta, with_meta};

/// How a custom resource's schema applies to one write.
#[derive(Clone, Copy)]
struct SchemaCheck<'a> {
    /// What to do with unknown fields.
    mode: FieldValidation,
    name: &'a str,
    /// A `/status` write: only the status schema applies.
    status_only: bool,
}

impl Store {
    pub(crate) fn check_identity(
        rt: &ResourceType,
        version: &str,
        obj: &Value,
    ) -> Result<(), SimError> {
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && !kind.is_empty()
            && kind != rt.kind
        {
            return Err(SimError::bad_request(format!(
                "the kind of the object ({kind}) does not match the kind of the resource ({})",
                rt.kind
            )));
        }
        if let Some(api_version) = obj.get("apiVersion").and_then(Value::as_str)
            && !api_version.is_empty()
            && api_version != rt.api_version(version)
            && rt
                .version(api_version.rsplit('/').next().unwrap_or(""))
                .is_none()
        {
            return Err(SimError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                rt.api_version(version)
            )));
        }
        Ok(())
    }

    /// Decoding and defaulting of built-in kinds the simulator models: Secret `stringData` and
    /// base64 `data` (a 400 when it does not decode) and `type`; the namespace name label and
    /// finalizer. Returns a Secret's decoded data, for validation.
    fn decode_builtin(
        rt: &ResourceType,
        obj: &mut Value,
    ) -> Result<Option<Map<String, Value>>, SimError> {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "secrets") => return secret::decode(obj).map(Some),
            ("", "namespaces") => {
                let name = meta(obj, "name").unwrap_or_default();
                with_meta(obj, |metadata| {
                    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                    if let Some(labels) = labels.as_object_mut() {
                        labels.insert("kubernetes.io/metadata.name".to_owned(), json!(name));
                    }
                });
                if obj.pointer("/spec/finalizers").is_none() {
                    obj["spec"] = json!({"finalizers": ["kubernetes"]});
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// The update rules of built-in kinds: `ValidateSecretUpdate` and `ValidateConfigMapUpdate`
    /// (`pkg/apis/core/validation/validation.go`).
    fn validate_builtin_update(rt: &ResourceType, obj: &Value, old: &Value) -> Vec<FieldCause> {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "secrets") => secret::validate_update(obj, old),
            ("", "configmaps") => Self::immutable_config_map(obj, old),
            _ => Vec::new(),
        }
    }

    fn immutable_config_map(obj: &Value, old: &Value) -> Vec<FieldCause> {
        if old.get("immutable").and_then(Value::as_bool) != Some(true) {
            return Vec::new();
        }
        let mut causes = Vec::new();
        if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
            causes.push(FieldCause::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        for field in ["data", "binaryData"] {
            if obj.get(field) != old.get(field) {
                causes.push(FieldCause::forbidden(
                    field,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        causes
    }

    fn name_rule(rt: &ResourceType) -> NameRule {
        if rt.group.is_empty() && rt.plural == "namespaces" {
            NameRule::DnsLabel
        } else if rt.group == "rbac.authorization.k8s.io" {
            NameRule::PathSegment
        } else {
            NameRule::DnsSubdomain
        }
    }

    /// Schema processing of custom resources; returns warnings for dropped unknown fields.
    fn process_schema(
        rt: &ResourceType,
        version: &str,
        obj: &mut Value,
        old: Option<&Value>,
        check: &SchemaCheck<'_>,
        cel_rules: &mut BTreeMap<(String, String, String), validation::CelRuleRuns>,
    ) -> Result<Vec<String>, SimError> {
        let SchemaCheck {
            mode,
            name,
            status_only,
        } = *check;
        let Some(schema) = rt.version(version).and_then(|v| v.schema.as_ref()) else {
            return Ok(Vec::new());
        };
        let outcome = validation::process_custom_resource(schema, obj, old, status_only);
        let resource = format!("{}.{}", rt.plural, rt.group);
        for run in outcome.rule_runs {
            cel_rules
                .entry((resource.clone(), run.field.clone(), run.rule.clone()))
                .or_insert_with(|| validation::CelRuleRuns {
                    resource: resource.clone(),
                    field: run.field,
                    rule: run.rule,
                    ..validation::CelRuleRuns::default()
                })
                .record(run.outcome);
        }
        let unknown: Vec<String> = outcome
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        if mode == FieldValidation::Strict && !unknown.is_empty() {
            return Err(SimError::bad_request(format!(
                "strict decoding error: {}",
                unknown.join(", ")
            )));
        }
        if !outcome.causes.is_empty() {
            return Err(SimError::invalid(rt.subject(name), &outcome.causes));
        }
        Ok(if mode == FieldValidation::Warn {
            unknown
        } else {
            Vec::new()
        })
    }

    /// Checks common to every write of the full object; returns warnings.
    pub(crate) fn validate_object(
        rt: &ResourceType,
        version: &str,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOptions,
        cel_rules: &mut BTreeMap<(String, String, String), validation::CelRuleRuns>,
        status_only: bool,
    ) -> Result<Vec<String>, SimError> {
        let name = meta(obj, "name").unwrap_or_default();
        let secret_data = Self::decode_builtin(rt, obj)?;
        let mut causes = Vec::new();
        if let Some(old) = old {
            causes.extend(objectmeta::validate_no_new_finalizers(obj, old));
            causes.extend(Self::validate_builtin_update(rt, obj, old));
        }
        causes.extend(objectmeta::validate_object_meta(obj, Self::name_rule(rt)));
        if let Some(data) = &secret_data {
            causes.extend(secret::validate(obj, data));
        }
        if !causes.is_empty() {
            return Err(SimError::invalid(rt.subject(&name), &causes));
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            resources::validate_crd(obj)?;
        }
        if rt.is_custom() {
            let check = SchemaCheck {
                mode: opts.field_validation,
                name: &name,
                status_only,
            };
            return Self::process_schema(rt, version, obj, old, &check, cel_rules);
        }
        Ok(Vec::new())
    }
}
