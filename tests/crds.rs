//! The committed CRDs (in `crds/` and the chart's copy) must be exactly what the types generate.
//! Regenerate with `make generate`.

#![allow(clippy::too_many_lines, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sync_client_operator::api;

fn check_dir(dir: &Path) {
    let crds = api::crds();
    let mut expected: Vec<String> = crds.iter().map(api::crd_file_name).collect();
    expected.sort();
    let mut present: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            Path::new(name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
        })
        .collect();
    present.sort();
    assert_eq!(
        present,
        expected,
        "{}: files differ from the generated CRDs; run `make generate`",
        dir.display()
    );
    for crd in &crds {
        let path = dir.join(api::crd_file_name(crd));
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            committed == api::crd_yaml(crd).unwrap(),
            "{} drifted from the Rust types; run `make generate`",
            path.display()
        );
    }
}

#[test]
fn committed_crds_match_the_types() {
    check_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("crds"));
}

#[test]
fn chart_crds_match_the_types() {
    check_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/sync-client-operator/files/crds"),
    );
}

/// Entra ID connections are configuration only: the operator signs in with one to deliver, and
/// what goes wrong shows on the credentials delivering through it (README), so they carry no
/// status that nothing would write.
const WITHOUT_STATUS: &[&str] = &[
    "entraconnections.syncclient.io",
    "clusterentraconnections.syncclient.io",
];

#[test]
fn every_crd_has_a_status_subresource_and_printer_columns() {
    for crd in api::crds() {
        let version = &crd.spec.versions[0];
        let name = crd.metadata.name.as_deref().unwrap_or_default();
        assert_eq!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            !WITHOUT_STATUS.contains(&name),
            "{name}: a status subresource exactly where the operator writes a status"
        );
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| !c.is_empty())
        );
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty())
        );
    }
}

#[test]
fn one_of_rules_are_enforced_by_the_schema() {
    let all: String = api::crds()
        .iter()
        .map(|c| api::crd_yaml(c).unwrap())
        .collect();
    for rule in [
        "has(self.vcenter) != has(self.bearerToken)",
        "!(has(self.caBundle) && has(self.caSecretRef))",
        "!(has(self.renewBefore) && has(self.renewBeforePercentage))",
    ] {
        assert!(all.contains(rule), "missing CEL rule {rule}");
    }
}
