//! The bus of live changes inside one server, and who may hear of which change (who may
//! follow a topic is asked of [`super::access::topic`]).
//!
//! Services publish a [`Change`] after the commit that made it; every `/ws` socket hears
//! all of them and forwards the ones its browser follows and may see.

use tokio::sync::broadcast;

use super::policy::{self, Action, Object};
use crate::error::AppError;
use crate::live::Topic;
use crate::types::{CurrentUser, Permission};

/// Changes held for sockets that fall behind; one that falls further behind is told that
/// everything it follows changed.
pub const BUS_CAPACITY: usize = 4096;

/// A topic changed; `project` is the project it belongs to (none: global, or no project's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub topic: Topic,
    pub project: Option<i64>,
}

/// Cheap to clone; every clone publishes to the same sockets.
#[derive(Clone)]
pub struct LiveBus(broadcast::Sender<Change>);

impl Default for LiveBus {
    fn default() -> Self {
        Self(broadcast::channel(BUS_CAPACITY).0)
    }
}

impl LiveBus {
    pub fn publish(&self, topic: Topic, project: Option<i64>) {
        // No socket listening is not an error.
        let _ = self.0.send(Change { topic, project });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.0.subscribe()
    }
}

/// Whether `user` may hear of a change in the processes of `project` (global processes are
/// for administrators).
pub async fn may_see(
    db: &sea_orm::DatabaseConnection,
    user: &CurrentUser,
    project: Option<i64>,
) -> Result<bool, AppError> {
    let Some(id) = project else {
        return Ok(user.is_admin);
    };
    let project = match super::projects::by_id(db, id).await {
        Ok(project) => project,
        Err(AppError::NotFound) => return Ok(false),
        Err(error) => return Err(error),
    };
    let facts = super::projects::facts(db, &project, Some(user.id)).await?;
    Ok(policy::can(
        Some(user),
        Object::Project(facts),
        Action::Project(Permission::View),
    ))
}

/// The user of session `session_id`, read afresh, while the session is open and the user
/// `user` enabled: a socket outlives the request that opened it, so it asks again from time
/// to time.
pub async fn signed_in_user(
    db: &sea_orm::DatabaseConnection,
    session_id: &str,
    user: crate::types::UserId,
) -> Result<Option<CurrentUser>, AppError> {
    use super::entities::sessions::{Column, Entity as Sessions};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let open = Sessions::find_by_id(session_id.to_owned())
        .filter(Column::ExpiresAt.gt(chrono::Utc::now()))
        .filter(Column::UserId.eq(user.0))
        .one(db)
        .await
        .map_err(super::db_error)?
        .is_some();
    if !open {
        return Ok(None);
    }
    Ok(super::users::by_id(db, user)
        .await?
        .filter(|u| !u.is_disabled)
        .map(|u| CurrentUser::from(&u)))
}
