//! Times for people: `5d3h`, `in 12m`, `expired 3m ago`. Every function takes `now`, so the
//! output is a pure function of its inputs (tests pass a fixed clock; the commands pass the
//! local clock once per run).

use chrono::{DateTime, SecondsFormat, Utc};

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const YEAR: u64 = 365 * DAY;

/// A length of time in at most two units, the larger first, truncated: `45s`, `5m30s`, `12m`,
/// `2h5m`, `5d3h`, `1y30d`. Seconds are shown below ten minutes, minutes below a day, hours
/// below a year. The second unit is left out when it is zero (`2h`, not `2h0m`).
pub fn duration(seconds: u64) -> String {
    let (big, big_unit, small, small_unit) = if seconds < 10 * MINUTE {
        (seconds / MINUTE, "m", seconds % MINUTE, "s")
    } else if seconds < DAY {
        (seconds / HOUR, "h", seconds % HOUR / MINUTE, "m")
    } else if seconds < YEAR {
        (seconds / DAY, "d", seconds % DAY / HOUR, "h")
    } else {
        (seconds / YEAR, "y", seconds % YEAR / DAY, "d")
    };
    match (big, small) {
        (0, small) => format!("{small}{small_unit}"),
        (big, 0) => format!("{big}{big_unit}"),
        (big, small) => format!("{big}{big_unit}{small}{small_unit}"),
    }
}

/// Whole seconds from `now` to `at`: positive in the future, negative in the past.
fn seconds_until(now: DateTime<Utc>, at: DateTime<Utc>) -> i64 {
    (at - now).num_seconds()
}

/// `2h ago` for a past time; `in 5s` for a time in the future (a clock ahead of this one).
pub fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let seconds = seconds_until(now, at);
    if seconds > 0 {
        format!("in {}", duration(seconds.unsigned_abs()))
    } else {
        format!("{} ago", duration(seconds.unsigned_abs()))
    }
}

/// `in 12m` for a time in the future; `{past} 3m ago` for one that has passed (`past` names what
/// happened: `expired`, `due`).
pub fn until(now: DateTime<Utc>, at: DateTime<Utc>, past: &str) -> String {
    let seconds = seconds_until(now, at);
    if seconds > 0 {
        format!("in {}", duration(seconds.unsigned_abs()))
    } else {
        format!("{past} {} ago", duration(seconds.unsigned_abs()))
    }
}

/// When something planned happens: `in 40s`; `due` once less than a whole second is left (as
/// [`until`] counts).
pub fn due(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    if seconds_until(now, at) > 0 {
        until(now, at, "due")
    } else {
        "due".to_owned()
    }
}

/// A time as RFC 3339 in UTC with whole seconds, as `kubectl` prints timestamps.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    const NOW: &str = "2026-03-10T12:00:00Z";

    #[test]
    fn durations_use_two_units_and_drop_a_zero_second_unit() {
        let cases = [
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m"),
            (61, "1m1s"),
            (5 * MINUTE + 30, "5m30s"),
            (10 * MINUTE - 1, "9m59s"),
            (10 * MINUTE, "10m"),
            (12 * MINUTE + 59, "12m"),
            (HOUR, "1h"),
            (2 * HOUR + 5 * MINUTE + 59, "2h5m"),
            (DAY - 1, "23h59m"),
            (DAY, "1d"),
            (5 * DAY + 3 * HOUR + 59 * MINUTE, "5d3h"),
            (30 * DAY, "30d"),
            (YEAR - 1, "364d23h"),
            (YEAR + 30 * DAY + 5 * HOUR, "1y30d"),
            (10 * YEAR, "10y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(duration(seconds), expected, "{seconds} s");
        }
    }

    #[test]
    fn past_times_read_as_ago_and_future_ones_as_in() {
        let now = at(NOW);
        assert_eq!(ago(now, at("2026-03-10T10:00:00Z")), "2h ago");
        assert_eq!(ago(now, at("2026-03-10T11:59:15Z")), "45s ago");
        assert_eq!(ago(now, now), "0s ago");
        assert_eq!(ago(now, at("2026-03-10T12:00:05Z")), "in 5s");
    }

    #[test]
    fn expiry_reads_in_the_future_and_expired_in_the_past() {
        let now = at(NOW);
        assert_eq!(until(now, at("2026-03-15T15:00:30Z"), "expired"), "in 5d3h");
        assert_eq!(until(now, at("2026-03-10T12:12:00Z"), "expired"), "in 12m");
        assert_eq!(
            until(now, at("2026-03-10T11:57:00Z"), "expired"),
            "expired 3m ago"
        );
        assert_eq!(until(now, now, "due"), "due 0s ago");
    }

    #[test]
    fn fractions_of_a_second_are_truncated_towards_now() {
        let now = at("2026-03-10T12:00:00.900Z");
        assert_eq!(until(now, at("2026-03-10T12:01:00Z"), "expired"), "in 59s");
        assert_eq!(ago(now, at("2026-03-10T11:59:00Z")), "1m ago");
    }

    #[test]
    fn planned_times_are_due_within_a_second() {
        let now = at(NOW);
        assert_eq!(due(now, at("2026-03-10T12:00:40Z")), "in 40s");
        assert_eq!(due(now, at("2026-03-10T12:00:00.900Z")), "due");
        assert_eq!(due(now, at("2026-03-10T11:00:00Z")), "due");
    }

    #[test]
    fn timestamps_are_utc_with_whole_seconds() {
        assert_eq!(
            timestamp(at("2026-03-10T13:00:00.123456789+01:00")),
            "2026-03-10T12:00:00Z"
        );
    }
}
