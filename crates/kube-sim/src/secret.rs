//! Secret decoding, defaulting and validation as kube-apiserver (1.34) does them.
//!
//! Sources: the `v1` → internal conversion (`stringData` is merged into `data`, overriding
//! keys of the same name) and `SetDefaults_Secret` (`type` defaults to `Opaque`) in
//! `pkg/apis/core/v1`; `ValidateSecret` and `ValidateSecretUpdate` in
//! `pkg/apis/core/validation/validation.go`; the limits `MaxSecretSize = 1 * 1024 * 1024` in
//! `pkg/apis/core/types.go` and the key format `IsConfigMapKey` in
//! `k8s.io/apimachinery/pkg/util/validation`.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::{FieldCause, SimError};
use crate::objectmeta;

/// `MaxSecretSize`: the sum of the decoded `data` values.
pub(crate) const MAX_SECRET_SIZE: usize = 1024 * 1024;

const TYPE_OPAQUE: &str = "Opaque";
const TYPE_SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
const TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
const TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
const TYPE_BASIC_AUTH: &str = "kubernetes.io/basic-auth";
const TYPE_SSH_AUTH: &str = "kubernetes.io/ssh-auth";
const TYPE_TLS: &str = "kubernetes.io/tls";
/// `ServiceAccountNameKey`
const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";
/// `field.Invalid` value the real server shows instead of Docker config contents.
const REDACTED: &str = "<secret contents redacted>";

/// Go's `base64.CorruptInputError` text for a `data` value that does not decode.
fn base64_error(error: &base64::DecodeError, value: &str) -> String {
    let offset = match error {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => *offset,
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
            value.len() - value.len() % 4
        }
    };
    format!("illegal base64 data at input byte {offset}")
}

/// Merges `stringData` into `data` (base64-encoding it), decodes `data` and defaults `type`,
/// as decoding a `v1` Secret does. Values that are not base64 fail decoding: a 400, like
/// `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3`.
/// Returns the decoded data, for validation.
pub(crate) fn decode(obj: &mut Value) -> Result<Map<String, Value>, SimError> {
    let cannot_handle = |why: String| {
        SimError::bad_request(format!(
            "Secret in version \"v1\" cannot be handled as a Secret: {why}"
        ))
    };
    let Some(root) = obj.as_object_mut() else {
        return Ok(Map::new());
    };
    let string_data = root.remove("stringData");
    let mut decoded = Map::new();
    if let Some(data) = root.get("data").filter(|d| !d.is_null()) {
        let Some(data) = data.as_object() else {
            return Err(cannot_handle(
                "json: cannot unmarshal data into Go struct field Secret.data of type map[string][]uint8".to_owned(),
            ));
        };
        for (key, value) in data {
            let text = value.as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| cannot_handle(base64_error(&e, text)))?;
            decoded.insert(key.clone(), json!(bytes));
        }
    }
    if let Some(Value::Object(string_data)) = string_data {
        let data = root.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or_default().to_owned();
            if let Some(data) = data.as_object_mut() {
                data.insert(
                    key.clone(),
                    json!(base64::engine::general_purpose::STANDARD.encode(&text)),
                );
            }
            decoded.insert(key, json!(text.into_bytes()));
        }
    }
    if root.get("type").is_none_or(|t| t.is_null() || t == "") {
        root.insert("type".to_owned(), json!(TYPE_OPAQUE));
    }
    Ok(decoded)
}

fn data_len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

fn data_bytes(value: &Value) -> Vec<u8> {
    value
        .as_array()
        .map(|bytes| {
            bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// Go's `json.Unmarshal(bytes, &map[string]interface{}{})` error, or `None` when it succeeds.
fn docker_config_error(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_) | Value::Null) => None,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            Some(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            ))
        }
        Err(e) if e.is_eof() => Some("unexpected end of JSON input".to_owned()),
        Err(e) => {
            let column = e.column().saturating_sub(1);
            let offending = String::from_utf8_lossy(bytes)
                .lines()
                .nth(e.line().saturating_sub(1))
                .and_then(|line| line.chars().nth(column))
                .unwrap_or(' ');
            let text = e.to_string();
            let context = [
                (
                    "key must be a string",
                    "looking for beginning of object key string",
                ),
                ("expected `:`", "after object key"),
                ("expected `,` or `}`", "after object key:value pair"),
                ("expected `,` or `]`", "after array element"),
                ("trailing characters", "after top-level value"),
            ]
            .iter()
            .find(|(serde, _)| text.starts_with(serde))
            .map_or("looking for beginning of value", |(_, go)| go);
            Some(format!("invalid character '{offending}' {context}"))
        }
    }
}

/// `ValidateSecret` minus the object metadata (checked for every kind): data keys, total
/// size, and the rules of the well-known types.
pub(crate) fn validate(obj: &Value, data: &Map<String, Value>) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let mut total = 0;
    for (key, value) in data {
        for message in objectmeta::config_map_key_errors(key) {
            causes.push(FieldCause::invalid(
                &format!("data[{key}]"),
                &json!(key),
                &message,
            ));
        }
        total += data_len(value);
    }
    if total > MAX_SECRET_SIZE {
        causes.push(FieldCause::too_long("data", MAX_SECRET_SIZE as u64));
    }
    let secret_type = obj.get("type").and_then(Value::as_str).unwrap_or("");
    causes.extend(type_rules(obj, secret_type, data));
    causes
}

/// The `switch secret.Type` of `ValidateSecret`.
fn type_rules(obj: &Value, secret_type: &str, data: &Map<String, Value>) -> Vec<FieldCause> {
    let required = |key: &str| FieldCause::required(&format!("data[{key}]"));
    let has = |key: &str| data.contains_key(key);
    match secret_type {
        TYPE_SERVICE_ACCOUNT_TOKEN => {
            let named = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_KEY))
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if named {
                Vec::new()
            } else {
                vec![FieldCause::required(&format!(
                    "metadata.annotations[{SERVICE_ACCOUNT_NAME_KEY}]"
                ))]
            }
        }
        TYPE_DOCKERCFG | TYPE_DOCKER_CONFIG_JSON => {
            let key = if secret_type == TYPE_DOCKERCFG {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match data.get(key) {
                None => vec![required(key)],
                Some(value) => docker_config_error(&data_bytes(value))
                    .map(|why| FieldCause::invalid(&format!("data[{key}]"), &json!(REDACTED), &why))
                    .into_iter()
                    .collect(),
            }
        }
        // "username or password might be empty, but the field must be present"
        TYPE_BASIC_AUTH if !has("username") && !has("password") => {
            vec![required("username"), required("password")]
        }
        TYPE_SSH_AUTH if data.get("ssh-privatekey").is_none_or(|v| data_len(v) == 0) => {
            vec![required("ssh-privatekey")]
        }
        TYPE_TLS => ["tls.crt", "tls.key"]
            .into_iter()
            .filter(|key| !has(key))
            .map(required)
            .collect(),
        _ => Vec::new(),
    }
}

/// The checks `ValidateSecretUpdate` adds: `type` is immutable, and a Secret marked
/// `immutable: true` keeps that mark and its data.
pub(crate) fn validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    let mut causes = Vec::new();
    let new_type = new.get("type").cloned().unwrap_or(Value::Null);
    if old.get("type").cloned().unwrap_or(Value::Null) != new_type {
        causes.push(FieldCause::invalid("type", &new_type, "field is immutable"));
    }
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            causes.push(FieldCause::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        let data = |obj: &Value| obj.get("data").filter(|d| !d.is_null()).cloned();
        if data(new) != data(old) {
            causes.push(FieldCause::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(obj: Value) -> Vec<String> {
        let mut obj = obj;
        let data = decode(&mut obj).unwrap();
        validate(&obj, &data)
            .iter()
            .map(FieldCause::full_message)
            .collect()
    }

    #[test]
    fn string_data_is_merged_and_type_defaulted() {
        let mut obj = json!({"data": {"a": "YQ=="}, "stringData": {"a": "b", "c": "d"}});
        let data = decode(&mut obj).unwrap();
        assert_eq!(obj["data"], json!({"a": "Yg==", "c": "ZA=="}));
        assert_eq!(obj["type"], "Opaque");
        assert!(obj.get("stringData").is_none());
        assert_eq!(data_bytes(&data["c"]), b"d");
    }

    #[test]
    fn bad_base64_is_a_decoding_error() {
        let error = decode(&mut json!({"data": {"k": "abc!"}})).unwrap_err();
        assert_eq!(error.code, 400);
        assert_eq!(
            error.message,
            "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 3"
        );
    }

    #[test]
    fn type_rules_follow_validate_secret() {
        assert_eq!(
            check(json!({"type": "kubernetes.io/tls", "stringData": {"tls.crt": "x"}})),
            vec!["data[tls.key]: Required value"]
        );
        assert_eq!(
            check(json!({"type": "kubernetes.io/basic-auth"})),
            vec![
                "data[username]: Required value",
                "data[password]: Required value"
            ]
        );
        assert!(
            check(json!({"type": "kubernetes.io/basic-auth", "stringData": {"password": ""}}))
                .is_empty()
        );
        assert_eq!(
            check(json!({"type": "kubernetes.io/ssh-auth", "stringData": {"ssh-privatekey": ""}})),
            vec!["data[ssh-privatekey]: Required value"]
        );
        assert_eq!(
            check(
                json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{x"}})
            ),
            vec![
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": invalid character 'x' looking for beginning of object key string"
            ]
        );
        assert_eq!(
            check(
                json!({"type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{}"}})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            check(json!({"type": "kubernetes.io/dockerconfigjson"})),
            vec!["data[.dockerconfigjson]: Required value"]
        );
        assert_eq!(
            check(json!({"type": "kubernetes.io/dockercfg", "stringData": {".dockercfg": "[]"}})),
            vec![
                "data[.dockercfg]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"
            ]
        );
        assert_eq!(
            check(json!({"type": "kubernetes.io/service-account-token"})),
            vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        assert!(check(json!({"type": "example.com/custom"})).is_empty());
    }
}
