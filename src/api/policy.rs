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
    #[error("spec.{field} must be at least {min}")]
    TooShort {
        field: &'static str,
        min: &'static str,
    },
    #[error("set spec.renewBefore or spec.renewBeforePercentage, not both")]
    RenewBeforeTwice,
    #[error("spec.renewBeforePercentage {0} is not within 1-99")]
    RenewPercentage(i32),
    #[error("spec.tokenTTL must be at least 1m")]
    TokenTtlTooShort,
    #[error("spec.tokenTTL is too long")]
    TokenTtlTooLong,
    #[error("spec.{field} must be at most {max}")]
    TooLong {
        field: &'static str,
        max: &'static str,
    },
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// The longest duration any spec field may hold: 10 years.
pub const MAX_SPEC_DURATION: TimeDelta = TimeDelta::days(3650);
/// How often an access token is probed when `verifyInterval` is not set.
pub const DEFAULT_VERIFY_INTERVAL: TimeDelta = TimeDelta::hours(1);

/// A duration field's bounds, as the schema states them: the schema refuses values outside, and
/// an object stored around it gets the same answer here (a 1ms `rotationInterval` would revoke
/// the live credential at every minimum issue interval, a 1ms `verifyInterval` probe the broker
/// at every reconcile).
struct Bounds {
    field: &'static str,
    min: (TimeDelta, &'static str),
    max: (TimeDelta, &'static str),
}

const TEN_YEARS: (TimeDelta, &str) = (MAX_SPEC_DURATION, "87600h (10 years)");
const RENEW_BEFORE: Bounds = Bounds {
    field: "renewBefore",
    min: (TimeDelta::minutes(1), "1m"),
    max: TEN_YEARS,
};
const ROTATION_INTERVAL: Bounds = Bounds {
    field: "rotationInterval",
    min: (TimeDelta::minutes(1), "1m"),
    max: TEN_YEARS,
};
const VERIFY_INTERVAL: Bounds = Bounds {
    field: "verifyInterval",
    min: (TimeDelta::seconds(10), "10s (or 0s, off)"),
    max: (TimeDelta::hours(8760), "8760h"),
};

impl Policy {
    /// The planner's view of a credential's spec.
    pub fn from_resource(cr: &SyncClientCredential) -> Result<Self, SpecError> {
        let spec = &cr.spec;
        let renew = match (
            bounded(&RENEW_BEFORE, spec.renew_before.as_deref())?,
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
            rotation_interval: bounded(&ROTATION_INTERVAL, spec.rotation_interval.as_deref())?,
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
    match cr.spec.verify_interval.as_deref() {
        None => Ok(Some(DEFAULT_VERIFY_INTERVAL)),
        Some(text) if parse(VERIFY_INTERVAL.field, text)? == TimeDelta::zero() => Ok(None),
        text => bounded(&VERIFY_INTERVAL, text),
    }
}

fn parse(field: &'static str, text: &str) -> Result<TimeDelta, SpecError> {
    crate::duration::parse(text).map_err(|source| SpecError::Duration { field, source })
}

/// A duration field within its bounds, or the error naming them.
fn bounded(bounds: &Bounds, value: Option<&str>) -> Result<Option<TimeDelta>, SpecError> {
    let Some(text) = value else {
        return Ok(None);
    };
    let (field, delta) = (bounds.field, parse(bounds.field, text)?);
    if delta < bounds.min.0 {
        Err(SpecError::TooShort {
            field,
            min: bounds.min.1,
        })
    } else if delta > bounds.max.0 {
        Err(SpecError::TooLong {
            field,
            max: bounds.max.1,
        })
    } else {
        Ok(Some(delta))
    }
}

/// `tokenTTL` in whole minutes, rounded up (the broker counts minutes).
pub fn token_ttl_minutes(cr: &SyncClientCredential) -> Result<Option<i32>, SpecError> {
    let Some(text) = cr.spec.token_ttl.as_deref() else {
        return Ok(None);
    };
    let ttl = parse("tokenTTL", text)?;
    if ttl > MAX_SPEC_DURATION {
        return Err(SpecError::TooLong {
            field: "tokenTTL",
            max: TEN_YEARS.1,
        });
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

/// The identity a credential is issued for, hashed: the broker it names, the directory (compared
/// case-insensitively) and the credential type, with defaults resolved. Only a change of these
/// needs a new credential; the Secret's name, its keys and template, the schedule and the
/// `tokenTTL` are applied to the credential already held (the TTL from the next issue on).
pub fn spec_hash(owner: &SyncClientCredential) -> String {
    let spec = &owner.spec;
    let material = serde_json::json!({
        "brokerKind": spec.broker_ref.kind,
        "brokerName": spec.broker_ref.name,
        "directoryId": spec.directory_id.to_ascii_lowercase(),
        "credentialType": spec.credential_type,
    });
    let digest = Sha256::digest(material.to_string().as_bytes());
    format!("v2:{}", hex::encode(&digest[..8]))
}

/// The hash release 0.1.0 recorded: it also covered `tokenTTL`, `keys` and `secretName`, as
/// spelled. A Secret written by 0.1.0 whose hash equals this one for the spec now was issued for
/// exactly this spec, and is taken over without a new credential. Frozen: it must compute what
/// 0.1.0 computed (checked against 0.1.0's own records in the tests).
pub fn legacy_spec_hash(owner: &SyncClientCredential) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(extra: &serde_json::Value) -> SyncClientCredential {
        let mut spec = serde_json::json!({
            "brokerRef": {"kind": "IdentityBroker", "name": "vc"},
            "directoryId": "6c3f8a52-1d2e-4b7a-9f10-2a4b6c8d0e1f",
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(serde_json::json!({
            "apiVersion": "syncclient.io/v1alpha1",
            "kind": "SyncClientCredential",
            "metadata": {"name": "c", "namespace": "n"},
            "spec": spec,
        }))
        .unwrap()
    }

    /// What the schema refuses is refused here too, for objects stored around validation.
    #[test]
    fn durations_hold_the_schemas_bounds() {
        let refused = [
            (
                r#"{"rotationInterval": "59s"}"#,
                "spec.rotationInterval must be at least 1m",
            ),
            (
                r#"{"rotationInterval": "1ms"}"#,
                "spec.rotationInterval must be at least 1m",
            ),
            (
                r#"{"renewBefore": "30s"}"#,
                "spec.renewBefore must be at least 1m",
            ),
            (
                r#"{"verifyInterval": "1ms"}"#,
                "spec.verifyInterval must be at least 10s (or 0s, off)",
            ),
            (
                r#"{"verifyInterval": "8761h"}"#,
                "spec.verifyInterval must be at most 8760h",
            ),
            (
                r#"{"rotationInterval": "87601h"}"#,
                "spec.rotationInterval must be at most 87600h (10 years)",
            ),
        ];
        for (extra, message) in refused {
            let cr = credential(&serde_json::from_str(extra).unwrap());
            let error = Policy::from_resource(&cr).expect_err(extra);
            assert_eq!(error.to_string(), message, "{extra}");
        }
        let policy = Policy::from_resource(&credential(&serde_json::json!({
            "rotationInterval": "1m", "renewBefore": "1m", "verifyInterval": "10s",
        })))
        .unwrap();
        assert_eq!(policy.rotation_interval, Some(TimeDelta::minutes(1)));
        assert_eq!(policy.verify_interval, Some(TimeDelta::seconds(10)));
        let off = Policy::from_resource(&credential(&serde_json::json!({"verifyInterval": "0s"})));
        assert_eq!(off.unwrap().verify_interval, None, "0s turns the probe off");
    }
}
