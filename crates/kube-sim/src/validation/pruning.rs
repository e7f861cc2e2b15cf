//! Pruning of fields the schema does not declare, and defaulting, as kube-apiserver does them
//! before value validation.

use serde_json::Value;

use super::{child_path, is_true};

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
