//! Evaluation of an expression tree: operators, functions and macros, with cel-go's errors.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::duration::parse_duration;
use super::parse::Expr;
use super::{Cel, UNSUPPORTED};

type Scope = Vec<(String, Cel)>;

fn as_bool(value: &Cel) -> Result<bool, String> {
    match value {
        Cel::Bool(b) => Ok(*b),
        other => Err(format!("no such overload: expected bool, got {other}")),
    }
}

pub(super) fn eval(expr: &Expr, scope: &mut Scope) -> Result<Cel, String> {
    match expr {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Ident(name) => scope
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undeclared reference to '{name}'")),
        Expr::Select(target, field) => match eval(target, scope)? {
            Cel::Map(map) => map
                .get(field)
                .cloned()
                .ok_or_else(|| format!("no such key: {field}")),
            other => Err(format!("cannot select field {field} from {other}")),
        },
        Expr::Has(target, field) => match eval(target, scope)? {
            Cel::Map(map) => Ok(Cel::Bool(map.get(field).is_some_and(|v| *v != Cel::Null))),
            other => Err(format!("has() on a non-object {other}")),
        },
        Expr::Index(target, index) => {
            let target = eval(target, scope)?;
            let index = eval(index, scope)?;
            match (&target, &index) {
                (Cel::List(items), i) if i.as_i128().is_some() => i
                    .as_i128()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| format!("index out of range: {i}")),
                (Cel::Map(map), Cel::String(key)) => map
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("no such key: {key}")),
                _ => Err(format!("cannot index {target} with {index}")),
            }
        }
        Expr::Not(inner) => Ok(Cel::Bool(!as_bool(&eval(inner, scope)?)?)),
        Expr::Negate(inner) => match eval(inner, scope)? {
            Cel::Int(i) => i
                .checked_neg()
                .map(Cel::Int)
                .ok_or_else(|| "integer overflow".to_owned()),
            Cel::Double(d) => Ok(Cel::Double(-d)),
            Cel::Duration(ns) => duration_in_range(-ns),
            other => Err(format!("no such overload: -{other}")),
        },
        Expr::Ternary(condition, then, otherwise) => {
            if as_bool(&eval(condition, scope)?)? {
                eval(then, scope)
            } else {
                eval(otherwise, scope)
            }
        }
        Expr::List(items) => Ok(Cel::List(
            items
                .iter()
                .map(|i| eval(i, scope))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Map(entries) => {
            let mut map = BTreeMap::new();
            for (k, v) in entries {
                let key = match eval(k, scope)? {
                    Cel::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, eval(v, scope)?);
            }
            Ok(Cel::Map(map))
        }
        Expr::Binary(op, left, right) => eval_binary(op, left, right, scope),
        Expr::Call(target, name, args) => eval_call(target.as_deref(), name, args, scope),
    }
}

fn eval_binary(op: &str, left: &Expr, right: &Expr, scope: &mut Scope) -> Result<Cel, String> {
    if op == "&&" || op == "||" {
        // CEL is commutative for errors: `false && error` is false, `true || error` is true.
        let decisive = op == "||";
        let l = eval(left, scope).and_then(|v| as_bool(&v));
        if l == Ok(decisive) {
            return Ok(Cel::Bool(decisive));
        }
        let r = eval(right, scope).and_then(|v| as_bool(&v));
        return match (l, r) {
            (_, Ok(r)) if r == decisive => Ok(Cel::Bool(decisive)),
            (Ok(_), Ok(r)) => Ok(Cel::Bool(r)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    let l = eval(left, scope)?;
    let r = eval(right, scope)?;
    match op {
        "==" => Ok(Cel::Bool(values_equal(&l, &r))),
        "!=" => Ok(Cel::Bool(!values_equal(&l, &r))),
        "<" | "<=" | ">" | ">=" => {
            let ordering = compare(&l, &r)?;
            Ok(Cel::Bool(match op {
                "<" => ordering.is_lt(),
                "<=" => ordering.is_le(),
                ">" => ordering.is_gt(),
                _ => ordering.is_ge(),
            }))
        }
        "in" => match &r {
            Cel::List(items) => Ok(Cel::Bool(items.iter().any(|i| values_equal(i, &l)))),
            Cel::Map(map) => Ok(Cel::Bool(l.as_str().is_some_and(|k| map.contains_key(k)))),
            _ => Err(format!("no such overload: {l} in {r}")),
        },
        _ => arithmetic(op, &l, &r),
    }
}

/// CEL's heterogeneous numeric equality: `1 == 1.0`; otherwise structural.
fn values_equal(left: &Cel, right: &Cel) -> bool {
    match (left.as_i128(), right.as_i128()) {
        (Some(l), Some(r)) => l == r,
        _ => match (left.as_f64(), right.as_f64()) {
            (Some(l), Some(r)) => l.total_cmp(&r).is_eq(),
            _ => left == right,
        },
    }
}

fn compare(a: &Cel, b: &Cel) -> Result<Ordering, String> {
    if let (Some(x), Some(y)) = (a.as_i128(), b.as_i128()) {
        return Ok(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x
            .partial_cmp(&y)
            .ok_or_else(|| "cannot compare NaN".to_owned());
    }
    match (a, b) {
        (Cel::String(x), Cel::String(y)) => Ok(x.cmp(y)),
        (Cel::Bool(x), Cel::Bool(y)) => Ok(x.cmp(y)),
        (Cel::Duration(x), Cel::Duration(y)) => Ok(x.cmp(y)),
        (Cel::Timestamp(x), Cel::Timestamp(y)) => Ok(x.cmp(y)),
        _ => Err(format!("no such overload: comparing {a} and {b}")),
    }
}

/// cel-go keeps durations in a Go `time.Duration` (int64 nanoseconds): beyond it arithmetic
/// fails with its overflow error.
fn duration_in_range(ns: i128) -> Result<Cel, String> {
    if i64::try_from(ns).is_ok() {
        Ok(Cel::Duration(ns))
    } else {
        Err("integer overflow".to_owned())
    }
}

fn shift(t: jiff::Timestamp, ns: i128) -> Result<Cel, String> {
    let span = jiff::SignedDuration::from_nanos_i128(ns);
    t.checked_add(span)
        .map(Cel::Timestamp)
        .map_err(|e| e.to_string())
}

fn arithmetic(op: &str, l: &Cel, r: &Cel) -> Result<Cel, String> {
    match (l, r) {
        (Cel::Int(x), Cel::Int(y)) => {
            let result = match op {
                "+" => x.checked_add(*y),
                "-" => x.checked_sub(*y),
                "*" => x.checked_mul(*y),
                "/" | "%" if *y == 0 => return Err("division by zero".to_owned()),
                "/" => x.checked_div(*y),
                _ => x.checked_rem(*y),
            };
            result
                .map(Cel::Int)
                .ok_or_else(|| "integer overflow".to_owned())
        }
        (Cel::Double(_), _) | (_, Cel::Double(_))
            if l.as_f64().is_some() && r.as_f64().is_some() =>
        {
            let (x, y) = (l.as_f64().unwrap_or(0.0), r.as_f64().unwrap_or(0.0));
            match op {
                "+" => Ok(Cel::Double(x + y)),
                "-" => Ok(Cel::Double(x - y)),
                "*" => Ok(Cel::Double(x * y)),
                "/" => Ok(Cel::Double(x / y)),
                _ => Err("no such overload: double % double".to_owned()),
            }
        }
        (Cel::String(x), Cel::String(y)) if op == "+" => Ok(Cel::String(format!("{x}{y}"))),
        (Cel::List(x), Cel::List(y)) if op == "+" => {
            Ok(Cel::List(x.iter().chain(y).cloned().collect()))
        }
        (Cel::Duration(x), Cel::Duration(y)) if op == "+" => duration_in_range(x + y),
        (Cel::Duration(x), Cel::Duration(y)) if op == "-" => duration_in_range(x - y),
        (Cel::Timestamp(t), Cel::Duration(d)) if op == "+" => shift(*t, *d),
        (Cel::Duration(d), Cel::Timestamp(t)) if op == "+" => shift(*t, *d),
        (Cel::Timestamp(t), Cel::Duration(d)) if op == "-" => shift(*t, -d),
        (Cel::Timestamp(x), Cel::Timestamp(y)) if op == "-" => {
            duration_in_range(x.as_nanosecond() - y.as_nanosecond())
        }
        _ => Err(format!("no such overload: {l} {op} {r}")),
    }
}

fn size_of(value: &Cel) -> Result<Cel, String> {
    let size = match value {
        Cel::String(s) => s.chars().count(),
        Cel::List(items) => items.len(),
        Cel::Map(map) => map.len(),
        other => return Err(format!("no such overload: size({other})")),
    };
    i64::try_from(size).map(Cel::Int).map_err(|e| e.to_string())
}

fn string_arg(args: &[Cel], index: usize) -> Result<&str, String> {
    args.get(index)
        .and_then(Cel::as_str)
        .ok_or_else(|| "expected a string argument".to_owned())
}

fn eval_call(
    target: Option<&Expr>,
    name: &str,
    args: &[Expr],
    scope: &mut Scope,
) -> Result<Cel, String> {
    if let (Some(target), "all" | "exists" | "exists_one" | "map" | "filter") = (target, name) {
        return eval_macro(target, name, args, scope);
    }
    let receiver = target.map(|t| eval(t, scope)).transpose()?;
    let args: Vec<Cel> = args
        .iter()
        .map(|a| eval(a, scope))
        .collect::<Result<_, _>>()?;
    let subject = receiver
        .as_ref()
        .or(args.first())
        .ok_or_else(|| format!("{name}() needs an argument"))?;
    let receiver_str = || {
        receiver
            .as_ref()
            .and_then(Cel::as_str)
            .ok_or_else(|| format!("{name}() needs a string receiver"))
    };
    match name {
        "size" => size_of(subject),
        "int" => match subject {
            Cel::Int(i) => Ok(Cel::Int(*i)),
            Cel::UInt(u) => i64::try_from(*u).map(Cel::Int).map_err(|e| e.to_string()),
            #[allow(clippy::cast_possible_truncation)]
            Cel::Double(d) if d.is_finite() && d.abs() < 9.2e18 => Ok(Cel::Int(d.trunc() as i64)),
            Cel::String(s) => s.parse::<i64>().map(Cel::Int).map_err(|e| e.to_string()),
            Cel::Timestamp(t) => Ok(Cel::Int(t.as_second())),
            other => Err(format!("no such overload: int({other})")),
        },
        "double" => match subject {
            Cel::String(s) => s.parse::<f64>().map(Cel::Double).map_err(|e| e.to_string()),
            other => other
                .as_f64()
                .map(Cel::Double)
                .ok_or_else(|| format!("no such overload: double({other})")),
        },
        "string" => Ok(Cel::String(match subject {
            Cel::String(s) => s.clone(),
            other => other.to_string(),
        })),
        "duration" => match subject {
            // cel-go's string-to-duration conversion error (`time.ParseDuration` failed).
            Cel::String(s) => parse_duration(s).map(Cel::Duration).ok_or_else(|| {
                "type conversion error from 'string' to 'google.protobuf.Duration'".to_owned()
            }),
            Cel::Duration(d) => Ok(Cel::Duration(*d)),
            other => Err(format!("no such overload: duration({other})")),
        },
        "timestamp" => match subject {
            Cel::String(s) => s
                .parse::<jiff::Timestamp>()
                .map(Cel::Timestamp)
                .map_err(|_| {
                    "type conversion error from 'string' to 'google.protobuf.Timestamp'".to_owned()
                }),
            Cel::Timestamp(t) => Ok(Cel::Timestamp(*t)),
            other => Err(format!("no such overload: timestamp({other})")),
        },
        "startsWith" => Ok(Cel::Bool(
            receiver_str()?.starts_with(string_arg(&args, 0)?),
        )),
        "endsWith" => Ok(Cel::Bool(receiver_str()?.ends_with(string_arg(&args, 0)?))),
        "contains" => Ok(Cel::Bool(receiver_str()?.contains(string_arg(&args, 0)?))),
        "matches" => {
            let (text, pattern) = match &receiver {
                Some(r) => (
                    r.as_str().ok_or("matches() needs a string")?,
                    string_arg(&args, 0)?,
                ),
                None => (string_arg(&args, 0)?, string_arg(&args, 1)?),
            };
            let re = regex::Regex::new(pattern).map_err(|e| e.to_string())?;
            Ok(Cel::Bool(re.is_match(text)))
        }
        "lowerAscii" => Ok(Cel::String(receiver_str()?.to_ascii_lowercase())),
        "upperAscii" => Ok(Cel::String(receiver_str()?.to_ascii_uppercase())),
        "trim" => Ok(Cel::String(receiver_str()?.trim().to_owned())),
        other => Err(format!("{UNSUPPORTED}function {other}()")),
    }
}

fn eval_macro(target: &Expr, name: &str, args: &[Expr], scope: &mut Scope) -> Result<Cel, String> {
    let Some(Expr::Ident(var)) = args.first() else {
        return Err(format!("{name}() needs a variable name as first argument"));
    };
    let items: Vec<Cel> = match eval(target, scope)? {
        Cel::List(items) => items,
        Cel::Map(map) => map.into_keys().map(Cel::String).collect(),
        other => return Err(format!("{name}() on a non-collection {other}")),
    };
    let run = |item: &Cel, body: &Expr, scope: &mut Scope| {
        scope.push((var.clone(), item.clone()));
        let result = eval(body, scope);
        scope.pop();
        result
    };
    match (name, args) {
        ("all" | "exists" | "exists_one" | "filter", [_, predicate]) => {
            let mut matched = Vec::new();
            let mut first_error = None;
            for item in &items {
                match run(item, predicate, scope).and_then(|v| as_bool(&v)) {
                    Ok(true) => matched.push(item.clone()),
                    Ok(false) if name == "all" => return Ok(Cel::Bool(false)),
                    Ok(false) => {}
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
            if name == "exists" && !matched.is_empty() {
                return Ok(Cel::Bool(true));
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            Ok(match name {
                "all" => Cel::Bool(true),
                "exists" => Cel::Bool(false),
                "exists_one" => Cel::Bool(matched.len() == 1),
                _ => Cel::List(matched),
            })
        }
        ("map", [_, transform]) => Ok(Cel::List(
            items
                .iter()
                .map(|i| run(i, transform, scope))
                .collect::<Result<_, _>>()?,
        )),
        ("map", [_, predicate, transform]) => {
            let mut out = Vec::new();
            for item in &items {
                if as_bool(&run(item, predicate, scope)?)? {
                    out.push(run(item, transform, scope)?);
                }
            }
            Ok(Cel::List(out))
        }
        _ => Err(format!("wrong number of arguments to {name}()")),
    }
}
