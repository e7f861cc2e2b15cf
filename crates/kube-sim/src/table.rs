//! Server-side printing: `meta.k8s.io/v1 Table` answers for `kubectl get`, built from a CRD's
//! `additionalPrinterColumns` (JSONPath subset) or from fixed columns of built-in kinds.

use serde_json::{Value, json};

use crate::resources::ResourceType;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    Wildcard,
    Filter {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

fn parse_filter(inner: &str) -> Option<Step> {
    // ?(@.a.b=="v") / ?(@.a != 'v')
    let body = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (left, equal, right) = if let Some((l, r)) = body.split_once("==") {
        (l, true, r)
    } else {
        let (l, r) = body.split_once("!=")?;
        (l, false, r)
    };
    let path = left
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_owned)
        .collect();
    let right = right.trim();
    let value = if let Some(s) = right
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| right.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
    {
        Value::String(s.to_owned())
    } else {
        serde_json::from_str(right).ok()?
    };
    Some(Step::Filter { path, equal, value })
}

/// Parses the JSONPath subset CRD printer columns use: `.a.b`, `['a']`, `[0]`, `[*]`,
/// `[?(@.x=="y")]`, optionally wrapped in `{ }`.
fn parse_jsonpath(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    if chars.first() == Some(&'$') {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let mut depth = 0;
                let start = i + 1;
                while i < chars.len() {
                    match chars[i] {
                        '[' | '(' => depth += 1,
                        ']' | ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    i += 1;
                }
                let inner: String = chars[start..i.min(chars.len())].iter().collect();
                i += 1;
                let inner = inner.trim();
                let step = if inner == "*" {
                    Step::Wildcard
                } else if let Ok(n) = inner.parse::<usize>() {
                    Step::Index(n)
                } else if inner.starts_with('?') {
                    parse_filter(inner)?
                } else {
                    Step::Field(inner.trim_matches(|c| c == '\'' || c == '"').to_owned())
                };
                steps.push(step);
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn evaluate(steps: &[Step], root: &Value) -> Vec<Value> {
    let mut current = vec![root.clone()];
    for step in steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => next.extend(value.get(name).cloned()),
                Step::Index(n) => next.extend(value.get(*n).cloned()),
                Step::Wildcard => match value {
                    Value::Array(items) => next.extend(items),
                    Value::Object(map) => next.extend(map.into_iter().map(|(_, v)| v)),
                    _ => {}
                },
                Step::Filter {
                    path,
                    equal,
                    value: expected,
                } => {
                    if let Value::Array(items) = value {
                        next.extend(items.into_iter().filter(|item| {
                            let actual = path.iter().try_fold(item, |v, p| v.get(p));
                            (actual == Some(expected)) == *equal
                        }));
                    }
                }
            }
        }
        current = next;
    }
    current
}

/// kubectl's short age format (`5s`, `3m20s`, `5h`, `2d3h`, `90d`, `2y`).
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    let seconds = seconds.max(0);
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        let d = hours / 24;
        return if h == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    let years = hours / 24 / 365;
    let days = (hours / 24) % 365;
    if hours < 24 * 365 * 8 && days != 0 {
        return format!("{years}y{days}d");
    }
    format!("{years}y")
}

fn age(timestamp: &Value) -> Value {
    timestamp
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(Value::Null, |t| {
            json!(human_duration(
                jiff::Timestamp::now().as_second() - t.as_second()
            ))
        })
}

struct Column {
    name: String,
    kind: String,
    format: String,
    description: String,
    priority: i64,
    cell: Box<dyn Fn(&Value) -> Value>,
}

fn column(name: &str, kind: &str, cell: impl Fn(&Value) -> Value + 'static) -> Column {
    Column {
        name: name.to_owned(),
        kind: kind.to_owned(),
        format: if name == "Name" {
            "name".to_owned()
        } else {
            String::new()
        },
        description: String::new(),
        priority: 0,
        cell: Box::new(cell),
    }
}

fn name_column() -> Column {
    let mut c = column("Name", "string", |o| {
        o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)
    });
    "Name must be unique within a namespace.".clone_into(&mut c.description);
    c
}

fn age_column() -> Column {
    column("Age", "string", |o| {
        age(o
            .pointer("/metadata/creationTimestamp")
            .unwrap_or(&Value::Null))
    })
}

/// The age of a timestamp, `None` when it is unset (Go's zero time).
fn since(timestamp: Option<&Value>) -> Option<String> {
    let age = age(timestamp?);
    age.as_str().map(str::to_owned)
}

/// `printEvent` (`pkg/printers/internalversion/printers.go`): the first and last time seen
/// fall back on `eventTime` and the series, the count on the series or 1.
fn event_times(event: &Value) -> (String, String, i64) {
    let first = since(event.get("firstTimestamp"))
        .or_else(|| since(event.get("eventTime")))
        .unwrap_or_else(|| "<unknown>".to_owned());
    let series = event.get("series").filter(|s| s.is_object());
    let last = match series {
        Some(series) => {
            since(series.get("lastObservedTime")).unwrap_or_else(|| "<unknown>".to_owned())
        }
        None => since(event.get("lastTimestamp")).unwrap_or_else(|| first.clone()),
    };
    let count = match series {
        Some(series) => series.get("count").and_then(Value::as_i64).unwrap_or(0),
        None => event
            .get("count")
            .and_then(Value::as_i64)
            .filter(|c| *c != 0)
            .unwrap_or(1),
    };
    (first, last, count)
}

fn event_text(event: &Value, pointer: &str) -> String {
    event
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// `eventColumnDefinitions`, with the cells computed from the core form of the Event.
fn event_columns() -> Vec<Column> {
    let cell = |f: fn(&Value) -> Value| move |o: &Value| f(&crate::events::core_form(o));
    let wide = |mut c: Column| {
        c.priority = 1;
        c
    };
    let mut name = wide(column(
        "Name",
        "string",
        cell(|e| json!(event_text(e, "/metadata/name"))),
    ));
    "name".clone_into(&mut name.format);
    vec![
        column("Last Seen", "string", cell(|e| json!(event_times(e).1))),
        column("Type", "string", cell(|e| json!(event_text(e, "/type")))),
        column(
            "Reason",
            "string",
            cell(|e| json!(event_text(e, "/reason"))),
        ),
        column(
            "Object",
            "string",
            cell(|e| {
                let kind = event_text(e, "/involvedObject/kind").to_lowercase();
                let name = event_text(e, "/involvedObject/name");
                json!(if name.is_empty() {
                    kind
                } else {
                    format!("{kind}/{name}")
                })
            }),
        ),
        wide(column(
            "Subobject",
            "string",
            cell(|e| json!(event_text(e, "/involvedObject/fieldPath"))),
        )),
        wide(column(
            "Source",
            "string",
            cell(|e| {
                let first = |a: String, b: String| if a.is_empty() { b } else { a };
                let component = first(
                    event_text(e, "/source/component"),
                    event_text(e, "/reportingComponent"),
                );
                let instance = first(
                    event_text(e, "/source/host"),
                    event_text(e, "/reportingInstance"),
                );
                json!(if instance.is_empty() {
                    component
                } else {
                    format!("{component}, {instance}")
                })
            }),
        )),
        column(
            "Message",
            "string",
            cell(|e| json!(event_text(e, "/message").trim())),
        ),
        wide(column(
            "First Seen",
            "string",
            cell(|e| json!(event_times(e).0)),
        )),
        wide(column("Count", "string", cell(|e| json!(event_times(e).2)))),
        name,
    ]
}

fn count(value: Option<&Value>) -> Value {
    json!(
        value
            .and_then(Value::as_object)
            .map_or(0, serde_json::Map::len)
    )
}

fn printer_column(def: &Value) -> Option<Column> {
    let name = def.get("name")?.as_str()?.to_owned();
    let kind = def
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string")
        .to_owned();
    let steps = parse_jsonpath(def.get("jsonPath")?.as_str()?)?;
    let is_date = kind == "date";
    Some(Column {
        format: def
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        description: def
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        priority: def.get("priority").and_then(Value::as_i64).unwrap_or(0),
        kind: if is_date { "date".to_owned() } else { kind },
        name,
        cell: Box::new(move |obj| {
            let first = evaluate(&steps, obj).into_iter().next();
            match first {
                None => Value::Null,
                Some(v) if is_date => age(&v),
                Some(v) => v,
            }
        }),
    })
}

fn columns_for(rt: &ResourceType, version: &str) -> Vec<Column> {
    let mut columns = vec![name_column()];
    if let Some(defs) = rt
        .version(version)
        .map(|v| &v.printer_columns)
        .filter(|d| !d.is_empty())
    {
        columns.extend(defs.iter().filter_map(printer_column));
        return columns;
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("" | "events.k8s.io", "events") => return event_columns(),
        ("", "secrets") => {
            columns.push(column("Type", "string", |o| {
                o.get("type").cloned().unwrap_or(Value::Null)
            }));
            columns.push(column("Data", "string", |o| count(o.get("data"))));
        }
        ("", "configmaps") => columns.push(column("Data", "string", |o| count(o.get("data")))),
        ("", "namespaces") => {
            columns.push(column("Status", "string", |o| {
                o.pointer("/status/phase").cloned().unwrap_or(Value::Null)
            }));
        }
        ("apps", "deployments" | "statefulsets") => {
            columns.push(column("Ready", "string", |o| {
                let ready = o
                    .pointer("/status/readyReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let want = o
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                json!(format!("{ready}/{want}"))
            }));
        }
        ("coordination.k8s.io", "leases") => {
            columns.push(column("Holder", "string", |o| {
                o.pointer("/spec/holderIdentity")
                    .cloned()
                    .unwrap_or(Value::Null)
            }));
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            columns.push(column("Created At", "date", |o| {
                o.pointer("/metadata/creationTimestamp")
                    .cloned()
                    .unwrap_or(Value::Null)
            }));
            return columns;
        }
        _ => {}
    }
    columns.push(age_column());
    columns
}

/// How much of each object a Table row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// The `Accept` header asks for a Table.
pub(crate) fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    })
}

/// The `Accept` header asks for metadata only (`PartialObjectMetadata` or its list), as
/// kube-rs' metadata watchers and `kubectl get -o name` do.
pub(crate) fn wants_metadata_only(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"g=meta.k8s.io")
            && (params.contains(&"as=PartialObjectMetadata")
                || params.contains(&"as=PartialObjectMetadataList"))
    })
}

/// An object reduced to its metadata, as the real server answers metadata-only requests.
pub(crate) fn partial_metadata(object: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub(crate) const METADATA_CONTENT_TYPE: &str =
    "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io";
pub(crate) const METADATA_LIST_CONTENT_TYPE: &str =
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";

pub(crate) const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

pub(crate) fn table(
    rt: &ResourceType,
    version: &str,
    objects: &[Value],
    list_metadata: &Value,
    include: IncludeObject,
) -> Value {
    let columns = columns_for(rt, version);
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.kind, "format": c.format,
                   "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(obj)).collect();
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let mut metadata = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
                    if let Some(m) = metadata.as_object_mut() {
                        m.remove("managedFields");
                    }
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": metadata,
                    });
                }
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset_reads_conditions_and_fields() {
        let obj = json!({"status": {"expiresAt": "x", "conditions": [
            {"type": "Issuing", "status": "False"}, {"type": "Ready", "status": "True"}
        ]}});
        let ready = parse_jsonpath(r#".status.conditions[?(@.type=="Ready")].status"#).unwrap();
        assert_eq!(evaluate(&ready, &obj), vec![json!("True")]);
        let expires = parse_jsonpath(".status.expiresAt").unwrap();
        assert_eq!(evaluate(&expires, &obj), vec![json!("x")]);
        let first = parse_jsonpath("{.status.conditions[0].type}").unwrap();
        assert_eq!(evaluate(&first, &obj), vec![json!("Issuing")]);
        assert!(evaluate(&parse_jsonpath(".spec.missing").unwrap(), &obj).is_empty());
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(3600 * 5), "5h");
        assert_eq!(human_duration(3600 * 24 * 3 + 3600), "3d1h");
    }
}
