//! Bearer-token authentication and RBAC authorization (over plain HTTP, so the exact wire
//! answers can be checked): who may do what, and the 401/403 `Status` bodies.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{Client, SECRETS, secret};
use sync_client_kube_sim::{KubeSim, KubeSimConfig};

async fn rbac_sim() -> KubeSim {
    let sim = KubeSim::start_with(KubeSimConfig {
        rbac: true,
        ..KubeSimConfig::default()
    })
    .await
    .expect("simulator starts");
    sim.apply_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ops}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: ops}\n",
    )
    .unwrap();
    sim
}

fn operator_role(rules: &Value) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: op, namespace: ops}}\nrules: {rules}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: op, namespace: ops}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: op}}\nsubjects:\n- {{kind: ServiceAccount, name: op}}\n"
    )
}

const OPS_SECRETS: &str = "/api/v1/namespaces/ops/secrets";
const SA_USER: &str = "system:serviceaccount:ops:op";

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized() {
    let sim = rbac_sim().await;
    let expected = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
    });
    for token in [None, Some("sim-token"), Some("")] {
        let client = Client::with_token(&sim, token);
        for path in [OPS_SECRETS, "/api", "/version"] {
            let reply = client.get(path).await;
            assert_eq!(reply.status, 401, "{token:?} {path}");
            assert_eq!(reply.json(), expected);
        }
    }
    let unauthenticated = sim.requests();
    assert!(unauthenticated.iter().all(|r| r.user.is_none()));

    let admin = Client::with_token(&sim, Some(&sim.admin_token()));
    assert_eq!(admin.get(OPS_SECRETS).await.status, 200);
    assert_eq!(
        sim.requests().last().unwrap().user.as_deref(),
        Some("admin")
    );
}

#[tokio::test]
async fn a_service_account_may_do_what_its_role_allows_and_nothing_else() {
    let sim = rbac_sim().await;
    let token = sim.service_account_token("ops", "op");
    let client = Client::with_token(&sim, Some(&token));

    // Discovery is open to every authenticated user.
    for path in [
        "/api",
        "/apis",
        "/api/v1",
        "/version",
        "/openapi/v3",
        "/healthz",
    ] {
        assert_eq!(client.get(path).await.status, 200, "{path}");
    }

    let denied = client.get(OPS_SECRETS).await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.json(),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "secrets is forbidden: User \"system:serviceaccount:ops:op\" cannot list resource \"secrets\" in API group \"\" in the namespace \"ops\"",
            "reason": "Forbidden",
            "details": {"kind": "secrets"},
            "code": 403,
        })
    );
    assert_eq!(
        sim.requests().last().unwrap().user.as_deref(),
        Some(SA_USER)
    );

    sim.apply_yaml(&operator_role(&json!([
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"], "resourceNames": ["op-lock"]},
    ])))
    .unwrap();
    assert_eq!(client.get(OPS_SECRETS).await.status, 200);
    assert_eq!(
        client
            .post(OPS_SECRETS, &secret("s", &json!({})))
            .await
            .status,
        201
    );
    assert_eq!(client.get(&format!("{OPS_SECRETS}/s")).await.status, 200);

    let update = client
        .patch(
            &format!("{OPS_SECRETS}/s"),
            "application/merge-patch+json",
            r#"{"data":{"x":"eA=="}}"#,
        )
        .await;
    assert_eq!(update.status, 403);
    assert_eq!(
        update.json()["message"],
        "secrets \"s\" is forbidden: User \"system:serviceaccount:ops:op\" cannot patch resource \"secrets\" in API group \"\" in the namespace \"ops\""
    );
    assert_eq!(
        update.json()["details"],
        json!({"name": "s", "kind": "secrets"})
    );
    let dry = client
        .patch(
            &format!("{OPS_SECRETS}/s?dryRun=All"),
            "application/merge-patch+json",
            "{}",
        )
        .await;
    assert_eq!(dry.status, 403, "a dry run needs the same permission");

    let elsewhere = client.get(SECRETS).await;
    assert_eq!(elsewhere.status, 403, "a Role grants only its namespace");
    let everywhere = client.get("/api/v1/secrets").await;
    assert_eq!(
        everywhere.json()["message"],
        "secrets is forbidden: User \"system:serviceaccount:ops:op\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
    );

    // resourceNames: only the named lease, and never list or create.
    let leases = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";
    let lease = json!({"metadata": {"name": "op-lock"}, "spec": {}});
    assert_eq!(
        client.post(leases, &lease).await.status,
        403,
        "create has no name to match"
    );
    sim.create(
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "op-lock", "namespace": "ops"}, "spec": {}}),
    )
    .unwrap();
    assert_eq!(client.get(&format!("{leases}/op-lock")).await.status, 200);
    assert_eq!(client.get(&format!("{leases}/other")).await.status, 403);
    let other = client.get(leases).await;
    assert_eq!(
        other.json()["message"],
        "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:ops:op\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"ops\""
    );
    assert_eq!(
        other.json()["details"],
        json!({"kind": "leases", "group": "coordination.k8s.io"})
    );
    assert_eq!(
        client
            .get(&format!("{leases}?fieldSelector=metadata.name%3Dop-lock"))
            .await
            .status,
        200,
        "a list selecting one name by field selector is about that name"
    );
}

#[tokio::test]
async fn cluster_roles_groups_users_and_subresources() {
    let sim = rbac_sim().await;
    let client = Client::with_token(&sim, Some(&sim.service_account_token("ops", "op")));
    sim.apply_yaml(
        r"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.x.io}
spec:
  group: x.io
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: x.io/v1
kind: Thing
metadata: {name: t, namespace: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: thing-status}
rules:
- {apiGroups: [x.io], resources: [things], verbs: [get, list, watch]}
- {apiGroups: [x.io], resources: [things/status], verbs: [update, patch]}
- {nonResourceURLs: [/metrics], verbs: [get]}
",
    )
    .unwrap();
    let things = "/apis/x.io/v1/namespaces/ops/things";
    assert_eq!(client.get(things).await.status, 403);

    // A RoleBinding to a ClusterRole grants it in the binding's namespace only.
    sim.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: status, namespace: ops}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: thing-status}\nsubjects: [{kind: Group, name: 'system:serviceaccounts:ops'}]\n",
    )
    .unwrap();
    assert_eq!(client.get(things).await.status, 200);
    assert_eq!(client.get("/apis/x.io/v1/things").await.status, 403);
    let status = client
        .patch(
            &format!("{things}/t/status"),
            "application/merge-patch+json",
            r#"{"status":{"ok":true}}"#,
        )
        .await;
    assert_eq!(status.status, 200, "{}", status.text);
    let main = client
        .patch(
            &format!("{things}/t"),
            "application/merge-patch+json",
            r#"{"spec":{"x":1}}"#,
        )
        .await;
    assert_eq!(main.status, 403);
    let metrics = client.get("/metrics").await;
    assert_eq!(
        metrics.status, 403,
        "non-resource URLs need a ClusterRoleBinding"
    );
    assert_eq!(
        metrics.json()["message"],
        "forbidden: User \"system:serviceaccount:ops:op\" cannot get path \"/metrics\""
    );

    // A ClusterRoleBinding to the user by name grants it everywhere.
    sim.apply_yaml(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: status}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: thing-status}\nsubjects: [{kind: User, name: 'system:serviceaccount:ops:op'}]\n",
    )
    .unwrap();
    assert_eq!(client.get("/apis/x.io/v1/things").await.status, 200);
    assert_eq!(
        client.get("/metrics").await.status,
        404,
        "allowed, and the simulator serves no /metrics"
    );
}

#[tokio::test]
async fn service_account_tokens_die_with_their_service_account() {
    let sim = rbac_sim().await;
    sim.apply_yaml(&operator_role(&json!([
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
    ])))
    .unwrap();
    let token = sim.service_account_token("ops", "op");
    let client = Client::with_token(&sim, Some(&token));
    assert_eq!(client.get(OPS_SECRETS).await.status, 200);

    sim.delete("v1", "serviceaccounts", Some("ops"), "op")
        .unwrap();
    assert_eq!(client.get(OPS_SECRETS).await.status, 401);
    sim.apply_yaml("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: ops}\n")
        .unwrap();
    assert_eq!(
        client.get(OPS_SECRETS).await.status,
        401,
        "a token is bound to the ServiceAccount it was issued for, not to its name"
    );
    let fresh = Client::with_token(&sim, Some(&sim.service_account_token("ops", "op")));
    assert_eq!(fresh.get(OPS_SECRETS).await.status, 200);

    let unborn = sim.service_account_token("ops", "later");
    let later = Client::with_token(&sim, Some(&unborn));
    assert_eq!(later.get("/api").await.status, 401, "no ServiceAccount yet");
    sim.apply_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: later, namespace: ops}\n",
    )
    .unwrap();
    assert_eq!(later.get("/api").await.status, 200);
}

#[tokio::test]
async fn self_subject_access_reviews_answer_for_the_caller() {
    let sim = rbac_sim().await;
    sim.apply_yaml(&operator_role(&json!([
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    ])))
    .unwrap();
    let client = Client::with_token(&sim, Some(&sim.service_account_token("ops", "op")));
    let review = |verb: &str| {
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "ops", "verb": verb, "resource": "secrets"}},
        })
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let allowed = client.post(path, &review("get")).await;
    assert_eq!(allowed.status, 201);
    assert_eq!(allowed.json()["status"]["allowed"], true);
    assert_eq!(
        allowed.json()["status"]["reason"],
        "RBAC: allowed by RoleBinding \"op/ops\" of Role \"op\" to User \"system:serviceaccount:ops:op\""
    );
    let denied = client.post(path, &review("delete")).await.json();
    assert_eq!(denied["status"]["allowed"], false);
    let admin = Client::with_token(&sim, Some(&sim.admin_token()));
    assert_eq!(
        admin.post(path, &review("delete")).await.json()["status"]["allowed"],
        true
    );
}

#[tokio::test]
async fn without_rbac_every_token_is_accepted_and_known_ones_are_recorded() {
    let sim = KubeSim::start().await.unwrap();
    sim.apply_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: default}\n",
    )
    .unwrap();
    let token = sim.service_account_token("default", "op");
    sim.clear_requests();
    for token in [
        None,
        Some("whatever"),
        Some(token.as_str()),
        Some(&sim.admin_token()),
    ] {
        assert_eq!(
            Client::with_token(&sim, token).get(SECRETS).await.status,
            200
        );
    }
    let users: Vec<Option<String>> = sim.requests().into_iter().map(|r| r.user).collect();
    assert_eq!(
        users,
        vec![
            None,
            None,
            Some("system:serviceaccount:default:op".to_owned()),
            Some("admin".to_owned())
        ]
    );
}
