//! The `bulkhead` binary: the command-line interface and its dispatch.

use std::process::ExitCode;

use bulkhead::cli;
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
    /// Run the host.
    Serve(cli::ServeCommand),
    /// Call a plugin once.
    Invoke(cli::InvokeCommand),
    /// Upload a plugin to a running host.
    Deploy(cli::DeployCommand),
    /// List the worker processes.
    Processes(cli::ProcessesCommand),
    /// Terminate one worker process.
    Terminate(cli::TerminateCommand),
    /// Print the health report.
    Health(cli::HealthCommand),
    /// Benchmarks (cold start per isolation level).
    Bench(cli::BenchCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(cli::ConfigCommand),
    /// Internal: the worker process side. Started by the host only.
    #[command(hide = true)]
    Worker(bulkhead::worker::WorkerArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(cmd) => cmd.execute(),
        Command::Invoke(cmd) => cli::report(cmd.execute()),
        Command::Deploy(cmd) => cli::report(cmd.execute()),
        Command::Processes(cmd) => cli::report(cmd.execute()),
        Command::Terminate(cmd) => cli::report(cmd.execute()),
        Command::Health(cmd) => cli::report(cmd.execute()),
        Command::Config(cmd) => cmd.execute(),
        Command::Bench(cmd) => cmd.execute(),
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
