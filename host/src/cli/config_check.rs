//! `bulkhead config check`: validates a configuration and prints the
//! resolved values (tokens as their digests); exit 2 naming the offending
//! key on error.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{Config, Overrides};

/// Configuration commands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration and print the resolved values.
    Check(ConfigCheckCommand),
}

/// Validates a configuration.
#[derive(Debug, clap::Args)]
pub struct ConfigCheckCommand {
    /// The TOML configuration; the embedded default when absent.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigCommand {
    pub fn execute(self) -> ExitCode {
        match self {
            Self::Check(check) => check.execute(),
        }
    }
}

impl ConfigCheckCommand {
    pub fn execute(self) -> ExitCode {
        match Config::load_with_process_env(self.config.as_deref(), &Overrides::default()) {
            Ok(config) => {
                print!("{}", config.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(super::serve::EXIT_CONFIG)
            }
        }
    }
}
