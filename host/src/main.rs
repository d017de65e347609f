//! The `bulkhead` binary: the command-line interface and its dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Runs tenants' WebAssembly plugins in isolated, supervised worker processes.
#[derive(Debug, Parser)]
#[command(name = "bulkhead", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Internal: the worker process side. Started by the host only.
    #[command(hide = true)]
    Worker(bulkhead::worker::WorkerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Worker(args) => bulkhead::worker::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
