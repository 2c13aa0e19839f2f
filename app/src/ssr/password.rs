//! Password hashing with argon2id, off the async runtime.
//!
//! Parameters follow OWASP's minimum for argon2id (19 MiB, 2 iterations, 1 lane). Verifying
//! against an unknown user still hashes, against a dummy, so response time does not reveal
//! which usernames exist.

use crate::domain::Password;
use crate::error::AppError;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::LazyLock;

const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

fn hasher() -> Result<Argon2<'static>, AppError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn internal(error: impl std::fmt::Display) -> AppError {
    tracing::error!(%error, "password hashing failed");
    AppError::Internal
}

fn hash_blocking(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(internal)?
        .to_string())
}

/// A hash of a random password, made with the same parameters as real ones.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let random: [u8; 16] = rand::random();
    hash_blocking(&format!("{random:?}")).ok()
});

/// Computes the dummy hash now, so the first login does not pay for it.
pub async fn warm_up() {
    let _ = tokio::task::spawn_blocking(|| DUMMY_HASH.is_some()).await;
}

pub async fn hash(password: &Password) -> Result<String, AppError> {
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(internal)?
}

/// Checks `candidate` against `stored`; with no stored hash, spends the same time and fails.
pub async fn verify(candidate: &str, stored: Option<&str>) -> Result<bool, AppError> {
    let candidate = candidate.to_owned();
    let stored = stored.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let (phc, known) = match stored {
            Some(hash) => (hash, true),
            None => (DUMMY_HASH.clone().ok_or(AppError::Internal)?, false),
        };
        let parsed = PasswordHash::new(&phc).map_err(internal)?;
        let matches = hasher()?
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(internal)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id() {
        let password =
            Password::parse("correct horse", "password").unwrap_or_else(|e| panic!("{e}"));
        let hashed = hash(&password).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            hashed.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hashed}"
        );
        assert_eq!(verify("correct horse", Some(&hashed)).await, Ok(true));
        assert_eq!(verify("wrong horse", Some(&hashed)).await, Ok(false));
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert_eq!(verify("anything", None).await, Ok(false));
    }
}
