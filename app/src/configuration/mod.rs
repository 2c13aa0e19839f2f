//! A project's build configuration: release, machine, distro, image targets, packages,
//! ordered layers and typed variables; how it is checked and what BitBake files it makes.
//!
//! One value type serves the pages, the revisions stored in the database and the TOML
//! export, so all three agree on what a configuration is.

mod changes;
mod render;
mod validate;

pub use changes::Change;
pub use render::{bblayers_conf, effective_infrastructure, local_conf};
pub use validate::*;

use serde::{Deserialize, Serialize};

/// Everything a build of the project is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    /// The release label, e.g. a Yocto release name (`scarthgap`).
    pub release: String,
    pub machine: String,
    pub distro: String,
    /// Images to build, e.g. `core-image-minimal`.
    pub image_targets: Vec<String>,
    /// Extra packages installed in the image.
    pub packages: Vec<String>,
    /// In BBLAYERS order.
    pub layers: Vec<Layer>,
    /// Build variables, edited by users who may configure the project.
    pub variables: Vec<Variable>,
    /// Overrides of the instance's infrastructure variables, set by administrators only.
    pub infrastructure: Vec<Variable>,
}

/// A BitBake layer and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub source: LayerSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerSource {
    /// A git repository: URL (https, ssh, git or file), a ref, an optional subdirectory.
    Git {
        url: String,
        git_ref: String,
        subdirectory: String,
    },
    /// A directory on the build host.
    Local { path: String },
}

/// A BitBake variable with a type that decides its widget and its checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub name: String,
    pub value: String,
    pub kind: VariableKind,
    /// Write-only: masked wherever it would be shown, never exported.
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VariableKind {
    String,
    Path,
    /// `1` or `0`, as BitBake's boolean variables expect.
    Bool,
    Integer,
    /// One of the listed values.
    Choice(Vec<String>),
}

impl VariableKind {
    pub const NAMES: [&'static str; 5] = ["string", "path", "bool", "integer", "choice"];

    /// The kind named `name`; a choice takes its choices from `choices` (separated by
    /// commas or line breaks).
    pub fn parse(name: &str, choices: &str, field: &str) -> Result<Self, crate::error::AppError> {
        match name {
            "string" => Ok(Self::String),
            "path" => Ok(Self::Path),
            "bool" => Ok(Self::Bool),
            "integer" => Ok(Self::Integer),
            "choice" => Ok(Self::Choice(
                choices
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            other => Err(crate::error::AppError::invalid(
                field,
                format!("'{other}' is not a type: use string, path, bool, integer or choice."),
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Path => "path",
            Self::Bool => "bool",
            Self::Integer => "integer",
            Self::Choice(_) => "choice",
        }
    }
}

/// Which list of variables a change is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VariableScope {
    #[default]
    Build,
    Infrastructure,
}

/// What a secret's value shows as.
pub const MASK: &str = "********";

/// What a secret's value starts with once the server has sealed it for storage; a value a
/// user gives may not.
pub const SEALED_PREFIX: &str = "kiln-sealed:v1:";

/// Whether a stored value is sealed.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// Refuses a value a user gives that would read as sealed.
pub fn check_plain(value: &str, field: &str) -> Result<(), crate::error::AppError> {
    if is_sealed(value) {
        return Err(crate::error::AppError::invalid(
            field,
            format!("A value may not start with `{SEALED_PREFIX}`."),
        ));
    }
    Ok(())
}

impl Variable {
    /// A variable as a form sends it. An unchecked bool box sends nothing, which is `0`.
    pub fn from_form(
        name: &str,
        kind: &str,
        choices: &str,
        value: &str,
        secret: bool,
    ) -> Result<Self, crate::error::AppError> {
        let kind = VariableKind::parse(kind, choices, "kind")?;
        check_plain(value, "value")?;
        let value = match (&kind, value) {
            (VariableKind::Bool, "") if !secret => "0".to_owned(),
            (VariableKind::Bool, "true" | "on") => "1".to_owned(),
            _ => value.to_owned(),
        };
        Ok(Self {
            name: name.trim().to_owned(),
            value,
            kind,
            secret,
        })
    }

    /// The variable as it may be shown: a secret's value replaced by the mask (or empty when
    /// none is set yet).
    pub fn masked(&self) -> Self {
        if !self.secret {
            return self.clone();
        }
        Self {
            value: if self.value.is_empty() {
                String::new()
            } else {
                MASK.to_owned()
            },
            ..self.clone()
        }
    }
}

impl Configuration {
    /// The configuration as it may leave the server: every secret masked.
    pub fn masked(&self) -> Self {
        Self {
            variables: self.variables.iter().map(Variable::masked).collect(),
            infrastructure: self.infrastructure.iter().map(Variable::masked).collect(),
            ..self.clone()
        }
    }

    pub fn variables(&self, scope: VariableScope) -> &Vec<Variable> {
        match scope {
            VariableScope::Build => &self.variables,
            VariableScope::Infrastructure => &self.infrastructure,
        }
    }

    pub fn variables_mut(&mut self, scope: VariableScope) -> &mut Vec<Variable> {
        match scope {
            VariableScope::Build => &mut self.variables,
            VariableScope::Infrastructure => &mut self.infrastructure,
        }
    }
}

/// A configuration as the configuration page shows it: secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigurationView {
    /// The revision shown; `None` before the first save.
    pub revision: Option<u32>,
    /// The newest revision, to tell an old revision from the current one.
    pub latest: Option<u32>,
    pub configuration: Configuration,
    /// The instance's infrastructure defaults (masked), shown read-only.
    pub infrastructure_defaults: Vec<Variable>,
    pub local_conf: String,
    pub bblayers_conf: String,
    pub can_configure: bool,
    /// Administrators may override infrastructure variables per project.
    pub can_override_infrastructure: bool,
    pub archived: bool,
}

/// One saved revision in a project's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionSummary {
    pub number: u32,
    pub author: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub summary: String,
}

impl Configuration {
    /// The configuration with every secret's value emptied, for copies that must not carry
    /// them (clones and exports).
    pub fn without_secret_values(&self) -> Self {
        let blank = |variables: &[Variable]| {
            variables
                .iter()
                .map(|v| Variable {
                    value: if v.secret {
                        String::new()
                    } else {
                        v.value.clone()
                    },
                    ..v.clone()
                })
                .collect()
        };
        Self {
            variables: blank(&self.variables),
            infrastructure: blank(&self.infrastructure),
            ..self.clone()
        }
    }
}
