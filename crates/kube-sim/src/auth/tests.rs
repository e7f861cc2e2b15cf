//! Request attributes, rule matching, and the wording of denials.

use super::*;

fn resource(method: &str, path: &str, query: &[(&str, &str)]) -> ResourceAttributes {
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match attributes(method, path, &query) {
        Attributes::Resource(a) => a,
        other @ Attributes::NonResource { .. } => panic!("not a resource request: {other:?}"),
    }
}

#[test]
fn request_info_follows_the_api_server() {
    let a = resource("GET", "/api/v1/namespaces/ns/secrets/s", &[]);
    assert_eq!(
        (
            a.verb.as_str(),
            a.namespace.as_str(),
            a.resource.as_str(),
            a.name.as_str()
        ),
        ("get", "ns", "secrets", "s")
    );
    let a = resource("GET", "/api/v1/namespaces/ns/secrets", &[("watch", "1")]);
    assert_eq!(a.verb, "watch");
    let a = resource("GET", "/api/v1/watch/namespaces/ns/secrets", &[]);
    assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("watch", "ns"));
    let a = resource(
        "GET",
        "/api/v1/secrets",
        &[("fieldSelector", "metadata.name=s")],
    );
    assert_eq!(
        (a.verb.as_str(), a.name.as_str(), a.namespace.as_str()),
        ("list", "s", "")
    );
    let a = resource(
        "DELETE",
        "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
        &[],
    );
    assert_eq!(
        (a.verb.as_str(), a.group.as_str()),
        ("deletecollection", "coordination.k8s.io")
    );
    let a = resource("PATCH", "/apis/x.io/v1/namespaces/ns/things/t/status", &[]);
    assert_eq!(
        (a.resource.as_str(), a.subresource.as_str()),
        ("things", "status")
    );
    let a = resource("GET", "/api/v1/namespaces/ns", &[]);
    assert_eq!(
        (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
        ("namespaces", "ns", "ns")
    );
    assert_eq!(
        attributes("GET", "/apis/x.io/v1", &[]),
        Attributes::NonResource {
            verb: "get".to_owned(),
            path: "/apis/x.io/v1".to_owned()
        }
    );
}

#[test]
fn rules_match_verbs_groups_resources_and_names() {
    let attrs = Attributes::Resource(resource(
        "PUT",
        "/apis/x.io/v1/namespaces/ns/things/t/status",
        &[],
    ));
    let rule = |r: Value| rule_allows(&r, &attrs);
    assert!(rule(
        json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things/status"]})
    ));
    assert!(rule(
        json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/status"]})
    ));
    assert!(!rule(
        json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things"]})
    ));
    assert!(rule(
        json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things/status"], "resourceNames": ["t"]})
    ));
    assert!(!rule(
        json!({"verbs": ["update"], "apiGroups": ["x.io"], "resources": ["things/status"], "resourceNames": ["u"]})
    ));
    assert!(!rule(
        json!({"verbs": ["get"], "apiGroups": ["x.io"], "resources": ["things/status"]})
    ));
    let list = Attributes::Resource(resource("GET", "/apis/x.io/v1/namespaces/ns/things", &[]));
    assert!(!rule_allows(
        &json!({"verbs": ["list"], "apiGroups": ["x.io"], "resources": ["things"], "resourceNames": ["t"]}),
        &list
    ));
    let metrics = Attributes::NonResource {
        verb: "get".to_owned(),
        path: "/metrics/x".to_owned(),
    };
    assert!(rule_allows(
        &json!({"verbs": ["get"], "nonResourceURLs": ["/metrics/*"]}),
        &metrics
    ));
    assert!(!rule_allows(
        &json!({"verbs": ["get"], "nonResourceURLs": ["/metrics"]}),
        &metrics
    ));
}

#[test]
fn forbidden_messages_name_the_scope() {
    let user = User::service_account("ns", "sa");
    let attrs = Attributes::Resource(resource("PUT", "/api/v1/namespaces/ns/secrets/x", &[]));
    let error = forbidden(&user, &attrs);
    assert_eq!(
        error.message,
        "secrets \"x\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot update resource \"secrets\" in API group \"\" in the namespace \"ns\""
    );
    assert_eq!(error.details, Some(json!({"name": "x", "kind": "secrets"})));
    let cluster = Attributes::Resource(resource("GET", "/apis/coordination.k8s.io/v1/leases", &[]));
    assert_eq!(
        forbidden(&user, &cluster).message,
        "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:ns:sa\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" at the cluster scope"
    );
}
