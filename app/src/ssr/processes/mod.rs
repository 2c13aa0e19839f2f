//! The workflow engine's data layer: the participant registry, stored definitions and their
//! versions, and process instances with their durable message queue and workitems.

pub mod definitions;
pub mod instances;
pub mod participants;
pub mod tasks;
pub mod views;

pub use definitions::{DefinitionCache, Scope};

/// The scope of the project at `slug`.
pub async fn projects_scope(
    conn: &impl sea_orm::ConnectionTrait,
    slug: &str,
) -> Result<Scope, crate::error::AppError> {
    Ok(Scope::Project(
        crate::ssr::projects::by_slug(conn, slug).await?.id,
    ))
}

/// What request handlers share with the engine's runner: the parsed-definition cache, the
/// bell that wakes the runner when a message has been queued, and the one that wakes the
/// cron scheduler when a schedule has changed.
#[derive(Clone, Default)]
pub struct EngineHandle {
    pub cache: DefinitionCache,
    pub wake: std::sync::Arc<tokio::sync::Notify>,
    pub schedule: std::sync::Arc<tokio::sync::Notify>,
}

impl EngineHandle {
    /// Tells the runner that a message is waiting (call after the commit that queued it).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tells the cron scheduler to look at the triggers again.
    pub fn schedule_changed(&self) {
        self.schedule.notify_one();
    }
}
