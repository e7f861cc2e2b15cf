//! The columns of a Table: name and age for every kind, the fixed columns of built-in kinds
//! and of Events, and a CRD's `additionalPrinterColumns`; ages as kubectl prints them.

use serde_json::{Value, json};

use crate::resources::ResourceType;

use super::jsonpath::{evaluate, parse_jsonpath};

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

pub(super) struct Column {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) format: String,
    pub(super) description: String,
    pub(super) priority: i64,
    pub(super) cell: Box<dyn Fn(&Value) -> Value>,
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

pub(super) fn columns_for(rt: &ResourceType, version: &str) -> Vec<Column> {
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
