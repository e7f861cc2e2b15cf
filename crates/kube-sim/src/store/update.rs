//! Update (PUT of an object or its `/status`) and the end every modification shares: server-owned
//! fields kept, validation, generation, no-op detection, and the commit that may complete a
//! deletion or collect an orphan.

use serde_json::{Value, json};

use crate::apply;
use crate::error::SimError;
use crate::events;
use crate::gc;
use crate::resources::ResourceType;

use super::{Store, Target, WriteOptions, WriteOutcome, meta, output, set_meta, with_meta};

/// The object without fields that change on every write, to detect no-op writes.
fn comparable(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
            for entry in entries {
                if let Some(e) = entry.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    copy
}

/// The object without the parts whose changes do not bump `metadata.generation`.
fn generation_relevant(rt: &ResourceType, obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if rt.status_subresource {
            map.remove("status");
        }
    }
    copy
}

impl Store {
    /// Replaces an object (PUT), or its status (PUT `/status`).
    pub fn update(
        &mut self,
        target: &Target<'_>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, SimError> {
        let (rt, name) = (target.rt, target.name);
        if !obj.is_object() {
            return Err(SimError::bad_request(
                "the body of the request must be an object",
            ));
        }
        Self::check_identity(rt, target.version, &obj)?;
        let body_name = meta(&obj, "name").unwrap_or_default();
        if body_name != name {
            return Err(SimError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if rt.namespaced
            && let (Some(url_ns), Some(body_ns)) = (target.namespace, meta(&obj, "namespace"))
            && !body_ns.is_empty()
            && body_ns != url_ns
        {
            return Err(SimError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let Some(live) = self.lookup(&target.key()).cloned() else {
            return Err(SimError::not_found(rt.subject(name)));
        };
        let expected_rv = meta(&obj, "resourceVersion").unwrap_or_default();
        if !expected_rv.is_empty() && Some(&expected_rv) != meta(&live, "resourceVersion").as_ref()
        {
            return Err(SimError::stale_resource_version(rt.subject(name)));
        }
        self.finish_update(target, live, obj, opts)
    }

    /// The object a write of `incoming` produces: for `/status` the live object with the new
    /// status; for the main resource `incoming` with the live status and server-owned metadata.
    fn updated_object(
        target: &Target<'_>,
        live: &Value,
        incoming: Value,
    ) -> Result<Value, SimError> {
        let rt = target.rt;
        match target.subresource {
            Some("status") => {
                if !rt.status_subresource {
                    return Err(SimError::not_found(target.subject()));
                }
                let mut new = live.clone();
                match incoming.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        new.as_object_mut().map(|m| m.remove("status"));
                    }
                }
                if let Some(managed) = incoming.pointer("/metadata/managedFields") {
                    set_meta(&mut new, "managedFields", managed.clone());
                }
                Ok(new)
            }
            Some(other) => Err(SimError::not_found(
                rt.subject(&format!("{}/{other}", target.name)),
            )),
            None => Ok(Self::with_server_fields(rt, live, incoming)),
        }
    }

    /// A full-object write keeps the live status (with a status subresource) and the metadata
    /// fields only the server sets.
    fn with_server_fields(rt: &ResourceType, live: &Value, incoming: Value) -> Value {
        let mut new = incoming;
        if rt.status_subresource {
            match live.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    new.as_object_mut().map(|m| m.remove("status"));
                }
            }
        }
        let live_meta = live.get("metadata").cloned().unwrap_or_else(|| json!({}));
        with_meta(&mut new, |metadata| {
            for server_field in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
            ] {
                match live_meta.get(server_field) {
                    Some(v) => metadata.insert(server_field.to_owned(), v.clone()),
                    None => metadata.remove(server_field),
                };
            }
            if !metadata.get("managedFields").is_some_and(Value::is_array)
                && let Some(managed) = live_meta.get("managedFields")
            {
                metadata.insert("managedFields".to_owned(), managed.clone());
            }
        });
        new
    }

    /// The end of every modification: status subresource rules, server-owned metadata,
    /// validation, generation, finalizer-completed deletion, no-op detection, commit.
    pub(super) fn finish_update(
        &mut self,
        target: &Target<'_>,
        live: Value,
        incoming: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, SimError> {
        let (rt, version) = (target.rt, target.version);
        let incoming = events::to_storage(rt, incoming);
        let mut new = Self::updated_object(target, &live, incoming)?;
        new["apiVersion"] = json!(rt.api_version(version));
        new["kind"] = json!(rt.kind);
        // An apply rewrites managedFields itself; any other write carries them over unchanged
        // and takes over the fields it changes.
        if new.pointer("/metadata/managedFields") == live.pointer("/metadata/managedFields") {
            apply::release_changed_fields(&live, &mut new);
        }
        let warnings = Self::validate_object(
            rt,
            version,
            &mut new,
            Some(&live),
            opts,
            &mut self.cel_rules,
            // kube-apiserver checks a `/status` write against the status schema only.
            target.subresource == Some("status"),
        )?;
        if rt.tracks_generation && generation_relevant(rt, &new) != generation_relevant(rt, &live) {
            let generation = live
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut new, "generation", json!(generation + 1));
        }
        set_meta(
            &mut new,
            "resourceVersion",
            live.pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
        let object = if comparable(&new) == comparable(&live) {
            output(rt, version, &live)
        } else if opts.dry_run {
            output(rt, version, &new)
        } else {
            self.commit_update(target, live, new)
        };
        Ok(WriteOutcome {
            object,
            warnings,
            created: false,
        })
    }

    /// Stores a changed object; removes it when its last finalizer went while it was being
    /// deleted; collects it when all its owners are gone.
    fn commit_update(&mut self, target: &Target<'_>, live: Value, new: Value) -> Value {
        let rt = target.rt;
        let key = target.key();
        let finalized = live.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        let stored = self.commit(&key, new, Some(live));
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.registry.register_crd(&stored);
        }
        let object = output(rt, target.version, &stored);
        if finalized {
            self.remove(&key, false);
        } else {
            gc::collect_if_orphaned(self, &key);
        }
        object
    }
}
