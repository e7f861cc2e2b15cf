//! Validation of objects: metadata for every kind, and for custom resources the CRD's
//! structural `openAPIV3Schema` (pruning, defaulting, value validation, CEL rules).
//!
//! - this module: the `fieldValidation` mode and the processing of one custom resource;
//! - [`pruning`]: unknown fields dropped, defaults filled in;
//! - [`schema`]: value validation, node by node; [`formats`]: types and formats of one value;
//! - [`rules`]: `x-kubernetes-validations` rules and their counts.

mod formats;
mod pruning;
mod rules;
mod schema;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use crate::error::FieldCause;

pub(crate) use pruning::{apply_defaults, prune};
pub use rules::CelRuleRuns;
pub(crate) use rules::RuleRun;
use schema::SchemaValidator;

/// The `fieldValidation` query parameter: what to do with fields the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and answer with a `Warning` header (the server default).
    #[default]
    Warn,
    /// Reject the request with 400.
    Strict,
}

impl FieldValidation {
    pub fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some("Strict") => Self::Strict,
            Some("Ignore") => Self::Ignore,
            _ => Self::Warn,
        }
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "<nil>" } else { path }
}

fn is_true(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

/// What schema processing did to a custom resource, before the caller decides by
/// `fieldValidation` how to treat unknown fields.
pub(crate) struct SchemaOutcome {
    pub unknown_fields: Vec<String>,
    pub causes: Vec<FieldCause>,
    pub rule_runs: Vec<RuleRun>,
}

/// Prunes, defaults and validates a custom resource against its version's schema.
/// `metadata` is left to `objectmeta.rs`. A write to the `/status` subresource (`status_only`)
/// is checked as kube-apiserver checks it: against the status schema only (the rest of the
/// object is the stored one, unchanged; rules on the root still run, as it changed).
pub(crate) fn process_custom_resource(
    schema: &Value,
    obj: &mut Value,
    old: Option<&Value>,
    status_only: bool,
) -> SchemaOutcome {
    if status_only {
        return process_status(schema, obj, old);
    }
    let mut unknown = Vec::new();
    let mut body_schema = schema.clone();
    if let Some(props) = body_schema
        .get_mut("properties")
        .and_then(Value::as_object_mut)
    {
        // metadata is ObjectMeta whatever the CRD says; only its name rules could apply.
        props.remove("metadata");
        props
            .entry("apiVersion")
            .or_insert(json!({"type": "string"}));
        props.entry("kind").or_insert(json!({"type": "string"}));
    }
    let metadata = obj.as_object_mut().and_then(|m| m.remove("metadata"));
    prune(&body_schema, obj, "", &mut unknown);
    apply_defaults(&body_schema, obj);
    let mut validator = SchemaValidator::new();
    let old_body = old.map(|o| {
        let mut o = o.clone();
        if let Some(m) = o.as_object_mut() {
            m.remove("metadata");
        }
        o
    });
    validator.validate(&body_schema, obj, old_body.as_ref(), "");
    if let (Some(meta), Some(map)) = (metadata, obj.as_object_mut()) {
        map.insert("metadata".to_owned(), meta);
    }
    SchemaOutcome {
        unknown_fields: unknown,
        causes: validator.causes,
        rule_runs: validator.rule_runs,
    }
}

/// The `/status` half of [`process_custom_resource`].
fn process_status(schema: &Value, obj: &mut Value, old: Option<&Value>) -> SchemaOutcome {
    let mut unknown = Vec::new();
    let mut validator = SchemaValidator::new();
    if let (Some(status_schema), Some(status)) =
        (schema.pointer("/properties/status"), obj.get_mut("status"))
    {
        prune(status_schema, status, "status", &mut unknown);
        apply_defaults(status_schema, status);
        let old_status = old.and_then(|o| o.get("status"));
        validator.validate(status_schema, status, old_status, "status");
    }
    if schema.get("x-kubernetes-validations").is_some() {
        let mut body = obj.clone();
        if let Some(m) = body.as_object_mut() {
            m.remove("metadata");
        }
        let old_body = old.map(|o| {
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("metadata");
            }
            o
        });
        validator.rules(schema, &body, old_body.as_ref(), "");
    }
    SchemaOutcome {
        unknown_fields: unknown,
        causes: validator.causes,
        rule_runs: validator.rule_runs,
    }
}
