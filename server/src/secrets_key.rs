//! The instance's secrets key on disk: made on first start (mode 0600), loaded at every
//! start, and replaced by `kiln secrets rotate-key`.
//!
//! The file holds 64 hex digits. A rotation writes the new key beside the old one as
//! `FILE.new`, seals every secret under it in one transaction, then renames it over the
//! old file. A rotation stopped at any point leaves a store that opens: a start that finds
//! `FILE.new` opens with both keys and seals everything under the current one again.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use app::ssr::audit::Actor;
use app::ssr::secrets::stored::{self, PassError};
use app::ssr::secrets::{KEY_BYTES, Keyring, generate_key};
use sea_orm::DatabaseConnection;

use crate::config::StoreSettings;

/// Where the key file of `store` is.
pub fn path(store: &StoreSettings) -> PathBuf {
    store
        .secrets_key_file
        .clone()
        .unwrap_or_else(|| store.data_dir.join("secrets.key"))
}

fn pending_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

fn read(path: &Path) -> anyhow::Result<Option<[u8; KEY_BYTES]>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot read the secrets key {}", path.display()));
        }
    };
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
        .ok_or_else(|| {
            anyhow!(
                "the secrets key {} is not {} hex digits",
                path.display(),
                KEY_BYTES * 2
            )
        })?;
    Ok(Some(bytes))
}

/// Writes `key` to a new file at `path`, readable by its owner only.
fn write_new(path: &Path, key: &[u8; KEY_BYTES]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the secrets key {}", path.display()))?;
    writeln!(file, "{}", hex::encode(key))?;
    file.sync_all()?;
    Ok(())
}

fn lost(path: &Path, missing: bool, error: PassError) -> anyhow::Error {
    let problem = if missing {
        "is missing"
    } else {
        "is not the key"
    };
    match error {
        PassError::Unreadable(owners) => anyhow!(
            "the secrets key {} {problem} that sealed the secrets of {owners} in this database: \
             restore the key file from your backup",
            path.display()
        ),
        PassError::Store(error) => anyhow!("cannot seal the stored secrets: {error}"),
    }
}

/// The keyring of `store`: its key file loaded, or made on first start; every secret stored
/// in plain text (or under a key being rotated in) is then sealed under it. A missing or
/// wrong key is an error naming the projects and triggers whose secrets it cannot open
/// (and a key made in place of a missing one is removed again).
pub async fn load(store: &StoreSettings, db: &DatabaseConnection) -> anyhow::Result<Keyring> {
    let path = path(store);
    let (current, made) = match read(&path)? {
        Some(key) => (key, false),
        None => {
            let key = generate_key();
            write_new(&path, &key)?;
            (key, true)
        }
    };
    let pending_path = pending_path(&path);
    let pending = read(&pending_path)?;
    let keys = Keyring::new(&current, pending.as_slice());
    if let Err(error) =
        stored::seal_all(db, &keys, &Actor::system(), "Sealed the stored secrets").await
    {
        if made {
            // The database was sealed with a key that is gone; a new one must not stay.
            let _ = std::fs::remove_file(&path);
        }
        return Err(lost(&path, made, error));
    }
    if made {
        tracing::info!(path = %path.display(), "made a new secrets key; back it up with the database");
    }
    if pending.is_some() {
        // Everything is sealed under the current key again: the unfinished rotation is over.
        std::fs::remove_file(&pending_path)
            .with_context(|| format!("cannot remove {}", pending_path.display()))?;
    }
    Ok(keys)
}

/// Seals every secret of `store` under a new key and makes it the key file; returns the
/// new key's id. Servers using the store must be stopped first and started after.
pub async fn rotate(store: &StoreSettings, db: &DatabaseConnection) -> anyhow::Result<String> {
    let path = path(store);
    let old = read(&path)?.ok_or_else(|| {
        anyhow!(
            "there is no secrets key at {} to rotate: start the server once first",
            path.display()
        )
    })?;
    let pending_path = pending_path(&path);
    if read(&pending_path)?.is_some() {
        bail!(
            "{} is left from a rotation that did not finish: start the server once to finish it",
            pending_path.display()
        );
    }
    let new = generate_key();
    write_new(&pending_path, &new)?;
    let keys = Keyring::new(&new, &[old]);
    let summary = "Sealed every stored secret under a new key";
    if let Err(error) = stored::seal_all(db, &keys, &Actor::system(), summary).await {
        // Nothing was sealed under the new key: it is of no use.
        let _ = std::fs::remove_file(&pending_path);
        return Err(lost(&path, false, error));
    }
    std::fs::rename(&pending_path, &path).with_context(|| {
        format!(
            "cannot move {} over {}: the server finishes the rotation at its next start",
            pending_path.display(),
            path.display()
        )
    })?;
    Ok(keys.current_id().to_owned())
}
