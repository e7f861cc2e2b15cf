//! The object store: objects by resource type, the global resource version counter, watch
//! history, and the write pipelines (create, update, patch, delete) shared by the HTTP layer
//! and the direct test API.
//!
//! - this module: the types, storage with resource versions and history, commit and removal;
//! - [`read`]: get, list pages, snapshots, watch history;
//! - [`validate`]: what every write of a full object is checked against;
//! - [`create`], [`update`], [`patching`] (patches and server-side apply), [`delete`]: the
//!   write pipelines.

mod create;
mod delete;
mod patching;
mod read;
mod update;
mod validate;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::Subject;
use crate::events;
use crate::gc;
use crate::resources::{Registry, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::validation::{self, FieldValidation};

/// (group, plural): objects are stored once per type, whatever version wrote them.
pub(crate) type TypeKey = (String, String);

/// Where one object lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ObjectKey {
    pub group: String,
    pub plural: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    fn type_key(&self) -> TypeKey {
        (self.group.clone(), self.plural.clone())
    }

    pub(crate) fn of(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        Self {
            group: rt.storage_group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, kept for watches that start from an older resource version.
#[derive(Debug, Clone)]
pub(crate) struct HistoryEvent {
    pub rv: u64,
    pub key: ObjectKey,
    pub event_type: EventType,
    pub object: Value,
    /// The object before a modification, so selector watches can tell "left the selection".
    pub previous: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
    pub force: bool,
}

/// The object a write addresses: its type, the version the client speaks, where it lives and
/// (for `/status`) the subresource.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub rt: &'a Arc<ResourceType>,
    pub version: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub subresource: Option<&'a str>,
}

impl Target<'_> {
    fn key(&self) -> ObjectKey {
        ObjectKey::of(self.rt, self.namespace.unwrap_or(""), self.name)
    }

    fn subject(&self) -> Subject<'_> {
        self.rt.subject(self.name)
    }
}

/// What a list asks for: selectors and one page.
#[derive(Default)]
pub(crate) struct ListQuery<'a> {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<&'a str>,
}

pub(crate) struct WriteOutcome {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub dry_run: bool,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub orphan: bool,
}

pub(crate) struct ListPage {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

const HISTORY_LIMIT: usize = 10_000;

pub(crate) struct Store {
    pub registry: Registry,
    objects: BTreeMap<TypeKey, BTreeMap<(String, String), Value>>,
    uids: HashMap<String, ObjectKey>,
    rv: u64,
    history: VecDeque<HistoryEvent>,
    /// Watches from a resource version older than this get 410 Gone.
    compacted_rv: u64,
    id_state: u64,
    /// Delete objects whose owners are all gone (as the garbage collector does).
    pub collect_orphans: bool,
    /// Every `x-kubernetes-validations` rule met, by (resource, field, rule).
    pub cel_rules: BTreeMap<(String, String, String), validation::CelRuleRuns>,
}

pub(crate) fn now() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .map_or_else(|_| now.to_string(), |t| t.to_string())
}

pub(crate) fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?.get(field)?.as_str().map(str::to_owned)
}

/// Runs `edit` on the object's `metadata` map (created empty when absent or not a map).
/// Objects reaching the store are JSON objects (checked on entry); anything else is left as is.
pub(crate) fn with_meta<R>(obj: &mut Value, edit: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
    let mut metadata = match obj.get_mut("metadata").map(Value::take) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let result = edit(&mut metadata);
    if let Some(root) = obj.as_object_mut() {
        root.insert("metadata".to_owned(), Value::Object(metadata));
    }
    result
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    with_meta(obj, |m| m.insert(field.to_owned(), value));
}

/// The object as a client of `version` sees it.
pub(crate) fn output(rt: &ResourceType, version: &str, obj: &Value) -> Value {
    let mut out = events::from_storage(rt, obj.clone());
    if let Some(map) = out.as_object_mut() {
        map.insert("apiVersion".to_owned(), json!(rt.api_version(version)));
        map.insert("kind".to_owned(), json!(rt.kind));
    }
    out
}

impl Store {
    pub fn new() -> Self {
        let seed = u64::try_from(jiff::Timestamp::now().as_nanosecond() & i128::from(u64::MAX))
            .unwrap_or(1);
        let mut store = Self {
            registry: Registry::with_builtins(),
            objects: BTreeMap::new(),
            uids: HashMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted_rv: 0,
            id_state: seed | 1,
            collect_orphans: true,
            cel_rules: BTreeMap::new(),
        };
        let namespaces = store.registry.find("", "v1", "namespaces");
        for ns in ["default", "kube-system"] {
            let created = namespaces.as_ref().map(|namespaces| {
                store.create(
                    namespaces,
                    "v1",
                    None,
                    json!({"metadata": {"name": ns}}),
                    &WriteOptions::default(),
                )
            });
            if !matches!(created, Some(Ok(_))) {
                tracing::error!(
                    namespace = ns,
                    "the simulator could not create an initial namespace"
                );
            }
        }
        store
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: ids only need to be unique and unpredictable enough for tests.
        let mut x = self.id_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.id_state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn new_uid(&mut self) -> String {
        let a = self.random();
        let b = self.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    fn generated_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.random();
        (0..5)
            .map(|_| {
                let c = ALPHABET[usize::try_from(n % ALPHABET.len() as u64).unwrap_or(0)];
                n /= ALPHABET.len() as u64;
                char::from(c)
            })
            .collect()
    }

    pub(crate) fn lookup(&self, key: &ObjectKey) -> Option<&Value> {
        self.objects
            .get(&key.type_key())?
            .get(&(key.namespace.clone(), key.name.clone()))
    }

    fn record(
        &mut self,
        key: ObjectKey,
        event_type: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        self.history.push_back(HistoryEvent {
            rv: self.rv,
            key,
            event_type,
            object,
            previous,
        });
        while self.history.len() > HISTORY_LIMIT {
            if let Some(evicted) = self.history.pop_front() {
                self.compacted_rv = evicted.rv;
            }
        }
    }

    /// Stores a new or changed object with the next resource version.
    pub(crate) fn commit(
        &mut self,
        key: &ObjectKey,
        mut obj: Value,
        previous: Option<Value>,
    ) -> Value {
        self.rv += 1;
        set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
        if let Some(uid) = meta(&obj, "uid") {
            self.uids.insert(uid, key.clone());
        }
        self.objects
            .entry(key.type_key())
            .or_default()
            .insert((key.namespace.clone(), key.name.clone()), obj.clone());
        let event_type = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(key.clone(), event_type, obj.clone(), previous);
        obj
    }

    /// Removes an object for good: DELETED event, then its dependents (garbage collection).
    pub(crate) fn remove(&mut self, key: &ObjectKey, orphan_dependents: bool) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(&key.type_key())?
            .remove(&(key.namespace.clone(), key.name.clone()))?;
        self.rv += 1;
        set_meta(&mut obj, "resourceVersion", json!(self.rv.to_string()));
        let uid = meta(&obj, "uid").unwrap_or_default();
        self.uids.remove(&uid);
        self.record(key.clone(), EventType::Deleted, obj.clone(), None);
        if key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions" {
            gc::remove_custom_resources(self, &obj);
            self.registry.unregister_crd(&key.name);
        }
        gc::collect_dependents(self, &uid, orphan_dependents);
        if !key.namespace.is_empty() {
            gc::finish_namespace_if_empty(self, &key.namespace);
        }
        Some(obj)
    }

    /// The stored objects of one type in one namespace ("" for cluster-scoped types).
    pub(crate) fn objects_in<'a>(
        &'a self,
        group: &str,
        plural: &str,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .get(&(group.to_owned(), plural.to_owned()))
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(move |((ns, _), _)| ns == namespace)
            .map(|(_, obj)| obj)
    }

    pub(crate) fn keys_of_type(&self, type_key: &TypeKey) -> Vec<ObjectKey> {
        self.objects
            .get(type_key)
            .map(|objs| {
                objs.keys()
                    .map(|(ns, name)| ObjectKey {
                        group: type_key.0.clone(),
                        plural: type_key.1.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn all_keys(&self) -> Vec<ObjectKey> {
        self.objects
            .keys()
            .flat_map(|t| self.keys_of_type(t))
            .collect()
    }

    pub(crate) fn key_of_uid(&self, uid: &str) -> Option<&ObjectKey> {
        self.uids.get(uid)
    }

    /// Puts a changed object back (used by the garbage collector to strip owner references).
    pub(crate) fn rewrite(&mut self, key: &ObjectKey, obj: Value) -> Option<Value> {
        let previous = self.lookup(key).cloned()?;
        Some(self.commit(key, obj, Some(previous)))
    }

    pub(crate) fn namespace_state(&self, ns: &str) -> Option<bool> {
        let key = ObjectKey {
            group: String::new(),
            plural: "namespaces".to_owned(),
            namespace: String::new(),
            name: ns.to_owned(),
        };
        self.lookup(&key)
            .map(|n| n.pointer("/metadata/deletionTimestamp").is_some())
    }
}
