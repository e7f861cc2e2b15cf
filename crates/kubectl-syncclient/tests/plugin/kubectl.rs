//! The stock `kubectl` runs the binary as the `syncclient` plugin.

use std::path::PathBuf;

use serde_json::json;

use crate::harness::{World, plugin_binary, settled_status, workspace};
use crate::status::lines;

/// `$KUBECTL`, else `<repo>/.tools/bin/kubectl` (scripts/install-tools.sh), else `kubectl` on
/// `PATH`. A missing kubectl fails the test: it is part of the project's tools.
fn kubectl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let tools = workspace().join(".tools/bin/kubectl");
    if tools.is_file() {
        return tools;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("kubectl not found: set KUBECTL, run scripts/install-tools.sh (make tools), or put it on PATH")
        })
}

#[tokio::test]
async fn kubectl_runs_the_plugin_from_path() {
    let world = World::start().await;
    world.broker("team-a", "vcenter", Some(("True", "Authenticated")));
    world.credential("team-a", "okta-scim", &json!({}), Some(settled_status()));

    // Only the plugin on PATH, under the name kubectl looks for.
    let bin = world.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(plugin_binary(), bin.join("kubectl-syncclient")).unwrap();
    let path = bin.to_str().unwrap();
    let kubeconfig = world.kubeconfig.to_str().unwrap();
    let kubectl = kubectl_binary();
    let env = [("PATH", path), ("KUBECONFIG", kubeconfig)];

    let listed = world.run_raw(&kubectl, &["plugin", "list"], &env).await;
    assert!(
        listed
            .stdout
            .contains(&bin.join("kubectl-syncclient").display().to_string()),
        "{listed:?}"
    );

    let run = world
        .run_raw(&kubectl, &["syncclient", "status", "-n", "team-a"], &env)
        .await;
    let table = lines(run.ok());
    assert_eq!(table[0][..3], ["NAME", "READY", "REASON"]);
    assert_eq!(table[1][..3], ["okta-scim", "True", "CredentialCurrent"]);
    assert_eq!(
        (table[0][7].as_str(), table[1][7].as_str()),
        ("DELIVERED", "-")
    );

    let help = world
        .run_raw(&kubectl, &["syncclient", "--help"], &env)
        .await;
    assert!(help.ok().contains("kubectl syncclient"), "{help:?}");
}
