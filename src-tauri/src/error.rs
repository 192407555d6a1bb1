//! The one error type commands return to the window: `{code, message}`.
//!
//! The UI branches on `code` (a stable snake_case word) and shows `message` (lower case,
//! says what failed on which object and how to fix it) as is; it never parses messages.

use serde::Serialize;

/// A command's failure as the window receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandError {
    /// Stable machine-readable kind, e.g. `unreachable`, `bad_input`, `not_found`.
    pub code: &'static str,
    /// What failed, in words for the owner.
    pub message: String,
}

impl CommandError {
    /// An error of kind `code`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        CommandError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CommandError {}

impl From<tauri::Error> for CommandError {
    fn from(e: tauri::Error) -> Self {
        CommandError::new("internal", format!("the tray app failed: {e}"))
    }
}
