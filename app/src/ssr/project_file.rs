//! The project file: a project's configuration as versioned, human-readable TOML
//! (`schema = 1`), exported for download and imported as a new project.
//!
//! Export leaves out infrastructure variables and writes secrets without their values;
//! how the project builds (its workflow, shared build directory and retention) is in
//! `[builds]`, written when any of it is set.
//! Import is strict: an unknown schema, an unknown key or an invalid value is refused with
//! its key path, and nothing is created.

use super::audit::{self, Actor, Event};
use super::projects::Project;
use super::projects::changes::{self, NewProject};
use super::{configurations, db_error};
use crate::configuration::{Configuration, Layer, LayerSource, Variable, VariableKind};
use crate::error::AppError;
use crate::ssr::begin_write;
use crate::types::{CurrentUser, Permissions};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The only schema this Kiln reads and writes.
pub const SCHEMA: i64 = 1;

/// Largest project file accepted.
pub const PROJECT_FILE_MAX_BYTES: usize = 1024 * 1024;

/// The form field import errors are reported on.
const FIELD: &str = "file";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    schema: i64,
    project: ProjectSection,
    configuration: ConfigurationSection,
    #[serde(default, skip_serializing_if = "BuildSettings::is_empty")]
    builds: BuildSettings,
}

/// How a project builds, beside its configuration; each key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildSettings {
    /// The definition its builds run (none: `standard-build`). A project definition of
    /// that name is not in the file: save it after importing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The directory its builds share on a worker (administrators only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_builds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_bytes: Option<u64>,
    /// The pattern a prefix its build output carries matches (such as kas's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_prefix: Option<String>,
}

impl BuildSettings {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn of(project: &Project) -> Self {
        let limits = super::builds::retention::limits(project);
        Self {
            workflow: project.build_definition.clone(),
            directory: project.build_directory.clone(),
            keep_builds: limits.keep_builds,
            keep_days: limits.keep_days,
            keep_bytes: limits.keep_bytes,
            line_prefix: project.line_prefix.clone(),
        }
    }

    /// Checks the settings as the forms that set them do, keeping the directory as those
    /// forms store it.
    fn check(&mut self) -> Result<(), AppError> {
        if let Some(name) = &self.workflow
            && !crate::workflow::parse::is_valid_definition_name(name)
        {
            return Err(refused(
                "builds.workflow",
                "a definition name is lowercase letters, digits, `-` and `_`",
            ));
        }
        if let Some(directory) = &self.directory {
            self.directory = crate::builds::parse_build_directory(directory)
                .map_err(|message| refused("builds.directory", message))?;
        }
        if let Some(prefix) = &self.line_prefix {
            crate::builds::bitbake_output::LinePrefix::parse(prefix)
                .map_err(|message| refused("builds.line_prefix", message))?;
        }
        let limits = crate::builds::BuildRetention {
            keep_builds: self.keep_builds,
            keep_days: self.keep_days,
            keep_bytes: self.keep_bytes,
        };
        super::builds::retention::check(&limits).map_err(|e| {
            refused(
                &format!("builds.{}", e.field().unwrap_or_default()),
                e.message(),
            )
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectSection {
    name: String,
    slug: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ConfigurationSection {
    release: String,
    machine: String,
    distro: String,
    image_targets: Vec<String>,
    packages: Vec<String>,
    layers: Vec<LayerEntry>,
    variables: Vec<VariableEntry>,
}

/// A layer has exactly one of `git` and `path`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerEntry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    git: Option<GitEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitEntry {
    url: String,
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    subdirectory: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariableEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    /// Empty for a secret: its value is never exported.
    #[serde(default)]
    value: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    choices: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    secret: bool,
}

impl From<&Layer> for LayerEntry {
    fn from(layer: &Layer) -> Self {
        let (git, path) = match &layer.source {
            LayerSource::Git {
                url,
                git_ref,
                subdirectory,
            } => (
                Some(GitEntry {
                    url: url.clone(),
                    git_ref: git_ref.clone(),
                    subdirectory: subdirectory.clone(),
                }),
                None,
            ),
            LayerSource::Local { path } => (None, Some(path.clone())),
        };
        Self {
            name: layer.name.clone(),
            git,
            path,
        }
    }
}

impl From<&Variable> for VariableEntry {
    fn from(variable: &Variable) -> Self {
        let choices = match &variable.kind {
            VariableKind::Choice(choices) => choices.clone(),
            _ => Vec::new(),
        };
        Self {
            name: variable.name.clone(),
            kind: variable.kind.name().to_owned(),
            value: if variable.secret {
                String::new()
            } else {
                variable.value.clone()
            },
            choices,
            secret: variable.secret,
        }
    }
}

/// The project file of `project` with `config`.
pub fn render(project: &Project, config: &Configuration) -> Result<String, AppError> {
    let file = ProjectFile {
        schema: SCHEMA,
        project: ProjectSection {
            name: project.name.clone(),
            slug: project.slug.clone(),
            description: project.description.clone(),
        },
        configuration: ConfigurationSection {
            release: config.release.clone(),
            machine: config.machine.clone(),
            distro: config.distro.clone(),
            image_targets: config.image_targets.clone(),
            packages: config.packages.clone(),
            layers: config.layers.iter().map(LayerEntry::from).collect(),
            variables: config.variables.iter().map(VariableEntry::from).collect(),
        },
        builds: BuildSettings::of(project),
    };
    toml::to_string(&file).map_err(|error| {
        tracing::error!(%error, "cannot write a project file");
        AppError::Internal
    })
}

/// The project file of the project, as stored now.
pub async fn export(conn: &impl ConnectionTrait, project: &Project) -> Result<String, AppError> {
    let (config, _) = configurations::current(conn, project).await?;
    render(project, &config)
}

fn refused(path: &str, message: impl std::fmt::Display) -> AppError {
    if path.is_empty() || path == "." {
        AppError::invalid(FIELD, message.to_string())
    } else {
        AppError::invalid(FIELD, format!("{path}: {message}"))
    }
}

/// What a project file holds, checked: the project's name, slug and description, and its
/// configuration.
pub struct Parsed {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub configuration: Configuration,
    pub builds: BuildSettings,
}

pub fn parse(text: &str) -> Result<Parsed, AppError> {
    if text.len() > PROJECT_FILE_MAX_BYTES {
        return Err(refused(
            "",
            format!(
                "The file is larger than {} KiB.",
                PROJECT_FILE_MAX_BYTES / 1024
            ),
        ));
    }
    // The schema first: a file of another version is refused for that, not for its keys.
    let table: toml::Table = text
        .parse()
        .map_err(|error: toml::de::Error| refused("", error.message()))?;
    match table.get("schema") {
        Some(toml::Value::Integer(SCHEMA)) => {}
        Some(toml::Value::Integer(other)) => {
            return Err(refused(
                "schema",
                format!("unknown schema version {other}; this Kiln reads schema {SCHEMA}"),
            ));
        }
        Some(_) => return Err(refused("schema", "must be the number 1")),
        None => {
            return Err(refused(
                "schema",
                "missing; a project file starts with schema = 1",
            ));
        }
    }
    let deserializer = toml::Deserializer::new(text);
    let file: ProjectFile = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        refused(&path, error.into_inner().message())
    })?;
    let section = file.configuration;
    let mut layers = Vec::with_capacity(section.layers.len());
    for (i, entry) in section.layers.into_iter().enumerate() {
        let source = match (entry.git, entry.path) {
            (Some(git), None) => LayerSource::Git {
                url: git.url,
                git_ref: git.git_ref,
                subdirectory: git.subdirectory,
            },
            (None, Some(path)) => LayerSource::Local { path },
            _ => {
                return Err(refused(
                    &format!("configuration.layers[{i}]"),
                    "give exactly one of git or path",
                ));
            }
        };
        layers.push(Layer {
            name: entry.name,
            source,
        });
    }
    let mut variables = Vec::with_capacity(section.variables.len());
    for (i, entry) in section.variables.into_iter().enumerate() {
        let at = format!("configuration.variables[{i}]");
        let kind = VariableKind::parse(&entry.kind, &entry.choices.join(","), "type")
            .map_err(|e| refused(&format!("{at}.type"), e.message()))?;
        if !matches!(kind, VariableKind::Choice(_)) && !entry.choices.is_empty() {
            return Err(refused(
                &format!("{at}.choices"),
                "only a choice variable has choices",
            ));
        }
        crate::configuration::check_plain(&entry.value, "value")
            .map_err(|e| refused(&format!("{at}.value"), e.message()))?;
        variables.push(Variable {
            name: entry.name,
            value: entry.value,
            kind,
            secret: entry.secret,
        });
    }
    let configuration = Configuration {
        release: section.release,
        machine: section.machine,
        distro: section.distro,
        image_targets: section.image_targets,
        packages: section.packages,
        layers,
        variables,
        infrastructure: Vec::new(),
    };
    configuration.check().map_err(|e| {
        refused(
            &format!("configuration.{}", e.field().unwrap_or_default()),
            e.message(),
        )
    })?;
    let mut builds = file.builds;
    builds.check()?;
    Ok(Parsed {
        name: file.project.name,
        slug: file.project.slug,
        description: file.project.description,
        configuration,
        builds,
    })
}

/// Creates a new private project owned by `owner` from a project file; `slug` (when not
/// empty) replaces the file's. One audit row, `project.import`; nothing is created on error.
pub async fn import(
    db: &DatabaseConnection,
    keys: &crate::ssr::secrets::Keyring,
    actor: &Actor,
    owner: &CurrentUser,
    text: &str,
    slug: &str,
) -> Result<Project, AppError> {
    let parsed = parse(text)?;
    let slug = if slug.trim().is_empty() {
        parsed.slug.clone()
    } else {
        slug.trim().to_owned()
    };
    let txn = begin_write(db).await?;
    let input = NewProject {
        name: &parsed.name,
        slug: &slug,
        description: &parsed.description,
        group: None,
        group_permissions: Permissions::NONE,
        other_permissions: Permissions::NONE,
    };
    let project = changes::insert_new(&txn, owner, input)
        .await
        .map_err(|e| match e.field() {
            Some("name") | Some("description") => refused(
                &format!("project.{}", e.field().unwrap_or_default()),
                e.message(),
            ),
            _ => e,
        })?;
    if parsed.builds.directory.is_some() && !owner.is_admin {
        return Err(refused(
            "builds.directory",
            "only administrators give a project a shared build directory",
        ));
    }
    let project = if parsed.builds.is_empty() {
        project
    } else {
        use sea_orm::{ActiveModelTrait, ActiveValue::Set};
        let builds = &parsed.builds;
        let mut active: super::entities::projects::ActiveModel = project.into();
        active.build_definition = Set(builds.workflow.clone());
        active.build_directory = Set(builds.directory.clone());
        active.keep_builds = Set(builds
            .keep_builds
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX)));
        active.keep_days = Set(builds
            .keep_days
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX)));
        active.keep_bytes = Set(builds
            .keep_bytes
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)));
        active.update(&txn).await.map_err(db_error)?
    };
    if parsed.configuration != Configuration::default() {
        let summary = "Imported from a project file";
        configurations::insert_revision(
            &txn,
            keys,
            actor,
            &project,
            &parsed.configuration,
            summary,
        )
        .await?;
    }
    let event = Event::new(
        "project.import",
        "project",
        Some(project.id.to_string()),
        format!("Imported project {}", project.slug),
    )
    .details(json!({ "slug": project.slug, "name": project.name }));
    audit::record(&txn, actor, event).await?;
    txn.commit().await.map_err(db_error)?;
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in the README is a valid project file.
    #[test]
    fn the_documented_example_imports() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("```toml\nschema = 1")
            .expect("the README shows a project file");
        let example = &readme[start + "```toml\n".len()..];
        let example = &example[..example.find("```").expect("the example ends")];
        let parsed = parse(example).expect("the example parses");
        assert_eq!(parsed.slug, "gateway");
        assert_eq!(parsed.configuration.layers.len(), 2);
        assert_eq!(parsed.configuration.variables.len(), 2);
        assert!(parsed.configuration.variables[1].secret);
    }

    #[test]
    fn a_file_is_read_back_as_it_was_written() {
        let text = "schema = 1\n\n[project]\nname = \"P\"\nslug = \"p\"\ndescription = \"\"\n\n\
                    [configuration]\nrelease = \"\"\nmachine = \"m\"\ndistro = \"\"\n\
                    image_targets = []\npackages = []\nlayers = []\nvariables = []\n";
        let parsed = parse(text).expect("parses");
        let project = Project {
            id: 1,
            slug: parsed.slug.clone(),
            name: parsed.name.clone(),
            description: parsed.description.clone(),
            owner_id: 1,
            group_id: None,
            group_permissions: 0,
            other_permissions: 0,
            archived_at: None,
            build_definition: None,
            build_directory: None,
            line_prefix: None,
            keep_builds: None,
            keep_days: None,
            keep_bytes: None,
            last_build_number: 0,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        assert_eq!(
            render(&project, &parsed.configuration).expect("renders"),
            text
        );
    }
}
