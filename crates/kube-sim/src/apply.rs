//! Server-side apply, simplified.
//!
//! Each apply field manager owns the set of leaf fields (map keys, recursively; lists are atomic)
//! of its last applied configuration; the set is stored in `metadata.managedFields` in the real
//! `FieldsV1` format. Applying merges the configuration into the live object, removes fields the
//! same manager applied before but no longer applies (unless another apply manager owns them),
//! and reports a conflict when another apply manager owns a field the configuration changes
//! (unless `force=true`, which transfers ownership). Non-apply writes are not tracked as owners.

#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use crate::patch::merge_patch;

pub(crate) type FieldPath = Vec<String>;

/// Where an apply lands: the main resource or its `/status` subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApplyScope {
    /// The main resource; `status` is left out when the type has a status subresource.
    Main {
        without_status: bool,
    },
    Status,
}

impl ApplyScope {
    fn subresource(self) -> Option<&'static str> {
        match self {
            Self::Main { .. } => None,
            Self::Status => Some("status"),
        }
    }

    /// The part of an applied configuration this scope may change.
    pub fn restrict(self, applied: &Value) -> Value {
        let mut restricted = Map::new();
        match self {
            Self::Main { without_status } => {
                if let Value::Object(map) = applied {
                    for (k, v) in map {
                        if !(without_status && k == "status") {
                            restricted.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            Self::Status => {
                if let Some(status) = applied.get("status") {
                    restricted.insert("status".to_owned(), status.clone());
                }
            }
        }
        Value::Object(restricted)
    }
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApplyConflict {
    pub manager: String,
    pub field: String,
}

/// Fields that identify an object or are maintained by the server: never owned.
fn is_identity(path: &[String]) -> bool {
    match path {
        [one] => one == "apiVersion" || one == "kind",
        [meta, field] if meta == "metadata" => matches!(
            field.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "deletionTimestamp"
                | "selfLink"
                | "generateName"
        ),
        _ => false,
    }
}

/// Leaf paths of a configuration: map keys recursively, lists and scalars are leaves.
pub(crate) fn leaf_paths(value: &Value) -> Vec<FieldPath> {
    fn walk(value: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    prefix.push(k.clone());
                    walk(v, prefix, out);
                    prefix.pop();
                }
            }
            // `metadata: {}` left after identity fields is not a field anyone owns.
            Value::Object(map)
                if map.is_empty() && prefix.len() == 1 && prefix[0] == "metadata" => {}
            _ if !prefix.is_empty() && !is_identity(prefix) => out.push(prefix.clone()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// Encodes a path set as `FieldsV1` (`{"f:spec": {"f:replicas": {}}}`).
pub(crate) fn to_fields_v1(paths: &[FieldPath]) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut node = &mut root;
        for segment in path {
            let entry = node
                .entry(format!("f:{segment}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else {
                break;
            };
            node = next;
        }
    }
    Value::Object(root)
}

/// Decodes `FieldsV1` produced by [`to_fields_v1`]: every childless node is an owned leaf.
pub(crate) fn from_fields_v1(fields: &Value) -> Vec<FieldPath> {
    fn walk(value: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        let children: Vec<(&String, &Value)> = value
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.starts_with("f:")).collect())
            .unwrap_or_default();
        if children.is_empty() {
            if !prefix.is_empty() {
                out.push(prefix.clone());
            }
            return;
        }
        for (k, v) in children {
            prefix.push(k[2..].to_owned());
            walk(v, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn value_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, segment| v.get(segment))
}

fn remove_at(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = value;
    for segment in parents {
        match current.get_mut(segment) {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Value::Object(map) = current {
        map.remove(last);
    }
}

fn dotted(path: &[String]) -> String {
    format!(".{}", path.join("."))
}

struct ManagerEntry {
    manager: String,
    subresource: Option<String>,
    paths: Vec<FieldPath>,
    raw: Value,
}

fn entries(live: &Value) -> Vec<ManagerEntry> {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|e| ManagerEntry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    paths: if e.get("operation").and_then(Value::as_str) == Some("Apply") {
                        from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null))
                    } else {
                        Vec::new()
                    },
                    raw: e.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A non-apply write (update or patch) takes over every field it changes or removes: as on the
/// real server, those fields leave the apply managers' sets, so a later apply of them by
/// someone else is no conflict (leader-election libraries rely on this to take over a lease).
pub(crate) fn release_changed_fields(live: &Value, new: &mut Value) {
    let after = new.clone();
    let Some(managed) = new
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for entry in managed.iter_mut() {
        if entry.get("operation").and_then(Value::as_str) != Some("Apply") {
            continue;
        }
        let kept: Vec<FieldPath> = from_fields_v1(entry.get("fieldsV1").unwrap_or(&Value::Null))
            .into_iter()
            .filter(|path| value_at(live, path) == value_at(&after, path))
            .collect();
        entry["fieldsV1"] = to_fields_v1(&kept);
    }
    managed.retain(|entry| {
        entry.get("operation").and_then(Value::as_str) != Some("Apply")
            || entry
                .get("fieldsV1")
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
    });
}

/// The outcome of applying: the object to store (managedFields updated) or the conflicts.
pub(crate) struct ApplyRequest<'a> {
    pub live: &'a Value,
    /// The configuration, already restricted to the scope.
    pub applied: &'a Value,
    pub manager: &'a str,
    pub force: bool,
    pub scope: ApplyScope,
    pub api_version: &'a str,
    pub now: &'a str,
}

pub(crate) fn apply(request: &ApplyRequest<'_>) -> Result<Value, Vec<ApplyConflict>> {
    let applied_paths = leaf_paths(request.applied);
    let mut all = entries(request.live);
    let conflicts = take_over_fields(request, &mut all, &applied_paths);
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let mut result = request.live.clone();
    drop_abandoned_fields(request, &all, &applied_paths, &mut result);
    merge_patch(&mut result, request.applied);
    let managed = managed_fields(request, &all, &applied_paths);
    if let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("managedFields".to_owned(), Value::Array(managed));
    }
    Ok(result)
}

impl ApplyRequest<'_> {
    fn owns(&self, entry: &ManagerEntry) -> bool {
        entry.manager == self.manager && entry.subresource.as_deref() == self.scope.subresource()
    }
}

/// Removes the fields the configuration changes from other managers' sets (with `force`), or
/// reports them as conflicts (sorted, without duplicates).
fn take_over_fields(
    request: &ApplyRequest<'_>,
    all: &mut [ManagerEntry],
    applied_paths: &[FieldPath],
) -> Vec<ApplyConflict> {
    let mut conflicts = Vec::new();
    for entry in all.iter_mut().filter(|e| !request.owns(e)) {
        let mut kept = Vec::new();
        for owned in std::mem::take(&mut entry.paths) {
            let clash = applied_paths.iter().find(|p| {
                overlaps(p, &owned) && value_at(request.live, p) != value_at(request.applied, p)
            });
            match clash {
                Some(p) if !request.force => {
                    conflicts.push(ApplyConflict {
                        manager: entry.manager.clone(),
                        field: dotted(p),
                    });
                    kept.push(owned);
                }
                Some(_) => {}
                None => kept.push(owned),
            }
        }
        entry.paths = kept;
    }
    conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
    conflicts.dedup();
    conflicts
}

/// Removes fields this manager applied before but no longer applies, unless another apply
/// manager owns them.
fn drop_abandoned_fields(
    request: &ApplyRequest<'_>,
    all: &[ManagerEntry],
    applied_paths: &[FieldPath],
    result: &mut Value,
) {
    let previously_owned = all
        .iter()
        .filter(|e| request.owns(e))
        .flat_map(|e| e.paths.iter());
    for path in previously_owned {
        let still_applied = applied_paths.iter().any(|p| overlaps(p, path));
        let owned_by_other = all
            .iter()
            .filter(|e| !request.owns(e))
            .any(|e| e.paths.iter().any(|p| overlaps(p, path)));
        if !still_applied && !owned_by_other {
            remove_at(result, path);
        }
    }
}

/// The new `managedFields`: the other managers (apply managers with their remaining sets,
/// empty ones dropped), then this manager's entry.
fn managed_fields(
    request: &ApplyRequest<'_>,
    all: &[ManagerEntry],
    applied_paths: &[FieldPath],
) -> Vec<Value> {
    let mut managed: Vec<Value> = all
        .iter()
        .filter(|e| !request.owns(e))
        .map(|e| {
            let mut raw = e.raw.clone();
            if raw.get("operation").and_then(Value::as_str) == Some("Apply") {
                raw["fieldsV1"] = to_fields_v1(&e.paths);
            }
            raw
        })
        .filter(|raw| {
            raw.get("operation").and_then(Value::as_str) != Some("Apply")
                || raw
                    .get("fieldsV1")
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
        })
        .collect();
    let mut entry = json!({
        "manager": request.manager,
        "operation": "Apply",
        "apiVersion": request.api_version,
        "time": request.now,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(applied_paths),
    });
    if let Some(sub) = request.scope.subresource() {
        entry["subresource"] = json!(sub);
    }
    managed.push(entry);
    managed
}
