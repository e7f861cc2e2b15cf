//! The object store: objects by resource type, the global resource version counter, watch
//! history, and the write pipelines (create, update, patch, delete) shared by the HTTP layer
//! and the direct test API.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::apply::{self, ApplyRequest, ApplyScope};
use crate::error::{FieldCause, SimError, Subject};
use crate::events;
use crate::gc;
use crate::objectmeta::{self, NameRule};
use crate::patch::{self, PatchKind};
use crate::resources::{self, Registry, ResourceType};
use crate::secret;
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

/// How a custom resource's schema applies to one write.
#[derive(Clone, Copy)]
struct SchemaCheck<'a> {
    /// What to do with unknown fields.
    mode: FieldValidation,
    name: &'a str,
    /// A `/status` write: only the status schema applies.
    status_only: bool,
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

fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    use std::fmt::Write as _;
    format!("{rv}|{namespace}|{name}")
        .bytes()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

fn decode_continue(token: &str) -> Option<(u64, String, String)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '|');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, parts.next()?.to_owned(), parts.next()?.to_owned()))
}

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

    pub fn get(
        &self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, SimError> {
        self.lookup(&ObjectKey::of(rt, ns.unwrap_or(""), name))
            .map(|obj| output(rt, version, obj))
            .ok_or_else(|| SimError::not_found(rt.subject(name)))
    }

    pub fn list(
        &self,
        rt: &ResourceType,
        version: &str,
        ns: Option<&str>,
        query: &ListQuery<'_>,
    ) -> Result<ListPage, SimError> {
        let ListQuery {
            labels,
            fields,
            limit,
            continue_token,
        } = query;
        let (list_rv, start_after) = match continue_token.filter(|t| !t.is_empty()) {
            Some(token) => {
                let (rv, ns, name) = decode_continue(token)
                    .ok_or_else(|| SimError::bad_request("continue key is not valid"))?;
                (rv, Some((ns, name)))
            }
            None => (self.rv, None),
        };
        let matching: Vec<(&(String, String), &Value)> = self
            .objects
            .get(&(rt.storage_group.clone(), rt.plural.clone()))
            .into_iter()
            .flat_map(|objs| objs.iter())
            .filter(|((obj_ns, _), _)| !rt.namespaced || ns.is_none_or(|n| n == obj_ns))
            .filter(|(key, _)| start_after.as_ref().is_none_or(|after| *key > after))
            .filter(|(_, obj)| labels.matches(obj) && fields.matches(obj))
            .collect();
        let take = match *limit {
            Some(l) if l > 0 => l.min(matching.len()),
            _ => matching.len(),
        };
        let remaining = matching.len() - take;
        let continue_token = (remaining > 0 && take > 0).then(|| {
            let (last_ns, last_name) = matching[take - 1].0;
            encode_continue(list_rv, last_ns, last_name)
        });
        Ok(ListPage {
            items: matching[..take]
                .iter()
                .map(|(_, obj)| output(rt, version, obj))
                .collect(),
            resource_version: list_rv,
            continue_token,
            remaining: (remaining > 0).then_some(remaining),
        })
    }

    /// Every object of a type (optionally one namespace) matching the selectors.
    pub fn snapshot(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.objects
            .get(&(rt.storage_group.clone(), rt.plural.clone()))
            .into_iter()
            .flat_map(|objs| objs.iter())
            .filter(|((obj_ns, _), _)| !rt.namespaced || ns.is_none_or(|n| n == obj_ns))
            .filter(|(_, obj)| labels.matches(obj) && fields.matches(obj))
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// Events after `rv`, or `Err(oldest available)` when history no longer reaches back.
    pub fn events_after(&self, rv: u64) -> Result<Vec<HistoryEvent>, u64> {
        if rv < self.compacted_rv {
            return Err(self.compacted_rv);
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok(self.history.iter().skip(start).cloned().collect())
    }

    pub fn expire_history(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
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

    pub(crate) fn check_identity(
        rt: &ResourceType,
        version: &str,
        obj: &Value,
    ) -> Result<(), SimError> {
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && !kind.is_empty()
            && kind != rt.kind
        {
            return Err(SimError::bad_request(format!(
                "the kind of the object ({kind}) does not match the kind of the resource ({})",
                rt.kind
            )));
        }
        if let Some(api_version) = obj.get("apiVersion").and_then(Value::as_str)
            && !api_version.is_empty()
            && api_version != rt.api_version(version)
            && rt
                .version(api_version.rsplit('/').next().unwrap_or(""))
                .is_none()
        {
            return Err(SimError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                rt.api_version(version)
            )));
        }
        Ok(())
    }

    /// Decoding and defaulting of built-in kinds the simulator models: Secret `stringData` and
    /// base64 `data` (a 400 when it does not decode) and `type`; the namespace name label and
    /// finalizer. Returns a Secret's decoded data, for validation.
    fn decode_builtin(
        rt: &ResourceType,
        obj: &mut Value,
    ) -> Result<Option<Map<String, Value>>, SimError> {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "secrets") => return secret::decode(obj).map(Some),
            ("", "namespaces") => {
                let name = meta(obj, "name").unwrap_or_default();
                with_meta(obj, |metadata| {
                    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                    if let Some(labels) = labels.as_object_mut() {
                        labels.insert("kubernetes.io/metadata.name".to_owned(), json!(name));
                    }
                });
                if obj.pointer("/spec/finalizers").is_none() {
                    obj["spec"] = json!({"finalizers": ["kubernetes"]});
                }
            }
            _ => {}
        }
        Ok(None)
    }

    /// The update rules of built-in kinds: `ValidateSecretUpdate` and `ValidateConfigMapUpdate`
    /// (`pkg/apis/core/validation/validation.go`).
    fn validate_builtin_update(rt: &ResourceType, obj: &Value, old: &Value) -> Vec<FieldCause> {
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "secrets") => secret::validate_update(obj, old),
            ("", "configmaps") => Self::immutable_config_map(obj, old),
            _ => Vec::new(),
        }
    }

    fn immutable_config_map(obj: &Value, old: &Value) -> Vec<FieldCause> {
        if old.get("immutable").and_then(Value::as_bool) != Some(true) {
            return Vec::new();
        }
        let mut causes = Vec::new();
        if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
            causes.push(FieldCause::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        for field in ["data", "binaryData"] {
            if obj.get(field) != old.get(field) {
                causes.push(FieldCause::forbidden(
                    field,
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        causes
    }

    fn name_rule(rt: &ResourceType) -> NameRule {
        if rt.group.is_empty() && rt.plural == "namespaces" {
            NameRule::DnsLabel
        } else if rt.group == "rbac.authorization.k8s.io" {
            NameRule::PathSegment
        } else {
            NameRule::DnsSubdomain
        }
    }

    /// Schema processing of custom resources; returns warnings for dropped unknown fields.
    fn process_schema(
        rt: &ResourceType,
        version: &str,
        obj: &mut Value,
        old: Option<&Value>,
        check: &SchemaCheck<'_>,
        cel_rules: &mut BTreeMap<(String, String, String), validation::CelRuleRuns>,
    ) -> Result<Vec<String>, SimError> {
        let SchemaCheck {
            mode,
            name,
            status_only,
        } = *check;
        let Some(schema) = rt.version(version).and_then(|v| v.schema.as_ref()) else {
            return Ok(Vec::new());
        };
        let outcome = validation::process_custom_resource(schema, obj, old, status_only);
        let resource = format!("{}.{}", rt.plural, rt.group);
        for run in outcome.rule_runs {
            cel_rules
                .entry((resource.clone(), run.field.clone(), run.rule.clone()))
                .or_insert_with(|| validation::CelRuleRuns {
                    resource: resource.clone(),
                    field: run.field,
                    rule: run.rule,
                    ..validation::CelRuleRuns::default()
                })
                .record(run.outcome);
        }
        let unknown: Vec<String> = outcome
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        if mode == FieldValidation::Strict && !unknown.is_empty() {
            return Err(SimError::bad_request(format!(
                "strict decoding error: {}",
                unknown.join(", ")
            )));
        }
        if !outcome.causes.is_empty() {
            return Err(SimError::invalid(rt.subject(name), &outcome.causes));
        }
        Ok(if mode == FieldValidation::Warn {
            unknown
        } else {
            Vec::new()
        })
    }

    /// Checks common to every write of the full object; returns warnings.
    pub(crate) fn validate_object(
        rt: &ResourceType,
        version: &str,
        obj: &mut Value,
        old: Option<&Value>,
        opts: &WriteOptions,
        cel_rules: &mut BTreeMap<(String, String, String), validation::CelRuleRuns>,
        status_only: bool,
    ) -> Result<Vec<String>, SimError> {
        let name = meta(obj, "name").unwrap_or_default();
        let secret_data = Self::decode_builtin(rt, obj)?;
        let mut causes = Vec::new();
        if let Some(old) = old {
            causes.extend(objectmeta::validate_no_new_finalizers(obj, old));
            causes.extend(Self::validate_builtin_update(rt, obj, old));
        }
        causes.extend(objectmeta::validate_object_meta(obj, Self::name_rule(rt)));
        if let Some(data) = &secret_data {
            causes.extend(secret::validate(obj, data));
        }
        if !causes.is_empty() {
            return Err(SimError::invalid(rt.subject(&name), &causes));
        }
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            resources::validate_crd(obj)?;
        }
        if rt.is_custom() {
            let check = SchemaCheck {
                mode: opts.field_validation,
                name: &name,
                status_only,
            };
            return Self::process_schema(rt, version, obj, old, &check, cel_rules);
        }
        Ok(Vec::new())
    }

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
    fn finish_update(
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

    /// PATCH of an object or its status, in any of the four patch formats.
    pub fn patch(
        &mut self,
        target: &Target<'_>,
        kind: PatchKind,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<WriteOutcome, SimError> {
        let (rt, name) = (target.rt, target.name);
        if kind == PatchKind::Strategic && rt.is_custom() {
            return Err(SimError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let live = self.lookup(&target.key()).cloned();
        if kind == PatchKind::Apply {
            return self.apply(target, body, opts, live);
        }
        let Some(live) = live else {
            return Err(SimError::not_found(rt.subject(name)));
        };
        let current = output(rt, target.version, &live);
        let patched = match kind {
            PatchKind::Merge => {
                let mut patched = current;
                patch::merge_patch(&mut patched, body);
                patched
            }
            PatchKind::Strategic => {
                let mut patched = current;
                patch::strategic_merge_patch(&mut patched, body);
                patched
            }
            PatchKind::Json | PatchKind::Apply => {
                patch::json_patch(&current, body).map_err(|e| {
                    SimError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?
            }
        };
        if meta(&patched, "name").as_deref() != Some(name) {
            return Err(SimError::bad_request(
                "the name of an object cannot be changed by a patch",
            ));
        }
        let expected = meta(&patched, "resourceVersion").unwrap_or_default();
        if !expected.is_empty() && Some(&expected) != meta(&live, "resourceVersion").as_ref() {
            return Err(SimError::stale_resource_version(rt.subject(name)));
        }
        self.finish_update(target, live, patched, opts)
    }

    /// The checks of an applied configuration itself; returns the field manager.
    fn check_applied(
        target: &Target<'_>,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<String, SimError> {
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                SimError::bad_request(
                    "PATCH, application/apply-patch+yaml requires fieldManager to be set",
                )
            })?;
        if !body.is_object() {
            return Err(SimError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        let blank = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        };
        if blank("apiVersion") || blank("kind") {
            return Err(SimError::bad_request(
                "apiVersion and kind must be set in an applied configuration",
            ));
        }
        Self::check_identity(target.rt, target.version, body)?;
        if let Some(body_name) = meta(body, "name").filter(|n| n != target.name) {
            return Err(SimError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                target.name
            )));
        }
        Ok(manager)
    }

    /// Server-side apply: creates the object when absent, else merges the configuration with
    /// field ownership (see `apply.rs`).
    fn apply(
        &mut self,
        target: &Target<'_>,
        body: &Value,
        opts: &WriteOptions,
        live: Option<Value>,
    ) -> Result<WriteOutcome, SimError> {
        let (rt, name) = (target.rt, target.name);
        let manager = Self::check_applied(target, body, opts)?;
        let scope = match target.subresource {
            Some("status") if rt.status_subresource => ApplyScope::Status,
            Some(_) => return Err(SimError::not_found(rt.subject(name))),
            None => ApplyScope::Main {
                without_status: rt.status_subresource,
            },
        };
        let mut applied = scope.restrict(body);
        if scope != ApplyScope::Status {
            with_meta(&mut applied, |m| m.remove("resourceVersion"));
        }
        let now = now();
        let api_version = rt.api_version(target.version);
        let mut request = ApplyRequest {
            live: &json!({"metadata": {}}),
            applied: &applied,
            manager: &manager,
            force: true,
            scope,
            api_version: &api_version,
            now: &now,
        };
        let Some(live) = live else {
            if scope == ApplyScope::Status {
                return Err(SimError::not_found(rt.subject(name)));
            }
            let mut obj = applied.clone();
            set_meta(&mut obj, "name", json!(name));
            let with_fields =
                apply::apply(&request).map_err(|_| SimError::bad_request("apply failed"))?;
            if let Some(managed) = with_fields.pointer("/metadata/managedFields") {
                set_meta(&mut obj, "managedFields", managed.clone());
            }
            return self.create(rt, target.version, target.namespace, obj, opts);
        };
        if let Some(expected) = meta(body, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(&expected) != meta(&live, "resourceVersion").as_ref()
        {
            return Err(SimError::stale_resource_version(rt.subject(name)));
        }
        let current = output(rt, target.version, &live);
        request.live = &current;
        request.force = opts.force;
        let merged =
            apply::apply(&request).map_err(|conflicts| apply_conflict_error(target, &conflicts))?;
        self.finish_update(target, live, merged, opts)
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

/// The 409 an apply answers when other apply managers own fields it changes.
fn apply_conflict_error(target: &Target<'_>, conflicts: &[apply::ApplyConflict]) -> SimError {
    let summary: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
        .collect();
    let plural = if conflicts.len() == 1 { "" } else { "s" };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict",
                   "message": format!("conflict with \"{}\"", c.manager),
                   "field": c.field})
        })
        .collect();
    let mut error = SimError::conflict(target.subject(), "apply conflict");
    error.message = format!(
        "Apply failed with {} conflict{plural}: {}",
        conflicts.len(),
        summary.join("\n")
    );
    if let Some(details) = error.details.as_mut() {
        details["causes"] = Value::Array(causes);
    }
    error
}
