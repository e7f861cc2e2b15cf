//! Reading what a broker or an Entra ID connection references: keys of a Secret in the
//! namespace it may read, and whether a credential's namespace matches a cluster resource's
//! `namespaceSelector`. Shared by both registries; their own error types name the resource.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::Api;
use kube::core::{Selector, SelectorExt};
use kube::{Client, ResourceExt};

use super::kube_error::{self, Call};

/// Why a referenced value could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The Secret or key is missing or unusable: the configuration must change.
    Invalid(String),
    /// The API server could not be asked (`what` was being read; `detail` says why in words,
    /// [`kube_error::describe_call`]).
    Kube {
        what: String,
        detail: String,
        source: kube::Error,
    },
}

/// Reads keys of one Secret, as text, with one GET.
pub async fn secret_values<const N: usize>(
    secrets: &Api<Secret>,
    name: &str,
    keys: [&str; N],
) -> Result<[String; N], ReadError> {
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|source| ReadError::Kube {
            what: format!("Secret {}/{name}", secrets.namespace().unwrap_or_default()),
            detail: kube_error::describe_call(
                &source,
                Call::new("get", "secrets", secrets.namespace()),
            ),
            source,
        })?
        .ok_or_else(|| ReadError::Invalid(format!("Secret {name} not found")))?;
    let mut values: [String; N] = std::array::from_fn(|_| String::new());
    for (value, key) in values.iter_mut().zip(keys) {
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(|| ReadError::Invalid(format!("Secret {name} has no key {key}")))?;
        *value = String::from_utf8(bytes.0.clone())
            .map_err(|_| ReadError::Invalid(format!("key {key} of Secret {name} is not UTF-8")))?;
    }
    Ok(values)
}

/// `Ok(())` when `namespace` matches `selector`; `Err(Invalid(why))` when it does not or the
/// selector is invalid.
pub async fn namespace_allowed(
    client: &Client,
    namespace: &str,
    selector: &LabelSelector,
) -> Result<(), ReadError> {
    let selector = Selector::try_from(selector.clone())
        .map_err(|e| ReadError::Invalid(format!("invalid namespaceSelector: {e}")))?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let labels: BTreeMap<String, String> = match namespaces.get_opt(namespace).await {
        Ok(Some(ns)) => ns.labels().clone(),
        Ok(None) => BTreeMap::new(),
        Err(source) => {
            return Err(ReadError::Kube {
                what: format!("namespace {namespace}"),
                detail: kube_error::describe_call(&source, Call::new("get", "namespaces", None)),
                source,
            });
        }
    };
    if selector.matches(&labels) {
        Ok(())
    } else {
        Err(ReadError::Invalid(
            "the namespace does not match its namespaceSelector".into(),
        ))
    }
}
