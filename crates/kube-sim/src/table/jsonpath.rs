//! The JSONPath subset of `additionalPrinterColumns`: fields, indexes, wildcards and
//! `[?(@.field=="value")]` filters.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Field(String),
    Index(usize),
    Wildcard,
    Filter {
        path: Vec<String>,
        equal: bool,
        value: Value,
    },
}

fn parse_filter(inner: &str) -> Option<Step> {
    // ?(@.a.b=="v") / ?(@.a != 'v')
    let body = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (left, equal, right) = if let Some((l, r)) = body.split_once("==") {
        (l, true, r)
    } else {
        let (l, r) = body.split_once("!=")?;
        (l, false, r)
    };
    let path = left
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_owned)
        .collect();
    let right = right.trim();
    let value = if let Some(s) = right
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| right.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
    {
        Value::String(s.to_owned())
    } else {
        serde_json::from_str(right).ok()?
    };
    Some(Step::Filter { path, equal, value })
}

/// Parses the JSONPath subset CRD printer columns use: `.a.b`, `['a']`, `[0]`, `[*]`,
/// `[?(@.x=="y")]`, optionally wrapped in `{ }`.
pub(super) fn parse_jsonpath(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    if chars.first() == Some(&'$') {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let mut depth = 0;
                let start = i + 1;
                while i < chars.len() {
                    match chars[i] {
                        '[' | '(' => depth += 1,
                        ']' | ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    i += 1;
                }
                let inner: String = chars[start..i.min(chars.len())].iter().collect();
                i += 1;
                let inner = inner.trim();
                let step = if inner == "*" {
                    Step::Wildcard
                } else if let Ok(n) = inner.parse::<usize>() {
                    Step::Index(n)
                } else if inner.starts_with('?') {
                    parse_filter(inner)?
                } else {
                    Step::Field(inner.trim_matches(|c| c == '\'' || c == '"').to_owned())
                };
                steps.push(step);
            }
            _ => return None,
        }
    }
    Some(steps)
}

pub(super) fn evaluate(steps: &[Step], root: &Value) -> Vec<Value> {
    let mut current = vec![root.clone()];
    for step in steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => next.extend(value.get(name).cloned()),
                Step::Index(n) => next.extend(value.get(*n).cloned()),
                Step::Wildcard => match value {
                    Value::Array(items) => next.extend(items),
                    Value::Object(map) => next.extend(map.into_iter().map(|(_, v)| v)),
                    _ => {}
                },
                Step::Filter {
                    path,
                    equal,
                    value: expected,
                } => {
                    if let Value::Array(items) = value {
                        next.extend(items.into_iter().filter(|item| {
                            let actual = path.iter().try_fold(item, |v, p| v.get(p));
                            (actual == Some(expected)) == *equal
                        }));
                    }
                }
            }
        }
        current = next;
    }
    current
}
