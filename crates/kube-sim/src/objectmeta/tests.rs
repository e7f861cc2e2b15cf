//! Name formats and object metadata causes, worded as by apimachinery.

use super::*;

#[test]
fn qualified_names_follow_apimachinery() {
    assert!(qualified_name_errors("example.com/My_Name-1").is_empty());
    assert!(qualified_name_errors("a").is_empty());
    assert_eq!(
        qualified_name_errors("/x"),
        vec!["prefix part must be non-empty".to_owned()]
    );
    assert_eq!(
        qualified_name_errors("Example.com/x")[0],
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    assert_eq!(
        qualified_name_errors("a/"),
        vec![
            "name part must be non-empty".to_owned(),
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_owned()
        ]
    );
    assert_eq!(
        qualified_name_errors(&"n".repeat(64)),
        vec!["name part must be no more than 63 characters".to_owned()]
    );
    assert!(qualified_name_errors("a/b/c")[0].starts_with("a qualified name must consist"));
    assert_eq!(qualified_name_errors("-x").len(), 1);
}

#[test]
fn label_values_and_config_keys() {
    assert!(label_value_errors("").is_empty());
    assert!(label_value_errors("v1.2_3-x").is_empty());
    assert_eq!(label_value_errors("a b").len(), 1);
    assert_eq!(
        label_value_errors(&"v".repeat(64)),
        vec!["must be no more than 63 characters".to_owned()]
    );
    assert!(config_map_key_errors(".dockercfg").is_empty());
    assert!(config_map_key_errors("tls.crt").is_empty());
    assert_eq!(
        config_map_key_errors(".."),
        vec!["must not be '..'".to_owned()]
    );
    assert_eq!(
        config_map_key_errors("..x"),
        vec!["must not start with '..'".to_owned()]
    );
    assert_eq!(config_map_key_errors("a/b").len(), 1);
    assert_eq!(config_map_key_errors("").len(), 1);
    assert_eq!(config_map_key_errors(&"k".repeat(254)).len(), 1);
}

#[test]
fn object_meta_reports_each_problem() {
    let ok = json!({"metadata": {"name": "ok-name", "labels": {"a": "b"}}});
    assert!(validate_object_meta(&ok, NameRule::DnsSubdomain).is_empty());
    let bad_name = json!({"metadata": {"name": "Bad_Name"}});
    assert_eq!(
        validate_object_meta(&bad_name, NameRule::DnsSubdomain).len(),
        1
    );
    let bad_label = json!({"metadata": {"name": "x", "labels": {"t": "2024-01-01T00:00:00Z"}}});
    let causes = validate_object_meta(&bad_label, NameRule::DnsSubdomain);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "metadata.labels");
    let unnamed = json!({"metadata": {}});
    assert_eq!(
        validate_object_meta(&unnamed, NameRule::DnsSubdomain)[0].full_message(),
        "metadata.name: Required value: name or generateName is required"
    );
    let big = json!({"metadata": {"name": "x", "annotations": {"k": "v".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}}});
    assert_eq!(
        validate_object_meta(&big, NameRule::DnsSubdomain)[0].full_message(),
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    );
}

#[test]
fn names_by_rule() {
    assert!(NameRule::DnsSubdomain.errors("a.b-c", false).is_empty());
    assert!(NameRule::DnsSubdomain.errors("gen-", true).is_empty());
    assert_eq!(NameRule::DnsSubdomain.errors("gen-", false).len(), 1);
    assert_eq!(
        NameRule::DnsLabel.errors("a.b", false),
        vec!["must not contain dots".to_owned()]
    );
    assert!(
        NameRule::PathSegment
            .errors("system:auth-delegator", false)
            .is_empty()
    );
    assert_eq!(
        NameRule::PathSegment.errors("a/b", false),
        vec!["may not contain '/'".to_owned()]
    );
}
