//! The resource types the simulator serves: a fixed set of built-in kinds plus every resource
//! defined by a `CustomResourceDefinition` created through it.

mod crd;

use std::sync::Arc;

use serde_json::Value;

use crate::error::Subject;

use crd::resource_from_crd;
pub(crate) use crd::{crd_status, validate_crd};

/// The verbs every served resource supports.
pub(crate) const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served version of a resource type.
#[derive(Debug, Clone)]
pub(crate) struct VersionInfo {
    pub name: String,
    /// `openAPIV3Schema` of a custom resource version; `None` for built-in kinds.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns` of a custom resource version.
    pub printer_columns: Vec<Value>,
}

/// A resource type (group + plural); objects are stored once, whatever version is asked for.
#[derive(Debug, Clone)]
pub(crate) struct ResourceType {
    pub group: String,
    /// Served versions, the preferred (storage) one first.
    pub versions: Vec<VersionInfo>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource: writes to the main resource keep the live status and
    /// writes to `/status` change only the status.
    pub status_subresource: bool,
    /// `metadata.generation` is maintained (bumped on changes outside metadata and status).
    pub tracks_generation: bool,
    /// Defined by a CRD (name of the CRD), as opposed to built in.
    pub crd: Option<String>,
    /// The group whose objects this type reads and writes: its own, except for
    /// `events.k8s.io` Events, which are the core `v1` Events in another form (`events.rs`).
    pub storage_group: String,
}

impl ResourceType {
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn version(&self, version: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.name == version)
    }

    pub fn subject<'a>(&'a self, name: &'a str) -> Subject<'a> {
        Subject {
            group: &self.group,
            plural: &self.plural,
            kind: &self.kind,
            name,
        }
    }

    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }
}

#[derive(Clone, Copy)]
struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    generation: bool,
    categories: &'static [&'static str],
}

const fn builtin(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        kind,
        namespaced,
        short_names,
        status: false,
        generation: false,
        categories: &[],
    }
}

const fn with_status(b: Builtin, generation: bool, categories: &'static [&'static str]) -> Builtin {
    Builtin {
        status: true,
        generation,
        categories,
        ..b
    }
}

const ALL: &[&str] = &["all"];

const BUILTINS: &[Builtin] = &[
    with_status(
        builtin("", "v1", "namespaces", "Namespace", false, &["ns"]),
        false,
        &[],
    ),
    builtin("", "v1", "secrets", "Secret", true, &[]),
    builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
    builtin("", "v1", "events", "Event", true, &["ev"]),
    builtin("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
    with_status(builtin("", "v1", "pods", "Pod", true, &["po"]), false, ALL),
    with_status(
        builtin("", "v1", "services", "Service", true, &["svc"]),
        false,
        ALL,
    ),
    with_status(
        builtin("apps", "v1", "deployments", "Deployment", true, &["deploy"]),
        true,
        ALL,
    ),
    with_status(
        builtin("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"]),
        true,
        ALL,
    ),
    with_status(
        builtin("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"]),
        true,
        ALL,
    ),
    with_status(
        builtin("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"]),
        true,
        ALL,
    ),
    builtin("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
    builtin("events.k8s.io", "v1", "events", "Event", true, &["ev"]),
    with_status(
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
        ),
        true,
        &["api-extensions"],
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
    ),
    with_status(
        builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
        ),
        true,
        &[],
    ),
    builtin(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
    ),
];

/// All resource types, built-in first, then CRD-defined ones in creation order.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let types = BUILTINS
            .iter()
            .map(|b| {
                Arc::new(ResourceType {
                    group: b.group.to_owned(),
                    versions: vec![VersionInfo {
                        name: b.version.to_owned(),
                        schema: None,
                        printer_columns: Vec::new(),
                    }],
                    plural: b.plural.to_owned(),
                    singular: b.kind.to_ascii_lowercase(),
                    kind: b.kind.to_owned(),
                    list_kind: format!("{}List", b.kind),
                    namespaced: b.namespaced,
                    short_names: b.short_names.iter().map(|s| (*s).to_owned()).collect(),
                    categories: b.categories.iter().map(|s| (*s).to_owned()).collect(),
                    status_subresource: b.status,
                    tracks_generation: b.generation,
                    crd: None,
                    storage_group: if crate::events::is_events_v1(b.group, b.plural) {
                        String::new()
                    } else {
                        b.group.to_owned()
                    },
                })
            })
            .collect();
        Self { types }
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.version(version).is_some())
            .cloned()
    }

    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind && t.version(version).is_some())
            .cloned()
    }

    /// Groups in discovery order, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            let pos = if let Some(pos) = groups.iter().position(|(g, _)| *g == t.group) {
                pos
            } else {
                groups.push((t.group.clone(), Vec::new()));
                groups.len() - 1
            };
            let entry = &mut groups[pos].1;
            for v in &t.versions {
                if !entry.contains(&v.name) {
                    entry.push(v.name.clone());
                }
            }
        }
        groups
    }

    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<ResourceType>> + 'a {
        self.types
            .iter()
            .filter(move |t| t.group == group && t.version(version).is_some())
    }

    /// Registers (or re-registers, after an update) the resource a CRD defines.
    pub fn register_crd(&mut self, crd: &Value) {
        let Some(resource) = resource_from_crd(crd) else {
            return;
        };
        self.types
            .retain(|t| !(t.group == resource.group && t.plural == resource.plural));
        self.types.push(Arc::new(resource));
    }

    pub fn unregister_crd(&mut self, crd_name: &str) {
        self.types.retain(|t| t.crd.as_deref() != Some(crd_name));
    }
}
