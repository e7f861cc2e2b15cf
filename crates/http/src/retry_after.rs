//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP date, bounded so that neither a
//! zero nor a year-long wait reaches the caller.

use std::time::{Duration, SystemTime};

/// Shortest wait reported: a `Retry-After: 0` (or a date in the past) must not invite a loop.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Longest wait reported: the operator retries within the hour whatever the server says.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait a `Retry-After` value asks for, bounded to [`MIN_RETRY_AFTER`]..=[`MAX_RETRY_AFTER`];
/// `None` when the value is neither delta-seconds nor an HTTP date.
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let wait = if text.bytes().all(|byte| byte.is_ascii_digit()) {
        // Only digits: parsing fails on overflow alone, which is "very long".
        text.parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = httpdate::parse_http_date(text).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds_since_epoch: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds_since_epoch)
    }

    #[test]
    fn delta_seconds_are_bounded() {
        let now = SystemTime::now();
        let cases = [
            ("120", Some(Duration::from_secs(120))),
            (" 7 ", Some(Duration::from_secs(7))),
            ("0", Some(MIN_RETRY_AFTER)),
            ("86400", Some(MAX_RETRY_AFTER)),
            ("99999999999999999999999999", Some(MAX_RETRY_AFTER)),
            ("-5", None),
            ("1.5", None),
            ("", None),
            ("soon", None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                parse_retry_after(value.as_bytes(), now),
                expected,
                "{value:?}"
            );
        }
        assert_eq!(parse_retry_after(&[0xff, 0x31], now), None);
    }

    #[test]
    fn http_dates_count_from_now_and_are_bounded() {
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777 s after the epoch.
        let now = at(784_111_777 - 90);
        let cases = [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ];
        for value in cases {
            assert_eq!(
                parse_retry_after(value.as_bytes(), now),
                Some(Duration::from_secs(90)),
                "{value}"
            );
        }
        let later = at(784_111_777 + 10);
        assert_eq!(
            parse_retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(MIN_RETRY_AFTER),
            "a date in the past"
        );
        let long_before = at(700_000_000);
        assert_eq!(
            parse_retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT", long_before),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after(b"Sun, 32 Nov 1994 08:49:37 GMT", now),
            None
        );
    }
}
