//! Workitem fields as the language sees them: dotted paths (`build.outcome`) and `${path}`
//! references inside strings.

use serde_json::Value;

use super::definition::Fields;

/// The value at `path` (`a.b.c`: keys of nested objects, or indexes of lists), if any.
pub fn lookup<'a>(fields: &'a Fields, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut value = fields.get(segments.next()?)?;
    for segment in segments {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Whether `path` is a well-formed field path: segments of letters, digits, `_` and `-`,
/// joined by dots.
pub fn is_valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// `value` with its `${path}` references replaced from `fields`, in strings at any depth.
///
/// A string that is exactly one reference becomes the referenced value itself (a list stays
/// a list); references inside longer strings are written as text. Missing fields read as
/// empty. `$${` writes a literal `${`.
pub fn substitute(value: &Value, fields: &Fields) -> Value {
    match value {
        Value::String(text) => substitute_str(text, fields),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, fields)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, fields)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn substitute_str(text: &str, fields: &Fields) -> Value {
    if let Some(path) = text
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|path| is_valid_path(path))
    {
        return lookup(fields, path).cloned().unwrap_or(Value::Null);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) if is_valid_path(&after[..end]) => {
                match lookup(fields, &after[..end]) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                }
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Value::String(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> Fields {
        json!({ "branch": "main", "n": 3, "targets": ["a", "b"], "build": { "outcome": "passed" } })
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn looks_up_nested_paths_and_list_indexes() {
        let f = fields();
        assert_eq!(lookup(&f, "build.outcome"), Some(&json!("passed")));
        assert_eq!(lookup(&f, "targets.1"), Some(&json!("b")));
        assert_eq!(lookup(&f, "targets.9"), None);
        assert_eq!(lookup(&f, "missing.x"), None);
    }

    #[test]
    fn a_whole_reference_keeps_the_value_type() {
        assert_eq!(
            substitute(&json!("${targets}"), &fields()),
            json!(["a", "b"])
        );
        assert_eq!(substitute(&json!("${n}"), &fields()), json!(3));
    }

    #[test]
    fn references_inside_text_are_written_out() {
        assert_eq!(
            substitute(
                &json!(["git", "checkout", "origin/${branch}-${n}${nothing}"]),
                &fields()
            ),
            json!(["git", "checkout", "origin/main-3"])
        );
        assert_eq!(
            substitute(&json!("cost $${n} ${"), &fields()),
            json!("cost ${n} ${")
        );
    }

    #[test]
    fn paths_are_checked() {
        assert!(is_valid_path("a.b_c.0"));
        assert!(!is_valid_path("a..b"));
        assert!(!is_valid_path("a b"));
        assert!(!is_valid_path(""));
    }
}
