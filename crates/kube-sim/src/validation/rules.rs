//! `x-kubernetes-validations` CEL rules: running one, its outcome, and how often each rule of
//! each resource ran with what outcome.

use serde_json::Value;

use crate::cel;
use crate::error::FieldCause;

use super::display_path;
use super::schema::SchemaValidator;

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
pub(super) fn rule_field(path: &str) -> String {
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

impl SchemaValidator {
    pub(super) fn rules(&mut self, schema: &Value, value: &Value, old: Option<&Value>, path: &str) {
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
