//! Errors say what is wrong: a missing credential, a cluster without the operator's CRDs, a
//! refusal (with the API server's own message), an unreachable server, a bad context.

use serde_json::json;
use sync_client_kube_sim::Fault;

use crate::harness::{ROTATE_REQUEST, World, settled_status};
use crate::status::lines;

/// Why the API server refuses (the simulator frames it as `<resource> "<name>" is forbidden: <why>`).
const WHY: &str = "User \"jane\" cannot patch resource \"syncclientcredentials\" in API group \"syncclient.io\" in the namespace \"team-a\"";
const FORBIDDEN: &str = "syncclientcredentials.syncclient.io \"okta-scim\" is forbidden: User \"jane\" cannot patch resource \"syncclientcredentials\" in API group \"syncclient.io\" in the namespace \"team-a\"";

#[tokio::test]
async fn a_missing_credential_is_named_with_its_namespace() {
    let world = World::start().await;
    for args in [
        &["status", "nope", "-n", "team-a"][..],
        &["rotate", "nope", "-n", "team-a", "--yes"],
        &["preflight", "nope", "-n", "team-a"],
        &["history", "nope", "-n", "team-a"],
    ] {
        let run = world.run(args).await;
        run.assert_code(1);
        assert!(
            run.stderr
                .contains("error: SyncClientCredential \"nope\" not found in namespace \"team-a\""),
            "{args:?}: {run:?}"
        );
    }
}

#[tokio::test]
async fn a_cluster_without_the_crds_says_the_operator_is_not_installed() {
    let world = World::without_crds().await;
    for args in [
        &["status"][..],
        &["status", "-A"],
        &["status", "okta-scim"],
        &["rotate", "okta-scim", "--yes"],
        &["preflight", "okta-scim", "--wait"],
        &["history", "okta-scim"],
    ] {
        let run = world.run(args).await;
        run.assert_code(1);
        assert!(
            run.stderr.contains(
                "the server does not serve syncclientcredentials.syncclient.io: the sync-client-operator CRDs are not installed"
            ),
            "{args:?}: {run:?}"
        );
    }
}

#[tokio::test]
async fn a_refusal_shows_the_api_servers_message_and_writes_nothing() {
    let world = World::start().await;
    world.credential("team-a", "okta-scim", &json!({}), Some(settled_status()));
    world.sim.inject(
        Fault::fail("patch", "syncclientcredentials")
            .status(403)
            .message(WHY)
            .always(),
    );
    for args in [
        &["rotate", "okta-scim", "-n", "team-a", "--yes"][..],
        &["preflight", "okta-scim", "-n", "team-a", "--wait"],
    ] {
        let run = world.run(args).await;
        run.assert_code(1);
        assert!(
            run.stderr
                .contains(&format!("error: permission denied: {FORBIDDEN}")),
            "{args:?}: {run:?}"
        );
    }
    let annotations = &world.get_credential("team-a", "okta-scim")["metadata"]["annotations"];
    assert!(annotations.get(ROTATE_REQUEST).is_none(), "{annotations}");

    world.sim.clear_faults();
    let list_refused = "syncclientcredentials.syncclient.io is forbidden: User \"jane\" cannot list resource \"syncclientcredentials\"";
    world.sim.inject(
        Fault::fail("list", "syncclientcredentials")
            .status(403)
            .message("User \"jane\" cannot list resource \"syncclientcredentials\""),
    );
    let run = world.run(&["status", "-n", "team-a"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains(list_refused), "{run:?}");
}

#[tokio::test]
async fn a_broker_that_cannot_be_read_does_not_hide_the_credentials() {
    let world = World::start().await;
    world.broker("team-a", "vcenter", Some(("True", "Authenticated")));
    world.credential("team-a", "okta-scim", &json!({}), Some(settled_status()));
    world.sim.inject(
        Fault::fail("get", "identitybrokers")
            .status(403)
            .message("User \"jane\" cannot get resource \"identitybrokers\"")
            .always(),
    );
    let run = world.run(&["status", "-n", "team-a"]).await;
    assert_eq!(
        lines(run.ok())[1].last().unwrap(),
        "IdentityBroker/vcenter (Unreadable)"
    );
    let json_run = world
        .run(&["status", "okta-scim", "-n", "team-a", "-o", "json"])
        .await;
    let summary: serde_json::Value = serde_json::from_str(json_run.ok()).unwrap();
    assert_eq!(
        summary["broker"],
        json!({"kind": "IdentityBroker", "name": "vcenter", "state": "Unreadable",
               "error": "identitybrokers.syncclient.io \"vcenter\" is forbidden: User \"jane\" cannot get resource \"identitybrokers\""})
    );
}

#[tokio::test]
async fn an_unreachable_server_and_an_unknown_context_are_reported() {
    let world = World::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = world.dir.path().join("unreachable");
    std::fs::write(
        &unreachable,
        std::fs::read_to_string(&world.kubeconfig)
            .unwrap()
            .replace(&world.sim.url(), &format!("http://127.0.0.1:{port}")),
    )
    .unwrap();
    let plugin = crate::harness::plugin_binary();
    let run = world
        .run_raw(
            &plugin,
            &["--kubeconfig", unreachable.to_str().unwrap(), "status"],
            &[],
        )
        .await;
    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!(
            "error: cannot reach the Kubernetes API server at http://127.0.0.1:{port}/"
        )),
        "{run:?}"
    );

    let run = world.run(&["--context", "nowhere", "status"]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("nowhere"), "{run:?}");

    // Without any kubeconfig (none given, none in $HOME) and outside a cluster.
    let run = world.run_raw(&plugin, &["status"], &[]).await;
    run.assert_code(1);
    assert!(run.stderr.contains("no kubeconfig"), "{run:?}");
}

#[tokio::test]
async fn kubeconfig_env_is_used_without_the_flag() {
    let world = World::start().await;
    world.credential("team-a", "okta-scim", &json!({}), Some(settled_status()));
    let plugin = crate::harness::plugin_binary();
    let run = world
        .run_raw(
            &plugin,
            &["status", "-n", "team-a"],
            &[("KUBECONFIG", world.kubeconfig.to_str().unwrap())],
        )
        .await;
    assert_eq!(lines(run.ok())[1][0], "okta-scim");
}
