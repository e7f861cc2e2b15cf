//! Lifetimes as servers report them (the broker's `access_token_expire_in`, OAuth `expires_in`),
//! typed so that no value, however absurd, can overflow anyone's arithmetic.

use std::time::Duration;

use serde_json::{Map, Number, Value};

/// A lifetime in seconds as an answer reported it, counted from when the answer arrived.
///
/// The server is not trusted: the value may be zero, negative, fractional or absurdly large.
/// Parsing saturates to `i64`, keeps negatives negative and rounds fractions down (towards
/// negative infinity); a number sent as a string (`"3600"`) is read as that number. A field that
/// is no number at all is [`ReportedLifetime::Unreadable`], not an error: after a broker's
/// generate the old credential is revoked, and throwing the new one away would leave a revoked
/// one stored.
/// Judging the value (a floor, a ceiling, "already expired", unreadable) is the caller's
/// business; the helpers below never overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReportedLifetime {
    /// The reported number of seconds (saturated to `i64`, rounded down).
    Seconds(i64),
    /// The field was missing or `null`: the lifetime is unknown.
    #[default]
    NotReported,
    /// The field was there but held no number (`"soon"`, `true`, an object): the lifetime is
    /// unknown and the answer is suspect.
    Unreadable,
}

impl ReportedLifetime {
    /// The reported seconds, if any.
    pub fn seconds(self) -> Option<i64> {
        match self {
            Self::Seconds(seconds) => Some(seconds),
            Self::NotReported | Self::Unreadable => None,
        }
    }

    /// True when a lifetime was reported and it is zero or negative (already expired).
    pub fn is_expired(self) -> bool {
        self.seconds().is_some_and(|seconds| seconds <= 0)
    }

    /// The reported lifetime as a duration no longer than `max`; zero for zero or negative
    /// values; `None` when not reported.
    pub fn clamped(self, max: Duration) -> Option<Duration> {
        let seconds = self.seconds()?;
        let positive = u64::try_from(seconds).unwrap_or(0);
        Some(Duration::from_secs(positive).min(max))
    }

    /// Reads `key` of a JSON object: missing or `null` is [`ReportedLifetime::NotReported`],
    /// a number (or a string holding one) is [`ReportedLifetime::Seconds`], anything else is
    /// [`ReportedLifetime::Unreadable`]. The value is never quoted: it may be anything.
    pub fn from_field(object: &Map<String, Value>, key: &str) -> Self {
        match object.get(key) {
            None | Some(Value::Null) => Self::NotReported,
            Some(Value::Number(number)) => Self::Seconds(saturating_seconds(number)),
            Some(Value::String(text)) => text
                .trim()
                .parse::<Number>()
                .map_or(Self::Unreadable, |number| {
                    Self::Seconds(saturating_seconds(&number))
                }),
            Some(_) => Self::Unreadable,
        }
    }
}

/// A JSON number as whole seconds: integers saturate to `i64`, fractions round down.
fn saturating_seconds(number: &Number) -> i64 {
    if let Some(seconds) = number.as_i64() {
        return seconds;
    }
    if number.as_u64().is_some() {
        return i64::MAX; // above i64::MAX
    }
    number.as_f64().map_or(0, floor_to_i64)
}

/// Rounds down and saturates; JSON has no NaN, which would become 0.
#[allow(clippy::cast_possible_truncation)] // `as` from float to integer saturates, as wanted
fn floor_to_i64(value: f64) -> i64 {
    value.floor() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: &Value) -> ReportedLifetime {
        let object = json!({ "expires_in": value });
        ReportedLifetime::from_field(object.as_object().expect("object"), "expires_in")
    }

    #[test]
    fn numbers_saturate_round_down_and_keep_their_sign() {
        let cases = [
            (json!(3600), ReportedLifetime::Seconds(3600)),
            (json!(0), ReportedLifetime::Seconds(0)),
            (json!(-5), ReportedLifetime::Seconds(-5)),
            (json!(1.9), ReportedLifetime::Seconds(1)),
            (json!(-0.5), ReportedLifetime::Seconds(-1)),
            (json!(i64::MAX), ReportedLifetime::Seconds(i64::MAX)),
            (json!(u64::MAX), ReportedLifetime::Seconds(i64::MAX)),
            (json!(1e30), ReportedLifetime::Seconds(i64::MAX)),
            (json!(-1e30), ReportedLifetime::Seconds(i64::MIN)),
            (json!(i64::MIN), ReportedLifetime::Seconds(i64::MIN)),
            (Value::Null, ReportedLifetime::NotReported),
            (json!("3600"), ReportedLifetime::Seconds(3600)),
            (json!(" 90.5 "), ReportedLifetime::Seconds(90)),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(&value), expected, "{value}");
        }
        let missing = ReportedLifetime::from_field(&Map::new(), "expires_in");
        assert_eq!(missing, ReportedLifetime::NotReported);
    }

    #[test]
    fn non_numbers_are_unreadable_and_unknown() {
        for value in [
            json!("hunter2"),
            json!("1e"),
            json!(true),
            json!([1]),
            json!({}),
        ] {
            let lifetime = parse(&value);
            assert_eq!(lifetime, ReportedLifetime::Unreadable, "{value}");
            assert_eq!(lifetime.seconds(), None);
            assert!(!lifetime.is_expired());
        }
    }

    #[test]
    fn clamped_never_overflows() {
        let day = Duration::from_secs(86_400);
        assert_eq!(ReportedLifetime::Seconds(i64::MAX).clamped(day), Some(day));
        assert_eq!(
            ReportedLifetime::Seconds(60).clamped(day),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            ReportedLifetime::Seconds(-60).clamped(day),
            Some(Duration::ZERO)
        );
        assert_eq!(ReportedLifetime::NotReported.clamped(day), None);
        assert!(ReportedLifetime::Seconds(0).is_expired());
        assert!(ReportedLifetime::Seconds(i64::MIN).is_expired());
        assert!(!ReportedLifetime::Seconds(1).is_expired());
        assert!(!ReportedLifetime::NotReported.is_expired());
    }
}
