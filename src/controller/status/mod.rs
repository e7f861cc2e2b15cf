//! Status: pure builders that compute a resource's new status from what happened
//! ([`credential`], [`broker`]), and one guarded writer that patches it only when it changed.

pub mod broker;
pub mod cached;
pub mod credential;
pub mod delivery;
pub mod due;
pub mod notes;

#[cfg(test)]
mod broker_tests;
#[cfg(test)]
mod cached_tests;
#[cfg(test)]
mod credential_tests;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Error;
use crate::api::{
    BrokerStatus, ClusterIdentityBroker, IdentityBroker, SyncClientCredential,
    SyncClientCredentialStatus,
};

/// Longest failure message kept in status and events.
pub const MAX_MESSAGE_LEN: usize = 300;

/// Cuts a message to [`MAX_MESSAGE_LEN`] characters on one line.
pub fn bounded(message: &str) -> String {
    let single_line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if single_line.chars().count() <= MAX_MESSAGE_LEN {
        return single_line;
    }
    let mut cut: String = single_line.chars().take(MAX_MESSAGE_LEN - 1).collect();
    cut.push('…');
    cut
}

/// A resource with a status subresource the operator writes.
pub trait HasStatus:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    type Status: Serialize + PartialEq + Clone + Default + Send + Sync;
    fn current_status(&self) -> Option<&Self::Status>;
    /// The API for this kind: namespaced kinds in `namespace`, cluster kinds ignore it.
    fn api(client: Client, namespace: Option<&str>) -> Api<Self>;
}

impl HasStatus for SyncClientCredential {
    type Status = SyncClientCredentialStatus;
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
        namespaced_or_all(client, namespace)
    }
}

impl HasStatus for IdentityBroker {
    type Status = BrokerStatus;
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(client: Client, namespace: Option<&str>) -> Api<Self> {
        namespaced_or_all(client, namespace)
    }
}

impl HasStatus for ClusterIdentityBroker {
    type Status = BrokerStatus;
    fn current_status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(client: Client, _namespace: Option<&str>) -> Api<Self> {
        Api::all(client)
    }
}

fn namespaced_or_all<K>(client: Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    }
}

/// Whether a status patch must match the resource version it was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Computed from the cache: a newer status (this operator's own, a moment ago) must not be
    /// overwritten, so the patch carries `metadata.resourceVersion` as a precondition.
    IfUnchanged,
    /// Computed from a fresh read, or owned by this reconciler alone: it must be recorded.
    Always,
}

/// What became of a status patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    /// Written, or nothing to write.
    Done,
    /// The resource changed since it was read; a later reconcile sees the newer version.
    Stale,
    /// Not written: the patch would carry a part the watch cache holds only as a digest
    /// ([`cached`]); the status is to be computed again from a fresh read.
    Elided,
}

/// Patches the status subresource of `obj` to `new`, unless it already holds exactly that. The
/// patch leaves out what `obj` holds only as a digest and `new` did not change ([`cached`]).
pub async fn write<K: HasStatus>(
    client: &Client,
    obj: &K,
    new: &K::Status,
    guard: Guard,
) -> Result<StatusWrite, Error> {
    if obj.current_status() == Some(new) {
        return Ok(StatusWrite::Done);
    }
    let namespace = obj.namespace();
    let status = cached::patch(obj.current_status(), new).map_err(|e| Error::WriteStatus {
        namespace: namespace.clone().unwrap_or_default(),
        name: obj.name_any(),
        source: kube::Error::SerdeError(e),
    })?;
    if cached::holds_digest(&status) {
        return Ok(StatusWrite::Elided);
    }
    let api = K::api(client.clone(), namespace.as_deref());
    let mut patch = serde_json::json!({ "status": status });
    if guard == Guard::IfUnchanged
        && let Some(version) = &obj.meta().resource_version
    {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    match api
        .patch_status(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(StatusWrite::Done),
        Err(kube::Error::Api(status)) if status.code == 409 && guard == Guard::IfUnchanged => {
            Ok(StatusWrite::Stale)
        }
        Err(source) => Err(Error::WriteStatus {
            namespace: namespace.unwrap_or_default(),
            name: obj.name_any(),
            source,
        }),
    }
}
