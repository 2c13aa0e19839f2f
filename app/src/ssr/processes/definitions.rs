//! Stored process definitions: saving a checked text as a new version, and finding the
//! versions a launch pins.

use crate::ssr::begin_write;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;

use super::participants;
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::db_error;
use crate::ssr::entities::process_definition_versions::{
    self as versions, Column as VersionColumn, Entity as Versions,
};
use crate::ssr::entities::process_definitions::{
    self as definitions, Column as DefinitionColumn, Entity as Definitions,
};
use crate::types::UserId;
use crate::workflow::Definition;
use crate::workflow::parse::{DefinitionError, KnownNames, parse_definition};

/// Where a definition lives: a project's own, or global (usable by every project).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Project(i64),
}

impl Scope {
    pub(crate) fn key(self) -> i64 {
        match self {
            Self::Global => 0,
            Self::Project(id) => id,
        }
    }

    fn project_id(self) -> Option<i64> {
        match self {
            Self::Global => None,
            Self::Project(id) => Some(id),
        }
    }
}

/// Why a definition was not saved.
#[derive(Debug)]
pub enum SaveError {
    /// The text has errors, each with its line and column.
    Invalid(Vec<DefinitionError>),
    Other(AppError),
}

impl From<AppError> for SaveError {
    fn from(error: AppError) -> Self {
        Self::Other(error)
    }
}

impl From<SaveError> for AppError {
    fn from(error: SaveError) -> Self {
        match error {
            SaveError::Invalid(errors) => AppError::invalid(
                "source",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            SaveError::Other(error) => error,
        }
    }
}

/// A saved version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub definition_id: i64,
    pub name: String,
    pub version: i32,
    /// False when the text equals the latest version's and nothing was stored.
    pub created: bool,
}

/// The names a definition in `scope` may use: every registered participant, and the
/// definitions it can call (the scope's own and the global ones).
pub async fn known_names(
    conn: &impl ConnectionTrait,
    scope: Scope,
) -> Result<KnownNames, AppError> {
    let participants = participants::names(conn, scope).await?;
    let definitions = Definitions::find()
        .filter(DefinitionColumn::ScopeKey.is_in([0, scope.key()]))
        .all(conn)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|row| row.name)
        .collect::<BTreeSet<_>>();
    Ok(KnownNames {
        participants,
        definitions,
    })
}

/// Checks `source` and, when it is valid and differs from the latest version, stores it as
/// the next version of the definition it names in `scope`, with its audit row.
/// The caller has checked the permission (`configure` on the project, or an administrator for
/// a global definition).
pub async fn save(
    db: &DatabaseConnection,
    actor: &Actor,
    scope: Scope,
    source: &str,
) -> Result<Saved, SaveError> {
    let txn = begin_write(db).await?;
    let known = known_names(&txn, scope).await?;
    let definition = parse_definition(source, &known).map_err(SaveError::Invalid)?;
    let tree = serde_json::to_string(&definition).map_err(|error| {
        tracing::error!(%error, "definition tree not serialisable");
        AppError::Internal
    })?;
    let now = Utc::now();
    let existing = Definitions::find()
        .filter(DefinitionColumn::ScopeKey.eq(scope.key()))
        .filter(DefinitionColumn::Name.eq(&definition.name))
        .one(&txn)
        .await
        .map_err(db_error)?;
    let (row, version) = match existing {
        Some(row) => {
            let latest = latest_version(&txn, row.id).await?;
            if latest.as_ref().is_some_and(|v| v.source == source) {
                return Ok(Saved {
                    definition_id: row.id,
                    name: row.name,
                    version: row.latest_version,
                    created: false,
                });
            }
            let version = row.latest_version + 1;
            let mut active: definitions::ActiveModel = row.into();
            active.latest_version = Set(version);
            active.updated_at = Set(now);
            (active.update(&txn).await.map_err(db_error)?, version)
        }
        None => {
            let row = definitions::ActiveModel {
                project_id: Set(scope.project_id()),
                scope_key: Set(scope.key()),
                name: Set(definition.name.clone()),
                latest_version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .map_err(db_error)?;
            (row, 1)
        }
    };
    versions::ActiveModel {
        definition_id: Set(row.id),
        version: Set(version),
        source: Set(source.to_owned()),
        tree: Set(tree),
        author_id: Set(actor.id.map(|UserId(id)| id)),
        author: Set(actor.name.clone()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(db_error)?;
    let event = Event::new(
        "definition.save",
        "definition",
        Some(row.id.to_string()),
        format!("Saved version {version} of definition {}", row.name),
    )
    .details(json!({ "name": row.name, "version": version, "project_id": row.project_id }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(Saved {
        definition_id: row.id,
        name: row.name,
        version,
        created: true,
    })
}

async fn latest_version(
    conn: &impl ConnectionTrait,
    definition_id: i64,
) -> Result<Option<versions::Model>, AppError> {
    Versions::find()
        .filter(VersionColumn::DefinitionId.eq(definition_id))
        .order_by_desc(VersionColumn::Version)
        .one(conn)
        .await
        .map_err(db_error)
}

/// The latest version of the definition `name` as seen from `scope`: the scope's own first,
/// then the global one.
pub async fn resolve(
    conn: &impl ConnectionTrait,
    scope: Scope,
    name: &str,
) -> Result<Option<versions::Model>, AppError> {
    let mut rows = Definitions::find()
        .filter(DefinitionColumn::ScopeKey.is_in([0, scope.key()]))
        .filter(DefinitionColumn::Name.eq(name))
        .all(conn)
        .await
        .map_err(db_error)?;
    rows.sort_by_key(|row| row.scope_key == 0);
    match rows.first() {
        Some(row) => latest_version(conn, row.id).await,
        None => Ok(None),
    }
}

/// Parsed definitions by version id. Versions never change, so an entry never goes stale.
#[derive(Clone, Default)]
pub struct DefinitionCache {
    trees: Arc<Mutex<std::collections::HashMap<i64, Arc<Definition>>>>,
}

impl DefinitionCache {
    /// The definitions of `version_ids`, in that order.
    pub async fn load(
        &self,
        conn: &impl ConnectionTrait,
        version_ids: &[i64],
    ) -> Result<Vec<Arc<Definition>>, AppError> {
        let missing: Vec<i64> = {
            let trees = self.lock();
            version_ids
                .iter()
                .copied()
                .filter(|id| !trees.contains_key(id))
                .collect()
        };
        if !missing.is_empty() {
            let rows = Versions::find()
                .filter(VersionColumn::Id.is_in(missing))
                .all(conn)
                .await
                .map_err(db_error)?;
            let mut trees = self.lock();
            for row in rows {
                let tree: Definition = serde_json::from_str(&row.tree).map_err(|error| {
                    tracing::error!(%error, version = row.id, "unreadable definition tree");
                    AppError::Internal
                })?;
                trees.insert(row.id, Arc::new(tree));
            }
        }
        let trees = self.lock();
        version_ids
            .iter()
            .map(|id| {
                trees.get(id).cloned().ok_or_else(|| {
                    tracing::error!(version = id, "a pinned definition version is missing");
                    AppError::Internal
                })
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, Arc<Definition>>> {
        // A panic while holding the lock cannot leave the map half-written (inserts are
        // single calls), so a poisoned lock is still good to use.
        self.trees
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn summary(name: &str, version: &versions::Model) -> crate::types::DefinitionSummary {
    crate::types::DefinitionSummary {
        name: name.to_owned(),
        version: version.version,
        author: version.author.clone(),
        updated_at: version.created_at,
    }
}

/// The definitions stored in `scope` itself (not the global ones a project may also use),
/// by name, each at its latest version.
pub async fn list(
    conn: &impl ConnectionTrait,
    scope: Scope,
) -> Result<Vec<crate::types::DefinitionSummary>, AppError> {
    let rows = Definitions::find()
        .filter(DefinitionColumn::ScopeKey.eq(scope.key()))
        .order_by_asc(DefinitionColumn::Name)
        .all(conn)
        .await
        .map_err(db_error)?;
    let mut list = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(version) = latest_version(conn, row.id).await? {
            list.push(summary(&row.name, &version));
        }
    }
    Ok(list)
}

/// A definition stored in `scope`: its latest version's text and tree, and every version.
pub async fn detail(
    conn: &impl ConnectionTrait,
    cache: &DefinitionCache,
    scope: Scope,
    name: &str,
) -> Result<
    (
        versions::Model,
        Arc<Definition>,
        Vec<crate::types::DefinitionSummary>,
    ),
    AppError,
> {
    let row = Definitions::find()
        .filter(DefinitionColumn::ScopeKey.eq(scope.key()))
        .filter(DefinitionColumn::Name.eq(name))
        .one(conn)
        .await
        .map_err(db_error)?
        .ok_or(AppError::NotFound)?;
    let all = Versions::find()
        .filter(VersionColumn::DefinitionId.eq(row.id))
        .order_by_desc(VersionColumn::Version)
        .all(conn)
        .await
        .map_err(db_error)?;
    let latest = all.first().cloned().ok_or(AppError::NotFound)?;
    let tree = cache.load(conn, &[latest.id]).await?.remove(0);
    let versions = all.iter().map(|v| summary(&row.name, v)).collect();
    Ok((latest, tree, versions))
}

/// Checks `source` as a definition of `scope` without storing anything.
pub async fn check(
    conn: &impl ConnectionTrait,
    scope: Scope,
    source: &str,
) -> Result<crate::types::DefinitionCheck, AppError> {
    let known = known_names(conn, scope).await?;
    Ok(match parse_definition(source, &known) {
        Ok(definition) => crate::types::DefinitionCheck {
            problems: Vec::new(),
            outline: crate::workflow::outline::outline(&definition),
            name: definition.name,
        },
        Err(errors) => crate::types::DefinitionCheck {
            problems: errors
                .into_iter()
                .map(|e| crate::types::DefinitionProblem {
                    line: e.position.line,
                    column: e.position.column,
                    message: e.message,
                })
                .collect(),
            name: String::new(),
            outline: Vec::new(),
        },
    })
}
