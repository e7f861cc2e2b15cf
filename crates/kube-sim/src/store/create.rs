//! Create: the namespace a new object goes to, the fields the server sets on it, validation,
//! and the commit (or, in a dry run, the preview).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::SimError;
use crate::events;
use crate::gc;
use crate::resources::{self, ResourceType};

use super::{ObjectKey, Store, WriteOptions, WriteOutcome, meta, now, output, set_meta, with_meta};

impl Store {
    pub fn create(
        &mut self,
        rt: &Arc<ResourceType>,
        version: &str,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, SimError> {
        if !obj.is_object() {
            return Err(SimError::bad_request(
                "the body of the request must be an object",
            ));
        }
        Self::check_identity(rt, version, &obj)?;
        let mut obj = events::to_storage(rt, obj);
        let namespace = self.namespace_for_create(rt, ns, &mut obj)?;
        if meta(&obj, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
            return Err(SimError::new(
                500,
                "InternalError",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut name = meta(&obj, "name").unwrap_or_default();
        if name.is_empty()
            && let Some(prefix) = meta(&obj, "generateName").filter(|p| !p.is_empty())
        {
            name = format!("{prefix}{}", self.generated_suffix());
            set_meta(&mut obj, "name", json!(name));
        }
        let now = now();
        let uid = self.new_uid();
        Self::stamp_created(rt, version, &mut obj, &uid, &now);
        let warnings = Self::validate_object(
            rt,
            version,
            &mut obj,
            None,
            opts,
            &mut self.cel_rules,
            false,
        )?;
        let key = ObjectKey::of(rt, &namespace, &name);
        if self.lookup(&key).is_some() {
            return Err(SimError::already_exists(rt.subject(&name)));
        }
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "namespaces") => obj["status"] = json!({"phase": "Active"}),
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                obj["status"] = resources::crd_status(&obj, &now);
            }
            _ => {}
        }
        if opts.dry_run {
            return Ok(WriteOutcome {
                object: output(rt, version, &obj),
                warnings,
                created: true,
            });
        }
        let stored = self.commit(&key, obj, None);
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.registry.register_crd(&stored);
        }
        let object = output(rt, version, &stored);
        gc::collect_if_orphaned(self, &key);
        Ok(WriteOutcome {
            object,
            warnings,
            created: true,
        })
    }

    /// The namespace a new object goes to (URL first, then the body), which must exist and
    /// not be terminating; written into the object's metadata.
    fn namespace_for_create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        obj: &mut Value,
    ) -> Result<String, SimError> {
        if !rt.namespaced {
            with_meta(obj, |m| m.remove("namespace"));
            return Ok(String::new());
        }
        let url_ns = ns.unwrap_or("");
        let body_ns = meta(obj, "namespace").unwrap_or_default();
        if !body_ns.is_empty() && !url_ns.is_empty() && body_ns != url_ns {
            return Err(SimError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let namespace = if url_ns.is_empty() {
            body_ns
        } else {
            url_ns.to_owned()
        };
        if namespace.is_empty() {
            return Err(SimError::bad_request(
                "a namespace must be given for a namespaced resource",
            ));
        }
        match self.namespace_state(&namespace) {
            None => return Err(SimError::namespace_not_found(&namespace)),
            Some(true) => {
                return Err(SimError::new(
                    403,
                    "Forbidden",
                    format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                        rt.plural,
                        meta(obj, "name").unwrap_or_default()
                    ),
                ));
            }
            Some(false) => {}
        }
        set_meta(obj, "namespace", json!(namespace));
        Ok(namespace)
    }

    /// Server-set fields of a new object: uid, creation time, generation, type identity.
    fn stamp_created(rt: &ResourceType, version: &str, obj: &mut Value, uid: &str, now: &str) {
        with_meta(obj, |metadata| {
            metadata.insert("uid".to_owned(), json!(uid));
            metadata.insert("creationTimestamp".to_owned(), json!(now));
            for server_field in [
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                metadata.remove(server_field);
            }
            if rt.tracks_generation {
                metadata.insert("generation".to_owned(), json!(1));
            } else {
                metadata.remove("generation");
            }
            if metadata.get("managedFields").is_some_and(|m| !m.is_array()) {
                metadata.remove("managedFields");
            }
        });
        obj["apiVersion"] = json!(rt.api_version(version));
        obj["kind"] = json!(rt.kind);
        if rt.status_subresource {
            obj.as_object_mut().map(|m| m.remove("status"));
        }
    }
}
