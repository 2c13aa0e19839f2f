//! The condition language of `if`, `rewind_if` and `break_if`.
//!
//! ```text
//! condition := or
//! or        := and ("or" and)*
//! and       := not ("and" not)*
//! not       := "not" not | "exists" REF | "(" or ")" | value (OP value)?
//! OP        := == | != | < | <= | > | >= | in | not in
//! value     := REF | 'text' | "text" | number | true | false | null | [value, ...]
//! REF       := ${field.path}
//! ```
//!
//! A lone value is true unless it is null, false, 0, empty text, an empty list or missing.
//! `in` asks for an element of a list, a substring of text, or a key of an object. Ordering
//! compares two numbers or two texts; anything else is an error of the process, reported
//! with the condition, rather than a silent false.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::definition::Fields;
use super::fields::{is_valid_path, lookup};

/// Most characters in one condition.
pub const MAX_CONDITION_CHARS: usize = 4096;

/// A parsed condition; it is stored and sent as its source text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Condition {
    source: String,
    expr: CondExpr,
}

/// Why a condition could not be read: the message and the 1-based character it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    pub message: String,
    pub offset: usize,
}

impl std::fmt::Display for ConditionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at character {})", self.message, self.offset)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum CondExpr {
    Or(Box<CondExpr>, Box<CondExpr>),
    And(Box<CondExpr>, Box<CondExpr>),
    Not(Box<CondExpr>),
    Exists(String),
    Compare(Operand, Op, Operand),
    Truthy(Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Field(String),
    Literal(Value),
    List(Vec<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

impl Condition {
    pub fn parse(source: &str) -> Result<Self, ConditionError> {
        if source.chars().count() > MAX_CONDITION_CHARS {
            return Err(ConditionError {
                message: format!("a condition has at most {MAX_CONDITION_CHARS} characters"),
                offset: MAX_CONDITION_CHARS + 1,
            });
        }
        let tokens = tokenize(source)?;
        let mut parser = Parser {
            tokens,
            at: 0,
            depth: 0,
            end: source.chars().count() + 1,
        };
        let expr = parser.or()?;
        if let Some((token, offset)) = parser.tokens.get(parser.at) {
            return Err(ConditionError {
                message: format!("unexpected {}", token.describe()),
                offset: *offset,
            });
        }
        Ok(Self {
            source: source.to_owned(),
            expr,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition over `fields`; the error says what could not be compared.
    pub fn evaluate(&self, fields: &Fields) -> Result<bool, String> {
        eval(&self.expr, fields)
    }
}

impl TryFrom<String> for Condition {
    type Error = String;
    fn try_from(source: String) -> Result<Self, String> {
        Self::parse(&source).map_err(|e| e.to_string())
    }
}

impl From<Condition> for String {
    fn from(condition: Condition) -> String {
        condition.source
    }
}

fn eval(expr: &CondExpr, fields: &Fields) -> Result<bool, String> {
    Ok(match expr {
        CondExpr::Or(a, b) => eval(a, fields)? || eval(b, fields)?,
        CondExpr::And(a, b) => eval(a, fields)? && eval(b, fields)?,
        CondExpr::Not(a) => !eval(a, fields)?,
        CondExpr::Exists(path) => lookup(fields, path).is_some_and(|v| !v.is_null()),
        CondExpr::Truthy(operand) => truthy(&value(operand, fields)),
        CondExpr::Compare(a, op, b) => compare(&value(a, fields), *op, &value(b, fields))?,
    })
}

fn value(operand: &Operand, fields: &Fields) -> Value {
    match operand {
        Operand::Field(path) => lookup(fields, path).cloned().unwrap_or(Value::Null),
        Operand::Literal(v) => v.clone(),
        Operand::List(items) => Value::Array(items.iter().map(|o| value(o, fields)).collect()),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, op: Op, b: &Value) -> Result<bool, String> {
    use std::cmp::Ordering;
    let ordering = |a: &Value, b: &Value| -> Result<Ordering, String> {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x
                .as_f64()
                .zip(y.as_f64())
                .and_then(|(x, y)| x.partial_cmp(&y))
                .ok_or_else(|| "cannot order these numbers".to_owned()),
            (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
            _ => Err(format!(
                "cannot order {} and {}",
                type_name(a),
                type_name(b)
            )),
        }
    };
    let contains = |item: &Value, container: &Value| -> Result<bool, String> {
        match (item, container) {
            (_, Value::Array(items)) => Ok(items.iter().any(|x| equal(x, item))),
            (Value::String(s), Value::String(text)) => Ok(text.contains(s.as_str())),
            (Value::String(key), Value::Object(map)) => Ok(map.contains_key(key)),
            (_, Value::Null) => Ok(false),
            _ => Err(format!(
                "cannot look for {} in {}",
                type_name(item),
                type_name(container)
            )),
        }
    };
    Ok(match op {
        Op::Eq => equal(a, b),
        Op::Ne => !equal(a, b),
        Op::Lt => ordering(a, b)? == Ordering::Less,
        Op::Le => ordering(a, b)? != Ordering::Greater,
        Op::Gt => ordering(a, b)? == Ordering::Greater,
        Op::Ge => ordering(a, b)? != Ordering::Less,
        Op::In => contains(a, b)?,
        Op::NotIn => !contains(a, b)?,
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null (or a missing field)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ref(String),
    Text(String),
    Number(serde_json::Number),
    Word(String),
    Op(Op),
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Ref(path) => format!("field reference ${{{path}}}"),
            Self::Text(_) => "text".to_owned(),
            Self::Number(n) => format!("number {n}"),
            Self::Word(w) => format!("`{w}`"),
            Self::Op(_) => "operator".to_owned(),
            Self::Open => "`(`".to_owned(),
            Self::Close => "`)`".to_owned(),
            Self::OpenList => "`[`".to_owned(),
            Self::CloseList => "`]`".to_owned(),
            Self::Comma => "`,`".to_owned(),
        }
    }
}

fn tokenize(source: &str) -> Result<Vec<(Token, usize)>, ConditionError> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |message: String, at: usize| ConditionError {
        message,
        offset: at + 1,
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let token = match c {
            '$' => {
                if chars.get(i + 1) != Some(&'{') {
                    return Err(error("expected `{` after `$`".into(), i + 1));
                }
                let end = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| error("unclosed field reference".into(), i))?;
                let path: String = chars[i + 2..i + 2 + end].iter().collect();
                if !is_valid_path(&path) {
                    return Err(error(format!("`{path}` is not a field path"), i + 2));
                }
                i += end + 3;
                Token::Ref(path)
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or_else(|| error("unclosed text".into(), i))?;
                let text: String = chars[i + 1..i + 1 + end].iter().collect();
                i += end + 2;
                Token::Text(text)
            }
            '(' | ')' | '[' | ']' | ',' => {
                i += 1;
                match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenList,
                    ']' => Token::CloseList,
                    _ => Token::Comma,
                }
            }
            '=' | '!' | '<' | '>' => {
                let two = chars.get(i + 1) == Some(&'=');
                i += if two { 2 } else { 1 };
                Token::Op(match (c, two) {
                    ('=', true) => Op::Eq,
                    ('!', true) => Op::Ne,
                    ('<', true) => Op::Le,
                    ('>', true) => Op::Ge,
                    ('<', false) => Op::Lt,
                    ('>', false) => Op::Gt,
                    _ => return Err(error(format!("`{c}` alone is not an operator"), start)),
                })
            }
            c if c.is_ascii_digit() || c == '-' => {
                while i < chars.len()
                    && (chars[i].is_ascii_digit() || matches!(chars[i], '.' | '-' | 'e' | 'E'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                match serde_json::from_str::<serde_json::Number>(&text) {
                    Ok(n) => Token::Number(n),
                    Err(_) => return Err(error(format!("`{text}` is not a number"), start)),
                }
            }
            c if c.is_ascii_alphabetic() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Token::Word(chars[start..i].iter().collect())
            }
            other => return Err(error(format!("unexpected `{other}`"), start)),
        };
        tokens.push((token, start + 1));
    }
    Ok(tokens)
}

/// Nesting allowed inside one condition (parentheses, `not`, lists).
const MAX_CONDITION_DEPTH: usize = 32;

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    depth: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(_, o)| *o)
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ConditionError> {
        Err(ConditionError {
            message: message.into(),
            offset: self.offset(),
        })
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, ConditionError>,
    ) -> Result<T, ConditionError> {
        self.depth += 1;
        if self.depth > MAX_CONDITION_DEPTH {
            return self.fail(format!(
                "a condition nests at most {MAX_CONDITION_DEPTH} levels"
            ));
        }
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<CondExpr, ConditionError> {
        let mut left = self.and()?;
        while self.is_word("or") {
            self.at += 1;
            left = CondExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<CondExpr, ConditionError> {
        let mut left = self.not()?;
        while self.is_word("and") {
            self.at += 1;
            left = CondExpr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<CondExpr, ConditionError> {
        if self.is_word("not") {
            self.at += 1;
            return self.nested(|p| Ok(CondExpr::Not(Box::new(p.not()?))));
        }
        if self.is_word("exists") {
            self.at += 1;
            return match self.peek().cloned() {
                Some(Token::Ref(path)) => {
                    self.at += 1;
                    Ok(CondExpr::Exists(path))
                }
                _ => self.fail("`exists` takes a field reference such as ${name}"),
            };
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.nested(|p| p.or())?;
            if self.peek() != Some(&Token::Close) {
                return self.fail("expected `)`");
            }
            self.at += 1;
            return Ok(inner);
        }
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Token::Op(op)) => Some(*op),
            Some(Token::Word(w)) if w == "in" => Some(Op::In),
            Some(Token::Word(w))
                if w == "not"
                    && matches!(self.tokens.get(self.at + 1), Some((Token::Word(x), _)) if x == "in") =>
            {
                self.at += 1;
                Some(Op::NotIn)
            }
            _ => None,
        };
        match op {
            None => Ok(CondExpr::Truthy(left)),
            Some(op) => {
                self.at += 1;
                let right = self.operand()?;
                Ok(CondExpr::Compare(left, op, right))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, ConditionError> {
        let Some(token) = self.peek().cloned() else {
            return self.fail("the condition ends too early");
        };
        let operand = match token {
            Token::Ref(path) => Operand::Field(path),
            Token::Text(text) => Operand::Literal(Value::String(text)),
            Token::Number(n) => Operand::Literal(Value::Number(n)),
            Token::Word(w) if w == "true" => Operand::Literal(Value::Bool(true)),
            Token::Word(w) if w == "false" => Operand::Literal(Value::Bool(false)),
            Token::Word(w) if w == "null" => Operand::Literal(Value::Null),
            Token::OpenList => {
                self.at += 1;
                return self.nested(|p| {
                    let mut items = Vec::new();
                    if p.peek() == Some(&Token::CloseList) {
                        p.at += 1;
                        return Ok(Operand::List(items));
                    }
                    loop {
                        items.push(p.operand()?);
                        match p.peek() {
                            Some(Token::Comma) => p.at += 1,
                            Some(Token::CloseList) => {
                                p.at += 1;
                                return Ok(Operand::List(items));
                            }
                            _ => return p.fail("expected `,` or `]` in the list"),
                        }
                    }
                });
            }
            Token::Word(w) => {
                return self.fail(format!(
                    "unknown word `{w}`: write fields as ${{{w}}} and text in quotes"
                ));
            }
            other => return self.fail(format!("expected a value, found {}", other.describe())),
        };
        self.at += 1;
        Ok(operand)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(source: &str, fields: Value) -> Result<bool, String> {
        Condition::parse(source)
            .unwrap()
            .evaluate(fields.as_object().unwrap())
    }

    #[test]
    fn compares_fields_with_literals() {
        let f = json!({ "outcome": "passed", "n": 3, "tags": ["qa", "nightly"] });
        assert_eq!(eval("${outcome} == 'passed'", f.clone()), Ok(true));
        assert_eq!(eval("${outcome} != \"passed\"", f.clone()), Ok(false));
        assert_eq!(eval("${n} >= 3 and ${n} < 4.5", f.clone()), Ok(true));
        assert_eq!(eval("${n} == 3.0", f.clone()), Ok(true));
        assert_eq!(eval("'qa' in ${tags}", f.clone()), Ok(true));
        assert_eq!(eval("'x' not in ${tags}", f.clone()), Ok(true));
        assert_eq!(
            eval("${outcome} in ['passed', 'skipped']", f.clone()),
            Ok(true)
        );
        assert_eq!(eval("'ass' in ${outcome}", f), Ok(true));
    }

    #[test]
    fn combines_with_and_or_not_and_parentheses() {
        let f = json!({ "a": true, "b": false });
        assert_eq!(eval("${a} and not ${b}", f.clone()), Ok(true));
        assert_eq!(eval("not (${a} or ${b})", f.clone()), Ok(false));
        assert_eq!(eval("${b} or ${b} or ${a}", f.clone()), Ok(true));
        // `and` binds tighter than `or`.
        assert_eq!(eval("${a} or ${b} and ${b}", f), Ok(true));
    }

    #[test]
    fn exists_and_truthiness() {
        let f = json!({ "empty": "", "zero": 0, "none": null, "list": [1] });
        assert_eq!(eval("exists ${empty}", f.clone()), Ok(true));
        assert_eq!(eval("exists ${none}", f.clone()), Ok(false));
        assert_eq!(eval("exists ${missing}", f.clone()), Ok(false));
        assert_eq!(eval("${empty}", f.clone()), Ok(false));
        assert_eq!(eval("${zero}", f.clone()), Ok(false));
        assert_eq!(eval("${list}", f.clone()), Ok(true));
        assert_eq!(eval("${missing}", f), Ok(false));
    }

    #[test]
    fn ordering_different_types_is_an_error_not_false() {
        let error = eval("${n} > 'three'", json!({ "n": 3 })).unwrap_err();
        assert!(error.contains("cannot order a number and text"), "{error}");
    }

    #[test]
    fn syntax_errors_point_at_the_character() {
        let cases = [
            ("${a} ==", 8, "ends too early"),
            ("${a} = 1", 6, "not an operator"),
            ("outcome == 'x'", 1, "write fields as ${outcome}"),
            ("(${a}", 6, "expected `)`"),
            ("${a b}", 3, "not a field path"),
            ("${a} == 'x", 9, "unclosed text"),
            ("${a} ${b}", 6, "unexpected field reference"),
            ("exists 'x'", 8, "`exists` takes a field reference"),
        ];
        for (source, offset, message) in cases {
            let error = Condition::parse(source).unwrap_err();
            assert_eq!(error.offset, offset, "{source}: {error}");
            assert!(error.message.contains(message), "{source}: {error}");
        }
    }

    #[test]
    fn deep_nesting_and_long_conditions_are_refused() {
        let deep = format!("{}${{a}}{}", "(".repeat(40), ")".repeat(40));
        assert!(
            Condition::parse(&deep)
                .unwrap_err()
                .message
                .contains("nests")
        );
        let long = "${a} or ".repeat(1000) + "${a}";
        assert!(
            Condition::parse(&long)
                .unwrap_err()
                .message
                .contains("at most")
        );
    }

    #[test]
    fn round_trips_through_its_source_text() {
        let condition = Condition::parse("${a} in [1, 2]").unwrap();
        let json = serde_json::to_string(&condition).unwrap();
        assert_eq!(json, "\"${a} in [1, 2]\"");
        let back: Condition = serde_json::from_str(&json).unwrap();
        assert_eq!(back, condition);
    }
}
