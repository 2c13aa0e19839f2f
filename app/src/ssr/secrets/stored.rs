//! Passes over every secret the database holds: sealing what a store written before
//! sealing keeps in plain text, sealing everything again under a new key, and naming the
//! owners of secrets that cannot be opened.
//!
//! A pass writes in one transaction and writes nothing when any secret cannot be opened,
//! so a wrong key never leaves some secrets sealed one way and some another.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect,
};
use serde_json::json;

use super::Keyring;
use crate::configuration::{Configuration, Variable};
use crate::error::AppError;
use crate::ssr::audit::{self, Actor, Event};
use crate::ssr::configurations::INFRASTRUCTURE_KEY;
use crate::ssr::entities::configuration_revisions::{self, Column as RevisionColumn};
use crate::ssr::entities::{projects, triggers};
use crate::ssr::{begin_write, db_error, like_escaped, settings};

/// Who owns the secrets a pass could not open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unreadable {
    /// Slugs of the projects with such a secret in any revision of their configuration.
    pub projects: Vec<String>,
    /// The instance's infrastructure variables hold one.
    pub infrastructure: bool,
    /// Names of webhook triggers whose secret is one.
    pub triggers: Vec<String>,
}

impl Unreadable {
    fn is_empty(&self) -> bool {
        self.projects.is_empty() && !self.infrastructure && self.triggers.is_empty()
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.projects.is_empty() {
            parts.push(format!("projects {}", self.projects.join(", ")));
        }
        if self.infrastructure {
            parts.push("the infrastructure variables".to_owned());
        }
        if !self.triggers.is_empty() {
            parts.push(format!("webhook triggers {}", self.triggers.join(", ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Why a pass wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("secrets of {0} cannot be opened with this server's key")]
    Unreadable(Unreadable),
    #[error("{0}")]
    Store(#[from] AppError),
}

/// Seals every stored secret under the current key of `keys`, opening each with whichever
/// key of the ring sealed it; returns how many were sealed anew. `summary` is the audit
/// row's, written when anything changed.
pub async fn seal_all(
    db: &DatabaseConnection,
    keys: &Keyring,
    actor: &Actor,
    summary: &str,
) -> Result<usize, PassError> {
    let txn = begin_write(db).await?;
    let mut unreadable = Unreadable::default();
    let mut sealed = 0usize;

    // Only revisions that hold a secret variable need opening.
    let revisions = configuration_revisions::Entity::find()
        .filter(RevisionColumn::Document.like(like_escaped("%", r#""secret":true"#, "%")))
        .all(&txn)
        .await
        .map_err(db_error)?;
    let mut broken_projects = Vec::new();
    for row in revisions {
        let Ok(mut config) = serde_json::from_str::<Configuration>(&row.document) else {
            tracing::error!(revision = row.id, "unreadable configuration revision");
            return Err(AppError::Internal.into());
        };
        let mut changed = 0;
        let mut broken = false;
        for list in [&mut config.variables, &mut config.infrastructure] {
            match reseal(keys, list) {
                Ok(n) => changed += n,
                Err(()) => broken = true,
            }
        }
        if broken {
            broken_projects.push(row.project_id);
            continue;
        }
        if changed > 0 {
            let document = serde_json::to_string(&config).map_err(|_| AppError::Internal)?;
            let mut active: configuration_revisions::ActiveModel = row.into();
            active.document = Set(document);
            active.update(&txn).await.map_err(db_error)?;
            sealed += changed;
        }
    }
    if !broken_projects.is_empty() {
        broken_projects.sort_unstable();
        broken_projects.dedup();
        unreadable.projects = projects::Entity::find()
            .filter(projects::Column::Id.is_in(broken_projects))
            .select_only()
            .column(projects::Column::Slug)
            .into_tuple()
            .all(&txn)
            .await
            .map_err(db_error)?;
    }

    if let Some(text) = settings::get(&txn, INFRASTRUCTURE_KEY).await? {
        let Ok(mut variables) = serde_json::from_str::<Vec<Variable>>(&text) else {
            tracing::error!("unreadable infrastructure variables");
            return Err(AppError::Internal.into());
        };
        match reseal(keys, &mut variables) {
            Err(()) => unreadable.infrastructure = true,
            Ok(0) => {}
            Ok(n) => {
                let text = serde_json::to_string(&variables).map_err(|_| AppError::Internal)?;
                settings::put(&txn, actor, INFRASTRUCTURE_KEY, Some(text)).await?;
                sealed += n;
            }
        }
    }

    let hooks = triggers::Entity::find()
        .filter(triggers::Column::Secret.is_not_null())
        .all(&txn)
        .await
        .map_err(db_error)?;
    for row in hooks {
        let Some(secret) = row.secret.clone() else {
            continue;
        };
        if keys.is_current(&secret) {
            continue;
        }
        match keys.reseal(&secret) {
            Ok(resealed) => {
                let mut active: triggers::ActiveModel = row.into();
                active.secret = Set(Some(resealed));
                active.update(&txn).await.map_err(db_error)?;
                sealed += 1;
            }
            Err(_) => unreadable.triggers.push(row.name),
        }
    }

    if !unreadable.is_empty() {
        // Dropping the transaction rolls it back: nothing was sealed.
        return Err(PassError::Unreadable(unreadable));
    }
    if sealed > 0 {
        let event = Event::new("secrets.seal", "instance", None, summary.to_owned())
            .details(json!({ "sealed": sealed, "key": keys.current_id() }));
        audit::record(&txn, actor, event).await?;
    }
    txn.commit().await.map_err(db_error)?;
    Ok(sealed)
}

/// Seals the secret values of `variables` under the current key; how many changed, or
/// `Err` when one cannot be opened.
fn reseal(keys: &Keyring, variables: &mut [Variable]) -> Result<usize, ()> {
    let mut changed = 0;
    for variable in variables.iter_mut() {
        if !variable.secret || variable.value.is_empty() || keys.is_current(&variable.value) {
            continue;
        }
        variable.value = keys.reseal(&variable.value).map_err(|_| ())?;
        changed += 1;
    }
    Ok(changed)
}
