//! Reads a process definition from YAML into a [`Definition`], checking everything that can
//! be checked before anything runs: the shape of every expression, names of participants and
//! subprocesses, conditions, durations, and the size limits. Every error carries the line and
//! column it is about.

use std::collections::BTreeSet;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node as Yaml, Span};
use serde_json::{Map, Number, Value};

use super::condition::Condition;
use super::definition::{
    AfterErrors, Definition, Expr, Fields, Join, MAX_DEPTH, MAX_NODES, MAX_SOURCE_BYTES, Merge,
    Node, NodeId, OnError, OnTimeout, Participant, Position, Remaining, Wait,
};
use super::fields::is_valid_path;

/// Most characters in a definition name.
pub const MAX_NAME_CHARS: usize = 64;

/// One thing wrong with a definition, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DefinitionError {
    pub position: Position,
    pub message: String,
}

impl std::fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.position, self.message)
    }
}

/// The names a definition may use: registered participants and stored definitions (which a
/// `subprocess` can call). A definition may always call itself.
#[derive(Debug, Clone, Default)]
pub struct KnownNames {
    pub participants: BTreeSet<String>,
    pub definitions: BTreeSet<String>,
}

/// Parses and checks `source`; on failure, every error found, in document order.
pub fn parse_definition(
    source: &str,
    known: &KnownNames,
) -> Result<Definition, Vec<DefinitionError>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![DefinitionError {
            position: Position { line: 1, column: 1 },
            message: format!(
                "a definition has at most {} KiB of text; this one has {} KiB",
                MAX_SOURCE_BYTES / 1024,
                source.len().div_ceil(1024)
            ),
        }]);
    }
    // With coercion prevented for quoted scalars, `"1"` stays text while `1` is a number.
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let yaml = match marked_yaml::parse_yaml_with_options(0, source, options) {
        Ok(yaml) => yaml,
        Err(error) => return Err(vec![load_error(&error)]),
    };
    let mut reader = Reader {
        known,
        errors: Vec::new(),
        next_id: 0,
        name: String::new(),
    };
    let definition = reader.definition(&yaml);
    match definition {
        Some(definition) if reader.errors.is_empty() => Ok(definition),
        _ => {
            let mut errors = reader.errors;
            errors.sort_by_key(|e| (e.position.line, e.position.column));
            errors.dedup();
            Err(errors)
        }
    }
}

/// Whether `name` may name a definition: lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit.
pub fn is_valid_definition_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.chars().count() <= MAX_NAME_CHARS
}

fn load_error(error: &marked_yaml::LoadError) -> DefinitionError {
    use marked_yaml::LoadError;
    let (marker, message) = match error {
        LoadError::TopLevelMustBeMapping(m) => (
            Some(*m),
            "the definition must be a mapping with `name` and `process`".to_owned(),
        ),
        LoadError::TopLevelMustBeSequence(m) => (Some(*m), "unexpected sequence".to_owned()),
        LoadError::UnexpectedAnchor(m) => (
            Some(*m),
            "anchors and aliases are not supported: write the expression out, or use a subprocess"
                .to_owned(),
        ),
        LoadError::MappingKeyMustBeScalar(m) => (Some(*m), "keys must be plain names".to_owned()),
        LoadError::UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".to_owned()),
        LoadError::ScanError(m, scan) => (Some(*m), format!("YAML syntax: {}", scan.info())),
        LoadError::DuplicateKey(inner) => (
            inner.key.span().start().copied(),
            format!("`{}` appears twice in this mapping", inner.key.as_str()),
        ),
    };
    DefinitionError {
        position: marker.map_or(Position { line: 1, column: 1 }, |m| Position {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            column: u32::try_from(m.column()).unwrap_or(u32::MAX),
        }),
        message,
    }
}

/// Where a mapping starts, for errors about the mapping as a whole: its first key (the
/// mapping's own span can start at its first value).
fn start(map: &MarkedMappingNode) -> &Span {
    map.keys().next().map_or(map.span(), |key| key.span())
}

fn position(span: &Span) -> Position {
    span.start()
        .map_or(Position { line: 1, column: 1 }, |m| Position {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            column: u32::try_from(m.column()).unwrap_or(u32::MAX),
        })
}

const KEYWORDS: &[&str] = &[
    "sequence",
    "concurrence",
    "participant",
    "if",
    "cursor",
    "iterator",
    "wait",
    "set",
    "unset",
    "subprocess",
    "error",
];

/// The attributes each expression accepts besides its keyword (and `on_cancel`, which all do).
fn attributes(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "concurrence" => &["join", "remaining", "merge"],
        "participant" => &["params", "timeout", "on_timeout", "on_error"],
        "if" => &["then", "else"],
        "cursor" => &["rewind_if", "break_if"],
        "iterator" => &["as", "concurrent", "do"],
        "subprocess" => &["fields"],
        _ => &[],
    }
}

struct Reader<'a> {
    known: &'a KnownNames,
    errors: Vec<DefinitionError>,
    next_id: u32,
    name: String,
}

impl Reader<'_> {
    fn error(&mut self, span: &Span, message: impl Into<String>) {
        self.errors.push(DefinitionError {
            position: position(span),
            message: message.into(),
        });
    }

    fn definition(&mut self, yaml: &Yaml) -> Option<Definition> {
        let map = yaml.as_mapping()?;
        for (key, _) in map.iter() {
            if !["name", "description", "fields", "process"].contains(&key.as_str()) {
                self.error(
                    key.span(),
                    format!(
                        "unknown key `{}`: a definition has `name`, `description`, `fields` and `process`",
                        key.as_str()
                    ),
                );
            }
        }
        let name = match map.get_node("name") {
            Some(node) => match node.as_scalar() {
                Some(s) if is_valid_definition_name(s.as_str()) => Some(s.as_str().to_owned()),
                _ => {
                    self.error(
                        node.span(),
                        format!("`name` is lowercase letters, digits, `-` and `_`, at most {MAX_NAME_CHARS} characters"),
                    );
                    None
                }
            },
            None => {
                self.error(start(map), "`name` is missing");
                None
            }
        };
        self.name = name.clone().unwrap_or_default();
        let description = match map.get_node("description") {
            Some(node) => self.text(node, "description").unwrap_or_default(),
            None => String::new(),
        };
        let fields = match map.get_node("fields") {
            Some(node) => self.fields(node, "fields").unwrap_or_default(),
            None => Map::new(),
        };
        let process = match map.get_node("process") {
            Some(node) => self.expression(node, 1),
            None => {
                self.error(
                    start(map),
                    "`process` is missing: it holds the expression to run",
                );
                None
            }
        };
        if self.next_id as usize > MAX_NODES {
            self.error(
                start(map),
                format!(
                    "a definition has at most {MAX_NODES} expressions; this one has {}",
                    self.next_id
                ),
            );
        }
        Some(Definition {
            name: name?,
            description,
            fields,
            process: process?,
        })
    }

    fn expression(&mut self, yaml: &Yaml, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            self.error(
                yaml.span(),
                format!("expressions nest at most {MAX_DEPTH} levels deep"),
            );
            return None;
        }
        let Some(map) = yaml.as_mapping() else {
            self.error(
                yaml.span(),
                "expected an expression: a mapping such as `participant: shell` or `sequence: [...]`",
            );
            return None;
        };
        let keywords: Vec<&MarkedScalarNode> = map
            .keys()
            .filter(|k| KEYWORDS.contains(&k.as_str()))
            .collect();
        let keyword = match keywords.as_slice() {
            [one] => *one,
            [] => {
                let first = start(map);
                self.error(
                    first,
                    format!(
                        "expected an expression; `{}` is not one (expressions: {})",
                        map.keys().next().map_or("", |k| k.as_str()),
                        KEYWORDS.join(", ")
                    ),
                );
                return None;
            }
            [_, second, ..] => {
                self.error(
                    second.span(),
                    format!(
                        "one expression per mapping: `{}` and `{}` are both here (put them in a sequence)",
                        keywords[0].as_str(),
                        second.as_str()
                    ),
                );
                return None;
            }
        };
        let allowed = attributes(keyword.as_str());
        for key in map.keys() {
            let k = key.as_str();
            if k != keyword.as_str() && k != "on_cancel" && !allowed.contains(&k) {
                let hint = if allowed.is_empty() {
                    format!(
                        "`{}` takes no attributes besides `on_cancel`",
                        keyword.as_str()
                    )
                } else {
                    format!(
                        "`{}` takes {} and `on_cancel`",
                        keyword.as_str(),
                        allowed
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                self.error(key.span(), format!("unknown attribute `{k}`: {hint}"));
            }
        }

        let id = NodeId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let value = map.get_node(keyword.as_str())?;
        let expr = self.expr(keyword.as_str(), value, map, depth)?;
        let on_cancel = match map.get_node("on_cancel") {
            Some(node) => Some(Box::new(self.expression(node, depth + 1)?)),
            None => None,
        };
        Some(Node {
            id,
            position: position(keyword.span()),
            expr,
            on_cancel,
        })
    }

    fn expr(
        &mut self,
        keyword: &str,
        value: &Yaml,
        map: &MarkedMappingNode,
        depth: usize,
    ) -> Option<Expr> {
        Some(match keyword {
            "sequence" => Expr::Sequence(self.expressions(value, keyword, depth)?),
            "concurrence" => {
                let branches = self.expressions(value, keyword, depth)?;
                let join = match map.get_node("join") {
                    None => Join::All,
                    Some(node) => match self.scalar(node, "join")?.as_str() {
                        "all" => Join::All,
                        "first" => Join::First,
                        n => match n.parse::<u32>() {
                            Ok(count) if count >= 1 && count as usize <= branches.len() => {
                                Join::Count(count)
                            }
                            _ => {
                                self.error(
                                    node.span(),
                                    format!(
                                        "`join` is `all`, `first` or a count from 1 to {} (the number of branches)",
                                        branches.len()
                                    ),
                                );
                                return None;
                            }
                        },
                    },
                };
                let remaining = self.choice(
                    map.get_node("remaining"),
                    "remaining",
                    &[("cancel", Remaining::Cancel), ("wait", Remaining::Wait)],
                    Remaining::Cancel,
                )?;
                let merge = self.choice(
                    map.get_node("merge"),
                    "merge",
                    &[
                        ("mix", Merge::Mix),
                        ("first", Merge::First),
                        ("last", Merge::Last),
                        ("isolate", Merge::Isolate),
                    ],
                    Merge::Mix,
                )?;
                Expr::Concurrence {
                    branches,
                    join,
                    remaining,
                    merge,
                }
            }
            "participant" => Expr::Participant(self.participant(value, map)?),
            "if" => {
                let condition = self.condition(value, "if")?;
                let Some(then) = map.get_node("then") else {
                    self.error(
                        start(map),
                        "`if` needs `then`: the expression to apply when the condition holds",
                    );
                    return None;
                };
                let then = Box::new(self.expression(then, depth + 1)?);
                let otherwise = match map.get_node("else") {
                    Some(node) => Some(Box::new(self.expression(node, depth + 1)?)),
                    None => None,
                };
                Expr::If {
                    condition,
                    then,
                    otherwise,
                }
            }
            "cursor" => {
                let children = self.expressions(value, keyword, depth)?;
                let rewind_if = match map.get_node("rewind_if") {
                    Some(node) => Some(self.condition(node, "rewind_if")?),
                    None => None,
                };
                let break_if = match map.get_node("break_if") {
                    Some(node) => Some(self.condition(node, "break_if")?),
                    None => None,
                };
                Expr::Cursor {
                    children,
                    rewind_if,
                    break_if,
                }
            }
            "iterator" => {
                let over = self.field_path(value, "iterator")?;
                let each = match map.get_node("as") {
                    Some(node) => self.field_path(node, "as")?,
                    None => "item".to_owned(),
                };
                let concurrent = match map.get_node("concurrent") {
                    Some(node) => self.boolean(node, "concurrent")?,
                    None => false,
                };
                let Some(body) = map.get_node("do") else {
                    self.error(
                        start(map),
                        "`iterator` needs `do`: the expression to apply for each element",
                    );
                    return None;
                };
                Expr::Iterator {
                    over,
                    each,
                    concurrent,
                    body: Box::new(self.expression(body, depth + 1)?),
                }
            }
            "wait" => Expr::Wait(self.wait(value)?),
            "set" => Expr::Set(self.fields(value, "set")?),
            "unset" => {
                let names = match value {
                    Yaml::Sequence(items) => items
                        .iter()
                        .map(|item| self.field_path(item, "unset"))
                        .collect::<Option<Vec<_>>>()?,
                    other => vec![self.field_path(other, "unset")?],
                };
                Expr::Unset(names)
            }
            "subprocess" => {
                let name = self.scalar(value, "subprocess")?;
                let name = name.as_str();
                if name != self.name && !self.known.definitions.contains(name) {
                    self.error(
                        value.span(),
                        format!("unknown definition `{name}`: a subprocess calls a stored definition by name"),
                    );
                    return None;
                }
                let fields = match map.get_node("fields") {
                    Some(node) => self.fields(node, "fields")?,
                    None => Map::new(),
                };
                Expr::Subprocess {
                    name: name.to_owned(),
                    fields,
                }
            }
            "error" => Expr::Error(self.text(value, "error")?),
            _ => return None,
        })
    }

    fn expressions(&mut self, yaml: &Yaml, keyword: &str, depth: usize) -> Option<Vec<Node>> {
        let Some(items) = yaml.as_sequence() else {
            self.error(
                yaml.span(),
                format!("`{keyword}` takes a list of expressions"),
            );
            return None;
        };
        if items.is_empty() {
            self.error(
                yaml.span(),
                format!("`{keyword}` needs at least one expression"),
            );
            return None;
        }
        // Read every child, so that each one's errors are reported, before failing.
        let children: Vec<Option<Node>> = items
            .iter()
            .map(|item| self.expression(item, depth + 1))
            .collect();
        children.into_iter().collect()
    }

    fn participant(&mut self, value: &Yaml, map: &MarkedMappingNode) -> Option<Participant> {
        let name = self.scalar(value, "participant")?.as_str().to_owned();
        if !self.known.participants.contains(&name) {
            self.error(
                value.span(),
                format!(
                    "unknown participant `{name}` (registered: {})",
                    self.known
                        .participants
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return None;
        }
        let params = match map.get_node("params") {
            Some(node) => self.fields(node, "params")?,
            None => Map::new(),
        };
        let timeout_ms = match map.get_node("timeout") {
            Some(node) => Some(self.duration(node, "timeout")?),
            None => None,
        };
        let on_timeout = self.choice(
            map.get_node("on_timeout"),
            "on_timeout",
            &[("error", OnTimeout::Error), ("skip", OnTimeout::Skip)],
            OnTimeout::Error,
        )?;
        let then_choices = [("fail", AfterErrors::Fail), ("skip", AfterErrors::Skip)];
        let on_error = match map.get_node("on_error") {
            None => OnError::default(),
            Some(Yaml::Mapping(m)) => {
                for key in m.keys() {
                    if !["retry", "then"].contains(&key.as_str()) {
                        self.error(
                            key.span(),
                            format!(
                                "unknown key `{}`: `on_error` takes `retry` and `then`",
                                key.as_str()
                            ),
                        );
                    }
                }
                let retry = match m.get_node("retry") {
                    Some(node) => {
                        let s = self.scalar(node, "on_error.retry")?;
                        match s.as_str().parse::<u32>() {
                            Ok(n) if n <= 100 => n,
                            _ => {
                                self.error(node.span(), "`retry` is a number from 0 to 100");
                                return None;
                            }
                        }
                    }
                    None => 0,
                };
                let then = self.choice(
                    m.get_node("then"),
                    "on_error.then",
                    &then_choices,
                    AfterErrors::Fail,
                )?;
                OnError { retry, then }
            }
            Some(node) => OnError {
                retry: 0,
                then: self.choice(Some(node), "on_error", &then_choices, AfterErrors::Fail)?,
            },
        };
        Some(Participant {
            name,
            params,
            timeout_ms,
            on_timeout,
            on_error,
        })
    }

    fn wait(&mut self, value: &Yaml) -> Option<Wait> {
        match value {
            Yaml::Mapping(m) => {
                let keys: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
                match (keys.as_slice(), m.get_node("for"), m.get_node("until")) {
                    (["for"], Some(node), _) => Some(Wait::For(self.duration(node, "wait.for")?)),
                    (["until"], _, Some(node)) => {
                        let text = self.scalar(node, "wait.until")?;
                        match chrono::DateTime::parse_from_rfc3339(text.as_str()) {
                            Ok(time) => Some(Wait::Until(time.with_timezone(&chrono::Utc))),
                            Err(_) => {
                                self.error(
                                    node.span(),
                                    "`until` is a time such as 2026-12-24T18:00:00+01:00 (RFC 3339)",
                                );
                                None
                            }
                        }
                    }
                    _ => {
                        self.error(start(m), "`wait` takes a duration (`wait: 10m`), `for: DURATION` or `until: TIME`");
                        None
                    }
                }
            }
            other => Some(Wait::For(self.duration(other, "wait")?)),
        }
    }

    fn condition(&mut self, yaml: &Yaml, what: &str) -> Option<Condition> {
        let text = self.scalar(yaml, what)?;
        match Condition::parse(text.as_str()) {
            Ok(condition) => Some(condition),
            Err(error) => {
                self.error(text.span(), format!("`{what}` condition: {error}"));
                None
            }
        }
    }

    fn duration(&mut self, yaml: &Yaml, what: &str) -> Option<u64> {
        let text = self.scalar(yaml, what)?;
        let parsed = humantime::parse_duration(text.as_str())
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok())
            .filter(|&ms| ms > 0 && ms <= 366 * 24 * 3_600_000);
        if parsed.is_none() {
            self.error(
                yaml.span(),
                format!("`{what}` is a duration such as 30s, 10m, 2h or 1h 30m, up to a year"),
            );
        }
        parsed
    }

    fn field_path(&mut self, yaml: &Yaml, what: &str) -> Option<String> {
        let text = self.scalar(yaml, what)?;
        if is_valid_path(text.as_str()) {
            Some(text.as_str().to_owned())
        } else {
            self.error(
                yaml.span(),
                format!(
                    "`{what}` names a field: letters, digits, `_` and `-`, with dots between levels"
                ),
            );
            None
        }
    }

    fn boolean(&mut self, yaml: &Yaml, what: &str) -> Option<bool> {
        let value = yaml.as_scalar().and_then(MarkedScalarNode::as_bool);
        if value.is_none() {
            self.error(yaml.span(), format!("`{what}` is true or false"));
        }
        value
    }

    fn choice<T: Copy>(
        &mut self,
        yaml: Option<&Yaml>,
        what: &str,
        choices: &[(&str, T)],
        default: T,
    ) -> Option<T> {
        let Some(yaml) = yaml else {
            return Some(default);
        };
        let text = self.scalar(yaml, what)?;
        match choices.iter().find(|(name, _)| *name == text.as_str()) {
            Some((_, value)) => Some(*value),
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
                self.error(
                    yaml.span(),
                    format!("`{what}` is one of {}", names.join(", ")),
                );
                None
            }
        }
    }

    fn scalar<'y>(&mut self, yaml: &'y Yaml, what: &str) -> Option<&'y MarkedScalarNode> {
        let scalar = yaml.as_scalar();
        if scalar.is_none() {
            self.error(
                yaml.span(),
                format!("`{what}` takes a single value here, not a list or mapping"),
            );
        }
        scalar
    }

    fn text(&mut self, yaml: &Yaml, what: &str) -> Option<String> {
        let text = self.scalar(yaml, what)?.as_str().to_owned();
        if text.contains('\0') {
            self.error(yaml.span(), format!("`{what}` contains a NUL character"));
            return None;
        }
        Some(text)
    }

    fn fields(&mut self, yaml: &Yaml, what: &str) -> Option<Fields> {
        let Some(map) = yaml.as_mapping() else {
            self.error(
                yaml.span(),
                format!("`{what}` takes a mapping of names to values"),
            );
            return None;
        };
        let mut fields = Map::new();
        for (key, value) in map.iter() {
            if !is_valid_path(key.as_str()) || key.as_str().contains('.') {
                self.error(
                    key.span(),
                    format!(
                        "`{}` is not a field name: letters, digits, `_` and `-`",
                        key.as_str()
                    ),
                );
                continue;
            }
            if let Some(value) = self.json(value, 1) {
                fields.insert(key.as_str().to_owned(), value);
            }
        }
        Some(fields)
    }

    /// A YAML value as JSON: unquoted scalars may be null, booleans or numbers, quoted ones are
    /// always text.
    fn json(&mut self, yaml: &Yaml, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            self.error(
                yaml.span(),
                format!("values nest at most {MAX_DEPTH} levels deep"),
            );
            return None;
        }
        Some(match yaml {
            Yaml::Scalar(s) => scalar_json(s),
            Yaml::Sequence(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.json(item, depth + 1))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Yaml::Mapping(map) => {
                let mut object = Map::new();
                for (key, value) in map.iter() {
                    object.insert(key.as_str().to_owned(), self.json(value, depth + 1)?);
                }
                Value::Object(object)
            }
        })
    }
}

fn scalar_json(scalar: &MarkedScalarNode) -> Value {
    let text = scalar.as_str();
    if let Some(b) = scalar.as_bool() {
        return Value::Bool(b);
    }
    // A quoted scalar refuses coercion, so `as_bool` is None for it and so are these.
    if scalar.may_coerce() {
        if matches!(text, "~" | "null" | "Null" | "NULL" | "") {
            return Value::Null;
        }
        if let Ok(n) = text.parse::<i64>() {
            return Value::Number(n.into());
        }
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && text.chars().any(|c| c.is_ascii_digit()))
            .and_then(Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known() -> KnownNames {
        KnownNames {
            participants: ["shell", "notify", "approve", "noop"]
                .map(String::from)
                .into(),
            definitions: ["publish"].map(String::from).into(),
        }
    }

    fn errors(source: &str) -> Vec<DefinitionError> {
        parse_definition(source, &known()).unwrap_err()
    }

    const ISSUE_EXAMPLE: &str = r#"name: nightly-qa
fields: { branch: main }
process:
  sequence:
    - participant: shell
      params: { command: ["make", "check"] }
      timeout: 30m
      on_error: { retry: 2, then: fail }
    - if: "${outcome} == 'passed'"
      then: { participant: notify, params: { to: team } }
      else: { participant: approve, params: { group: qa, form: [reason] } }
"#;

    #[test]
    fn reads_the_example_from_the_documentation() {
        let definition = parse_definition(ISSUE_EXAMPLE, &known()).unwrap();
        assert_eq!(definition.name, "nightly-qa");
        assert_eq!(
            definition.fields,
            *json!({ "branch": "main" }).as_object().unwrap()
        );
        assert_eq!(definition.participants(), ["approve", "notify", "shell"]);
        let nodes = definition.nodes();
        assert_eq!(nodes.len(), 5);
        for (i, node) in nodes.iter().enumerate() {
            assert_eq!(node.id, NodeId(i as u32));
            assert_eq!(definition.node(node.id), Some(*node));
        }
        let Expr::Participant(shell) = &nodes[1].expr else {
            panic!("expected the shell participant")
        };
        assert_eq!(nodes[1].position, Position { line: 5, column: 7 });
        assert_eq!(shell.timeout_ms, Some(30 * 60 * 1000));
        assert_eq!(
            shell.on_error,
            OnError {
                retry: 2,
                then: AfterErrors::Fail
            }
        );
        assert_eq!(shell.params["command"], json!(["make", "check"]));
        assert_eq!(nodes[2].expr.keyword(), "if");
    }

    #[test]
    fn reads_every_expression() {
        let source = r#"name: all
process:
  sequence:
    - concurrence:
        - participant: noop
        - participant: noop
      join: 1
      remaining: wait
      merge: isolate
    - cursor:
        - set: { n: 1, quoted: "1", flag: yes, off: false, none: ~ }
        - unset: [a, b]
      rewind_if: "${n} < 1"
      break_if: "exists ${done}"
    - iterator: targets
      as: target
      concurrent: true
      do: { subprocess: publish, fields: { where: "${target}" } }
    - wait: 1h 30m
    - wait: { until: "2026-12-24T18:00:00+01:00" }
    - subprocess: all
    - error: stop here
      on_cancel: { participant: notify }
"#;
        let definition = parse_definition(source, &known()).unwrap();
        let keywords: Vec<&str> = definition
            .nodes()
            .iter()
            .map(|n| n.expr.keyword())
            .collect();
        assert_eq!(
            keywords,
            [
                "sequence",
                "concurrence",
                "participant",
                "participant",
                "cursor",
                "set",
                "unset",
                "iterator",
                "subprocess",
                "wait",
                "wait",
                "subprocess",
                "error",
                "participant"
            ]
        );
        let nodes = definition.nodes();
        assert_eq!(
            nodes[1].expr,
            Expr::Concurrence {
                branches: vec![nodes[2].clone(), nodes[3].clone()],
                join: Join::Count(1),
                remaining: Remaining::Wait,
                merge: Merge::Isolate,
            }
        );
        let Expr::Set(set) = &nodes[5].expr else {
            panic!()
        };
        // Unquoted scalars are typed; quoted ones stay text. `yes` is text (YAML 1.2).
        assert_eq!(
            Value::Object(set.clone()),
            json!({ "n": 1, "quoted": "1", "flag": "yes", "off": false, "none": null })
        );
        assert_eq!(nodes[9].expr, Expr::Wait(Wait::For(90 * 60 * 1000)));
        assert!(nodes[12].on_cancel.is_some());
    }

    #[test]
    fn errors_carry_line_and_column() {
        let cases: &[(&str, (u32, u32), &str)] = &[
            (
                "name: x\nprocess:\n  sequence:\n    - participant: rocket\n",
                (4, 20),
                "unknown participant `rocket`",
            ),
            (
                "name: x\nprocess:\n  sequence:\n    - launch: now\n",
                (4, 7),
                "`launch` is not one",
            ),
            (
                "name: x\nprocess:\n  participant: shell\n  timeout: soon\n",
                (4, 12),
                "`timeout` is a duration",
            ),
            (
                "name: x\nprocess:\n  participant: shell\n  retries: 3\n",
                (4, 3),
                "unknown attribute `retries`",
            ),
            (
                "name: x\nprocess:\n  if: \"${a} ==\"\n  then: { participant: noop }\n",
                (3, 7),
                "ends too early",
            ),
            (
                "name: x\nprocess:\n  subprocess: elsewhere\n",
                (3, 15),
                "unknown definition `elsewhere`",
            ),
            (
                "name: x\nprocess:\n  sequence: []\n",
                (3, 13),
                "at least one expression",
            ),
            (
                "name: x\nprocess:\n  sequence:\n  - participant: noop\n    set: {}\n",
                (5, 5),
                "one expression per mapping",
            ),
            (
                "name: x\nprocess: { sequence: [ { participant: noop } ]\n",
                (3, 1),
                "YAML syntax",
            ),
            (
                "name: x\nname: y\nprocess: { participant: noop }\n",
                (2, 1),
                "appears twice",
            ),
            (
                "name: Bad Name\nprocess: { participant: noop }\n",
                (1, 7),
                "`name` is lowercase",
            ),
            (
                "name: x\nprocess:\n  concurrence: [ { participant: noop } ]\n  join: 2\n",
                (4, 9),
                "`join` is `all`, `first` or a count from 1 to 1",
            ),
            (
                "name: x\nprocess: &a { participant: noop }\n",
                (2, 13),
                "anchors and aliases",
            ),
            (
                "name: x\nprocess:\n  iterator: targets\n",
                (3, 3),
                "needs `do`",
            ),
            (
                "name: x\nextra: 1\nprocess: { participant: noop }\n",
                (2, 1),
                "unknown key `extra`",
            ),
        ];
        for (source, (line, column), message) in cases {
            let found = errors(source);
            let first = &found[0];
            assert!(first.message.contains(message), "{source}\n=> {found:?}");
            assert_eq!(
                (first.position.line, first.position.column),
                (*line, *column),
                "{source}\n=> {found:?}"
            );
        }
    }

    #[test]
    fn reports_every_bad_child_not_only_the_first() {
        let found = errors(
            "name: x\nprocess:\n  sequence:\n    - participant: one\n    - participant: noop\n    - participant: two\n",
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].position.line, 4);
        assert_eq!(found[1].position.line, 6);
    }

    #[test]
    fn limits_size_depth_and_node_count() {
        let big = format!(
            "name: x\ndescription: \"{}\"\nprocess: {{ participant: noop }}\n",
            "a".repeat(MAX_SOURCE_BYTES)
        );
        assert!(errors(&big)[0].message.contains("at most 256 KiB"));

        let deep_flow = format!(
            "name: x\nprocess: {}{{participant: noop}}{}\n",
            "{sequence: [".repeat(MAX_DEPTH + 1),
            "]}".repeat(MAX_DEPTH + 1)
        );
        assert!(
            errors(&deep_flow)
                .iter()
                .any(|e| e.message.contains("nest at most 64"))
        );

        let many = format!(
            "name: x\nprocess:\n  sequence:\n{}",
            "    - participant: noop\n".repeat(MAX_NODES)
        );
        assert!(
            errors(&many)
                .iter()
                .any(|e| e.message.contains("at most 10000 expressions"))
        );
    }
}
