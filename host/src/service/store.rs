//! Deployed plugins on disk, so that they survive a restart.

use std::path::{Path, PathBuf};

use crate::sandbox::InstanceMode;

/// The store's directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("deployed plugins in {}: {source}", dir.display())]
pub struct StoreError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Deployed plugins on disk: `<dir>/<name>.wasm` plus `<name>.mode`.
#[derive(Debug, Clone)]
pub struct PluginStore {
    dir: PathBuf,
}

impl PluginStore {
    /// Opens (creating) the directory.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError {
            dir: dir.to_owned(),
            source,
        })?;
        Ok(Self { dir: dir.to_owned() })
    }

    fn err(&self, source: std::io::Error) -> StoreError {
        StoreError {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Every stored plugin.
    pub fn load(&self) -> Result<Vec<(String, Vec<u8>, InstanceMode)>, StoreError> {
        let mut plugins = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| self.err(e))? {
            let path = entry.map_err(|e| self.err(e))?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wasm"))
            else {
                continue;
            };
            let mode = std::fs::read_to_string(path.with_extension("mode"))
                .ok()
                .and_then(|m| m.trim().parse().ok())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).map_err(|e| self.err(e))?;
            plugins.push((name.to_owned(), bytes, mode));
        }
        plugins.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(plugins)
    }

    /// Stores a plugin atomically (write, then rename).
    pub fn save(&self, name: &str, bytes: &[u8], mode: InstanceMode) -> Result<(), StoreError> {
        let write = |file: &str, data: &[u8]| -> std::io::Result<()> {
            let tmp = self.dir.join(format!(".{file}.tmp"));
            std::fs::write(&tmp, data)?;
            std::fs::rename(&tmp, self.dir.join(file))
        };
        write(&format!("{name}.mode"), mode.as_str().as_bytes()).map_err(|e| self.err(e))?;
        write(&format!("{name}.wasm"), bytes).map_err(|e| self.err(e))
    }

    /// Forgets a plugin.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        for file in [format!("{name}.wasm"), format!("{name}.mode")] {
            match std::fs::remove_file(self.dir.join(file)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(())
    }
}
