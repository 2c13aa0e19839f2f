//! Request and response types that travel between browser and server.
//!
//! Database models never cross the wire; the data layer maps them into these.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The logged-in user, as the pages see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
}

/// A user account as shown in lists and on the profile page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
    pub is_disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// One page of a server-side paginated list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// 1-based page number actually returned (clamped to the last page).
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

impl<T> Page<T> {
    pub fn page_count(&self) -> u64 {
        self.total.div_ceil(self.per_page).max(1)
    }

    /// 1-based index of the first item on this page, 0 when empty.
    pub fn first_index(&self) -> u64 {
        if self.items.is_empty() {
            0
        } else {
            (self.page - 1) * self.per_page + 1
        }
    }

    pub fn last_index(&self) -> u64 {
        self.first_index() + self.items.len() as u64 - u64::from(!self.items.is_empty())
    }
}

/// What an administrator may change about another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserChange {
    Disable,
    Enable,
    GrantAdmin,
    RevokeAdmin,
}

impl UserChange {
    /// The audit action recorded for this change.
    pub fn audit_action(self) -> &'static str {
        match self {
            Self::Disable => "user.disable",
            Self::Enable => "user.enable",
            Self::GrantAdmin => "user.grant_admin",
            Self::RevokeAdmin => "user.revoke_admin",
        }
    }
}

/// One audit record, as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The username at the time, `system` or `anonymous`.
    pub actor: String,
    pub client_addr: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub summary: String,
    /// A JSON object, as text.
    pub details: String,
}

/// Which audit records to show, as typed into the filter form; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// Actor name, exactly (case-insensitive).
    pub actor: String,
    /// Action, or its prefix up to a dot: `login` matches `login.success` and `login.failure`.
    pub action: String,
    /// Object type, or `type:id`.
    pub object: String,
    /// First day, `YYYY-MM-DD` (UTC), inclusive.
    pub from: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    pub to: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(items: usize, page: u64, total: u64) -> Page<u8> {
        Page {
            items: vec![0; items],
            page,
            per_page: 25,
            total,
        }
    }

    #[test]
    fn page_ranges() {
        assert_eq!(page(0, 1, 0).page_count(), 1);
        assert_eq!(
            (page(0, 1, 0).first_index(), page(0, 1, 0).last_index()),
            (0, 0)
        );
        assert_eq!(
            (page(25, 1, 30).first_index(), page(25, 1, 30).last_index()),
            (1, 25)
        );
        assert_eq!(
            (page(5, 2, 30).first_index(), page(5, 2, 30).last_index()),
            (26, 30)
        );
        assert_eq!(page(5, 2, 30).page_count(), 2);
        assert_eq!(page(25, 2, 50).page_count(), 2);
    }
}
