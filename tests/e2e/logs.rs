//! The operator's logs as a log pipeline reads them. The harness runs every operator with
//! `--log-format json`; when an operator's process is dropped, [`check`] parses every line of
//! its output: each must be one JSON object with no key repeated at any depth (most parsers
//! keep only one of two `message` keys, losing the other), and what the operator's own code
//! logged holds no Rust `Debug` text.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::debug_text::debug_shape;

/// A JSON value read only to check that no object in it repeats a key.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("the key {key:?} is repeated")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

/// One log line: a JSON object with no key repeated at any depth.
pub fn parse_line(line: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str::<UniqueKeys>(line).map_err(|e| e.to_string())?;
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("not a JSON object".into())
    }
}

/// Whether `output` is JSON lines (a text log starts its lines with a time instead).
pub fn is_json(output: &str) -> bool {
    output.lines().any(|line| line.starts_with('{'))
}

/// Every problem in a JSON log: lines that are not one JSON object with unique keys, and
/// `Debug` text in what the operator's own code logged.
pub fn problems(output: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (number, line) in output.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = match parse_line(line) {
            Ok(value) => value,
            Err(why) => {
                problems.push(format!("line {}: {why}: {line}", number + 1));
                continue;
            }
        };
        let ours = value["target"]
            .as_str()
            .is_some_and(|target| target.starts_with("sync_client"));
        if ours {
            let mut texts = Vec::new();
            strings(&value, &mut texts);
            if let Some(shape) = texts.iter().find_map(|text| debug_shape(text)) {
                problems.push(format!(
                    "line {}: Rust Debug text ({shape:?}): {line}",
                    number + 1
                ));
            }
        }
    }
    problems
}

/// Fails with every problem of a JSON log; a text log is not checked.
#[track_caller]
pub fn check(what: &str, output: &str) {
    if !is_json(output) {
        return;
    }
    let problems = problems(output);
    assert!(
        problems.is_empty(),
        "the log of {what} is not what a log pipeline can read:\n  {}",
        problems.join("\n  ")
    );
}

/// Every string in a JSON value (keys excluded), as a reader of the log sees it: decoded.
pub fn strings<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(text) => out.push(text),
        serde_json::Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|item| strings(item, out)),
        _ => {}
    }
}

/// The text a log holds once its JSON lines are decoded (escapes undone), for scans for
/// secrets: a token with a quote or a backslash is escaped in the raw line.
pub fn decoded(output: &str) -> String {
    let mut text = String::new();
    for line in output.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(value) => {
                let mut all = Vec::new();
                strings(&value, &mut all);
                text.push_str(&all.join(" "));
            }
            Err(_) => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"WARN","message":"issuing failed","detail":"not found (404): x","target":"sync_client_operator::controller","span":{"name":"reconciling object"}}"#;

    #[test]
    fn a_clean_json_log_passes() {
        assert!(problems(GOOD).is_empty(), "{:?}", problems(GOOD));
        assert!(is_json(GOOD));
        check("a clean log", GOOD);
    }

    #[test]
    fn a_repeated_key_is_found_at_any_depth() {
        let twice = r#"{"level":"WARN","message":"broker authentication failed","message":"503","target":"sync_client_operator"}"#;
        let found = problems(twice);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("the key \"message\" is repeated"),
            "{found:?}"
        );
        let nested = r#"{"level":"INFO","span":{"name":"a","name":"b"},"target":"kube"}"#;
        assert!(problems(nested)[0].contains("\"name\" is repeated"));
        let in_array = r#"{"spans":[{"x":1,"x":2}],"target":"kube"}"#;
        assert_eq!(problems(in_array).len(), 1);
    }

    #[test]
    fn a_line_that_is_not_json_or_holds_debug_text_is_a_problem() {
        let log = format!(
            "{GOOD}\nthread 'main' panicked at src/main.rs:1:1\n{}\n",
            r#"{"message":"reconcile failed","error":"ApiError: x (Status { code: 404 })","target":"sync_client_operator::controller::runner"}"#
        );
        let found = problems(&log);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("line 2: "), "{found:?}");
        assert!(found[1].contains("Rust Debug text"), "{found:?}");
        // Another crate's words are not ours to fix.
        let theirs = r#"{"message":"x","error":"Some(1)","target":"hyper_util::client"}"#;
        assert!(problems(theirs).is_empty());
    }

    #[test]
    #[should_panic(expected = "not what a log pipeline can read")]
    fn check_fails_the_test() {
        check("a broken log", r#"{"message":"a","message":"b"}"#);
    }

    #[test]
    fn decoding_undoes_escapes() {
        let line = r#"{"message":"token \"abc\\def\""}"#;
        assert!(!line.contains(r#""abc\def""#));
        assert!(decoded(line).contains(r#""abc\def""#));
    }
}
