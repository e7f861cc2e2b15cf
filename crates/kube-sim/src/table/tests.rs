//! JSONPath reads and kubectl ages.

use super::columns::human_duration;
use super::jsonpath::{evaluate, parse_jsonpath};
use super::*;

#[test]
fn jsonpath_subset_reads_conditions_and_fields() {
    let obj = json!({"status": {"expiresAt": "x", "conditions": [
        {"type": "Issuing", "status": "False"}, {"type": "Ready", "status": "True"}
    ]}});
    let ready = parse_jsonpath(r#".status.conditions[?(@.type=="Ready")].status"#).unwrap();
    assert_eq!(evaluate(&ready, &obj), vec![json!("True")]);
    let expires = parse_jsonpath(".status.expiresAt").unwrap();
    assert_eq!(evaluate(&expires, &obj), vec![json!("x")]);
    let first = parse_jsonpath("{.status.conditions[0].type}").unwrap();
    assert_eq!(evaluate(&first, &obj), vec![json!("Issuing")]);
    assert!(evaluate(&parse_jsonpath(".spec.missing").unwrap(), &obj).is_empty());
}

#[test]
fn ages_read_like_kubectl() {
    assert_eq!(human_duration(5), "5s");
    assert_eq!(human_duration(200), "3m20s");
    assert_eq!(human_duration(3600 * 5), "5h");
    assert_eq!(human_duration(3600 * 24 * 3 + 3600), "3d1h");
}
