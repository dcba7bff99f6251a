//! What `check` prints: JSON Lines for scripts, a readable report for people.

pub mod json;
pub mod text;
