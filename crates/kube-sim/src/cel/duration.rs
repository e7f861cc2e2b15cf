//! Durations as Go's `time` package parses and prints them.

pub(super) fn format_duration(ns: i128) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else {
        #[allow(clippy::cast_precision_loss)]
        let seconds = ns as f64 / 1e9;
        format!("{seconds}s")
    }
}

/// Go's `time.ParseDuration`, which cel-go's `duration(string)` calls: `1h30m`, `1.5s`,
/// `.5h`, `250ms`, `-2m`, `0`. Nanoseconds; `None` where Go answers "time: invalid duration"
/// (no unit, unknown unit, or a value beyond the `int64` nanoseconds of a `time.Duration`,
/// about 2562047h), so an overflowing value is an evaluation error, as on the real server.
pub(crate) fn parse_duration(text: &str) -> Option<i128> {
    const LIMIT: u64 = 1 << 63;
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (value, after_int) = leading_int(rest)?;
        let consumed_int = after_int.len() != rest.len();
        rest = after_int;
        let (mut fraction, mut scale, mut consumed_fraction) = (0, 1.0, false);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (f, s, after) = leading_fraction(after_dot);
            consumed_fraction = after.len() != after_dot.len();
            (fraction, scale, rest) = (f, s, after);
        }
        if !consumed_int && !consumed_fraction {
            return None;
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u64 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_end..];
        if value > LIMIT / unit {
            return None;
        }
        let mut component = value * unit;
        if fraction > 0 {
            // As Go: float64 keeps fractions of hours nanosecond-accurate.
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let part = (fraction as f64 * (unit as f64 / scale)) as u64;
            component = component.checked_add(part)?;
            if component > LIMIT {
                return None;
            }
        }
        total = total.checked_add(component)?;
        if total > LIMIT {
            return None;
        }
    }
    if negative {
        return Some(-i128::from(total));
    }
    (total < LIMIT).then(|| i128::from(total))
}

/// Go's `leadingInt`: the leading digits as a number; `None` beyond 2^63.
fn leading_int(text: &str) -> Option<(u64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let mut value: u64 = 0;
    for digit in text[..end].bytes() {
        if value > (1 << 63) / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > 1 << 63 {
            return None;
        }
    }
    Some((value, &text[end..]))
}

/// Go's `leadingFraction`: the digits after a `.` as a number and its scale; digits beyond
/// what fits are ignored.
fn leading_fraction(text: &str) -> (u64, f64, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (mut value, mut scale, mut overflow) = (0_u64, 1.0_f64, false);
    for digit in text[..end].bytes() {
        if overflow {
            continue;
        }
        if value > ((1 << 63) - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(digit - b'0');
        if next > 1 << 63 {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &text[end..])
}
