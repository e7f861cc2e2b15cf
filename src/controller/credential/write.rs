//! Writes the Secret: a server-side dry run before every generate (so a write the API server
//! would refuse costs no revocation), then the real write at once after it, never taking
//! over a Secret someone else created, and never overwriting a newer revision than the one this
//! credential was generated from.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};

use super::gather::Observation;
use crate::controller::Context;
use crate::controller::failure::{Failure, FailureReason};
use crate::controller::kube_error::{self, Call};
use crate::secret::{self, REVISION_ANNOTATION};

/// Attempts to write the Secret when it changes underneath (409 Conflict).
const WRITE_ATTEMPTS: usize = 3;

/// Why a write did not happen.
#[derive(Debug)]
pub enum WriteError {
    /// The API server refused it for a reason a retry will not change (validation, policy,
    /// quota): HTTP 400, 403, 413 or 422.
    Rejected(Failure),
    /// It may work later (conflicts, server errors, the network).
    Failed(Failure),
    /// The Secret holds a newer revision than the one this credential was generated from (or
    /// the same revision from another issue): another writer stored a credential meanwhile;
    /// here is what it stored.
    Superseded(Box<Secret>),
    /// A Secret by that name appeared that this credential does not control: never overwritten.
    Foreign(Failure),
}

/// Why one create or replace did not happen.
enum Attempt {
    Foreign,
    /// The API server's answer to the `verb` (`create` or `update`) of the Secret.
    Api(kube::Error, &'static str),
}

/// A write that was prepared from `observed` (the Secret read when deciding).
pub struct SecretWrite<'a> {
    pub secrets: Api<Secret>,
    pub name: &'a str,
    pub owner_uid: String,
    pub observed: Option<Secret>,
    /// The revision `observed` held: a conflict re-read must still hold it.
    pub based_on: Option<i64>,
}

impl<'a> SecretWrite<'a> {
    pub fn new(ctx: &Context, observation: &'a Observation, based_on: Option<i64>) -> Self {
        Self {
            secrets: Api::namespaced(ctx.client.clone(), &observation.namespace()),
            name: &observation.secret_name,
            owner_uid: observation.uid(),
            observed: observation.secret.clone(),
            based_on,
        }
    }

    /// Proves the write with a server-side dry run; nothing is stored.
    pub async fn dry_run(&self, desired: &Secret) -> Result<(), WriteError> {
        let params = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        match self.attempt(self.observed.as_ref(), desired, &params).await {
            Ok(_) => Ok(()),
            Err(Attempt::Foreign) => Err(self.foreign()),
            Err(Attempt::Api(e, verb)) => Err(self.classify(&e, verb, true, desired)),
        }
    }

    /// Creates or replaces the Secret with `desired`; the version it was stored at.
    pub async fn store(&self, desired: &Secret) -> Result<Option<String>, WriteError> {
        let mut current = self.observed.clone();
        let mut last = None;
        for _ in 0..WRITE_ATTEMPTS {
            match self
                .attempt(current.as_ref(), desired, &PostParams::default())
                .await
            {
                Ok(version) => return Ok(version),
                Err(Attempt::Foreign) => return Err(self.foreign()),
                // Deleted or created meanwhile, or changed underneath: read it again.
                Err(Attempt::Api(kube::Error::Api(status), _))
                    if matches!(status.code, 404 | 409) =>
                {
                    current = self
                        .secrets
                        .get_opt(self.name)
                        .await
                        .map_err(|e| WriteError::Failed(self.reread_failed(&e)))?;
                    if let Some(found) = current.as_ref().filter(|c| holds_this_issue(c, desired)) {
                        // An earlier attempt landed after all (its answer was lost).
                        return Ok(found.metadata.resource_version.clone());
                    }
                    if let Some(theirs) = current.as_ref().filter(|c| self.superseded_by(c)) {
                        return Err(WriteError::Superseded(Box::new(theirs.clone())));
                    }
                    last = Some(redacted(&status.message, desired));
                }
                Err(Attempt::Api(e, verb)) => return Err(self.classify(&e, verb, false, desired)),
            }
        }
        Err(WriteError::Failed(Failure::secret_write(format!(
            "writing Secret {}: it kept changing ({})",
            self.name,
            last.unwrap_or_default()
        ))))
    }

    /// Re-reading the Secret after a write met a conflict failed: the credential is not stored
    /// (the Secret may hold a revoked one) and the write is retried.
    fn reread_failed(&self, error: &kube::Error) -> Failure {
        let namespace = self.secrets.namespace();
        let detail = kube_error::describe_call(error, Call::new("get", "secrets", namespace));
        Failure {
            outcome_unknown: true,
            ..Failure::new(
                FailureReason::SecretReadFailed,
                format!(
                    "re-reading Secret {} after its write met a change: {detail}",
                    self.name
                ),
            )
        }
    }

    fn foreign(&self) -> WriteError {
        WriteError::Foreign(Failure::secret_write(format!(
            "Secret {} was created by someone else meanwhile; the new credential could not be stored and the Secret is left untouched",
            self.name
        )))
    }

    /// Whether `current` holds a revision newer than the one this write was prepared from.
    fn superseded_by(&self, current: &Secret) -> bool {
        let revision = Some(current)
            .filter(|s| secret::is_controlled_by(s, &self.owner_uid))
            .and_then(|s| s.metadata.annotations.as_ref())
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .and_then(|r| r.parse::<i64>().ok());
        revision.is_some_and(|now| now > self.based_on.unwrap_or(0))
    }

    async fn attempt(
        &self,
        current: Option<&Secret>,
        desired: &Secret,
        params: &PostParams,
    ) -> Result<Option<String>, Attempt> {
        let (result, verb) = match current {
            None => (self.secrets.create(params, desired).await, "create"),
            Some(existing) if !secret::is_controlled_by(existing, &self.owner_uid) => {
                return Err(Attempt::Foreign);
            }
            Some(existing) => {
                let replacement = merged_for_replace(existing, desired);
                let replaced = self.secrets.replace(self.name, params, &replacement).await;
                (replaced, "update")
            }
        };
        result
            .map(|stored| stored.metadata.resource_version)
            .map_err(|error| Attempt::Api(error, verb))
    }

    /// Sorts an API error of the `verb` into what can be retried and what cannot, in words.
    fn classify(
        &self,
        error: &kube::Error,
        verb: &str,
        dry_run: bool,
        desired: &Secret,
    ) -> WriteError {
        let name = self.name;
        let doing = if dry_run {
            "the dry run of writing"
        } else {
            "writing"
        };
        let call = Call::new(verb, "secrets", self.secrets.namespace());
        let detail = redacted(&kube_error::describe_call(error, call), desired);
        match error {
            kube::Error::Api(status) if matches!(status.code, 400 | 403 | 413 | 422) => {
                WriteError::Rejected(Failure::secret_rejected(format!(
                    "the API server refused {doing} Secret {name}: {detail}"
                )))
            }
            // A dry run stored nothing: nothing was generated, nothing is lost.
            _ if dry_run => WriteError::Failed(Failure::new(
                FailureReason::SecretWriteFailed,
                format!("{doing} Secret {name}: {detail}"),
            )),
            _ => WriteError::Failed(Failure::secret_write(format!(
                "{doing} Secret {name}: {detail}"
            ))),
        }
    }
}

/// Whether `current` holds exactly what `desired` writes: the same issue (its id) and data.
fn holds_this_issue(current: &Secret, desired: &Secret) -> bool {
    let issue = |s: &Secret| {
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(secret::ISSUE_ID_ANNOTATION))
            .cloned()
    };
    issue(current).is_some() && issue(current) == issue(desired) && current.data == desired.data
}

/// The API server's words without the values being written: an admission policy may quote the
/// object it refuses, and the message goes into status, events and logs.
fn redacted(message: &str, desired: &Secret) -> String {
    use base64::Engine as _;
    let values = desired
        .data
        .iter()
        .flatten()
        .map(|(_, value)| &value.0)
        .filter(|value| !value.is_empty());
    values.fold(message.to_owned(), |text, value| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        let plain = String::from_utf8_lossy(value);
        let text = text.replace(&encoded, "<redacted>");
        // Short values (a URL's pieces, a number) would blank out ordinary words.
        if plain.len() >= MIN_REDACTED_LEN {
            text.replace(plain.as_ref(), "<redacted>")
        } else {
            text
        }
    })
}

const MIN_REDACTED_LEN: usize = 8;

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

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn a_refusal_quoting_the_secret_says_nothing_of_its_values() {
        let desired = Secret {
            data: Some(BTreeMap::from([
                (
                    "access_token".to_owned(),
                    ByteString(b"tok-3f9a1c2e7b".to_vec()),
                ),
                ("empty".to_owned(), ByteString(Vec::new())),
                ("id".to_owned(), ByteString(b"42".to_vec())),
            ])),
            ..Secret::default()
        };
        let message = "denied by policy: data.access_token=dG9rLTNmOWExYzJlN2I= \
                       (tok-3f9a1c2e7b) id 42";
        assert_eq!(
            redacted(message, &desired),
            "denied by policy: data.access_token=<redacted> (<redacted>) id 42"
        );
    }
}
