//! Where a password comes from. The value itself is read only when needed and never
//! printed: `Debug` shows the source, not the secret.

use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secret {
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
}

impl Secret {
    pub fn is_set(&self) -> bool {
        self.password_file.is_some() || self.password_env.is_some()
    }

    /// Reads the secret. Errors name the file or variable, never the content.
    pub fn read(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read password_file {}: {}", path.display(), e.kind())
            })?;
            return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
        }
        if let Some(var) = &self.password_env {
            return std::env::var(var)
                .map(Some)
                .map_err(|_| format!("environment variable {var} (password_env) is not set"));
        }
        Ok(None)
    }
}
