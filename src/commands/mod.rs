//! The one-shot commands of the command line (`check`, `inspect`, `report`) and `demo`.

pub mod check;
pub mod demo;
pub mod inspect;
pub mod report;

use std::io::Read;
use std::path::Path;

/// Input larger than this is refused rather than read into memory (a message or a report
/// file; a real one is a few megabytes at most).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Why a command's input file (or standard input) gave no bytes to work on.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read: {0}")]
    Unreadable(std::io::Error),
    #[error("larger than {MAX_INPUT_BYTES} bytes")]
    TooLarge,
}

/// The whole of `file` (`-`: standard input), at most [`MAX_INPUT_BYTES`]: one byte more
/// is read to tell a file of exactly the limit from a larger one.
pub fn read_input(file: &Path) -> Result<Vec<u8>, InputError> {
    let mut raw = Vec::new();
    let result = if file.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut raw)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut raw))
    };
    result.map_err(InputError::Unreadable)?;
    if raw.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge);
    }
    Ok(raw)
}
