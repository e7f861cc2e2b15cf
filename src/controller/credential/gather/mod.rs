//! Gather: everything one decision about a credential is made from, read once. The first gather
//! uses the controller's cache for the resource and reads its Secret; before any issue a second,
//! fresh gather re-reads the resource from the API server, because every issue revokes the live
//! credential and the cache may miss the failure or rotation this operator recorded a moment ago.
//!
//! [`observation`] owns what is gathered, and how it reads into the planner's terms.

mod observation;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

pub use observation::{Held, Observation, Source, VERIFY_REVOKED, VERIFY_VALID};

use super::ownership;
use crate::api::{
    PREFLIGHT_REQUEST_ANNOTATION, ROTATE_REQUEST_ANNOTATION, SpecError, SyncClientCredential,
    secret_name,
};
use crate::controller::brokers::{BrokerRequest, ResolvedBroker};
use crate::controller::failure::Failure;
use crate::controller::status;
use crate::controller::status::credential::failures_from_status;
use crate::controller::{Context, Error};
use crate::planner::{Policy, SecretState, Verification};
use crate::secret::{self, DataCheck, Expected};

/// Gathers from the cached resource, reading its Secret from the API server.
pub async fn from_cache(
    ctx: &Context,
    cr: Arc<SyncClientCredential>,
    now: DateTime<Utc>,
) -> Result<Observation, Error> {
    let policy = Policy::from_resource(&cr);
    let (secret, complete) = match policy {
        Ok(_) => match written_by_us(ctx, &cr) {
            Some(metadata) => (Some(metadata), false),
            None => (read_secret(ctx, &cr).await?, true),
        },
        Err(_) => (None, true),
    };
    let mut observation = observe(ctx, cr, Source::Cache, now, policy, (secret, complete));
    observation.held = held_elsewhere(ctx, &observation).await?;
    Ok(observation)
}

/// The credential in the Secret the spec named before, when the one it names now is missing and
/// status says which Secret that was.
async fn held_elsewhere(ctx: &Context, observation: &Observation) -> Result<Option<Held>, Error> {
    // A generated credential waiting to be stored goes where the spec says; nothing to move.
    if observation.state != SecretState::Missing
        || observation.policy.is_err()
        || observation.pending.is_some()
    {
        return Ok(None);
    }
    let Some(previous) = observation
        .status
        .secret_name
        .clone()
        .filter(|name| *name != observation.secret_name)
    else {
        return Ok(None);
    };
    let Some(secret) = read_named_secret(ctx, &observation.namespace(), &previous).await? else {
        return Ok(None);
    };
    let state = secret::observe(Some(&secret), &observation.expected, &ctx.fingerprint_keys);
    Ok(match state {
        SecretState::Owned(record) => Some(Held {
            secret_name: previous,
            secret,
            record,
        }),
        _ => None,
    })
}

/// The Secret's metadata from the watch cache, when it is exactly the version this process wrote
/// last: nothing about it is news, so it is not read again.
fn written_by_us(ctx: &Context, cr: &SyncClientCredential) -> Option<Secret> {
    let caches = ctx.caches()?;
    let uid = cr.uid()?;
    let meta = caches.secret(&cr.namespace().unwrap_or_default(), &secret_name(cr))?;
    let written = ctx.memo.secret_version(&uid)?;
    (meta.metadata.resource_version.as_deref() == Some(written.as_str())).then(|| Secret {
        metadata: meta.metadata.clone(),
        ..Secret::default()
    })
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
/// ago, not from a cache, and is reused unless the spec now names another one. What this
/// reconcile already did (a probe, a preflight) carries over.
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
    let secret = if cached.secret_complete {
        cached.secret.clone()
    } else {
        read_secret(ctx, &latest).await?
    };
    let mut fresh = observe(
        ctx,
        Arc::new(latest),
        Source::Fresh,
        cached.now,
        policy,
        (secret, true),
    );
    fresh.verification = match (cached.verification, fresh.verification) {
        (Some(ours), Some(stored)) if ours.at >= stored.at => Some(ours),
        (Some(ours), None) => Some(ours),
        (_, stored) => stored,
    };
    fresh.preflight_ran |= cached.preflight_ran;
    if cached.preflight_served.is_some() {
        fresh.preflight_served.clone_from(&cached.preflight_served);
    }
    fresh.held = if fresh.state == SecretState::Missing {
        cached.held.clone()
    } else {
        None
    };
    Ok(Fresh::Observed(Box::new(fresh)))
}

/// The broker the credential names, resolved from the caches, with its client.
pub async fn broker(ctx: &Context, observation: &Observation) -> Result<ResolvedBroker, Failure> {
    let spec = &observation.cr.spec;
    ctx.brokers
        .resolve(
            &ctx.client,
            ctx.caches(),
            BrokerRequest {
                namespace: &observation.namespace(),
                broker: &spec.broker_ref,
                directory_id: &spec.directory_id,
            },
        )
        .await
        .map_err(|e| Failure::from_resolve(&e))
}

/// Reads the credential's Secret from the API server.
pub async fn read_secret(
    ctx: &Context,
    cr: &SyncClientCredential,
) -> Result<Option<Secret>, Error> {
    read_named_secret(ctx, &cr.namespace().unwrap_or_default(), &secret_name(cr)).await
}

async fn read_named_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<Secret>, Error> {
    Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| Error::GetSecret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
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
    (secret, secret_complete): (Option<Secret>, bool),
) -> Observation {
    let uid = cr.uid().unwrap_or_default();
    let expected = Expected::of(&cr);
    let check = if secret_complete {
        DataCheck::Fingerprint(&ctx.fingerprint_keys)
    } else {
        DataCheck::WrittenByUs
    };
    let state = match &policy {
        Ok(_) => secret::observe_with(secret.as_ref(), &expected, check),
        Err(_) => SecretState::Missing,
    };
    // A status this process computed and could not write is newer than what the cache holds.
    // Computed from the cache, it gets the parts the cache holds as digests back from a fresh
    // read.
    let read = cr.status.clone().unwrap_or_default();
    let status = match ctx.memo.unwritten_status(&uid) {
        Some(unwritten) if source == Source::Fresh => {
            status::cached::restore(&unwritten, &read).unwrap_or(read)
        }
        Some(unwritten) => unwritten,
        None => read,
    };
    let verification = status.last_verify_time.map(|at| Verification {
        at,
        revoked: status
            .last_verify_result
            .as_ref()
            .is_some_and(|result| *result == VERIFY_REVOKED),
    });
    let broker_changed = ctx
        .memo
        .failure_broker_state(&uid)
        .is_some_and(|at_failure| Some(at_failure) != broker_state(ctx, &cr));
    Observation {
        secret_name: secret_name(&cr),
        failures: failures_from_status(&status),
        rotate_request: cr.annotations().get(ROTATE_REQUEST_ANNOTATION).cloned(),
        preflight_request: cr.annotations().get(PREFLIGHT_REQUEST_ANNOTATION).cloned(),
        verification,
        preflight_ran: status.last_preflight_time.is_some(),
        preflight_served: status.observed_preflight_request.clone(),
        sync_client_owner: ctx
            .caches()
            .and_then(|caches| ownership::older_owner(&cr, caches)),
        pending: ctx.pending.get(&uid, now),
        served_by_secret: match (&state, &secret) {
            (SecretState::Owned(record), Some(secret)) if record.data_intact => secret
                .annotations()
                .get(secret::SERVED_ROTATE_REQUEST_ANNOTATION)
                .cloned(),
            _ => None,
        },
        held: None,
        broker_changed,
        jitter_seed: secret::jitter_seed(&uid),
        status,
        expected,
        cr,
        source,
        now,
        policy,
        secret,
        secret_complete,
        state,
    }
}

/// The broker resource's generation (from the cache) and its client's epoch in the registry.
pub(super) fn broker_state(ctx: &Context, cr: &SyncClientCredential) -> Option<String> {
    let caches = ctx.caches()?;
    let namespace = cr.namespace().unwrap_or_default();
    let generation = caches.broker_generation(&namespace, &cr.spec.broker_ref)?;
    let epoch = ctx
        .brokers
        .epoch(&crate::controller::brokers::BrokerKey::of(
            &namespace,
            &cr.spec.broker_ref,
        ));
    Some(format!("{generation}/{epoch}"))
}
