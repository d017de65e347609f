//! The compile cache: precompiled components on disk, keyed by the sha256 of
//! the upload and the engine's compatibility hash.
//!
//! The host compiles each plugin once; every worker then maps the artifact
//! with `Component::deserialize_file` instead of compiling again. Artifacts
//! are native code that is loaded without validation, so the directory must be
//! writable by the host only; entries are written to a temporary name and
//! renamed, so a reader never sees a partial file.

use std::hash::Hasher;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

/// The sha256 of a plugin's bytes.
pub type Sha256Digest = [u8; 32];

/// Hashes plugin bytes.
pub fn sha256(bytes: &[u8]) -> Sha256Digest {
    Sha256::digest(bytes).into()
}

/// A directory of precompiled components for one engine configuration.
#[derive(Debug)]
pub(crate) struct CompileCache {
    dir: PathBuf,
}

/// Feeds `Engine::precompile_compatibility_hash` into sha256, so the
/// directory name is the same in every process that uses the same wasmtime
/// build and settings.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// Opens (creating) the cache directory for `engine` under `root`.
    pub(crate) fn open(root: &Path, engine: &Engine) -> io::Result<Self> {
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let dir = root.join(format!("{:016x}", hasher.finish()));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        Ok(Self { dir })
    }

    /// Where the artifact for `digest` lives (whether or not it exists).
    pub(crate) fn path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{}.cwasm", hex::encode(digest)))
    }

    /// Stores `artifact` for `digest` atomically and returns its path.
    pub(crate) fn store(&self, digest: &Sha256Digest, artifact: &[u8]) -> io::Result<PathBuf> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = self.path(digest);
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            hex::encode(digest),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::write(&tmp, artifact).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map(|()| path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_keyed_by_content_and_engine() {
        let root = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompileCache::open(root.path(), &engine).unwrap();
        let again = CompileCache::open(root.path(), &engine).unwrap();
        let digest = sha256(b"plugin");
        assert_eq!(cache.path(&digest), again.path(&digest));
        assert_ne!(cache.path(&digest), cache.path(&sha256(b"other")));

        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path(&digest).parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "only the host's user may write the cache");
        let path = cache.store(&digest, b"artifact").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"artifact");
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind: {leftovers:?}");
    }
}
