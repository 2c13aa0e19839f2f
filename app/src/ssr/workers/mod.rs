//! Workers: their tokens, their registry rows, the leases on the workitems they hold, the
//! protocol they speak, the hub that connects them to the engine and the writer of their
//! replies.

pub mod hub;
pub mod leases;
pub mod logs;
pub mod protocol;
pub mod registry;
pub mod replies;
pub mod tokens;

pub use hub::WorkerHub;

use crate::error::AppError;

/// The longest worker or token name.
pub const MAX_NAME_CHARS: usize = 64;

/// `text` as a worker or token name: 1 to 64 letters, digits and `.`, `_`, `-`, `@`, `/`.
pub fn valid_name(field: &str, text: &str) -> Result<String, AppError> {
    crate::domain::plain_name(field, text, MAX_NAME_CHARS, &['.', '_', '-', '@', '/'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_with_the_field() {
        assert_eq!(
            valid_name("name", " build-1 ").ok().as_deref(),
            Some("build-1")
        );
        assert!(valid_name("name", "host/embedded-1").is_ok());
        for bad in ["", "a b", "x;y", &"n".repeat(65)] {
            let error = valid_name("name", bad).err().map(|e| e.to_string());
            assert!(error.is_some_and(|e| e.starts_with("name: ")), "{bad}");
        }
    }
}
