//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and a strategic merge
//! patch subset for built-in kinds. Server-side apply lives in `apply.rs`.

use serde_json::{Map, Value};

/// The patch types of the `Content-Type` header of a PATCH request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply)
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn unescape_pointer_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok(rest.split('/').map(unescape_pointer_token).collect())
}

fn array_index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    let index: usize = token
        .parse()
        .map_err(|_| format!("invalid array index {token:?}"))?;
    let limit = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if index > limit || (!allow_end && len == 0) {
        return Err(format!("array index {index} out of bounds"));
    }
    Ok(index)
}

fn parent_of<'a>(doc: &'a mut Value, tokens: &[String]) -> Result<&'a mut Value, String> {
    let mut current = doc;
    for token in tokens {
        current = match current {
            Value::Object(map) => map
                .get_mut(token)
                .ok_or_else(|| format!("missing path element {token:?}"))?,
            Value::Array(items) => {
                let index = array_index(token, items.len(), false)?;
                &mut items[index]
            }
            _ => return Err(format!("cannot traverse into a scalar at {token:?}")),
        };
    }
    Ok(current)
}

fn json_patch_add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let tokens = split_pointer(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_of(doc, parents)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_index(last, items.len(), true)?;
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("cannot add to a scalar at {path:?}")),
    }
}

fn json_patch_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let tokens = split_pointer(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err("cannot remove the whole document".to_owned());
    };
    match parent_of(doc, parents)? {
        Value::Object(map) => map
            .remove(last)
            .ok_or_else(|| format!("unable to remove nonexistent key {last:?}")),
        Value::Array(items) => {
            let index = array_index(last, items.len(), false)?;
            Ok(items.remove(index))
        }
        _ => Err(format!("cannot remove from a scalar at {path:?}")),
    }
}

fn json_patch_get(doc: &Value, path: &str) -> Result<Value, String> {
    doc.pointer(path)
        .cloned()
        .ok_or_else(|| format!("path {path:?} does not exist"))
}

/// RFC 6902; all operations are applied to a copy and only a fully successful patch counts.
pub fn json_patch(target: &Value, operations: &Value) -> Result<Value, String> {
    let ops = operations
        .as_array()
        .ok_or_else(|| "a JSON patch must be an array of operations".to_owned())?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| "operation without \"op\"".to_owned())?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{kind} operation without \"path\""))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("{kind} operation without \"value\""))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{kind} operation without \"from\""))
        };
        match kind {
            "add" => json_patch_add(&mut doc, path, value()?)?,
            "remove" => {
                json_patch_remove(&mut doc, path)?;
            }
            "replace" => {
                json_patch_remove(&mut doc, path)?;
                json_patch_add(&mut doc, path, value()?)?;
            }
            "move" => {
                let moved = json_patch_remove(&mut doc, from()?)?;
                json_patch_add(&mut doc, path, moved)?;
            }
            "copy" => {
                let copied = json_patch_get(&doc, from()?)?;
                json_patch_add(&mut doc, path, copied)?;
            }
            "test" => {
                let actual = json_patch_get(&doc, path)?;
                if actual != value()? {
                    return Err(format!("test operation failed at {path:?}"));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(doc)
}

/// Merge keys of the list fields of built-in kinds that strategic merge patch merges
/// element-wise (the rest are replaced, as in a merge patch).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "envFrom"
        | "secrets" => Some("name"),
        "volumeMounts" | "volumeDevices" => Some("mountPath"),
        "ownerReferences" => Some("uid"),
        "conditions" => Some("type"),
        "hostAliases" => Some("ip"),
        _ => None,
    }
}

/// Primitive lists whose patch strategy is `merge` (set union) rather than replace.
fn merges_primitive_list(field: &str) -> bool {
    field == "finalizers"
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Strategic merge patch for built-in kinds: a merge patch where the known list fields merge
/// by key, plus the `$patch`, `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList`
/// directives that `kubectl` sends.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    match patch_map.get(DIRECTIVE).and_then(Value::as_str) {
        Some("replace") => {
            let mut replacement = patch_map.clone();
            replacement.remove(DIRECTIVE);
            *target = Value::Object(replacement);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if key == DIRECTIVE || key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            if let (Some(Value::Array(items)), Some(remove)) =
                (target_map.get_mut(field), value.as_array())
            {
                items.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        let existing = target_map.entry(key.clone()).or_insert(Value::Null);
        match (value, merge_key(key)) {
            (Value::Array(patch_items), Some(merge_key)) if existing.is_array() => {
                merge_keyed_list(existing, patch_items, merge_key);
            }
            (Value::Array(patch_items), None)
                if merges_primitive_list(key) && existing.is_array() =>
            {
                if let Value::Array(items) = existing {
                    for item in patch_items {
                        if !items.contains(item) {
                            items.push(item.clone());
                        }
                    }
                }
            }
            (Value::Object(_), _) => {
                strategic_merge_patch(existing, value);
                if existing.is_null() {
                    target_map.remove(key);
                }
            }
            _ => *existing = strip_directives(value),
        }
    }
    if let Some(Value::Array(retain)) = patch_map.get(RETAIN_KEYS) {
        target_map.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| item.get(DIRECTIVE).is_none())
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_keyed_list(existing: &mut Value, patch_items: &[Value], key: &str) {
    if patch_items
        .iter()
        .any(|item| item.get(DIRECTIVE).and_then(Value::as_str) == Some("replace"))
    {
        *existing = strip_directives(&Value::Array(patch_items.to_vec()));
        return;
    }
    let Value::Array(items) = existing else {
        return;
    };
    for patch_item in patch_items {
        let Some(id) = patch_item.get(key) else {
            items.push(strip_directives(patch_item));
            continue;
        };
        let position = items.iter().position(|item| item.get(key) == Some(id));
        let deleting = patch_item.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
        match (position, deleting) {
            (Some(pos), true) => {
                items.remove(pos);
            }
            (None, true) => {}
            (Some(pos), false) => strategic_merge_patch(&mut items[pos], patch_item),
            (None, false) => items.push(strip_directives(patch_item)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn json_patch_applies_all_operations() {
        let doc = json!({"a": [1, 2], "b": {"c": "d"}});
        let patched = json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "replace", "path": "/b/c", "value": "e"},
                {"op": "copy", "from": "/b/c", "path": "/x"},
                {"op": "move", "from": "/x", "path": "/y"},
                {"op": "remove", "path": "/a/0"},
                {"op": "test", "path": "/y", "value": "e"},
                {"op": "add", "path": "/k~1s", "value": 1},
            ]),
        )
        .unwrap();
        assert_eq!(
            patched,
            json!({"a": [2, 3], "b": {"c": "e"}, "y": "e", "k/s": 1})
        );
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/a/0", "value": 9}])).is_err());
        assert!(json_patch(&doc, &json!([{"op": "remove", "path": "/zz"}])).is_err());
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}, "metadata": {"finalizers": ["f1"]}});
        strategic_merge_patch(
            &mut doc,
            &json!({
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "spec": {"containers": [
                    {"name": "a", "env": [{"name": "Y", "value": "2"}]},
                    {"name": "b", "$patch": "delete"}
                ]},
                "metadata": {"finalizers": ["f2"]}
            }),
        );
        assert_eq!(
            doc,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}
            ]}, "metadata": {"finalizers": ["f1", "f2"]}})
        );
    }
}
