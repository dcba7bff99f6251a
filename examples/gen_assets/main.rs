//! Writes the man pages and shell completions that the Debian package ships, generated
//! from the command line definition (`src/cli.rs`), into `target/assets/` (or the
//! directory given as the only argument). Run it before `cargo deb`:
//!
//! ```sh
//! cargo run --example gen_assets && cargo deb
//! ```
//!
//! A separate step rather than a build script, so that no ordinary build pays for it.

mod assets;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(assets::default_dir);
    match assets::generate(&dir) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_assets: cannot write into {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
