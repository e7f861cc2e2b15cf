//! Go-style duration strings (`90s`, `15m`, `2h30m`, `720h`), the format Kubernetes users know
//! from cert-manager and the CEL `duration()` function, so CRD validation and the operator agree.

use std::fmt;

/// Error for a duration string that is not `<number><unit>` pairs with units `h`, `m`, `s`, `ms`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected a sequence like 1h30m, 90s or 500ms")]
pub struct DurationParseError {
    input: String,
}

/// The pattern the CRD schema enforces for duration fields; kept beside the parser it mirrors.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

/// Parses a Go-style duration into a [`chrono::TimeDelta`].
pub fn parse(input: &str) -> Result<chrono::TimeDelta, DurationParseError> {
    let error = || DurationParseError {
        input: input.chars().take(64).collect(),
    };
    if input.is_empty() {
        return Err(error());
    }
    let mut total_ms: i64 = 0;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(error());
        }
        let number: i64 = rest[..digits].parse().map_err(|_| error())?;
        rest = &rest[digits..];
        let (unit_ms, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return Err(error());
        };
        rest = &rest[unit_len..];
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(error)?;
    }
    chrono::TimeDelta::try_milliseconds(total_ms).ok_or_else(error)
}

/// Formats a delta the way [`parse`] reads it, for messages (`1h5m`, `30s`).
pub struct Display(pub chrono::TimeDelta);

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.num_seconds();
        if total <= 0 {
            return write!(f, "{}ms", self.0.num_milliseconds().max(0));
        }
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || (h == 0 && m == 0) {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn parses_every_unit_and_combinations() {
        assert_eq!(parse("90s"), Ok(TimeDelta::seconds(90)));
        assert_eq!(parse("15m"), Ok(TimeDelta::minutes(15)));
        assert_eq!(parse("2h30m"), Ok(TimeDelta::minutes(150)));
        assert_eq!(parse("1h0m5s"), Ok(TimeDelta::seconds(3605)));
        assert_eq!(parse("250ms"), Ok(TimeDelta::milliseconds(250)));
        assert_eq!(parse("720h"), Ok(TimeDelta::hours(720)));
    }

    #[test]
    fn rejects_malformed_durations() {
        for bad in [
            "",
            "h",
            "10",
            "10d",
            "1.5h",
            "-5m",
            "5 m",
            "99999999999999999999h",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn displays_round_trip() {
        for text in ["1h5m", "30s", "2h", "1h0m1s"] {
            let delta = parse(text).unwrap();
            assert_eq!(parse(&Display(delta).to_string()), Ok(delta));
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn parsing_any_text_never_panics(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn parsing_any_duration_shaped_text_never_panics_and_round_trips(
            parts in proptest::collection::vec((any::<u64>(), prop_oneof![Just("h"), Just("m"), Just("s"), Just("ms")]), 1..4)
        ) {
            let text = parts.iter().fold(String::new(), |mut text, (n, unit)| {
                text.push_str(&n.to_string());
                text.push_str(unit);
                text
            });
            if let Ok(delta) = parse(&text) {
                prop_assert!(delta >= chrono::TimeDelta::zero());
                if delta.subsec_nanos() == 0 {
                    prop_assert_eq!(parse(&Display(delta).to_string()), Ok(delta));
                }
            }
        }
    }
}
