//! Gather: everything one decision about a credential is made from, read once. The first gather
//! uses the controller's cache for the resource and reads its Secret; before any issue a second,
//! fresh gather re-reads the resource from the API server, because every issue revokes the live
//! credential and the cache may miss the failure or rotation this operator recorded a moment ago.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use crate::api::{
    ROTATE_REQUEST_ANNOTATION, SpecError, SyncClientCredential, SyncClientCredentialStatus,
    secret_name,
};
use crate::controller::status::credential::failures_from_status;
use crate::controller::{Context, Error};
use crate::planner::{Failures, PlanInput, Policy, SecretState};
use crate::secret;

/// Where the resource in an observation was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The controller's cache, which may lag behind this operator's own last status write.
    Cache,
    /// The API server, just now.
    Fresh,
}

/// One consistent view of a credential: the resource, its Secret, the parsed policy, the
/// failures so far and the time.
pub struct Observation {
    pub cr: Arc<SyncClientCredential>,
    pub source: Source,
    pub now: DateTime<Utc>,
    pub secret_name: String,
    /// The spec read into the planner's terms, or why it cannot be.
    pub policy: Result<Policy, SpecError>,
    /// The Secret as read (not read when the spec is invalid).
    pub secret: Option<Secret>,
    pub state: SecretState,
    pub failures: Failures,
    pub rotate_request: Option<String>,
    pub jitter_seed: u64,
}

impl Observation {
    pub fn namespace(&self) -> String {
        self.cr.namespace().unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.cr.name_any()
    }

    pub fn generation(&self) -> i64 {
        self.cr.metadata.generation.unwrap_or_default()
    }

    pub fn uid(&self) -> String {
        self.cr.uid().unwrap_or_default()
    }

    /// The status the resource holds now (empty when it has none yet).
    pub fn old_status(&self) -> SyncClientCredentialStatus {
        self.cr.status.clone().unwrap_or_default()
    }

    pub fn observed_rotate_request(&self) -> Option<&str> {
        self.cr
            .status
            .as_ref()
            .and_then(|s| s.observed_rotate_request.as_deref())
    }

    /// The planner's input for this observation under `policy`.
    pub fn plan_input<'a>(&'a self, policy: &'a Policy) -> PlanInput<'a> {
        PlanInput {
            now: self.now,
            generation: self.generation(),
            policy,
            secret: &self.state,
            failures: self.failures,
            rotate_request: self.rotate_request.as_deref(),
            observed_rotate_request: self.observed_rotate_request(),
            jitter_seed: self.jitter_seed,
        }
    }
}

/// Gathers from the cached resource, reading its Secret from the API server.
pub async fn from_cache(
    ctx: &Context,
    cr: Arc<SyncClientCredential>,
    now: DateTime<Utc>,
) -> Result<Observation, Error> {
    let policy = Policy::from_resource(&cr);
    let secret = match policy {
        Ok(_) => read_secret(ctx, &cr).await?,
        Err(_) => None,
    };
    Ok(observe(ctx, cr, Source::Cache, now, policy, secret))
}

/// The outcome of a fresh gather.
pub enum Fresh {
    Observed(Box<Observation>),
    /// The spec names another Secret meanwhile: its watch event brings a new reconcile.
    SecretRenamed,
    /// The resource was deleted.
    Gone,
}

/// Re-reads the resource from the API server. The Secret was read from the API server a moment
/// ago, not from a cache, and is reused unless the spec now names another one.
pub async fn fresh(ctx: &Context, cached: &Observation) -> Result<Fresh, Error> {
    let api: Api<SyncClientCredential> = Api::namespaced(ctx.client.clone(), &cached.namespace());
    let latest = api
        .get_opt(&cached.name())
        .await
        .map_err(|source| Error::GetCredential {
            namespace: cached.namespace(),
            name: cached.name(),
            source,
        })?;
    let Some(latest) = latest else {
        return Ok(Fresh::Gone);
    };
    if secret_name(&latest) != cached.secret_name {
        return Ok(Fresh::SecretRenamed);
    }
    let policy = Policy::from_resource(&latest);
    Ok(Fresh::Observed(Box::new(observe(
        ctx,
        Arc::new(latest),
        Source::Fresh,
        cached.now,
        policy,
        cached.secret.clone(),
    ))))
}

async fn read_secret(ctx: &Context, cr: &SyncClientCredential) -> Result<Option<Secret>, Error> {
    let namespace = cr.namespace().unwrap_or_default();
    let name = secret_name(cr);
    Api::<Secret>::namespaced(ctx.client.clone(), &namespace)
        .get_opt(&name)
        .await
        .map_err(|source| Error::GetSecret {
            namespace,
            name,
            source,
        })
}

/// Reads what was gathered into the planner's terms.
fn observe(
    ctx: &Context,
    cr: Arc<SyncClientCredential>,
    source: Source,
    now: DateTime<Utc>,
    policy: Result<Policy, SpecError>,
    secret: Option<Secret>,
) -> Observation {
    let uid = cr.uid().unwrap_or_default();
    let state = match &policy {
        Ok(policy) => secret::observe(
            secret.as_ref(),
            &uid,
            policy.credential_type,
            &ctx.fingerprint_key,
        ),
        Err(_) => SecretState::Missing,
    };
    Observation {
        secret_name: secret_name(&cr),
        failures: failures_from_status(&cr.status.clone().unwrap_or_default()),
        rotate_request: cr.annotations().get(ROTATE_REQUEST_ANNOTATION).cloned(),
        jitter_seed: secret::jitter_seed(&uid),
        cr,
        source,
        now,
        policy,
        secret,
        state,
    }
}
