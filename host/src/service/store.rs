//! Deployed plugins on disk, so that they survive a restart.
//!
//! One file per plugin, `<name>.plugin`: a header line, then the
//! component's bytes:
//!
//! ```text
//! bulkhead-plugin 1 <mode> <size> <sha256 hex>\n<size bytes>
//! ```
//!
//! A save writes a uniquely named temporary file in the same directory,
//! fsyncs it, renames it over the old one and fsyncs the directory: a
//! deploy is one rename, so a crash or a full disk leaves the old plugin or
//! the new one (mode and bytes together), never a mix. The size and digest
//! catch a file damaged afterwards; it is loaded as damaged, and the
//! service quarantines it. Temporary files a crash left are removed at
//! open. Stores of earlier versions (`<name>.wasm` and `<name>.mode`) are
//! still read; the next save or remove of the name replaces them.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::sandbox::InstanceMode;

/// The first word of a stored plugin file.
const MAGIC: &str = "bulkhead-plugin";
/// The format's version.
const VERSION: u32 = 1;
/// The suffix of stored plugins.
const SUFFIX: &str = ".plugin";
/// The prefix of temporary files (`tempfile`'s).
const TEMP_PREFIX: &str = ".tmp";

/// The store's directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("deployed plugins in {}: {source}", dir.display())]
pub struct StoreError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

/// A plugin read back from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub name: String,
    pub mode: InstanceMode,
    pub bytes: Vec<u8>,
    /// Why the file cannot be trusted (truncated, digest mismatch), if so.
    pub damage: Option<String>,
}

/// Deployed plugins on disk (see the module doc).
#[derive(Debug, Clone)]
pub struct PluginStore {
    dir: PathBuf,
}

impl PluginStore {
    /// Opens (creating) the directory and removes temporary files a crash
    /// left in it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let store = Self { dir: dir.to_owned() };
        std::fs::create_dir_all(dir).map_err(|e| store.err(e))?;
        for entry in std::fs::read_dir(dir).map_err(|e| store.err(e))? {
            let entry = entry.map_err(|e| store.err(e))?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                tracing::info!(file = %entry.path().display(), "removing a deploy a crash cut short");
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(store)
    }

    /// An error of this store (a save that could not run to its end).
    pub(crate) fn failed(&self, source: std::io::Error) -> StoreError {
        self.err(source)
    }

    fn err(&self, source: std::io::Error) -> StoreError {
        StoreError {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Every stored plugin, by name; damaged ones say so.
    pub fn load(&self) -> Result<Vec<Stored>, StoreError> {
        let mut plugins: Vec<Stored> = Vec::new();
        let mut legacy = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| self.err(e))? {
            let path = entry.map_err(|e| self.err(e))?.path();
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file.starts_with('.') {
                continue;
            }
            if let Some(name) = file.strip_suffix(SUFFIX) {
                let data = std::fs::read(&path).map_err(|e| self.err(e))?;
                plugins.push(decode(name, &data));
            } else if let Some(name) = file.strip_suffix(".wasm") {
                legacy.push((name.to_owned(), path));
            }
        }
        for (name, path) in legacy {
            if plugins.iter().any(|p| p.name == name) {
                continue; // the current format wins
            }
            let mode = std::fs::read_to_string(path.with_extension("mode"))
                .ok()
                .and_then(|m| m.trim().parse().ok())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).map_err(|e| self.err(e))?;
            plugins.push(Stored {
                name,
                mode,
                bytes,
                damage: None,
            });
        }
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(plugins)
    }

    /// Stores a plugin: one durable, atomic rename (see the module doc).
    pub fn save(&self, name: &str, bytes: &[u8], mode: InstanceMode) -> Result<(), StoreError> {
        let mut file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.dir)
            .map_err(|e| self.err(e))?;
        file.write_all(&encode(bytes, mode)).map_err(|e| self.err(e))?;
        file.as_file().sync_all().map_err(|e| self.err(e))?;
        file.persist(self.path(name)).map_err(|e| self.err(e.error))?;
        self.remove_legacy(name)?;
        self.sync_dir()
    }

    /// Forgets a plugin, durably; nothing to forget is not an error.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        remove_if_present(&self.path(name)).map_err(|e| self.err(e))?;
        self.remove_legacy(name)?;
        self.sync_dir()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SUFFIX}"))
    }

    fn remove_legacy(&self, name: &str) -> Result<(), StoreError> {
        for file in [format!("{name}.wasm"), format!("{name}.mode")] {
            remove_if_present(&self.dir.join(file)).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| self.err(e))
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn encode(bytes: &[u8], mode: InstanceMode) -> Vec<u8> {
    let header = format!(
        "{MAGIC} {VERSION} {} {} {}\n",
        mode.as_str(),
        bytes.len(),
        hex::encode(crate::sandbox::sha256(bytes))
    );
    let mut data = Vec::with_capacity(header.len() + bytes.len());
    data.extend_from_slice(header.as_bytes());
    data.extend_from_slice(bytes);
    data
}

fn decode(name: &str, data: &[u8]) -> Stored {
    let damaged = |why: String, mode: InstanceMode, bytes: &[u8]| Stored {
        name: name.to_owned(),
        mode,
        bytes: bytes.to_vec(),
        damage: Some(format!("the stored file is damaged: {why}")),
    };
    let Some(end) = data.iter().position(|&b| b == b'\n') else {
        return damaged("no header line".into(), InstanceMode::default(), &[]);
    };
    let (header, bytes) = (String::from_utf8_lossy(&data[..end]), &data[end + 1..]);
    let fields: Vec<&str> = header.split(' ').collect();
    let [magic, version, mode, size, digest] = fields[..] else {
        return damaged(format!("unreadable header {header:?}"), InstanceMode::default(), bytes);
    };
    let Ok(mode) = mode.parse::<InstanceMode>() else {
        return damaged(format!("unknown mode {mode:?}"), InstanceMode::default(), bytes);
    };
    if magic != MAGIC || version != VERSION.to_string() {
        return damaged(format!("unknown format {magic:?} {version:?}"), mode, bytes);
    }
    if size.parse::<usize>().ok() != Some(bytes.len()) {
        return damaged(
            format!("{} bytes where the header says {size}", bytes.len()),
            mode,
            bytes,
        );
    }
    if hex::encode(crate::sandbox::sha256(bytes)) != digest {
        return damaged("its sha256 is not the one it was saved with".into(), mode, bytes);
    }
    Stored {
        name: name.to_owned(),
        mode,
        bytes: bytes.to_vec(),
        damage: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, PluginStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = PluginStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn a_saved_plugin_loads_back_with_its_mode_and_replaces_the_old_one() {
        let (_dir, store) = store();
        store.save("a", b"first", InstanceMode::PerProcess).unwrap();
        store.save("a", b"second", InstanceMode::PerRequest).unwrap();
        store.save("b", b"other", InstanceMode::PerProcess).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(
            loaded[0],
            Stored {
                name: "a".into(),
                mode: InstanceMode::PerRequest,
                bytes: b"second".to_vec(),
                damage: None,
            }
        );
        store.remove("a").unwrap();
        store.remove("a").unwrap();
        assert_eq!(store.load().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_file_is_loaded_as_damaged_and_a_cut_short_save_is_swept() {
        let (dir, store) = store();
        store.save("cut", b"0123456789", InstanceMode::PerRequest).unwrap();
        store.save("flip", b"0123456789", InstanceMode::PerProcess).unwrap();
        let cut = dir.path().join("cut.plugin");
        let data = std::fs::read(&cut).unwrap();
        std::fs::write(&cut, &data[..data.len() - 3]).unwrap();
        let flip = dir.path().join("flip.plugin");
        let mut data = std::fs::read(&flip).unwrap();
        *data.last_mut().unwrap() ^= 1;
        std::fs::write(&flip, data).unwrap();
        // What a crash between write and rename leaves.
        std::fs::write(dir.path().join(".tmpXYZ"), b"half").unwrap();
        let store = PluginStore::open(dir.path()).unwrap();
        assert!(!dir.path().join(".tmpXYZ").exists());
        let loaded = store.load().unwrap();
        let damage: Vec<_> = loaded.iter().map(|p| p.damage.clone().unwrap()).collect();
        assert!(damage[0].contains("7 bytes where the header says 10"), "{damage:?}");
        assert!(damage[1].contains("sha256"), "{damage:?}");
        assert_eq!(loaded[1].mode, InstanceMode::PerProcess);
    }

    #[test]
    fn an_earlier_store_is_read_and_replaced_on_the_next_save() {
        let (dir, store) = store();
        std::fs::write(dir.path().join("old.wasm"), b"legacy").unwrap();
        std::fs::write(dir.path().join("old.mode"), b"per-process").unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(
            (loaded[0].bytes.as_slice(), loaded[0].mode),
            (&b"legacy"[..], InstanceMode::PerProcess)
        );
        store.save("old", b"new", InstanceMode::PerRequest).unwrap();
        assert!(!dir.path().join("old.wasm").exists() && !dir.path().join("old.mode").exists());
        assert_eq!(store.load().unwrap()[0].bytes, b"new");
    }
}
