//! The `local.conf` and `bblayers.conf` fragments a build gets from a configuration.
//!
//! Callers that show them pass a masked configuration, so secrets never reach a page.

use super::{Configuration, LayerSource, Variable};
use std::fmt::Write;

/// A value inside BitBake's double quotes.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The instance's infrastructure variables with the project's overrides applied, in the
/// instance's order, then overrides of variables the instance does not define.
pub fn effective_infrastructure(defaults: &[Variable], overrides: &[Variable]) -> Vec<Variable> {
    let mut merged: Vec<Variable> = defaults
        .iter()
        .map(|default| {
            overrides
                .iter()
                .find(|o| o.name == default.name)
                .unwrap_or(default)
                .clone()
        })
        .collect();
    for extra in overrides {
        if !defaults.iter().any(|d| d.name == extra.name) {
            merged.push(extra.clone());
        }
    }
    merged
}

/// `local.conf` for `config`, with `infrastructure` (already merged) first.
pub fn local_conf(config: &Configuration, infrastructure: &[Variable], heading: &str) -> String {
    let mut out = format!("# {heading}\n");
    let mut line = |text: String| {
        let _ = writeln!(out, "{text}");
    };
    if !config.machine.is_empty() {
        line(format!("MACHINE ?= {}", quoted(&config.machine)));
    }
    if !config.distro.is_empty() {
        line(format!("DISTRO ?= {}", quoted(&config.distro)));
    }
    if !config.packages.is_empty() {
        line(format!(
            "IMAGE_INSTALL:append = {}",
            quoted(&format!(" {}", config.packages.join(" ")))
        ));
    }
    if !infrastructure.is_empty() {
        line(String::new());
        line("# Infrastructure".into());
        for variable in infrastructure {
            line(format!("{} = {}", variable.name, quoted(&variable.value)));
        }
    }
    if !config.variables.is_empty() {
        line(String::new());
        line("# Build variables".into());
        for variable in &config.variables {
            line(format!("{} = {}", variable.name, quoted(&variable.value)));
        }
    }
    out
}

/// `bblayers.conf` for `config`: git layers are checked out under `layers/NAME` beside the
/// build directory.
pub fn bblayers_conf(config: &Configuration, heading: &str) -> String {
    let mut out = format!("# {heading}\nBBLAYERS ?= \" \\\n");
    for layer in &config.layers {
        let path = match &layer.source {
            LayerSource::Git { subdirectory, .. } if subdirectory.is_empty() => {
                format!("${{TOPDIR}}/../layers/{}", layer.name)
            }
            LayerSource::Git { subdirectory, .. } => {
                format!("${{TOPDIR}}/../layers/{}/{subdirectory}", layer.name)
            }
            LayerSource::Local { path } => path.clone(),
        };
        let _ = writeln!(out, "  {} \\", path.replace(['"', '\\'], ""));
    }
    out.push_str("  \"\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Layer, VariableKind};
    use super::*;

    fn variable(name: &str, value: &str) -> Variable {
        Variable {
            name: name.into(),
            value: value.into(),
            kind: VariableKind::String,
            secret: false,
        }
    }

    #[test]
    fn local_conf_quotes_values_and_orders_sections() {
        let config = Configuration {
            machine: "qemux86-64".into(),
            packages: vec!["htop".into(), "strace".into()],
            variables: vec![variable("EXTRA", "say \"hi\" \\ bye")],
            ..Configuration::default()
        };
        let text = local_conf(&config, &[variable("DL_DIR", "/srv/downloads")], "Kiln");
        assert_eq!(
            text,
            "# Kiln\nMACHINE ?= \"qemux86-64\"\nIMAGE_INSTALL:append = \" htop strace\"\n\n\
             # Infrastructure\nDL_DIR = \"/srv/downloads\"\n\n\
             # Build variables\nEXTRA = \"say \\\"hi\\\" \\\\ bye\"\n"
        );
    }

    #[test]
    fn bblayers_lists_layers_in_order() {
        let config = Configuration {
            layers: vec![
                Layer {
                    name: "poky".into(),
                    source: LayerSource::Git {
                        url: "https://git.yoctoproject.org/poky".into(),
                        git_ref: "scarthgap".into(),
                        subdirectory: "meta".into(),
                    },
                },
                Layer {
                    name: "meta-local".into(),
                    source: LayerSource::Local {
                        path: "/srv/meta-local".into(),
                    },
                },
            ],
            ..Configuration::default()
        };
        assert_eq!(
            bblayers_conf(&config, "Kiln"),
            "# Kiln\nBBLAYERS ?= \" \\\n  ${TOPDIR}/../layers/poky/meta \\\n  /srv/meta-local \\\n  \"\n"
        );
    }

    #[test]
    fn project_overrides_replace_instance_defaults() {
        let defaults = [variable("DL_DIR", "/a"), variable("SSTATE_DIR", "/b")];
        let overrides = [
            variable("SSTATE_DIR", "/c"),
            variable("BB_NUMBER_THREADS", "4"),
        ];
        let merged = effective_infrastructure(&defaults, &overrides);
        let pairs: Vec<(&str, &str)> = merged
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("DL_DIR", "/a"),
                ("SSTATE_DIR", "/c"),
                ("BB_NUMBER_THREADS", "4")
            ]
        );
    }
}
