//! Pruning, defaulting, causes with their paths, CEL rule counts, and `/status` writes.

use super::rules::{RuleOutcome, rule_field};
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
