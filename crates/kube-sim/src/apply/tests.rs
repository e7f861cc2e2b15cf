//! Managed fields round trips, re-applies, updates that take fields over, and conflicts.

use super::*;

fn run(
    live: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, Vec<ApplyConflict>> {
    apply(&ApplyRequest {
        live,
        applied,
        manager,
        force,
        scope: ApplyScope::Main {
            without_status: false,
        },
        api_version: "v1",
        now: "2024-01-01T00:00:00Z",
    })
}

#[test]
fn fields_v1_round_trips() {
    let paths = leaf_paths(
        &json!({"apiVersion": "v1", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}}),
    );
    assert_eq!(from_fields_v1(&to_fields_v1(&paths)), paths);
    assert_eq!(paths.len(), 2);
}

#[test]
fn reapply_removes_fields_the_manager_dropped() {
    let live = json!({"metadata": {"name": "s"}});
    let first = run(
        &live,
        &json!({"metadata": {"name": "s"}, "data": {"a": "1", "b": "2"}}),
        "op",
        false,
    )
    .unwrap();
    let second = run(
        &first,
        &json!({"metadata": {"name": "s"}, "data": {"a": "3"}}),
        "op",
        false,
    )
    .unwrap();
    assert_eq!(second["data"], json!({"a": "3"}));
}

#[test]
fn an_update_takes_over_the_fields_it_changes() {
    let first = run(
        &json!({"metadata": {"name": "x"}}),
        &json!({"data": {"a": "1", "b": "1"}}),
        "one",
        false,
    )
    .unwrap();
    let mut updated = first.clone();
    updated["data"]["a"] = json!(null);
    updated["data"].as_object_mut().unwrap().remove("a");
    release_changed_fields(&first, &mut updated);
    // "a" was removed by the update: another manager may apply it without a conflict.
    assert!(run(&updated, &json!({"data": {"a": "2"}}), "two", false).is_ok());
    // "b" is still owned by "one".
    assert!(run(&updated, &json!({"data": {"b": "2"}}), "two", false).is_err());
}

#[test]
fn other_managers_conflict_unless_forced() {
    let live = json!({"metadata": {"name": "s"}});
    let first = run(&live, &json!({"data": {"a": "1"}}), "one", false).unwrap();
    let conflicts = run(&first, &json!({"data": {"a": "2"}}), "two", false).unwrap_err();
    assert_eq!(
        conflicts,
        vec![ApplyConflict {
            manager: "one".into(),
            field: ".data.a".into()
        }]
    );
    let forced = run(&first, &json!({"data": {"a": "2"}}), "two", true).unwrap();
    assert_eq!(forced["data"]["a"], "2");
    // the same value is shared ownership, not a conflict
    assert!(run(&first, &json!({"data": {"a": "1"}}), "two", false).is_ok());
}
