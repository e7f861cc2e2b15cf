//! Validation of objects: metadata for every kind, and for custom resources the CRD's
//! structural `openAPIV3Schema` (pruning, defaulting, value validation, CEL rules).

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::cel;
use crate::error::FieldCause;

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

/// Removes fields the schema does not declare (recording their paths) and `null`s of
/// non-nullable fields, as kube-apiserver does before defaulting.
pub(crate) fn prune(schema: &Value, value: &mut Value, path: &str, unknown: &mut Vec<String>) {
    if is_true(schema, "x-kubernetes-int-or-string") {
        return;
    }
    let preserve = is_true(schema, "x-kubernetes-preserve-unknown-fields");
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let embedded = is_true(schema, "x-kubernetes-embedded-resource");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_schema =
                    properties
                        .and_then(|p| p.get(&key))
                        .or(additional)
                        .or_else(|| {
                            (schema.get("additionalProperties") == Some(&Value::Bool(true)))
                                .then_some(&Value::Null)
                        });
                let is_meta =
                    embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
                match child_schema {
                    Some(child) => {
                        let keep_null = is_true(child, "nullable");
                        if map.get(&key).is_some_and(Value::is_null) && !keep_null {
                            map.remove(&key);
                        } else if let Some(v) = map.get_mut(&key) {
                            prune(child, v, &child_path(path, &key), unknown);
                        }
                    }
                    None if preserve || is_meta => {}
                    None => {
                        map.remove(&key);
                        unknown.push(child_path(path, &key));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default`s of absent properties, recursively.
pub(crate) fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, child) in properties {
                    if !map.contains_key(key)
                        && let Some(default) = child.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(v) = map.get_mut(key) {
                        apply_defaults(child, v);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let declared = schema.get("properties").and_then(Value::as_object);
                for (key, v) in map.iter_mut() {
                    if !declared.is_some_and(|d| d.contains_key(key)) {
                        apply_defaults(additional, v);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// How kube-apiserver prints schema bounds: `99`, not `99.0`.
fn number_text(value: &Value) -> String {
    match value.as_f64() {
        #[allow(clippy::cast_possible_truncation)]
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => value.to_string(),
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        _ => true,
    }
}

/// A regex compiled once; `None` (logged) if the pattern does not compile, which would be a bug
/// in the simulator: the check it serves is then skipped rather than failing every request.
fn cached_regex(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| {
        Regex::new(pattern)
            .map_err(|e| tracing::error!(pattern, error = %e, "built-in regex does not compile"))
            .ok()
    })
    .as_ref()
}

fn duration_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    cached_regex(&RE, r"^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^0$")
}

fn uuid_regex() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    cached_regex(
        &RE,
        r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$",
    )
}

/// Checks of the `format`s the simulator knows; unknown formats pass, as in kube-apiserver.
fn format_error(format: &str, value: &Value) -> Option<String> {
    match (format, value) {
        ("date-time", Value::String(s)) => s
            .parse::<jiff::Timestamp>()
            .is_err()
            .then(|| "a valid date-time".to_owned()),
        ("date", Value::String(s)) => s
            .parse::<jiff::civil::Date>()
            .is_err()
            .then(|| "a valid date".to_owned()),
        ("uuid", Value::String(s)) => uuid_regex()
            .is_some_and(|re| !re.is_match(s))
            .then(|| "a valid uuid".to_owned()),
        ("duration", Value::String(s)) => duration_regex()
            .is_some_and(|re| !re.is_match(s))
            .then(|| "a valid duration".to_owned()),
        ("byte", Value::String(s)) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .is_err()
                .then(|| "a valid byte".to_owned())
        }
        ("int32", Value::Number(n)) => n
            .as_i64()
            .is_none_or(|i| i32::try_from(i).is_err())
            .then(|| "a valid int32".to_owned()),
        ("int64", Value::Number(n)) => n.as_i64().is_none().then(|| "a valid int64".to_owned()),
        _ => None,
    }
}

/// What one evaluation of an `x-kubernetes-validations` rule gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleOutcome {
    /// The rule held.
    Passed,
    /// The rule evaluated to false: its message refused the object.
    Failed,
    /// The evaluation failed as it would on the real server (no such key, a conversion error,
    /// an overflow, ...): that refused the object too.
    Error,
    /// The rule needs CEL outside the simulator's subset: skipped, not evaluated.
    Unsupported,
}

/// One rule met while validating an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleRun {
    /// The field the rule is on, list indices as `[*]` (`<nil>` for the root).
    pub field: String,
    pub rule: String,
    pub outcome: RuleOutcome,
}

/// How often the simulator met one `x-kubernetes-validations` rule of one resource, and with
/// what outcome ([`crate::KubeSim::cel_rule_runs`]). A rule outside the simulator's CEL subset
/// counts under `unsupported` (and is logged): the real server would have evaluated it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CelRuleRuns {
    /// `plural.group` of the custom resource, e.g. `widgets.example.com`.
    pub resource: String,
    /// The field the rule is on, e.g. `spec.limits.requestTimeout`; list indices as `[*]`;
    /// `<nil>` for a rule on the root.
    pub field: String,
    pub rule: String,
    /// Evaluated to true.
    pub passed: usize,
    /// Evaluated to false (the object was refused with the rule's message).
    pub failed: usize,
    /// Failed to evaluate as on the real server (the object was refused).
    pub errors: usize,
    /// Skipped: outside the simulator's CEL subset.
    pub unsupported: usize,
}

impl CelRuleRuns {
    pub(crate) fn record(&mut self, outcome: RuleOutcome) {
        match outcome {
            RuleOutcome::Passed => self.passed += 1,
            RuleOutcome::Failed => self.failed += 1,
            RuleOutcome::Error => self.errors += 1,
            RuleOutcome::Unsupported => self.unsupported += 1,
        }
    }
}

/// `spec.items[3].name` as `spec.items[*].name`: one rule, whichever item it ran on.
fn rule_field(path: &str) -> String {
    let mut field = String::with_capacity(path.len());
    let mut in_index = false;
    for c in display_path(path).chars() {
        match c {
            '[' => {
                in_index = true;
                field.push_str("[*]");
            }
            ']' if in_index => in_index = false,
            _ if in_index => {}
            _ => field.push(c),
        }
    }
    field
}

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

    fn rules(&mut self, schema: &Value, value: &Value, old: Option<&Value>, path: &str) {
        let Some(rules) = schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        else {
            return;
        };
        for rule in rules {
            let Some(source) = rule.get("rule").and_then(Value::as_str) else {
                continue;
            };
            let (outcome, message) = run_rule(rule, source, value, old);
            if let Some(outcome) = outcome {
                self.rule_runs.push(RuleRun {
                    field: rule_field(path),
                    rule: source.to_owned(),
                    outcome,
                });
            }
            let Some(message) = message else {
                continue;
            };
            let field = match rule.get("fieldPath").and_then(Value::as_str) {
                Some(extra) => display_path(&format!("{path}{extra}")).to_owned(),
                None => display_path(path).to_owned(),
            };
            // The real server shows the schema type, not the value, for rule failures.
            let shown_type = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("object");
            let mut cause =
                FieldCause::invalid(&field, &Value::String(shown_type.to_owned()), &message);
            if let Some(reason) = rule.get("reason").and_then(Value::as_str) {
                cause.reason = match reason {
                    "FieldValueRequired" => "FieldValueRequired",
                    "FieldValueDuplicate" => "FieldValueDuplicate",
                    "FieldValueForbidden" => "FieldValueForbidden",
                    _ => "FieldValueInvalid",
                };
            }
            self.causes.push(cause);
        }
    }
}

/// Runs one rule: its outcome (`None`: a transition rule on a create, which does not run) and
/// the detail of the cause it raises (`None`: it held, or was skipped as outside the subset).
fn run_rule(
    rule: &Value,
    source: &str,
    value: &Value,
    old: Option<&Value>,
) -> (Option<RuleOutcome>, Option<String>) {
    let unsupported = |error: &str| {
        tracing::warn!(
            rule = source,
            error,
            "CEL rule not supported by the simulator, skipped"
        );
        (Some(RuleOutcome::Unsupported), None)
    };
    let program = match cel::compile(source) {
        Ok(p) => p,
        Err(e) => return unsupported(&e),
    };
    if program.uses_old_self() && old.is_none() {
        // Transition rules do not run on creates, on the real server either.
        return (None, None);
    }
    // kube-apiserver's `ruleErrorString`: the message, else the rule.
    let described = rule
        .get("message")
        .and_then(Value::as_str)
        .map_or(source, str::trim);
    let (outcome, message) = match program.evaluate(value, old) {
        Ok(cel::Cel::Bool(true)) => return (Some(RuleOutcome::Passed), None),
        Ok(cel::Cel::Bool(false)) => (
            RuleOutcome::Failed,
            rule.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| format!("failed rule: {source}"), str::to_owned),
        ),
        Ok(other) => (
            RuleOutcome::Error,
            format!("rule {source} evaluated to {other}, not a bool"),
        ),
        Err(e) if cel::is_unsupported(&e) => return unsupported(&e),
        // The wording of kube-apiserver (apiextensions `schema/cel/validation.go`).
        Err(e) if e.starts_with("no such overload") => (
            RuleOutcome::Error,
            format!(
                "'{e}': call arguments did not match a supported operator, function or macro signature for rule: {described}"
            ),
        ),
        Err(e) => (
            RuleOutcome::Error,
            format!("{e} evaluating rule: {described}"),
        ),
    };
    (Some(outcome), Some(message))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "x-kubernetes-validations": [
                        {"rule": "!(has(self.a) && has(self.b))", "message": "a and b are exclusive"}
                    ],
                    "properties": {
                        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "kind": {"type": "string", "enum": ["X", "Y"], "default": "X"},
                        "count": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10},
                        "when": {"type": "string", "format": "date-time"},
                        "a": {"type": "string"},
                        "b": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                }
            }
        })
    }

    fn run(obj: Value) -> (Value, SchemaOutcome) {
        let mut obj = obj;
        let outcome = process_custom_resource(&schema(), &mut obj, None, false);
        (obj, outcome)
    }

    #[test]
    fn defaults_and_prunes() {
        let (obj, outcome) = run(
            json!({"metadata": {"name": "x"}, "spec": {"name": "ab", "extra": 1, "labels": {"k": "v"}}}),
        );
        assert_eq!(obj["spec"]["kind"], "X");
        assert!(obj["spec"].get("extra").is_none());
        assert_eq!(outcome.unknown_fields, vec!["spec.extra".to_owned()]);
        assert!(outcome.causes.is_empty(), "{:?}", outcome.causes);
    }

    #[test]
    fn reports_each_violation_with_its_path() {
        let (_, outcome) = run(json!({"spec": {
            "name": "TOOLONGNAME", "kind": "Z", "count": 11, "when": "yesterday", "a": "1", "b": "2"
        }}));
        let fields: Vec<&str> = outcome.causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.name"));
        assert!(fields.contains(&"spec.kind"));
        assert!(fields.contains(&"spec.count"));
        assert!(fields.contains(&"spec.when"));
        assert!(
            outcome
                .causes
                .iter()
                .any(|c| c.message.contains("a and b are exclusive"))
        );
        let (_, missing) = run(json!({"spec": {}}));
        assert_eq!(
            missing.causes[0].full_message(),
            "spec.name: Required value"
        );
        let (_, wrong_type) = run(json!({"spec": {"name": "ab", "count": "3"}}));
        assert_eq!(wrong_type.causes[0].reason, "FieldValueTypeInvalid");
    }

    #[test]
    fn rules_are_counted_and_worded_as_by_kube_apiserver() {
        let schema = json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "properties": {
                "ttl": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "duration(self) <= duration('87600h')", "message": "ttl too long"}
                ]},
                "items": {"type": "array", "items": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.n > 0"}],
                    "properties": {"n": {"type": "integer"}}}},
                "u": {"type": "string", "x-kubernetes-validations": [{"rule": "isURL(self)"}]},
            },
        }}});
        let mut obj =
            json!({"spec": {"ttl": "100000000000h", "items": [{"n": 1}, {"n": 0}, {}], "u": "x"}});
        let outcome = process_custom_resource(&schema, &mut obj, None, false);
        let messages: Vec<String> = outcome
            .causes
            .iter()
            .map(FieldCause::full_message)
            .collect();
        assert_eq!(
            messages,
            [
                "spec.items[1]: Invalid value: \"object\": failed rule: self.n > 0",
                "spec.items[2]: Invalid value: \"object\": no such key: n evaluating rule: self.n > 0",
                "spec.ttl: Invalid value: \"string\": type conversion error from 'string' to 'google.protobuf.Duration' evaluating rule: ttl too long",
            ]
        );
        let outcomes = |field: &str| -> Vec<RuleOutcome> {
            outcome
                .rule_runs
                .iter()
                .filter(|r| r.field == field)
                .map(|r| r.outcome)
                .collect()
        };
        assert_eq!(outcomes("spec.ttl"), [RuleOutcome::Error]);
        assert_eq!(
            outcomes("spec.items[*]"),
            [RuleOutcome::Passed, RuleOutcome::Failed, RuleOutcome::Error]
        );
        // Outside the subset: skipped (no cause), and counted as such.
        assert_eq!(outcomes("spec.u"), [RuleOutcome::Unsupported]);
        assert_eq!(rule_field(""), "<nil>");
    }

    #[test]
    fn status_writes_are_checked_against_the_status_schema_only() {
        let mut schema = schema();
        schema["properties"]["status"] = json!({"type": "object", "properties": {
            "phase": {"type": "string", "enum": ["Ready", "Failed"]},
            "count": {"type": "integer", "default": 0},
        }});
        // Stored under an older schema: the spec no longer validates.
        let old = json!({"spec": {"name": 12345}, "status": {"phase": "Ready"}});
        let mut obj = json!({"spec": {"name": 12345}, "status": {"phase": "Failed", "extra": 1}});
        let outcome = process_custom_resource(&schema, &mut obj, Some(&old), true);
        assert!(outcome.causes.is_empty(), "{:?}", outcome.causes);
        assert_eq!(outcome.unknown_fields, ["status.extra"]);
        assert_eq!(obj["status"], json!({"phase": "Failed", "count": 0}));
        assert_eq!(obj["spec"]["name"], 12345, "the rest is left as stored");

        let mut bad = json!({"spec": {"name": 12345}, "status": {"phase": "Lost"}});
        let outcome = process_custom_resource(&schema, &mut bad, Some(&old), true);
        let fields: Vec<&str> = outcome.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["status.phase"]);
        // The same object through the main resource is refused for its spec.
        let outcome = process_custom_resource(&schema, &mut obj, Some(&old), false);
        assert!(outcome.causes.iter().any(|c| c.field == "spec.name"));
    }
}
