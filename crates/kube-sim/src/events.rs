//! One store for both Event APIs, as kube-apiserver keeps them: an Event written through core
//! `v1` or `events.k8s.io/v1` is stored once, in the core form, and read, listed and watched
//! through either; `events.k8s.io/v1` requests convert on the way in and out.
//!
//! Sources (Kubernetes 1.34):
//! - the conversion, `Convert_v1_Event_To_core_Event` and `Convert_core_Event_To_v1_Event` in
//!   `pkg/apis/events/v1/conversion.go`: `regarding` ↔ `involvedObject`, `deprecatedSource` ↔
//!   `source` (`component`, `host`), `note` ↔ `message`, `deprecatedFirstTimestamp`,
//!   `deprecatedLastTimestamp`, `deprecatedCount` ↔ `firstTimestamp`, `lastTimestamp`,
//!   `count`; the generated part copies `eventTime`, `series`, `related`, `action`, `reason`,
//!   `type`, `reportingInstance` and `reportingController`, whose core `v1` JSON name is
//!   `reportingComponent` (same Go field `ReportingController`). `source.component` is *not*
//!   converted to `reportingController`: it is `deprecatedSource.component`;
//! - the JSON each version writes (`k8s.io/api/core/v1` and `k8s.io/api/events/v1` types):
//!   struct fields are always written (`involvedObject`/`regarding`, `source`/
//!   `deprecatedSource` as `{}`, unset times as `null`), as are core `reportingComponent` and
//!   `reportingInstance`; other strings and counts are left out when empty;
//! - field selectors, `ToSelectableFields` in `pkg/registry/core/event/strategy.go`
//!   (`involvedObject.{kind,namespace,name,uid,apiVersion,resourceVersion,fieldPath}`,
//!   `reason`, `reportingComponent`, `source` = `source.component` or else the reporting
//!   controller, `type`, `metadata.name`, `metadata.namespace`), and the field label
//!   conversion of `events.k8s.io/v1` (`AddFieldLabelConversionsForEvent`: `regarding.*` and
//!   `reportingController` for the core names). Any other label is a 400
//!   `field label not supported`.

use serde_json::{Map, Value, json};

use crate::error::SimError;
use crate::resources::ResourceType;
use crate::selectors::FieldSelector;

const EVENTS_GROUP: &str = "events.k8s.io";

/// (core `v1` field, `events.k8s.io/v1` field) where the names differ.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Fields the core `v1` JSON always carries, with their empty value.
const CORE_ALWAYS: &[(&str, Empty)] = &[
    ("involvedObject", Empty::Object),
    ("source", Empty::Object),
    ("firstTimestamp", Empty::Null),
    ("lastTimestamp", Empty::Null),
    ("eventTime", Empty::Null),
    ("reportingComponent", Empty::String),
    ("reportingInstance", Empty::String),
];

/// Fields the `events.k8s.io/v1` JSON always carries, with their empty value.
const EVENTS_ALWAYS: &[(&str, Empty)] = &[
    ("eventTime", Empty::Null),
    ("regarding", Empty::Object),
    ("deprecatedSource", Empty::Object),
    ("deprecatedFirstTimestamp", Empty::Null),
    ("deprecatedLastTimestamp", Empty::Null),
];

/// The field labels of core `v1` Events.
const CORE_LABELS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.name",
    "metadata.namespace",
];

#[derive(Clone, Copy)]
enum Empty {
    Object,
    Null,
    String,
}

impl Empty {
    fn value(self) -> Value {
        match self {
            Self::Object => json!({}),
            Self::Null => Value::Null,
            Self::String => json!(""),
        }
    }
}

/// Whether `group`/`plural` is `events.k8s.io` Events, stored as core Events.
pub(crate) fn is_events_v1(group: &str, plural: &str) -> bool {
    group == EVENTS_GROUP && plural == "events"
}

fn is_event(rt: &ResourceType) -> bool {
    rt.plural == "events" && (rt.group.is_empty() || rt.group == EVENTS_GROUP)
}

/// Moves each field from its name in one version to its name in the other; fields that exist
/// only in the target version are dropped, as decoding drops unknown fields.
fn rename(map: &mut Map<String, Value>, to_events: bool) {
    let (from, to): (Vec<&str>, Vec<&str>) = RENAMED
        .iter()
        .map(|(core, events)| {
            if to_events {
                (*core, *events)
            } else {
                (*events, *core)
            }
        })
        .unzip();
    let moved: Vec<(&str, Option<Value>)> = from
        .iter()
        .zip(&to)
        .map(|(from, to)| (*to, map.remove(*from)))
        .collect();
    for (to, value) in moved {
        map.remove(to);
        if let Some(value) = value.filter(|v| !v.is_null()) {
            map.insert(to.to_owned(), value);
        }
    }
}

/// The JSON a Go client of that version gets: struct fields always, empty strings and zero
/// counts left out (unless always written).
fn normalize(map: &mut Map<String, Value>, always: &[(&str, Empty)]) {
    map.retain(|key, value| {
        always.iter().any(|(name, _)| name == key)
            || !(value.as_str() == Some("")
                || (matches!(key.as_str(), "count" | "deprecatedCount")
                    && value.as_i64() == Some(0))
                || value.is_null())
    });
    for (name, empty) in always {
        let value = map.entry((*name).to_owned()).or_insert(Value::Null);
        if value.is_null() {
            *value = empty.value();
        }
    }
}

/// The stored (core `v1`) form of an Event written through `rt`; other objects unchanged.
pub(crate) fn to_storage(rt: &ResourceType, mut obj: Value) -> Value {
    if !is_event(rt) {
        return obj;
    }
    if let Some(map) = obj.as_object_mut() {
        if rt.group == EVENTS_GROUP {
            rename(map, false);
        }
        normalize(map, CORE_ALWAYS);
    }
    obj
}

/// A stored Event as a client of `rt` reads it; other objects unchanged.
pub(crate) fn from_storage(rt: &ResourceType, mut obj: Value) -> Value {
    if is_events_v1(&rt.group, &rt.plural)
        && let Some(map) = obj.as_object_mut()
    {
        rename(map, true);
        normalize(map, EVENTS_ALWAYS);
    }
    obj
}

/// The core form of an Event read through either API (for table cells).
pub(crate) fn core_form(obj: &Value) -> Value {
    let mut core = obj.clone();
    if obj.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1")
        && let Some(map) = core.as_object_mut()
    {
        rename(map, false);
    }
    core
}

/// A field selector on Events of `rt` as it applies to the stored core form: labels checked
/// and renamed, `source` read as `source.component`, else `reportingComponent`.
pub(crate) fn field_selector(
    rt: &ResourceType,
    selector: FieldSelector,
) -> Result<FieldSelector, SimError> {
    if !is_event(rt) {
        return Ok(selector);
    }
    let events_v1 = rt.group == EVENTS_GROUP;
    selector.map_paths(|label| {
        let core_label = if events_v1 {
            match label {
                "reportingController" => "reportingComponent".to_owned(),
                "reportingComponent" => String::new(),
                _ => match (
                    label.strip_prefix("regarding."),
                    label.strip_prefix("involvedObject."),
                ) {
                    (Some(field), _) => format!("involvedObject.{field}"),
                    (None, Some(_)) => String::new(),
                    (None, None) => label.to_owned(),
                },
            }
        } else {
            label.to_owned()
        };
        if !CORE_LABELS.contains(&core_label.as_str()) {
            return Err(SimError::bad_request(format!(
                "field label not supported: {label}"
            )));
        }
        Ok(if core_label == "source" {
            FieldSelector::first_of(&["source.component", "reportingComponent"])
        } else {
            core_label
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn types() -> (std::sync::Arc<ResourceType>, std::sync::Arc<ResourceType>) {
        let registry = Registry::with_builtins();
        (
            registry.find("", "v1", "events").unwrap(),
            registry.find(EVENTS_GROUP, "v1", "events").unwrap(),
        )
    }

    #[test]
    fn an_events_v1_event_is_stored_in_the_core_form_and_read_back() {
        let (core, events) = types();
        let written = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "ns"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "ctl", "reportingInstance": "pod-1",
            "action": "Issue", "reason": "Issued", "type": "Normal", "note": "done",
            "regarding": {"kind": "Widget", "name": "w", "namespace": "ns"},
            "related": {"kind": "Secret", "name": "s"},
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
            "deprecatedSource": {"component": "old", "host": "node"},
            "deprecatedCount": 3,
            "message": "dropped: not an events.k8s.io/v1 field",
        });
        let stored = to_storage(&events, written.clone());
        assert_eq!(
            stored,
            json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": "e", "namespace": "ns"},
                "eventTime": "2026-01-01T00:00:00.000000Z",
                "reportingComponent": "ctl", "reportingInstance": "pod-1",
                "action": "Issue", "reason": "Issued", "type": "Normal", "message": "done",
                "involvedObject": {"kind": "Widget", "name": "w", "namespace": "ns"},
                "related": {"kind": "Secret", "name": "s"},
                "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"},
                "source": {"component": "old", "host": "node"},
                "count": 3,
                "firstTimestamp": null, "lastTimestamp": null,
            })
        );
        let mut expected = written;
        expected.as_object_mut().unwrap().remove("message");
        expected["deprecatedFirstTimestamp"] = Value::Null;
        expected["deprecatedLastTimestamp"] = Value::Null;
        assert_eq!(from_storage(&events, stored.clone()), expected);
        assert_eq!(from_storage(&core, stored.clone()), stored);
    }

    #[test]
    fn a_core_event_reads_as_events_v1_without_empty_fields() {
        let (core, events) = types();
        let stored = to_storage(
            &core,
            json!({"metadata": {"name": "e"}, "message": "m", "reason": "R",
                   "involvedObject": {"kind": "Pod", "name": "p"},
                   "source": {"component": "kubelet"}, "count": 1,
                   "firstTimestamp": "2026-01-01T00:00:00Z"}),
        );
        assert_eq!(stored["reportingComponent"], "");
        assert_eq!(stored["eventTime"], Value::Null);
        let read = from_storage(&events, stored);
        assert_eq!(
            read,
            json!({"metadata": {"name": "e"}, "note": "m", "reason": "R",
                   "regarding": {"kind": "Pod", "name": "p"},
                   "deprecatedSource": {"component": "kubelet"}, "deprecatedCount": 1,
                   "deprecatedFirstTimestamp": "2026-01-01T00:00:00Z",
                   "deprecatedLastTimestamp": null, "eventTime": null})
        );
    }

    #[test]
    fn field_selectors_use_the_labels_of_each_version() {
        let (core, events) = types();
        let stored = to_storage(
            &core,
            json!({"metadata": {"name": "e", "namespace": "ns"}, "reason": "R",
                   "involvedObject": {"kind": "Widget", "name": "w", "uid": "u"},
                   "reportingComponent": "ctl"}),
        );
        let matches = |rt: &ResourceType, selector: &str| {
            field_selector(rt, FieldSelector::parse(selector).unwrap())
                .map(|s| s.matches(&stored))
                .map_err(|e| e.message)
        };
        assert_eq!(
            matches(&core, "involvedObject.name=w,involvedObject.uid=u,reason=R"),
            Ok(true)
        );
        assert_eq!(matches(&core, "source=ctl"), Ok(true));
        assert_eq!(matches(&core, "involvedObject.kind=Pod"), Ok(false));
        assert_eq!(
            matches(&events, "regarding.name=w,reportingController=ctl"),
            Ok(true)
        );
        assert_eq!(
            matches(&events, "involvedObject.name=w"),
            Err("field label not supported: involvedObject.name".to_owned())
        );
        assert_eq!(
            matches(&core, "message=m"),
            Err("field label not supported: message".to_owned())
        );
    }
}
