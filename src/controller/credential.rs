//! Reconciles one `SyncClientCredential`: observe (the resource, its Secret, the clock), plan
//! (pure), act (one broker call, one Secret write, a status patch only when it changed).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use sync_client_broker::{
    BrokerError, CredentialKind, ErrorKind, GenerateRequest, IssuedCredential,
};

use super::brokers::ResolveError;
use super::status::{self, Failure, Outcome, StatusInput};
use super::{Context, Error};
use crate::api::{
    CredentialType, ROTATE_REQUEST_ANNOTATION, RolloutKind, SyncClientCredential,
    SyncClientCredentialStatus, reasons,
};
use crate::planner::{
    self, BlockReason, Expiry, FailureCategory, IssueReason, Plan, PlanInput, Policy, Record,
    RenewPolicy, SecretState,
};
use crate::secret::{self, IssuedValues, KeyNames, RecordMeta};

/// How often a credential blocked by a foreign Secret looks again (that Secret is not watched).
pub const FOREIGN_SECRET_RECHECK: Duration = Duration::from_secs(300);
/// Attempts to write the Secret when it changes underneath (409 Conflict).
const WRITE_ATTEMPTS: usize = 3;
/// Annotation bumped on pod templates to restart workloads.
pub const RESTARTED_AT_ANNOTATION: &str = "syncclient.io/restartedAt";

/// The planner's view of the spec, or a message saying what is wrong with it.
pub fn policy_from_spec(cr: &SyncClientCredential) -> Result<Policy, String> {
    let spec = &cr.spec;
    let duration = |field: &str, value: &Option<String>| -> Result<Option<TimeDelta>, String> {
        value
            .as_deref()
            .map(|text| {
                crate::duration::parse(text)
                    .map_err(|e| format!("spec.{field}: {e}"))
                    .and_then(|d| {
                        if d > TimeDelta::zero() {
                            Ok(d)
                        } else {
                            Err(format!("spec.{field} must be positive"))
                        }
                    })
            })
            .transpose()
    };
    let renew = match (
        duration("renewBefore", &spec.renew_before)?,
        spec.renew_before_percentage,
    ) {
        (Some(_), Some(_)) => {
            return Err("set spec.renewBefore or spec.renewBeforePercentage, not both".into());
        }
        (Some(before), None) => RenewPolicy::Before(before),
        (None, Some(p)) if (1..=99).contains(&p) => RenewPolicy::Percentage(p),
        (None, Some(p)) => {
            return Err(format!("spec.renewBeforePercentage {p} is not within 1-99"));
        }
        (None, None) => RenewPolicy::Default,
    };
    token_ttl_minutes(cr)?;
    Ok(Policy {
        credential_type: spec.credential_type,
        renew,
        rotation_interval: duration("rotationInterval", &spec.rotation_interval)?,
        suspend: spec.suspend,
        spec_hash: secret::spec_hash(cr),
    })
}

/// `tokenTTL` in whole minutes, rounded up (the broker counts minutes).
pub fn token_ttl_minutes(cr: &SyncClientCredential) -> Result<Option<i32>, String> {
    let Some(text) = cr.spec.token_ttl.as_deref() else {
        return Ok(None);
    };
    let ttl = crate::duration::parse(text).map_err(|e| format!("spec.tokenTTL: {e}"))?;
    let minutes = (ttl.num_seconds() + 59) / 60;
    if minutes < 1 {
        return Err("spec.tokenTTL must be at least 1m".into());
    }
    i32::try_from(minutes)
        .map(Some)
        .map_err(|_| "spec.tokenTTL is too long".into())
}

pub fn secret_name(cr: &SyncClientCredential) -> String {
    cr.spec.secret_name.clone().unwrap_or_else(|| cr.name_any())
}

/// Reconcile entry point.
pub async fn reconcile(cr: Arc<SyncClientCredential>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&cr, &ctx, View::Cached).await;
    ctx.metrics.observe_reconcile(started.elapsed());
    result
}

/// Where the resource being reconciled came from.
enum View {
    /// The controller's cache, which may lag behind this operator's own last status write.
    Cached,
    /// Read from the API server just now, with the Secret observed a moment before it.
    Fresh { secret: Box<Option<Secret>> },
}

async fn reconcile_inner(
    cr: &SyncClientCredential,
    ctx: &Context,
    view: View,
) -> Result<Action, Error> {
    let namespace = cr.namespace().unwrap_or_default();
    let name = cr.name_any();
    let uid = cr.uid().unwrap_or_default();
    let generation = cr.metadata.generation.unwrap_or_default();
    let old_status = cr.status.clone().unwrap_or_default();
    let secret_name = secret_name(cr);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let fresh = matches!(view, View::Fresh { .. });

    let policy = match policy_from_spec(cr) {
        Ok(policy) => policy,
        Err(message) => {
            let state = SecretState::Missing;
            let input = StatusInput {
                now: Utc::now(),
                generation,
                secret_name: &secret_name,
                secret: &state,
                outcome: Outcome::SpecInvalid(&message),
            };
            let guard = if fresh {
                Guard::Always
            } else {
                Guard::IfUnchanged
            };
            let written = write_status(
                ctx,
                cr,
                &old_status,
                &status::compute(&old_status, &input),
                guard,
            )
            .await?;
            return Ok(match written {
                StatusWrite::Done => Action::await_change(),
                StatusWrite::Stale => Action::requeue(STALE_RETRY),
            });
        }
    };

    // Observe.
    let observed = match view {
        View::Fresh { secret } => *secret,
        View::Cached => secrets
            .get_opt(&secret_name)
            .await
            .map_err(|source| Error::GetSecret {
                namespace: namespace.clone(),
                name: secret_name.clone(),
                source,
            })?,
    };
    let state = secret::observe(
        observed.as_ref(),
        &uid,
        policy.credential_type,
        &ctx.fingerprint_key,
    );
    let rotate_request = cr.annotations().get(ROTATE_REQUEST_ANNOTATION).cloned();
    let jitter_seed = secret::jitter_seed(&uid);
    let now = Utc::now();
    let input = PlanInput {
        now,
        generation,
        policy: &policy,
        secret: &state,
        failures: status::failures_from_status(&old_status),
        rotate_request: rotate_request.as_deref(),
        observed_rotate_request: old_status.observed_rotate_request.as_deref(),
        jitter_seed,
    };

    // Plan.
    let plan = planner::plan(&input);
    tracing::debug!(%namespace, %name, ?plan, "planned");
    if matches!(plan, Plan::Issue(_)) && !fresh {
        // Every issue revokes the previous credential, so it is never decided on a cached view
        // that may miss the failure or rotation this operator recorded a moment ago.
        let api: Api<SyncClientCredential> = Api::namespaced(ctx.client.clone(), &namespace);
        let latest = api
            .get_opt(&name)
            .await
            .map_err(|source| Error::GetCredential {
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
        return match latest {
            // The Secret was read from the API server, not a cache, and needs no second read;
            // unless the spec now names another Secret.
            Some(latest) if self::secret_name(&latest) == secret_name => {
                Box::pin(reconcile_inner(
                    &latest,
                    ctx,
                    View::Fresh {
                        secret: Box::new(observed),
                    },
                ))
                .await
            }
            // The spec names another Secret meanwhile: its watch event brings a new reconcile.
            Some(_) => Ok(Action::requeue(Duration::from_secs(1))),
            None => Ok(Action::await_change()),
        };
    }

    // Act.
    let (outcome_status, action) = match plan {
        Plan::Wait { until, backoff_for } => {
            if let (Some(secret), SecretState::Owned(_)) = (&observed, &state)
                && let Some(patch) = secret::metadata_drift(cr, secret)
            {
                secrets
                    .patch(&secret_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|source| Error::WriteSecret {
                        namespace: namespace.clone(),
                        name: secret_name.clone(),
                        source,
                    })?;
            }
            let renewal_time = match &state {
                SecretState::Owned(record) => planner::renewal_time(&policy, record, jitter_seed),
                _ => None,
            };
            let status = status::compute(
                &old_status,
                &StatusInput {
                    now,
                    generation,
                    secret_name: &secret_name,
                    secret: &state,
                    outcome: Outcome::Waiting {
                        renewal_time,
                        backoff: backoff_for.zip(until),
                    },
                },
            );
            (status, requeue_at(until, now))
        }
        Plan::Blocked(reason) => {
            if reason == BlockReason::SecretNotOwned {
                publish(ctx, cr, EventType::Warning, reasons::EVENT_SECRET_NOT_OWNED, &format!(
                    "Secret {secret_name} exists and is not controlled by this resource; it was left untouched"
                ))
                .await;
            }
            let status = status::compute(
                &old_status,
                &StatusInput {
                    now,
                    generation,
                    secret_name: &secret_name,
                    secret: &state,
                    outcome: Outcome::Blocked(reason),
                },
            );
            let action = if reason == BlockReason::SecretNotOwned {
                Action::requeue(FOREIGN_SECRET_RECHECK)
            } else {
                Action::await_change()
            };
            (status, action)
        }
        Plan::Issue(trigger) => {
            let attempt = IssueAttempt {
                cr,
                ctx,
                secrets: &secrets,
                namespace: &namespace,
                secret_name: &secret_name,
                observed: observed.as_ref(),
                state: &state,
                policy: &policy,
                trigger,
                rotate_request: rotate_request.as_deref(),
                jitter_seed,
                generation,
            };
            attempt.run(&old_status).await?
        }
    };
    let guard = if fresh {
        Guard::Always
    } else {
        Guard::IfUnchanged
    };
    if write_status(ctx, cr, &old_status, &outcome_status, guard).await? == StatusWrite::Stale {
        return Ok(Action::requeue(STALE_RETRY));
    }
    ctx.metrics.record_credential(cr, &outcome_status);
    Ok(action)
}

/// Requeue at a planned time (never earlier than one second from now).
fn requeue_at(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Action {
    match until {
        Some(at) => Action::requeue(
            (at - now)
                .to_std()
                .unwrap_or_default()
                .max(Duration::from_secs(1)),
        ),
        None => Action::await_change(),
    }
}

struct IssueAttempt<'a> {
    cr: &'a SyncClientCredential,
    ctx: &'a Context,
    secrets: &'a Api<Secret>,
    namespace: &'a str,
    secret_name: &'a str,
    observed: Option<&'a Secret>,
    state: &'a SecretState,
    policy: &'a Policy,
    trigger: IssueReason,
    rotate_request: Option<&'a str>,
    jitter_seed: u64,
    generation: i64,
}

impl IssueAttempt<'_> {
    async fn run(
        &self,
        old_status: &SyncClientCredentialStatus,
    ) -> Result<(SyncClientCredentialStatus, Action), Error> {
        match self.issue().await {
            Ok(record) => {
                let now = Utc::now();
                let renewal_time = planner::renewal_time(self.policy, &record, self.jitter_seed);
                let new_state = SecretState::Owned(record.clone());
                let status = status::compute(
                    old_status,
                    &StatusInput {
                        now,
                        generation: self.generation,
                        secret_name: self.secret_name,
                        secret: &new_state,
                        outcome: Outcome::Issued {
                            record: &record,
                            renewal_time,
                            rotate_request: self.rotate_request,
                        },
                    },
                );
                self.after_issue(&record).await;
                Ok((status, requeue_at(renewal_time, now)))
            }
            Err(failure) => {
                let now = Utc::now();
                self.ctx.metrics.record_rotation(failure.reason);
                tracing::warn!(
                    namespace = self.namespace, name = %self.cr.name_any(), reason = failure.reason,
                    trigger = self.trigger.as_str(), message = %failure.message, "issuing failed"
                );
                publish(
                    self.ctx,
                    self.cr,
                    EventType::Warning,
                    reasons::EVENT_ROTATION_FAILED,
                    &status::bounded(&format!("{}: {}", failure.reason, failure.message)),
                )
                .await;
                let mut failures = status::failures_from_status(old_status);
                failures.attempts = failures.attempts.saturating_add(1);
                failures.last_failure_time = Some(now);
                failures.category = Some(failure.category);
                failures.generation = Some(self.generation);
                let next_retry = match failure.category {
                    FailureCategory::Permanent => None,
                    FailureCategory::Retryable => planner::retry_time(&PlanInput {
                        now,
                        generation: self.generation,
                        policy: self.policy,
                        secret: self.state,
                        failures,
                        rotate_request: self.rotate_request,
                        observed_rotate_request: old_status.observed_rotate_request.as_deref(),
                        jitter_seed: self.jitter_seed,
                    }),
                };
                let status = status::compute(
                    old_status,
                    &StatusInput {
                        now,
                        generation: self.generation,
                        secret_name: self.secret_name,
                        secret: self.state,
                        outcome: Outcome::Failed {
                            failure: &failure,
                            trigger: self.trigger,
                            next_retry,
                            rotate_request: self.rotate_request,
                        },
                    },
                );
                Ok((status, requeue_at(next_retry, now)))
            }
        }
    }

    /// Resolves the broker, generates, and writes the Secret at once.
    async fn issue(&self) -> Result<Record, Failure> {
        let cr = self.cr;
        let broker = self
            .ctx
            .brokers
            .resolve(
                &self.ctx.client,
                self.namespace,
                cr.spec.broker_ref.kind,
                &cr.spec.broker_ref.name,
            )
            .await
            .map_err(|e| resolve_failure(&e))?;
        let request = GenerateRequest {
            kind: match cr.spec.credential_type {
                CredentialType::AccessToken => CredentialKind::AccessToken,
                CredentialType::ClientSecret => CredentialKind::ClientSecret,
            },
            token_ttl_minutes: token_ttl_minutes(cr).map_err(|message| Failure {
                reason: reasons::SPEC_INVALID,
                message,
                category: FailureCategory::Permanent,
                outcome_unknown: false,
            })?,
        };
        let issued = {
            let _permit = broker.permits.acquire().await.map_err(|_| Failure {
                reason: reasons::BROKER_UNAVAILABLE,
                message: "the broker client is shutting down".into(),
                category: FailureCategory::Retryable,
                outcome_unknown: false,
            })?;
            broker
                .client
                .generate_credentials(&cr.spec.directory_id, &request)
                .await
                .map_err(|e| broker_failure(&e))?
        };
        // From here on the old credential is revoked: the new one must reach the Secret now.
        // Whole seconds: the Secret's annotations record seconds, and status must match them.
        let issued_at = Utc::now().trunc_subsecs(0);
        let keys = KeyNames::from_spec(cr.spec.keys.as_ref());
        let (data, expires_at) = match &issued {
            IssuedCredential::AccessToken {
                access_token,
                expires_in,
            } => {
                let expires_at = expires_in
                    .and_then(|d| TimeDelta::from_std(d).ok())
                    .map(|d| issued_at + d);
                let data = secret::credential_data(
                    &keys,
                    &IssuedValues::AccessToken {
                        token: access_token.expose(),
                        expires_at,
                        scim_url: &broker.scim_url,
                    },
                );
                (data, expires_at)
            }
            IssuedCredential::ClientSecret {
                client_id,
                client_secret,
            } => (
                secret::credential_data(
                    &keys,
                    &IssuedValues::ClientSecret {
                        client_id,
                        client_secret: client_secret.expose(),
                    },
                ),
                None,
            ),
        };
        let revision = match self.state {
            SecretState::Owned(record) => record.revision + 1,
            _ => {
                self.cr
                    .status
                    .as_ref()
                    .and_then(|s| s.revision)
                    .unwrap_or(0)
                    + 1
            }
        };
        let meta = RecordMeta {
            issued_at,
            expires_at,
            revision,
            spec_hash: self.policy.spec_hash.clone(),
        };
        let desired = secret::render(
            cr,
            self.secret_name,
            &data,
            &meta,
            &self.ctx.fingerprint_key,
        );
        self.write(desired).await?;
        Ok(Record {
            issued_at,
            expiry: match (cr.spec.credential_type, expires_at) {
                (_, Some(at)) => Expiry::At(at),
                _ => Expiry::NotReported,
            },
            revision,
            spec_hash: Some(meta.spec_hash),
            data_intact: true,
        })
    }

    /// Creates or replaces the Secret, re-reading it on conflict and refusing to take over a
    /// Secret someone else created meanwhile.
    async fn write(&self, desired: Secret) -> Result<(), Failure> {
        let uid = self.cr.uid().unwrap_or_default();
        let mut current = self.observed.cloned();
        let mut last_error = None;
        for _ in 0..WRITE_ATTEMPTS {
            let result = match &current {
                None => self.secrets.create(&PostParams::default(), &desired).await,
                Some(existing) => {
                    if !secret::is_controlled_by(existing, &uid) {
                        return Err(write_failure(format!(
                            "Secret {} was created by someone else meanwhile; the new credential could not be stored",
                            self.secret_name
                        )));
                    }
                    let replacement = merged_for_replace(existing, &desired);
                    self.secrets
                        .replace(self.secret_name, &PostParams::default(), &replacement)
                        .await
                }
            };
            match result {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    current = self.secrets.get_opt(self.secret_name).await.map_err(|e| {
                        write_failure(format!("re-reading Secret {}: {e}", self.secret_name))
                    })?;
                    last_error = Some(format!("conflict writing Secret {}", self.secret_name));
                }
                Err(e) => {
                    return Err(write_failure(format!(
                        "writing Secret {}: {e}",
                        self.secret_name
                    )));
                }
            }
        }
        Err(write_failure(last_error.unwrap_or_default()))
    }

    /// Events, metrics and rollout restarts after a successful write.
    async fn after_issue(&self, record: &Record) {
        let ctx = self.ctx;
        let (reason, note) = if self.trigger.is_repair() {
            (
                reasons::EVENT_SECRET_REPAIRED,
                format!(
                    "Secret {} was edited and has been repaired with revision {}",
                    self.secret_name, record.revision
                ),
            )
        } else if matches!(self.state, SecretState::Missing) && record.revision == 1 {
            (
                reasons::EVENT_ISSUED,
                format!("issued revision 1 into Secret {}", self.secret_name),
            )
        } else {
            (
                reasons::EVENT_ROTATED,
                format!(
                    "rotated ({}) to revision {} in Secret {}",
                    self.trigger.as_str(),
                    record.revision,
                    self.secret_name
                ),
            )
        };
        ctx.metrics.record_rotation("success");
        tracing::info!(namespace = self.namespace, name = %self.cr.name_any(), revision = record.revision, trigger = self.trigger.as_str(), "credential issued");
        publish(ctx, self.cr, EventType::Normal, reason, &note).await;
        for target in &self.cr.spec.rollout_restart_targets {
            let result = restart(ctx, self.namespace, target.kind, &target.name).await;
            match result {
                Ok(()) => {
                    publish(
                        ctx,
                        self.cr,
                        EventType::Normal,
                        reasons::EVENT_ROLLOUT_RESTARTED,
                        &format!("restarted {:?} {}", target.kind, target.name),
                    )
                    .await;
                }
                Err(e) => {
                    publish(
                        ctx,
                        self.cr,
                        EventType::Warning,
                        reasons::EVENT_ROLLOUT_RESTARTED,
                        &status::bounded(&format!(
                            "could not restart {:?} {}: {e}",
                            target.kind, target.name
                        )),
                    )
                    .await;
                }
            }
        }
    }
}

/// Keeps labels and annotations others added to our Secret; ours win. The type is immutable.
fn merged_for_replace(existing: &Secret, desired: &Secret) -> Secret {
    let mut out = desired.clone();
    let merge = |theirs: &Option<std::collections::BTreeMap<String, String>>,
                 ours: &mut Option<std::collections::BTreeMap<String, String>>| {
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

async fn restart(
    ctx: &Context,
    namespace: &str,
    kind: RolloutKind,
    name: &str,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT_ANNOTATION: secret::rfc3339(Utc::now())
    }}}}});
    let params = PatchParams::default();
    let patch = Patch::Strategic(&patch);
    let client = ctx.client.clone();
    match kind {
        RolloutKind::Deployment => Api::<Deployment>::namespaced(client, namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
        RolloutKind::StatefulSet => Api::<StatefulSet>::namespaced(client, namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
        RolloutKind::DaemonSet => Api::<DaemonSet>::namespaced(client, namespace)
            .patch(name, &params, &patch)
            .await
            .map(|_| ()),
    }
}

fn write_failure(message: String) -> Failure {
    Failure {
        reason: reasons::SECRET_WRITE_FAILED,
        message,
        category: FailureCategory::Retryable,
        outcome_unknown: true,
    }
}

/// Classifies a broker error for status and the planner.
pub fn broker_failure(error: &BrokerError) -> Failure {
    let (reason, category) = match error.kind() {
        ErrorKind::Spec => (reasons::SPEC_INVALID, FailureCategory::Permanent),
        ErrorKind::Permission => (reasons::PERMISSION_DENIED, FailureCategory::Permanent),
        ErrorKind::NotFound => (reasons::SYNC_CLIENT_NOT_FOUND, FailureCategory::Permanent),
        ErrorKind::Conflict => (reasons::SYNC_CLIENT_CONFLICT, FailureCategory::Permanent),
        ErrorKind::Auth => (reasons::AUTH_FAILED, FailureCategory::Retryable),
        ErrorKind::Transient if error.outcome_unknown() => {
            (reasons::ROTATION_STATE_UNKNOWN, FailureCategory::Retryable)
        }
        ErrorKind::Transient => (reasons::BROKER_UNAVAILABLE, FailureCategory::Retryable),
    };
    Failure {
        reason,
        message: error.to_string(),
        category,
        outcome_unknown: error.outcome_unknown(),
    }
}

fn resolve_failure(error: &ResolveError) -> Failure {
    let reason = match error {
        ResolveError::NotFound { .. } => reasons::BROKER_NOT_FOUND,
        ResolveError::NotAllowed { .. } => reasons::BROKER_NOT_ALLOWED,
        ResolveError::ConfigInvalid { .. } => reasons::BROKER_CONFIG_INVALID,
        ResolveError::Kube { .. } => reasons::BROKER_UNAVAILABLE,
    };
    Failure {
        reason,
        message: error.to_string(),
        category: FailureCategory::Retryable,
        outcome_unknown: false,
    }
}

/// Whether a status patch must match the resource version it was computed from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Computed from the cache: a newer status (this operator's own, a moment ago) must not be
    /// overwritten, so the patch carries `metadata.resourceVersion` as a precondition.
    IfUnchanged,
    /// Computed from a fresh read, right after issuing: it must be recorded.
    Always,
}

/// What became of a status patch.
#[derive(PartialEq, Eq)]
enum StatusWrite {
    /// Written, or nothing to write.
    Done,
    /// The resource changed since it was read; a later reconcile sees the newer version.
    Stale,
}

/// After a stale status write: retry soon, on the newer version the watch delivers.
const STALE_RETRY: Duration = Duration::from_millis(500);

/// Patches the status subresource when the computed status differs from the current one.
async fn write_status(
    ctx: &Context,
    cr: &SyncClientCredential,
    old: &SyncClientCredentialStatus,
    new: &SyncClientCredentialStatus,
    guard: Guard,
) -> Result<StatusWrite, Error> {
    if cr.status.is_some() && old == new {
        return Ok(StatusWrite::Done);
    }
    let namespace = cr.namespace().unwrap_or_default();
    let api: Api<SyncClientCredential> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut patch = serde_json::json!({ "status": new });
    if guard == Guard::IfUnchanged
        && let Some(version) = &cr.metadata.resource_version
    {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    match api
        .patch_status(
            &cr.name_any(),
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
            namespace,
            name: cr.name_any(),
            source,
        }),
    }
}

/// Publishes an event on the credential; failures to publish are logged, never fatal.
pub async fn publish(
    ctx: &Context,
    cr: &SyncClientCredential,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(status::bounded(note)),
        action: match reason {
            reasons::EVENT_ROLLOUT_RESTARTED => "Restart".into(),
            _ => "Issue".into(),
        },
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &cr.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish event");
    }
}
