//! The `corelay` binary: CLI → config → app, nothing else.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = corelay::cli::Cli::parse();
    match corelay::app::main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corelay: {e:#}");
            ExitCode::FAILURE
        }
    }
}
