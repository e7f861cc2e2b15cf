//! Gather: everything one decision about a credential is made from, read once. The first gather
//! uses the controller's cache for the resource and reads its Secret; before any issue a second,
//! fresh gather re-reads the resource from the API server, because every issue revokes the live
//! credential and the cache may miss the failure or rotation this operator recorded a moment ago.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::ownership;
use super::pending::Pending;
use crate::api::{
    PREFLIGHT_REQUEST_ANNOTATION, ROTATE_REQUEST_ANNOTATION, SpecError, SyncClientCredential,
    SyncClientCredentialStatus, secret_name,
};
use crate::controller::brokers::{BrokerRequest, ResolvedBroker};
use crate::controller::failure::Failure;
use crate::controller::status;
use crate::controller::status::credential::failures_from_status;
use crate::controller::{Context, Error};
use crate::planner::{Failures, PlanInput, Policy, Record, Requests, SecretState, Verification};
use crate::secret::{self, DataCheck, Expected};

/// Where the resource in an observation was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The controller's cache, which may lag behind this operator's own last status write.
    Cache,
    /// The API server, just now.
    Fresh,
}

/// What the status says was last verified (a probe done in this reconcile replaces it).
pub const VERIFY_VALID: &str = "Valid";
pub const VERIFY_REVOKED: &str = "Revoked";

/// A credential held in the Secret the spec named before (its name changed): it is moved to the
/// Secret named now rather than issued again.
#[derive(Clone)]
pub struct Held {
    pub secret_name: String,
    pub secret: Secret,
    pub record: Record,
}

/// One consistent view of a credential: the resource, its Secret, the parsed policy, the
/// failures so far, the requests on it, a credential waiting to be stored, and the time.
pub struct Observation {
    /// The resource as read (its status is what the API server holds).
    pub cr: Arc<SyncClientCredential>,
    /// The status decisions start from: the resource's, or a newer one this process computed
    /// and could not write yet (failures, history and served requests are never forgotten).
    pub status: SyncClientCredentialStatus,
    /// What the spec expects of its Secret now.
    pub expected: Expected,
    pub source: Source,
    pub now: DateTime<Utc>,
    pub secret_name: String,
    /// The spec read into the planner's terms, or why it cannot be.
    pub policy: Result<Policy, SpecError>,
    /// The Secret as read (not read when the spec is invalid).
    pub secret: Option<Secret>,
    /// Whether `secret` is the whole Secret; `false` when only its cached metadata was used
    /// (this process wrote exactly that version, so its data is known to be intact).
    pub secret_complete: bool,
    pub state: SecretState,
    pub failures: Failures,
    pub rotate_request: Option<String>,
    pub preflight_request: Option<String>,
    /// The last probe of the stored token (updated when this reconcile probes).
    pub verification: Option<Verification>,
    /// Whether a preflight ran for this resource (updated when this reconcile runs one).
    pub preflight_ran: bool,
    /// The preflight request served (updated when this reconcile serves one).
    pub preflight_served: Option<String>,
    /// An older credential that rotates the same sync client, `namespace/name`.
    pub sync_client_owner: Option<String>,
    /// A credential generated for this resource and not yet stored.
    pub pending: Option<Pending>,
    /// The rotate request the credential in the (intact) Secret served, from its record.
    pub served_by_secret: Option<String>,
    /// The credential in the Secret the spec named before, when the one it names now is missing.
    pub held: Option<Held>,
    /// Whether the broker resource's generation or its client's epoch differ from what they
    /// were after the last failure that needs a change: then it is retried at once.
    pub broker_changed: bool,
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

    /// The status decisions start from.
    pub fn old_status(&self) -> SyncClientCredentialStatus {
        self.status.clone()
    }

    fn status_field<'a, T: ?Sized>(
        &'a self,
        field: impl FnOnce(&'a SyncClientCredentialStatus) -> Option<&'a T>,
    ) -> Option<&'a T> {
        field(&self.status)
    }

    /// The record the schedule is read from: the Secret's, or the moved credential's.
    pub fn record(&self) -> Option<&Record> {
        match &self.state {
            SecretState::Owned(record) => Some(record),
            SecretState::Missing => self.held.as_ref().map(|held| &held.record),
            _ => None,
        }
    }

    /// The revision the Secret holds (or status remembers, when the Secret is gone).
    pub fn current_revision(&self) -> Option<i64> {
        match &self.state {
            SecretState::Owned(record) => Some(record.revision),
            _ => self.status.revision,
        }
    }

    /// When a credential was last issued for this resource.
    pub fn last_issued_at(&self) -> Option<DateTime<Utc>> {
        let from_secret = self.record().map(|record| record.issued_at);
        from_secret.max(self.status.last_rotation_time)
    }

    /// When a delivery of the stored credential is next due (none: all hold it, or none wanted).
    pub fn delivery_due(&self) -> Option<DateTime<Utc>> {
        if !super::deliver::wanted(self) {
            return None;
        }
        let SecretState::Owned(record) = &self.state else {
            return None;
        };
        let names: Vec<String> = self
            .cr
            .spec
            .deliveries
            .iter()
            .map(|d| d.name.clone())
            .collect();
        crate::controller::status::delivery::next_delivery(
            &self.status,
            &names,
            record.revision,
            self.now,
        )
    }

    /// The planner's input for this observation under `policy`.
    pub fn plan_input<'a>(
        &'a self,
        policy: &'a Policy,
        min_issue_interval: chrono::TimeDelta,
    ) -> PlanInput<'a> {
        PlanInput {
            now: self.now,
            generation: self.generation(),
            policy,
            secret: &self.state,
            failures: self.failures,
            requests: Requests {
                rotate: self.rotate_request.as_deref(),
                // The Secret's record wins: the status recording a served request may not have
                // been written.
                rotate_served: self
                    .served_by_secret
                    .as_deref()
                    .filter(|served| self.rotate_request.as_deref() == Some(served))
                    .or_else(|| self.status_field(|s| s.observed_rotate_request.as_deref())),
                rotate_attempted: self.status_field(|s| s.attempted_rotate_request.as_deref()),
                preflight: self.preflight_request.as_deref(),
                preflight_served: self.preflight_served.as_deref(),
                preflight_ran: self.preflight_ran,
            },
            last_issued_at: self.last_issued_at(),
            last_verification: self.verification,
            sync_client_taken: self.sync_client_owner.is_some(),
            min_issue_interval,
            held_elsewhere: match &self.state {
                SecretState::Missing => self.held.as_ref().map(|held| &held.record),
                _ => None,
            },
            broker_changed: self.broker_changed,
            verify_after: self.status.verify_due_time,
            delivery_due: self.delivery_due(),
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
