//! Restoring objects as a restored etcd holds them ([`crate::KubeSim::restore`]): kept as they
//! were stored, with new resource versions, all or nothing.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::SimError;
use crate::events;
use crate::gc;
use crate::resources::{self, Registry, ResourceType};
use crate::store::{ObjectKey, Store, WriteOptions, meta, now, with_meta};

/// Where an object of a restore goes: CRDs first (their resources need them), then
/// namespaces (their objects need them), then everything else in the order given.
fn rank(obj: &Value) -> u8 {
    match (
        obj.get("apiVersion").and_then(Value::as_str),
        obj.get("kind").and_then(Value::as_str),
    ) {
        (Some("apiextensions.k8s.io/v1"), Some("CustomResourceDefinition")) => 0,
        (Some("v1"), Some("Namespace")) => 1,
        _ => 2,
    }
}

fn is_crd(rt: &ResourceType) -> bool {
    rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions"
}

/// The type of a restored object, among the built-in kinds and the CRDs stored or restored.
fn restored_type(
    registry: &Registry,
    obj: &Value,
) -> Result<(Arc<ResourceType>, String), SimError> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    registry
        .find_kind(group, version, kind)
        .map(|rt| (rt, version.to_owned()))
        .ok_or_else(|| {
            SimError::new(
                404,
                "NotFound",
                format!(
                    "the server could not find the requested resource ({kind} in {api_version}): restore its CustomResourceDefinition first or in the same call"
                ),
            )
        })
}

/// A restored object with the uniqueness checks of a create and of the uid index.
struct Restored {
    rt: Arc<ResourceType>,
    key: ObjectKey,
    object: Value,
}

impl Store {
    /// Stores `objects` as a restored etcd would hold them: `metadata.uid`,
    /// `creationTimestamp`, `generation`, labels, annotations, owner references, finalizers,
    /// `managedFields` and `status` kept as given (a missing uid, creation time or generation
    /// is filled in as a create would); new resource versions. Each object is validated as a
    /// create validates it (metadata, Secrets, custom resources against their CRD's schema and
    /// rules, status included) but stored without the defaulting or pruning validation does.
    /// Nothing is stored unless every object passes. Dependents whose owners are restored in
    /// the same call stay; orphans whose owners are nowhere are then collected as usual.
    pub fn restore(&mut self, objects: Vec<Value>) -> Result<(), SimError> {
        let mut objects = objects;
        objects.sort_by_key(rank);
        let mut registry = self.registry.clone();
        let mut restored: Vec<Restored> = Vec::new();
        let mut uids = HashSet::new();
        let mut namespaces = HashSet::new();
        for obj in objects {
            let (rt, version) = restored_type(&registry, &obj)?;
            let object = self.prepare_restored(&rt, &version, obj)?;
            let name = meta(&object, "name").unwrap_or_default();
            let namespace = meta(&object, "namespace").unwrap_or_default();
            if rt.namespaced
                && self.namespace_state(&namespace).is_none()
                && !namespaces.contains(&namespace)
            {
                return Err(SimError::namespace_not_found(&namespace));
            }
            let key = ObjectKey::of(&rt, &namespace, &name);
            if self.lookup(&key).is_some() || restored.iter().any(|r| r.key == key) {
                return Err(SimError::already_exists(rt.subject(&name)));
            }
            let uid = meta(&object, "uid").unwrap_or_default();
            if self.key_of_uid(&uid).is_some() || !uids.insert(uid.clone()) {
                return Err(SimError::conflict(
                    rt.subject(&name),
                    &format!("the uid {uid} is already in use"),
                ));
            }
            if rt.group.is_empty() && rt.plural == "namespaces" {
                namespaces.insert(name);
            } else if is_crd(&rt) {
                registry.register_crd(&object);
            }
            restored.push(Restored { rt, key, object });
        }
        for Restored { rt, key, object } in &restored {
            let stored = self.commit(key, object.clone(), None);
            if is_crd(rt) {
                self.registry.register_crd(&stored);
            }
        }
        for Restored { key, .. } in &restored {
            gc::collect_if_orphaned(self, key);
        }
        Ok(())
    }

    /// The object to store for a restored one, once it passed a create's validation.
    fn prepare_restored(
        &mut self,
        rt: &ResourceType,
        version: &str,
        obj: Value,
    ) -> Result<Value, SimError> {
        if !obj.is_object() {
            return Err(SimError::bad_request("a restored object must be an object"));
        }
        Self::check_identity(rt, version, &obj)?;
        let mut obj = events::to_storage(rt, obj);
        let uid = self.new_uid();
        let now = now();
        let namespaced = rt.namespaced;
        let tracks_generation = rt.tracks_generation;
        let namespace = with_meta(&mut obj, |metadata| {
            metadata.remove("resourceVersion");
            metadata.remove("selfLink");
            metadata.entry("uid").or_insert_with(|| json!(uid));
            metadata
                .entry("creationTimestamp")
                .or_insert_with(|| json!(now));
            if tracks_generation {
                metadata.entry("generation").or_insert_with(|| json!(1));
            }
            if !namespaced {
                metadata.remove("namespace");
            }
            metadata
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        });
        if namespaced && namespace.is_empty() {
            return Err(SimError::bad_request(
                "a namespace must be given for a namespaced resource",
            ));
        }
        obj["apiVersion"] = json!(rt.api_version(version));
        obj["kind"] = json!(rt.kind);
        if is_crd(rt) && obj.get("status").is_none_or(Value::is_null) {
            obj["status"] = resources::crd_status(&obj, &now);
        }
        let mut checked = obj.clone();
        Self::validate_object(
            rt,
            version,
            &mut checked,
            None,
            &WriteOptions::default(),
            &mut self.cel_rules,
            false,
        )?;
        Ok(obj)
    }
}
