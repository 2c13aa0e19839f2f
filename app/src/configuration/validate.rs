//! The rules a configuration obeys, each error naming the field (or key path) it is about.
//! The limits are the documented ones (README, "Limits").

use super::{Configuration, Layer, LayerSource, Variable, VariableKind};
use crate::error::AppError;

pub const LAYERS_MAX: usize = 100;
pub const VARIABLES_MAX: usize = 500;
pub const LIST_MAX: usize = 200;
pub const TOKEN_MAX: usize = 128;
pub const VARIABLE_NAME_MAX: usize = 128;
pub const VALUE_MAX: usize = 4096;
pub const URL_MAX: usize = 2048;
pub const PATH_MAX: usize = 1024;
pub const GIT_REF_MAX: usize = 255;
pub const CHOICES_MAX: usize = 50;

/// Variables Kiln writes itself from the configuration's own fields.
pub const RESERVED_VARIABLES: [&str; 3] = ["MACHINE", "DISTRO", "BBLAYERS"];

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid(field, message)
}

/// A name such as a machine, distro, release, image target or package: `A-Z a-z 0-9 . _ + -`,
/// not starting with `-`. Empty is allowed where `required` is false.
pub fn check_token(value: &str, field: &str, required: bool) -> Result<(), AppError> {
    if value.is_empty() {
        return if required {
            Err(invalid(field, "A value is required."))
        } else {
            Ok(())
        };
    }
    if value.len() > TOKEN_MAX {
        return Err(invalid(field, format!("At most {TOKEN_MAX} characters.")));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
    if !value.chars().all(allowed) {
        return Err(invalid(
            field,
            format!("'{value}' may contain only letters, digits, '.', '_', '+' and '-'."),
        ));
    }
    if value.starts_with('-') {
        return Err(invalid(
            field,
            format!("'{value}' must not start with '-'."),
        ));
    }
    Ok(())
}

/// Splits a list typed as words separated by spaces, commas or line breaks.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn check_list(items: &[String], field: &str) -> Result<(), AppError> {
    if items.len() > LIST_MAX {
        return Err(invalid(field, format!("At most {LIST_MAX} entries.")));
    }
    for (i, item) in items.iter().enumerate() {
        check_token(item, &indexed(field, i), true)
            .map_err(|e| invalid(field, format!("Entry {}: {}", i + 1, e.message())))?;
    }
    Ok(())
}

fn indexed(field: &str, i: usize) -> String {
    format!("{field}[{i}]")
}

fn no_line_breaks(value: &str, field: &str) -> Result<(), AppError> {
    if value.contains(['\n', '\r', '\0']) {
        return Err(invalid(
            field,
            "Must not contain line breaks or NUL characters.",
        ));
    }
    Ok(())
}

/// A layer name: `A-Z a-z 0-9 . _ -`, 1 to 128 characters, not starting with `-`.
pub fn check_layer_name(name: &str, field: &str) -> Result<(), AppError> {
    check_token(name, field, true)?;
    if name.contains('+') {
        return Err(invalid(field, "A layer name must not contain '+'."));
    }
    Ok(())
}

/// A git URL with scheme https, ssh, git or file, that no tool can read as an option.
pub fn check_git_url(url: &str, field: &str) -> Result<(), AppError> {
    if url.is_empty() {
        return Err(invalid(field, "A git URL is required."));
    }
    if url.len() > URL_MAX {
        return Err(invalid(field, format!("At most {URL_MAX} characters.")));
    }
    if url.starts_with('-') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            "A git URL must not start with '-' or contain spaces or control characters.",
        ));
    }
    match url.split_once("://") {
        Some(("https" | "ssh" | "git" | "file", rest)) if !rest.is_empty() => Ok(()),
        _ => Err(invalid(
            field,
            "Use a URL starting with https://, ssh://, git:// or file://.",
        )),
    }
}

/// A branch, tag or commit name as git accepts it (`git check-ref-format` rules), never
/// starting with `-`.
pub fn check_git_ref(git_ref: &str, field: &str) -> Result<(), AppError> {
    if git_ref.is_empty() {
        return Err(invalid(field, "A branch, tag or commit is required."));
    }
    if git_ref.len() > GIT_REF_MAX {
        return Err(invalid(field, format!("At most {GIT_REF_MAX} characters.")));
    }
    let bad_char = |c: char| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c);
    let bad = git_ref.starts_with('-')
        || git_ref.starts_with('/')
        || git_ref.ends_with('/')
        || git_ref.ends_with('.')
        || git_ref.ends_with(".lock")
        || git_ref.contains("..")
        || git_ref.contains("//")
        || git_ref.contains("@{")
        || git_ref == "@"
        || git_ref.chars().any(bad_char)
        || git_ref.split('/').any(|part| part.starts_with('.'));
    if bad {
        return Err(invalid(
            field,
            format!("'{git_ref}' is not a valid git branch, tag or commit name."),
        ));
    }
    Ok(())
}

/// A subdirectory inside a repository: relative, without `..`; empty means the top.
pub fn check_subdirectory(path: &str, field: &str) -> Result<(), AppError> {
    if path.is_empty() {
        return Ok(());
    }
    check_path_text(path, field)?;
    if path.starts_with('/') || path.starts_with('-') || path.split('/').any(|p| p == "..") {
        return Err(invalid(
            field,
            "A subdirectory must be relative, without '..', and not start with '-'.",
        ));
    }
    Ok(())
}

fn check_path_text(path: &str, field: &str) -> Result<(), AppError> {
    if path.len() > PATH_MAX {
        return Err(invalid(field, format!("At most {PATH_MAX} characters.")));
    }
    no_line_breaks(path, field)
}

/// A directory on the build host: an absolute path.
pub fn check_local_path(path: &str, field: &str) -> Result<(), AppError> {
    if !path.starts_with('/') {
        return Err(invalid(field, "Use an absolute path, starting with '/'."));
    }
    check_path_text(path, field)
}

pub fn check_layer(layer: &Layer, prefix: &str) -> Result<(), AppError> {
    check_layer_name(&layer.name, &format!("{prefix}name"))?;
    match &layer.source {
        LayerSource::Git {
            url,
            git_ref,
            subdirectory,
        } => {
            check_git_url(url, &format!("{prefix}url"))?;
            check_git_ref(git_ref, &format!("{prefix}git_ref"))?;
            check_subdirectory(subdirectory, &format!("{prefix}subdirectory"))
        }
        LayerSource::Local { path } => check_local_path(path, &format!("{prefix}path")),
    }
}

/// BitBake's variable names: a letter or `_`, then letters, digits, `_`, `-`, `.`, `+`;
/// optional `:override` suffixes of the same characters.
pub fn check_variable_name(name: &str, field: &str) -> Result<(), AppError> {
    if name.is_empty() {
        return Err(invalid(field, "A variable name is required."));
    }
    if name.len() > VARIABLE_NAME_MAX {
        return Err(invalid(
            field,
            format!("At most {VARIABLE_NAME_MAX} characters."),
        ));
    }
    let mut parts = name.split(':');
    let base = parts.next().unwrap_or_default();
    let word = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c))
    };
    let starts_well = base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !word(base) || !parts.all(word) {
        return Err(invalid(
            field,
            format!(
                "'{name}' is not a BitBake variable name: start with a letter or '_', then \
                 letters, digits, '_', '-', '.', '+', with optional ':override' suffixes."
            ),
        ));
    }
    if RESERVED_VARIABLES.contains(&base) {
        return Err(invalid(
            field,
            format!("{base} is set from the configuration's own field; it cannot be a variable."),
        ));
    }
    Ok(())
}

pub fn check_choices(choices: &[String], field: &str) -> Result<(), AppError> {
    if choices.is_empty() || choices.len() > CHOICES_MAX {
        return Err(invalid(
            field,
            format!("A choice variable needs 1 to {CHOICES_MAX} choices."),
        ));
    }
    for choice in choices {
        if choice.is_empty() || choice.len() > TOKEN_MAX {
            return Err(invalid(
                field,
                format!("Each choice has 1 to {TOKEN_MAX} characters."),
            ));
        }
        no_line_breaks(choice, field)?;
    }
    Ok(())
}

/// The value against the variable's type. A secret may be empty (not set yet).
pub fn check_value(variable: &Variable, field: &str) -> Result<(), AppError> {
    let value = &variable.value;
    // A secret as stored: sealed by the server, checked before it was.
    if variable.secret && super::is_sealed(value) {
        return Ok(());
    }
    if value.len() > VALUE_MAX {
        return Err(invalid(field, format!("At most {VALUE_MAX} characters.")));
    }
    no_line_breaks(value, field)?;
    if variable.secret && value.is_empty() {
        return Ok(());
    }
    match &variable.kind {
        VariableKind::String | VariableKind::Path => Ok(()),
        VariableKind::Bool if value == "1" || value == "0" => Ok(()),
        VariableKind::Bool => Err(invalid(field, "A bool is 1 or 0.")),
        VariableKind::Integer if value.parse::<i64>().is_ok() => Ok(()),
        VariableKind::Integer => Err(invalid(field, format!("'{value}' is not a whole number."))),
        VariableKind::Choice(choices) if choices.contains(value) => Ok(()),
        VariableKind::Choice(choices) => Err(invalid(
            field,
            format!("'{value}' is not one of: {}.", choices.join(", ")),
        )),
    }
}

pub fn check_variable(variable: &Variable, prefix: &str) -> Result<(), AppError> {
    check_variable_name(&variable.name, &format!("{prefix}name"))?;
    if let VariableKind::Choice(choices) = &variable.kind {
        check_choices(choices, &format!("{prefix}choices"))?;
    }
    check_value(variable, &format!("{prefix}value"))
}

fn check_variables(variables: &[Variable], field: &str) -> Result<(), AppError> {
    if variables.len() > VARIABLES_MAX {
        return Err(invalid(
            field,
            format!("At most {VARIABLES_MAX} variables."),
        ));
    }
    for (i, variable) in variables.iter().enumerate() {
        check_variable(variable, &format!("{field}[{i}]."))?;
        if variables[..i].iter().any(|v| v.name == variable.name) {
            return Err(invalid(
                &format!("{field}[{i}].name"),
                format!("{} is defined twice.", variable.name),
            ));
        }
    }
    Ok(())
}

impl Configuration {
    /// Checks every rule; the error names the key path, e.g. `layers[2].url`.
    pub fn check(&self) -> Result<(), AppError> {
        check_token(&self.release, "release", false)?;
        check_token(&self.machine, "machine", false)?;
        check_token(&self.distro, "distro", false)?;
        check_list(&self.image_targets, "image_targets")?;
        check_list(&self.packages, "packages")?;
        if self.layers.len() > LAYERS_MAX {
            return Err(invalid("layers", format!("At most {LAYERS_MAX} layers.")));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            check_layer(layer, &format!("layers[{i}]."))?;
            if self.layers[..i].iter().any(|l| l.name == layer.name) {
                return Err(invalid(
                    &format!("layers[{i}].name"),
                    format!("The layer {} is listed twice.", layer.name),
                ));
            }
        }
        check_variables(&self.variables, "variables")?;
        check_variables(&self.infrastructure, "infrastructure")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(result: Result<(), AppError>) -> String {
        result
            .expect_err("should be rejected")
            .field()
            .unwrap_or_default()
            .to_owned()
    }

    fn variable(name: &str, value: &str, kind: VariableKind) -> Variable {
        Variable {
            name: name.into(),
            value: value.into(),
            kind,
            secret: false,
        }
    }

    #[test]
    fn variable_names_follow_bitbake() {
        for good in [
            "DL_DIR",
            "_X",
            "IMAGE_INSTALL:append",
            "PREFERRED_VERSION_linux-yocto",
            "A.b+c",
        ] {
            assert!(check_variable_name(good, "name").is_ok(), "{good}");
        }
        for bad in [
            "",
            "1X",
            "-X",
            "X Y",
            "X=1",
            "X:",
            "A:b c",
            "MACHINE",
            "DISTRO:append",
            "X\n",
        ] {
            assert_eq!(field(check_variable_name(bad, "name")), "name", "{bad:?}");
        }
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let choice = VariableKind::Choice(vec!["ipk".into(), "rpm".into()]);
        assert!(check_value(&variable("X", "rpm", choice.clone()), "value").is_ok());
        assert_eq!(
            field(check_value(&variable("X", "deb", choice), "value")),
            "value"
        );
        assert!(check_value(&variable("X", "1", VariableKind::Bool), "value").is_ok());
        assert!(check_value(&variable("X", "yes", VariableKind::Bool), "value").is_err());
        assert!(check_value(&variable("X", "-4", VariableKind::Integer), "value").is_ok());
        assert!(check_value(&variable("X", "4.5", VariableKind::Integer), "value").is_err());
        assert!(check_value(&variable("X", "a\nb", VariableKind::String), "value").is_err());
        assert!(check_value(&variable("X", "a\0b", VariableKind::Path), "value").is_err());
        let secret = Variable {
            secret: true,
            ..variable("X", "", VariableKind::Integer)
        };
        assert!(check_value(&secret, "value").is_ok(), "an unset secret");
    }

    #[test]
    fn git_sources_cannot_be_read_as_options() {
        assert!(check_git_url("https://git.yoctoproject.org/poky", "url").is_ok());
        assert!(check_git_url("file:///srv/git/meta-x", "url").is_ok());
        for bad in [
            "",
            "-uhttps://x",
            "--upload-pack=sh",
            "http://x",
            "git@host:x",
            "https://",
            "https://a b",
        ] {
            assert_eq!(field(check_git_url(bad, "url")), "url", "{bad:?}");
        }
        for good in [
            "scarthgap",
            "refs/tags/yocto-5.0",
            "0123abcd",
            "feature/x-1",
        ] {
            assert!(check_git_ref(good, "git_ref").is_ok(), "{good}");
        }
        for bad in [
            "", "-b", "a..b", "a b", "a~1", "x.lock", "/x", "x/", "@", "a@{1}", ".hidden",
        ] {
            assert_eq!(field(check_git_ref(bad, "git_ref")), "git_ref", "{bad:?}");
        }
        assert!(check_subdirectory("", "subdirectory").is_ok());
        assert!(check_subdirectory("meta-oe", "subdirectory").is_ok());
        for bad in ["/abs", "../up", "a/../b", "-x", "a\0"] {
            assert!(check_subdirectory(bad, "subdirectory").is_err(), "{bad:?}");
        }
        assert!(check_local_path("/srv/layers/meta-x", "path").is_ok());
        assert!(check_local_path("relative", "path").is_err());
        assert!(check_local_path("/a\0b", "path").is_err());
    }

    #[test]
    fn whole_configurations_name_the_key_path() {
        let mut config = Configuration {
            machine: "qemux86-64".into(),
            image_targets: split_list("core-image-minimal, core-image-sato"),
            ..Configuration::default()
        };
        assert!(config.check().is_ok());
        assert_eq!(config.image_targets.len(), 2);
        config.layers.push(Layer {
            name: "meta-x".into(),
            source: LayerSource::Local {
                path: "/srv/x".into(),
            },
        });
        config.layers.push(config.layers[0].clone());
        assert_eq!(field(config.check()), "layers[1].name");
        config.layers.pop();
        config
            .variables
            .push(variable("X", "1", VariableKind::Integer));
        config
            .variables
            .push(variable("Y", "x", VariableKind::Integer));
        assert_eq!(field(config.check()), "variables[1].value");
        config.machine = "-bad".into();
        assert_eq!(field(config.check()), "machine");
    }
}
