//! The lexer and the recursive-descent parser, from rule source to an expression tree.

use super::Cel;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Token {
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

pub(super) fn lex(source: &str) -> Result<Vec<Token>, String> {
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
pub(super) enum Expr {
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

pub(super) struct Parser {
    pub(super) tokens: Vec<Token>,
    pub(super) pos: usize,
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

    pub(super) fn expr(&mut self) -> Result<Expr, String> {
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
