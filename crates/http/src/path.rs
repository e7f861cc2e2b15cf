//! Ids placed in URL paths: percent-encoded, and never `.` or `..`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in a path segment: RFC 3986 unreserved. Everything else,
/// including `/`, `%`, `?` and spaces, is percent-encoded.
pub const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Longest id accepted in a path (ids are UUIDs or short names; this only stops absurd input).
pub const MAX_PATH_VALUE_CHARS: usize = 256;

/// An id must be a usable path segment: not empty, not absurdly long, and not `.` or `..`,
/// which URL parsing would resolve away (even percent-encoded) to point at another resource.
/// The error names the id as `what` and never quotes a long value.
pub fn check_path_value(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if value.chars().count() > MAX_PATH_VALUE_CHARS {
        return Err(format!(
            "the {what} is longer than {MAX_PATH_VALUE_CHARS} characters"
        ));
    }
    if value == "." || value == ".." {
        return Err(format!("the {what} must not be \"{value}\""));
    }
    Ok(())
}

/// `value` checked with [`check_path_value`] and percent-encoded with [`PATH_SEGMENT`].
pub fn encode_path_segment(what: &str, value: &str) -> Result<String, String> {
    check_path_value(what, value)?;
    Ok(utf8_percent_encode(value, PATH_SEGMENT).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_encode_everything_but_unreserved() {
        let encoded = utf8_percent_encode("my tenant/a%b?c#d.e_f-g~h", PATH_SEGMENT).to_string();
        assert_eq!(encoded, "my%20tenant%2Fa%25b%3Fc%23d.e_f-g~h");
        assert!(check_path_value("directory id", "..").is_err());
        assert!(check_path_value("directory id", "").is_err());
        assert!(check_path_value("directory id", "1b2c-..").is_ok());
        assert_eq!(encode_path_segment("job id", "a/b").as_deref(), Ok("a%2Fb"));
        assert_eq!(
            encode_path_segment("job id", "."),
            Err("the job id must not be \".\"".to_owned())
        );
        let long = "x".repeat(MAX_PATH_VALUE_CHARS + 1);
        assert_eq!(
            encode_path_segment("job id", &long),
            Err(format!(
                "the job id is longer than {MAX_PATH_VALUE_CHARS} characters"
            ))
        );
    }
}
