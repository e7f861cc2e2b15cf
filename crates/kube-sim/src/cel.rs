//! A small interpreter for the subset of CEL used in `x-kubernetes-validations` rules.
//!
//! Supported: literals (int, double, string, bool, null, lists, maps), `self`/`oldSelf` and
//! field selection, indexing, `has()`, `!`, unary `-`, `&&`, `||` (with CEL's error absorption),
//! `? :`, comparisons, `in`, `+ - * / %`, `size()`, `int()`, `double()`, `string()`,
//! `startsWith`, `endsWith`, `contains`, `matches`, `lowerAscii`, `upperAscii`, `trim`,
//! `duration()` and `timestamp()` (with comparison and `+`/`-` arithmetic), and the macros
//! `all`, `exists`, `exists_one`, `map`, `filter`. Durations follow Go's `time.ParseDuration`
//! and `time.Duration` range (a string beyond about 2562047h is cel-go's conversion error, not
//! a huge duration); error texts are cel-go's where a rule's outcome depends on them. Not
//! supported: quantities, optional types, `type()`, timestamp accessors (`getHours()`, ...),
//! `messageExpression`, and the Kubernetes library functions (`isURL`, `format.*`, `ip`,
//! `cidr`, ...): rules using them fail to parse, or fail to evaluate with an error starting
//! with [`UNSUPPORTED`], and the caller counts them as not evaluated.
//!
//! - this module: values ([`Cel`]) and compiled rules ([`Program`]);
//! - [`parse`]: lexer and parser; [`eval`]: evaluation; [`duration`]: Go durations.

mod duration;
mod eval;
mod parse;

#[cfg(test)]
#[allow(clippy::unnecessary_wraps)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use duration::format_duration;
use eval::eval;
use parse::{Expr, Parser, Token, lex};

/// Starts the error of an evaluation that needs CEL outside the simulator's subset (a function
/// the real server has); such a rule was not really evaluated, see [`is_unsupported`].
pub(crate) const UNSUPPORTED: &str = "not supported by the simulator: ";

/// Whether an evaluation error means "outside the subset" rather than a real CEL error.
pub(crate) fn is_unsupported(error: &str) -> bool {
    error.starts_with(UNSUPPORTED)
}

/// A CEL value. JSON objects become maps with string keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cel {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    String(String),
    List(Vec<Cel>),
    Map(BTreeMap<String, Cel>),
    /// Nanoseconds.
    Duration(i128),
    Timestamp(jiff::Timestamp),
}

impl Cel {
    pub fn from_json(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map(Self::Int)
                .or_else(|| n.as_u64().map(Self::UInt))
                .unwrap_or_else(|| Self::Double(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) => Self::String(s.clone()),
            Value::Array(items) => Self::List(items.iter().map(Self::from_json).collect()),
            Value::Object(map) => Self::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Self::Int(i) => Some(*i as f64),
            #[allow(clippy::cast_precision_loss)]
            Self::UInt(u) => Some(*u as f64),
            Self::Double(d) => Some(*d),
            _ => None,
        }
    }

    fn as_i128(&self) -> Option<i128> {
        match self {
            Self::Int(i) => Some(i128::from(*i)),
            Self::UInt(u) => Some(i128::from(*u)),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

impl std::fmt::Display for Cel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => write!(f, "null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::UInt(u) => write!(f, "{u}u"),
            Self::Double(d) => write!(f, "{d}"),
            Self::String(s) => write!(f, "{s:?}"),
            Self::List(items) => {
                let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
                write!(f, "[{}]", parts.join(", "))
            }
            Self::Map(map) => {
                let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
                write!(f, "{{{}}}", parts.join(", "))
            }
            Self::Duration(ns) => write!(f, "{}", format_duration(*ns)),
            Self::Timestamp(t) => write!(f, "{t}"),
        }
    }
}

/// A parsed rule, ready to evaluate against many values.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    expr: Expr,
    uses_old_self: bool,
}

pub(crate) fn compile(source: &str) -> Result<Program, String> {
    let tokens = lex(source)?;
    let uses_old_self = tokens
        .iter()
        .any(|t| matches!(t, Token::Ident(w) if w == "oldSelf"));
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.expr()?;
    if parser.pos != parser.tokens.len() {
        return Err(format!("unexpected trailing input at token {}", parser.pos));
    }
    Ok(Program {
        expr,
        uses_old_self,
    })
}

impl Program {
    /// Transition rules (`oldSelf`) only run on updates with an old value.
    pub fn uses_old_self(&self) -> bool {
        self.uses_old_self
    }

    pub fn evaluate(&self, this: &Value, old: Option<&Value>) -> Result<Cel, String> {
        let mut scope = vec![("self".to_owned(), Cel::from_json(this))];
        if let Some(old) = old {
            scope.push(("oldSelf".to_owned(), Cel::from_json(old)));
        }
        eval(&self.expr, &mut scope)
    }
}
