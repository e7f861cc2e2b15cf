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

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

/// Starts the error of an evaluation that needs CEL outside the simulator's subset (a function
/// the real server has); such a rule was not really evaluated, see [`is_unsupported`].
pub(crate) const UNSUPPORTED: &str = "not supported by the simulator: ";

/// Whether an evaluation error means "outside the subset" rather than a real CEL error.
pub(crate) fn is_unsupported(error: &str) -> bool {
    error.starts_with(UNSUPPORTED)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Int(i64),
    Double(f64),
    Str(String),
    Punct(&'static str),
}

const PUNCTUATION: &[&str] = &[
    "&&", "||", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ".", ",", "?", ":", "!", "<",
    ">", "+", "-", "*", "/", "%",
];

fn lex(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                // `1.size()` is not CEL; a dot followed by a digit continues a double literal.
                if chars[i] == '.' && !chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                    break;
                }
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let text = text.trim_end_matches(['u', 'U']);
            if text.contains('.') || text.contains('e') {
                tokens.push(Token::Double(
                    text.parse().map_err(|_| format!("bad number {text}"))?,
                ));
            } else if let Some(hex) = text.strip_prefix("0x") {
                tokens.push(Token::Int(
                    i64::from_str_radix(hex, 16).map_err(|_| format!("bad number {text}"))?,
                ));
            } else {
                tokens.push(Token::Int(
                    text.parse().map_err(|_| format!("bad number {text}"))?,
                ));
            }
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw = (word == "r" || word == "R") && matches!(chars.get(i), Some('"' | '\''));
            if raw {
                let (text, next) = lex_string(&chars, i, true)?;
                tokens.push(Token::Str(text));
                i = next;
            } else {
                tokens.push(Token::Ident(word));
            }
        } else if c == '"' || c == '\'' {
            let (text, next) = lex_string(&chars, i, false)?;
            tokens.push(Token::Str(text));
            i = next;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let punct = PUNCTUATION
                .iter()
                .find(|p| rest.starts_with(**p))
                .ok_or_else(|| format!("unexpected character {c:?}"))?;
            tokens.push(Token::Punct(punct));
            i += punct.len();
        }
    }
    Ok(tokens)
}

fn lex_string(chars: &[char], start: usize, raw: bool) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut i = start + 1;
    let mut text = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return Ok((text, i + 1));
        }
        if c == '\\' && !raw {
            let (c, next) = unescape(chars, i + 1)?;
            text.push(c);
            i = next;
        } else {
            text.push(c);
            i += 1;
        }
    }
    Err("unterminated string literal".to_owned())
}

/// One CEL escape sequence; `at` is the character after the backslash. Returns the character
/// and the index after the sequence. CEL has the C escapes, `\?`, `` \` ``, octal `\ooo`, hex
/// `\xHH` and Unicode `\uHHHH` / `\UHHHHHHHH`; anything else is a syntax error.
fn unescape(chars: &[char], at: usize) -> Result<(char, usize), String> {
    let escaped = *chars.get(at).ok_or("unterminated escape")?;
    let simple = match escaped {
        'n' => Some('\n'),
        't' => Some('\t'),
        'r' => Some('\r'),
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'v' => Some('\u{b}'),
        '\\' | '\'' | '"' | '?' | '`' => Some(escaped),
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((c, at + 1));
    }
    let (radix, digits, start) = match escaped {
        'x' | 'X' => (16, 2, at + 1),
        'u' => (16, 4, at + 1),
        'U' => (16, 8, at + 1),
        '0'..='3' => (8, 3, at),
        other => return Err(format!("invalid escape sequence \\{other}")),
    };
    let text: String = chars
        .get(start..start + digits)
        .ok_or("short escape")?
        .iter()
        .collect();
    let code = u32::from_str_radix(&text, radix).map_err(|_| format!("bad escape {text}"))?;
    let c = char::from_u32(code).ok_or_else(|| format!("escape {text} is not a character"))?;
    Ok((c, start + digits))
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Literal(Cel),
    Ident(String),
    Select(Box<Expr>, String),
    Has(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Option<Box<Expr>>, String, Vec<Expr>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_punct(&self, punct: &str) -> bool {
        matches!(self.peek(), Some(Token::Punct(p)) if *p == punct)
    }

    fn eat_punct(&mut self, punct: &str) -> bool {
        if self.peek_punct(punct) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, punct: &str) -> Result<(), String> {
        if self.eat_punct(punct) {
            Ok(())
        } else {
            Err(format!("expected {punct:?} at token {}", self.pos))
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let condition = self.or()?;
        if self.eat_punct("?") {
            // CEL: `conditionalOr ? conditionalOr : expr`; a nested `?:` in the middle needs
            // parentheses.
            let then = self.or()?;
            self.expect_punct(":")?;
            let otherwise = self.expr()?;
            return Ok(Expr::Ternary(
                Box::new(condition),
                Box::new(then),
                Box::new(otherwise),
            ));
        }
        Ok(condition)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_punct("||") {
            left = Expr::Binary("||", Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.relation()?;
        while self.eat_punct("&&") {
            left = Expr::Binary("&&", Box::new(left), Box::new(self.relation()?));
        }
        Ok(left)
    }

    fn relation(&mut self) -> Result<Expr, String> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Token::Punct(p @ ("==" | "!=" | "<" | "<=" | ">" | ">="))) => *p,
                Some(Token::Ident(word)) if word == "in" => "in",
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.additive()?));
        }
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Token::Punct(p @ ("+" | "-"))) => *p,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Token::Punct(p @ ("*" | "/" | "%"))) => *p,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_punct("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_punct("-") {
            return Ok(Expr::Negate(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn args(&mut self) -> Result<Vec<Expr>, String> {
        let mut args = Vec::new();
        if self.eat_punct(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat_punct(")") {
                return Ok(args);
            }
            self.expect_punct(",")?;
        }
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            if self.eat_punct(".") {
                let Some(Token::Ident(name)) = self.peek().cloned() else {
                    return Err("expected a field name after '.'".to_owned());
                };
                self.pos += 1;
                if self.eat_punct("(") {
                    let args = self.args()?;
                    expr = Expr::Call(Some(Box::new(expr)), name, args);
                } else {
                    expr = Expr::Select(Box::new(expr), name);
                }
            } else if self.eat_punct("[") {
                let index = self.expr()?;
                self.expect_punct("]")?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.peek().cloned().ok_or("unexpected end of expression")?;
        self.pos += 1;
        match token {
            Token::Int(i) => Ok(Expr::Literal(Cel::Int(i))),
            Token::Double(d) => Ok(Expr::Literal(Cel::Double(d))),
            Token::Str(s) => Ok(Expr::Literal(Cel::String(s))),
            Token::Punct("(") => {
                let inner = self.expr()?;
                self.expect_punct(")")?;
                Ok(inner)
            }
            Token::Punct("[") => {
                let mut items = Vec::new();
                if !self.eat_punct("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat_punct("]") {
                            break;
                        }
                        self.expect_punct(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            Token::Punct("{") => {
                let mut entries = Vec::new();
                if !self.eat_punct("}") {
                    loop {
                        let key = self.expr()?;
                        self.expect_punct(":")?;
                        entries.push((key, self.expr()?));
                        if self.eat_punct("}") {
                            break;
                        }
                        self.expect_punct(",")?;
                    }
                }
                Ok(Expr::Map(entries))
            }
            Token::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal(Cel::Bool(true))),
                "false" => Ok(Expr::Literal(Cel::Bool(false))),
                "null" => Ok(Expr::Literal(Cel::Null)),
                _ if self.eat_punct("(") => {
                    let args = self.args()?;
                    if word == "has" {
                        return match args.as_slice() {
                            [Expr::Select(target, field)] => {
                                Ok(Expr::Has(target.clone(), field.clone()))
                            }
                            _ => Err("has() needs a field selection argument".to_owned()),
                        };
                    }
                    Ok(Expr::Call(None, word, args))
                }
                _ => Ok(Expr::Ident(word)),
            },
            Token::Punct(p) => Err(format!("unexpected {p:?}")),
        }
    }
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

fn format_duration(ns: i128) -> String {
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

type Scope = Vec<(String, Cel)>;

fn as_bool(value: &Cel) -> Result<bool, String> {
    match value {
        Cel::Bool(b) => Ok(*b),
        other => Err(format!("no such overload: expected bool, got {other}")),
    }
}

fn eval(expr: &Expr, scope: &mut Scope) -> Result<Cel, String> {
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

#[cfg(test)]
#[allow(clippy::unnecessary_wraps)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: &str, this: &Value) -> Result<Cel, String> {
        compile(rule)?.evaluate(this, None)
    }

    fn t() -> Result<Cel, String> {
        Ok(Cel::Bool(true))
    }

    fn f() -> Result<Cel, String> {
        Ok(Cel::Bool(false))
    }

    #[test]
    fn evaluates_one_of_rules() {
        let both = json!({"a": 1, "b": 2});
        let one = json!({"a": 1});
        assert_eq!(check("has(self.a) != has(self.b)", &both), f());
        assert_eq!(check("has(self.a) != has(self.b)", &one), t());
        assert_eq!(check("!(has(self.a) && has(self.b))", &both), f());
        assert_eq!(check("self.a >= 1", &one), t());
        assert_eq!(
            check("self.a >= 1 && self.a <= 99", &json!({"a": 100})),
            f()
        );
    }

    #[test]
    fn evaluates_strings_lists_and_macros() {
        let v = json!({"name": "web-1", "items": [{"k": "a"}, {"k": "b"}], "n": 3});
        assert_eq!(
            check("self.name.startsWith('web') && size(self.name) == 5", &v),
            t()
        );
        assert_eq!(check("self.items.all(i, i.k in ['a', 'b'])", &v), t());
        assert_eq!(check("self.items.exists_one(i, i.k == 'a')", &v), t());
        assert_eq!(check("self.items.map(i, i.k) == ['a', 'b']", &v), t());
        assert_eq!(check("self.name.matches('^web-[0-9]+$')", &v), t());
        assert_eq!(
            check("self.n % 2 == 1 ? 'odd' : 'even'", &v),
            Ok(Cel::String("odd".into()))
        );
        assert_eq!(check("!has(self.missing) || self.missing > 0", &v), t());
        assert!(check("self.missing > 0", &v).is_err());
        assert!(compile("self.a +").is_err());
    }

    #[test]
    fn evaluates_durations_and_timestamps() {
        let v = json!({"ttl": "720h", "short": "30s", "at": "2024-01-01T00:00:00Z"});
        assert_eq!(check("duration(self.ttl) >= duration('1m')", &v), t());
        assert_eq!(check("duration(self.short) >= duration('1m')", &v), f());
        assert_eq!(check("duration('1h30m') == duration('90m')", &v), t());
        assert_eq!(
            check(
                "timestamp(self.at) + duration('24h') == timestamp('2024-01-02T00:00:00Z')",
                &v
            ),
            t()
        );
        assert!(check("duration('forever') > duration('1s')", &v).is_err());
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("-2m"), Some(-120_000_000_000));
        assert_eq!(parse_duration("5"), None);
    }

    #[test]
    fn durations_parse_as_go_time_parse_duration() {
        let hour: i128 = 3_600_000_000_000;
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("-0"), Some(0));
        assert_eq!(parse_duration("+5s"), Some(5_000_000_000));
        assert_eq!(parse_duration(".5h"), Some(hour / 2));
        assert_eq!(parse_duration("5.s"), Some(5_000_000_000));
        assert_eq!(parse_duration("1h30m"), Some(hour * 3 / 2));
        assert_eq!(parse_duration("1\u{b5}s"), Some(1_000));
        assert_eq!(parse_duration("1\u{3bc}s"), Some(1_000));
        assert_eq!(parse_duration("87600h"), Some(87_600 * hour));
        // int64 nanoseconds end at 2562047h47m16.854775807s.
        assert_eq!(
            parse_duration("2562047h47m16.854775807s"),
            Some(i128::from(i64::MAX))
        );
        assert_eq!(
            parse_duration("-2562047h47m16.854775808s"),
            Some(i128::from(i64::MIN))
        );
        for invalid in [
            "",
            "+",
            "-",
            ".",
            ".s",
            "5",
            "1d",
            "1h5",
            "s",
            "2562048h",
            "2562047h47m16.854775808s",
            "100000000000h",
            "99999999999999999999ns",
        ] {
            assert_eq!(parse_duration(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn out_of_range_durations_are_cel_go_conversion_errors() {
        let v = json!({"ttl": "100000000000h", "ok": "87600h"});
        let rule = "duration(self.ttl) <= duration('87600h')";
        assert_eq!(
            check(rule, &v),
            Err("type conversion error from 'string' to 'google.protobuf.Duration'".to_owned())
        );
        assert_eq!(check("duration(self.ok) <= duration('87600h')", &v), t());
        // Error absorption: a decided `||` ignores the failing side, as cel-go does.
        assert_eq!(check(&format!("true || {rule}"), &v), t());
        assert_eq!(
            check(
                "duration('2562047h') + duration('2562047h') > duration('0s')",
                &v
            ),
            Err("integer overflow".to_owned())
        );
        assert_eq!(
            check(
                "timestamp('yesterday') > timestamp('2024-01-01T00:00:00Z')",
                &v
            ),
            Err("type conversion error from 'string' to 'google.protobuf.Timestamp'".to_owned())
        );
    }

    #[test]
    fn the_operator_crd_rules_evaluate_both_ways() {
        let keys = "(has(self.accessToken) ? self.accessToken : 'access_token') != (has(self.expiresAt) ? self.expiresAt : 'expires_at') && (has(self.accessToken) ? self.accessToken : 'access_token') != (has(self.scimUrl) ? self.scimUrl : 'scim_url')";
        assert_eq!(
            check(keys, &json!({"accessToken": "token", "scimUrl": "url"})),
            t()
        );
        assert_eq!(
            check(keys, &json!({"accessToken": "token", "scimUrl": "token"})),
            f()
        );
        assert_eq!(check(keys, &json!({"accessToken": "expires_at"})), f());
        let types = "!has(self.type) || !(self.type in ['kubernetes.io/dockercfg', 'bootstrap.kubernetes.io/token'])";
        assert_eq!(check(types, &json!({})), t());
        assert_eq!(check(types, &json!({"type": "Opaque"})), t());
        assert_eq!(
            check(types, &json!({"type": "kubernetes.io/dockercfg"})),
            f()
        );
        let http = "!self.url.startsWith('http://') || (has(self.allowInsecureHttp) && self.allowInsecureHttp)";
        assert_eq!(check(http, &json!({"url": "https://x"})), t());
        assert_eq!(check(http, &json!({"url": "http://x"})), f());
        assert_eq!(
            check(
                http,
                &json!({"url": "http://x", "allowInsecureHttp": false})
            ),
            f()
        );
        assert_eq!(
            check(http, &json!({"url": "http://x", "allowInsecureHttp": true})),
            t()
        );
        let verify = "duration(self) == duration('0s') || (duration(self) >= duration('10s') && duration(self) <= duration('8760h'))";
        for (value, expected) in [
            ("0s", t()),
            ("5s", f()),
            ("10s", t()),
            ("8761h", f()),
            ("0h0m", t()),
        ] {
            assert_eq!(check(verify, &json!(value)), expected, "{value}");
        }
    }

    #[test]
    fn string_escapes_and_nested_ternaries_follow_the_grammar() {
        let v = json!({});
        for (literal, text) in [
            (r"'a\nb'", "a\nb"),
            (r"'\x41\u00e9\U0001F600\101'", "A\u{e9}\u{1F600}A"),
            (r"'\'\\\?\`'", "'\\?`"),
            (r"r'\d+'", "\\d+"),
        ] {
            assert_eq!(
                check(literal, &v),
                Ok(Cel::String(text.to_owned())),
                "{literal}"
            );
        }
        assert!(compile(r"'\q'").is_err());
        assert!(compile("true ? false ? 1 : 2 : 3").is_err());
        assert_eq!(check("true ? (false ? 1 : 2) : 3", &v), Ok(Cel::Int(2)));
        assert_eq!(check("false ? 1 : true ? 2 : 3", &v), Ok(Cel::Int(2)));
    }

    #[test]
    fn functions_outside_the_subset_say_so() {
        let error = check("isURL(self.u)", &json!({"u": "x"})).unwrap_err();
        assert!(is_unsupported(&error), "{error}");
        let real = check("self.missing == 1", &json!({})).unwrap_err();
        assert!(!is_unsupported(&real), "{real}");
    }

    #[test]
    fn transition_rules_see_old_self() {
        let program = compile("self == oldSelf").unwrap();
        assert!(program.uses_old_self());
        assert_eq!(program.evaluate(&json!("a"), Some(&json!("a"))), t());
        assert_eq!(program.evaluate(&json!("b"), Some(&json!("a"))), f());
    }
}
