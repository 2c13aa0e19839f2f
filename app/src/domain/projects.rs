//! Validated values of projects and groups: slugs, names, descriptions.

use super::has_control;
use crate::error::AppError;
use std::fmt;

pub const SLUG_MAX: usize = 64;
pub const PROJECT_NAME_MAX: usize = 128;
pub const DESCRIPTION_MAX: usize = 2000;
pub const GROUP_NAME_MAX: usize = 64;

/// A project's address: 1 to 64 of `a-z 0-9 -`, starting and ending with a letter or digit.
/// It never changes after creation, so links stay valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str, field: &str) -> Result<Self, AppError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(AppError::invalid(field, "Slug is required."));
        }
        if value.len() > SLUG_MAX {
            return Err(AppError::invalid(
                field,
                format!("Slug must be at most {SLUG_MAX} characters."),
            ));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if !value.chars().all(allowed) {
            return Err(AppError::invalid(
                field,
                "Slug may contain only lowercase letters a-z, digits and '-'.",
            ));
        }
        if value.starts_with('-') || value.ends_with('-') {
            return Err(AppError::invalid(
                field,
                "Slug must start and end with a letter or a digit.",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A slug made from a name: lowercase, runs of other characters become one `-`.
    pub fn suggest(name: &str) -> String {
        let mut slug = String::new();
        for c in name.trim().chars().flat_map(char::to_lowercase) {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                slug.push(c);
            } else if !slug.ends_with('-') && !slug.is_empty() {
                slug.push('-');
            }
        }
        slug.truncate(SLUG_MAX);
        slug.trim_end_matches('-').to_owned()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Trimmed, non-empty, at most `max` characters, no control characters.
fn one_line(raw: &str, field: &str, what: &str, max: usize) -> Result<String, AppError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(AppError::invalid(field, format!("{what} is required.")));
    }
    if value.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("{what} must be at most {max} characters."),
        ));
    }
    if has_control(value) {
        return Err(AppError::invalid(
            field,
            format!("{what} must not contain control characters."),
        ));
    }
    Ok(value.to_owned())
}

/// A project's name as people read it: 1 to 128 characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        one_line(raw, "name", "Name", PROJECT_NAME_MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A project's description: up to 2000 characters; line breaks and tabs allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        const FIELD: &str = "description";
        let value = raw.trim().replace("\r\n", "\n");
        if value.chars().count() > DESCRIPTION_MAX {
            return Err(AppError::invalid(
                FIELD,
                format!("Description must be at most {DESCRIPTION_MAX} characters."),
            ));
        }
        if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(AppError::invalid(
                FIELD,
                "Description must not contain control characters.",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group's name: 1 to 64 characters on one line, unique (case-sensitive as typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        one_line(raw, "name", "Group name", GROUP_NAME_MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: fmt::Debug>(result: Result<T, AppError>) -> String {
        result
            .expect_err("should be rejected")
            .field()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn slugs_are_lowercase_words_with_hyphens() {
        assert_eq!(
            Slug::parse(" core-image-7 ", "slug").unwrap().as_str(),
            "core-image-7"
        );
        for bad in ["", "Core", "a_b", "-a", "a-", "a b", "é", &"a".repeat(65)] {
            assert_eq!(field_of(Slug::parse(bad, "slug")), "slug", "{bad:?}");
        }
        assert_eq!(field_of(Slug::parse("", "confirm")), "confirm");
    }

    #[test]
    fn slug_suggestions_parse() {
        assert_eq!(Slug::suggest("  My Image: Rev 2! "), "my-image-rev-2");
        assert_eq!(Slug::suggest("***"), "");
        let long = Slug::suggest(&"ab ".repeat(40));
        assert!(Slug::parse(&long, "slug").is_ok(), "{long}");
    }

    #[test]
    fn names_and_descriptions_are_bounded() {
        assert_eq!(ProjectName::parse(" Gateway ").unwrap().as_str(), "Gateway");
        assert_eq!(field_of(ProjectName::parse(" ")), "name");
        assert_eq!(field_of(ProjectName::parse("a\nb")), "name");
        assert_eq!(field_of(ProjectName::parse(&"x".repeat(129))), "name");
        assert_eq!(
            Description::parse("one\r\ntwo").unwrap().as_str(),
            "one\ntwo"
        );
        assert_eq!(Description::parse("").unwrap().as_str(), "");
        assert_eq!(field_of(Description::parse("bell\u{7}")), "description");
        assert_eq!(
            field_of(Description::parse(&"x".repeat(2001))),
            "description"
        );
        assert_eq!(field_of(GroupName::parse("")), "name");
        assert_eq!(
            GroupName::parse("Firmware team").unwrap().as_str(),
            "Firmware team"
        );
    }
}
