//! One edit of a configuration at a time, as the configuration page makes them: each gives
//! the new configuration and a one-line summary of what changed, for the revision.

use super::{Configuration, Layer, Variable, VariableScope, split_list};
use crate::error::AppError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Release, machine, distro, image targets and packages (lists as typed).
    Basics {
        release: String,
        machine: String,
        distro: String,
        image_targets: String,
        packages: String,
    },
    /// Appends a layer.
    AddLayer(Layer),
    RemoveLayer {
        name: String,
    },
    /// Moves a layer one place up (earlier) or down.
    MoveLayer {
        name: String,
        up: bool,
    },
    /// Adds or replaces the variable of that name. A secret sent with an empty value keeps
    /// the value it has: secrets are write-only, so forms never hold them.
    SetVariable {
        scope: VariableScope,
        variable: Variable,
    },
    RemoveVariable {
        scope: VariableScope,
        name: String,
    },
}

impl Change {
    /// Whether the change touches infrastructure variables (administrators only).
    pub fn scope(&self) -> VariableScope {
        match self {
            Self::SetVariable { scope, .. } | Self::RemoveVariable { scope, .. } => *scope,
            _ => VariableScope::Build,
        }
    }
}

fn described(field: &str, before: &str, after: &str) -> Option<String> {
    (before != after).then(|| {
        let show = |v: &str| {
            if v.is_empty() {
                "(none)".to_owned()
            } else {
                v.to_owned()
            }
        };
        format!("{field} {} → {}", show(before), show(after))
    })
}

/// The error with its key path (`variables[2].value`) cut to the form field (`value`):
/// a change's form edits one item at a time.
fn form_field(error: AppError) -> AppError {
    match error.field() {
        Some(path) => {
            let last = path.rsplit('.').next().unwrap_or(path);
            let field = last.split('[').next().unwrap_or(last);
            AppError::invalid(field, error.message())
        }
        None => error,
    }
}

fn layer_position(config: &Configuration, name: &str) -> Result<usize, AppError> {
    config
        .layers
        .iter()
        .position(|layer| layer.name == name)
        .ok_or_else(|| AppError::invalid("name", format!("There is no layer {name}.")))
}

impl Configuration {
    /// The configuration after `change`, checked as a whole, with a summary of the change.
    pub fn apply(&self, change: Change) -> Result<(Configuration, String), AppError> {
        let mut next = self.clone();
        let summary = match change {
            Change::Basics {
                release,
                machine,
                distro,
                image_targets,
                packages,
            } => {
                next.release = release.trim().to_owned();
                next.machine = machine.trim().to_owned();
                next.distro = distro.trim().to_owned();
                next.image_targets = split_list(&image_targets);
                next.packages = split_list(&packages);
                let parts: Vec<String> = [
                    described("release", &self.release, &next.release),
                    described("machine", &self.machine, &next.machine),
                    described("distro", &self.distro, &next.distro),
                    described(
                        "image targets",
                        &self.image_targets.join(" "),
                        &next.image_targets.join(" "),
                    ),
                    described(
                        "packages",
                        &self.packages.join(" "),
                        &next.packages.join(" "),
                    ),
                ]
                .into_iter()
                .flatten()
                .collect();
                if parts.is_empty() {
                    "No change".to_owned()
                } else {
                    parts.join("; ")
                }
            }
            Change::AddLayer(layer) => {
                if self.layers.iter().any(|l| l.name == layer.name) {
                    return Err(AppError::conflict(
                        "name",
                        format!("The layer {} is already listed.", layer.name),
                    ));
                }
                let summary = format!("Added layer {}", layer.name);
                next.layers.push(layer);
                summary
            }
            Change::RemoveLayer { name } => {
                let at = layer_position(self, &name)?;
                next.layers.remove(at);
                format!("Removed layer {name}")
            }
            Change::MoveLayer { name, up } => {
                let at = layer_position(self, &name)?;
                let to = if up { at.checked_sub(1) } else { Some(at + 1) };
                match to.filter(|to| *to < next.layers.len()) {
                    Some(to) => next.layers.swap(at, to),
                    None => {
                        return Err(AppError::invalid(
                            "name",
                            format!(
                                "{name} is already the {} layer.",
                                if up { "first" } else { "last" }
                            ),
                        ));
                    }
                }
                format!("Moved layer {name} {}", if up { "up" } else { "down" })
            }
            Change::SetVariable {
                scope,
                mut variable,
            } => {
                variable.name = variable.name.trim().to_owned();
                let list = next.variables_mut(scope);
                let existing = list.iter().position(|v| v.name == variable.name);
                if variable.secret
                    && variable.value.is_empty()
                    && let Some(old) = existing.map(|at| &list[at]).filter(|old| old.secret)
                {
                    variable.value = old.value.clone();
                }
                let shown = variable.masked().value;
                let summary = match existing {
                    Some(_) => format!("Set {} = {shown}", variable.name),
                    None => format!("Added {} = {shown}", variable.name),
                };
                match existing {
                    Some(at) => list[at] = variable,
                    None => list.push(variable),
                }
                summary
            }
            Change::RemoveVariable { scope, name } => {
                let list = next.variables_mut(scope);
                let at = list.iter().position(|v| v.name == name).ok_or_else(|| {
                    AppError::invalid("name", format!("There is no variable {name}."))
                })?;
                list.remove(at);
                format!("Removed {name}")
            }
        };
        next.check().map_err(form_field)?;
        Ok((next, summary))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LayerSource, VariableKind};
    use super::*;

    fn layer(name: &str) -> Layer {
        Layer {
            name: name.into(),
            source: LayerSource::Local {
                path: format!("/srv/{name}"),
            },
        }
    }

    fn names(config: &Configuration) -> Vec<&str> {
        config.layers.iter().map(|l| l.name.as_str()).collect()
    }

    #[test]
    fn layers_are_added_moved_and_removed() {
        let mut config = Configuration::default();
        for name in ["a", "b", "c"] {
            config = config.apply(Change::AddLayer(layer(name))).unwrap().0;
        }
        let (moved, summary) = config
            .apply(Change::MoveLayer {
                name: "c".into(),
                up: true,
            })
            .unwrap();
        assert_eq!(names(&moved), ["a", "c", "b"]);
        assert_eq!(summary, "Moved layer c up");
        assert!(
            moved
                .apply(Change::MoveLayer {
                    name: "a".into(),
                    up: true
                })
                .is_err()
        );
        assert!(moved.apply(Change::AddLayer(layer("a"))).is_err());
        let (removed, _) = moved
            .apply(Change::RemoveLayer { name: "c".into() })
            .unwrap();
        assert_eq!(names(&removed), ["a", "b"]);
    }

    #[test]
    fn secrets_keep_their_value_when_sent_empty() {
        let secret = |value: &str| Variable {
            name: "TOKEN".into(),
            value: value.into(),
            kind: VariableKind::String,
            secret: true,
        };
        let set = |config: &Configuration, value: &str| {
            config
                .apply(Change::SetVariable {
                    scope: VariableScope::Build,
                    variable: secret(value),
                })
                .unwrap()
        };
        let (config, summary) = set(&Configuration::default(), "s3cret");
        assert_eq!(summary, "Added TOKEN = ********");
        let (config, _) = set(&config, "");
        assert_eq!(config.variables[0].value, "s3cret");
        assert_eq!(config.masked().variables[0].value, "********");
        let (config, _) = set(&config, "new");
        assert_eq!(config.variables[0].value, "new");
    }

    #[test]
    fn basics_summaries_name_what_changed_and_invalid_input_is_refused() {
        let basics = |machine: &str, targets: &str| Change::Basics {
            release: "scarthgap".into(),
            machine: machine.into(),
            distro: "poky".into(),
            image_targets: targets.into(),
            packages: String::new(),
        };
        let (config, summary) = Configuration::default()
            .apply(basics("qemux86-64", "core-image-minimal"))
            .unwrap();
        assert_eq!(
            summary,
            "release (none) → scarthgap; machine (none) → qemux86-64; distro (none) → poky; \
             image targets (none) → core-image-minimal"
        );
        let error = config.apply(basics("bad machine", "")).unwrap_err();
        assert_eq!(error.field(), Some("machine"));
    }
}
