//! Decoding of the Kubernetes protobuf request encoding for the few kinds `kubectl create`
//! generators send that way (`kubectl create secret|configmap|namespace|serviceaccount`)
//! `kubectl create role|clusterrole|rolebinding|clusterrolebinding`, for the
//! `SelfSubjectAccessReview` of `kubectl auth can-i`, and for the `DeleteOptions` of
//! client-go's typed deletes (helm's release Secrets).
//! Answers are always JSON, which those clients also accept.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::SimError;

/// `k8s\0`: the prefix of every Kubernetes protobuf payload.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, Copy)]
enum Field {
    String,
    /// `bytes`, rendered base64 as in JSON.
    Bytes,
    Int,
    Bool,
    Time,
    Message(&'static [(u32, &'static str, Field)]),
    StringMap,
    BytesMap,
    RepeatedString,
    RepeatedMessage(&'static [(u32, &'static str, Field)]),
}

const OWNER_REFERENCE: &[(u32, &str, Field)] = &[
    (1, "kind", Field::String),
    (3, "name", Field::String),
    (4, "uid", Field::String),
    (5, "apiVersion", Field::String),
    (6, "controller", Field::Bool),
    (7, "blockOwnerDeletion", Field::Bool),
];

const OBJECT_META: &[(u32, &str, Field)] = &[
    (1, "name", Field::String),
    (2, "generateName", Field::String),
    (3, "namespace", Field::String),
    (5, "uid", Field::String),
    (6, "resourceVersion", Field::String),
    (7, "generation", Field::Int),
    (8, "creationTimestamp", Field::Time),
    (10, "deletionGracePeriodSeconds", Field::Int),
    (11, "labels", Field::StringMap),
    (12, "annotations", Field::StringMap),
    (
        13,
        "ownerReferences",
        Field::RepeatedMessage(OWNER_REFERENCE),
    ),
    (14, "finalizers", Field::RepeatedString),
];

const SECRET: &[(u32, &str, Field)] = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "data", Field::BytesMap),
    (3, "type", Field::String),
    (4, "stringData", Field::StringMap),
    (5, "immutable", Field::Bool),
];

const CONFIG_MAP: &[(u32, &str, Field)] = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "data", Field::StringMap),
    (3, "binaryData", Field::BytesMap),
    (4, "immutable", Field::Bool),
];

const NAMESPACE_SPEC: &[(u32, &str, Field)] = &[(1, "finalizers", Field::RepeatedString)];

const NAMESPACE: &[(u32, &str, Field)] = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "spec", Field::Message(NAMESPACE_SPEC)),
];

const LOCAL_OBJECT_REFERENCE: &[(u32, &str, Field)] = &[(1, "name", Field::String)];

const SERVICE_ACCOUNT: &[(u32, &str, Field)] = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (
        3,
        "imagePullSecrets",
        Field::RepeatedMessage(LOCAL_OBJECT_REFERENCE),
    ),
    (4, "automountServiceAccountToken", Field::Bool),
];

const POLICY_RULE: &[(u32, &str, Field)] = &[
    (1, "verbs", Field::RepeatedString),
    (2, "apiGroups", Field::RepeatedString),
    (3, "resources", Field::RepeatedString),
    (4, "resourceNames", Field::RepeatedString),
    (5, "nonResourceURLs", Field::RepeatedString),
];

/// Role and ClusterRole (`aggregationRule`, field 3 of ClusterRole, is not decoded).
const ROLE: &[(u32, &str, Field)] = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "rules", Field::RepeatedMessage(POLICY_RULE)),
];

const SUBJECT: &[(u32, &str, Field)] = &[
    (1, "kind", Field::String),
    (2, "apiGroup", Field::String),
    (3, "name", Field::String),
    (4, "namespace", Field::String),
];

const ROLE_REF: &[(u32, &str, Field)] = &[
    (1, "apiGroup", Field::String),
    (2, "kind", Field::String),
    (3, "name", Field::String),
];

/// RoleBinding and ClusterRoleBinding.
const ROLE_BINDING: &[(u32, &str, Field)] = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "subjects", Field::RepeatedMessage(SUBJECT)),
    (3, "roleRef", Field::Message(ROLE_REF)),
];

const RESOURCE_ATTRIBUTES: &[(u32, &str, Field)] = &[
    (1, "namespace", Field::String),
    (2, "verb", Field::String),
    (3, "group", Field::String),
    (4, "version", Field::String),
    (5, "resource", Field::String),
    (6, "subresource", Field::String),
    (7, "name", Field::String),
];

const NON_RESOURCE_ATTRIBUTES: &[(u32, &str, Field)] =
    &[(1, "path", Field::String), (2, "verb", Field::String)];

const SELF_SUBJECT_ACCESS_REVIEW_SPEC: &[(u32, &str, Field)] = &[
    (1, "resourceAttributes", Field::Message(RESOURCE_ATTRIBUTES)),
    (
        2,
        "nonResourceAttributes",
        Field::Message(NON_RESOURCE_ATTRIBUTES),
    ),
];

/// What `kubectl auth can-i` sends.
const SELF_SUBJECT_ACCESS_REVIEW: &[(u32, &str, Field)] = &[
    (1, "metadata", Field::Message(OBJECT_META)),
    (2, "spec", Field::Message(SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
];

const PRECONDITIONS: &[(u32, &str, Field)] = &[
    (1, "uid", Field::String),
    (2, "resourceVersion", Field::String),
];

/// `meta.k8s.io/v1` DeleteOptions, which client-go's typed clients send with a delete.
const DELETE_OPTIONS: &[(u32, &str, Field)] = &[
    (1, "gracePeriodSeconds", Field::Int),
    (2, "preconditions", Field::Message(PRECONDITIONS)),
    (3, "orphanDependents", Field::Bool),
    (4, "propagationPolicy", Field::String),
    (5, "dryRun", Field::RepeatedString),
];

const TYPE_META: &[(u32, &str, Field)] =
    &[(1, "apiVersion", Field::String), (2, "kind", Field::String)];

const UNKNOWN: &[(u32, &str, Field)] = &[
    (1, "typeMeta", Field::Message(TYPE_META)),
    (2, "raw", Field::Bytes),
];

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn malformed() -> SimError {
    SimError::bad_request("malformed protobuf body")
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, SimError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(malformed)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SimError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(malformed)?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], SimError> {
        let n = usize::try_from(self.varint()?).map_err(|_| malformed())?;
        self.take(n)
    }
}

fn text(bytes: &[u8]) -> Result<String, SimError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed())
}

/// A map entry message: key (1) and value (2).
fn map_entry(bytes: &[u8], value_as_bytes: bool) -> Result<(String, Value), SimError> {
    let mut reader = Reader { bytes, pos: 0 };
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while reader.pos < bytes.len() {
        let tag = reader.varint()?;
        let raw = reader.length_delimited()?;
        match tag >> 3 {
            1 => key = text(raw)?,
            2 if value_as_bytes => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(raw));
            }
            2 => value = json!(text(raw)?),
            _ => {}
        }
    }
    Ok((key, value))
}

fn time(bytes: &[u8]) -> Result<Value, SimError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut seconds = 0i64;
    while reader.pos < bytes.len() {
        let tag = reader.varint()?;
        let value = reader.varint()?;
        if tag >> 3 == 1 {
            seconds = i64::try_from(value).map_err(|_| malformed())?;
        }
    }
    if seconds == 0 {
        return Ok(Value::Null);
    }
    Ok(jiff::Timestamp::from_second(seconds).map_or(Value::Null, |t| json!(t.to_string())))
}

fn skip(reader: &mut Reader<'_>, wire_type: u64) -> Result<(), SimError> {
    match wire_type {
        0 => reader.varint().map(|_| ()),
        1 => reader.take(8).map(|_| ()),
        2 => reader.length_delimited().map(|_| ()),
        5 => reader.take(4).map(|_| ()),
        _ => Err(malformed()),
    }
}

fn message(bytes: &[u8], schema: &[(u32, &str, Field)]) -> Result<Map<String, Value>, SimError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut out = Map::new();
    while reader.pos < bytes.len() {
        let tag = reader.varint()?;
        let (number, wire_type) = (tag >> 3, tag & 7);
        let Some((_, name, field)) = schema.iter().find(|(n, _, _)| u64::from(*n) == number) else {
            skip(&mut reader, wire_type)?;
            continue;
        };
        let name = (*name).to_owned();
        match field {
            // Go writes every scalar, set or not: zero values are left out as in JSON.
            Field::Int => {
                let v = reader.varint()?;
                if v != 0 {
                    #[allow(clippy::cast_possible_wrap)]
                    out.insert(name, json!(v as i64));
                }
            }
            Field::Bool => {
                let v = reader.varint()?;
                out.insert(name, json!(v != 0));
            }
            Field::String => {
                let value = text(reader.length_delimited()?)?;
                if !value.is_empty() {
                    out.insert(name, json!(value));
                }
            }
            Field::Bytes => {
                let raw = reader.length_delimited()?;
                out.insert(
                    name,
                    json!(base64::engine::general_purpose::STANDARD.encode(raw)),
                );
            }
            Field::Time => {
                let t = time(reader.length_delimited()?)?;
                if !t.is_null() {
                    out.insert(name, t);
                }
            }
            Field::Message(inner) => {
                out.insert(
                    name,
                    Value::Object(message(reader.length_delimited()?, inner)?),
                );
            }
            Field::StringMap | Field::BytesMap => {
                let (k, v) =
                    map_entry(reader.length_delimited()?, matches!(field, Field::BytesMap))?;
                if let Some(map) = out.entry(name).or_insert_with(|| json!({})).as_object_mut() {
                    map.insert(k, v);
                }
            }
            Field::RepeatedString => {
                let item = json!(text(reader.length_delimited()?)?);
                if let Some(items) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    items.push(item);
                }
            }
            Field::RepeatedMessage(inner) => {
                let item = Value::Object(message(reader.length_delimited()?, inner)?);
                if let Some(items) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    items.push(item);
                }
            }
        }
    }
    Ok(out)
}

/// Decodes a protobuf-encoded object of a supported kind into its JSON form.
pub(crate) fn decode(body: &[u8]) -> Result<Value, SimError> {
    let payload = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| SimError::bad_request("protobuf body without the k8s magic prefix"))?;
    let envelope = message(payload, UNKNOWN)?;
    let api_version = envelope
        .get("typeMeta")
        .and_then(|t| t.get("apiVersion"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = envelope
        .get("typeMeta")
        .and_then(|t| t.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let raw = envelope
        .get("raw")
        .and_then(Value::as_str)
        .and_then(|r| base64::engine::general_purpose::STANDARD.decode(r).ok())
        .unwrap_or_default();
    let schema = match (api_version, kind) {
        ("v1", "Secret") => SECRET,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        ("rbac.authorization.k8s.io/v1", "Role" | "ClusterRole") => ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => ROLE_BINDING,
        (_, "DeleteOptions") => DELETE_OPTIONS,
        _ => {
            return Err(SimError::unsupported_media_type(format!(
                "the simulator decodes protobuf only for v1 Secret, ConfigMap, Namespace, ServiceAccount, rbac.authorization.k8s.io/v1 roles and bindings, authorization.k8s.io/v1 SelfSubjectAccessReview and DeleteOptions, not {api_version} {kind}; send application/json"
            )));
        }
    };
    let mut object = message(&raw, schema)?;
    object.insert("apiVersion".to_owned(), json!(api_version));
    object.insert("kind".to_owned(), json!(kind));
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, u8::try_from(payload.len()).unwrap()];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_secret_like_kubectl_sends_it() {
        let metadata = [field(1, b"my-secret"), field(3, b"default")].concat();
        let data_entry = [field(1, b"a"), field(2, b"b")].concat();
        let secret = [
            field(1, &metadata),
            field(2, &data_entry),
            field(3, b"Opaque"),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let envelope = [field(1, &type_meta), field(2, &secret)].concat();
        let body = [MAGIC.to_vec(), envelope].concat();
        let decoded = decode(&body).unwrap();
        assert_eq!(
            decoded,
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "my-secret", "namespace": "default"}, "data": {"a": "Yg=="}})
        );
    }

    #[test]
    fn decodes_delete_options_like_client_go_sends_them() {
        let preconditions = field(1, b"uid-1");
        let options = [
            field(2, &preconditions),
            field(4, b"Background"),
            field(5, b"All"),
        ]
        .concat();
        let type_meta = [field(1, b"meta.k8s.io/v1"), field(2, b"DeleteOptions")].concat();
        let envelope = [field(1, &type_meta), field(2, &options)].concat();
        let body = [MAGIC.to_vec(), envelope].concat();
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions",
                   "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Background",
                   "dryRun": ["All"]})
        );
    }
}
