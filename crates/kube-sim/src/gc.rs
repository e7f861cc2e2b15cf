//! Garbage collection: owner references (background cascading deletion, orphaning), objects
//! whose owners are all gone, namespace termination and CRD removal.

use serde_json::{Value, json};

use crate::store::{ObjectKey, Store, now};

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes (or, when orphaning, detaches) every object that names `uid` as an owner.
pub(crate) fn collect_dependents(store: &mut Store, uid: &str, orphan: bool) {
    if uid.is_empty() {
        return;
    }
    let dependents: Vec<ObjectKey> = store
        .all_keys()
        .into_iter()
        .filter(|key| {
            store
                .lookup(key)
                .is_some_and(|obj| owner_uids(obj).iter().any(|u| u == uid))
        })
        .collect();
    for key in dependents {
        if orphan {
            let Some(mut obj) = store.lookup(&key).cloned() else {
                continue;
            };
            if let Some(refs) = obj
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            }
            store.rewrite(&key, obj);
        } else {
            store.delete_key(&key, false);
        }
    }
}

/// The garbage collector deletes an object whose owners all no longer exist. Only owners of
/// a kind the simulator serves are considered, so references to unknown kinds keep objects.
pub(crate) fn collect_if_orphaned(store: &mut Store, key: &ObjectKey) {
    if !store.collect_orphans {
        return;
    }
    let Some(obj) = store.lookup(key) else { return };
    let Some(refs) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    else {
        return;
    };
    if refs.is_empty() {
        return;
    }
    let all_gone = refs.iter().all(|r| {
        let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let known_kind = store.registry.find_kind(group, version, kind).is_some();
        let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
        known_kind && store.key_of_uid(uid).is_none()
    });
    if all_gone {
        store.delete_key(key, false);
    }
}

/// Removes every custom resource of a deleted CRD.
pub(crate) fn remove_custom_resources(store: &mut Store, crd: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    for key in store.keys_of_type(&(group.to_owned(), plural.to_owned())) {
        store.remove(&key, false);
    }
}

/// Namespace deletion: the namespace turns `Terminating`, its objects are deleted (objects
/// with finalizers wait for them), and the namespace goes away once it is empty.
pub(crate) fn terminate_namespace(store: &mut Store, key: &ObjectKey, live: Value) -> Value {
    let mut terminating = live;
    terminating["metadata"]["deletionTimestamp"] = json!(now());
    terminating["status"] = json!({"phase": "Terminating"});
    let marked = store
        .rewrite(key, terminating.clone())
        .unwrap_or(terminating);
    let contents: Vec<ObjectKey> = store
        .all_keys()
        .into_iter()
        .filter(|k| k.namespace == key.name)
        .collect();
    for content in contents {
        store.delete_key(&content, false);
    }
    finish_namespace_if_empty(store, &key.name);
    store.lookup(key).cloned().unwrap_or(marked)
}

pub(crate) fn finish_namespace_if_empty(store: &mut Store, namespace: &str) {
    let key = ObjectKey {
        group: String::new(),
        plural: "namespaces".to_owned(),
        namespace: String::new(),
        name: namespace.to_owned(),
    };
    let terminating = store
        .lookup(&key)
        .is_some_and(|ns| ns.pointer("/metadata/deletionTimestamp").is_some());
    if terminating && !store.all_keys().iter().any(|k| k.namespace == namespace) {
        store.remove(&key, false);
    }
}
