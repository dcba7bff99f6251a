//! `inspect FILE|-`: what receivers and verifiers said about one saved message.

use std::process::ExitCode;

use crate::cli::InspectArgs;

pub fn run(args: &InspectArgs) -> ExitCode {
    let _ = args;
    eprintln!("inspect: not available in this build yet");
    ExitCode::from(2)
}
