//! Login throttling: failures are counted per account name and per client address within a
//! window; once either count reaches its limit, logins for it are refused until the window ends.
//!
//! Unknown account names are counted like real ones, so the answer never reveals whether an
//! account exists.

use super::db_error;
use super::entities::login_throttle::{self, Entity as Throttle};
use super::state::AuthSettings;
use crate::error::AppError;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Address,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
        }
    }

    fn limit(self, settings: &AuthSettings) -> u32 {
        match self {
            Self::Account => settings.account_max_failures,
            Self::Address => settings.address_max_failures,
        }
    }
}

fn key(raw: &str) -> String {
    raw.trim().to_lowercase().chars().take(255).collect()
}

fn window(settings: &AuthSettings) -> chrono::Duration {
    chrono::Duration::from_std(settings.failure_window).unwrap_or(chrono::Duration::MAX)
}

/// Seconds until `row` stops locking, if it locks now.
fn locked_for(
    row: &login_throttle::Model,
    scope: Scope,
    settings: &AuthSettings,
    now: DateTime<Utc>,
) -> Option<u64> {
    let ends = row.window_started_at + window(settings);
    let failures = u32::try_from(row.failures).unwrap_or(0);
    (ends > now && failures >= scope.limit(settings))
        .then(|| (ends - now).num_seconds().max(1) as u64)
}

/// Refuses with 429 if any of `keys` is locked.
pub async fn check(
    conn: &impl ConnectionTrait,
    settings: &AuthSettings,
    keys: &[(Scope, &str)],
) -> Result<(), AppError> {
    let now = Utc::now();
    let mut retry_after_secs = 0;
    for (scope, raw) in keys {
        let found = Throttle::find_by_id((scope.as_str().to_owned(), key(raw)))
            .one(conn)
            .await
            .map_err(db_error)?;
        if let Some(wait) = found.and_then(|row| locked_for(&row, *scope, settings, now)) {
            retry_after_secs = retry_after_secs.max(wait);
        }
    }
    if retry_after_secs > 0 {
        Err(AppError::TooManyRequests { retry_after_secs })
    } else {
        Ok(())
    }
}

/// Counts one failure against `raw` in `scope`, starting a new window if the last one ended.
///
/// The count changes in single statements, so parallel attempts cannot overwrite each
/// other's failures (nor collide on the first insert) and win extra guesses.
pub async fn record_failure(
    conn: &impl ConnectionTrait,
    settings: &AuthSettings,
    scope: Scope,
    raw: &str,
) -> Result<(), AppError> {
    use login_throttle::Column;
    use sea_orm::sea_query::ExprTrait;
    let now = Utc::now();
    let window_start = now
        .checked_sub_signed(window(settings))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let in_window = || Expr::col(Column::WindowStartedAt).gt(window_start);
    let failures = Expr::case(in_window(), Expr::col(Column::Failures).add(1)).finally(1);
    let started = Expr::case(in_window(), Expr::col(Column::WindowStartedAt)).finally(now);
    let counted = Throttle::update_many()
        .col_expr(Column::Failures, failures.into())
        .col_expr(Column::WindowStartedAt, started.into())
        .filter(Column::Scope.eq(scope.as_str()))
        .filter(Column::Key.eq(key(raw)))
        .exec(conn)
        .await
        .map_err(db_error)?
        .rows_affected;
    if counted == 0 {
        let first = login_throttle::ActiveModel {
            scope: Set(scope.as_str().to_owned()),
            key: Set(key(raw)),
            failures: Set(1),
            window_started_at: Set(now),
        };
        let racing = OnConflict::columns([Column::Scope, Column::Key])
            .value(
                Column::Failures,
                Expr::col((Throttle, Column::Failures)).add(1),
            )
            .to_owned();
        Throttle::insert(first)
            .on_conflict(racing)
            .exec_without_returning(conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Forgets the failures counted against `raw` in `scope` (after a successful login).
pub async fn clear(conn: &impl ConnectionTrait, scope: Scope, raw: &str) -> Result<(), AppError> {
    Throttle::delete_by_id((scope.as_str().to_owned(), key(raw)))
        .exec(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(failures: i32, started_secs_ago: i64) -> login_throttle::Model {
        login_throttle::Model {
            scope: "account".into(),
            key: "alice".into(),
            failures,
            window_started_at: Utc::now() - chrono::Duration::seconds(started_secs_ago),
        }
    }

    #[test]
    fn locks_only_at_the_limit_and_within_the_window() {
        let settings = AuthSettings::default();
        let now = Utc::now();
        assert_eq!(
            locked_for(&row(4, 10), Scope::Account, &settings, now),
            None
        );
        let wait = locked_for(&row(5, 60), Scope::Account, &settings, now);
        assert!(
            matches!(wait, Some(s) if (839..=841).contains(&s)),
            "{wait:?}"
        );
        assert_eq!(
            locked_for(&row(50, 16 * 60), Scope::Account, &settings, now),
            None
        );
        assert_eq!(
            locked_for(&row(5, 10), Scope::Address, &settings, now),
            None
        );
    }
}
