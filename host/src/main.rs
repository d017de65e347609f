//! The `bulkhead` binary: parses the command line and runs the command (the
//! clap enum and its dispatch are `bulkhead::cli::Cli`).

use std::process::ExitCode;

use bulkhead::cli::Cli;
use clap::Parser;

fn main() -> ExitCode {
    Cli::parse().execute()
}
