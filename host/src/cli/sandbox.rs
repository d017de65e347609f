//! `bulkhead sandbox check`: which layers of the worker sandbox this
//! machine gives, found by entering it exactly as a worker would (in a
//! throwaway probe process), with the cgroup layout and the Landlock ABI.
//! Exit 0, or 1 when `worker.sandbox` is `strict` and a layer is missing
//! (the host would refuse to start). The hidden `sandbox probe` is the
//! stand-in for an escaped guest the tests use (`worker::probe`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, Overrides};
use crate::sandbox::SandboxConfig;
use crate::supervisor::{WorkerCommand, cgroup_layout, check_sandbox};
use crate::worker::jail::{LayerState, Report, landlock_abi};
use crate::worker::probe::ProbeArgs;

/// Sandbox commands.
#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {
    /// Print the layers of the worker sandbox this machine gives.
    Check(SandboxCheckCommand),
    /// Internal: enter a worker's sandbox and try forbidden things (tests).
    #[command(hide = true)]
    Probe(ProbeArgs),
}

/// Prints the sandbox this machine gives workers.
#[derive(Debug, clap::Args)]
pub struct SandboxCheckCommand {
    /// The TOML configuration; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl SandboxCommand {
    pub fn execute(self) -> ExitCode {
        match self {
            Self::Check(check) => check.execute(),
            Self::Probe(args) => crate::worker::probe::run(&args),
        }
    }
}

impl SandboxCheckCommand {
    fn execute(self) -> ExitCode {
        let config = match Config::load_with_process_env(self.config.as_deref(), &Overrides::default()) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(super::serve::EXIT_CONFIG);
            }
        };
        let program = match std::env::current_exe() {
            Ok(program) => program,
            Err(e) => {
                eprintln!("error: cannot find this executable: {e}");
                return ExitCode::from(super::EXIT_LOCAL);
            }
        };
        let command = WorkerCommand::from_config(program, &config);
        // Throwaway directories: the check is about the machine, and must
        // not create or re-own the configured ones.
        let dirs = match tempfile::tempdir() {
            Ok(dirs) => dirs,
            Err(e) => {
                eprintln!("error: cannot create a scratch directory: {e}");
                return ExitCode::from(super::EXIT_LOCAL);
            }
        };
        let sandbox = SandboxConfig::new(dirs.path().join("cache"), dirs.path().join("data"));
        for dir in [&sandbox.cache_dir, &sandbox.data_dir] {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("error: creating {}: {e}", dir.display());
                return ExitCode::from(super::EXIT_LOCAL);
            }
        }
        let report = check_sandbox(&command, &sandbox);
        let strict_fails = config.worker.sandbox == crate::worker::SandboxMode::Strict
            && report
                .as_ref()
                .map_or(true, |r| r.layers.iter().any(|(_, state)| !state.is_on()));
        let (cgroups, abi) = (cgroup_layout(), landlock_abi());
        if self.json {
            let json = serde_json::json!({
                "mode": config.worker.sandbox,
                "cgroups": cgroups,
                "landlock_abi": abi,
                "layers": report.as_ref().ok().map(Report::layers_json),
                "error": report.as_ref().err(),
            });
            println!("{json:#}");
        } else {
            println!("worker.sandbox  {}", config.worker.sandbox);
            println!("cgroups         {cgroups}");
            println!("landlock ABI    {abi}");
            match &report {
                Ok(report) => {
                    for (layer, state) in &report.layers {
                        let (word, detail) = match state {
                            LayerState::On(d) => ("on", d),
                            LayerState::Unavailable(d) => ("unavailable", d),
                            LayerState::Off(d) => ("off", d),
                        };
                        println!("{:<15} {word}: {detail}", layer.as_str());
                    }
                }
                Err(e) => println!("sandbox         cannot be entered: {e}"),
            }
        }
        if strict_fails {
            eprintln!("worker.sandbox is strict and a layer is missing: the host would not start");
            return ExitCode::from(1);
        }
        ExitCode::SUCCESS
    }
}
