//! Secrets at rest: the values of secret variables (a project's and the instance's
//! infrastructure ones) and webhook secrets are stored sealed with XChaCha20-Poly1305 under
//! the instance's key, so a copy of the database alone reveals none of them.
//!
//! A sealed value reads `kiln-sealed:v1:KEYID:BASE64`, where `KEYID` names the key that
//! sealed it (the first bytes of its SHA-256) and `BASE64` holds the 24-byte nonce and the
//! ciphertext. The keyring holds the current key, which seals, and any others that still
//! open older values while a rotation runs. Plain values are opened as they are: a store
//! written before sealing existed is sealed at the next start.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::configuration::Variable;
use crate::error::AppError;

pub mod stored;

pub use crate::configuration::{SEALED_PREFIX, is_sealed};

/// Bytes of a key.
pub const KEY_BYTES: usize = 32;

const NONCE_BYTES: usize = 24;

/// A value that cannot be opened with the keys at hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("it was sealed with key {0}, which this server does not have")]
    UnknownKey(String),
    #[error("it is damaged or was not sealed with the key it names")]
    Damaged,
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl Key {
    fn new(bytes: &[u8; KEY_BYTES]) -> Self {
        Self {
            id: key_id(bytes),
            cipher: XChaCha20Poly1305::new(bytes.into()),
        }
    }
}

/// The name of a key in sealed values: the first four bytes of its SHA-256, in hex.
pub fn key_id(bytes: &[u8; KEY_BYTES]) -> String {
    hex::encode(&Sha256::digest(bytes)[..4])
}

/// A fresh random key.
pub fn generate_key() -> [u8; KEY_BYTES] {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// The keys a server seals and opens secrets with. Cheap to clone.
#[derive(Clone)]
pub struct Keyring(Arc<Keys>);

struct Keys {
    current: Key,
    others: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.0.current.id)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A keyring sealing with `current`, and opening with it and `others`.
    pub fn new(current: &[u8; KEY_BYTES], others: &[[u8; KEY_BYTES]]) -> Self {
        Self(Arc::new(Keys {
            current: Key::new(current),
            others: others.iter().map(Key::new).collect(),
        }))
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.0.current.id
    }

    /// `plain`, sealed under the current key.
    pub fn seal(&self, plain: &str) -> String {
        let key = &self.0.current;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce only fails past 256 GiB.
        let ciphertext = key
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}:{}", key.id, STANDARD.encode(sealed))
    }

    /// The plain text of `stored`: opened when sealed, as it is when plain.
    pub fn open(&self, stored: &str) -> Result<String, SecretError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, body) = rest.split_once(':').ok_or(SecretError::Damaged)?;
        let key = std::iter::once(&self.0.current)
            .chain(&self.0.others)
            .find(|key| key.id == id)
            .ok_or_else(|| SecretError::UnknownKey(id.to_owned()))?;
        let bytes = STANDARD.decode(body).map_err(|_| SecretError::Damaged)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SecretError::Damaged);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SecretError::Damaged)
    }

    /// Whether `stored` is sealed under the current key already.
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(id, _)| id == self.0.current.id)
    }

    /// `stored` sealed under the current key: opened and sealed again unless it already is.
    pub fn reseal(&self, stored: &str) -> Result<String, SecretError> {
        if self.is_current(stored) {
            return Ok(stored.to_owned());
        }
        Ok(self.seal(&self.open(stored)?))
    }

    /// Seals the values of the secret variables among `variables` that are not sealed yet
    /// (a new value from a form); sealed ones are kept as they are.
    pub fn seal_variables(&self, variables: &mut [Variable]) {
        for variable in variables.iter_mut() {
            if variable.secret && !variable.value.is_empty() && !is_sealed(&variable.value) {
                variable.value = self.seal(&variable.value);
            }
        }
    }

    /// Opens the values of the secret variables among `variables`; `what` names their owner
    /// in the error (a project's slug, or the instance).
    pub fn open_variables(&self, variables: &mut [Variable], what: &str) -> Result<(), AppError> {
        for variable in variables.iter_mut().filter(|v| v.secret) {
            variable.value = self.open(&variable.value).map_err(|error| {
                tracing::error!(%error, variable = %variable.name, "cannot open a secret of {what}");
                AppError::invalid(
                    "secrets",
                    format!(
                        "The secret {} of {what} cannot be read: {error}. Restore the server's secrets key from its backup.",
                        variable.name
                    ),
                )
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_to_what_was_sealed_and_hide_it() {
        let keys = Keyring::new(&generate_key(), &[]);
        let sealed = keys.seal("hunter2");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            keys.seal("hunter2"),
            "each seal has a nonce of its own"
        );
        assert_eq!(keys.open(&sealed).unwrap(), "hunter2");
        assert_eq!(keys.open("plain").unwrap(), "plain");
    }

    #[test]
    fn another_key_cannot_open_and_says_which_key_it_needs() {
        let first = generate_key();
        let sealed = Keyring::new(&first, &[]).seal("hunter2");
        let other = Keyring::new(&generate_key(), &[]);
        assert_eq!(
            other.open(&sealed),
            Err(SecretError::UnknownKey(key_id(&first)))
        );
        let tampered = sealed.replace(&sealed[sealed.len() - 6..], "AAAAAA");
        assert_eq!(
            Keyring::new(&first, &[]).open(&tampered),
            Err(SecretError::Damaged)
        );
    }

    #[test]
    fn a_rotation_opens_old_values_and_seals_under_the_new_key() {
        let (old, new) = (generate_key(), generate_key());
        let sealed = Keyring::new(&old, &[]).seal("hunter2");
        let keys = Keyring::new(&new, &[old]);
        assert!(!keys.is_current(&sealed));
        let resealed = keys.reseal(&sealed).unwrap();
        assert!(keys.is_current(&resealed));
        assert_eq!(Keyring::new(&new, &[]).open(&resealed).unwrap(), "hunter2");
        assert_eq!(keys.reseal(&resealed).unwrap(), resealed);
    }

    #[test]
    fn only_secret_variables_are_sealed_once() {
        use crate::configuration::VariableKind;
        let keys = Keyring::new(&generate_key(), &[]);
        let variable = |name: &str, value: &str, secret| Variable {
            name: name.into(),
            value: value.into(),
            kind: VariableKind::String,
            secret,
        };
        let mut variables = vec![
            variable("TOKEN", "hunter2", true),
            variable("PLAIN", "x", false),
        ];
        keys.seal_variables(&mut variables);
        let sealed = variables[0].value.clone();
        assert!(is_sealed(&sealed));
        assert_eq!(variables[1].value, "x");
        keys.seal_variables(&mut variables);
        assert_eq!(variables[0].value, sealed);
        keys.open_variables(&mut variables, "project demo").unwrap();
        assert_eq!(variables[0].value, "hunter2");
        assert!(crate::configuration::check_plain(&sealed, "value").is_err());
    }
}
