//! Deletes: preconditions, finalizers (a deletion timestamp instead of a removal), namespaces
//! that terminate, and what a dry run answers.

use serde_json::{Value, json};

use crate::error::SimError;
use crate::gc;
use crate::resources::ResourceType;

use super::{DeleteOptions, ObjectKey, Store, meta, now, output, with_meta};

impl Store {
    /// Deletes respecting finalizers: an object with finalizers only gets a deletionTimestamp.
    pub(crate) fn delete_key(&mut self, key: &ObjectKey, orphan_dependents: bool) -> Option<Value> {
        let live = self.lookup(key)?.clone();
        let has_finalizers = live
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if live.pointer("/metadata/deletionTimestamp").is_some() {
                return Some(live);
            }
            let mut marked = live.clone();
            let now = now();
            with_meta(&mut marked, |metadata| {
                metadata.insert("deletionTimestamp".to_owned(), json!(now));
                metadata.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
                if let Some(generation) = metadata.get("generation").and_then(Value::as_i64) {
                    metadata.insert("generation".to_owned(), json!(generation + 1));
                }
            });
            return Some(self.commit(key, marked, Some(live)));
        }
        if key.group.is_empty() && key.plural == "namespaces" {
            return Some(gc::terminate_namespace(self, key, live));
        }
        self.remove(key, orphan_dependents)
    }

    pub fn delete(
        &mut self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, SimError> {
        let key = ObjectKey::of(rt, ns.unwrap_or(""), name);
        let Some(live) = self.lookup(&key).cloned() else {
            return Err(SimError::not_found(rt.subject(name)));
        };
        if let Some(uid) = opts.uid.as_ref().filter(|u| !u.is_empty())
            && Some(uid) != meta(&live, "uid").as_ref()
        {
            return Err(SimError::conflict(
                rt.subject(name),
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta(&live, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = opts.resource_version.as_ref().filter(|r| !r.is_empty())
            && Some(rv) != meta(&live, "resourceVersion").as_ref()
        {
            return Err(SimError::conflict(
                rt.subject(name),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta(&live, "resourceVersion").unwrap_or_default()
                ),
            ));
        }
        if opts.dry_run {
            return Ok(output(rt, version, &Self::deletion_preview(&key, live)));
        }
        let result = self.delete_key(&key, opts.orphan).unwrap_or(live);
        Ok(output(rt, version, &result))
    }

    /// What a delete answers with, without deleting: an object with finalizers (and a
    /// namespace) gets a deletion timestamp; anything else is answered as it is.
    fn deletion_preview(key: &ObjectKey, live: Value) -> Value {
        let has_finalizers = live
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let is_namespace = key.group.is_empty() && key.plural == "namespaces";
        if live.pointer("/metadata/deletionTimestamp").is_some()
            || !(has_finalizers || is_namespace)
        {
            return live;
        }
        let mut marked = live;
        let now = now();
        with_meta(&mut marked, |metadata| {
            metadata.insert("deletionTimestamp".to_owned(), json!(now));
            if has_finalizers {
                metadata.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
                if let Some(generation) = metadata.get("generation").and_then(Value::as_i64) {
                    metadata.insert("generation".to_owned(), json!(generation + 1));
                }
            }
        });
        if is_namespace {
            marked["status"] = json!({"phase": "Terminating"});
        }
        marked
    }
}
