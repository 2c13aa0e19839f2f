//! The one error type of Kiln: what a caller may learn about a failure, and its HTTP status.
//!
//! Internal causes are logged where they are turned into [`AppError::Internal`] and never
//! travel to the client: the client only learns that something went wrong on our side.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// A submitted value is not acceptable; `field` names the form field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The value conflicts with existing data (for example a taken username).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// No session, or the session has ended.
    #[error("You need to log in.")]
    Unauthenticated,
    /// Wrong credentials, or a refused login; the message is safe to show.
    #[error("{0}")]
    LoginFailed(String),
    /// Logged in, but not allowed.
    #[error("You do not have permission to do that.")]
    Forbidden,
    #[error("Not found.")]
    NotFound,
    /// Too many attempts; try again after the given number of seconds.
    #[error("Too many failed attempts. Try again in {} minute(s).", retry_after_secs.div_ceil(60))]
    TooManyRequests { retry_after_secs: u64 },
    /// Something failed on the server; the cause is in the server's log.
    #[error("Something went wrong on the server. The error has been logged.")]
    Internal,
    /// The request itself could not be decoded or sent.
    #[error("The request failed: {0}")]
    Request(String),
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 422,
            Self::Conflict { .. } => 409,
            Self::Unauthenticated | Self::LoginFailed(_) => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::TooManyRequests { .. } => 429,
            Self::Internal => 500,
            Self::Request(_) => 400,
        }
    }

    /// The field this error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } | Self::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message to show next to the field (without the field name).
    pub fn message(&self) -> String {
        match self {
            Self::Invalid { message, .. } | Self::Conflict { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let error = match value {
            // Arguments that do not decode are the client's fault.
            ServerFnErrorErr::Args(message)
            | ServerFnErrorErr::MissingArg(message)
            | ServerFnErrorErr::Deserialization(message) => Self::Request(message),
            ServerFnErrorErr::Request(message) | ServerFnErrorErr::Response(message) => {
                Self::Request(message)
            }
            _ => Self::Internal,
        };
        // Arguments that fail to decode never reach `respond`; their status is set here.
        #[cfg(feature = "ssr")]
        error.set_response_status();
        error
    }
}

#[cfg(feature = "ssr")]
impl AppError {
    /// Gives the response being built the status (and `Retry-After`) this error calls for;
    /// outside a response (a background task) it does nothing.
    pub fn set_response_status(&self) {
        let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() else {
            return;
        };
        let status = http::StatusCode::from_u16(self.status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        options.set_status(status);
        if let Self::TooManyRequests { retry_after_secs } = self {
            options.insert_header(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(*retry_after_secs),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_client_errors_except_internal() {
        assert_eq!(AppError::invalid("username", "too long").status(), 422);
        assert_eq!(AppError::conflict("username", "taken").status(), 409);
        assert_eq!(AppError::Forbidden.status(), 403);
        assert_eq!(AppError::NotFound.status(), 404);
        assert_eq!(AppError::Unauthenticated.status(), 401);
        assert_eq!(
            AppError::TooManyRequests {
                retry_after_secs: 61
            }
            .status(),
            429
        );
        assert_eq!(AppError::Internal.status(), 500);
    }

    #[test]
    fn retry_message_rounds_minutes_up() {
        let message = AppError::TooManyRequests {
            retry_after_secs: 61,
        }
        .to_string();
        assert_eq!(
            message,
            "Too many failed attempts. Try again in 2 minute(s)."
        );
    }

    #[test]
    fn field_errors_carry_their_field() {
        let error = AppError::invalid("email", "must contain @");
        assert_eq!(error.field(), Some("email"));
        assert_eq!(error.message(), "must contain @");
    }
}
