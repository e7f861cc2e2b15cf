//! Stores a newly issued credential: create, or replace at the version read, re-reading on a
//! conflict and never taking over a Secret someone else created meanwhile.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};

use super::gather::Observation;
use crate::controller::Context;
use crate::controller::failure::Failure;
use crate::secret;

/// Attempts to write the Secret when it changes underneath (409 Conflict).
const WRITE_ATTEMPTS: usize = 3;

/// Creates or replaces the Secret with `desired`.
pub async fn store(
    ctx: &Context,
    observation: &Observation,
    desired: Secret,
) -> Result<(), Failure> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &observation.namespace());
    let name = observation.secret_name.as_str();
    let uid = observation.uid();
    let mut current = observation.secret.clone();
    let mut last_error = None;
    for _ in 0..WRITE_ATTEMPTS {
        let result = match &current {
            None => secrets.create(&PostParams::default(), &desired).await,
            Some(existing) => {
                if !secret::is_controlled_by(existing, &uid) {
                    return Err(Failure::secret_write(format!(
                        "Secret {name} was created by someone else meanwhile; the new credential could not be stored"
                    )));
                }
                let replacement = merged_for_replace(existing, &desired);
                secrets
                    .replace(name, &PostParams::default(), &replacement)
                    .await
            }
        };
        match result {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                current = secrets
                    .get_opt(name)
                    .await
                    .map_err(|e| Failure::secret_write(format!("re-reading Secret {name}: {e}")))?;
                last_error = Some(format!("conflict writing Secret {name}"));
            }
            Err(e) => return Err(Failure::secret_write(format!("writing Secret {name}: {e}"))),
        }
    }
    Err(Failure::secret_write(last_error.unwrap_or_default()))
}

/// Keeps labels and annotations others added to our Secret; ours win. The type is immutable.
fn merged_for_replace(existing: &Secret, desired: &Secret) -> Secret {
    let mut out = desired.clone();
    let merge = |theirs: &Option<BTreeMap<String, String>>,
                 ours: &mut Option<BTreeMap<String, String>>| {
        let mut merged = theirs.clone().unwrap_or_default();
        merged.extend(ours.take().unwrap_or_default());
        *ours = Some(merged);
    };
    merge(&existing.metadata.labels, &mut out.metadata.labels);
    merge(
        &existing.metadata.annotations,
        &mut out.metadata.annotations,
    );
    out.metadata
        .resource_version
        .clone_from(&existing.metadata.resource_version);
    out.type_.clone_from(&existing.type_);
    out
}
