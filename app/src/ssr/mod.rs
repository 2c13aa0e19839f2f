//! The server side of `app`: state, data layer, policy, audit and sessions.
//!
//! Compiled only with the `ssr` feature; the browser bundle never contains it.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod auth;
pub mod builds;
pub mod configurations;
pub mod csp;
pub mod entities;
pub mod files;
pub mod groups;
pub mod live;
pub mod password;
pub mod policy;
pub mod processes;
pub mod project_file;
pub mod projects;
pub mod request;
pub mod retention;
pub mod secrets;
pub mod session_store;
pub mod settings;
pub mod state;
pub mod throttle;
pub mod triggers;
pub mod users;
pub mod workers;
pub mod writes;

pub use writes::{WriteTransaction, begin_write};

/// Logs a database error and turns it into the opaque internal error.
pub fn db_error(error: sea_orm::DbErr) -> crate::error::AppError {
    tracing::error!(%error, "database error");
    crate::error::AppError::Internal
}

/// A LIKE pattern: `before`, then `literal` with its wildcards escaped, then `after`.
pub fn like_escaped(before: &str, literal: &str, after: &str) -> sea_orm::sea_query::LikeExpr {
    let mut pattern = String::with_capacity(before.len() + literal.len() + after.len() + 4);
    pattern.push_str(before);
    for c in literal.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(after);
    sea_orm::sea_query::LikeExpr::new(pattern).escape('\\')
}

/// One page of `select`'s rows as `T`, with the total; `page` is 1-based and clamped to the
/// last page, so a stale link still shows something.
pub async fn paginate<E, T>(
    conn: &impl sea_orm::ConnectionTrait,
    select: sea_orm::Select<E>,
    page: u64,
    per_page: u64,
) -> Result<crate::types::Page<T>, crate::error::AppError>
where
    E: sea_orm::EntityTrait,
    E::Model: Sync,
    T: From<E::Model>,
{
    use sea_orm::{PaginatorTrait, QuerySelect};
    let total = select.clone().count(conn).await.map_err(db_error)?;
    let page = page.clamp(1, Ord::max(total.div_ceil(per_page), 1));
    let rows = select
        .offset((page - 1) * per_page)
        .limit(per_page)
        .all(conn)
        .await
        .map_err(db_error)?;
    Ok(crate::types::Page {
        items: rows.into_iter().map(T::from).collect(),
        page,
        per_page,
        total,
    })
}
