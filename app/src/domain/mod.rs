//! Validated values: each is made only through `parse`, which names the field it rejects.
//!
//! The limits here are the documented ones (README, "Limits"); change both together.

mod projects;

pub use projects::*;

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const USERNAME_MAX: usize = 64;
pub const DISPLAY_NAME_MAX: usize = 128;
pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
/// Longest search text accepted by list pages.
pub const SEARCH_MAX: usize = 128;

fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// A login name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit; stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        const FIELD: &str = "username";
        let value = raw.trim();
        if value.is_empty() {
            return Err(AppError::invalid(FIELD, "Username is required."));
        }
        if value.chars().count() > USERNAME_MAX {
            return Err(AppError::invalid(
                FIELD,
                format!("Username must be at most {USERNAME_MAX} characters."),
            ));
        }
        let value = value.to_ascii_lowercase();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        if !value.chars().all(allowed) {
            return Err(AppError::invalid(
                FIELD,
                "Username may contain only letters a-z, digits, '.', '_' and '-'.",
            ));
        }
        if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(AppError::invalid(
                FIELD,
                "Username must start with a letter or a digit.",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name shown for a user: up to 128 characters, no control characters.
/// Empty means "use the username".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str, fallback: &Username) -> Result<Self, AppError> {
        const FIELD: &str = "display_name";
        let value = raw.trim();
        if value.chars().count() > DISPLAY_NAME_MAX {
            return Err(AppError::invalid(
                FIELD,
                format!("Display name must be at most {DISPLAY_NAME_MAX} characters."),
            ));
        }
        if has_control(value) {
            return Err(AppError::invalid(
                FIELD,
                "Display name must not contain control characters.",
            ));
        }
        if value.is_empty() {
            return Ok(Self(fallback.as_str().to_owned()));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An optional email address: at most 254 characters, `local@domain`, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email(Option<String>);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        const FIELD: &str = "email";
        let value = raw.trim();
        if value.is_empty() {
            return Ok(Self(None));
        }
        if value.chars().count() > EMAIL_MAX {
            return Err(AppError::invalid(
                FIELD,
                format!("Email must be at most {EMAIL_MAX} characters."),
            ));
        }
        if has_control(value) || value.contains(char::is_whitespace) {
            return Err(AppError::invalid(
                FIELD,
                "Email must not contain spaces or control characters.",
            ));
        }
        match value.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') =>
            {
                Ok(Self(Some(value.to_owned())))
            }
            _ => Err(AppError::invalid(
                FIELD,
                "Email must look like name@example.com.",
            )),
        }
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

/// A new password: 8 to 1024 characters, no control characters.
///
/// Deliberately neither `Serialize` nor `Debug`-printable: it must not end up in a log or a response.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// Validates a password being set; `field` names the form field it came from.
    pub fn parse(raw: &str, field: &str) -> Result<Self, AppError> {
        let length = raw.chars().count();
        if length < PASSWORD_MIN {
            return Err(AppError::invalid(
                field,
                format!("Password must be at least {PASSWORD_MIN} characters."),
            ));
        }
        if length > PASSWORD_MAX {
            return Err(AppError::invalid(
                field,
                format!("Password must be at most {PASSWORD_MAX} characters."),
            ));
        }
        if has_control(raw) {
            return Err(AppError::invalid(
                field,
                "Password must not contain control characters.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Free-text search of list pages: trimmed, at most 128 characters, no control characters.
pub fn parse_search(raw: &str) -> Result<String, AppError> {
    let value = raw.trim();
    if value.chars().count() > SEARCH_MAX {
        return Err(AppError::invalid(
            "q",
            format!("Search must be at most {SEARCH_MAX} characters."),
        ));
    }
    if has_control(value) {
        return Err(AppError::invalid(
            "q",
            "Search must not contain control characters.",
        ));
    }
    Ok(value.to_owned())
}

/// Where to go after logging in: only a path on this site; anything else becomes `/`.
pub fn safe_next(next: &str) -> String {
    let same_site = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2048;
    if same_site && !next.starts_with("/login") {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

/// Longest text accepted in one audit filter field.
pub const AUDIT_FILTER_MAX: usize = 128;

/// An audit filter that has been checked: dates parsed, texts bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// Records at or after this instant.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Records before this instant (the day after the `to` date).
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// A filter's day field `raw` (`YYYY-MM-DD`, or empty for none), named `field` in errors.
fn parse_day(field: &str, raw: &str) -> Result<Option<chrono::NaiveDate>, AppError> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| AppError::invalid(field, "Use a date like 2026-01-31."))
}

/// The start of a day, or none.
pub type DayBound = Option<chrono::DateTime<chrono::Utc>>;

/// A filter's `from` and `to` days (UTC, both inclusive, either empty) as the start of the
/// first and the end of the last: a time is in range when `from <= t < until`.
pub fn parse_day_range(from: &str, to: &str) -> Result<(DayBound, DayBound), AppError> {
    let start_of = |date: chrono::NaiveDate| date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let from = parse_day("from", from)?;
    let to = parse_day("to", to)?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(AppError::invalid(
            "to",
            "The last day is before the first day.",
        ));
    }
    Ok((
        from.and_then(start_of),
        to.and_then(|d| d.succ_opt()).and_then(start_of),
    ))
}

impl AuditQuery {
    pub fn parse(filter: &crate::types::AuditFilter) -> Result<Self, AppError> {
        fn text(field: &str, raw: &str) -> Result<Option<String>, AppError> {
            let value = raw.trim();
            if value.chars().count() > AUDIT_FILTER_MAX {
                return Err(AppError::invalid(
                    field,
                    format!("At most {AUDIT_FILTER_MAX} characters."),
                ));
            }
            if has_control(value) {
                return Err(AppError::invalid(
                    field,
                    "Must not contain control characters.",
                ));
            }
            Ok((!value.is_empty()).then(|| value.to_owned()))
        }
        let (from, until) = parse_day_range(&filter.from, &filter.to)?;
        let (object_type, object_id) = match text("object", &filter.object)? {
            Some(object) => match object.split_once(':') {
                Some((kind, id)) => (Some(kind.to_owned()), Some(id.to_owned())),
                None => (Some(object), None),
            },
            None => (None, None),
        };
        Ok(Self {
            actor: text("actor", &filter.actor)?.map(|a| a.to_lowercase()),
            action: text("action", &filter.action)?,
            object_type,
            object_id,
            from,
            until,
        })
    }
}

/// Longest audit retention an administrator may set: a hundred years.
pub const RETENTION_DAYS_MAX: u32 = 36_500;

/// How many days audit records are kept, 1 to [`RETENTION_DAYS_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RetentionDays(u32);

impl RetentionDays {
    pub fn new(days: u32) -> Result<Self, AppError> {
        if (1..=RETENTION_DAYS_MAX).contains(&days) {
            Ok(Self(days))
        } else {
            Err(AppError::invalid(
                "retention_days",
                format!(
                    "Keep records for 1 to {RETENTION_DAYS_MAX} days, or leave empty to keep them forever."
                ),
            ))
        }
    }

    /// Parses the form field: empty means forever (`None`).
    pub fn parse(raw: &str) -> Result<Option<Self>, AppError> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(None);
        }
        let days = value.parse::<u32>().map_err(|_| {
            AppError::invalid(
                "retention_days",
                "Enter a whole number of days, or leave empty.",
            )
        })?;
        Self::new(days).map(Some)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// `text`, trimmed, as a plain name: 1 to `max_chars` ASCII letters, digits and the
/// characters of `punctuation`. Errors name `field`.
pub fn plain_name(
    field: &str,
    text: &str,
    max_chars: usize,
    punctuation: &[char],
) -> Result<String, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AppError::invalid(field, "a name is required"));
    }
    if text.chars().count() > max_chars {
        return Err(AppError::invalid(
            field,
            format!("a name has at most {max_chars} characters"),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || punctuation.contains(c)))
    {
        let allowed: Vec<String> = punctuation.iter().map(char::to_string).collect();
        return Err(AppError::invalid(
            field,
            format!(
                "`{c}` is not allowed: use letters, digits and {}",
                allowed.join(" ")
            ),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<impl fmt::Debug, AppError>) -> String {
        match result {
            Err(error) => error.field().unwrap_or_default().to_owned(),
            Ok(value) => panic!("expected an error, got {value:?}"),
        }
    }

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(
            Username::parse(" Alice.B ").map(|u| u.0),
            Ok("alice.b".into())
        );
        assert_eq!(field_of(Username::parse("")), "username");
        assert_eq!(field_of(Username::parse(&"a".repeat(65))), "username");
        assert!(Username::parse(&"a".repeat(64)).is_ok());
        assert_eq!(field_of(Username::parse("al ice")), "username");
        assert_eq!(field_of(Username::parse("-alice")), "username");
        assert_eq!(field_of(Username::parse("al\u{0}ice")), "username");
        assert_eq!(field_of(Username::parse("ålice")), "username");
    }

    #[test]
    fn display_names_fall_back_to_username() {
        let username = Username::parse("bob").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            DisplayName::parse("  ", &username).map(|d| d.0),
            Ok("bob".into())
        );
        assert_eq!(
            DisplayName::parse("Bob B.", &username).map(|d| d.0),
            Ok("Bob B.".into())
        );
        assert_eq!(
            field_of(DisplayName::parse(&"x".repeat(129), &username)),
            "display_name"
        );
        assert!(DisplayName::parse(&"é".repeat(128), &username).is_ok());
        assert_eq!(
            field_of(DisplayName::parse("a\u{7}b", &username)),
            "display_name"
        );
    }

    #[test]
    fn emails_are_optional_but_well_formed() {
        assert_eq!(Email::parse("").map(Email::into_inner), Ok(None));
        assert!(Email::parse("a@example.com").is_ok());
        assert_eq!(field_of(Email::parse("no-at-sign")), "email");
        assert_eq!(field_of(Email::parse("a@@b")), "email");
        assert_eq!(field_of(Email::parse("a b@c")), "email");
        assert_eq!(field_of(Email::parse("@c")), "email");
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(field_of(Email::parse(&long)), "email");
    }

    #[test]
    fn passwords_have_length_bounds() {
        assert_eq!(
            field_of(Password::parse("short", "new_password")),
            "new_password"
        );
        assert!(Password::parse("eight ch", "password").is_ok());
        assert!(Password::parse(&"p".repeat(1024), "password").is_ok());
        assert_eq!(
            field_of(Password::parse(&"p".repeat(1025), "password")),
            "password"
        );
        assert_eq!(
            field_of(Password::parse("tab\there!", "password")),
            "password"
        );
        assert_eq!(
            format!("{:?}", Password::parse("secret-value", "p")),
            "Ok(Password(..))"
        );
    }

    #[test]
    fn next_accepts_only_local_paths() {
        assert_eq!(safe_next("/admin/users?q=a"), "/admin/users?q=a");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("javascript:alert(1)"), "/");
        assert_eq!(safe_next("/login?next=/x"), "/");
        assert_eq!(safe_next(""), "/");
    }

    #[test]
    fn search_is_bounded() {
        assert_eq!(parse_search("  ali "), Ok("ali".into()));
        assert_eq!(field_of(parse_search(&"q".repeat(129))), "q");
    }

    #[test]
    fn audit_filters_are_checked() {
        use crate::types::AuditFilter;
        let filter = |from: &str, to: &str, object: &str| AuditFilter {
            from: from.into(),
            to: to.into(),
            object: object.into(),
            ..Default::default()
        };
        let query = AuditQuery::parse(&filter("2026-01-01", "2026-01-31", "user:7")).unwrap();
        assert_eq!(query.object_type.as_deref(), Some("user"));
        assert_eq!(query.object_id.as_deref(), Some("7"));
        assert_eq!(
            query.from.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            query.until.unwrap().to_rfc3339(),
            "2026-02-01T00:00:00+00:00"
        );
        assert_eq!(
            AuditQuery::parse(&AuditFilter::default()).unwrap(),
            AuditQuery::default()
        );
        assert_eq!(
            field_of(AuditQuery::parse(&filter("yesterday", "", ""))),
            "from"
        );
        assert_eq!(
            field_of(AuditQuery::parse(&filter("2026-02-01", "2026-01-01", ""))),
            "to"
        );
        assert_eq!(
            field_of(AuditQuery::parse(&filter("", "", &"o".repeat(129)))),
            "object"
        );
    }

    #[test]
    fn retention_is_empty_or_a_bounded_number_of_days() {
        assert_eq!(RetentionDays::parse(" "), Ok(None));
        assert_eq!(
            RetentionDays::parse("90").unwrap().map(RetentionDays::get),
            Some(90)
        );
        for bad in ["0", "-1", "1.5", "ninety", "36501"] {
            assert_eq!(
                field_of(RetentionDays::parse(bad)),
                "retention_days",
                "{bad}"
            );
        }
    }
}
