//! Spec rules: what a `SyncClientCredential` asks for, read into the planner's [`Policy`], or a
//! typed [`SpecError`] saying what to fix. The schema refuses most bad specs already; these checks
//! also hold for objects written around validation or under an older schema.

use chrono::TimeDelta;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::SyncClientCredential;
use super::shape::ShapeError;
use crate::duration::DurationParseError;
use crate::planner::{Policy, RenewPolicy};

/// Why a spec cannot be acted on. The message names the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec.{field}: {source}")]
    Duration {
        field: &'static str,
        source: DurationParseError,
    },
    #[error("spec.{field} must be positive")]
    NotPositive { field: &'static str },
    #[error("set spec.renewBefore or spec.renewBeforePercentage, not both")]
    RenewBeforeTwice,
    #[error("spec.renewBeforePercentage {0} is not within 1-99")]
    RenewPercentage(i32),
    #[error("spec.tokenTTL must be at least 1m")]
    TokenTtlTooShort,
    #[error("spec.tokenTTL is too long")]
    TokenTtlTooLong,
    #[error("spec.{field} must be at most 87600h (10 years)")]
    TooLong { field: &'static str },
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// The longest duration any spec field may hold: 10 years.
pub const MAX_SPEC_DURATION: TimeDelta = TimeDelta::days(3650);
/// How often an access token is probed when `verifyInterval` is not set.
pub const DEFAULT_VERIFY_INTERVAL: TimeDelta = TimeDelta::hours(1);

impl Policy {
    /// The planner's view of a credential's spec.
    pub fn from_resource(cr: &SyncClientCredential) -> Result<Self, SpecError> {
        let spec = &cr.spec;
        let renew = match (
            positive_duration("renewBefore", spec.renew_before.as_deref())?,
            spec.renew_before_percentage,
        ) {
            (Some(_), Some(_)) => return Err(SpecError::RenewBeforeTwice),
            (Some(before), None) => RenewPolicy::Before(before),
            (None, Some(p)) if (1..=99).contains(&p) => RenewPolicy::Percentage(p),
            (None, Some(p)) => return Err(SpecError::RenewPercentage(p)),
            (None, None) => RenewPolicy::Default,
        };
        token_ttl_minutes(cr)?;
        super::shape::check(cr)?;
        Ok(Self {
            credential_type: spec.credential_type,
            renew,
            rotation_interval: positive_duration(
                "rotationInterval",
                spec.rotation_interval.as_deref(),
            )?,
            suspend: spec.suspend,
            verify_interval: verify_interval(cr)?,
            spec_hash: spec_hash(cr),
        })
    }
}

/// How often the stored access token is probed: `verifyInterval` (default 1h), `0s` never;
/// client secrets have no probe.
fn verify_interval(cr: &SyncClientCredential) -> Result<Option<TimeDelta>, SpecError> {
    if cr.spec.credential_type != super::CredentialType::AccessToken {
        return Ok(None);
    }
    let Some(text) = cr.spec.verify_interval.as_deref() else {
        return Ok(Some(DEFAULT_VERIFY_INTERVAL));
    };
    let field = "verifyInterval";
    let interval =
        crate::duration::parse(text).map_err(|source| SpecError::Duration { field, source })?;
    if interval > MAX_SPEC_DURATION {
        return Err(SpecError::TooLong { field });
    }
    Ok(Some(interval).filter(|d| *d > TimeDelta::zero()))
}

fn positive_duration(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<TimeDelta>, SpecError> {
    let Some(text) = value else {
        return Ok(None);
    };
    let delta =
        crate::duration::parse(text).map_err(|source| SpecError::Duration { field, source })?;
    if delta <= TimeDelta::zero() {
        Err(SpecError::NotPositive { field })
    } else if delta > MAX_SPEC_DURATION {
        Err(SpecError::TooLong { field })
    } else {
        Ok(Some(delta))
    }
}

/// `tokenTTL` in whole minutes, rounded up (the broker counts minutes).
pub fn token_ttl_minutes(cr: &SyncClientCredential) -> Result<Option<i32>, SpecError> {
    let Some(text) = cr.spec.token_ttl.as_deref() else {
        return Ok(None);
    };
    let ttl = crate::duration::parse(text).map_err(|source| SpecError::Duration {
        field: "tokenTTL",
        source,
    })?;
    if ttl > MAX_SPEC_DURATION {
        return Err(SpecError::TooLong { field: "tokenTTL" });
    }
    let minutes = (ttl.num_seconds() + 59) / 60;
    if minutes < 1 {
        return Err(SpecError::TokenTtlTooShort);
    }
    i32::try_from(minutes)
        .map(Some)
        .map_err(|_| SpecError::TokenTtlTooLong)
}

/// The Secret a credential writes: `spec.secretName`, else the resource's name.
pub fn secret_name(cr: &SyncClientCredential) -> String {
    cr.spec.secret_name.clone().unwrap_or_else(|| cr.name_any())
}

/// A short stable hash of the spec fields that change what is issued; recorded in the Secret so
/// that a change re-issues.
pub fn spec_hash(owner: &SyncClientCredential) -> String {
    let spec = &owner.spec;
    let material = serde_json::json!({
        "brokerRef": spec.broker_ref,
        "directoryId": spec.directory_id,
        "credentialType": spec.credential_type,
        "tokenTTL": spec.token_ttl,
        "keys": spec.keys,
        "secretName": spec.secret_name,
    });
    let digest = Sha256::digest(material.to_string().as_bytes());
    hex::encode(&digest[..8])
}
