//! YAML (and therefore JSON) bodies and manifests.

use serde_json::Value;

use crate::error::SimError;

/// One document: an apply-patch body or a YAML request body.
pub(crate) fn parse_one(body: &[u8]) -> Result<Value, SimError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| SimError::bad_request("the request body is not UTF-8"))?;
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return Ok(value);
    }
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| SimError::bad_request(format!("error decoding YAML: {e}")))
}

/// Every non-empty document of a multi-document manifest; `List` kinds are flattened.
pub(crate) fn parse_manifests(text: &str) -> Result<Vec<Value>, SimError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| SimError::bad_request(format!("error decoding YAML: {e}")))?;
    let mut objects = Vec::new();
    for document in documents {
        match document {
            Value::Null => {}
            Value::Object(ref map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"))
                    && map.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = map.get("items") {
                    objects.extend(items.iter().cloned());
                }
            }
            other => objects.push(other),
        }
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_multi_document_yaml_with_lists() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  n: \"1\"\n---\n# empty\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n";
        let objects = parse_manifests(text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0]["data"]["n"], json!("1"));
        assert_eq!(objects[1]["kind"], json!("Secret"));
    }
}
