//! What kube-apiserver refuses in the objects the operator writes (labels, annotations,
//! Secret data and types), with the real `Status` bodies, on every write path.
// Test scenarios read as scripts and fail loudly: long functions and unwrap/expect are fine.
#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use support::{Client, SECRETS, WIDGETS, secret, sim_with_fixtures, widget};

const QUALIFIED_NAME_PART: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn causes(reply: &Value) -> Vec<(String, String, String)> {
    reply["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("no causes in {reply}"))
        .iter()
        .map(|c| {
            (
                c["reason"].as_str().unwrap().to_owned(),
                c["field"].as_str().unwrap().to_owned(),
                c["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn cause(reason: &str, field: &str, message: &str) -> (String, String, String) {
    (reason.to_owned(), field.to_owned(), message.to_owned())
}

async fn create_secret(client: &Client, body: &Value) -> Value {
    let reply = client.post(SECRETS, body).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    reply.json()
}

#[tokio::test]
async fn label_values_and_annotations_are_checked_on_every_kind() {
    let (_sim, client) = sim_with_fixtures().await;
    let long = "v".repeat(64);
    let reply = create_secret(&client, &secret("s", &json!({"app": long}))).await;
    assert_eq!(
        reply["message"],
        "Secret \"s\" is invalid: metadata.labels: Invalid value: \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\": must be no more than 63 characters"
    );
    let reply = create_secret(&client, &secret("s", &json!({"app": "-x"}))).await;
    assert_eq!(
        causes(&reply),
        vec![cause(
            "FieldValueInvalid",
            "metadata.labels",
            &format!("Invalid value: \"-x\": {LABEL_VALUE}")
        )]
    );
    assert_eq!(
        client
            .post(
                SECRETS,
                &secret("ok", &json!({"app": "", "a.b/c_d": "x.y-z"}))
            )
            .await
            .status,
        201,
        "empty values and prefixed keys are fine"
    );

    let mut annotated = secret("s", &json!({}));
    annotated["metadata"]["annotations"] =
        json!({"Example.COM/Key": "upper case is fine", "x/": "v"});
    let reply = create_secret(&client, &annotated).await;
    assert_eq!(
        causes(&reply),
        vec![
            cause(
                "FieldValueInvalid",
                "metadata.annotations",
                "Invalid value: \"x/\": name part must be non-empty"
            ),
            cause(
                "FieldValueInvalid",
                "metadata.annotations",
                &format!("Invalid value: \"x/\": name part {QUALIFIED_NAME_PART}")
            ),
        ]
    );
    assert_eq!(
        reply["message"],
        format!(
            "Secret \"s\" is invalid: [metadata.annotations: Invalid value: \"x/\": name part must be non-empty, metadata.annotations: Invalid value: \"x/\": name part {QUALIFIED_NAME_PART}]"
        )
    );

    // 256 KiB of keys and values in total, counted over all annotations.
    let half = 128 * 1024;
    let mut big = secret("s", &json!({}));
    big["metadata"]["annotations"] = json!({"a": "x".repeat(half), "b": "y".repeat(half)});
    let reply = create_secret(&client, &big).await;
    assert_eq!(
        causes(&reply),
        vec![cause(
            "FieldValueTooLong",
            "metadata.annotations",
            "Too long: may not be more than 262144 bytes"
        )]
    );
    big["metadata"]["annotations"] = json!({"a": "x".repeat(half - 1), "b": "y".repeat(half - 1)});
    assert_eq!(
        client.post(SECRETS, &big).await.status,
        201,
        "exactly at the limit"
    );

    let mut labelled = widget("w", &json!({"owner": "team"}));
    labelled["metadata"]["labels"] = json!({"bad key": "v"});
    let reply = client.post(WIDGETS, &labelled).await;
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json()["message"],
        format!(
            "Widget.test.example \"w\" is invalid: metadata.labels: Invalid value: \"bad key\": name part {QUALIFIED_NAME_PART}"
        )
    );
}

#[tokio::test]
async fn secret_data_keys_and_size_are_limited() {
    let (_sim, client) = sim_with_fixtures().await;
    let reply = create_secret(
        &client,
        &json!({"metadata": {"name": "s"}, "data": {"bad key": "dg==", "..": "dg=="}}),
    )
    .await;
    assert_eq!(
        causes(&reply),
        vec![
            cause(
                "FieldValueInvalid",
                "data[..]",
                "Invalid value: \"..\": must not be '..'"
            ),
            cause(
                "FieldValueInvalid",
                "data[bad key]",
                &format!("Invalid value: \"bad key\": {CONFIG_KEY}")
            ),
        ]
    );
    let reply = create_secret(
        &client,
        &json!({"metadata": {"name": "s"}, "stringData": {"a/b": "v"}}),
    )
    .await;
    assert_eq!(
        causes(&reply)[0].1,
        "data[a/b]",
        "keys from stringData are data keys"
    );

    let mib = 1024 * 1024;
    let reply = create_secret(
        &client,
        &json!({"metadata": {"name": "s"}, "stringData": {"a": "x".repeat(mib / 2), "b": "y".repeat(mib / 2 + 1)}}),
    )
    .await;
    assert_eq!(
        reply["message"],
        "Secret \"s\" is invalid: data: Too long: may not be more than 1048576 bytes"
    );
    let at_limit = client
        .post(
            SECRETS,
            &json!({"metadata": {"name": "s"}, "stringData": {"a": "x".repeat(mib / 2), "b": "y".repeat(mib / 2)}}),
        )
        .await;
    assert_eq!(at_limit.status, 201);
}

#[tokio::test]
async fn well_known_secret_types_need_their_keys() {
    let (_sim, client) = sim_with_fixtures().await;
    let typed = |name: &str, secret_type: &str, string_data: Value| json!({"metadata": {"name": name}, "type": secret_type, "stringData": string_data});
    let cases = [
        (
            typed("tls", "kubernetes.io/tls", json!({"tls.crt": "c"})),
            "Secret \"tls\" is invalid: data[tls.key]: Required value",
        ),
        (
            typed("tls", "kubernetes.io/tls", json!({})),
            "Secret \"tls\" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]",
        ),
        (
            typed("basic", "kubernetes.io/basic-auth", json!({"other": "x"})),
            "Secret \"basic\" is invalid: [data[username]: Required value, data[password]: Required value]",
        ),
        (
            typed(
                "ssh",
                "kubernetes.io/ssh-auth",
                json!({"ssh-privatekey": ""}),
            ),
            "Secret \"ssh\" is invalid: data[ssh-privatekey]: Required value",
        ),
        (
            typed(
                "cfg",
                "kubernetes.io/dockercfg",
                json!({".dockercfg": "<html>"}),
            ),
            "Secret \"cfg\" is invalid: data[.dockercfg]: Invalid value: \"<secret contents redacted>\": invalid character '<' looking for beginning of value",
        ),
        (
            typed("cfgjson", "kubernetes.io/dockerconfigjson", json!({})),
            "Secret \"cfgjson\" is invalid: data[.dockerconfigjson]: Required value",
        ),
        (
            typed("sa", "kubernetes.io/service-account-token", json!({})),
            "Secret \"sa\" is invalid: metadata.annotations[kubernetes.io/service-account.name]: Required value",
        ),
    ];
    for (body, message) in cases {
        let reply = create_secret(&client, &body).await;
        assert_eq!(reply["message"], message);
        assert_eq!(reply["reason"], "Invalid");
    }
    let fine = [
        typed(
            "tls",
            "kubernetes.io/tls",
            json!({"tls.crt": "c", "tls.key": "k"}),
        ),
        typed("basic", "kubernetes.io/basic-auth", json!({"password": ""})),
        typed(
            "ssh",
            "kubernetes.io/ssh-auth",
            json!({"ssh-privatekey": "k"}),
        ),
        typed(
            "cfg",
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "{\"auths\":{}}"}),
        ),
        typed("custom", "example.com/anything", json!({})),
    ];
    for body in fine {
        let reply = client.post(SECRETS, &body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
}

#[tokio::test]
async fn secret_type_is_immutable_on_every_write_path() {
    let (_sim, client) = sim_with_fixtures().await;
    let created = client.post(SECRETS, &secret("s", &json!({}))).await.json();
    let expected = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Secret \"s\" is invalid: type: Invalid value: \"kubernetes.io/tls\": field is immutable",
        "reason": "Invalid",
        "details": {
            "name": "s",
            "kind": "Secret",
            "causes": [{
                "reason": "FieldValueInvalid",
                "message": "Invalid value: \"kubernetes.io/tls\": field is immutable",
                "field": "type",
            }],
        },
        "code": 422,
    });
    let path = format!("{SECRETS}/s");
    let mut put = created.clone();
    put["type"] = json!("kubernetes.io/tls");
    put["stringData"] = json!({"tls.crt": "c", "tls.key": "k"});
    let replies = [
        client.put(&path, &put).await,
        client.put(&format!("{path}?dryRun=All"), &put).await,
        client
            .patch(
                &path,
                "application/merge-patch+json",
                r#"{"type":"kubernetes.io/tls","stringData":{"tls.crt":"c","tls.key":"k"}}"#,
            )
            .await,
        client
            .patch(
                &path,
                "application/json-patch+json",
                r#"[{"op":"replace","path":"/type","value":"kubernetes.io/tls"},{"op":"add","path":"/stringData","value":{"tls.crt":"c","tls.key":"k"}}]"#,
            )
            .await,
        client
            .patch(
                &format!("{path}?fieldManager=op&force=true"),
                "application/apply-patch+yaml",
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\nstringData: {tls.crt: c, tls.key: k}\n",
            )
            .await,
    ];
    for reply in replies {
        assert_eq!(reply.status, 422, "{}", reply.text);
        assert_eq!(reply.json(), expected);
    }
    let unchanged = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"type":"Opaque"}"#,
        )
        .await;
    assert_eq!(unchanged.status, 200, "the same type is no change");
    let defaulted = client
        .patch(&path, "application/merge-patch+json", r#"{"type":null}"#)
        .await;
    assert_eq!(
        defaulted.status, 200,
        "an absent type defaults to Opaque again"
    );
}

#[tokio::test]
async fn immutable_secrets_keep_their_data() {
    let (_sim, client) = sim_with_fixtures().await;
    let mut frozen = secret("s", &json!({}));
    frozen["immutable"] = json!(true);
    assert_eq!(client.post(SECRETS, &frozen).await.status, 201);
    let path = format!("{SECRETS}/s");

    let data = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"data":{"k":"eA=="}}"#,
        )
        .await;
    assert_eq!(data.status, 422);
    assert_eq!(
        data.json()["message"],
        "Secret \"s\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
    let thaw = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"immutable":false}"#,
        )
        .await;
    assert_eq!(
        thaw.json()["message"],
        "Secret \"s\" is invalid: immutable: Forbidden: field is immutable when `immutable` is set"
    );
    let labels = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"rotated":"yes"}}}"#,
        )
        .await;
    assert_eq!(labels.status, 200, "metadata stays writable");
}

#[tokio::test]
async fn finalizers_cannot_be_added_while_deleting() {
    let (_sim, client) = sim_with_fixtures().await;
    let mut guarded = secret("s", &json!({}));
    guarded["metadata"]["finalizers"] = json!(["example.com/a"]);
    client.post(SECRETS, &guarded).await;
    let path = format!("{SECRETS}/s");
    client.delete(&path).await;
    let added = client
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":["example.com/a","example.com/b"]}}"#,
        )
        .await;
    assert_eq!(added.status, 422);
    assert_eq!(
        added.json()["message"],
        "Secret \"s\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/b\"}"
    );
}
