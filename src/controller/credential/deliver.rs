//! Delivery of the token to the targets in `spec.deliveries` (Microsoft Entra ID provisioning
//! jobs, `ENTRA_API.md` §2), in the order that never leaves a target with a dead token:
//!
//! 1. before every mint that would revoke a working token, each target is checked: the app signs
//!    in and reads the job (finding it when the spec names none). A missing permission, service
//!    principal or job blocks the mint with a reason that says what to fix;
//! 2. after the Secret write: `PUT /secrets` (`BaseAddress`, `SecretToken`), `validateCredentials`
//!    with the saved credentials, `GET` the job, and `restart` with `QuarantineState` only when it
//!    is quarantined (never `Full`, never `start`);
//! 3. until delivered, the Secret is the record of what must be delivered: a failed delivery is
//!    retried from it with backoff (honouring `Retry-After`), never with a new mint, only by the
//!    leader. A validation failure is reported; it never undoes the save (the old token is dead).
//!
//! Nothing here holds a secret beyond the call that sends it; notes name revisions only.

use chrono::{DateTime, Utc};
use sync_client_broker::SecretString;
use sync_client_graph::{GraphClient, GraphErrorKind};

use super::gather::Observation;
use crate::api::{CredentialType, DeliveryStatus, EntraIdDelivery};
use crate::controller::Context;
use crate::controller::entra::EntraKey;
use crate::controller::failure::{Failure, FailureReason};
use crate::secret::{self, HeldValues};

/// What one delivery attempt did, for the status. Never a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryNote {
    pub name: String,
    pub at: DateTime<Utc>,
    /// The credential revision delivered (or being delivered).
    pub revision: i64,
    pub job_id: Option<String>,
    /// The target holds `revision` now (saved by this attempt or an earlier one).
    pub saved: bool,
    /// This attempt saved it.
    pub saved_now: bool,
    pub validation: Option<Validation>,
    /// The job's `status.code` and quarantine reason, when read.
    pub job: Option<(String, Option<String>)>,
    /// This attempt restarted the quarantined job.
    pub quarantine_lifted: bool,
    /// The step that failed, if one did.
    pub failure: Option<Failure>,
}

/// What `validateCredentials` said of the saved token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    Passed,
    /// Refused right after saving: the read after a save may lag; validated again shortly.
    Pending(String),
    Failed(String),
}

impl DeliveryNote {
    /// Saved, validated, and the job not left in quarantine.
    pub fn complete(&self) -> bool {
        self.saved
            && self.failure.is_none()
            && self.validation == Some(Validation::Passed)
            && self
                .job
                .as_ref()
                .is_none_or(|(state, _)| state != "Quarantine" || self.quarantine_lifted)
    }
}

/// A delivery target resolved for one attempt.
struct Target<'a> {
    spec: &'a EntraIdDelivery,
    client: GraphClient,
    job_id: String,
}

/// Before a mint that would revoke a working token: every target signs in and its job can be
/// read. The first failure blocks the mint.
pub async fn check_before_mint(ctx: &Context, observation: &Observation) -> Result<(), Failure> {
    for entra in observation
        .cr
        .spec
        .deliveries
        .iter()
        .filter_map(|d| d.entra_id.as_ref())
    {
        let target = resolve(ctx, observation, entra).await?;
        target
            .client
            .get_job(&entra.service_principal_id, &target.job_id)
            .await
            .map_err(|e| Failure::from_graph(&e))?;
    }
    Ok(())
}

/// Whether the spec asks for deliveries.
pub fn wanted(observation: &Observation) -> bool {
    observation.cr.spec.credential_type == CredentialType::AccessToken
        && !observation.cr.spec.deliveries.is_empty()
}

/// Delivers the credential of `revision` (its token and SCIM URL in `values`) to every target
/// that does not hold it yet, validated. Runs only while this replica leads.
pub async fn deliver(
    ctx: &Context,
    observation: &Observation,
    values: &HeldValues,
    revision: i64,
) -> Vec<DeliveryNote> {
    let HeldValues::AccessToken {
        token, scim_url, ..
    } = values
    else {
        return Vec::new();
    };
    let token = SecretString::from(token.as_str());
    let mut notes = Vec::new();
    for delivery in &observation.cr.spec.deliveries {
        let Some(entra) = &delivery.entra_id else {
            continue;
        };
        let previous = observation
            .status
            .deliveries
            .iter()
            .find(|d| d.name == delivery.name);
        if previous.is_some_and(|p| complete_at(p, revision)) {
            continue;
        }
        if ctx.fence.check().is_err() {
            // Another replica leads (or the process stops): it delivers.
            break;
        }
        let base_address = entra.base_address.as_deref().unwrap_or(scim_url);
        let mut note = DeliveryNote {
            name: delivery.name.clone(),
            at: observation.now,
            revision,
            job_id: previous.and_then(|p| p.job_id.clone()),
            saved: previous.is_some_and(|p| p.delivered_revision == Some(revision)),
            saved_now: false,
            validation: None,
            job: None,
            quarantine_lifted: false,
            failure: None,
        };
        match resolve(ctx, observation, entra).await {
            Ok(target) => {
                note.job_id = Some(target.job_id.clone());
                deliver_one(ctx, &target, base_address, &token, &mut note).await;
            }
            Err(failure) => note.failure = Some(failure),
        }
        report(ctx, observation, &note).await;
        notes.push(note);
    }
    notes
}

/// The credential an owned, intact Secret holds, for a delivery retried from it.
pub async fn held_in_secret(ctx: &Context, observation: &Observation) -> Option<(HeldValues, i64)> {
    let crate::planner::SecretState::Owned(record) = &observation.state else {
        return None;
    };
    let read;
    let secret = if observation.secret_complete {
        observation.secret.as_ref()?
    } else {
        read = super::gather::read_secret(ctx, &observation.cr)
            .await
            .ok()??;
        &read
    };
    let (meta, values) = secret::held_record(secret, &observation.expected, record)?;
    Some((values, meta.revision))
}

/// Whether a delivery's status says it holds `revision`, validated, the job not quarantined.
pub fn complete_at(status: &DeliveryStatus, revision: i64) -> bool {
    status.delivered_revision == Some(revision)
        && status.validation.as_ref().is_some_and(|v| *v == "Passed")
        && status.job_state.as_ref().is_none_or(|j| *j != "Quarantine")
        && status.last_failure_reason.is_none()
}

/// Save (unless this revision is saved already), validate, read the job, lift a quarantine.
async fn deliver_one(
    ctx: &Context,
    target: &Target<'_>,
    base_address: &str,
    token: &SecretString,
    note: &mut DeliveryNote,
) {
    let sp = target.spec.service_principal_id.as_str();
    if !note.saved {
        if let Err(e) = target.client.put_secrets(sp, base_address, token).await {
            note.failure = Some(Failure::from_graph(&e));
            return;
        }
        note.saved = true;
        note.saved_now = true;
    }
    match target
        .client
        .validate_saved_credentials(sp, &target.job_id)
        .await
    {
        Ok(()) => note.validation = Some(Validation::Passed),
        Err(e) if e.kind() == GraphErrorKind::ValidationFailed && note.saved_now => {
            note.validation = Some(Validation::Pending(e.to_string()));
        }
        Err(e) if e.kind() == GraphErrorKind::ValidationFailed => {
            note.validation = Some(Validation::Failed(e.to_string()));
            note.failure = Some(Failure::from_graph(&e));
        }
        Err(e) => {
            note.failure = Some(Failure::from_graph(&e));
            return;
        }
    }
    let job = match target.client.get_job(sp, &target.job_id).await {
        Ok(job) => job,
        Err(e) => {
            note.failure = note.failure.take().or(Some(Failure::from_graph(&e)));
            return;
        }
    };
    let quarantine = job
        .status
        .quarantine
        .as_ref()
        .and_then(|q| q.reason.clone());
    note.job = Some((job.status.code.as_str().to_owned(), quarantine));
    // Only a quarantine is lifted, only with QuarantineState, and only once the new token is
    // known to work (or its validation is still pending a lagging read): never on an active job.
    let validated = matches!(
        note.validation,
        Some(Validation::Passed | Validation::Pending(_))
    );
    if job.is_quarantined() && validated && ctx.fence.check().is_ok() {
        match target
            .client
            .restart_quarantined_job(sp, &target.job_id)
            .await
        {
            Ok(()) => note.quarantine_lifted = true,
            Err(e) => note.failure = note.failure.take().or(Some(Failure::from_graph(&e))),
        }
    }
}

/// Events and metrics of one attempt.
async fn report(ctx: &Context, observation: &Observation, note: &DeliveryNote) {
    use kube::runtime::events::EventType;

    use crate::api::reasons;
    let target = format!("delivery {}", note.name);
    let (label, event) = match (&note.failure, &note.validation) {
        (Some(failure), Some(Validation::Failed(message))) => (
            FailureReason::EntraValidationFailed.as_str(),
            Some((
                EventType::Warning,
                reasons::EVENT_DELIVERY_VALIDATION_FAILED,
                format!(
                    "revision {} saved to {target}, but {message}; {}",
                    note.revision,
                    failure.reason.hint()
                ),
            )),
        ),
        (Some(failure), _) => (
            failure.reason.as_str(),
            Some((
                EventType::Warning,
                reasons::EVENT_DELIVERY_FAILING,
                format!(
                    "delivering revision {} to {target} failed ({}): {}; {}",
                    note.revision,
                    failure.reason,
                    failure.message,
                    failure.reason.hint()
                ),
            )),
        ),
        (None, _) if note.complete() => (
            "delivered",
            Some((
                EventType::Normal,
                reasons::EVENT_DELIVERED,
                format!(
                    "revision {} delivered to {target} (job {}) and validated",
                    note.revision,
                    note.job_id.as_deref().unwrap_or("-")
                ),
            )),
        ),
        (None, _) => ("pending", None),
    };
    ctx.metrics.record_delivery(label);
    if note.quarantine_lifted {
        let message = format!(
            "the provisioning job {} of {target} was quarantined ({}); lifted with restart (QuarantineState) now that it holds revision {}",
            note.job_id.as_deref().unwrap_or("-"),
            note.job
                .as_ref()
                .and_then(|(_, reason)| reason.clone())
                .unwrap_or_else(|| "no reason given".into()),
            note.revision
        );
        super::events::publish(
            ctx,
            &observation.cr,
            EventType::Normal,
            reasons::EVENT_QUARANTINE_LIFTED,
            &message,
        )
        .await;
    }
    if let Some((type_, reason, message)) = event {
        tracing::info!(namespace = %observation.namespace(), name = %observation.name(), delivery = %note.name, revision = note.revision, outcome = label, "delivery attempt");
        super::events::publish(ctx, &observation.cr, type_, reason, &message).await;
    }
}

/// The connection's shared client and the job: the spec's, the one found before, or the
/// service principal's only job.
async fn resolve<'a>(
    ctx: &Context,
    observation: &Observation,
    spec: &'a EntraIdDelivery,
) -> Result<Target<'a>, Failure> {
    let namespace = observation.namespace();
    let client = ctx
        .entra
        .resolve(&ctx.client, &namespace, &spec.connection_ref)
        .await
        .map_err(|e| Failure::from_entra_resolve(&e))?;
    let key = EntraKey::of(&namespace, &spec.connection_ref);
    let job_id = match &spec.job_id {
        Some(job) => job.clone(),
        None => {
            if let Some(job) = ctx.entra.known_job(&key, &spec.service_principal_id) {
                job
            } else {
                let job = only_job(&client, &spec.service_principal_id).await?;
                ctx.entra
                    .remember_job(&key, &spec.service_principal_id, &job);
                job
            }
        }
    };
    Ok(Target {
        spec,
        client,
        job_id,
    })
}

async fn only_job(client: &GraphClient, service_principal_id: &str) -> Result<String, Failure> {
    let jobs = client
        .list_jobs(service_principal_id)
        .await
        .map_err(|e| Failure::from_graph(&e))?;
    match jobs.as_slice() {
        [job] => Ok(job.id.clone()),
        [] => Err(Failure::new(
            FailureReason::EntraJobNotFound,
            format!("service principal {service_principal_id} has no provisioning job"),
        )),
        several => Err(Failure::new(
            FailureReason::EntraJobAmbiguous,
            format!(
                "service principal {service_principal_id} has {} provisioning jobs ({}): name one in jobId",
                several.len(),
                several
                    .iter()
                    .map(|job| job.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
