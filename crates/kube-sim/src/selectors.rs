//! `labelSelector` and `fieldSelector` query parameters.

use serde_json::Value;

use crate::error::SimError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

/// Splits on commas that are not inside a `( ... )` value set.
fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_value_set(raw: &str, selector: &str) -> Result<Vec<String>, SimError> {
    let inner = raw
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| invalid_selector(selector, "expected a ( value, ... ) set"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

fn invalid_selector(selector: &str, why: &str) -> SimError {
    SimError::bad_request(format!("unable to parse requirement: {selector}: {why}"))
}

fn valid_label_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

impl LabelSelector {
    pub fn parse(selector: &str) -> Result<Self, SimError> {
        let mut requirements = Vec::new();
        for part in split_top_level(selector) {
            requirements.push(Self::parse_requirement(part, selector)?);
        }
        Ok(Self { requirements })
    }

    fn parse_requirement(part: &str, selector: &str) -> Result<LabelRequirement, SimError> {
        let key_checked = |key: &str| {
            let key = key.trim();
            if valid_label_key(key) {
                Ok(key.to_owned())
            } else {
                Err(invalid_selector(
                    selector,
                    &format!("invalid label key {key:?}"),
                ))
            }
        };
        if let Some(key) = part.strip_prefix('!') {
            return Ok(LabelRequirement::NotExists(key_checked(key)?));
        }
        if let Some((key, value)) = part.split_once("!=") {
            return Ok(LabelRequirement::NotEquals(
                key_checked(key)?,
                value.trim().to_owned(),
            ));
        }
        if let Some((key, value)) = part.split_once("==") {
            return Ok(LabelRequirement::Equals(
                key_checked(key)?,
                value.trim().to_owned(),
            ));
        }
        if let Some((key, value)) = part.split_once('=') {
            return Ok(LabelRequirement::Equals(
                key_checked(key)?,
                value.trim().to_owned(),
            ));
        }
        let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
        if words.len() == 2 {
            let rest = words[1].trim_start();
            if let Some(set) = rest.strip_prefix("notin") {
                return Ok(LabelRequirement::NotIn(
                    key_checked(words[0])?,
                    parse_value_set(set, selector)?,
                ));
            }
            if let Some(set) = rest.strip_prefix("in") {
                return Ok(LabelRequirement::In(
                    key_checked(words[0])?,
                    parse_value_set(set, selector)?,
                ));
            }
            return Err(invalid_selector(selector, "unknown operator"));
        }
        Ok(LabelRequirement::Exists(key_checked(part)?))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|req| match req {
            LabelRequirement::Equals(k, v) => label(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelRequirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            LabelRequirement::Exists(k) => label(k).is_some(),
            LabelRequirement::NotExists(k) => label(k).is_none(),
        })
    }
}

/// A parsed field selector: `path=value`, `path==value` or `path!=value` terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(selector: &str) -> Result<Self, SimError> {
        let mut terms = Vec::new();
        for part in split_top_level(selector) {
            let (path, equal, value) = if let Some((p, v)) = part.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = part.split_once("==") {
                (p, true, v)
            } else if let Some((p, v)) = part.split_once('=') {
                (p, true, v)
            } else {
                return Err(SimError::bad_request(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            terms.push((path.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self { terms })
    }

    /// The field selector `metadata.name=NAME` that a watch on a single object implies.
    pub fn name_equals(name: &str) -> Self {
        Self {
            terms: vec![("metadata.name".to_owned(), true, name.to_owned())],
        }
    }

    /// The selector with every field path replaced by `map`'s answer (or its error).
    pub fn map_paths(
        self,
        map: impl Fn(&str) -> Result<String, SimError>,
    ) -> Result<Self, SimError> {
        let terms = self
            .terms
            .into_iter()
            .map(|(path, equal, value)| Ok((map(&path)?, equal, value)))
            .collect::<Result<_, SimError>>()?;
        Ok(Self { terms })
    }

    /// A path that reads the first of `paths` with a non-empty value.
    pub fn first_of(paths: &[&str]) -> String {
        paths.join("|")
    }

    pub fn and(mut self, other: Self) -> Self {
        self.terms.extend(other.terms);
        self
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(path, equal, expected)| {
            let actual = field_as_string(obj, path);
            (actual == *expected) == *equal
        })
    }
}

/// The value of a dotted field path, rendered as field selectors compare it (missing = "");
/// for alternatives joined by `|` ([`FieldSelector::first_of`]), the first non-empty one.
fn field_as_string(obj: &Value, path: &str) -> String {
    if path.contains('|') {
        return path
            .split('|')
            .map(|alternative| field_as_string(obj, alternative))
            .find(|value| !value.is_empty())
            .unwrap_or_default();
    }
    let mut current = obj;
    for segment in path.split('.') {
        match current.get(segment) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(labels: &Value) -> Value {
        json!({"metadata": {"name": "n", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selector_supports_every_operator() {
        let obj = labelled(&json!({"app": "web", "tier": "front"}));
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web,db)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("missing!=x", true),
            ("app=web,tier in (back)", false),
            ("", true),
        ];
        for (selector, expected) in cases {
            let parsed = LabelSelector::parse(selector).expect(selector);
            assert_eq!(parsed.matches(&obj), expected, "{selector}");
        }
    }

    #[test]
    fn field_selector_matches_name_and_namespace() {
        let obj = labelled(&json!({}));
        assert!(
            FieldSelector::parse("metadata.name=n,metadata.namespace=ns")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=n")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("bogus").is_err());
    }
}
