//! The test-facing object API: read, create, replace, patch, apply manifests, restore and
//! delete objects as the HTTP API would, and wait for a state.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::SimError;
use crate::patch::PatchKind;
use crate::store::{DeleteOptions, Target, WriteOptions};
use crate::validation::CelRuleRuns;
use crate::{KubeSim, resources, selectors, store, yaml};

fn object_name(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

fn unknown_resource(api_version: &str, what: &str) -> SimError {
    SimError::new(
        404,
        "NotFound",
        format!("the server could not find the requested resource ({what} in {api_version})"),
    )
}

impl KubeSim {
    fn resource(
        &self,
        api_version: &str,
        plural: &str,
    ) -> Result<Arc<resources::ResourceType>, SimError> {
        let (group, version) = split_api_version(api_version);
        self.shared
            .lock_store()
            .registry
            .find(group, version, plural)
            .ok_or_else(|| unknown_resource(api_version, plural))
    }

    fn resource_of(&self, obj: &Value) -> Result<(Arc<resources::ResourceType>, String), SimError> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let (group, version) = split_api_version(api_version);
        let rt = self
            .shared
            .lock_store()
            .registry
            .find_kind(group, version, kind)
            .ok_or_else(|| unknown_resource(api_version, kind))?;
        Ok((rt, version.to_owned()))
    }

    fn namespace_of(rt: &resources::ResourceType, obj: &Value) -> Option<String> {
        rt.namespaced.then(|| {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .unwrap_or("default")
                .to_owned()
        })
    }

    /// One object as a client of `api_version` would read it.
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let rt = self.resource(api_version, plural).ok()?;
        let (_, version) = split_api_version(api_version);
        self.shared
            .lock_store()
            .get(&rt, version, namespace, name)
            .ok()
    }

    /// All objects of a type, in one namespace or (with `None`) all.
    pub fn list(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Ok(rt) = self.resource(api_version, plural) else {
            return Vec::new();
        };
        let (_, version) = split_api_version(api_version);
        let store = self.shared.lock_store();
        store
            .snapshot(
                &rt,
                namespace,
                &selectors::LabelSelector::default(),
                &selectors::FieldSelector::default(),
            )
            .iter()
            .map(|obj| store::output(&rt, version, obj))
            .collect()
    }

    /// Creates an object (`apiVersion`, `kind` and `metadata.namespace`, default `default`,
    /// from the object) as a POST would, including validation and defaulting.
    pub fn create(&self, obj: Value) -> Result<Value, SimError> {
        let (rt, version) = self.resource_of(&obj)?;
        let ns = Self::namespace_of(&rt, &obj);
        self.shared
            .write(|store| {
                store.create(&rt, &version, ns.as_deref(), obj, &WriteOptions::default())
            })
            .map(|o| o.object)
    }

    /// Replaces an object as a PUT would (a stale `metadata.resourceVersion` conflicts; an
    /// absent one replaces unconditionally); when the type has a status subresource and the
    /// object carries a status, the status is written too, so the stored object matches.
    pub fn replace(&self, obj: Value) -> Result<Value, SimError> {
        let (rt, version) = self.resource_of(&obj)?;
        let ns = Self::namespace_of(&rt, &obj);
        let name = object_name(&obj);
        let status = obj.get("status").cloned();
        let opts = WriteOptions::default();
        let mut target = Target {
            rt: &rt,
            version: &version,
            namespace: ns.as_deref(),
            name: &name,
            subresource: None,
        };
        self.shared.write(|store| {
            let mut written = store.update(&target, obj, &opts)?.object;
            if rt.status_subresource
                && let Some(status) = status
            {
                let mut with_status = written.clone();
                with_status["status"] = status;
                target.subresource = Some("status");
                written = store.update(&target, with_status, &opts)?.object;
            }
            Ok(written)
        })
    }

    /// Replaces only the status (PUT `/status`).
    pub fn replace_status(&self, obj: Value) -> Result<Value, SimError> {
        let (rt, version) = self.resource_of(&obj)?;
        let ns = Self::namespace_of(&rt, &obj);
        let name = object_name(&obj);
        let target = Target {
            rt: &rt,
            version: &version,
            namespace: ns.as_deref(),
            name: &name,
            subresource: Some("status"),
        };
        self.shared
            .write(|store| store.update(&target, obj, &WriteOptions::default()))
            .map(|o| o.object)
    }

    /// Patches an object (or, with `subresource = Some("status")`, its status). Apply patches
    /// are made by the field manager `kube-sim-test` with `force=true`.
    #[allow(clippy::too_many_arguments)] // a stable public signature the operator's tests use
    pub fn patch(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        subresource: Option<&str>,
    ) -> Result<Value, SimError> {
        let rt = self.resource(api_version, plural)?;
        let (_, version) = split_api_version(api_version);
        let opts = WriteOptions {
            field_manager: Some("kube-sim-test".to_owned()),
            force: true,
            ..WriteOptions::default()
        };
        let target = Target {
            rt: &rt,
            version,
            namespace,
            name,
            subresource,
        };
        self.shared
            .write(|store| store.patch(&target, kind, patch, &opts))
            .map(|o| o.object)
    }

    /// Create-or-replace every object of a (multi-document) YAML manifest, CRDs included;
    /// statuses given in the manifest are written too.
    pub fn apply_yaml(&self, yaml: &str) -> Result<(), SimError> {
        for obj in yaml::parse_manifests(yaml)? {
            let (rt, version) = self.resource_of(&obj)?;
            let ns = Self::namespace_of(&rt, &obj);
            let name = object_name(&obj);
            if self
                .shared
                .lock_store()
                .get(&rt, &version, ns.as_deref(), &name)
                .is_ok()
            {
                let mut unconditional = obj;
                if let Some(meta) = unconditional
                    .get_mut("metadata")
                    .and_then(Value::as_object_mut)
                {
                    meta.remove("resourceVersion");
                }
                self.replace(unconditional)?;
            } else {
                let status = obj.get("status").cloned();
                let created = self.create(obj)?;
                if let Some(status) = status.filter(|_| rt.status_subresource) {
                    let mut with_status = created;
                    with_status["status"] = status;
                    self.replace_status(with_status)?;
                }
            }
        }
        Ok(())
    }

    /// Loads objects as a restored etcd holds them, e.g. a cluster's state captured by an older
    /// release: `metadata.uid`, `creationTimestamp`, `generation`, labels, annotations, owner
    /// references, finalizers, `managedFields` and `status` are kept as given (a missing uid,
    /// creation time or generation is filled in as a create would); each object gets a new
    /// resource version. Every object is validated as a create validates it (object metadata,
    /// Secrets, custom resources against their CRD's schema and rules, status included), but
    /// stored as given: no defaulting or pruning. Custom resources need their CRD, stored
    /// before or in the same call; namespaced objects their namespace, likewise (CRDs, then
    /// namespaces, are stored first). An object that already exists (same name, or same uid)
    /// fails the call, and nothing is stored unless every object passes. Owner references
    /// between restored objects hold (no garbage collection of a dependent whose owner is in
    /// the same call); objects whose owners exist nowhere are collected afterwards, as usual
    /// (see [`KubeSim::set_orphan_collection`]). Watches see each object as `ADDED`.
    pub fn restore(&self, objects: Vec<Value>) -> Result<(), SimError> {
        self.shared.write(|store| store.restore(objects))
    }

    /// [`KubeSim::restore`] of every object of a (multi-document) YAML file.
    pub fn restore_yaml(&self, yaml: &str) -> Result<(), SimError> {
        self.restore(yaml::parse_manifests(yaml)?)
    }

    /// Deletes as a DELETE would: finalizers are honoured, dependents are garbage collected.
    pub fn delete(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), SimError> {
        let rt = self.resource(api_version, plural)?;
        let (_, version) = split_api_version(api_version);
        self.shared
            .write(|store| store.delete(&rt, version, namespace, name, &DeleteOptions::default()))
            .map(|_| ())
    }

    /// Waits until the object exists and satisfies `predicate`, at most `timeout`.
    pub async fn wait_for(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        timeout: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> Result<Value, SimError> {
        let mut last = None;
        let met = self
            .wait_until(timeout, |sim| {
                last = sim.get(api_version, plural, namespace, name);
                last.as_ref().is_some_and(&predicate)
            })
            .await;
        match (met, last) {
            (true, Some(obj)) => Ok(obj),
            (_, last) => Err(SimError::new(
                504,
                "Timeout",
                format!(
                    "{plural} {}/{name} did not reach the expected state within {timeout:?}; last seen: {}",
                    namespace.unwrap_or(""),
                    last.map_or_else(|| "absent".to_owned(), |o| o.to_string())
                ),
            )),
        }
    }

    /// Re-checks `condition` after every change until it holds; `false` after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> bool {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if condition(self) {
                return true;
            }
            let woke = tokio::time::timeout_at(deadline, changes.changed()).await;
            if woke.is_err() {
                return condition(self);
            }
        }
    }

    /// The current (latest) resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock_store().current_rv()
    }

    /// Every `x-kubernetes-validations` rule the simulator met since it started, per resource,
    /// field and rule, with how often it held, refused, failed to evaluate, or was skipped as
    /// outside the simulator's CEL subset (`unsupported`, also logged). A test can assert that
    /// each rule of its CRDs was really evaluated, both ways.
    pub fn cel_rule_runs(&self) -> Vec<CelRuleRuns> {
        self.shared
            .lock_store()
            .cel_rules
            .values()
            .cloned()
            .collect()
    }
}
