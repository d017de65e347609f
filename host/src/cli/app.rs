//! The `bulkhead` command: the clap enum of every subcommand and its
//! dispatch. `main.rs` parses it and calls [`Cli::execute`]; the parsing
//! tests parse this same command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use super::{
    BenchCommand, ConfigCommand, DeployCommand, HealthCommand, InvokeCommand, ProcessesCommand, SandboxCommand,
    ServeCommand, TerminateCommand, report,
};
use crate::worker::{CompileArgs, WorkerArgs};

/// Runs tenants' WebAssembly plugins in isolated, supervised worker processes.
#[derive(Debug, Parser)]
#[command(name = "bulkhead", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host.
    Serve(ServeCommand),
    /// Call a plugin once.
    Invoke(InvokeCommand),
    /// Upload a plugin to a running host.
    Deploy(DeployCommand),
    /// List the worker processes.
    Processes(ProcessesCommand),
    /// Terminate one worker process.
    Terminate(TerminateCommand),
    /// Print the health report.
    Health(HealthCommand),
    /// Benchmarks (cold start per isolation level).
    Bench(BenchCommand),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The worker sandbox on this machine.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Internal: the worker process side. Started by the host only.
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// Internal: compiles one upload in a limited child. Started by the host only.
    #[command(hide = true)]
    Compile(CompileArgs),
}

impl Cli {
    /// Runs the command; the process exits with what it returns.
    pub fn execute(self) -> ExitCode {
        match self.command {
            Command::Serve(cmd) => cmd.execute(),
            Command::Invoke(cmd) => report(cmd.execute()),
            Command::Deploy(cmd) => report(cmd.execute()),
            Command::Processes(cmd) => report(cmd.execute()),
            Command::Terminate(cmd) => report(cmd.execute()),
            Command::Health(cmd) => report(cmd.execute()),
            Command::Config(cmd) => cmd.execute(),
            Command::Sandbox(cmd) => cmd.execute(),
            Command::Bench(cmd) => cmd.execute(),
            Command::Worker(args) => crate::worker::run(&args),
            Command::Compile(args) => crate::worker::run_compile(&args),
        }
    }
}
