//! The planner's times: when a credential is renewed, when its token is next probed, when a
//! failed attempt is retried, and the jitter that spreads them (seeded, so reproducible).

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    BACKOFF_BASE, BACKOFF_CAP, Expiry, FailureCategory, MAX_RENEWAL_JITTER, MAX_RETRY_AFTER,
    MIN_RETRY_DELAY, PlanInput, Policy, Record, RenewPolicy, SLOW_BACKOFF_BASE, SLOW_BACKOFF_CAP,
    SLOW_MIN_RETRY_DELAY, UNKNOWN_EXPIRY_ROTATION, effective_record,
};
use crate::api::CredentialType;

/// When the credential in `record` should be renewed, jitter included; `None`: never scheduled.
pub fn renewal_time(policy: &Policy, record: &Record, jitter_seed: u64) -> Option<DateTime<Utc>> {
    let by_interval = policy
        .rotation_interval
        .and_then(|interval| record.issued_at.checked_add_signed(interval));
    let by_expiry = match (policy.credential_type, &record.expiry) {
        (CredentialType::AccessToken, Expiry::At(expires_at)) => {
            let lifetime = expires_at
                .signed_duration_since(record.issued_at)
                .max(TimeDelta::zero());
            let before = match policy.renew {
                RenewPolicy::Before(before) if before > TimeDelta::zero() && before < lifetime => {
                    Some(before)
                }
                // A renewBefore longer than the lifetime would renew at once, forever: fall back
                // to the default, as cert-manager does.
                RenewPolicy::Default | RenewPolicy::Before(_) => Some(lifetime / 3),
                RenewPolicy::Percentage(percent) => lifetime
                    .checked_mul(percent.clamp(1, 99))
                    .map(|scaled| scaled / 100),
            };
            before.and_then(|before| expires_at.checked_sub_signed(before))
        }
        (CredentialType::AccessToken, Expiry::NotReported | Expiry::Missing) => {
            record.issued_at.checked_add_signed(UNKNOWN_EXPIRY_ROTATION)
        }
        (CredentialType::ClientSecret, _) => None,
    };
    let renewal = match (by_interval, by_expiry) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let window = renewal
        .signed_duration_since(record.issued_at)
        .max(TimeDelta::zero());
    let bound = (window / 10).min(MAX_RENEWAL_JITTER);
    let advance = scale(
        bound,
        unit_fraction(mix(jitter_seed, record.revision.unsigned_abs())),
    );
    renewal.checked_sub_signed(advance)
}

/// When the stored access token is next probed: a probe owed since a given time (a generate
/// that may still have landed, a token that replaced a revoked one), else `verifyInterval` after
/// the last probe of this credential (or its issue), advanced by up to a tenth so probes of many
/// credentials spread.
pub(super) fn next_verification(input: &PlanInput<'_>, record: &Record) -> Option<DateTime<Utc>> {
    if input.policy.credential_type != CredentialType::AccessToken || !record.data_intact {
        return None;
    }
    let last = input
        .last_verification
        .map(|v| v.at)
        .filter(|at| *at >= record.issued_at && *at <= input.now);
    let owed = input
        .verify_after
        .filter(|at| last.is_none_or(|last| last < *at));
    let interval = input.policy.verify_interval;
    let regular = interval.and_then(|interval| {
        let since = last.unwrap_or(record.issued_at);
        let advance = scale(
            interval / 10,
            unit_fraction(mix(
                input.jitter_seed ^ 0x5645_5249_4659,
                since.timestamp().unsigned_abs(),
            )),
        );
        since
            .checked_add_signed(interval)
            .and_then(|at| at.checked_sub_signed(advance))
    });
    match (owed, regular) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When the next attempt after a failure may run: jittered exponential backoff, slow for a
/// failure that needs a change, fast otherwise, and never later than halfway to the expiry of
/// the credential in the Secret, so several attempts still happen while it works.
pub fn retry_time(input: &PlanInput<'_>) -> Option<DateTime<Utc>> {
    let last = input.failures.last_failure_time?;
    let attempts = input.failures.attempts.max(1);
    let (base, cap, floor) = match input.failures.category {
        Some(FailureCategory::Permanent) => {
            (SLOW_BACKOFF_BASE, SLOW_BACKOFF_CAP, SLOW_MIN_RETRY_DELAY)
        }
        _ => (BACKOFF_BASE, BACKOFF_CAP, MIN_RETRY_DELAY),
    };
    let mut delay = jittered_backoff(base, cap, attempts, input.jitter_seed).max(floor);
    if let Some(Record {
        expiry: Expiry::At(expires_at),
        ..
    }) = effective_record(input)
        && *expires_at > last
    {
        delay = delay.min((expires_at.signed_duration_since(last) / 2).max(floor));
    }
    let backoff = last.checked_add_signed(delay)?;
    let asked = input.failures.not_before.filter(|at| {
        last.checked_add_signed(MAX_RETRY_AFTER)
            .is_some_and(|latest| *at <= latest)
    });
    Some(asked.map_or(backoff, |asked| asked.max(backoff)))
}

/// `base` doubled per attempt after the first, capped, then jittered down to between 75% and
/// 100%, so retries of many credentials spread out.
pub fn jittered_backoff(base: TimeDelta, cap: TimeDelta, attempts: u32, seed: u64) -> TimeDelta {
    let attempts = attempts.max(1);
    let exponent = (attempts - 1).min(16);
    let raw = base.checked_mul(1_i32 << exponent).unwrap_or(cap).min(cap);
    let fraction = 0.75 + 0.25 * unit_fraction(mix(seed, u64::from(attempts)));
    scale(raw, fraction)
}

fn scale(delta: TimeDelta, fraction: f64) -> TimeDelta {
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let ms = (delta.num_milliseconds() as f64 * fraction) as i64;
    TimeDelta::try_milliseconds(ms).unwrap_or(delta)
}

/// splitmix64: a fixed, well-spread mix of the seed and a counter.
fn mix(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps to [0, 1).
fn unit_fraction(value: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let fraction = (value >> 11) as f64 / (1_u64 << 53) as f64;
    fraction
}
