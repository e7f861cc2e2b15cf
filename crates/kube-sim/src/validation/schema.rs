//! Value validation of one schema node and, recursively, its children: constraints, objects,
//! arrays and their list types, and the `allOf`/`anyOf`/`oneOf`/`not` combinators.

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::FieldCause;

use super::formats::{format_error, number_text, type_matches};
use super::rules::RuleRun;
use super::{child_path, display_path, is_true};

/// Value validation of one schema node (and, recursively, its children).
pub(crate) struct SchemaValidator {
    pub causes: Vec<FieldCause>,
    /// Every `x-kubernetes-validations` rule met, with its outcome.
    pub rule_runs: Vec<RuleRun>,
}

impl SchemaValidator {
    pub fn new() -> Self {
        Self {
            causes: Vec::new(),
            rule_runs: Vec::new(),
        }
    }

    pub fn validate(&mut self, schema: &Value, value: &Value, old: Option<&Value>, path: &str) {
        let shown = display_path(path).to_owned();
        if value.is_null() {
            if !is_true(schema, "nullable") && schema.get("type").is_some() {
                let expected = schema
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("object");
                self.causes
                    .push(FieldCause::type_invalid(&shown, value, expected));
            }
            return;
        }
        if is_true(schema, "x-kubernetes-int-or-string") {
            if !(value.is_string() || value.as_i64().is_some()) {
                self.causes
                    .push(FieldCause::type_invalid(&shown, value, "integer,string"));
                return;
            }
        } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
            && !type_matches(expected, value)
        {
            self.causes
                .push(FieldCause::type_invalid(&shown, value, expected));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            self.causes
                .push(FieldCause::not_supported(&shown, value, allowed));
        }
        self.scalar_constraints(schema, value, &shown);
        match value {
            Value::Object(map) => self.object(schema, map, old, path),
            Value::Array(items) => self.array(schema, items, path, &shown),
            _ => {}
        }
        self.combinators(schema, value, old, path, &shown);
        self.rules(schema, value, old, path);
    }

    fn scalar_constraints(&mut self, schema: &Value, value: &Value, shown: &str) {
        if let Value::String(s) = value {
            self.string_constraints(schema, s, value, shown);
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str)
            && let Some(expected) = format_error(format, value)
        {
            self.causes.push(FieldCause::invalid(
                shown,
                value,
                &format!("{shown} in body must be of type {format}: {expected} was expected"),
            ));
        }
        if let Some(n) = value.as_f64() {
            self.number_constraints(schema, n, value, shown);
        }
    }

    fn string_constraints(&mut self, schema: &Value, s: &str, value: &Value, shown: &str) {
        let length = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && length > max
        {
            self.causes.push(FieldCause::too_long(shown, max));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && length < min
        {
            self.causes.push(FieldCause::invalid(
                shown,
                value,
                &format!("{shown} in body should be at least {min} chars long"),
            ));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match Regex::new(pattern) {
                Ok(re) if !re.is_match(s) => self.causes.push(FieldCause::invalid(
                    shown,
                    value,
                    &format!("{shown} in body should match '{pattern}'"),
                )),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(pattern, error = %e, "schema pattern not understood, skipped");
                }
            }
        }
    }

    fn number_constraints(&mut self, schema: &Value, n: f64, value: &Value, shown: &str) {
        let number = |key: &str| schema.get(key).and_then(Value::as_f64);
        if let Some(min) = number("minimum") {
            let exclusive = is_true(schema, "exclusiveMinimum");
            if n < min || (exclusive && n <= min) {
                let relation = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.causes.push(FieldCause::invalid(
                    shown,
                    value,
                    &format!(
                        "{shown} in body should be {relation} {}",
                        number_text(&schema["minimum"])
                    ),
                ));
            }
        }
        if let Some(max) = number("maximum") {
            let exclusive = is_true(schema, "exclusiveMaximum");
            if n > max || (exclusive && n >= max) {
                let relation = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.causes.push(FieldCause::invalid(
                    shown,
                    value,
                    &format!(
                        "{shown} in body should be {relation} {}",
                        number_text(&schema["maximum"])
                    ),
                ));
            }
        }
        if let Some(step) = number("multipleOf")
            && step > 0.0
            && (n / step).fract().abs() > f64::EPSILON
        {
            self.causes.push(FieldCause::invalid(
                shown,
                value,
                &format!(
                    "{shown} in body should be a multiple of {}",
                    number_text(&schema["multipleOf"])
                ),
            ));
        }
    }

    fn object(
        &mut self,
        schema: &Value,
        map: &Map<String, Value>,
        old: Option<&Value>,
        path: &str,
    ) {
        let shown = display_path(path);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if map.get(key).is_none_or(Value::is_null) {
                    self.causes
                        .push(FieldCause::required(&child_path(path, key)));
                }
            }
        }
        let count = map.len() as u64;
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
            && count > max
        {
            self.causes.push(FieldCause::too_many(shown, max));
        }
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
            && count < min
        {
            self.causes.push(FieldCause::invalid(
                shown,
                &Value::Object(map.clone()),
                &format!("{shown} in body should have at least {min} properties"),
            ));
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        for (key, child) in map {
            let child_schema = properties.and_then(|p| p.get(key)).or(additional);
            if let Some(child_schema) = child_schema {
                let old_child = old.and_then(|o| o.get(key));
                self.validate(child_schema, child, old_child, &child_path(path, key));
            }
        }
    }

    fn array(&mut self, schema: &Value, items: &[Value], path: &str, shown: &str) {
        let count = items.len() as u64;
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            self.causes.push(FieldCause::too_many(shown, max));
        }
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            self.causes.push(FieldCause::invalid(
                shown,
                &Value::Array(items.to_vec()),
                &format!("{shown} in body should have at least {min} items"),
            ));
        }
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => self.duplicates(items, path, |item| Some(item.clone())),
            Some("map") => {
                let keys: Vec<String> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|ks| {
                        ks.iter()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                self.duplicates(items, path, |item| {
                    Some(Value::Array(
                        keys.iter()
                            .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                            .collect(),
                    ))
                });
            }
            _ => {}
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.validate(item_schema, item, None, &format!("{path}[{i}]"));
            }
        }
    }

    fn duplicates(&mut self, items: &[Value], path: &str, key: impl Fn(&Value) -> Option<Value>) {
        let mut seen = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(k) = key(item) else { continue };
            if seen.contains(&k) {
                let field = format!("{path}[{i}]");
                self.causes.push(FieldCause {
                    reason: "FieldValueDuplicate",
                    message: format!("Duplicate value: {k}"),
                    field,
                });
            } else {
                seen.push(k);
            }
        }
    }

    fn passes(schema: &Value, value: &Value, old: Option<&Value>, path: &str) -> bool {
        let mut sub = Self::new();
        sub.validate(schema, value, old, path);
        sub.causes.is_empty()
    }

    fn combinators(
        &mut self,
        schema: &Value,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        shown: &str,
    ) {
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.validate(sub, value, old, path);
            }
        }
        if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
            && !any.iter().any(|sub| Self::passes(sub, value, old, path))
        {
            self.causes.push(FieldCause::invalid(
                shown,
                value,
                &format!("{shown} in body must validate at least one schema (anyOf)"),
            ));
        }
        if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
            let passing = one
                .iter()
                .filter(|sub| Self::passes(sub, value, old, path))
                .count();
            if passing != 1 {
                self.causes.push(FieldCause::invalid(
                    shown,
                    value,
                    &format!("{shown} in body must validate one and only one schema (oneOf)"),
                ));
            }
        }
        if let Some(not) = schema.get("not")
            && Self::passes(not, value, old, path)
        {
            self.causes.push(FieldCause::invalid(
                shown,
                value,
                &format!("{shown} in body must not validate the schema (not)"),
            ));
        }
    }
}
